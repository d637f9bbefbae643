//! Vendor allocators: the KSALLOCATOR_DISPATCH contract the allocator object guarantees
//! (behaviours 16-18, 42), "no frame now", misaligned addresses, CommonBuffer capabilities.
#![cfg(not(loom))]

use std::future::Future;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use ks_alloc::{
    Alignment, Allocator, CommonBuffer, DefaultVendor, Framing, Memory, PoolType, Status,
    TryAllocateError, VendorAllocator,
};

fn framing(frames: u32, size: u32, align: Alignment) -> Framing {
    Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames,
        frame_size: size,
        alignment: align,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Init,
    Alloc(usize),
    Free(usize),
    Delete,
}

/// Records every call; frames are heap blocks; can be told to run dry or to misalign.
struct Recording {
    log: Mutex<Vec<Call>>,
    dry: AtomicBool,
    misalign: AtomicBool,
    fail_init: bool,
    live: AtomicUsize,
    /// Calls of `allocate`, dry ones included.
    tries: AtomicUsize,
}

impl Recording {
    fn new() -> Arc<Recording> {
        Arc::new(Recording {
            log: Mutex::new(vec![]),
            dry: AtomicBool::new(false),
            misalign: AtomicBool::new(false),
            fail_init: false,
            live: AtomicUsize::new(0),
            tries: AtomicUsize::new(0),
        })
    }
    fn log(&self) -> Vec<Call> {
        self.log.lock().unwrap().clone()
    }
}

/// The vendor handed to the allocator; the test keeps the `Arc` to inspect the log.
struct Rec(Arc<Recording>);

impl std::ops::Deref for Rec {
    type Target = Recording;
    fn deref(&self) -> &Recording {
        &self.0
    }
}

/// Context: an id the test checks is the one initialize returned, plus the block layout.
struct Cx {
    id: u64,
    layout: std::alloc::Layout,
}

