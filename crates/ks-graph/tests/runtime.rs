//! The streaming runtime and the built-in filters, end to end (in process).

use ks_graph::KsState;
use ks_graph::filters::{self, FNV_OFFSET, fnv1a64};
use ks_graph::runtime::spec::GraphSpec;
use ks_graph::runtime::{RunError, RunOptions, RunOutcome, Runtime};

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
fn a_graph_that_is_not_in_stop_is_refused_instead_of_run_with_unfitted_frames() {
    // Run from ACQUIRE, the copy's output pipe kept the frame size negotiated before the fit
    // (1 byte), and the copy cut every 10000-byte frame to 1 byte without a word.
    let pipeline = "testsrc frames=3 size=10000 ! copy ! checksum ! nullsink";
    let build = || filters::build(GraphSpec::parse_pipeline(pipeline).unwrap()).unwrap();
    for state in [KsState::Acquire, KsState::Pause, KsState::Run] {
        let mut built = build();
        built.graph.set_state(state).unwrap();
        let err = built.into_runtime().expect_err("not in STOP");
        assert!(matches!(err, RunError::Setup(_)), "{state}: {err}");
        assert_eq!(err.status().name(), "STATUS_INVALID_PARAMETER");
        let text = err.to_string();
        assert!(
            text.contains(&format!("the graph is in {state}")) && text.contains("STOP"),
            "{text}"
        );
        // The same through `Runtime::new`.
        let mut built = build();
        let processes = ["testsrc", "copy", "checksum", "nullsink"].map(|name| {
            built
                .replace_process(name, Box::new(ks_graph::runtime::process_fn(|_| Ok(()))))
                .unwrap()
        });
        built.graph.set_state(state).unwrap();
        let err = Runtime::new(built.graph, processes.into()).expect_err("not in STOP");
        assert!(err.to_string().contains(&format!("in {state}")), "{err}");
    }
    // Back in STOP, the graph runs, with its frame sizes fitted: every byte arrives.
    let mut built = build();
    built.graph.set_state(KsState::Acquire).unwrap();
    built.graph.set_state(KsState::Stop).unwrap();
    let o = built
        .into_runtime()
        .unwrap()
        .run(&RunOptions::default())
        .unwrap();
    assert!(o.plan.pipes[1].framing.frame_size >= 10000, "{:?}", o.plan);
    assert_eq!(checksum(&o), ramp_checksum(3, 10000));
    let sink = &o.report.filters[3];
    assert_eq!((sink.stats.frames, sink.stats.bytes), (3, 30000));
}

#[test]
fn the_elapsed_time_of_a_stopped_run_lasts_until_its_filters_returned() {
    // A source whose first process step outlasts the time limit: the run ends only when it
    // returns, and the report says so.
    let hold = std::time::Duration::from_millis(300);
    let slow = ks_graph::runtime::process_fn(move |pins| {
        if !pins.source_finished() {
            std::thread::sleep(hold);
            pins.finish_source();
        }
        Ok(())
    });
    let options = RunOptions {
        until: Some(std::time::Duration::from_millis(10)),
        ..RunOptions::default()
    };
    let o = run_replaced(
        "testsrc size=64 ! nullsink",
        "testsrc",
        Box::new(slow),
        options,
    )
    .expect("a stopped run still reports");
    assert!(!o.report.completed, "stopped by the time limit");
    assert!(o.report.all_frames_returned, "{:?}", o.report.pipes);
    // A lower bound only: the sleep lasts at least `hold`.
    assert!(o.report.elapsed >= hold, "{:?}", o.report.elapsed);
}

