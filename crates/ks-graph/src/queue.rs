//! Pin queues: the frames waiting at one pin, with a leading edge and an optional distinct
//! trailing edge (AVStream's queue object behind a pin, ks-spec.md §8.2).
//!
//! A [`Queue`] owns the frames that have arrived at a pin and not yet completed. Stream
//! pointers ([`PointerId`]s) walk over them; the operations
//! on pointers (lock, advance, clone, delete, cancel …) are methods of the queue and live in
//! [`stream_pointer`](crate::stream_pointer).
//!
//! # Completion
//!
//! A frame *completes* when no stream pointer references it **and** both edges have passed
//! it (the leading edge, and the trailing edge when the pin has one) — or, for a cancelled
//! frame, as soon as no clone references it any more (behaviours 51–52). A completed frame
//! leaves the queue: it is handed to the completion sink installed with
//! [`Queue::set_completion_sink`], or, without a sink, kept until
//! [`Queue::pop_completed`] / [`Queue::drain_completed`] takes it. The runtime uses this to
//! pass frames downstream or return them to their allocator (behaviour 60): the queue never
//! drops a frame on its own except in [`Queue::flush`]'s caller-visible way (it is still
//! delivered as a completion).
//!
//! # Example
//!
//! ```
//! use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
//! use ks_graph::stream_pointer::PointerState;
//!
//! let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
//! let id = q.push(vec![7u8; 16], StreamHeader::with_data(16, 16));
//! // The frame arrived into an empty queue: it is the leading-edge frame (behaviour 49).
//! let lead = q.leading_edge(PointerState::Locked).expect("a frame is there");
//! assert_eq!(q.frame_id(lead).unwrap(), Some(id));
//! assert_eq!(q.data(lead).unwrap()[0], 7);
//! q.unlock(lead, true).unwrap(); // eject: the leading edge moves past the frame
//! let done = q.pop_completed().expect("the frame completed");
//! assert_eq!(done.id, id);
//! assert!(done.status.is_ok());
//! ```

use std::collections::VecDeque;
use std::fmt;

use ks_alloc::Status;

use crate::stream_pointer::{AtEdge, CancelNotice, PointerData, PointerId, PointerKind, Slot};
use crate::timeout::Timeouts;

/// `KSPIN_FLAG_GENERATE_MAPPINGS` (0x100): the pin asks for scatter/gather mappings; for a
/// queue this means `DataUsed` is set from the pointer's offsets when a pointer leaves a frame.
///
/// ```
/// use ks_graph::queue::{Direction, QueueConfig, PIN_FLAG_GENERATE_MAPPINGS};
/// let c = QueueConfig::from_pin_flags(Direction::Output, PIN_FLAG_GENERATE_MAPPINGS);
/// assert!(c.generate_mappings && !c.distinct_trailing_edge);
/// ```
#[doc(alias = "KSPIN_FLAG_GENERATE_MAPPINGS")]
pub const PIN_FLAG_GENERATE_MAPPINGS: u32 = 0x0000_0100;
/// `KSPIN_FLAG_DISTINCT_TRAILING_EDGE` (0x200): the pin's queue has a trailing edge distinct
/// from its leading edge.
///
/// ```
/// use ks_graph::queue::{Direction, Queue, QueueConfig, PIN_FLAG_DISTINCT_TRAILING_EDGE};
/// let c = QueueConfig::from_pin_flags(Direction::Input, PIN_FLAG_DISTINCT_TRAILING_EDGE);
/// let q: Queue<Vec<u8>> = Queue::new(c);
/// assert!(q.trailing_edge_id().is_some());
/// ```
#[doc(alias = "KSPIN_FLAG_DISTINCT_TRAILING_EDGE")]
pub const PIN_FLAG_DISTINCT_TRAILING_EDGE: u32 = 0x0000_0200;
/// `KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM` (0x200): the last frame of a stream.
///
/// ```
/// use ks_graph::queue::{StreamHeader, OPTIONSF_END_OF_STREAM};
/// let mut h = StreamHeader::with_data(64, 64);
/// h.options_flags |= OPTIONSF_END_OF_STREAM;
/// assert!(h.is_end_of_stream());
/// ```
#[doc(alias = "KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM")]
pub const OPTIONSF_END_OF_STREAM: u32 = 0x0000_0200;

/// Byte access to a frame, for the data accessors of [`Queue`].
///
/// ```
/// use ks_graph::queue::{FrameBytes, Queue, QueueConfig, StreamHeader};
/// use ks_graph::stream_pointer::PointerState;
///
/// /// A read-only frame in static memory.
/// struct Rom(&'static [u8]);
///
/// impl FrameBytes for Rom {
///     fn bytes(&self) -> &[u8] {
///         self.0
///     }
///     fn bytes_mut(&mut self) -> Option<&mut [u8]> {
///         None
///     }
/// }
///
/// let mut q = Queue::new(QueueConfig::input());
/// q.push(Rom(b"abcd"), StreamHeader::with_data(4, 4));
/// let p = q.leading_edge(PointerState::Locked).unwrap();
/// assert_eq!(q.data(p)?, b"abcd");
/// assert_eq!(q.data_mut(p).unwrap_err().name(), "STATUS_INVALID_DEVICE_REQUEST");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub trait FrameBytes {
    /// The frame's bytes.
    ///
    /// ```
    /// use ks_graph::queue::FrameBytes;
    /// let frame = vec![1u8, 2, 3];
    /// assert_eq!(frame.bytes(), &[1, 2, 3]);
    /// ```
    fn bytes(&self) -> &[u8];
    /// The frame's bytes for writing, or `None` when the frame is read-only (shared).
    ///
    /// ```
    /// use ks_graph::queue::FrameBytes;
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 4,
    ///                         alignment: Alignment::BYTE };
    /// let alloc = Allocator::new(&framing, Memory::Paged)?;
    /// let mut frame = alloc.allocate_blocking(None)?;
    /// frame.bytes_mut().expect("an allocator's frame is writable").fill(7);
    /// assert_eq!(frame.bytes(), &[7; 4]);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    fn bytes_mut(&mut self) -> Option<&mut [u8]>;
}

impl FrameBytes for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        Some(self)
    }
}

impl FrameBytes for Box<[u8]> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        Some(self)
    }
}

impl FrameBytes for ks_alloc::Frame {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        Some(self)
    }
}

/// Identity of one frame within one queue: its arrival sequence number (0, 1, 2, …).
///
/// ```
/// use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
/// let a = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// let b = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// assert!(a < b); // arrival order
/// assert_eq!(b.to_string(), "frame #1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameId(pub(crate) u64);

impl FrameId {
    /// The arrival sequence number of the frame in its queue (the first frame is 0).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let first = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let second = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// assert_eq!((first.sequence(), second.sequence()), (0, 1));
    /// ```
    pub const fn sequence(self) -> u64 {
        self.0
    }

    /// The id of the frame with arrival sequence number `seq` (which may or may not be in a
    /// given queue; queue methods check).
    ///
    /// ```
    /// use ks_graph::queue::{FrameId, Queue, QueueConfig, StreamHeader};
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let id = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// assert_eq!(FrameId::from_sequence(0), id);
    /// assert!(!q.contains(FrameId::from_sequence(1))); // not arrived (yet)
    /// ```
    pub const fn from_sequence(seq: u64) -> FrameId {
        FrameId(seq)
    }
}

impl fmt::Display for FrameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame #{}", self.0)
    }
}

