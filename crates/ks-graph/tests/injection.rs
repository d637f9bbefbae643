//! Frame injection (ks-spec.md §4.5, behaviour 45): a pin whose frame-return callback was
//! registered in STOP receives no allocator frames; every frame its client submits travels
//! the circuit and comes back through the callback exactly once, with its status.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use ks_alloc::Status;
use ks_graph::filters::{self, FNV_OFFSET, fnv1a64};
use ks_graph::queue::StreamHeader;
use ks_graph::runtime::spec::GraphSpec;
use ks_graph::runtime::{Injector, ReturnedFrame, RunError, RunOptions, RunOutcome, process_fn};
use ks_graph::stream_pointer::PointerState;
use ks_graph::{GraphError, KsState};

fn build(pipeline: &str) -> filters::Built {
    filters::build(GraphSpec::parse_pipeline(pipeline).expect("pipeline parses")).expect("builds")
}

/// Registers a callback on `pin` that sends every returned frame to the receiver.
fn collect(built: &mut filters::Built, pin: &str) -> (Injector, mpsc::Receiver<ReturnedFrame>) {
    let pin = built.graph.pin(pin).expect("pin exists");
    let (tx, rx) = mpsc::channel();
    let injector = built
        .graph
        .register_frame_return(pin, move |r| {
            let _ = tx.send(r);
        })
        .expect("registered in STOP");
    (injector, rx)
}

/// Waits (at most 10 s) until the injector's graph streams.
fn wait_running(injector: &Injector) {
    let until = Instant::now() + Duration::from_secs(10);
    while !injector.is_running() {
        assert!(Instant::now() < until, "the graph never started streaming");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Frame `n` of the test streams: `len` bytes, byte `i` is `n * 3 + i`.
fn payload(n: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (n as usize * 3 + i) as u8).collect()
}

fn header(data_used: u32, eos: bool) -> StreamHeader {
    let mut h = StreamHeader::with_data(0, data_used);
    h.set_end_of_stream(eos);
    h
}

/// Submits `frames` frames of `len` bytes (contexts 0..frames, the last one marked end of
/// stream) once the graph runs; returns how many were accepted.
fn feed(injector: Injector, frames: u64, len: usize) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        wait_running(&injector);
        let mut accepted = 0;
        for n in 0..frames {
            let h = header(len as u32, n + 1 == frames);
            if injector.submit_with_header(payload(n, len), h, n).is_ok() {
                accepted += 1;
            }
        }
        accepted
    })
}

fn run(built: filters::Built, options: &RunOptions) -> Result<RunOutcome, RunError> {
    built.into_runtime().expect("runtime").run(options)
}

/// The returned frames by context; panics if a context came back twice.
fn by_context(rx: &mpsc::Receiver<ReturnedFrame>) -> BTreeMap<u64, ReturnedFrame> {
    let mut seen = BTreeMap::new();
    for r in rx.try_iter() {
        let context = r.context;
        assert!(
            seen.insert(context, r).is_none(),
            "frame {context} returned twice"
        );
    }
    seen
}

#[test]
fn injected_frames_travel_a_pass_through_chain_to_the_sink_and_return_once_each() {
    let mut built = build("testsrc size=64 ! invert ! identity ! checksum ! nullsink");
    // In place of `identity`: mark every frame, to see the header the circuit left.
    built
        .replace_process(
            "identity",
            Box::new(process_fn(|pins| {
                pins.queue(0)
                    .expect("connected")
                    .eject_leading(usize::MAX, |at| {
                        at.header.type_specific_flags = 0x5a;
                        Ok::<(), Status>(())
                    })?;
                Ok(())
            })),
        )
        .unwrap();
    let (injector, rx) = collect(&mut built, "testsrc.out");
    let probe = injector.clone();
    let feeder = feed(injector, 40, 64);
    let o = run(built, &RunOptions::default()).expect("run succeeds");
    assert_eq!(feeder.join().unwrap(), 40);

    let returned = by_context(&rx);
    assert_eq!(returned.len(), 40, "every frame came back");
    let mut expected = FNV_OFFSET;
    for (n, r) in &returned {
        assert_eq!(r.status, Ok(()), "frame {n} completed its circuit");
        let inverted: Vec<u8> = payload(*n, 64).iter().map(|b| !b).collect();
        assert_eq!(
            &*r.buffer,
            &inverted[..],
            "invert worked in the client's buffer"
        );
        expected = fnv1a64(expected, &inverted);
        assert_eq!(
            r.header.type_specific_flags, 0x5a,
            "the header as the circuit left it"
        );
        assert_eq!((r.header.frame_extent, r.header.data_used), (64, 64));
        assert_eq!(r.header.is_end_of_stream(), *n == 39);
    }
    assert_eq!(o.report.checksums().next().map(|(_, c)| c), Some(expected));
    assert!(o.report.completed && o.report.all_frames_returned);
    assert_eq!(probe.outstanding(), 0);
    assert!(!probe.is_running(), "the gate closed at STOP");
}

