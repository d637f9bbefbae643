//! loom models, one per race (run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ks-alloc --release --lib loom_`).
//! Each uses 2-3 threads and 1-2 frames (the two free-list word models: 33 frames, 1-2 out).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::thread;

use crate::loom::Ordering;
use crate::{Allocator, Frame, Memory, PoolType, Status, raise_to_dispatch};

fn alloc(frames: u32) -> Allocator {
    let f = crate::framing::test_framing(PoolType::NON_PAGED, frames);
    Allocator::builder(&f)
        .memory(Memory::NonPaged)
        .max_waiters(4)
        .starvation_threshold(None)
        .build()
        .expect("allocator")
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r2 = runs.clone();
    b.check(move || {
        r2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    // Every model has at least two threads racing, so loom must explore several schedules.
    let n = runs.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("explored {n} interleavings");
    assert!(n > 1, "loom explored only {n} interleaving(s)");
}

/// A free racing with a request that is about to enqueue: the request must end up with the
/// frame (no lost wake-up), whichever side goes first.
#[test]
fn loom_free_vs_request_enqueue() {
    model(|| {
        let a = alloc(1);
        let f = a.try_allocate().expect("frame");
        let a2 = a.clone();
        let t = thread::spawn(move || {
            let g = block_on(a2.allocate()).expect("request completes");
            drop(g);
        });
        drop(f);
        t.join().expect("join");
        let s = a.status();
        assert_eq!(s.allocated_frames, 0);
        assert_eq!(s.pending, 0);
    });
}

/// Two frames, two requests, two frees in any interleaving: both requests complete and
/// every frame comes home.
#[test]
fn loom_two_frames_two_waiters() {
    model(|| {
        let a = alloc(2);
        let f1 = a.try_allocate().expect("frame");
        let f2 = a.try_allocate().expect("frame");
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let a = a.clone();
                thread::spawn(move || drop(block_on(a.allocate()).expect("request completes")))
            })
            .collect();
        drop(f1);
        drop(f2);
        for w in waiters {
            w.join().expect("join");
        }
        assert_eq!(a.status().allocated_frames, 0);
        assert_eq!(a.status().pending, 0);
    });
}

/// A pending request cancelled while a free hands it the frame: the frame is not lost.
#[test]
fn loom_cancel_vs_handoff() {
    model(|| {
        let a = alloc(1);
        let f = a.try_allocate().expect("frame");
        let a2 = a.clone();
        let t = thread::spawn(move || {
            let waker = futures_noop();
            let mut cx = Context::from_waker(&waker);
            let mut fut = pin!(a2.allocate());
            if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
                drop(r);
            }
            // dropped here: cancel (passing on a frame granted meanwhile)
        });
        drop(f);
        t.join().expect("join");
        assert_eq!(a.status().allocated_frames, 0);
        assert_eq!(a.status().pending, 0);
        assert!(a.try_allocate().is_ok(), "frame back on the free list");
    });
}

