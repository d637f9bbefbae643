//! The allocator's shared state and its free paths (see the parent module's docs).

use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::NonNull;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::StarvationReport;
use crate::cache::{FrameCache, Put};
use crate::events::Events;
use crate::frame::{Frame, Holder, coarse_now, now_ns};
use crate::freelist::{FreeList, PopOrWait, Push};
use crate::level::{Level, current_level};
use crate::loom::{
    Arc, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Mutex, Ordering, lock, try_lock,
};
use crate::memory::Region;
use crate::vendor::{DynVendor, ErasedContext};
use crate::waiters::{Grants, Notify, WaitQueue, WakeOnDrop};
use crate::{Framing, Memory, TryAllocateError};

/// Slot states: how a slot's frame is held *while it is outstanding*. Whether it is
/// outstanding is the free list's business (`FreeList::snapshot_free`), so a free leaves the
/// state as it is and the fast paths write no state at all: the resting state is `HELD`,
/// which a raw free restores (`RAW` → `HELD`) before it frees, and which the worker's
/// claim of a `DEFERRED` frame restores.
///
/// The state is the low bits of the slot's state word ([`STATE_MASK`]); the bits above are a
/// generation that each `mark_raw` advances, so that a raw free's CAS succeeds only on the
/// very raw period whose address it looked up (see `Allocator::free_raw`).
pub(crate) const HELD: u32 = 1;
pub(crate) const RAW: u32 = 2;
pub(crate) const DEFERRED: u32 = 3;
/// The state bits of a slot's state word (the rest is the raw generation).
pub(crate) const STATE_MASK: u32 = 3;
/// One step of the raw generation.
const GENERATION_STEP: u32 = STATE_MASK + 1;

#[repr(align(64))]
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) state: AtomicU32,
    pub(crate) holder: AtomicPtr<Holder>,
    pub(crate) taken_at: AtomicU64,
    pub(crate) addr: AtomicUsize,
}

pub(crate) enum Backend {
    Region(Region),
    Vendor {
        vendor: Arc<dyn DynVendor>,
        /// `Some` from creation until `delete`. Read shared by allocate/free; taken once by
        /// `finalize`, when no other access can happen (close protocol).
        cx: UnsafeCell<Option<ErasedContext>>,
        name: &'static str,
    },
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Region(r) => f.debug_tuple("Region").field(r).finish(),
            Backend::Vendor { name, .. } => f.debug_struct("Vendor").field("name", name).finish(),
        }
    }
}

/// A vendor callback's panic, caught so that the slot the library owns is not lost.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// Why claiming a slot for a caller failed. In every case the slot is still the caller's.
pub(super) enum ClaimError {
    /// The vendor had no memory ("no frame now").
    NoFrame,
    /// The vendor returned a misaligned address (already returned to the vendor).
    Misaligned(usize),
    /// The vendor's `allocate` panicked (or its `free`, handed a misaligned frame back).
    Panicked(Panic),
}

/// The message of a panic payload (`panic!` with a literal or a format), for the log.
pub(crate) fn panic_message(p: &Panic) -> &str {
    if let Some(s) = p.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "(a non-string panic payload)"
    }
}

/// Resumes a vendor callback's panic toward the caller whose allocate or free called it,
/// once the library's state is whole again. If that thread is unwinding already (a `Frame`
/// dropped during a panic), the panic is reported instead: a second one would abort the
/// process.
pub(crate) fn resume_vendor_panic(p: Panic, callback: &'static str) {
    if std::thread::panicking() {
        tracing::error!(
            callback,
            panic = panic_message(&p),
            "a vendor callback panicked while its thread was unwinding already; reported, not \
             re-raised"
        );
    } else {
        resume_unwind(p);
    }
}

pub(crate) struct Inner {
    pub(crate) free: FreeList,
    /// Frames freed by a thread and kept for its next allocate (`cache.rs`).
    pub(crate) cache: FrameCache,
    pub(crate) slots: Box<[Slot]>,
    pub(crate) backend: Backend,
    pub(crate) frame_size: usize,
    pub(crate) framing: Framing,
    pub(crate) memory: Memory,
    /// On its own cache lines: the waiter side writes it (enqueue, collect under the lock),
    /// and sharing a line with the fields every free reads (`backend`, `events`, `slots`...)
    /// would cost the freer a miss on each of them on the hand-off path.
    pub(crate) waiters: CachePadded<Mutex<WaitQueue>>,
    /// Grant words of the waiter slots, read by their owners without the lock.
    pub(crate) grants: Grants,
    pub(crate) events: Events,
    pub(crate) peak: CachePadded<AtomicU32>,
    pub(crate) failed_try: CachePadded<AtomicU64>,
    pub(crate) handles: AtomicUsize,
    /// Scheduled on the worker (holding one strong reference for it).
    pub(crate) in_worker: AtomicBool,
    /// A request queued at Dispatch level left the threads' caches for the worker to drain
    /// (`drain_cache_on_worker`).
    pub(crate) drain_on_worker: AtomicBool,
    /// A free at Dispatch level brought the last frame home after close and left the
    /// teardown to the worker (`finalize_here_or_on_worker`).
    pub(crate) finalize_on_worker: AtomicBool,
    pub(crate) worker_next: AtomicPtr<Inner>,
    pub(crate) name: String,
    pub(crate) starvation_threshold: Option<Duration>,
    pub(crate) last_starvation: Mutex<Option<StarvationReport>>,
    pub(crate) starving_since_reported: AtomicBool,
}

// SAFETY: the only non-`Sync` field is the vendor context cell. It is read through shared
// references by `allocate`/`free` from any thread (the context type is `Send + Sync`), and
// written exactly once, by `finalize`, when the close protocol guarantees no other access
// (closed, every slot home, so no allocate/free is running or can start).
unsafe impl Sync for Inner {}
// SAFETY: every field is `Send` (the vendor context is `Send + Sync`).
unsafe impl Send for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        crate::worker::allocator_dropped();
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Allocator")
            .field("name", &self.name)
            .field("framing", &self.framing)
            .field("memory", &self.memory)
            .field("backend", &self.backend)
            .field("free", &(self.free.free_count() + self.cache.cached()))
            .field("closed", &self.free.is_closed())
            .finish()
    }
}

