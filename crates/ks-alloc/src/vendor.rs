//! Vendor allocators (KS: `KSALLOCATOR_DISPATCH` — `InitializeAllocator`, `Allocate`, `Free`,
//! `DeleteAllocator`), the default allocator as one of them ([`DefaultVendor`]), and the
//! example device allocator [`CommonBuffer`].
//!
//! # Contract guaranteed by the allocator object (behaviours 16-18, 42)
//!
//! * `initialize` runs exactly once, during [`Allocator::with_vendor`](crate::Allocator::with_vendor),
//!   before anything else; if it fails, creation fails with its status and nothing else is
//!   ever called.
//! * `allocate` and `free` receive only the context `initialize` returned, in any interleaving,
//!   from any thread (possibly at Dispatch level: they must not block).
//! * `allocate` returning `None` means "no frame now": a non-blocking allocate fails with
//!   `STATUS_UNSUCCESSFUL`, a queued request stays pending and is retried at the next free,
//!   when a new request arrives (which queues behind it: FIFO holds), and by the library
//!   worker every 50 ms.
//! * An address not aligned as the framing asks is refused (`STATUS_INVALID_PARAMETER` to the
//!   caller, also to a queued request, which then completes with it) and handed straight
//!   back to `free`.
//! * At most `framing.frames` frames are outstanding at once (the allocator's slots bound it).
//! * `delete` runs exactly once, after the allocator is closed and the last frame has come
//!   back, and nothing is called after it. It runs at Passive level: on the thread that
//!   closed the allocator or freed the last frame, or, if that free was made at Dispatch
//!   level, on the library worker.

use std::any::Any;
use std::fmt;
use std::ptr::NonNull;

use crate::freelist::{FreeList, Pop, Push};
use crate::memory::{Layout, Region};
use crate::{Framing, Memory, Status};

