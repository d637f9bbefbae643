//! `KSEVENT_STREAMALLOCATOR_FREEFRAME`: subscribers learn when a frame returns to the free
//! list (behaviour 33), in callback form ([`Allocator::on_free_frame`]) or awaitable form
//! ([`Allocator::free_frame_events`]).
//!
//! Policy (KS is silent, ks-spec §10): the event fires once per free that puts a frame on the
//! free list; a free that completes a pending request does not fire it (no frame became
//! free). Frees at Dispatch level deliver the event through the library worker. After close
//! the event is disabled (behaviour 36): subscriptions can no longer be made and awaiting ones
//! complete with `STATUS_CANCELLED`.
//!
//! The free path pays only one relaxed load for this while nobody subscribes.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::level::{Level, current_level};
use crate::loom::{AtomicU64, AtomicUsize, Mutex, Ordering, lock};
use crate::{Allocator, Status};

pub(crate) type Callback = StdArc<dyn Fn() + Send + Sync>;

/// What [`Events::close`] took out of the registry, for the caller to wake and drop after
/// unlocking (dropping a callback or a `Waker` may free a frame of this allocator, whose
/// delivery takes the registry lock).
pub(crate) struct Closed {
    /// The callback subscriptions, dropped by the caller.
    pub(crate) callbacks: Vec<(u64, Callback)>,
    /// The awaiting subscribers' wakers (spent one-shots' included), woken by the caller.
    pub(crate) wakers: Vec<(u64, Waker)>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    callbacks: Vec<(u64, Callback)>,
    wakers: Vec<(u64, Waker)>,
    /// The wakers of the last delivery, woken outside the lock; the buffer is kept so that a
    /// delivery allocates nothing in steady state.
    spare_wakers: Vec<(u64, Waker)>,
    /// Live one-shot subscriptions, with the generation each counts from: the first
    /// delivery of a later generation disables them (`deliver`).
    oneshots: Vec<(u64, u64)>,
    /// One-shot subscriptions a delivery disabled, until their owner learns it (its next
    /// poll, or its drop). Reserved at subscription, so that a delivery allocates nothing.
    spent: Vec<u64>,
    /// The wakers of spent one-shot subscriptions still polled: silent, so only `close`
    /// wakes them (a delivery does not).
    spent_wakers: Vec<(u64, Waker)>,
    closed: bool,
}

/// Takes subscription `id`'s entry out of `list`, for the caller to drop after unlocking.
fn take_entry<T>(list: &mut Vec<(u64, T)>, id: u64) -> Option<T> {
    let k = list.iter().position(|(i, _)| *i == id)?;
    // `remove`, not `swap_remove`: callbacks run in subscription order.
    Some(list.remove(k).1)
}

/// Wakes `w`, a subscriber's: a panic is reported, not raised, so that the other
/// subscribers are woken all the same and the thread that freed (or the worker) does not
/// unwind because of someone else's `Waker`.
fn wake_subscriber(w: Waker) {
    if catch_unwind(AssertUnwindSafe(|| w.wake())).is_err() {
        tracing::error!(
            "a FREEFRAME subscriber's waker panicked; reported, and the other subscribers are \
             woken all the same"
        );
    }
}

pub(crate) struct Events {
    subscribers: AtomicUsize,
    generation: AtomicU64,
    /// Frees at Dispatch level whose callbacks the worker has yet to run.
    deferred: AtomicU64,
    /// The thread running the callbacks now ([`thread_token`]), 0 if none. A free made by a
    /// callback comes back to `deliver` on that thread, with the registry lock held.
    delivering: AtomicUsize,
    /// Counted by such nested deliveries: the running one calls the callbacks once more for
    /// each.
    again: AtomicU64,
    registry: Mutex<Registry>,
    /// Request wakers a free made by a callback (on the delivering thread, registry locked)
    /// handed a frame to: woken once the delivery has unlocked (`wake_later`), since a waker
    /// may poll inline and then await the next event (which takes the registry lock).
    later: Mutex<Vec<Waker>>,
}