/// The per-frame bookkeeping KS keeps in a `KSSTREAM_HEADER` (the fields a portable runtime
/// needs; `Size` and `Data` are implied by the frame itself).
///
/// ```
/// use ks_graph::queue::StreamHeader;
/// let h = StreamHeader {
///     presentation_time: 10_000_000, // 1 s
///     duration: 333_333,
///     ..StreamHeader::with_data(4096, 1000)
/// };
/// assert_eq!((h.frame_extent, h.data_used), (4096, 1000));
/// assert!(!h.is_end_of_stream());
/// ```
#[doc(alias = "KSSTREAM_HEADER")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamHeader {
    /// `FrameExtent`: usable size of the frame in bytes.
    pub frame_extent: u32,
    /// `DataUsed`: bytes of valid data at the start of the frame.
    pub data_used: u32,
    /// `OptionsFlags` (`KSSTREAM_HEADER_OPTIONSF_*`), e.g. [`OPTIONSF_END_OF_STREAM`].
    pub options_flags: u32,
    /// `TypeSpecificFlags`.
    pub type_specific_flags: u32,
    /// `PresentationTime.Time`, in 100 ns units.
    pub presentation_time: i64,
    /// `Duration`, in 100 ns units.
    pub duration: i64,
}

impl StreamHeader {
    /// The input bytes a stream pointer arriving on the frame counts (`OffsetIn.Count`, which
    /// it keeps while it stays on the frame): `DataUsed`, but never more than `FrameExtent`
    /// (policy: a header claiming more data than its frame holds is inconsistent, which KS
    /// leaves undefined). The data accessors clamp further, to the
    /// frame's own length too; the runtime always sets `FrameExtent` to that length.
    ///
    /// ```
    /// use ks_graph::queue::StreamHeader;
    /// assert_eq!(StreamHeader::with_data(8, 5).input_count(), 5);
    /// assert_eq!(StreamHeader::with_data(8, 20).input_count(), 8);
    /// ```
    pub const fn input_count(&self) -> u32 {
        if self.data_used < self.frame_extent {
            self.data_used
        } else {
            self.frame_extent
        }
    }

    /// A header for an empty frame of `frame_extent` bytes (`DataUsed` = 0): what an output
    /// pin receives to fill.
    ///
    /// ```
    /// use ks_graph::queue::StreamHeader;
    /// let h = StreamHeader::empty(4096);
    /// assert_eq!((h.frame_extent, h.data_used), (4096, 0));
    /// ```
    pub const fn empty(frame_extent: u32) -> StreamHeader {
        StreamHeader::with_data(frame_extent, 0)
    }

    /// A header for a frame of `frame_extent` bytes holding `data_used` valid bytes.
    ///
    /// ```
    /// use ks_graph::queue::StreamHeader;
    /// let h = StreamHeader::with_data(4096, 100);
    /// assert_eq!((h.frame_extent, h.data_used), (4096, 100));
    /// assert_eq!((h.options_flags, h.presentation_time), (0, 0));
    /// ```
    pub const fn with_data(frame_extent: u32, data_used: u32) -> StreamHeader {
        StreamHeader {
            frame_extent,
            data_used,
            options_flags: 0,
            type_specific_flags: 0,
            presentation_time: 0,
            duration: 0,
        }
    }

    /// Whether `KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM` is set.
    ///
    /// ```
    /// use ks_graph::queue::{StreamHeader, OPTIONSF_END_OF_STREAM};
    /// let mut h = StreamHeader::with_data(16, 16);
    /// assert!(!h.is_end_of_stream());
    /// h.options_flags = OPTIONSF_END_OF_STREAM;
    /// assert!(h.is_end_of_stream());
    /// ```
    pub const fn is_end_of_stream(&self) -> bool {
        self.options_flags & OPTIONSF_END_OF_STREAM != 0
    }

    /// Sets or clears `KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM`.
    ///
    /// ```
    /// use ks_graph::queue::{StreamHeader, OPTIONSF_END_OF_STREAM};
    /// let mut h = StreamHeader::with_data(16, 16);
    /// h.set_end_of_stream(true);
    /// assert_eq!(h.options_flags, OPTIONSF_END_OF_STREAM);
    /// h.set_end_of_stream(false);
    /// assert!(!h.is_end_of_stream());
    /// ```
    pub fn set_end_of_stream(&mut self, eos: bool) {
        if eos {
            self.options_flags |= OPTIONSF_END_OF_STREAM;
        } else {
            self.options_flags &= !OPTIONSF_END_OF_STREAM;
        }
    }
}

/// Data-flow direction of the pin owning a queue (`KSPIN_DATAFLOW`).
///
/// It decides which offset is the pointer's `Offset`: `OffsetIn` on input pins, `OffsetOut`
/// on output pins (ks-spec.md §8.1).
///
/// ```
/// use ks_graph::queue::{Direction, Queue, QueueConfig, StreamHeader};
/// use ks_graph::stream_pointer::PointerState;
/// // A frame of 8 bytes holding 3 bytes of data, at an input pin and at an output pin.
/// for (direction, count) in [(Direction::Input, 3), (Direction::Output, 8)] {
///     let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::from_pin_flags(direction, 0));
///     q.push(vec![0; 8], StreamHeader::with_data(8, 3));
///     let p = q.leading_edge(PointerState::Locked).unwrap();
///     assert_eq!(q.offset(p)?.count, count);
/// }
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KSPIN_DATAFLOW")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `KSPIN_DATAFLOW_IN`: frames carry data to consume (`OffsetIn` counts `DataUsed`).
    Input,
    /// `KSPIN_DATAFLOW_OUT`: frames are buffers to fill (`OffsetOut` counts `FrameExtent`).
    Output,
}

/// How a queue behaves: its pin's direction and the queue-related pin flags.
///
/// ```
/// use ks_graph::queue::{Direction, QueueConfig};
/// let c = QueueConfig::input().with_distinct_trailing_edge();
/// let expected = QueueConfig {
///     direction: Direction::Input,
///     distinct_trailing_edge: true,
///     generate_mappings: false,
/// };
/// assert_eq!(c, expected);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Direction of the owning pin.
    pub direction: Direction,
    /// `KSPIN_FLAG_DISTINCT_TRAILING_EDGE`: keep a trailing edge (behaviour 48).
    pub distinct_trailing_edge: bool,
    /// `KSPIN_FLAG_GENERATE_MAPPINGS`: set `DataUsed = Count − Remaining` when a pointer
    /// leaves a frame (behaviour 59).
    pub generate_mappings: bool,
}

impl QueueConfig {
    /// An input-pin queue with no trailing edge and no mappings.
    ///
    /// ```
    /// use ks_graph::queue::{Direction, QueueConfig};
    /// let c = QueueConfig::input();
    /// assert_eq!(c.direction, Direction::Input);
    /// assert!(!c.distinct_trailing_edge && !c.generate_mappings);
    /// ```
    pub const fn input() -> QueueConfig {
        QueueConfig::from_pin_flags(Direction::Input, 0)
    }

    /// An output-pin queue with no trailing edge and no mappings.
    ///
    /// ```
    /// use ks_graph::queue::{Direction, QueueConfig};
    /// let c = QueueConfig::output();
    /// assert_eq!(c.direction, Direction::Output);
    /// assert_eq!(c, QueueConfig::from_pin_flags(Direction::Output, 0));
    /// ```
    pub const fn output() -> QueueConfig {
        QueueConfig::from_pin_flags(Direction::Output, 0)
    }

    /// The configuration a pin with `KSPIN_DESCRIPTOR_EX.Flags == flags` gets.
    ///
    /// ```
    /// use ks_graph::queue::{Direction, QueueConfig, PIN_FLAG_DISTINCT_TRAILING_EDGE};
    /// let c = QueueConfig::from_pin_flags(Direction::Input, PIN_FLAG_DISTINCT_TRAILING_EDGE);
    /// assert!(c.distinct_trailing_edge && !c.generate_mappings);
    /// ```
    pub const fn from_pin_flags(direction: Direction, flags: u32) -> QueueConfig {
        QueueConfig {
            direction,
            distinct_trailing_edge: flags & PIN_FLAG_DISTINCT_TRAILING_EDGE != 0,
            generate_mappings: flags & PIN_FLAG_GENERATE_MAPPINGS != 0,
        }
    }

