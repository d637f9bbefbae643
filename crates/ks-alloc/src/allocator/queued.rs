//! The queued request interface: a frame now, or a place in the FIFO queue; waiting on it.

use std::time::Duration;

use super::inner::ClaimError;
use super::{Allocator, Inner, closed_status};
use crate::Status;
use crate::frame::{Frame, Holder};
use crate::freelist::{NO_HINT, NoFrame, PopOrWait, Taken};
use crate::level::{Level, current_level, refuse_blocking};
use crate::loom::{Arc, AtomicU32, Ordering, lock};
use crate::waiters::{Grants, Notify, Polled, Ticket, WakeOnDrop, set_waker};

impl Allocator {
    /// [`allocate_blocking`](Self::allocate_blocking) with an optional holder tag.
    pub(super) fn allocate_blocking_inner(
        &self,
        timeout: Option<Duration>,
        holder: Option<&'static Holder>,
    ) -> Result<Frame, Status> {
        if current_level() == Level::Dispatch {
            return Err(refuse_blocking("allocate_blocking"));
        }
        let ticket = match self.begin(holder, || Notify::Futex(0))? {
            Begin::Ready(f) => return Ok(f),
            Begin::Queued(t) => t,
        };
        self.wait_ticket(ticket, timeout, true)
    }