/// A value unique to the calling thread among live threads (the address of a thread-local).
fn thread_token() -> usize {
    #[cfg(not(loom))]
    crate::loom::thread_local!(static TOKEN: u8 = const { 0 });
    #[cfg(loom)] // loom's thread-locals take no `const` initializer
    crate::loom::thread_local!(static TOKEN: u8 = 0);
    TOKEN.with(|t| std::ptr::from_ref(t) as usize)
}

/// Clears [`Events::delivering`] and [`Events::again`] when the callbacks are done, or if
/// one panics (so that a later thread reusing the token is not taken for a nested delivery).
struct Delivering<'a>(&'a Events);

impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        // Relaxed: only read by the thread that stored its token (see `deliver`).
        self.0.delivering.store(0, Ordering::Relaxed);
        self.0.again.store(0, Ordering::Relaxed);
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("subscribers", &self.subscribers.load(Ordering::Relaxed))
            .finish()
    }
}

impl Events {
    pub(crate) fn new() -> Events {
        Events {
            subscribers: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            deferred: AtomicU64::new(0),
            delivering: AtomicUsize::new(0),
            again: AtomicU64::new(0),
            registry: Mutex::new(Registry::default()),
            later: Mutex::new(Vec::new()),
        }
    }

    /// Whether anybody subscribed (a hint; subscriptions racing with a free may miss it).
    #[inline]
    pub(crate) fn active(&self) -> bool {
        // Relaxed: a hint, see above.
        self.subscribers.load(Ordering::Relaxed) != 0
    }

    /// A frame went on the free list.
    pub(crate) fn fire(&self) {
        // Release: pairs with the Acquire load in `NextFreeFrame::poll`.
        self.generation.fetch_add(1, Ordering::Release);
        if current_level() == Level::Dispatch {
            // Release: pairs with the Acquire swap in `deliver_deferred` (worker). Counted,
            // so that frees the worker has not reached yet each get their callbacks.
            self.deferred.fetch_add(1, Ordering::Release);
        } else {
            self.deliver(1);
        }
    }

    /// Whether a Dispatch-level fire left delivery to the worker.
    pub(crate) fn needs_worker(&self) -> bool {
        // Acquire: see `fire`.
        self.deferred.load(Ordering::Acquire) != 0
    }

    pub(crate) fn deliver_deferred(&self) {
        // Acquire: see `fire`.
        let frees = self.deferred.swap(0, Ordering::Acquire);
        if frees != 0 {
            self.deliver(frees);
        }
    }

