//! The streaming runtime: runs a [`Graph`] with real threads, AVStream style
//! (ks-spec.md §4.5, §8.2).
//!
//! * **Pipes and requesters.** [`Runtime::run`] moves the graph to ACQUIRE (negotiation
//!   creates one allocator per pipe) and starts one *requester* thread per pipe. The
//!   requester takes empty frames from its pipe's allocator through the request interface
//!   ([`Allocator::allocate_blocking`]; a pending request *is* the back-pressure) and feeds
//!   them into the queue of the pipe's root pin, the output pin where frames enter the pipe.
//! * **Queues and processing.** Every connected input pin, and every root output pin, has a
//!   [`Queue`]. After frames arrive at a filter, the thread that delivered them calls the
//!   filter's [`Process::process`] (KS: `KsPinAttemptProcessing` on arrival) under the
//!   filter's processing mutex. Filters work with stream pointers: lock the leading edge,
//!   read or write the frame, eject ([`Queue::eject_leading`] does that for every frame at
//!   the edge in one pass). A requester feeds its root pin a batch (every frame
//!   free at the moment, up to 16), and frames move downstream in batches: one lock and
//!   one process call per filter per batch.
//! * **Completion and routing.** A frame that completes on a root output pin travels to the
//!   connected input pin. A frame that completes on an input pin travels on through the
//!   filter's pass-through outputs (in-place transforms, tee branches: one frame, shared
//!   read-only when there are several branches), or, at a sink or a copy transform, goes
//!   back to its allocator — the circuit recycles frames, it never reallocates them
//!   (behaviour 60). Frames are delivered downstream while the upstream filter's mutex is
//!   held (the downstream filter is processed right away, on the same thread), so the order
//!   of frames on every connection is preserved; locks are only ever taken downstream (the
//!   graph is acyclic), so this cannot deadlock. Threads meet only where pipes meet (a copy
//!   transform is driven both by its input pipe and by its output pipe's requester).
//! * **Stream-pointer timeouts.** A filter may schedule a timeout on any pointer of its
//!   queues ([`Queue::schedule_timeout`]). One timer thread per run sleeps until the
//!   earliest deadline of any filter, fires the due ones under the filter's processing
//!   mutex, then runs the filter's [`Process::process`] (as `KsPinAttemptProcessing` would)
//!   and routes what completed. Without timeouts it only sleeps; the filters' cost is one
//!   check per queue after each process call.
//! * **Waiting for the outside world.** A process callback never waits for anything
//!   outside the graph (a pipe's data, a device, another thread): the thread it runs on may
//!   be the timer thread, which every filter's timeouts need, or a thread delivering frames
//!   for other filters. A filter that needs such an event returns, waits for it on a thread
//!   of its own, holding no lock of the runtime, and then asks for its processing with an
//!   [`AttemptProcessing`] handle (`KsPinAttemptProcessing`): either on that thread
//!   ([`AttemptProcessing::attempt_here`], which then delivers downstream like a
//!   requester), or asynchronously ([`AttemptProcessing::attempt`]: the timer thread makes
//!   the call, as for a timeout). `filesrc` waits for a pipe's data on a thread of its own
//!   and processes there. STOP waits for processing attempted on another thread to return
//!   before it flushes the queues.
//! * **Delivery rule.** A frame of a kernel-side pipe is never delivered to a user-mode
//!   filter ([`Graph::check_delivery`], behaviour 40).
//! * **Frame injection** (behaviour 45, [`inject`]). A root output pin whose client registered
//!   a frame-return callback in STOP ([`Graph::register_frame_return`]) gets no requester:
//!   the client submits its own buffers with an [`Injector`], which enter the circuit at the
//!   pin's peer as [`RtFrame::Injected`] frames and travel it like allocator frames. Where an
//!   allocator frame would go back to its allocator (a sink, a copy transform's input, the
//!   last tee branch, a cancellation, the flush at STOP), an injected frame goes back to its
//!   client as a [`ReturnedFrame`] with the header and status it completed with. The pins
//!   that carry injected frames take the per-frame completion path, where header and status
//!   are at hand; returns are made on a "ks-inject" thread, never under a filter's mutex; STOP
//!   closes the pins' gates to submissions before it flushes, and every accepted frame is
//!   back before `run` returns. Policies: `docs/negotiation.md` §9.
//! * **End of stream.** Sources mark their last frame with
//!   `KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM` and call [`Pins::finish_source`]; the flag travels
//!   with the frame (copy transforms copy it); a sink that sees it calls
//!   [`Pins::end_of_stream`]. The run ends when every terminal filter has seen the end of
//!   stream (or on the first error, or after [`RunOptions::until`]).
//! * **Shutdown.** STOP closes every allocator the graph created (pending requests are
//!   cancelled, which releases blocked requesters; a client's allocator assigned to a root
//!   pin stays open, and its requester waits in slices of 20 ms so that it sees the stop),
//!   joins the threads, flushes every queue (each frame goes
//!   back to its allocator), tells every filter that it stops ([`Process::stop`]: a file
//!   sink flushes), takes the final allocator status, and moves the graph to STOP.
//!   The report says whether every frame came back.
//! * **No heap allocation per frame** once running: queue entries are a ring of reused
//!   slots sized for the pipe's frame count, completions wait in place, shared frames use
//!   recycled cells (tested with a counting allocator in `crates/ksalloc/tests`).

pub mod frame;
pub mod inject;
pub mod spec;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use ks_alloc::{Allocator, AllocatorStatus, Status};

use crate::error::{DeliveryError, StateError};
use crate::graph::{Graph, PinId};
use crate::model::PinDirection;
use crate::plan::AllocationPlan;
use crate::queue::{Completed, Direction, Queue, QueueConfig, StreamHeader};
use crate::state::KsState;

pub use frame::{RtFrame, SharePool, SharedFrame};
pub use inject::{InjectedFrame, Injector, ReturnedFrame, SubmitError};

/// The queue type of a running graph.
///
/// ```
/// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// use ks_graph::queue::{QueueConfig, StreamHeader};
/// use ks_graph::runtime::{RtFrame, RtQueue};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTE };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let mut q = RtQueue::new(QueueConfig::output()); // a root output pin's queue
/// q.push(RtFrame::Owned(alloc.try_allocate()?), StreamHeader::empty(64));
/// assert_eq!(q.available_bytes(), (0, 64));
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub type RtQueue = Queue<RtFrame>;

/// A filter's processing callback (`AVStrMiniPinProcess` / `AVStrMiniFilterProcess`).
///
/// ```
/// use ks_alloc::Status;
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::GraphSpec;
/// use ks_graph::runtime::{FilterStats, Pins, Process, RunOptions};
///
/// /// A sink that counts what reaches it.
/// #[derive(Default)]
/// struct Counter(FilterStats);
///
/// impl Process for Counter {
///     fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
///         let Some(q) = pins.queue(0) else { return Ok(()) };
///         let mut eos = false;
///         q.eject_leading(usize::MAX, |at| {
///             self.0.record(at.header.data_used);
///             eos |= at.header.is_end_of_stream();
///             Ok::<(), Status>(())
///         })?;
///         if eos {
///             pins.end_of_stream(); // this sink is done
///         }
///         Ok(())
///     }
///
///     fn stats(&self) -> FilterStats {
///         self.0.clone()
///     }
/// }
///
/// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! nullsink")?;
/// let mut built = filters::build(spec)?;
/// // Our own callback in place of `nullsink` (the filter keeps its pins and framing).
/// built.replace_process("nullsink", Box::new(Counter::default()))?;
/// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
/// assert!(report.completed);
/// assert_eq!((report.filters[1].stats.frames, report.filters[1].stats.bytes), (1, 4));
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Process: Send {
    /// Called, under the filter's processing mutex, whenever frames have arrived at one of
    /// its pins, after its stream-pointer timeouts fired, and when asked for with
    /// [`Pins::attempt_processing`]. Work through the pins' queues with stream pointers;
    /// frames ejected from a queue complete and travel on. An error stops the run.
    ///
    /// Never wait here for something outside the graph (data on a pipe or a device, another
    /// thread): the thread making the call may be the run's timer thread, which fires every
    /// filter's timeouts, and the filter's mutex is held. Return instead, and ask for the
    /// next call once the event has happened ([`AttemptProcessing`]).
    ///
    /// ```
    /// use ks_alloc::Status;
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::runtime::{process_fn, RunError, RunOptions};
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=3 size=16 ! identity ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// built.replace_process("identity", Box::new(process_fn(|_pins| {
    ///     Err(Status::DeviceNotReady("the device went away".into()))
    /// })))?;
    /// let err = built.into_runtime()?.run(&RunOptions::default()).unwrap_err();
    /// assert!(matches!(&err, RunError::Filter { filter, .. } if filter == "identity"), "{err}");
    /// assert!(matches!(err.status(), Status::DeviceNotReady(_)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "AVStrMiniPinProcess")]
    fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status>;

    /// What the filter did, for the run report ([`FilterReport::stats`]). Called once, at
    /// STOP, after the last [`process`](Self::process). A panic here is contained like one
    /// in `process`: the run fails with [`RunError::Filter`] naming the filter (or keeps the
    /// error it already failed with), and the filter's stats are empty.
    ///
    /// ```
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::runtime::RunOptions;
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=3 size=16 ! nullsink")?;
    /// let report = filters::build(spec)?.into_runtime()?.run(&RunOptions::default())?.report;
    /// let sink = &report.filters[1];
    /// assert_eq!((sink.name.as_str(), sink.stats.frames, sink.stats.bytes), ("nullsink", 3, 48));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn stats(&self) -> FilterStats;

    /// The run is stopping (the pin's transition to `KSSTATE_STOP`, which AVStream reports
    /// to `AVStrMiniPinSetDeviceState`): called once, at STOP, after the last
    /// [`process`](Self::process) and the flush of the filter's queues, and before
    /// [`stats`](Self::stats), for every run that reached RUN, however it ends (end of
    /// stream, [`RunOptions::until`], an error while streaming); a run that fails before
    /// streaming (negotiation, allocator creation) calls no filter's `stop`. Finish what is
    /// pending here: `filesink` flushes its buffered writes. An
    /// error or a panic fails the run with [`RunError::Filter`] naming the filter (a run
    /// that had already failed keeps its first error). By default, nothing.
    ///
    /// ```
    /// use ks_alloc::Status;
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::runtime::{FilterStats, Pins, Process, RunError, RunOptions};
    ///
    /// /// A sink that hands its data on only at STOP, and whose destination has gone.
    /// struct Deferred(Vec<u8>);
    ///
    /// impl Process for Deferred {
    ///     fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
    ///         let Some(q) = pins.queue(0) else { return Ok(()) };
    ///         let (data, mut eos) = (&mut self.0, false);
    ///         q.eject_leading(usize::MAX, |at| {
    ///             data.extend_from_slice(at.used_data());
    ///             eos |= at.header.is_end_of_stream();
    ///             Ok::<(), Status>(())
    ///         })?;
    ///         if eos {
    ///             pins.end_of_stream();
    ///         }
    ///         Ok(())
    ///     }
    ///
    ///     fn stats(&self) -> FilterStats {
    ///         FilterStats::default()
    ///     }
    ///
    ///     fn stop(&mut self) -> Result<(), Status> {
    ///         Err(Status::DeviceNotReady(format!("{} bytes not delivered", self.0.len()).into()))
    ///     }
    /// }
    ///
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=2 size=8 ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// built.replace_process("nullsink", Box::new(Deferred(Vec::new())))?;
    /// let err = built.into_runtime()?.run(&RunOptions::default()).unwrap_err();
    /// assert!(matches!(&err, RunError::Filter { filter, .. } if filter == "nullsink"));
    /// assert!(err.to_string().contains("16 bytes not delivered"), "{err}");
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "AVStrMiniPinSetDeviceState")]
    fn stop(&mut self) -> Result<(), Status> {
        Ok(())
    }
}