/// A vendor allocator (KS: `KSALLOCATOR_DISPATCH`).
///
/// # Safety
/// Every pointer `allocate` returns must be valid for reads and writes of
/// `framing.frame_size` bytes, those bytes must be initialized (any values, e.g. zeroed or
/// left from the frame's last use), and they must not overlap any other frame outstanding
/// from this context, from the moment it is returned until it is passed to `free` (the
/// allocator hands those bytes out as `&[u8]` and `&mut [u8]`, and reading uninitialized
/// memory through them would be undefined behaviour).
///
/// The callbacks should not panic. If one does, the allocator stays whole: no frame slot is
/// lost, and it recovers once the vendor does.
/// * `allocate` called for a caller's own allocate (`try_allocate`, `allocate()`,
///   `allocate_blocking`, a KS ALLOC): the slot goes back, then the panic resumes toward
///   that caller. Called on behalf of a pending request (the worker's 50 ms retry, a new
///   request retrying for older ones, a free handing its slot to the oldest request): it is
///   reported (`tracing` error) and taken for "no frame now"; the request stays pending and
///   is retried, and the worker or the freer goes on.
/// * `free`: the slot goes home all the same (the vendor has had its address), then the
///   panic resumes toward the caller of the free (a `Frame`'s drop, `free_raw`, a KS FREE,
///   or the drop of a request that had been granted the frame); on the worker it is
///   reported.
/// * `delete`: the allocator is torn down all the same (nothing leaks) and, in `close`, the
///   cancelled requests are woken first; the panic then resumes toward the caller of
///   `close` or of the free that brought the last frame home; on the worker it is reported.
///
/// A panic is only reported, never resumed, on a thread that is unwinding already (a
/// `Frame` dropped during a panic), since a second panic would abort the process.
///
/// # Examples
/// ```
/// use std::ptr::NonNull;
/// use std::sync::{Arc, Mutex};
/// use ks_alloc::{Alignment, Allocator, Framing, PoolType, Status, VendorAllocator};
///
/// /// Frames from the Rust heap (for illustration).
/// struct HeapVendor;
/// // SAFETY: each frame is a distinct live, zeroed heap block of `frame_size` bytes until freed.
/// unsafe impl VendorAllocator for HeapVendor {
///     type Context = (std::alloc::Layout, Mutex<u32>);
///     fn initialize(&self, f: &Framing) -> Result<Self::Context, Status> {
///         let l = std::alloc::Layout::from_size_align(f.frame_size as usize, f.alignment.bytes() as usize)
///             .map_err(|e| Status::InvalidParameter(e.to_string().into()))?;
///         Ok((l, Mutex::new(0)))
///     }
///     fn allocate(&self, cx: &Self::Context) -> Option<NonNull<u8>> {
///         *cx.1.lock().unwrap() += 1;
///         // SAFETY: the layout has a non-zero size (FrameSize >= 1). Zeroed, because the
///         // frame's bytes must be initialized (see the trait's safety section).
///         NonNull::new(unsafe { std::alloc::alloc_zeroed(cx.0) })
///     }
///     fn free(&self, cx: &Self::Context, p: NonNull<u8>) {
///         // SAFETY: `p` came from `allocate` with this layout.
///         unsafe { std::alloc::dealloc(p.as_ptr(), cx.0) }
///     }
///     fn delete(&self, _cx: Self::Context) {}
/// }
///
/// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2,
///                         frame_size: 128, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::with_vendor(&framing, Arc::new(HeapVendor))?;
/// let f = alloc.try_allocate()?;
/// assert_eq!(f.addr() % 64, 0);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KSALLOCATOR_DISPATCH")]
pub unsafe trait VendorAllocator: Send + Sync + 'static {
    /// The allocator context (KS: the `Context` set by `InitializeAllocator`). The allocator
    /// object keeps it from `initialize` to `delete` and passes it to every other call.
    ///
    /// ```
    /// use ks_alloc::{DefaultVendor, Memory, RegionContext, VendorAllocator};
    /// fn context_of<V: VendorAllocator>(_: &V) -> &'static str {
    ///     std::any::type_name::<V::Context>()
    /// }
    /// let v = DefaultVendor { memory: Memory::Paged };
    /// assert_eq!(context_of(&v), std::any::type_name::<RegionContext>());
    /// ```
    type Context: Send + Sync + 'static;

    /// KS `InitializeAllocator`: called once, at creation, with the creation framing.
    ///
    /// # Errors
    /// Any status; creation then fails with it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_alloc::{Alignment, Allocator, CommonBuffer, Framing, PoolType, Status};
    /// let dev = CommonBuffer { name: "dma0", max_frame_size: 4096, max_frames: 4,
    ///                          alignment: Alignment::BYTE };
    /// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 8,
    ///                         frame_size: 4096, alignment: Alignment::BYTE };
    /// // `CommonBuffer::initialize` refuses 8 frames; creation fails with its status.
    /// let err = Allocator::with_vendor(&framing, Arc::new(dev)).unwrap_err();
    /// assert!(matches!(err, Status::NotSupported(_)), "{err}");
    /// assert!(Allocator::with_vendor(&Framing { frames: 4, ..framing }, Arc::new(dev)).is_ok());
    /// ```
    #[doc(alias = "PFNKSPININITIALIZEALLOCATOR")]
    fn initialize(&self, framing: &Framing) -> Result<Self::Context, Status>;

    /// KS `Allocate` (`PFNKSDEFAULTALLOCATE`): a frame, or `None` for "no frame now". Through
    /// the allocator object, `None` fails a non-blocking allocate with `STATUS_UNSUCCESSFUL`
    /// ([`TryAllocateError::VendorEmpty`](crate::TryAllocateError::VendorEmpty)) and leaves a
    /// queued request pending until a free.
    ///
    /// ```
    /// use ks_alloc::{Alignment, DefaultVendor, Framing, Memory, PoolType, VendorAllocator};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let vendor = DefaultVendor { memory: Memory::Paged };
    /// let cx = vendor.initialize(&framing)?; // one frame
    /// let frame = vendor.allocate(&cx).expect("a frame");
    /// assert_eq!(frame.as_ptr() as usize % 64, 0);
    /// assert!(vendor.allocate(&cx).is_none(), "no frame now");
    /// # vendor.free(&cx, frame);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "PFNKSDEFAULTALLOCATE")]
    fn allocate(&self, cx: &Self::Context) -> Option<NonNull<u8>>;

    /// KS `Free` (`PFNKSDEFAULTFREE`): takes back a frame `allocate` returned. It may run on
    /// any thread, at Dispatch level too, so it must not block.
    ///
    /// ```
    /// use ks_alloc::{Alignment, DefaultVendor, Framing, Memory, PoolType, VendorAllocator};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTE };
    /// let vendor = DefaultVendor { memory: Memory::Paged };
    /// let cx = vendor.initialize(&framing)?; // one frame
    /// let frame = vendor.allocate(&cx).expect("a frame");
    /// vendor.free(&cx, frame);
    /// assert_eq!(vendor.allocate(&cx), Some(frame), "the same frame again");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "PFNKSDEFAULTFREE")]
    fn free(&self, cx: &Self::Context, frame: NonNull<u8>);

    /// KS `DeleteAllocator` (`PFNKSDELETEALLOCATOR`): once, after close and the last frame,
    /// at Passive level (it may block, free memory, make system calls): if the last frame
    /// comes home at Dispatch level, the library worker runs it.
    ///
    /// ```
    /// use std::ptr::NonNull;
    /// use std::sync::{Arc, atomic::{AtomicU32, Ordering::Relaxed}};
    /// use ks_alloc::{Allocator, DefaultVendor, Framing, Memory, RegionContext, Status, VendorAllocator};
    /// # use ks_alloc::{Alignment, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTE };
    /// const INNER: DefaultVendor = DefaultVendor { memory: Memory::NonPaged };
    /// /// The default memory management, counting its deletes.
    /// struct Deletes(Arc<AtomicU32>);
    /// // SAFETY: delegates the frames to `DefaultVendor`.
    /// unsafe impl VendorAllocator for Deletes {
    ///     type Context = RegionContext;
    ///     fn initialize(&self, f: &Framing) -> Result<RegionContext, Status> { INNER.initialize(f) }
    ///     fn allocate(&self, cx: &RegionContext) -> Option<NonNull<u8>> { INNER.allocate(cx) }
    ///     fn free(&self, cx: &RegionContext, p: NonNull<u8>) { INNER.free(cx, p) }
    ///     fn delete(&self, cx: RegionContext) {
    ///         self.0.fetch_add(1, Relaxed);
    ///         INNER.delete(cx)
    ///     }
    /// }
    ///
    /// let deletes = Arc::new(AtomicU32::new(0));
    /// let alloc = Allocator::with_vendor(&framing, Arc::new(Deletes(Arc::clone(&deletes))))?;
    /// let frame = alloc.try_allocate()?;
    /// alloc.close();
    /// assert_eq!(deletes.load(Relaxed), 0, "a frame is still out");
    /// drop(frame);
    /// assert_eq!(deletes.load(Relaxed), 1, "the last frame came home");
    /// drop(alloc);
    /// assert_eq!(deletes.load(Relaxed), 1, "exactly once");
    /// # Ok::<(), Status>(())
    /// ```
    #[doc(alias = "PFNKSDELETEALLOCATOR")]
    fn delete(&self, cx: Self::Context);

    /// The kind of memory the frames are (decides whether the function table is offered).
    /// Default: `NonPaged` (device and DMA memory never page-fault); override if the frames
    /// may page-fault.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_alloc::{Alignment, Allocator, DefaultVendor, Framing, Memory, PoolType, VendorAllocator};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTE };
    /// let paged = DefaultVendor { memory: Memory::Paged };
    /// assert_eq!(VendorAllocator::memory(&paged), Memory::Paged);
    /// let alloc = Allocator::with_vendor(&framing, Arc::new(paged))?;
    /// assert!(!alloc.offers_function_table(), "paged frames: no function table");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    fn memory(&self) -> Memory {
        Memory::NonPaged
    }

    /// A name for diagnostics (the allocator's `Debug` form shows it). Default: the type name.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_alloc::{Alignment, Allocator, CommonBuffer, Framing, PoolType, VendorAllocator};
    /// let dev = CommonBuffer { name: "dma0", max_frame_size: 64, max_frames: 1,
    ///                          alignment: Alignment::BYTE };
    /// assert_eq!(VendorAllocator::name(&dev), "dma0");
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTE };
    /// let alloc = Allocator::with_vendor(&framing, Arc::new(dev))?;
    /// assert!(format!("{alloc:?}").contains("dma0"));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// An initialized vendor context, type-erased.
