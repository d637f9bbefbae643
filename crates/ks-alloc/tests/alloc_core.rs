//! The allocator object: both interfaces, hand-off, FIFO, cancel, close, raw frees, status.
#![cfg(not(loom))]

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use ks_alloc::bench::block_on;
use ks_alloc::{
    Alignment, Allocator, EventSubscription, Framing, Holder, Memory, PoolType, Status,
    TryAllocateError, raise_to_dispatch,
};

fn framing(frames: u32, size: u32) -> Framing {
    Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames,
        frame_size: size,
        alignment: Alignment::BYTES_64,
    }
}

fn alloc(frames: u32) -> Allocator {
    Allocator::new(&framing(frames, 4096), Memory::NonPaged).unwrap()
}

/// Counts wake-ups.
struct CountWaker(AtomicUsize);
impl Wake for CountWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountWaker>, Waker) {
    let c = Arc::new(CountWaker(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

/// Subscribes to `a`'s FREEFRAME event with a callback that counts its calls.
fn count_free_frames(a: &Allocator) -> (Arc<AtomicUsize>, EventSubscription) {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let sub = a
        .on_free_frame(move || {
            n2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    (n, sub)
}

#[test]
fn frames_bound_outstanding_and_are_aligned_distinct() {
    let a = alloc(3);
    let frames: Vec<_> = (0..3).map(|_| a.try_allocate().unwrap()).collect();
    let mut addrs: Vec<_> = frames.iter().map(|f| f.addr()).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 3);
    assert!(addrs.iter().all(|p| p % 64 == 0));
    let empty = a.try_allocate().unwrap_err();
    assert_eq!(empty, TryAllocateError::Empty);
    assert!(matches!(Status::from(empty), Status::Unsuccessful(_)));
    let s = a.status();
    assert_eq!(s.allocated_frames, 3);
    assert_eq!(s.peak_allocated_frames, 3);
    assert_eq!(s.failed_try_allocates, 1);
    drop(frames);
    assert_eq!(a.status().allocated_frames, 0);
    assert_eq!(a.status().to_ks_bytes()[24..28], 0u32.to_le_bytes());
}

#[test]
fn frame_bytes_are_writable_and_survive_handover() {
    let a = alloc(1);
    let mut f = a.try_allocate().unwrap();
    f.fill(0xAB);
    assert_eq!(f.len(), 4096);
    drop(f);
    let f = a.try_allocate().unwrap();
    assert!(f.iter().all(|&b| b == 0xAB));
}

#[test]
fn paged_memory_refuses_function_table_but_serves_requests() {
    let mut fr = framing(1, 64);
    fr.pool_type = PoolType::PAGED;
    let a = Allocator::builder(&fr).build().unwrap();
    assert_eq!(a.memory(), Memory::Paged);
    assert!(!a.offers_function_table());
    let refused = a.try_allocate().unwrap_err();
    assert_eq!(refused, TryAllocateError::NotOffered);
    assert!(matches!(refused.status(), Status::NotSupported(m) if m.contains("non-paged")));
    let f = block_on(a.allocate()).unwrap();
    assert_eq!(f.len(), 64);
}

#[test]
fn creation_rejects_zero_frames_and_too_many() {
    assert!(matches!(
        Allocator::new(&framing(0, 64), Memory::Paged),
        Err(Status::InvalidParameter(_))
    ));
    assert!(matches!(
        Allocator::new(&framing(70_000, 1), Memory::Paged),
        Err(Status::InvalidParameter(_))
    ));
    assert!(matches!(
        Allocator::new(&framing(1, 0), Memory::Paged),
        Err(Status::InvalidParameter(_))
    ));
}

#[test]
fn free_with_pending_request_hands_over_without_dropping_count() {
    let a = alloc(1);
    let f = a.try_allocate().unwrap();
    let (count, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(a.allocate());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    assert_eq!(a.status().pending, 1);
    let addr = f.addr();
    drop(f);
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "waiter woken");
    assert_eq!(
        a.status().allocated_frames,
        1,
        "outstanding count unchanged (B24)"
    );
    assert_eq!(a.status().handoffs, 1);
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(g)) => assert_eq!(g.addr(), addr),
        other => panic!("expected the handed-over frame, got {other:?}"),
    }
    assert_eq!(a.status().pending, 0);
}

#[test]
fn pending_requests_complete_in_fifo_order_and_cancel_keeps_order() {
    let a = alloc(1);
    let f = a.try_allocate().unwrap();
    let (_c, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut r1 = Box::pin(a.allocate_for(&Holder("r1")));
    let mut r2 = Box::pin(a.allocate_for(&Holder("r2")));
    let mut r3 = Box::pin(a.allocate_for(&Holder("r3")));
    for r in [&mut r1, &mut r2, &mut r3] {
        assert!(r.as_mut().poll(&mut cx).is_pending());
    }
    drop(r2); // cancel the middle one: consumes nothing
    assert_eq!(a.status().pending, 2);
    drop(f);
    let g1 = match r1.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(g)) => g,
        other => panic!("r1 first, got {other:?}"),
    };
    assert!(r3.as_mut().poll(&mut cx).is_pending());
    assert_eq!(a.outstanding()[0].holder, Some("r1"));
    drop(g1);
    assert!(matches!(r3.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
    assert_eq!(a.status().max_pending, 3);
}

#[test]
fn cancelling_a_granted_request_passes_the_frame_on() {
    let a = alloc(1);
    let f = a.try_allocate().unwrap();
    let (_c, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut r1 = Box::pin(a.allocate());
    let mut r2 = Box::pin(a.allocate());
    assert!(r1.as_mut().poll(&mut cx).is_pending());
    assert!(r2.as_mut().poll(&mut cx).is_pending());
    drop(f); // granted to r1
    drop(r1); // r1 gives up: the frame goes on to r2
    let Poll::Ready(Ok(g)) = r2.as_mut().poll(&mut cx) else {
        panic!("r2 must get the frame")
    };
    assert_eq!(a.status().allocated_frames, 1);
    // One free completed one request: r1's grant, given up, is not counted.
    assert_eq!(a.status().handoffs, 1);
    drop(g);
}

#[test]
fn cancelling_the_last_request_restores_the_free_list() {
    let a = alloc(1);
    let f = a.try_allocate().unwrap();
    let (_c, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut r = Box::pin(a.allocate());
    assert!(r.as_mut().poll(&mut cx).is_pending());
    drop(r);
    drop(f);
    assert_eq!(a.status().allocated_frames, 0);
    assert!(
        a.try_allocate().is_ok(),
        "the frame went back to the free list"
    );
}

#[test]
fn blocking_allocate_times_out_and_is_woken_by_a_free() {
    let a = alloc(1);
    let f = a.try_allocate().unwrap();
    match a.allocate_blocking(Some(Duration::from_millis(20))) {
        Err(Status::DeviceNotReady(m)) => assert!(m.contains("timed out")),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(a.status().pending, 0);
    let a2 = a.clone();
    let t = std::thread::spawn(move || a2.allocate_blocking(None).map(|g| g.addr()));
    while a.status().pending == 0 {
        std::thread::yield_now();
    }
    let addr = f.addr();
    drop(f);
    assert_eq!(t.join().unwrap().unwrap(), addr);
}

#[test]
fn blocking_apis_refuse_dispatch_level() {
    let a = alloc(1);
    let _g = raise_to_dispatch();
    assert!(matches!(
        a.allocate_blocking(None),
        Err(Status::InvalidDeviceState(_))
    ));
    // The non-blocking interface works at Dispatch level.
    assert!(a.try_allocate().is_ok());
}

#[test]
fn dispatch_level_free_completes_the_waiter_on_the_worker() {
    let a = alloc(1);
    let f = a.try_allocate().unwrap();
    let a2 = a.clone();
    let waiter = std::thread::spawn(move || block_on(a2.allocate()).map(|g| g.addr()));
    while a.status().pending == 0 {
        std::thread::yield_now();
    }
    let addr = f.addr();
    {
        let _g = raise_to_dispatch();
        drop(f); // returns at once; the worker completes the request
    }
    assert_eq!(waiter.join().unwrap().unwrap(), addr);
    assert_eq!(a.status().handoffs, 1);

    // Behaviour 25: the grant is made (and its waker woken) by the library worker, not by
    // the Dispatch-level free.
    struct Recorder(std::sync::Mutex<Option<String>>, std::thread::Thread);
    impl std::task::Wake for Recorder {
        fn wake(self: Arc<Self>) {
            let me = std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_owned();
            *self.0.lock().unwrap() = Some(me);
            self.1.unpark();
        }
    }
    let f = a.try_allocate().unwrap();
    let rec = Arc::new(Recorder(
        std::sync::Mutex::new(None),
        std::thread::current(),
    ));
    let waker = Waker::from(Arc::clone(&rec));
    let mut cx = Context::from_waker(&waker);
    let mut r = Box::pin(a.allocate());
    assert!(r.as_mut().poll(&mut cx).is_pending());
    {
        let _g = raise_to_dispatch();
        drop(f);
    }
    while rec.0.lock().unwrap().is_none() {
        std::thread::park();
    }
    assert_eq!(rec.0.lock().unwrap().as_deref(), Some("ks-alloc-worker"));
    assert!(matches!(r.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
}

/// A hand-off that empties the queue leaves the free list's `WAITERS` flags set (the next
/// free clears them). Each free that meets such stale flags must still behave as a plain free:
/// the frame is on the free list when the free returns, and FREEFRAME fires; at Dispatch
/// level too, where a real hand-off would be deferred to the worker.
#[test]
fn frees_after_the_queue_emptied_go_straight_to_the_free_list() {
    for dispatch in [false, true] {
        let a = alloc(2);
        let (fired, _sub) = count_free_frames(&a);
        let f1 = a.try_allocate().unwrap();
        let f2 = a.try_allocate().unwrap();
        let (_c, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut r = Box::pin(a.allocate());
        assert!(r.as_mut().poll(&mut cx).is_pending());
        drop(f1); // handed to the request: the queue is empty now
        let g = match r.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(g)) => g,
            other => panic!("expected the handed-off frame, got {other:?}"),
        };
        assert_eq!(
            fired.load(Ordering::SeqCst),
            0,
            "a hand-off fires no FREEFRAME"
        );
        let addr = f2.addr();
        {
            let _l = dispatch.then(raise_to_dispatch);
            drop(f2);
            if !dispatch {
                assert_eq!(fired.load(Ordering::SeqCst), 1, "FREEFRAME for the free");
            }
            // Not deferred to the worker: on the list already.
            let again = a.try_allocate();
            assert_eq!(
                again.as_ref().map(|f| f.addr()).ok(),
                Some(addr),
                "dispatch={dispatch}: {again:?}"
            );
        }
        let s = a.status();
        assert_eq!(s.handoffs, 1);
        assert_eq!(s.allocated_frames, 1, "only the handed-off frame is out");
        drop(g);
        assert_eq!(a.status().allocated_frames, 0);
    }
}

/// Allocates and frees on this thread until its free is kept in its cache. A thread's
/// cache id is given at a free that only tries the id pool's lock, and a slot exists only
/// for ids below the frame count, so `a` should have 64 frames (as many as there are ids).
fn cache_one_here(a: &Allocator) {
    for _ in 0..10_000 {
        drop(a.try_allocate().unwrap());
        if a.status().cached_frames == 1 {
            return;
        }
        std::thread::yield_now();
    }
    panic!("this thread never cached a free");
}

#[test]
fn after_close_returns_a_frame_this_thread_cached_is_not_served() {
    let a = alloc(64);
    let f = a.try_allocate().unwrap();
    cache_one_here(&a);
    assert_eq!(a.status().allocated_frames, 1);
    a.close();
    assert_eq!(a.status().cached_frames, 0, "close drained the cache");
    assert_eq!(a.try_allocate().unwrap_err(), TryAllocateError::Closed);
    assert!(matches!(
        block_on(a.allocate()),
        Err(Status::InvalidDeviceState(_))
    ));
    assert_eq!(a.status().allocated_frames, 1, "the cached frame came home");
    drop(f);
    assert_eq!(a.status().allocated_frames, 0);
}

#[test]
fn close_cancels_pending_and_fails_new_allocations_but_keeps_frames_valid() {
    let a = alloc(1);
    let mut f = a.try_allocate().unwrap();
    let (_c, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut r = Box::pin(a.allocate());
    assert!(r.as_mut().poll(&mut cx).is_pending());
    a.close();
    assert!(matches!(
        r.as_mut().poll(&mut cx),
        Poll::Ready(Err(Status::Cancelled))
    ));
    let closed = a.try_allocate().unwrap_err();
    assert_eq!(closed, TryAllocateError::Closed);
    assert_eq!(closed.to_ntstatus(), closed.status().to_ntstatus());
    assert!(matches!(closed.status(), Status::InvalidDeviceState(_)));
    assert!(matches!(
        block_on(a.allocate()),
        Err(Status::InvalidDeviceState(_))
    ));
    f.fill(7); // still valid
    drop(r);
    drop(a);
    assert!(
        f.iter().all(|&b| b == 7),
        "frame valid after the last handle is gone"
    );
    let a = f.allocator();
    assert!(a.is_closed());
    drop(a);
    drop(f);
}

#[test]
fn raw_frees_refuse_foreign_double_interior_and_held_addresses() {
    let a = alloc(2);
    let other = alloc(1);
    let held = a.try_allocate().unwrap();
    let raw = a.try_allocate().unwrap().into_raw();
    let foreign = other.try_allocate().unwrap();
    let before = a.status();
    for bad in [foreign.addr(), raw + 1, held.addr(), 0, usize::MAX] {
        assert!(
            matches!(a.free_raw(bad), Err(Status::InvalidParameter(_))),
            "{bad:#x} must be refused"
        );
    }
    assert_eq!(a.status(), before, "no state change");
    a.free_raw(raw).unwrap();
    assert!(matches!(a.free_raw(raw), Err(Status::InvalidParameter(_))));
    assert_eq!(a.status().allocated_frames, 1);
    drop(held);
}

#[test]
fn max_waiters_bounds_the_queue_with_a_clear_error() {
    let fr = framing(1, 64);
    let a = Allocator::builder(&fr)
        .memory(Memory::NonPaged)
        .max_waiters(1)
        .build()
        .unwrap();
    let _f = a.try_allocate().unwrap();
    let (_c, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut r1 = Box::pin(a.allocate());
    assert!(r1.as_mut().poll(&mut cx).is_pending());
    let mut r2 = Box::pin(a.allocate());
    match r2.as_mut().poll(&mut cx) {
        Poll::Ready(Err(Status::InsufficientResources(m))) => {
            assert!(m.contains("max_waiters is 1"), "{m}");
            assert!(m.contains("1 requests are pending and 0 completed"), "{m}");
        }
        other => panic!("expected the bound, got {other:?}"),
    }
}

#[test]
fn outstanding_names_holders_and_starvation_is_reported() {
    let fr = framing(2, 64);
    let a = Allocator::builder(&fr)
        .memory(Memory::NonPaged)
        .name("enc.in")
        .starvation_threshold(Some(Duration::from_millis(30)))
        .build()
        .unwrap();
    let f1 = a.try_allocate_for(&Holder("decoder.out")).unwrap();
    let f2 = a.try_allocate_for(&Holder("scaler.out")).unwrap();
    let mut names: Vec<_> = a.outstanding().iter().filter_map(|o| o.holder).collect();
    names.sort();
    assert_eq!(names, ["decoder.out", "scaler.out"]);
    assert!(a.starvation_report().is_none());
    let (_c, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut r = Box::pin(a.allocate());
    assert!(r.as_mut().poll(&mut cx).is_pending());
    std::thread::sleep(Duration::from_millis(40));
    let rep = a.starvation_report().expect("starving");
    assert_eq!(rep.pending, 1);
    assert_eq!(rep.holders.len(), 2);
    assert!(rep.to_string().contains("decoder.out"));
    // The worker emits it too (it scans every 50 ms; the deadline is for a loaded machine,
    // whose worker may be busy with other tests' allocators).
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    while a.last_starvation_report().is_none() && std::time::Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(a.last_starvation_report().is_some());
    drop((f1, f2));
}

#[test]
#[cfg_attr(miri, ignore = "Miri has no memfd_create")]
fn user_memory_exposes_the_memfd_and_offsets() {
    let a = Allocator::new(&framing(2, 100), Memory::User).unwrap();
    let sm = a.shared_memory().expect("user memory is shared");
    assert_eq!(sm.frames, 2);
    assert_eq!(sm.stride, 128);
    assert_eq!(sm.frame_offset(1), Some(sm.base_offset + 128));
    assert_eq!(sm.frame_offset(2), None);
    assert!(alloc(1).shared_memory().is_none());
}

#[test]
fn free_frame_events_fire_on_frees_to_the_list() {
    let a = alloc(1);
    let (n, sub) = count_free_frames(&a);
    let mut ev = a.free_frame_events().unwrap();
    drop(a.try_allocate().unwrap());
    assert_eq!(n.load(Ordering::SeqCst), 1);
    assert!(ev.wait(Duration::from_secs(5)).unwrap());
    assert!(!ev.wait(Duration::from_millis(10)).unwrap(), "no new event");
    drop(sub);
    drop(a.try_allocate().unwrap());
    assert_eq!(n.load(Ordering::SeqCst), 1, "unsubscribed");
    a.close();
    assert!(matches!(
        ev.wait(Duration::from_secs(1)),
        Err(Status::Cancelled)
    ));
    assert!(a.on_free_frame(|| {}).is_err());
}

/// Runs `f` on its own thread and fails the test if it does not finish within 10 s (a
/// deadlock would otherwise hang the whole test run).
fn within_10s(name: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(10)).is_ok(),
        "{name}: deadlocked or panicked"
    );
}

#[test]
fn a_free_frame_callback_may_free_a_frame_of_its_own_allocator() {
    within_10s("callback frees a frame", || {
        let a = alloc(2);
        let parked = Arc::new(std::sync::Mutex::new(Some(a.try_allocate().unwrap())));
        let calls = Arc::new(AtomicUsize::new(0));
        let (p2, c2) = (parked.clone(), calls.clone());
        let sub = a
            .on_free_frame(move || {
                c2.fetch_add(1, Ordering::SeqCst);
                // Frees the parked frame from inside the callback: the nested free must not
                // take the event lock again, and its event is delivered after this call.
                let f = p2.lock().unwrap().take();
                drop(f);
            })
            .unwrap();
        drop(a.try_allocate().unwrap());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one event per free, the nested one too"
        );
        assert!(parked.lock().unwrap().is_none());
        assert_eq!(a.status().allocated_frames, 0);
        drop(sub);
    });
}

#[test]
fn a_free_frame_callback_that_frees_two_frames_gets_an_event_for_each() {
    within_10s("callback frees two frames", || {
        let a = alloc(3);
        let parked = Arc::new(std::sync::Mutex::new(vec![
            a.try_allocate().unwrap(),
            a.try_allocate().unwrap(),
        ]));
        let calls = Arc::new(AtomicUsize::new(0));
        let (p2, c2) = (parked.clone(), calls.clone());
        let sub = a
            .on_free_frame(move || {
                c2.fetch_add(1, Ordering::SeqCst);
                let frames = std::mem::take(&mut *p2.lock().unwrap());
                drop(frames); // two nested frees in one callback
            })
            .unwrap();
        drop(a.try_allocate().unwrap());
        assert_eq!(calls.load(Ordering::SeqCst), 3, "one event per free");
        assert_eq!(a.status().allocated_frames, 0);
        drop(sub);
    });
}

/// Waits (up to 10 s) until `n` reaches `want`.
fn wait_for(n: &AtomicUsize, want: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while n.load(Ordering::SeqCst) < want && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    n.load(Ordering::SeqCst)
}

/// Keeps the library worker (shared by every allocator) inside a FREEFRAME callback of an
/// allocator of its own until dropped, so that Dispatch-level frees wait for it.
struct StalledWorker {
    _busy: Allocator,
    _sub: EventSubscription,
    release: std::sync::mpsc::Sender<()>,
}

impl StalledWorker {
    fn new() -> StalledWorker {
        let busy = alloc(1);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Mutex::new(hold);
        let in_callback = Arc::new(AtomicUsize::new(0));
        let entered = in_callback.clone();
        let sub = busy
            .on_free_frame(move || {
                entered.fetch_add(1, Ordering::SeqCst);
                let _ = hold.lock().unwrap().recv();
            })
            .unwrap();
        {
            let _g = raise_to_dispatch();
            drop(busy.try_allocate().unwrap());
        }
        assert_eq!(
            wait_for(&in_callback, 1),
            1,
            "the worker is in the slow callback"
        );
        StalledWorker {
            _busy: busy,
            _sub: sub,
            release,
        }
    }
}

impl Drop for StalledWorker {
    fn drop(&mut self) {
        let _ = self.release.send(());
    }
}

#[test]
fn dispatch_level_frees_the_worker_has_not_reached_each_get_their_event() {
    within_10s("deferred events are counted", || {
        let stall = StalledWorker::new();
        let a = alloc(2);
        let calls = Arc::new(AtomicUsize::new(0));
        let c2 = calls.clone();
        let _sub = a
            .on_free_frame(move || {
                c2.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let frames = [a.try_allocate().unwrap(), a.try_allocate().unwrap()];
        {
            let _g = raise_to_dispatch();
            drop(frames);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0, "left to the worker");
        drop(stall);
        assert_eq!(wait_for(&calls, 2), 2, "one event per free");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "and no more");
    });
}

#[test]
fn a_frame_on_its_way_to_a_request_is_shown_in_transit_not_held_by_its_last_holder() {
    within_10s("in-transit frames in the starvation report", || {
        let stall = StalledWorker::new();
        let a = Allocator::builder(&framing(1, 4096))
            .starvation_threshold(Some(Duration::ZERO))
            .build()
            .unwrap();
        let f = a.try_allocate_for(&Holder("decoder")).unwrap();
        let mut request = Box::pin(a.allocate_for(&Holder("renderer")));
        let (_c, w) = counting_waker();
        assert!(
            request
                .as_mut()
                .poll(&mut Context::from_waker(&w))
                .is_pending()
        );
        {
            let _g = raise_to_dispatch();
            drop(f); // deferred: the stalled worker will hand it to the request
        }
        let report = a.starvation_report().expect("a request pends");
        assert_eq!(report.holders.len(), 1);
        let h = &report.holders[0];
        assert!(h.in_transit && h.holder.is_none(), "{h:?}");
        assert!(!report.to_string().contains("decoder"), "{report}");
        assert_eq!(a.status().allocated_frames, 1, "still counted: a hand-off");
        drop(stall);
        let g = loop {
            if let Poll::Ready(r) = request.as_mut().poll(&mut Context::from_waker(&w)) {
                break r.unwrap();
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let out = a.outstanding();
        assert_eq!(
            (out[0].holder, out[0].in_transit),
            (Some("renderer"), false)
        );
        drop(g);
    });
}

#[test]
fn a_free_frame_waker_is_woken_outside_the_event_lock() {
    /// A waker that subscribes to the allocator's events when woken (which takes the lock).
    struct Subscribing(Allocator, std::sync::Mutex<Vec<EventSubscription>>);
    impl Wake for Subscribing {
        fn wake(self: Arc<Self>) {
            let sub = self.0.on_free_frame(|| {}).unwrap();
            self.1.lock().unwrap().push(sub);
        }
    }
    within_10s("waker takes the event lock", || {
        let a = alloc(1);
        let w = Arc::new(Subscribing(a.clone(), std::sync::Mutex::new(Vec::new())));
        let waker = Waker::from(w.clone());
        let mut ev = a.free_frame_events().unwrap();
        let f = a.try_allocate().unwrap();
        {
            let mut next = pin!(ev.next_event());
            assert!(
                next.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
            drop(f); // fires: wakes our waker, which subscribes
            assert!(
                next.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready()
            );
        }
        assert_eq!(w.1.lock().unwrap().len(), 1);
        w.1.lock().unwrap().clear();
    });
}

/// A waker that panics when woken (a caller's bug the allocator must survive).
struct PanickingWaker;
impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics (on purpose)");
    }
}

/// A request of `a` (which has no free frame) pending with a [`PanickingWaker`].
fn pending_with_a_panicking_waker(a: &Allocator) -> std::pin::Pin<Box<ks_alloc::Allocate<'_>>> {
    let bad = Waker::from(Arc::new(PanickingWaker));
    let mut request = Box::pin(a.allocate());
    assert!(
        request
            .as_mut()
            .poll(&mut Context::from_waker(&bad))
            .is_pending()
    );
    request
}

#[test]
fn a_panicking_waker_does_not_stop_the_worker() {
    within_10s("worker survives a panicking waker", || {
        let a = alloc(1);
        let f = a.try_allocate().unwrap();
        let mut first = pending_with_a_panicking_waker(&a);
        {
            let _g = raise_to_dispatch();
            drop(f); // the worker grants it and wakes the panicking waker
        }
        // The grant went through all the same.
        let (_c, good) = counting_waker();
        let f = loop {
            if let Poll::Ready(r) = first.as_mut().poll(&mut Context::from_waker(&good)) {
                break r.unwrap();
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        // And the worker is still there for the next Dispatch-level free.
        let a2 = a.clone();
        let waiter = std::thread::spawn(move || a2.allocate_blocking(Some(Duration::from_secs(5))));
        while a.status().pending == 0 {
            std::thread::yield_now();
        }
        {
            let _g = raise_to_dispatch();
            drop(f);
        }
        assert!(
            waiter.join().unwrap().is_ok(),
            "the worker completed the second hand-off"
        );
    });
}

#[test]
fn close_wakes_every_request_even_if_a_waker_panics() {
    within_10s("close with a panicking waker", || {
        let a = alloc(1);
        let f = a.try_allocate().unwrap();
        let mut first = pending_with_a_panicking_waker(&a);
        let a2 = a.clone();
        let blocked = std::thread::spawn(move || a2.allocate_blocking(None));
        while a.status().pending < 2 {
            std::thread::yield_now();
        }
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.close()));
        assert!(
            closed.is_err(),
            "the waker's panic reaches the caller of close"
        );
        assert!(a.is_closed());
        assert!(
            matches!(blocked.join().unwrap(), Err(Status::Cancelled)),
            "the request queued after the bad waker's was cancelled and woken"
        );
        let (_c, good) = counting_waker();
        assert!(matches!(
            first.as_mut().poll(&mut Context::from_waker(&good)),
            Poll::Ready(Err(Status::Cancelled))
        ));
        drop(f);
        assert_eq!(a.status().allocated_frames, 0);
    });
}

#[test]
fn a_deferred_free_whose_request_went_away_fires_freeframe() {
    within_10s("deferred free, request gone", || {
        // Keep the worker busy in another allocator's FREEFRAME callback, so that the
        // request below is gone before the worker gets to the frame deferred for it.
        let (busy_tx, busy_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        let other = alloc(1);
        let _sub = other
            .on_free_frame(move || {
                let _ = busy_tx.send(());
                let _ = release_rx.lock().unwrap().recv();
            })
            .unwrap();
        let g = other.try_allocate().unwrap();
        {
            let _d = raise_to_dispatch();
            drop(g); // delivered by the worker, which now waits in the callback
        }
        busy_rx.recv().unwrap();

        let a = alloc(1);
        let mut ev = a.free_frame_events().unwrap();
        let held = a.try_allocate().unwrap();
        let mut req = Box::pin(a.allocate());
        assert!(
            req.as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        {
            let _d = raise_to_dispatch();
            drop(held); // deferred to the (busy) worker for the request
        }
        drop(req); // the request goes away first
        release_tx.send(()).unwrap();
        assert!(
            ev.wait(Duration::from_secs(5)).unwrap(),
            "the worker pushed the frame: a FREEFRAME"
        );
        assert_eq!(a.status().allocated_frames, 0);
    });
}

#[test]
fn dispatch_level_free_frame_event_is_delivered_by_the_worker() {
    let a = alloc(1);
    let mut ev = a.free_frame_events().unwrap();
    let f = a.try_allocate().unwrap();
    {
        let _g = raise_to_dispatch();
        drop(f);
    }
    assert!(ev.wait(Duration::from_secs(5)).unwrap());
}

#[test]
fn works_under_tokio() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let a = alloc(2);
    rt.block_on(async {
        let mut tasks = vec![];
        for _ in 0..8 {
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..200 {
                    let mut f = a.allocate_owned().await.unwrap();
                    f[0] = 1;
                    tokio::task::yield_now().await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(a.status().allocated_frames, 0);
    assert_eq!(a.status().pending, 0);
}

#[test]
fn frames_bound_both_interfaces_together() {
    // Behaviour 35: a frame taken through the function table is not available to requests,
    // and vice versa.
    let a = alloc(2);
    let f1 = a.try_allocate().unwrap();
    let f2 = block_on(a.allocate()).unwrap();
    assert_eq!(a.try_allocate().unwrap_err(), TryAllocateError::Empty);
    let (_c, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut r = Box::pin(a.allocate());
    assert!(r.as_mut().poll(&mut cx).is_pending());
    assert_eq!(a.status().allocated_frames, 2);
    drop(f1); // a function-table frame completes the queued request
    let Poll::Ready(Ok(f3)) = r.as_mut().poll(&mut cx) else {
        panic!("the request must get the freed frame")
    };
    assert!(a.try_allocate().is_err());
    drop((f2, f3));
    assert_eq!(a.status().allocated_frames, 0);
}

/// `outstanding()` lists exactly the frames that are out, however they were taken and freed:
/// a free writes no slot state, so this checks that the free list's snapshot, not a stale
/// state word, decides which frames are listed, and that a frame taken again by another holder
/// shows its new holder.
#[test]
fn outstanding_lists_exactly_the_frames_out() {
    let a = Allocator::new(&framing(4, 64), Memory::NonPaged).unwrap();
    let listed = |a: &Allocator| {
        let mut v: Vec<_> = a
            .outstanding()
            .iter()
            .map(|o| (o.index, o.holder, o.raw))
            .collect();
        v.sort();
        v
    };
    assert!(a.outstanding().is_empty());
    let f1 = a.try_allocate_for(&Holder("one")).unwrap();
    let f2 = a.try_allocate_for(&Holder("two")).unwrap();
    let raw = a.try_allocate_for(&Holder("raw")).unwrap();
    let idx = |f: &ks_alloc::Frame| f.index().expect("a default-allocator frame has an index");
    let (i1, i2, ir) = (idx(&f1), idx(&f2), idx(&raw));
    let addr = raw.into_raw();
    assert_eq!(listed(&a), {
        let mut w = vec![
            (i1, Some("one"), false),
            (i2, Some("two"), false),
            (ir, Some("raw"), true),
        ];
        w.sort();
        w
    });
    drop(f1);
    a.free_raw(addr).unwrap();
    assert_eq!(listed(&a), [(i2, Some("two"), false)]);
    // A frame is taken again (the lowest free one: `one`'s) by another holder.
    let f3 = a.try_allocate_for(&Holder("three")).unwrap();
    let i3 = idx(&f3);
    let mut want = vec![(i2, Some("two"), false), (i3, Some("three"), false)];
    want.sort();
    assert_eq!(listed(&a), want);
    // A freed raw address is refused again: the state went back to "held as a Frame".
    assert!(a.free_raw(addr).is_err());
    drop((f2, f3));
    assert!(a.outstanding().is_empty());
    assert_eq!(a.status().allocated_frames, 0);
}

/// A free that sees the free list's flags (`WAITERS` or `CLOSED`) goes straight to the waiter
/// lock, from the thread cache's put (cache on) or after the hinted CAS fails (cache off).
/// Either way: the oldest request gets the frame; once the queue is empty, the flags it left
/// behind are cleared by the next free, which then puts the frame back on the free list; and
/// after close, the last free still brings the frame home.
#[test]
fn frees_that_see_the_flags_grant_in_order_then_clear_them() {
    for cache in [true, false] {
        let fr = framing(2, 4096);
        let a = Allocator::builder(&fr).thread_cache(cache).build().unwrap();
        let f1 = a.try_allocate().unwrap();
        let f2 = a.try_allocate().unwrap();
        let (_c, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut r1 = Box::pin(a.allocate_for(&Holder("r1")));
        let mut r2 = Box::pin(a.allocate_for(&Holder("r2")));
        assert!(r1.as_mut().poll(&mut cx).is_pending());
        assert!(r2.as_mut().poll(&mut cx).is_pending());

        let addr1 = f1.addr();
        drop(f1);
        let Poll::Ready(Ok(g1)) = r1.as_mut().poll(&mut cx) else {
            panic!("cache {cache}: the oldest request gets the first free")
        };
        assert_eq!(
            g1.addr(),
            addr1,
            "cache {cache}: the very frame that was freed"
        );
        assert!(r2.as_mut().poll(&mut cx).is_pending(), "cache {cache}");
        drop(f2);
        let Poll::Ready(Ok(g2)) = r2.as_mut().poll(&mut cx) else {
            panic!("cache {cache}: the second request gets the second free")
        };
        let s = a.status();
        assert_eq!(
            (s.allocated_frames, s.pending, s.handoffs),
            (2, 0, 2),
            "cache {cache}: two hand-offs, the outstanding count never dropped"
        );
        assert_eq!(
            a.outstanding().iter().map(|o| o.holder).collect::<Vec<_>>(),
            [Some("r1"), Some("r2")],
            "cache {cache}: each frame claimed for its request"
        );

        // The queue is empty, but the flags outlive it: this free clears them and frees the
        // frame for real (then this thread's cache may keep the next one).
        drop(g1);
        assert_eq!(a.status().allocated_frames, 1, "cache {cache}: g1 is free");
        let again = a
            .try_allocate()
            .expect("the freed frame is allocatable again");
        drop(again);

        // After close, the free that brings the last frame home still does (the queue is
        // empty; only `CLOSED` is set).
        a.close();
        drop(g2);
        let s = a.status();
        assert_eq!(
            (s.allocated_frames, s.closed),
            (0, true),
            "cache {cache}: every frame home after close"
        );
    }
}

#[test]
fn a_subscription_is_a_handle_until_the_allocator_is_closed() {
    let a = alloc(1);
    let mut events = a.free_frame_events().unwrap();
    let b = events.allocator().clone();
    drop(a);
    assert!(
        !b.is_closed(),
        "the subscription holds a handle (documented)"
    );
    drop(b.try_allocate().unwrap());
    assert_eq!(events.wait(Duration::from_secs(5)), Ok(true));
    b.close();
    assert_eq!(events.wait(Duration::from_secs(5)), Err(Status::Cancelled));
}

#[test]
fn a_timeout_longer_than_the_clock_waits_without_one() {
    within_10s("Duration::MAX timeout", || {
        let a = alloc(1);
        let held = a.try_allocate().unwrap();
        let b = a.clone();
        let waiter = std::thread::spawn(move || b.allocate_blocking(Some(Duration::MAX)));
        while a.status().pending == 0 {
            std::thread::yield_now();
        }
        drop(held);
        let f = waiter
            .join()
            .expect("no panic")
            .expect("the free was handed over");
        drop(f);
        assert_eq!(a.status().allocated_frames, 0);
        assert!(a.try_allocate().is_ok(), "no frame lost to a dead request");
    });
}

#[test]
fn a_waker_dropped_by_a_new_poll_may_cancel_another_request() {
    /// A waker that owns a pending request of the same allocator: dropping the waker
    /// cancels that request, which takes the allocator's waiter lock.
    struct Owning(std::sync::Mutex<Option<std::pin::Pin<Box<ks_alloc::AllocateOwned>>>>);
    impl Wake for Owning {
        fn wake(self: Arc<Self>) {
            // Never woken in this test (nothing is freed while it is stored); if it were,
            // polling the owned request is what a real waker might do.
            if let Some(r) = self.0.lock().unwrap().as_mut() {
                let _ = r.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            }
        }
    }
    within_10s("waker dropped under the waiter lock", || {
        let a = alloc(1);
        let held = a.try_allocate().unwrap();
        let mut other = Box::pin(a.allocate_owned());
        assert!(
            other
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        let owner = Arc::new(Owning(std::sync::Mutex::new(Some(other))));
        let waker = Waker::from(owner.clone());
        drop(owner);
        let mut first = Box::pin(a.allocate());
        assert!(
            first
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        drop(waker);
        // The stored waker is the last owner of the other request: replacing it drops it.
        assert!(
            first
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        assert_eq!(a.status().pending, 1, "the other request was cancelled");
        drop(held);
        assert!(matches!(
            first.as_mut().poll(&mut Context::from_waker(Waker::noop())),
            Poll::Ready(Ok(_))
        ));
    });
}

/// A pending KS ALLOC request of `a` (which has no free frame), through the request surface.
fn pending_alloc_method(a: &Allocator) -> ks_alloc::PendingAlloc {
    let header = [
        &ks_sys::KSMETHODSETID_StreamAllocator.to_le_bytes()[..],
        &ks_sys::KSMETHOD_STREAMALLOCATOR_ALLOC.to_le_bytes(),
        &2u32.to_le_bytes(), // KSMETHOD_TYPE_SEND
    ]
    .concat();
    let (reply, pending) = a.method(&header, &mut [0u8; 8]);
    assert_eq!(reply.ntstatus(), ks_sys::STATUS_PENDING);
    pending.expect("a request handle")
}

#[test]
fn waiting_on_a_polled_request_drops_its_old_waker_after_the_lock() {
    /// A waker that owns another pending request of the same allocator.
    struct Owning(std::sync::Mutex<Option<ks_alloc::PendingAlloc>>);
    impl Wake for Owning {
        fn wake(self: Arc<Self>) {
            // Never woken here; a real waker might complete the request it owns.
            if let Some(r) = self.0.lock().unwrap().as_mut() {
                let _ = r.try_complete();
            }
        }
    }
    within_10s("PendingAlloc::wait replacing an owning waker", || {
        let a = alloc(1);
        let held = a.try_allocate().unwrap();
        let other = pending_alloc_method(&a);
        let owner = Arc::new(Owning(std::sync::Mutex::new(Some(other))));
        let waker = Waker::from(owner.clone());
        drop(owner);
        let mut mine = pending_alloc_method(&a);
        assert!(
            Pin::new(&mut mine)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        drop(waker); // the stored waker is now the other request's last owner
        let r = mine.wait(Some(Duration::from_millis(20)));
        assert!(
            matches!(r, Err(Status::DeviceNotReady(_))),
            "timed out: {r:?}"
        );
        assert_eq!(a.status().pending, 0, "both withdrawn");
        drop(held);
    });
}

#[test]
fn free_frame_wait_with_a_timeout_past_the_clock_does_not_panic() {
    let a = alloc(1);
    let mut events = a.free_frame_events().unwrap();
    drop(a.try_allocate().unwrap());
    assert_eq!(events.wait(Duration::MAX), Ok(true));
}

#[test]
fn a_blocking_timeout_names_how_many_frames_are_outstanding() {
    let a = alloc(2);
    let _f1 = a.try_allocate().unwrap();
    let _f2 = a.try_allocate().unwrap();
    match a.allocate_blocking(Some(Duration::from_millis(20))) {
        Err(Status::DeviceNotReady(m)) => {
            assert!(m.contains("timed out"), "{m}");
            assert!(m.contains("(2 of 2 frames outstanding)"), "{m}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn max_waiters_is_bounded_by_max_waiters_inclusive() {
    let fr = framing(1, 64);
    let build = |n: u32| {
        Allocator::builder(&fr)
            .memory(Memory::NonPaged)
            .max_waiters(n)
            .build()
    };
    assert_eq!(ks_alloc::MAX_WAITERS, 65_536);
    assert!(build(ks_alloc::MAX_WAITERS).is_ok(), "exactly the bound");
    for n in [ks_alloc::MAX_WAITERS + 1, 2 * ks_alloc::MAX_WAITERS] {
        match build(n) {
            Err(Status::InvalidParameter(m)) => {
                assert!(m.contains(&format!("max_waiters is {n}")), "{m}");
                assert!(m.contains("must be at most 65536"), "{m}");
            }
            other => panic!("max_waiters {n}: expected a refusal, got {other:?}"),
        }
    }
}

#[test]
fn the_default_max_waiters_is_1024_and_the_refusal_says_how_to_raise_it() {
    assert_eq!(ks_alloc::DEFAULT_MAX_WAITERS, 1024);
    let a = Allocator::builder(&framing(1, 64))
        .memory(Memory::NonPaged)
        .build()
        .unwrap();
    let _f = a.try_allocate().unwrap();
    let (_c, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    let mut pending = Vec::with_capacity(1024);
    for i in 0..1024 {
        let mut r = Box::pin(a.allocate());
        assert!(r.as_mut().poll(&mut cx).is_pending(), "request {i} queued");
        pending.push(r);
    }
    assert_eq!(a.status().pending, 1024);
    let mut r = Box::pin(a.allocate());
    match r.as_mut().poll(&mut cx) {
        Poll::Ready(Err(Status::InsufficientResources(m))) => {
            assert!(m.contains("max_waiters is 1024"), "{m}");
            assert!(m.contains("1024 requests are pending"), "{m}");
            assert!(
                m.contains("raise it with Allocator::builder().max_waiters(..)"),
                "{m}"
            );
        }
        other => panic!("expected the default bound, got {other:?}"),
    }
    assert_eq!(
        a.status().pending,
        1024,
        "the refused request queued nothing"
    );
}

#[test]
fn pending_alloc_wait_refuses_dispatch_level() {
    let a = alloc(1);
    let held = a.try_allocate().unwrap();
    let pending = pending_alloc_method(&a);
    {
        let _g = raise_to_dispatch();
        // A timeout, so that a wait that does block ends (and fails the test) all the same.
        match pending.wait(Some(Duration::from_millis(50))) {
            Err(Status::InvalidDeviceState(m)) => {
                assert!(m.contains("PendingAlloc::wait"), "{m}")
            }
            other => panic!("expected a refusal at Dispatch level, got {other:?}"),
        }
    }
    drop(held);
}

#[test]
fn free_frame_events_wait_refuses_dispatch_level() {
    let a = alloc(1);
    let mut events = a.free_frame_events().unwrap();
    let _g = raise_to_dispatch();
    match events.wait(Duration::from_millis(50)) {
        Err(Status::InvalidDeviceState(m)) => {
            assert!(m.contains("FreeFrameEvents::wait"), "{m}")
        }
        other => panic!("expected a refusal at Dispatch level, got {other:?}"),
    }
}
