//! [`AllocatorBuilder`]: creating an allocator from a framing and a memory kind or vendor.

use std::cell::UnsafeCell;
use std::fmt;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::allocator::{Backend, HELD, Inner, Slot};
use crate::cache::FrameCache;
use crate::events::Events;
use crate::freelist::{FreeList, MAX_FRAMES};
use crate::loom::{Arc, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Mutex};
use crate::memory::{Layout, Region};
use crate::vendor::DynVendor;
use crate::waiters::{Grants, WaitQueue};
use crate::{Allocator, Framing, Memory, Status};

/// Default number of waiter records (see [`AllocatorBuilder::max_waiters`]).
///
/// ```
/// use ks_alloc::DEFAULT_MAX_WAITERS;
/// # use ks_alloc::{Alignment, Allocator, Framing, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
/// assert_eq!(DEFAULT_MAX_WAITERS, 1024);
/// let alloc = Allocator::builder(&framing).max_waiters(4 * DEFAULT_MAX_WAITERS).build()?;
/// assert_eq!(alloc.status().pending, 0);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub const DEFAULT_MAX_WAITERS: u32 = 1024;
/// Largest [`AllocatorBuilder::max_waiters`] accepted: 65 536 waiter records, about 5 MiB
/// allocated at creation. A larger bound is refused with
/// `STATUS_INVALID_PARAMETER` rather than attempted (a slab of billions of records would
/// abort the process).
///
/// ```
/// use ks_alloc::{MAX_WAITERS, Status};
/// # use ks_alloc::{Alignment, Allocator, Framing, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTE };
/// assert!(Allocator::builder(&framing).max_waiters(MAX_WAITERS).build().is_ok());
/// let err = Allocator::builder(&framing).max_waiters(u32::MAX).build().unwrap_err();
/// assert!(matches!(err, Status::InvalidParameter(_)));
/// assert!(err.to_string().contains("max_waiters is 4294967295"), "{err}");
/// ```
pub const MAX_WAITERS: u32 = 1 << 16;
/// Default starvation threshold (see [`AllocatorBuilder::starvation_threshold`]).
///
/// ```
/// use std::time::Duration;
/// use ks_alloc::DEFAULT_STARVATION_THRESHOLD;
/// # use ks_alloc::{Alignment, Allocator, Framing, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
/// assert_eq!(DEFAULT_STARVATION_THRESHOLD, Duration::from_secs(1));
/// let threshold = Some(DEFAULT_STARVATION_THRESHOLD / 4);
/// let alloc = Allocator::builder(&framing).starvation_threshold(threshold).build()?;
/// assert!(alloc.starvation_report().is_none(), "nothing waits");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub const DEFAULT_STARVATION_THRESHOLD: Duration = Duration::from_secs(1);

/// Builds an [`Allocator`] with options beyond [`Allocator::new`].
///
/// ```
/// use std::time::Duration;
/// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 4,
///                         frame_size: 1024, alignment: Alignment::BYTE };
/// let alloc = Allocator::builder(&framing)
///     .memory(Memory::Paged)
///     .name("decoder.out")
///     .max_waiters(16)
///     .starvation_threshold(Some(Duration::from_millis(250)))
///     .build()?;
/// assert_eq!(alloc.name(), "decoder.out");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[must_use]
pub struct AllocatorBuilder {
    pub(crate) framing: Framing,
    pub(crate) memory: Option<Memory>,
    pub(crate) vendor: Option<Arc<dyn DynVendor>>,
    pub(crate) name: Option<String>,
    pub(crate) max_waiters: u32,
    pub(crate) starvation_threshold: Option<Duration>,
    pub(crate) thread_cache: bool,
}

impl fmt::Debug for AllocatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllocatorBuilder")
            .field("framing", &self.framing)
            .field("memory", &self.memory)
            .field("vendor", &self.vendor.as_ref().map(|v| v.name()))
            .field("name", &self.name)
            .field("max_waiters", &self.max_waiters)
            .field("starvation_threshold", &self.starvation_threshold)
            .field("thread_cache", &self.thread_cache)
            .finish()
    }
}