/// Close racing with allocations through both interfaces: no frame is lost, a request either
/// gets a frame or fails cleanly, and the vendor-style teardown happens exactly once.
#[test]
fn loom_close_vs_allocate() {
    model(|| {
        let a = alloc(1);
        let a2 = a.clone();
        let t = thread::spawn(move || {
            match a2.try_allocate() {
                Ok(f) => drop(f),
                Err(crate::TryAllocateError::Closed) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
            match block_on(a2.allocate()) {
                Ok(f) => drop(f),
                Err(Status::InvalidDeviceState(_)) | Err(Status::Cancelled) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        });
        a.close();
        t.join().expect("join");
        let s = a.status();
        assert!(s.closed);
        assert_eq!(s.allocated_frames, 0);
        assert!(a.try_allocate().is_err());
    });
}

/// The function table and a queued request contend for the last frame: each gets it in turn,
/// never both at once.
#[test]
fn loom_two_interfaces_last_frame() {
    model(|| {
        let a = alloc(1);
        let held = Arc::new(AtomicBool::new(false));
        let (a2, held2) = (a.clone(), held.clone());
        let t = thread::spawn(move || {
            let g = block_on(a2.allocate()).expect("request completes");
            assert!(!held2.swap(true, Ordering::SeqCst), "two holders");
            held2.store(false, Ordering::SeqCst);
            drop(g);
        });
        if let Ok(f) = a.try_allocate() {
            assert!(!held.swap(true, Ordering::SeqCst), "two holders");
            held.store(false, Ordering::SeqCst);
            drop(f);
        }
        t.join().expect("join");
        assert_eq!(a.status().allocated_frames, 0);
    });
}

/// A Dispatch-level free while a request pends defers the hand-off to the worker (played by a
/// third thread): the request completes, exactly one hand-off, nothing lost.
#[test]
fn loom_dispatch_free_vs_worker() {
    model(|| {
        let a = alloc(1);
        let f = a.try_allocate().expect("frame");
        request_vs_dispatch_free(&a, f);
        assert_eq!(a.status().allocated_frames, 0);
        assert_eq!(a.status().pending, 0);
    });
}

/// `WAITERS` outliving the queue: after a hand-off emptied it, a Dispatch-level free (which
/// meets the stale flags and tries the waiter lock) races a new request (which finds the flags
/// set and writes nothing to the free list), with the worker on a third thread. The request
/// gets the frame whichever goes first, and nothing is lost.
#[test]
fn loom_stale_waiters_free_vs_request() {
    model(|| {
        let a = alloc(1);
        let f = a.try_allocate().expect("frame");
        // Serve one request, leaving the flags set with the queue empty.
        let waker = futures_noop();
        let mut cx = Context::from_waker(&waker);
        let g = {
            let mut first = pin!(a.allocate());
            assert!(first.as_mut().poll(&mut cx).is_pending());
            drop(f);
            match first.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(g)) => g,
                _ => panic!("the free hands the frame to the pending request"),
            }
        };
        request_vs_dispatch_free(&a, g);
        let s = a.status();
        assert_eq!(s.allocated_frames, 0);
        assert_eq!(s.pending, 0);
        assert!(a.try_allocate().is_ok(), "frame back on the free list");
    });
}

/// A request (completed, then its frame dropped) and a Dispatch-level free of `f` on two
/// threads, with the library worker played by the model's main thread until the request is
/// done; then both threads are joined and nothing is left scheduled.
fn request_vs_dispatch_free(a: &Allocator, f: Frame) {
    let done = Arc::new(AtomicUsize::new(0));
    let (a2, done2) = (a.clone(), done.clone());
    let requester = thread::spawn(move || {
        let g = block_on(a2.allocate()).expect("request completes");
        drop(g);
        done2.store(1, Ordering::SeqCst);
    });
    let freer = thread::spawn(move || {
        let _level = raise_to_dispatch();
        drop(f);
    });
    let inner = a.inner.clone();
    while done.load(Ordering::SeqCst) == 0 {
        if !crate::worker::run_scheduled(&inner) {
            thread::yield_now();
        }
    }
    freer.join().expect("join");
    requester.join().expect("join");
    while crate::worker::run_scheduled(&inner) {}
}

fn futures_noop() -> Waker {
    Waker::noop().clone()
}