/// A [`Process`] whose callback is the closure `f`, for a filter of your own in a few lines
/// (its [`stats`](Process::stats) are empty: a closure that wants counters keeps them
/// itself). Put it in place of a built-in filter with
/// [`Built::replace_process`](crate::filters::Built::replace_process), or hand it to
/// [`Runtime::new`].
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::GraphSpec;
/// use ks_graph::runtime::{process_fn, RunOptions};
/// let spec = GraphSpec::parse_pipeline("testsrc frames=3 size=16 ! identity ! nullsink")?;
/// let mut built = filters::build(spec)?;
/// let bytes = Arc::new(AtomicU32::new(0));
/// let seen = Arc::clone(&bytes);
/// // In place of `identity`: count the bytes, then let every frame travel on.
/// built.replace_process("identity", Box::new(process_fn(move |pins| {
///     pins.queue(0).expect("connected").eject_leading(usize::MAX, |at| {
///         seen.fetch_add(at.header.data_used, Ordering::Relaxed);
///         Ok::<(), ks_alloc::Status>(())
///     })?;
///     Ok(())
/// })))?;
/// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
/// assert!(report.completed && report.all_frames_returned);
/// assert_eq!(bytes.load(Ordering::Relaxed), 48);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn process_fn<F>(f: F) -> ProcessFn<F>
where
    F: FnMut(&mut Pins<'_>) -> Result<(), Status> + Send,
{
    ProcessFn(f)
}

/// The [`Process`] made by [`process_fn`].
///
/// ```
/// use ks_graph::runtime::{process_fn, FilterStats, Process};
/// let p = process_fn(|_pins| Ok(()));
/// assert_eq!(p.stats(), FilterStats::default());
/// ```
pub struct ProcessFn<F>(F);

impl<F> fmt::Debug for ProcessFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessFn").finish_non_exhaustive()
    }
}

impl<F> Process for ProcessFn<F>
where
    F: FnMut(&mut Pins<'_>) -> Result<(), Status> + Send,
{
    fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
        (self.0)(pins)
    }

    fn stats(&self) -> FilterStats {
        FilterStats::default()
    }
}

/// Per-filter results of a run.
///
/// ```
/// # use ks_graph::filters;
/// # use ks_graph::runtime::spec::GraphSpec;
/// # use ks_graph::runtime::RunOptions;
/// # let run = |p: &str| -> Result<_, Box<dyn std::error::Error>> {
/// #     let built = filters::build(GraphSpec::parse_pipeline(p)?)?;
/// #     Ok(built.into_runtime()?.run(&RunOptions::default())?)
/// # };
/// let report = run("testsrc frames=3 size=10 ! checksum ! nullsink")?.report;
/// let stats = &report.filters[2].stats; // nullsink's
/// assert_eq!((stats.frames, stats.bytes, stats.checksum), (3, 30, None));
/// assert!(report.filters[1].stats.checksum.is_some());
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FilterStats {
    /// Frames carrying data that the filter produced (sources) or consumed (everything
    /// else). A frame without data — the empty frame that only carries the end of the
    /// stream, as `filesrc` sends for an empty file — is not counted (see
    /// [`FilterStats::record`]).
    pub frames: u64,
    /// Bytes of data in those frames.
    pub bytes: u64,
    /// A stable 64-bit hash of the data, for filters that compute one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<u64>,
}

impl FilterStats {
    /// Counts a frame of `data_used` bytes that the filter produced or consumed.
    ///
    /// Only frames carrying data count: a frame sent just to carry the end of the stream
    /// (no data) adds nothing, so an empty stream reports 0 frames and 0 bytes, and a
    /// stream of `n` bytes in frames of `size` bytes counts `n.div_ceil(size)` frames in
    /// every filter it passes, whether its last frame also carries the end of the stream
    /// or an empty frame follows it.
    ///
    /// ```
    /// use ks_graph::runtime::FilterStats;
    /// let mut s = FilterStats::default();
    /// s.record(4096);
    /// s.record(0); // an end-of-stream frame without data
    /// assert_eq!((s.frames, s.bytes), (1, 4096));
    /// ```
    pub fn record(&mut self, data_used: u32) {
        if data_used > 0 {
            self.frames += 1;
            self.bytes += u64::from(data_used);
        }
    }
}

/// What a pin does in a running graph.
///
/// ```
/// # use std::sync::mpsc;
/// # use ks_alloc::Status;
/// # use ks_graph::filters;
/// # use ks_graph::runtime::spec::GraphSpec;
/// # use ks_graph::runtime::{process_fn, PinRole, RunOptions};
/// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! identity ! nullsink")?;
/// let mut built = filters::build(spec)?;
/// let (tx, rx) = mpsc::channel();
/// // In place of `identity`: eject every input frame; it travels on through `out`.
/// built.replace_process("identity", Box::new(process_fn(move |pins| {
///     tx.send((pins.role(0), pins.role(1))).unwrap();
///     pins.queue(0).expect("connected").eject_leading(usize::MAX, |_| Ok::<(), Status>(()))?;
///     Ok(())
/// })))?;
/// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
/// assert!(report.completed && report.all_frames_returned);
/// assert_eq!(rx.recv()?, (PinRole::Input, PinRole::PassThrough));
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRole {
    /// Not connected: no queue, no frames.
    Unconnected,
    /// A connected input pin: frames arrive in its queue.
    Input,
    /// An output pin where a pipe begins: its queue receives empty frames from the pipe's
    /// requester; the filter fills them and ejects them, and they travel downstream. (In
    /// injection mode, [`Graph::register_frame_return`], it receives none: its client's
    /// frames enter the circuit at its peer.)
    Root,
    /// An output pin inside its input's pipe: the frames the filter releases on its input
    /// travel through it untouched (no queue).
    PassThrough,
}

#[derive(Debug, Default)]
struct Flags {
    end_of_stream: bool,
    source_finished: bool,
}

/// A filter's view of its pins during [`Process::process`].
///
/// ```
/// # use std::sync::mpsc;
/// # use ks_graph::filters;
/// # use ks_graph::runtime::spec::GraphSpec;
/// # use ks_graph::runtime::{process_fn, RunOptions};
/// # use ks_graph::stream_pointer::PointerState;
/// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! nullsink")?;
/// let mut built = filters::build(spec)?;
/// let (tx, rx) = mpsc::channel();
/// // In place of `nullsink`: consume every frame at the input's leading edge.
/// built.replace_process("nullsink", Box::new(process_fn(move |pins| {
///     let q = pins.queue(0).expect("connected");
///     while let Some(p) = q.leading_edge(PointerState::Locked) {
///         let header = *q.header(p)?;
///         tx.send(q.remaining_data(p)?.to_vec()).unwrap();
///         q.unlock(p, true)?;
///         if header.is_end_of_stream() {
///             pins.end_of_stream();
///             break;
///         }
///     }
///     Ok(())
/// })))?;
/// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
/// assert!(report.completed && report.all_frames_returned);
/// assert_eq!(rx.recv()?, [0, 1, 2, 3]); // the ramp of `testsrc`: byte i of frame 0 is i
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pins<'a> {
    queues: &'a mut [Option<RtQueue>],
    roles: &'a [PinRole],
    flags: &'a mut Flags,
    /// The run, for [`Pins::attempt_processing`].
    run: &'a Weak<Shared>,
    /// The filter's index in the run.
    node: usize,
}

impl fmt::Debug for Pins<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pins").field("roles", &self.roles).finish()
    }
}

