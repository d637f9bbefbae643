//! Stream pointers: positions in a pin's [`Queue`] (KS `KSSTREAM_POINTER`, ks-spec.md §8).
//!
//! A stream pointer is a [`PointerId`] handle into its queue; every KS stream-pointer
//! function is a method of [`Queue`] taking that handle, so no pointer can outlive or alias
//! its queue and no `unsafe` is needed. A stale handle (a deleted clone), or one of another
//! queue, is refused with `STATUS_INVALID_PARAMETER`, never undefined behaviour.
//!
//! | KS function | here |
//! |---|---|
//! | `KsPinGetLeadingEdgeStreamPointer` | [`Queue::leading_edge`] |
//! | `KsPinGetTrailingEdgeStreamPointer` | [`Queue::trailing_edge`] |
//! | `KsStreamPointerLock` / `Unlock` | [`Queue::lock`] / [`Queue::unlock`] |
//! | `KsStreamPointerAdvance` | [`Queue::advance`] |
//! | `KsStreamPointerAdvanceOffsets` (`AndUnlock`) | [`Queue::advance_offsets`] ([`Queue::advance_offsets_and_unlock`]) |
//! | `KsStreamPointerClone` / `Delete` | [`Queue::clone_pointer`] / [`Queue::delete`] |
//! | `KsStreamPointerSetStatusCode` | [`Queue::set_status_code`] |
//! | `KsPinGetFirstCloneStreamPointer` / `KsStreamPointerGetNextClone` | [`Queue::first_clone`] / [`Queue::next_clone`] |
//! | IRP cancellation of a frame | [`Queue::cancel`] |
//! | `KsStreamPointerScheduleTimeout` / `CancelTimeout` | [`Queue::schedule_timeout`] / [`Queue::cancel_timeout`] (see [`timeout`](crate::timeout)) |
//! | `StreamPointer->StreamHeader`, `OffsetIn`, `OffsetOut` | [`Queue::header`], [`Queue::offset_in`], [`Queue::offset_out`], [`Queue::data`] |
//!
//! # Example: a pin-centric process step
//!
//! ```
//! use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
//! use ks_graph::stream_pointer::PointerState;
//!
//! let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
//! q.push(vec![1, 2, 3, 4], StreamHeader::with_data(4, 4));
//! let lead = q.leading_edge(PointerState::Locked).unwrap();
//! assert_eq!(q.remaining_data(lead).unwrap(), &[1, 2, 3, 4]);
//! q.advance_offsets(lead, 3, 0, false).unwrap(); // consume 3 bytes
//! assert_eq!(q.offset_in(lead).unwrap().remaining, 1);
//! // Consuming exactly what remains moves to the next frame; there is none, so relocking
//! // fails with STATUS_DEVICE_NOT_READY (behaviour 54).
//! let err = q.advance_offsets(lead, 1, 0, false).unwrap_err();
//! assert_eq!(err.name(), "STATUS_DEVICE_NOT_READY");
//! assert_eq!(q.pop_completed().unwrap().header.data_used, 4);
//! ```

use std::fmt;

use ks_alloc::Status;

use crate::queue::{
    Direction, Entry, FrameBytes, FrameId, Queue, StreamHeader, keep_panic, resume_panic,
};

/// Handle to one stream pointer of one [`Queue`]: an index into the queue's pointer slab,
/// a generation and the queue's id, so a deleted clone's handle, or another queue's, is
/// recognised as stale.
///
/// ```
/// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// # use ks_graph::stream_pointer::PointerState;
/// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
/// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// let lead = q.leading_edge(PointerState::Locked).unwrap();
/// let clone = q.clone_pointer(lead, None, 0)?;
/// assert_ne!(clone, lead);
/// q.delete(clone)?;
/// // The deleted clone's handle is stale: refused, never undefined behaviour.
/// assert_eq!(q.is_locked(clone).unwrap_err().name(), "STATUS_INVALID_PARAMETER");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KSSTREAM_POINTER")]
#[doc(alias = "PKSSTREAM_POINTER")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PointerId {
    /// The queue's own id ([`Queue`] numbers them from 1), so that a
    /// handle is refused by every other queue.
    pub(crate) queue: u32,
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl PointerId {
    pub(crate) const INVALID: PointerId = PointerId {
        queue: 0,
        index: u32::MAX,
        generation: u32::MAX,
    };
}

impl fmt::Display for PointerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream pointer {}.{} of queue {}",
            self.index, self.generation, self.queue
        )
    }
}

/// `KSSTREAM_POINTER_STATE`: whether a pointer is locked onto its frame.
///
/// ```
/// use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// use ks_graph::stream_pointer::PointerState;
/// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
/// assert!(q.leading_edge(PointerState::Locked).is_none()); // nothing to lock onto
/// assert!(q.leading_edge(PointerState::Unlocked).is_some());
/// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// let lead = q.leading_edge(PointerState::Locked).unwrap();
/// assert!(q.is_locked(lead)?);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KSSTREAM_POINTER_STATE")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerState {
    /// `KSSTREAM_POINTER_STATE_UNLOCKED` (0): may reference no frame or a cancellable one.
    Unlocked,
    /// `KSSTREAM_POINTER_STATE_LOCKED` (1): references a real frame that cannot be cancelled.
    Locked,
}

/// What a stream pointer is.
///
/// ```
/// use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// use ks_graph::stream_pointer::PointerKind;
/// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input().with_distinct_trailing_edge());
/// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// let lead = q.leading_edge_id();
/// let clone = q.clone_pointer(lead, None, 0)?;
/// assert_eq!(q.kind(lead)?, PointerKind::LeadingEdge);
/// assert_eq!(q.kind(q.trailing_edge_id().unwrap())?, PointerKind::TrailingEdge);
/// assert_eq!(q.kind(clone)?, PointerKind::Clone);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerKind {
    /// The queue's leading edge (exists for the queue's lifetime, never deleted).
    LeadingEdge,
    /// The queue's trailing edge (only with `KSPIN_FLAG_DISTINCT_TRAILING_EDGE`).
    TrailingEdge,
    /// A clone made by [`Queue::clone_pointer`], deleted with [`Queue::delete`].
    Clone,
}

/// `KSSTREAM_POINTER_OFFSET`: a pointer's position inside its frame, in bytes.
///
/// ```
/// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// # use ks_graph::stream_pointer::PointerState;
/// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
/// # use ks_graph::stream_pointer::Offset;
/// q.push(vec![0; 8], StreamHeader::with_data(8, 5));
/// let p = q.leading_edge(PointerState::Locked).unwrap();
/// q.advance_offsets(p, 2, 0, false)?;
/// let expected = Offset { position: 2, count: 5, remaining: 3 };
/// assert_eq!(q.offset_in(p)?, expected);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KSSTREAM_POINTER_OFFSET")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offset {
    /// Bytes already processed: `Data` is the frame's start plus this.
    pub position: u32,
    /// `Count`: bytes in the frame (input: `DataUsed`; output: `FrameExtent`), as the frame's
    /// header had them when the pointer arrived on it (a clone takes its parent's). It
    /// changes only when the pointer moves to another frame (ks-spec.md §8.1).
    pub count: u32,
    /// `Remaining`: `Count` − processed; starts at `Count`, only decreases.
    pub remaining: u32,
}