///
/// ```
/// use ks_alloc::{Alignment, DefaultVendor, DynVendor, ErasedContext, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let vendor = DefaultVendor { memory: Memory::Paged };
/// let cx: ErasedContext = vendor.dyn_initialize(&framing)?;
/// let frame = vendor.dyn_allocate(&cx).expect("a frame");
/// assert!(vendor.dyn_allocate(&cx).is_none(), "framing.frames is 1: none left");
/// vendor.dyn_free(&cx, frame);
/// assert!(vendor.dyn_allocate(&cx).is_some());
/// vendor.dyn_delete(cx);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub struct ErasedContext(Box<dyn Any + Send + Sync>);

impl fmt::Debug for ErasedContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErasedContext")
    }
}

mod sealed {
    pub trait Sealed {}
    impl<T: super::VendorAllocator> Sealed for T {}
}

/// The object-safe form of [`VendorAllocator`], implemented for every vendor allocator (and
/// only for them: it is sealed, so its pointer contract cannot be bypassed). Pass vendors as
/// `Arc<dyn DynVendor>`.
///
/// ```
/// use std::sync::Arc;
/// use ks_alloc::{Alignment, Allocator, DefaultVendor, DynVendor, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let vendor: Arc<dyn DynVendor> = Arc::new(DefaultVendor { memory: Memory::Paged });
/// assert_eq!((vendor.name(), vendor.memory()), ("default", Memory::Paged));
/// let alloc = Allocator::with_vendor(&framing, vendor)?;
/// assert!(!alloc.offers_function_table(), "the vendor's memory is paged");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub trait DynVendor: sealed::Sealed + Send + Sync + 'static {
    /// `initialize`, with the context erased.
    ///
    /// # Errors
    /// The vendor's status.
    ///
    /// ```
    /// use ks_alloc::{Alignment, CommonBuffer, DynVendor, Framing, PoolType, Status};
    /// let dev = CommonBuffer { name: "dma0", max_frame_size: 64, max_frames: 1,
    ///                          alignment: Alignment::BYTE };
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTE };
    /// let cx = dev.dyn_initialize(&framing)?;
    /// dev.dyn_delete(cx);
    /// let err = dev.dyn_initialize(&Framing { frames: 2, ..framing }).unwrap_err();
    /// assert!(matches!(err, Status::NotSupported(_)), "{err}");
    /// # Ok::<(), Status>(())
    /// ```
    fn dyn_initialize(&self, framing: &Framing) -> Result<ErasedContext, Status>;
    /// `allocate` on an erased context (`None` also if the context is not this vendor's).
    ///
    /// ```
    /// # use std::ptr::NonNull;
    /// # use ks_alloc::{Alignment, DefaultVendor, DynVendor, Framing, Memory, PoolType, Status, VendorAllocator};
    /// # /// A vendor with no frames at all, whose context is `()`.
    /// # struct Dry;
    /// # // SAFETY: `allocate` never returns a pointer.
    /// # unsafe impl VendorAllocator for Dry {
    /// #     type Context = ();
    /// #     fn initialize(&self, _: &Framing) -> Result<(), Status> { Ok(()) }
    /// #     fn allocate(&self, _: &()) -> Option<NonNull<u8>> { None }
    /// #     fn free(&self, _: &(), _: NonNull<u8>) {}
    /// #     fn delete(&self, _: ()) {}
    /// # }
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTE };
    /// let default = DefaultVendor { memory: Memory::Paged };
    /// let cx = default.dyn_initialize(&framing)?;
    /// assert!(default.dyn_allocate(&cx).is_some());
    /// let other = Dry.dyn_initialize(&framing)?; // a `()` context, not a region
    /// assert!(default.dyn_allocate(&other).is_none(), "not this vendor's context");
    /// # Ok::<(), Status>(())
    /// ```
    fn dyn_allocate(&self, cx: &ErasedContext) -> Option<NonNull<u8>>;
    /// `free` on an erased context (ignored if the context is not this vendor's).
    ///
    /// ```
    /// # use std::ptr::NonNull;
    /// # use ks_alloc::{Alignment, DefaultVendor, DynVendor, Framing, Memory, PoolType, Status, VendorAllocator};
    /// # /// A vendor with no frames at all, whose context is `()`.
    /// # struct Dry;
    /// # // SAFETY: `allocate` never returns a pointer.
    /// # unsafe impl VendorAllocator for Dry {
    /// #     type Context = ();
    /// #     fn initialize(&self, _: &Framing) -> Result<(), Status> { Ok(()) }
    /// #     fn allocate(&self, _: &()) -> Option<NonNull<u8>> { None }
    /// #     fn free(&self, _: &(), _: NonNull<u8>) {}
    /// #     fn delete(&self, _: ()) {}
    /// # }
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTE };
    /// let default = DefaultVendor { memory: Memory::Paged };
    /// let cx = default.dyn_initialize(&framing)?;
    /// let frame = default.dyn_allocate(&cx).expect("one frame");
    /// default.dyn_free(&Dry.dyn_initialize(&framing)?, frame); // another's context: ignored
    /// assert!(default.dyn_allocate(&cx).is_none(), "the frame did not come back");
    /// default.dyn_free(&cx, frame);
    /// assert!(default.dyn_allocate(&cx).is_some(), "now it did");
    /// # Ok::<(), Status>(())
    /// ```
    fn dyn_free(&self, cx: &ErasedContext, frame: NonNull<u8>);
    /// `delete` on an erased context (ignored if the context is not this vendor's).
    ///
    /// ```
    /// use ks_alloc::{Alignment, DefaultVendor, DynVendor, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTE };
    /// let vendor = DefaultVendor { memory: Memory::Paged };
    /// let cx = vendor.dyn_initialize(&framing)?;
    /// vendor.dyn_delete(cx); // the context, here the region, is gone
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    fn dyn_delete(&self, cx: ErasedContext);
    /// See [`VendorAllocator::memory`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_alloc::{DefaultVendor, DynVendor, Memory};
    /// let v: Arc<dyn DynVendor> = Arc::new(DefaultVendor { memory: Memory::User });
    /// assert_eq!(v.memory(), Memory::User);
    /// ```
    fn memory(&self) -> Memory;
    /// See [`VendorAllocator::name`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_alloc::{DefaultVendor, DynVendor, Memory};
    /// let v: Arc<dyn DynVendor> = Arc::new(DefaultVendor { memory: Memory::Paged });
    /// assert_eq!(v.name(), "default");
    /// ```
    fn name(&self) -> &'static str;
}

