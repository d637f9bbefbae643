//! The allocator object (KS: the allocator file object).
//!
//! # Implementation details
//!
//! * **Frames** live in slots `0..frames`. For the default allocator slot `i` is the frame at
//!   `base + i * stride` of one [`Region`](crate::memory::Region); for a vendor allocator a slot is a *permit* whose
//!   address is whatever the vendor's `allocate` returned. Either way the lock-free
//!   [`FreeList`](crate::freelist::FreeList) of slot indices bounds the frames outstanding through both interfaces
//!   together (behaviour 35): allocating is one CAS, freeing one CAS. A thread's free is
//!   usually kept in its [`FrameCache`](crate::cache::FrameCache) slot instead (no RMW), and
//!   its next allocate swaps it out; a cached frame stays free for everybody (`cache.rs`).
//! * **Per-slot metadata** (state, holder tag, time taken, vendor address) is written only by
//!   the slot's current owner, with plain atomic stores (no read-modify-write), and read by
//!   diagnostics. The state tells the raw-address free which addresses are outstanding *as raw
//!   addresses*, so a foreign, double or interior free is refused without touching anything.
//! * **Pending requests** wait in one FIFO [`WaitQueue`](crate::waiters::WaitQueue) behind a mutex. The free list's
//!   `WAITERS` bit is set while the queue is non-empty (and may outlive it until the next free,
//!   which clears it); a free that sees it hands the frame to the oldest request instead of
//!   pushing it (behaviour 24), so the outstanding count does not drop; a `Frame`'s free
//!   that sees the flag goes to the waiter lock at once (`release_flagged`). The grant is
//!   published in the request's grant word, which the woken waiter reads without the lock; a
//!   blocked thread sleeps on that word (`futex`), see `waiters.rs`.
//! * **Dispatch level**: such a free, made at Dispatch level, pushes the frame on a lock-free
//!   deferred stack and wakes the library worker, which completes the request (behaviour 25).
//! * **Lifetime / close**: `Allocator` handles hold the `Arc<Inner>`; frames do not (that
//!   would cost two more atomic RMWs per frame). Instead, `close` (explicit, or when the last
//!   handle drops) takes one extra strong reference if frames are still out, and the free
//!   that brings the last frame home (detected atomically in the free-list word) runs the
//!   vendor `delete` and drops that reference. Therefore a free never touches the allocator
//!   after its push unless it holds a reference of its own.
//!
//! # Files
//!
//! * `mod.rs`: the public [`Allocator`] handle: creation, the function table, the raw-address
//!   free, close.
//! * `inner.rs`: the shared state ([`Inner`]), claiming a slot for a caller, and every free
//!   path (fast push, hand-off to a waiter, deferral to the worker, teardown).
//! * `queued.rs`: the request interface's engine: a frame now or a place in the queue,
//!   polling, withdrawing and blocking on a request.
//!
//! # Memory ordering
//!
//! Everything written to a frame before it is freed happens-before everything done with it by
//! the next holder (Release push / Acquire pop, or, on a hand-off, the Release store of the
//! grant word and the waiter's Acquire load of it — or the waiter mutex if the waiter collects
//! under the lock).

mod inner;
mod queued;

pub(crate) use inner::{Backend, DEFERRED, HELD, Inner, RAW, STATE_MASK, Slot};
pub(crate) use queued::Begin;

use std::fmt;
use std::ptr::NonNull;
use std::time::Duration;

use crate::AllocatorBuilder;
use crate::builder::{DEFAULT_MAX_WAITERS, DEFAULT_STARVATION_THRESHOLD};
use crate::frame::{Frame, Holder};
use crate::freelist::{NO_HINT, NoFrame};
use crate::loom::{Arc, Ordering, lock};
use crate::vendor::DynVendor;
use crate::{Framing, Memory, Status, TryAllocateError};

