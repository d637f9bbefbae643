//! The frames that travel through a running graph: an allocator [`Frame`] owned by one queue,
//! a client's buffer injected into the circuit ([`InjectedFrame`], behaviour 45), or either
//! of them shared read-only by the branches of a tee.
//!
//! Sharing never allocates in steady state: the cells that hold a shared frame are recycled
//! through a [`SharePool`]. The last branch to drop its reference gives the frame back to its
//! allocator (behaviour 60), or an injected frame back to its client, and the cell back to
//! the pool.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ks_alloc::{Frame, Status};

use super::inject::InjectedFrame;
use crate::queue::{FrameBytes, StreamHeader};

/// A frame in a running graph.
///
/// ```
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 8, alignment: Alignment::BYTE };
/// # let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// use ks_graph::queue::FrameBytes;
/// use ks_graph::runtime::{RtFrame, SharePool};
/// let mut owned = RtFrame::Owned(alloc.try_allocate()?);
/// owned.bytes_mut().unwrap().fill(1); // the single owner may write
/// let mut shared = RtFrame::Shared(owned.share(&SharePool::default()));
/// assert!(shared.bytes_mut().is_none()); // shared frames are read-only
/// assert_eq!(shared.as_bytes(), &[1; 8]);
///
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub enum RtFrame {
    /// An allocator frame with a single owner (the usual case; writable).
    Owned(Frame),
    /// A client's buffer submitted to a pin in injection mode (single owner; writable). When
    /// it leaves the circuit it goes back to the client's frame-return callback instead of
    /// to an allocator ([`Injector`](super::Injector)).
    Injected(InjectedFrame),
    /// A frame shared read-only by several tee branches.
    Shared(SharedFrame),
}

impl RtFrame {
    /// The frame's bytes.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 8, alignment: Alignment::BYTE };
    /// # let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// use ks_graph::runtime::RtFrame;
    /// let mut frame = alloc.try_allocate()?;
    /// frame[..2].copy_from_slice(b"ks");
    /// let f = RtFrame::Owned(frame);
    /// assert_eq!(f.as_bytes().len(), 8);
    /// assert_eq!(&f.as_bytes()[..2], b"ks");
    ///
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            RtFrame::Owned(f) => f,
            RtFrame::Injected(f) => f.bytes(),
            RtFrame::Shared(s) => s.bytes(),
        }
    }

    /// The frame has completed where the runtime holds it with its header: the end of its
    /// circuit (`status` `Ok`), or a cancellation or failure. An allocator frame goes back
    /// to its allocator; an injected frame goes back to its client with `header` and
    /// `status`; a shared frame records them for the injected frame it holds, if it does
    /// (see [`InjectedFrame`]), and drops this holder's reference.
    pub(crate) fn complete(self, header: &StreamHeader, status: Result<(), Status>) {
        match self {
            RtFrame::Owned(f) => drop(f),
            RtFrame::Injected(f) => f.finish(header, status),
            RtFrame::Shared(s) => {
                if let Some(c) = &s.cell {
                    if matches!(c.frame, Some(RtFrame::Injected(_))) {
                        let mut outcome = c.outcome.lock().unwrap_or_else(PoisonError::into_inner);
                        super::inject::record_outcome(&mut outcome, header, status);
                    }
                }
            }
        }
    }

    /// Shares the frame: a shared frame is cloned, an owned one moved into a pool cell.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 8, alignment: Alignment::BYTE };
    /// # let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// use ks_graph::runtime::{RtFrame, SharePool};
    /// let pool = SharePool::default();
    /// let shared = RtFrame::Owned(alloc.try_allocate()?).share(&pool);
    /// let branch = RtFrame::Shared(shared.clone()).share(&pool); // already shared: as is
    /// assert_eq!(branch.bytes().as_ptr(), shared.bytes().as_ptr());
    /// drop(shared);
    /// assert_eq!(alloc.status().allocated_frames, 1); // a branch still holds it
    /// drop(branch);
    /// assert_eq!(alloc.status().allocated_frames, 0); // the last holder returned it
    ///
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn share(self, pool: &SharePool) -> SharedFrame {
        match self {
            RtFrame::Shared(s) => s,
            single => pool.share_frame(single),
        }
    }
}

