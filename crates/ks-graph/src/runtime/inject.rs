//! Frame injection (ks-spec.md §4.5, behaviour 45): a pin whose client registered a
//! frame-return callback in STOP receives no allocator frames; the client submits its own
//! buffers, which travel the circuit like allocator frames and come back through the
//! callback, each exactly once, with the status they completed with.
//!
//! * [`Graph::register_frame_return`] (`KsPinRegisterFrameReturnCallback`) puts an output
//!   pin in injection mode and gives the [`Injector`] that submits to it.
//! * [`Injector::submit`] / [`Injector::submit_with_header`] (`KsPinSubmitFrame`) hand a
//!   buffer to the running graph: it enters the circuit at the pin's peer, as a frame the
//!   pin just completed (KS: "directly into the transport circuit"; the pin's own filter
//!   does not process it).
//! * Where an allocator frame would go back to its allocator (a sink, a copy transform's
//!   input, the last tee branch to finish with it, a cancellation, the flush at STOP), an
//!   injected frame goes back to its client as a [`ReturnedFrame`]
//!   (`AVStrMiniFrameReturn`).
//!
//! # Design
//!
//! Returns are made by one thread per injection pin and run ("ks-inject"), never where the
//! frame completed: that is under the processing mutex of a filter downstream, and a
//! callback that submits its buffer again (the documented way to recycle frames) would
//! deliver into that same filter. The thread is the worker item KS would use. The frame's
//! `Drop` queues the return, so no path that lets go of a frame can lose it; the paths
//! that know how the frame ended (completed, cancelled, failed) give it back with its header
//! and status, and a frame dropped without that returns with `STATUS_CANCELLED`.
//!
//! A gate orders submissions against STOP: a submission counts itself in under the gate's
//! lock while the run is open, and STOP closes the gate and waits for the submissions in
//! flight before it joins threads and flushes queues. So every accepted frame is in the
//! circuit before the flush, and every frame is returned before [`Runtime::run`] returns:
//! the returner threads drain their queues before they are joined, and the run returns
//! inline (on its own thread) any frame let go after that, such as one a filter kept in its
//! own state.
//!
//! [`Runtime::run`]: super::Runtime::run

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use ks_alloc::Status;

use super::{Shared, Target, lock, panic_message};
use crate::error::GraphError;
use crate::graph::{Graph, PinId};
use crate::model::PinDirection;
use crate::queue::StreamHeader;

/// A frame that came back from the circuit to the client that injected it: what
/// `AVStrMiniFrameReturn(Pin, Data, Size, Mdl, Context, Status)` receives.
///
/// ```
/// use std::sync::mpsc;
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::GraphSpec;
/// use ks_graph::runtime::RunOptions;
/// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
/// let pin = built.graph.pin("testsrc.out")?;
/// let (tx, rx) = mpsc::channel();
/// let injector = built.graph.register_frame_return(pin, move |r| tx.send(r).unwrap())?;
/// let runtime = built.into_runtime()?;
/// let feeder = std::thread::spawn(move || {
///     while !injector.is_running() {
///         std::thread::yield_now();
///     }
///     let mut header = ks_graph::queue::StreamHeader::with_data(0, 3);
///     header.set_end_of_stream(true);
///     injector.submit_with_header(vec![1, 2, 3], header, 42).map_err(|e| e.to_string())
/// });
/// let report = runtime.run(&RunOptions::default())?.report;
/// feeder.join().unwrap()?;
/// assert!(report.completed && report.all_frames_returned);
/// let r = rx.recv()?; // back through the callback, exactly once
/// assert_eq!((&*r.buffer, r.context, r.header.data_used), (&[1, 2, 3][..], 42, 3));
/// assert!(r.status.is_ok()); // STATUS_SUCCESS: it completed its circuit at the sink
/// assert_eq!(r.pin, pin);
/// assert!(rx.try_recv().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "AVStrMiniFrameReturn")]
#[doc(alias = "PFNKSPINFRAMERETURN")]
#[derive(Debug)]
#[non_exhaustive]
pub struct ReturnedFrame {
    /// The pin the frame was submitted to.
    pub pin: PinId,
    /// The client's buffer (`Data`, `Size`), as the circuit left it (an in-place transform
    /// may have changed its bytes).
    pub buffer: Box<[u8]>,
    /// The frame's stream header as it completed: `DataUsed` and the flags as the filter
    /// where it ended its circuit (or was cancelled) left them; a frame cancelled on its way
    /// between two filters, as the first one passed it on. A frame shared by a tee's
    /// branches reports the header of the last branch to complete it (of the first that
    /// failed it, if one did). A frame let go without completing (a filter kept it in its
    /// own state until the run was over) has a header with only `FrameExtent` set.
    pub header: StreamHeader,
    /// The context given to [`Injector::submit`].
    pub context: u64,
    /// The completion status (`Status` of the completing IRP): `Ok` (`STATUS_SUCCESS`) when
    /// the frame completed its circuit; `STATUS_CANCELLED` when it was cancelled or flushed
    /// at STOP before it got there; a filter's failure status when a filter completed it
    /// with one ([`Queue::set_status_code`](crate::queue::Queue::set_status_code)). Policy:
    /// for a frame shared by a tee's branches, the first failure of any branch, else `Ok`.
    pub status: Result<(), Status>,
}