#[test]
fn a_failing_filter_stops_the_run_with_its_status_and_frames_come_back() {
    if !std::path::Path::new("/dev/full").exists() {
        return; // the failure is provoked by writing to /dev/full (Linux)
    }
    let spec =
        GraphSpec::parse_pipeline("testsrc frames=100000 size=4096 ! filesink location=/dev/full")
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

/// Runs `testsrc size=16 ! filesink location=<location>` with a source that sends 3 frames
/// (bytes 0..48) and never ends its stream, stopped by `until`. Returns the first result
/// that is an error or reports all 48 bytes at the sink: the time limit only decides
/// *whether* the frames reached the sink before the stop, so it is doubled until they have
/// (nothing here depends on how long a run takes).
fn filesink_stopped_by_until(location: &str) -> Result<RunOutcome, RunError> {
    let pipeline = format!("testsrc size=16 ! filesink location={location}");
    let mut until = std::time::Duration::from_millis(50);
    for _ in 0..12 {
        let mut built = filters::build(GraphSpec::parse_pipeline(&pipeline).unwrap()).unwrap();
        let mut sent = 0u8;
        let source = ks_graph::runtime::process_fn(move |pins| {
            let q = pins.queue(0).expect("connected");
            q.eject_leading(usize::from(3 - sent), |mut at| {
                let first = sent * 16;
                for (i, b) in at.data_mut()?[..16].iter_mut().enumerate() {
                    *b = first + i as u8;
                }
                at.header.data_used = 16;
                sent += 1;
                Ok::<(), ks_alloc::Status>(())
            })?;
            Ok(()) // no end of stream, ever
        });
        built.replace_process("testsrc", Box::new(source)).unwrap();
        let options = RunOptions {
            until: Some(until),
            ..RunOptions::default()
        };
        match built.into_runtime().unwrap().run(&options) {
            Ok(o) if o.report.filters[1].stats.bytes < 48 => until *= 2,
            result => return result,
        }
    }
    panic!("the 3 frames never reached the sink before the run stopped");
}

#[test]
fn filesink_flushes_at_stop_and_a_flush_error_fails_a_run_stopped_by_until() {
    if !std::path::Path::new("/dev/full").exists() {
        return; // the failure is provoked by writing to /dev/full (Linux)
    }
    // 48 bytes sit in the sink's buffer when `until` stops the run: flushing them fails.
    let err = match filesink_stopped_by_until("/dev/full") {
        Ok(o) => panic!(
            "{:?} reported written to /dev/full without an error",
            o.report.filters[1].stats
        ),
        Err(e) => e,
    };
    assert!(
        matches!(&err, RunError::Filter { filter, .. } if filter == "filesink"),
        "{err}"
    );
    assert!(err.to_string().contains("write failed"), "{err}");
    assert_eq!(err.status().name(), "STATUS_UNSUCCESSFUL");
    // To a file: everything the report counts is in it when the run returns.
    let dir = std::env::temp_dir().join(format!("ksgraph-rt-stop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = dir.join("out.bin");
    let o = filesink_stopped_by_until(output.to_str().unwrap()).expect("the run succeeds");
    assert!(!o.report.completed, "stopped by the time limit");
    assert_eq!(o.report.filters[1].stats.bytes, 48);
    assert_eq!(
        std::fs::read(&output).unwrap(),
        (0..48).collect::<Vec<u8>>()
    );
    std::fs::remove_dir_all(&dir).unwrap();
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

/// Runs `pipeline` with `filter`'s callback replaced by `replacement`, on its own thread,
/// and returns the run's result; fails the test if the run panics or does not end within
/// 20 s (a hang would otherwise stall the whole test run).
fn run_replaced(
    pipeline: &str,
    filter: &'static str,
    replacement: Box<dyn ks_graph::runtime::Process>,
    options: RunOptions,
) -> Result<RunOutcome, ks_graph::runtime::RunError> {
    let mut built = filters::build(GraphSpec::parse_pipeline(pipeline).unwrap()).unwrap();
    built.replace_process(filter, replacement).unwrap();
    let runtime = built.into_runtime().unwrap();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(runtime.run(&options));
    });
    result
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("the run did not return: it hung (timeout) or panicked ({e})"))
}

#[test]
fn a_panicking_filter_fails_the_run_instead_of_hanging_it() {
    let panicking = ks_graph::runtime::process_fn(|_pins| panic!("a bug in this filter"));
    let err = run_replaced(
        "testsrc frames=10 size=64 ! identity ! nullsink",
        "identity",
        Box::new(panicking),
        RunOptions::default(),
    )
    .expect_err("the filter panicked");
    let text = err.to_string();
    assert!(
        text.contains("identity") && text.contains("a bug in this filter"),
        "{text}"
    );
    assert_eq!(err.status().name(), "STATUS_UNSUCCESSFUL");
}

/// Passes every input frame on (an `identity`).
fn pass_on(pins: &mut ks_graph::runtime::Pins<'_>) -> Result<(), ks_alloc::Status> {
    let q = pins.queue(0).expect("connected");
    q.eject_leading(usize::MAX, |_| Ok::<(), ks_alloc::Status>(()))?;
    Ok(())
}

#[test]
fn a_panicking_stats_callback_fails_the_run_instead_of_panicking_it() {
    use ks_graph::runtime::{FilterStats, Pins, Process};
    struct BadStats;
    impl Process for BadStats {
        fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), ks_alloc::Status> {
            pass_on(pins)
        }
        fn stats(&self) -> FilterStats {
            panic!("a stats bug (on purpose)")
        }
    }
    let err = run_replaced(
        "testsrc frames=3 size=16 ! identity ! nullsink",
        "identity",
        Box::new(BadStats),
        RunOptions::default(),
    )
    .expect_err("the stats callback panicked");
    assert!(
        matches!(&err, RunError::Filter { filter, .. } if filter == "identity"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("stats callback") && text.contains("a stats bug (on purpose)"),
        "{text}"
    );
    assert_eq!(err.status().name(), "STATUS_UNSUCCESSFUL");
}

#[test]
fn a_filter_whose_stats_lock_its_process_poisoned_fails_the_run_with_the_first_panic() {
    use ks_graph::runtime::{FilterStats, Pins, Process};
    use std::sync::Mutex;
    /// Counts under a mutex, and panics at the third call while holding it: `stats` then
    /// panics on the poisoned lock.
    struct Locked(Mutex<FilterStats>);
    impl Process for Locked {
        fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), ks_alloc::Status> {
            let mut s = self.0.lock().unwrap();
            s.frames += 1;
            if s.frames == 3 {
                panic!("a bug while holding the stats lock (on purpose)");
            }
            drop(s);
            pass_on(pins)
        }
        fn stats(&self) -> FilterStats {
            self.0.lock().unwrap().clone()
        }
    }
    let err = run_replaced(
        "testsrc frames=30 size=16 ! identity ! nullsink",
        "identity",
        Box::new(Locked(Mutex::default())),
        RunOptions::default(),
    )
    .expect_err("the process callback panicked");
    assert!(
        matches!(&err, RunError::Filter { filter, .. } if filter == "identity"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("process callback") && text.contains("holding the stats lock"),
        "the first failure is the one reported: {text}"
    );
    assert!(!text.contains("stats callback"), "{text}");
}

#[test]
fn every_filter_is_told_once_that_the_run_stops_and_a_panic_there_fails_the_run() {
    use ks_graph::runtime::{FilterStats, Pins, Process};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Stopping(Arc<AtomicUsize>, bool);
    impl Process for Stopping {
        fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), ks_alloc::Status> {
            pass_on(pins)
        }
        fn stats(&self) -> FilterStats {
            FilterStats::default()
        }
        fn stop(&mut self) -> Result<(), ks_alloc::Status> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if self.1 {
                panic!("a stop bug (on purpose)");
            }
            Ok(())
        }
    }
    let pipeline = "testsrc frames=5 size=16 ! identity ! nullsink";
    // At the end of the stream and at `until`: once.
    for until in [None, Some(std::time::Duration::from_millis(20))] {
        let stops = Arc::new(AtomicUsize::new(0));
        let pipeline = if until.is_some() {
            "testsrc frames=1000000000 size=16 ! identity ! nullsink"
        } else {
            pipeline
        };
        let options = RunOptions {
            until,
            ..RunOptions::default()
        };
        let process = Box::new(Stopping(Arc::clone(&stops), false));
        let o = run_replaced(pipeline, "identity", process, options).unwrap();
        assert_eq!(o.report.completed, until.is_none());
        assert_eq!(stops.load(Ordering::SeqCst), 1, "until {until:?}");
    }
    let stops = Arc::new(AtomicUsize::new(0));
    let process = Box::new(Stopping(Arc::clone(&stops), true));
    let err = run_replaced(pipeline, "identity", process, RunOptions::default())
        .expect_err("the stop callback panicked");
    assert!(
        matches!(&err, RunError::Filter { filter, .. } if filter == "identity"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("stop callback") && text.contains("a stop bug (on purpose)"),
        "{text}"
    );
    assert_eq!(stops.load(Ordering::SeqCst), 1);
}