    /// The same configuration with a distinct trailing edge.
    ///
    /// ```
    /// use ks_graph::queue::{Queue, QueueConfig};
    /// let q: Queue<Vec<u8>> = Queue::new(QueueConfig::input().with_distinct_trailing_edge());
    /// assert!(q.config().distinct_trailing_edge);
    /// assert!(q.trailing_edge_id().is_some());
    /// ```
    pub const fn with_distinct_trailing_edge(mut self) -> QueueConfig {
        self.distinct_trailing_edge = true;
        self
    }

    /// The same configuration with `GENERATE_MAPPINGS` semantics for `DataUsed`.
    ///
    /// ```
    /// use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// use ks_graph::stream_pointer::PointerState;
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::output().with_generate_mappings());
    /// q.push(vec![0; 16], StreamHeader::empty(16));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// q.advance_offsets_and_unlock(p, 0, 5, true)?; // 5 bytes written, then eject
    /// // Leaving the frame set DataUsed from OffsetOut.
    /// assert_eq!(q.pop_completed().unwrap().header.data_used, 5);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub const fn with_generate_mappings(mut self) -> QueueConfig {
        self.generate_mappings = true;
        self
    }
}

/// A frame that has left its queue, with its header and the status its request completes
/// with (`Ok` normally, the status set by
/// [`Queue::set_status_code`] or `STATUS_CANCELLED` for a cancelled frame).
///
/// ```
/// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// # use ks_graph::stream_pointer::PointerState;
/// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
/// let id = q.push(vec![9; 4], StreamHeader::with_data(4, 4));
/// let lead = q.leading_edge(PointerState::Unlocked).unwrap();
/// q.advance(lead)?; // the leading edge passes the frame: it completes
/// let c = q.pop_completed().unwrap();
/// assert_eq!((c.id, c.frame, c.header.data_used), (id, vec![9; 4], 4));
/// assert!(c.status.is_ok());
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug)]
pub struct Completed<F> {
    /// The frame itself (for an allocator frame: drop it, or pass it on, to recycle it).
    pub frame: F,
    /// Its stream header as last written.
    pub header: StreamHeader,
    /// Which frame of the queue it was.
    pub id: FrameId,
    /// The completion status of the frame's request.
    pub status: Result<(), Status>,
}

/// Where completed frames go when a sink is installed.
///
/// A sink may panic: the frame it was handed is then dropped as the panic unwinds, and the
/// queue is as consistent as after any completion (the sink is called once a frame's
/// bookkeeping is done). An operation that completes several frames ([`Queue::flush`],
/// [`Queue::set_completion_sink`]) is not left half done: it completes them all, each handed
/// to the sink, and then the first panic resumes (as for a panicking cancel callback). A
/// stream-pointer operation completes at most one frame, as its pointer moves or goes; the
/// panic goes on from there (after [`Queue::advance`] of a locked pointer, for instance, the
/// pointer has moved and is unlocked).
///
/// ```
/// use std::sync::mpsc;
/// use ks_graph::queue::{CompletionSink, Queue, QueueConfig, StreamHeader};
/// use ks_graph::stream_pointer::PointerState;
/// let (tx, rx) = mpsc::channel();
/// let sink: CompletionSink<Vec<u8>> = Box::new(move |c| tx.send(c.id).unwrap());
/// let mut q = Queue::new(QueueConfig::input());
/// q.set_completion_sink(sink);
/// let id = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// let lead = q.leading_edge(PointerState::Locked).unwrap();
/// q.unlock(lead, true)?;
/// assert_eq!(rx.try_recv(), Ok(id));
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub type CompletionSink<F> = Box<dyn FnMut(Completed<F>) + Send>;

pub(crate) struct Entry<F> {
    /// The frame; `None` once a completed frame has been taken.
    pub(crate) frame: Option<F>,
    /// The frame has completed (it may still wait here to be taken).
    pub(crate) done: bool,
    pub(crate) header: StreamHeader,
    /// Stream pointers (edges and clones) currently on this frame.
    pub(crate) refs: u32,
    /// Locked stream pointers on this frame.
    pub(crate) locks: u32,
    pub(crate) cancelled: bool,
    /// The failure status the frame completes with (`None`: success). Boxed so that the
    /// common entry stays small and trivially dropped.
    pub(crate) status: Option<Box<Status>>,
}

impl<F> Default for Entry<F> {
    fn default() -> Self {
        Entry {
            frame: None,
            done: true,
            header: StreamHeader::default(),
            refs: 0,
            locks: 0,
            cancelled: false,
            status: None,
        }
    }
}

impl<F> Entry<F> {
    /// Arrived and not completed.
    pub(crate) fn live(&self) -> bool {
        !self.done
    }
}

/// The entries of a queue, oldest first: a ring whose slots are reused in place (a frame's
/// arrival writes the fields of a slot instead of moving a whole entry in), so steady
/// streaming neither allocates nor copies entries around.
pub(crate) struct Ring<F> {
    slots: Vec<Entry<F>>,
    head: usize,
    len: usize,
}