/// Why a frame was not submitted; it carries the buffer back (a refused frame is never
/// dropped, and it is not returned through the frame-return callback either).
///
/// ```
/// use ks_graph::filters;
/// use ks_graph::runtime::spec::GraphSpec;
/// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
/// let pin = built.graph.pin("testsrc.out")?;
/// let injector = built.graph.register_frame_return(pin, |_| {})?;
/// // In STOP: nothing runs to take the frame.
/// let err = injector.submit(vec![7; 4], 1).unwrap_err();
/// assert_eq!(err.status().name(), "STATUS_INVALID_DEVICE_STATE");
/// assert_eq!(err.context(), 1);
/// assert_eq!(&*err.into_buffer(), &[7; 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SubmitError {
    status: Status,
    buffer: Box<[u8]>,
    context: u64,
}

impl SubmitError {
    /// The KS status of the refusal: `STATUS_INVALID_PARAMETER` for a header that does not
    /// fit the buffer or the pipe, `STATUS_INVALID_BUFFER_SIZE` for a buffer longer than a
    /// `FrameExtent` can say, `STATUS_INVALID_DEVICE_REQUEST` when the pin is no longer in
    /// injection mode, `STATUS_INVALID_DEVICE_STATE` when the graph is not running.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::queue::StreamHeader;
    /// # let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// # let pin = built.graph.pin("testsrc.out")?;
    /// let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// // DataUsed beyond the buffer: refused whatever the graph's state.
    /// let err = injector.submit_with_header(vec![0; 4], StreamHeader::with_data(4, 5), 0).unwrap_err();
    /// assert_eq!(err.status().name(), "STATUS_INVALID_PARAMETER");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The context the frame was submitted with.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// # let pin = built.graph.pin("testsrc.out")?;
    /// let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// assert_eq!(injector.submit(vec![0; 4], 9).unwrap_err().context(), 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn context(&self) -> u64 {
        self.context
    }

    /// The buffer, unchanged.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// # let pin = built.graph.pin("testsrc.out")?;
    /// let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// assert_eq!(injector.submit(vec![5; 2], 0).unwrap_err().buffer(), &[5, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn buffer(&self) -> &[u8] {
        &self.buffer
    }

    /// Takes the buffer back.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// # let pin = built.graph.pin("testsrc.out")?;
    /// let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// let buffer: Box<[u8]> = injector.submit(vec![1; 8], 0).unwrap_err().into_buffer();
    /// assert_eq!(buffer.len(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_buffer(self) -> Box<[u8]> {
        self.buffer
    }
}

impl fmt::Debug for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitError")
            .field("status", &self.status)
            .field("buffer_len", &self.buffer.len())
            .field("context", &self.context)
            .finish()
    }
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frame of {} bytes not submitted: {}",
            self.buffer.len(),
            self.status
        )
    }
}

impl std::error::Error for SubmitError {}

impl From<SubmitError> for Status {
    fn from(e: SubmitError) -> Status {
        e.status
    }
}

