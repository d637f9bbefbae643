//! [`Frame`], the RAII form of an allocated frame, and [`Holder`], the tag that says who holds
//! it.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::time::Duration;

use crate::allocator::{Allocator, Inner};

/// Who holds a frame: a caller-chosen name such as a pin or element id, recorded with every
/// outstanding frame and listed by [`Allocator::outstanding`] and starvation reports.
///
/// A `Holder` is referenced as `&'static Holder`, so recording it is one pointer store (no
/// heap). A literal `&Holder("capture.out")` is promoted to a `'static` constant:
///
/// ```
/// use ks_alloc::{Allocator, Framing, Holder, Memory};
/// # let framing = Framing { flags: 0, pool_type: ks_alloc::PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: ks_alloc::Alignment::BYTE };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let frame = alloc.try_allocate_for(&Holder("capture.out"))?;
/// assert_eq!(alloc.outstanding()[0].holder, Some("capture.out"));
/// drop(frame);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Holder(pub &'static str);

/// The library's coarse clock (monotonic ns), refreshed by the worker every
/// [`CLOCK_TICK`](crate::worker) while any allocator exists, and at every allocator creation.
/// Reading it is one relaxed load, so recording when a frame was taken costs about a
/// nanosecond instead of a clock call (about 4 ns here); the price is a resolution of one tick
/// (10 ms).
#[cfg(not(loom))]
pub(crate) static COARSE_NOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// When a frame is taken, on the coarse clock.
#[inline(always)]
pub(crate) fn coarse_now() -> u64 {
    #[cfg(not(loom))]
    {
        // Relaxed: a timestamp for diagnostics; no data depends on it.
        COARSE_NOW.load(std::sync::atomic::Ordering::Relaxed)
    }
    // Loom: a constant, so that every execution of a model makes the same atomic accesses
    // (`claim` stores the time only when it changes).
    #[cfg(loom)]
    {
        0
    }
}

/// Returns the monotonic coarse clock in nanoseconds (a vDSO read, no system call).
#[inline]
pub(crate) fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// One frame from an [`Allocator`]: exclusive access to its bytes until dropped, which frees
/// it (handing it to the oldest pending request if there is one, behaviour 24).
///
/// `Frame` is `Send` and `Sync` (it is a unique owner of its bytes, like `Box<[u8]>`). It does
/// not keep an `Allocator` handle: the allocator's memory stays valid while any frame is out,
/// even after the allocator is closed and every handle dropped (see [`Allocator::close`]).
///
/// ```
/// use ks_alloc::{Allocator, Framing, Memory};
/// # let framing = Framing { flags: 0, pool_type: ks_alloc::PoolType::NON_PAGED, frames: 1, frame_size: 16, alignment: ks_alloc::Alignment::BYTE };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let mut frame = alloc.try_allocate()?;
/// frame[..5].copy_from_slice(b"hello");
/// assert_eq!(frame.len(), 16);
/// assert_eq!(alloc.status().allocated_frames, 1);
/// drop(frame);
/// assert_eq!(alloc.status().allocated_frames, 0);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[must_use = "dropping a Frame frees it at once"]
pub struct Frame {
    pub(crate) inner: NonNull<Inner>,
    pub(crate) ptr: NonNull<u8>,
    /// Where the free starts: the free-list word as the allocation left it (`freelist.rs`).
    pub(crate) hint: u64,
    /// Bytes (a KS frame size is a `ULONG`); with `index`, one word, so a `Frame` stays four
    /// words.
    pub(crate) len: u32,
    pub(crate) index: u32,
}

// SAFETY: a `Frame` is the unique owner of `len` bytes at `ptr` (the slot is HELD, nobody
// else can reach the bytes), like `Box<[u8]>`; `inner` points to an `Inner` that is `Sync`
// and stays alive while the frame is outstanding (close protocol in allocator.rs).
unsafe impl Send for Frame {}
// SAFETY: `&Frame` only allows reading the bytes and the metadata; see `Send`.
unsafe impl Sync for Frame {}

