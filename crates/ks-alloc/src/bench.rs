//! Benchmark bodies, shared by `benches/alloc.rs` (criterion) and the CLI's `ksalloc bench`,
//! so that both measure the same code (except `ksalloc bench`'s `two_threads`, which has a
//! body of its own with a blocking fallback).
//!
//! Each body is one operation of the allocator or of a std-only peer (`Mutex<Vec<_>>` pool,
//! `Mutex` + `Condvar` hand-off). Peers from other crates (crossbeam `ArrayQueue`,
//! `lockfree-object-pool`, tokio `Semaphore`) live in the bench file itself, so that this
//! library keeps no dependency on them.
//!
//! ```
//! use ks_alloc::bench;
//! let a = bench::allocator(4, 4096)?;
//! bench::try_cycle(&a);
//! let lat = bench::handoff_latency_blocked(&a, 50);
//! assert_eq!(lat.samples, 50);
//! assert!(lat.p50 <= lat.p99);
//! # Ok::<(), ks_alloc::Status>(())
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::loom::lock;
use crate::{Alignment, Allocator, Framing, Memory, PoolType, Status};

/// The benchmark allocator: `frames` frames of `frame_size` bytes, non-paged, 64-byte aligned,
/// no starvation watch (so the worker stays idle).
///
/// # Errors
/// As [`Allocator::new`].
///
/// ```
/// use ks_alloc::{bench, Memory};
/// let a = bench::allocator(2, 64)?;
/// assert_eq!((a.name(), a.memory()), ("bench", Memory::NonPaged));
/// assert_eq!(a.framing().alignment.bytes(), 64);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub fn allocator(frames: u32, frame_size: u32) -> Result<Allocator, Status> {
    let f = Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames,
        frame_size,
        alignment: Alignment::BYTES_64,
    };
    Allocator::builder(&f)
        .memory(Memory::NonPaged)
        .name("bench")
        .starvation_threshold(None)
        .build()
}

/// (a) One function-table allocate + free. Returns whether a frame was obtained.
///
/// ```
/// use ks_alloc::bench;
/// let a = bench::allocator(1, 64)?;
/// assert!(bench::try_cycle(&a));
/// let held = a.try_allocate()?;
/// assert!(!bench::try_cycle(&a), "no frame free");
/// # drop(held);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[inline]
pub fn try_cycle(a: &Allocator) -> bool {
    match a.try_allocate() {
        Ok(f) => {
            std::hint::black_box(f.as_ptr());
            true
        }
        Err(_) => false,
    }
}

/// (a) diagnostic row: the free list alone — one pop and one push of a slot index, as
/// [`try_cycle`] does them (the push starts from the pop's hint), but no
/// [`Frame`](crate::Frame), no dispatch-level check, no per-slot bookkeeping, no peak. The
/// floor that the lock-free free list (a bitmap: load and CAS to pop, one CAS to push) puts
/// under (a). Returns whether a slot was obtained.
///
/// ```
/// use ks_alloc::bench;
/// let a = bench::allocator(1, 64)?;
/// assert!(bench::free_list_cycle(&a));
/// let held = a.try_allocate()?;
/// assert!(!bench::free_list_cycle(&a), "the only slot is out");
/// # drop(held);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[inline]
pub fn free_list_cycle(a: &Allocator) -> bool {
    match a.inner.free.pop_hinted() {
        Ok(t) => {
            std::hint::black_box(t.index);
            // `divert`: as a frame drop does (no waiters here, so always pushed).
            let _ = a.inner.free.push_hinted(t.index, true, t.hint);
            true
        }
        Err(_) => false,
    }
}

/// (a) peer: a `Mutex<Vec<_>>` pool of `frames` boxed `frame_size`-byte buffers.
///
/// ```
/// use ks_alloc::bench::MutexVecPool;
/// let pool = MutexVecPool::new(2, 64);
/// assert!(pool.cycle());
/// ```
#[derive(Debug)]
pub struct MutexVecPool {
    free: Mutex<Vec<Box<[u8]>>>,
}