impl<T: VendorAllocator> DynVendor for T {
    fn dyn_initialize(&self, framing: &Framing) -> Result<ErasedContext, Status> {
        Ok(ErasedContext(Box::new(self.initialize(framing)?)))
    }
    #[inline]
    fn dyn_allocate(&self, cx: &ErasedContext) -> Option<NonNull<u8>> {
        self.allocate(cx.0.downcast_ref::<T::Context>()?)
    }
    #[inline]
    fn dyn_free(&self, cx: &ErasedContext, frame: NonNull<u8>) {
        if let Some(cx) = cx.0.downcast_ref::<T::Context>() {
            self.free(cx, frame);
        }
    }
    fn dyn_delete(&self, cx: ErasedContext) {
        if let Ok(cx) = cx.0.downcast::<T::Context>() {
            self.delete(*cx);
        }
    }
    fn memory(&self) -> Memory {
        VendorAllocator::memory(self)
    }
    fn name(&self) -> &'static str {
        VendorAllocator::name(self)
    }
}

/// The default allocator's memory management as a [`VendorAllocator`]: frames at fixed
/// offsets in one [`Memory`] region, a lock-free free list of them.
///
/// [`Allocator::new`](crate::Allocator::new) uses the same region and free list directly
/// (saving the indirection and a second free list on the fast path); `DefaultVendor` is that
/// machinery behind the vendor interface, e.g. to wrap or decorate it.
///
/// ```
/// use std::sync::Arc;
/// use ks_alloc::{Alignment, Allocator, DefaultVendor, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 512, alignment: Alignment::BYTES_512 };
/// let vendor = Arc::new(DefaultVendor { memory: Memory::NonPaged });
/// let alloc = Allocator::with_vendor(&framing, vendor)?;
/// let (a, b) = (alloc.try_allocate()?, alloc.try_allocate()?);
/// assert_eq!(a.addr().abs_diff(b.addr()), 512, "one contiguous region");
/// assert!(alloc.try_allocate().is_err());
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultVendor {
    /// Memory kind.
    pub memory: Memory,
}