    /// Blocks on a queued ticket (Passive level only). `registered`: the request already
    /// names this thread as whom to wake (so the first locked check can be skipped: the
    /// request was queued an instant ago).
    ///
    /// The thread sleeps on its slot's grant word (see `waiters.rs`): it reads the word,
    /// checks the request, and sleeps only while the word still holds what it read, so a
    /// grant or a close between the check and the sleep is never missed.
    pub(crate) fn wait_ticket(
        &self,
        ticket: Ticket,
        timeout: Option<Duration>,
        registered: bool,
    ) -> Result<Frame, Status> {
        // A timeout past what the clock can represent is no timeout (policy).
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        let word = self.inner.grants.word(ticket);
        let mut check = !registered;
        loop {
            // Acquire: as in `Grants::try_collect` (the value is only compared, though).
            let seen = word.load(Ordering::Acquire);
            if let Some(i) = self.inner.grants.try_collect(ticket) {
                return Ok(Inner::frame(&self.inner, i, NO_HINT));
            }
            // The first pass may skip the locked check (the request was queued an instant
            // ago), but not if the word already says it was settled: close may have
            // cancelled it in between, and the word would then never change again.
            if check || Grants::settled(ticket, seen) {
                // After a wake-up the grant is normally collected lock-free (`poll_ticket`).
                // A waker stored by an earlier poll (a `PendingAlloc` polled, then waited
                // on) is replaced here (and dropped after the lock, by `poll_ticket`).
                match self.poll_ticket(ticket, |n| std::mem::replace(n, Notify::futex(ticket))) {
                    Polled::Granted(i) => return Ok(Inner::frame(&self.inner, i, NO_HINT)),
                    Polled::Cancelled => return Err(Status::Cancelled),
                    Polled::Misaligned(addr) => return Err(self.misaligned(addr)),
                    Polled::Queued => {}
                }
            }
            check = true;
            let left = match deadline {
                None => None,
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        if let Some(i) = self.withdraw(ticket) {
                            // Granted just before the timeout: keep it.
                            return Ok(Inner::frame(&self.inner, i, NO_HINT));
                        }
                        if self.inner.free.is_closed() {
                            // Close cancelled it just before the timeout: that is the
                            // documented answer, not a timeout.
                            return Err(Status::Cancelled);
                        }
                        return Err(Status::DeviceNotReady(
                            format!(
                                "timed out after {:?} waiting for a frame ({} of {} frames \
                                 outstanding)",
                                timeout.unwrap_or_default(),
                                self.status().allocated_frames,
                                self.inner.framing.frames
                            )
                            .into(),
                        ));
                    }
                    Some(d - now)
                }
            };
            sleep_on(word, seen, left);
        }
    }

    /// Lock-free first attempt of a queued allocate (the ready path of `allocate()`): a frame
    /// if one is free and claimable, else `None` (the caller then takes the locked path,
    /// which also reports errors).
    #[inline(always)]
    pub(crate) fn fast_frame(&self, holder: Option<&'static Holder>) -> Option<Frame> {
        let inner = &self.inner;
        let (i, hint, left) = match inner.cache.take() {
            Some(i) => (i, NO_HINT, None),
            // FIFO: the locked path queues this request behind those pending.
            None if inner.vendor_queue_ahead() => return None,
            None => {
                let Ok(Taken {
                    index: i,
                    left,
                    hint,
                }) = inner.free.pop_hinted()
                else {
                    return None;
                };
                (i, hint, Some(left))
            }
        };
        match inner.claim(i, holder) {
            Ok(()) => {
                if let Some(left) = left {
                    inner.note_peak(left);
                }
                Some(Inner::frame(inner, i, hint))
            }
            Err(e) => {
                // Vendor refused: return the slot; the locked path retries and reports. A
                // vendor panic resumes toward this caller, whose allocate it was.
                Inner::return_slot(inner, i);
                if let ClaimError::Panicked(p) = e {
                    std::panic::resume_unwind(p);
                }
                None
            }
        }
    }

    /// The error of a queued request the vendor returned a misaligned frame for (the same
    /// as a request that does not queue gets).
    pub(crate) fn misaligned(&self, addr: usize) -> Status {
        self.inner.claim_error(ClaimError::Misaligned(addr)).into()
    }

    /// First step of a queued allocate: a frame now, or a place in the queue.
    pub(crate) fn begin(
        &self,
        holder: Option<&'static Holder>,
        notify: impl FnOnce() -> Notify,
    ) -> Result<Begin, Status> {
        let inner = &self.inner;
        // A frame from a thread cache: this thread's, or (below) another's. Only the default
        // memory caches, and its claim cannot fail.
        let cached = |i: u32| match inner.claim(i, holder) {
            Ok(()) => Some(Inner::frame(inner, i, NO_HINT)),
            Err(e) => {
                Inner::return_slot(inner, i);
                if let ClaimError::Panicked(p) = e {
                    std::panic::resume_unwind(p);
                }
                None
            }
        };
        // Fast path: no lock.
        if let Some(f) = inner.cache.take().and_then(cached) {
            return Ok(Begin::Ready(f));
        }
        // FIFO for a vendor's slots: with requests ahead, straight to the queue (below).
        if !inner.vendor_queue_ahead() {
            match inner.free.pop_hinted() {
                Ok(Taken {
                    index: i,
                    left,
                    hint,
                }) => {
                    match inner.claim(i, holder) {
                        Ok(()) => {
                            inner.note_peak(left);
                            return Ok(Begin::Ready(Inner::frame(inner, i, hint)));
                        }
                        // A panic resumes toward this caller (`claim_error`), the slot home.
                        Err(e @ (ClaimError::Misaligned(_) | ClaimError::Panicked(_))) => {
                            Inner::return_slot(inner, i);
                            return Err(inner.claim_error(e).into());
                        }
                        // The vendor has no memory now: ask again under the lock, which also
                        // queues the request if it still has none.
                        Err(ClaimError::NoFrame) => Inner::return_slot(inner, i),
                    }
                }
                Err(NoFrame::Closed) => return Err(closed_status()),
                Err(NoFrame::Empty) => {
                    // A frame cached by another thread is free too (behaviour 22: no request
                    // pends while a frame is free). Caches hold frames only while nobody waits,
                    // so taking one jumps no queue.
                    if let Some(f) = inner.cache.steal().and_then(cached) {
                        return Ok(Begin::Ready(f));
                    }
                }
            }
        }
        // Declared before the lock: a request this one serves first (below) is woken after
        // the unlock, whichever way this returns.
        let mut retried = WakeOnDrop::new(&inner.grants);
        #[cfg(all(test, not(loom)))]
        crate::test_hooks::reach(crate::test_hooks::Point::BeforeWaiterLock);
        let mut q = lock(&inner.waiters);
        let mut drain = false;
        // FIFO for a vendor's slots: a slot the vendor could not back sits free while
        // requests wait. It goes to the oldest first, if the vendor has memory now (this
        // arrival is its retry), and this request then queues behind the others.
        let vendor = inner.is_vendor();
        if vendor {
            inner.retry_waiting(&mut q, &mut retried.notify);
        }
        if vendor && !q.is_empty() {
            // Still requests ahead (the flags are set while they wait): queue behind them.
            if inner.free.is_closed() {
                return Err(closed_status());
            }
        } else {
            match inner.free.pop_or_wait() {
                PopOrWait::Frame(i, left) => {
                    match inner.claim(i, holder) {
                        Ok(()) => {
                            inner.note_peak(left);
                            return Ok(Begin::Ready(Inner::frame(inner, i, NO_HINT)));
                        }
                        // A panic resumes toward this caller (`claim_error`), the slot home.
                        Err(e @ (ClaimError::Misaligned(_) | ClaimError::Panicked(_))) => {
                            drop(q);
                            Inner::return_slot(inner, i);
                            return Err(inner.claim_error(e).into());
                        }
                        Err(ClaimError::NoFrame) => {
                            // Vendor has no memory although a slot is free: wait for a free.
                            inner.free.push(i, false);
                            inner.free.set_waiters();
                        }
                    }
                }
                PopOrWait::Closed => return Err(closed_status()),
                PopOrWait::Wait { flagged } => drain = flagged,
            }
        }
        match q.enqueue(&inner.grants, notify(), holder) {
            Some(t) => {
                drop(q);
                // Until the caller holds the ticket, nobody could withdraw the request if
                // the drain below unwound (a free it makes, through a FREEFRAME callback's
                // panic): it would stay queued, and the frame granted to it be lost. The
                // guard withdraws it then (freeing a frame granted to it). The wakers the
                // drain's frees wake do not unwind (`wake_granted`).
                let unwinding = CancelOnUnwind { alloc: self, t };
                if drain && current_level() == Level::Dispatch {
                    // The same, by the worker (no system call at Dispatch level).
                    Inner::drain_cache_on_worker(inner);
                } else if drain {
                    // Frames cached by threads before the flag are free: they go to the
                    // oldest requests now (this one included), see `cache.rs`.
                    Inner::drain_cache(inner);
                    // If one came to this request, it need not wait at all.
                    if let Some(i) = inner.grants.try_collect(t) {
                        std::mem::forget(unwinding);
                        return Ok(Begin::Ready(Inner::frame(inner, i, NO_HINT)));
                    }
                }
                std::mem::forget(unwinding);
                Ok(Begin::Queued(t))
            }
            None => {
                if q.is_empty() {
                    inner.free.clear_waiters();
                }
                Err(Status::InsufficientResources(
                    format!(
                        "{} requests are pending and {} completed ones not yet collected by their \
                         owners on allocator {}; max_waiters is {} and counts both (raise it \
                         with Allocator::builder().max_waiters(..))",
                        q.len(),
                        q.capacity() - q.len(),
                        inner.name,
                        q.capacity()
                    )
                    .into(),
                ))
            }
        }
    }

    /// Checks a queued request, updating how it wants to be woken.
    /// A granted frame is taken without the lock (the freer published it in the slot's grant
    /// word); otherwise the request is checked under the lock. `notify` updates a
    /// still-queued request's notify and returns the one it replaced, which is dropped after
    /// the waiter lock (dropping a `Waker` may run anything, see `WaitQueue::vacate`).
    #[inline]
    pub(crate) fn poll_ticket(
        &self,
        t: Ticket,
        notify: impl FnOnce(&mut Notify) -> Notify,
    ) -> Polled {
        if let Some(i) = self.inner.grants.try_collect(t) {
            return Polled::Granted(i);
        }
        let mut replaced = Notify::None;
        // The guard is a temporary: unlocked at the end of this statement.
        let polled = lock(&self.inner.waiters).poll(&self.inner.grants, t, |n| {
            replaced = notify(n);
        });
        drop(replaced);
        polled
    }

    pub(crate) fn poll_ticket_waker(&self, t: Ticket, waker: &std::task::Waker) -> Polled {
        self.poll_ticket(t, |n| set_waker(n, waker))
    }

    /// Withdraws a request. A frame already granted to it is returned to the caller.
    pub(crate) fn withdraw(&self, t: Ticket) -> Option<u32> {
        self.withdraw_as(t, false)
    }

    /// [`withdraw`](Self::withdraw); `cancelled`: the caller gives a granted frame up, so
    /// the grant completed no request and is not counted as a hand-off (the frame's next
    /// grant will be).
    fn withdraw_as(&self, t: Ticket, cancelled: bool) -> Option<u32> {
        let mut q = lock(&self.inner.waiters);
        let (granted, notify) = q.remove(&self.inner.grants, t);
        if cancelled && granted.is_some() {
            q.handoffs -= 1;
        }
        if q.is_empty() && !self.inner.free.is_closed() {
            self.inner.free.clear_waiters();
        }
        drop(q);
        // The request's waker goes after the lock (see `WaitQueue::vacate`).
        drop(notify);
        granted
    }

    /// Withdraws a request and frees any frame it had been granted (cancellation).
    pub(crate) fn cancel(&self, t: Ticket) {
        if let Some(i) = self.withdraw_as(t, true) {
            // SAFETY: frame `i` was granted to this request and is now ours; we hold a handle.
            unsafe { Inner::release(Arc::as_ptr(&self.inner), i) };
        }
    }

    pub(crate) fn frame_from_grant(&self, i: u32) -> Frame {
        Inner::frame(&self.inner, i, NO_HINT)
    }
}