/// A loom-aware `block_on`: parks the loom thread until woken.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// Two threads take and return frames of a 2-frame list concurrently, each free starting
/// from its allocation's hint (so a hint may be exact, or stale because the other thread moved
/// the word), while each asserts that no frame is ever held twice; afterwards every frame is
/// home and the diagnostics snapshot says so.
#[test]
fn loom_free_list_hinted_reuse() {
    use crate::freelist::FreeList;
    model(|| {
        let l = Arc::new(FreeList::new(2));
        let held = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let worker = |l: Arc<FreeList>, held: Arc<[AtomicBool; 2]>| {
            move || {
                for _ in 0..2 {
                    if let Ok(t) = l.pop_hinted() {
                        let i = t.index as usize;
                        // Relaxed: loom checks the exclusivity itself; the flag only detects it.
                        assert!(
                            !held[i].swap(true, Ordering::Relaxed),
                            "frame {i} held twice"
                        );
                        held[i].store(false, Ordering::Relaxed);
                        l.push_hinted(t.index, true, t.hint);
                    }
                }
            }
        };
        let t = thread::spawn(worker(l.clone(), held.clone()));
        worker(l.clone(), held.clone())();
        t.join().expect("worker");
        let mut free = [false; 2];
        l.snapshot_free(&mut free);
        assert_eq!(free, [true, true], "every frame home");
        assert_eq!(l.free_count(), 2);
    });
}

/// Free-list words: a free into word 1 races with a request's scan, which flags word 0 and
/// then word 1 (under the waiter lock). Exactly one side wins: the scan takes the frame, or the
/// free sees `WAITERS` and diverts it — never both, never neither (a lost wake-up).
#[test]
fn loom_free_into_second_word_vs_scan() {
    use crate::freelist::{FreeList, Pop, PopOrWait, Push};
    model(|| {
        let l = Arc::new(FreeList::new(33));
        while let Pop::Frame(..) = l.pop() {}
        let l2 = l.clone();
        let t = thread::spawn(move || l2.push(32, true));
        let scan = l.pop_or_wait();
        let push = t.join().expect("freer");
        match (scan, push) {
            (PopOrWait::Frame(32, 0), Push::Pushed { finalize: false }) => {}
            (PopOrWait::Wait { .. }, Push::Diverted) => {}
            other => panic!("lost or doubled frame: {other:?}"),
        }
    });
}

/// Free-list words: the last frames of two words come home while the list closes, one of
/// them freed from a (now stale) hint. Exactly one of the three finalizes.
#[test]
fn loom_close_vs_last_frames_in_two_words() {
    use crate::freelist::{FreeList, Pop, Push};
    model(|| {
        let l = Arc::new(FreeList::new(33));
        let first = l.pop_hinted().expect("frame 0");
        let mut taken = vec![];
        while let Pop::Frame(i, _) = l.pop() {
            taken.push(i);
        }
        for &i in &taken[..31] {
            assert_eq!(l.push(i, true), Push::Pushed { finalize: false });
        }
        // Frames 0 (word 0, with its hint) and 32 (word 1) are out.
        let fin = Arc::new(AtomicUsize::new(0));
        let l0 = l.clone();
        let fin0 = fin.clone();
        let t0 = thread::spawn(move || {
            if l0.push_hinted(first.index, true, first.hint) == (Push::Pushed { finalize: true }) {
                fin0.fetch_add(1, Ordering::Relaxed);
            }
        });
        let l1 = l.clone();
        let fin1 = fin.clone();
        let t1 = thread::spawn(move || {
            if l1.push(32, true) == (Push::Pushed { finalize: true }) {
                fin1.fetch_add(1, Ordering::Relaxed);
            }
        });
        if l.close().1 {
            fin.fetch_add(1, Ordering::Relaxed);
        }
        t0.join().expect("freer 0");
        t1.join().expect("freer 32");
        assert_eq!(fin.load(Ordering::Relaxed), 1, "finalized exactly once");
    });
}