impl MutexVecPool {
    /// A pool of `frames` buffers of `frame_size` bytes.
    ///
    /// ```
    /// use ks_alloc::bench::MutexVecPool;
    /// assert!(MutexVecPool::new(1, 4096).cycle());
    /// assert!(!MutexVecPool::new(0, 4096).cycle(), "an empty pool has nothing to lend");
    /// ```
    pub fn new(frames: usize, frame_size: usize) -> MutexVecPool {
        MutexVecPool {
            free: Mutex::new(
                (0..frames)
                    .map(|_| vec![0u8; frame_size].into_boxed_slice())
                    .collect(),
            ),
        }
    }

    /// One pop + push.
    ///
    /// ```
    /// use ks_alloc::bench::MutexVecPool;
    /// let pool = MutexVecPool::new(1, 64);
    /// assert!((0..100).all(|_| pool.cycle()), "each cycle puts its buffer back");
    /// ```
    #[inline]
    pub fn cycle(&self) -> bool {
        let b = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match b {
            Some(b) => {
                std::hint::black_box(b.as_ptr());
                self.free.lock().unwrap_or_else(|e| e.into_inner()).push(b);
                true
            }
            None => false,
        }
    }
}

/// (b) One `allocate().await` that is ready at once, then drop, polled with `cx`.
///
/// ```
/// use std::task::{Context, Waker};
/// use ks_alloc::bench;
/// let a = bench::allocator(1, 64)?;
/// let mut cx = Context::from_waker(Waker::noop());
/// assert!(bench::ready_async_cycle(&a, &mut cx));
/// let held = a.try_allocate()?;
/// assert!(!bench::ready_async_cycle(&a, &mut cx), "it would have to wait");
/// # drop(held);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[inline]
pub fn ready_async_cycle(a: &Allocator, cx: &mut Context<'_>) -> bool {
    let fut = pin!(a.allocate());
    match fut.poll(cx) {
        Poll::Ready(Ok(f)) => {
            std::hint::black_box(f.as_ptr());
            true
        }
        Poll::Ready(Err(e)) => {
            drop(e);
            false
        }
        Poll::Pending => false,
    }
}

/// (c) Runs `ops` cycles of `body` on each of `threads` threads at once; returns the wall
/// time of the whole run.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use ks_alloc::bench;
/// let a = bench::allocator(4, 64)?;
/// let got = AtomicU64::new(0);
/// let _wall = bench::contended(2, 100, || {
///     if bench::try_cycle(&a) {
///         got.fetch_add(1, Ordering::Relaxed);
///     }
/// });
/// assert_eq!(got.into_inner(), 200, "2 threads x 100 cycles, never short of frames");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub fn contended<F: Fn() + Sync>(threads: usize, ops: u64, body: F) -> Duration {
    let go = AtomicBool::new(false);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    while !go.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    for _ in 0..ops {
                        body();
                    }
                })
            })
            .collect();
        let t0 = Instant::now();
        go.store(true, Ordering::Release);
        for h in hs {
            let _ = h.join();
        }
        t0.elapsed()
    })
}

/// Percentiles of a latency sample.
///
/// ```
/// use ks_alloc::bench;
/// let lat = bench::condvar_handoff_latency(3);
/// assert_eq!(lat.samples, 3);
/// assert!(lat.p50 <= lat.p99);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Number of samples.
    pub samples: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Latency {
    /// Percentiles of raw samples in nanoseconds (as returned by the `*_samples` functions),
    /// for callers that merge several interleaved rounds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ks_alloc::bench::{condvar_handoff_samples, Latency, Placement};
    /// let lat = Latency::from_samples(vec![300, 100, 200]);
    /// assert_eq!((lat.samples, lat.p50), (3, Duration::from_nanos(200)));
    /// assert_eq!(lat.p99, Duration::from_nanos(300));
    /// let mut merged = condvar_handoff_samples(3, Placement::Free).wake;
    /// merged.extend(condvar_handoff_samples(3, Placement::Free).wake);
    /// assert_eq!(Latency::from_samples(merged).samples, 6);
    /// ```
    pub fn from_samples(v: Vec<u64>) -> Latency {
        percentiles(v)
    }
}