#[test]
fn an_end_of_stream_frame_completed_with_an_error_fails_the_run() {
    use ks_graph::stream_pointer::PointerState;
    // Passes every frame on, but fails the one that ends the stream.
    let failing_last = ks_graph::runtime::process_fn(|pins| {
        let q = pins.queue(0).expect("connected");
        while let Some(p) = q.leading_edge(PointerState::Locked) {
            if q.header(p)?.is_end_of_stream() {
                q.set_status_code(p, Err(ks_alloc::Status::DeviceNotReady("unplugged".into())))?;
            }
            q.unlock(p, true)?;
        }
        Ok(())
    });
    let err = run_replaced(
        "testsrc frames=5 size=64 ! identity ! nullsink",
        "identity",
        Box::new(failing_last),
        RunOptions::default(),
    )
    .expect_err("the stream cannot end");
    assert!(
        matches!(&err, ks_graph::runtime::RunError::EndOfStreamLost { filter, .. } if filter == "identity"),
        "{err}"
    );
    assert_eq!(err.status().name(), "STATUS_DEVICE_NOT_READY");
}

#[test]
fn an_integer_property_states_the_range_it_really_accepts() {
    // Property integers are 64-bit signed (TOML's): the largest is i64::MAX, and the error
    // for anything larger says so.
    let ok = filters::build(
        GraphSpec::parse_pipeline("testsrc frames=9223372036854775807 ! nullsink").unwrap(),
    );
    assert!(ok.is_ok());
    let err = filters::build(
        GraphSpec::parse_pipeline("testsrc frames=9223372036854775808 ! nullsink").unwrap(),
    )
    .unwrap_err();
    assert!(
        err.message.contains("from 1 to 9223372036854775807"),
        "{}",
        err.message
    );
}

#[test]
fn a_panicking_progress_callback_ends_the_run_with_an_error() {
    let options = RunOptions {
        until: None,
        progress: Some(Box::new(|_| panic!("progress bar bug"))),
    };
    // A pass-through in place of `identity`.
    let pass = ks_graph::runtime::process_fn(|pins| {
        let q = pins.queue(0).expect("connected");
        q.eject_leading(usize::MAX, |_| Ok::<(), ks_alloc::Status>(()))?;
        Ok(())
    });
    // A practically endless stream: only the callback's panic can end this run in time.
    let err = run_replaced(
        "testsrc frames=9223372036854775807 size=64 ! identity ! nullsink",
        "identity",
        Box::new(pass),
        options,
    )
    .expect_err("the callback panicked");
    assert!(err.to_string().contains("progress bar bug"), "{err}");
}

/// Frames whose stream-pointer timeout fired in `hold_until_timeout`'s runs.
static TIMED_OUT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Keeps every input frame under a clone (a device "working" on it) and lets it go only
/// when the clone's timeout fires, in `release`: the frames reach the sink through the
/// runtime's timer.
fn hold_frames(
    pins: &mut ks_graph::runtime::Pins<'_>,
    release: ks_graph::timeout::TimeoutCallback<ks_graph::runtime::RtFrame>,
) -> Result<(), ks_alloc::Status> {
    use ks_graph::stream_pointer::PointerState;
    let q = pins.queue(0).expect("connected");
    while let Some(p) = q.leading_edge(PointerState::Locked) {
        let device = q.clone_pointer(p, None, 0)?;
        q.unlock(device, false)?;
        q.schedule_timeout(device, release, std::time::Duration::from_millis(5))?;
        q.unlock(p, true)?;
    }
    Ok(())
}

