//! Per-thread frame caches: a frame freed by a thread waits in that thread's slot of its
//! allocator, and the same thread's next allocate takes it back, so a thread that allocates
//! and frees in turn (a pin's processing loop) pays one atomic read-modify-write per cycle
//! instead of two, and two such threads never touch each other's cache lines.
//!
//! A cached frame is *free*: it counts as free in the status, diagnostics list it as free, an
//! allocate (non-blocking or queued) that finds the free list empty takes it from whichever
//! thread cached it ([`FrameCache::steal`]), and it never sits in a cache while requests are pending or
//! after close. That last guarantee is the whole protocol.
//!
//! # The protocol
//!
//! Slot `t` of an allocator belongs to the thread with id `t` ([`thread_slot`]); only its
//! owner puts a frame in it, with plain stores. Anybody may take a frame out, with a CAS.
//!
//! * **Put** (the owner frees frame `f`): store `f | BUSY`; a *light* barrier; load the free
//!   list's word 0; if `WAITERS` and `CLOSED` are both clear, store `f` (the frame is now
//!   cached), else store `EMPTY` and free `f` the ordinary way. A slot holding `f | BUSY` is
//!   not free yet: nobody else takes it.
//! * **Drain** (after setting `WAITERS` on a request's way into the queue, or `CLOSED`): a
//!   *heavy* barrier; then every slot is emptied by CAS, waiting while one is `BUSY` (an
//!   owner between its two stores), and each frame found is freed the ordinary way (to the
//!   oldest request, or home after close).
//!
//! The two barriers make a Dekker pair: either the owner's load sees the flag, or the
//! drain's scan sees the owner's `BUSY` store (and then waits for its outcome). So no frame
//! is ever cached while a request waits or after close. On Linux the heavy barrier is
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every running thread of the
//! process execute a full fence, and the light one is a compiler fence: the put costs two
//! plain stores and a load, no fence instruction. Elsewhere, or where `membarrier` is
//! refused (old kernel, seccomp), both are `fence(SeqCst)`.
//!
//! The owner's last access to the allocator in a put that caches is its store of `f`: from
//! then on the frame is free and the allocator may be torn down (close drains it), and while
//! the slot says `BUSY` the frame is still outstanding, which keeps the allocator alive.
//!
//! # Thread ids
//!
//! Ids are small integers, given to a thread at its first free at Passive level (registering
//! the thread-exit destructor allocates, so never at Dispatch level) and returned to a
//! process-wide pool when it exits, so slots are reused and stay few. A thread whose id is
//! beyond an allocator's slots simply does not cache there.

use crate::loom::{AtomicU32, Ordering};
use crossbeam_utils::CachePadded;

/// Most slots per allocator (threads beyond them free to the list directly).
pub(crate) const MAX_SLOTS: u32 = 64;

const EMPTY: u32 = u32::MAX;
/// Set while the owner is between its two stores (frame indices are below `MAX_FRAMES`).
const BUSY: u32 = 1 << 31;

/// What [`FrameCache::put`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    /// Cached: the frame is free, and the caller must not touch the allocator again.
    Cached,
    /// Not cached because `flagged()` said requests may be pending or the allocator is
    /// closed: the caller still owns the frame, and frees it to the oldest request or home.
    Flagged,
    /// Not tried (this thread has no slot here, or its slot holds a frame): the caller still
    /// owns the frame.
    Skipped,
}

/// The cached frames of one allocator, one slot per thread id.
#[derive(Debug)]
pub(crate) struct FrameCache {
    slots: Box<[CachePadded<AtomicU32>]>,
    /// Whether the heavy barrier is `membarrier` (the light one then only a compiler fence).
    asym: bool,
}

impl FrameCache {
    /// A cache with `slots` slots (0: the allocator does not cache).
    pub(crate) fn new(slots: u32) -> FrameCache {
        let slots = slots.min(MAX_SLOTS);
        FrameCache {
            slots: (0..slots)
                .map(|_| CachePadded::new(AtomicU32::new(EMPTY)))
                .collect(),
            asym: slots > 0 && asym_barriers(),
        }
    }