// SAFETY: each frame is a distinct live, zeroed heap block of `frame_size` (+1 for the
// misaligned case) bytes until freed.
unsafe impl VendorAllocator for Rec {
    type Context = Cx;
    fn initialize(&self, f: &Framing) -> Result<Cx, Status> {
        self.log.lock().unwrap().push(Call::Init);
        if self.fail_init {
            return Err(Status::DeviceNotReady("device is off".into()));
        }
        let layout = std::alloc::Layout::from_size_align(
            f.frame_size as usize + 1,
            f.alignment.bytes() as usize,
        )
        .map_err(|e| Status::InvalidParameter(e.to_string().into()))?;
        Ok(Cx {
            id: 0xC0FFEE,
            layout,
        })
    }
    fn allocate(&self, cx: &Cx) -> Option<NonNull<u8>> {
        assert_eq!(cx.id, 0xC0FFEE, "only the initialize context");
        assert!(!self.log().contains(&Call::Delete), "nothing after delete");
        self.tries.fetch_add(1, Ordering::SeqCst);
        if self.dry.load(Ordering::SeqCst) {
            return None;
        }
        // SAFETY: non-zero size layout; zeroed, as the trait requires initialized bytes.
        let p = NonNull::new(unsafe { std::alloc::alloc_zeroed(cx.layout) })?;
        self.live.fetch_add(1, Ordering::SeqCst);
        let p = if self.misalign.load(Ordering::SeqCst) {
            // SAFETY: the block has one spare byte.
            unsafe { NonNull::new_unchecked(p.as_ptr().add(1)) }
        } else {
            p
        };
        self.log
            .lock()
            .unwrap()
            .push(Call::Alloc(p.as_ptr() as usize));
        Some(p)
    }
    fn free(&self, cx: &Cx, p: NonNull<u8>) {
        assert_eq!(cx.id, 0xC0FFEE);
        assert!(!self.log().contains(&Call::Delete), "nothing after delete");
        self.log
            .lock()
            .unwrap()
            .push(Call::Free(p.as_ptr() as usize));
        let base = (p.as_ptr() as usize) & !(cx.layout.align() - 1);
        // SAFETY: `base` is the block `allocate` returned (misaligned frames were offset by 1
        // from an aligned block).
        unsafe { std::alloc::dealloc(base as *mut u8, cx.layout) };
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
    fn delete(&self, cx: Cx) {
        assert_eq!(cx.id, 0xC0FFEE);
        self.log.lock().unwrap().push(Call::Delete);
    }
}

#[test]
fn initialize_once_first_delete_once_after_close_and_last_frame() {
    let v = Recording::new();
    let a = Allocator::with_vendor(
        &framing(2, 256, Alignment::BYTES_64),
        Arc::new(Rec(v.clone())),
    )
    .unwrap();
    assert_eq!(v.log(), [Call::Init]);
    let f1 = a.try_allocate().unwrap();
    let f2 = a.try_allocate().unwrap();
    assert_eq!(f1.addr() % 64, 0);
    drop(f1);
    a.close();
    assert!(!v.log().contains(&Call::Delete), "a frame is still out");
    drop(a);
    assert!(!v.log().contains(&Call::Delete));
    drop(f2);
    let log = v.log();
    assert_eq!(log.iter().filter(|c| **c == Call::Init).count(), 1);
    assert_eq!(log.iter().filter(|c| **c == Call::Delete).count(), 1);
    assert_eq!(log.last(), Some(&Call::Delete), "delete is the last call");
    assert_eq!(v.live.load(Ordering::SeqCst), 0);
}

#[test]
fn delete_runs_at_close_when_no_frame_is_out() {
    let v = Recording::new();
    let a =
        Allocator::with_vendor(&framing(1, 8, Alignment::BYTE), Arc::new(Rec(v.clone()))).unwrap();
    drop(a.try_allocate().unwrap());
    drop(a); // last handle: close, all home -> delete now
    assert_eq!(v.log().last(), Some(&Call::Delete));
}

#[test]
fn failing_initialize_fails_creation_and_nothing_else_is_called() {
    let v = Arc::new(Recording {
        fail_init: true,
        ..Arc::try_unwrap(Recording::new()).ok().unwrap()
    });
    let r = Allocator::with_vendor(&framing(1, 8, Alignment::BYTE), Arc::new(Rec(v.clone())));
    assert!(matches!(r, Err(Status::DeviceNotReady(_))));
    assert_eq!(v.log(), [Call::Init]);
}

#[test]
fn vendor_without_memory_fails_try_and_pends_requests_until_a_free() {
    let v = Recording::new();
    let a =
        Allocator::with_vendor(&framing(4, 64, Alignment::BYTE), Arc::new(Rec(v.clone()))).unwrap();
    let f = a.try_allocate().unwrap();
    v.dry.store(true, Ordering::SeqCst);
    let dry = a.try_allocate().unwrap_err();
    assert_eq!(dry, TryAllocateError::VendorEmpty);
    assert!(matches!(dry.status(), Status::Unsuccessful(_)));
    assert_eq!(
        a.status().failed_try_allocates,
        1,
        "a vendor's 'no frame now' is counted"
    );
    let mut req = Box::pin(a.allocate());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(
        req.as_mut().poll(&mut cx).is_pending(),
        "no frame now: pending"
    );
    // The failed claims (non-blocking, and the request's) handed out nothing: the peak
    // counts the one frame that was really out.
    assert_eq!(a.status().peak_allocated_frames, 1);
    v.dry.store(false, Ordering::SeqCst);
    drop(f); // the free retries the vendor for the pending request
    let Poll::Ready(Ok(g)) = req.as_mut().poll(&mut cx) else {
        panic!("the request must complete after the free")
    };
    assert_eq!(a.status().allocated_frames, 1);
    drop(g);
}

#[test]
fn misaligned_vendor_frames_are_refused_and_returned() {
    let v = Recording::new();
    let a = Allocator::with_vendor(
        &framing(2, 64, Alignment::BYTES_64),
        Arc::new(Rec(v.clone())),
    )
    .unwrap();
    v.misalign.store(true, Ordering::SeqCst);
    match a.try_allocate() {
        Err(
            e @ TryAllocateError::VendorMisaligned {
                addr,
                alignment: 64,
            },
        ) => {
            assert_ne!(addr % 64, 0);
            match Status::from(e) {
                Status::InvalidParameter(m) => assert!(m.contains("aligned to 64"), "{m}"),
                other => panic!("expected STATUS_INVALID_PARAMETER, got {other:?}"),
            }
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(v.live.load(Ordering::SeqCst), 0, "returned to the vendor");
    assert_eq!(a.status().allocated_frames, 0);
    assert_eq!(
        a.status().peak_allocated_frames,
        0,
        "a refused frame is no peak"
    );
    assert!(
        a.allocate_blocking(None).is_err(),
        "refused on the request path too"
    );
    assert_eq!(a.status().peak_allocated_frames, 0);
    v.misalign.store(false, Ordering::SeqCst);
    let f = a.try_allocate().unwrap();
    assert_eq!(f.addr() % 64, 0);
}

#[test]
fn raw_free_of_vendor_frames_is_checked() {
    let v = Recording::new();
    let a =
        Allocator::with_vendor(&framing(1, 64, Alignment::BYTE), Arc::new(Rec(v.clone()))).unwrap();
    let addr = a.try_allocate().unwrap().into_raw();
    assert!(a.free_raw(addr + 1).is_err());
    a.free_raw(addr).unwrap();
    assert!(a.free_raw(addr).is_err());
}

#[test]
fn default_vendor_is_the_default_allocator_behind_the_trait() {
    let a = Allocator::with_vendor(
        &framing(2, 4096, Alignment::BYTES_512),
        Arc::new(DefaultVendor {
            memory: Memory::NonPaged,
        }),
    )
    .unwrap();
    let f1 = a.try_allocate().unwrap();
    let f2 = a.try_allocate().unwrap();
    assert_eq!(f1.addr() % 512, 0);
    assert_eq!(f2.addr().abs_diff(f1.addr()), 4096, "one contiguous region");
    assert!(a.try_allocate().is_err());
}

#[test]
fn common_buffer_checks_capabilities_and_carves_one_region() {
    let dev = CommonBuffer {
        name: "dma0",
        max_frame_size: 4096,
        max_frames: 4,
        alignment: Alignment::BYTES_256,
    };
    let ok = framing(4, 1000, Alignment::BYTE);
    let a = Allocator::with_vendor(&ok, Arc::new(dev)).unwrap();
    assert!(a.offers_function_table());
    let fs: Vec<_> = (0..4).map(|_| a.try_allocate().unwrap()).collect();
    let min = fs.iter().map(|f| f.addr()).min().unwrap();
    let max = fs.iter().map(|f| f.addr()).max().unwrap();
    assert_eq!(max - min, 3 * 1024, "contiguous, stride rounded to 256");
    assert!(fs.iter().all(|f| f.addr() % 256 == 0));
    for bad in [
        framing(5, 1000, Alignment::BYTE),
        framing(1, 5000, Alignment::BYTE),
    ] {
        match Allocator::with_vendor(&bad, Arc::new(dev)) {
            Err(Status::NotSupported(m)) => assert!(m.contains("dma0")),
            other => panic!("expected NotSupported, got {other:?}"),
        }
    }
}

/// A vendor allocator of `frames` frames with one frame out, and `n` requests that queued
/// while the vendor had no memory (each polled once, pending); the vendor has memory again.
fn queued_while_dry(
    frames: u32,
    n: usize,
) -> (
    Arc<Recording>,
    Allocator,
    ks_alloc::Frame,
    Vec<std::pin::Pin<Box<ks_alloc::AllocateOwned>>>,
) {
    let v = Recording::new();
    let a = Allocator::with_vendor(
        &framing(frames, 64, Alignment::BYTE),
        Arc::new(Rec(v.clone())),
    )
    .unwrap();
    let f = a.try_allocate().unwrap();
    v.dry.store(true, Ordering::SeqCst);
    let mut cx = Context::from_waker(Waker::noop());
    let requests = (0..n)
        .map(|_| {
            let mut r = Box::pin(a.allocate_owned());
            assert!(r.as_mut().poll(&mut cx).is_pending(), "no memory: it waits");
            r
        })
        .collect();
    v.dry.store(false, Ordering::SeqCst);
    (v, a, f, requests)
}

#[test]
fn requests_stay_in_fifo_order_when_the_vendor_ran_dry_for_the_oldest() {
    let (v, a, f, mut rs) = queued_while_dry(2, 1);
    let mut r1 = rs.pop().unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    // The vendor has memory again, and a slot is free: it is r1's, not a newcomer's.
    assert_eq!(
        a.try_allocate().unwrap_err(),
        TryAllocateError::Empty,
        "a non-blocking allocate does not jump the queue"
    );
    let mut r2 = Box::pin(a.allocate());
    assert!(
        r2.as_mut().poll(&mut cx).is_pending(),
        "r2 queues behind r1"
    );
    let Poll::Ready(Ok(g1)) = r1.as_mut().poll(&mut cx) else {
        panic!("r2's arrival retried the vendor for r1 first")
    };
    assert!(r2.as_mut().poll(&mut cx).is_pending());
    drop(f); // the next free goes to r2
    let Poll::Ready(Ok(g2)) = r2.as_mut().poll(&mut cx) else {
        panic!("r2 got the free")
    };
    let s = a.status();
    // Two grants to pending requests: the retry for r1, the free for r2.
    assert_eq!((s.allocated_frames, s.pending, s.handoffs), (2, 0, 2));
    drop((g1, g2));
    assert_eq!(a.status().allocated_frames, 0);
    assert_eq!(v.live.load(Ordering::SeqCst), 0);
}

#[test]
fn a_new_request_retries_the_vendor_for_every_older_one_it_can() {
    let (_v, a, f, mut rs) = queued_while_dry(3, 2);
    let mut cx = Context::from_waker(Waker::noop());
    let (mut r2, mut r1) = (rs.pop().unwrap(), rs.pop().unwrap());
    // Two slots are free and the vendor has memory: the newcomer serves r1 and r2, then
    // finds nobody ahead and no slot left for itself (3 frames: f, r1's and r2's).
    let r3 = a.allocate_blocking(Some(std::time::Duration::from_millis(50)));
    assert!(matches!(r3, Err(Status::DeviceNotReady(_))), "{r3:?}");
    let (Poll::Ready(Ok(g1)), Poll::Ready(Ok(g2))) =
        (r1.as_mut().poll(&mut cx), r2.as_mut().poll(&mut cx))
    else {
        panic!("both older requests were served by the newcomer's retries")
    };
    // A request granted by a free and cancelled before it takes its frame: counters stay sane.
    let mut r4 = Box::pin(a.allocate());
    assert!(r4.as_mut().poll(&mut cx).is_pending());
    drop(f); // hands off to r4
    drop(r4); // gives the granted frame up
    let s = a.status();
    assert_eq!((s.allocated_frames, s.pending), (2, 0));
    assert!(s.handoffs <= 3, "{}", s.handoffs);
    // Nobody waits now: a non-blocking allocate gets the free slot.
    let g3 = a.try_allocate().expect("free, and nobody waits");
    drop((g1, g2, g3));
    assert_eq!(a.status().allocated_frames, 0);
}

#[test]
fn a_retried_grant_given_up_does_not_break_the_hand_off_count() {
    let (_v, a, f, mut rs) = queued_while_dry(2, 1);
    let r1 = rs.pop().unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let mut r2 = Box::pin(a.allocate());
    assert!(
        r2.as_mut().poll(&mut cx).is_pending(),
        "r1 was served first"
    );
    drop(r1); // granted by r2's retry, given up before it took the frame
    // Only r2's grant counts (the frame r1 gave up went on to r2); in a debug build the
    // give-up used to underflow the count and panic inside the drop.
    assert_eq!(a.status().handoffs, 1);
    // The frame r1 gave up went to r2, the next in line.
    let Poll::Ready(Ok(g)) = r2.as_mut().poll(&mut cx) else {
        panic!("r2 got the frame r1 gave up")
    };
    drop((f, g));
    assert_eq!(a.status().allocated_frames, 0);
}

#[test]
fn a_non_blocking_allocate_finds_the_free_slot_once_nobody_waits() {
    // Another thread keeps taking the waiter lock (as any `status()` call does): that must
    // not make a non-blocking allocate think requests are still waiting.
    let stop = Arc::new(AtomicBool::new(false));
    let mut cx = Context::from_waker(Waker::noop());
    // Under Miri a few rounds: the race this guards against needs many to show.
    let rounds = if cfg!(miri) { 3 } else { 2000 };
    for _ in 0..rounds {
        let (_v, a, f, mut rs) = queued_while_dry(2, 1);
        let mut r1 = rs.pop().unwrap();
        let (b, s) = (a.clone(), stop.clone());
        s.store(false, Ordering::SeqCst);
        let prober = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let _ = b.status();
            }
        });
        drop(f); // hands off to r1: the queue is empty again, one slot free
        let Poll::Ready(Ok(g)) = r1.as_mut().poll(&mut cx) else {
            panic!("r1 got the free")
        };
        let h = a.try_allocate();
        stop.store(true, Ordering::SeqCst);
        prober.join().unwrap();
        assert!(h.is_ok(), "a free slot and nobody waiting: {h:?}");
        assert_eq!(a.status().failed_try_allocates, 0);
        drop((g, h));
    }
}