/// Thread frame cache: the owner caches its free (slot 0) while a request finds the list
/// empty, sets `WAITERS` and drains the caches. The frame ends with the request — taken from
/// the list, diverted to it by the owner (who saw the flag), or drained from the cache and
/// diverted — exactly once, and never stays cached (no lost wake-up).
#[test]
fn loom_cached_free_vs_request_enqueuing() {
    use crate::cache::{FrameCache, Put};
    use crate::freelist::{FreeList, PopOrWait, Push};
    model(|| {
        let l = Arc::new(FreeList::new(1));
        let c = Arc::new(FrameCache::new(2));
        let f = l.pop_hinted().expect("frame 0");
        let got = Arc::new(AtomicUsize::new(0));
        // A free that finds WAITERS hands the frame to the (only) request.
        let free = |l: &FreeList, got: &AtomicUsize, i: u32| match l.push(i, true) {
            Push::Diverted => {
                // Relaxed: read after join.
                got.fetch_add(1, Ordering::Relaxed);
            }
            Push::Pushed { .. } => {}
        };
        let (l1, c1, g1) = (l.clone(), c.clone(), got.clone());
        let owner = thread::spawn(move || {
            if c1.put_at(0, f.index, || l1.flagged()) != Put::Cached {
                free(&l1, &g1, f.index);
            }
        });
        match l.pop_or_wait() {
            PopOrWait::Frame(..) => {
                got.fetch_add(1, Ordering::Relaxed);
            }
            PopOrWait::Wait { flagged } => {
                assert!(flagged, "the list was unflagged");
                c.drain(|i| free(&l, &got, i));
            }
            PopOrWait::Closed => unreachable!("not closed"),
        }
        owner.join().expect("owner");
        assert_eq!(
            got.load(Ordering::Relaxed),
            1,
            "the request got the frame once"
        );
        assert_eq!(c.cached(), 0, "nothing cached while a request waits");
    });
}

/// Thread frame cache: the owner caches its free while the allocator closes (`CLOSED`, then
/// a drain). The frame comes home exactly once, and the list finalizes exactly once.
#[test]
fn loom_cached_free_vs_close() {
    use crate::cache::{FrameCache, Put};
    use crate::freelist::{FreeList, Push};
    model(|| {
        let l = Arc::new(FreeList::new(1));
        let c = Arc::new(FrameCache::new(1));
        let f = l.pop_hinted().expect("frame 0");
        let fin = Arc::new(AtomicUsize::new(0));
        let home = |l: &FreeList, fin: &AtomicUsize, i: u32| {
            if l.push(i, true) == (Push::Pushed { finalize: true }) {
                // Relaxed: read after join.
                fin.fetch_add(1, Ordering::Relaxed);
            }
        };
        let (l1, c1, f1) = (l.clone(), c.clone(), fin.clone());
        let owner = thread::spawn(move || {
            if c1.put_at(0, f.index, || l1.flagged()) != Put::Cached {
                home(&l1, &f1, f.index);
            }
        });
        if l.close().1 {
            fin.fetch_add(1, Ordering::Relaxed);
        }
        c.drain(|i| home(&l, &fin, i));
        owner.join().expect("owner");
        assert_eq!(fin.load(Ordering::Relaxed), 1, "finalized exactly once");
        assert_eq!(c.cached(), 0);
    });
}

/// Thread frame cache: a thief (a non-blocking allocate that found the list empty) races
/// the owner putting its frame and taking it back. Exactly one of them holds it at the end
/// of each step; the frame is never held twice nor lost.
#[test]
fn loom_cache_owner_vs_thief() {
    use crate::cache::{FrameCache, Put};
    model(|| {
        let c = Arc::new(FrameCache::new(1));
        let c1 = c.clone();
        let thief = thread::spawn(move || c1.steal());
        assert_eq!(c.put_at(0, 0, || false), Put::Cached, "no flag: cached");
        let mine = c.take_at(0);
        let stolen = thief.join().expect("thief");
        match (mine, stolen) {
            (Some(0), None) | (None, Some(0)) => {}
            other => panic!("frame held twice or lost: {other:?}"),
        }
        assert_eq!(c.cached(), 0);
    });
}