impl<'a> Pins<'a> {
    /// Number of pins (the filter descriptor's pins, in order).
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use ks_alloc::Status;
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, RunOptions};
    /// let pipeline = "testsrc frames=1 size=4 ! tee name=t ! nullsink t. ! nullsink";
    /// let mut built = filters::build(GraphSpec::parse_pipeline(pipeline)?)?;
    /// let (tx, rx) = mpsc::channel();
    /// // In place of the tee `t`: every input frame travels on through both outputs.
    /// built.replace_process("t", Box::new(process_fn(move |pins| {
    ///     tx.send(pins.len()).unwrap(); // in, out0, out1
    ///     pins.queue(0).expect("connected").eject_leading(usize::MAX, |_| Ok::<(), Status>(()))?;
    ///     Ok(())
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// assert_eq!(rx.recv()?, 3);
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.roles.len()
    }

    /// Whether the filter has no pins.
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, Process, RunOptions};
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// let (tx, rx) = mpsc::channel();
    /// // Wrap the built-in `nullsink`: look at its pins, then let it do its work.
    /// let mut nullsink = built.replace_process("nullsink", Box::new(process_fn(|_| Ok(()))))?;
    /// built.replace_process("nullsink", Box::new(process_fn(move |pins| {
    ///     tx.send(pins.is_empty()).unwrap();
    ///     nullsink.process(pins)
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// assert!(!rx.recv()?); // a sink has its input pin
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// The role of pin `pin`.
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, PinRole, Process, RunOptions};
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// let (tx, rx) = mpsc::channel();
    /// // Wrap the built-in `testsrc`: look at its pins, then let it do its work.
    /// let mut testsrc = built.replace_process("testsrc", Box::new(process_fn(|_| Ok(()))))?;
    /// built.replace_process("testsrc", Box::new(process_fn(move |pins| {
    ///     tx.send((pins.role(0), pins.role(1))).unwrap();
    ///     testsrc.process(pins)
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// // Its output starts the pipe; there is no pin 1.
    /// assert_eq!(rx.recv()?, (PinRole::Root, PinRole::Unconnected));
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn role(&self, pin: usize) -> PinRole {
        self.roles.get(pin).copied().unwrap_or(PinRole::Unconnected)
    }

    /// The queue of pin `pin` (`None` for pins without one: unconnected or pass-through).
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use ks_alloc::Status;
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, RunOptions};
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! identity ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// let (tx, rx) = mpsc::channel();
    /// built.replace_process("identity", Box::new(process_fn(move |pins| {
    ///     tx.send(pins.queue(1).is_none()).unwrap(); // a pass-through output has no queue
    ///     let input = pins.queue(0).expect("connected");
    ///     input.eject_leading(usize::MAX, |_| Ok::<(), Status>(()))?;
    ///     Ok(())
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// assert!(rx.recv()?);
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queue(&mut self, pin: usize) -> Option<&mut RtQueue> {
        self.queues.get_mut(pin).and_then(Option::as_mut)
    }

    /// The queues of two different pins at once (for filters that move data from one to
    /// the other, like a copy transform).
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use ks_graph::filters;
    /// # use ks_graph::queue::StreamHeader;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, RunOptions};
    /// # use ks_graph::stream_pointer::PointerState;
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! copy ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// let (tx, rx) = mpsc::channel();
    /// // In place of `copy`: input frames are copied into the output pipe's own frames.
    /// built.replace_process("copy", Box::new(process_fn(move |pins| {
    ///     let (Some(input), Some(output)) = pins.pair(0, 1) else { return Ok(()) };
    ///     while let Some(src) = input.leading_edge(PointerState::Locked) {
    ///         let Some(dst) = output.leading_edge(PointerState::Locked) else { break };
    ///         let header = *input.header(src)?;
    ///         let n = header.data_used as usize;
    ///         output.data_mut(dst)?[..n].copy_from_slice(&input.data(src)?[..n]);
    ///         let extent = output.header(dst)?.frame_extent;
    ///         *output.header_mut(dst)? = StreamHeader { frame_extent: extent, ..header };
    ///         tx.send(n).unwrap();
    ///         input.unlock(src, true)?;
    ///         output.unlock(dst, true)?;
    ///     }
    ///     Ok(())
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// assert_eq!(rx.recv()?, 4);
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pair(&mut self, a: usize, b: usize) -> (Option<&mut RtQueue>, Option<&mut RtQueue>) {
        if a == b || a >= self.queues.len() || b >= self.queues.len() {
            return (self.queue(a), None);
        }
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let (left, right) = self.queues.split_at_mut(hi);
        let (x, y) = (left[lo].as_mut(), right[0].as_mut());
        if a < b { (x, y) } else { (y, x) }
    }

    /// The indices of the root output pins (outputs that start a pipe and need filling).
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, Process, RunOptions};
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// let (tx, rx) = mpsc::channel();
    /// // Wrap the built-in `testsrc`: look at its pins, then let it do its work.
    /// let mut testsrc = built.replace_process("testsrc", Box::new(process_fn(|_| Ok(()))))?;
    /// built.replace_process("testsrc", Box::new(process_fn(move |pins| {
    ///     tx.send(pins.root_outputs().collect::<Vec<_>>()).unwrap();
    ///     testsrc.process(pins)
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// assert_eq!(rx.recv()?, [0]); // its `out` pin needs filling
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn root_outputs(&self) -> impl Iterator<Item = usize> + use<'a> {
        let roles = self.roles;
        (0..roles.len()).filter(move |i| roles[*i] == PinRole::Root)
    }

    /// Tells the runtime this filter has received the end of the stream (a terminal filter
    /// that calls this is done).
    ///
    /// ```
    /// # use ks_alloc::Status;
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, RunOptions};
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// // In place of `nullsink` (a terminal): without its `end_of_stream`, no end to the run.
    /// built.replace_process("nullsink", Box::new(process_fn(|pins| {
    ///     let mut eos = false;
    ///     pins.queue(0).expect("connected").eject_leading(usize::MAX, |at| {
    ///         eos |= at.header.is_end_of_stream();
    ///         Ok::<(), Status>(())
    ///     })?;
    ///     if eos {
    ///         pins.end_of_stream();
    ///     }
    ///     Ok(())
    /// })))?;
    /// assert!(built.into_runtime()?.run(&RunOptions::default())?.report.completed);
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn end_of_stream(&mut self) {
        self.flags.end_of_stream = true;
    }

    /// Tells the runtime this source produced its last frame: the requesters feeding its
    /// root pins stop.
    ///
    /// ```
    /// # use ks_alloc::Status;
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, RunOptions};
    /// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc size=4 ! nullsink")?)?;
    /// // In place of `testsrc`: three frames, the last one marked end of stream; then finished.
    /// let mut sent = 0;
    /// built.replace_process("testsrc", Box::new(process_fn(move |pins| {
    ///     pins.queue(0).expect("connected").eject_leading(3 - sent, |at| {
    ///         sent += 1;
    ///         at.header.data_used = 4;
    ///         at.header.set_end_of_stream(sent == 3);
    ///         Ok::<(), Status>(())
    ///     })?;
    ///     if sent == 3 {
    ///         pins.finish_source(); // its requester stops feeding it frames
    ///     }
    ///     Ok(())
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// let sink = &report.filters[1].stats; // what the built-in `nullsink` received
    /// assert_eq!((sink.frames, sink.bytes), (3, 12));
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn finish_source(&mut self) {
        self.flags.source_finished = true;
    }

    /// Whether [`finish_source`](Self::finish_source) was called.
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use ks_alloc::Status;
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, RunOptions};
    /// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc size=4 ! nullsink")?)?;
    /// let (tx, rx) = mpsc::channel();
    /// built.replace_process("testsrc", Box::new(process_fn(move |pins| {
    ///     if pins.source_finished() {
    ///         return Ok(()); // called again after the last frame: nothing more to send
    ///     }
    ///     pins.queue(0).expect("connected").eject_leading(1, |at| {
    ///         at.header.set_end_of_stream(true);
    ///         Ok::<(), Status>(())
    ///     })?;
    ///     pins.finish_source();
    ///     tx.send(pins.source_finished()).unwrap();
    ///     Ok(())
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [true]);
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn source_finished(&self) -> bool {
        self.flags.source_finished
    }

    /// A handle that asks the runtime, from any thread, to call this filter's process
    /// callback again (`KsPinAttemptProcessing`): for a filter whose work waits for something
    /// outside the graph (data on a pipe, a device, another thread), which it must not wait
    /// for in its callback. See [`AttemptProcessing`].
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use std::thread;
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, RunOptions};
    /// # use ks_graph::stream_pointer::PointerState;
    /// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc size=4 ! nullsink")?)?;
    /// // In place of `testsrc`: frames carry what another thread sends. The filter never waits
    /// // for it; that thread asks for processing again each time it has sent something.
    /// let (tx, rx) = mpsc::channel::<u8>();
    /// let mut producer = Some(tx);
    /// built.replace_process("testsrc", Box::new(process_fn(move |pins| {
    ///     if let Some(tx) = producer.take() {
    ///         let again = pins.attempt_processing();
    ///         thread::spawn(move || {
    ///             for b in 1..=3 {
    ///                 tx.send(b).unwrap();
    ///                 again.attempt();
    ///             }
    ///         });
    ///     }
    ///     let q = pins.queue(0).expect("connected");
    ///     let mut last = false;
    ///     while let Some(p) = q.leading_edge(PointerState::Locked) {
    ///         let Ok(b) = rx.try_recv() else {
    ///             q.unlock(p, false)?; // nothing yet: the frame waits at the leading edge
    ///             break;
    ///         };
    ///         q.data_mut(p)?[..4].fill(b);
    ///         let h = q.header_mut(p)?;
    ///         h.data_used = 4;
    ///         last = b == 3;
    ///         h.set_end_of_stream(last);
    ///         q.unlock(p, true)?;
    ///         if last {
    ///             break;
    ///         }
    ///     }
    ///     if last {
    ///         pins.finish_source();
    ///     }
    ///     Ok(())
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// assert_eq!((report.filters[1].stats.frames, report.filters[1].stats.bytes), (3, 12));
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "KsPinAttemptProcessing")]
    #[doc(alias = "KsFilterAttemptProcessing")]
    pub fn attempt_processing(&self) -> AttemptProcessing {
        AttemptProcessing {
            run: Weak::clone(self.run),
            node: self.node,
        }
    }
}

/// Asks the runtime to call a filter's [`Process::process`] again, from any thread: KS's
/// `KsPinAttemptProcessing` with `Asynchronous` set. Made by [`Pins::attempt_processing`].
///
/// A process callback must not wait for anything outside the graph: the thread that runs it
/// may be the run's timer thread, which fires every filter's stream-pointer timeouts, or a
/// thread delivering frames to other filters, and a wait there makes them all wait. A filter
/// whose work depends on such an event returns instead, waits for the event on a thread of
/// its own (holding none of the runtime's locks), and then calls
/// [`attempt_here`](Self::attempt_here) (processing on that thread) or
/// [`attempt`](Self::attempt) (on the timer thread). `filesrc` waits for a pipe's data this
/// way, with `attempt_here`.
///
/// The handle does not keep the run alive: once the run is over, `attempt` does nothing
/// and returns `false`.
///
/// ```
/// use std::sync::mpsc;
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::GraphSpec;
/// use ks_graph::runtime::{process_fn, Process, RunOptions};
/// let spec = GraphSpec::parse_pipeline("testsrc frames=2 size=4 ! nullsink")?;
/// let mut built = filters::build(spec)?;
/// let (tx, rx) = mpsc::channel();
/// // Wrap the built-in `testsrc`: keep a handle, then let it do its work.
/// let mut testsrc = built.replace_process("testsrc", Box::new(process_fn(|_| Ok(()))))?;
/// built.replace_process("testsrc", Box::new(process_fn(move |pins| {
///     let _ = tx.send(pins.attempt_processing());
///     testsrc.process(pins)
/// })))?;
/// assert!(built.into_runtime()?.run(&RunOptions::default())?.report.completed);
/// // The run is over: nothing to attempt any more.
/// assert!(!rx.recv()?.attempt());
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "KsPinAttemptProcessing")]
#[derive(Clone)]
pub struct AttemptProcessing {
    run: Weak<Shared>,
    node: usize,
}

impl fmt::Debug for AttemptProcessing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptProcessing")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl AttemptProcessing {
    /// Asks for one more call of the filter's process callback. The run's timer thread makes
    /// it soon, under the filter's processing mutex (after firing the filter's due
    /// stream-pointer timeouts), and routes what completed; requests made before that call
    /// are served by it. This never waits and never runs the filter on the calling thread,
    /// so it may be called from any thread, within the filter's own callbacks too.
    ///
    /// Returns `false` when the run is stopping or over (nothing will be called), `true`
    /// when the request was taken (a run that stops before serving it drops it).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use ks_alloc::Status;
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::runtime::{process_fn, RunOptions};
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! identity ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// let calls = Arc::new(AtomicU32::new(0));
    /// let seen = Arc::clone(&calls);
    /// // In place of `identity`: let the frame go only on the third call, asking for the
    /// // next one from within the callback.
    /// built.replace_process("identity", Box::new(process_fn(move |pins| {
    ///     if seen.fetch_add(1, Ordering::SeqCst) < 2 {
    ///         assert!(pins.attempt_processing().attempt());
    ///         return Ok(());
    ///     }
    ///     pins.queue(0).expect("connected").eject_leading(usize::MAX, |_| Ok::<(), Status>(()))?;
    ///     Ok(())
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// assert_eq!(calls.load(Ordering::SeqCst), 3);
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attempt(&self) -> bool {
        let Some(run) = self.run.upgrade() else {
            return false;
        };
        // SeqCst: as the timer thread's load; a request that misses the stop is dropped
        // with the timer thread's exit, which is all a stopping run needs.
        if run.stop.load(Ordering::SeqCst) {
            return false;
        }
        let mut timers = lock(&run.timers);
        if let Some(asked) = timers.attempted.get_mut(self.node) {
            if !*asked {
                *asked = true;
                timers.any_attempted = true;
                run.timer_cv.notify_one();
            }
        }
        true
    }

    /// Calls the filter's process callback now, on the calling thread (KS's
    /// `KsPinAttemptProcessing` with `Asynchronous` clear), under its processing mutex, and
    /// routes what completed, delivering it downstream on this thread too: the thread a
    /// source waits for its data on becomes its streaming thread, and neither the timer
    /// thread nor a thread hop is involved. The call waits for the filter's mutex (another
    /// thread may be processing it) and for the filters downstream.
    ///
    /// Call it from a thread of your own that holds no lock of the graph. Called from a
    /// thread of the run, or from within a callback of the run (which may hold a filter's
    /// mutex), it does what [`attempt`](Self::attempt) does instead, so it cannot deadlock.
    /// Delivery recurses once per filter downstream: give the thread a roomy stack for a
    /// long chain (the run's own threads have 64 MiB).
    ///
    /// Returns `false` when the run is stopping or over (nothing was called), `true`
    /// otherwise. STOP waits for a call under way to return before it flushes the queues.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::thread;
    /// use ks_alloc::Status;
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::runtime::{process_fn, RunOptions};
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! identity ! nullsink")?;
    /// let mut built = filters::build(spec)?;
    /// let (tx, rx) = mpsc::channel();
    /// let mut waiter = None;
    /// // In place of `identity`: hold the frame until a thread of its own lets it go, on
    /// // that thread.
    /// built.replace_process("identity", Box::new(process_fn(move |pins| {
    ///     if waiter.is_none() {
    ///         let again = pins.attempt_processing();
    ///         let tx = tx.clone();
    ///         waiter = Some(thread::spawn(move || {
    ///             assert!(again.attempt_here());
    ///             tx.send(thread::current().id()).unwrap();
    ///         }));
    ///         return Ok(());
    ///     }
    ///     pins.queue(0).expect("connected").eject_leading(usize::MAX, |_| Ok::<(), Status>(()))?;
    ///     tx.send(thread::current().id()).unwrap();
    ///     Ok(())
    /// })))?;
    /// let report = built.into_runtime()?.run(&RunOptions::default())?.report;
    /// assert!(report.completed && report.all_frames_returned);
    /// // The second call, which let the frame go, ran on the waiting thread.
    /// let (processed_on, waiter_is) = (rx.recv()?, rx.recv()?);
    /// assert_eq!(processed_on, waiter_is);
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attempt_here(&self) -> bool {
        if PROCESSING.with(std::cell::Cell::get) {
            return self.attempt();
        }
        match self.run.upgrade() {
            Some(run) => run.attempt_here(self.node),
            None => false,
        }
    }
}