    /// This thread's slot, if it has one here; `assign`: give the thread an id if it has
    /// none yet.
    #[inline(always)]
    fn own(&self, assign: bool) -> Option<&AtomicU32> {
        let t = thread_slot(assign)?;
        self.slots.get(t as usize).map(|s| &**s)
    }

    /// Owner: takes the frame this thread cached, if any. Never gives the thread an id (a
    /// thread without one has cached nothing), so it touches no lock and no heap.
    #[inline(always)]
    pub(crate) fn take(&self) -> Option<u32> {
        take_own(self.own(false)?)
    }

    /// Owner: caches frame `index` unless `flagged()` (read after the light barrier) says
    /// requests may be pending or the allocator is closed (see [`Put`]).
    ///
    /// Once the frame is cached, close may drain it and tear the allocator down, cache
    /// included, so past that store this touches only the slot (an atomic, which may be
    /// freed under a live reference). Hence a pointer, not `&self`, which would count as
    /// borrowed until the return (Stacked and Tree Borrows); and `flagged` must not capture
    /// a reference to the allocator either.
    ///
    /// # Safety
    /// `this` is alive when called, and the caller owns frame `index`.
    #[inline(always)]
    pub(crate) unsafe fn put(
        this: *const FrameCache,
        index: u32,
        flagged: impl FnOnce() -> bool,
    ) -> Put {
        // SAFETY: alive on entry (caller); a local, not used after the slot is found.
        let cache = unsafe { &*this };
        match cache.own(true) {
            Some(s) => put_own(s, cache.asym, index, flagged),
            None => Put::Skipped,
        }
    }

    /// [`take`](Self::take) as the owner of slot `t` (loom models, which have no thread ids).
    #[cfg(loom)]
    pub(crate) fn take_at(&self, t: usize) -> Option<u32> {
        take_own(&self.slots[t])
    }

    /// [`put`](Self::put) as the owner of slot `t` (loom models).
    #[cfg(loom)]
    pub(crate) fn put_at(&self, t: usize, index: u32, flagged: impl FnOnce() -> bool) -> Put {
        put_own(&self.slots[t], self.asym, index, flagged)
    }

    /// Takes a frame cached by any thread (the free list is empty), if there is one. Scans
    /// only the slots of ids ever given out (usually a handful).
    pub(crate) fn steal(&self) -> Option<u32> {
        self.given_slots().iter().find_map(|s| take_cached(s))
    }

    /// Takes every frame cached now, calling `free` on each, without the heavy barrier and
    /// without waiting for a slot whose owner is between its stores (Dispatch level: no
    /// system call, no wait). Unlike [`drain`](Self::drain), it may miss a frame an owner
    /// caches meanwhile, having not yet seen the flags.
    pub(crate) fn take_all_now(&self, free: impl FnMut(u32)) {
        self.given_slots()
            .iter()
            .filter_map(|s| take_cached(s))
            .for_each(free);
    }

    /// The slots of the thread ids ever given out (usually a handful): the only ones that
    /// can hold a frame.
    fn given_slots(&self) -> &[CachePadded<AtomicU32>] {
        let n = (ids_given() as usize).min(self.slots.len());
        &self.slots[..n]
    }

    /// After `WAITERS` or `CLOSED` was set on word 0: empties every slot, calling `free` on
    /// each frame found (see the module docs).
    pub(crate) fn drain(&self, mut free: impl FnMut(u32)) {
        if self.slots.is_empty() {
            return;
        }
        heavy_barrier(self.asym);
        for s in self.slots.iter() {
            let mut spins = 0u32;
            loop {
                // Relaxed: re-checked by the CAS in `take_cached`.
                let v = s.load(Ordering::Relaxed);
                if v == EMPTY {
                    break;
                }
                if v & BUSY != 0 {
                    // The owner is between its stores (a few instructions, unless it was
                    // preempted right there): it will see the flag and store EMPTY, or has
                    // seen none and will store the frame.
                    backoff(&mut spins);
                    continue;
                }
                if let Some(f) = take_cached(s) {
                    free(f);
                    break;
                }
            }
        }
    }