impl Inner {
    #[inline(always)]
    pub(crate) fn frame_ptr(&self, index: u32) -> NonNull<u8> {
        match &self.backend {
            Backend::Region(r) => r.frame_ptr(index as usize),
            Backend::Vendor { .. } => {
                // Relaxed: written by the claimer before the frame was handed over (ordered by
                // the free-list CAS or the waiter mutex).
                let a = self.slots[index as usize].addr.load(Ordering::Relaxed);
                NonNull::new(a as *mut u8).unwrap_or(NonNull::dangling())
            }
        }
    }

    /// Whether a vendor serves the frames (else the allocator's own region).
    #[inline]
    pub(crate) fn is_vendor(&self) -> bool {
        matches!(self.backend, Backend::Vendor { .. })
    }

    /// Vendor allocators only (a region's free slots never sit on the list while requests
    /// wait: every free goes to them): whether requests are pending, so that a new allocate
    /// must leave a free slot (one the vendor could not back for them) to them and take its
    /// place in the queue (FIFO, behaviour 26). Lock-free: a vendor allocator clears
    /// `WAITERS` whenever its queue empties (`vendor_queue_emptied`), so the flag says it.
    #[inline]
    pub(super) fn vendor_queue_ahead(&self) -> bool {
        self.is_vendor() && self.free.waiting()
    }

    /// Under the waiter lock, after a grant: a vendor allocator whose queue is now empty
    /// clears `WAITERS` at once (a region's flags may outlive the queue, which saves the
    /// hand-off two writes; a vendor's must not, see `vendor_queue_ahead`).
    #[inline]
    pub(super) fn vendor_queue_emptied(&self, q: &WaitQueue) {
        if self.is_vendor() && q.is_empty() {
            self.free.clear_waiters();
        }
    }

    /// The worker's periodic retry (`worker.rs`, every 50 ms): requests wait on a vendor
    /// that had no memory for them; each free slot goes to the oldest request the vendor can
    /// serve now. Without it, requests would wait for a free or a new request, and neither
    /// comes if no frame is out. A no-op (one load) for anything else.
    pub(crate) fn retry_vendor(&self) {
        if !self.vendor_queue_ahead() {
            return;
        }
        // Declared before the lock: the requests served are woken after the unlock. The
        // caller (the worker's scan) holds a strong reference, so waking is safe.
        let mut served = WakeOnDrop::new(&self.grants);
        let mut q = lock(&self.waiters);
        self.retry_waiting(&mut q, &mut served.notify);
    }

    /// Under the waiter lock, a vendor's: [`retry_oldest`](Self::retry_oldest) for as long
    /// as it serves requests, adding whom to wake (after the unlock) to `served`.
    pub(super) fn retry_waiting(&self, q: &mut WaitQueue, served: &mut Vec<Notify>) {
        while !q.is_empty() {
            match self.retry_oldest(q) {
                Some(n) => served.push(n),
                None => break,
            }
        }
    }

    /// Under the waiter lock, requests pending, a vendor's: a new request gives a free slot
    /// (one the vendor could not back before) to the oldest request first, if the vendor
    /// has memory now. `Some(whom to wake, after the unlock)` if it granted one; `None` if no
    /// slot is free or the vendor still has no memory (or refuses it: the slot goes back).
    fn retry_oldest(&self, q: &mut WaitQueue) -> Option<Notify> {
        let (slot, holder) = q.front()?;
        let PopOrWait::Frame(i, left) = self.free.pop_or_wait() else {
            return None;
        };
        match self.claim(i, holder) {
            Ok(()) => {
                self.note_peak(left);
                let notify = q.grant(&self.grants, slot, i);
                self.vendor_queue_emptied(q);
                Some(notify)
            }
            // The oldest request completes with the error; the next ones are tried next.
            Err(ClaimError::Misaligned(addr)) => Some(self.fail_oldest(q, slot, i, addr)),
            Err(e) => {
                self.keep_refused_slot(i, e);
                None
            }
        }
    }

    /// Under the waiter lock, a vendor's: the vendor returned a misaligned frame (already
    /// handed back to it) for the oldest request, in `slot`, claiming slot `index` (ours).
    /// That request completes with the error (`STATUS_INVALID_PARAMETER` naming the address
    /// and the alignment, as a request that does not queue gets it), like a cancelled one:
    /// its owner collects the failure under the lock. The slot goes back to the free list,
    /// still reserved for the requests behind it (if any), which keep their order. Returns
    /// whom to wake, after the unlock. The queue was non-empty and we hold the lock, so the
    /// allocator is not closed and the push cannot finalize.
    fn fail_oldest(&self, q: &mut WaitQueue, slot: u32, index: u32, addr: usize) -> Notify {
        tracing::error!(
            allocator = %self.name,
            addr,
            alignment = self.framing.alignment.bytes(),
            "vendor allocator returned a misaligned frame for a pending request; returned to \
             the vendor, and the request fails with STATUS_INVALID_PARAMETER"
        );
        let notify = q.fail(&self.grants, slot, addr);
        self.vendor_queue_emptied(q);
        self.free.push(index, false);
        notify
    }

    /// Under the waiter lock, requests pending: the vendor could not back slot `index` for
    /// the oldest request (no memory now, or its `allocate` panicked, which is reported and
    /// taken for "no frame now": the allocation was on the request's behalf, so there is no
    /// caller to unwind into, and the worker or a freer must not be taken down by it). The
    /// request stays pending and is retried (next free, next request, the worker); the slot
    /// goes back to the free list, reserved for the queue (`vendor_queue_ahead`). The queue
    /// is non-empty, so the allocator is not closed and this push cannot finalize.
    /// (A misaligned frame fails the request instead: `fail_oldest`.)
    fn keep_refused_slot(&self, index: u32, e: ClaimError) {
        match &e {
            ClaimError::NoFrame => {}
            ClaimError::Panicked(p) => tracing::error!(
                allocator = %self.name,
                panic = panic_message(p),
                "vendor allocate panicked while serving a pending request; taken for \
                 \"no frame now\": the request stays pending and is retried"
            ),
            ClaimError::Misaligned(a) => tracing::error!(
                allocator = %self.name,
                addr = a,
                "vendor allocator returned a misaligned frame; refused and returned to the vendor"
            ),
        }
        self.free.push(index, false);
    }