/// Options of [`Runtime::run`].
///
/// ```
/// use std::time::Duration;
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::GraphSpec;
/// use ks_graph::runtime::RunOptions;
/// // A time limit as a safety net; this stream ends long before it.
/// let options = RunOptions {
///     until: Some(Duration::from_secs(60)),
///     ..RunOptions::default()
/// };
/// let spec = GraphSpec::parse_pipeline("testsrc frames=2 size=8 ! nullsink")?;
/// let report = filters::build(spec)?.into_runtime()?.run(&options)?.report;
/// assert!(report.completed); // ended by the end of the stream, not by `until`
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct RunOptions {
    /// Stop after this long even if the stream has not ended.
    pub until: Option<Duration>,
    /// Called about ten times a second with the frames that reached terminal filters so far.
    pub progress: Option<Box<dyn Fn(u64) + Send + Sync>>,
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("until", &self.until)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Per-pipe results of a run.
///
/// ```
/// # use ks_graph::filters;
/// # use ks_graph::runtime::spec::GraphSpec;
/// # use ks_graph::runtime::RunOptions;
/// # let run = |p: &str| -> Result<_, Box<dyn std::error::Error>> {
/// #     let built = filters::build(GraphSpec::parse_pipeline(p)?)?;
/// #     Ok(built.into_runtime()?.run(&RunOptions::default())?)
/// # };
/// let report = run("testsrc frames=4 size=64 ! copy ! nullsink")?.report;
/// assert_eq!(report.pipes.len(), 2); // the copy starts a second pipe
/// let first = &report.pipes[0];
/// assert_eq!(first.allocator, "default");
/// assert!(first.requested >= 4);
/// assert_eq!(first.allocated, 0); // every frame came back
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, serde::Serialize)]
pub struct PipeReport {
    /// The pipe's id in the plan.
    pub id: usize,
    /// `"default"` or the vendor's name (a client's allocator assigned to the pipe's root
    /// pin: its own name).
    pub allocator: String,
    /// The allocator's memory.
    pub memory: String,
    /// Frames the requester took from the allocator.
    pub requested: u64,
    /// Frames outstanding at the end (0 when every frame came back).
    pub allocated: u32,
    /// Most frames outstanding at once.
    pub peak: u32,
    /// Most allocation requests pending at once.
    pub max_pending: u32,
    /// Frees that completed a pending request directly.
    pub handoffs: u64,
}

impl PipeReport {
    fn new(id: usize, name: &str, memory: String, requested: u64, s: &AllocatorStatus) -> Self {
        PipeReport {
            id,
            allocator: name.to_owned(),
            memory,
            requested,
            allocated: s.allocated_frames,
            peak: s.peak_allocated_frames,
            max_pending: s.max_pending,
            handoffs: s.handoffs,
        }
    }
}

/// Per-filter results of a run.
///
/// ```
/// # use ks_graph::filters;
/// # use ks_graph::runtime::spec::GraphSpec;
/// # use ks_graph::runtime::RunOptions;
/// # let run = |p: &str| -> Result<_, Box<dyn std::error::Error>> {
/// #     let built = filters::build(GraphSpec::parse_pipeline(p)?)?;
/// #     Ok(built.into_runtime()?.run(&RunOptions::default())?)
/// # };
/// let report = run("testsrc frames=2 size=8 ! invert name=inv ! nullsink")?.report;
/// let inv = &report.filters[1];
/// assert_eq!((inv.name.as_str(), inv.kind.as_str()), ("inv", "invert"));
/// assert_eq!(inv.stats.bytes, 16);
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, serde::Serialize)]
pub struct FilterReport {
    /// Instance name.
    pub name: String,
    /// Filter type (descriptor name).
    pub kind: String,
    /// What it did.
    #[serde(flatten)]
    pub stats: FilterStats,
}

/// The result of a run.
///
/// ```
/// # use ks_graph::filters;
/// # use ks_graph::runtime::spec::GraphSpec;
/// # use ks_graph::runtime::RunOptions;
/// # let run = |p: &str| -> Result<_, Box<dyn std::error::Error>> {
/// #     let built = filters::build(GraphSpec::parse_pipeline(p)?)?;
/// #     Ok(built.into_runtime()?.run(&RunOptions::default())?)
/// # };
/// let report = run("testsrc frames=5 size=100 ! nullsink")?.report;
/// assert!(report.completed && report.all_frames_returned);
/// assert_eq!((report.frames, report.bytes), (5, 500));
/// assert_eq!(report.filters.len(), 2);
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    /// Frames carrying data produced by the sources (an empty end-of-stream frame does not
    /// count; see [`FilterStats::frames`]). Frames a client injected ([`Injector`]) are not
    /// produced by a source: they count in the stats of the filters they reach.
    pub frames: u64,
    /// Data bytes in those frames.
    pub bytes: u64,
    /// Wall-clock time from RUN until the run ended (the end of the stream, an error or
    /// [`RunOptions::until`]) and its threads had stopped.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    /// Whether the stream ended (every terminal saw end of stream) rather than being
    /// stopped by [`RunOptions::until`].
    pub completed: bool,
    /// Per pipe: allocator and its status at the end.
    pub pipes: Vec<PipeReport>,
    /// Per filter.
    pub filters: Vec<FilterReport>,
    /// Whether every frame went back to its allocator, every frame a client injected went
    /// back to its frame-return callback, and every allocator the graph created was closed.
    /// A client's allocator (assigned to a root pin) stays open; for it, no more frames may
    /// be out at the end than were out when the run started (the client's own).
    pub all_frames_returned: bool,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl RunReport {
    /// Frames per second.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ks_graph::runtime::RunReport;
    /// let report = RunReport {
    ///     frames: 100,
    ///     bytes: 409_600,
    ///     elapsed: Duration::from_secs(2),
    ///     completed: true,
    ///     pipes: Vec::new(),
    ///     filters: Vec::new(),
    ///     all_frames_returned: true,
    /// };
    /// assert_eq!(report.frames_per_sec(), 50.0);
    /// ```
    pub fn frames_per_sec(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Megabytes (10⁶ bytes) per second.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ks_graph::runtime::RunReport;
    /// let report = RunReport {
    ///     frames: 1000,
    ///     bytes: 4_000_000,
    ///     elapsed: Duration::from_secs(2),
    ///     completed: true,
    ///     pipes: Vec::new(),
    ///     filters: Vec::new(),
    ///     all_frames_returned: true,
    /// };
    /// assert_eq!(report.mb_per_sec(), 2.0);
    /// ```
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The checksums reported by filters, as `(filter, value)`.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::RunOptions;
    /// # let run = |p: &str| -> Result<_, Box<dyn std::error::Error>> {
    /// #     let built = filters::build(GraphSpec::parse_pipeline(p)?)?;
    /// #     Ok(built.into_runtime()?.run(&RunOptions::default())?)
    /// # };
    /// use ks_graph::filters::{fnv1a64, FNV_OFFSET};
    /// let report = run("testsrc frames=2 size=4 ! checksum ! nullsink")?.report;
    /// // The ramp pattern: frame n, byte i is n + i.
    /// let expected = fnv1a64(fnv1a64(FNV_OFFSET, &[0, 1, 2, 3]), &[1, 2, 3, 4]);
    /// assert_eq!(report.checksums().collect::<Vec<_>>(), [("checksum", expected)]);
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checksums(&self) -> impl Iterator<Item = (&str, u64)> {
        self.filters
            .iter()
            .filter_map(|f| f.stats.checksum.map(|c| (f.name.as_str(), c)))
    }
}

/// Why a run failed.
///
/// ```
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::GraphSpec;
/// use ks_graph::runtime::{RunError, Runtime};
/// let graph = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?.graph;
/// let err = Runtime::new(graph, Vec::new()).unwrap_err();
/// assert!(matches!(err, RunError::Setup(_)));
/// assert_eq!(err.to_string(), "0 process callbacks for 2 filters");
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// A state change failed (negotiation, allocator creation, …).
    State(StateError),
    /// A filter's process callback returned an error or panicked.
    Filter {
        /// The filter instance.
        filter: String,
        /// Its status.
        status: Status,
    },
    /// A frame was about to reach a pin it must not reach.
    Delivery(DeliveryError),
    /// The run could not be set up, or its machinery failed: the wrong number of process
    /// callbacks, more than [`MAX_RUN_FILTERS`] filters, a graph that is not in STOP, a
    /// thread that could not start, a requester or `progress` callback that panicked.
    Setup(String),
    /// A filter completed the frame that carries the end of the stream with an error (or
    /// cancelled it), so the frame was dropped and the stream could not end downstream.
    EndOfStreamLost {
        /// The filter whose queue completed the frame.
        filter: String,
        /// The frame's completion status.
        status: Status,
    },
}

impl RunError {
    /// The KS status of the failure.
    ///
    /// ```
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::runtime::Runtime;
    /// let graph = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?.graph;
    /// let err = Runtime::new(graph, Vec::new()).unwrap_err();
    /// assert_eq!(err.status().name(), "STATUS_INVALID_PARAMETER");
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> Status {
        match self {
            RunError::State(e) => e.status(),
            RunError::Filter { status, .. } => status.clone(),
            RunError::Delivery(e) => e.status(),
            RunError::Setup(m) => Status::InvalidParameter(m.clone().into()),
            RunError::EndOfStreamLost { status, .. } => status.clone(),
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::State(e) => write!(f, "{e}"),
            RunError::Filter { filter, status } => write!(f, "filter '{filter}' failed: {status}"),
            RunError::Delivery(e) => write!(f, "{e}"),
            RunError::Setup(m) => f.write_str(m),
            RunError::EndOfStreamLost { filter, status } => write!(
                f,
                "filter '{filter}' completed the end-of-stream frame with {status}; the stream \
                 cannot end"
            ),
        }
    }
}

impl std::error::Error for RunError {}

