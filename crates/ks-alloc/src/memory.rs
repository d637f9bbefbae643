//! Frame memory: one contiguous mapping per allocator, frames at fixed offsets.
//!
//! | [`Memory`] | KS | mapping |
//! |---|---|---|
//! | `NonPaged` | `KSMEMORY_TYPE_KERNEL_NONPAGED`, `KSMEMORY_TYPE_SYSTEM`, `NonPagedPool` | anonymous, the frames' pages locked (`mlock`, which faults every page in, after checking `RLIMIT_MEMLOCK`) and not inherited by a child process (`MADV_DONTFORK`, so that a `fork` never makes them copy-on-write): no page fault after creation |
//! | `Paged` | `KSMEMORY_TYPE_KERNEL_PAGED`, `PagedPool` | anonymous, ordinary pageable memory |
//! | `User` | `KSMEMORY_TYPE_USER` | a `memfd` mapped `MAP_SHARED`; the fd and frame offsets are exposed so another process can map the same frames |
//!
//! Frame `i` starts at `base + i * stride`, where `stride` is the frame size rounded up to the
//! framing's alignment and `base` is aligned at least that much, so every frame is aligned and
//! an address maps back to its index in O(1).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use crate::{MemoryType, PoolType, Status};

/// Which kind of memory an allocator's frames live in.
///
/// ```
/// use ks_alloc::{Memory, MemoryType, PoolType};
/// assert_eq!(Memory::from_memory_type(MemoryType::KERNEL_PAGED).unwrap(), Memory::Paged);
/// assert_eq!(Memory::from_pool(PoolType::NON_PAGED).unwrap(), Memory::NonPaged);
/// assert!(Memory::NonPaged.is_dispatch_safe());
/// ```
#[doc(alias = "KSMEMORY_TYPE_KERNEL_NONPAGED")]
#[doc(alias = "POOL_TYPE")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Memory {
    /// Locked, pre-faulted memory: no page fault after creation, so the non-blocking
    /// function-table interface is offered (KS: non-paged pool). A child process does not
    /// inherit the frames (`MADV_DONTFORK`): after a `fork`, inherited pages would be
    /// copy-on-write, and the parent's next write to each frame would fault.
    NonPaged,
    /// Ordinary pageable memory: a page fault may block, so the function table is refused
    /// (KS: paged pool, behaviour 29).
    Paged,
    /// Shared memory backed by a `memfd`, mappable by another process (KS: user memory).
    User,
}

impl Memory {
    /// Maps a KS memory type GUID: KERNEL_NONPAGED and SYSTEM → `NonPaged`, KERNEL_PAGED →
    /// `Paged`, USER → `User`.
    ///
    /// # Errors
    /// `STATUS_NOT_SUPPORTED` for the wildcard, DEVICE_UNKNOWN or a device-specific GUID: such
    /// memory is served by a vendor allocator ([`Allocator::with_vendor`](crate::Allocator::with_vendor)), not by the default one.
    ///
    /// ```
    /// use ks_alloc::{Memory, MemoryType, Status};
    /// assert_eq!(Memory::from_memory_type(MemoryType::SYSTEM), Ok(Memory::NonPaged));
    /// assert_eq!(Memory::from_memory_type(MemoryType::USER), Ok(Memory::User));
    /// let device = Memory::from_memory_type(MemoryType::DEVICE_UNKNOWN);
    /// assert!(matches!(device, Err(Status::NotSupported(_))));
    /// ```
    pub fn from_memory_type(memory_type: MemoryType) -> Result<Memory, Status> {
        if memory_type == MemoryType::KERNEL_NONPAGED || memory_type == MemoryType::SYSTEM {
            Ok(Memory::NonPaged)
        } else if memory_type == MemoryType::KERNEL_PAGED {
            Ok(Memory::Paged)
        } else if memory_type == MemoryType::USER {
            Ok(Memory::User)
        } else {
            Err(Status::NotSupported(
                format!(
                    "memory type {memory_type} has no default allocator; allowed: KERNEL_NONPAGED, \
                     SYSTEM, KERNEL_PAGED, USER (device memory needs a vendor allocator)"
                )
                .into(),
            ))
        }
    }