#[test]
fn the_worker_retries_a_vendor_that_had_no_memory_when_no_frame_is_out() {
    // One frame, none out: no free will ever come, and no new request arrives.
    let v = Recording::new();
    let a = Allocator::builder(&framing(1, 64, Alignment::BYTE))
        .vendor(Arc::new(Rec(v.clone())))
        .starvation_threshold(None) // watched for the retry all the same
        .build()
        .unwrap();
    v.dry.store(true, Ordering::SeqCst);
    let b = a.clone();
    let waiter =
        std::thread::spawn(move || b.allocate_blocking(Some(std::time::Duration::from_secs(10))));
    while a.status().pending == 0 {
        std::thread::yield_now();
    }
    v.dry.store(false, Ordering::SeqCst);
    let f = waiter
        .join()
        .unwrap()
        .expect("the worker's scan retried the vendor for the request");
    assert_eq!(a.status().allocated_frames, 1);
    drop(f);
}

/// A waker that panics when woken (a caller's bug the allocator must survive).
struct PanickingWaker;
impl std::task::Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics (on purpose)");
    }
}

#[test]
fn a_panicking_waker_served_by_a_vendor_retry_strands_nobody() {
    let (v, a, f, _) = queued_while_dry(3, 0);
    drop(f);
    v.dry.store(true, Ordering::SeqCst);
    // R1: an async request whose waker panics. R2: a thread blocked behind it.
    let bad = Waker::from(Arc::new(PanickingWaker));
    let mut r1 = Box::pin(a.allocate_owned());
    assert!(
        r1.as_mut()
            .poll(&mut Context::from_waker(&bad))
            .is_pending()
    );
    let b = a.clone();
    let r2 =
        std::thread::spawn(move || b.allocate_blocking(Some(std::time::Duration::from_secs(10))));
    while a.status().pending < 2 {
        std::thread::yield_now();
    }
    v.dry.store(false, Ordering::SeqCst);
    // This request's arrival (or the worker's retry, whichever comes first) serves R1 and R2;
    // R1's waker panics, which must neither strand R2 nor unwind into this call.
    let mine = a
        .allocate_blocking(Some(std::time::Duration::from_secs(10)))
        .expect("the third frame");
    let g2 = r2
        .join()
        .expect("no panic")
        .expect("R2 was woken with its frame");
    let Poll::Ready(Ok(g1)) = r1.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
        panic!("R1 holds its grant")
    };
    drop((mine, g1, g2));
    // The worker survived: a Dispatch-level free still reaches a blocked request.
    let region =
        Allocator::new(&framing(1, 64, Alignment::BYTE), ks_alloc::Memory::NonPaged).unwrap();
    let held = region.try_allocate().unwrap();
    let c = region.clone();
    let waiter =
        std::thread::spawn(move || c.allocate_blocking(Some(std::time::Duration::from_secs(10))));
    while region.status().pending == 0 {
        std::thread::yield_now();
    }
    {
        let _g = ks_alloc::raise_to_dispatch();
        drop(held);
    }
    assert!(
        waiter.join().unwrap().is_ok(),
        "the worker handed the frame over"
    );
}