impl Frame {
    /// The frame's start address (KS: the frame pointer).
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let frame = alloc.try_allocate()?;
    /// assert_eq!(frame.addr() % 64, 0, "aligned as the framing asks");
    /// assert_eq!(frame.addr(), frame.as_ptr().as_ptr() as usize);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The frame's start pointer.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let mut frame = alloc.try_allocate()?;
    /// frame[0] = 42;
    /// // SAFETY: the frame is ours, at least one byte long, and not borrowed.
    /// assert_eq!(unsafe { frame.as_ptr().read() }, 42);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The frame's slot index in its allocator (`0..frames`). For the default allocator frame
    /// `i` sits at `base + i * stride`.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let (a, b) = (alloc.try_allocate()?, alloc.try_allocate()?);
    /// let (i, j) = (a.index().unwrap(), b.index().unwrap());
    /// assert!(i != j && i < 2 && j < 2);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn index(&self) -> Option<usize> {
        Some(self.index as usize)
    }

    pub(crate) fn inner(&self) -> &Inner {
        // SAFETY: the allocator stays alive while this frame is outstanding.
        unsafe { self.inner.as_ref() }
    }

    /// A handle to the allocator this frame came from (possibly closed).
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let frame = alloc.try_allocate()?;
    /// let handle = frame.allocator();
    /// assert!(handle.same(&alloc));
    /// assert_eq!(handle.status().allocated_frames, 1);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn allocator(&self) -> Allocator {
        // SAFETY: `inner` came from `Arc::as_ptr` of the allocator's `Arc<Inner>`, which is
        // alive while this frame is outstanding.
        unsafe { Allocator::from_inner_ptr(self.inner) }
    }

    /// Turns the frame into its raw address (the KS form: a `PVOID` frame pointer). The frame
    /// stays outstanding until [`Allocator::free_raw`] is called with this address; raw frames
    /// are never freed implicitly.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let addr = alloc.try_allocate()?.into_raw();
    /// assert!(alloc.outstanding()[0].raw);
    /// assert_eq!(alloc.outstanding()[0].addr, addr);
    /// alloc.free_raw(addr)?; // a raw frame comes back only this way
    /// assert_eq!(alloc.status().allocated_frames, 0);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KSMETHOD_STREAMALLOCATOR_ALLOC")]
    pub fn into_raw(self) -> usize {
        let addr = self.addr();
        self.inner().mark_raw(self.index);
        std::mem::forget(self);
        addr
    }

    /// Gives up the RAII frame, still outstanding and claimed, for its slot index; the caller
    /// rebuilds it (`Inner::frame`) or frees it. Only its free hint is lost.
    pub(crate) fn into_index(self) -> u32 {
        let i = self.index;
        std::mem::forget(self);
        i
    }

    /// How long this frame has been out.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let frame = alloc.try_allocate()?;
    /// let then = frame.held_for();
    /// assert!(frame.held_for() >= then, "grows while the frame is out");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn held_for(&self) -> Duration {
        self.inner().held_for(self.index)
    }
}

impl Deref for Frame {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` bytes while the frame is outstanding and this
        // `Frame` is their only owner.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
    }
}

impl DerefMut for Frame {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len as usize) }
    }
}

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for Frame {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl Drop for Frame {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: this frame is outstanding and owned by us; `release` is called exactly once
        // per allocation (Drop runs once; `into_raw` forgets the Frame instead).
        unsafe { Inner::release_held(self.inner, self.index, self.hint) }
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("index", &self.index)
            .field("addr", &format_args!("{:#x}", self.addr()))
            .field("len", &self.len)
            .finish()
    }
}

/// One outstanding frame, as listed by [`Allocator::outstanding`].
///
/// ```
/// use ks_alloc::Holder;
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let frame = alloc.try_allocate_for(&Holder("mux.in"))?;
/// let out = &alloc.outstanding()[0];
/// assert_eq!((out.index, out.addr), (frame.index().unwrap(), frame.addr()));
/// assert_eq!(out.holder, Some("mux.in"));
/// assert!(!out.raw);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutstandingFrame {
    /// Slot index.
    pub index: usize,
    /// Frame address.
    pub addr: usize,
    /// The holder tag given at allocation, if any (`None` too while `in_transit`).
    pub holder: Option<&'static str>,
    /// How long the frame has been out (coarse clock: about 10 ms resolution).
    pub held_for: Duration,
    /// True if the frame is held as a raw address (KS request surface / `into_raw`).
    pub raw: bool,
    /// True if nobody holds the frame: it was freed at Dispatch level while requests were
    /// pending, and the library worker is handing it to the oldest one (behaviour 25). It
    /// still counts as allocated, since the outstanding count does not drop at a hand-off.
    pub in_transit: bool,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The free hint fits in the `Frame` without growing it: four words, as before it had one
    /// (the length is a `u32`, like a KS frame size, sharing a word with the slot index).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_frame_is_four_words() {
        assert_eq!(std::mem::size_of::<Frame>(), 32);
    }
}