/// Submits frames to a pin in injection mode (`KsPinSubmitFrame`). Made by
/// [`Graph::register_frame_return`]; cheap to clone, and usable from any thread (the
/// frame-return callback itself, a thread of the client's, the process callback of the
/// pin's own filter), except from the process callback of a filter downstream of the pin,
/// whose processing mutex the delivery would need (see
/// [`submit_with_header`](Self::submit_with_header)).
///
/// Frames are accepted while the graph runs ([`is_running`](Self::is_running)): from the
/// moment [`Runtime::run`](super::Runtime::run) has started streaming until it begins to
/// stop. Every accepted frame comes back through the frame-return callback exactly once,
/// before `run` returns.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use ks_graph::filters;
/// use ks_graph::queue::StreamHeader;
/// use ks_graph::runtime::spec::GraphSpec;
/// use ks_graph::runtime::RunOptions;
/// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc size=64 ! invert ! nullsink")?)?;
/// let pin = built.graph.pin("testsrc.out")?;
/// let returned = Arc::new(AtomicU64::new(0));
/// let count = Arc::clone(&returned);
/// let injector = built.graph.register_frame_return(pin, move |r| {
///     assert_eq!(r.buffer[0], !(r.context as u8)); // `invert` worked on the client's buffer
///     count.fetch_add(1, Ordering::Relaxed);
/// })?;
/// let runtime = built.into_runtime()?;
/// let feeder = std::thread::spawn(move || {
///     while !injector.is_running() {
///         std::thread::yield_now();
///     }
///     for n in 0..10u8 {
///         let mut header = StreamHeader::with_data(0, 64);
///         header.set_end_of_stream(n == 9);
///         injector.submit_with_header(vec![n; 64], header, u64::from(n)).unwrap();
///     }
/// });
/// let report = runtime.run(&RunOptions::default())?.report;
/// feeder.join().unwrap();
/// assert!(report.completed);
/// assert_eq!(returned.load(Ordering::Relaxed), 10);
/// assert_eq!(report.pipes[0].requested, 0); // no allocator frame was fed to the pin
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Injector {
    inner: Arc<Injection>,
}

impl fmt::Debug for Injector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injector")
            .field("pin", &self.inner.name)
            .field("outstanding", &self.outstanding())
            .finish()
    }
}