#[test]
fn a_pin_in_injection_mode_gets_no_allocator_frames() {
    let mut built = build("testsrc size=32 ! nullsink");
    let calls = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&calls);
    // In place of `testsrc`: count the frames its requester would feed it.
    built
        .replace_process(
            "testsrc",
            Box::new(process_fn(move |pins| {
                let q = pins.queue(0).expect("root");
                seen.fetch_add(q.len() as u64, Ordering::Relaxed);
                q.eject_leading(usize::MAX, |_| Ok::<(), Status>(()))?;
                Ok(())
            })),
        )
        .unwrap();
    let (injector, rx) = collect(&mut built, "testsrc.out");
    let feeder = feed(injector, 10, 32);
    let o = run(built, &RunOptions::default()).expect("run succeeds");
    assert_eq!(feeder.join().unwrap(), 10);
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "no allocator frame reached the pin"
    );
    let pipe = &o.report.pipes[0];
    assert_eq!((pipe.requested, pipe.peak, pipe.allocated), (0, 0, 0));
    assert_eq!(by_context(&rx).len(), 10);
    assert_eq!(
        o.report.filters[1].stats.frames, 10,
        "the sink saw the injected frames"
    );
}

#[test]
fn injected_frames_return_at_a_copy_and_the_next_pipe_uses_its_own_allocator() {
    let mut built = build("testsrc size=48 ! copy ! checksum ! nullsink");
    let (injector, rx) = collect(&mut built, "testsrc.out");
    let feeder = feed(injector, 25, 48);
    let o = run(built, &RunOptions::default()).expect("run succeeds");
    assert_eq!(feeder.join().unwrap(), 25);
    assert_eq!(o.plan.pipes.len(), 2);
    let returned = by_context(&rx);
    assert_eq!(returned.len(), 25);
    assert!(returned.values().all(|r| r.status.is_ok()));
    // Downstream of the copy, the data travels in the second pipe's allocator frames.
    let expected = (0..25).fold(FNV_OFFSET, |h, n| fnv1a64(h, &payload(n, 48)));
    assert_eq!(o.report.checksums().next().map(|(_, c)| c), Some(expected));
    assert_eq!(o.report.pipes[0].requested, 0);
    assert!(o.report.pipes[1].requested >= 25, "{:?}", o.report.pipes[1]);
    assert!(o.report.all_frames_returned);
}