impl<F> Ring<F> {
    fn new() -> Ring<F> {
        Ring {
            slots: Vec::new(),
            head: 0,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The slot of logical index `i` (`i <= len`); the capacity is a power of two, so the
    /// wrap is a mask.
    #[inline]
    fn physical(&self, i: usize) -> usize {
        (self.head + i) & self.slots.len().wrapping_sub(1)
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&Entry<F>> {
        if i < self.len {
            Some(&self.slots[self.physical(i)])
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Entry<F>> {
        if i < self.len {
            let p = self.physical(i);
            Some(&mut self.slots[p])
        } else {
            None
        }
    }

    /// Makes room for `n` entries in all.
    fn reserve(&mut self, n: usize) {
        if n > self.slots.len() {
            self.grow(n);
        }
    }

    fn grow(&mut self, min: usize) {
        // Callers bound `min` (see `Queue::reserve`); the largest power of two is the cap.
        let cap = min
            .max(self.slots.len() * 2)
            .max(4)
            .checked_next_power_of_two()
            .unwrap_or(1 << (usize::BITS - 1));
        let mut slots: Vec<Entry<F>> = Vec::with_capacity(cap);
        for i in 0..self.len {
            let p = self.physical(i);
            slots.push(std::mem::take(&mut self.slots[p]));
        }
        slots.resize_with(cap, Entry::default);
        self.slots = slots;
        self.head = 0;
    }

    /// The slot of a new last entry (its fields are stale; the caller sets them all).
    #[inline]
    fn push_slot(&mut self) -> &mut Entry<F> {
        if self.len == self.slots.len() {
            self.grow(self.len + 1);
        }
        let p = self.physical(self.len);
        self.len += 1;
        &mut self.slots[p]
    }

    #[inline]
    fn front(&self) -> Option<&Entry<F>> {
        self.get(0)
    }

    /// Retires the first entry (its slot is reused later).
    #[inline]
    fn pop_front(&mut self) {
        if self.len > 0 {
            self.head = self.physical(1);
            self.len -= 1;
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry<F>> + '_ {
        (0..self.len).map(move |i| &self.slots[self.physical(i)])
    }
}

/// Counters of one queue, for reports and tests.
///
/// ```
/// use ks_graph::queue::{Queue, QueueConfig, QueueStats, StreamHeader};
/// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
/// let a = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// q.cancel(a)?;
/// let expected = QueueStats { arrived: 2, completed: 1, cancelled: 1 };
/// assert_eq!(q.stats(), expected);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Frames that have arrived.
    pub arrived: u64,
    /// Frames that have completed (including cancelled ones).
    pub completed: u64,
    /// Frames that were cancelled.
    pub cancelled: u64,
}

/// Keeps the status of the first failed end-of-stream frame of a walk.
fn note_lost_end(lost: &mut Option<Status>, header: &StreamHeader, status: Status) {
    if lost.is_none() && header.is_end_of_stream() {
        *lost = Some(status);
    }
}

/// The id the next [`Queue`] gets (0 is never used: it marks an invalid handle).
static NEXT_QUEUE_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// The frame queue of one pin, generic over the frame type `F` (the runtime uses
/// `ks_alloc::Frame`; tests use plain byte vectors).
///
/// Not internally synchronised: the runtime keeps each queue behind its pin's processing
/// mutex, as AVStream does.
///
/// ```
/// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTE };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let mut q = Queue::new(QueueConfig::output());
/// q.push(alloc.try_allocate()?, StreamHeader::empty(64));
/// assert_eq!(alloc.status().allocated_frames, 1);
/// q.flush(); // the frame completes (cancelled) …
/// q.drain_completed().for_each(drop); // … and dropping it returns it to its allocator
/// assert_eq!(alloc.status().allocated_frames, 0);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub struct Queue<F> {
    /// This queue's id, in every [`PointerId`] it hands out (from [`NEXT_QUEUE_ID`]).
    pub(crate) id: u32,
    pub(crate) config: QueueConfig,
    pub(crate) entries: Ring<F>,
    /// Sequence number of `entries[0]`.
    pub(crate) base: u64,
    /// Sequence number the next arriving frame gets; a pointer at `next` is past the end.
    pub(crate) next: u64,
    pub(crate) slots: Vec<Slot>,
    pub(crate) free_slots: Vec<u32>,
    /// Clones in creation order (`KsPinGetFirstCloneStreamPointer` / `GetNextClone`).
    pub(crate) clones: Vec<PointerId>,
    pub(crate) leading: PointerId,
    pub(crate) trailing: Option<PointerId>,
    /// Pointers sitting past the last frame; they land on the next frame to arrive.
    pub(crate) at_end: u32,
    /// Completed frames not yet taken, by sequence number, in completion order (the frames
    /// wait in their entries).
    completed: VecDeque<u64>,
    sink: Option<CompletionSink<F>>,
    /// The status of the first end-of-stream frame that completed with an error or was
    /// cancelled and was dropped by [`forward_completed`](Self::forward_completed) or
    /// [`discard_completed`](Self::discard_completed) (taken by
    /// [`take_failed_end_of_stream`](Self::take_failed_end_of_stream)).
    failed_end_of_stream: Option<Status>,
    pub(crate) stats: QueueStats,
    /// Stream-pointer timeouts (`timeout.rs`).
    pub(crate) timeouts: Timeouts<F>,
}

impl<F> fmt::Debug for Queue<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("config", &self.config)
            .field("frames", &self.len())
            .field("first", &self.base)
            .field("next", &self.next)
            .field("clones", &self.clones.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<F> Queue<F> {
    /// An empty queue. Its leading edge exists from the start (unlocked, on no frame); its
    /// trailing edge exists only with `distinct_trailing_edge`.
    ///
    /// ```
    /// use ks_graph::queue::{Queue, QueueConfig};
    /// use ks_graph::stream_pointer::PointerState;
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// assert!(q.is_empty());
    /// let lead = q.leading_edge(PointerState::Unlocked).unwrap(); // always there
    /// assert_eq!(q.frame_id(lead)?, None); // on no frame
    /// assert_eq!(q.trailing_edge_id(), None);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn new(config: QueueConfig) -> Queue<F> {
        let mut q = Queue {
            // Relaxed: only uniqueness matters. After 2³² queues the ids wrap (0 skipped), and
            // a handle could again be mistaken between two queues created that far apart.
            id: loop {
                let id = NEXT_QUEUE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if id != 0 {
                    break id;
                }
            },
            config,
            entries: Ring::new(),
            base: 0,
            next: 0,
            slots: Vec::new(),
            free_slots: Vec::new(),
            clones: Vec::new(),
            leading: PointerId::INVALID,
            trailing: None,
            at_end: 0,
            completed: VecDeque::new(),
            sink: None,
            failed_end_of_stream: None,
            stats: QueueStats::default(),
            timeouts: Timeouts::new(),
        };
        q.leading = q.insert_pointer(PointerData::new(PointerKind::LeadingEdge, 0));
        if config.distinct_trailing_edge {
            q.trailing = Some(q.insert_pointer(PointerData::new(PointerKind::TrailingEdge, 0)));
        }
        q
    }

    /// Reserves room so that `frames` frames and `clones` clones fit without reallocating
    /// (the runtime calls this once, so steady-state streaming allocates nothing). Counts above
    /// 131 072 (2¹⁷, twice what one allocator holds) are capped: a hint, not a promise.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.reserve(8, 2); // room for 8 frames and 2 clones
    /// for i in 0..8 {
    ///     q.push(vec![i; 4], StreamHeader::with_data(4, 4));
    /// }
    /// assert_eq!(q.len(), 8);
    /// ```
    pub fn reserve(&mut self, frames: usize, clones: usize) {
        // A hint, not a promise: counts beyond what a queue can ever hold (one allocator's
        // frames, a pointer per frame and then some) are capped, not attempted.
        const MOST: usize = 1 << 17;
        let (frames, clones) = (frames.min(MOST), clones.min(MOST));
        self.entries.reserve(frames);
        self.completed.reserve(frames);
        self.slots.reserve(clones);
        self.free_slots.reserve(clones);
        self.clones.reserve(clones);
    }

    /// The queue's configuration.
    ///
    /// ```
    /// use ks_graph::queue::{Queue, QueueConfig};
    /// let q: Queue<Vec<u8>> = Queue::new(QueueConfig::output().with_generate_mappings());
    /// assert!(q.config().generate_mappings);
    /// ```
    pub fn config(&self) -> QueueConfig {
        self.config
    }

    /// Arrival / completion counters.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.unlock(lead, true)?;
    /// let s = q.stats();
    /// assert_eq!((s.arrived, s.completed, s.cancelled), (1, 1, 0));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    /// Frames in the queue (arrived, not completed).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.unlock(lead, true)?; // the first frame completes and leaves
    /// assert_eq!(q.len(), 1);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.live()).count()
    }

    /// Whether no frame is in the queue.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// assert!(q.is_empty());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// assert!(!q.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames at or ahead of the leading edge that are not cancelled: the work the pin's
    /// process callback has not reached yet.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// for i in 0..3 {
    ///     q.push(vec![i; 4], StreamHeader::with_data(4, 4));
    /// }
    /// assert_eq!(q.frames_ahead(), 3);
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.unlock(lead, true)?; // one frame processed
    /// assert_eq!(q.frames_ahead(), 2);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn frames_ahead(&self) -> usize {
        let lead = self.pos(self.leading);
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, e)| self.base + *i as u64 >= lead && e.live() && !e.cancelled)
            .count()
    }

    /// Bytes of input data and of output buffer space in the frames at and ahead of the
    /// leading edge, as `(input_bytes, output_bytes)`: on the edge's own frame, the edge's
    /// `OffsetIn.Remaining` and `OffsetOut.Remaining`.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 16], StreamHeader::with_data(16, 10));
    /// q.push(vec![0; 16], StreamHeader::with_data(16, 6));
    /// assert_eq!(q.available_bytes(), (16, 32));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.advance_offsets(lead, 4, 0, false)?; // 4 input bytes consumed
    /// assert_eq!(q.available_bytes(), (12, 32));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsPinGetAvailableByteCount")]
    pub fn available_bytes(&self) -> (u64, u64) {
        let lead = self.pos(self.leading);
        let mut input = 0u64;
        let mut output = 0u64;
        for (i, e) in self.entries.iter().enumerate() {
            let seq = self.base + i as u64;
            if seq < lead || !e.live() || e.cancelled {
                continue;
            }
            // The edge's frame counts what remains of it for the edge (its `Remaining`s).
            let (remaining_in, remaining_out) = if seq == lead {
                let p = self.ptr(self.leading);
                (
                    p.count_in.saturating_sub(p.consumed_in),
                    p.count_out.saturating_sub(p.consumed_out),
                )
            } else {
                (e.header.input_count(), e.header.frame_extent)
            };
            input += u64::from(remaining_in);
            output += u64::from(remaining_out);
        }
        (input, output)
    }

