//! Status and diagnostics: `KSSTREAMALLOCATOR_STATUS` with extended counters, the "who holds
//! my frame" registry and starvation reports, and the shared memory of `Memory::User`.

use std::fmt;
use std::time::Duration;

use crate::allocator::{Backend, DEFERRED, Inner, RAW, STATE_MASK};
use crate::frame::{OutstandingFrame, now_ns};
use crate::loom::{Ordering, lock};
use crate::{Allocator, Framing};

/// Allocator status: `KSSTREAMALLOCATOR_STATUS` (framing and allocated frames, behaviours
/// 19-20) plus extended counters.
///
/// ```
/// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let frame = alloc.try_allocate()?;
/// let s = alloc.status();
/// assert_eq!((s.allocated_frames, s.peak_allocated_frames, s.pending), (1, 1, 0));
/// assert_eq!(s.framing, framing);
/// assert!(!s.closed);
/// # drop(frame);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KSSTREAMALLOCATOR_STATUS")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorStatus {
    /// The framing the allocator was created with.
    pub framing: Framing,
    /// Frames currently outstanding through both interfaces (`AllocatedFrames`).
    #[doc(alias = "AllocatedFrames")]
    pub allocated_frames: u32,
    /// Most frames ever outstanding at once, counting with them the frames that threads
    /// kept for their next allocate (see [`AllocatorBuilder::thread_cache`]): the high-water
    /// mark of frames off the free list. So it may exceed the true outstanding peak by at
    /// most one frame per thread that frees. With thread caches off it is exact but for
    /// races: an allocate that meets a concurrent free may count that frame as free (the
    /// free counts it before it sets the frame's bit), or a slot another thread is returning
    /// after a vendor refused it as taken. A refused frame itself never counts.
    ///
    /// [`AllocatorBuilder::thread_cache`]: crate::AllocatorBuilder::thread_cache
    pub peak_allocated_frames: u32,
    /// Free frames kept in threads' caches for their next allocate (see
    /// [`AllocatorBuilder::thread_cache`]). They count as free: not in `allocated_frames`,
    /// and any allocate that finds the free list empty takes them. Always 0 while requests
    /// are pending, after close, with thread caches off and for vendor allocators.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::builder(&framing).thread_cache(false).build()?;
    /// drop(alloc.try_allocate()?);
    /// assert_eq!(alloc.status().cached_frames, 0);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    ///
    /// [`AllocatorBuilder::thread_cache`]: crate::AllocatorBuilder::thread_cache
    pub cached_frames: u32,
    /// Requests pending now.
    pub pending: u32,
    /// Most requests ever pending at once.
    pub max_pending: u32,
    /// Frames granted to pending requests: by a free that completed one directly, or (a
    /// vendor allocator) by a new request retrying the vendor for an older one. A grant the
    /// request then gave up, by being cancelled before it took its frame, is not counted.
    pub handoffs: u64,
    /// Non-blocking allocates that found no free frame (or whose vendor had none).
    pub failed_try_allocates: u64,
    /// Whether the allocator is closed.
    pub closed: bool,
}

impl AllocatorStatus {
    /// Size of `KSSTREAMALLOCATOR_STATUS`, the reply of the STATUS property and the length
    /// of [`to_ks_bytes`](Self::to_ks_bytes).
    ///
    /// ```
    /// use ks_alloc::AllocatorStatus;
    /// assert_eq!(AllocatorStatus::KS_SIZE, size_of::<ks_sys::KSSTREAMALLOCATOR_STATUS>());
    /// ```
    pub const KS_SIZE: usize = 32;

    /// The 32-byte `KSSTREAMALLOCATOR_STATUS`: framing, `AllocatedFrames`, `Reserved` = 0.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Allocator, AllocatorStatus, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let _frame = alloc.try_allocate()?;
    /// let b = alloc.status().to_ks_bytes();
    /// assert_eq!(b.len(), AllocatorStatus::KS_SIZE);
    /// assert_eq!(&b[..24], &framing.to_bytes());
    /// assert_eq!(&b[24..28], &1u32.to_le_bytes(), "AllocatedFrames");
    /// assert_eq!(&b[28..], &[0; 4], "Reserved");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn to_ks_bytes(&self) -> [u8; Self::KS_SIZE] {
        let mut b = [0u8; 32];
        b[..24].copy_from_slice(&self.framing.to_bytes());
        b[24..28].copy_from_slice(&self.allocated_frames.to_le_bytes());
        b
    }
}