fn percentiles(mut v: Vec<u64>) -> Latency {
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        Duration::from_nanos(v.get(i).copied().unwrap_or(0))
    };
    Latency {
        samples: v.len(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Samples of one hand-off row (nanoseconds each, one entry per hand-off).
///
/// ```
/// use ks_alloc::bench::{condvar_handoff_samples, HandOffSamples, Placement};
/// let s: HandOffSamples = condvar_handoff_samples(3, Placement::Free);
/// assert_eq!((s.wake.len(), s.free.len()), (3, 3));
/// assert!(HandOffSamples::default().wake.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandOffSamples {
    /// From just before the free to the waiter resuming with the frame (the latency).
    pub wake: Vec<u64>,
    /// From just before the free to the free returning on the freeing thread (what a hand-off
    /// costs the freer, system call included).
    pub free: Vec<u64>,
}

/// Where the two threads of a hand-off bench run.
///
/// ```
/// use ks_alloc::bench::{futex_handoff_samples, Placement};
/// assert_eq!(Placement::default(), Placement::Free);
/// for placement in [Placement::Free, Placement::Pinned, Placement::PinnedBusy] {
///     assert_eq!(futex_handoff_samples(3, placement).wake.len(), 3);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// Wherever the scheduler puts them. With idle CPUs it usually wakes the waiter on the
    /// freer's CPU, so the latency measures the freer's path and a context switch.
    #[default]
    Free,
    /// Freer on CPU 0, waiter on CPU 1 (when the process may use both): every wake crosses
    /// CPUs. The freer's previous affinity is restored afterwards.
    Pinned,
    /// As [`Pinned`](Self::Pinned), but the freer spins instead of sleeping while it waits
    /// for the waiter to fall asleep, so its CPU stays busy and its caches warm: the latency
    /// then shows the hand-off's own path without the cost of running it from cold caches.
    /// A diagnostic, not the measurement of record. Where the threads cannot be pinned, the
    /// freer sleeps as with [`Free`](Self::Free): spinning on the waiter's CPU would only
    /// measure how soon the scheduler preempts it.
    PinnedBusy,
}

/// Pins the calling thread to `cpu` if `placement` asks for it, until the returned guard
/// drops (best effort: a refused `sched_setaffinity` leaves the thread where it was).
fn place(placement: Placement, cpu: usize) -> Unplace {
    let pin = || {
        let old = rustix::thread::sched_getaffinity(None).ok()?;
        if !(old.is_set(0) && old.is_set(1)) {
            return None;
        }
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        rustix::thread::sched_setaffinity(None, &set).ok()?;
        Some(old)
    };
    Unplace(match placement {
        Placement::Free => None,
        Placement::Pinned | Placement::PinnedBusy => pin(),
    })
}

/// Restores, on drop, the affinity that [`place`] changed.
struct Unplace(Option<rustix::thread::CpuSet>);

impl Unplace {
    /// Whether [`place`] pinned the thread.
    fn pinned(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for Unplace {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = rustix::thread::sched_setaffinity(None, old);
        }
    }
}

/// Waits until `a` has a pending request, then a little longer so the waiter is parked.
fn until_parked(a: &Allocator, clock: &Clock) {
    while a.status().pending == 0 {
        std::thread::yield_now();
    }
    clock.let_sleep();
}

/// The shared clock of a hand-off bench: the freer stamps it just before each hand-off, and
/// the waiter measures from that stamp when it resumes.
struct Clock {
    base: Instant,
    stamp: AtomicU64,
    /// The freer spins rather than sleeps before each hand-off ([`Placement::PinnedBusy`]).
    busy: bool,
}

