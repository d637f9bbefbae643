//! Benchmark bodies, shared by `benches/alloc.rs` (criterion) and the CLI's `ksalloc bench`,
//! so that both measure exactly the same code.
//!
//! Each body is one operation of the allocator or of a std-only peer (`Mutex<Vec<_>>` pool,
//! `Mutex` + `Condvar` hand-off). Peers from other crates (crossbeam `ArrayQueue`,
//! `lockfree-object-pool`, tokio `Semaphore`) live in the bench file itself, so that this
//! library keeps no dependency on them.
//!
//! ```
//! use ks_alloc::bench;
//! let a = bench::allocator(64, 4096)?;
//! bench::try_cycle(&a);
//! let lat = bench::handoff_latency_blocked(&a, 50);
//! assert_eq!(lat.samples, 50);
//! assert!(lat.p50 <= lat.p99);
//! # Ok::<(), ks_alloc::Status>(())
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::{Alignment, Allocator, Framing, Memory, PoolType, Status};

/// The benchmark allocator: `frames` frames of `frame_size` bytes, non-paged, 64-byte aligned,
/// no starvation watch (so the worker stays idle).
///
/// # Errors
/// As [`Allocator::new`].
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
#[derive(Debug)]
pub struct MutexVecPool {
    free: Mutex<Vec<Box<[u8]>>>,
}

impl MutexVecPool {
    /// A pool of `frames` buffers of `frame_size` bytes.
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
#[inline]
pub fn ready_async_cycle(a: &Allocator, cx: &mut Context<'_>) -> bool {
    let fut = pin!(a.allocate());
    match fut.poll(cx) {
        Poll::Ready(Ok(f)) => {
            std::hint::black_box(f.as_ptr());
            true
        }
        _ => false,
    }
}

/// (c) Runs `ops` cycles of `body` on each of `threads` threads at once; returns the wall
/// time of the whole run.
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandOffSamples {
    /// From just before the free to the waiter resuming with the frame (the latency).
    pub wake: Vec<u64>,
    /// From just before the free to the free returning on the freeing thread (what a hand-off
    /// costs the freer, system call included).
    pub free: Vec<u64>,
}

/// Where the two threads of a hand-off bench run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// Wherever the scheduler puts them. With idle CPUs it usually wakes the waiter on the
    /// freer's CPU, so the latency measures the freer's path and a context switch.
    #[default]
    Free,
    /// Freer on CPU 0, waiter on CPU 1 (when the process may use both): every wake crosses
    /// CPUs. The freer's previous affinity is restored afterwards.
    Pinned,
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
        Placement::Pinned => pin(),
    })
}

/// Restores, on drop, the affinity that [`place`] changed.
struct Unplace(Option<rustix::thread::CpuSet>);

impl Drop for Unplace {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = rustix::thread::sched_setaffinity(None, old);
        }
    }
}

/// Waits until `a` has a pending request, then a little longer so the waiter is parked.
fn until_parked(a: &Allocator) {
    while a.status().pending == 0 {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_micros(50));
}

/// Hand-off latency, free → a waiter, measured from just before the free to the waiter
/// resuming with the frame. `wait` is the waiter's allocate (blocking or async).
fn handoff_samples(
    a: &Allocator,
    samples: usize,
    placement: Placement,
    wait: impl Fn(&Allocator) -> Option<crate::Frame> + Send + Sync,
) -> HandOffSamples {
    let base = Instant::now();
    let stamp = AtomicU64::new(0);
    // The waiter passes each frame back through `back` (not through the free list, or its
    // own next allocate would take it without waiting).
    let back: Mutex<Option<crate::Frame>> = Mutex::new(None);
    let mut out = HandOffSamples::default();
    let mut held: Vec<_> = std::iter::from_fn(|| a.try_allocate().ok()).collect();
    let _unplace = place(placement, 0);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let _unplace = place(placement, 1);
            let mut lat = Vec::with_capacity(samples);
            for _ in 0..samples {
                let Some(f) = wait(a) else { break };
                let now = base.elapsed().as_nanos() as u64;
                lat.push(now.saturating_sub(stamp.load(Ordering::Acquire)));
                *back.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
            }
            lat
        });
        for _ in 0..samples {
            if held.is_empty() {
                break;
            }
            until_parked(a);
            let t0 = base.elapsed().as_nanos() as u64;
            stamp.store(t0, Ordering::Release);
            held.pop(); // the free: hands the frame to the parked waiter
            out.free
                .push((base.elapsed().as_nanos() as u64).saturating_sub(t0));
            loop {
                if let Some(f) = back.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    held.push(f);
                    break;
                }
                std::thread::yield_now();
            }
        }
        out.wake = waiter.join().unwrap_or_default();
    });
    out
}