    #[inline(always)]
    fn vendor_cx(&self) -> Option<(&dyn DynVendor, &ErasedContext)> {
        match &self.backend {
            Backend::Region(_) => None,
            Backend::Vendor { vendor, cx, .. } => {
                // SAFETY: `cx` is only written by `finalize`, which runs when no slot is out
                // and the allocator is closed; every caller of `vendor_cx` owns a slot (or
                // holds the waiter lock with requests pending, so not closed).
                let cx = unsafe { &*cx.get() }.as_ref()?;
                Some((&**vendor, cx))
            }
        }
    }

    /// Makes slot `index` (owned by the caller) an outstanding frame for `holder`.
    #[inline(always)]
    pub(super) fn claim(
        &self,
        index: u32,
        holder: Option<&'static Holder>,
    ) -> Result<(), ClaimError> {
        let slot = &self.slots[index as usize];
        if let Some((vendor, cx)) = self.vendor_cx() {
            // A panic is caught here, while the slot is still ours, so that whoever popped
            // the slot can return it (and, if it is a caller's own allocate, then re-raise).
            let p = match catch_unwind(AssertUnwindSafe(|| vendor.dyn_allocate(cx))) {
                Ok(Some(p)) => p,
                Ok(None) => return Err(ClaimError::NoFrame),
                Err(panic) => return Err(ClaimError::Panicked(panic)),
            };
            if !self.framing.alignment.is_aligned(p.as_ptr() as usize) {
                let addr = p.as_ptr() as usize;
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| vendor.dyn_free(cx, p))) {
                    tracing::error!(
                        allocator = %self.name,
                        addr,
                        "vendor free panicked taking back a misaligned frame"
                    );
                    return Err(ClaimError::Panicked(panic));
                }
                return Err(ClaimError::Misaligned(addr));
            }
            // Relaxed: the slot is ours; published with the frame (see `frame_ptr`).
            slot.addr.store(p.as_ptr() as usize, Ordering::Relaxed);
        }
        // Relaxed (all): owner-only accesses, read by diagnostics as a snapshot; the frame
        // hand-over orders them for the next owner. Each is written only if it changes, so a
        // frame taken again by the same holder within one coarse-clock tick costs three loads
        // and no store (stores ahead of the free's locked CAS must drain before it).
        let h = holder.map_or(std::ptr::null_mut(), |h| (h as *const Holder).cast_mut());
        if slot.holder.load(Ordering::Relaxed) != h {
            slot.holder.store(h, Ordering::Relaxed);
        }
        let t = coarse_now();
        if slot.taken_at.load(Ordering::Relaxed) != t {
            slot.taken_at.store(t, Ordering::Relaxed);
        }
        let state = slot.state.load(Ordering::Relaxed);
        if state & STATE_MASK != HELD {
            slot.state
                .store(state & !STATE_MASK | HELD, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Claims `index` or returns it to the free list, mapping the failure to an error.
    #[inline(always)]
    pub(super) fn claim_or_return(
        this: &Arc<Inner>,
        index: u32,
        holder: Option<&'static Holder>,
        hint: u64,
    ) -> Result<Frame, TryAllocateError> {
        match this.claim(index, holder) {
            Ok(()) => Ok(Inner::frame(this, index, hint)),
            Err(e) => {
                // The slot goes back first, whatever happened (a panic then resumes toward
                // the caller, in `claim_error`).
                Inner::return_slot(this, index);
                if matches!(e, ClaimError::NoFrame) {
                    // A vendor's "no frame now" fails the non-blocking allocate like an
                    // empty free list does. Relaxed: a statistic.
                    this.failed_try.fetch_add(1, Ordering::Relaxed);
                }
                Err(this.claim_error(e))
            }
        }
    }

    /// Returns slot `index`, popped by the caller but not claimed, to the free list (never
    /// diverted to a waiter: the caller could not claim it, so a waiter could not either).
    pub(super) fn return_slot(this: &Arc<Inner>, index: u32) {
        if let Push::Pushed { finalize: true } = this.free.push(index, false) {
            // SAFETY: this push brought the last frame home after close; the caller holds a
            // handle, so finalizing cannot free `this`.
            if let Some(p) = unsafe { Inner::finalize_here_or_on_worker(Arc::as_ptr(this)) } {
                resume_vendor_panic(p, "delete");
            }
        }
    }

    /// The error for a failed claim (a [`Status`](crate::Status) through `From`). A vendor
    /// panic resumes unwinding here, toward the caller whose own allocate called the vendor:
    /// the caller has already returned the slot.
    ///
    /// Inlined, not `#[cold]`: the error is three words, so an out-of-line call returns it
    /// through memory, into the `Result<Frame, _>` that `claim_or_return` shares with its hot
    /// path; that result then lives on the stack and every allocate builds its frame there
    /// (five stores ahead of the next locked instruction; see `Allocator::steal_cached`, and
    /// BENCHMARKS.md (a), twelfth round). With the `Panicked` arm the body grew past what
    /// LLVM inlines on its own, which cost (a) about 0.9 ns per cycle. Inlined, the two
    /// error values are built in registers and the panic is one call that does not return.
    #[inline(always)]
    pub(super) fn claim_error(&self, e: ClaimError) -> TryAllocateError {
        match e {
            ClaimError::NoFrame => TryAllocateError::VendorEmpty,
            ClaimError::Misaligned(addr) => TryAllocateError::VendorMisaligned {
                addr,
                alignment: self.framing.alignment.bytes() as usize,
            },
            ClaimError::Panicked(p) => resume_unwind(p),
        }
    }

    /// The RAII frame for claimed slot `index`; `hint` is where its free starts
    /// ([`NO_HINT`](crate::freelist::NO_HINT) if it did not come from `pop_hinted`).
    ///
    /// The frame's pointer to the allocator comes from the `Arc`, not from a `&Inner`: the
    /// free path takes and drops strong references through it (`Arc::increment_strong_count`
    /// reads the counts beside `Inner`, which a pointer made from `&Inner` may not reach).
    #[inline(always)]
    pub(super) fn frame(this: &Arc<Inner>, index: u32, hint: u64) -> Frame {
        Frame {
            // SAFETY: `Arc::as_ptr` is never null.
            inner: unsafe { NonNull::new_unchecked(Arc::as_ptr(this).cast_mut()) },
            ptr: this.frame_ptr(index),
            hint,
            // Lossless: the frame size comes from a `u32` framing field (builder.rs).
            len: this.frame_size as u32,
            index,
        }
    }

    /// Updates the peak after a pop that left `left` frames on the free list.
    ///
    /// The peak is the most frames ever *off the free list* at once: outstanding, or kept in
    /// a thread cache. Only a pop can raise that, so a cached allocate checks nothing. An
    /// exact outstanding peak would have to count the other threads' cached frames at their
    /// allocates, reading cache lines those threads write on every cycle (measured: two
    /// threads cycling frames went from 4 to 40-70 ns per allocate + free when a third
    /// thread kept a frame cached).
    #[inline(always)]
    pub(super) fn note_peak(&self, left: u32) {
        let off = self.free.capacity() - left;
        // Relaxed: a statistic. The load avoids an RMW (and a cache-line write) unless the
        // peak actually rises.
        if off > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(off, Ordering::Relaxed);
        }
    }

    /// Frames off the free list now (a snapshot): outstanding or cached.
    pub(crate) fn off_list_count(&self) -> u32 {
        self.free.capacity() - self.free.free_count()
    }

    /// After `WAITERS` (by a request on its way into the queue) or `CLOSED` was set on the
    /// free list: frees every frame cached by a thread the ordinary way (to the oldest
    /// request, or home), see `cache.rs`. The caller holds a handle.
    pub(super) fn drain_cache(this: &Arc<Inner>) {
        this.cache.drain(|i| {
            // SAFETY: the drain took frame `i` out of its cache, so it is ours; the caller's
            // handle keeps the allocator alive.
            unsafe { Inner::release(Arc::as_ptr(this), i) }
        });
    }

    /// [`drain_cache`](Self::drain_cache) for a request queued at Dispatch level, which
    /// must make no system call and not wait: the frames cached now are taken at once and
    /// freed (at Dispatch level a free that finds requests pending defers its frame to the
    /// worker, which hands it to the oldest), so that no later allocate can take them ahead
    /// of the queue; the full drain (its `membarrier`, and its wait for an owner between two
    /// stores, which catch a frame an owner caches without having seen the flag yet) is left
    /// to the worker.
    pub(super) fn drain_cache_on_worker(this: &Arc<Inner>) {
        this.cache.take_all_now(|i| {
            // SAFETY: taken out of its cache, so ours; the caller's handle keeps the
            // allocator alive.
            unsafe { Inner::release(Arc::as_ptr(this), i) }
        });
        // Release: pairs with the worker's Acquire swap in `service`. Whichever pass takes
        // the flag, even one whose `in_worker` swap came before our `schedule`, then drains
        // after our `WAITERS` (set before this), as the cache's barrier pairing requires. A
        // swap rather than a store: loom models the pairing of two read-modify-writes.
        this.drain_on_worker.swap(true, Ordering::Release);
        let this = Arc::as_ptr(this);
        // SAFETY: the caller's handle keeps the allocator alive; the reference taken here is
        // the one `schedule` consumes.
        unsafe {
            Arc::increment_strong_count(this);
            Inner::schedule(this);
        }
    }

    /// The owner of outstanding frame `index` turns it into a raw address, in a new raw
    /// generation.
    pub(crate) fn mark_raw(&self, index: u32) {
        let state = &self.slots[index as usize].state;
        // Relaxed: only the frame's owner writes the state while the frame is held (a raw
        // free's CAS expects `RAW`), so this reads our own last store.
        let generation = state.load(Ordering::Relaxed) & !STATE_MASK;
        // Release: pairs with the Acquire load in `free_raw`, which then sees the address
        // (`addr`) and the frame's contents written before, in this raw generation.
        state.store(
            generation.wrapping_add(GENERATION_STEP) | RAW,
            Ordering::Release,
        );
    }

    pub(crate) fn held_for(&self, index: u32) -> Duration {
        // Relaxed: diagnostics snapshot.
        let t = self.slots[index as usize].taken_at.load(Ordering::Relaxed);
        Duration::from_nanos(now_ns().saturating_sub(t))
    }

    /// Frees the RAII frame `index`.
    ///
    /// # Safety
    /// `this` is the allocator of an outstanding frame `index` that the caller owns and gives
    /// up.
    #[inline(always)]
    pub(crate) unsafe fn release_held(this: NonNull<Inner>, index: u32, hint: u64) {
        // SAFETY: the frame is outstanding, so the allocator is alive (close protocol).
        let inner = unsafe { this.as_ref() };
        // Fast path, small enough for a `Frame`'s drop glue to be inlined at the drop site:
        // no FREEFRAME subscriber, and this thread's cache (default memory only) keeps the
        // frame for its next allocate unless requests may be pending or the allocator is
        // closed. Two plain stores and a load; once cached, `inner` is not touched.
        // (The drop glue stays this small: one call whatever the cache said.)
        let put = if inner.events.active() {
            Put::Skipped
        } else {
            // The closure holds a pointer, not `&Inner`, for the reason `FrameCache::put`
            // takes one (the allocator may be torn down once the frame is cached).
            let free: *const FreeList = &inner.free;
            // SAFETY: `put` calls this before the frame is cached, while it is ours.
            let flagged = move || unsafe { (*free).flagged() };
            // SAFETY: the frame is ours, so the allocator is alive.
            unsafe { FrameCache::put(&inner.cache, index, flagged) }
        };
        if put != Put::Cached {
            // SAFETY: forwarded from the caller.
            unsafe { Inner::release_uncached(this, index, hint, put == Put::Flagged) }
        }
    }

    /// The free of a `Frame` that was not cached: straight to the oldest request if the
    /// cache saw the flags (`flagged`), else one CAS from the allocation's hint if that wins,
    /// else the full path.
    ///
    /// The hand-off to a waiter (`release_flagged`, `grant_oldest`, the queue's `grant`) is
    /// inlined here from one call site, so that its code is one function with one stack
    /// frame: a freer that has just woken up runs it from cold caches, where each line costs.
    /// (Simulated with 8 KiB caches, callgrind counts 29 lines missed per hand-off, against 35
    /// as separate calls; BENCHMARKS.md (d), tenth round.)
    ///
    /// # Safety
    /// As `release_held`.
    #[inline(never)]
    unsafe fn release_uncached(this: NonNull<Inner>, index: u32, hint: u64, flagged: bool) {
        // SAFETY: the frame is outstanding, so the allocator is alive (close protocol).
        let inner = unsafe { this.as_ref() };
        let divert = if flagged {
            // Only a region's frames are cached, so this is a region's frame.
            true
        } else if matches!(inner.backend, Backend::Region(_)) && !inner.events.active() {
            // SAFETY: the frame is ours, so the list is alive; nothing touches it after a win.
            if unsafe { FreeList::try_push_hinted(&inner.free, index, hint) } {
                return;
            }
            // The hint failed; if because requests may be pending, hand the frame over
            // directly. (For a frame of word 0, the failed CAS has just fetched that line.)
            inner.free.flagged()
        } else {
            false
        };
        if divert {
            // SAFETY: forwarded from the caller; a region's frame (see above).
            return unsafe { Inner::release_flagged(this, index) };
        }
        // SAFETY: forwarded from the caller (`release` is the full free path: vendor, events,
        // a push from a fresh load of the word, hand-off to a waiter, teardown).
        unsafe { Inner::release(this.as_ptr(), index) }
    }

    /// The free of a frame of the allocator's own region by a thread that saw `WAITERS` or
    /// `CLOSED` on the free list: requests are probably pending, so the frame goes to the
    /// oldest one, and the free takes the waiter lock at once instead of first trying the
    /// free list again (a CAS on a line the requester wrote last, which would only report the
    /// flag again). This is the hand-off's path to the wake: the flag, the lock, the queue's
    /// head, the grant.
    /// If the queue is empty (the flags outlived it, or only `CLOSED` is set) or this thread
    /// runs at Dispatch level, the full path frees the frame as usual.
    ///
    /// # Safety
    /// As `release_held`, and the frames are the allocator's own region, not a vendor's (a
    /// vendor's frame must go back to the vendor first, which `release` does).
    #[inline(always)]
    unsafe fn release_flagged(this: NonNull<Inner>, index: u32) {
        if current_level() != Level::Dispatch {
            // SAFETY: forwarded from the caller (the frame is ours, a region's). Nothing
            // touches `*this` after a grant.
            if let Some(done) = unsafe { Inner::grant_oldest(this, index) } {
                // Granted: a region's claim cannot fail. (`Reserved`, after a vendor's failed
                // claim, would also be final: a request is pending, so it cannot finalize.)
                debug_assert!(matches!(done, HandOff::Granted));
                return;
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe { Inner::release(this.as_ptr(), index) }
    }

    /// The common free path.
    ///
    /// # Safety
    /// As `release_held`. After the frame is back on the free list or handed to a request,
    /// this function touches `*this` only while holding a strong reference of its own,
    /// because the allocator may be torn down by another thread as soon as the frame is home
    /// (for a hand-off: as soon as its new owner frees it).
    #[cold]
    #[inline(never)]
    pub(super) unsafe fn release(this: *const Inner, index: u32) {
        // SAFETY: the frame is outstanding, so the allocator is alive (close protocol).
        let inner = unsafe { &*this };
        let slot = &inner.slots[index as usize];
        // A panic in the vendor's `free` is caught so that the slot still goes home (the
        // vendor has had its address back); it resumes once the free is complete.
        let mut panicked: Option<(Panic, &'static str)> = None;
        if let Some((vendor, cx)) = inner.vendor_cx() {
            // Relaxed: owner-only slot metadata.
            let a = slot.addr.swap(0, Ordering::Relaxed);
            if let Some(p) = NonNull::new(a as *mut u8) {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| vendor.dyn_free(cx, p))) {
                    panicked = Some((p, "free"));
                }
            }
        }

        let events = inner.events.active();
        // Held in a guard, so that it is dropped (or handed to the worker) whatever happens.
        let keep = if events {
            // SAFETY: `this` comes from `Arc::as_ptr` and the allocator is alive (frame out).
            unsafe { Arc::increment_strong_count(this) };
            // SAFETY: the strong reference just taken is the guard's.
            Some(unsafe { StrongRef::new(this) })
        } else {
            None
        };
        let mut pushed = false;
        let mut finalize = false;
        // SAFETY: the frame is ours, so the list is alive (`push_ptr`: it may not be after).
        match unsafe { FreeList::push_ptr(&inner.free, index, true) } {
            Push::Pushed { finalize: f } => {
                pushed = true;
                finalize = f;
            }
            Push::Diverted => {
                if current_level() == Level::Dispatch {
                    // SAFETY: the frame is ours, so the allocator is alive.
                    match unsafe { Inner::push_if_no_waiters(this, index) } {
                        Some(f) => {
                            pushed = true;
                            finalize = f;
                        }
                        // SAFETY: we own frame `index` and the allocator is alive.
                        None => unsafe { Inner::defer(this, index) },
                    }
                } else {
                    // SAFETY: we own frame `index` and the allocator is alive. After this,
                    // `*this` is touched only under the strong reference taken above (events)
                    // or the close reference (`finalize`).
                    match unsafe { Inner::hand_off(NonNull::new_unchecked(this.cast_mut()), index) }
                    {
                        HandOff::Granted | HandOff::Reserved => {}
                        HandOff::Pushed { finalize: f } => {
                            pushed = true;
                            finalize = f;
                        }
                    }
                }
            }
        }
        // A FREEFRAME callback's panic (callbacks must not panic; a waker's is reported by
        // the delivery) resumes once the free is complete: reference dropped, teardown done.
        let mut callback_panic = None;
        if let Some(keep) = keep {
            if pushed {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| inner.events.fire())) {
                    callback_panic = Some(p);
                }
            }
            if pushed && inner.events.needs_worker() {
                keep.schedule();
            } else {
                // Drops the reference taken above. If `finalize` is set the close reference
                // is still held, so this cannot free the allocator.
                drop(keep);
            }
        }
        if finalize {
            // SAFETY: our push brought the last frame home after close.
            if let Some(p) = unsafe { Inner::finalize_here_or_on_worker(this) } {
                panicked.get_or_insert((p, "delete"));
            }
        }
        if let Some((p, callback)) = panicked {
            resume_vendor_panic(p, callback);
        } else if let Some(p) = callback_panic {
            // `deliver` raises a callback's panic only if the thread is not unwinding.
            resume_unwind(p);
        }
    }

    /// Frees at Dispatch level with requests pending: hand the frame to the worker.
    ///
    /// # Safety
    /// The caller owns outstanding frame `index` of the live allocator `this`.
    unsafe fn defer(this: *const Inner, index: u32) {
        // SAFETY: alive (frame out); the reference keeps it alive across scheduling.
        unsafe { Arc::increment_strong_count(this) };
        // SAFETY: as above.
        let inner = unsafe { &*this };
        let state = &inner.slots[index as usize].state;
        // Relaxed: diagnostics only (and owner-only, the generation kept).
        let generation = state.load(Ordering::Relaxed) & !STATE_MASK;
        state.store(generation | DEFERRED, Ordering::Relaxed);
        inner.free.push_deferred(index);
        // SAFETY: we hold a strong reference, which `schedule` consumes.
        unsafe { Inner::schedule(this) };
    }

    /// Hands our strong reference to the worker unless it is already scheduled.
    ///
    /// # Safety
    /// The caller holds one strong reference to `this`, which this call consumes.
    pub(crate) unsafe fn schedule(this: *const Inner) {
        // SAFETY: the caller's reference keeps `this` alive.
        let inner = unsafe { &*this };
        // AcqRel, paired with the worker's AcqRel `swap(false)` before it takes the deferred
        // stack. Both are read-modify-writes of one word, so one comes first in its
        // modification order. If ours does, the worker's swap reads our `true` (or a later
        // value of its release sequence), so it synchronizes with this Release, and our push
        // (and a deferred event) happens before its take. If the worker's comes first, we
        // read `false` and schedule another pass. (A plain store on the worker's side would
        // not do, even SeqCst: that is the store-buffering pattern, and the C++ model lets
        // both sides miss. Loom model `dispatch_free_vs_worker`.)
        if inner.in_worker.swap(true, Ordering::AcqRel) {
            // The worker holds a reference for the pass that will see our work.
            // SAFETY: drops our own reference; the worker's keeps the allocator alive.
            unsafe { Arc::decrement_strong_count(this) };
        } else {
            crate::worker::enqueue(this);
        }
    }

    /// One worker pass over this allocator: complete deferred hand-offs, deliver deferred
    /// events.
    ///
    /// # Safety
    /// `this` comes from an `Arc<Inner>` (see `frame`), and the caller (the worker) holds a
    /// strong reference through the pass.
    pub(crate) unsafe fn service(this: NonNull<Inner>) {
        // SAFETY: the worker's reference keeps it alive.
        let inner = unsafe { this.as_ref() };
        // AcqRel: see `schedule` (a read-modify-write, not a store, on purpose).
        inner.in_worker.swap(false, Ordering::AcqRel);
        // Acquire: pairs with the Release swap in `drain_cache_on_worker`, so the drain
        // below comes after the request's `WAITERS`.
        if inner.drain_on_worker.swap(false, Ordering::Acquire) {
            // SAFETY: the worker's reference, borrowed as an `Arc` for the drain (which takes
            // one) and not dropped here.
            let this = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(this.as_ptr()) });
            if catch_unwind(AssertUnwindSafe(|| Inner::drain_cache(&this))).is_err() {
                tracing::error!(
                    allocator = %inner.name,
                    "a waker or vendor callback panicked on the ks-alloc worker while it \
                     drained the threads' frame caches; the worker goes on"
                );
            }
        }
        // `take_deferred` puts the frames not reached yet back on the stack if this unwinds
        // (it does not: every step is guarded), and then a later pass must serve them.
        let taken = catch_unwind(AssertUnwindSafe(|| {
            inner.free.take_deferred(|index| {
                // A caller's `Waker` woken by the grant may panic. The grant is complete by then,
                // so the panic is reported and the rest of the chain handed off as usual: one
                // bad waker must not strand the other deferred frames, nor stop the worker that
                // serves every allocator.
                // SAFETY: the deferred frame is ours; the worker's reference keeps it alive.
                let done =
                    catch_unwind(AssertUnwindSafe(|| unsafe { Inner::hand_off(this, index) }));
                match done {
                    Ok(HandOff::Pushed { finalize }) => {
                        // The request it was deferred for went away meanwhile (dropped, or
                        // withdrawn at its timeout): the frame went on the free list, which is
                        // a FREEFRAME like any other (behaviour 33). The worker runs at Passive
                        // level, so this delivers at once. A callback's panic (a waker's is
                        // reported by the delivery) is reported, and the teardown below runs
                        // all the same.
                        if inner.events.active()
                            && catch_unwind(AssertUnwindSafe(|| inner.events.fire())).is_err()
                        {
                            tracing::error!(
                                allocator = %inner.name,
                                "a FREEFRAME callback panicked on the ks-alloc worker; the worker \
                                 goes on"
                            );
                        }
                        if finalize {
                            // SAFETY: the last frame came home after close; the worker still
                            // holds its own reference, so the allocator stays valid for the rest
                            // of this pass. A `delete` panic is reported by `finalize`: the
                            // worker has no caller to resume it toward.
                            let _reported = unsafe { Inner::finalize(this.as_ptr()) };
                        }
                    }
                    Ok(HandOff::Granted | HandOff::Reserved) => {}
                    Err(_) => tracing::error!(
                        allocator = %inner.name,
                        frame = index,
                        "a waker or vendor callback panicked on the ks-alloc worker while it \
                         completed a Dispatch-level free; the worker goes on"
                    ),
                }
            })
        }));
        if taken.is_err() {
            tracing::error!(
                allocator = %inner.name,
                "the ks-alloc worker's pass over the deferred frames panicked; the frames not \
                 reached yet wait for another pass"
            );
            // SAFETY: the worker's reference keeps it alive; the reference taken here is the
            // one `schedule` consumes.
            unsafe {
                Arc::increment_strong_count(this.as_ptr());
                Inner::schedule(this.as_ptr());
            }
        }
        if catch_unwind(AssertUnwindSafe(|| inner.events.deliver_deferred())).is_err() {
            tracing::error!(
                allocator = %inner.name,
                "a FREEFRAME callback or waker panicked on the ks-alloc worker; the worker goes on"
            );
        }
        // Acquire: pairs with the Release swap in `finalize_here_or_on_worker`. Last: the
        // allocator is closed with every frame home, so nothing above had work left, and
        // after this only the worker's own reference keeps it alive.
        if inner.finalize_on_worker.swap(false, Ordering::Acquire) {
            // SAFETY: a Dispatch-level free brought the last frame home after close and left
            // the teardown to us, with the close reference still held; it is set once. The
            // worker's reference keeps the allocator alive until the pass ends. A `delete`
            // panic is reported by `finalize`.
            let _reported = unsafe { Inner::finalize(this.as_ptr()) };
        }
    }

    /// Dispatch level, after a free was diverted: if no request is pending (the flags only
    /// outlived the queue), clear them and push frame `index` (ours), without blocking: the
    /// waiter lock is only tried. `Some(finalize)` if pushed; `None` if requests are pending
    /// or the lock is busy (the caller then defers the frame to the worker, as KS does).
    ///
    /// # Safety
    /// The caller owns frame `index` of the live allocator `this`; once it is pushed, the
    /// allocator may be torn down by another thread's free.
    unsafe fn push_if_no_waiters(this: *const Inner, index: u32) -> Option<bool> {
        // SAFETY: alive while the frame is ours; a local, not used after the push.
        let inner = unsafe { &*this };
        let q = try_lock(&inner.waiters)?;
        if !q.is_empty() {
            return None;
        }
        inner.free.clear_waiters();
        // Unlocked before the push: once the frame is home, another thread's free may bring
        // the last frame home after close and tear the allocator down, lock included.
        drop(q);
        // SAFETY: still ours, so the list is alive.
        match unsafe { FreeList::push_ptr(&inner.free, index, true) } {
            Push::Pushed { finalize } => Some(finalize),
            // A request queued since the unlock: the worker hands it the frame.
            Push::Diverted => None,
        }
    }

    /// Passive-level slow path: give frame `index` (ours) to the oldest request, or push it
    /// if nobody waits any more.
    ///
    /// # Safety
    /// As `grant_oldest`: once the frame is granted or pushed, the allocator may be gone
    /// unless the caller holds a reference of its own.
    unsafe fn hand_off(this: NonNull<Inner>, index: u32) -> HandOff {
        loop {
            // SAFETY: forwarded; the frame is still ours.
            if let Some(done) = unsafe { Inner::grant_oldest(this, index) } {
                return done;
            }
            // SAFETY: no grant, so the frame is still ours and the allocator alive.
            match unsafe { FreeList::push_ptr(&raw const (*this.as_ptr()).free, index, true) } {
                Push::Pushed { finalize } => return HandOff::Pushed { finalize },
                Push::Diverted => continue,
            }
        }
    }

    /// Under the waiter lock, gives frame `index` (ours) to the oldest request and wakes it
    /// (`Granted`). `None` if no request is pending: the flags outlived the queue, so they
    /// are cleared, and the caller still owns the frame (a request arriving after the unlock
    /// sets them again, and the caller's push then diverts to it). `Pushed` (never
    /// finalizing, a request being pending) if a vendor had no frame for the request.
    ///
    /// # Safety
    /// `this` is alive and the caller owns frame `index`. Once this returns `Granted`, the
    /// allocator may already be gone: the new owner can free the frame and tear it down.
    #[inline(always)]
    unsafe fn grant_oldest(this: NonNull<Inner>, index: u32) -> Option<HandOff> {
        // SAFETY: alive while the frame is ours (close protocol). A local, not a `&self`
        // argument, so it may dangle: after the unlock below it is used only while a
        // reference of our own keeps the allocator alive.
        let inner = unsafe { this.as_ref() };
        let mut q = lock(&inner.waiters);
        let Some((slot, holder)) = q.front() else {
            inner.free.clear_waiters();
            return None;
        };
        Some(match inner.claim(index, holder) {
            Ok(()) => {
                let mut notify = q.grant(&inner.grants, slot, index);
                inner.vendor_queue_emptied(&q);
                // A free made by a FREEFRAME callback, on the thread delivering with the
                // registry lock held: a `Waker` may poll inline and await the next event,
                // which takes that lock, so it is woken once the delivery has unlocked.
                if matches!(notify, Notify::Waker(_)) && inner.events.delivering_here() {
                    if let Notify::Waker(w) = std::mem::take(&mut notify) {
                        inner.events.wake_later(w);
                    }
                }
                // Once the lock is released, the frame's new owner may take it, free it and
                // drop the last handle before our wake. A `Waker` is owned, so waking it
                // touches nothing of the allocator; a thread is woken through its grant word,
                // in the allocator, so a reference of our own keeps it alive until then.
                let futex = matches!(notify, Notify::Futex(_));
                if futex {
                    // SAFETY: `this` comes from the `Arc` (see `frame`) and is alive: a frame
                    // is out and the queue is not empty, so it is neither closed nor torn
                    // down.
                    unsafe { Arc::increment_strong_count(this.as_ptr()) };
                }
                // A region's `WAITERS` stays set even if the queue is now empty: the next
                // free clears it (see `FreeList::clear_waiters`), and a request arriving
                // first finds it set and writes nothing to the free list. (A vendor's was
                // cleared above.)
                drop(q);
                // Woken after unlock, a `Waker` because it may run anything (even poll
                // inline, which takes this lock), a blocked thread because the wake is a
                // system call that can keep us off the CPU for microseconds: under the lock,
                // the woken thread's next request waited for us, and a free that handed off
                // took 9.5 µs at the median instead of 3.8 (`freer p50` of the hand-off
                // bench, BENCHMARKS.md (d)).
                #[cfg(all(test, not(loom)))]
                crate::test_hooks::reach(crate::test_hooks::Point::BetweenUnlockAndWake);
                match notify {
                    Notify::Futex(slot) => {
                        inner.grants.wake(slot);
                        // SAFETY: drops the reference taken above, which may tear the
                        // allocator down; nothing touches it afterwards.
                        unsafe { Arc::decrement_strong_count(this.as_ptr()) };
                    }
                    // Not `*this`: the allocator may be gone (see above).
                    Notify::Waker(w) => wake_granted(w),
                    Notify::None => {}
                }
                HandOff::Granted
            }
            Err(ClaimError::Misaligned(addr)) => {
                // The oldest request fails with the error; the slot goes back and is tried
                // for the requests behind it, which are woken after the unlock too.
                let mut wake = WakeOnDrop::new(&inner.grants);
                wake.notify
                    .push(inner.fail_oldest(&mut q, slot, index, addr));
                // Nobody else waits: the slot is free for anybody (a FREEFRAME).
                let free_for_all = q.is_empty();
                inner.retry_waiting(&mut q, &mut wake.notify);
                // A thread is woken through its grant word, in the allocator, which may be
                // torn down once the lock is released (the slot is home): a reference of our
                // own keeps it alive until the wakes are done.
                // SAFETY: `this` comes from the `Arc` (see `frame`) and is alive: we hold the
                // waiter lock, so it is not closed, and it is not torn down.
                unsafe { Arc::increment_strong_count(this.as_ptr()) };
                drop(q);
                drop(wake);
                // SAFETY: drops the reference taken above; nothing touches it afterwards.
                unsafe { Arc::decrement_strong_count(this.as_ptr()) };
                if free_for_all {
                    HandOff::Pushed { finalize: false }
                } else {
                    HandOff::Reserved
                }
            }
            Err(e) => {
                inner.keep_refused_slot(index, e);
                HandOff::Reserved
            }
        })
    }

    /// [`finalize`](Self::finalize) on this thread at Passive level. At Dispatch level
    /// (a free that brought the last frame home after close, at Dispatch level) the
    /// teardown, the vendor's `delete` and for the default allocator the unmapping, is
    /// handed to the library worker instead, which completes it at Passive level like the
    /// other deferred work: `None` then.
    ///
    /// # Safety
    /// As `finalize`.
    #[must_use = "a vendor `delete` panic, to resume toward the caller or report"]
    pub(crate) unsafe fn finalize_here_or_on_worker(this: *const Inner) -> Option<Panic> {
        if current_level() != Level::Dispatch {
            // SAFETY: forwarded from the caller.
            return unsafe { Inner::finalize(this) };
        }
        // SAFETY: the close reference keeps it alive; the reference taken here is the one
        // `schedule` consumes (the worker's, which keeps it alive through its pass, while
        // `finalize` drops the close reference).
        unsafe { Arc::increment_strong_count(this) };
        // SAFETY: as above.
        let inner = unsafe { &*this };
        // Release: pairs with the worker's Acquire swap in `service`, which then sees
        // everything the frees that brought the frames home did (we saw them: the free list's
        // AcqRel CAS). A swap, as for `drain_on_worker`, so that loom models the pairing of
        // two read-modify-writes; `schedule`'s AcqRel makes sure a pass comes after it.
        inner.finalize_on_worker.swap(true, Ordering::Release);
        // SAFETY: we hold a strong reference, which `schedule` consumes.
        unsafe { Inner::schedule(this) };
        None
    }

    /// Tears the allocator down after close and the last frame: vendor `delete`, then drop
    /// the reference `close` took. A panic in `delete` is caught, so that the reference is
    /// dropped all the same (the allocator does not leak), and returned, for the caller to
    /// resume toward whoever called close or the free (or to report, on the worker).
    ///
    /// # Safety
    /// Called exactly once, by whoever observed "closed and every frame home" atomically, and
    /// with the close reference still held.
    #[must_use = "a vendor `delete` panic, to resume toward the caller or report"]
    pub(crate) unsafe fn finalize(this: *const Inner) -> Option<Panic> {
        // SAFETY: the close reference keeps it alive.
        let inner = unsafe { &*this };
        let mut panicked = None;
        if let Backend::Vendor { vendor, cx, .. } = &inner.backend {
            // SAFETY: no allocate/free can run: the list is closed (no pops) and every slot is
            // home (no frees), and this runs once. So this is the only access to `cx`.
            if let Some(cx) = unsafe { &mut *cx.get() }.take() {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| vendor.dyn_delete(cx))) {
                    tracing::error!(
                        allocator = %inner.name,
                        panic = panic_message(&p),
                        "vendor delete panicked; the allocator is torn down all the same"
                    );
                    panicked = Some(p);
                }
            }
        }
        tracing::debug!(allocator = %inner.name, "allocator torn down");
        // SAFETY: drops the close reference (taken in `close`).
        unsafe { Arc::decrement_strong_count(this) };
        panicked
    }
}