/// What a clone's cancel callback is told when the frame under it is cancelled.
///
/// ```
/// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// # use ks_graph::stream_pointer::PointerState;
/// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
/// # use ks_graph::stream_pointer::{CancelAction, CancelNotice};
/// fn on_cancel(notice: &CancelNotice) -> CancelAction {
///     // The clone's frame and the context it was made with.
///     assert_eq!((notice.frame.sequence(), notice.context), (0, 99));
///     CancelAction::Delete
/// }
/// let id = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// let lead = q.leading_edge_id();
/// q.clone_pointer(lead, Some(on_cancel), 99)?;
/// q.cancel(id)?;
/// assert_eq!(q.first_clone(), None); // the callback had it deleted
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelNotice {
    /// The (unlocked) clone on the cancelled frame.
    pub pointer: PointerId,
    /// The frame being cancelled.
    pub frame: FrameId,
    /// The clone's context value (see [`Queue::clone_pointer`]).
    pub context: u64,
}

/// What to do with a clone whose frame was cancelled. KS cancel callbacks run with the
/// queue lock held and may not touch the queue; they usually delete the clone. Here the
/// callback returns its decision and the queue applies it.
///
/// ```
/// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// # use ks_alloc::Status;
/// # use ks_graph::stream_pointer::PointerState;
/// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
/// # use ks_graph::stream_pointer::{CancelAction, CancelNotice};
/// fn keep(_: &CancelNotice) -> CancelAction {
///     CancelAction::Keep
/// }
/// let id = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// let lead = q.leading_edge_id();
/// let clone = q.clone_pointer(lead, Some(keep), 0)?;
/// q.cancel(id)?;
/// // Kept: the clone stays on the cancelled frame, which waits for it.
/// assert_eq!(q.frame_id(clone)?, Some(id));
/// assert!(q.pop_completed().is_none());
/// q.delete(clone)?;
/// assert_eq!(q.pop_completed().unwrap().status, Err(Status::Cancelled));
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAction {
    /// Delete the clone (dropping its reference lets the frame complete).
    Delete,
    /// Keep the clone; it stays on the cancelled frame until deleted or advanced.
    Keep,
}

/// A clone's cancel callback (`PFNKSSTREAMPOINTER`): a plain function, so cloning a
/// pointer never allocates.
///
/// ```
/// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// # use ks_graph::stream_pointer::PointerState;
/// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
/// # use ks_graph::stream_pointer::{CancelAction, CancelCallback};
/// // A closure that captures nothing is a plain function.
/// let delete: CancelCallback = |_| CancelAction::Delete;
/// let id = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
/// let lead = q.leading_edge_id();
/// q.clone_pointer(lead, Some(delete), 0)?;
/// q.cancel(id)?;
/// assert!(q.first_clone().is_none());
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "PFNKSSTREAMPOINTER")]
pub type CancelCallback = fn(&CancelNotice) -> CancelAction;

pub(crate) struct Slot {
    pub(crate) generation: u32,
    pub(crate) ptr: Option<PointerData>,
}

pub(crate) struct PointerData {
    pub(crate) kind: PointerKind,
    pub(crate) pos: u64,
    pub(crate) locked: bool,
    pub(crate) consumed_in: u32,
    pub(crate) consumed_out: u32,
    /// `OffsetIn.Count` and `OffsetOut.Count`: taken from the frame's header when the pointer
    /// arrives on it (0 past the end), kept while it stays.
    pub(crate) count_in: u32,
    pub(crate) count_out: u32,
    pub(crate) context: u64,
    pub(crate) cancel: Option<CancelCallback>,
}

impl PointerData {
    pub(crate) fn new(kind: PointerKind, pos: u64) -> PointerData {
        PointerData {
            kind,
            pos,
            locked: false,
            consumed_in: 0,
            consumed_out: 0,
            count_in: 0,
            count_out: 0,
            context: 0,
            cancel: None,
        }
    }

    /// The pointer arrives at `pos`, on a frame with `header` (`None`: past the end): its
    /// offsets start over, their `Count`s those of the header as it is now.
    pub(crate) fn arrive(&mut self, pos: u64, header: Option<&StreamHeader>) {
        self.pos = pos;
        self.consumed_in = 0;
        self.consumed_out = 0;
        self.take_counts(header);
    }

    /// Takes the `Count`s of the frame the pointer is on from its `header` (`None`: none).
    pub(crate) fn take_counts(&mut self, header: Option<&StreamHeader>) {
        (self.count_in, self.count_out) =
            header.map_or((0, 0), |h| (h.input_count(), h.frame_extent));
    }

    /// Bytes processed through the pin's own offset (`Count − Remaining`).
    pub(crate) fn pin_offset_consumed(&self, direction: Direction) -> u32 {
        match direction {
            Direction::Input => self.consumed_in,
            Direction::Output => self.consumed_out,
        }
    }
}

const STALE: &str = "stream pointer handle is stale (deleted clone) or belongs to another queue";
const NOT_LOCKED: &str = "the stream pointer is not locked";
const NO_FRAME: &str = "no frame at the stream pointer (past the last frame)";
const READ_ONLY: &str = "the frame is shared read-only (a tee branch) and cannot be written";
const CANCELLED: &str = "the frame under the stream pointer was cancelled";

impl<F> Queue<F> {
    fn check(&self, id: PointerId) -> Result<&PointerData, Status> {
        match self.slots.get(id.index as usize) {
            Some(Slot {
                generation,
                ptr: Some(p),
            }) if *generation == id.generation && id.queue == self.id => Ok(p),
            _ => Err(Status::InvalidParameter(STALE.into())),
        }
    }

    fn check_mut(&mut self, id: PointerId) -> Result<&mut PointerData, Status> {
        let queue = self.id;
        match self.slots.get_mut(id.index as usize) {
            Some(Slot {
                generation,
                ptr: Some(p),
            }) if *generation == id.generation && id.queue == queue => Ok(p),
            _ => Err(Status::InvalidParameter(STALE.into())),
        }
    }

    fn lock_unchecked(&mut self, id: PointerId) -> Result<(), Status> {
        let p = self.ptr_mut(id);
        if p.locked {
            return Ok(());
        }
        let pos = p.pos;
        // Lock first, undo if there is nothing to lock (one pointer lookup on the hot path).
        p.locked = true;
        let result = match self.entry_mut(pos) {
            None => Err(Status::DeviceNotReady(NO_FRAME.into())),
            Some(e) if e.cancelled => Err(Status::DeviceNotReady(CANCELLED.into())),
            Some(e) => {
                e.locks += 1;
                return Ok(());
            }
        };
        self.ptr_mut(id).locked = false;
        result
    }

    fn edge(&mut self, id: PointerId, state: PointerState) -> Option<PointerId> {
        match state {
            PointerState::Unlocked => {
                self.unlock_unchecked(id);
                Some(id)
            }
            PointerState::Locked => self.lock_unchecked(id).ok().map(|()| id),
        }
    }

    /// The leading edge, in the state asked for. Unlocked: always returned, whether or not
    /// a frame is there. Locked: locked and returned, or `None` when no frame is at the edge
    /// (behaviour 47).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// assert!(q.leading_edge(PointerState::Locked).is_none()); // no frame yet
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// assert!(q.is_locked(lead)?);
    /// assert_eq!(q.leading_edge(PointerState::Unlocked), Some(lead)); // and unlocked again
    /// assert!(!q.is_locked(lead)?);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsPinGetLeadingEdgeStreamPointer")]
    pub fn leading_edge(&mut self, state: PointerState) -> Option<PointerId> {
        let id = self.leading;
        self.edge(id, state)
    }

