//! `ksalloc bench`: the allocator benchmarks of the allocator issue, in process, so a user can
//! measure their own machine (the criterion benches in `crates/ks-alloc/benches/` compare the
//! same operations against peer pools).
//!
//! * `fn_table_single`: function-table allocate + free on one thread (`try_allocate`, drop).
//! * `async_ready`: `allocate().await` that completes at once + drop.
//! * `two_threads`: two threads allocating and freeing on one allocator; wall time per
//!   allocate+free pair over both threads' pairs (a throughput figure).
//! * `handoff_thread`: latency from a free to a thread blocked in `allocate_blocking`
//!   receiving the frame (p50 / p99, µs).
//! * `handoff_async`: the same to an async task (its waker unparks the executor thread).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType, Status};

/// One measurement.
#[derive(Debug, Clone)]
pub(crate) enum Measure {
    /// Nanoseconds per allocate+free pair.
    PerOp(f64),
    /// Hand-off latency percentiles, microseconds.
    Latency { p50: f64, p99: f64 },
}

/// Named measurements, in the order of the issue.
pub(crate) type Results = Vec<(&'static str, Measure)>;

fn allocator(frame_size: u32, frames: u32) -> Result<Allocator, Status> {
    let framing = Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames,
        frame_size,
        alignment: Alignment::BYTE,
    };
    // Locked (non-paged) memory: the function-table row needs it, and every row measures the
    // same allocator. If the memory-lock limit is too small this fails with a status that
    // names the limit and the bytes asked, rather than silently leaving a row out.
    Allocator::new(&framing, Memory::NonPaged)
}

const SPAN: Duration = Duration::from_millis(300);

