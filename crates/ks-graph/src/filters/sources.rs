//! Source filters: `testsrc` and `filesrc`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType, Status};

use super::{FilterType, Made, PropDef, PropKind, Props};
use crate::model::{FilterDescriptor, PinDescriptor};
use crate::runtime::spec::{SpecError, SpecErrorKind};
use crate::runtime::{AttemptProcessing, FilterStats, PROCESSING_STACK, Pins, Process};

/// Frames a source pin holds at once (its framing's `Frames`).
const SOURCE_FRAMES: u32 = 4;

/// A source's output framing: any memory, 4 frames, byte alignment, and frames of exactly
/// `size` bytes — a hard (physical) range, not only the optimal one `simple` declares.
fn source_descriptor(kind: &str, size: u32) -> FilterDescriptor {
    let mut framing = FramingEx::simple(
        MemoryType::WILDCARD,
        ItemFlags::empty(),
        SOURCE_FRAMES,
        Alignment::BYTE,
        size,
        size,
    );
    for item in &mut framing.items {
        item.physical_range = item.framing_range;
    }
    FilterDescriptor::kernel(kind).with_pin(
        PinDescriptor::output("out")
            .with_framing(framing)
            .required(),
    )
}

/// `testsrc`: a deterministic test pattern.
///
/// Pins: `out` (output, required), framing: any memory, 4 frames, byte alignment, frame size
/// exactly `size` bytes. Frame *n* byte *i* is `(n + i) mod 256` (`pattern=ramp`), 0
/// (`pattern=zero`), or left as the allocator handed it out (`pattern=none`, to measure the
/// framework alone). The last frame carries end-of-stream.
pub(super) const TESTSRC: FilterType = FilterType {
    name: "testsrc",
    summary: "deterministic test frames (ramp pattern, zeros, or unfilled)",
    pins: "out: output, any memory, 4 frames, frame size = size",
    properties: &[
        PropDef {
            name: "frames",
            kind: PropKind::Int,
            default: "1000",
            doc: "how many frames to produce (at least 1)",
        },
        PropDef {
            name: "size",
            kind: PropKind::Int,
            default: "4096",
            doc: "bytes of data per frame (the pin's frame size)",
        },
        PropDef {
            name: "pattern",
            kind: PropKind::Choice(&["ramp", "zero", "none"]),
            default: "ramp",
            doc: "ramp: byte i of frame n is (n+i) mod 256; zero; none: leave frames unfilled",
        },
    ],
    make: make_testsrc,
};

fn make_testsrc(p: &Props<'_>) -> Result<Made, SpecError> {
    let frames = p.int("frames", 1, u64::MAX)?;
    let size = p.int("size", 1, u64::from(u32::MAX))? as u32;
    let pattern = match p.choice("pattern")? {
        0 => Pattern::Ramp,
        1 => Pattern::Zero,
        _ => Pattern::None,
    };
    let ramp = match pattern {
        Pattern::Ramp => ramp_pattern(size as usize),
        _ => Vec::new(),
    };
    Ok(Made {
        descriptor: source_descriptor("testsrc", size),
        process: Box::new(TestSrc {
            frames,
            sent: 0,
            size,
            pattern,
            ramp,
            stats: FilterStats::default(),
        }),
    })
}

/// The longest run [`ramp_fill`] copies at once (a multiple of 256, so every run starts at
/// the same phase): a frame larger than this is filled in runs, so the ramp stays small
/// whatever the frame size.
const RAMP_RUN: usize = 64 * 1024;

/// The source of [`ramp_fill`] for frames of `frame_size` bytes: `0, 1, 2, …` (mod 256),
/// `min(frame_size, 64 KiB) + 256` bytes long.
///
/// ```
/// let ramp = ks_graph::filters::ramp_pattern(4);
/// assert_eq!(ramp.len(), 4 + 256);
/// assert_eq!(ks_graph::filters::ramp_pattern(u32::MAX as usize).len(), 64 * 1024 + 256);
/// ```
pub fn ramp_pattern(frame_size: usize) -> Vec<u8> {
    (0..frame_size.min(RAMP_RUN) + 256)
        .map(|i| i as u8)
        .collect()
}

