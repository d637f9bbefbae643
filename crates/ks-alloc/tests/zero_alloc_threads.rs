//! Zero heap allocation per frame with real threads, counted process-wide: a requester thread
//! blocked in `allocate_blocking` and an async waiter, fed by frees made on two other threads,
//! while the library worker runs its periodic duties (coarse clock, starvation scan).
//!
//! `zero_alloc.rs` counts per thread, so it cannot see an allocation made by another thread on
//! the requester's behalf (the worker, a freer). This test counts every allocation in the
//! process, attributed to the role of the thread that made it, over a stream long enough
//! (wall-clock, at least a few worker scan periods) that anything periodic shows up. One test
//! per file: the counter is process-wide.
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use ks_alloc::{Alignment, Allocator, Frame, Framing, Holder, Memory, PoolType};

/// Thread roles (index into `COUNTS`). 0: any thread the test did not start (the ks-alloc
/// worker, the test harness).
const OTHER: usize = 0;
const REQUESTER: usize = 1;
const ASYNC: usize = 2;
const FREER_A: usize = 3;
const FREER_B: usize = 4;
const MAIN: usize = 5;
const ROLES: [&str; 6] = [
    "other threads (ks-alloc worker, harness)",
    "blocked requester",
    "async waiter",
    "freer A",
    "freer B",
    "test main",
];

static COUNTS: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];

thread_local! {
    static ROLE: Cell<usize> = const { Cell::new(OTHER) };
}

struct Counting;

// SAFETY: forwards to the system allocator; the role is a const-initialised thread local (no
// allocation, no lazy initialisation) and the counters are statics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded contract.
        unsafe { System.realloc(p, l, n) }
    }
}

fn count() {
    let role = ROLE.try_with(Cell::get).unwrap_or(OTHER);
    COUNTS[role].fetch_add(1, Ordering::Relaxed);
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn snapshot() -> [usize; 6] {
    std::array::from_fn(|i| COUNTS[i].load(Ordering::Relaxed))
}

/// A frame mailbox that never allocates after creation (capacity reserved up front).
struct Inbox(Mutex<Vec<Frame>>);

impl Inbox {
    fn new() -> Inbox {
        Inbox(Mutex::new(Vec::with_capacity(8)))
    }
    fn put(&self, f: Frame) {
        self.0.lock().unwrap().push(f);
    }
    fn take(&self) -> Option<Frame> {
        self.0.lock().unwrap().pop()
    }
}

/// Unparks a thread (an allocation-free waker after creation).
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

#[test]
fn threaded_handoff_stream_allocates_nothing() {
    ROLE.with(|r| r.set(MAIN));
    let framing = Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames: 2,
        frame_size: 4096,
        alignment: Alignment::BYTES_64,
    };
    // A starvation report allocates (it is built on the heap when it fires): on a machine
    // stalled for a second the default threshold would fire one, which this test would count.
    // The worker's scan itself still runs, and must allocate nothing.
    let alloc = Allocator::builder(&framing)
        .memory(Memory::NonPaged)
        .starvation_threshold(Some(std::time::Duration::from_secs(3600)))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let inboxes = Arc::new([Inbox::new(), Inbox::new()]);

    // Two waiters share the FIFO queue: a blocked thread and an async task driven by a
    // minimal block_on. Each hands every frame it gets to a freer, alternating.
    let waiter = |role: usize| {
        let (alloc, stop, cycles, inboxes) =
            (alloc.clone(), stop.clone(), cycles.clone(), inboxes.clone());
        std::thread::spawn(move || {
            ROLE.with(|r| r.set(role));
            let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
            let mut cx = Context::from_waker(&waker);
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let got = if role == REQUESTER {
                    alloc.allocate_blocking_for(None, &Holder("requester"))
                } else {
                    let mut fut = pin!(alloc.allocate_for(&Holder("async")));
                    loop {
                        match fut.as_mut().poll(&mut cx) {
                            Poll::Ready(r) => break r,
                            Poll::Pending => std::thread::park(),
                        }
                    }
                };
                match got {
                    Ok(f) => {
                        inboxes[n % 2].put(f);
                        n += 1;
                        cycles.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => break, // closed at the end
                }
            }
        })
    };
    let waiters = [waiter(REQUESTER), waiter(ASYNC)];

    // Freers: free a frame only while a request pends, so nearly every free is a hand-off.
    // One at a time (`gate`, which allocates nothing): two freers seeing the same single
    // pending request would otherwise both free, and the second free would not hand off.
    let gate = Arc::new(std::sync::Mutex::new(()));
    let freers: Vec<_> = [FREER_A, FREER_B]
        .into_iter()
        .enumerate()
        .map(|(k, role)| {
            let (alloc, stop, inboxes) = (alloc.clone(), stop.clone(), inboxes.clone());
            let gate = gate.clone();
            std::thread::spawn(move || {
                ROLE.with(|r| r.set(role));
                while !stop.load(Ordering::Relaxed) {
                    match inboxes[k].take() {
                        Some(f) => {
                            let _one_at_a_time = gate.lock().unwrap_or_else(|e| e.into_inner());
                            while alloc.status().pending == 0 && !stop.load(Ordering::Relaxed) {
                                std::hint::spin_loop();
                                std::thread::yield_now();
                            }
                            drop(f);
                        }
                        None => std::thread::yield_now(),
                    }
                }
            })
        })
        .collect();

    // Runs the stream until at least `n` more frames and `t` of wall-clock time have gone by
    // (sizing only: the worker's periods are wall-clock, so the window must span several).
    let run = |n: u64, t: Duration| {
        let (start, c0) = (Instant::now(), cycles.load(Ordering::Relaxed));
        while cycles.load(Ordering::Relaxed) - c0 < n || start.elapsed() < t {
            std::thread::sleep(Duration::from_millis(5));
        }
        cycles.load(Ordering::Relaxed) - c0
    };
    // Warm-up: first parks, thread handles, the worker's first scans.
    run(2_000, Duration::from_millis(150));
    let handoffs0 = alloc.status().handoffs;
    let before = snapshot();
    let frames = run(20_000, Duration::from_millis(400));
    let after = snapshot();
    let handoffs = alloc.status().handoffs - handoffs0;

    stop.store(true, Ordering::Relaxed);
    alloc.close(); // releases a waiter still pending
    for w in waiters {
        w.join().unwrap();
    }
    for f in freers {
        f.join().unwrap();
    }
    for inbox in inboxes.iter() {
        while inbox.take().is_some() {}
    }
    assert_eq!(alloc.status().allocated_frames, 0);

    let delta: Vec<usize> = (0..6).map(|i| after[i] - before[i]).collect();
    let total: usize = delta.iter().sum();
    let by_role: Vec<String> = (0..6)
        .filter(|&i| delta[i] > 0)
        .map(|i| format!("{}: {}", ROLES[i], delta[i]))
        .collect();
    eprintln!("{frames} frames, {handoffs} hand-offs, {total} allocations {by_role:?}");
    assert!(
        handoffs * 2 > frames,
        "most frames should go through the hand-off path ({handoffs} of {frames})"
    );
    assert_eq!(
        total, 0,
        "{total} heap allocations over {frames} frames ({handoffs} hand-offs): {by_role:?}"
    );
}