/// A request pending longer than the starvation threshold, and who holds the frames.
///
/// ```
/// use std::{future::Future, pin::pin, task::{Context, Waker}, time::Duration};
/// use ks_alloc::{Alignment, Allocator, Framing, Holder, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::builder(&framing)
///     .name("enc.in")
///     .starvation_threshold(Some(Duration::ZERO))
///     .build()?;
/// let _held = alloc.try_allocate_for(&Holder("decoder.out"))?;
/// let mut request = pin!(alloc.allocate());
/// assert!(request.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
/// let report = alloc.starvation_report().expect("a request waits");
/// assert_eq!((report.pending, report.holders[0].holder), (1, Some("decoder.out")));
/// assert!(report.to_string().starts_with("allocator enc.in: 1 request(s) pending"));
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarvationReport {
    /// The allocator's name.
    pub allocator: String,
    /// How long the oldest request has been waiting.
    pub waiting_for: Duration,
    /// Requests pending.
    pub pending: u32,
    /// The outstanding frames and their holders, longest-held first.
    pub holders: Vec<OutstandingFrame>,
}

impl fmt::Display for StarvationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "allocator {}: {} request(s) pending, oldest for {:?}; {} frame(s) held:",
            self.allocator,
            self.pending,
            self.waiting_for,
            self.holders.len()
        )?;
        for h in &self.holders {
            if h.in_transit {
                write!(f, " [#{} in transit to the oldest request]", h.index)?;
                continue;
            }
            write!(
                f,
                " [#{} {} for {:?}{}]",
                h.index,
                h.holder.unwrap_or("<untagged>"),
                h.held_for,
                if h.raw { ", raw" } else { "" }
            )?;
        }
        Ok(())
    }
}

impl Allocator {
    /// Status (KS: `KSPROPERTY_STREAMALLOCATOR_STATUS`, behaviours 19-20) with extended
    /// counters.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let frame = alloc.try_allocate()?;
    /// assert!(alloc.try_allocate().is_err());
    /// drop(frame);
    /// let s = alloc.status();
    /// assert_eq!((s.allocated_frames, s.failed_try_allocates), (0, 1));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KSPROPERTY_STREAMALLOCATOR_STATUS")]
    pub fn status(&self) -> AllocatorStatus {
        let inner = &self.inner;
        let q = lock(&inner.waiters);
        let cached_frames = inner.cache.cached();
        AllocatorStatus {
            framing: inner.framing,
            allocated_frames: inner.off_list_count().saturating_sub(cached_frames),
            cached_frames,
            // Relaxed (both): statistics.
            peak_allocated_frames: inner.peak.load(Ordering::Relaxed),
            pending: q.len(),
            max_pending: q.max_len,
            handoffs: q.handoffs,
            failed_try_allocates: inner.failed_try.load(Ordering::Relaxed),
            closed: inner.free.is_closed(),
        }
    }

    /// The outstanding frames and who holds them, longest-held first.
    ///
    /// ```
    /// use ks_alloc::Holder;
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let tagged = alloc.try_allocate_for(&Holder("left"))?;
    /// let raw = alloc.try_allocate()?.into_raw();
    /// let out = alloc.outstanding();
    /// assert_eq!(out.len(), 2);
    /// assert!(out.iter().any(|o| o.addr == tagged.addr() && o.holder == Some("left") && !o.raw));
    /// assert!(out.iter().any(|o| o.addr == raw && o.holder.is_none() && o.raw));
    /// alloc.free_raw(raw)?;
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn outstanding(&self) -> Vec<OutstandingFrame> {
        self.inner.outstanding()
    }

