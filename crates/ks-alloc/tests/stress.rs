//! Multi-thread stress: a random mix of non-blocking, async, blocking-with-timeout, cancelled
//! and Dispatch-level operations, with a close in the middle of each round. Asserts that every
//! frame is held by at most one holder at a time, that none is lost, and that AllocatedFrames
//! is 0 at the end. Run on the default allocator, and on a vendor that runs out of memory now
//! and then (the vendor FIFO retries), which must also get back every block it gave.
//!
//! Size: `KS_ALLOC_STRESS_OPS` total operations (default 1 000 000: well under a second in
//! a debug build on 2 cores).
#![cfg(not(loom))]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ks_alloc::bench::block_on;
use ks_alloc::{Alignment, Allocator, Frame, Framing, Memory, PoolType, raise_to_dispatch};

const THREADS: usize = 4;
const FRAMES: u32 = 3;
const ROUNDS: usize = 4;

fn total_ops() -> usize {
    std::env::var("KS_ALLOC_STRESS_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Per-frame owner marks: 0 = free, else thread id + 1.
struct Owners(Vec<AtomicUsize>);

impl Owners {
    fn take(&self, f: &mut Frame, me: usize) {
        let i = f.index().unwrap();
        let prev = self.0[i].swap(me + 1, Ordering::SeqCst);
        assert_eq!(
            prev,
            0,
            "frame {i} handed to thread {me} while thread {} holds it",
            prev.wrapping_sub(1)
        );
        f.fill(me as u8 + 1);
    }
    fn give(&self, f: Frame, me: usize) {
        let i = f.index().unwrap();
        assert!(
            f.iter().all(|&b| b == me as u8 + 1),
            "frame {i} written by someone else while thread {me} held it"
        );
        let prev = self.0[i].swap(0, Ordering::SeqCst);
        assert_eq!(prev, me + 1, "frame {i} owner mark corrupted");
        drop(f);
    }
}

/// One stress run: `ROUNDS` rounds, each on a fresh allocator from `make`, of
/// `ops_per_thread_round` operations per thread. Returns the hand-offs seen.
fn stress(make: &dyn Fn() -> Allocator, ops_per_thread_round: usize) -> u64 {
    let mut handoffs = 0;
    for round in 0..ROUNDS {
        let alloc = make();
        let owners = Arc::new(Owners((0..FRAMES).map(|_| AtomicUsize::new(0)).collect()));
        let start = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|me| {
                let (alloc, owners, start) = (alloc.clone(), owners.clone(), start.clone());
                std::thread::spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((round * THREADS + me) as u64 + 1));
                    let mut held: Vec<Frame> = Vec::new();
                    start.wait();
                    for op in 0..ops_per_thread_round {
                        // Thread 0 closes the allocator three quarters through the round.
                        if me == 0 && op == ops_per_thread_round * 3 / 4 {
                            alloc.close();
                        }
                        let r = rng.below(100);
                        if !held.is_empty() && (r < 45 || held.len() >= 2) {
                            let i = rng.below(held.len() as u64) as usize;
                            let f = held.swap_remove(i);
                            if r % 5 == 0 {
                                let _g = raise_to_dispatch();
                                owners.give(f, me);
                            } else {
                                owners.give(f, me);
                            }
                            continue;
                        }
                        // Only a thread holding nothing may wait: holders never block, so
                        // waiting always ends.
                        let got = match r % 4 {
                            0 => alloc.try_allocate().ok(),
                            1 if held.is_empty() => block_on(alloc.allocate()).ok(),
                            2 if held.is_empty() => alloc
                                .allocate_blocking(Some(Duration::from_micros(200)))
                                .ok(),
                            3 => {
                                // Cancel: poll once, then drop if pending.
                                let mut fut = pin!(alloc.allocate());
                                match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                                    Poll::Ready(r) => r.ok(),
                                    Poll::Pending => None,
                                }
                            }
                            _ => alloc.try_allocate().ok(),
                        };
                        if let Some(mut f) = got {
                            owners.take(&mut f, me);
                            held.push(f);
                        }
                    }
                    for f in held.drain(..) {
                        owners.give(f, me);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("stress thread panicked");
        }
        // A free made at Dispatch level may still be on its way home through the library
        // worker (behaviour 25) when the threads are joined: let the worker's pass finish. A
        // lost frame never comes back, so the check below still catches one. (Under Miri,
        // seeds 1 and 5 met the worker mid-pass.)
        for _ in 0..1000 {
            if alloc.status().allocated_frames == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let s = alloc.status();
        assert!(s.closed);
        assert_eq!(s.allocated_frames, 0, "frames lost: {s:?}");
        assert_eq!(s.pending, 0);
        assert!(s.peak_allocated_frames <= FRAMES);
        handoffs += s.handoffs;
        assert!(owners.0.iter().all(|o| o.load(Ordering::SeqCst) == 0));
    }
    handoffs
}

fn framing() -> Framing {
    Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames: FRAMES,
        frame_size: 256,
        alignment: Alignment::BYTES_64,
    }
}

#[test]
fn random_mix_keeps_frames_exclusive_and_none_lost() {
    let ops = (total_ops() / THREADS / ROUNDS).max(100);
    let handoffs = stress(
        &|| Allocator::new(&framing(), Memory::NonPaged).unwrap(),
        ops,
    );
    assert!(handoffs > 0, "the pending/hand-off path was exercised");
}

/// A vendor whose memory runs out now and then (one allocate in three fails), so requests
/// pend on a vendor that had none for them: the FIFO retries (a free, a new request, the
/// worker) must keep every frame exclusive, lose none and return every block.
struct Flaky {
    calls: AtomicUsize,
    live: Arc<AtomicUsize>,
}

// SAFETY: each frame is a distinct live, zeroed 256-byte block, 64-byte aligned, until freed.
unsafe impl ks_alloc::VendorAllocator for Flaky {
    type Context = std::alloc::Layout;
    fn initialize(&self, f: &Framing) -> Result<std::alloc::Layout, ks_alloc::Status> {
        std::alloc::Layout::from_size_align(f.frame_size as usize, f.alignment.bytes() as usize)
            .map_err(|e| ks_alloc::Status::InvalidParameter(e.to_string().into()))
    }
    fn allocate(&self, layout: &std::alloc::Layout) -> Option<std::ptr::NonNull<u8>> {
        if self.calls.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
            return None;
        }
        // SAFETY: a non-zero size layout.
        let p = std::ptr::NonNull::new(unsafe { std::alloc::alloc_zeroed(*layout) })?;
        self.live.fetch_add(1, Ordering::SeqCst);
        Some(p)
    }
    fn free(&self, layout: &std::alloc::Layout, p: std::ptr::NonNull<u8>) {
        // SAFETY: `p` came from `allocate` with this layout.
        unsafe { std::alloc::dealloc(p.as_ptr(), *layout) };
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
    fn delete(&self, _: std::alloc::Layout) {}
}

#[test]
fn random_mix_on_a_vendor_that_runs_dry_keeps_fifo_bookkeeping_sound() {
    // Fewer operations: a request that waits on a dry vendor with no frame out is served by
    // the worker's retry, up to 50 ms later.
    let ops = (total_ops() / THREADS / ROUNDS / 20).max(100);
    let live = Arc::new(AtomicUsize::new(0));
    let l = live.clone();
    let make = move || {
        let vendor = Flaky {
            calls: AtomicUsize::new(0),
            live: l.clone(),
        };
        Allocator::with_vendor(&framing(), Arc::new(vendor)).unwrap()
    };
    stress(&make, ops);
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "every vendor block was freed"
    );
}