impl Injector {
    /// The pin this injector submits to.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// let pin = built.graph.pin("testsrc.out")?;
    /// let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// assert_eq!(injector.pin(), pin);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pin(&self) -> PinId {
        self.inner.pin
    }

    /// Whether a submission would be accepted now: the pin is still in injection mode and
    /// its graph is streaming. (Another thread may stop the run right after; a refused
    /// submission gives its buffer back.)
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// # let pin = built.graph.pin("testsrc.out")?;
    /// let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// assert!(!injector.is_running()); // the graph is in STOP
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_running(&self) -> bool {
        let gate = lock(&self.inner.gate);
        gate.registered && gate.live.as_ref().is_some_and(|l| !l.stopping())
    }

    /// Frames accepted and not yet handed to the frame-return callback (0 whenever no run is
    /// in progress). A frame stops counting as the callback receives it.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// # let pin = built.graph.pin("testsrc.out")?;
    /// let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// assert_eq!(injector.outstanding(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn outstanding(&self) -> u64 {
        self.inner.outstanding()
    }

    /// Submits `buffer` as a full frame: `DataUsed` = `FrameExtent` = its length, no flags.
    /// See [`submit_with_header`](Self::submit_with_header).
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// # let pin = built.graph.pin("testsrc.out")?;
    /// let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// let err = injector.submit(vec![0; 16], 0).unwrap_err(); // not running yet
    /// assert!(err.to_string().contains("not running"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`submit_with_header`](Self::submit_with_header).
    #[doc(alias = "KsPinSubmitFrame")]
    pub fn submit(&self, buffer: impl Into<Box<[u8]>>, context: u64) -> Result<(), SubmitError> {
        let buffer = buffer.into();
        let used = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        self.submit_with_header(buffer, StreamHeader::with_data(used, used), context)
    }

    /// Submits `buffer` with a copy of `header` (`KsPinSubmitFrame` with a stream header):
    /// the frame enters the circuit at the pin's peer, as if the pin had just filled and
    /// completed it, travels it like an allocator frame (stream pointers, in-place
    /// transforms, tee branches, the end-of-stream flag), and comes back through the
    /// frame-return callback, with `context`, where an allocator frame would go back to its
    /// allocator. The callback runs on the run's "ks-inject" thread, never on the caller's.
    ///
    /// The buffer may have any length (0 too: a frame that only carries flags, such as the
    /// end of the stream); `FrameExtent` is set to its length, whatever `header` says.
    /// `DataUsed` must fit both the buffer and the pipe's negotiated frame size (policy: the
    /// data must fit the frames every pipe downstream was sized for — a copy transform
    /// copies `DataUsed` bytes into its output pipe's frames — and a header claiming more
    /// data than its frame holds is refused rather than clamped).
    ///
    /// The frame is delivered, and processed, on the caller's thread before this returns,
    /// recursing once per filter downstream (the runtime's own threads have 64 MiB stacks
    /// for long chains; a thread of the caller's needs a stack to match). So do not call it
    /// from the process callback of a filter downstream of the pin: that filter's processing
    /// mutex is held by the caller.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::queue::StreamHeader;
    /// # let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// # let pin = built.graph.pin("testsrc.out")?;
    /// let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// let mut last = StreamHeader::with_data(0, 0); // no data, just the end of the stream
    /// last.set_end_of_stream(true);
    /// let err = injector.submit_with_header(Vec::new(), last, 0).unwrap_err();
    /// assert_eq!(err.status().name(), "STATUS_INVALID_DEVICE_STATE"); // well formed; in STOP
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A [`SubmitError`] holding the buffer:
    /// * `STATUS_INVALID_PARAMETER`: `DataUsed` is larger than the buffer, or than the
    ///   pipe's frame size;
    /// * `STATUS_INVALID_BUFFER_SIZE`: the buffer is longer than `u32::MAX` bytes;
    /// * `STATUS_INVALID_DEVICE_REQUEST`: the pin is no longer in injection mode (its
    ///   callback was unregistered or replaced);
    /// * `STATUS_INVALID_DEVICE_STATE`: the graph is not running (STOP, or stopping).
    #[doc(alias = "KsPinSubmitFrame")]
    #[doc(alias = "KsPinSubmitFrameMdl")]
    pub fn submit_with_header(
        &self,
        buffer: impl Into<Box<[u8]>>,
        header: StreamHeader,
        context: u64,
    ) -> Result<(), SubmitError> {
        let buffer = buffer.into();
        let inj = &self.inner;
        let refuse = |status: Status, buffer: Box<[u8]>| {
            Err(SubmitError {
                status,
                buffer,
                context,
            })
        };
        let Ok(extent) = u32::try_from(buffer.len()) else {
            let msg = format!(
                "a buffer of {} bytes for pin '{}' is longer than a stream header's \
                 FrameExtent can say (u32::MAX bytes)",
                buffer.len(),
                inj.name
            );
            return refuse(Status::InvalidBufferSize(msg.into()), buffer);
        };
        if header.data_used > extent {
            let msg = format!(
                "DataUsed {} exceeds the {extent}-byte buffer submitted to pin '{}'",
                header.data_used, inj.name
            );
            return refuse(Status::InvalidParameter(msg.into()), buffer);
        }
        let header = StreamHeader {
            frame_extent: extent,
            ..header
        };
        let live = {
            let mut gate = lock(&inj.gate);
            if !gate.registered {
                let msg = format!(
                    "pin '{}' is no longer in injection mode (its frame-return callback was \
                     unregistered or replaced); submit with the injector of the current \
                     registration",
                    inj.name
                );
                return refuse(Status::InvalidDeviceRequest(msg.into()), buffer);
            }
            let Some(live) = gate.live.clone().filter(|l| !l.stopping()) else {
                let msg = format!(
                    "the graph of pin '{}' is not running; frames are accepted from RUN until \
                     the run begins to stop",
                    inj.name
                );
                return refuse(Status::InvalidDeviceState(msg.into()), buffer);
            };
            if header.data_used > live.frame_size {
                let msg = format!(
                    "DataUsed {} exceeds the {}-byte frames negotiated for the pipe of pin \
                     '{}' (policy: injected data must fit the frames the circuit was sized for)",
                    header.data_used, live.frame_size, inj.name
                );
                return refuse(Status::InvalidParameter(msg.into()), buffer);
            }
            gate.submitting += 1;
            live
        };
        // Uncounted however the delivery ends (STOP waits for the count to reach 0).
        let _submitting = Submitting(inj);
        // Relaxed: a counter; `outstanding` is exact once the run is over (joins and the
        // gate's lock order everything then).
        inj.submitted.fetch_add(1, Ordering::Relaxed);
        let frame = InjectedFrame {
            buffer: Some(buffer),
            context,
            injection: Arc::clone(inj),
        };
        {
            // Delivered on this thread, which then holds filters' mutexes: a filter asking
            // for its processing here (`attempt_here`) is served asynchronously instead.
            let _processing = super::Processing::enter();
            live.shared
                .deliver(live.target, super::RtFrame::Injected(frame), header);
        }
        drop(live);
        Ok(())
    }
}

/// A submission under way, counted in the gate's `submitting` (which STOP waits out before
/// it flushes); uncounted on drop, an unwind included.
struct Submitting<'a>(&'a Arc<Injection>);