    /// A frame arrives at the pin: it is appended to the queue. Pointers past the end (the
    /// leading edge of an empty queue in particular) now reference it (behaviour 49).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let lead = q.leading_edge_id();
    /// assert_eq!(q.frame_id(lead)?, None);
    /// let id = q.push(vec![0; 8], StreamHeader::with_data(8, 8));
    /// // The leading edge, past the end of the empty queue, now references the new frame.
    /// assert_eq!(q.frame_id(lead)?, Some(id));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[inline]
    pub fn push(&mut self, frame: F, header: StreamHeader) -> FrameId {
        self.push_from(&mut Some(frame), header)
    }

    /// [`push`](Self::push) of the frame in `slot`, which is left empty: the frame moves
    /// from one queue's entry straight into another's (the runtime's hot path), without
    /// passing through the stack.
    #[inline]
    fn push_from(&mut self, slot: &mut Option<F>, header: StreamHeader) -> FrameId {
        let seq = self.next;
        let refs = self.at_end;
        let e = self.entries.push_slot();
        // A free slot holds no frame (frames leave their entries before the entries are
        // retired), so the swap leaves `slot` empty.
        std::mem::swap(&mut e.frame, slot);
        e.done = false;
        e.header = header;
        e.refs = refs;
        e.locks = 0;
        e.cancelled = false;
        e.status = None;
        if refs > 0 {
            self.land(seq, refs, &header);
        }
        self.at_end = 0;
        self.next += 1;
        self.stats.arrived += 1;
        *slot = None;
        FrameId(seq)
    }