impl From<StateError> for RunError {
    fn from(e: StateError) -> RunError {
        RunError::State(e)
    }
}

/// Runs `what`, a callback of a filter's: its error, or, if it panics, an error saying so. A
/// callback that panics (a filter of the caller's) fails the run like one that returns an
/// error, instead of killing the thread that called it and leaving the run waiting.
fn call_filter<T>(what: &str, f: impl FnOnce() -> Result<T, Status>) -> Result<T, Status> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panicked(what, &*p)))
}

/// `STATUS_UNSUCCESSFUL` saying that `what` (a callback of a filter's) panicked, and why.
fn panicked(what: &str, payload: &(dyn std::any::Any + Send)) -> Status {
    Status::Unsuccessful(format!("{what} panicked: {}", panic_message(payload)).into())
}

/// The text of a panic's payload (what `panic!` was given, if it was a string).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a non-string payload)")
}

/// Most filters a [`Runtime`] runs. Policy: a frame's delivery recurses once per filter
/// downstream (on a 64 MiB stack), and every pin's queue is sized for its whole pipe, so a
/// chain of thousands of filters would exhaust the stack or the memory rather than fail
/// cleanly; no real graph comes near this.
///
/// ```
/// use ks_graph::filters;
/// use ks_graph::runtime::{MAX_RUN_FILTERS, spec::GraphSpec};
/// let long = format!("testsrc{} ! nullsink", " ! identity".repeat(MAX_RUN_FILTERS));
/// let err = filters::build(GraphSpec::parse_pipeline(&long)?)?.into_runtime().unwrap_err();
/// assert!(err.to_string().contains("at most 1024"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_RUN_FILTERS: usize = 1024;

/// Most frames a requester feeds in at once.
const BATCH: usize = 16;

/// The stack of a thread that processes filters: delivery recurses once per filter
/// downstream, so a long chain needs a roomy stack (only touched pages are used).
pub(crate) const PROCESSING_STACK: usize = 64 << 20;

thread_local! {
    /// This thread is one of the run's (a requester, the timer), or is processing a filter
    /// for [`AttemptProcessing::attempt_here`] or an injector's submission, or runs a
    /// callback of the run: it may hold a filter's mutex, so a processing attempted here
    /// must not wait for one.
    static PROCESSING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as [`PROCESSING`] until dropped (an unwind included), then restores
/// what it was.
pub(crate) struct Processing(bool);

impl Processing {
    pub(crate) fn enter() -> Processing {
        Processing(PROCESSING.with(|f| f.replace(true)))
    }
}

impl Drop for Processing {
    fn drop(&mut self) {
        PROCESSING.with(|f| f.set(self.0));
    }
}

/// How long a requester waits on a client's allocator before it looks at `stop` again (a
/// client's allocator is not closed at STOP, which is what releases the other requesters).
const CLIENT_WAIT_SLICE: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy)]
struct Target {
    filter: usize,
    pin: usize,
    /// Index into `Shared::refusals` when the delivery rule refuses this connection.
    refused: Option<usize>,
}

struct NodeState {
    queues: Vec<Option<RtQueue>>,
    process: Box<dyn Process>,
    flags: Flags,
    eos_counted: bool,
    /// The earliest stream-pointer timeout of the queues, as last told to the timer.
    armed: Option<Instant>,
}

struct Node {
    /// Index in `Shared::nodes` (and `Shared::timers`).
    index: usize,
    name: String,
    kind: String,
    roles: Vec<PinRole>,
    /// Where frames released on an input pin go (the pass-through outputs' peers).
    forward: Vec<Target>,
    /// For root output pins: the connected input.
    root_target: Vec<Option<Target>>,
    /// Per pin: its pipe starts at a pin in injection mode, so frames completing here may be
    /// injected ones, which go back to their client with the header and status they
    /// completed with. Such pins take the per-frame path of `process_locked` (through
    /// `route`), where those are at hand, instead of the batched one.
    injected: Vec<bool>,
    terminal: bool,
    finished: AtomicBool,
    state: Mutex<NodeState>,
}

struct Shared {
    nodes: Vec<Node>,
    stop: AtomicBool,
    pool: SharePool,
    refusals: Vec<DeliveryError>,
    terminals_left: Mutex<usize>,
    done: Condvar,
    error: Mutex<Option<RunError>>,
    delivered: AtomicU64,
    /// What the timer thread has to do.
    timers: Mutex<Timers>,
    /// Wakes the timer thread: a deadline came earlier, a filter's processing was
    /// attempted, or the run stops.
    timer_cv: Condvar,
    /// This run, for the filters' [`AttemptProcessing`] handles (which must not keep it
    /// alive).
    me: Weak<Shared>,
    /// [`AttemptProcessing::attempt_here`] calls under way: STOP waits for none to be left
    /// before it flushes the queues.
    attempting: Mutex<usize>,
    /// Signalled when `attempting` drops to 0.
    attempts_done: Condvar,
}

/// The timer thread's work, per filter.
struct Timers {
    /// Each filter's earliest stream-pointer timeout (`NodeState::armed`); written with the
    /// filter's mutex held, so in the same order as `armed`.
    deadlines: Vec<Option<Instant>>,
    /// Filters whose processing was attempted ([`AttemptProcessing::attempt`]) since the
    /// timer thread last looked.
    attempted: Vec<bool>,
    /// Whether any of `attempted` is set.
    any_attempted: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Fails the run with filter `node`'s error (the first error of the run is kept).
    fn fail_filter(&self, node: &Node, status: Status) {
        self.fail(RunError::Filter {
            filter: node.name.clone(),
            status,
        });
    }

    fn fail(&self, e: RunError) {
        let mut slot = lock(&self.error);
        if slot.is_none() {
            *slot = Some(e);
        }
        drop(slot);
        // SeqCst: a single global stop order is easiest to reason about; this runs once.
        self.stop.store(true, Ordering::SeqCst);
        drop(lock(&self.terminals_left));
        self.done.notify_all();
        self.stop_timer();
    }

    /// Wakes the timer thread to see `stop` (set before this). Notified under its mutex, so
    /// the thread is either before its check of `stop` or already waiting.
    fn stop_timer(&self) {
        let _guard = lock(&self.timers);
        self.timer_cv.notify_all();
    }

    /// Delivers a frame to a filter's pin: under the filter's processing mutex, pushes it into
    /// the pin's queue, runs the filter's process callback, and routes the frames that
    /// completed further downstream (recursively, so each filter is locked once per frame).
    /// Locks are taken downstream only and the graph is acyclic, so threads meeting in a
    /// filter wait for each other but never deadlock; and frames on every connection keep
    /// their order because they are pushed while the upstream filter's mutex is held.
    fn deliver(&self, t: Target, frame: RtFrame, header: StreamHeader) {
        // Relaxed: `stop` is advisory here (it only saves work after the run is over); the
        // authoritative shutdown is allocator close + thread join, which synchronise.
        if self.stop.load(Ordering::Relaxed) {
            // Back to its allocator, or, injected, to its client: cancelled on its way.
            frame.complete(&header, Err(Status::Cancelled));
            return;
        }
        if let Some(r) = t.refused {
            let refusal = self.refusals[r].clone();
            frame.complete(&header, Err(refusal.status()));
            self.fail(RunError::Delivery(refusal));
            return;
        }
        let node = &self.nodes[t.filter];
        let mut guard = lock(&node.state);
        match guard.queues.get_mut(t.pin).and_then(Option::as_mut) {
            Some(q) => {
                q.push(frame, header);
            }
            None => {
                frame.complete(&header, Err(Status::Cancelled));
                return;
            }
        }
        self.process_locked(node, &mut guard);
    }

