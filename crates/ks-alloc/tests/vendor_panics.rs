//! Vendor callbacks that panic or misbehave: the allocator contains them, so that no frame
//! slot is lost, no request hangs, and the allocator recovers fully (reviewer's findings on
//! the vendor path: a panicking `allocate` on the worker's retry, in a freer's hand-off, in a
//! caller's own allocate; a panicking `free`; a panicking `delete` in `close`; a misaligned
//! frame for a queued request; the teardown of a Dispatch-level last free).
#![cfg(not(loom))]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use ks_alloc::{
    Alignment, Allocator, Framing, Level, PoolType, Status, VendorAllocator, current_level,
    raise_to_dispatch,
};

fn framing(frames: u32, align: Alignment) -> Framing {
    Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames,
        frame_size: 64,
        alignment: align,
    }
}

/// Heap frames; each knob makes one callback misbehave.
#[derive(Default)]
struct Knobs {
    dry: AtomicBool,
    panic_alloc: AtomicBool,
    panic_free: AtomicBool,
    panic_delete: AtomicBool,
    /// How many of the next frames are misaligned (`usize::MAX`: all).
    misalign: AtomicUsize,
    alloc_panics: AtomicUsize,
    /// Frames handed out and not yet freed (panicking frees free the block first).
    live: AtomicUsize,
    deletes: AtomicUsize,
    /// The level and thread `delete` ran on.
    deleted_on: Mutex<Option<(Level, std::thread::ThreadId)>>,
}

struct V(Arc<Knobs>);

// SAFETY: each frame is a distinct zeroed heap block of frame_size + 1 bytes until freed
// (a misaligned frame starts one byte in).
unsafe impl VendorAllocator for V {
    type Context = std::alloc::Layout;
    fn initialize(&self, f: &Framing) -> Result<std::alloc::Layout, Status> {
        Ok(std::alloc::Layout::from_size_align(
            f.frame_size as usize + 1,
            f.alignment.bytes() as usize,
        )
        .unwrap())
    }
    fn allocate(&self, l: &std::alloc::Layout) -> Option<NonNull<u8>> {
        if self.0.panic_alloc.load(SeqCst) {
            self.0.alloc_panics.fetch_add(1, SeqCst);
            panic!("vendor allocate panics (on purpose)");
        }
        if self.0.dry.load(SeqCst) {
            return None;
        }
        // SAFETY: non-zero size.
        let p = NonNull::new(unsafe { std::alloc::alloc_zeroed(*l) })?;
        self.0.live.fetch_add(1, SeqCst);
        let misalign = self.0.misalign.load(SeqCst);
        if misalign > 0 {
            if misalign != usize::MAX {
                self.0.misalign.store(misalign - 1, SeqCst);
            }
            // SAFETY: one spare byte.
            return Some(unsafe { NonNull::new_unchecked(p.as_ptr().add(1)) });
        }
        Some(p)
    }
    fn free(&self, l: &std::alloc::Layout, p: NonNull<u8>) {
        let base = (p.as_ptr() as usize) & !(l.align() - 1);
        // SAFETY: from `allocate` (possibly one byte in).
        unsafe { std::alloc::dealloc(base as *mut u8, *l) };
        self.0.live.fetch_sub(1, SeqCst);
        if self.0.panic_free.load(SeqCst) {
            panic!("vendor free panics (on purpose)");
        }
    }
    fn delete(&self, _l: std::alloc::Layout) {
        self.0.deletes.fetch_add(1, SeqCst);
        *self.0.deleted_on.lock().unwrap() = Some((current_level(), std::thread::current().id()));
        if self.0.panic_delete.load(SeqCst) {
            panic!("vendor delete panics (on purpose)");
        }
    }
}