/// Thread frame cache at Dispatch level (`Inner::drain_cache_on_worker` and the drain in
/// `Inner::service`, mirrored on a bare list and cache): the request sets `WAITERS`, takes
/// what is cached now without the barrier (`take_all_now`), then leaves the full drain to
/// the worker with a Release swap of the drain flag and `schedule`'s swap of `in_worker`.
/// The worker already has a pass scheduled (`in_worker` set), which may run before the
/// request's `schedule` and still take the flag; the owner caches its free meanwhile. The
/// frame ends with the request exactly once and never stays cached.
#[test]
fn loom_dispatch_request_leaves_the_drain_to_the_worker() {
    dispatch_drain_model(Ordering::Release, Ordering::Acquire);
}

fn dispatch_drain_model(flag_set: Ordering, flag_take: Ordering) {
    use crate::cache::{FrameCache, Put};
    use crate::freelist::{FreeList, PopOrWait, Push};
    model(move || {
        let l = Arc::new(FreeList::new(1));
        let c = Arc::new(FrameCache::new(1));
        let f = l.pop_hinted().expect("frame 0");
        let in_worker = Arc::new(AtomicBool::new(true));
        let drain_flag = Arc::new(AtomicBool::new(false));
        let got = Arc::new(AtomicUsize::new(0));
        // A free that finds WAITERS hands the frame to the (only) request.
        let free = |l: &FreeList, got: &AtomicUsize, i: u32| {
            if l.push(i, true) == Push::Diverted {
                // Relaxed: read after join.
                got.fetch_add(1, Ordering::Relaxed);
            }
        };
        // One worker pass over the allocator (`service`).
        let pass = move |l: &FreeList,
                         c: &FrameCache,
                         iw: &AtomicBool,
                         df: &AtomicBool,
                         got: &AtomicUsize| {
            iw.swap(false, Ordering::AcqRel);
            if df.swap(false, flag_take) {
                c.drain(|i| free(l, got, i));
            }
        };
        let (l1, c1, iw1, df1, g1) = (
            l.clone(),
            c.clone(),
            in_worker.clone(),
            drain_flag.clone(),
            got.clone(),
        );
        let worker = thread::spawn(move || pass(&l1, &c1, &iw1, &df1, &g1));
        let (l2, c2, g2) = (l.clone(), c.clone(), got.clone());
        let owner = thread::spawn(move || {
            if c2.put_at(0, f.index, || l2.flagged()) != Put::Cached {
                free(&l2, &g2, f.index);
            }
        });
        let rescheduled = match l.pop_or_wait() {
            PopOrWait::Frame(..) => {
                got.fetch_add(1, Ordering::Relaxed);
                false
            }
            PopOrWait::Wait { flagged } => {
                assert!(flagged, "the list was unflagged");
                c.take_all_now(|i| free(&l, &got, i));
                drain_flag.swap(true, flag_set);
                !in_worker.swap(true, Ordering::AcqRel)
            }
            PopOrWait::Closed => unreachable!("not closed"),
        };
        worker.join().expect("worker");
        owner.join().expect("owner");
        if rescheduled {
            // The pass the request's `schedule` enqueued.
            pass(&l, &c, &in_worker, &drain_flag, &got);
        }
        assert_eq!(
            got.load(Ordering::Relaxed),
            1,
            "the request got the frame once"
        );
        assert_eq!(c.cached(), 0, "nothing cached while a request waits");
    });
}

/// A vendor of two 64-byte blocks handed out in turn (so that a slot reused after a free holds
/// another address), counting its deletes.
struct TwoBlocks(std::sync::Arc<std::sync::atomic::AtomicUsize>);

struct TwoBlocksCx {
    blocks: [std::ptr::NonNull<u8>; 2],
    next: std::sync::atomic::AtomicUsize,
}

// SAFETY: the blocks are only reached through the allocator's claim of one slot at a time.
unsafe impl Send for TwoBlocksCx {}
// SAFETY: as above.
unsafe impl Sync for TwoBlocksCx {}

