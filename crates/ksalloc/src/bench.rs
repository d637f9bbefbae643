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
//!
//! Two baselines, std only, run in the same process so that a reader can compare on the same
//! machine at the same moment (reported apart from the results, under `baselines`):
//! * `mutex_vec_single`: one pop + push on a `Mutex<Vec<_>>` pool of the same frames;
//! * `handoff_condvar`: the same hand-off through a `Mutex` + `Condvar`, its hand-offs taking
//!   turns with those of `handoff_thread` and `handoff_async`, one by one.

use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use ks_alloc::Status;
use ks_alloc::bench::{self as shared, Latency, Placement};

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

/// Named measurements.
pub(crate) type Named = Vec<(&'static str, Measure)>;

/// What `ksalloc bench` measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Results {
    /// The allocator's measurements, in the order of the issue.
    pub(crate) results: Named,
    /// The std baselines, measured in the same run.
    pub(crate) baselines: Named,
}

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
/// rather than silently leaving a row out. The main allocator is dropped before the hand-off
/// rows make theirs (two of one frame each, alive together), so the limit must hold the larger
/// of the main one and those two, not the sum of all three.
pub(crate) fn run(frame_size: u32, frames: u32) -> Result<Results, Status> {
    let alloc = shared::allocator(frames, frame_size)?;
    let mut out: Named = Vec::new();
    let mut baselines: Named = Vec::new();

    let ns = per_op(|| shared::try_cycle(&alloc))?;
    out.push(("fn_table_single", Measure::PerOp(ns)));
    let pool = shared::MutexVecPool::new(frames as usize, frame_size as usize);
    let ns = per_op(|| pool.cycle())?;
    baselines.push(("mutex_vec_single", Measure::PerOp(ns)));
    drop(pool);

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
    // Closed and dropped (every frame is back, so the last handle unmaps its locked frames)
    // before the hand-off rows lock their own: under a tight RLIMIT_MEMLOCK an allocator
    // that fits the limit alone must not fail for the ones made after it.
    alloc.close();
    drop(alloc);

    // Hand-off: one frame per allocator, held by the freer while the waiter is parked on
    // it. The rows take turns hand-off by hand-off, with the `Condvar` among them, so that
    // their ratios hold on a loaded machine. (The floors the bench also returns are
    // diagnostics of the criterion bench, not reported here.)
    let [blocked, asynchronous, condvar, ..] =
        shared::interleaved_handoff_samples(1, frame_size, HANDOFF_SAMPLES, Placement::Free)?;
    out.push(("handoff_thread", Latency::from_samples(blocked.wake).into()));
    out.push((
        "handoff_async",
        Latency::from_samples(asynchronous.wake).into(),
    ));
    baselines.push((
        "handoff_condvar",
        Latency::from_samples(condvar.wake).into(),
    ));
    Ok(Results {
        results: out,
        baselines,
    })
}

/// The data-path baseline: a plain single-thread loop that fills one buffer of `frame_size`
/// bytes with the test pattern and inverts it, `frames` times — the same work as
/// `testsrc ! invert ! nullsink`, with no framework. Returns MB/s (10⁶ bytes).
pub(crate) fn fill_invert_loop(frame_size: u32, frames: u32) -> Result<f64, String> {
    let size = frame_size as usize;
    let ramp = ks_graph::filters::ramp_pattern(size);
    let mut buf = Vec::new();
    buf.try_reserve_exact(size)
        .map_err(|e| format!("--frame-size {frame_size}: cannot allocate the frame buffer: {e}"))?;
    buf.resize(size, 0u8);
    let mut sink = 0u8;
    let start = Instant::now();
    for n in 0..u64::from(frames) {
        ks_graph::filters::ramp_fill(&mut buf, &ramp, n);
        ks_graph::filters::invert_bytes(&mut buf);
        sink ^= std::hint::black_box(buf[n as usize % size]);
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    std::hint::black_box(sink);
    Ok((u64::from(frames) * u64::from(frame_size)) as f64 / 1e6 / secs)
}

/// The baseline an allocator row is compared with in the text output: the uncontended pool
/// for the single-thread rows, the `Condvar` for the hand-offs. (`two_threads` is a
/// contended figure and has no same-kind baseline here; the criterion bench compares it with
/// crossbeam's `ArrayQueue`.)
fn baseline_of(name: &str) -> Option<&'static str> {
    match name {
        "fn_table_single" | "async_ready" => Some("mutex_vec_single"),
        "handoff_thread" | "handoff_async" => Some("handoff_condvar"),
        _ => None,
    }
}