/// Deletes the clone whose timeout fired.
fn release(q: &mut ks_graph::runtime::RtQueue, p: ks_graph::stream_pointer::PointerId) {
    q.delete(p)
        .expect("the clone is live while its timeout is scheduled");
}

/// [`release`], counted in [`TIMED_OUT`] (for one test only: tests run in parallel).
fn release_counted(q: &mut ks_graph::runtime::RtQueue, p: ks_graph::stream_pointer::PointerId) {
    TIMED_OUT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    release(q, p);
}

fn hold_until_timeout(pins: &mut ks_graph::runtime::Pins<'_>) -> Result<(), ks_alloc::Status> {
    hold_frames(pins, release_counted)
}

#[test]
fn stream_pointer_timeouts_fire_while_the_graph_runs() {
    TIMED_OUT.store(0, std::sync::atomic::Ordering::SeqCst);
    let o = run_replaced(
        "testsrc frames=20 size=64 ! identity ! checksum ! nullsink",
        "identity",
        Box::new(ks_graph::runtime::process_fn(hold_until_timeout)),
        RunOptions::default(),
    )
    .expect("every frame is let go by its timeout");
    assert_eq!(TIMED_OUT.load(std::sync::atomic::Ordering::SeqCst), 20);
    assert!(o.report.completed && o.report.all_frames_returned);
    // Every frame arrived, in order (released in deadline order, which is arrival order).
    assert_eq!(checksum(&o), ramp_checksum(20, 64));
}

/// Like [`hold_until_timeout`] (uncounted), but first gives the leading edge a timeout an hour away, so
/// that every clone's deadline comes *earlier* than the one the timer already sleeps on.
fn hold_with_a_far_watchdog(
    pins: &mut ks_graph::runtime::Pins<'_>,
) -> Result<(), ks_alloc::Status> {
    use ks_graph::runtime::RtQueue;
    use ks_graph::stream_pointer::PointerId;
    fn never(_: &mut RtQueue, _: PointerId) {
        panic!("an hour has not passed");
    }
    let q = pins.queue(0).expect("connected");
    let lead = q.leading_edge_id();
    if q.timeout_deadline(lead)?.is_none() {
        q.schedule_timeout(lead, never, std::time::Duration::from_secs(3600))?;
    }
    hold_frames(pins, release)
}

#[test]
fn a_timeout_earlier_than_the_one_the_timer_sleeps_on_wakes_it() {
    // A timer that slept on to the hour would hang the run: `run_replaced` fails at 20 s.
    let o = run_replaced(
        "testsrc frames=20 size=64 ! identity ! nullsink",
        "identity",
        Box::new(ks_graph::runtime::process_fn(hold_with_a_far_watchdog)),
        RunOptions::default(),
    )
    .expect("the clones' timeouts fired");
    // Every frame came back, which it only does when its clone's timeout fired.
    assert!(o.report.completed && o.report.all_frames_returned);
    assert_eq!(o.report.frames, 20);
}

#[test]
fn a_panicking_timeout_callback_fails_the_run_naming_its_filter() {
    use ks_graph::runtime::RtQueue;
    use ks_graph::stream_pointer::{PointerId, PointerState};
    fn boom(_: &mut RtQueue, _: PointerId) {
        panic!("the device exploded");
    }
    let arming = ks_graph::runtime::process_fn(|pins| {
        let q = pins.queue(0).expect("connected");
        while let Some(p) = q.leading_edge(PointerState::Locked) {
            let c = q.clone_pointer(p, None, 0)?;
            q.schedule_timeout(c, boom, std::time::Duration::ZERO)?;
            q.unlock(p, true)?;
        }
        Ok(())
    });
    let err = run_replaced(
        "testsrc frames=3 size=64 ! identity ! nullsink",
        "identity",
        Box::new(arming),
        RunOptions::default(),
    )
    .expect_err("the callback panicked");
    let text = err.to_string();
    assert!(
        text.contains("identity") && text.contains("the device exploded"),
        "{text}"
    );
}

/// `pipeline` built, with a client's allocator ("app.pool": 8 locked frames of 64 bytes)
/// assigned to `testsrc.out`, the root pin of its pipe.
fn with_client_allocator(pipeline: &str) -> (filters::Built, ks_alloc::Allocator) {
    use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    let mut built = filters::build(GraphSpec::parse_pipeline(pipeline).unwrap()).unwrap();
    let framing = Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames: 8,
        frame_size: 64,
        alignment: Alignment::BYTE,
    };
    let mine = Allocator::builder(&framing)
        .memory(Memory::NonPaged)
        .name("app.pool")
        .build()
        .unwrap();
    let g = &mut built.graph;
    let root = g.pin("testsrc.out").unwrap();
    let h = g.register_allocator(mine.clone());
    g.assign_allocator(root, Some(h)).unwrap();
    (built, mine)
}