impl fmt::Debug for RtFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtFrame::Owned(fr) => f
                .debug_struct("Owned")
                .field("addr", &format_args!("{:#x}", fr.addr()))
                .field("len", &fr.len())
                .finish(),
            RtFrame::Injected(fr) => fmt::Debug::fmt(fr, f),
            RtFrame::Shared(_) => f.write_str("Shared"),
        }
    }
}

impl FrameBytes for RtFrame {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        match self {
            RtFrame::Owned(f) => Some(f),
            RtFrame::Injected(f) => Some(f.bytes_mut()),
            RtFrame::Shared(_) => None,
        }
    }
}

struct Cell {
    /// An [`RtFrame::Owned`] or [`RtFrame::Injected`], never a shared one.
    frame: Option<RtFrame>,
    /// For an injected frame: how its branches completed it (header and status), for its
    /// return once the last one lets go. Untouched for allocator frames.
    outcome: Mutex<Option<(StreamHeader, Result<(), Status>)>>,
    /// The [`SharedFrame`]s that hold this cell. Exactly one of them, the one whose decrement
    /// takes it to zero, recycles the cell: with two last holders dropping at once, counting
    /// `Arc` references alone (`Arc::get_mut`) would let both see the other and neither
    /// recycle, and the pool would then allocate a new cell.
    holders: AtomicUsize,
}

impl Cell {
    fn empty() -> Arc<Cell> {
        Arc::new(Cell {
            frame: None,
            outcome: Mutex::new(None),
            holders: AtomicUsize::new(0),
        })
    }
}

/// Recycles the cells of shared frames.
///
/// ```
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 8, alignment: Alignment::BYTE };
/// # let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// use ks_graph::runtime::SharePool;
/// let pool = SharePool::default();
/// let a = pool.share(alloc.try_allocate()?); // a new cell
/// drop(a); // the cell goes back to the pool …
/// let _b = pool.share(alloc.try_allocate()?); // … and is reused here
/// assert_eq!(pool.free_cells(), 0);
///
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Clone, Default)]
pub struct SharePool {
    free: Arc<Mutex<Vec<Arc<Cell>>>>,
}

impl fmt::Debug for SharePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.free.lock().map_or(0, |v| v.len());
        f.debug_struct("SharePool").field("free_cells", &n).finish()
    }
}

impl SharePool {
    /// A pool with `cells` cells ready (more are made on demand).
    ///
    /// ```
    /// use ks_graph::runtime::SharePool;
    /// let pool = SharePool::with_cells(4);
    /// assert_eq!(pool.free_cells(), 4);
    /// ```
    pub fn with_cells(cells: usize) -> SharePool {
        let pool = SharePool::default();
        {
            let mut free = pool.free.lock().unwrap_or_else(PoisonError::into_inner);
            free.reserve(cells * 2);
            for _ in 0..cells {
                free.push(Cell::empty());
            }
        }
        pool
    }

    /// Moves `frame` into a cell; clones of the result share it.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 8, alignment: Alignment::BYTE };
    /// # let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// use ks_graph::runtime::SharePool;
    /// let pool = SharePool::with_cells(1);
    /// let s = pool.share(alloc.try_allocate()?);
    /// let t = s.clone();
    /// assert_eq!(pool.free_cells(), 0);
    /// assert_eq!(s.bytes().as_ptr(), t.bytes().as_ptr()); // one frame, two holders
    /// drop((s, t));
    /// assert_eq!(pool.free_cells(), 1);
    ///
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn share(&self, frame: Frame) -> SharedFrame {
        self.share_frame(RtFrame::Owned(frame))
    }