const BLOCK: std::alloc::Layout = match std::alloc::Layout::from_size_align(64, 8) {
    Ok(l) => l,
    Err(_) => panic!("a valid layout"),
};

// SAFETY: each block is 64 zeroed bytes, live until `delete`; with one slot, at most one is
// outstanding at a time.
unsafe impl crate::VendorAllocator for TwoBlocks {
    type Context = TwoBlocksCx;
    fn initialize(&self, _: &crate::Framing) -> Result<TwoBlocksCx, Status> {
        // SAFETY: a non-zero size.
        let block = || std::ptr::NonNull::new(unsafe { std::alloc::alloc_zeroed(BLOCK) });
        Ok(TwoBlocksCx {
            blocks: [block().expect("memory"), block().expect("memory")],
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }
    fn allocate(&self, cx: &TwoBlocksCx) -> Option<std::ptr::NonNull<u8>> {
        // Not a loom atomic: a counter of this run's own, only the claimer touches it.
        let n = cx.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(cx.blocks[n % 2])
    }
    fn free(&self, _: &TwoBlocksCx, _: std::ptr::NonNull<u8>) {}
    fn delete(&self, cx: TwoBlocksCx) {
        for b in cx.blocks {
            // SAFETY: allocated in `initialize` with this layout.
            unsafe { std::alloc::dealloc(b.as_ptr(), BLOCK) };
        }
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn two_blocks() -> (Allocator, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let deletes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = crate::framing::test_framing(PoolType::NON_PAGED, 1);
    let a = Allocator::builder(&f)
        .vendor(Arc::from_std(
            std::sync::Arc::new(TwoBlocks(deletes.clone())) as std::sync::Arc<dyn crate::DynVendor>,
        ))
        .max_waiters(4)
        .starvation_threshold(None)
        .build()
        .expect("allocator");
    (a, deletes)
}

/// Two racing raw frees of a vendor's address `x`, while the slot, once home, is reused for
/// another address `y` and made raw again: exactly one free of `x` wins, and the loser never
/// frees `y` (without the state's raw generation, a loser that looked the slot up before the
/// winner's free could win its `RAW → HELD` CAS on `y`'s raw period).
#[test]
fn loom_racing_raw_frees_of_a_reused_vendor_slot() {
    model(|| {
        let (a, _) = two_blocks();
        let x = a.try_allocate().expect("frame").into_raw();
        let free_x = |a: &Allocator| {
            let a = a.clone();
            thread::spawn(move || a.free_raw(x).is_ok())
        };
        let (t1, t2) = (free_x(&a), free_x(&a));
        let y = a.try_allocate().ok().map(Frame::into_raw);
        let wins = usize::from(t1.join().expect("join")) + usize::from(t2.join().expect("join"));
        assert_eq!(wins, 1, "exactly one free of x");
        if let Some(y) = y {
            assert_ne!(x, y, "the vendor's other block");
            assert!(
                a.free_raw(y).is_ok(),
                "y stayed outstanding: no loser freed it"
            );
        }
        assert_eq!(a.status().allocated_frames, 0);
    });
}

/// The last frame comes home at Dispatch level after close: the teardown (the vendor's
/// `delete`) is left to the worker, played by this thread, which runs it exactly once.
#[test]
fn loom_dispatch_last_free_leaves_the_teardown_to_the_worker() {
    model(|| {
        let (a, deletes) = two_blocks();
        let f = a.try_allocate().expect("frame");
        let inner = a.inner.clone();
        drop(a); // closed, one frame out
        let freer = thread::spawn(move || {
            let _level = raise_to_dispatch();
            drop(f);
        });
        while deletes.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            if !crate::worker::run_scheduled(&inner) {
                thread::yield_now();
            }
        }
        freer.join().expect("join");
        while crate::worker::run_scheduled(&inner) {}
        assert_eq!(deletes.load(std::sync::atomic::Ordering::SeqCst), 1);
    });
}
