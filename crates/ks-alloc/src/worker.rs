//! The library worker thread (KS: the worker item that completes pending ALLOC requests when a
//! frame is freed above `PASSIVE_LEVEL`, behaviour 25).
//!
//! One thread per process, started when the first allocator is created (so that a Dispatch
//! level free never spawns anything). A Dispatch-level free pushes its frame on the
//! allocator's deferred stack and, unless the allocator is already scheduled, links the
//! allocator into the worker's lock-free list (taking a strong reference for the worker) and
//! unparks it. Unparking is a non-blocking `futex` wake: the one system call a Dispatch free
//! may make, the equivalent of KS queueing a work item.
//!
//! The worker also polls the allocators that have a starvation threshold (every 50 ms) and
//! emits their starvation reports; polls vendor allocators whose vendor had no memory for
//! pending requests, and retries it for them (so that they are served even if no frame of
//! the allocator is out to be freed); and, while any allocator exists, refreshes the
//! library's coarse clock every 10 ms (the time a frame was taken is read from it).

use crate::allocator::Inner;

#[cfg(not(loom))]
mod imp {
    use std::ptr;
    use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock, Weak};
    use std::thread::Thread;
    use std::time::Duration;

    use super::Inner;
    use crate::Status;
    use crate::frame::{COARSE_NOW, now_ns};
    use crate::loom::{Arc, lock};

    /// Starvation scan period.
    const TICK: Duration = Duration::from_millis(50);
    /// Coarse clock refresh period (while any allocator exists).
    const CLOCK_TICK: Duration = Duration::from_millis(10);

    /// Allocators alive (the worker ticks only while there are some).
    static LIVE: AtomicUsize = AtomicUsize::new(0);

    pub(crate) fn allocator_created() {
        // Relaxed: a hint for the worker's sleep length; the unpark below wakes it.
        LIVE.fetch_add(1, Ordering::Relaxed);
        COARSE_NOW.store(now_ns(), Ordering::Relaxed);
        if let Some(w) = worker() {
            w.thread.unpark();
        }
    }

    pub(crate) fn allocator_dropped() {
        // Relaxed: see `allocator_created`.
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }

    struct Worker {
        thread: Thread,
        /// Lock-free list of scheduled allocators, linked through `Inner::worker_next`. Many
        /// producers push; the worker takes the whole list with one `swap` (no ABA).
        queue: AtomicPtr<Inner>,
        watched: Mutex<Vec<Weak<Inner>>>,
    }

    /// The worker, once started. Only a successful start is kept: a failed spawn (a thread,
    /// memory or address-space limit that may pass) is retried by the next allocator's
    /// creation, rather than failing every creation for the rest of the process.
    static WORKER: OnceLock<Worker> = OnceLock::new();
    /// Serializes starting the worker, so that only one thread is ever spawned.
    static STARTING: Mutex<()> = Mutex::new(());

    fn worker() -> Option<&'static Worker> {
        WORKER.get()
    }

    pub(crate) fn ensure_started() -> Result<(), Status> {
        start_once(&WORKER, &STARTING, || {
            std::thread::Builder::new()
                .name("ks-alloc-worker".into())
                .spawn(run)
        })
    }

    /// Sets `cell` to a worker started by `spawn`, unless it is set already; a failed spawn
    /// leaves `cell` empty, for the next call to try again.
    fn start_once(
        cell: &OnceLock<Worker>,
        starting: &Mutex<()>,
        spawn: impl FnOnce() -> std::io::Result<std::thread::JoinHandle<()>>,
    ) -> Result<(), Status> {
        if cell.get().is_some() {
            return Ok(());
        }
        let _starting = lock(starting);
        if cell.get().is_some() {
            return Ok(());
        }
        let handle = spawn().map_err(spawn_error)?;
        // Cannot fail: `cell` is set only here, under `starting`, and was empty above.
        let _ = cell.set(Worker {
            thread: handle.thread().clone(),
            queue: AtomicPtr::new(ptr::null_mut()),
            watched: Mutex::new(Vec::new()),
        });
        Ok(())
    }

    fn spawn_error(e: std::io::Error) -> Status {
        Status::InsufficientResources(
            format!("cannot start the ks-alloc worker thread: {e}").into(),
        )
    }

    #[cfg(test)]
    #[test]
    fn a_failed_worker_start_is_retried_and_a_started_worker_is_kept() {
        let cell = OnceLock::new();
        let starting = Mutex::new(());
        let failed = start_once(&cell, &starting, || {
            Err(std::io::Error::from(std::io::ErrorKind::WouldBlock))
        });
        let Err(Status::InsufficientResources(why)) = failed else {
            panic!("expected STATUS_INSUFFICIENT_RESOURCES, got {failed:?}")
        };
        assert!(
            why.contains("cannot start the ks-alloc worker thread"),
            "{why}"
        );
        assert!(cell.get().is_none(), "a failure is not kept");
        // Resources came back: the next creation starts the worker.
        start_once(&cell, &starting, || {
            std::thread::Builder::new().spawn(|| {})
        })
        .unwrap();
        assert!(cell.get().is_some());
        // Once started, it is never spawned again.
        start_once(&cell, &starting, || panic!("spawned twice")).unwrap();
    }

    /// Links `this` (with the caller's strong reference) into the worker's queue.
    pub(crate) fn enqueue(this: *const Inner) {
        let Some(w) = worker() else {
            // Unreachable: an allocator exists only after `ensure_started` succeeded.
            return;
        };
        // SAFETY: the caller transferred a strong reference, so `this` is alive.
        let inner = unsafe { &*this };
        // Relaxed: seeds the CAS.
        let mut head = w.queue.load(Ordering::Relaxed);
        loop {
            // Relaxed: published by the Release CAS below.
            inner.worker_next.store(head, Ordering::Relaxed);
            // Release: pairs with the worker's Acquire swap, publishing `worker_next` and the
            // deferred frames pushed before.
            match w.queue.compare_exchange_weak(
                head,
                this.cast_mut(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        w.thread.unpark();
    }

    pub(crate) fn watch(inner: &Arc<Inner>) {
        if let Some(w) = worker() {
            lock(&w.watched).push(Arc::downgrade(inner));
        }
    }

    pub(crate) fn unwatch(inner: &Arc<Inner>) {
        if let Some(w) = worker() {
            let p = Arc::as_ptr(inner);
            lock(&w.watched).retain(|x| x.as_ptr() != p && x.strong_count() > 0);
        }
    }

    fn run() {
        // Wait until `WORKER` is initialised (we may run before `ensure_started` stores it).
        let w = loop {
            if let Some(w) = worker() {
                break w;
            }
            std::thread::park_timeout(Duration::from_millis(1));
        };
        let mut last_scan = std::time::Instant::now();
        // The allocators being scanned, reused across scans so that a scan allocates only
        // when more allocators are watched than ever before (never per frame or per tick).
        let mut scratch: Vec<Arc<Inner>> = Vec::new();
        loop {
            // Acquire: pairs with the Release CAS in `enqueue`.
            let mut p = w.queue.swap(ptr::null_mut(), Ordering::Acquire);
            if p.is_null() {
                // Relaxed: see `allocator_created`.
                if LIVE.load(Ordering::Relaxed) == 0 {
                    std::thread::park();
                } else {
                    std::thread::park_timeout(CLOCK_TICK);
                }
                // Relaxed: a diagnostics timestamp.
                COARSE_NOW.store(now_ns(), Ordering::Relaxed);
            }
            while !p.is_null() {
                // SAFETY: every queued pointer carries a strong reference for the worker.
                let inner = unsafe { &*p };
                // Relaxed: ordered by the Acquire swap; read before `service` lets the
                // allocator be scheduled (and relinked) again.
                let next = inner.worker_next.load(Ordering::Relaxed);
                // `service` reports the panics of wakers and callbacks itself and goes on;
                // this catches the rest (a vendor's `delete` at finalization), so that the
                // worker, which serves every allocator, survives.
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // SAFETY: `p` comes from `Arc::as_ptr` (`Inner::schedule`) and carries
                    // the worker's strong reference.
                    unsafe { Inner::service(std::ptr::NonNull::new_unchecked(p)) }
                }));
                if served.is_err() {
                    tracing::error!(
                        "a vendor callback panicked on the ks-alloc worker; the worker goes on"
                    );
                }
                // SAFETY: drops the reference the scheduler gave the worker.
                unsafe { Arc::decrement_strong_count(p.cast_const()) };
                p = next;
            }
            if last_scan.elapsed() >= TICK {
                last_scan = std::time::Instant::now();
                scan(w, &mut scratch);
            }
        }
    }

    /// One starvation scan. Heap-free in steady state: `scratch` keeps its capacity (a fresh
    /// `Vec` here cost one allocation per scan, 20 a second, which the process-wide
    /// counting-allocator tests saw as allocations "per frame"), and `check_starvation`
    /// allocates only when it emits a report.
    fn scan(w: &Worker, scratch: &mut Vec<Arc<Inner>>) {
        {
            let mut v = lock(&w.watched);
            v.retain(|x| x.strong_count() > 0);
            scratch.extend(v.iter().filter_map(Weak::upgrade));
        }
        // Checked outside the registry lock: a report goes to `tracing`, whose subscriber may
        // do anything (even create an allocator, which takes that lock).
        for inner in scratch.iter() {
            if !inner.free.is_closed() {
                // A vendor's `allocate`, or a `tracing` subscriber, may panic: the worker
                // serves every allocator, so it reports the panic and goes on.
                let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    inner.retry_vendor();
                    inner.check_starvation();
                }));
                if checked.is_err() {
                    tracing::error!(
                        allocator = %inner.name,
                        "a vendor callback or a starvation report panicked on the ks-alloc \
                         worker; the worker goes on"
                    );
                }
            }
        }
        // Drops the strong references (possibly the last ones) and keeps the capacity.
        scratch.clear();
    }
}