impl Clock {
    /// Freer: waits 50 µs after the waiter said it would sleep, so that it really is asleep.
    fn let_sleep(&self) {
        const SETTLE: Duration = Duration::from_micros(50);
        if self.busy {
            let t0 = Instant::now();
            while t0.elapsed() < SETTLE {
                std::hint::spin_loop();
            }
        } else {
            std::thread::sleep(SETTLE);
        }
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Freer: stamps the clock, runs the hand-off `f`, and returns what `f` cost this thread.
    fn hand_off(&self, f: impl FnOnce()) -> u64 {
        let t0 = self.now();
        // Release: pairs with the Acquire in `latency` (which also follows the hand-off).
        self.stamp.store(t0, Ordering::Release);
        f();
        self.now().saturating_sub(t0)
    }

    /// Waiter, as it resumes with what was handed over: the latency since the stamp.
    fn latency(&self) -> u64 {
        let now = self.now();
        now.saturating_sub(self.stamp.load(Ordering::Acquire))
    }
}

/// One hand-off protocol of (d): each call of `waiter` (on the row's own thread) waits for
/// one hand-off and returns [`Clock::latency`] (`None`: stop); each call of `freer` waits
/// until the waiter sleeps, hands over through [`Clock::hand_off`], returns its cost (`None`:
/// stop), and waits until the waiter took what it was given.
struct Row<'a> {
    waiter: Waiter<'a>,
    freer: Freer<'a>,
}

/// The waiter side of a [`Row`], called once per hand-off on the row's thread.
type Waiter<'a> = Box<dyn FnMut(&Clock) -> Option<u64> + Send + 'a>;
/// The freer side of a [`Row`], called once per hand-off by the driver.
type Freer<'a> = Box<dyn FnMut(&Clock) -> Option<u64> + 'a>;

/// Runs up to `samples` hand-offs of each row, the rows taking turns hand-off by hand-off
/// (in an order rotated at each turn), each waiter on its own thread and the caller freeing.
/// So every row sees the same drift of a shared machine, down to a fraction of a millisecond,
/// and the same preceding activity.
fn run_rows<const N: usize>(
    samples: usize,
    placement: Placement,
    rows: [Row<'_>; N],
) -> [HandOffSamples; N] {
    let unplace = place(placement, 0);
    let clock = Clock {
        base: Instant::now(),
        stamp: AtomicU64::new(0),
        busy: placement == Placement::PinnedBusy && unplace.pinned(),
    };
    let clock = &clock;
    let mut out: [HandOffSamples; N] = std::array::from_fn(|_| HandOffSamples::default());
    std::thread::scope(|s| {
        let mut freers = Vec::with_capacity(N);
        let mut waiters = Vec::with_capacity(N);
        for Row { mut waiter, freer } in rows {
            waiters.push(s.spawn(move || {
                let _unplace = place(placement, 1);
                (0..samples).map_while(|_| waiter(clock)).collect()
            }));
            freers.push(Some(freer));
        }
        for turn in 0..samples {
            for k in 0..N {
                let k = (k + turn) % N;
                if let Some(freer) = &mut freers[k] {
                    match freer(clock) {
                        Some(cost) => out[k].free.push(cost),
                        None => freers[k] = None,
                    }
                }
            }
        }
        for (o, w) in out.iter_mut().zip(waiters) {
            o.wake = w.join().unwrap_or_default();
        }
    });
    out
}

/// Runs one row alone.
fn run_row(samples: usize, placement: Placement, row: Row<'_>) -> HandOffSamples {
    let [s] = run_rows(samples, placement, [row]);
    s
}

/// The allocator row: free → a waiter, measured from just before the free to the waiter
/// resuming with the frame. `wait` is the waiter's allocate (blocking or async). The freer
/// holds every frame but the one in flight.
fn alloc_row<'a>(
    a: &'a Allocator,
    wait: impl Fn(&Allocator) -> Option<crate::Frame> + Send + 'a,
) -> Row<'a> {
    // The waiter passes each frame back through `back` (not through the free list, or its
    // own next allocate would take it without waiting).
    let back = Arc::new(Mutex::new(None::<crate::Frame>));
    let mut held: Vec<_> = std::iter::from_fn(|| a.try_allocate().ok()).collect();
    let give = Arc::clone(&back);
    Row {
        waiter: Box::new(move |clock| {
            let f = wait(a)?;
            let lat = clock.latency();
            *lock(&give) = Some(f);
            Some(lat)
        }),
        freer: Box::new(move |clock| {
            if held.is_empty() {
                return None;
            }
            until_parked(a, clock);
            // The free: hands the frame to the parked waiter.
            let cost = clock.hand_off(|| drop(held.pop()));
            loop {
                if let Some(f) = lock(&back).take() {
                    held.push(f);
                    return Some(cost);
                }
                std::thread::yield_now();
            }
        }),
    }
}