    /// The `refs` pointers that were past the end have landed on frame `seq`, which just
    /// arrived with `header`: they take its `Count`s, as any pointer arriving on a frame.
    fn land(&mut self, seq: u64, refs: u32, header: &StreamHeader) {
        let mut left = refs;
        let edges = [Some(self.leading), self.trailing].into_iter().flatten();
        for id in edges.chain(self.clones.iter().copied()) {
            let p = pointer_mut(&mut self.slots, id);
            if p.pos == seq {
                p.take_counts(Some(header));
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
    }

    /// The header of a frame still in the queue (no lock needed to look).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let id = q.push(vec![0; 8], StreamHeader::with_data(8, 5));
    /// assert_eq!(q.frame_header(id).map(|h| h.data_used), Some(5));
    /// ```
    pub fn frame_header(&self, id: FrameId) -> Option<&StreamHeader> {
        self.entry(id.0).map(|e| &e.header)
    }

    /// Whether a frame is still in the queue.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let id = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// assert!(q.contains(id));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.unlock(lead, true)?; // completes the frame
    /// assert!(!q.contains(id));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn contains(&self, id: FrameId) -> bool {
        self.entry(id.0).is_some()
    }

    /// Whether a frame still in the queue has been cancelled.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let id = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// let clone = q.clone_pointer(lead, None, 0)?; // holds the frame
    /// assert_eq!(q.is_cancelled(id), Some(false));
    /// q.cancel(id)?;
    /// assert_eq!(q.is_cancelled(id), Some(true)); // still held by the clone
    /// q.delete(clone)?;
    /// assert_eq!(q.is_cancelled(id), None); // completed: no longer in the queue
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn is_cancelled(&self, id: FrameId) -> Option<bool> {
        self.entry(id.0).map(|e| e.cancelled)
    }

    /// Installs the sink that receives every frame as it completes. Frames completed before
    /// the sink was installed are passed to it at once, in completion order.
    ///
    /// # Panics
    /// If the sink panics on one of those frames: the others are still passed to it and the
    /// sink is installed, then the first panic resumes.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let lead = q.leading_edge_id();
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// q.advance(lead)?; // frame 0 completes and waits
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// q.set_completion_sink(Box::new(move |c| tx.send(c.id.sequence()).unwrap()));
    /// q.push(vec![1; 4], StreamHeader::with_data(4, 4));
    /// q.advance(lead)?; // frame 1 goes to the sink as it completes
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1]);
    /// assert!(q.pop_completed().is_none());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn set_completion_sink(&mut self, mut sink: CompletionSink<F>) {
        let mut panicked = None;
        while let Some(c) = self.pop_completed() {
            keep_panic(&mut panicked, || sink(c));
        }
        self.sink = Some(sink);
        resume_panic(panicked);
    }

    /// Removes the completion sink; later completions are kept for [`Queue::pop_completed`].
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.set_completion_sink(Box::new(|_| {}));
    /// assert!(q.take_completion_sink().is_some());
    /// let lead = q.leading_edge_id();
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// q.advance(lead)?;
    /// assert_eq!(q.completed_len(), 1); // kept for pop_completed
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn take_completion_sink(&mut self) -> Option<CompletionSink<F>> {
        self.sink.take()
    }

    /// The oldest completed frame not yet taken (only used without a sink).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let a = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let b = q.push(vec![1; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// q.advance(lead)?;
    /// q.advance(lead)?;
    /// assert_eq!(q.pop_completed().map(|c| c.id), Some(a));
    /// assert_eq!(q.pop_completed().map(|c| c.id), Some(b));
    /// assert!(q.pop_completed().is_none());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn pop_completed(&mut self) -> Option<Completed<F>> {
        loop {
            let seq = self.completed.pop_front()?;
            if let Some(c) = self.take_completed(seq) {
                return Some(c);
            }
        }
    }

    /// All completed frames not yet taken, oldest first (taken as the iterator advances).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let lead = q.leading_edge_id();
    /// for i in 0..3 {
    ///     q.push(vec![i; 4], StreamHeader::with_data(4, 4));
    ///     q.advance(lead)?;
    /// }
    /// let done: Vec<u8> = q.drain_completed().map(|c| c.frame[0]).collect();
    /// assert_eq!(done, [0, 1, 2]);
    /// assert_eq!(q.completed_len(), 0);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn drain_completed(&mut self) -> impl Iterator<Item = Completed<F>> + '_ {
        std::iter::from_fn(move || self.pop_completed())
    }

    /// Moves every completed frame into `to`, as arrivals there, oldest first; frames that
    /// completed with a failure status (cancelled) are dropped instead. The same as
    /// `for c in self.drain_completed() { to.push(c.frame, c.header) }`, without building a
    /// [`Completed`] per frame (the runtime's hot path). Returns how many frames moved.
    ///
    /// ```
    /// use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// use ks_graph::stream_pointer::PointerState;
    /// let mut output: Queue<Vec<u8>> = Queue::new(QueueConfig::output());
    /// let mut input: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// output.push(vec![7; 4], StreamHeader::empty(4));
    /// let p = output.leading_edge(PointerState::Locked).unwrap();
    /// output.header_mut(p)?.data_used = 4; // filled
    /// output.unlock(p, true)?;
    /// assert_eq!(output.forward_completed(&mut input), 1);
    /// let lead = input.leading_edge(PointerState::Locked).unwrap();
    /// assert_eq!(input.remaining_data(lead)?, &[7; 4]);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    // Out of line, as it was compiled before it shared `retire_completed`: inlined into the
    // runtime's delivery code (which the helper's closure made the compiler do), the
    // testsrc ! identity ! nullsink run measured a few percent slower.
    #[inline(never)]
    pub fn forward_completed(&mut self, to: &mut Queue<F>) -> usize {
        let mut lost_end = None;
        let n = self.retire_completed(|e| {
            let failed = e.status.take();
            if e.frame.is_none() {
                false
            } else if let Some(status) = failed {
                note_lost_end(&mut lost_end, &e.header, *status);
                e.frame = None; // dropped in place: back to its allocator
                false
            } else {
                to.push_from(&mut e.frame, e.header);
                true
            }
        });
        self.keep_lost_end(lost_end);
        n
    }

    /// The status of an end-of-stream frame this queue completed with an error (or
    /// cancelled) and dropped in [`forward_completed`](Self::forward_completed) or
    /// [`discard_completed`](Self::discard_completed), once: the stream then cannot end
    /// downstream, which the caller must report (the runtime fails the run with it).
    ///
    /// ```
    /// use ks_alloc::Status;
    /// use ks_graph::queue::{OPTIONSF_END_OF_STREAM, Queue, QueueConfig, StreamHeader};
    /// use ks_graph::stream_pointer::PointerState;
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let mut last = StreamHeader::with_data(4, 4);
    /// last.options_flags |= OPTIONSF_END_OF_STREAM;
    /// q.push(vec![0; 4], last);
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// q.set_status_code(p, Err(Status::DeviceNotReady("unplugged".into())))?;
    /// q.unlock(p, true)?;
    /// assert_eq!(q.discard_completed(), 0);
    /// assert!(matches!(q.take_failed_end_of_stream(), Some(Status::DeviceNotReady(_))));
    /// assert!(q.take_failed_end_of_stream().is_none(), "reported once");
    /// # Ok::<(), Status>(())
    /// ```
    pub fn take_failed_end_of_stream(&mut self) -> Option<Status> {
        self.failed_end_of_stream.take()
    }

    fn keep_lost_end(&mut self, lost: Option<Status>) {
        if self.failed_end_of_stream.is_none() {
            self.failed_end_of_stream = lost;
        }
    }

    /// Drops every completed frame (for an allocator frame: returns it to its allocator);
    /// returns how many completed successfully. The end of the line for a sink's queue,
    /// without building a [`Completed`] per frame.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let b = q.push(vec![1; 4], StreamHeader::with_data(4, 4));
    /// q.cancel(b)?; // completes with STATUS_CANCELLED
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.unlock(lead, true)?; // completes frame 0 normally
    /// assert_eq!(q.discard_completed(), 1); // both dropped, one of them a success
    /// assert_eq!(q.completed_len(), 0);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    // Out of line for the same reason as `forward_completed`.
    #[inline(never)]
    pub fn discard_completed(&mut self) -> usize {
        let mut lost_end = None;
        let n = self.retire_completed(|e| {
            let failed = e.status.take();
            let ok = failed.is_none() && e.frame.is_some();
            if let Some(status) = failed {
                note_lost_end(&mut lost_end, &e.header, *status);
            }
            // Dropped in place (an allocator frame goes back to its allocator).
            e.frame = None;
            ok
        });
        self.keep_lost_end(lost_end);
        n
    }

    /// The walk [`forward_completed`](Self::forward_completed) and
    /// [`discard_completed`](Self::discard_completed) share: hands every entry of the
    /// completed list that is still in the queue and done to `each`, oldest first, retiring
    /// the entries at the front after each (`each` must leave the entry's frame taken or
    /// dropped), then empties the completed list. Returns for how many entries `each`
    /// returned `true`.
    #[inline]
    fn retire_completed(&mut self, mut each: impl FnMut(&mut Entry<F>) -> bool) -> usize {
        let mut counted = 0;
        let (first, second) = self.completed.as_slices();
        for &seq in first.iter().chain(second) {
            let Some(e) = seq
                .checked_sub(self.base)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| self.entries.get_mut(i))
            else {
                continue;
            };
            if !e.done {
                continue;
            }
            if each(e) {
                counted += 1;
            }
            retire_front(&mut self.entries, &mut self.base);
        }
        self.completed.clear();
        counted
    }

    /// Takes the completed frame `seq` out of its entry and retires the entries at the
    /// front that are done and taken.
    fn take_completed(&mut self, seq: u64) -> Option<Completed<F>> {
        let idx = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        let e = self.entries.get_mut(idx)?;
        if !e.done {
            return None;
        }
        let frame = e.frame.take()?;
        let status = match e.status.take() {
            None => Ok(()),
            Some(b) => Err(*b),
        };
        let done = Completed {
            frame,
            header: e.header,
            id: FrameId(seq),
            status,
        };
        self.retire_front();
        Some(done)
    }

    #[inline]
    fn retire_front(&mut self) {
        retire_front(&mut self.entries, &mut self.base);
    }

    /// Whether the leading edge is the queue's only stream pointer (no clones, no trailing
    /// edge), nothing rewrites `DataUsed` and no completion sink is installed: then a frame
    /// completes exactly when the leading edge leaves it, and
    /// [`eject_leading`](Queue::eject_leading) takes [`eject_leading_alone`](Queue::eject_leading_alone)'s path.
    pub(crate) fn leading_edge_alone(&self) -> bool {
        self.clones.is_empty()
            && self.trailing.is_none()
            && !self.config.generate_mappings
            && self.sink.is_none()
    }

    /// [`Queue::eject_leading`] when [`leading_edge_alone`](Self::leading_edge_alone) holds:
    /// the same end state, reached with one entry access per frame. The frames the edge
    /// passes hold no other pointer, so each completes as the edge leaves it, in order.
    ///
    /// Whenever `work` runs, the queue is exactly as the step-by-step loop has it: the edge
    /// locked on the frame, its reference and lock counted there, every completion so far
    /// counted. So a `work` that fails, or panics, leaves the edge locked on its frame with
    /// nothing to write back, and the next call resumes there. Only between frames (no
    /// caller code runs) is the edge's reference counted nowhere; the loop's end puts it on
    /// the frame the edge stopped at.
    pub(crate) fn eject_leading_alone<E>(
        &mut self,
        limit: usize,
        work: &mut impl FnMut(AtEdge<'_, F>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let next = self.next;
        // Borrowed apart from the entries and counters, so it can be written per frame.
        let p = pointer_mut(&mut self.slots, self.leading);
        let mut pos = p.pos;
        let mut n = 0;
        // The edge sits on a live, non-cancelled frame or past the end (queue invariant), so
        // `pos >= base` and every position visited below is such a frame.
        while n < limit && pos < next {
            let idx = (pos - self.base) as usize;
            let Some(e) = self.entries.get_mut(idx) else {
                break; // unreachable: frames before `next` have entries
            };
            let Some(frame) = e.frame.as_mut() else {
                break; // unreachable: a live frame is in its entry
            };
            if n > 0 {
                // The edge arrives on this frame (it left the previous one below).
                e.refs += 1;
                p.arrive(pos, Some(&e.header));
            }
            if !p.locked {
                p.locked = true;
                e.locks += 1;
            }
            work(AtEdge {
                header: &mut e.header,
                frame,
            })?;
            // Eject: the edge's lock and reference leave the frame; nothing else holds it.
            e.locks -= 1;
            e.refs -= 1;
            p.locked = false;
            if e.refs == 0 {
                e.done = true;
                self.stats.completed += 1;
                self.completed.push_back(pos);
            }
            n += 1;
            pos = match self.entries.get(idx + 1) {
                Some(e) if e.live() && !e.cancelled => pos + 1,
                _ => next_live_after(&self.entries, self.base, next, pos),
            };
        }
        if n > 0 {
            // The edge lands where it stopped: on a frame, or past the end.
            self.put_pointer(self.leading, pos);
        }
        Ok(n)
    }

    /// Completed frames waiting to be taken.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.unlock(lead, true)?;
    /// assert_eq!(q.completed_len(), 1);
    /// q.pop_completed();
    /// assert_eq!(q.completed_len(), 0);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn completed_len(&self) -> usize {
        self.completed.len()
    }

    /// Stops the queue (the pin leaves ACQUIRE for STOP, or is reset): cancels every
    /// stream-pointer timeout, deletes every clone, unlocks the edges, moves them past the
    /// end, and completes every frame still queued, with `STATUS_CANCELLED` for the frames
    /// no edge had passed. Before it goes, each unlocked clone on a frame this cancels has
    /// its cancel callback called, as for any cancellation (behaviour 56); its
    /// [`CancelAction`](crate::stream_pointer::CancelAction) is not applied, since every
    /// clone is deleted. Returns how many frames this completed.
    ///
    /// # Panics
    /// If a cancel callback or the completion sink panics: once the flush is complete (every
    /// clone deleted, every frame completed and, with a sink, handed to it), the first panic
    /// resumes.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// for i in 0..3 {
    ///     q.push(vec![i; 4], StreamHeader::with_data(4, 4));
    /// }
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.unlock(lead, true)?; // frame 0 processed and completed
    /// assert_eq!(q.flush(), 2); // frames 1 and 2, never reached
    /// let ok: Vec<bool> = q.drain_completed().map(|c| c.status.is_ok()).collect();
    /// assert_eq!(ok, [true, false, false]);
    /// assert!(q.is_empty());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "AVStrMiniPinReset")]
    pub fn flush(&mut self) -> usize {
        let before = self.stats.completed;
        self.timeouts.clear();
        let lead = self.pos(self.leading);
        // The frames this flush cancels are those at or past the leading edge: an unlocked
        // clone on one is told, as on any cancellation (behaviour 56), before it goes.
        let clones: Vec<PointerId> = std::mem::take(&mut self.clones);
        let mut panicked = None;
        for &c in &clones {
            let p = self.ptr(c);
            let (Some(cb), false) = (p.cancel, p.locked) else {
                continue;
            };
            let (pos, context) = (p.pos, p.context);
            if pos < lead || self.entry(pos).is_none_or(|e| e.cancelled) {
                continue;
            }
            let notice = CancelNotice {
                pointer: c,
                frame: FrameId(pos),
                context,
            };
            // Whatever it answers, the clone goes: the queue is stopping. A callback that
            // panics does not stop the flush half-way: the panic resumes once it is done.
            keep_panic(&mut panicked, || {
                cb(&notice);
            });
        }
        // From here on, each step that may complete frames may call a sink that panics: the
        // same rule, the flush goes on.
        for c in clones {
            keep_panic(&mut panicked, || self.remove_pointer_unchecked(c));
        }
        let edges = [Some(self.leading), self.trailing];
        for e in edges.into_iter().flatten() {
            self.unlock_unchecked(e);
        }
        for seq in self.base..self.next {
            let Some(e) = self.entry_mut(seq) else {
                continue;
            };
            if seq >= lead && !e.cancelled {
                e.cancelled = true;
                e.status = Some(Box::new(Status::Cancelled));
                self.stats.cancelled += 1;
            }
        }
        for e in edges.into_iter().flatten() {
            let end = self.next;
            keep_panic(&mut panicked, || self.move_pointer(e, end));
        }
        for seq in self.base..self.next {
            keep_panic(&mut panicked, || self.try_complete(seq));
        }
        resume_panic(panicked);
        (self.stats.completed - before) as usize
    }

    /// Checks the queue's internal bookkeeping (reference and lock counts against the
    /// pointers, edges on live frames, offsets within their `Count`). For tests and
    /// debugging; returns the first inconsistency found.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let lead = q.leading_edge_id();
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// q.clone_pointer(lead, None, 0)?;
    /// q.advance(lead)?;
    /// assert_eq!(q.check_invariants(), Ok(()));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut refs = vec![0u32; self.entries.len()];
        let mut locks = vec![0u32; self.entries.len()];
        let mut at_end = 0u32;
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(p) = &slot.ptr else { continue };
            if p.consumed_in > p.count_in || p.consumed_out > p.count_out {
                return Err(format!(
                    "pointer {i} processed more than its offsets' Count"
                ));
            }
            if p.pos >= self.next {
                if (p.count_in, p.count_out) != (0, 0) {
                    return Err(format!("pointer {i} past the end counts bytes"));
                }
                if p.pos != self.next {
                    return Err(format!("pointer {i} beyond the end: {}", p.pos));
                }
                if p.locked {
                    return Err(format!("pointer {i} locked past the end"));
                }
                at_end += 1;
                continue;
            }
            if p.pos < self.base {
                return Err(format!("pointer {i} on a retired frame {}", p.pos));
            }
            let idx = (p.pos - self.base) as usize;
            let Some(e) = self.entries.get(idx) else {
                return Err(format!("pointer {i} beyond the entries: {}", p.pos));
            };
            if !e.live() {
                return Err(format!("pointer {i} on completed frame {}", p.pos));
            }
            if p.kind != PointerKind::Clone && e.cancelled {
                return Err(format!("edge {i} on cancelled frame {}", p.pos));
            }
            if p.locked && e.cancelled {
                return Err(format!("pointer {i} locked on cancelled frame {}", p.pos));
            }
            refs[idx] += 1;
            if p.locked {
                locks[idx] += 1;
            }
        }
        if at_end != self.at_end {
            return Err(format!(
                "at_end is {} but {} pointers are there",
                self.at_end, at_end
            ));
        }
        for (idx, e) in self.entries.iter().enumerate() {
            let seq = self.base + idx as u64;
            if !e.live() {
                if idx == 0 && e.frame.is_none() {
                    return Err("retired entry left at the front".into());
                }
                continue;
            }
            if e.refs != refs[idx] || e.locks != locks[idx] {
                return Err(format!(
                    "frame {seq}: refs {} locks {} but pointers say {} / {}",
                    e.refs, e.locks, refs[idx], locks[idx]
                ));
            }
            if self.completes_now(seq) {
                return Err(format!("frame {seq} should have completed"));
            }
        }
        if self.stats.completed + self.len() as u64 != self.stats.arrived {
            return Err("arrived != completed + queued".into());
        }
        self.timeouts.check(|p| self.kind(p).is_ok())
    }

    // ---- internals shared with stream_pointer.rs ----

    #[inline]
    pub(crate) fn entry(&self, seq: u64) -> Option<&Entry<F>> {
        if seq < self.base {
            return None;
        }
        // `try_from`: on a 32-bit target, a sequence number 2³² past the base must not
        // alias an entry.
        self.entries
            .get(usize::try_from(seq - self.base).ok()?)
            .filter(|e| e.live())
    }

    #[inline]
    pub(crate) fn entry_mut(&mut self, seq: u64) -> Option<&mut Entry<F>> {
        live_entry_mut(&mut self.entries, self.base, seq)
    }

    /// Position of a live pointer (callers pass ids they know are live).
    pub(crate) fn pos(&self, id: PointerId) -> u64 {
        self.ptr(id).pos
    }

    #[inline]
    pub(crate) fn ptr(&self, id: PointerId) -> &PointerData {
        match self
            .slots
            .get(id.index as usize)
            .and_then(|s| s.ptr.as_ref())
        {
            Some(p) => p,
            None => unreachable_pointer(),
        }
    }

    #[inline]
    pub(crate) fn ptr_mut(&mut self, id: PointerId) -> &mut PointerData {
        pointer_mut(&mut self.slots, id)
    }

    pub(crate) fn insert_pointer(&mut self, data: PointerData) -> PointerId {
        let pos = data.pos;
        if pos >= self.next {
            self.at_end += 1;
        } else if let Some(e) = self.entry_mut(pos) {
            e.refs += 1;
            if data.locked {
                e.locks += 1;
            }
        }
        match self.free_slots.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.ptr = Some(data);
                PointerId {
                    queue: self.id,
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                let index = self.slots.len() as u32;
                self.slots.push(Slot {
                    generation: 0,
                    ptr: Some(data),
                });
                PointerId {
                    queue: self.id,
                    index,
                    generation: 0,
                }
            }
        }
    }

    /// Removes a live pointer, dropping its frame reference (and lock), and completes the
    /// frame if that was its last reference.
    pub(crate) fn remove_pointer_unchecked(&mut self, id: PointerId) {
        self.timeouts.remove(id);
        self.unlock_unchecked(id);
        let pos = self.pos(id);
        if pos >= self.next {
            self.at_end -= 1;
        } else if let Some(e) = self.entry_mut(pos) {
            e.refs -= 1;
        }
        let slot = &mut self.slots[id.index as usize];
        slot.ptr = None;
        // A slot whose generation would wrap is retired instead of reused, so that a handle
        // deleted 2³² reuses ago can never name a live pointer again.
        if let Some(g) = slot.generation.checked_add(1) {
            slot.generation = g;
            self.free_slots.push(id.index);
        }
        self.try_complete(pos);
    }

    pub(crate) fn unlock_unchecked(&mut self, id: PointerId) {
        let p = self.ptr_mut(id);
        if !p.locked {
            return;
        }
        p.locked = false;
        let pos = p.pos;
        if let Some(e) = self.entry_mut(pos) {
            e.locks -= 1;
        }
    }

    /// Moves an unlocked live pointer to `new` (≥ its position), keeping reference counts,
    /// applying the `GENERATE_MAPPINGS` `DataUsed` rule to the frame it leaves, starting its
    /// offsets over with the `Count`s of the frame it arrives on, and completing the frames
    /// the move released.
    pub(crate) fn move_pointer(&mut self, id: PointerId, new: u64) {
        let generate = self.config.generate_mappings;
        let direction = self.config.direction;
        let next = self.next;
        let p = pointer_mut(&mut self.slots, id);
        let old = p.pos;
        if old == new {
            return;
        }
        let used = p.pin_offset_consumed(direction);
        let kind = p.kind;
        if old >= next {
            self.at_end -= 1;
        } else if let Some(e) = live_entry_mut(&mut self.entries, self.base, old) {
            e.refs -= 1;
            if generate {
                e.header.data_used = used;
            }
        }
        self.put_pointer(id, new);
        match kind {
            // An edge moving releases every frame it passed.
            PointerKind::LeadingEdge | PointerKind::TrailingEdge => {
                self.try_complete_range(old..new.min(next));
            }
            PointerKind::Clone => self.try_complete(old),
        }
    }

    /// Puts live pointer `id`, whose reference no frame counts, on `pos`: counts its
    /// reference on that frame, or among the pointers past the end, and starts its offsets
    /// over with the `Count`s of the frame (none past the end).
    fn put_pointer(&mut self, id: PointerId, pos: u64) {
        let p = pointer_mut(&mut self.slots, id);
        if pos >= self.next {
            self.at_end += 1;
            p.arrive(pos, None);
        } else if let Some(e) = live_entry_mut(&mut self.entries, self.base, pos) {
            e.refs += 1;
            p.arrive(pos, Some(&e.header));
        } else {
            p.arrive(pos, None); // unreachable: pointers only land on live frames
        }
    }

    /// The first live, non-cancelled frame after `pos`, or the end.
    pub(crate) fn next_live_after(&self, pos: u64) -> u64 {
        next_live_after(&self.entries, self.base, self.next, pos)
    }

    fn completes_now(&self, seq: u64) -> bool {
        let Some(e) = self.entry(seq) else {
            return false;
        };
        if e.refs > 0 {
            return false;
        }
        if e.cancelled {
            return true;
        }
        if seq >= self.pos(self.leading) {
            return false;
        }
        match self.trailing {
            Some(t) => seq < self.pos(t),
            None => true,
        }
    }

    /// [`try_complete`](Self::try_complete) on each frame of `seqs`, in order. A completion
    /// sink that panics does not leave the rest undone: every frame is tried, then the first
    /// panic resumes. (An edge moving past the frames `seqs` releases one live frame, except
    /// in [`Queue::flush`]; the rest is a safety net.)
    fn try_complete_range(&mut self, seqs: std::ops::Range<u64>) {
        if self.sink.is_none() {
            // Nothing here can panic: no need to catch (the hot path).
            for seq in seqs {
                self.try_complete(seq);
            }
            return;
        }
        let mut panicked = None;
        for seq in seqs {
            keep_panic(&mut panicked, || self.try_complete(seq));
        }
        resume_panic(panicked);
    }

    /// Completes frame `seq` if nothing holds it any more (behaviours 51–52).
    pub(crate) fn try_complete(&mut self, seq: u64) {
        // The same rule as `completes_now`, with one entry lookup (hot path).
        let lead = self.pos(self.leading);
        let trail = self.trailing.map(|t| self.pos(t));
        let Some(idx) = seq
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        let Some(e) = self.entries.get_mut(idx) else {
            return;
        };
        if !e.live() || e.refs > 0 {
            return;
        }
        if !e.cancelled && (seq >= lead || trail.is_some_and(|t| seq >= t)) {
            return;
        }
        e.done = true;
        self.finish_completion(seq);
    }

    /// Counts the completion of frame `seq` (its entry just marked done) and hands it to the
    /// sink, or queues it for [`Queue::pop_completed`]. The sink is called last, with the
    /// queue consistent, so that a sink that panics leaves nothing half done here.
    #[inline]
    pub(crate) fn finish_completion(&mut self, seq: u64) {
        self.stats.completed += 1;
        if self.sink.is_some() {
            if let Some(c) = self.take_completed(seq) {
                if let Some(sink) = &mut self.sink {
                    sink(c);
                }
            }
        } else {
            self.completed.push_back(seq);
        }
    }
}