/// Context of [`DefaultVendor`] and [`CommonBuffer`]: the region and its free list.
///
/// ```
/// use std::ptr::NonNull;
/// use std::sync::{atomic::{AtomicUsize, Ordering}, Arc};
/// use ks_alloc::{Allocator, DefaultVendor, Framing, Memory, RegionContext, Status, VendorAllocator};
/// # use ks_alloc::{Alignment, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
///
/// /// The default memory management, counting the frames it hands out.
/// struct Counting { inner: DefaultVendor, handed_out: AtomicUsize }
/// // SAFETY: delegates to `DefaultVendor`.
/// unsafe impl VendorAllocator for Counting {
///     type Context = RegionContext;
///     fn initialize(&self, f: &Framing) -> Result<RegionContext, Status> { self.inner.initialize(f) }
///     fn allocate(&self, cx: &RegionContext) -> Option<NonNull<u8>> {
///         self.handed_out.fetch_add(1, Ordering::Relaxed);
///         self.inner.allocate(cx)
///     }
///     fn free(&self, cx: &RegionContext, p: NonNull<u8>) { self.inner.free(cx, p) }
///     fn delete(&self, cx: RegionContext) { self.inner.delete(cx) }
/// }
///
/// let inner = DefaultVendor { memory: Memory::NonPaged };
/// let vendor = Arc::new(Counting { inner, handed_out: AtomicUsize::new(0) });
/// let alloc = Allocator::with_vendor(&framing, vendor.clone())?;
/// drop(alloc.try_allocate()?);
/// assert_eq!(vendor.handed_out.load(Ordering::Relaxed), 1);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug)]
pub struct RegionContext {
    region: Region,
    free: FreeList,
}