    /// The trailing edge, in the state asked for: `None` unless the queue has a distinct
    /// trailing edge (behaviour 48), or (locked) when no frame is at the edge.
    ///
    /// ```
    /// use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// use ks_graph::stream_pointer::PointerState;
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input().with_distinct_trailing_edge());
    /// let id = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.unlock(lead, true)?;
    /// assert!(q.pop_completed().is_none()); // the trailing edge still holds the frame
    /// let trail = q.trailing_edge(PointerState::Locked).unwrap();
    /// assert_eq!(q.frame_id(trail)?, Some(id));
    /// q.unlock(trail, true)?;
    /// assert_eq!(q.pop_completed().map(|c| c.id), Some(id));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsPinGetTrailingEdgeStreamPointer")]
    pub fn trailing_edge(&mut self, state: PointerState) -> Option<PointerId> {
        let id = self.trailing?;
        self.edge(id, state)
    }

    /// The leading edge's handle, without changing its lock state.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// # use ks_graph::stream_pointer::PointerKind;
    /// let lead = q.leading_edge_id();
    /// assert_eq!(q.kind(lead)?, PointerKind::LeadingEdge);
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// assert!(!q.is_locked(lead)?); // looking did not lock it
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn leading_edge_id(&self) -> PointerId {
        self.leading
    }

    /// The trailing edge's handle (if any), without changing its lock state.
    ///
    /// ```
    /// use ks_graph::queue::{Queue, QueueConfig};
    /// let plain: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// assert_eq!(plain.trailing_edge_id(), None);
    /// let q: Queue<Vec<u8>> = Queue::new(QueueConfig::input().with_distinct_trailing_edge());
    /// let trail = q.trailing_edge_id().unwrap();
    /// assert_ne!(trail, q.leading_edge_id());
    /// ```
    pub fn trailing_edge_id(&self) -> Option<PointerId> {
        self.trailing
    }

    /// What the pointer is (edge or clone).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// # use ks_graph::stream_pointer::PointerKind;
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// let clone = q.clone_pointer(lead, None, 0)?;
    /// assert_eq!(q.kind(lead)?, PointerKind::LeadingEdge);
    /// assert_eq!(q.kind(clone)?, PointerKind::Clone);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn kind(&self, id: PointerId) -> Result<PointerKind, Status> {
        Ok(self.check(id)?.kind)
    }

    /// Whether the pointer is locked.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// assert!(!q.is_locked(lead)?);
    /// q.lock(lead)?;
    /// assert!(q.is_locked(lead)?);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn is_locked(&self, id: PointerId) -> Result<bool, Status> {
        Ok(self.check(id)?.locked)
    }

    /// The frame under the pointer, or `None` when it is past the last frame.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let lead = q.leading_edge_id();
    /// let a = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// assert_eq!(q.frame_id(lead)?, Some(a));
    /// q.advance(lead)?; // past the last frame
    /// assert_eq!(q.frame_id(lead)?, None);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn frame_id(&self, id: PointerId) -> Result<Option<FrameId>, Status> {
        let pos = self.check(id)?.pos;
        Ok(self.entry(pos).map(|_| FrameId(pos)))
    }

    /// Locks the pointer onto its frame. `STATUS_DEVICE_NOT_READY` when there is no frame or
    /// the frame was cancelled (behaviour 55). Locking a locked pointer succeeds.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let lead = q.leading_edge_id();
    /// assert_eq!(q.lock(lead).unwrap_err().name(), "STATUS_DEVICE_NOT_READY"); // no frame
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// q.lock(lead)?;
    /// q.lock(lead)?; // already locked: fine
    /// assert!(q.is_locked(lead)?);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerLock")]
    pub fn lock(&mut self, id: PointerId) -> Result<(), Status> {
        self.check(id)?;
        self.lock_unchecked(id)
    }

    /// Unlocks the pointer; with `eject`, also moves it to the next frame (which may let the
    /// frame it leaves complete).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let a = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let b = q.push(vec![1; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.unlock(lead, false)?; // stays on frame a
    /// assert_eq!(q.frame_id(lead)?, Some(a));
    /// q.lock(lead)?;
    /// q.unlock(lead, true)?; // ejects: moves on to b, and a completes
    /// assert_eq!(q.frame_id(lead)?, Some(b));
    /// assert_eq!(q.pop_completed().map(|c| c.id), Some(a));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerUnlock")]
    pub fn unlock(&mut self, id: PointerId, eject: bool) -> Result<(), Status> {
        let p = self.check_mut(id)?;
        let (pos, was_locked) = (p.pos, p.locked);
        p.locked = false;
        if was_locked {
            if let Some(e) = self.entry_mut(pos) {
                e.locks -= 1;
            }
        }
        if eject {
            let to = self.next_live_after(pos);
            self.move_pointer(id, to);
        }
        Ok(())
    }

    /// Works through the frames at the leading edge, oldest first, at most `limit` of them:
    /// for each, locks the leading edge on it, calls `work` with the frame and its header,
    /// and ejects it (unlock and move to the next frame, which lets the frame complete when
    /// nothing else holds it). Returns how many frames were ejected.
    ///
    /// This is exactly the loop
    ///
    /// ```text
    /// while n < limit {
    ///     let Some(p) = q.leading_edge(PointerState::Locked) else { break };
    ///     work(/* header and frame under p */)?;
    ///     q.unlock(p, true)?;
    ///     n += 1;
    /// }
    /// ```
    ///
    /// with the same states, reference counts, completions and completion order — the usual
    /// pin-centric process step of a filter that handles whole frames — but without the
    /// per-call handle checks. When `work` fails, the leading edge stays locked on that frame
    /// (as the loop's `?` leaves it) and the error is returned. When `work` panics, the
    /// queue is likewise left as the loop leaves it: the edge locked on that frame, the
    /// frames before it completed; the next call resumes on that frame.
    ///
    /// ```
    /// use ks_graph::queue::{FrameBytes, Queue, QueueConfig, StreamHeader};
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// for i in 0..3u8 {
    ///     q.push(vec![i; 4], StreamHeader::with_data(4, 4));
    /// }
    /// let mut seen = Vec::new();
    /// let n = q
    ///     .eject_leading(2, |f| {
    ///         seen.push(f.data()[0]);
    ///         Ok::<(), ks_alloc::Status>(())
    ///     })
    ///     .unwrap();
    /// assert_eq!((n, seen), (2, vec![0, 1]));
    /// assert_eq!(q.drain_completed().count(), 2);
    /// assert_eq!(q.frames_ahead(), 1);
    /// ```
    pub fn eject_leading<E>(
        &mut self,
        limit: usize,
        mut work: impl FnMut(AtEdge<'_, F>) -> Result<(), E>,
    ) -> Result<usize, E> {
        if self.leading_edge_alone() {
            return self.eject_leading_alone(limit, &mut work);
        }
        let lead = self.leading;
        let mut n = 0;
        while n < limit {
            if self.lock_unchecked(lead).is_err() {
                break;
            }
            let pos = self.pos(lead);
            let Some(e) = self.entry_mut(pos) else {
                break; // unreachable: a locked pointer is on a live frame
            };
            let Some(frame) = e.frame.as_mut() else {
                break; // unreachable: a live frame is in its entry
            };
            work(AtEdge {
                header: &mut e.header,
                frame,
            })?;
            n += 1;
            self.unlock_unchecked(lead);
            let to = self.next_live_after(pos);
            self.move_pointer(lead, to);
        }
        Ok(n)
    }

    /// The frame and header under a locked pointer, as [`Queue::eject_leading`] hands them
    /// to its callback (`STATUS_DEVICE_NOT_READY` when the pointer is unlocked).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![1, 2, 3, 4], StreamHeader::with_data(4, 2));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// let at = q.at_pointer(p)?;
    /// assert_eq!(at.used_data(), &[1, 2]);
    /// assert_eq!(at.header.frame_extent, 4);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn at_pointer(&mut self, id: PointerId) -> Result<AtEdge<'_, F>, Status> {
        let pos = self.locked_pos(id)?;
        match self.entry_mut(pos) {
            Some(Entry {
                frame: Some(frame),
                header,
                ..
            }) => Ok(AtEdge { header, frame }),
            _ => Err(Status::DeviceNotReady(NO_FRAME.into())),
        }
    }

    /// Moves the pointer to the next frame (cancelled frames are skipped). An unlocked
    /// pointer always succeeds, even onto no frame; a locked one is unlocked, moved and
    /// relocked, and `STATUS_DEVICE_NOT_READY` means the relock failed because it was on the
    /// last frame — the pointer has moved and is now unlocked (behaviour 53).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// # use ks_graph::queue::FrameId;
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// q.push(vec![1; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.advance(lead)?; // onto the second frame, locked again
    /// assert_eq!(q.frame_id(lead)?, Some(FrameId::from_sequence(1)));
    /// let err = q.advance(lead).unwrap_err(); // there is no third frame
    /// assert_eq!(err.name(), "STATUS_DEVICE_NOT_READY");
    /// assert!(!q.is_locked(lead)?); // moved past the end, unlocked
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerAdvance")]
    pub fn advance(&mut self, id: PointerId) -> Result<(), Status> {
        let p = self.check(id)?;
        let (pos, was_locked) = (p.pos, p.locked);
        self.unlock_unchecked(id);
        let to = self.next_live_after(pos);
        self.move_pointer(id, to);
        if was_locked {
            self.lock_unchecked(id)
        } else {
            Ok(())
        }
    }

    /// `OffsetIn` of the pointer: input data (`Count` = the frame's `DataUsed`, at most its
    /// `FrameExtent`: [`StreamHeader::input_count`]), as they were when the pointer arrived
    /// on the frame. `Count` changes only when the pointer moves to another frame and
    /// `Remaining` only decreases (ks-spec.md §8.1): rewriting the header while the pointer
    /// stays, through [`Queue::header_mut`] or by another pointer leaving a
    /// `GENERATE_MAPPINGS` frame, changes neither.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 8], StreamHeader::with_data(8, 5)); // 5 bytes of data
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// q.advance_offsets(p, 2, 0, false)?;
    /// let o = q.offset_in(p)?;
    /// assert_eq!((o.position, o.count, o.remaining), (2, 5, 3));
    /// q.header_mut(p)?.data_used = 8; // the pointer stays: its Count does not change
    /// assert_eq!(q.offset_in(p)?, o);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn offset_in(&self, id: PointerId) -> Result<Offset, Status> {
        let p = self.check(id)?;
        Ok(offset(p.count_in, p.consumed_in))
    }

    /// `OffsetOut` of the pointer: output space (`Count` = the frame's `FrameExtent` when
    /// the pointer arrived on it; kept, like [`Queue::offset_in`]'s, while it stays).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::output());
    /// q.push(vec![0; 16], StreamHeader::empty(16)); // 16 bytes of space
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// q.advance_offsets(p, 0, 6, false)?;
    /// let o = q.offset_out(p)?;
    /// assert_eq!((o.position, o.count, o.remaining), (6, 16, 10));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn offset_out(&self, id: PointerId) -> Result<Offset, Status> {
        let p = self.check(id)?;
        Ok(offset(p.count_out, p.consumed_out))
    }

    /// `Offset`: `OffsetIn` on an input pin's queue, `OffsetOut` on an output pin's.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::output());
    /// q.push(vec![0; 16], StreamHeader::empty(16));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// // An output pin's queue: Offset is OffsetOut.
    /// assert_eq!(q.offset(p)?, q.offset_out(p)?);
    /// assert_eq!(q.offset(p)?.count, 16);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn offset(&self, id: PointerId) -> Result<Offset, Status> {
        match self.config.direction {
            Direction::Input => self.offset_in(id),
            Direction::Output => self.offset_out(id),
        }
    }

    /// Moves the pointer's offsets by `in_used` / `out_used` bytes. The pointer must be
    /// locked (`STATUS_DEVICE_NOT_READY` otherwise); the amounts may not exceed `Remaining`
    /// (`STATUS_INVALID_PARAMETER`: a pointer never crosses frames in one step). When the
    /// pin's own offset reaches zero remaining, or with `eject`, the pointer advances to the
    /// next frame and relocks, `STATUS_DEVICE_NOT_READY` if there is none (behaviour 54).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_alloc::Status;
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 8], StreamHeader::with_data(8, 8));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// q.advance_offsets(p, 3, 0, false)?;
    /// assert_eq!(q.offset_in(p)?.remaining, 5);
    /// // More than Remaining would cross into the next frame: refused.
    /// let err = q.advance_offsets(p, 6, 0, false).unwrap_err();
    /// assert!(matches!(err, Status::InvalidParameter(_)));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerAdvanceOffsets")]
    pub fn advance_offsets(
        &mut self,
        id: PointerId,
        in_used: u32,
        out_used: u32,
        eject: bool,
    ) -> Result<(), Status> {
        self.locked_pos(id)?;
        let (oin, oout) = (self.offset_in(id)?, self.offset_out(id)?);
        for (used, field, remaining, offset) in [
            (in_used, "InUsed", oin.remaining, "OffsetIn"),
            (out_used, "OutUsed", oout.remaining, "OffsetOut"),
        ] {
            if used > remaining {
                return Err(Status::InvalidParameter(
                    format!(
                        "{field} is {used}, more than {offset}.Remaining ({remaining}); a \
                         stream pointer cannot cross frames in one step"
                    )
                    .into(),
                ));
            }
        }
        let direction = self.config.direction;
        let p = self.ptr_mut(id);
        p.consumed_in += in_used;
        p.consumed_out += out_used;
        let left = match direction {
            Direction::Input => oin.remaining - in_used,
            Direction::Output => oout.remaining - out_used,
        };
        if left == 0 || eject {
            self.advance(id)
        } else {
            Ok(())
        }
    }

    /// [`Queue::advance_offsets`], then unlock. Using exactly the remaining bytes, or
    /// `eject`, moves to the next frame; the pointer ends unlocked either way (so a missing
    /// next frame is not an error here).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// // All 4 bytes used: the pointer moves on; no next frame is not an error here.
    /// q.advance_offsets_and_unlock(p, 4, 0, false)?;
    /// assert!(!q.is_locked(p)?);
    /// assert_eq!(q.pop_completed().map(|c| c.header.data_used), Some(4));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerAdvanceOffsetsAndUnlock")]
    pub fn advance_offsets_and_unlock(
        &mut self,
        id: PointerId,
        in_used: u32,
        out_used: u32,
        eject: bool,
    ) -> Result<(), Status> {
        self.locked_pos(id)?;
        let moved = self.advance_offsets(id, in_used, out_used, eject);
        // Unlocked whatever the outcome (KS's function returns nothing and always unlocks):
        // an error must not leave a lock behind that the caller would not know to release.
        self.unlock_unchecked(id);
        match moved {
            // Locked at call time, so NOT_READY means the relock after moving past the last
            // frame failed: the pointer has moved and ends unlocked, as asked.
            Ok(()) | Err(Status::DeviceNotReady(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Clones a pointer: the clone starts on the same frame, at the same offsets and in the
    /// same lock state, and adds one reference to the frame (behaviour 50). `cancel` is
    /// called if the frame is cancelled while the clone is unlocked on it (behaviour 56);
    /// `context` is a caller value handed back to it (KS's clone context bytes). Fails with
    /// `STATUS_DEVICE_NOT_READY` when the pointer is on no frame or on a cancelled one.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let id = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// let clone = q.clone_pointer(lead, None, 42)?;
    /// q.unlock(lead, true)?; // the edge moves on; the clone keeps the frame
    /// assert!(q.contains(id));
    /// assert_eq!(q.context(clone)?, 42);
    /// q.delete(clone)?;
    /// assert!(!q.contains(id)); // completed
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerClone")]
    pub fn clone_pointer(
        &mut self,
        id: PointerId,
        cancel: Option<CancelCallback>,
        context: u64,
    ) -> Result<PointerId, Status> {
        let p = self.check(id)?;
        let mut data = PointerData::new(PointerKind::Clone, p.pos);
        data.locked = p.locked;
        data.consumed_in = p.consumed_in;
        data.consumed_out = p.consumed_out;
        data.count_in = p.count_in;
        data.count_out = p.count_out;
        data.context = context;
        data.cancel = cancel;
        match self.entry(p.pos) {
            None => return Err(Status::DeviceNotReady(NO_FRAME.into())),
            Some(e) if e.cancelled => return Err(Status::DeviceNotReady(CANCELLED.into())),
            Some(_) => {}
        }
        let clone = self.insert_pointer(data);
        self.clones.push(clone);
        Ok(clone)
    }

    /// Deletes a clone, dropping its frame reference (which may complete the frame,
    /// behaviour 51). Edges are not clones and cannot be deleted: `STATUS_INVALID_PARAMETER`
    /// (behaviour 57).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// let clone = q.clone_pointer(lead, None, 0)?;
    /// q.delete(clone)?;
    /// assert_eq!(q.first_clone(), None);
    /// assert_eq!(q.delete(lead).unwrap_err().name(), "STATUS_INVALID_PARAMETER"); // an edge
    /// assert!(q.delete(clone).is_err()); // deleted already
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerDelete")]
    pub fn delete(&mut self, id: PointerId) -> Result<(), Status> {
        match self.check(id)?.kind {
            PointerKind::LeadingEdge => Err(Status::InvalidParameter(
                "the leading edge is not a clone and cannot be deleted".into(),
            )),
            PointerKind::TrailingEdge => Err(Status::InvalidParameter(
                "the trailing edge is not a clone and cannot be deleted".into(),
            )),
            PointerKind::Clone => {
                self.forget_clone(id);
                self.remove_pointer_unchecked(id);
                Ok(())
            }
        }
    }

    fn forget_clone(&mut self, id: PointerId) {
        if let Some(i) = self.clones.iter().position(|c| *c == id) {
            self.clones.remove(i);
        }
    }

    /// The caller value given when the clone was made (0 for edges).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// let clone = q.clone_pointer(lead, None, 7)?;
    /// assert_eq!((q.context(clone)?, q.context(lead)?), (7, 0));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn context(&self, id: PointerId) -> Result<u64, Status> {
        Ok(self.check(id)?.context)
    }

    /// Replaces a pointer's context value.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// let clone = q.clone_pointer(lead, None, 7)?;
    /// q.set_context(clone, 8)?;
    /// assert_eq!(q.context(clone)?, 8);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn set_context(&mut self, id: PointerId, context: u64) -> Result<(), Status> {
        self.check(id)?;
        self.ptr_mut(id).context = context;
        Ok(())
    }

    /// The oldest clone still alive.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// assert_eq!(q.first_clone(), None);
    /// let lead = q.leading_edge_id();
    /// let a = q.clone_pointer(lead, None, 0)?;
    /// q.clone_pointer(lead, None, 0)?;
    /// assert_eq!(q.first_clone(), Some(a)); // the oldest
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsPinGetFirstCloneStreamPointer")]
    pub fn first_clone(&self) -> Option<PointerId> {
        self.clones.first().copied()
    }

    /// The clone created after `id`, in creation order (`None` at the end or for an edge).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// for context in 1..=3 {
    ///     q.clone_pointer(lead, None, context)?;
    /// }
    /// let mut contexts = Vec::new();
    /// let mut c = q.first_clone();
    /// while let Some(id) = c {
    ///     contexts.push(q.context(id)?);
    ///     c = q.next_clone(id);
    /// }
    /// assert_eq!(contexts, [1, 2, 3]);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerGetNextClone")]
    pub fn next_clone(&self, id: PointerId) -> Option<PointerId> {
        let i = self.clones.iter().position(|c| *c == id)?;
        self.clones.get(i + 1).copied()
    }

    /// Chooses the status the frame under the pointer completes with. A cancelled frame
    /// keeps its `STATUS_CANCELLED`: on one, this fails with `STATUS_DEVICE_NOT_READY`.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_alloc::Status;
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// q.set_status_code(lead, Err(Status::Unsuccessful("device error".into())))?;
    /// q.unlock(lead, true)?;
    /// let done = q.pop_completed().unwrap();
    /// assert!(matches!(done.status, Err(Status::Unsuccessful(_))));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerSetStatusCode")]
    pub fn set_status_code(
        &mut self,
        id: PointerId,
        status: Result<(), Status>,
    ) -> Result<(), Status> {
        let pos = self.check(id)?.pos;
        match self.entry_mut(pos) {
            // A cancelled frame completes with STATUS_CANCELLED, whatever a clone says.
            Some(e) if e.cancelled => Err(Status::DeviceNotReady(CANCELLED.into())),
            Some(e) => {
                e.status = status.err().map(Box::new);
                Ok(())
            }
            None => Err(Status::DeviceNotReady(NO_FRAME.into())),
        }
    }

    /// Cancels a queued frame (KS: its IRP is cancelled). The frame completes with
    /// `STATUS_CANCELLED` once no clone references it; edges on it move to the next frame
    /// (behaviour 49); the cancel callback of every unlocked clone on it is called, in
    /// creation order, and its [`CancelAction`] applied (behaviour 56).
    ///
    /// A cancel callback that panics keeps its clone; the other clones are still told, the
    /// cancellation completes, and then the first panic resumes.
    ///
    /// Policy (KS defers the cancellation of a locked frame; this API reports it): a frame
    /// under a locked pointer is not cancelled, `STATUS_INVALID_DEVICE_STATE`. A frame no
    /// longer queued gives `STATUS_NOT_FOUND`; cancelling twice is a no-op.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_alloc::Status;
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let a = q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let b = q.push(vec![1; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// q.cancel(a)?; // the leading edge was on it: it moves on to b
    /// assert_eq!(q.frame_id(lead)?, Some(b));
    /// let done = q.pop_completed().unwrap();
    /// assert_eq!((done.id, done.status), (a, Err(Status::Cancelled)));
    /// q.lock(lead)?;
    /// // A frame under a locked pointer is not cancelled.
    /// assert_eq!(q.cancel(b).unwrap_err().name(), "STATUS_INVALID_DEVICE_STATE");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn cancel(&mut self, frame: FrameId) -> Result<(), Status> {
        let seq = frame.0;
        let Some(e) = self.entry_mut(seq) else {
            return Err(Status::NotFound(
                "the frame is not in the queue (already completed, or never arrived)".into(),
            ));
        };
        if e.cancelled {
            return Ok(());
        }
        if e.locks > 0 {
            return Err(Status::InvalidDeviceState(
                "the frame is under a locked stream pointer and cannot be cancelled".into(),
            ));
        }
        e.cancelled = true;
        e.status = Some(Box::new(Status::Cancelled));
        self.stats.cancelled += 1;
        for edge in [Some(self.leading), self.trailing].into_iter().flatten() {
            if self.pos(edge) == seq {
                let to = self.next_live_after(seq);
                self.move_pointer(edge, to);
            }
        }
        let mut i = 0;
        let mut panicked = None;
        while i < self.clones.len() {
            let c = self.clones[i];
            let p = self.ptr(c);
            if p.pos == seq {
                if let Some(cb) = p.cancel {
                    let notice = CancelNotice {
                        pointer: c,
                        frame,
                        context: p.context,
                    };
                    // A callback that panics keeps its clone, and the others are still
                    // told; the panic resumes once the cancellation is complete.
                    let mut action = CancelAction::Keep;
                    keep_panic(&mut panicked, || action = cb(&notice));
                    if action == CancelAction::Delete {
                        self.clones.remove(i);
                        self.remove_pointer_unchecked(c);
                        continue;
                    }
                }
            }
            i += 1;
        }
        self.try_complete(seq);
        resume_panic(panicked);
        Ok(())
    }

    /// The stream header of the frame under a locked pointer (`STATUS_DEVICE_NOT_READY` when
    /// unlocked: data and header may only be touched through a locked pointer).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 8], StreamHeader::with_data(8, 3));
    /// let lead = q.leading_edge_id();
    /// assert!(q.header(lead).is_err()); // unlocked: no access
    /// q.lock(lead)?;
    /// assert_eq!(q.header(lead)?.data_used, 3);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn header(&self, id: PointerId) -> Result<&StreamHeader, Status> {
        let pos = self.locked_pos(id)?;
        match self.entry(pos) {
            Some(e) => Ok(&e.header),
            None => Err(Status::DeviceNotReady(NO_FRAME.into())),
        }
    }

    /// The stream header of the frame under a locked pointer, for writing (`DataUsed`,
    /// flags, times).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::output());
    /// let id = q.push(vec![0; 8], StreamHeader::empty(8));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// let h = q.header_mut(p)?;
    /// h.data_used = 8;
    /// h.presentation_time = 400_000;
    /// assert_eq!(q.frame_header(id).map(|h| h.data_used), Some(8));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn header_mut(&mut self, id: PointerId) -> Result<&mut StreamHeader, Status> {
        let pos = self.locked_pos(id)?;
        match self.entry_mut(pos) {
            Some(e) => Ok(&mut e.header),
            None => Err(Status::DeviceNotReady(NO_FRAME.into())),
        }
    }

    fn locked_pos(&self, id: PointerId) -> Result<u64, Status> {
        let p = self.check(id)?;
        if !p.locked {
            return Err(Status::DeviceNotReady(NOT_LOCKED.into()));
        }
        Ok(p.pos)
    }

    /// The frame under a locked pointer (for access to frame-specific API, e.g. the frame's
    /// allocator).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![1, 2, 3], StreamHeader::with_data(3, 3));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// assert_eq!(q.frame(p)?, &vec![1, 2, 3]);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn frame(&self, id: PointerId) -> Result<&F, Status> {
        let pos = self.locked_pos(id)?;
        match self.entry(pos).and_then(|e| e.frame.as_ref()) {
            Some(f) => Ok(f),
            None => Err(Status::DeviceNotReady(NO_FRAME.into())),
        }
    }
}