/// Fills `buf` with frame `n` of the ramp pattern: byte `i` is `(n + i) mod 256`. `ramp`
/// comes from [`ramp_pattern`] (any length works: the fill copies runs of up to
/// `ramp.len() - 256` bytes, rounded down to a multiple of 256, and falls back to a byte loop
/// for a ramp shorter than that).
///
/// ```
/// let ramp = ks_graph::filters::ramp_pattern(4);
/// let mut buf = [0u8; 4];
/// ks_graph::filters::ramp_fill(&mut buf, &ramp, 254);
/// assert_eq!(buf, [254, 255, 0, 1]);
/// // A frame longer than the ramp is filled in runs.
/// let mut big = vec![0u8; 1000];
/// ks_graph::filters::ramp_fill(&mut big, &ks_graph::filters::ramp_pattern(300), 3);
/// assert!(big.iter().enumerate().all(|(i, &b)| b == (3 + i) as u8));
/// ```
pub fn ramp_fill(buf: &mut [u8], ramp: &[u8], n: u64) {
    let start = (n % 256) as usize;
    if let Some(src) = ramp.get(start..start + buf.len()) {
        buf.copy_from_slice(src);
        return;
    }
    let run = ramp.len().saturating_sub(256) & !255;
    if run == 0 {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (start + i) as u8;
        }
        return;
    }
    // Each run is a multiple of 256 bytes long, so the next one starts at the same phase.
    for chunk in buf.chunks_mut(run) {
        chunk.copy_from_slice(&ramp[start..start + chunk.len()]);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Ramp,
    Zero,
    None,
}

struct TestSrc {
    /// How many frames to produce.
    frames: u64,
    /// How many were sent.
    sent: u64,
    size: u32,
    pattern: Pattern,
    ramp: Vec<u8>,
    stats: FilterStats,
}

impl Process for TestSrc {
    fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
        let Some(q) = pins.queue(0) else {
            pins.finish_source();
            return Ok(());
        };
        let left = usize::try_from(self.frames - self.sent).unwrap_or(usize::MAX);
        q.eject_leading(left, |mut f| {
            let sent = self.sent;
            let (h, buf) = f.split_mut()?;
            let n = buf.len().min(self.size as usize);
            match self.pattern {
                Pattern::Ramp => ramp_fill(&mut buf[..n], &self.ramp, sent),
                Pattern::Zero => buf[..n].fill(0),
                Pattern::None => {}
            }
            let last = sent + 1 == self.frames;
            h.data_used = n as u32;
            h.presentation_time = sent as i64;
            h.duration = 1;
            h.set_end_of_stream(last);
            self.sent += 1;
            self.stats.record(n as u32);
            Ok::<(), Status>(())
        })?;
        if self.sent == self.frames {
            pins.finish_source();
        }
        Ok(())
    }

    fn stats(&self) -> FilterStats {
        self.stats.clone()
    }
}

/// `filesrc`: a file, cut into frames of `size` bytes (the last one shorter).
///
/// Pins: `out` (output, required), framing: any memory, 4 frames, byte alignment, frame size
/// exactly `size`. An empty file gives one empty frame that carries the end of the stream
/// (and, having no data, counts as no frame in the report: 0 frames, 0 bytes). The file is
/// opened when the graph is built, so an unreadable file is reported before anything runs
/// (a FIFO without a writer yet is opened without waiting for one). A regular file streams
/// the length it has then; a pipe, a device or a `/proc` file (no length) is read until its
/// end of file (`/dev/zero` never ends: stop it with `--until`). A pipe or a device is read
/// only once it has data, and the source never waits for it in its process callback (which
/// may run on the runtime's timer thread, serving every filter's stream-pointer timeouts):
/// while it has none, a thread of the source's own waits for it, holding no lock, and then
/// processes the source there ([`AttemptProcessing::attempt_here`]), which delivers what it
/// read downstream on that thread. No runtime thread and no lock waits for a writer that
/// stays silent, and a run that stops (`--until`, an error) ends that thread at once.
pub(super) const FILESRC: FilterType = FilterType {
    name: "filesrc",
    summary: "reads a file into frames",
    pins: "out: output, any memory, 4 frames, frame size = size",
    properties: &[
        PropDef {
            name: "location",
            kind: PropKind::Path,
            default: "",
            doc: "the file to read (required)",
        },
        PropDef {
            name: "size",
            kind: PropKind::Int,
            default: "65536",
            doc: "bytes per frame",
        },
    ],
    make: make_filesrc,
};