#[test]
fn a_frame_shared_by_tee_branches_returns_once_after_the_last_branch() {
    let mut built = build(
        "testsrc size=16 ! tee name=t ! checksum name=a ! nullsink name=sa \
         t. ! checksum name=b ! nullsink name=sb",
    );
    let pin = built.graph.pin("testsrc.out").unwrap();
    let returned_so_far = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let log = Arc::clone(&returned_so_far);
    let injector = built
        .graph
        .register_frame_return(pin, move |r| {
            log.lock().unwrap().push(r.context);
            let _ = tx.send(r);
        })
        .unwrap();
    // Branch `sb` keeps the newest frame until the next one arrives (branch `sa` is done
    // with it by then), and checks that no frame it still holds has come back.
    let early = Arc::new(AtomicU64::new(0));
    let early_seen = Arc::clone(&early);
    let log = Arc::clone(&returned_so_far);
    built
        .replace_process(
            "sb",
            Box::new(process_fn(move |pins| {
                let q = pins.queue(0).expect("connected");
                let mut ended = false;
                while let Some(p) = q.leading_edge(PointerState::Locked) {
                    let eos = q.header(p)?.is_end_of_stream();
                    let n = u64::from(q.data(p)?[0] / 3); // byte 0 of frame n is 3n
                    if log.lock().unwrap().contains(&n) {
                        early_seen.fetch_add(1, Ordering::Relaxed);
                    }
                    if q.len() == 1 && !eos {
                        q.unlock(p, false)?; // held until the next frame arrives
                        break;
                    }
                    q.unlock(p, true)?;
                    ended |= eos;
                }
                if ended {
                    pins.end_of_stream();
                }
                Ok(())
            })),
        )
        .unwrap();
    let feeder = feed(injector, 30, 16);
    let o = run(built, &RunOptions::default()).expect("run succeeds");
    assert_eq!(feeder.join().unwrap(), 30);
    assert_eq!(o.plan.pipes.len(), 1, "both branches share the pipe");
    assert_eq!(
        early.load(Ordering::Relaxed),
        0,
        "a frame returned while a branch held it"
    );
    let returned = by_context(&rx);
    assert_eq!(returned.len(), 30);
    assert!(returned.values().all(|r| r.status.is_ok()));
    let expected = (0..30).fold(FNV_OFFSET, |h, n| fnv1a64(h, &payload(n, 16)));
    let sums: Vec<u64> = o.report.checksums().map(|(_, c)| c).collect();
    assert_eq!(sums, [expected, expected]);
}

#[test]
fn frames_still_queued_at_stop_return_with_status_cancelled() {
    let mut built = build("testsrc size=8 ! nullsink");
    // A sink that never consumes: once six frames wait in its queue it declares the end of
    // the stream, and STOP flushes them.
    built
        .replace_process(
            "nullsink",
            Box::new(process_fn(|pins| {
                if pins.queue(0).is_some_and(|q| q.len() == 6) {
                    pins.end_of_stream();
                }
                Ok(())
            })),
        )
        .unwrap();
    let (injector, rx) = collect(&mut built, "testsrc.out");
    let probe = injector.clone();
    let feeder = thread::spawn(move || {
        wait_running(&injector);
        for n in 0..6 {
            injector
                .submit(payload(n, 8), n)
                .expect("accepted while running");
        }
    });
    let o = run(built, &RunOptions::default()).expect("run succeeds");
    feeder.join().unwrap();
    assert!(o.report.completed);
    assert!(o.report.all_frames_returned);
    let returned = by_context(&rx);
    assert_eq!(returned.len(), 6, "every frame came back at STOP");
    for (n, r) in &returned {
        assert_eq!(r.status, Err(Status::Cancelled), "frame {n}");
        assert_eq!(&*r.buffer, &payload(*n, 8)[..]);
    }
    assert_eq!(probe.outstanding(), 0);
    // After the run: refused, the buffer handed back.
    let err = probe.submit(vec![1, 2, 3], 99).unwrap_err();
    assert_eq!(err.status().name(), "STATUS_INVALID_DEVICE_STATE");
    assert_eq!((err.context(), &*err.into_buffer()), (99, &[1, 2, 3][..]));
}

#[test]
fn a_filter_failure_status_reaches_the_frame_return_callback() {
    let mut built = build("testsrc size=8 ! nullsink");
    // In place of `nullsink`: completes odd frames with a failure status.
    let mut n = 0u32;
    let odd = move || {
        n += 1;
        n % 2 == 0
    };
    failing_sink(&mut built, "nullsink", "unplugged", odd);
    let (injector, rx) = collect(&mut built, "testsrc.out");
    let feeder = feed(injector, 6, 8);
    let o = run(built, &RunOptions::default()).expect("run succeeds");
    assert_eq!(feeder.join().unwrap(), 6);
    assert!(o.report.completed);
    let returned = by_context(&rx);
    assert_eq!(returned.len(), 6);
    for (n, r) in &returned {
        if n % 2 == 1 && *n != 5 {
            assert!(
                matches!(r.status, Err(Status::DeviceNotReady(_))),
                "{n}: {:?}",
                r.status
            );
        } else {
            assert_eq!(r.status, Ok(()), "frame {n}");
        }
    }
}