    /// Maps a `POOL_TYPE`: the paged pools (1, 5 and their session variants 33, 37) → `Paged`,
    /// every non-paged pool (0, 2, 4, 6, 32, 34, 36, 38, 512, 516, 544) → `NonPaged`.
    ///
    /// # Errors
    /// `STATUS_INVALID_PARAMETER` for any other value (`DontUseThisType` = 3 included).
    ///
    /// ```
    /// use ks_alloc::{Memory, PoolType, Status};
    /// assert_eq!(Memory::from_pool(PoolType::PAGED), Ok(Memory::Paged));
    /// assert_eq!(Memory::from_pool(PoolType(512)), Ok(Memory::NonPaged));
    /// assert!(matches!(Memory::from_pool(PoolType(3)), Err(Status::InvalidParameter(_))));
    /// ```
    pub fn from_pool(pool: PoolType) -> Result<Memory, Status> {
        match pool.0 {
            1 | 5 | 33 | 37 => Ok(Memory::Paged),
            0 | 2 | 4 | 6 | 32 | 34 | 36 | 38 | 512 | 516 | 544 => Ok(Memory::NonPaged),
            v => Err(Status::InvalidParameter(
                format!(
                    "PoolType is {v}; allowed: a paged (1, 5, 33, 37) or non-paged (0, 2, 4, 6, \
                     32, 34, 36, 38, 512, 516, 544) POOL_TYPE"
                )
                .into(),
            )),
        }
    }

    /// The KS memory type GUID this memory corresponds to.
    ///
    /// ```
    /// use ks_alloc::{Memory, MemoryType};
    /// assert_eq!(Memory::Paged.memory_type(), MemoryType::KERNEL_PAGED);
    /// for m in [Memory::NonPaged, Memory::Paged, Memory::User] {
    ///     assert_eq!(Memory::from_memory_type(m.memory_type()), Ok(m));
    /// }
    /// ```
    pub fn memory_type(self) -> MemoryType {
        match self {
            Memory::NonPaged => MemoryType::KERNEL_NONPAGED,
            Memory::Paged => MemoryType::KERNEL_PAGED,
            Memory::User => MemoryType::USER,
        }
    }

    /// Whether frames can be served at Dispatch level (no page fault can block): only
    /// `NonPaged`. Decides whether the function table is offered (behaviour 29).
    ///
    /// ```
    /// use ks_alloc::Memory;
    /// assert!(Memory::NonPaged.is_dispatch_safe());
    /// assert!(!Memory::Paged.is_dispatch_safe());
    /// assert!(!Memory::User.is_dispatch_safe());
    /// ```
    pub fn is_dispatch_safe(self) -> bool {
        matches!(self, Memory::NonPaged)
    }
}

/// Geometry of one mapping: `frames` frames of `frame_size` bytes, `stride` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) frames: usize,
    pub(crate) frame_size: usize,
    pub(crate) stride: usize,
    pub(crate) align: usize,
}

impl Layout {
    /// Computes the layout, refusing sizes that overflow.
    pub(crate) fn new(frames: usize, frame_size: usize, align: usize) -> Result<Layout, Status> {
        if frames == 0 || frame_size == 0 {
            return Err(Status::InvalidParameter(
                format!(
                    "frames is {frames} and frame size is {frame_size}; both must be at least 1"
                )
                .into(),
            ));
        }
        let align = align.max(1);
        let stride = frame_size
            .checked_next_multiple_of(align)
            .ok_or_else(|| overflow(frames, frame_size))?;
        // Within `isize::MAX`, as pointer offsets into one object must be (a 32-bit target
        // reaches that before `usize` overflows).
        stride
            .checked_mul(frames)
            .filter(|&total| isize::try_from(total).is_ok())
            .ok_or_else(|| overflow(frames, frame_size))?;
        Ok(Layout {
            frames,
            frame_size,
            stride,
            align,
        })
    }

    /// Total bytes of frame data (without alignment slack).
    pub(crate) fn bytes(&self) -> usize {
        self.stride * self.frames
    }
}