impl AllocatorBuilder {
    /// Default allocator over this kind of memory (default: from the framing's pool type).
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::builder(&framing).memory(Memory::Paged).build()?;
    /// assert_eq!(alloc.memory(), Memory::Paged, "instead of the pool type's NonPaged");
    /// assert!(!alloc.offers_function_table());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn memory(mut self, memory: Memory) -> Self {
        self.memory = Some(memory);
        self
    }

    /// Vendor allocator (KS: `KSALLOCATOR_DISPATCH`) instead of the default memory.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_alloc::DefaultVendor;
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::builder(&framing)
    ///     .vendor(Arc::new(DefaultVendor { memory: Memory::Paged }))
    ///     .name("heap.pool")
    ///     .build()?;
    /// assert_eq!(alloc.memory(), Memory::Paged, "the vendor's memory");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn vendor(mut self, vendor: Arc<dyn DynVendor>) -> Self {
        self.vendor = Some(vendor);
        self
    }

    /// A name for diagnostics (default `"allocator"`).
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::builder(&framing).name(format!("pin{}.out", 3)).build()?;
    /// assert_eq!(alloc.name(), "pin3.out");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Bound on simultaneously pending requests (default [`DEFAULT_MAX_WAITERS`], at most
    /// [`MAX_WAITERS`]). Waiter records are allocated once, at creation, so that queueing
    /// never touches the heap. A record is in use from the request's queueing until its owner
    /// has taken its frame (a completed request whose task has not run yet still holds one);
    /// a request that finds them all in use fails with `STATUS_INSUFFICIENT_RESOURCES`.
    ///
    /// ```
    /// use std::{future::Future, pin::pin, task::{Context, Waker}, time::Duration};
    /// use ks_alloc::Status;
    /// # use ks_alloc::{Alignment, Allocator, Framing, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::builder(&framing).max_waiters(1).build()?;
    /// let _held = alloc.allocate_blocking(None)?;
    /// let mut first = pin!(alloc.allocate());
    /// assert!(first.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    /// let second = alloc.allocate_blocking(Some(Duration::from_millis(10)));
    /// assert!(matches!(second, Err(Status::InsufficientResources(_))), "refused at once");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn max_waiters(mut self, n: u32) -> Self {
        self.max_waiters = n;
        self
    }

    /// A request pending longer than this makes the allocator emit a starvation report naming
    /// the frames' holders (`None` disables; default [`DEFAULT_STARVATION_THRESHOLD`]).
    ///
    /// ```
    /// use std::{future::Future, pin::pin, task::{Context, Waker}, time::Duration};
    /// # use ks_alloc::{Alignment, Allocator, Framing, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let watched = Allocator::builder(&framing).starvation_threshold(Some(Duration::ZERO));
    /// let alloc = watched.build()?;
    /// let _held = alloc.try_allocate()?;
    /// let mut request = pin!(alloc.allocate());
    /// assert!(request.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    /// assert!(alloc.starvation_report().is_some());
    /// let unwatched = Allocator::builder(&framing).starvation_threshold(None).build()?;
    /// assert!(unwatched.starvation_report().is_none());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn starvation_threshold(mut self, t: Option<Duration>) -> Self {
        self.starvation_threshold = t;
        self
    }

    /// Whether a thread keeps the frame it frees for its own next allocate (default `true`;
    /// default memory only). A cached frame is still free for everybody: the status counts it
    /// free, a non-blocking allocate that finds no other frame takes it from the thread that
    /// cached it, and none stays cached while requests are pending or after close.
    ///
    /// With it, a thread that allocates and frees in turn pays one atomic read-modify-write
    /// per frame instead of two, and threads that each do so share no cache line. The price:
    /// on Linux, a request that starts the queue (the first to wait since the queue last
    /// emptied) and [`close`](Allocator::close) each make one `membarrier` system call, which
    /// briefly interrupts the process's other running threads. Turn it off for allocators
    /// whose requests wait often and whose other threads must never be interrupted.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1,
    ///                         frame_size: 64, alignment: Alignment::BYTE };
    /// let alloc = Allocator::builder(&framing).thread_cache(false).build()?;
    /// drop(alloc.try_allocate()?);
    /// assert_eq!(alloc.status().allocated_frames, 0);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn thread_cache(mut self, on: bool) -> Self {
        self.thread_cache = on;
        self
    }

    /// Creates the allocator.
    ///
    /// # Errors
    /// * `STATUS_INVALID_PARAMETER`: `frames` is 0 or above [`MAX_FRAMES`]
    ///   (policy: a KS allocator with `Frames == 0` would be unbounded; we refuse it), or
    ///   `frame_size` is 0, or the pool type is unknown (checked also when
    ///   [`memory`](Self::memory) or a vendor decides where the frames live).
    /// * `STATUS_INSUFFICIENT_RESOURCES`: memory could not be mapped or locked (the message
    ///   names `RLIMIT_MEMLOCK` and the bytes asked for), or the worker thread could not start.
    /// * whatever the vendor's `initialize` returns.
    ///
    /// ```
    /// use ks_alloc::Status;
    /// # use ks_alloc::{Alignment, Allocator, Framing, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::builder(&framing).build()?;
    /// assert_eq!(alloc.framing().frames, 2);
    /// let empty = Framing { frame_size: 0, ..framing };
    /// let err = Allocator::builder(&empty).build().unwrap_err();
    /// assert!(matches!(err, Status::InvalidParameter(_)));
    /// let unknown = Framing { pool_type: PoolType(99), ..framing };
    /// let err = Allocator::builder(&unknown).memory(ks_alloc::Memory::NonPaged).build().unwrap_err();
    /// assert!(err.to_string().contains("PoolType is 99"), "{err}");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn build(self) -> Result<Allocator, Status> {
        let f = self.framing;
        if f.frames == 0 || f.frames > MAX_FRAMES {
            return Err(Status::InvalidParameter(
                format!(
                    "Frames is {}; must be 1..={MAX_FRAMES} (policy: 0 would mean an unbounded \
                     allocator, which KS leaves undefined; one allocator holds at most \
                     {MAX_FRAMES} frames)",
                    f.frames
                )
                .into(),
            ));
        }
        if self.max_waiters > MAX_WAITERS {
            return Err(Status::InvalidParameter(
                format!(
                    "max_waiters is {}; must be at most {MAX_WAITERS} (policy: waiter records \
                     are allocated at creation)",
                    self.max_waiters
                )
                .into(),
            ));
        }
        if f.frame_size == 0 {
            return Err(Status::InvalidParameter(
                "FrameSize is 0; must be at least 1".into(),
            ));
        }
        // Checked whatever serves the frames: the status reports the pool type as given.
        let pool_memory = Memory::from_pool(f.pool_type)?;
        crate::worker::ensure_started()?;
        let (backend, memory) = match self.vendor {
            Some(vendor) => {
                let memory = vendor.memory();
                let name = vendor.name();
                let cx = vendor.dyn_initialize(&f)?;
                (
                    Backend::Vendor {
                        vendor,
                        cx: UnsafeCell::new(Some(cx)),
                        name,
                    },
                    memory,
                )
            }
            None => {
                let memory = self.memory.unwrap_or(pool_memory);
                let layout = Layout::new(
                    f.frames as usize,
                    f.frame_size as usize,
                    f.alignment.bytes() as usize,
                )?;
                (Backend::Region(Region::new(layout, memory)?), memory)
            }
        };
        let slots = (0..f.frames)
            .map(|_| Slot {
                state: AtomicU32::new(HELD),
                holder: AtomicPtr::new(std::ptr::null_mut()),
                taken_at: AtomicU64::new(0),
                addr: AtomicUsize::new(0),
            })
            .collect();
        // Only the default memory caches: a vendor's frames go back to the vendor at each
        // free, which a cache would postpone.
        let cache_slots = match backend {
            Backend::Region(_) if self.thread_cache => f.frames,
            _ => 0,
        };
        let inner = Arc::new(Inner {
            free: FreeList::new(f.frames),
            cache: FrameCache::new(cache_slots),
            slots,
            backend,
            frame_size: f.frame_size as usize,
            framing: f,
            memory,
            waiters: CachePadded::new(Mutex::new(WaitQueue::new(self.max_waiters))),
            grants: Grants::new(self.max_waiters),
            events: Events::new(),
            peak: CachePadded::new(AtomicU32::new(0)),
            failed_try: CachePadded::new(AtomicU64::new(0)),
            handles: AtomicUsize::new(1),
            in_worker: AtomicBool::new(false),
            drain_on_worker: AtomicBool::new(false),
            finalize_on_worker: AtomicBool::new(false),
            worker_next: AtomicPtr::new(std::ptr::null_mut()),
            name: self.name.unwrap_or_else(|| "allocator".to_string()),
            starvation_threshold: self.starvation_threshold,
            last_starvation: Mutex::new(None),
            starving_since_reported: AtomicBool::new(false),
        });
        crate::worker::allocator_created();
        // The worker's scan reports starvation, and retries a vendor that had no memory for
        // pending requests (`Inner::retry_vendor`).
        if self.starvation_threshold.is_some() || inner.is_vendor() {
            crate::worker::watch(&inner);
        }
        Ok(Allocator { inner })
    }
}