impl<F: FrameBytes> Queue<F> {
    /// The whole frame (`FrameExtent` bytes, clamped to the frame's size) under a locked
    /// pointer.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![1, 2, 3, 4, 5, 6], StreamHeader::with_data(4, 2));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// assert_eq!(q.data(p)?, &[1, 2, 3, 4]); // FrameExtent bytes, not only DataUsed
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn data(&self, id: PointerId) -> Result<&[u8], Status> {
        let pos = self.locked_pos(id)?;
        match self.entry(pos) {
            Some(Entry {
                frame: Some(f),
                header,
                ..
            }) => {
                let bytes = f.bytes();
                Ok(&bytes[..clamp(header.frame_extent, bytes.len())])
            }
            _ => Err(Status::DeviceNotReady(NO_FRAME.into())),
        }
    }

    /// The whole frame under a locked pointer, writable. A read-only frame (one shared by
    /// the branches of a tee) gives `STATUS_INVALID_DEVICE_REQUEST`.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::output());
    /// let id = q.push(vec![0; 4], StreamHeader::empty(4));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// q.data_mut(p)?.copy_from_slice(b"ks!!");
    /// q.header_mut(p)?.data_used = 4;
    /// q.unlock(p, true)?;
    /// let done = q.pop_completed().unwrap();
    /// assert_eq!((done.id, &done.frame[..]), (id, &b"ks!!"[..]));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn data_mut(&mut self, id: PointerId) -> Result<&mut [u8], Status> {
        let pos = self.locked_pos(id)?;
        match self.entry_mut(pos) {
            Some(Entry {
                frame: Some(f),
                header,
                ..
            }) => {
                let extent = header.frame_extent;
                match f.bytes_mut() {
                    Some(bytes) => {
                        let n = clamp(extent, bytes.len());
                        Ok(&mut bytes[..n])
                    }
                    None => Err(Status::InvalidDeviceRequest(READ_ONLY.into())),
                }
            }
            _ => Err(Status::DeviceNotReady(NO_FRAME.into())),
        }
    }

    /// The input bytes at and after `OffsetIn` (`Remaining` bytes) under a locked pointer.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![1, 2, 3, 4, 0, 0], StreamHeader::with_data(6, 4));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// q.advance_offsets(p, 1, 0, false)?;
    /// assert_eq!(q.remaining_data(p)?, &[2, 3, 4]); // up to DataUsed
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn remaining_data(&self, id: PointerId) -> Result<&[u8], Status> {
        let p = self.check(id)?;
        let (consumed, count) = (p.consumed_in, p.count_in);
        let bytes = self.data(id)?;
        let end = clamp(count, bytes.len());
        let start = clamp(consumed, end);
        Ok(&bytes[start..end])
    }

    /// The output space at and after `OffsetOut` (`Remaining` bytes) under a locked pointer.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::output());
    /// q.push(vec![0; 4], StreamHeader::empty(4));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// q.remaining_buffer_mut(p)?[..2].copy_from_slice(&[1, 2]);
    /// q.advance_offsets(p, 0, 2, false)?; // 2 bytes written
    /// q.remaining_buffer_mut(p)?.copy_from_slice(&[3, 4]);
    /// assert_eq!(q.data(p)?, &[1, 2, 3, 4]);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn remaining_buffer_mut(&mut self, id: PointerId) -> Result<&mut [u8], Status> {
        let p = self.check(id)?;
        let (consumed, count) = (p.consumed_out, p.count_out);
        let buf = self.data_mut(id)?;
        let end = clamp(count, buf.len());
        let start = clamp(consumed, end);
        Ok(&mut buf[start..end])
    }
}