#[test]
fn a_client_allocator_on_the_root_pins_of_two_pipes_fails_the_run_instead_of_hanging_it() {
    // Before the refusal, pipe 0's requester took every frame of the shared pool and the
    // copy's output pipe never got one: the run hung.
    let (mut built, mine) = with_client_allocator("testsrc frames=1000 size=64 ! copy ! nullsink");
    let g = &mut built.graph;
    let (h, _) = g.assigned_allocator(g.pin("testsrc.out").unwrap()).unwrap();
    g.assign_allocator(g.pin("copy.out").unwrap(), Some(h))
        .unwrap();
    let runtime = built.into_runtime().unwrap();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(runtime.run(&RunOptions::default()));
    });
    let err = result
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the run hung")
        .expect_err("the allocator cannot serve two pipes");
    assert!(
        matches!(
            &err,
            ks_graph::runtime::RunError::State(ks_graph::StateError::ClientAllocator {
                pipe: 1,
                ..
            })
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("'copy.out'") && text.contains("'testsrc.out'"),
        "{text}"
    );
    assert_eq!(err.status().name(), "STATUS_INVALID_PARAMETER");
    assert!(!mine.is_closed());
    assert_eq!(mine.status().allocated_frames, 0);
}

/// [`with_client_allocator`] on `testsrc size=64 ! nullsink` with a sink that keeps every
/// frame, so the requester soon waits on the client's allocator; the run goes on its own
/// thread with `options`, and the receiver gets its result.
fn run_on_a_starved_client_allocator(
    options: RunOptions,
) -> (
    std::sync::mpsc::Receiver<Result<RunOutcome, ks_graph::runtime::RunError>>,
    ks_alloc::Allocator,
) {
    let (mut built, mine) = with_client_allocator("testsrc size=64 ! nullsink");
    built
        .replace_process(
            "nullsink",
            Box::new(ks_graph::runtime::process_fn(|_| Ok(()))),
        )
        .unwrap();
    let runtime = built.into_runtime().unwrap();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(runtime.run(&options));
    });
    (result, mine)
}

#[test]
fn a_client_allocator_on_the_root_pin_serves_the_run_and_is_named_in_the_report() {
    let (built, mine) = with_client_allocator("testsrc frames=10 size=64 ! nullsink");
    let o = built
        .into_runtime()
        .unwrap()
        .run(&RunOptions::default())
        .unwrap();
    let pipe = &o.report.pipes[0];
    assert_eq!(
        (pipe.allocator.as_str(), pipe.memory.as_str()),
        ("app.pool", "nonpaged")
    );
    assert!(pipe.requested >= 10, "{}", pipe.requested);
    assert!(o.report.completed);
    assert!(!mine.is_closed(), "the client's allocator stays open");
    assert_eq!(mine.status().allocated_frames, 0);
}

#[test]
fn stop_releases_a_requester_blocked_on_a_client_allocator_it_leaves_open() {
    let (result, mine) = run_on_a_starved_client_allocator(RunOptions {
        until: Some(std::time::Duration::from_millis(100)),
        ..RunOptions::default()
    });
    let o = result
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("STOP released the blocked requester")
        .unwrap();
    assert!(!o.report.completed, "stopped by the time limit");
    assert!(o.report.all_frames_returned);
    assert!(!mine.is_closed());
    assert_eq!(mine.status().allocated_frames, 0);
}

#[test]
fn a_panicking_cancel_callback_at_stop_fails_the_run_instead_of_panicking_it() {
    use ks_graph::stream_pointer::{CancelAction, CancelNotice, PointerState};
    fn boom(_: &CancelNotice) -> CancelAction {
        panic!("a cancel callback's bug (on purpose)");
    }
    // Keeps an unlocked clone (with the panicking callback) on the frame at the leading edge,
    // and leaves the edge there: the STOP flush cancels that frame and tells the clone.
    let holding = ks_graph::runtime::process_fn(|pins| {
        let q = pins.queue(0).expect("connected");
        if q.first_clone().is_none() {
            if let Some(p) = q.leading_edge(PointerState::Locked) {
                let c = q.clone_pointer(p, Some(boom), 0)?;
                q.unlock(c, false)?;
                q.unlock(p, false)?;
            }
        }
        Ok(())
    });
    let err = run_replaced(
        "testsrc size=64 ! identity ! nullsink",
        "identity",
        Box::new(holding),
        RunOptions {
            until: Some(std::time::Duration::from_millis(100)),
            ..RunOptions::default()
        },
    )
    .expect_err("the callback panicked");
    let text = err.to_string();
    assert!(
        text.contains("identity") && text.contains("cancel callback"),
        "{text}"
    );
}

#[test]
fn a_client_closing_its_allocator_during_the_run_fails_it_instead_of_hanging_it() {
    let (result, mine) = run_on_a_starved_client_allocator(RunOptions::default());
    while mine.status().pending == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    mine.close();
    let err = result
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the run ended")
        .expect_err("its stream cannot go on");
    assert!(
        err.to_string().contains("client's allocator was closed"),
        "{err}"
    );
}

#[test]
fn frames_a_client_holds_of_its_own_allocator_are_not_counted_against_the_graph() {
    let (built, mine) = with_client_allocator("testsrc frames=10 size=64 ! nullsink");
    let kept = mine.try_allocate().unwrap(); // the client's own, before the run
    let o = built
        .into_runtime()
        .unwrap()
        .run(&RunOptions::default())
        .unwrap();
    assert_eq!(o.report.pipes[0].allocated, 1, "the status counts it");
    assert!(
        o.report.all_frames_returned,
        "but the graph returned all of its own"
    );
    drop(kept);
}