/// One KS allocator object: a bounded pool of equal, aligned frames with the non-blocking
/// function-table interface ([`try_allocate`](Self::try_allocate)), the queued request
/// interface ([`allocate`](Self::allocate), [`allocate_blocking`](Self::allocate_blocking)),
/// FREEFRAME events, status, and the KS byte surface ([`property`](Self::property) etc.).
///
/// `Allocator` is a cheap handle (`Clone`); the allocator closes when [`close`](Self::close)
/// is called or the last handle is dropped. FREEFRAME subscriptions and owned allocate
/// futures hold a handle too, so they keep the allocator open while they live (a callback
/// that captures a handle of its own allocator keeps it open until unsubscribed).
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
    ///
    /// ```
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 2,
    ///                         frame_size: 256, alignment: Alignment::QUAD };
    /// let alloc = Allocator::new(&framing, Memory::Paged)?;
    /// assert_eq!(alloc.status().allocated_frames, 0);
    /// assert!(Allocator::new(&Framing { frames: 0, ..framing }, Memory::Paged).is_err());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn new(framing: &Framing, memory: Memory) -> Result<Allocator, Status> {
        Allocator::builder(framing).memory(memory).build()
    }

    /// Creates an allocator whose frames come from a vendor allocator (KS:
    /// `KsCreateDefaultAllocatorEx` with `KSALLOCATOR_DISPATCH`). The vendor's `initialize`
    /// runs once, here; see [`VendorAllocator`](crate::VendorAllocator) for the guarantees.
    ///
    /// # Errors
    /// The vendor's `initialize` error, or those of [`AllocatorBuilder::build`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_alloc::{Alignment, Allocator, CommonBuffer, Framing, PoolType};
    /// let dev = CommonBuffer { name: "dma0", max_frame_size: 4096, max_frames: 4,
    ///                          alignment: Alignment::BYTES_256 };
    /// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2,
    ///                         frame_size: 1024, alignment: Alignment::BYTE };
    /// let alloc = Allocator::with_vendor(&framing, Arc::new(dev))?;
    /// assert_eq!(alloc.try_allocate()?.addr() % 256, 0, "the device's alignment applies");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn with_vendor(framing: &Framing, vendor: Arc<dyn DynVendor>) -> Result<Allocator, Status> {
        Allocator::builder(framing).vendor(vendor).build()
    }

    /// A builder for further options.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTE };
    /// let alloc = Allocator::builder(&framing).name("mixer.in").max_waiters(8).build()?;
    /// assert_eq!(alloc.name(), "mixer.in");
    /// assert_eq!(alloc.memory(), Memory::Paged, "by default, from the framing's pool type");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn builder(framing: &Framing) -> AllocatorBuilder {
        AllocatorBuilder {
            framing: *framing,
            memory: None,
            vendor: None,
            name: None,
            max_waiters: DEFAULT_MAX_WAITERS,
            starvation_threshold: Some(DEFAULT_STARVATION_THRESHOLD),
            thread_cache: true,
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
    /// never blocks, never queues, never touches the heap or makes a system call, failing
    /// included.
    ///
    /// # Errors
    /// A [`TryAllocateError`], which converts into the KS [`Status`]:
    /// * [`Empty`](TryAllocateError::Empty) (`STATUS_UNSUCCESSFUL`) at once when no frame is
    ///   free (behaviour 31);
    /// * [`NotOffered`](TryAllocateError::NotOffered) (`STATUS_NOT_SUPPORTED`) when the memory
    ///   is not non-paged: the function table is not offered then (behaviour 29);
    /// * [`Closed`](TryAllocateError::Closed) (`STATUS_INVALID_DEVICE_STATE`) after
    ///   [`close`](Self::close) (behaviour 36);
    /// * [`VendorEmpty`](TryAllocateError::VendorEmpty) or
    ///   [`VendorMisaligned`](TryAllocateError::VendorMisaligned) when a vendor allocator has
    ///   no memory now or returned a misaligned address.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType, TryAllocateError};
    /// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1,
    ///                         frame_size: 64, alignment: Alignment::BYTE };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let frame = alloc.try_allocate()?;
    /// assert_eq!(alloc.try_allocate().unwrap_err(), TryAllocateError::Empty, "no waiting");
    /// drop(frame);
    /// assert!(alloc.try_allocate().is_ok());
    /// let paged = Allocator::new(&framing, Memory::Paged)?;
    /// assert_eq!(paged.try_allocate().unwrap_err(), TryAllocateError::NotOffered);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "AllocateFrame")]
    #[inline]
    pub fn try_allocate(&self) -> Result<Frame, TryAllocateError> {
        self.try_allocate_inner(None)
    }

    /// [`try_allocate`](Self::try_allocate), recording `holder` as the frame's holder.
    ///
    /// # Errors
    /// As [`try_allocate`](Self::try_allocate).
    ///
    /// ```
    /// use ks_alloc::Holder;
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let frame = alloc.try_allocate_for(&Holder("scaler.in"))?;
    /// let out = alloc.outstanding();
    /// assert_eq!((out[0].index, out[0].holder), (frame.index().unwrap(), Some("scaler.in")));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[inline]
    pub fn try_allocate_for(&self, holder: &'static Holder) -> Result<Frame, TryAllocateError> {
        self.try_allocate_inner(Some(holder))
    }

    #[inline]
    fn try_allocate_inner(
        &self,
        holder: Option<&'static Holder>,
    ) -> Result<Frame, TryAllocateError> {
        if !self.inner.memory.is_dispatch_safe() {
            return Err(TryAllocateError::NotOffered);
        }
        if let Some(i) = self.inner.cache.take() {
            return Inner::claim_or_return(&self.inner, i, holder, NO_HINT);
        }
        if self.inner.vendor_queue_ahead() {
            // A vendor's free slot is the pending requests' (FIFO): none for this one now.
            // Relaxed: a statistic.
            self.inner.failed_try.fetch_add(1, Ordering::Relaxed);
            return Err(TryAllocateError::Empty);
        }
        match self.inner.free.pop_hinted() {
            Ok(t) => {
                let frame = Inner::claim_or_return(&self.inner, t.index, holder, t.hint);
                if frame.is_ok() {
                    // Only a claimed frame counts: a vendor's refused slot went back.
                    self.inner.note_peak(t.left);
                }
                frame
            }
            Err(NoFrame::Empty) => match self.steal_cached() {
                Some(i) => Inner::claim_or_return(&self.inner, i, holder, NO_HINT),
                None => Err(TryAllocateError::Empty),
            },
            Err(NoFrame::Closed) => Err(TryAllocateError::Closed),
        }
    }

    /// The free list is empty: the index of a frame another thread cached, taken from its
    /// cache, or `None` (counted as a failed non-blocking allocate).
    ///
    /// An index, not a `Frame`: a cold call that returned the whole `Result` would write it
    /// through memory, and the hot paths of `try_allocate_inner`, which share its result,
    /// would then build every frame on the stack too (five stores per allocate, which the
    /// next atomic read-modify-write must wait to drain; BENCHMARKS.md (a), twelfth round).
    #[cold]
    #[inline(never)]
    fn steal_cached(&self) -> Option<u32> {
        let i = self.inner.cache.steal();
        if i.is_none() {
            // Relaxed: a statistic.
            self.inner.failed_try.fetch_add(1, Ordering::Relaxed);
        }
        i
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
    /// when all `max_waiters` waiter records are in use (pending requests, plus completed ones
    /// whose owners have not yet taken their frames).
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
    ///
    /// ```
    /// use ks_alloc::{bench::block_on, Holder};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::Paged)?;
    /// let frame = block_on(alloc.allocate_for(&Holder("encoder.in")))?;
    /// assert_eq!(alloc.outstanding()[0].holder, Some("encoder.in"));
    /// # drop(frame);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn allocate_for(&self, holder: &'static Holder) -> crate::Allocate<'_> {
        crate::Allocate::new(self, Some(holder))
    }

    /// [`allocate`](Self::allocate) as a `'static` future (it holds a handle), for spawning.
    ///
    /// ```
    /// use ks_alloc::bench::block_on;
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::Paged)?;
    /// let request = alloc.allocate_owned(); // 'static: it may move to another thread
    /// let frame = std::thread::spawn(move || block_on(request)).join().unwrap()?;
    /// assert_eq!(frame.len(), alloc.frame_size());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn allocate_owned(&self) -> crate::AllocateOwned {
        crate::AllocateOwned::new(self.clone(), None)
    }

    /// [`allocate_owned`](Self::allocate_owned), recording `holder`.
    ///
    /// ```
    /// use ks_alloc::{bench::block_on, Holder};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::Paged)?;
    /// let request = alloc.allocate_owned_for(&Holder("net.tx"));
    /// let frame = std::thread::spawn(move || block_on(request)).join().unwrap()?;
    /// assert_eq!(alloc.outstanding()[0].holder, Some("net.tx"));
    /// # drop(frame);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn allocate_owned_for(&self, holder: &'static Holder) -> crate::AllocateOwned {
        crate::AllocateOwned::new(self.clone(), Some(holder))
    }

    /// Allocates a frame, blocking the calling thread in the shared FIFO queue until a frame
    /// is handed to it or `timeout` (if any) elapses.
    ///
    /// # Errors
    /// `STATUS_INVALID_DEVICE_STATE` at Dispatch level (it would block) or after close;
    /// `STATUS_DEVICE_NOT_READY` on timeout (policy; a timeout too long for the clock to
    /// represent is no timeout); `STATUS_CANCELLED` if closed while
    /// waiting; `STATUS_INSUFFICIENT_RESOURCES` if all `max_waiters` waiter records are in use
    /// (pending requests, plus completed ones not yet collected).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType, Status};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::Paged)?;
    /// let held = alloc.allocate_blocking(None)?; // a frame is free: no wait
    /// let r = alloc.allocate_blocking(Some(Duration::from_millis(10)));
    /// assert!(matches!(r, Err(Status::DeviceNotReady(_))), "timed out");
    /// drop(held);
    /// assert!(alloc.allocate_blocking(Some(Duration::from_millis(10))).is_ok());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn allocate_blocking(&self, timeout: Option<Duration>) -> Result<Frame, Status> {
        self.allocate_blocking_inner(timeout, None)
    }

    /// [`allocate_blocking`](Self::allocate_blocking), recording `holder`.
    ///
    /// # Errors
    /// As [`allocate_blocking`](Self::allocate_blocking).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ks_alloc::{Holder, Status};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::Paged)?;
    /// let held = alloc.allocate_blocking(None)?;
    /// std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| {
    ///         alloc.allocate_blocking_for(Some(Duration::from_secs(5)), &Holder("render"))
    ///     });
    ///     while alloc.status().pending == 0 && !waiter.is_finished() {
    ///         std::thread::yield_now();
    ///     }
    ///     drop(held); // hands the frame to the blocked thread
    ///     let frame = waiter.join().unwrap()?;
    ///     assert_eq!(alloc.outstanding()[0].holder, Some("render"));
    /// #   drop(frame);
    ///     Ok::<(), Status>(())
    /// })?;
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn allocate_blocking_for(
        &self,
        timeout: Option<Duration>,
        holder: &'static Holder,
    ) -> Result<Frame, Status> {
        self.allocate_blocking_inner(timeout, Some(holder))
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
        // The slot, and its state word as seen when the lookup matched (Acquire: pairs with
        // `mark_raw`'s Release, so a vendor slot's address read after it is the one of that
        // raw generation, or later).
        let found = match &inner.backend {
            Backend::Region(r) => r
                .index_of(addr)
                .map(|i| (i, inner.slots[i].state.load(Ordering::Acquire))),
            // A vendor's addresses are whatever it returned: a scan of the slots, O(Frames)
            // (docs/allocator.md). The address is checked again after the state load, so
            // that the pair belongs to one raw generation.
            Backend::Vendor { .. } => inner.slots.iter().enumerate().find_map(|(i, s)| {
                // Relaxed (the first): a filter; the state load and the second read decide.
                if addr == 0 || s.addr.load(Ordering::Relaxed) != addr {
                    return None;
                }
                let state = s.state.load(Ordering::Acquire);
                // Relaxed: ordered after the Acquire load above.
                (s.addr.load(Ordering::Relaxed) == addr).then_some((i, state))
            }),
        };
        let Some((index, state)) = found.filter(|&(_, s)| s & STATE_MASK == RAW) else {
            return Err(not_outstanding(addr, &inner.name));
        };
        // The CAS expects the very state word the lookup saw: `RAW` *in that generation*.
        // Only one of two racing frees of the same address can win it; and a loser whose
        // lookup ran before the winner freed the frame, and the slot was reused for another
        // address and marked raw again, finds a new generation and fails, rather than free
        // that other address. (Without the generation it could: it looked up `X`, the slot
        // now holds `Y`, and its state is `RAW` again.) AcqRel: Release so that a later
        // owner's writes to the slot's address happen after our reads of it (it cannot
        // hand us a later address yet let the CAS succeed); Acquire as the load above.
        if inner.slots[index]
            .state
            .compare_exchange(
                state,
                state & !STATE_MASK | HELD,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
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
    /// Idempotent; also happens when the last handle is dropped (subscriptions and owned
    /// allocate futures count as handles).
    ///
    /// A frame that never comes back (a `Frame` leaked with `mem::forget`, or a raw address
    /// never freed) keeps the allocator's memory mapped and its vendor not deleted: that is
    /// the price of frames not holding a reference count of their own.
    ///
    /// Every allocate that starts after `close` returns fails. One running on another thread
    /// during `close` may still get the frame that thread had cached (policy: see
    /// docs/allocator.md). The requests' wakers are woken once the allocator's state is
    /// final, before the vendor's `delete`; if one panics, the others are still woken and
    /// the panic then reaches the caller of `close`. A vendor `delete` that panics (when no
    /// frame is out, it runs here) does not keep the cancelled requests asleep nor leak the
    /// allocator: it reaches the caller of `close` once the teardown is complete.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType, Status, TryAllocateError};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let mut frame = alloc.try_allocate()?;
    /// alloc.close();
    /// assert_eq!(alloc.try_allocate().unwrap_err(), TryAllocateError::Closed);
    /// assert!(matches!(alloc.allocate_blocking(None), Err(Status::InvalidDeviceState(_))));
    /// frame[0] = 1; // a frame already out stays valid until it comes back
    /// drop(frame);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
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
        let cancelled = q.cancel_all(&inner.grants);
        drop(q);
        // Taken out under the registry lock, dropped and woken here after it: dropping a
        // callback may free a frame, whose delivery takes that lock.
        let crate::events::Closed { callbacks, wakers } = inner.events.close();
        crate::worker::unwatch(inner);
        // Frames cached by threads are free: bring them home (the last one may finalize).
        Inner::drain_cache(inner);
        // Woken once the allocator's state is final, and before the vendor's `delete`: a
        // caller's `Waker` may panic, and so may `delete`, and neither may keep the
        // cancelled requests asleep (`wake_all` wakes them all, then resumes the first
        // waker panic, which is held here until the teardown is done). Our handle keeps the
        // grant words alive.
        let woken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // A callback's drop that panics does not keep anybody asleep either.
            let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                drop(callbacks);
            }));
            crate::waiters::wake_all(cancelled, wakers, &inner.grants);
            if let Err(p) = dropped {
                std::panic::resume_unwind(p);
            }
        }));
        let deleted = if finalize {
            // SAFETY: every frame was home when we closed; we hold a handle too.
            unsafe { Inner::finalize_here_or_on_worker(Arc::as_ptr(inner)) }
        } else {
            None
        };
        if let Err(p) = woken {
            std::panic::resume_unwind(p);
        }
        if let Some(p) = deleted {
            inner::resume_vendor_panic(p, "delete");
        }
    }

    /// Whether [`close`](Self::close) has run.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let handle = alloc.clone();
    /// assert!(!alloc.is_closed());
    /// handle.close(); // closes the allocator, not just this handle
    /// assert!(alloc.is_closed());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.free.is_closed()
    }

    /// The creation framing.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// assert_eq!(*alloc.framing(), framing);
    /// assert_eq!(alloc.framing().frames, 2);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn framing(&self) -> &Framing {
        &self.inner.framing
    }

    /// The memory kind.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// assert_eq!(Allocator::new(&framing, Memory::User)?.memory(), Memory::User);
    /// let default = Allocator::builder(&framing).build()?;
    /// assert_eq!(default.memory(), Memory::Paged, "from the framing's pool type");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn memory(&self) -> Memory {
        self.inner.memory
    }

    /// Bytes per frame.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 100, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let frame = alloc.try_allocate()?;
    /// assert_eq!(alloc.frame_size(), 100);
    /// assert_eq!(frame.len(), alloc.frame_size());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn frame_size(&self) -> usize {
        self.inner.frame_size
    }

    /// The diagnostics name.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// assert_eq!(Allocator::new(&framing, Memory::Paged)?.name(), "allocator");
    /// let named = Allocator::builder(&framing).name("capture.out").build()?;
    /// assert_eq!(named.name(), "capture.out");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the function table is offered (non-paged memory, behaviour 29).
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// assert!(Allocator::new(&framing, Memory::NonPaged)?.offers_function_table());
    /// let paged = Allocator::new(&framing, Memory::Paged)?;
    /// assert!(!paged.offers_function_table());
    /// assert!(paged.try_allocate().is_err());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn offers_function_table(&self) -> bool {
        self.inner.memory.is_dispatch_safe()
    }

    /// Whether two handles refer to the same allocator.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let a = Allocator::new(&framing, Memory::NonPaged)?;
    /// let b = Allocator::new(&framing, Memory::NonPaged)?;
    /// assert!(a.same(&a.clone()));
    /// assert!(!a.same(&b), "equal framings, different allocators");
    /// assert!(a.try_allocate()?.allocator().same(&a));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn same(&self, other: &Allocator) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

pub(crate) fn closed_status() -> Status {
    TryAllocateError::Closed.status()
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