impl RegionContext {
    fn new(framing: &Framing, memory: Memory) -> Result<RegionContext, Status> {
        if framing.frames == 0 || framing.frames > crate::MAX_FRAMES {
            return Err(Status::InvalidParameter(
                format!(
                    "Frames is {}; must be 1..={}",
                    framing.frames,
                    crate::MAX_FRAMES
                )
                .into(),
            ));
        }
        let layout = Layout::new(
            framing.frames as usize,
            framing.frame_size as usize,
            framing.alignment.bytes() as usize,
        )?;
        Ok(RegionContext {
            region: Region::new(layout, memory)?,
            free: FreeList::new(framing.frames),
        })
    }

    fn allocate(&self) -> Option<NonNull<u8>> {
        match self.free.pop() {
            Pop::Frame(i, _) => Some(self.region.frame_ptr(i as usize)),
            Pop::Empty | Pop::Closed => None,
        }
    }

    fn free(&self, p: NonNull<u8>) {
        match self.region.index_of(p.as_ptr() as usize) {
            Some(i) => {
                let _: Push = self.free.push(i as u32, false);
            }
            None => tracing::error!(
                addr = p.as_ptr() as usize,
                "region vendor asked to free an address it never handed out; ignored"
            ),
        }
    }
}

// SAFETY: `RegionContext` hands out each frame of its region at most once until it is freed
// (the free list owns the indices), and each frame is `frame_size` bytes inside the mapping,
// which lives as long as the context.
unsafe impl VendorAllocator for DefaultVendor {
    type Context = RegionContext;
    fn initialize(&self, framing: &Framing) -> Result<RegionContext, Status> {
        RegionContext::new(framing, self.memory)
    }
    fn allocate(&self, cx: &RegionContext) -> Option<NonNull<u8>> {
        cx.allocate()
    }
    fn free(&self, cx: &RegionContext, frame: NonNull<u8>) {
        cx.free(frame)
    }
    fn delete(&self, cx: RegionContext) {
        drop(cx);
    }
    fn memory(&self) -> Memory {
        self.memory
    }
    fn name(&self) -> &'static str {
        "default"
    }
}