fn offset(count: u32, consumed: u32) -> Offset {
    Offset {
        position: consumed.min(count),
        count,
        remaining: count.saturating_sub(consumed),
    }
}

fn clamp(n: u32, len: usize) -> usize {
    (n as usize).min(len)
}

/// The frame under a locked stream pointer and its stream header, borrowed from the queue:
/// what [`Queue::eject_leading`] hands to its callback.
///
/// ```
/// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
/// # use ks_graph::stream_pointer::PointerState;
/// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
/// for _ in 0..2 {
///     q.push(vec![0; 8], StreamHeader::with_data(8, 8));
/// }
/// let n = q.eject_leading(usize::MAX, |at| {
///     at.header.duration = 333_333; // the header is writable
///     Ok::<(), ks_alloc::Status>(())
/// })?;
/// assert_eq!(n, 2);
/// assert!(q.drain_completed().all(|c| c.header.duration == 333_333));
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub struct AtEdge<'a, F> {
    /// The frame's stream header (`DataUsed`, flags, times), writable.
    pub header: &'a mut StreamHeader,
    pub(crate) frame: &'a mut F,
}

impl<F> fmt::Debug for AtEdge<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtEdge")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<'a, F> AtEdge<'a, F> {
    /// The frame itself.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 16], StreamHeader::with_data(8, 8)); // 16 bytes, 8 of them usable
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// let at = q.at_pointer(p)?;
    /// assert_eq!((at.frame().len(), at.data().len()), (16, 8));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn frame(&self) -> &F {
        self.frame
    }
}