    /// [`share`](Self::share) for an owned or injected frame (a shared one is never given).
    fn share_frame(&self, frame: RtFrame) -> SharedFrame {
        let popped = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut cell = popped.unwrap_or_else(Cell::empty);
        match Arc::get_mut(&mut cell) {
            Some(c) => {
                c.frame = Some(frame);
                *c.outcome.get_mut().unwrap_or_else(PoisonError::into_inner) = None;
                *c.holders.get_mut() = 1;
            }
            // A pooled cell is never shared (`SharedFrame::drop` returns it only when unique);
            // if it somehow were, fall back to a fresh cell.
            None => {
                cell = Arc::new(Cell {
                    frame: Some(frame),
                    outcome: Mutex::new(None),
                    holders: AtomicUsize::new(1),
                })
            }
        }
        SharedFrame {
            cell: Some(cell),
            pool: self.clone(),
        }
    }

    /// Cells waiting for reuse.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 8, alignment: Alignment::BYTE };
    /// # let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// use ks_graph::runtime::SharePool;
    /// let pool = SharePool::default();
    /// assert_eq!(pool.free_cells(), 0);
    /// drop(pool.share(alloc.try_allocate()?)); // makes a cell on demand, then recycles it
    /// assert_eq!(pool.free_cells(), 1);
    ///
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn free_cells(&self) -> usize {
        self.free.lock().map_or(0, |v| v.len())
    }
}

/// A read-only frame shared by several holders. Cloning adds a holder; the last holder to
/// drop returns the frame to its allocator.
///
/// ```
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 8, alignment: Alignment::BYTE };
/// # let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// use ks_graph::runtime::SharePool;
/// let pool = SharePool::default();
/// let branches = vec![pool.share(alloc.try_allocate()?); 3]; // three holders of one frame
/// assert_eq!(alloc.status().allocated_frames, 1);
/// drop(branches);
/// assert_eq!(alloc.status().allocated_frames, 0);
///
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub struct SharedFrame {
    cell: Option<Arc<Cell>>,
    pool: SharePool,
}

impl SharedFrame {
    /// The frame's bytes.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 8, alignment: Alignment::BYTE };
    /// # let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// use ks_graph::runtime::SharePool;
    /// let mut frame = alloc.try_allocate()?;
    /// frame.fill(7);
    /// let shared = SharePool::default().share(frame);
    /// assert_eq!(shared.bytes(), &[7; 8]);
    ///
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn bytes(&self) -> &[u8] {
        self.cell
            .as_ref()
            .and_then(|c| c.frame.as_ref())
            .map_or(&[], RtFrame::as_bytes)
    }
}

impl Clone for SharedFrame {
    fn clone(&self) -> SharedFrame {
        if let Some(c) = &self.cell {
            // Relaxed: a new holder is made from an existing one, so the count cannot reach
            // zero meanwhile; the decrement in `drop` orders the frame's last use.
            c.holders.fetch_add(1, Ordering::Relaxed);
        }
        SharedFrame {
            cell: self.cell.clone(),
            pool: self.pool.clone(),
        }
    }
}

impl Drop for SharedFrame {
    fn drop(&mut self) {
        let Some(mut cell) = self.cell.take() else {
            return;
        };
        // AcqRel: every other holder's reads of the frame happen before the last holder
        // returns it to its allocator.
        if cell.holders.fetch_sub(1, Ordering::AcqRel) != 1 {
            return; // other holders remain; this `Arc` reference drops here
        }
        // Last holder. Every other holder has already decremented `holders` and drops its
        // `Arc` right after, so the cell becomes unique within a few instructions (or one
        // preemption of that thread): wait for it, then recycle cell and frame.
        let mut spins = 0u32;
        let (frame, outcome) = loop {
            if let Some(c) = Arc::get_mut(&mut cell) {
                let outcome = c.outcome.get_mut().unwrap_or_else(PoisonError::into_inner);
                break (c.frame.take(), outcome.take());
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        };
        // The cell goes back to the pool before the frame goes back to its allocator
        // (behaviour 60) or its client: the frame may be handed straight to a waiting requester and shared
        // again at once, and it must find a cell ready then.
        self.pool
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(cell);
        match (frame, outcome) {
            (Some(RtFrame::Injected(f)), Some((header, status))) => f.finish(&header, status),
            (frame, _) => drop(frame),
        }
    }
}

impl fmt::Debug for SharedFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedFrame")
            .field("len", &self.bytes().len())
            .finish()
    }
}