#[test]
fn registering_outside_stop_is_refused_naming_the_state() {
    let mut built = build("testsrc ! nullsink");
    let pin = built.graph.pin("testsrc.out").unwrap();
    for state in [KsState::Acquire, KsState::Pause, KsState::Run] {
        built.graph.set_state(state).unwrap();
        let err = built.graph.register_frame_return(pin, |_| {}).unwrap_err();
        assert!(matches!(err, GraphError::WrongState { .. }), "{err:?}");
        assert_eq!(err.status().name(), "STATUS_INVALID_DEVICE_STATE");
        assert!(
            err.to_string().contains(&format!("it is in {state}")),
            "{err}"
        );
        assert!(!built.graph.is_injecting(pin));
        assert!(built.graph.unregister_frame_return(pin).is_err());
    }
    built.graph.set_state(KsState::Stop).unwrap();
    assert!(built.graph.register_frame_return(pin, |_| {}).is_ok());
}

#[test]
fn an_input_pin_cannot_be_put_in_injection_mode() {
    let mut built = build("testsrc ! nullsink");
    let pin = built.graph.pin("nullsink.in").unwrap();
    let err = built.graph.register_frame_return(pin, |_| {}).unwrap_err();
    assert!(matches!(err, GraphError::NotAnOutputPin { .. }), "{err:?}");
    assert_eq!(err.status().name(), "STATUS_INVALID_PARAMETER");
    assert!(
        err.to_string().contains("'nullsink.in' is an input pin"),
        "{err}"
    );
}