fn make_filesrc(p: &Props<'_>) -> Result<Made, SpecError> {
    let location = p.text("location")?;
    let size = p.int("size", 1, u64::from(u32::MAX))? as u32;
    let io = |e: std::io::Error| {
        SpecError::new(
            SpecErrorKind::Io,
            format!(
                "filter '{}' (filesrc): cannot read '{location}': {e}",
                p.instance()
            ),
        )
    };
    // Opened non-blocking, so that opening a FIFO does not wait for a writer (a graph is
    // built for `plan` too, which reads nothing); the flag is cleared right after: a pipe or
    // a device is read only after a poll found data (`read_until_end`), and waited for by
    // the source's waiter thread (`Waiter`).
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&location)
        .map_err(io)?;
    let flags = rustix::fs::fcntl_getfl(&file).map_err(|e| io(e.into()))?;
    rustix::fs::fcntl_setfl(&file, flags - rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| io(e.into()))?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(SpecError::new(
            SpecErrorKind::Io,
            format!(
                "filter '{}' (filesrc): '{location}' is a directory",
                p.instance()
            ),
        ));
    }
    // A regular file with a length streams exactly that many bytes. Anything else (a pipe,
    // a device, a /proc file, which report no length) is read until its end of file.
    let remaining = (meta.is_file() && meta.len() > 0).then_some(meta.len());
    Ok(Made {
        descriptor: source_descriptor("filesrc", size),
        process: Box::new(FileSrc {
            // A regular file never blocks a read: no poll on its path.
            wait: !meta.is_file(),
            waiter: None,
            file,
            remaining,
            carry: None,
            filled: 0,
            sent: 0,
            size,
            stats: FilterStats::default(),
            done: false,
        }),
    })
}