/// The figure a ratio compares: ns per operation, or the p50 in µs.
fn headline(m: &Measure) -> f64 {
    match m {
        Measure::PerOp(ns) => *ns,
        Measure::Latency { p50, .. } => *p50,
    }
}

/// The results as text: each row, and for the allocator's rows the ratio to their baseline
/// (below 1: faster than the baseline).
pub(crate) fn text(frame_size: u32, frames: u32, r: &Results) -> String {
    let mut s = format!("allocator benchmarks: {frames} frames of {frame_size} bytes\n");
    let line = |s: &mut String, name: &str, m: &Measure| match m {
        Measure::PerOp(ns) => s.push_str(&format!("  {name:<17} {ns:>10.1} ns per allocate+free")),
        Measure::Latency { p50, p99 } => s.push_str(&format!(
            "  {name:<17} p50 {p50:>8.2} µs   p99 {p99:>8.2} µs"
        )),
    };
    for (name, m) in &r.results {
        line(&mut s, name, m);
        let base = baseline_of(name)
            .and_then(|b| r.baselines.iter().find(|(n, _)| *n == b))
            .map(|(b, bm)| (headline(m) / headline(bm), b));
        if let Some((x, b)) = base.filter(|(x, _)| x.is_finite()) {
            s.push_str(&format!("   ({x:.2}× {b})"));
        }
        s.push('\n');
    }
    s.push_str("baselines (std, same run)\n");
    for (name, m) in &r.baselines {
        line(&mut s, name, m);
        s.push('\n');
    }
    s
}

/// The results as the JSON document of the issue, with the baselines under their own key.
pub(crate) fn json(frame_size: u32, frames: u32, r: &Results) -> String {
    let rows = |named: &Named| -> Vec<serde_json::Value> {
        named
            .iter()
            .map(|(name, m)| match m {
                Measure::PerOp(ns) => serde_json::json!({ "name": name, "ns_per_op": ns }),
                Measure::Latency { p50, p99 } => {
                    serde_json::json!({ "name": name, "p50_us": p50, "p99_us": p99 })
                }
            })
            .collect()
    };
    let doc = serde_json::json!({
        "frame_size": frame_size,
        "frames": frames,
        "results": rows(&r.results),
        "baselines": rows(&r.baselines),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text output compares each single-thread row with the pool baseline and each
    /// hand-off with the `Condvar`, and leaves the contended row without a ratio.
    #[test]
    fn text_gives_each_row_the_ratio_to_its_baseline() {
        let r = Results {
            results: vec![
                ("fn_table_single", Measure::PerOp(5.0)),
                ("two_threads", Measure::PerOp(7.0)),
                ("handoff_thread", Measure::Latency { p50: 6.0, p99: 9.0 }),
            ],
            baselines: vec![
                ("mutex_vec_single", Measure::PerOp(10.0)),
                ("handoff_condvar", Measure::Latency { p50: 5.0, p99: 8.0 }),
            ],
        };
        let t = text(4096, 64, &r);
        let line = |name: &str| {
            t.lines()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("no line for {name} in\n{t}"))
        };
        assert!(
            line("fn_table_single").ends_with("(0.50× mutex_vec_single)"),
            "{t}"
        );
        assert!(
            line("handoff_thread").ends_with("(1.20× handoff_condvar)"),
            "{t}"
        );
        assert!(!line("two_threads").contains('×'), "{t}");
        assert!(
            t.contains("baselines (std, same run)\n  mutex_vec_single"),
            "{t}"
        );
        assert!(!line("handoff_condvar").contains('×'), "{t}");
    }
}