/// What happened, in order, in `a_filesrc_waiting_on_a_silent_pipe_leaves_the_timer_free`
/// (one test only: tests run in parallel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerEvent {
    /// `filesrc`'s process callback was entered, on this thread.
    Filesrc(std::thread::ThreadId),
    /// One of the other filter's chained timeouts fired, on this thread.
    Tick(std::thread::ThreadId),
}

static TIMER_EVENTS: std::sync::Mutex<Vec<TimerEvent>> = std::sync::Mutex::new(Vec::new());

/// How many timeouts [`tick`] fires in a chain, each scheduling the next at once.
const TICKS: usize = 50;

/// A stream-pointer timeout due at once that schedules the next one, [`TICKS`] times in
/// all, then lets its frame go (the clone it is scheduled on is deleted).
fn tick(q: &mut ks_graph::runtime::RtQueue, p: ks_graph::stream_pointer::PointerId) {
    let mut events = TIMER_EVENTS.lock().unwrap();
    events.push(TimerEvent::Tick(std::thread::current().id()));
    let ticks = events
        .iter()
        .filter(|e| matches!(e, TimerEvent::Tick(_)))
        .count();
    drop(events);
    if ticks < TICKS {
        q.schedule_timeout(p, tick, std::time::Duration::ZERO)
            .expect("the clone is live");
    } else {
        q.delete(p).expect("the clone is live");
    }
}

/// A filter's process callback, its calls logged in [`TIMER_EVENTS`]; `waiting` is told
/// when its first call has returned.
struct Logged {
    inner: Box<dyn ks_graph::runtime::Process>,
    waiting: Option<std::sync::mpsc::Sender<()>>,
}

impl ks_graph::runtime::Process for Logged {
    fn process(&mut self, pins: &mut ks_graph::runtime::Pins<'_>) -> Result<(), ks_alloc::Status> {
        let me = std::thread::current().id();
        TIMER_EVENTS.lock().unwrap().push(TimerEvent::Filesrc(me));
        let r = self.inner.process(pins);
        if let Some(tx) = self.waiting.take() {
            let _ = tx.send(());
        }
        r
    }

    fn stats(&self) -> ks_graph::runtime::FilterStats {
        self.inner.stats()
    }

    fn stop(&mut self) -> Result<(), ks_alloc::Status> {
        self.inner.stop()
    }
}

#[test]
fn a_filesrc_waiting_on_a_silent_pipe_leaves_the_timer_free() {
    use ks_graph::stream_pointer::PointerState;
    let dir = std::env::temp_dir().join(format!("ksgraph-rt-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("silent.fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no mkfifo");
        return;
    }
    // Two independent chains: a filesrc on a FIFO whose writer stays silent, and a filter
    // (`identity`) that holds its one frame while a chain of stream-pointer timeouts fires.
    let pipeline = format!(
        "filesrc location={} size=4 ! nullsink name=a  \
         testsrc frames=1 size=4 ! identity ! nullsink name=b",
        fifo.display()
    );
    let mut built = filters::build(GraphSpec::parse_pipeline(&pipeline).unwrap()).unwrap();
    let noop = Box::new(ks_graph::runtime::process_fn(|_| Ok(())));
    let filesrc = built.replace_process("filesrc", noop).unwrap();
    let (waiting, filesrc_waits) = std::sync::mpsc::channel();
    built
        .replace_process(
            "filesrc",
            Box::new(Logged {
                inner: filesrc,
                waiting: Some(waiting),
            }),
        )
        .unwrap();
    let filesrc_waits = std::sync::Mutex::new(filesrc_waits);
    let holder = ks_graph::runtime::process_fn(move |pins| {
        let q = pins.queue(0).expect("connected");
        while let Some(p) = q.leading_edge(PointerState::Locked) {
            // The chain starts once filesrc has found no data and waits for some: every
            // tick fires while it waits.
            filesrc_waits
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_secs(20))
                .expect("filesrc was called");
            let c = q.clone_pointer(p, None, 0)?;
            q.unlock(c, false)?;
            q.schedule_timeout(c, tick, std::time::Duration::ZERO)?;
            q.unlock(p, true)?;
        }
        Ok(())
    });
    built.replace_process("identity", Box::new(holder)).unwrap();
    // The writer: opened (the reader is there, so without waiting) and silent.
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let runtime = built.into_runtime().unwrap();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(runtime.run(&RunOptions::default()));
    });
    // Once the chain is through, the writer writes, then goes away: filesrc, woken by its
    // waiter, reads the data and the end of the file.
    let started = std::time::Instant::now();
    let guard = started + std::time::Duration::from_secs(20);
    let ticks = || {
        TIMER_EVENTS
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, TimerEvent::Tick(_)))
            .count()
    };
    while ticks() < TICKS {
        assert!(std::time::Instant::now() < guard, "the ticks never came");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // For the record only (no assertion on time): how long the chain took.
    eprintln!("{TICKS} chained timeouts: {:?}", started.elapsed());
    {
        use std::io::Write as _;
        let mut writer = writer;
        writer.write_all(b"abcdef").unwrap();
    }
    let o = result
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the run ended")
        .expect("the run succeeds");
    assert!(o.report.completed && o.report.all_frames_returned);
    let a = o.report.filters.iter().find(|f| f.name == "a").unwrap();
    assert_eq!((a.stats.frames, a.stats.bytes), (2, 6), "4 + 2 bytes");
    std::fs::remove_dir_all(&dir).unwrap();
    // STOP ended filesrc's waiter thread (no other test of this binary starts one).
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        let waiters = tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .filter(|name| name.trim_end() == "ks-filesrc-wait")
            .count();
        assert_eq!(waiters, 0, "filesrc's waiter outlived the run");
    }
    // While the ticks fired, the thread that fired them never entered filesrc, which
    // would have made the next tick wait for filesrc's wait for data.
    let events = TIMER_EVENTS.lock().unwrap().clone();
    let first = events
        .iter()
        .position(|e| matches!(e, TimerEvent::Tick(_)))
        .unwrap();
    let last = events
        .iter()
        .rposition(|e| matches!(e, TimerEvent::Tick(_)))
        .unwrap();
    let TimerEvent::Tick(timer) = events[first] else {
        unreachable!()
    };
    let waits = events[first..last]
        .iter()
        .filter(|&&e| e == TimerEvent::Filesrc(timer))
        .count();
    assert_eq!(
        waits, 0,
        "{waits} of the {TICKS} chained timeouts waited for filesrc's wait on the timer thread"
    );
}

