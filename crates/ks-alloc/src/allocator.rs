//! The allocator object (KS: the allocator file object).
//!
//! # Implementation details
//!
//! * **Frames** live in slots `0..frames`. For the default allocator slot `i` is the frame at
//!   `base + i * stride` of one [`Region`]; for a vendor allocator a slot is a *permit* whose
//!   address is whatever the vendor's `allocate` returned. Either way the lock-free
//!   [`FreeList`] of slot indices bounds the frames outstanding through both interfaces
//!   together (behaviour 35): allocating is one CAS, freeing one CAS.
//! * **Per-slot metadata** (state, holder tag, time taken, vendor address) is written only by
//!   the slot's current owner, with plain atomic stores (no read-modify-write), and read by
//!   diagnostics. The state tells the raw-address free which addresses are outstanding *as raw
//!   addresses*, so a foreign, double or interior free is refused without touching anything.
//! * **Pending requests** wait in one FIFO [`WaitQueue`] behind a mutex. The free list's
//!   `WAITERS` bit is set while the queue is non-empty; a free that sees it hands the frame to
//!   the oldest request instead of pushing it (behaviour 24), so the outstanding count does not
//!   drop. The grant is published in the request's grant word, which the woken waiter reads
//!   without the lock; a blocked thread sleeps on that word (`futex`), see `waiters.rs`.
//! * **Dispatch level**: such a free, made at Dispatch level, pushes the frame on a lock-free
//!   deferred stack and wakes the library worker, which completes the request (behaviour 25).
//! * **Lifetime / close**: `Allocator` handles hold the `Arc<Inner>`; frames do not (that
//!   would cost two more atomic RMWs per frame). Instead, `close` (explicit, or when the last
//!   handle drops) takes one extra strong reference if frames are still out, and the free
//!   that brings the last frame home (detected atomically in the free-list word) runs the
//!   vendor `delete` and drops that reference. Therefore a free never touches the allocator
//!   after its push unless it holds a reference of its own.
//!
//! # Memory ordering
//!
//! Everything written to a frame before it is freed happens-before everything done with it by
//! the next holder (Release push / Acquire pop, or, on a hand-off, the Release store of the
//! grant word and the waiter's Acquire load of it — or the waiter mutex if the waiter collects
//! under the lock).

use std::cell::UnsafeCell;
use std::fmt;
use std::ptr::NonNull;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::builder::{DEFAULT_MAX_WAITERS, DEFAULT_STARVATION_THRESHOLD};
use crate::events::Events;
use crate::frame::{coarse_now, now_ns, Frame, Holder};
use crate::freelist::{FreeList, Pop, PopOrWait, Push};
use crate::level::{current_level, refuse_blocking, Level};
use crate::loom::{
    lock, Arc, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Mutex, Ordering,
};
use crate::memory::Region;
use crate::vendor::{DynVendor, ErasedContext};
use crate::waiters::{set_waker, Grants, Notify, Polled, Ticket, WaitQueue};
use crate::{AllocatorBuilder, StarvationReport};
use crate::{Framing, Memory, Status};

/// Slot states.
pub(crate) const FREE: u32 = 0;
pub(crate) const HELD: u32 = 1;
pub(crate) const RAW: u32 = 2;
pub(crate) const DEFERRED: u32 = 3;

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

/// Why claiming a slot for a caller failed.
enum ClaimError {
    /// The vendor had no memory ("no frame now").
    NoFrame,
    /// The vendor returned a misaligned address (already returned to the vendor).
    Misaligned(usize),
}

pub(crate) struct Inner {
    pub(crate) free: FreeList,
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
            .field("free", &self.free.free_count())
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
    fn claim(&self, index: u32, holder: Option<&'static Holder>) -> Result<(), ClaimError> {
        let slot = &self.slots[index as usize];
        if let Some((vendor, cx)) = self.vendor_cx() {
            let p = vendor.dyn_allocate(cx).ok_or(ClaimError::NoFrame)?;
            if !self.framing.alignment.is_aligned(p.as_ptr() as usize) {
                vendor.dyn_free(cx, p);
                return Err(ClaimError::Misaligned(p.as_ptr() as usize));
            }
            // Relaxed: the slot is ours; published with the frame (see `frame_ptr`).
            slot.addr.store(p.as_ptr() as usize, Ordering::Relaxed);
        }
        // Relaxed (all three): owner-only writes, read by diagnostics as a snapshot; the frame
        // hand-over orders them for the next owner.
        slot.holder.store(
            holder.map_or(std::ptr::null_mut(), |h| (h as *const Holder).cast_mut()),
            Ordering::Relaxed,
        );
        slot.taken_at.store(coarse_now(), Ordering::Relaxed);
        slot.state.store(HELD, Ordering::Relaxed);
        Ok(())
    }

