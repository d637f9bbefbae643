//! FREEFRAME events and `Waker`s that panic, or that free frames when dropped: one bad
//! subscriber or waker must neither strand the others, nor lose frames, nor leak the
//! allocator, nor deadlock the event registry. Each test runs its body on a detached thread
//! with a timeout, so that a regression fails instead of hanging.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ks_alloc::{
    Alignment, Allocator, DefaultVendor, Frame, Framing, Memory, PoolType, RegionContext, Status,
    VendorAllocator, raise_to_dispatch,
};

fn framing(frames: u32) -> Framing {
    Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames,
        frame_size: 64,
        alignment: Alignment::BYTES_64,
    }
}

/// Counts its wakes.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

/// A waker that panics when woken.
struct Panicky;

impl Wake for Panicky {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics");
    }
}

/// How long a test may take before it counts as hung (Miri runs far slower).
fn patience() -> Duration {
    Duration::from_secs(if cfg!(miri) { 900 } else { 10 })
}

/// Runs `f` on a detached thread; panics if it does not finish within [`patience`] (a
/// hang), and resumes its panic if it panicked.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(patience()) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("{what}: hung (deadlock?)"),
    }
}

/// Waits up to half of [`patience`] for `cond`.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + patience() / 2;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// Polls `events.next_event()` once with `waker`.
fn poll_next(events: &mut ks_alloc::FreeFrameEvents, waker: &Waker) -> Poll<Result<(), Status>> {
    let mut f = events.next_event();
    pin!(&mut f).poll(&mut Context::from_waker(waker))
}

/// F1: a FREEFRAME subscriber's waker that panics does not keep the other subscribers
/// asleep, and the free that delivers the event does not unwind because of it.
#[test]
fn panicking_subscriber_waker_does_not_strand_the_others() {
    within("F1", || {
        let alloc = Allocator::new(&framing(2), Memory::NonPaged).unwrap();
        let mut bad = alloc.free_frame_events().unwrap();
        let mut good = alloc.free_frame_events().unwrap();
        let bad_waker = Waker::from(Arc::new(Panicky));
        let (woken, good_waker) = counter();
        // The panicking one first, so that it is woken first.
        assert!(poll_next(&mut bad, &bad_waker).is_pending());
        assert!(poll_next(&mut good, &good_waker).is_pending());
        let frame = alloc.try_allocate().unwrap();
        let freed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(frame)));
        assert!(
            freed.is_ok(),
            "the free unwound because of a subscriber's waker"
        );
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "the other subscriber was not woken"
        );
        assert_eq!(poll_next(&mut good, &good_waker), Poll::Ready(Ok(())));
        assert_eq!(alloc.status().allocated_frames, 0);
    });
}

/// A vendor that delegates to the default one and counts its deletes; its `Arc`'s strong
/// count tells whether the allocator (which holds one) was dropped.
struct Counted(Arc<AtomicUsize>);

const DEFAULT: DefaultVendor = DefaultVendor {
    memory: Memory::NonPaged,
};

// SAFETY: forwards to the default vendor, which upholds the contract.
unsafe impl VendorAllocator for Counted {
    type Context = RegionContext;
    fn initialize(&self, f: &Framing) -> Result<RegionContext, Status> {
        DEFAULT.initialize(f)
    }
    fn allocate(&self, cx: &RegionContext) -> Option<std::ptr::NonNull<u8>> {
        DEFAULT.allocate(cx)
    }
    fn free(&self, cx: &RegionContext, p: std::ptr::NonNull<u8>) {
        DEFAULT.free(cx, p)
    }
    fn delete(&self, cx: RegionContext) {
        self.0.fetch_add(1, Ordering::SeqCst);
        DEFAULT.delete(cx)
    }
}

/// F2: a pending request's waker that panics when a free hands it the frame does not
/// unwind the freer, and, with a FREEFRAME subscriber, does not leak the allocator (the
/// events path's strong reference is dropped); the request still gets its frame.
#[test]
fn panicking_request_waker_neither_unwinds_the_free_nor_leaks_the_allocator() {
    within("F2", || {
        for with_subscriber in [false, true] {
            let deletes = Arc::new(AtomicUsize::new(0));
            let vendor = Arc::new(Counted(deletes.clone()));
            let alloc = Allocator::with_vendor(&framing(1), vendor.clone()).unwrap();
            let sub = with_subscriber.then(|| alloc.on_free_frame(|| {}).unwrap());
            let held = alloc.try_allocate().unwrap();
            let bad = Waker::from(Arc::new(Panicky));
            let mut req = Box::pin(alloc.allocate_owned());
            assert!(
                req.as_mut()
                    .poll(&mut Context::from_waker(&bad))
                    .is_pending()
            );
            let freed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(held)));
            assert!(
                freed.is_ok(),
                "subscriber={with_subscriber}: the free unwound"
            );
            let got = req.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert!(
                matches!(got, Poll::Ready(Ok(_))),
                "subscriber={with_subscriber}: {got:?}"
            );
            drop(got);
            drop(req);
            drop(sub);
            drop(alloc);
            assert!(
                eventually(|| Arc::strong_count(&vendor) == 1),
                "subscriber={with_subscriber}: the allocator leaked"
            );
            assert_eq!(deletes.load(Ordering::SeqCst), 1);
        }
    });
}