    /// Runs a filter's process callback (its mutex held), then routes what completed.
    fn process_locked(&self, node: &Node, st: &mut NodeState) {
        let result = {
            let mut pins = Pins {
                queues: &mut st.queues,
                roles: &node.roles,
                flags: &mut st.flags,
                run: &self.me,
                node: node.index,
            };
            let process = &mut st.process;
            call_filter("its process callback", || process.process(&mut pins))
        };
        if let Err(status) = result {
            self.fail_filter(node, status);
            return;
        }
        if st.flags.source_finished {
            // Release/Acquire with the requester's load: a requester that sees the flag also
            // sees the source's last writes (they are under the node mutex anyway; the pair
            // only makes the flag itself reliable without taking the mutex).
            node.finished.store(true, Ordering::Release);
        }
        for pin in 0..st.queues.len() {
            let Some(q) = st.queues[pin].as_mut() else {
                continue;
            };
            // The common case, one downstream pin: move every completed frame into its queue
            // under one lock, then process it once (a batch per lock, not a lock per frame).
            let single = match node.roles[pin] {
                PinRole::Input if node.forward.len() == 1 => Some(node.forward[0]),
                PinRole::Root => node.root_target[pin],
                _ => None,
            };
            let batched = !node.injected[pin];
            match single {
                Some(t) if t.refused.is_none() && !node.terminal && batched => {
                    self.deliver_all(t, q);
                }
                // Nowhere to go (a sink, or a copy transform's input): back to the allocator.
                _ if node.roles[pin] == PinRole::Input && node.forward.is_empty() && batched => {
                    let n = q.discard_completed();
                    if node.terminal {
                        // Relaxed: a progress counter; nothing is ordered by it.
                        self.delivered.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                _ => {
                    while let Some(c) = q.pop_completed() {
                        self.route(node, pin, c);
                    }
                }
            }
            if let Some(status) = q.take_failed_end_of_stream() {
                self.fail(RunError::EndOfStreamLost {
                    filter: node.name.clone(),
                    status,
                });
            }
        }
        if st.flags.end_of_stream && !st.eos_counted {
            st.eos_counted = true;
            if node.terminal {
                let mut left = lock(&self.terminals_left);
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.done.notify_all();
                }
            }
        }
        self.arm(node, st);
    }

    /// Tells the timer thread when the filter's next stream-pointer timeout is due, if that
    /// changed (the filter's mutex held). Without timeouts this is a check per queue.
    fn arm(&self, node: &Node, st: &mut NodeState) {
        let next = st
            .queues
            .iter()
            .flatten()
            .filter_map(RtQueue::next_timeout)
            .min();
        if next != st.armed {
            // Only a deadline that came earlier needs the timer awake now; one that moved
            // later (a watchdog pushed back at every process call) or went away is read at
            // its next wake, which is then at most one early.
            let earlier = match (next, st.armed) {
                (Some(n), Some(old)) => n < old,
                (Some(_), None) => true,
                (None, _) => false,
            };
            st.armed = next;
            lock(&self.timers).deadlines[node.index] = next;
            if earlier {
                self.timer_cv.notify_one();
            }
        }
    }

    /// [`AttemptProcessing::attempt_here`]: processes filter `index` on this thread, unless
    /// the run is stopping. Counted in `attempting` from before the look at `stop`, so that
    /// STOP, which sets `stop` and then waits for the count to drop to 0, flushes the queues
    /// only after every such call has left the filters.
    fn attempt_here(&self, index: usize) -> bool {
        /// Uncounts the call however it ends.
        struct Counted<'a>(&'a Shared);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                let mut n = lock(&self.0.attempting);
                *n -= 1;
                if *n == 0 {
                    self.0.attempts_done.notify_all();
                }
            }
        }
        *lock(&self.attempting) += 1;
        let _counted = Counted(self);
        // SeqCst: pairs with the store at STOP, made before STOP reads the count.
        if self.stop.load(Ordering::SeqCst) {
            return false;
        }
        let Some(node) = self.nodes.get(index) else {
            return false;
        };
        let processing = Processing::enter();
        // The filter's own panics fail the run in `process_locked`; this catches the rest,
        // as on the run's threads.
        let processed = catch_unwind(AssertUnwindSafe(|| {
            let mut st = lock(&node.state);
            self.process_locked(node, &mut st);
        }));
        drop(processing);
        if let Err(p) = processed {
            self.fail(RunError::Setup(format!(
                "processing '{}' for another thread panicked: {}",
                node.name,
                panic_message(&*p)
            )));
        }
        true
    }

    /// The timer thread: sleeps until the earliest stream-pointer timeout of any filter or
    /// an attempt at a filter's processing ([`AttemptProcessing`]), fires the due timeouts
    /// (under each filter's mutex), then lets the filter process, as
    /// `KsPinAttemptProcessing` would, and routes what completed. Ends when the run stops.
    fn timer(&self) {
        let _processing = Processing::enter();
        let mut timers = lock(&self.timers);
        // (filter, whether its processing was attempted)
        let mut due: Vec<(usize, bool)> = Vec::with_capacity(timers.deadlines.len());
        loop {
            // SeqCst: pairs with the SeqCst store in `fail` and at STOP, both of which
            // then notify under this mutex, so the wake-up cannot be missed.
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let now = Instant::now();
            let next = if timers.any_attempted {
                Some(now)
            } else {
                timers.deadlines.iter().flatten().min().copied()
            };
            timers = match next {
                None => self
                    .timer_cv
                    .wait(timers)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(at) if at > now => {
                    self.timer_cv
                        .wait_timeout(timers, at - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                Some(_) => {
                    due.clear();
                    let t = &mut *timers;
                    due.extend(
                        t.deadlines
                            .iter()
                            .zip(&t.attempted)
                            .enumerate()
                            .filter(|(_, (d, a))| **a || d.is_some_and(|d| d <= now))
                            .map(|(i, (_, a))| (i, *a)),
                    );
                    t.attempted.fill(false);
                    t.any_attempted = false;
                    // Filters are locked without this mutex held: `arm` takes it under theirs.
                    drop(timers);
                    for &(i, attempted) in &due {
                        let node = &self.nodes[i];
                        let mut st = lock(&node.state);
                        let queues = &mut st.queues;
                        let fired = call_filter("a stream-pointer timeout callback", || {
                            Ok(queues
                                .iter_mut()
                                .flatten()
                                .map(|q| q.fire_timeouts(now))
                                .sum::<usize>())
                        });
                        let fired = match fired {
                            Ok(n) => n,
                            Err(status) => {
                                self.fail_filter(node, status);
                                return;
                            }
                        };
                        if fired > 0 || attempted {
                            self.process_locked(node, &mut st);
                        } else {
                            self.arm(node, &mut st);
                        }
                    }
                    lock(&self.timers)
                }
            };
        }
    }

    /// Moves every completed frame of `from` into `t`'s queue, then processes `t` once.
    fn deliver_all(&self, t: Target, from: &mut RtQueue) {
        // Relaxed: advisory, as in `deliver`.
        if self.stop.load(Ordering::Relaxed) || from.completed_len() == 0 {
            for c in from.drain_completed() {
                c.frame
                    .complete(&c.header, c.status.and(Err(Status::Cancelled)));
            }
            return;
        }
        let node = &self.nodes[t.filter];
        let mut guard = lock(&node.state);
        let Some(q) = guard.queues.get_mut(t.pin).and_then(Option::as_mut) else {
            return;
        };
        from.forward_completed(q);
        self.process_locked(node, &mut guard);
    }

    fn route(&self, node: &Node, pin: usize, c: Completed<RtFrame>) {
        if let Err(status) = c.status {
            // Cancelled or failed: back to the allocator (or to its client, with the status).
            // If it carried the end of the stream, the stream can no longer end: the run
            // fails rather than waits.
            let eos = c.header.is_end_of_stream();
            c.frame.complete(&c.header, Err(status.clone()));
            if eos {
                self.fail(RunError::EndOfStreamLost {
                    filter: node.name.clone(),
                    status,
                });
            }
            return;
        }
        match node.roles[pin] {
            PinRole::Input => {
                if node.terminal {
                    // Relaxed: a progress counter; nothing is ordered by it.
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                }
                match node.forward.len() {
                    // The end of its circuit (a sink, a copy transform's input).
                    0 => c.frame.complete(&c.header, Ok(())),
                    1 => self.deliver(node.forward[0], c.frame, c.header),
                    n => {
                        let shared = c.frame.share(&self.pool);
                        for t in &node.forward[..n - 1] {
                            self.deliver(*t, RtFrame::Shared(shared.clone()), c.header);
                        }
                        self.deliver(node.forward[n - 1], RtFrame::Shared(shared), c.header);
                    }
                }
            }
            PinRole::Root => match node.root_target[pin] {
                Some(t) => self.deliver(t, c.frame, c.header),
                None => c.frame.complete(&c.header, Err(Status::Cancelled)),
            },
            // No queue, so no completions; should a frame come here, it has nowhere to go.
            PinRole::PassThrough | PinRole::Unconnected => {
                c.frame.complete(&c.header, Err(Status::Cancelled));
            }
        }
    }

    /// Feeds pipe `pipe`'s root pin. `client`: the allocator is a client's, which STOP
    /// leaves open; so that STOP can still release this thread, it waits for a frame in
    /// slices of [`CLIENT_WAIT_SLICE`], checking `stop` in between, instead of until the
    /// close.
    fn requester(
        &self,
        pipe: usize,
        allocator: Allocator,
        client: bool,
        root: (usize, usize),
        count: &AtomicU64,
    ) {
        let _processing = Processing::enter();
        let (f, pin) = root;
        let node = &self.nodes[f];
        let batch_more = allocator.offers_function_table();
        // No batch can hold more frames than the pipe has (asking once more would only fail).
        let most = BATCH.min(allocator.framing().frames as usize).max(1);
        let mut requested = 0u64;
        loop {
            // `stop` Relaxed: advisory (a blocked requester is released by the allocator's
            // close, not by this flag). `finished` Acquire: pairs with the Release in
            // process_locked.
            if self.stop.load(Ordering::Relaxed) || node.finished.load(Ordering::Acquire) {
                break;
            }
            let frame = match allocator.allocate_blocking(client.then_some(CLIENT_WAIT_SLICE)) {
                Ok(frame) => frame,
                // The graph's allocator was closed: STOP.
                Err(Status::Cancelled) if !client => break,
                // A slice of a client allocator's wait ran out: look at `stop`, ask again.
                Err(Status::DeviceNotReady(_)) if client => continue,
                // Relaxed: advisory, as above; closed between the check above and the call.
                Err(_) if self.stop.load(Ordering::Relaxed) => break,
                // A client's allocator closed by the client during the run (STOP never
                // closes it) fails the run: its stream can no longer go on.
                Err(status) => {
                    let filter = if client {
                        format!("requester of pipe {pipe} (the client's allocator was closed)")
                    } else {
                        format!("requester of pipe {pipe}")
                    };
                    self.fail(RunError::Filter { filter, status });
                    break;
                }
            };
            let extent = u32::try_from(frame.len()).unwrap_or(u32::MAX);
            // Relaxed: `stop` is advisory, as above.
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let mut guard = lock(&node.state);
            let Some(q) = guard.queues.get_mut(pin).and_then(Option::as_mut) else {
                break;
            };
            q.push(RtFrame::Owned(frame), StreamHeader::empty(extent));
            // Take whatever else is free at once (never blocking: the function-table path),
            // so the filters downstream work on a batch per lock.
            let mut n = 1;
            while n < most && batch_more {
                match allocator.try_allocate() {
                    Ok(f) => {
                        q.push(RtFrame::Owned(f), StreamHeader::empty(extent));
                        n += 1;
                    }
                    Err(_) => break,
                }
            }
            requested += n as u64;
            self.process_locked(node, &mut guard);
        }
        // Relaxed: a statistic, read after the thread is joined (join synchronises).
        count.store(requested, Ordering::Relaxed);
    }
}

/// A graph ready to run, with one [`Process`] per filter.
///
/// ```
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::GraphSpec;
/// use ks_graph::runtime::RunOptions;
/// let spec = GraphSpec::parse_pipeline("testsrc frames=3 size=16 ! invert ! nullsink")?;
/// let runtime = filters::build(spec)?.into_runtime()?;
/// assert_eq!(runtime.graph().filter_count(), 3);
/// let outcome = runtime.run(&RunOptions::default())?;
/// assert_eq!(outcome.report.frames, 3);
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Runtime {
    graph: Graph,
    processes: Vec<Box<dyn Process>>,
    kinds: Vec<String>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("filters", &self.kinds)
            .finish_non_exhaustive()
    }
}

/// The outcome of [`Runtime::run`]: the report and the plan that was run.
///
/// ```
/// # use ks_graph::filters;
/// # use ks_graph::runtime::spec::GraphSpec;
/// # use ks_graph::runtime::RunOptions;
/// # let run = |p: &str| -> Result<_, Box<dyn std::error::Error>> {
/// #     let built = filters::build(GraphSpec::parse_pipeline(p)?)?;
/// #     Ok(built.into_runtime()?.run(&RunOptions::default())?)
/// # };
/// let outcome = run("testsrc frames=2 size=64 ! nullsink")?;
/// assert_eq!(outcome.plan.pipes.len(), 1);
/// assert_eq!(outcome.plan.pipes[0].framing.frame_size, 64);
/// assert_eq!(outcome.report.pipes[0].id, outcome.plan.pipes[0].id);
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RunOutcome {
    /// The negotiated plan.
    pub plan: AllocationPlan,
    /// What happened.
    pub report: RunReport,
}