    /// Claims `index` or returns it to the free list, mapping the failure to a status.
    #[inline(always)]
    fn claim_or_return(
        this: &Arc<Inner>,
        index: u32,
        holder: Option<&'static Holder>,
    ) -> Result<Frame, Status> {
        match this.claim(index, holder) {
            Ok(()) => Ok(this.frame(index)),
            Err(e) => {
                // The caller holds a handle, so finalizing here cannot free `this`.
                if let Push::Pushed { finalize: true } = this.free.push(index, false) {
                    // SAFETY: this push brought the last frame home after close.
                    unsafe { Inner::finalize(Arc::as_ptr(this)) };
                }
                Err(Inner::claim_error(this, e))
            }
        }
    }

    #[cold]
    fn claim_error(this: &Arc<Inner>, e: ClaimError) -> Status {
        match e {
            ClaimError::NoFrame => Status::Unsuccessful(
                "the vendor allocator has no frame now (its allocate returned none)".into(),
            ),
            ClaimError::Misaligned(a) => Status::InvalidParameter(
                format!(
                    "the vendor allocator returned frame address {a:#x}, which is not \
                             aligned to {} bytes as the framing requires; the frame was \
                             returned to the vendor",
                    this.framing.alignment.bytes()
                )
                .into(),
            ),
        }
    }

    #[inline(always)]
    fn frame(&self, index: u32) -> Frame {
        Frame {
            inner: NonNull::from(self),
            ptr: self.frame_ptr(index),
            len: self.frame_size,
            index,
        }
    }

