//! The streaming runtime and the built-in filters, end to end (in process).

use ks_graph::filters::{self, FNV_OFFSET, fnv1a64};
use ks_graph::runtime::spec::GraphSpec;
use ks_graph::runtime::{RunOptions, RunOutcome};

fn run(pipeline: &str) -> RunOutcome {
    let spec = GraphSpec::parse_pipeline(pipeline).expect("pipeline parses");
    let built = filters::build(spec).expect("graph builds");
    built
        .into_runtime()
        .expect("runtime")
        .run(&RunOptions::default())
        .expect("run succeeds")
}

fn checksum(o: &RunOutcome) -> u64 {
    let sums: Vec<u64> = o.report.checksums().map(|(_, c)| c).collect();
    assert_eq!(sums.len(), 1, "one checksum filter");
    sums[0]
}

/// The checksum of what `testsrc frames=F size=S` produces, computed independently.
fn ramp_checksum(frames: u64, size: usize) -> u64 {
    let mut h = FNV_OFFSET;
    let mut buf = vec![0u8; size];
    for n in 0..frames {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (n as usize + i) as u8;
        }
        h = fnv1a64(h, &buf);
    }
    h
}

#[test]
fn testsrc_checksum_matches_an_independent_computation_and_frames_come_back() {
    let o = run("testsrc frames=300 size=1000 ! checksum ! nullsink");
    assert_eq!(checksum(&o), ramp_checksum(300, 1000));
    let r = &o.report;
    assert!(r.completed);
    assert_eq!(r.frames, 300);
    assert_eq!(r.bytes, 300_000);
    assert!(r.all_frames_returned, "{r:?}");
    assert_eq!(r.pipes.len(), 1);
    assert_eq!(r.pipes[0].allocated, 0);
    assert!(r.pipes[0].requested >= 300);
    // Frames are recycled, not reallocated: far fewer distinct frames than frames streamed.
    assert!(r.pipes[0].peak <= o.plan.pipes[0].framing.frames);
}

#[test]
fn invert_twice_restores_the_stream() {
    let plain = run("testsrc frames=200 size=333 ! checksum ! nullsink");
    let twice = run("testsrc frames=200 size=333 ! invert ! invert ! checksum ! nullsink");
    let once = run("testsrc frames=200 size=333 ! invert ! checksum ! nullsink");
    assert_eq!(checksum(&plain), checksum(&twice));
    assert_ne!(checksum(&plain), checksum(&once));
}

#[test]
fn copy_preserves_the_stream_across_two_pipes() {
    let plain = run("testsrc frames=250 size=512 ! checksum ! nullsink");
    let copied = run("testsrc frames=250 size=512 ! copy ! checksum ! nullsink");
    assert_eq!(copied.plan.pipes.len(), 2);
    assert_eq!(checksum(&plain), checksum(&copied));
    assert!(copied.report.all_frames_returned);
}

#[test]
fn tee_branches_see_the_same_stream() {
    let o = run(
        "testsrc frames=150 size=256 ! tee name=t ! checksum name=a ! nullsink \
         t. ! checksum name=b ! nullsink",
    );
    let sums: Vec<(String, u64)> = o
        .report
        .checksums()
        .map(|(n, c)| (n.to_owned(), c))
        .collect();
    assert_eq!(sums.len(), 2);
    assert_eq!(sums[0].1, sums[1].1);
    assert_eq!(sums[0].1, ramp_checksum(150, 256));
    assert!(o.report.all_frames_returned);
}

#[test]
fn tee_with_a_modifying_branch_keeps_the_other_branch_intact() {
    let o = run(
        "testsrc frames=120 size=128 ! tee name=t ! checksum name=plain ! nullsink \
         t. ! invert ! invert ! checksum name=twice ! nullsink",
    );
    let sums: Vec<u64> = o.report.checksums().map(|(_, c)| c).collect();
    assert_eq!(sums, vec![ramp_checksum(120, 128); 2]);
    assert!(o.report.all_frames_returned);
}