/// A vendor allocator of `frames` frames, its knobs, and the vendor `Arc` (whose strong
/// count tells whether the allocator's state was freed).
fn vendor(frames: u32, align: Alignment) -> (Allocator, Arc<Knobs>, std::sync::Weak<V>) {
    let k = Arc::new(Knobs::default());
    let v = Arc::new(V(k.clone()));
    let weak = Arc::downgrade(&v);
    let a = Allocator::builder(&framing(frames, align))
        .vendor(v)
        .starvation_threshold(None)
        .build()
        .unwrap();
    (a, k, weak)
}

/// `n` seconds of a bound that only a hang exceeds: 90 times longer under Miri, which runs
/// the worker's 50 ms retries, and everything else, far slower.
fn secs(n: u64) -> Duration {
    Duration::from_secs(if cfg!(miri) { n * 90 } else { n })
}

/// Waits for `cond`, failing after a bound that only a hang exceeds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let patience = secs(10);
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < patience, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// After close and the last handle: `delete` exactly once, and the allocator's state freed
/// (the vendor `Arc` it held dropped).
fn assert_torn_down(a: Allocator, k: &Knobs, weak: &std::sync::Weak<V>) {
    a.close();
    drop(a);
    wait_until("the teardown", || weak.strong_count() == 0);
    assert_eq!(k.deletes.load(SeqCst), 1, "delete exactly once");
    assert_eq!(k.live.load(SeqCst), 0, "every vendor frame freed");
}

#[test]
fn a_vendor_allocate_panicking_on_the_workers_retry_loses_no_slot() {
    let (a, k, weak) = vendor(3, Alignment::BYTE);
    k.dry.store(true, SeqCst);
    let b = a.clone();
    let waiter =
        std::thread::spawn(move || b.allocate_blocking(Some(secs(10))).map(|f| f.into_raw()));
    wait_until("the request queues", || a.status().pending == 1);
    // The vendor panics on several of the worker's 50 ms retries, then recovers.
    k.panic_alloc.store(true, SeqCst);
    wait_until("three panicking retries", || {
        k.alloc_panics.load(SeqCst) >= 3
    });
    k.panic_alloc.store(false, SeqCst);
    k.dry.store(false, SeqCst);
    let addr = waiter
        .join()
        .unwrap()
        .expect("the pending request is served");
    let status = a.status();
    assert_eq!(status.allocated_frames, 1, "no phantom frames: {status:?}");
    assert_eq!(a.outstanding().len(), 1, "{:?}", a.outstanding());
    let (f1, f2) = (a.try_allocate().unwrap(), a.try_allocate().unwrap());
    assert!(a.try_allocate().is_err(), "three slots, all out");
    a.free_raw(addr).unwrap();
    drop((f1, f2));
    assert_eq!(a.status().allocated_frames, 0);
    assert_torn_down(a, &k, &weak);
}

#[test]
fn a_vendor_allocate_panicking_in_a_freers_hand_off_loses_no_slot() {
    let (a, k, weak) = vendor(1, Alignment::BYTE);
    // A FREEFRAME subscriber: the free path takes a reference of its own for the events.
    let events = a.on_free_frame(|| {}).unwrap();
    let held = a.try_allocate().unwrap();
    let b = a.clone();
    let waiter = std::thread::spawn(move || b.allocate_blocking(Some(secs(10))).map(|f| f.addr()));
    wait_until("the request queues", || a.status().pending == 1);
    k.panic_alloc.store(true, SeqCst);
    // The free hands the slot to the request: the vendor's allocate panics. The freer is not
    // the one allocating, so the panic is contained, and the slot kept for the request.
    let freed = catch_unwind(AssertUnwindSafe(|| drop(held)));
    assert!(
        freed.is_ok(),
        "the freer is not unwound by the vendor's panic"
    );
    assert!(k.alloc_panics.load(SeqCst) >= 1);
    k.panic_alloc.store(false, SeqCst);
    // The worker's retry serves the request.
    let r = waiter.join().unwrap();
    assert!(r.is_ok(), "served once the vendor recovers: {r:?}");
    assert_eq!(a.status().allocated_frames, 0);
    assert!(a.try_allocate().is_ok(), "the slot is usable");
    drop(events);
    assert_torn_down(a, &k, &weak);
}