    /// Runs the callbacks under the registry lock (so that once an unsubscribe returns, its
    /// callback never runs again) and wakes the awaiting subscribers after unlocking (a waker
    /// may poll inline, which takes the lock).
    ///
    /// `frees`: how many frees this delivers; the callbacks run once for each (the awaiting
    /// subscribers are woken once: they count events by generation).
    ///
    /// A callback may free a frame of this allocator: that free comes back here on the same
    /// thread with the lock held, so it only asks the running delivery for one more round
    /// per free instead of locking again (which would deadlock); a request such a free hands
    /// its frame to is woken after the unlock too ([`wake_later`](Self::wake_later)).
    ///
    /// Panics: a waker that panics is reported and the others are woken all the same (the
    /// freeing thread does not unwind because of someone else's `Waker`). A callback that
    /// panics (it must not) does not stop the other callbacks nor the wakes either; the
    /// first such panic resumes once the delivery is complete (reported instead if the
    /// thread is unwinding already).
    fn deliver(&self, frees: u64) {
        let me = thread_token();
        // Relaxed: only this thread stores `me` here, and it clears it before it stops
        // delivering, so reading `me` means a callback of this thread's delivery freed.
        if self.delivering.load(Ordering::Relaxed) == me {
            // Relaxed: read by this same thread's delivery, below.
            self.again.fetch_add(frees, Ordering::Relaxed);
            return;
        }
        let mut panicked = None;
        let mut r = lock(&self.registry);
        let mut wakers = std::mem::take(&mut r.spare_wakers);
        {
            // Relaxed: see above.
            self.delivering.store(me, Ordering::Relaxed);
            let _done = Delivering(self);
            let mut rounds = frees;
            while rounds != 0 {
                for _ in 0..rounds {
                    for (_, cb) in &r.callbacks {
                        if let Err(p) = catch_unwind(AssertUnwindSafe(|| cb())) {
                            panicked.get_or_insert(p);
                        }
                    }
                }
                // Relaxed: counted by this thread (nested deliveries).
                rounds = self.again.swap(0, Ordering::Relaxed);
            }
        }
        // One-shot subscriptions are disabled by their first event (KS: a one-shot event is
        // disabled when signalled): they stop counting as subscribers now, not when their
        // owner next polls. Only events after a subscription count for it: one made between
        // this delivery's generation increment and the lock has seen none yet.
        if !r.oneshots.is_empty() {
            // Acquire: as in `NextFreeFrame::poll`.
            let g = self.generation.load(Ordering::Acquire);
            let Registry {
                oneshots, spent, ..
            } = &mut *r;
            let before = oneshots.len();
            oneshots.retain(|&(id, seen)| {
                let fired = g != seen;
                if fired {
                    spent.push(id);
                }
                !fired
            });
            // Relaxed: the registry lock orders subscriber bookkeeping.
            self.subscribers
                .fetch_sub(before - oneshots.len(), Ordering::Relaxed);
        }
        // The registry keeps the (empty) spare, `wakers` takes the registered ones: both
        // buffers keep their capacity, so no heap traffic in steady state.
        std::mem::swap(&mut wakers, &mut r.wakers);
        drop(r);
        for (_, w) in wakers.drain(..) {
            wake_subscriber(w);
        }
        self.wake_held();
        let mut r = lock(&self.registry);
        if wakers.capacity() > r.spare_wakers.capacity() {
            r.spare_wakers = wakers;
        }
        drop(r);
        if let Some(p) = panicked {
            if std::thread::panicking() {
                tracing::error!(
                    "a FREEFRAME callback panicked while its thread was unwinding already; \
                     reported, not re-raised"
                );
            } else {
                resume_unwind(p);
            }
        }
    }

    /// Whether this thread is running this allocator's FREEFRAME callbacks now (so holds
    /// the registry lock): a request woken from here must be woken later
    /// ([`wake_later`](Self::wake_later)).
    #[inline]
    pub(crate) fn delivering_here(&self) -> bool {
        // Relaxed: as in `deliver`, only this thread stores its own token there.
        self.active() && self.delivering.load(Ordering::Relaxed) == thread_token()
    }

    /// Called from a callback's free (see [`delivering_here`](Self::delivering_here)):
    /// `w`, of a request granted a frame, is woken once the running delivery has unlocked.
    pub(crate) fn wake_later(&self, w: Waker) {
        lock(&self.later).push(w);
    }

    /// Wakes the requests [`wake_later`](Self::wake_later) held back (reported if one panics,
    /// as in `deliver`).
    fn wake_held(&self) {
        let held = std::mem::take(&mut *lock(&self.later));
        for w in held {
            if catch_unwind(AssertUnwindSafe(|| w.wake())).is_err() {
                tracing::error!(
                    "a request's waker panicked when a FREEFRAME callback's free handed it a \
                     frame; reported (the request has its frame)"
                );
            }
        }
    }

    /// Disables the event: nobody counts as a subscriber any more (frees stop paying for
    /// the event). Returns the callbacks, for the caller to drop, and the awaiting
    /// subscribers' wakers, for it to wake (which then see the event closed), both after
    /// unlocking: dropping either may free a frame, whose delivery takes this lock.
    pub(crate) fn close(&self) -> Closed {
        let mut r = lock(&self.registry);
        r.closed = true;
        let callbacks = std::mem::take(&mut r.callbacks);
        let mut wakers = std::mem::take(&mut r.wakers);
        wakers.append(&mut r.spent_wakers);
        r.oneshots.clear();
        r.spent.clear();
        // Relaxed: the registry lock orders subscriber bookkeeping; `unsubscribe` counts
        // nothing once closed.
        self.subscribers.store(0, Ordering::Relaxed);
        Closed { callbacks, wakers }
    }