    /// Updates the peak after a pop that left `free` frames on the list.
    #[inline]
    fn note_peak(&self) {
        let out = self.free.capacity() - self.free.free_count();
        // Relaxed: a statistic. The load avoids an RMW (and a cache-line write) unless the
        // peak actually rises.
        if out > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(out, Ordering::Relaxed);
        }
    }

    pub(crate) fn mark_raw(&self, index: u32) {
        // Release: pairs with the AcqRel CAS in `free_raw`, which then sees the frame's
        // final contents... and, more importantly, the state change itself.
        self.slots[index as usize]
            .state
            .store(RAW, Ordering::Release);
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
    pub(crate) unsafe fn release_held(this: NonNull<Inner>, index: u32) {
        // SAFETY: the frame is outstanding, so the allocator is alive (close protocol).
        let inner = unsafe { this.as_ref() };
        // Fast path: default memory, no FREEFRAME subscriber, nobody waiting, not the last
        // frame after close. One store and one CAS; nothing is touched after the push.
        if matches!(inner.backend, Backend::Region(_)) && !inner.events.active() {
            // Relaxed: owner-only; the push below publishes it.
            inner.slots[index as usize]
                .state
                .store(FREE, Ordering::Relaxed);
            match inner.free.push(index, true) {
                Push::Pushed { finalize: false } => {}
                // SAFETY: our push brought the last frame home after close.
                Push::Pushed { finalize: true } => unsafe { Inner::finalize(this.as_ptr()) },
                // SAFETY: we still own frame `index` (not pushed); forwarded contract.
                Push::Diverted => unsafe { Inner::release(this.as_ptr(), index) },
            }
            return;
        }
        // SAFETY: forwarded from the caller.
        unsafe { Inner::release(this.as_ptr(), index) }
    }

    /// The common free path.
    ///
    /// # Safety
    /// As `release_held`. After the frame is back on the free list this function touches
    /// `*this` only while holding a strong reference of its own, because the allocator may be
    /// torn down by another thread as soon as the frame is home.
    #[cold]
    #[inline(never)]
    unsafe fn release(this: *const Inner, index: u32) {
        // SAFETY: the frame is outstanding, so the allocator is alive (close protocol).
        let inner = unsafe { &*this };
        let slot = &inner.slots[index as usize];
        if let Some((vendor, cx)) = inner.vendor_cx() {
            // Relaxed: owner-only slot metadata.
            let a = slot.addr.swap(0, Ordering::Relaxed);
            if let Some(p) = NonNull::new(a as *mut u8) {
                vendor.dyn_free(cx, p);
            }
        }
        // Relaxed: owner-only; the push below publishes it.
        slot.state.store(FREE, Ordering::Relaxed);
        let events = inner.events.active();
        if events {
            // SAFETY: `this` comes from `Arc::as_ptr` and the allocator is alive (frame out).
            unsafe { Arc::increment_strong_count(this) };
        }
        let mut pushed = false;
        let mut finalize = false;
        match inner.free.push(index, true) {
            Push::Pushed { finalize: f } => {
                pushed = true;
                finalize = f;
            }
            Push::Diverted => {
                if current_level() == Level::Dispatch {
                    // SAFETY: we own frame `index` and the allocator is alive.
                    unsafe { Inner::defer(this, index) };
                } else {
                    match inner.hand_off(index) {
                        HandOff::Granted => {}
                        HandOff::Pushed { finalize: f } => {
                            pushed = true;
                            finalize = f;
                        }
                    }
                }
            }
        }
        if events {
            if pushed {
                inner.events.fire();
            }
            if pushed && inner.events.needs_worker() {
                // SAFETY: hands our own strong reference to the worker.
                unsafe { Inner::schedule(this) };
            } else {
                // SAFETY: drops the reference taken above. If `finalize` is set the close
                // reference is still held, so this cannot free the allocator.
                unsafe { Arc::decrement_strong_count(this) };
            }
        }
        if finalize {
            // SAFETY: our push brought the last frame home after close.
            unsafe { Inner::finalize(this) };
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
        // Relaxed: diagnostics only.
        inner.slots[index as usize]
            .state
            .store(DEFERRED, Ordering::Relaxed);
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
        // SeqCst: pairs with the worker's SeqCst `store(false)` before it takes the deferred
        // stack: either the worker's take sees our push, or we see `false` here and schedule
        // another pass (loom model `dispatch_free_vs_worker`).
        if inner.in_worker.swap(true, Ordering::SeqCst) {
            // The worker holds a reference for the pass that will see our work.
            // SAFETY: drops our own reference; the worker's keeps the allocator alive.
            unsafe { Arc::decrement_strong_count(this) };
        } else {
            crate::worker::enqueue(this);
        }
    }

    /// One worker pass over this allocator: complete deferred hand-offs, deliver deferred
    /// events. The caller (the worker) holds a strong reference.
    pub(crate) fn service(&self) {
        // SeqCst: see `schedule`.
        self.in_worker.store(false, Ordering::SeqCst);
        let this = self as *const Inner;
        self.free.take_deferred(|index| {
            if let HandOff::Pushed { finalize: true } = self.hand_off(index) {
                // SAFETY: the last frame came home after close; the worker still holds its
                // own reference, so `self` stays valid for the rest of this pass.
                unsafe { Inner::finalize(this) };
            }
        });
        self.events.deliver_deferred();
    }

    /// Passive-level slow path: give frame `index` (ours) to the oldest request, or push it
    /// if nobody waits any more.
    fn hand_off(&self, index: u32) -> HandOff {
        loop {
            let mut q = lock(&self.waiters);
            if let Some((slot, holder)) = q.front() {
                match self.claim(index, holder) {
                    Ok(()) => {
                        let mut notify = q.grant(&self.grants, slot, index);
                        // A blocked thread is woken at once, still under the lock: it collects
                        // its grant from the grant word without this lock, so it never waits
                        // for us, and the bookkeeping below overlaps with its wake-up (a futex
                        // wake, then being scheduled: several µs) instead of preceding it. A
                        // `Waker` may run anything (even poll inline, which takes this lock),
                        // so it is woken after unlock.
                        if let Notify::Futex(_) = notify {
                            std::mem::take(&mut notify).wake(&self.grants);
                        }
                        if q.is_empty() {
                            self.free.clear_waiters();
                        }
                        drop(q);
                        notify.wake(&self.grants);
                        return HandOff::Granted;
                    }
                    Err(ClaimError::NoFrame) => {
                        // Vendor has no memory: the request stays pending and is retried at
                        // the next free. The queue is non-empty, so the allocator is not
                        // closed and this push cannot finalize.
                        self.free.push(index, false);
                        return HandOff::Pushed { finalize: false };
                    }
                    Err(ClaimError::Misaligned(a)) => {
                        tracing::error!(
                            allocator = %self.name,
                            addr = a,
                            "vendor allocator returned a misaligned frame; refused and returned to the vendor"
                        );
                        self.free.push(index, false);
                        return HandOff::Pushed { finalize: false };
                    }
                }
            }
            self.free.clear_waiters();
            drop(q);
            match self.free.push(index, true) {
                Push::Pushed { finalize } => return HandOff::Pushed { finalize },
                Push::Diverted => continue,
            }
        }
    }

    /// Tears the allocator down after close and the last frame: vendor `delete`, then drop
    /// the reference `close` took.
    ///
    /// # Safety
    /// Called exactly once, by whoever observed "closed and every frame home" atomically, and
    /// with the close reference still held.
    pub(crate) unsafe fn finalize(this: *const Inner) {
        // SAFETY: the close reference keeps it alive.
        let inner = unsafe { &*this };
        if let Backend::Vendor { vendor, cx, .. } = &inner.backend {
            // SAFETY: no allocate/free can run: the list is closed (no pops) and every slot is
            // home (no frees), and this runs once. So this is the only access to `cx`.
            if let Some(cx) = unsafe { &mut *cx.get() }.take() {
                vendor.dyn_delete(cx);
            }
        }
        tracing::debug!(allocator = %inner.name, "allocator torn down");
        // SAFETY: drops the close reference (taken in `close`).
        unsafe { Arc::decrement_strong_count(this) };
    }
}

enum HandOff {
    Granted,
    Pushed { finalize: bool },
}

/// One KS allocator object: a bounded pool of equal, aligned frames with the non-blocking
/// function-table interface ([`try_allocate`](Self::try_allocate)), the queued request
/// interface ([`allocate`](Self::allocate), [`allocate_blocking`](Self::allocate_blocking)),
/// FREEFRAME events, status, and the KS byte surface ([`property`](Self::property) etc.).
///
/// `Allocator` is a cheap handle (`Clone`); the allocator closes when [`close`](Self::close)
/// is called or the last handle is dropped.
///
/// # Policies (KS is silent; ks-spec §10)
/// * Pending requests complete in arrival order, one FIFO queue for async tasks, blocked
///   threads and KS request handles (behaviour 26). A cancelled request leaves the others'
///   order intact.
/// * A cancelled pending request completes with `STATUS_CANCELLED`; so do requests pending at
///   close. Allocating after close fails with `STATUS_INVALID_DEVICE_STATE`.
/// * A blocking allocate that times out fails with `STATUS_DEVICE_NOT_READY`.
/// * Freeing an address that is not outstanding fails with `STATUS_INVALID_PARAMETER`.
/// * `Frames == 0` is refused at creation (`STATUS_INVALID_PARAMETER`).
/// * FREEFRAME fires once per free that puts a frame on the free list (not for hand-offs).
///
/// # Memory ordering
/// Everything written to a frame before it is freed happens-before everything the next
/// holder of that frame does with it.
///
/// # Examples
/// ```
/// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2,
///                         frame_size: 4096, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let a = alloc.try_allocate()?;
/// let b = alloc.try_allocate()?;
/// assert_eq!(a.addr() % 64, 0);
/// assert!(alloc.try_allocate().is_err(), "Frames bounds the outstanding frames");
/// drop(a);
/// let c = alloc.try_allocate()?;
/// # drop((b, c));
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KsCreateDefaultAllocator")]
#[doc(alias = "KsCreateDefaultAllocatorEx")]
pub struct Allocator {
    pub(crate) inner: Arc<Inner>,
}

impl Clone for Allocator {
    fn clone(&self) -> Allocator {
        // Relaxed: a plain reference count; the Arc itself orders the teardown.
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        Allocator {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for Allocator {
    fn drop(&mut self) {
        // AcqRel: the last handle must see every other handle's operations before closing.
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }
}

impl fmt::Debug for Allocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Allocator {
    /// Creates a default allocator (KS: `KsCreateDefaultAllocator`) serving `framing.frames`
    /// frames of `framing.frame_size` bytes from `memory`.
    ///
    /// # Errors
    /// See [`AllocatorBuilder::build`].
    pub fn new(framing: &Framing, memory: Memory) -> Result<Allocator, Status> {
        Allocator::builder(framing).memory(memory).build()
    }

    /// Creates an allocator whose frames come from a vendor allocator (KS:
    /// `KsCreateDefaultAllocatorEx` with `KSALLOCATOR_DISPATCH`). The vendor's `initialize`
    /// runs once, here; see [`VendorAllocator`](crate::VendorAllocator) for the guarantees.
    ///
    /// # Errors
    /// The vendor's `initialize` error, or those of [`AllocatorBuilder::build`].
    pub fn with_vendor(framing: &Framing, vendor: Arc<dyn DynVendor>) -> Result<Allocator, Status> {
        Allocator::builder(framing).vendor(vendor).build()
    }

    /// A builder for further options.
    pub fn builder(framing: &Framing) -> AllocatorBuilder {
        AllocatorBuilder {
            framing: *framing,
            memory: None,
            vendor: None,
            name: None,
            max_waiters: DEFAULT_MAX_WAITERS,
            starvation_threshold: Some(DEFAULT_STARVATION_THRESHOLD),
        }
    }

    /// # Safety
    /// `inner` comes from `Arc::as_ptr` of a live `Arc<Inner>`.
    pub(crate) unsafe fn from_inner_ptr(inner: NonNull<Inner>) -> Allocator {
        // SAFETY: forwarded from the caller.
        unsafe { Arc::increment_strong_count(inner.as_ptr().cast_const()) };
        // SAFETY: the count was just incremented for this new Arc.
        let inner = unsafe { Arc::from_raw(inner.as_ptr().cast_const()) };
        // Relaxed: plain count, see `Clone`.
        inner.handles.fetch_add(1, Ordering::Relaxed);
        Allocator { inner }
    }

    /// The function-table allocate (KS: `KSSTREAMALLOCATOR_FUNCTIONTABLE.AllocateFrame`):
    /// never blocks, never queues, never touches the heap or makes a system call.
    ///
    /// # Errors
    /// * `STATUS_UNSUCCESSFUL` at once when no frame is free (behaviour 31);
    /// * `STATUS_NOT_SUPPORTED` when the memory is not non-paged: the function table is not
    ///   offered then (behaviour 29);
    /// * `STATUS_INVALID_DEVICE_STATE` after [`close`](Self::close) (behaviour 36).
    #[doc(alias = "AllocateFrame")]
    #[inline]
    pub fn try_allocate(&self) -> Result<Frame, Status> {
        self.try_allocate_inner(None)
    }

    /// [`try_allocate`](Self::try_allocate), recording `holder` as the frame's holder.
    ///
    /// # Errors
    /// As [`try_allocate`](Self::try_allocate).
    #[inline]
    pub fn try_allocate_for(&self, holder: &'static Holder) -> Result<Frame, Status> {
        self.try_allocate_inner(Some(holder))
    }

    #[inline]
    fn try_allocate_inner(&self, holder: Option<&'static Holder>) -> Result<Frame, Status> {
        if !self.inner.memory.is_dispatch_safe() {
            return Err(self.no_function_table());
        }
        match self.inner.free.pop() {
            Pop::Frame(i) => {
                self.inner.note_peak();
                Inner::claim_or_return(&self.inner, i, holder)
            }
            Pop::Empty => {
                // Relaxed: a statistic.
                self.inner.failed_try.fetch_add(1, Ordering::Relaxed);
                Err(Status::Unsuccessful("no free frame".into()))
            }
            Pop::Closed => Err(closed_status()),
        }
    }

    fn no_function_table(&self) -> Status {
        Status::NotSupported(
            "the function table (non-blocking allocate) is offered only for non-paged memory; \
             this allocator's memory may page-fault (use allocate() or allocate_blocking())"
                .into(),
        )
    }

    /// Allocates a frame: completes at once if one is free, otherwise waits in the FIFO queue
    /// shared with every other caller (KS: `KSMETHOD_STREAMALLOCATOR_ALLOC` returning
    /// `STATUS_PENDING`) until a free hands it one.
    ///
    /// # Cancel safety
    /// Dropping the future withdraws the request (KS: `STATUS_CANCELLED`): it consumes no
    /// frame — a frame already handed to it goes on to the next request — and the other
    /// requests keep their order (behaviour 27). The request joins the queue at its first poll.
    ///
    /// # Errors
    /// `STATUS_CANCELLED` if the allocator is closed while the request pends;
    /// `STATUS_INVALID_DEVICE_STATE` if it was closed before; `STATUS_INSUFFICIENT_RESOURCES`
    /// when `max_waiters` requests already pend.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1,
    ///                         frame_size: 256, alignment: Alignment::BYTE };
    /// let alloc = Allocator::new(&framing, Memory::Paged)?;
    /// let frame = block_on(alloc.allocate())?;
    /// assert_eq!(frame.len(), 256);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KSMETHOD_STREAMALLOCATOR_ALLOC")]
    #[inline]
    pub fn allocate(&self) -> crate::Allocate<'_> {
        crate::Allocate::new(self, None)
    }

    /// [`allocate`](Self::allocate), recording `holder`.
    pub fn allocate_for(&self, holder: &'static Holder) -> crate::Allocate<'_> {
        crate::Allocate::new(self, Some(holder))
    }

    /// [`allocate`](Self::allocate) as a `'static` future (it holds a handle), for spawning.
    pub fn allocate_owned(&self) -> crate::AllocateOwned {
        crate::AllocateOwned::new(self.clone(), None)
    }

    /// [`allocate_owned`](Self::allocate_owned), recording `holder`.
    pub fn allocate_owned_for(&self, holder: &'static Holder) -> crate::AllocateOwned {
        crate::AllocateOwned::new(self.clone(), Some(holder))
    }

    /// Allocates a frame, blocking the calling thread in the shared FIFO queue until a frame
    /// is handed to it or `timeout` (if any) elapses.
    ///
    /// # Errors
    /// `STATUS_INVALID_DEVICE_STATE` at Dispatch level (it would block) or after close;
    /// `STATUS_DEVICE_NOT_READY` on timeout (policy); `STATUS_CANCELLED` if closed while
    /// waiting; `STATUS_INSUFFICIENT_RESOURCES` if `max_waiters` requests already pend.
    pub fn allocate_blocking(&self, timeout: Option<Duration>) -> Result<Frame, Status> {
        self.allocate_blocking_inner(timeout, None)
    }

    /// [`allocate_blocking`](Self::allocate_blocking), recording `holder`.
    ///
    /// # Errors
    /// As [`allocate_blocking`](Self::allocate_blocking).
    pub fn allocate_blocking_for(
        &self,
        timeout: Option<Duration>,
        holder: &'static Holder,
    ) -> Result<Frame, Status> {
        self.allocate_blocking_inner(timeout, Some(holder))
    }

    fn allocate_blocking_inner(
        &self,
        timeout: Option<Duration>,
        holder: Option<&'static Holder>,
    ) -> Result<Frame, Status> {
        if current_level() == Level::Dispatch {
            return Err(refuse_blocking("allocate_blocking"));
        }
        let ticket = match self.begin(holder, || Notify::Futex(0))? {
            Begin::Ready(f) => return Ok(f),
            Begin::Queued(t) => t,
        };
        self.wait_ticket(ticket, timeout, true)
    }

    /// Blocks on a queued ticket (Passive level only). `registered`: the request already
    /// names this thread as whom to wake (so the first locked check can be skipped: the
    /// request was queued an instant ago).
    ///
    /// The thread sleeps on its slot's grant word (see `waiters.rs`): it reads the word,
    /// checks the request, and sleeps only while the word still holds what it read, so a
    /// grant or a close between the check and the sleep is never missed.
    pub(crate) fn wait_ticket(
        &self,
        ticket: Ticket,
        timeout: Option<Duration>,
        registered: bool,
    ) -> Result<Frame, Status> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let word = self.inner.grants.word(ticket);
        let mut check = !registered;
        loop {
            // Acquire: as in `Grants::try_collect` (the value is only compared, though).
            let seen = word.load(Ordering::Acquire);
            if let Some(i) = self.inner.grants.try_collect(ticket) {
                return Ok(self.inner.frame(i));
            }
            if check {
                // After a wake-up the grant is normally collected lock-free (`poll_ticket`).
                match self.poll_ticket(ticket, |n| *n = Notify::futex(ticket)) {
                    Polled::Granted(i) => return Ok(self.inner.frame(i)),
                    Polled::Cancelled => return Err(Status::Cancelled),
                    Polled::Queued => {}
                }
            }
            check = true;
            let left = match deadline {
                None => None,
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        if let Some(i) = self.withdraw(ticket) {
                            // Granted just before the timeout: keep it.
                            return Ok(self.inner.frame(i));
                        }
                        return Err(Status::DeviceNotReady(
                            format!(
                                "timed out after {:?} waiting for a frame ({} of {} frames \
                                 outstanding)",
                                timeout.unwrap_or_default(),
                                self.status().allocated_frames,
                                self.inner.framing.frames
                            )
                            .into(),
                        ));
                    }
                    Some(d - now)
                }
            };
            sleep_on(word, seen, left);
        }
    }

    /// Lock-free first attempt of a queued allocate (the ready path of `allocate()`): a frame
    /// if one is free and claimable, else `None` (the caller then takes the locked path,
    /// which also reports errors).
    #[inline(always)]
    pub(crate) fn fast_frame(&self, holder: Option<&'static Holder>) -> Option<Frame> {
        let inner = &self.inner;
        let Pop::Frame(i) = inner.free.pop() else {
            return None;
        };
        inner.note_peak();
        if inner.claim(i, holder).is_ok() {
            return Some(inner.frame(i));
        }
        // Vendor refused: return the slot; the locked path retries and reports.
        if let Push::Pushed { finalize: true } = inner.free.push(i, false) {
            // SAFETY: last frame home after close; we hold a handle.
            unsafe { Inner::finalize(Arc::as_ptr(inner)) };
        }
        None
    }

    /// First step of a queued allocate: a frame now, or a place in the queue.
    pub(crate) fn begin(
        &self,
        holder: Option<&'static Holder>,
        notify: impl FnOnce() -> Notify,
    ) -> Result<Begin, Status> {
        let inner = &self.inner;
        // Fast path: no lock.
        match inner.free.pop() {
            Pop::Frame(i) => {
                inner.note_peak();
                match inner.claim(i, holder) {
                    Ok(()) => return Ok(Begin::Ready(inner.frame(i))),
                    Err(ClaimError::Misaligned(_)) => {
                        return Inner::claim_or_return_err(inner, i, holder)
                    }
                    Err(ClaimError::NoFrame) => {
                        if let Push::Pushed { finalize: true } = inner.free.push(i, false) {
                            // SAFETY: last frame home after close; we hold a handle.
                            unsafe { Inner::finalize(Arc::as_ptr(inner)) };
                        }
                    }
                }
            }
            Pop::Closed => return Err(closed_status()),
            Pop::Empty => {}
        }
        let mut q = lock(&inner.waiters);
        match inner.free.pop_or_wait() {
            PopOrWait::Frame(i) => {
                inner.note_peak();
                match inner.claim(i, holder) {
                    Ok(()) => return Ok(Begin::Ready(inner.frame(i))),
                    Err(ClaimError::Misaligned(_)) => {
                        drop(q);
                        return Inner::claim_or_return_err(inner, i, holder);
                    }
                    Err(ClaimError::NoFrame) => {
                        // Vendor has no memory although a slot is free: wait for a free.
                        inner.free.push(i, false);
                        inner.free.set_waiters();
                    }
                }
            }
            PopOrWait::Closed => return Err(closed_status()),
            PopOrWait::Wait => {}
        }
        match q.enqueue(&inner.grants, notify(), holder) {
            Some(t) => Ok(Begin::Queued(t)),
            None => {
                if q.is_empty() {
                    inner.free.clear_waiters();
                }
                Err(Status::InsufficientResources(
                    format!(
                        "{} requests are already pending on allocator {}; max_waiters is {} \
                             (raise it with Allocator::builder().max_waiters(..))",
                        q.len(),
                        inner.name,
                        q.capacity()
                    )
                    .into(),
                ))
            }
        }
    }

    /// Checks a queued request, updating how it wants to be woken.
    /// A granted frame is taken without the lock (the freer published it in the slot's grant
    /// word); otherwise the request is checked under the lock.
    #[inline]
    pub(crate) fn poll_ticket(&self, t: Ticket, notify: impl FnOnce(&mut Notify)) -> Polled {
        if let Some(i) = self.inner.grants.try_collect(t) {
            return Polled::Granted(i);
        }
        lock(&self.inner.waiters).poll(&self.inner.grants, t, notify)
    }

    pub(crate) fn poll_ticket_waker(&self, t: Ticket, waker: &std::task::Waker) -> Polled {
        self.poll_ticket(t, |n| set_waker(n, waker))
    }

    /// Withdraws a request. A frame already granted to it is returned to the caller.
    pub(crate) fn withdraw(&self, t: Ticket) -> Option<u32> {
        let mut q = lock(&self.inner.waiters);
        let granted = q.remove(&self.inner.grants, t);
        if q.is_empty() && !self.inner.free.is_closed() {
            self.inner.free.clear_waiters();
        }
        granted
    }

    /// Withdraws a request and frees any frame it had been granted (cancellation).
    pub(crate) fn cancel(&self, t: Ticket) {
        if let Some(i) = self.withdraw(t) {
            // SAFETY: frame `i` was granted to this request and is now ours; we hold a handle.
            unsafe { Inner::release(Arc::as_ptr(&self.inner), i) };
        }
    }

    pub(crate) fn frame_from_grant(&self, i: u32) -> Frame {
        self.inner.frame(i)
    }

    /// Frees a frame given by address (KS: `KSMETHOD_STREAMALLOCATOR_FREE` or
    /// `KSSTREAMALLOCATOR_FUNCTIONTABLE.FreeFrame`), as produced by [`Frame::into_raw`].
    /// Never blocks.
    ///
    /// # Errors
    /// `STATUS_INVALID_PARAMETER` (policy, ks-spec §10 item 5) if `addr` is not the start of a
    /// frame this allocator has outstanding as a raw address: foreign, already freed, interior,
    /// or held by a live [`Frame`]. Nothing changes then.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1,
    ///                         frame_size: 64, alignment: Alignment::BYTE };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let addr = alloc.try_allocate()?.into_raw();
    /// alloc.free_raw(addr)?;
    /// assert!(alloc.free_raw(addr).is_err(), "double free refused");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "FreeFrame")]
    #[doc(alias = "KSMETHOD_STREAMALLOCATOR_FREE")]
    pub fn free_raw(&self, addr: usize) -> Result<(), Status> {
        let inner = &self.inner;
        let index = match &inner.backend {
            Backend::Region(r) => r.index_of(addr),
            Backend::Vendor { .. } => inner.slots.iter().position(|s| {
                // Relaxed: a lookup; the state CAS below decides.
                addr != 0 && s.addr.load(Ordering::Relaxed) == addr
            }),
        };
        let Some(index) = index else {
            return Err(not_outstanding(addr, &inner.name));
        };
        // AcqRel: Acquire pairs with `mark_raw`'s Release; only one of two racing frees of
        // the same address can win this CAS.
        if inner.slots[index]
            .state
            .compare_exchange(RAW, HELD, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return Err(not_outstanding(addr, &inner.name));
        }
        // SAFETY: the CAS made us the frame's unique owner; we hold a handle.
        unsafe { Inner::release(Arc::as_ptr(inner), index as u32) };
        Ok(())
    }

    /// Closes the allocator (KS: closing the allocator handle): pending requests complete with
    /// `STATUS_CANCELLED`, new allocations fail, FREEFRAME subscriptions end. Frames already
    /// out stay valid until they come back; a vendor's `delete` runs after the last one.
    /// Idempotent; also happens when the last handle is dropped.
    ///
    /// A frame that never comes back (a `Frame` leaked with `mem::forget`, or a raw address
    /// never freed) keeps the allocator's memory mapped and its vendor not deleted: that is
    /// the price of frames not holding a reference count of their own.
    pub fn close(&self) {
        let inner = &self.inner;
        let mut q = lock(&inner.waiters);
        if inner.free.is_closed() {
            return;
        }
        // The close reference: keeps the allocator alive for frames still out.
        // SAFETY: we hold a handle, so the pointer is live.
        unsafe { Arc::increment_strong_count(Arc::as_ptr(inner)) };
        let (_, finalize) = inner.free.close();
        let wake = q.cancel_all(&inner.grants);
        drop(q);
        for n in wake {
            n.wake(&inner.grants);
        }
        inner.events.close();
        crate::worker::unwatch(inner);
        if finalize {
            // SAFETY: every frame was home when we closed; we hold a handle too.
            unsafe { Inner::finalize(Arc::as_ptr(inner)) };
        }
    }

    /// Whether [`close`](Self::close) has run.
    pub fn is_closed(&self) -> bool {
        self.inner.free.is_closed()
    }

    /// The creation framing.
    pub fn framing(&self) -> &Framing {
        &self.inner.framing
    }

    /// The memory kind.
    pub fn memory(&self) -> Memory {
        self.inner.memory
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> usize {
        self.inner.frame_size
    }

    /// The diagnostics name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the function table is offered (non-paged memory, behaviour 29).
    pub fn offers_function_table(&self) -> bool {
        self.inner.memory.is_dispatch_safe()
    }

    /// Whether two handles refer to the same allocator.
    pub fn same(&self, other: &Allocator) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// Sleeps while `word` holds `seen`, at most `timeout` (may return early: callers re-check).
#[cfg(not(loom))]
fn sleep_on(word: &AtomicU32, seen: u32, timeout: Option<Duration>) {
    use rustix::thread::futex;
    let ts = timeout.map(|t| rustix::time::Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    // EAGAIN (the word changed), EINTR and ETIMEDOUT all mean "re-check", which the caller
    // does.
    let _ = futex::wait(word, futex::Flags::PRIVATE, seen, ts.as_ref());
}

/// Loom: a sleeper spins (loom explores the schedules in which the grant arrives meanwhile).
#[cfg(loom)]
fn sleep_on(_word: &AtomicU32, _seen: u32, _timeout: Option<Duration>) {
    loom::thread::yield_now();
}

/// First step of a queued allocate.
pub(crate) enum Begin {
    Ready(Frame),
    Queued(Ticket),
}

impl Inner {
    fn claim_or_return_err(
        this: &Arc<Inner>,
        index: u32,
        _holder: Option<&'static Holder>,
    ) -> Result<Begin, Status> {
        // The vendor frame was already returned; return the slot and report.
        if let Push::Pushed { finalize: true } = this.free.push(index, false) {
            // SAFETY: last frame home after close; the caller holds a handle.
            unsafe { Inner::finalize(Arc::as_ptr(this)) };
        }
        Err(Status::InvalidParameter(
            format!(
                "the vendor allocator returned a frame address not aligned to {} bytes as the \
                 framing requires; the frame was returned to the vendor",
                this.framing.alignment.bytes()
            )
            .into(),
        ))
    }
}

pub(crate) fn closed_status() -> Status {
    Status::InvalidDeviceState("the allocator is closed".into())
}

fn not_outstanding(addr: usize, name: &str) -> Status {
    Status::InvalidParameter(
        format!(
            "frame address {addr:#x} is not a frame allocator {name} has outstanding as a raw \
             address (foreign, already freed, interior pointer, or held by a Frame)"
        )
        .into(),
    )
}