    /// A starvation report if a request has pended longer than the threshold now.
    ///
    /// ```
    /// use std::{future::Future, pin::pin, task::{Context, Waker}, time::Duration};
    /// # use ks_alloc::{Alignment, Allocator, Framing, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::builder(&framing).starvation_threshold(Some(Duration::ZERO)).build()?;
    /// assert!(alloc.starvation_report().is_none(), "no request pending");
    /// let _held = alloc.try_allocate()?;
    /// let mut request = pin!(alloc.allocate());
    /// assert!(request.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    /// assert_eq!(alloc.starvation_report().map(|r| r.pending), Some(1));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn starvation_report(&self) -> Option<StarvationReport> {
        self.inner.starvation_report()
    }

    /// The last starvation report the allocator emitted (as a `tracing` warning), if any.
    /// The library worker checks every 50 ms.
    ///
    /// ```
    /// use std::{future::Future, pin::pin, task::{Context, Waker}};
    /// use std::time::{Duration, Instant};
    /// # use ks_alloc::{Alignment, Allocator, Framing, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::builder(&framing).starvation_threshold(Some(Duration::ZERO)).build()?;
    /// assert!(alloc.last_starvation_report().is_none());
    /// let _held = alloc.try_allocate()?;
    /// let mut request = pin!(alloc.allocate());
    /// assert!(request.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    /// // The worker's next scan emits the report.
    /// let give_up = Instant::now() + Duration::from_secs(10); // a loaded machine's bound
    /// while alloc.last_starvation_report().is_none() && Instant::now() < give_up {
    ///     std::thread::sleep(Duration::from_millis(5));
    /// }
    /// assert_eq!(alloc.last_starvation_report().map(|r| r.pending), Some(1));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn last_starvation_report(&self) -> Option<StarvationReport> {
        lock(&self.inner.last_starvation).clone()
    }

    /// For [`Memory::User`](crate::Memory::User): the shared memory that holds the frames, so another process can
    /// map them.
    ///
    /// Limits: only the allocator's own region is shared (`None` for a vendor allocator,
    /// whatever memory its vendor reports); the memfd is sealed at its size (another process
    /// can neither shrink nor grow it); and a frame alignment above one page holds at the
    /// offsets given but not in another process's mapping, which the kernel aligns to a page.
    ///
    /// ```
    /// use std::os::unix::fs::FileExt;
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 2, frame_size: 100, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::User)?;
    /// let mut frame = alloc.allocate_blocking(None)?;
    /// frame[..5].copy_from_slice(b"hello");
    /// let sm = alloc.shared_memory().expect("user memory is shared");
    /// let memfd = std::fs::File::from(sm.fd.try_clone_to_owned().unwrap());
    /// let mut seen = [0u8; 5];
    /// let at = sm.frame_offset(frame.index().unwrap()).unwrap();
    /// memfd.read_exact_at(&mut seen, at as u64).unwrap();
    /// assert_eq!(&seen, b"hello");
    /// // Sealed: the other side cannot pull the pages from under this process.
    /// assert!(memfd.set_len(0).is_err());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn shared_memory(&self) -> Option<SharedMemory<'_>> {
        match &self.inner.backend {
            Backend::Region(r) => {
                let (fd, base_offset, len) = r.shared()?;
                let l = r.layout();
                Some(SharedMemory {
                    fd,
                    len,
                    base_offset,
                    stride: l.stride,
                    frames: l.frames,
                })
            }
            Backend::Vendor { .. } => None,
        }
    }
}

/// The memfd of a [`Memory::User`](crate::Memory::User) allocator and where its frames lie in it.
///
/// ```
/// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 2, frame_size: 100, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::User)?;
/// let sm = alloc.shared_memory().expect("user memory is shared");
/// assert_eq!((sm.frames, sm.stride), (2, 128), "the frame size rounded up to 64");
/// assert!(sm.base_offset + sm.frames * sm.stride <= sm.len);
/// assert!(Allocator::new(&framing, Memory::Paged)?.shared_memory().is_none());
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SharedMemory<'a> {
    /// The memfd (map it `MAP_SHARED` with `len` bytes).
    pub fd: std::os::fd::BorrowedFd<'a>,
    /// Length of the memfd in bytes.
    pub len: usize,
    /// Offset of frame 0.
    pub base_offset: usize,
    /// Distance between frames.
    pub stride: usize,
    /// Number of frames.
    pub frames: usize,
}