/// A FREEFRAME callback that allocates one frame and keeps it in its captured state.
fn keeping_callback(alloc: &Allocator) -> impl Fn() + Send + Sync + 'static {
    let a = alloc.clone();
    let stash: Mutex<Vec<Frame>> = Mutex::new(Vec::new());
    move || {
        let mut s = stash.lock().unwrap();
        if s.is_empty() {
            if let Ok(f) = a.try_allocate() {
                s.push(f);
            }
        }
    }
}

/// F3: dropping a subscription whose callback owns a frame frees that frame, which delivers
/// FREEFRAME: the callback must be dropped after the registry lock, not under it.
#[test]
fn dropping_a_callback_that_owns_a_frame_does_not_deadlock() {
    within("F3 unsubscribe", || {
        let alloc = Allocator::new(&framing(2), Memory::NonPaged).unwrap();
        let sub = alloc.on_free_frame(keeping_callback(&alloc)).unwrap();
        let other = alloc.on_free_frame(|| {}).unwrap(); // keeps the events path on
        drop(alloc.try_allocate().unwrap()); // fires: the callback keeps one frame
        assert_eq!(alloc.status().allocated_frames, 1);
        drop(sub);
        assert_eq!(alloc.status().allocated_frames, 0);
        drop(other);
    });
}

/// F3, through close: the callbacks close takes are dropped after the registry lock.
#[test]
fn close_with_a_callback_that_owns_a_frame_does_not_deadlock() {
    within("F3 close", || {
        let deletes = Arc::new(AtomicUsize::new(0));
        let alloc =
            Allocator::with_vendor(&framing(2), Arc::new(Counted(deletes.clone()))).unwrap();
        let sub = alloc.on_free_frame(keeping_callback(&alloc)).unwrap();
        drop(alloc.try_allocate().unwrap());
        assert_eq!(alloc.status().allocated_frames, 1);
        alloc.close();
        assert_eq!(
            alloc.status().allocated_frames,
            0,
            "the callback's frame came back"
        );
        assert_eq!(deletes.load(Ordering::SeqCst), 1, "torn down");
        drop(sub);
    });
}