#[cfg(loom)]
mod imp {
    //! Under loom the model itself plays the worker: it calls `run_scheduled`.
    use super::Inner;
    use crate::Status;
    use crate::loom::Arc;

    pub(crate) fn ensure_started() -> Result<(), Status> {
        Ok(())
    }
    pub(crate) fn enqueue(_this: *const Inner) {}
    pub(crate) fn watch(_inner: &Arc<Inner>) {}
    pub(crate) fn unwatch(_inner: &Arc<Inner>) {}
    pub(crate) fn allocator_created() {}
    pub(crate) fn allocator_dropped() {}
}

pub(crate) use imp::{
    allocator_created, allocator_dropped, enqueue, ensure_started, unwatch, watch,
};

/// Loom: one worker pass if the allocator is scheduled (consumes the worker's reference).
#[cfg(loom)]
pub(crate) fn run_scheduled(inner: &crate::loom::Arc<Inner>) -> bool {
    use crate::loom::Ordering;
    // Acquire: stands in for the worker queue's Acquire swap, which follows the scheduler's
    // AcqRel swap of this flag (`Inner::schedule`).
    if !inner.in_worker.load(Ordering::Acquire) {
        return false;
    }
    // SAFETY: from the `Arc`, which the caller holds.
    unsafe {
        Inner::service(std::ptr::NonNull::new_unchecked(
            crate::loom::Arc::as_ptr(inner).cast_mut(),
        ))
    };
    // SAFETY: drops the reference `schedule` handed to the worker.
    unsafe { crate::loom::Arc::decrement_strong_count(crate::loom::Arc::as_ptr(inner)) };
    true
}
