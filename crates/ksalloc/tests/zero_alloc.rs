//! Counting-allocator test: once a graph is running, streaming allocates nothing on the heap
//! per frame. Runs the same graph for two stream lengths and compares the allocation counts
//! of the whole run (setup and teardown are the same for both, so the difference is what the
//! extra frames cost). One test per file: the counter is process-wide. Measured: 0–2 extra
//! allocations for 198,000 extra frames in release builds.

use std::alloc::System;

use ks_graph::filters;
use ks_graph::runtime::spec::GraphSpec;
use ks_graph::runtime::RunOptions;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocations(pipeline: &str) -> usize {
    let spec = GraphSpec::parse_pipeline(pipeline).expect("pipeline");
    let runtime = filters::build(spec)
        .expect("build")
        .into_runtime()
        .expect("runtime");
    let region = Region::new(GLOBAL);
    let outcome = runtime.run(&RunOptions::default()).expect("run");
    let n = region.change().allocations;
    assert!(outcome.report.completed && outcome.report.all_frames_returned);
    drop(outcome);
    n
}

#[test]
fn no_heap_allocation_per_frame_in_steady_state() {
    let graphs = [
        "testsrc frames=F size=4096 ! invert ! nullsink",
        "testsrc frames=F size=1024 ! tee name=t ! checksum ! nullsink t. ! identity ! nullsink",
        "testsrc frames=F size=4096 ! commonbuf ! invert ! tee name=t ! checksum ! nullsink \
         t. ! copy ! commonbuf ! nullsink mode=user",
    ];
    let (short, long) = (2_000u64, 20_000u64);
    for g in graphs {
        // Best of two per length: thread start-up can vary by an allocation or two.
        let count = |frames: u64| {
            (0..2)
                .map(|_| allocations(&g.replace("frames=F", &format!("frames={frames}"))))
                .min()
                .unwrap_or(usize::MAX)
        };
        let (a, b) = (count(short), count(long));
        let extra = b.saturating_sub(a);
        eprintln!("{g}: {a} allocations for {short} frames, {b} for {long}");
        // Per-frame allocation would add at least 18,000. What remains is occasional, not
        // per frame: the allocator's blocking hand-off path (a requester waiting for a frame)
        // allocates a few times per thousand hand-offs in debug builds (0-2 per 200,000 frames
        // in release). Allow under one allocation per 200 frames.
        assert!(
            (extra as u64) * 200 < long - short,
            "{g}: {extra} more heap allocations for {} more frames",
            long - short
        );
    }
}