/// Sleeps while `word` holds `seen`, at most `timeout` (may return early: callers re-check).
#[cfg(not(loom))]
fn sleep_on(word: &AtomicU32, seen: u32, timeout: Option<Duration>) {
    use rustix::thread::futex;
    let ts = timeout.map(|t| rustix::time::Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    // EAGAIN (the word changed), EINTR and ETIMEDOUT all mean "re-check", which the caller
    // does.
    let _ = futex::wait(word, futex::Flags::PRIVATE, seen, ts.as_ref());
}

/// Loom: a sleeper spins (loom explores the schedules in which the grant arrives meanwhile).
#[cfg(loom)]
fn sleep_on(_word: &AtomicU32, _seen: u32, _timeout: Option<Duration>) {
    loom::thread::yield_now();
}

/// Withdraws a request `begin` queued if `begin` unwinds before returning its ticket (see
/// there); forgotten on the normal paths.
struct CancelOnUnwind<'a> {
    alloc: &'a Allocator,
    t: Ticket,
}

impl Drop for CancelOnUnwind<'_> {
    fn drop(&mut self) {
        self.alloc.cancel(self.t);
    }
}

/// First step of a queued allocate.
pub(crate) enum Begin {
    Ready(Frame),
    Queued(Ticket),
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use super::Begin;
    use crate::loom::Arc;
    use crate::test_hooks;
    use crate::waiters::Notify;
    use crate::{Allocator, Memory, PoolType, Status};