    /// Subscribes: a callback (`cb`), or an awaitable subscription, one-shot if `oneshot`.
    /// Returns its id and the generation it counts events from.
    fn subscribe(&self, cb: Option<Callback>, oneshot: bool) -> Result<(u64, u64), Status> {
        let mut r = lock(&self.registry);
        if r.closed {
            return Err(crate::allocator::closed_status());
        }
        r.next_id += 1;
        let id = r.next_id;
        if let Some(cb) = cb {
            r.callbacks.push((id, cb));
        }
        // Acquire: start counting from now (pairs with the Release increment in `fire`).
        // Read under the lock, so that a delivery judges a one-shot by the same value.
        let seen = self.generation.load(Ordering::Acquire);
        if oneshot {
            r.oneshots.push((id, seen));
            let live = r.oneshots.len();
            r.spent.reserve(live);
        }
        // Relaxed: the registry lock orders subscriber bookkeeping.
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        Ok((id, seen))
    }

    /// Ends subscription `id` (its owner disables it, or a one-shot saw its event): it stops
    /// counting as a subscriber, unless a delivery already disabled it (a one-shot).
    ///
    /// Its callback and waker are dropped after unlocking: dropping them may free a frame of
    /// this allocator, whose delivery takes the registry lock.
    fn unsubscribe(&self, id: u64) {
        let mut r = lock(&self.registry);
        let callback = take_entry(&mut r.callbacks, id);
        let waker = take_entry(&mut r.wakers, id);
        let spent_waker = take_entry(&mut r.spent_wakers, id);
        // After close nothing counts as a subscriber (`close` reset the count).
        if !r.closed {
            if let Some(k) = r.spent.iter().position(|&i| i == id) {
                r.spent.swap_remove(k);
            } else {
                r.oneshots.retain(|&(i, _)| i != id);
                // Relaxed: as in `subscribe`.
                self.subscribers.fetch_sub(1, Ordering::Relaxed);
            }
        }
        drop(r);
        drop((callback, waker, spent_waker));
    }

    /// Forgets the waker of a spent one-shot subscription (no longer counted as a
    /// subscriber: [`unsubscribe`](Self::unsubscribe) already ran for it), dropped after
    /// unlocking (see `unsubscribe`).
    fn forget_waker(&self, id: u64) {
        let mut r = lock(&self.registry);
        let waker = take_entry(&mut r.spent_wakers, id);
        let stale = take_entry(&mut r.wakers, id);
        drop(r);
        drop((waker, stale));
    }
}

/// Registers `waker` for subscription `id` in `list`, replacing the one it had. Returns the
/// replaced one, for the caller to drop after unlocking (see `Events::unsubscribe`).
#[must_use = "drop the replaced waker after unlocking"]
fn register_waker(list: &mut Vec<(u64, Waker)>, id: u64, waker: &Waker) -> Option<Waker> {
    match list.iter_mut().find(|(i, _)| *i == id) {
        Some((_, w)) if w.will_wake(waker) => None,
        Some((_, w)) => Some(std::mem::replace(w, waker.clone())),
        None => {
            list.push((id, waker.clone()));
            None
        }
    }
}