/// Whether `file` has something to read now (data, its end, or an error the read will
/// return). Never waits.
fn readable(file: &File) -> std::io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(file, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&now)) {
        Ok(n) => Ok(n > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// What `filesrc` and its waiter thread share.
struct Wake {
    /// The source has a frame to fill and found no data: the waiter waits for some, then
    /// asks for the source's processing (and clears this).
    armed: AtomicBool,
    /// The waiter ends.
    quit: AtomicBool,
    /// A byte written here wakes the waiter's poll (which watches `rx`) to look at `armed`
    /// and `quit`. Both ends live as long as either side, so a write never meets a closed
    /// peer. Non-blocking, both.
    tx: UnixStream,
    rx: UnixStream,
}

impl Wake {
    /// Wakes the waiter. A full socket already holds a wake-up: nothing is lost.
    fn notify(&self) {
        let _ = (&self.tx).write(&[1]);
    }

    /// Reads every pending wake-up byte.
    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// `filesrc`'s thread that waits for a pipe's or a device's data, so that its process
/// callback never does, and then processes the source (its streaming thread).
struct Waiter {
    wake: Arc<Wake>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Waiter {
    /// Starts the thread, waiting on `file` (a handle of the source's open file) and
    /// processing the source through `again`.
    fn start(file: File, again: AttemptProcessing) -> std::io::Result<Waiter> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        let wake = Arc::new(Wake {
            armed: AtomicBool::new(false),
            quit: AtomicBool::new(false),
            tx,
            rx,
        });
        let shared = Arc::clone(&wake);
        let thread = thread::Builder::new()
            .name("ks-filesrc-wait".into())
            .stack_size(PROCESSING_STACK)
            .spawn(move || run_waiter(&file, &shared, &again))?;
        Ok(Waiter {
            wake,
            thread: Some(thread),
        })
    }

    /// Has the thread wait for data, then process the source.
    fn arm(&self) {
        // SeqCst, here and in the thread: a handful of flags, read once per wake-up.
        // Armed by the thread itself (processing the source, it found the data used up),
        // it looks at the flag as soon as it returns: no wake-up needed.
        if !self.wake.armed.swap(true, Ordering::SeqCst) && !self.is_current() {
            self.wake.notify();
        }
    }

    /// The source does not need the thread now (it read what there was, or has no frame
    /// to fill): data that comes does not make the thread process it. A thread already
    /// waiting on the file wakes once, and then waits for the next `arm` only.
    fn disarm(&self) {
        self.wake.armed.store(false, Ordering::SeqCst);
    }

    /// Whether the calling thread is the waiter.
    fn is_current(&self) -> bool {
        self.thread
            .as_ref()
            .is_some_and(|t| t.thread().id() == thread::current().id())
    }

    /// Ends the thread and waits for it, unless this is that thread (dropping the run's
    /// last handle there drops the source). The thread is either waiting (it is woken) or
    /// processing the source, which a stopping run lets it finish.
    fn quit(&mut self) {
        self.wake.quit.store(true, Ordering::SeqCst);
        self.wake.notify();
        let current = self.is_current();
        if let Some(t) = self.thread.take() {
            if !current {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.quit();
    }
}

/// The waiter thread: while `armed`, waits for `file` to be readable, then processes the
/// source; otherwise waits for a wake-up. Ends on `quit`, or once the run is stopping.
fn run_waiter(file: &File, wake: &Wake, again: &AttemptProcessing) {
    use rustix::event::{PollFd, PollFlags, poll};
    loop {
        if wake.quit.load(Ordering::SeqCst) {
            return;
        }
        // Read before the poll: an `arm` after this wakes the poll through `rx`.
        let armed = wake.armed.load(Ordering::SeqCst);
        let mut fds = [
            PollFd::new(&wake.rx, PollFlags::IN),
            PollFd::new(file, PollFlags::IN),
        ];
        let watched = if armed { 2 } else { 1 };
        let ready = match poll(&mut fds[..watched], None) {
            Ok(_) => watched == 2 && !fds[1].revents().is_empty(),
            Err(rustix::io::Errno::INTR) => false,
            // Polling is broken: look again after a while, and let the source try its read
            // (which reports the error, if it is the file's).
            Err(_) => {
                thread::sleep(std::time::Duration::from_millis(20));
                armed
            }
        };
        if !fds[0].revents().is_empty() {
            wake.drain();
        }
        // Claimed, unless the source was disarmed meanwhile (another thread processing it
        // found the data first). A run that is stopping processes nothing: the thread ends.
        if ready && wake.armed.swap(false, Ordering::SeqCst) && !again.attempt_here() {
            return;
        }
    }
}

/// Fills `buf` from a file of unknown length, starting with `carry`, after the `filled`
/// bytes an earlier call put there; returns the bytes filled and whether the file ended, or
/// `None` when it has no data now (`wait`: poll, without waiting, before each read; the bytes
/// read so far stay in `buf`, counted in `filled`, for the next call). A full frame reads
/// one byte more (kept in `carry`) to tell whether it was the last.
fn read_until_end(
    file: &mut File,
    wait: bool,
    carry: &mut Option<u8>,
    filled: &mut usize,
    buf: &mut [u8],
) -> std::io::Result<Option<(usize, bool)>> {
    if *filled == 0 {
        if let Some(b) = carry.take() {
            if let Some(first) = buf.first_mut() {
                *first = b;
                *filled = 1;
            } else {
                *carry = Some(b);
            }
        }
    }
    while *filled < buf.len() {
        if wait && !readable(file)? {
            return Ok(None);
        }
        match file.read(&mut buf[*filled..]) {
            Ok(0) => return Ok(Some((std::mem::take(filled), true))),
            Ok(k) => *filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut one = [0u8; 1];
    loop {
        if wait && !readable(file)? {
            return Ok(None);
        }
        match file.read(&mut one) {
            Ok(0) => return Ok(Some((std::mem::take(filled), true))),
            Ok(_) => {
                *carry = Some(one[0]);
                return Ok(Some((std::mem::take(filled), false)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

struct FileSrc {
    file: File,
    /// Not a regular file (a pipe, a device): look for data with `poll` before each read, so
    /// that a read never blocks; without data, `waiter` waits for some.
    wait: bool,
    /// Started at the first wait for data.
    waiter: Option<Waiter>,
    /// Bytes of the file not read yet, when its length is known; `None`: read until the end
    /// of file.
    remaining: Option<u64>,
    /// Without a known length: the byte read past the last frame to learn whether it was the
    /// last, which starts the next frame.
    carry: Option<u8>,
    /// Without a known length: bytes already in the frame at the leading edge, read by an
    /// earlier call that then found no more data.
    filled: usize,
    /// Frames sent (the presentation time of the next one).
    sent: u64,
    size: u32,
    stats: FilterStats,
    done: bool,
}

impl Process for FileSrc {
    fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
        let Some(q) = pins.queue(0) else {
            pins.finish_source();
            return Ok(());
        };
        let mut no_data = false;
        while !self.done {
            let Some(p) = q.leading_edge(crate::stream_pointer::PointerState::Locked) else {
                break;
            };
            let buf = q.data_mut(p)?;
            let want = (self.size as usize).min(buf.len());
            let read_failed = |e: std::io::Error| {
                Status::Unsuccessful(format!("filesrc: read failed: {e}").into())
            };
            let read = match &mut self.remaining {
                Some(remaining) => {
                    let n = (*remaining).min(want as u64) as usize;
                    self.file.read_exact(&mut buf[..n]).map_err(read_failed)?;
                    *remaining -= n as u64;
                    Some((n, *remaining == 0))
                }
                None => read_until_end(
                    &mut self.file,
                    self.wait,
                    &mut self.carry,
                    &mut self.filled,
                    &mut buf[..want],
                )
                .map_err(read_failed)?,
            };
            let Some((n, last)) = read else {
                // Nothing to read yet: the frame stays at the leading edge with what it has,
                // and the waiter makes this call again once there is something.
                q.unlock(p, false)?;
                no_data = true;
                break;
            };
            let h = q.header_mut(p)?;
            h.data_used = n as u32;
            h.presentation_time = self.sent as i64;
            h.set_end_of_stream(last);
            q.unlock(p, true)?;
            self.sent += 1;
            self.stats.record(n as u32);
            self.done = last;
        }
        if no_data {
            self.wait_for_data(pins)?;
        } else if let Some(w) = &self.waiter {
            w.disarm();
        }
        if self.done {
            pins.finish_source();
        }
        Ok(())
    }

    fn stats(&self) -> FilterStats {
        self.stats.clone()
    }

    /// Ends the waiter thread (at once: it is woken), so that nothing of the run is left.
    fn stop(&mut self) -> Result<(), Status> {
        if let Some(mut w) = self.waiter.take() {
            w.quit();
        }
        Ok(())
    }
}

impl FileSrc {
    /// Has the waiter thread (started now, the first time) wait for the file's data and then
    /// process this source again.
    fn wait_for_data(&mut self, pins: &Pins<'_>) -> Result<(), Status> {
        let waiter = match &mut self.waiter {
            Some(w) => w,
            None => {
                let started = self
                    .file
                    .try_clone()
                    .and_then(|file| Waiter::start(file, pins.attempt_processing()))
                    .map_err(|e| {
                        Status::InsufficientResources(
                            format!("filesrc: cannot wait for data: {e}").into(),
                        )
                    })?;
                self.waiter.insert(started)
            }
        };
        waiter.arm();
        Ok(())
    }
}