fn overflow(frames: usize, frame_size: usize) -> Status {
    Status::IntegerOverflow(
        format!("{frames} frames of {frame_size} bytes do not fit in the address space").into(),
    )
}

/// One anonymous or memfd-backed mapping holding all frames of an allocator.
///
/// Invariant: `base .. base + layout.bytes()` lies inside the mapping `map .. map + map_len`,
/// which stays mapped read-write until `Region` is dropped.
#[derive(Debug)]
pub(crate) struct Region {
    map: NonNull<u8>,
    map_len: usize,
    base: NonNull<u8>,
    layout: Layout,
    fd: Option<OwnedFd>,
}

// SAFETY: `Region` owns its mapping; the raw pointers are plain addresses of memory that any
// thread may access. Who may touch which frame is decided by the allocator's free list, not
// by `Region`, which never reads or writes frame bytes itself.
unsafe impl Send for Region {}
// SAFETY: as above; `&Region` only gives out addresses.
unsafe impl Sync for Region {}

impl Region {
    /// Maps memory for `layout` of the given kind.
    ///
    /// # Errors
    /// `STATUS_INSUFFICIENT_RESOURCES` when the mapping, the memfd or (for `NonPaged`) `mlock`
    /// fails; the message names the bytes asked for and, for `mlock`, `RLIMIT_MEMLOCK`.
    pub(crate) fn new(layout: Layout, memory: Memory) -> Result<Region, Status> {
        use rustix::mm::{MapFlags, ProtFlags};
        let page = rustix::param::page_size();
        // Slack so that `base` can be aligned beyond the page size if the framing asks.
        let slack = if layout.align > page { layout.align } else { 0 };
        let map_len = layout
            .bytes()
            .checked_add(slack)
            .and_then(|n| n.checked_next_multiple_of(page))
            .ok_or_else(|| overflow(layout.frames, layout.frame_size))?;
        let prot = ProtFlags::READ | ProtFlags::WRITE;
        let mut fd = None;
        // Under Miri (which maps only `PRIVATE | ANONYMOUS` and has no `mlock`), non-paged
        // memory is mapped as paged and not locked: what Miri checks is how the frames' bytes
        // and the allocator's state are accessed, which residency does not change.
        let locked = memory == Memory::NonPaged && !cfg!(miri);
        let ptr = match memory {
            Memory::NonPaged | Memory::Paged => {
                // Not `MAP_POPULATE`: `mlock` below faults every page in itself, after checking
                // RLIMIT_MEMLOCK, so a request past the limit fails before committing memory.
                let flags = MapFlags::PRIVATE;
                // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing
                // (null hint) cannot alias any existing Rust object.
                unsafe { rustix::mm::mmap_anonymous(std::ptr::null_mut(), map_len, prot, flags) }
                    .map_err(|e| {
                        Status::InsufficientResources(
                            format!("mmap of {map_len} bytes for {memory:?} frames failed: {e}")
                                .into(),
                        )
                    })?
            }
            Memory::User => {
                let memfd = rustix::fs::memfd_create(
                    "ksalloc-frames",
                    rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
                )
                .map_err(|e| {
                    Status::InsufficientResources(
                        format!("memfd_create for {map_len} bytes of user frames failed: {e}")
                            .into(),
                    )
                })?;
                rustix::fs::ftruncate(&memfd, map_len as u64).map_err(|e| {
                    Status::InsufficientResources(
                        format!("ftruncate of the frame memfd to {map_len} bytes failed: {e}")
                            .into(),
                    )
                })?;
                // Sealed at its size: a process the fd is shared with cannot shrink it under
                // our mapping (which would turn our next frame access into SIGBUS).
                use rustix::fs::SealFlags;
                rustix::fs::fcntl_add_seals(
                    &memfd,
                    SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
                )
                .map_err(|e| {
                    Status::InsufficientResources(
                        format!("sealing the frame memfd failed: {e}").into(),
                    )
                })?;
                // SAFETY: a fresh shared mapping of our own memfd at an address of the
                // kernel's choosing cannot alias any existing Rust object.
                let p = unsafe {
                    rustix::mm::mmap(
                        std::ptr::null_mut(),
                        map_len,
                        prot,
                        MapFlags::SHARED,
                        &memfd,
                        0,
                    )
                }
                .map_err(|e| {
                    Status::InsufficientResources(
                        format!("mmap of the {map_len}-byte frame memfd failed: {e}").into(),
                    )
                })?;
                fd = Some(memfd);
                p
            }
        };
        let map = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| Status::InsufficientResources("mmap returned a null mapping".into()))?;
        let offset = (map.as_ptr() as usize).next_multiple_of(layout.align) - map.as_ptr() as usize;
        // SAFETY: `offset < slack + 1 <= map_len - layout.bytes()` when align > page, and 0
        // otherwise (mmap returns page-aligned addresses), so `base` stays inside the mapping.
        let base = unsafe { NonNull::new_unchecked(map.as_ptr().add(offset)) };
        // Owned from here on: a failure below drops it, and its `Drop` unmaps the memory.
        let region = Region {
            map,
            map_len,
            base,
            layout,
            fd,
        };
        if locked {
            // Only the frames' pages are locked, not the alignment slack around them (which
            // would count against RLIMIT_MEMLOCK for nothing). `base` is page-aligned (it is
            // aligned to `align`, and to the page when `align` is smaller), and the rounded
            // length stays inside the mapping, whose length is a multiple of the page.
            let lock_len = layout.bytes().next_multiple_of(page);
            // SAFETY: `base .. base + lock_len` lies inside the mapping created above.
            if let Err(e) = unsafe { rustix::mm::mlock(base.as_ptr().cast(), lock_len) } {
                let limit = rustix::process::getrlimit(rustix::process::Resource::Memlock);
                let limit = match limit.current {
                    Some(v) => format!("{v} bytes"),
                    None => "unlimited".to_string(),
                };
                return Err(Status::InsufficientResources(
                    format!(
                        "cannot lock {lock_len} bytes of non-paged frame memory ({} frames of {} \
                         bytes): mlock failed ({e}); RLIMIT_MEMLOCK is {limit}. Raise the limit \
                         (`ulimit -l`), use fewer or smaller frames, or use pageable memory, \
                         which is not locked (Memory::Paged)",
                        layout.frames, layout.frame_size
                    )
                    .into(),
                ));
            }
            // A child process does not inherit the frames: after a `fork`, inherited private
            // pages would be copy-on-write in this process too, and the next write to each
            // frame would fault, which non-paged memory promises never to do.
            // SAFETY: advice on the mapping created above; it changes no contents.
            if let Err(e) = unsafe {
                rustix::mm::madvise(
                    map.as_ptr().cast(),
                    map_len,
                    rustix::mm::Advice::LinuxDontFork,
                )
            } {
                return Err(Status::InsufficientResources(
                    format!("madvise(MADV_DONTFORK) on {map_len} bytes of non-paged frame memory failed: {e}").into(),
                ));
            }
        }
        Ok(region)
    }

    /// Address of frame `index` (`index < frames`).
    #[inline]
    pub(crate) fn frame_ptr(&self, index: usize) -> NonNull<u8> {
        debug_assert!(index < self.layout.frames);
        // SAFETY: `index < frames`, so the offset stays inside the mapping (Region invariant).
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(index * self.layout.stride)) }
    }

    /// Index of the frame starting exactly at `addr`, or `None` for foreign or interior
    /// addresses. O(1).
    #[inline]
    pub(crate) fn index_of(&self, addr: usize) -> Option<usize> {
        let off = addr.checked_sub(self.base.as_ptr() as usize)?;
        if off % self.layout.stride != 0 {
            return None;
        }
        let i = off / self.layout.stride;
        (i < self.layout.frames).then_some(i)
    }

    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    #[cfg(test)]
    pub(crate) fn base_addr(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// The memfd and the byte offset of frame 0 inside it, for `Memory::User`.
    pub(crate) fn shared(&self) -> Option<(BorrowedFd<'_>, usize, usize)> {
        let fd = self.fd.as_ref()?;
        Some((
            fd.as_fd(),
            self.base.as_ptr() as usize - self.map.as_ptr() as usize,
            self.map_len,
        ))
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in `new` with this length; `Region` is dropped only
        // when no frame is outstanding (allocator close protocol), or by `new` itself when
        // `mlock` or `madvise` fails, before any frame was handed out, so nothing references
        // it.
        let _ = unsafe { rustix::mm::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_rounds_stride_to_alignment() {
        let l = Layout::new(3, 100, 64).unwrap();
        assert_eq!(l.stride, 128);
        assert_eq!(l.bytes(), 384);
        assert!(matches!(
            Layout::new(0, 1, 1),
            Err(Status::InvalidParameter(_))
        ));
        assert!(matches!(
            Layout::new(usize::MAX / 2, 4096, 1),
            Err(Status::IntegerOverflow(_))
        ));
    }

    /// The `/proc/self/smaps` entry of the mapping (VMA) holding `addr`: its length and
    /// `VmFlags`.
    #[cfg(not(miri))]
    fn vma_of(addr: usize) -> (usize, Vec<String>) {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut current: Option<usize> = None;
        for line in smaps.lines() {
            let head = line.split_whitespace().next().unwrap_or("");
            if let Some((a, b)) = head.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    current = (a <= addr && addr < b).then_some(b - a);
                    continue;
                }
            }
            if let (Some(len), Some(flags)) = (current, line.strip_prefix("VmFlags:")) {
                return (len, flags.split_whitespace().map(str::to_owned).collect());
            }
        }
        panic!("no mapping holds {addr:#x}")
    }

    #[cfg(not(miri))]
    #[test]
    fn non_paged_locks_exactly_the_frames_and_is_not_inherited_by_fork() {
        let page = rustix::param::page_size();
        // Aligned beyond the page: the mapping has slack, which must not be locked (it would
        // count against RLIMIT_MEMLOCK for nothing).
        let align = 16 * page;
        let r = Region::new(Layout::new(1, align, align).unwrap(), Memory::NonPaged).unwrap();
        let (len, flags) = vma_of(r.frame_ptr(0).as_ptr() as usize);
        assert!(flags.iter().any(|f| f == "lo"), "frames locked: {flags:?}");
        assert!(flags.iter().any(|f| f == "dc"), "MADV_DONTFORK: {flags:?}");
        assert_eq!(len, align, "the locked mapping is the frame's pages only");
        // Pageable memory is neither.
        let r = Region::new(Layout::new(1, align, align).unwrap(), Memory::Paged).unwrap();
        let (_, flags) = vma_of(r.frame_ptr(0).as_ptr() as usize);
        assert!(!flags.iter().any(|f| f == "lo" || f == "dc"), "{flags:?}");
    }

    #[test]
    fn region_frames_are_aligned_and_indexable() {
        // Miri has no `memfd_create`: user memory is checked natively only.
        let kinds: &[Memory] = if cfg!(miri) {
            &[Memory::Paged, Memory::NonPaged]
        } else {
            &[Memory::Paged, Memory::NonPaged, Memory::User]
        };
        for &memory in kinds {
            let r = Region::new(Layout::new(4, 1000, 512).unwrap(), memory).unwrap();
            for i in 0..4 {
                let p = r.frame_ptr(i).as_ptr() as usize;
                assert_eq!(p % 512, 0);
                assert_eq!(r.index_of(p), Some(i));
                assert_eq!(r.index_of(p + 1), None);
                // SAFETY: frame i lies inside the mapping and nothing else uses it.
                unsafe { r.frame_ptr(i).as_ptr().write_bytes(i as u8, 1000) };
            }
            assert_eq!(r.index_of(r.base_addr() + 4 * 1024), None);
            assert_eq!(r.shared().is_some(), memory == Memory::User);
        }
    }

    #[test]
    fn alignment_beyond_page_is_honoured() {
        let r = Region::new(Layout::new(2, 10, 65536).unwrap(), Memory::Paged).unwrap();
        assert_eq!(r.frame_ptr(1).as_ptr() as usize % 65536, 0);
    }
}