    /// A request queued, then cancelled by close before its thread first waits: the wait
    /// must return `STATUS_CANCELLED`, not sleep on a grant word that will never change
    /// again (it did, and a runtime test hung, once the thread-cache drain widened the gap
    /// between queueing and waiting).
    #[test]
    fn close_between_queueing_and_the_first_wait_cancels() {
        let f = crate::framing::test_framing(PoolType::NON_PAGED, 1);
        let a = Allocator::new(&f, Memory::NonPaged).expect("allocator");
        let held = a.try_allocate().expect("the only frame");
        let Ok(Begin::Queued(t)) = a.begin(None, || Notify::Futex(0)) else {
            panic!("no frame free: the request queues");
        };
        a.close();
        // A detached thread, so that a regression fails this test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let b = a.clone();
        std::thread::spawn(move || {
            let _ = tx.send(b.wait_ticket(t, None, true));
        });
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the waiter slept through its cancellation");
        assert!(matches!(r, Err(Status::Cancelled)), "{r:?}");
        drop(held);
    }

    /// A request's first poll queues it, then drains the thread caches, which hands a
    /// cached frame to this very request and wakes its waker inside `begin`, before the
    /// future holds the ticket. A waker that panics there once unwound out of `begin`: the
    /// request stayed queued and granted with nobody to collect or withdraw it, and the
    /// frame was lost for good. Now the wake is reported, and the poll completes with the
    /// frame.
    #[test]
    fn panicking_waker_woken_inside_begin_loses_no_frame() {
        use std::future::Future;
        use std::sync::mpsc::channel;
        use std::task::{Context, Poll, Wake, Waker};

        struct Panicky;
        impl Wake for Panicky {
            fn wake(self: std::sync::Arc<Self>) {
                panic!("this waker panics");
            }
        }

        let f = crate::framing::test_framing(PoolType::NON_PAGED, 2);
        let alloc = Allocator::builder(&f)
            .memory(Memory::NonPaged)
            .starvation_threshold(None)
            .build()
            .expect("allocator");
        let held = alloc.try_allocate().expect("a frame");
        // Thread T: gets a cache slot, then holds a frame until told to free it (cached).
        let (go, wait_go) = channel::<()>();
        let (done, wait_done) = channel::<()>();
        let (quit, wait_quit) = channel::<()>();
        let (ready, wait_ready) = channel::<()>();
        let a = alloc.clone();
        let t = std::thread::spawn(move || {
            drop(a.try_allocate().expect("a frame")); // registers and fills its cache slot
            let mine = a.try_allocate().expect("the cached frame");
            ready.send(()).expect("main waits");
            wait_go.recv().expect("main says go");
            drop(mine); // no request queued yet: cached in T's slot
            done.send(()).expect("main waits");
            let _ = wait_quit.recv();
        });
        wait_ready.recv().expect("T is ready");
        // After the request found no frame and before it queues, T caches its frame: the
        // request's drain finds it.
        let mut once = Some((go, wait_done));
        test_hooks::set(test_hooks::Point::BeforeWaiterLock, move || {
            if let Some((go, wait_done)) = once.take() {
                go.send(()).expect("T waits");
                wait_done.recv().expect("T cached its frame");
            }
        });
        let waker = Waker::from(std::sync::Arc::new(Panicky));
        let mut req = Box::pin(alloc.allocate());
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            matches!(
                req.as_mut().poll(&mut Context::from_waker(&waker)),
                Poll::Ready(Ok(_))
            )
        }));
        test_hooks::set(test_hooks::Point::BeforeWaiterLock, || {});
        assert!(
            matches!(polled, Ok(true)),
            "the first poll completes with the frame"
        );
        drop(req);
        drop(held);
        quit.send(()).expect("T waits");
        t.join().expect("T");
        let s = alloc.status();
        assert_eq!((s.allocated_frames, s.pending), (0, 0), "{s:?}");
        let both = (alloc.try_allocate(), alloc.try_allocate());
        assert!(both.0.is_ok() && both.1.is_ok(), "a frame was lost");
    }

    /// An allocator of `frames` frames of paged memory, with no starvation watch, so that
    /// nothing but its handles keeps it alive. Frames are taken with `begin`, as a request
    /// would: paged memory has no function table.
    fn paged(frames: u32) -> Allocator {
        let f = crate::framing::test_framing(PoolType::PAGED, frames);
        Allocator::builder(&f)
            .memory(Memory::Paged)
            .starvation_threshold(None)
            .build()
            .expect("allocator")
    }

    /// A free that holds no handle of its own hands its frame to a request whose thread owns
    /// the allocator's last handle, and that thread takes the frame, frees it and drops the
    /// handle before the freer's wake: close, then teardown as soon as nothing holds the
    /// allocator. So the freer must not touch the allocator after its unlock unless it keeps
    /// it alive: a `Waker` is woken without it, a sleeping thread through its grant word,
    /// which the freer holds a reference for (it once held none, and read freed memory).
    /// A test hook stops the freer between its unlock and its wake; Miri reports any access
    /// to freed memory (`MIRIFLAGS=-Zmiri-ignore-leaks cargo +nightly miri test -p ks-alloc
    /// --lib teardown`; the flag because the library worker thread outlives the tests).
    #[test]
    fn teardown_by_the_new_owner_before_the_freers_wake() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::mpsc::channel;
        use std::task::{Wake, Waker};

        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: std::sync::Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }

        for sleeper in [true, false] {
            let a = paged(1);
            let Ok(Begin::Ready(held)) = a.begin(None, || Notify::None) else {
                panic!("the only frame is free");
            };
            let woken = std::sync::Arc::new(Count(AtomicUsize::new(0)));
            let waker = Waker::from(woken.clone());
            let notify = || {
                if sleeper {
                    Notify::Futex(0)
                } else {
                    Notify::Waker(waker.clone())
                }
            };
            let Ok(Begin::Queued(t)) = a.begin(None, notify) else {
                panic!("no frame free: the request queues");
            };
            let (granted, wait_granted) = channel();
            let (torn_down, wait_torn_down) = channel::<()>();
            // The freer owns the frame and no handle.
            let freer = std::thread::spawn(move || {
                test_hooks::set(test_hooks::Point::BetweenUnlockAndWake, move || {
                    let _ = granted.send(());
                    let _ = wait_torn_down.recv();
                });
                drop(held);
            });
            wait_granted.recv().expect("the free hands the frame over");
            let i = a
                .inner
                .grants
                .try_collect(t)
                .expect("granted before the wake");
            drop(a.frame_from_grant(i));
            let weak = Arc::downgrade(&a.inner);
            // The last handle: close, and teardown once nothing else holds the allocator.
            drop(a);
            if !sleeper {
                assert_eq!(weak.strong_count(), 0, "nothing keeps it for a `Waker`");
            }
            torn_down.send(()).expect("the freer waits");
            freer.join().expect("the freer's wake");
            assert_eq!(weak.strong_count(), 0, "torn down once the freer is done");
            let wakes = woken.0.load(Ordering::SeqCst);
            assert_eq!(wakes, usize::from(!sleeper), "the task is woken once");
        }
    }

    /// A free that is not the last one returns from the free path while another thread
    /// brings the last frame home and tears the allocator down (it holds the last handle, or
    /// none is left). Once its frame is free, the first free must touch nothing of the
    /// allocator, and hold no borrow of it either: its functions take pointers, not
    /// `&self`, because memory may not be freed under a function's `&self` (Stacked and Tree
    /// Borrows; they once were `&self`). Three paths to "free": the thread's cache, the
    /// hinted CAS, and the list's slow push after close. A test hook stops the first free
    /// right after; Miri checks it (the command is at the test above).
    #[test]
    fn teardown_while_another_free_returns() {
        use std::sync::mpsc::channel;

        #[derive(Clone, Copy, Debug)]
        enum Path {
            Cached,
            Hinted,
            ClosedList,
        }
        for path in [Path::Cached, Path::Hinted, Path::ClosedList] {
            let a = paged(3);
            let [spare, mine, last] =
                std::array::from_fn(|_| match a.begin(None, || Notify::None) {
                    Ok(Begin::Ready(f)) => f,
                    _ => panic!("three frames are free"),
                });
            let weak = Arc::downgrade(&a.inner);
            let mut handle = Some(a);
            // Where `spare` is freed: by the first thread before its free (filling its cache
            // slot, so that its free takes the hinted CAS), or here before the teardown.
            let (mut spare, theirs) = match path {
                Path::Hinted => (None, Some(spare)),
                _ => (Some(spare), None),
            };
            if let Path::ClosedList = path {
                // The last handle: closed now, kept alive by the frames still out.
                drop(handle.take());
                drop(spare.take());
            }
            let (freed, wait_freed) = channel();
            let (torn_down, wait_torn_down) = channel::<()>();
            let first = std::thread::spawn(move || {
                drop(theirs);
                test_hooks::set(test_hooks::Point::FrameFree, move || {
                    let _ = freed.send(());
                    let _ = wait_torn_down.recv();
                });
                drop(mine);
            });
            wait_freed
                .recv()
                .expect("the first free makes its frame free");
            drop(spare);
            drop(last);
            // The last handle, if any is left: close drains the caches; every frame is home.
            drop(handle.take());
            assert_eq!(weak.strong_count(), 0, "{path:?}: torn down");
            torn_down.send(()).expect("the first free waits");
            first.join().expect("the first free returns");
        }
    }
}