/// (d) Hand-off latency free → a thread blocked in `allocate_blocking`.
pub fn handoff_latency_blocked(a: &Allocator, samples: usize) -> Latency {
    percentiles(handoff_samples_blocked(a, samples, Placement::Free).wake)
}

/// (d) Raw samples of [`handoff_latency_blocked`], with the freer's cost.
pub fn handoff_samples_blocked(
    a: &Allocator,
    samples: usize,
    placement: Placement,
) -> HandOffSamples {
    handoff_samples(a, samples, placement, |a| a.allocate_blocking(None).ok())
}

/// (d) Hand-off latency free → an async waiter (`allocate().await` on a minimal executor
/// that parks its thread).
pub fn handoff_latency_async(a: &Allocator, samples: usize) -> Latency {
    percentiles(handoff_samples_async(a, samples, Placement::Free).wake)
}

/// (d) Raw samples of [`handoff_latency_async`], with the freer's cost.
pub fn handoff_samples_async(
    a: &Allocator,
    samples: usize,
    placement: Placement,
) -> HandOffSamples {
    handoff_samples(a, samples, placement, |a| block_on(a.allocate()).ok())
}

/// (d) peer: hand-off latency through a `Mutex<Option<_>>` + `Condvar`, the same protocol.
pub fn condvar_handoff_latency(samples: usize) -> Latency {
    percentiles(condvar_handoff_samples(samples, Placement::Free).wake)
}

/// (d) Raw samples of [`condvar_handoff_latency`]; the freer's cost is the store under the
/// lock and `notify_one`.
pub fn condvar_handoff_samples(samples: usize, placement: Placement) -> HandOffSamples {
    let base = Instant::now();
    let stamp = AtomicU64::new(0);
    let slot = (Mutex::new((None::<u64>, false)), Condvar::new());
    let mut out = HandOffSamples::default();
    let _unplace = place(placement, 0);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let _unplace = place(placement, 1);
            let mut lat = Vec::with_capacity(samples);
            for _ in 0..samples {
                let mut g = slot.0.lock().unwrap_or_else(|e| e.into_inner());
                g.1 = true; // waiting
                while g.0.is_none() {
                    g = slot.1.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                let now = base.elapsed().as_nanos() as u64;
                g.0 = None;
                g.1 = false;
                lat.push(now.saturating_sub(stamp.load(Ordering::Acquire)));
            }
            lat
        });
        for i in 0..samples {
            loop {
                let waiting = slot.0.lock().unwrap_or_else(|e| e.into_inner()).1;
                if waiting {
                    break;
                }
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_micros(50));
            let t0 = base.elapsed().as_nanos() as u64;
            stamp.store(t0, Ordering::Release);
            slot.0.lock().unwrap_or_else(|e| e.into_inner()).0 = Some(i as u64);
            slot.1.notify_one();
            out.free
                .push((base.elapsed().as_nanos() as u64).saturating_sub(t0));
            // Wait until the waiter consumed it.
            while slot.0.lock().unwrap_or_else(|e| e.into_inner()).0.is_some() {
                std::thread::yield_now();
            }
        }
        out.wake = waiter.join().unwrap_or_default();
    });
    out
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
    use rustix::thread::futex;
    let base = Instant::now();
    let stamp = AtomicU64::new(0);
    // 0: idle; 1: the waiter is (about to be) asleep; 2: handed over. A hand-off before the
    // waiter's `futex_wait` makes that call return at once (the word is no longer 1).
    let word = std::sync::atomic::AtomicU32::new(0);
    let mut out = HandOffSamples::default();
    let _unplace = place(placement, 0);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let _unplace = place(placement, 1);
            let mut lat = Vec::with_capacity(samples);
            for _ in 0..samples {
                word.store(1, Ordering::SeqCst);
                while word.load(Ordering::Acquire) != 2 {
                    let _ = futex::wait(&word, futex::Flags::PRIVATE, 1, None);
                }
                let now = base.elapsed().as_nanos() as u64;
                lat.push(now.saturating_sub(stamp.load(Ordering::Acquire)));
                word.store(0, Ordering::Release);
            }
            lat
        });
        for _ in 0..samples {
            while word.load(Ordering::Acquire) != 1 {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_micros(50));
            let t0 = base.elapsed().as_nanos() as u64;
            stamp.store(t0, Ordering::Release);
            word.store(2, Ordering::Release);
            let _ = futex::wake(&word, futex::Flags::PRIVATE, 1);
            out.free
                .push((base.elapsed().as_nanos() as u64).saturating_sub(t0));
            while word.load(Ordering::Acquire) == 2 {
                std::thread::yield_now();
            }
        }
        out.wake = waiter.join().unwrap_or_default();
    });
    out
}

/// A minimal executor: polls on a waker that unparks the calling thread.
pub fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
