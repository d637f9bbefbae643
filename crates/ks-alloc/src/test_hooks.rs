//! Test hooks: points in the free path where a unit test may stop the freeing thread, to
//! tear the allocator down from another thread right there (the `teardown_*` tests, which
//! Miri checks). Compiled into unit tests only; each hook is per thread.

use std::cell::RefCell;
use std::thread::LocalKey;

type Hook = RefCell<Option<Box<dyn FnMut()>>>;

std::thread_local! {
    static BETWEEN_UNLOCK_AND_WAKE: Hook = const { RefCell::new(None) };
    static FRAME_FREE: Hook = const { RefCell::new(None) };
    static BEFORE_WAITER_LOCK: Hook = const { RefCell::new(None) };
    static HEAVY_BARRIER: Hook = const { RefCell::new(None) };
}

/// Where a hook runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Point {
    /// A hand-off, between the waiter lock's release and the wake: the frame already
    /// belongs to its new owner.
    BetweenUnlockAndWake,
    /// A free has just made its frame free (home on the list, or cached).
    FrameFree,
    /// A request found no free frame, not even a cached one, and is about to take the
    /// waiter lock to queue.
    BeforeWaiterLock,
    /// A cache drain's heavy barrier (`membarrier`) is about to run.
    HeavyBarrier,
}

fn key(p: Point) -> &'static LocalKey<Hook> {
    match p {
        Point::BetweenUnlockAndWake => &BETWEEN_UNLOCK_AND_WAKE,
        Point::FrameFree => &FRAME_FREE,
        Point::BeforeWaiterLock => &BEFORE_WAITER_LOCK,
        Point::HeavyBarrier => &HEAVY_BARRIER,
    }
}

/// Runs `f` on this thread each time it reaches `p`.
pub(crate) fn set(p: Point, f: impl FnMut() + 'static) {
    key(p).with(|h| *h.borrow_mut() = Some(Box::new(f)));
}

/// This thread reached `p`.
pub(crate) fn reach(p: Point) {
    key(p).with(|h| {
        if let Some(f) = h.borrow_mut().as_mut() {
            f();
        }
    });
}