/// Repeats `op` in batches until `SPAN` has passed; returns ns per call.
fn per_op(mut op: impl FnMut() -> Result<(), Status>) -> Result<f64, Status> {
    for _ in 0..10_000 {
        op()?;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < SPAN {
        for _ in 0..10_000 {
            op()?;
        }
        n += 10_000;
    }
    Ok(start.elapsed().as_nanos() as f64 / n as f64)
}

struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: polls `fut` on this thread, parking while it is pending.
fn block_on<F: Future>(fut: F, waker: &Waker) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

fn percentiles(mut v: Vec<f64>) -> Measure {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Measure::Latency {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Hand-off latency: the main thread holds the only frame; a waiter (thread or async task)
/// requests one and blocks; the main thread stamps the time and frees; the waiter stamps
/// the arrival.
fn handoff(frame_size: u32, rounds: usize, async_waiter: bool) -> Result<Measure, Status> {
    let alloc = allocator(frame_size, 1)?;
    let base = Instant::now();
    // Relaxed on both stamps: the frame hand-off itself (an acquire/release pair inside the
    // allocator) orders the freer's store before the waiter's load.
    let freed_at = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(2));
    let (tx, rx) = std::sync::mpsc::channel::<f64>();
    let waiter = {
        let alloc = alloc.clone();
        let freed_at = Arc::clone(&freed_at);
        let start = Arc::clone(&start);
        thread::spawn(move || -> Result<(), Status> {
            let waker = Waker::from(Arc::new(Unpark(thread::current())));
            for _ in 0..rounds {
                start.wait();
                let frame = if async_waiter {
                    block_on(alloc.allocate(), &waker)?
                } else {
                    alloc.allocate_blocking(None)?
                };
                let now = base.elapsed().as_nanos() as u64;
                let sent = freed_at.load(Ordering::Relaxed);
                drop(frame);
                let _ = tx.send(now.saturating_sub(sent) as f64 / 1000.0);
            }
            Ok(())
        })
    };
    let mut lat = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let frame = alloc
            .try_allocate()
            .or_else(|_| alloc.allocate_blocking(None))?;
        start.wait();
        // Wait until the waiter is queued.
        let t = Instant::now();
        while alloc.status().pending == 0 && t.elapsed() < Duration::from_secs(1) {
            thread::yield_now();
        }
        freed_at.store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        drop(frame);
        if let Ok(us) = rx.recv() {
            lat.push(us);
        }
    }
    match waiter.join() {
        Ok(r) => r?,
        Err(_) => return Err(Status::Unsuccessful("the waiter thread panicked".into())),
    }
    alloc.close();
    Ok(percentiles(lat))
}

/// Runs every benchmark.
pub(crate) fn run(frame_size: u32, frames: u32) -> Result<Results, Status> {
    let alloc = allocator(frame_size, frames)?;
    let mut out: Results = Vec::new();

    let ns = per_op(|| alloc.try_allocate().map(drop))?;
    out.push(("fn_table_single", Measure::PerOp(ns)));

    let waker = Waker::noop();
    let ns = per_op(|| block_on(alloc.allocate(), waker).map(drop))?;
    out.push(("async_ready", Measure::PerOp(ns)));

    let pairs = 500_000u64;
    let barrier = Arc::new(Barrier::new(2));
    let start = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let a = alloc.clone();
            let b = Arc::clone(&barrier);
            thread::spawn(move || -> Result<(), Status> {
                b.wait();
                for _ in 0..pairs {
                    let f = match a.try_allocate() {
                        Ok(f) => f,
                        Err(_) => a.allocate_blocking(None)?,
                    };
                    drop(f);
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        match w.join() {
            Ok(r) => r?,
            Err(_) => return Err(Status::Unsuccessful("a bench thread panicked".into())),
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / (2 * pairs) as f64;
    out.push(("two_threads", Measure::PerOp(ns)));
    alloc.close();

    out.push(("handoff_thread", handoff(frame_size, 2000, false)?));
    out.push(("handoff_async", handoff(frame_size, 2000, true)?));
    Ok(out)
}

/// The data-path baseline: a plain single-thread loop that fills one buffer of `frame_size`
/// bytes with the test pattern and inverts it, `frames` times — the same work as
/// `testsrc ! invert ! nullsink`, with no framework. Returns MB/s (10⁶ bytes).
pub(crate) fn fill_invert_loop(frame_size: u32, frames: u32) -> f64 {
    let size = frame_size as usize;
    let ramp: Vec<u8> = (0..size + 256).map(|i| i as u8).collect();
    let mut buf = vec![0u8; size];
    let mut sink = 0u8;
    let start = Instant::now();
    for n in 0..u64::from(frames) {
        ks_graph::filters::ramp_fill(&mut buf, &ramp, n);
        ks_graph::filters::invert_bytes(&mut buf);
        sink ^= std::hint::black_box(buf[n as usize % size]);
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    std::hint::black_box(sink);
    (u64::from(frames) * u64::from(frame_size)) as f64 / 1e6 / secs
}

/// The results as text.
pub(crate) fn text(frame_size: u32, frames: u32, r: &Results) -> String {
    let mut s = format!("allocator benchmarks: {frames} frames of {frame_size} bytes\n");
    for (name, m) in r {
        match m {
            Measure::PerOp(ns) => {
                s.push_str(&format!("  {name:<16} {ns:>10.1} ns per allocate+free\n"))
            }
            Measure::Latency { p50, p99 } => s.push_str(&format!(
                "  {name:<16} p50 {p50:>8.2} µs   p99 {p99:>8.2} µs\n"
            )),
        }
    }
    s
}

/// The results as the JSON document of the issue.
pub(crate) fn json(frame_size: u32, frames: u32, r: &Results) -> String {
    let results: Vec<serde_json::Value> = r
        .iter()
        .map(|(name, m)| match m {
            Measure::PerOp(ns) => serde_json::json!({ "name": name, "ns_per_op": ns }),
            Measure::Latency { p50, p99 } => {
                serde_json::json!({ "name": name, "p50_us": p50, "p99_us": p99 })
            }
        })
        .collect();
    let doc = serde_json::json!({ "frame_size": frame_size, "frames": frames, "results": results });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