    /// Frames cached now (a snapshot).
    pub(crate) fn cached(&self) -> u32 {
        self.slots
            .iter()
            // Relaxed: statistics.
            .filter(|s| s.load(Ordering::Relaxed) & BUSY == 0)
            .count() as u32
    }

    /// Marks the cached frames in `free` (indexed by frame), for diagnostics.
    pub(crate) fn mark_free(&self, free: &mut [bool]) {
        for s in self.slots.iter() {
            // Relaxed: a diagnostics snapshot.
            let v = s.load(Ordering::Relaxed);
            if v & BUSY == 0 {
                if let Some(f) = free.get_mut(v as usize) {
                    *f = true;
                }
            }
        }
    }
}

#[inline(always)]
fn take_own(s: &AtomicU32) -> Option<u32> {
    // Relaxed: a pre-check that avoids the RMW when the slot is empty; the swap decides.
    if s.load(Ordering::Relaxed) == EMPTY {
        return None;
    }
    // Acquire: pairs with the Release store that cached the frame (its bytes, written before
    // the free, are visible to the new holder). Only the owner writes BUSY, and it is not
    // putting now, so the value is a frame or EMPTY.
    let v = s.swap(EMPTY, Ordering::Acquire);
    (v != EMPTY).then_some(v)
}

#[inline(always)]
fn put_own(s: &AtomicU32, asym: bool, index: u32, flagged: impl FnOnce() -> bool) -> Put {
    // Relaxed: only the owner stores a frame here, so an occupied slot stays occupied (or is
    // emptied by a thief): free this frame the ordinary way.
    if s.load(Ordering::Relaxed) != EMPTY {
        return Put::Skipped;
    }
    // Relaxed: nobody takes a BUSY slot; the drain only waits for it to change.
    s.store(index | BUSY, Ordering::Relaxed);
    light_barrier(asym);
    if flagged() {
        // Relaxed: the frame was never free; the caller frees it the ordinary way.
        s.store(EMPTY, Ordering::Relaxed);
        return Put::Flagged;
    }
    // Release: pairs with the Acquire of whoever takes it (owner, thief or drain).
    s.store(index, Ordering::Release);
    #[cfg(all(test, not(loom)))]
    crate::test_hooks::reach(crate::test_hooks::Point::FrameFree);
    Put::Cached
}

/// Takes the frame cached in `s` (not one being put), if any.
fn take_cached(s: &AtomicU32) -> Option<u32> {
    // Relaxed: seeds the CAS.
    let mut v = s.load(Ordering::Relaxed);
    // A CAS, not a swap: the owner may take the frame and put another meanwhile, and a swap
    // would then snatch a BUSY value.
    while v & BUSY == 0 {
        // Acquire: pairs with the put's Release store (the frame's bytes).
        match s.compare_exchange_weak(v, EMPTY, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return Some(v),
            Err(actual) => v = actual,
        }
    }
    None
}