/// The waiter of the blocked-thread row.
fn wait_blocking(a: &Allocator) -> Option<crate::Frame> {
    a.allocate_blocking(None).ok()
}

/// The waiter of the async row.
fn wait_async(a: &Allocator) -> Option<crate::Frame> {
    block_on(a.allocate()).ok()
}

/// The peer row: a `Mutex<Option<_>>` + `Condvar` hand-off, the same protocol; the freer's
/// cost is the store under the lock and `notify_one`.
fn condvar_row() -> Row<'static> {
    // (the value handed over, whether the waiter waits)
    let slot = Arc::new((Mutex::new((None::<u64>, false)), Condvar::new()));
    let w = Arc::clone(&slot);
    let mut sent = 0u64;
    Row {
        waiter: Box::new(move |clock| {
            let mut g = lock(&w.0);
            g.1 = true;
            while g.0.is_none() {
                g = w.1.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            let lat = clock.latency();
            g.0 = None;
            g.1 = false;
            Some(lat)
        }),
        freer: Box::new(move |clock| {
            while !lock(&slot.0).1 {
                std::thread::yield_now();
            }
            clock.let_sleep();
            sent += 1;
            let cost = clock.hand_off(|| {
                lock(&slot.0).0 = Some(sent);
                slot.1.notify_one();
            });
            while lock(&slot.0).0.is_some() {
                std::thread::yield_now();
            }
            Some(cost)
        }),
    }
}

/// A row whose two threads share nothing but one word: 0 idle, 1 the waiter is (about to be)
/// asleep, 2 handed over. The waiter runs `prepare`, stores 1, and calls `sleep` until the
/// word is 2 (`sleep` may return early); the freer stores 2 and calls `wake`. A hand-off
/// before the waiter sleeps makes `sleep` return at once (the word is no longer 1, or the
/// wake is kept for the next park).
fn word_row(
    mut prepare: impl FnMut() + Send + 'static,
    mut sleep: impl FnMut(&AtomicU32) + Send + 'static,
    mut wake: impl FnMut(&AtomicU32) + 'static,
) -> Row<'static> {
    let word = Arc::new(AtomicU32::new(0));
    let w = Arc::clone(&word);
    Row {
        waiter: Box::new(move |clock| {
            prepare();
            // Release/Acquire throughout: each side acts only on the other's last store (so
            // `prepare`'s effects are visible to the freer's `wake`).
            w.store(1, Ordering::Release);
            while w.load(Ordering::Acquire) != 2 {
                sleep(&w);
            }
            let lat = clock.latency();
            w.store(0, Ordering::Release);
            Some(lat)
        }),
        freer: Box::new(move |clock| {
            while word.load(Ordering::Acquire) != 1 {
                std::thread::yield_now();
            }
            clock.let_sleep();
            let cost = clock.hand_off(|| {
                word.store(2, Ordering::Release);
                wake(&word);
            });
            while word.load(Ordering::Acquire) == 2 {
                std::thread::yield_now();
            }
            Some(cost)
        }),
    }
}