#[test]
fn a_pin_in_injection_mode_must_start_a_pipe() {
    // `identity`'s output passes its input's frames on: no pipe starts there.
    let mut built = build("testsrc ! identity ! nullsink");
    let (_injector, _rx) = collect(&mut built, "identity.out");
    let err = run(built, &RunOptions::default()).unwrap_err();
    assert!(matches!(err, RunError::Setup(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("'identity.out' is in injection mode"),
        "{err}"
    );
}

#[test]
fn submitting_without_a_registration_is_refused_and_the_pin_gets_allocator_frames_again() {
    let mut built = build("testsrc frames=4 size=8 ! nullsink");
    let pin = built.graph.pin("testsrc.out").unwrap();
    let injector = built.graph.register_frame_return(pin, |_| {}).unwrap();
    assert!(built.graph.unregister_frame_return(pin).unwrap());
    // From a filter while the graph runs: the pin is no longer in injection mode.
    let refusals = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&refusals);
    let mut sink = built
        .replace_process("nullsink", Box::new(process_fn(|_| Ok(()))))
        .unwrap();
    built
        .replace_process(
            "nullsink",
            Box::new(process_fn(move |pins| {
                let err = injector.submit(vec![4; 8], 7).unwrap_err();
                seen.lock()
                    .unwrap()
                    .push((err.status().name(), err.into_buffer()));
                sink.process(pins)
            })),
        )
        .unwrap();
    let o = run(built, &RunOptions::default()).expect("run succeeds");
    assert_eq!(
        o.report.frames, 4,
        "testsrc's own frames, from the allocator"
    );
    assert!(o.report.pipes[0].requested >= 4);
    let refusals = refusals.lock().unwrap();
    assert!(!refusals.is_empty());
    for (status, buffer) in refusals.iter() {
        assert_eq!(*status, "STATUS_INVALID_DEVICE_REQUEST");
        assert_eq!(&**buffer, &[4; 8]);
    }
}

#[test]
fn a_second_registration_replaces_the_first() {
    let mut built = build("testsrc ! nullsink");
    let pin = built.graph.pin("testsrc.out").unwrap();
    let first = built.graph.register_frame_return(pin, |_| {}).unwrap();
    let second = built.graph.register_frame_return(pin, |_| {}).unwrap();
    let err = first.submit(vec![0; 4], 0).unwrap_err();
    assert_eq!(err.status().name(), "STATUS_INVALID_DEVICE_REQUEST");
    assert!(
        err.to_string().contains("no longer in injection mode"),
        "{err}"
    );
    // The current one is only refused for the state.
    let err = second.submit(vec![0; 4], 0).unwrap_err();
    assert_eq!(err.status().name(), "STATUS_INVALID_DEVICE_STATE");
}

#[test]
fn bad_headers_are_refused_with_the_buffer_back() {
    let mut built = build("testsrc size=16 ! nullsink");
    let (injector, rx) = collect(&mut built, "testsrc.out");
    let checks = thread::spawn(move || {
        wait_running(&injector);
        // DataUsed beyond the buffer.
        let err = injector
            .submit_with_header(vec![1; 8], header(9, false), 1)
            .unwrap_err();
        assert_eq!(err.status().name(), "STATUS_INVALID_PARAMETER");
        assert!(
            err.to_string().contains("exceeds the 8-byte buffer"),
            "{err}"
        );
        assert_eq!(err.buffer(), &[1; 8]);
        // A buffer larger than the pipe's frames is fine, as long as its data fits them...
        injector
            .submit_with_header(vec![2; 64], header(16, false), 2)
            .expect("data fits the frames");
        // ... but more data than a frame of the pipe holds is refused.
        let err = injector.submit(vec![3; 17], 3).unwrap_err();
        assert_eq!(err.status().name(), "STATUS_INVALID_PARAMETER");
        assert!(err.to_string().contains("16-byte frames"), "{err}");
        assert_eq!(err.into_buffer().len(), 17);
        // An empty frame that only carries the end of the stream.
        injector
            .submit_with_header(Vec::new(), header(0, true), 4)
            .expect("an empty end-of-stream frame");
    });
    let o = run(built, &RunOptions::default()).expect("run succeeds");
    checks.join().expect("the checks hold");
    assert!(o.report.completed, "the empty frame ended the stream");
    let returned = by_context(&rx);
    assert_eq!(
        returned.keys().copied().collect::<Vec<_>>(),
        [2, 4],
        "refused frames do not return"
    );
    assert_eq!(
        returned[&2].header.frame_extent, 64,
        "FrameExtent is the buffer's length"
    );
    assert!(returned[&4].buffer.is_empty());
}

#[test]
fn a_panicking_frame_return_callback_fails_the_run_and_every_frame_still_returns() {
    let mut built = build("testsrc size=8 ! nullsink");
    let pin = built.graph.pin("testsrc.out").unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&calls);
    let injector = built
        .graph
        .register_frame_return(pin, move |r| {
            counted.fetch_add(1, Ordering::Relaxed);
            if r.context == 0 {
                panic!("the client's bug");
            }
        })
        .unwrap();
    let probe = injector.clone();
    // Frames keep coming until the run refuses them (it fails at the panic).
    let feeder = thread::spawn(move || {
        wait_running(&injector);
        let mut accepted = 0u64;
        for n in 0..100_000u64 {
            match injector.submit(vec![0; 8], n) {
                Ok(()) => accepted += 1,
                Err(e) => {
                    assert_eq!(e.status().name(), "STATUS_INVALID_DEVICE_STATE");
                    break;
                }
            }
        }
        accepted
    });
    let err = run(built, &RunOptions::default()).unwrap_err();
    let accepted = feeder.join().unwrap();
    assert!(
        matches!(&err, RunError::Filter { filter, .. } if filter == "testsrc"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("frame-return callback (pin 'testsrc.out') panicked"),
        "{err}"
    );
    assert!(err.to_string().contains("the client's bug"), "{err}");
    assert!(accepted >= 1);
    assert_eq!(
        calls.load(Ordering::Relaxed),
        accepted,
        "every accepted frame came back"
    );
    assert_eq!(probe.outstanding(), 0);
}

#[test]
fn the_callback_may_submit_its_buffer_again() {
    // Two buffers circulate: each return is refilled and injected again, 50 frames in all,
    // from the frame-return callback itself (the recycling KS documents).
    const TOTAL: u64 = 50;
    let mut built = build("testsrc size=8 ! invert ! nullsink");
    let pin = built.graph.pin("testsrc.out").unwrap();
    let slot: Arc<Mutex<Option<Injector>>> = Arc::new(Mutex::new(None));
    let inside = Arc::clone(&slot);
    let next = Arc::new(AtomicU64::new(2));
    let returns = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&returns);
    let injector = built
        .graph
        .register_frame_return(pin, move |r| {
            counted.fetch_add(1, Ordering::Relaxed);
            assert_eq!(r.status, Ok(()));
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n < TOTAL {
                let injector = inside.lock().unwrap().clone().expect("set before the run");
                let mut buffer = r.buffer;
                buffer.fill(n as u8);
                injector
                    .submit_with_header(buffer, header(8, n + 1 == TOTAL), n)
                    .expect("re-submitted while running");
            }
        })
        .unwrap();
    *slot.lock().unwrap() = Some(injector.clone());
    let feeder = thread::spawn(move || {
        wait_running(&injector);
        for n in 0..2 {
            injector
                .submit_with_header(vec![0; 8], header(8, false), n)
                .unwrap();
        }
    });
    let o = run(built, &RunOptions::default()).expect("run succeeds");
    feeder.join().unwrap();
    assert!(o.report.completed);
    assert_eq!(returns.load(Ordering::Relaxed), TOTAL);
    assert_eq!(o.report.filters[2].stats.frames, TOTAL);
    slot.lock().unwrap().take(); // the callback's own injector
}