#[test]
fn a_vendor_allocate_panicking_in_a_callers_allocate_reaches_it_and_the_slot_comes_back() {
    let (a, k, weak) = vendor(1, Alignment::BYTE);
    k.panic_alloc.store(true, SeqCst);
    assert!(catch_unwind(AssertUnwindSafe(|| a.try_allocate())).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| a.allocate_blocking(Some(secs(2))))).is_err());
    let fut = catch_unwind(AssertUnwindSafe(|| ks_alloc::bench::block_on(a.allocate())));
    assert!(fut.is_err(), "the future's poll unwinds");
    k.panic_alloc.store(false, SeqCst);
    assert_eq!(a.status().allocated_frames, 0);
    assert!(a.outstanding().is_empty());
    let f = a.try_allocate().expect("the only slot came back");
    drop(f);
    assert_torn_down(a, &k, &weak);
}

#[test]
fn a_vendor_free_panicking_returns_the_slot_and_reaches_the_freer() {
    let (a, k, weak) = vendor(1, Alignment::BYTES_64);
    let f = a.try_allocate().unwrap();
    k.panic_free.store(true, SeqCst);
    assert!(
        catch_unwind(AssertUnwindSafe(|| drop(f))).is_err(),
        "reaches the freer"
    );
    // The raw free too.
    k.panic_free.store(false, SeqCst);
    let addr = a.try_allocate().expect("the slot came back").into_raw();
    k.panic_free.store(true, SeqCst);
    assert!(catch_unwind(AssertUnwindSafe(|| a.free_raw(addr))).is_err());
    k.panic_free.store(false, SeqCst);
    assert_eq!(a.status().allocated_frames, 0);
    assert!(
        a.free_raw(addr).is_err(),
        "freed once: a second free is refused"
    );
    // A misaligned frame handed back to a panicking free: the slot comes back too.
    k.misalign.store(usize::MAX, SeqCst);
    k.panic_free.store(true, SeqCst);
    assert!(catch_unwind(AssertUnwindSafe(|| a.try_allocate())).is_err());
    k.misalign.store(0, SeqCst);
    k.panic_free.store(false, SeqCst);
    let f = a.try_allocate().expect("the slot came back");
    drop(f);
    assert_torn_down(a, &k, &weak);
}

#[test]
fn a_vendor_delete_panicking_in_close_wakes_the_cancelled_requests() {
    let (a, k, weak) = vendor(1, Alignment::BYTE);
    k.dry.store(true, SeqCst);
    let (tx, rx) = mpsc::channel();
    let b = a.clone();
    std::thread::spawn(move || {
        let _ = tx.send(b.allocate_blocking(None).map(|f| f.addr()));
    });
    wait_until("the request queues", || a.status().pending == 1);
    k.panic_delete.store(true, SeqCst);
    let closed = catch_unwind(AssertUnwindSafe(|| a.close()));
    assert!(closed.is_err(), "the delete panic reaches close's caller");
    let r = rx
        .recv_timeout(secs(10))
        .expect("the cancelled request is woken");
    assert!(matches!(r, Err(Status::Cancelled)), "{r:?}");
    assert_eq!(k.deletes.load(SeqCst), 1);
    drop(a);
    wait_until("the allocator is freed", || weak.strong_count() == 0);
    assert_eq!(k.deletes.load(SeqCst), 1, "exactly once");
}

#[test]
fn a_vendor_delete_panicking_at_the_last_free_frees_the_allocator() {
    let (a, k, weak) = vendor(1, Alignment::BYTE);
    let f = a.try_allocate().unwrap();
    drop(a);
    k.panic_delete.store(true, SeqCst);
    assert!(
        catch_unwind(AssertUnwindSafe(|| drop(f))).is_err(),
        "reaches the freer"
    );
    assert_eq!(k.deletes.load(SeqCst), 1);
    assert_eq!(weak.strong_count(), 0, "not leaked");
}