/// The floor row: the waiter sleeps on the word with `futex_wait`, the freer `futex_wake`s it.
fn futex_row() -> Row<'static> {
    use rustix::thread::futex;
    word_row(
        || {},
        |w| {
            let _ = futex::wait(w, futex::Flags::PRIVATE, 1, None);
        },
        |w| {
            let _ = futex::wake(w, futex::Flags::PRIVATE, 1);
        },
    )
}

/// The executor's floor: what [`block_on`]'s waker and `park` cost with no allocator. The
/// waiter parks; the freer wakes the waiter's waker. The gap between the async row and this
/// one is ks-alloc's own code.
fn park_row() -> Row<'static> {
    // The waiter's waker, made by `prepare` on the waiter's thread before its first 1.
    let waker = Arc::new(std::sync::OnceLock::<Waker>::new());
    let made = Arc::clone(&waker);
    word_row(
        move || {
            made.get_or_init(Unpark::current);
        },
        |_| std::thread::park(),
        move |_| {
            if let Some(w) = waker.get() {
                w.wake_by_ref();
            }
        },
    )
}

/// (d) Hand-off latency free → a thread blocked in `allocate_blocking`.
///
/// ```
/// use ks_alloc::bench;
/// let a = bench::allocator(2, 64)?;
/// let lat = bench::handoff_latency_blocked(&a, 3);
/// assert_eq!(lat.samples, 3);
/// assert_eq!(a.status().handoffs, 3, "each sample is a free handed to a waiter");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub fn handoff_latency_blocked(a: &Allocator, samples: usize) -> Latency {
    percentiles(handoff_samples_blocked(a, samples, Placement::Free).wake)
}

/// (d) Raw samples of [`handoff_latency_blocked`], with the freer's cost.
///
/// ```
/// use ks_alloc::bench::{self, Placement};
/// let a = bench::allocator(2, 64)?;
/// let s = bench::handoff_samples_blocked(&a, 3, Placement::Free);
/// assert_eq!((s.wake.len(), s.free.len()), (3, 3));
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub fn handoff_samples_blocked(
    a: &Allocator,
    samples: usize,
    placement: Placement,
) -> HandOffSamples {
    run_row(samples, placement, alloc_row(a, wait_blocking))
}

/// (d) Hand-off latency free → an async waiter (`allocate().await` on a minimal executor
/// that parks its thread).
///
/// ```
/// use ks_alloc::bench;
/// let a = bench::allocator(2, 64)?;
/// let lat = bench::handoff_latency_async(&a, 3);
/// assert_eq!(lat.samples, 3);
/// assert_eq!(a.status().handoffs, 3, "each sample is a free handed to a waiter");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub fn handoff_latency_async(a: &Allocator, samples: usize) -> Latency {
    percentiles(handoff_samples_async(a, samples, Placement::Free).wake)
}

/// (d) Raw samples of [`handoff_latency_async`], with the freer's cost.
///
/// ```
/// use ks_alloc::bench::{self, Placement};
/// let a = bench::allocator(2, 64)?;
/// let s = bench::handoff_samples_async(&a, 3, Placement::Free);
/// assert_eq!((s.wake.len(), s.free.len()), (3, 3));
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub fn handoff_samples_async(
    a: &Allocator,
    samples: usize,
    placement: Placement,
) -> HandOffSamples {
    run_row(samples, placement, alloc_row(a, wait_async))
}

/// (d) peer: hand-off latency through a `Mutex<Option<_>>` + `Condvar`, the same protocol.
///
/// ```
/// use ks_alloc::bench;
/// let lat = bench::condvar_handoff_latency(3);
/// assert_eq!(lat.samples, 3);
/// assert!(lat.p50 <= lat.p99);
/// ```
pub fn condvar_handoff_latency(samples: usize) -> Latency {
    percentiles(condvar_handoff_samples(samples, Placement::Free).wake)
}