/// A FREEFRAME callback subscription (KS: an enabled `KSEVENT_STREAMALLOCATOR_FREEFRAME`).
/// Dropping it disables the event (KS: `IOCTL_KS_DISABLE_EVENT`).
///
/// It holds a handle of its allocator, so the allocator stays open while it lives, even
/// once every other handle is gone; [`Allocator::close`] ends it at any time.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let fired = Arc::new(AtomicUsize::new(0));
/// let counter = fired.clone();
/// let sub = alloc.on_free_frame(move || { counter.fetch_add(1, Ordering::Relaxed); })?;
/// drop(alloc.try_allocate()?);
/// drop(sub); // disables the event
/// drop(alloc.try_allocate()?);
/// assert_eq!(fired.load(Ordering::Relaxed), 1);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[must_use = "dropping the subscription disables the event"]
pub struct EventSubscription {
    alloc: Allocator,
    id: u64,
}

impl fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSubscription")
            .field("id", &self.id)
            .finish()
    }
}

impl EventSubscription {
    /// A number naming this subscription among its allocator's FREEFRAME subscriptions, for
    /// logs and diagnostics: callback and awaitable subscriptions of one allocator draw their
    /// numbers from one counter, so no two of them share one and a number is not reused once
    /// its subscription is dropped. Another allocator's subscriptions may have the same
    /// numbers.
    ///
    /// It is not a KS event handle: the request surface neither returns nor accepts it.
    /// There, [`Allocator::enable_event`] answers with a [`FreeFrameEvents`] value, which is
    /// itself the handle ([`Allocator::disable_event`] takes it, dropping it disables it too);
    /// a callback subscription is made only through [`Allocator::on_free_frame`].
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let a = alloc.on_free_frame(|| {})?;
    /// let b = alloc.on_free_frame(|| {})?;
    /// assert_ne!(a.id(), b.id());
    /// let first = a.id();
    /// drop(a);
    /// let c = alloc.on_free_frame(|| {})?;
    /// assert!(c.id() != first && c.id() != b.id(), "not reused");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for EventSubscription {
    fn drop(&mut self) {
        self.alloc.inner.events.unsubscribe(self.id);
    }
}

/// Awaitable FREEFRAME events: [`next_event`](Self::next_event) completes at the next free that puts a
/// frame on the free list.
///
/// Like [`EventSubscription`], it holds a handle of its allocator ([`allocator`](Self::allocator)),
/// so the allocator stays open while it lives; [`Allocator::close`] ends it at any time.
///
/// ```
/// use std::time::Duration;
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let mut events = alloc.free_frame_events()?;
/// drop(alloc.try_allocate()?);
/// assert!(events.wait(Duration::from_millis(10))?, "the free fired");
/// assert!(!events.wait(Duration::from_millis(1))?, "nothing since");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
///
/// # One-shot subscriptions
///
/// A subscription made by [`Allocator::enable_event`] with `KSEVENT_TYPE_ONESHOT` is
/// disabled by its first event, when the event is delivered (on the freeing thread, or on
/// the library worker for a free at Dispatch level), whether or not its owner is polling:
/// it stops counting as a subscriber, so the frees that follow are not delivered to it and
/// no longer pay for it. The [`next_event`](Self::next_event) that sees the event
/// completes; the subscription stays silent afterwards: a later `next_event` completes only
/// with `STATUS_CANCELLED` once the allocator is closed, and [`wait`](Self::wait) times out.
pub struct FreeFrameEvents {
    alloc: Allocator,
    id: u64,
    seen: u64,
    /// `KSEVENT_TYPE_ONESHOT`: disabled by its first event.
    oneshot: bool,
    /// A one-shot subscription whose event was seen: unsubscribed, silent.
    spent: bool,
}

impl fmt::Debug for FreeFrameEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreeFrameEvents")
            .field("id", &self.id)
            .field("seen", &self.seen)
            .field("oneshot", &self.oneshot)
            .field("spent", &self.spent)
            .finish()
    }
}

impl Drop for FreeFrameEvents {
    fn drop(&mut self) {
        if self.spent {
            self.alloc.inner.events.forget_waker(self.id);
        } else {
            self.alloc.inner.events.unsubscribe(self.id);
        }
    }
}