/// Retires the entries at the front that are done and whose frame was taken (`base` is the
/// sequence number of the first entry).
#[inline]
fn retire_front<F>(entries: &mut Ring<F>, base: &mut u64) {
    while entries.front().is_some_and(|e| e.done && e.frame.is_none()) {
        entries.pop_front();
        *base += 1;
    }
}

/// A panic caught to be resumed later, once the operation it interrupted is complete.
type Panic = Box<dyn std::any::Any + Send>;

/// Runs `f`, keeping its panic (if it is the first) in `panicked` instead of unwinding, so
/// that the caller can finish its operation first and then [`resume_panic`]. Only for code
/// that leaves the queue consistent when it panics: the callbacks (cancel callbacks, the
/// completion sink) are called once the queue's bookkeeping is done.
pub(crate) fn keep_panic(panicked: &mut Option<Panic>, f: impl FnOnce()) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        panicked.get_or_insert(p);
    }
}

/// Resumes the panic [`keep_panic`] kept, if any.
pub(crate) fn resume_panic(panicked: Option<Panic>) {
    if let Some(p) = panicked {
        std::panic::resume_unwind(p);
    }
}

/// The first live, non-cancelled frame after `pos`, or `next` (the end), in `entries`
/// whose first entry is frame `base`: [`Queue::next_live_after`] on borrowed fields.
fn next_live_after<F>(entries: &Ring<F>, base: u64, next: u64, pos: u64) -> u64 {
    let mut seq = (pos + 1).max(base);
    while seq < next {
        let e = usize::try_from(seq - base)
            .ok()
            .and_then(|i| entries.get(i));
        if e.is_some_and(|e| e.live() && !e.cancelled) {
            return seq;
        }
        seq += 1;
    }
    next
}

/// The entry of live frame `seq` in `entries` whose first entry is frame `base`:
/// [`Queue::entry_mut`] on borrowed fields.
#[inline]
fn live_entry_mut<F>(entries: &mut Ring<F>, base: u64, seq: u64) -> Option<&mut Entry<F>> {
    if seq < base {
        return None;
    }
    // `try_from`: on a 32-bit target, a sequence number 2³² past the base must not alias an
    // entry.
    entries
        .get_mut(usize::try_from(seq - base).ok()?)
        .filter(|e| e.live())
}

/// The live pointer `id` in `slots`: [`Queue::ptr_mut`] on a borrowed field, so that a
/// caller can hold it while it changes the entries.
#[inline]
fn pointer_mut(slots: &mut [Slot], id: PointerId) -> &mut PointerData {
    match slots
        .get_mut(id.index as usize)
        .and_then(|s| s.ptr.as_mut())
    {
        Some(p) => p,
        None => unreachable_pointer(),
    }
}

#[cold]
fn unreachable_pointer() -> ! {
    // Internal callers only pass ids validated by `stream_pointer::Queue::check`; reaching
    // this is a bug in this module, not a user error.
    panic!("ks-graph queue: internal stream pointer id used after removal")
}