/// A waker that owns a frame (say, a task holding one).
struct Holding(#[allow(dead_code)] Mutex<Option<Frame>>);

impl Wake for Holding {
    fn wake(self: Arc<Self>) {}
}

/// F3: polling a subscription with a new waker drops the old one after the registry lock
/// (dropping it may free a frame, whose delivery takes that lock).
#[test]
fn replacing_a_subscription_waker_that_owns_a_frame_does_not_deadlock() {
    within("F3 register_waker", || {
        let alloc = Allocator::new(&framing(2), Memory::NonPaged).unwrap();
        let mut ev = alloc.free_frame_events().unwrap();
        let w1 = Waker::from(Arc::new(Holding(Mutex::new(Some(
            alloc.try_allocate().unwrap(),
        )))));
        assert!(poll_next(&mut ev, &w1).is_pending());
        drop(w1); // the registry holds the only reference, and through it the frame
        // Replacing it frees the frame: an event, seen by the re-check.
        assert_eq!(poll_next(&mut ev, Waker::noop()), Poll::Ready(Ok(())));
        assert_eq!(alloc.status().allocated_frames, 0);
    });
}

/// F3: dropping a subscription whose registered waker owns a frame, and a spent one-shot's.
#[test]
fn dropping_a_subscription_whose_waker_owns_a_frame_does_not_deadlock() {
    within("F3 unsubscribe waker", || {
        let alloc = Allocator::new(&framing(2), Memory::NonPaged).unwrap();
        let mut ev = alloc.free_frame_events().unwrap();
        let w = Waker::from(Arc::new(Holding(Mutex::new(Some(
            alloc.try_allocate().unwrap(),
        )))));
        assert!(poll_next(&mut ev, &w).is_pending());
        drop(w);
        drop(ev);
        assert_eq!(alloc.status().allocated_frames, 0);
    });
}

/// F4: on the worker, a FREEFRAME waker that panics while the worker delivers the event of a
/// deferred frame (its request went away) must not lose the rest of the deferred chain, nor
/// the teardown.
#[test]
fn worker_keeps_deferred_frames_when_a_subscriber_waker_panics() {
    within("F4", || {
        // Another allocator whose callback keeps the worker busy, so that the requests
        // below go away between the Dispatch-level frees and the worker's pass.
        let stall = Allocator::new(&framing(1), Memory::NonPaged).unwrap();
        let _stall_sub = stall
            .on_free_frame(|| std::thread::sleep(Duration::from_millis(300)))
            .unwrap();
        let deletes = Arc::new(AtomicUsize::new(0));
        let alloc =
            Allocator::with_vendor(&framing(3), Arc::new(Counted(deletes.clone()))).unwrap();
        let mut bad = alloc.free_frame_events().unwrap();
        let bad_waker = Waker::from(Arc::new(Panicky));
        assert!(poll_next(&mut bad, &bad_waker).is_pending());
        let f0 = alloc.try_allocate().unwrap();
        let f1 = alloc.try_allocate().unwrap();
        let f2 = alloc.try_allocate().unwrap();
        let mut r1 = Box::pin(alloc.allocate());
        let mut r2 = Box::pin(alloc.allocate());
        assert!(
            r1.as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        assert!(
            r2.as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        {
            let _d = raise_to_dispatch();
            drop(stall.try_allocate().unwrap()); // the worker delivers it: busy 300 ms
            std::thread::sleep(Duration::from_millis(20));
            drop(f0); // requests pending: deferred to the worker
            drop(f1);
        }
        drop(r1); // the requests go away before the worker's pass
        drop(r2);
        assert!(
            eventually(|| alloc.status().allocated_frames == 1),
            "deferred frames lost: {} allocated, only f2 is held",
            alloc.status().allocated_frames
        );
        drop(f2);
        alloc.close();
        assert!(
            eventually(|| deletes.load(Ordering::SeqCst) == 1),
            "never torn down"
        );
        assert_eq!(alloc.status().allocated_frames, 0);
        drop(bad);
    });
}

/// The request header of a one-shot FREEFRAME enable.
fn oneshot(alloc: &Allocator) -> ks_alloc::FreeFrameEvents {
    use ks_sys::{
        KSEVENT_STREAMALLOCATOR_FREEFRAME, KSEVENT_TYPE_ONESHOT, KSEVENTSETID_StreamAllocator,
    };
    let hdr = [
        &KSEVENTSETID_StreamAllocator.to_le_bytes()[..],
        &KSEVENT_STREAMALLOCATOR_FREEFRAME.to_le_bytes(),
        &KSEVENT_TYPE_ONESHOT.to_le_bytes(),
    ]
    .concat();
    alloc.enable_event(&hdr, &[]).unwrap().unwrap()
}

/// F5: a spent one-shot subscription is silent: later frees do not wake it (only close).
#[test]
fn spent_oneshot_is_not_woken_by_later_frees() {
    within("F5", || {
        let alloc = Allocator::new(&framing(2), Memory::NonPaged).unwrap();
        let mut one = oneshot(&alloc);
        let _other = alloc.on_free_frame(|| {}).unwrap(); // keeps deliveries going
        let (woken, w) = counter();
        drop(alloc.try_allocate().unwrap()); // its one event
        assert_eq!(poll_next(&mut one, &w), Poll::Ready(Ok(())));
        for _ in 0..20 {
            assert!(poll_next(&mut one, &w).is_pending(), "silent");
            drop(alloc.try_allocate().unwrap());
        }
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            0,
            "woken by frees after its event"
        );
        alloc.close();
        assert_eq!(woken.0.load(Ordering::SeqCst), 1, "close wakes it");
        assert_eq!(poll_next(&mut one, &w), Poll::Ready(Err(Status::Cancelled)));
    });
}

/// A waker that, when woken, subscribes to FREEFRAME (as a task polled inline by its wake
/// that then awaits `next_event()` would): it takes the event registry lock.
struct Subscribes(Allocator, AtomicUsize);

impl Wake for Subscribes {
    fn wake(self: Arc<Self>) {
        drop(self.0.free_frame_events());
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

/// A FREEFRAME callback's free that hands its frame to a pending request wakes that
/// request's waker after the delivery unlocked the registry, not under it.
#[test]
fn request_woken_by_a_callbacks_free_is_woken_after_the_registry_lock() {
    within("callback hand-off", || {
        let alloc = Allocator::new(&framing(2), Memory::NonPaged).unwrap();
        let first = alloc.try_allocate().unwrap();
        let stash = Arc::new(Mutex::new(Some(alloc.try_allocate().unwrap())));
        let waker = Arc::new(Subscribes(alloc.clone(), AtomicUsize::new(0)));
        let request: Arc<Mutex<Option<Pin<Box<ks_alloc::AllocateOwned>>>>> =
            Arc::new(Mutex::new(None));
        let (a, s, w, r) = (alloc.clone(), stash.clone(), waker.clone(), request.clone());
        let sub = alloc
            .on_free_frame(move || {
                let Some(frame) = s.lock().unwrap().take() else {
                    return;
                };
                // Take the frame just freed back, queue a request, then free the stashed
                // frame: it goes to the request.
                let kept = a.try_allocate().unwrap();
                let mut req = Box::pin(a.allocate_owned());
                let wk = Waker::from(w.clone());
                assert!(
                    req.as_mut()
                        .poll(&mut Context::from_waker(&wk))
                        .is_pending()
                );
                drop(frame);
                *r.lock().unwrap() = Some(req);
                drop(kept);
            })
            .unwrap();
        drop(first);
        assert_eq!(waker.1.load(Ordering::SeqCst), 1, "the request was woken");
        let mut req = request.lock().unwrap().take().unwrap();
        let got = req.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(matches!(got, Poll::Ready(Ok(_))), "{got:?}");
        drop(got);
        drop(sub);
        assert_eq!(alloc.status().allocated_frames, 0);
    });
}