#[test]
fn processing_attempted_here_from_within_a_callback_does_not_deadlock() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    // The callback holds its filter's mutex: processing it again on this thread would wait
    // for that mutex for ever, so `attempt_here` asks the timer thread instead.
    let again = ks_graph::runtime::process_fn(move |pins| {
        if seen.fetch_add(1, Ordering::SeqCst) < 2 {
            assert!(pins.attempt_processing().attempt_here());
            return Ok(());
        }
        let q = pins.queue(0).expect("connected");
        q.eject_leading(usize::MAX, |_| Ok::<(), ks_alloc::Status>(()))?;
        Ok(())
    });
    let o = run_replaced(
        "testsrc frames=1 size=4 ! identity ! nullsink",
        "identity",
        Box::new(again),
        RunOptions::default(),
    )
    .expect("the run ends");
    assert!(o.report.completed && o.report.all_frames_returned);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// A pass-through filter that processes itself on a thread of its own as often as it can,
/// and counts the process calls made after its `stop`.
struct SelfDriven {
    started: bool,
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    late: std::sync::Arc<std::sync::atomic::AtomicU32>,
    driver: std::sync::mpsc::Sender<std::thread::JoinHandle<u64>>,
}

impl ks_graph::runtime::Process for SelfDriven {
    fn process(&mut self, pins: &mut ks_graph::runtime::Pins<'_>) -> Result<(), ks_alloc::Status> {
        use std::sync::atomic::Ordering;
        if self.stopped.load(Ordering::SeqCst) {
            self.late.fetch_add(1, Ordering::SeqCst);
        }
        if !self.started {
            self.started = true;
            let again = pins.attempt_processing();
            let driver = std::thread::spawn(move || {
                // Until the run stops: then `attempt_here` does nothing and says so.
                let mut calls = 0;
                while again.attempt_here() {
                    calls += 1;
                    std::thread::yield_now();
                }
                calls
            });
            let _ = self.driver.send(driver);
        }
        let q = pins.queue(0).expect("connected");
        q.eject_leading(usize::MAX, |_| Ok::<(), ks_alloc::Status>(()))?;
        Ok(())
    }

    fn stats(&self) -> ks_graph::runtime::FilterStats {
        ks_graph::runtime::FilterStats::default()
    }