impl Runtime {
    /// Pairs a graph, in STOP, with its filters' process callbacks, one per filter in the
    /// graph's insertion order.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, RunOptions, Runtime};
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=1 size=4 ! nullsink")?;
    /// let mut built = filters::build(spec.clone())?;
    /// // Take the built-in callbacks out (any `Process` will do in their place) ...
    /// let mut take = |name: &str| built.replace_process(name, Box::new(process_fn(|_| Ok(()))));
    /// let (source, sink) = (take("testsrc")?, take("nullsink")?);
    /// // ... and pair them with the graph: one per filter, in the graph's order.
    /// let runtime = Runtime::new(built.graph, vec![source, sink])?;
    /// assert!(runtime.run(&RunOptions::default())?.report.completed);
    /// // One callback too few is refused.
    /// let graph = filters::build(spec)?.graph;
    /// assert!(Runtime::new(graph, vec![Box::new(process_fn(|_| Ok(())))]).is_err());
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`RunError::Setup`] (`STATUS_INVALID_PARAMETER`) when the number of callbacks is not
    /// the number of filters, when the graph has more than [`MAX_RUN_FILTERS`] filters, or
    /// when the graph is not in STOP: [`run`](Self::run) fits the frame sizes of the pipes
    /// that start at a transform ([`fit_frame_sizes`]) and negotiates itself, which only STOP
    /// allows; a graph already acquired would stream through a plan made without that fit
    /// (a copy's output pipe with 1-byte frames, say).
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::RunError;
    /// use ks_graph::KsState;
    /// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! copy ! nullsink")?)?;
    /// built.graph.set_state(KsState::Acquire)?;
    /// let err = built.into_runtime().unwrap_err();
    /// assert!(matches!(err, RunError::Setup(_)));
    /// assert!(err.to_string().starts_with("the graph is in ACQUIRE"), "{err}");
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(graph: Graph, processes: Vec<Box<dyn Process>>) -> Result<Runtime, RunError> {
        if graph.state() != KsState::Stop {
            return Err(RunError::Setup(format!(
                "the graph is in {}; a runtime takes a graph in STOP (a run fits the pipes' \
                 frame sizes and negotiates at STOP → ACQUIRE itself)",
                graph.state()
            )));
        }
        if graph.filter_count() > MAX_RUN_FILTERS {
            return Err(RunError::Setup(format!(
                "the graph has {} filters; a run supports at most {MAX_RUN_FILTERS} (policy: \
                 delivery recurses once per filter, and each pin's queue is sized for its \
                 whole pipe)",
                graph.filter_count()
            )));
        }
        if processes.len() != graph.filter_count() {
            return Err(RunError::Setup(format!(
                "{} process callbacks for {} filters",
                processes.len(),
                graph.filter_count()
            )));
        }
        let kinds = graph
            .filter_ids()
            .map(|id| graph.filter_descriptor(id).name.clone())
            .collect();
        Ok(Runtime {
            graph,
            processes,
            kinds,
        })
    }

    /// The graph.
    ///
    /// ```
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::KsState;
    /// let spec = GraphSpec::parse_pipeline("testsrc ! invert ! nullsink")?;
    /// let runtime = filters::build(spec)?.into_runtime()?;
    /// assert_eq!(runtime.graph().filter_count(), 3);
    /// assert_eq!(runtime.graph().state(), KsState::Stop); // until `run`
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Runs the graph to the end of its stream: STOP → ACQUIRE → PAUSE → RUN, stream, then
    /// back to STOP with every frame returned and every allocator the graph created closed
    /// (a client's allocator assigned to a root pin stays open).
    ///
    /// ```
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::runtime::RunOptions;
    /// let spec = GraphSpec::parse_pipeline("testsrc frames=4 size=64 ! invert ! nullsink")?;
    /// let outcome = filters::build(spec)?.into_runtime()?.run(&RunOptions::default())?;
    /// assert!(outcome.report.completed);
    /// assert_eq!((outcome.report.frames, outcome.report.bytes), (4, 256));
    /// assert!(outcome.report.all_frames_returned); // every frame back, every allocator closed
    ///
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run(self, options: &RunOptions) -> Result<RunOutcome, RunError> {
        let Runtime {
            mut graph,
            processes,
            kinds,
        } = self;
        // In STOP, as `Runtime::new` checked (the graph has been ours since).
        fit_frame_sizes(&mut graph)?;
        graph.set_state(KsState::Acquire)?;
        let plan = match graph.plan() {
            Some(p) => p.clone(),
            None => return Err(RunError::Setup("no plan after ACQUIRE".into())),
        };
        // Each pipe's allocator and, for a client's (which serves its pipe in place of
        // negotiation's choice), the frames the client held of it before the run: those are
        // not the graph's.
        let allocators: Vec<(Allocator, Option<u32>)> = graph
            .allocators()
            .iter()
            .map(|a| {
                let held = a
                    .client_owned
                    .then(|| a.allocator.status().allocated_frames);
                (a.allocator.clone(), held)
            })
            .collect();
        // The pins in injection mode (behaviour 45), with their pipes: each must start one.
        let mut injections: Vec<(usize, Arc<inject::Injection>)> = Vec::new();
        let mut injecting = vec![false; plan.pipes.len()];
        let mut misplaced = None;
        for pin in graph.filter_ids().flat_map(|f| graph.pins(f)) {
            let Some(inj) = graph.frame_return(pin) else {
                continue;
            };
            match plan.pipes.iter().find(|p| p.pin_ids.first() == Some(&pin)) {
                Some(pipe) => {
                    if let Some(flag) = injecting.get_mut(pipe.id) {
                        *flag = true;
                    }
                    injections.push((pipe.id, Arc::clone(inj)));
                }
                None => {
                    misplaced = Some(pin);
                    break;
                }
            }
        }
        if let Some(pin) = misplaced {
            let msg = format!(
                "pin '{}' is in injection mode but does not start a pipe (it is unconnected, or \
                 passes on its input's frames); only a pin where frames enter a pipe can inject \
                 them",
                graph.pin_name(pin)
            );
            let _ = graph.set_state(KsState::Stop);
            return Err(RunError::Setup(msg));
        }
        let shared = match setup(&graph, &plan, processes, kinds, &injecting) {
            Ok(s) => Arc::new_cyclic(|me| Shared {
                me: Weak::clone(me),
                ..s
            }),
            Err(e) => {
                let _ = graph.set_state(KsState::Stop);
                return Err(e);
            }
        };
        if let Err(e) = graph.set_state(KsState::Run) {
            let _ = graph.set_state(KsState::Stop);
            return Err(e.into());
        }

        let counts: Arc<Vec<AtomicU64>> =
            Arc::new(plan.pipes.iter().map(|_| AtomicU64::new(0)).collect());
        let start = Instant::now();
        let mut threads = Vec::new();
        for pipe in &plan.pipes {
            let Some(root) = pipe.pin_ids.first().copied() else {
                continue;
            };
            let Some((allocator, client_held)) = allocators.get(pipe.id).cloned() else {
                continue;
            };
            if injecting.get(pipe.id) == Some(&true) {
                // Injection mode: the client feeds the pipe; its allocator stays untouched.
                continue;
            }
            let root = (root.filter().index(), root.index());
            let sh = Arc::clone(&shared);
            let cn = Arc::clone(&counts);
            let id = pipe.id;
            let client = client_held.is_some();
            // Delivery recurses once per filter downstream: a roomy stack for long chains.
            let spawned = thread::Builder::new()
                .name(format!("ks-pipe{id}"))
                .stack_size(PROCESSING_STACK)
                .spawn(move || {
                    // The filters' own panics fail the run in `process_locked`; this catches
                    // the rest, so that the run ends with an error instead of waiting for a
                    // thread that is gone.
                    let fed = catch_unwind(AssertUnwindSafe(|| {
                        sh.requester(id, allocator, client, root, &cn[id]);
                    }));
                    if let Err(p) = fed {
                        sh.fail(RunError::Setup(format!(
                            "the requester of pipe {id} panicked: {}",
                            panic_message(&*p)
                        )));
                    }
                });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => shared.fail(RunError::Setup(format!("cannot start a thread: {e}"))),
            }
        }

        // The stream-pointer timeouts of every filter (`timeout.rs`).
        let sh = Arc::clone(&shared);
        let timer = thread::Builder::new()
            .name("ks-timer".into())
            .stack_size(PROCESSING_STACK)
            .spawn(move || {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| sh.timer())) {
                    sh.fail(RunError::Setup(format!(
                        "the stream-pointer timer panicked: {}",
                        panic_message(&*p)
                    )));
                }
            });
        let timer = match timer {
            Ok(h) => Some(h),
            Err(e) => {
                shared.fail(RunError::Setup(format!("cannot start a thread: {e}")));
                None
            }
        };

        // Injection: one returner thread per pin, then the gate opens to submissions. From
        // here on, whatever way `run` leaves, the gates close and the returners finish.
        let gates = CloseGates(&injections);
        let mut returners = Vec::with_capacity(injections.len());
        for (pipe, inj) in gates.0 {
            inj.start_returner();
            let (sh, ij) = (Arc::clone(&shared), Arc::clone(inj));
            // A callback that submits again delivers down the whole chain on this thread:
            // the same roomy stack as the requesters'.
            let spawned = thread::Builder::new()
                .name(format!("ks-inject{pipe}"))
                .stack_size(64 << 20)
                .spawn(move || {
                    ij.run_returner(|status| {
                        sh.fail(RunError::Filter {
                            filter: ij.filter.clone(),
                            status,
                        });
                    });
                });
            match spawned {
                Ok(h) => returners.push(h),
                Err(e) => {
                    inj.stop_returner();
                    shared.fail(RunError::Setup(format!("cannot start a thread: {e}")));
                }
            }
        }
        // SeqCst: pairs with `fail` (once per run); a failed start opens no gate.
        if !shared.stop.load(Ordering::SeqCst) {
            for (pipe, inj) in gates.0 {
                let (Some(p), Some(root)) = (
                    plan.pipes.get(*pipe),
                    plan.pipes.get(*pipe).and_then(|p| p.pin_ids.first()),
                ) else {
                    continue;
                };
                let target = shared.nodes[root.filter().index()].root_target[root.index()];
                if let Some(t) = target {
                    inj.open(Arc::clone(&shared), t, p.framing.frame_size);
                }
            }
        }

        // Wait for the end of the stream, an error, or the time limit.
        let terminals = shared.nodes.iter().filter(|n| n.terminal).count();
        let mut completed = false;
        {
            let mut left = lock(&shared.terminals_left);
            loop {
                // SeqCst: pairs with the SeqCst store in `fail` (once per run, cost irrelevant).
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if terminals > 0 && *left == 0 {
                    completed = true;
                    break;
                }
                if terminals == 0 && threads.iter().all(|t| t.is_finished()) {
                    completed = true;
                    break;
                }
                if options.until.is_some_and(|u| start.elapsed() >= u) {
                    break;
                }
                let (g, _) = shared
                    .done
                    .wait_timeout(left, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner);
                left = g;
                if let Some(p) = &options.progress {
                    // Unlocked while the callback runs: the terminals' end-of-stream count and
                    // `fail` take this lock, and a slow callback must not stall the pipeline.
                    drop(left);
                    // Relaxed: a progress figure, approximate by nature.
                    let delivered = shared.delivered.load(Ordering::Relaxed);
                    // A callback of the run, like the filters': a processing it attempts
                    // here goes to the timer thread (`attempt_here` falls back to
                    // `attempt`), so that the run's own thread does not stream.
                    let processing = Processing::enter();
                    let called = catch_unwind(AssertUnwindSafe(|| p(delivered)));
                    drop(processing);
                    if let Err(e) = called {
                        shared.fail(RunError::Setup(format!(
                            "the progress callback panicked: {}",
                            panic_message(&*e)
                        )));
                    }
                    left = lock(&shared.terminals_left);
                }
            }
        }

        // STOP: cancel pending requests, join the requesters, flush every queue.
        // SeqCst: see `fail`; the threads are released by `close` and synchronised by `join`.
        shared.stop.store(true, Ordering::SeqCst);
        shared.stop_timer();
        // No frame is injected from here on; those being submitted are delivered first (and
        // cancelled, `stop` being set), so the flush below finds every injected frame.
        gates.close();
        if timer.is_some_and(|t| t.join().is_err()) {
            shared.fail(RunError::Setup("the stream-pointer timer panicked".into()));
        }
        // A client's allocator stays open (it is the client's to close); its requester sees
        // `stop` within a wait slice.
        for (a, _) in allocators.iter().filter(|(_, held)| held.is_none()) {
            a.close();
        }
        for t in threads {
            if t.join().is_err() {
                shared.fail(RunError::Setup("a requester thread panicked".into()));
            }
        }
        // Processing attempted on other threads (`AttemptProcessing::attempt_here`): each
        // call saw `stop` and did nothing, or is counted; wait for those to leave.
        {
            let mut n = lock(&shared.attempting);
            while *n > 0 {
                n = shared
                    .attempts_done
                    .wait(n)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        // Once no filter runs any more: a process step that took long to return held the
        // run that long.
        let elapsed = start.elapsed();
        let mut filters = Vec::with_capacity(shared.nodes.len());
        for node in &shared.nodes {
            let mut st = lock(&node.state);
            for (pin, q) in st.queues.iter_mut().enumerate() {
                let Some(q) = q else {
                    continue;
                };
                // A cancel callback of the filter's may panic: the flush completes anyway
                // (see `Queue::flush`), and the run fails with the filter named.
                let flushed = call_filter("a cancel callback, at STOP,", || {
                    q.flush();
                    Ok(())
                });
                if let Err(status) = flushed {
                    shared.fail_filter(node, status);
                }
                // Frames back to their allocators; injected ones to their clients, completed
                // only if this pin ends their circuit (they did not get there otherwise).
                let end = node.roles[pin] == PinRole::Input && node.forward.is_empty();
                for c in q.drain_completed() {
                    let status = if end {
                        c.status
                    } else {
                        c.status.and(Err(Status::Cancelled))
                    };
                    c.frame.complete(&c.header, status);
                }
            }
            // The filter's last word: it finishes what is pending (a file sink flushes).
            let process = &mut st.process;
            if let Err(status) = call_filter("its stop callback", || process.stop()) {
                shared.fail_filter(node, status);
            }
            // A stats callback that panics (a filter of the caller's, perhaps on a lock its
            // process poisoned) fails the run like any other callback, and reports nothing.
            let process = &st.process;
            let stats = call_filter("its stats callback", || Ok(process.stats())).unwrap_or_else(
                |status| {
                    shared.fail_filter(node, status);
                    FilterStats::default()
                },
            );
            filters.push(FilterReport {
                name: node.name.clone(),
                kind: node.kind.clone(),
                stats,
            });
        }
        let pipes: Vec<PipeReport> = plan
            .pipes
            .iter()
            .zip(&allocators)
            .map(|(p, (a, _))| {
                // The acquired graph's plan names the allocator that served the pipe, a
                // client's included.
                PipeReport::new(
                    p.id,
                    &p.allocator.name,
                    p.allocator.memory.to_string(),
                    // Relaxed: the requesters were joined above, which synchronises.
                    counts[p.id].load(Ordering::Relaxed),
                    &a.status(),
                )
            })
            .collect();
        // Every injected frame has been flushed: the returners hand the last ones to their
        // callbacks, then end.
        gates.finish_returns();
        for h in returners {
            if h.join().is_err() {
                shared.fail(RunError::Setup("a frame-return thread panicked".into()));
            }
        }
        for (_, inj) in &injections {
            inj.drain_inline();
        }
        let state_result = graph.set_state(KsState::Stop);
        if let Some(e) = lock(&shared.error).take() {
            return Err(e);
        }
        state_result?;
        let (frames, bytes) = shared
            .nodes
            .iter()
            .zip(&filters)
            .filter(|(n, _)| n.roles.iter().all(|r| *r != PinRole::Input))
            .fold((0, 0), |(f, b), (_, r)| {
                (f + r.stats.frames, b + r.stats.bytes)
            });
        // The last reference: an injected frame a filter kept in its own state goes back to
        // its client now, on this thread (no returner runs any more).
        drop(shared);
        for (_, inj) in &injections {
            if let Some(status) = inj.take_panic() {
                return Err(RunError::Filter {
                    filter: inj.filter.clone(),
                    status,
                });
            }
        }
        let all_frames_returned = pipes
            .iter()
            .zip(&allocators)
            .all(|(p, (_, held))| p.allocated <= held.unwrap_or(0))
            && allocators
                .iter()
                .all(|(a, held)| held.is_some() || a.status().closed)
            && injections.iter().all(|(_, inj)| inj.all_returned());
        Ok(RunOutcome {
            plan,
            report: RunReport {
                frames,
                bytes,
                elapsed,
                completed,
                pipes,
                filters,
                all_frames_returned,
            },
        })
    }
}