#[test]
fn a_misaligned_frame_for_a_queued_request_fails_it_with_invalid_parameter() {
    let (a, k, weak) = vendor(1, Alignment::BYTES_64);
    let held = a.try_allocate().unwrap();
    // Three requests: a blocked thread, then two futures behind it.
    let b = a.clone();
    let blocked = std::thread::spawn(move || b.allocate_blocking(Some(secs(10))).map(|f| f.addr()));
    wait_until("the first request queues", || a.status().pending == 1);
    let mut second = Box::pin(a.allocate());
    let mut third = Box::pin(a.allocate());
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(second.as_mut().poll(&mut cx).is_pending());
    assert!(third.as_mut().poll(&mut cx).is_pending());
    assert_eq!(a.status().pending, 3);
    // The free hands the slot to the oldest: the vendor misaligns for it, and only for it.
    k.misalign.store(1, SeqCst);
    let t0 = Instant::now();
    drop(held);
    k.misalign.store(0, SeqCst);
    let r = blocked.join().unwrap();
    let Err(Status::InvalidParameter(why)) = &r else {
        panic!("expected STATUS_INVALID_PARAMETER, got {r:?}");
    };
    assert!(
        why.contains("aligned") && why.contains("64"),
        "names the alignment: {why}"
    );
    assert!(why.contains("0x"), "names the address: {why}");
    assert!(t0.elapsed() < secs(5), "at once, not after the timeout");
    // The next requests keep their order: the second is served (by the free's retry or the
    // worker's), the third waits for it.
    let mut served = None;
    wait_until("the second request is served", || {
        if let std::task::Poll::Ready(r) = second.as_mut().poll(&mut cx) {
            served = Some(r);
        }
        served.is_some()
    });
    let frame = served.unwrap().expect("the second request gets the frame");
    assert!(
        third.as_mut().poll(&mut cx).is_pending(),
        "FIFO: the third still waits"
    );
    drop(frame);
    let third_result = loop {
        if let std::task::Poll::Ready(r) = third.as_mut().poll(&mut cx) {
            break r;
        }
    };
    drop(third_result.expect("then the third"));
    drop((second, third));
    assert_eq!(a.status().allocated_frames, 0);
    assert_torn_down(a, &k, &weak);
}

#[test]
fn a_misaligned_frame_for_a_future_on_the_workers_retry_fails_it() {
    let (a, k, weak) = vendor(1, Alignment::BYTES_64);
    k.dry.store(true, SeqCst);
    let mut fut = Box::pin(a.allocate());
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(fut.as_mut().poll(&mut cx).is_pending(), "no memory: queued");
    k.misalign.store(usize::MAX, SeqCst);
    k.dry.store(false, SeqCst);
    // The worker's retry gets the misaligned frame: the request completes with the error.
    let t0 = Instant::now();
    let r = loop {
        if let std::task::Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            break r;
        }
        assert!(t0.elapsed() < secs(10), "never completed");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(matches!(r, Err(Status::InvalidParameter(_))), "{r:?}");
    drop(fut);
    assert_eq!(a.status().pending, 0);
    k.misalign.store(0, SeqCst);
    drop(a.try_allocate().expect("the slot went back"));
    assert_torn_down(a, &k, &weak);
}

#[test]
fn a_dispatch_level_last_free_leaves_delete_to_the_worker_at_passive_level() {
    let (a, k, weak) = vendor(1, Alignment::BYTE);
    let f = a.try_allocate().unwrap();
    drop(a); // closed, one frame out
    {
        let _dispatch = raise_to_dispatch();
        // The last frame comes home at Dispatch level. (The worker may finish the teardown
        // before the next line runs: where and at which level `delete` ran is checked below.)
        drop(f);
    }
    wait_until("the worker's teardown", || weak.strong_count() == 0);
    assert_eq!(k.deletes.load(SeqCst), 1);
    let (level, thread) = k.deleted_on.lock().unwrap().expect("deleted");
    assert_eq!(level, Level::Passive);
    assert_ne!(thread, std::thread::current().id(), "on the worker");
}
