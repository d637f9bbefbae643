//! The per-thread *context level*: the portable stand-in for KS's IRQL (design.md).
//!
//! A thread runs at [`Level::Passive`] (may block) unless it raised itself to
//! [`Level::Dispatch`] with [`raise_to_dispatch`], as a real-time audio callback or an
//! interrupt-like handler would. At Dispatch level:
//!
//! * APIs that may block ([`Allocator::allocate_blocking`](crate::Allocator::allocate_blocking),
//!   [`PendingAlloc::wait`](crate::PendingAlloc::wait)) refuse to run and return
//!   `STATUS_INVALID_DEVICE_STATE` (KS would bugcheck);
//! * a free that finds requests pending hands the frame to the library worker without taking
//!   the waiter lock, and the worker completes the oldest request afterwards (behaviour 25);
//! * FREEFRAME subscribers are notified by the worker, not inline.

use std::cell::Cell;
use std::marker::PhantomData;

/// A thread's context level (KS: IRQL).
///
/// ```
/// use ks_alloc::{current_level, raise_to_dispatch, Level};
/// assert!(Level::Passive < Level::Dispatch);
/// let there = std::thread::spawn(|| {
///     let _g = raise_to_dispatch();
///     current_level()
/// });
/// assert_eq!(there.join().unwrap(), Level::Dispatch);
/// assert_eq!(current_level(), Level::Passive, "the level is per thread");
/// ```
#[doc(alias = "IRQL")]
#[doc(alias = "KIRQL")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// May block, sleep, allocate and make system calls (KS: `PASSIVE_LEVEL`).
    #[doc(alias = "PASSIVE_LEVEL")]
    Passive,
    /// Must not block, sleep or allocate (KS: `DISPATCH_LEVEL`).
    #[doc(alias = "DISPATCH_LEVEL")]
    Dispatch,
}

// The number of live `DispatchGuard`s of this thread: it is at Dispatch level while any
// lives, whatever order they are dropped in.
#[cfg(not(loom))]
crate::loom::thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}
#[cfg(loom)]
crate::loom::thread_local! {
    static DEPTH: Cell<u32> = Cell::new(0);
}

/// The calling thread's current level.
///
/// ```
/// use ks_alloc::{current_level, raise_to_dispatch, Level};
/// assert_eq!(current_level(), Level::Passive);
/// {
///     let _g = raise_to_dispatch();
///     assert_eq!(current_level(), Level::Dispatch);
/// }
/// assert_eq!(current_level(), Level::Passive);
/// ```
#[doc(alias = "KeGetCurrentIrql")]
pub fn current_level() -> Level {
    if DEPTH.with(Cell::get) > 0 {
        Level::Dispatch
    } else {
        Level::Passive
    }
}

/// Raises the calling thread to [`Level::Dispatch`] until the guard is dropped. Guards nest:
/// the thread stays at Dispatch level while any of its guards lives, in whatever order they
/// are dropped.
///
/// ```
/// use ks_alloc::{raise_to_dispatch, Status};
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let _dispatch = raise_to_dispatch();
/// assert!(alloc.try_allocate().is_ok(), "never blocks: allowed");
/// assert!(matches!(alloc.allocate_blocking(None), Err(Status::InvalidDeviceState(_))));
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KeRaiseIrql")]
pub fn raise_to_dispatch() -> DispatchGuard {
    // Saturating: 2³² live guards on one thread cannot happen, and must not wrap to Passive.
    DEPTH.with(|d| d.set(d.get().saturating_add(1)));
    DispatchGuard {
        _not_send: PhantomData,
    }
}

/// Keeps its thread at Dispatch level until dropped. Not `Send`: the level is per thread.
///
/// ```
/// use ks_alloc::{current_level, raise_to_dispatch, Level};
/// let outer = raise_to_dispatch();
/// let inner = raise_to_dispatch();
/// drop(inner);
/// assert_eq!(current_level(), Level::Dispatch, "still inside the outer guard");
/// drop(outer);
/// assert_eq!(current_level(), Level::Passive);
/// // Dropped out of order, too: Dispatch while either lives.
/// let (a, b) = (raise_to_dispatch(), raise_to_dispatch());
/// drop(a);
/// assert_eq!(current_level(), Level::Dispatch, "b still lives");
/// drop(b);
/// assert_eq!(current_level(), Level::Passive);
/// ```
#[must_use = "the thread stays at Dispatch level until every guard it holds is dropped"]
#[derive(Debug)]
pub struct DispatchGuard {
    _not_send: PhantomData<*const ()>,
}

impl Drop for DispatchGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// The error a blocking API returns at Dispatch level.
pub(crate) fn refuse_blocking(api: &'static str) -> crate::Status {
    crate::Status::InvalidDeviceState(
        format!(
            "{api} may block and was called at Dispatch level; use try_allocate or the async \
             allocate() at Dispatch level, or drop the DispatchGuard first"
        )
        .into(),
    )
}