/// (d) Raw samples of [`condvar_handoff_latency`]; the freer's cost is the store under the
/// lock and `notify_one`.
///
/// ```
/// use ks_alloc::bench::{condvar_handoff_samples, Placement};
/// let s = condvar_handoff_samples(3, Placement::Free);
/// assert_eq!((s.wake.len(), s.free.len()), (3, 3));
/// ```
pub fn condvar_handoff_samples(samples: usize, placement: Placement) -> HandOffSamples {
    run_row(samples, placement, condvar_row())
}

/// (d) diagnostic floor: a bare `futex` hand-off, the same protocol. The freer stores a value
/// into one word and wakes; the waiter sleeps on that word. No lock, no queue, no frame: the
/// least that any hand-off to a sleeping thread costs on this kernel, so the gap between a
/// row and this one is the row's own code, and the gap between the `Condvar` and this one
/// says how close the peer already is to the floor.
///
/// ```
/// use ks_alloc::bench::{futex_handoff_samples, Placement};
/// let s = futex_handoff_samples(5, Placement::Free);
/// assert_eq!((s.wake.len(), s.free.len()), (5, 5));
/// ```
pub fn futex_handoff_samples(samples: usize, placement: Placement) -> HandOffSamples {
    run_row(samples, placement, futex_row())
}

/// (d), the five rows in one run, taking turns hand-off by hand-off, in this order: free → a
/// blocked thread, free → an async waiter (each on its own allocator of `frames` frames of
/// `frame_size` bytes, see [`allocator`]), the `Condvar` peer, the futex floor, and the
/// executor's floor (the async row's waker and `park` with no allocator).
/// Interleaving each hand-off, not blocks of them, exposes the rows to the same load of a
/// shared machine, so their ratios hold from run to run better than their absolute values.
///
/// # Errors
/// As [`allocator`].
///
/// ```
/// use ks_alloc::bench::{interleaved_handoff_samples, Placement};
/// let rows = interleaved_handoff_samples(4, 4096, 5, Placement::Free)?;
/// assert!(rows.iter().all(|r| r.wake.len() == 5 && r.free.len() == 5));
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub fn interleaved_handoff_samples(
    frames: u32,
    frame_size: u32,
    samples: usize,
    placement: Placement,
) -> Result<[HandOffSamples; 5], Status> {
    // One allocator per row: two waiters pending on one allocator would take each other's
    // frames (a free goes to the oldest request).
    let (blocked, asynchronous) = (
        allocator(frames, frame_size)?,
        allocator(frames, frame_size)?,
    );
    Ok(run_rows(
        samples,
        placement,
        [
            alloc_row(&blocked, wait_blocking),
            alloc_row(&asynchronous, wait_async),
            condvar_row(),
            futex_row(),
            park_row(),
        ],
    ))
}

/// The waker of [`block_on`]: unparks the thread that made it.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl Unpark {
    /// A waker that unparks the calling thread.
    fn current() -> Waker {
        Waker::from(Arc::new(Unpark(std::thread::current())))
    }
}

/// A minimal executor: polls on a waker that unparks the calling thread.
///
/// ```
/// use ks_alloc::bench::{self, block_on};
/// assert_eq!(block_on(async { 6 * 7 }), 42);
/// let a = bench::allocator(1, 64)?;
/// let frame = block_on(a.allocate())?;
/// assert_eq!(frame.len(), 64);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Unpark::current();
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every placement yields one sample of each kind per hand-off for every row, and gives
    /// the calling thread its affinity back (pinned or not, busy or not).
    #[test]
    fn each_placement_samples_every_row_and_restores_the_affinity() {
        let before = rustix::thread::sched_getaffinity(None).ok();
        for placement in [Placement::Free, Placement::Pinned, Placement::PinnedBusy] {
            let rows = interleaved_handoff_samples(2, 64, 3, placement).expect("allocators");
            for (k, r) in rows.iter().enumerate() {
                assert_eq!(
                    (r.wake.len(), r.free.len()),
                    (3, 3),
                    "row {k}, {placement:?}"
                );
            }
            assert!(
                rustix::thread::sched_getaffinity(None).ok() == before,
                "{placement:?} left the caller's affinity changed"
            );
        }
    }
}
