//! Counting-allocator test: once a graph is running, streaming allocates nothing on the heap.
//!
//! Each graph streams (practically) endlessly for a fixed wall-clock time; the runtime's
//! progress callback (about every 100 ms) samples the process-wide allocation count and the
//! frames delivered so far. Setup, thread start-up and the first samples are warm-up; from the
//! second sample to the last, the whole process — requesters blocked in `allocate_blocking`,
//! filter threads freeing frames, the ks-alloc worker's clock and starvation ticks — must make
//! no heap allocation at all while thousands of frames flow. Setup and teardown are outside
//! the window (teardown cancels the frames still queued at STOP, which costs a status per
//! frame in flight: bounded by the frame counts, not by the stream length). One test per
//! file: the counter is process-wide.
//!
//! Every graph, with or without a tee, must allocate nothing at all. (Tee graphs share frames
//! through recycled pool cells; `SharedFrame::drop` in ks-graph's runtime/frame.rs counts the
//! holders in the cell so that exactly one of two holders dropping at once recycles it.)

use std::alloc::System;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ks_graph::filters;
use ks_graph::runtime::RunOptions;
use ks_graph::runtime::spec::GraphSpec;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Samples taken by the progress callback: (frames delivered, allocations so far).
type Samples = Arc<Mutex<Vec<(u64, usize)>>>;

/// Streams `pipeline` for `time`; returns the samples.
fn stream(pipeline: &str, time: Duration) -> Vec<(u64, usize)> {
    let spec = GraphSpec::parse_pipeline(pipeline).expect("pipeline");
    let runtime = filters::build(spec)
        .expect("build")
        .into_runtime()
        .expect("runtime");
    // Capacity reserved up front: pushing a sample never allocates.
    let samples: Samples = Arc::new(Mutex::new(Vec::with_capacity(1024)));
    let s = samples.clone();
    let options = RunOptions {
        until: Some(time),
        progress: Some(Box::new(move |delivered| {
            let allocations = GLOBAL.stats().allocations + GLOBAL.stats().reallocations;
            let mut v = s.lock().unwrap_or_else(|e| e.into_inner());
            if v.len() < v.capacity() {
                v.push((delivered, allocations));
            }
        })),
    };
    let outcome = runtime.run(&options).expect("run");
    assert!(
        outcome.report.all_frames_returned,
        "{pipeline}: frames not returned"
    );
    drop(outcome);
    samples.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[test]
fn no_heap_allocation_in_steady_state() {
    let graphs = [
        "testsrc frames=F size=4096 ! invert ! nullsink",
        "testsrc frames=F size=4096 ! commonbuf ! invert ! copy ! commonbuf ! nullsink mode=user",
        "testsrc frames=F size=1024 ! tee name=t ! checksum ! nullsink t. ! identity ! nullsink",
        "testsrc frames=F size=4096 ! commonbuf ! invert ! tee name=t ! checksum ! nullsink \
         t. ! copy ! commonbuf ! nullsink mode=user",
    ];
    for g in graphs {
        let g = g.replace("frames=F", "frames=1000000000");
        // About 7 samples: the first two are warm-up, the window spans the other ~500 ms
        // (ten ks-alloc worker scans, fifty clock ticks). Time only sizes the window: on a
        // machine too loaded to stream enough frames in it, the run is repeated with a longer
        // one (the assertions below are on counts, never on rates).
        let mut window = Duration::from_millis(750);
        let (frames, allocations, samples) = loop {
            let samples = stream(&g, window);
            let (f0, a0) = samples.get(1).copied().unwrap_or_default();
            let (f1, a1) = samples.last().copied().unwrap_or_default();
            let (frames, allocations) = (f1.saturating_sub(f0), a1.saturating_sub(a0));
            if (samples.len() >= 4 && frames >= 2_000) || window >= Duration::from_secs(6) {
                break (frames, allocations, samples);
            }
            window *= 2;
        };
        assert!(
            samples.len() >= 4,
            "{g}: only {} progress samples",
            samples.len()
        );
        eprintln!("{g}: {allocations} allocations while {frames} frames streamed ({samples:?})");
        // Enough frames for any per-frame (or per-hand-off, per-batch) cost to show.
        assert!(
            frames >= 2_000,
            "{g}: only {frames} frames streamed in the window"
        );
        assert_eq!(
            allocations, 0,
            "{g}: {allocations} heap allocations while {frames} frames streamed in steady state"
        );
    }
}