#[test]
fn a_frame_shared_by_tee_branches_returns_the_first_failure_of_any_branch() {
    // One branch fails every frame but the last; the other completes them all. Either
    // branch, whether it lets go of the frame first or last, decides the status.
    for failing in ["sa", "sb"] {
        let mut built =
            build("testsrc size=8 ! tee name=t ! nullsink name=sa t. ! nullsink name=sb");
        failing_sink(&mut built, failing, "the failing branch", || true);
        let (injector, rx) = collect(&mut built, "testsrc.out");
        let feeder = feed(injector, 5, 8);
        let o = run(built, &RunOptions::default()).expect("run succeeds");
        assert_eq!(feeder.join().unwrap(), 5);
        assert_eq!(o.plan.pipes.len(), 1, "both branches share the pipe");
        let returned = by_context(&rx);
        assert_eq!(returned.len(), 5);
        for (n, r) in &returned {
            if *n < 4 {
                assert!(
                    matches!(&r.status, Err(Status::DeviceNotReady(m)) if m.contains("failing")),
                    "{failing} fails, frame {n}: {:?}",
                    r.status
                );
            } else {
                assert_eq!(
                    r.status,
                    Ok(()),
                    "the last frame completed on both branches"
                );
            }
        }
    }
}

#[test]
fn injection_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    // An injector is handed to other threads (a filter's, the callback's, the client's).
    check::<Injector>();
    check::<ks_graph::runtime::SubmitError>();
    check::<ReturnedFrame>();
    check::<ks_graph::runtime::InjectedFrame>();
}

/// Replaces sink `name` by one that completes each frame but the end-of-stream one with
/// `STATUS_DEVICE_NOT_READY` (`why`) when `fail()` says so (asked once per such frame, in
/// order), and reports the end of the stream.
fn failing_sink(
    built: &mut filters::Built,
    name: &str,
    why: &'static str,
    mut fail: impl FnMut() -> bool + Send + 'static,
) {
    built
        .replace_process(
            name,
            Box::new(process_fn(move |pins| {
                let q = pins.queue(0).expect("connected");
                let mut ended = false;
                while let Some(p) = q.leading_edge(PointerState::Locked) {
                    let eos = q.header(p)?.is_end_of_stream();
                    if !eos && fail() {
                        q.set_status_code(p, Err(Status::DeviceNotReady(why.into())))?;
                    }
                    q.unlock(p, true)?;
                    ended |= eos;
                }
                if ended {
                    pins.end_of_stream();
                }
                Ok(())
            })),
        )
        .unwrap();
}