/// Gives every pipe that starts at a transform (a copy, or a tee branch the negotiation split
/// off) frames at least as large as the frames arriving at that transform, the way a KS codec
/// edits its output framing once its input format is known (`KsEdit` in
/// `AVStrMiniPinSetDataFormat`, ks-spec.md §4.4). A maximum the root pin states below that
/// size (`copy out.max_size=16` after 64-byte frames) is raised with it: the transform could
/// not hold the frames otherwise. Repeats negotiation until no root grows (at most once per
/// pipe: sizes only flow downstream). Legal in STOP only.
///
/// ```
/// use ks_graph::filters;
/// use ks_graph::runtime::fit_frame_sizes;
/// use ks_graph::runtime::spec::GraphSpec;
/// let spec = GraphSpec::parse_pipeline("testsrc size=100 ! copy ! nullsink")?;
/// let mut graph = filters::build(spec)?.graph;
/// let plan = fit_frame_sizes(&mut graph)?;
/// // The copy's output pipe holds frames as large as those arriving at its input.
/// assert_eq!(plan.pipes.len(), 2);
/// assert!(plan.pipes[1].framing.frame_size >= 100);
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`StateError::Negotiation`] when the graph cannot be negotiated (before or after the
/// edits), [`StateError::Graph`] when an edit is refused.
pub fn fit_frame_sizes(graph: &mut Graph) -> Result<AllocationPlan, StateError> {
    loop {
        let plan = crate::negotiate(graph)?;
        let mut changed = false;
        for pipe in &plan.pipes {
            let Some(&root) = pipe.pin_ids.first() else {
                continue;
            };
            let input = graph.pins(root.filter()).find(|p| {
                graph.pin_descriptor(*p).direction == PinDirection::In && graph.peer(*p).is_some()
            });
            let Some(up) = input.and_then(|i| plan.pipe_of(i)) else {
                continue;
            };
            let need = up.framing.frame_size;
            if pipe.framing.frame_size >= need {
                continue;
            }
            let mut fx = graph.pin_framing(root).cloned().unwrap_or_else(|| {
                ks_alloc::FramingEx::simple(
                    ks_alloc::MemoryType::WILDCARD,
                    ks_alloc::ItemFlags::empty(),
                    1,
                    ks_alloc::Alignment::BYTE,
                    need,
                    u32::MAX,
                )
            });
            for item in &mut fx.items {
                for r in [&mut item.physical_range, &mut item.framing_range] {
                    r.min = r.min.max(need);
                    r.max = r.max.max(r.min);
                }
            }
            graph.set_pin_framing(root, fx)?;
            changed = true;
        }
        if !changed {
            return Ok(plan);
        }
    }
}

/// The injection pins of a run. Dropped, however `run` leaves, it closes their gates and
/// ends their returner threads, so that no submission reaches a run that is over and no
/// returner waits for ever.
struct CloseGates<'a>(&'a [(usize, Arc<inject::Injection>)]);

impl CloseGates<'_> {
    /// Refuses submissions from now on, once those in flight have delivered their frames.
    fn close(&self) {
        for (_, inj) in self.0 {
            inj.close();
        }
    }

    /// Tells the returner threads to finish once their queues are empty.
    fn finish_returns(&self) {
        for (_, inj) in self.0 {
            inj.stop_returner();
        }
    }
}

impl Drop for CloseGates<'_> {
    fn drop(&mut self) {
        self.close();
        self.finish_returns();
    }
}

/// The run's shared state. `injecting[pipe]`: the pipe starts at a pin in injection mode.
fn setup(
    graph: &Graph,
    plan: &AllocationPlan,
    processes: Vec<Box<dyn Process>>,
    kinds: Vec<String>,
    injecting: &[bool],
) -> Result<Shared, RunError> {
    let mut refusals = Vec::new();
    let memory: Vec<ks_alloc::Memory> = graph
        .allocators()
        .iter()
        .map(|a| a.allocator.memory())
        .collect();
    let mut nodes = Vec::with_capacity(processes.len());
    let mut cells = 0usize;
    for ((fid, process), kind) in graph.filter_ids().zip(processes).zip(kinds) {
        let pins: Vec<PinId> = graph.pins(fid).collect();
        let mut roles = Vec::with_capacity(pins.len());
        let mut queues = Vec::with_capacity(pins.len());
        let mut root_target = Vec::with_capacity(pins.len());
        let mut injected = Vec::with_capacity(pins.len());
        let mut forward = Vec::new();
        for &pin in &pins {
            let desc = graph.pin_descriptor(pin);
            let peer = graph.peer(pin);
            let pipe = plan.pipe_of(pin);
            let role = match (desc.direction, peer, pipe) {
                (_, None, _) | (_, _, None) => PinRole::Unconnected,
                (PinDirection::In, Some(_), Some(_)) => PinRole::Input,
                (PinDirection::Out, Some(_), Some(p)) => {
                    if p.pin_ids.first() == Some(&pin) {
                        PinRole::Root
                    } else {
                        PinRole::PassThrough
                    }
                }
            };
            let mut target = None;
            if let (Some(peer), Some(p), PinDirection::Out) = (peer, pipe, desc.direction) {
                let mem = memory.get(p.id).copied().unwrap_or(ks_alloc::Memory::User);
                let refused = match graph.check_delivery(mem, peer) {
                    Ok(()) => None,
                    Err(e) => {
                        refusals.push(e);
                        Some(refusals.len() - 1)
                    }
                };
                target = Some(Target {
                    filter: peer.filter().index(),
                    pin: peer.index(),
                    refused,
                });
            }
            let queue = match role {
                PinRole::Input | PinRole::Root => {
                    let dir = if role == PinRole::Input {
                        Direction::Input
                    } else {
                        Direction::Output
                    };
                    let mut q = Queue::new(QueueConfig::from_pin_flags(dir, 0));
                    let frames = pipe.map_or(4, |p| p.framing.frames as usize);
                    q.reserve(frames + 2, 4);
                    Some(q)
                }
                _ => None,
            };
            if role == PinRole::PassThrough {
                if let Some(t) = target {
                    forward.push(t);
                }
            }
            roles.push(role);
            injected.push(pipe.is_some_and(|p| injecting.get(p.id) == Some(&true)));
            queues.push(queue);
            root_target.push(if role == PinRole::Root { target } else { None });
        }
        if forward.len() > 1 {
            cells += plan
                .pipe_of(pins[0])
                .map_or(8, |p| p.framing.frames as usize);
        }
        let has_input = roles.contains(&PinRole::Input);
        let has_output = roles
            .iter()
            .any(|r| matches!(r, PinRole::Root | PinRole::PassThrough));
        nodes.push(Node {
            index: nodes.len(),
            name: graph.filter_name(fid).to_owned(),
            kind,
            terminal: has_input && !has_output,
            roles,
            forward,
            root_target,
            injected,
            finished: AtomicBool::new(false),
            state: Mutex::new(NodeState {
                queues,
                process,
                flags: Flags::default(),
                eos_counted: false,
                armed: None,
            }),
        });
    }
    let terminals = nodes.iter().filter(|n| n.terminal).count();
    let timers = Mutex::new(Timers {
        deadlines: vec![None; nodes.len()],
        attempted: vec![false; nodes.len()],
        any_attempted: false,
    });
    Ok(Shared {
        nodes,
        stop: AtomicBool::new(false),
        pool: SharePool::with_cells(cells),
        refusals,
        terminals_left: Mutex::new(terminals),
        done: Condvar::new(),
        error: Mutex::new(None),
        delivered: AtomicU64::new(0),
        timers,
        timer_cv: Condvar::new(),
        // Set by `Runtime::run`, which puts the run in its `Arc`.
        me: Weak::new(),
        attempting: Mutex::new(0),
        attempts_done: Condvar::new(),
    })
}