impl FreeFrameEvents {
    /// The allocator this subscription listens to.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let events = alloc.free_frame_events()?;
    /// assert!(events.allocator().same(&alloc));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn allocator(&self) -> &Allocator {
        &self.alloc
    }

    /// Waits for the next FREEFRAME event (events since the previous `next` count: none is
    /// lost between two calls).
    ///
    /// # Errors
    /// `STATUS_CANCELLED` once the allocator is closed.
    ///
    /// ```
    /// use ks_alloc::{bench::block_on, Status};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let mut events = alloc.free_frame_events()?;
    /// drop(alloc.try_allocate()?);
    /// assert_eq!(block_on(events.next_event()), Ok(()));
    /// alloc.close();
    /// assert_eq!(block_on(events.next_event()), Err(Status::Cancelled));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn next_event(&mut self) -> NextFreeFrame<'_> {
        NextFreeFrame { events: self }
    }

    /// Blocking form of [`next_event`](Self::next_event), with a timeout; `Ok(false)` on timeout.
    ///
    /// # Errors
    /// `STATUS_CANCELLED` once closed; `STATUS_INVALID_DEVICE_STATE` at Dispatch level.
    ///
    /// ```
    /// use std::time::Duration;
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let mut events = alloc.free_frame_events()?;
    /// assert_eq!(events.wait(Duration::from_millis(1)), Ok(false), "no free yet: timed out");
    /// drop(alloc.try_allocate()?);
    /// assert_eq!(events.wait(Duration::from_millis(10)), Ok(true));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, Status> {
        if current_level() == Level::Dispatch {
            return Err(crate::level::refuse_blocking("FreeFrameEvents::wait"));
        }
        // A timeout past what the clock can represent is no timeout.
        let deadline = std::time::Instant::now().checked_add(timeout);
        let thread = std::thread::current();
        let waker = Waker::from(StdArc::new(ThreadWaker(thread)));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(r) = Pin::new(&mut self.next_event()).poll(&mut cx) {
                return r.map(|()| true);
            }
            let Some(deadline) = deadline else {
                std::thread::park();
                continue;
            };
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            std::thread::park_timeout(deadline - now);
        }
    }
}

struct ThreadWaker(std::thread::Thread);

impl std::task::Wake for ThreadWaker {
    fn wake(self: StdArc<Self>) {
        self.0.unpark();
    }
}

/// Future returned by [`FreeFrameEvents::next_event`].
///
/// ```
/// use ks_alloc::{bench::block_on, NextFreeFrame};
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let mut events = alloc.free_frame_events()?;
/// let frame = alloc.try_allocate()?;
/// let next: NextFreeFrame<'_> = events.next_event();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(frame)); // a free on another thread
///     assert_eq!(block_on(next), Ok(()));
/// });
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct NextFreeFrame<'a> {
    events: &'a mut FreeFrameEvents,
}

impl fmt::Debug for NextFreeFrame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextFreeFrame").finish()
    }
}