    fn stop(&mut self) -> Result<(), ks_alloc::Status> {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn processing_attempted_on_another_thread_ends_with_the_run() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let late = Arc::new(AtomicU32::new(0));
    let (driver, drivers) = std::sync::mpsc::channel();
    let filter = SelfDriven {
        started: false,
        stopped: Arc::new(AtomicBool::new(false)),
        late: Arc::clone(&late),
        driver,
    };
    // An endless stream, stopped by the time limit while the other thread keeps processing.
    let options = RunOptions {
        until: Some(std::time::Duration::from_millis(100)),
        ..RunOptions::default()
    };
    let o = run_replaced(
        "testsrc frames=9223372036854775807 size=64 ! identity ! nullsink",
        "identity",
        Box::new(filter),
        options,
    )
    .expect("the run succeeds");
    assert!(!o.report.completed && o.report.all_frames_returned);
    // `stop` came after the last process call, wherever it was made.
    assert_eq!(late.load(Ordering::SeqCst), 0);
    // The thread saw the run stop and ended.
    let driver = drivers.recv().expect("the filter was processed");
    let calls = driver.join().expect("the thread ends");
    eprintln!("processed {calls} times on its own thread");
}

/// The progress callback is a callback of the run: a processing it attempts "here" goes to
/// the timer thread, as from a filter's callback, and never streams on the thread that
/// called `run` (which must keep watching `until`).
#[test]
fn processing_attempted_here_from_the_progress_callback_does_not_run_on_the_runs_thread() {
    use ks_graph::runtime::{AttemptProcessing, process_fn};
    use std::sync::{Arc, Mutex};
    use std::thread::{self, ThreadId};
    let handle: Arc<Mutex<Option<AttemptProcessing>>> = Arc::default();
    let threads: Arc<Mutex<Vec<ThreadId>>> = Arc::default();
    let (h, t) = (Arc::clone(&handle), Arc::clone(&threads));
    let mut built = filters::build(
        GraphSpec::parse_pipeline("testsrc frames=100000000 size=4 ! identity ! nullsink").unwrap(),
    )
    .unwrap();
    built
        .replace_process(
            "identity",
            Box::new(process_fn(move |pins| {
                *h.lock().unwrap() = Some(pins.attempt_processing());
                t.lock().unwrap().push(thread::current().id());
                pass_on(pins)
            })),
        )
        .unwrap();
    let attempted = Arc::new(Mutex::new(0u32));
    let (h2, a2) = (Arc::clone(&handle), Arc::clone(&attempted));
    let options = RunOptions {
        until: Some(std::time::Duration::from_millis(300)),
        progress: Some(Box::new(move |_| {
            if let Some(a) = h2.lock().unwrap().clone() {
                if a.attempt_here() {
                    *a2.lock().unwrap() += 1;
                }
            }
        })),
    };
    let me = thread::current().id();
    let o = built.into_runtime().unwrap().run(&options).unwrap();
    assert!(o.report.all_frames_returned);
    assert!(
        *attempted.lock().unwrap() > 0,
        "the progress callback attempted"
    );
    assert!(
        !threads.lock().unwrap().contains(&me),
        "a filter was processed on the thread running the run"
    );
}

/// A processing handle asked from the filter's `stop` callback, when the run still exists
/// but is stopping, takes nothing and says so.
#[test]
fn processing_attempted_at_stop_is_refused() {
    use ks_graph::runtime::{AttemptProcessing, FilterStats, Pins, Process};
    use std::sync::{Arc, Mutex};
    struct AtStop {
        handle: Option<AttemptProcessing>,
        answers: Arc<Mutex<Vec<bool>>>,
    }
    impl Process for AtStop {
        fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), ks_alloc::Status> {
            self.handle.get_or_insert_with(|| pins.attempt_processing());
            pass_on(pins)
        }
        fn stats(&self) -> FilterStats {
            FilterStats::default()
        }
        fn stop(&mut self) -> Result<(), ks_alloc::Status> {
            let mut answers = self.answers.lock().unwrap();
            if let Some(h) = &self.handle {
                answers.push(h.attempt());
                answers.push(h.attempt_here());
            }
            Ok(())
        }
    }
    let answers = Arc::new(Mutex::new(Vec::new()));
    let o = run_replaced(
        "testsrc frames=3 size=16 ! identity ! nullsink",
        "identity",
        Box::new(AtStop {
            handle: None,
            answers: Arc::clone(&answers),
        }),
        RunOptions::default(),
    )
    .expect("run succeeds");
    assert!(o.report.completed);
    assert_eq!(*answers.lock().unwrap(), [false, false]);
}

/// Processing attempted "here" from a thread of the client's makes that thread a processing
/// one: a filter asking there for its processing again is served asynchronously, instead of
/// waiting for its own mutex.
#[test]
fn processing_attempted_here_within_processing_attempted_here_does_not_deadlock() {
    use ks_graph::runtime::{FilterStats, Pins, Process};
    use std::sync::{Arc, Mutex, mpsc};
    use std::thread;
    struct Nested {
        started: bool,
        outer: Arc<Mutex<Option<bool>>>,
        inner: Arc<Mutex<Option<bool>>>,
    }
    impl Process for Nested {
        fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), ks_alloc::Status> {
            if !self.started {
                self.started = true;
                let again = pins.attempt_processing();
                let outer = Arc::clone(&self.outer);
                thread::Builder::new()
                    .name("client".into())
                    .spawn(move || *outer.lock().unwrap() = Some(again.attempt_here()))
                    .unwrap();
            } else if thread::current().name() == Some("client") {
                *self.inner.lock().unwrap() = Some(pins.attempt_processing().attempt_here());
            }
            pass_on(pins)
        }
        fn stats(&self) -> FilterStats {
            FilterStats::default()
        }
    }
    type Answer = Arc<Mutex<Option<bool>>>;
    let (outer, inner): (Answer, Answer) = (Arc::default(), Arc::default());
    let (tx, rx) = mpsc::channel();
    let o2 = Arc::clone(&outer);
    // The client's call comes within the run's first milliseconds; `until` ends it.
    let options = RunOptions {
        until: Some(std::time::Duration::from_secs(1)),
        progress: Some(Box::new(move |_| {
            if o2.lock().unwrap().is_some() {
                let _ = tx.send(());
            }
        })),
    };
    let mut built = filters::build(
        GraphSpec::parse_pipeline("testsrc frames=100000000 size=4 ! identity ! nullsink").unwrap(),
    )
    .unwrap();
    built
        .replace_process(
            "identity",
            Box::new(Nested {
                started: false,
                outer: Arc::clone(&outer),
                inner: Arc::clone(&inner),
            }),
        )
        .unwrap();
    let runtime = built.into_runtime().unwrap();
    let run = thread::spawn(move || runtime.run(&options));
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("the client's attempt_here never returned: it deadlocked");
    assert_eq!(*outer.lock().unwrap(), Some(true));
    assert_eq!(*inner.lock().unwrap(), Some(true), "served asynchronously");
    assert!(run.join().unwrap().is_ok());
}
