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

use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use ks_alloc::bench::{self as shared, Latency};
use ks_alloc::Status;

/// One measurement.
#[derive(Debug, Clone)]
pub(crate) enum Measure {
    /// Nanoseconds per allocate+free pair.
    PerOp(f64),
    /// Hand-off latency percentiles, microseconds.
    Latency { p50: f64, p99: f64 },
}

impl From<Latency> for Measure {
    fn from(l: Latency) -> Measure {
        Measure::Latency {
            p50: l.p50.as_nanos() as f64 / 1000.0,
            p99: l.p99.as_nanos() as f64 / 1000.0,
        }
    }
}

/// Named measurements, in the order of the issue.
pub(crate) type Results = Vec<(&'static str, Measure)>;

const SPAN: Duration = Duration::from_millis(300);
/// Hand-off samples per latency row.
const HANDOFF_SAMPLES: usize = 2000;

/// Repeats `op` in batches until `SPAN` has passed; returns ns per call. `op` returns whether
/// it got a frame; a single-thread cycle on an idle allocator always does.
fn per_op(mut op: impl FnMut() -> bool) -> Result<f64, Status> {
    let mut batch = || {
        for _ in 0..10_000 {
            if !op() {
                return Err(Status::Unsuccessful(
                    "the benchmark allocator had no free frame for a single-thread cycle".into(),
                ));
            }
        }
        Ok(())
    };
    batch()?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < SPAN {
        batch()?;
        n += 10_000;
    }
    Ok(start.elapsed().as_nanos() as f64 / n as f64)
}

/// Runs every benchmark, with the bodies the criterion benches use (`ks_alloc::bench`), on
/// locked (non-paged) memory: the function-table row needs it, and if the memory-lock limit
/// is too small creation fails with a status that names the limit and the bytes asked,
/// rather than silently leaving a row out.
pub(crate) fn run(frame_size: u32, frames: u32) -> Result<Results, Status> {
    let alloc = shared::allocator(frames, frame_size)?;
    let mut out: Results = Vec::new();

    let ns = per_op(|| shared::try_cycle(&alloc))?;
    out.push(("fn_table_single", Measure::PerOp(ns)));

    let mut cx = Context::from_waker(Waker::noop());
    let ns = per_op(|| shared::ready_async_cycle(&alloc, &mut cx))?;
    out.push(("async_ready", Measure::PerOp(ns)));

    // Two threads allocate and free at once; with few frames a thread that finds none waits
    // for one. Wall time over both threads' pairs (a throughput figure).
    let pairs = 500_000u64;
    let elapsed = shared::contended(2, pairs, || {
        drop(
            alloc
                .try_allocate()
                .or_else(|_| alloc.allocate_blocking(None)),
        );
    });
    let ns = elapsed.as_nanos() as f64 / (2 * pairs) as f64;
    out.push(("two_threads", Measure::PerOp(ns)));
    alloc.close();

    // Hand-off: one frame, held by the freer while the waiter is parked on it.
    let one = shared::allocator(1, frame_size)?;
    out.push((
        "handoff_thread",
        shared::handoff_latency_blocked(&one, HANDOFF_SAMPLES).into(),
    ));
    out.push((
        "handoff_async",
        shared::handoff_latency_async(&one, HANDOFF_SAMPLES).into(),
    ));
    one.close();
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