#[test]
fn a_slot_kept_for_waiting_requests_fires_no_free_frame_event() {
    let (v, a, f, mut rs) = queued_while_dry(2, 1);
    let fired = Arc::new(AtomicUsize::new(0));
    let counter = fired.clone();
    let _sub = a
        .on_free_frame(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    v.dry.store(true, Ordering::SeqCst);
    drop(f); // the vendor has no memory for the waiting request: the slot is kept for it
    assert_eq!(
        fired.load(Ordering::SeqCst),
        0,
        "no frame became free for anybody else"
    );
    assert_eq!(a.try_allocate().unwrap_err(), TryAllocateError::Empty);
    v.dry.store(false, Ordering::SeqCst);
    drop(rs.pop()); // the request goes away: now the slots are free for all
    assert!(a.try_allocate().is_ok());
}

#[test]
fn the_worker_retries_a_dry_vendor_every_tick_while_a_request_waits() {
    // One frame, none out, the vendor dry: only the worker's scan (every 50 ms) retries it.
    let v = Recording::new();
    let a = Allocator::builder(&framing(1, 64, Alignment::BYTE))
        .vendor(Arc::new(Rec(v.clone())))
        .starvation_threshold(None)
        .build()
        .unwrap();
    v.dry.store(true, Ordering::SeqCst);
    let mut cx = Context::from_waker(Waker::noop());
    let mut request = Box::pin(a.allocate());
    assert!(request.as_mut().poll(&mut cx).is_pending());
    assert_eq!(a.status().allocated_frames, 0, "no frame is out");
    // 20 retries take about 1 s at one per 50 ms tick; a scan ten times slower could not make
    // them within the 10 s bound. Polled, not timed: the bound only ends a failing run.
    let start = v.tries.load(Ordering::SeqCst);
    let want = 20;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while v.tries.load(Ordering::SeqCst) - start < want && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let retries = v.tries.load(Ordering::SeqCst) - start;
    assert!(
        retries >= want,
        "the worker retried the dry vendor {retries} times while the request waited"
    );
    assert_eq!(a.status().pending, 1, "still waiting: the vendor is dry");
    v.dry.store(false, Ordering::SeqCst);
    let f = loop {
        if let Poll::Ready(r) = request.as_mut().poll(&mut cx) {
            break r.expect("a retry served the request");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert_eq!(a.status().allocated_frames, 1);
    drop(f);
}

#[test]
fn zero_frames_are_refused_before_the_vendor_is_initialized() {
    let v = Recording::new();
    let r = Allocator::with_vendor(&framing(0, 64, Alignment::BYTE), Arc::new(Rec(v.clone())));
    match r {
        Err(Status::InvalidParameter(m)) => assert!(m.contains("Frames is 0"), "{m}"),
        other => panic!("expected STATUS_INVALID_PARAMETER, got {:?}", other.err()),
    }
    assert_eq!(v.log(), [], "initialize never ran");
}