impl Drop for Submitting<'_> {
    fn drop(&mut self) {
        let mut gate = lock(&self.0.gate);
        gate.submitting -= 1;
        if gate.submitting == 0 {
            self.0.gate_idle.notify_all();
        }
    }
}

/// A client's buffer travelling a running graph ([`RtFrame::Injected`](super::RtFrame)):
/// writable like an allocator frame, and, when it leaves the circuit, handed back to its
/// client's frame-return callback as a [`ReturnedFrame`] instead of going to an allocator.
///
/// It returns exactly once: where the runtime completes it, with the header and status it
/// completed with (for a frame shared by a tee's branches, when the last branch lets go of
/// it: the first failure of any branch, else the last branch's header); or, let go without
/// a completion (a filter kept it in its own state), from its `Drop`, with
/// `STATUS_CANCELLED` and a header that only gives `FrameExtent`.
///
/// ```
/// use std::sync::mpsc;
/// use ks_alloc::Status;
/// use ks_graph::filters;
/// use ks_graph::queue::FrameBytes;
/// use ks_graph::runtime::spec::GraphSpec;
/// use ks_graph::runtime::{process_fn, RtFrame, RunOptions};
/// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
/// let (tx, rx) = mpsc::channel();
/// // In place of `nullsink`: look at the frames, then consume them.
/// built.replace_process("nullsink", Box::new(process_fn(move |pins| {
///     let q = pins.queue(0).expect("connected");
///     let mut eos = false;
///     q.eject_leading(usize::MAX, |at| {
///         eos |= at.header.is_end_of_stream();
///         Ok::<(), Status>(())
///     })?;
///     if eos {
///         pins.end_of_stream();
///     }
///     Ok(())
/// })))?;
/// let pin = built.graph.pin("testsrc.out")?;
/// let injector = built.graph.register_frame_return(pin, move |r| tx.send(r.context).unwrap())?;
/// let runtime = built.into_runtime()?;
/// let feeder = std::thread::spawn(move || {
///     while !injector.is_running() {
///         std::thread::yield_now();
///     }
///     let mut header = ks_graph::queue::StreamHeader::with_data(0, 1);
///     header.set_end_of_stream(true);
///     injector.submit_with_header(vec![1], header, 5).unwrap();
/// });
/// assert!(runtime.run(&RunOptions::default())?.report.completed);
/// feeder.join().unwrap();
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct InjectedFrame {
    /// `None` once given back. (Kept small: a queue slot holds any [`RtFrame`](super::RtFrame),
    /// so this must not be larger than an allocator frame; how a shared frame ended is kept
    /// in its share cell instead.)
    buffer: Option<Box<[u8]>>,
    context: u64,
    injection: Arc<Injection>,
}

impl InjectedFrame {
    /// The context the frame was submitted with.
    ///
    /// ```
    /// # use std::sync::mpsc;
    /// # use ks_alloc::Status;
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// # use ks_graph::runtime::{process_fn, RtFrame, RunOptions};
    /// # use ks_graph::stream_pointer::PointerState;
    /// # let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// let (tx, rx) = mpsc::channel();
    /// built.replace_process("nullsink", Box::new(process_fn(move |pins| {
    ///     let q = pins.queue(0).expect("connected");
    ///     let mut eos = false;
    ///     while let Some(p) = q.leading_edge(PointerState::Locked) {
    ///         if let RtFrame::Injected(f) = q.frame(p)? {
    ///             tx.send(f.context()).unwrap(); // the sink sees the client's context
    ///         }
    ///         eos |= q.header(p)?.is_end_of_stream();
    ///         q.unlock(p, true)?;
    ///     }
    ///     if eos {
    ///         pins.end_of_stream();
    ///     }
    ///     Ok(())
    /// })))?;
    /// # let pin = built.graph.pin("testsrc.out")?;
    /// # let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// # let runtime = built.into_runtime()?;
    /// # let feeder = std::thread::spawn(move || {
    /// #     while !injector.is_running() { std::thread::yield_now(); }
    /// #     let mut h = ks_graph::queue::StreamHeader::with_data(0, 1);
    /// #     h.set_end_of_stream(true);
    /// #     injector.submit_with_header(vec![1], h, 77).unwrap();
    /// # });
    /// # runtime.run(&RunOptions::default())?;
    /// # feeder.join().unwrap();
    /// assert_eq!(rx.recv()?, 77);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn context(&self) -> u64 {
        self.context
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.buffer.as_deref().unwrap_or(&[])
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_deref_mut().unwrap_or(&mut [])
    }

    /// The frame completed with `header` and `status`: back to its client.
    pub(crate) fn finish(mut self, header: &StreamHeader, status: Result<(), Status>) {
        self.give_back(header, status);
    }

    /// Queues the return (once: the buffer goes with it).
    fn give_back(&mut self, header: &StreamHeader, status: Result<(), Status>) {
        let Some(buffer) = self.buffer.take() else {
            return;
        };
        self.injection.give_back(ReturnedFrame {
            pin: self.injection.pin,
            buffer,
            header: *header,
            context: self.context,
            status,
        });
    }
}