/// A submission is processed on the submitting thread, which then holds the filters'
/// mutexes: a filter that asks there for its own processing (`attempt_here`) is served
/// asynchronously, as within any callback of the run, instead of waiting for its own mutex.
#[test]
fn a_filter_attempting_its_processing_here_during_a_submission_does_not_deadlock() {
    let mut built = build("testsrc size=8 ! nullsink");
    let mut asked = false;
    built
        .replace_process(
            "nullsink",
            Box::new(process_fn(move |pins| {
                if !asked {
                    asked = true;
                    assert!(pins.attempt_processing().attempt_here());
                }
                let q = pins.queue(0).expect("connected");
                let mut ended = false;
                q.eject_leading(usize::MAX, |at| {
                    ended |= at.header.is_end_of_stream();
                    Ok::<(), Status>(())
                })?;
                if ended {
                    pins.end_of_stream();
                }
                Ok(())
            })),
        )
        .unwrap();
    let (injector, rx) = collect(&mut built, "testsrc.out");
    let feeder = feed(injector, 3, 8);
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = done_tx.send(run(built, &RunOptions::default()));
    });
    let o = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the run deadlocked")
        .expect("run succeeds");
    assert_eq!(feeder.join().unwrap(), 3);
    assert!(o.report.completed);
    let returned = by_context(&rx);
    assert_eq!(returned.len(), 3);
    assert!(returned.values().all(|r| r.status.is_ok()));
}

/// A frame stops counting in `outstanding` as the callback receives it.
#[test]
fn a_frame_no_longer_counts_as_outstanding_in_its_callback() {
    let mut built = build("testsrc size=8 ! nullsink");
    let pin = built.graph.pin("testsrc.out").unwrap();
    let slot: Arc<Mutex<Option<Injector>>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    let s2 = Arc::clone(&slot);
    let injector = built
        .graph
        .register_frame_return(pin, move |_r| {
            let seen = s2.lock().unwrap().as_ref().map(Injector::outstanding);
            let _ = tx.send(seen);
        })
        .unwrap();
    *slot.lock().unwrap() = Some(injector.clone());
    let feeder = feed(injector, 1, 8);
    let o = run(built, &RunOptions::default()).expect("run succeeds");
    assert_eq!(feeder.join().unwrap(), 1);
    assert!(o.report.completed);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [Some(0)]);
    slot.lock().unwrap().take();
}

/// Once the run has begun to stop (here: a filter failed, on the submitting thread itself),
/// submissions are refused and `is_running` says so, though the gates close a moment later.
#[test]
fn submissions_are_refused_once_the_run_has_failed() {
    let mut built = build("testsrc size=8 ! nullsink");
    built
        .replace_process(
            "nullsink",
            Box::new(process_fn(|_| {
                Err(Status::DeviceNotReady("the sink gave up".into()))
            })),
        )
        .unwrap();
    let (injector, rx) = collect(&mut built, "testsrc.out");
    let feeder = thread::spawn(move || {
        wait_running(&injector);
        // Delivered on this thread: the sink fails the run before this returns.
        injector
            .submit(payload(0, 8), 0)
            .expect("accepted while running");
        let second = injector.submit(payload(1, 8), 1);
        (second.map_err(|e| e.status().name()), injector.is_running())
    });
    let outcome = run(built, &RunOptions::default());
    assert!(outcome.is_err(), "the sink failed the run");
    let (second, running) = feeder.join().unwrap();
    assert_eq!(second, Err("STATUS_INVALID_DEVICE_STATE"));
    assert!(!running);
    let returned = by_context(&rx);
    assert_eq!(returned.keys().copied().collect::<Vec<_>>(), [0]);
}