impl<'a, F: FrameBytes> AtEdge<'a, F> {
    /// The whole frame (`FrameExtent` bytes, clamped to the frame's size), as
    /// [`Queue::data`].
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![5; 8], StreamHeader::with_data(8, 3));
    /// let p = q.leading_edge(PointerState::Locked).unwrap();
    /// let at = q.at_pointer(p)?;
    /// assert_eq!(at.data(), &[5; 8]); // the whole frame, not only its 3 bytes of data
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn data(&self) -> &[u8] {
        let bytes = self.frame.bytes();
        &bytes[..clamp(self.header.frame_extent, bytes.len())]
    }

    /// The valid data: the first `DataUsed` bytes of [`data`](Self::data).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![1, 2, 3, 0], StreamHeader::with_data(4, 3));
    /// let mut seen = Vec::new();
    /// q.eject_leading(1, |at| {
    ///     seen.extend_from_slice(at.used_data());
    ///     Ok::<(), ks_alloc::Status>(())
    /// })?;
    /// assert_eq!(seen, [1, 2, 3]);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn used_data(&self) -> &[u8] {
        let data = self.data();
        &data[..clamp(self.header.data_used, data.len())]
    }

    /// The whole frame, writable, as [`Queue::data_mut`]: a read-only (shared) frame gives
    /// `STATUS_INVALID_DEVICE_REQUEST`.
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![1, 2, 3], StreamHeader::with_data(3, 3));
    /// q.eject_leading(1, |mut at| {
    ///     at.data_mut()?.reverse();
    ///     Ok::<(), ks_alloc::Status>(())
    /// })?;
    /// assert_eq!(q.pop_completed().unwrap().frame, [3, 2, 1]);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn data_mut(&mut self) -> Result<&mut [u8], Status> {
        let extent = self.header.frame_extent;
        match self.frame.bytes_mut() {
            Some(bytes) => {
                let n = clamp(extent, bytes.len());
                Ok(&mut bytes[..n])
            }
            None => Err(Status::InvalidDeviceRequest(READ_ONLY.into())),
        }
    }

    /// The stream header and the writable frame at once (`data_mut`'s errors).
    ///
    /// ```
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::output());
    /// q.push(vec![0; 8], StreamHeader::empty(8));
    /// q.eject_leading(1, |mut at| {
    ///     let (header, buf) = at.split_mut()?;
    ///     buf[..5].copy_from_slice(b"hello");
    ///     header.data_used = 5;
    ///     Ok::<(), ks_alloc::Status>(())
    /// })?;
    /// let done = q.pop_completed().unwrap();
    /// assert_eq!(&done.frame[..done.header.data_used as usize], b"hello");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn split_mut(&mut self) -> Result<(&mut StreamHeader, &mut [u8]), Status> {
        let extent = self.header.frame_extent;
        match self.frame.bytes_mut() {
            Some(bytes) => {
                let n = clamp(extent, bytes.len());
                Ok((&mut *self.header, &mut bytes[..n]))
            }
            None => Err(Status::InvalidDeviceRequest(READ_ONLY.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    //! `eject_leading` (both of its paths) against the step-by-step loop it stands for, on
    //! random queues: same results, same completions in the same order, same end state.

    use proptest::prelude::*;

    use super::*;
    use crate::queue::{PIN_FLAG_DISTINCT_TRAILING_EDGE, PIN_FLAG_GENERATE_MAPPINGS, QueueConfig};

    type Q = Queue<Vec<u8>>;

    #[derive(Debug, Clone)]
    enum Op {
        Push(u8),
        Cancel(u8),
        CloneLead(bool),
        DeleteClone(u8),
        LockLead,
        UnlockLead(bool),
        AdvanceLead,
        Consume(u8),
        PopCompleted,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u8>().prop_map(Op::Push),
            1 => any::<u8>().prop_map(Op::Cancel),
            1 => any::<bool>().prop_map(Op::CloneLead),
            1 => any::<u8>().prop_map(Op::DeleteClone),
            1 => Just(Op::LockLead),
            1 => any::<bool>().prop_map(Op::UnlockLead),
            1 => Just(Op::AdvanceLead),
            1 => any::<u8>().prop_map(Op::Consume),
            1 => Just(Op::PopCompleted),
        ]
    }

    fn delete_on_cancel(_: &CancelNotice) -> CancelAction {
        CancelAction::Delete
    }

    /// Applies `op` (results ignored: both queues get the same calls and must agree).
    fn apply(q: &mut Q, op: &Op, seq: &mut u8) {
        let lead = q.leading_edge_id();
        match *op {
            Op::Push(len) => {
                let len = usize::from(len % 8) + 1;
                *seq = seq.wrapping_add(1);
                q.push(
                    vec![*seq; len],
                    StreamHeader::with_data(len as u32, len as u32),
                );
            }
            Op::Cancel(i) => {
                let _ = q.cancel(FrameId::from_sequence(u64::from(i % 16)));
            }
            Op::CloneLead(cb) => {
                let _ = q.clone_pointer(lead, cb.then_some(delete_on_cancel as CancelCallback), 0);
            }
            Op::DeleteClone(i) => {
                let mut c = q.first_clone();
                for _ in 0..i % 3 {
                    c = c.and_then(|c| q.next_clone(c));
                }
                if let Some(c) = c {
                    let _ = q.delete(c);
                }
            }
            Op::LockLead => {
                let _ = q.leading_edge(PointerState::Locked);
            }
            Op::UnlockLead(eject) => {
                let _ = q.unlock(lead, eject);
            }
            Op::AdvanceLead => {
                let _ = q.advance(lead);
            }
            Op::Consume(n) => {
                let _ = q.advance_offsets(lead, u32::from(n % 4), 0, false);
            }
            Op::PopCompleted => {
                let _ = q.pop_completed();
            }
        }
    }

    /// Everything observable about a queue, the completed frames taken out.
    fn snapshot(q: &mut Q) -> String {
        let lead = q.leading_edge_id();
        let mut s = format!(
            "stats {:?} len {} ahead {} bytes {:?} lead locked {:?} frame {:?} in {:?} out {:?}",
            q.stats(),
            q.len(),
            q.frames_ahead(),
            q.available_bytes(),
            q.is_locked(lead),
            q.frame_id(lead),
            q.offset_in(lead),
            q.offset_out(lead),
        );
        if let Some(t) = q.trailing_edge_id() {
            s += &format!(" trail {:?} {:?}", q.is_locked(t), q.frame_id(t));
        }
        let mut c = q.first_clone();
        while let Some(id) = c {
            s += &format!(" clone {:?} {:?}", q.is_locked(id), q.frame_id(id));
            c = q.next_clone(id);
        }
        for seq in 0..40 {
            let id = FrameId::from_sequence(seq);
            if let Some(h) = q.frame_header(id) {
                s += &format!(" [{seq} {h:?} {:?}]", q.is_cancelled(id));
            }
        }
        for c in q.drain_completed() {
            s += &format!(
                " done {} {:?} {:?} {:?}",
                c.id.sequence(),
                c.header,
                c.status,
                c.frame
            );
        }
        s
    }

    /// The work both forms do: record the frame, rewrite its header, fail on call `fail_at`.
    fn work(
        log: &mut Vec<u8>,
        calls: &mut usize,
        fail_at: usize,
        f: &mut AtEdge<'_, Vec<u8>>,
    ) -> Result<(), Status> {
        *calls += 1;
        log.extend_from_slice(f.used_data());
        if *calls == fail_at {
            return Err(Status::Unsuccessful("work failed".into()));
        }
        f.header.data_used = f.header.data_used.saturating_sub(1);
        f.header.duration += 7;
        f.data_mut()?.fill(0xAB);
        Ok(())
    }

    proptest! {
        #[test]
        fn eject_leading_is_the_step_loop(
            flags in prop_oneof![
                Just(0u32),
                Just(PIN_FLAG_DISTINCT_TRAILING_EDGE),
                Just(PIN_FLAG_GENERATE_MAPPINGS)
            ],
            output in any::<bool>(),
            before in proptest::collection::vec(op(), 0..40),
            limit in 0usize..12,
            fail_at in 0usize..8,
            after in proptest::collection::vec(op(), 0..20),
        ) {
            let dir = if output { Direction::Output } else { Direction::Input };
            let cfg = QueueConfig::from_pin_flags(dir, flags);
            let (mut a, mut b) = (Q::new(cfg), Q::new(cfg));
            let (mut sa, mut sb) = (0u8, 0u8);
            for op in &before {
                apply(&mut a, op, &mut sa);
                apply(&mut b, op, &mut sb);
            }
            prop_assert_eq!(a.check_invariants(), Ok(()));

            let (mut log_a, mut calls_a) = (Vec::new(), 0);
            let ra = a.eject_leading(limit, |mut f| work(&mut log_a, &mut calls_a, fail_at, &mut f));

            let (mut log_b, mut calls_b) = (Vec::new(), 0);
            let rb = (|| {
                let mut n = 0;
                while n < limit {
                    let Some(p) = b.leading_edge(PointerState::Locked) else { break };
                    work(&mut log_b, &mut calls_b, fail_at, &mut b.at_pointer(p)?)?;
                    b.unlock(p, true)?;
                    n += 1;
                }
                Ok::<usize, Status>(n)
            })();

            prop_assert_eq!(ra, rb);
            prop_assert_eq!(log_a, log_b);
            prop_assert_eq!(a.check_invariants(), Ok(()));
            prop_assert_eq!(snapshot(&mut a), snapshot(&mut b));
            for op in &after {
                apply(&mut a, op, &mut sa);
                apply(&mut b, op, &mut sb);
            }
            prop_assert_eq!(a.check_invariants(), Ok(()));
            prop_assert_eq!(snapshot(&mut a), snapshot(&mut b));
        }
    }

    #[test]
    fn eject_leading_alone_leaves_the_edge_locked_on_failure() {
        let mut q = Q::new(QueueConfig::input());
        for i in 0..4u8 {
            q.push(vec![i; 2], StreamHeader::with_data(2, 2));
        }
        let mut calls = 0;
        let r = q.eject_leading(usize::MAX, |_| {
            calls += 1;
            if calls == 3 { Err("stop") } else { Ok(()) }
        });
        assert_eq!(r, Err("stop"));
        let lead = q.leading_edge_id();
        assert_eq!(q.is_locked(lead), Ok(true));
        assert_eq!(q.frame_id(lead), Ok(Some(FrameId::from_sequence(2))));
        assert_eq!(q.check_invariants(), Ok(()));
        let done: Vec<u64> = q.drain_completed().map(|c| c.id.sequence()).collect();
        assert_eq!(done, vec![0, 1]);
        // Resuming processes the locked frame first, then the rest.
        assert_eq!(q.eject_leading(usize::MAX, |_| Ok::<(), ()>(())), Ok(2));
        assert_eq!(q.frame_id(lead), Ok(None));
        assert_eq!(q.is_locked(lead), Ok(false));
        assert_eq!(q.check_invariants(), Ok(()));
        assert_eq!(q.drain_completed().count(), 2);
    }

    #[test]
    fn a_slot_whose_generation_would_wrap_is_retired() {
        let mut q = Q::new(QueueConfig::input());
        q.push(vec![0; 2], StreamHeader::with_data(2, 2));
        let lead = q.leading_edge(PointerState::Locked).unwrap();
        let old = q.clone_pointer(lead, None, 0).unwrap();
        // As if the slot had been reused 2³² - 1 times.
        q.slots[old.index as usize].generation = u32::MAX;
        let last = PointerId {
            generation: u32::MAX,
            ..old
        };
        q.delete(last).unwrap();
        let next = q.clone_pointer(lead, None, 0).unwrap();
        assert_ne!(next.index, old.index, "the exhausted slot is not reused");
        assert!(q.delete(last).is_err(), "and its last handle stays stale");
        assert_eq!(q.check_invariants(), Ok(()));
    }
}