impl SharedMemory<'_> {
    /// Byte offset of frame `index` in the memfd.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 2, frame_size: 100, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::User)?;
    /// let sm = alloc.shared_memory().expect("user memory is shared");
    /// assert_eq!(sm.frame_offset(0), Some(sm.base_offset));
    /// assert_eq!(sm.frame_offset(1), Some(sm.base_offset + sm.stride));
    /// assert_eq!(sm.frame_offset(2), None, "there are two frames");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn frame_offset(&self, index: usize) -> Option<usize> {
        (index < self.frames).then(|| self.base_offset + index * self.stride)
    }
}

impl Inner {
    /// The outstanding frames and who holds them, longest-held first.
    ///
    /// Which frames are out comes from a snapshot of the free list's bitmap (exact for each
    /// word of 32 frames, see `FreeList::snapshot_free`); the holder and the time taken are
    /// read from each slot afterwards, so a frame changing hands meanwhile may be listed with
    /// its previous or its new holder.
    pub(crate) fn outstanding(&self) -> Vec<OutstandingFrame> {
        let inner = self;
        let now = now_ns();
        let mut free = vec![false; inner.slots.len()];
        inner.free.snapshot_free(&mut free);
        inner.cache.mark_free(&mut free);
        let mut v: Vec<OutstandingFrame> = inner
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                if free[i] {
                    return None;
                }
                // Relaxed (all): a diagnostics snapshot (see above).
                let state = s.state.load(Ordering::Relaxed) & STATE_MASK;
                // A `DEFERRED` frame off the free list is on the worker's deferred stack: the
                // free that put it there cleared its holder's claim (a claim restores `HELD`).
                let in_transit = state == DEFERRED;
                let h = s.holder.load(Ordering::Relaxed);
                // SAFETY: non-null holder pointers are only ever stored from `&'static Holder`.
                let holder = (!h.is_null() && !in_transit).then(|| unsafe { &*h }.0);
                Some(OutstandingFrame {
                    index: i,
                    addr: inner.frame_ptr(i as u32).as_ptr() as usize,
                    holder,
                    held_for: Duration::from_nanos(
                        now.saturating_sub(s.taken_at.load(Ordering::Relaxed)),
                    ),
                    raw: state == RAW,
                    in_transit,
                })
            })
            .collect();
        v.sort_by_key(|o| std::cmp::Reverse(o.held_for));
        v
    }

    /// A starvation report if a request has pended longer than the threshold now.
    pub(crate) fn starvation_report(&self) -> Option<StarvationReport> {
        let threshold = self.starvation_threshold?;
        let (since, pending) = {
            let q = lock(&self.waiters);
            (q.oldest_since()?, q.len())
        };
        let waiting_for = since.elapsed();
        (waiting_for >= threshold).then(|| StarvationReport {
            allocator: self.name.clone(),
            waiting_for,
            pending,
            holders: self.outstanding(),
        })
    }

    /// Emits a starvation report if one is due and none was emitted for the current episode.
    /// Allocates only to build a report: while nothing starves, or once the current episode
    /// has been reported, it takes the waiter lock, reads one timestamp and returns.
    pub(crate) fn check_starvation(&self) {
        let Some(threshold) = self.starvation_threshold else {
            return;
        };
        let starving = lock(&self.waiters)
            .oldest_since()
            .is_some_and(|since| since.elapsed() >= threshold);
        if !starving {
            // Relaxed: only the worker (and tests) call this; a duplicate report is benign.
            self.starving_since_reported.store(false, Ordering::Relaxed);
            return;
        }
        // Relaxed: as above.
        if self.starving_since_reported.load(Ordering::Relaxed) {
            return;
        }
        // The queue may have moved since: the report re-reads it (and is `None` if the
        // starving request was served meanwhile).
        if let Some(r) = self.starvation_report() {
            // Relaxed: as above.
            if !self.starving_since_reported.swap(true, Ordering::Relaxed) {
                tracing::warn!(allocator = %r.allocator, pending = r.pending, "{r}");
                *lock(&self.last_starvation) = Some(r);
            }
        }
    }
}