/// Example device allocator: frames carved from one contiguous locked region, like a device's
/// common DMA buffer (KS: an AVStream vendor allocator over `AllocateCommonBuffer`). It
/// declares capabilities and refuses framings that exceed them.
///
/// ```
/// use std::sync::Arc;
/// use ks_alloc::{Alignment, Allocator, CommonBuffer, Framing, PoolType};
/// let dev = CommonBuffer { name: "dma0", max_frame_size: 8192, max_frames: 8, alignment: Alignment::BYTES_512 };
/// let ok = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 4, frame_size: 4096, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::with_vendor(&ok, Arc::new(dev))?;
/// assert_eq!(alloc.try_allocate()?.addr() % 512, 0, "device alignment applies");
/// let too_big = Framing { frame_size: 65536, ..ok };
/// assert!(Allocator::with_vendor(&too_big, Arc::new(dev)).is_err());
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonBuffer {
    /// Device name (diagnostics).
    pub name: &'static str,
    /// Largest frame the device can address.
    pub max_frame_size: u32,
    /// Most frames the buffer may hold.
    pub max_frames: u32,
    /// The device's own alignment requirement (frames are aligned to the larger of this and
    /// the framing's).
    pub alignment: crate::Alignment,
}

impl CommonBuffer {
    /// Whether this device can serve `framing`; the error names the capability exceeded.
    ///
    /// # Errors
    /// `STATUS_NOT_SUPPORTED` naming the field, the value and the capability.
    ///
    /// ```
    /// use ks_alloc::{Alignment, CommonBuffer, Framing, PoolType, Status};
    /// let dev = CommonBuffer { name: "dma0", max_frame_size: 4096, max_frames: 8,
    ///                          alignment: Alignment::BYTES_512 };
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 4, frame_size: 4096, alignment: Alignment::BYTES_64 };
    /// assert!(dev.check(&framing).is_ok());
    /// let err = dev.check(&Framing { frames: 16, ..framing }).unwrap_err();
    /// assert!(matches!(err, Status::NotSupported(_)));
    /// assert!(err.to_string().contains("at most 8 frames"));
    /// ```
    pub fn check(&self, framing: &Framing) -> Result<(), Status> {
        if framing.frame_size > self.max_frame_size {
            return Err(Status::NotSupported(
                format!(
                    "FrameSize is {}; common buffer {} supports at most {} bytes per frame",
                    framing.frame_size, self.name, self.max_frame_size
                )
                .into(),
            ));
        }
        if framing.frames > self.max_frames {
            return Err(Status::NotSupported(
                format!(
                    "Frames is {}; common buffer {} holds at most {} frames",
                    framing.frames, self.name, self.max_frames
                )
                .into(),
            ));
        }
        Ok(())
    }
}

// SAFETY: delegates to `RegionContext` (see `DefaultVendor`).
unsafe impl VendorAllocator for CommonBuffer {
    type Context = RegionContext;
    fn initialize(&self, framing: &Framing) -> Result<RegionContext, Status> {
        self.check(framing)?;
        let f = Framing {
            alignment: framing.alignment.max(self.alignment),
            ..*framing
        };
        RegionContext::new(&f, Memory::NonPaged)
    }
    fn allocate(&self, cx: &RegionContext) -> Option<NonNull<u8>> {
        cx.allocate()
    }
    fn free(&self, cx: &RegionContext, frame: NonNull<u8>) {
        cx.free(frame)
    }
    fn delete(&self, cx: RegionContext) {
        drop(cx);
    }
    fn memory(&self) -> Memory {
        Memory::NonPaged
    }
    fn name(&self) -> &'static str {
        self.name
    }
}