/// Wakes the `Waker` of a request a free has just handed a frame to. A panic is reported,
/// not raised: the request has its frame, and the free (or the worker) must not unwind
/// because of someone else's `Waker` (it would lose what it still had to do, a FREEFRAME
/// event, a teardown, a reference). Touches nothing of the allocator, which may be gone.
fn wake_granted(w: std::task::Waker) {
    if catch_unwind(AssertUnwindSafe(|| w.wake())).is_err() {
        tracing::error!(
            "a request's waker panicked when a free handed it a frame; reported, not raised \
             (the request has its frame)"
        );
    }
}

/// A strong reference to an allocator held by a free's events path: dropped when the guard
/// is (even on unwind), unless handed to the worker ([`schedule`](Self::schedule)).
struct StrongRef(*const Inner);

impl StrongRef {
    /// # Safety
    /// `this` comes from an `Arc<Inner>` and the caller gives this guard a strong reference
    /// it holds.
    unsafe fn new(this: *const Inner) -> StrongRef {
        StrongRef(this)
    }

    /// Hands the reference to the worker (`Inner::schedule`).
    fn schedule(self) {
        let this = std::mem::ManuallyDrop::new(self).0;
        // SAFETY: the guard's strong reference (see `new`), which `schedule` consumes; the
        // guard is not dropped (`ManuallyDrop`), so it is not dropped twice.
        unsafe { Inner::schedule(this) };
    }
}

impl Drop for StrongRef {
    fn drop(&mut self) {
        // SAFETY: the guard's strong reference (see `new`); nothing touches the allocator
        // through this guard afterwards.
        unsafe { Arc::decrement_strong_count(self.0) };
    }
}

enum HandOff {
    Granted,
    Pushed {
        finalize: bool,
    },
    /// A vendor had no memory for the oldest request: the slot went back to the free list,
    /// reserved for the requests still pending (no FREEFRAME: no frame became free for
    /// anybody else; never finalizing: requests are pending).
    Reserved,
}
