//! Steady-state streaming allocates nothing on the heap: a counting global allocator checks
//! allocate/free cycles on the function-table path, the ready async path and the
//! pending → hand-off path (design.md, performance principles).
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use ks_alloc::{
    Alignment, Allocator, Framing, Holder, Memory, PoolType, Status, TryAllocateError,
    VendorAllocator,
};

/// Counts heap allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-initialised thread local,
// which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded contract.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs_during(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

fn alloc() -> Allocator {
    let f = Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames: 4,
        frame_size: 4096,
        alignment: Alignment::BYTES_64,
    };
    Allocator::new(&f, Memory::NonPaged).unwrap()
}

const CYCLES: usize = 10_000;

#[test]
fn function_table_cycle_allocates_nothing() {
    let a = alloc();
    drop(a.try_allocate().unwrap()); // warm-up
    let n = allocs_during(|| {
        for _ in 0..CYCLES {
            let mut f = a.try_allocate_for(&Holder("pin0")).unwrap();
            f[0] = 1;
            drop(f);
        }
    });
    assert_eq!(n, 0, "{n} heap allocations in {CYCLES} cycles");
}

/// A thread's first non-blocking allocate allocates nothing either, nor does its cached cycle
/// once its first free has given it a frame-cache id.
#[test]
fn a_new_threads_first_function_table_allocate_allocates_nothing() {
    let a = alloc();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut f = None;
            let n = allocs_during(|| f = Some(a.try_allocate().unwrap()));
            assert_eq!(
                n, 0,
                "{n} heap allocations in a thread's first try_allocate"
            );
            drop(f);
            // And once the thread has an id, the cached cycle allocates nothing.
            let n = allocs_during(|| {
                for _ in 0..CYCLES {
                    drop(a.try_allocate().unwrap());
                }
            });
            assert_eq!(n, 0);
        });
    });
}

#[test]
fn exhausted_function_table_allocates_nothing() {
    let a = alloc();
    let held: Vec<_> = (0..4).map(|_| a.try_allocate().unwrap()).collect();
    let n = allocs_during(|| {
        for _ in 0..CYCLES {
            assert!(a.try_allocate().is_err());
        }
    });
    assert_eq!(n, 0);
    drop(held);
}

/// A vendor with one heap block, made at `initialize`, that hands out an address one byte
/// into it (misaligned for any alignment above one byte) or, when `dry`, nothing.
struct OneBlock {
    dry: bool,
}

// SAFETY: the one address handed out is valid for `frame_size` initialized (zeroed) bytes
// (the block has one more) until `delete`, and the allocator refuses it at once, so it is
// never outstanding twice.
unsafe impl VendorAllocator for OneBlock {
    /// The block's layout and address.
    type Context = (Layout, usize);
    fn initialize(&self, f: &Framing) -> Result<Self::Context, Status> {
        let l = Layout::from_size_align(f.frame_size as usize + 1, f.alignment.bytes() as usize)
            .map_err(|e| Status::InvalidParameter(e.to_string().into()))?;
        // SAFETY: non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(l) };
        if p.is_null() {
            return Err(Status::InsufficientResources("no memory".into()));
        }
        Ok((l, p as usize))
    }
    fn allocate(&self, cx: &Self::Context) -> Option<NonNull<u8>> {
        // One byte into a block of `frame_size + 1` bytes (never null).
        NonNull::new((cx.1 + 1) as *mut u8).filter(|_| !self.dry)
    }
    fn free(&self, _cx: &Self::Context, _frame: NonNull<u8>) {}
    fn delete(&self, cx: Self::Context) {
        // SAFETY: allocated in `initialize` with this layout; nothing uses it after delete.
        unsafe { std::alloc::dealloc(cx.1 as *mut u8, cx.0) }
    }
}

#[test]
fn function_table_failures_allocate_nothing() {
    let closed = alloc();
    closed.close();
    let mut framing = Framing {
        flags: 0,
        pool_type: PoolType::PAGED,
        frames: 1,
        frame_size: 64,
        alignment: Alignment::BYTES_64,
    };
    let paged = Allocator::new(&framing, Memory::Paged).unwrap();
    framing.pool_type = PoolType::NON_PAGED;
    let misaligned = Allocator::with_vendor(&framing, Arc::new(OneBlock { dry: false })).unwrap();
    let dry = Allocator::with_vendor(&framing, Arc::new(OneBlock { dry: true })).unwrap();
    let cases = [
        (&closed, TryAllocateError::Closed),
        (&paged, TryAllocateError::NotOffered),
        (&dry, TryAllocateError::VendorEmpty),
    ];
    let n = allocs_during(|| {
        for _ in 0..CYCLES {
            for (a, want) in &cases {
                assert_eq!(a.try_allocate().err(), Some(*want));
            }
            assert!(matches!(
                misaligned.try_allocate(),
                Err(TryAllocateError::VendorMisaligned { alignment: 64, .. })
            ));
        }
    });
    assert_eq!(n, 0, "{n} heap allocations in {CYCLES} rounds of failures");
    assert_eq!(
        misaligned.status().allocated_frames,
        0,
        "refused frames return"
    );
}