fn backoff(spins: &mut u32) {
    *spins += 1;
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// The owner's side of the barrier pair.
#[inline(always)]
fn light_barrier(asym: bool) {
    if asym {
        // The heavy barrier runs a full fence on this thread whenever it matters.
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        full_fence();
    }
}

#[inline(never)]
fn full_fence() {
    crate::loom::fence(Ordering::SeqCst);
}

/// The drain's side of the barrier pair.
fn heavy_barrier(asym: bool) {
    #[cfg(all(test, not(loom)))]
    crate::test_hooks::reach(crate::test_hooks::Point::HeavyBarrier);
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    if asym {
        use rustix::thread::{MembarrierCommand as C, membarrier};
        // The process registered for this command (`asym_barriers`), so it does not fail.
        // Should the registration ever be lost (a kernel that does not carry it into a
        // forked child, say), register again; and as a last resort use the global command,
        // which needs no registration and waits for every CPU (slow, but as strong). The
        // owners' side is a compiler fence, so some full barrier must happen here.
        if membarrier(C::PrivateExpedited).is_ok()
            || (membarrier(C::RegisterPrivateExpedited).is_ok()
                && membarrier(C::PrivateExpedited).is_ok())
            || membarrier(C::Global).is_ok()
        {
            return;
        }
    }
    // Without `membarrier` (never registered, or, unreachably, every command refused).
    let _ = asym;
    full_fence();
}

/// Whether this process can use `membarrier` for the heavy barrier (decided once).
fn asym_barriers() -> bool {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    {
        use rustix::thread::{MembarrierCommand, membarrier};
        static ASYM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ASYM.get_or_init(|| membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok())
    }
    #[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
    {
        false
    }
}

/// How many thread ids were ever given out: slots at or beyond it were never used.
fn ids_given() -> u32 {
    #[cfg(not(loom))]
    {
        // Relaxed: a slot only holds a frame after its owner got its id, and that owner's
        // put happened-before whatever made the caller look (the frame's free).
        ids::GIVEN.load(Ordering::Relaxed)
    }
    #[cfg(loom)]
    {
        MAX_SLOTS
    }
}

/// This thread's id (its slot index in every allocator), assigned (if `assign`) at first
/// use; `None` under loom (models drive `FrameCache` directly), while the thread is exiting,
/// and when all ids are taken.
#[inline(always)]
fn thread_slot(assign: bool) -> Option<u32> {
    #[cfg(not(loom))]
    {
        let t = ids::ID.with(std::cell::Cell::get);
        if t < MAX_SLOTS {
            return Some(t);
        }
        if assign && t == ids::UNSET {
            return ids::assign();
        }
        None
    }
    #[cfg(loom)]
    {
        let _ = assign;
        None
    }
}

#[cfg(not(loom))]
mod ids {
    use std::cell::Cell;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    // Outside loom (this module's only configuration) these take std's `Mutex`.
    use crate::loom::{lock, try_lock};

    pub(super) const UNSET: u32 = u32::MAX;
    /// The thread has no slot (every id taken) or is exiting.
    const NONE: u32 = u32::MAX - 1;

    std::thread_local! {
        /// No destructor, so reading it stays one load even while the thread exits.
        pub(super) static ID: Cell<u32> = const { Cell::new(UNSET) };
        static RELEASE: Release = const { Release };
    }

    /// Returned ids, and the next never-used one.
    static POOL: Mutex<(Vec<u32>, u32)> = Mutex::new((Vec::new(), 0));
    /// A lock-free copy of the next never-used id.
    pub(super) static GIVEN: AtomicU32 = AtomicU32::new(0);

    /// Gives the id back when the thread exits (after which it caches nowhere).
    struct Release;

    impl Drop for Release {
        fn drop(&mut self) {
            let id = ID.with(|c| c.replace(NONE));
            if id < super::MAX_SLOTS {
                lock(&POOL).0.push(id);
            }
        }
    }

    /// Called from a free, which must not block: if another thread holds the pool (it is
    /// getting or returning an id), this free is not cached and a later one tries again.
    /// Not at Dispatch level: registering the thread-exit destructor allocates (the C
    /// library's `__cxa_thread_atexit_impl`), which Dispatch level does not allow, so a
    /// thread's frees are cached from its first free at Passive level on.
    #[cold]
    pub(super) fn assign() -> Option<u32> {
        if crate::level::current_level() == crate::level::Level::Dispatch {
            return None;
        }
        let mut p = try_lock(&POOL)?;
        // Registering the destructor fails only while the thread's locals are being
        // destroyed: then the thread stays without an id.
        if RELEASE.try_with(|_| ()).is_err() {
            ID.with(|c| c.set(NONE));
            return None;
        }
        let id = match p.0.pop() {
            Some(id) => id,
            None if p.1 < super::MAX_SLOTS => {
                p.1 += 1;
                // Relaxed: see `ids_given`.
                GIVEN.store(p.1, Ordering::Relaxed);
                p.1 - 1
            }
            None => NONE,
        };
        drop(p);
        ID.with(|c| c.set(id));
        (id < super::MAX_SLOTS).then_some(id)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use crate::{Allocator, Memory, PoolType};

    /// 64 frames, so that every test thread (ids are process-wide) has a cache slot.
    fn alloc(cache: bool) -> Allocator {
        let f = crate::framing::test_framing(PoolType::NON_PAGED, 64);
        Allocator::builder(&f)
            .memory(Memory::NonPaged)
            .starvation_threshold(None)
            .thread_cache(cache)
            .build()
            .expect("allocator")
    }

    /// Gives this thread its cache id now (a free only tries the id pool's lock, so with
    /// tests running in parallel a first free may go uncached).
    fn with_id() {
        while super::thread_slot(true).is_none() {
            std::thread::yield_now();
        }
    }

    /// Takes every frame; then a helper thread frees one, which it caches.
    fn all_out_one_cached(a: &Allocator) -> Vec<crate::Frame> {
        with_id();
        let mut held: Vec<_> = std::iter::from_fn(|| a.try_allocate().ok()).collect();
        assert_eq!(held.len(), 64);
        let f = held.pop().expect("a frame");
        std::thread::scope(|s| {
            s.spawn(move || {
                with_id();
                drop(f)
            });
        });
        assert_eq!(
            a.inner.cache.cached(),
            1,
            "the helper thread cached its free"
        );
        held
    }

    #[test]
    fn a_thread_takes_back_what_it_freed_and_the_status_counts_it_free() {
        with_id();
        let a = alloc(true);
        let f = a.try_allocate().expect("frame");
        let addr = f.addr();
        drop(f);
        assert_eq!(a.inner.cache.cached(), 1);
        assert_eq!(a.status().allocated_frames, 0, "a cached frame is free");
        assert!(a.outstanding().is_empty(), "and not listed as held");
        let g = a.try_allocate().expect("frame");
        assert_eq!(g.addr(), addr, "same frame, from this thread's cache");
        assert_eq!(a.inner.cache.cached(), 0);
        assert_eq!(a.status().allocated_frames, 1);
    }

    #[test]
    fn a_frame_cached_by_another_thread_is_free_for_a_non_blocking_allocate() {
        let a = alloc(true);
        let mut held = all_out_one_cached(&a);
        assert_eq!(a.status().allocated_frames, 63);
        held.push(
            a.try_allocate()
                .expect("the cached frame is taken from the other thread"),
        );
        assert_eq!(a.inner.cache.cached(), 0);
        assert!(a.try_allocate().is_err(), "and then there is none");
    }

    #[test]
    fn a_request_that_waits_gets_the_frames_cached_before_it() {
        let a = alloc(true);
        let held = all_out_one_cached(&a);
        let f = a
            .allocate_blocking(Some(Duration::from_secs(10)))
            .expect("the cached frame, at once");
        assert_eq!(a.inner.cache.cached(), 0);
        assert_eq!(a.status().pending, 0);
        drop(f);
        // The async interface too.
        let b = alloc(true);
        let held_b = all_out_one_cached(&b);
        let g = crate::bench::block_on(b.allocate()).expect("the cached frame");
        assert_eq!(b.inner.cache.cached(), 0);
        drop((held, g, held_b));
    }

    #[test]
    fn no_frame_is_cached_while_requests_wait() {
        with_id();
        let a = alloc(true);
        let mut held: Vec<_> = std::iter::from_fn(|| a.try_allocate().ok()).collect();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| a.allocate_blocking(Some(Duration::from_secs(10))));
            while a.status().pending == 0 {
                std::thread::yield_now();
            }
            // This thread's free would be cached, but a request waits: it gets the frame.
            drop(held.pop());
            assert_eq!(a.inner.cache.cached(), 0);
            let f = waiter.join().expect("waiter").expect("handed the frame");
            held.push(f);
        });
        assert_eq!(a.status().handoffs, 1);
    }

    #[test]
    fn close_brings_cached_frames_home_and_tears_down() {
        let a = alloc(true);
        let held = all_out_one_cached(&a);
        drop(held);
        assert_eq!(
            a.inner.cache.cached(),
            2,
            "the helper's and this thread's frees"
        );
        a.close();
        assert_eq!(a.inner.cache.cached(), 0, "drained by close");
        assert_eq!(a.status().allocated_frames, 0);
        // The close reference is gone: the last frame came home and the allocator finalized.
        assert_eq!(crate::loom::Arc::strong_count(&a.inner), 1);
        // After close a free is never cached.
        assert!(a.try_allocate().is_err());
    }

    #[test]
    fn the_peak_counts_cached_frames_off_the_list() {
        // Exact without caches.
        let a = alloc(false);
        let held: Vec<_> = (0..3).map(|_| a.try_allocate().expect("frame")).collect();
        drop(held);
        drop(a.try_allocate().expect("frame"));
        assert_eq!(a.status().peak_allocated_frames, 3);
        // With caches, a frame another thread keeps counts until it is taken again.
        let a = alloc(true);
        let f = a.try_allocate().expect("frame");
        std::thread::scope(|s| {
            s.spawn(move || {
                with_id();
                drop(f)
            });
        });
        assert_eq!(a.inner.cache.cached(), 1);
        let held: Vec<_> = (0..2).map(|_| a.try_allocate().expect("frame")).collect();
        assert_eq!(a.status().allocated_frames, 2, "exact");
        assert_eq!(
            a.status().peak_allocated_frames,
            3,
            "two out and one cached: three off the list"
        );
        drop(held);
    }

    /// The protocol on a bare cache (no mapped memory, so Miri runs it too): two threads put
    /// and take back their own frames while a third steals and then drains; every frame ends
    /// exactly once with somebody.
    #[test]
    fn frame_cache_across_threads_loses_and_doubles_nothing() {
        use super::{FrameCache, Put};
        use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
        let c = FrameCache::new(MAX);
        with_id();
        let closed = AtomicBool::new(false);
        let seen: Vec<AtomicU32> = (0..4).map(|_| AtomicU32::new(0)).collect();
        const MAX: u32 = super::MAX_SLOTS;
        const ROUNDS: u32 = if cfg!(miri) { 20 } else { 2000 };
        std::thread::scope(|s| {
            for f in [0u32, 1] {
                let (c, closed, seen) = (&c, &closed, &seen);
                s.spawn(move || {
                    with_id();
                    let mut mine = Some(f);
                    for _ in 0..ROUNDS {
                        if let Some(i) = mine.take() {
                            // Relaxed (all): the test's own bookkeeping, read after join.
                            // SAFETY: the cache outlives the scope.
                            let put =
                                unsafe { FrameCache::put(c, i, || closed.load(Ordering::Relaxed)) };
                            if put != Put::Cached {
                                seen[i as usize].fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        }
                        mine = c.take();
                    }
                    if let Some(i) = mine {
                        seen[i as usize].fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            // Steal one frame at most, while the owners run, then "close" and drain.
            for _ in 0..ROUNDS {
                if let Some(i) = c.steal() {
                    seen[i as usize].fetch_add(1, Ordering::Relaxed);
                    break;
                }
                std::thread::yield_now();
            }
            closed.store(true, Ordering::Relaxed);
            c.drain(|i| {
                seen[i as usize].fetch_add(1, Ordering::Relaxed);
            });
        });
        // Frames still cached after the drain were put before `closed` was seen: collect them.
        c.drain(|i| {
            seen[i as usize].fetch_add(1, Ordering::Relaxed);
        });
        let counts: Vec<u32> = seen.iter().map(|a| a.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, [1, 1, 0, 0], "each frame ends once");
        assert_eq!(c.cached(), 0);
    }

    /// A request queued at Dispatch level leaves the caches to the worker: the drain's
    /// `membarrier` is a system call, and it may wait for a preempted owner.
    #[test]
    fn a_request_queued_at_dispatch_leaves_the_cache_drain_to_the_worker() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::task::{Context, Poll, Wake, Waker};

        struct Flag(AtomicBool, std::thread::Thread);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                // Relaxed: the test's own flag; the unpark orders nothing it relies on.
                self.0.store(true, Ordering::Relaxed);
                self.1.unpark();
            }
        }

        with_id();
        // Rounds: the race this guards against (a later allocate taking the cached frame
        // before the worker drains it) is lost only sometimes. (Miri: the protocol, twice.)
        let rounds = if cfg!(miri) { 2 } else { 64 };
        for round in 0..rounds {
            let a = alloc(true);
            let mut held: Vec<_> = std::iter::from_fn(|| a.try_allocate().ok()).collect();
            assert_eq!(held.len(), 64);
            // Once the request has looked at every cache and found nothing, another thread
            // caches a frame: the request sets `WAITERS`, and that frame is the request's.
            let mut late = held.pop();
            crate::test_hooks::set(crate::test_hooks::Point::BeforeWaiterLock, move || {
                if let Some(f) = late.take() {
                    std::thread::spawn(move || {
                        with_id();
                        drop(f)
                    })
                    .join()
                    .expect("the freeing thread");
                }
            });
            let flag = Arc::new(Flag(AtomicBool::new(false), std::thread::current()));
            let waker = Waker::from(Arc::clone(&flag));
            let barriers = std::rc::Rc::new(std::cell::Cell::new(0u32));
            let counted = std::rc::Rc::clone(&barriers);
            crate::test_hooks::set(crate::test_hooks::Point::HeavyBarrier, move || {
                counted.set(counted.get() + 1)
            });
            let mut fut = Box::pin(a.allocate());
            let first = {
                let _dispatch = crate::raise_to_dispatch();
                fut.as_mut().poll(&mut Context::from_waker(&waker))
            };
            crate::test_hooks::set(crate::test_hooks::Point::BeforeWaiterLock, || {});
            crate::test_hooks::set(crate::test_hooks::Point::HeavyBarrier, || {});
            assert_eq!(
                barriers.get(),
                0,
                "no membarrier on the Dispatch-level thread"
            );
            // At Dispatch level the frees of the frames taken from the caches go to the
            // worker, which hands them to the request.
            assert!(first.is_pending(), "round {round}");
            // No later allocate overtakes the pending request.
            assert!(
                a.try_allocate().is_err(),
                "round {round}: a later try_allocate took the request's frame"
            );
            for _ in 0..1000 {
                if flag.0.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::park_timeout(Duration::from_millis(10));
            }
            assert!(
                flag.0.load(Ordering::Relaxed),
                "the worker's grant woke the request"
            );
            let Poll::Ready(Ok(f)) = fut.as_mut().poll(&mut Context::from_waker(&waker)) else {
                panic!("granted after the wake")
            };
            assert_eq!(a.inner.cache.cached(), 0);
            assert_eq!(a.status().allocated_frames, 64);
            drop((f, held));
        }
    }

    /// Registering a thread's cache id allocates (the thread-exit destructor), so a free at
    /// Dispatch level never does it: that thread's frees are cached from its first free at
    /// Passive level on.
    #[test]
    fn a_thread_gets_its_cache_id_only_at_passive_level() {
        let a = alloc(true);
        std::thread::scope(|s| {
            s.spawn(|| {
                {
                    let _dispatch = crate::raise_to_dispatch();
                    for _ in 0..20 {
                        drop(a.try_allocate().expect("frame"));
                        std::thread::yield_now();
                    }
                    assert_eq!(super::ids::ID.with(std::cell::Cell::get), super::ids::UNSET);
                    assert_eq!(a.inner.cache.cached(), 0, "uncached at Dispatch level");
                }
                with_id();
                drop(a.try_allocate().expect("frame"));
                assert_eq!(a.inner.cache.cached(), 1, "cached at Passive level");
            });
        });
    }

    #[test]
    fn thread_cache_off_caches_nothing() {
        let a = alloc(false);
        drop(a.try_allocate().expect("frame"));
        assert_eq!(a.inner.cache.cached(), 0);
        assert_eq!(a.inner.free.free_count(), 64, "freed to the list");
    }
}