#[test]
fn vendor_allocator_is_used_on_a_kernel_pipe() {
    let o = run("testsrc frames=100 size=4096 ! commonbuf name=dma ! checksum ! nullsink");
    assert_eq!(o.plan.pipes[0].allocator.name, "dma");
    assert_eq!(checksum(&o), ramp_checksum(100, 4096));
    assert!(o.report.all_frames_returned);
}

#[test]
fn filesrc_to_filesink_round_trips_a_file() {
    let dir = std::env::temp_dir().join(format!("ksgraph-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.bin");
    let output = dir.join("out.bin");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&input, &data).unwrap();
    let o = run(&format!(
        "filesrc location={} size=1024 ! invert ! invert ! filesink location={}",
        input.display(),
        output.display()
    ));
    assert_eq!(o.report.frames, 10);
    assert_eq!(std::fs::read(&output).unwrap(), data);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn filesrc_counts_the_frames_that_carry_data() {
    let dir = std::env::temp_dir().join(format!("ksgraph-rt-count-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Empty: one empty frame carries the end of the stream through every filter (the run
    // ends), and counts as none. 2048 bytes: the last full frame carries it. 2049 bytes: a
    // 1-byte last frame.
    for (len, frames) in [(0u64, 0u64), (2048, 2), (2049, 3)] {
        let input = dir.join(format!("in-{len}.bin"));
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        std::fs::write(&input, &data).unwrap();
        let o = run(&format!(
            "filesrc location={} size=1024 ! tee name=t ! checksum ! nullsink t. ! copy ! nullsink",
            input.display()
        ));
        let r = &o.report;
        assert!(
            r.completed,
            "{len} bytes: the end of the stream reached every sink"
        );
        assert!(r.all_frames_returned, "{len} bytes: {r:?}");
        assert_eq!((r.frames, r.bytes), (frames, len), "{len} bytes");
        for f in &r.filters {
            assert_eq!(
                (f.stats.frames, f.stats.bytes),
                (frames, len),
                "{len} bytes: {}",
                f.name
            );
        }
        assert_eq!(checksum(&o), fnv1a64(FNV_OFFSET, &data), "{len} bytes");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stopping_early_returns_every_frame_and_closes_the_allocators() {
    let spec = GraphSpec::parse_pipeline(
        "testsrc frames=1000000000 size=256 ! tee name=t ! nullsink t. ! copy ! nullsink",
    )
    .unwrap();
    let options = RunOptions {
        until: Some(std::time::Duration::from_millis(150)),
        ..RunOptions::default()
    };
    let o = filters::build(spec)
        .unwrap()
        .into_runtime()
        .unwrap()
        .run(&options)
        .expect("a stopped run still reports");
    assert!(!o.report.completed, "stopped by the time limit");
    assert!(o.report.frames > 0);
    assert!(o.report.all_frames_returned, "{:?}", o.report.pipes);
    assert!(o.report.pipes.iter().all(|p| p.allocated == 0));
}

#[test]
fn a_failing_filter_stops_the_run_with_its_status_and_frames_come_back() {
    if !std::path::Path::new("/dev/full").exists() {
        return; // the failure is provoked by writing to /dev/full (Linux)
    }
    let spec =
        GraphSpec::parse_pipeline("testsrc frames=100000 size=65536 ! filesink location=/dev/full")
            .unwrap();
    let err = filters::build(spec)
        .unwrap()
        .into_runtime()
        .unwrap()
        .run(&RunOptions::default())
        .expect_err("writing to /dev/full fails");
    let text = err.to_string();
    assert!(text.contains("filesink"), "{text}");
    assert_eq!(err.status().name(), "STATUS_UNSUCCESSFUL");
}

#[test]
fn end_of_stream_reaches_every_branch_and_counts_match() {
    let o = run(
        "testsrc frames=77 size=100 ! tee name=t branches=3 ! nullsink t. ! nullsink t. ! invert ! nullsink",
    );
    for f in o.report.filters.iter().filter(|f| f.kind == "nullsink") {
        assert_eq!(f.stats.frames, 77, "{}", f.name);
        assert_eq!(f.stats.bytes, 7700, "{}", f.name);
    }
    assert!(o.report.completed);
}