#[test]
fn ready_async_cycle_allocates_nothing() {
    let a = alloc();
    let mut cx = Context::from_waker(Waker::noop());
    let n = allocs_during(|| {
        for _ in 0..CYCLES {
            let fut = pin!(a.allocate());
            match fut.poll(&mut cx) {
                Poll::Ready(Ok(f)) => drop(f),
                other => panic!("expected a ready frame, got {other:?}"),
            }
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn pending_then_handoff_cycle_allocates_nothing() {
    let a = alloc();
    let mut held: Vec<_> = (0..4).map(|_| a.try_allocate().unwrap()).collect();
    let mut cx = Context::from_waker(Waker::noop());
    // Warm-up: one full cycle (the waiter slab and queue are preallocated at creation).
    let cycle = |held: &mut Vec<ks_alloc::Frame>, cx: &mut Context<'_>| {
        let mut fut = pin!(a.allocate_for(&Holder("sink")));
        assert!(fut.as_mut().poll(cx).is_pending(), "all frames are out");
        drop(held.swap_remove(0)); // free: hands the frame to the pending request
        match fut.as_mut().poll(cx) {
            Poll::Ready(Ok(f)) => held.push(f),
            other => panic!("expected the handed-over frame, got {other:?}"),
        }
    };
    cycle(&mut held, &mut cx);
    let n = allocs_during(|| {
        for _ in 0..CYCLES {
            cycle(&mut held, &mut cx);
        }
    });
    assert_eq!(
        n, 0,
        "{n} heap allocations in {CYCLES} pending/hand-off cycles"
    );
    assert_eq!(a.status().handoffs as usize, CYCLES + 1);
}

#[test]
fn blocked_thread_handoff_allocates_nothing_on_the_waiter() {
    use std::sync::{Arc, Mutex};
    let a = alloc();
    let mut held: Vec<_> = (0..4).map(|_| a.try_allocate().unwrap()).collect();
    // The waiter passes each frame it gets back to the main thread through this slot, so
    // that its next allocate pends again (a Mutex<Option<_>> never allocates).
    let slot: Arc<Mutex<Option<ks_alloc::Frame>>> = Arc::new(Mutex::new(None));
    let (a2, slot2) = (a.clone(), slot.clone());
    let give = move |f: ks_alloc::Frame| {
        let mut f = Some(f);
        while f.is_some() {
            let mut s = slot2.lock().unwrap();
            if s.is_none() {
                *s = f.take();
            }
            drop(s);
            std::thread::yield_now();
        }
    };
    let waiter = std::thread::spawn(move || {
        // Warm-up: thread handle, first park.
        give(a2.allocate_blocking(None).unwrap());
        allocs_during(|| {
            for _ in 0..200 {
                // Pends (all frames are out) until the main thread frees one to it.
                give(a2.allocate_blocking(None).unwrap());
            }
        })
    });
    for _ in 0..201 {
        while a.status().pending == 0 {
            std::thread::yield_now();
        }
        held.pop(); // handed to the blocked waiter
        loop {
            if let Some(f) = slot.lock().unwrap().take() {
                held.push(f);
                break;
            }
            std::thread::yield_now();
        }
    }
    let n = waiter.join().unwrap();
    assert_eq!(n, 0, "{n} heap allocations on the blocked waiter");
    assert_eq!(a.status().handoffs, 201);
}

#[test]
fn frees_delivered_to_freeframe_subscribers_allocate_nothing() {
    let a = alloc();
    let fired = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = fired.clone();
    let _sub = a
        .on_free_frame(move || {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
    let mut events = a.free_frame_events().unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    // One free with an awaiting subscriber, registered by a poll of its next event.
    let mut cycle = || {
        let mut next = pin!(events.next_event());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        drop(a.try_allocate().unwrap()); // fires: the callback runs, the waker is woken
        assert!(next.as_mut().poll(&mut cx).is_ready());
    };
    for _ in 0..4 {
        cycle(); // warm-up: the delivery's buffers reach their size
    }
    let n = allocs_during(|| {
        for _ in 0..CYCLES {
            cycle();
        }
    });
    assert_eq!(n, 0, "{n} heap allocations in {CYCLES} deliveries");
    assert_eq!(fired.load(std::sync::atomic::Ordering::Relaxed), CYCLES + 4);
}