/// How a frame shared by a tee's branches completed, as the branches record it (policy:
/// the first failure wins over any success; otherwise the last success's header).
pub(crate) fn record_outcome(
    outcome: &mut Option<(StreamHeader, Result<(), Status>)>,
    header: &StreamHeader,
    status: Result<(), Status>,
) {
    if !matches!(outcome, Some((_, Err(_)))) {
        *outcome = Some((*header, status));
    }
}

impl fmt::Debug for InjectedFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injected")
            .field("pin", &self.injection.name)
            .field("len", &self.bytes().len())
            .field("context", &self.context)
            .finish()
    }
}

impl Drop for InjectedFrame {
    /// Let go without a completion (a filter kept it, the run stopped while it was between
    /// filters): back to the client, cancelled.
    fn drop(&mut self) {
        let extent = self.bytes().len().try_into().unwrap_or(u32::MAX);
        self.give_back(&StreamHeader::empty(extent), Err(Status::Cancelled));
    }
}

/// What the runtime needs to put a submitted frame into the circuit; set for the length of
/// a run.
#[derive(Clone)]
struct Live {
    shared: Arc<Shared>,
    /// The pin's peer.
    target: Target,
    /// The pipe's negotiated frame size.
    frame_size: u32,
}

impl Live {
    /// The run has begun to stop (STOP, or a failure): its frames are being flushed, so a
    /// submission now would only come straight back cancelled.
    fn stopping(&self) -> bool {
        // SeqCst: as every other load of `stop` (set before the gates close at STOP, and by
        // `fail`).
        self.shared.stop.load(Ordering::SeqCst)
    }
}

struct Gate {
    /// The pin's current registration (cleared when it is unregistered or replaced).
    registered: bool,
    /// Set while the graph streams.
    live: Option<Live>,
    /// Submissions that passed the gate and have not finished delivering.
    submitting: usize,
}

struct Returns {
    queue: VecDeque<ReturnedFrame>,
    /// A returner thread is taking the queue's frames; without one, returns are made inline.
    returner: bool,
}

type Callback = Box<dyn FnMut(ReturnedFrame) + Send>;

/// One registration of a frame-return callback on a pin: the callback, the gate that
/// submissions pass, and the queue of frames waiting to be returned.
pub(crate) struct Injection {
    pin: PinId,
    /// `"filter.pin"`, for messages.
    name: String,
    /// The filter instance owning the pin, for [`RunError::Filter`](super::RunError).
    pub(crate) filter: String,
    gate: Mutex<Gate>,
    /// Notified when `submitting` drops to 0.
    gate_idle: Condvar,
    returns: Mutex<Returns>,
    /// Notified when a frame is queued for return, or the returner is told to finish.
    returns_cv: Condvar,
    /// Locked only to call it (by one returner at a time, or inline once the run is over).
    callback: Mutex<Callback>,
    submitted: AtomicU64,
    returned: AtomicU64,
    /// The first panic of the callback, kept for the run to report.
    panicked: Mutex<Option<Status>>,
}

impl fmt::Debug for Injection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injection")
            .field("pin", &self.name)
            .finish_non_exhaustive()
    }
}

impl Injection {
    fn outstanding(&self) -> u64 {
        // Relaxed: counters (see `submit_with_header`).
        let submitted = self.submitted.load(Ordering::Relaxed);
        submitted.saturating_sub(self.returned.load(Ordering::Relaxed))
    }

    /// Opens the gate for a run: submissions deliver to `target` of `shared`.
    pub(super) fn open(&self, shared: Arc<Shared>, target: Target, frame_size: u32) {
        lock(&self.gate).live = Some(Live {
            shared,
            target,
            frame_size,
        });
    }