impl Future for NextFreeFrame<'_> {
    type Output = Result<(), Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.events.alloc.is_closed() {
            return Poll::Ready(Err(Status::Cancelled));
        }
        let events = &mut *this.events;
        let ev = &events.alloc.inner.events;
        if events.spent {
            // A spent one-shot: silent; its waker is kept only for close to wake it (apart
            // from the live subscribers' wakers, which every delivery wakes).
            let mut r = lock(&ev.registry);
            if r.closed {
                return Poll::Ready(Err(Status::Cancelled));
            }
            let replaced = register_waker(&mut r.spent_wakers, events.id, cx.waker());
            drop(r);
            drop(replaced);
            return Poll::Pending;
        }
        // Acquire: pairs with the Release increment in `fire`.
        let g = ev.generation.load(Ordering::Acquire);
        if g != events.seen {
            events.saw(g);
            return Poll::Ready(Ok(()));
        }
        let mut r = lock(&ev.registry);
        if r.closed {
            return Poll::Ready(Err(Status::Cancelled));
        }
        let replaced = register_waker(&mut r.wakers, events.id, cx.waker());
        drop(r);
        drop(replaced);
        // Re-check after registering: a fire between our first load and the registration
        // delivered before our waker was there.
        // Acquire: as above.
        let g = ev.generation.load(Ordering::Acquire);
        if g != events.seen {
            events.saw(g);
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

impl FreeFrameEvents {
    /// An event was seen (generation `g`): a one-shot subscription is disabled by it.
    fn saw(&mut self, g: u64) {
        self.seen = g;
        if self.oneshot {
            self.spent = true;
            self.alloc.inner.events.unsubscribe(self.id);
        }
    }
}

impl Allocator {
    /// Subscribes `callback` to FREEFRAME (KS: enabling `KSEVENT_STREAMALLOCATOR_FREEFRAME`).
    /// It runs on the freeing thread (at Passive level) or on the library worker (frees at
    /// Dispatch level), under the event lock: once the subscription is dropped, the callback
    /// never runs again. It must not block, panic, close the allocator or (un)subscribe; it
    /// may allocate and free frames (a free it makes is delivered once it returns).
    ///
    /// # Errors
    /// `STATUS_INVALID_DEVICE_STATE` after close.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1,
    ///                         frame_size: 64, alignment: Alignment::BYTE };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let fired = Arc::new(AtomicUsize::new(0));
    /// let f2 = fired.clone();
    /// let sub = alloc.on_free_frame(move || { f2.fetch_add(1, Ordering::Relaxed); })?;
    /// drop(alloc.try_allocate()?);
    /// assert_eq!(fired.load(Ordering::Relaxed), 1);
    /// drop(sub);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KSEVENT_STREAMALLOCATOR_FREEFRAME")]
    pub fn on_free_frame(
        &self,
        callback: impl Fn() + Send + Sync + 'static,
    ) -> Result<EventSubscription, Status> {
        let (id, _) = self
            .inner
            .events
            .subscribe(Some(StdArc::new(callback)), false)?;
        Ok(EventSubscription {
            alloc: self.clone(),
            id,
        })
    }

    /// Subscribes to FREEFRAME in awaitable form.
    ///
    /// # Errors
    /// `STATUS_INVALID_DEVICE_STATE` after close.
    ///
    /// ```
    /// use std::time::Duration;
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let mut events = alloc.free_frame_events()?;
    /// drop(alloc.try_allocate()?);
    /// assert!(events.wait(Duration::from_millis(10))?);
    /// alloc.close();
    /// assert!(alloc.free_frame_events().is_err(), "no subscription after close");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn free_frame_events(&self) -> Result<FreeFrameEvents, Status> {
        self.subscribe_events(false)
    }

    /// [`free_frame_events`](Self::free_frame_events), one-shot (`KSEVENT_TYPE_ONESHOT`) if
    /// `oneshot`.
    pub(crate) fn subscribe_events(&self, oneshot: bool) -> Result<FreeFrameEvents, Status> {
        let (id, seen) = self.inner.events.subscribe(None, oneshot)?;
        Ok(FreeFrameEvents {
            alloc: self.clone(),
            id,
            seen,
            oneshot,
            spent: false,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::{Allocator, Memory, PoolType};

    /// After close nobody counts as a subscriber: frees no longer take the events path (and
    /// subscriptions dropped later count nothing down).
    #[test]
    fn close_resets_the_subscriber_count() {
        let f = crate::framing::test_framing(PoolType::NON_PAGED, 2);
        let alloc = Allocator::new(&f, Memory::NonPaged).expect("allocator");
        let sub = alloc.on_free_frame(|| {}).expect("subscribed");
        let events = alloc.free_frame_events().expect("subscribed");
        assert!(alloc.inner.events.active());
        alloc.close();
        assert!(!alloc.inner.events.active(), "still counted after close");
        drop(sub);
        drop(events);
        assert!(!alloc.inner.events.active());
        // Relaxed: a check, nothing to order.
        let n = alloc
            .inner
            .events
            .subscribers
            .load(crate::loom::Ordering::Relaxed);
        assert_eq!(n, 0, "no underflow");
    }
}
