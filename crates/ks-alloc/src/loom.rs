//! The std / loom facade (as in tokio): production code imports its atomics, `Arc`, `Mutex`
//! and thread primitives from here, so that the same code runs under the loom model checker
//! with `RUSTFLAGS="--cfg loom"`.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::fence;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread_local;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread_local;

pub(crate) use std::sync::atomic::Ordering;

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves the
/// protected data consistent before it can panic (they contain no user callbacks except the
/// event registry, whose callbacks are documented as must-not-panic), so a poisoned lock
/// still guards valid data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    #[cfg(loom)]
    {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Tries to lock a mutex without blocking (poisoning ignored, as in [`lock`]); `None` if it
/// is held.
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    // loom's `try_lock` returns std's `TryLockError` too.
    use std::sync::TryLockError;
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}