    /// Closes the gate (new submissions are refused) and waits until the submissions that
    /// passed it have delivered their frames. Idempotent.
    pub(super) fn close(&self) {
        let mut gate = lock(&self.gate);
        gate.live = None;
        while gate.submitting > 0 {
            gate = self
                .gate_idle
                .wait(gate)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// From now on a returner thread ([`run_returner`](Self::run_returner)) makes returns.
    pub(super) fn start_returner(&self) {
        lock(&self.returns).returner = true;
    }

    /// Tells the returner thread to finish once its queue is empty.
    pub(super) fn stop_returner(&self) {
        lock(&self.returns).returner = false;
        self.returns_cv.notify_all();
    }

    /// The returner thread: hands every queued frame to the callback, in the order they
    /// came back, until [`stop_returner`](Self::stop_returner) and an empty queue.
    /// `failed` is told of a panicking callback (once per panic).
    pub(super) fn run_returner(&self, failed: impl Fn(Status)) {
        loop {
            let next = {
                let mut returns = lock(&self.returns);
                loop {
                    if let Some(r) = returns.queue.pop_front() {
                        break Some(r);
                    }
                    if !returns.returner {
                        break None;
                    }
                    returns = self
                        .returns_cv
                        .wait(returns)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            };
            let Some(r) = next else {
                return;
            };
            if let Err(status) = self.call(r) {
                failed(status);
            }
        }
    }

    /// Returns, on this thread, whatever is still queued (after the returner is gone).
    pub(super) fn drain_inline(&self) {
        loop {
            let next = lock(&self.returns).queue.pop_front();
            let Some(r) = next else {
                return;
            };
            let _ = self.call(r);
        }
    }

    /// The first panic of the callback, if any (taken).
    pub(super) fn take_panic(&self) -> Option<Status> {
        lock(&self.panicked).take()
    }

    /// Whether every frame accepted has been handed back.
    pub(super) fn all_returned(&self) -> bool {
        self.outstanding() == 0
    }

    /// A frame left the circuit: queued for the returner, or, with none running, returned
    /// now.
    fn give_back(&self, r: ReturnedFrame) {
        let mut returns = lock(&self.returns);
        if returns.returner {
            returns.queue.push_back(r);
            drop(returns);
            self.returns_cv.notify_one();
            return;
        }
        drop(returns);
        let _ = self.call(r);
    }

    /// Calls the callback with `r`. A panic counts as a return (the buffer was handed
    /// over); it is kept for the run to report, and given back as an error.
    fn call(&self, r: ReturnedFrame) -> Result<(), Status> {
        // Counted as the callback receives it (a panic still counts: the buffer was handed
        // over), so that `outstanding` no longer counts it there. Relaxed: a counter (see
        // `submit_with_header`).
        self.returned.fetch_add(1, Ordering::Relaxed);
        let mut callback = lock(&self.callback);
        let result = catch_unwind(AssertUnwindSafe(|| (*callback)(r)));
        drop(callback);
        result.map_err(|p| {
            let status = Status::Unsuccessful(
                format!(
                    "its frame-return callback (pin '{}') panicked: {}",
                    self.name,
                    panic_message(&*p)
                )
                .into(),
            );
            let mut slot = lock(&self.panicked);
            if slot.is_none() {
                *slot = Some(status.clone());
            }
            status
        })
    }
}

impl Graph {
    /// Puts output pin `pin` in injection mode (`KsPinRegisterFrameReturnCallback`): from
    /// the next run on, its pipe's requester does not feed it allocator frames; the client
    /// submits its own buffers with the returned [`Injector`], and each comes back through
    /// `callback` ([`ReturnedFrame`]) once it has completed the circuit, or was cancelled
    /// (behaviour 45). Only legal in STOP (KS: before the STOP → ACQUIRE transition).
    ///
    /// The pin must start a pipe when the graph runs (a source's output, a copy
    /// transform's output); [`Runtime::run`](super::Runtime::run) refuses one that does
    /// not. The pipe's allocator is still negotiated and created, but no frame is taken
    /// from it. The pin's filter gets no empty frames to fill on it: a built-in filter that
    /// fills its output (`testsrc`; `copy`, which then holds its input frames waiting for
    /// output frames) produces nothing there, and its place is for a filter of the client's
    /// that submits what it produces. Registering again replaces the callback; injectors of the earlier
    /// registration are refused from then on.
    ///
    /// The callback runs on the run's "ks-inject" thread, one frame at a time, in the order
    /// the frames came back (or, for a frame let go after the streaming threads have ended,
    /// on the thread that called `run`, before it returns). It may submit the buffer again.
    /// A panic in it fails the run with [`RunError::Filter`](super::RunError) naming the
    /// pin's filter; the frames still come back to it.
    ///
    /// ```
    /// use ks_graph::filters;
    /// use ks_graph::runtime::spec::GraphSpec;
    /// use ks_graph::KsState;
    /// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// let pin = built.graph.pin("testsrc.out")?;
    /// assert!(built.graph.register_frame_return(pin, |_| {}).is_ok());
    /// assert!(built.graph.is_injecting(pin));
    /// // Outside STOP: refused, naming the state.
    /// built.graph.set_state(KsState::Acquire)?;
    /// let err = built.graph.register_frame_return(pin, |_| {}).unwrap_err();
    /// assert_eq!(err.status().name(), "STATUS_INVALID_DEVICE_STATE");
    /// assert!(err.to_string().contains("it is in ACQUIRE"), "{err}");
    /// # built.graph.set_state(KsState::Stop)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`GraphError::WrongState`] (`STATUS_INVALID_DEVICE_STATE`) outside STOP;
    /// [`GraphError::NotAnOutputPin`] for an input pin; [`GraphError::ForeignPin`] for a pin
    /// of another graph.
    #[doc(alias = "KsPinRegisterFrameReturnCallback")]
    pub fn register_frame_return<F>(
        &mut self,
        pin: PinId,
        callback: F,
    ) -> Result<Injector, GraphError>
    where
        F: FnMut(ReturnedFrame) + Send + 'static,
    {
        self.filters.check_pin(pin)?;
        self.require_stop("registering a frame-return callback")?;
        let name = self.pin_name(pin);
        if self.pin_descriptor(pin).direction != PinDirection::Out {
            return Err(GraphError::NotAnOutputPin {
                pin: name,
                operation: "injection mode (a frame-return callback)",
            });
        }
        let injection = Arc::new(Injection {
            pin,
            name,
            filter: self.filter_name(pin.filter()).to_owned(),
            gate: Mutex::new(Gate {
                registered: true,
                live: None,
                submitting: 0,
            }),
            gate_idle: Condvar::new(),
            returns: Mutex::new(Returns {
                queue: VecDeque::new(),
                returner: false,
            }),
            returns_cv: Condvar::new(),
            callback: Mutex::new(Box::new(callback)),
            submitted: AtomicU64::new(0),
            returned: AtomicU64::new(0),
            panicked: Mutex::new(None),
        });
        let old = self
            .filters
            .node_mut(pin)
            .frame_return
            .replace(Arc::clone(&injection));
        if let Some(old) = old {
            lock(&old.gate).registered = false;
        }
        Ok(Injector { inner: injection })
    }

    /// Takes pin `pin` out of injection mode: it receives allocator frames again from the
    /// next run on, and injectors of the registration are refused
    /// (`STATUS_INVALID_DEVICE_REQUEST`). Returns whether the pin was in injection mode.
    /// Only legal in STOP.
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// let pin = built.graph.pin("testsrc.out")?;
    /// let injector = built.graph.register_frame_return(pin, |_| {})?;
    /// assert!(built.graph.unregister_frame_return(pin)?);
    /// assert!(!built.graph.is_injecting(pin));
    /// let err = injector.submit(vec![0; 4], 0).unwrap_err();
    /// assert_eq!(err.status().name(), "STATUS_INVALID_DEVICE_REQUEST");
    /// assert!(!built.graph.unregister_frame_return(pin)?); // already out
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`GraphError::WrongState`] outside STOP; [`GraphError::ForeignPin`] for a pin of
    /// another graph.
    pub fn unregister_frame_return(&mut self, pin: PinId) -> Result<bool, GraphError> {
        self.filters.check_pin(pin)?;
        self.require_stop("unregistering a frame-return callback")?;
        let old = self.filters.node_mut(pin).frame_return.take();
        if let Some(old) = &old {
            lock(&old.gate).registered = false;
        }
        Ok(old.is_some())
    }

    /// Whether pin `pin` is in injection mode (a frame-return callback is registered).
    ///
    /// ```
    /// # use ks_graph::filters;
    /// # use ks_graph::runtime::spec::GraphSpec;
    /// let mut built = filters::build(GraphSpec::parse_pipeline("testsrc ! nullsink")?)?;
    /// let pin = built.graph.pin("testsrc.out")?;
    /// assert!(!built.graph.is_injecting(pin));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// If `pin` does not come from this graph.
    pub fn is_injecting(&self, pin: PinId) -> bool {
        self.filters.node(pin).frame_return.is_some()
    }

    /// The registration on `pin`, if any.
    pub(crate) fn frame_return(&self, pin: PinId) -> Option<&Arc<Injection>> {
        self.filters.node(pin).frame_return.as_ref()
    }
}
