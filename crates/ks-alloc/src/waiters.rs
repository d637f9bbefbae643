//! The FIFO queue of pending allocate requests (KS: the pending `KSMETHOD_STREAMALLOCATOR_ALLOC`
//! IRPs), shared by async tasks, blocked threads and KS request handles.
//!
//! It lives behind the allocator's waiter mutex (the portable stand-in for KS's cancel spin
//! lock) and is touched only while requests are pending: the free list's `WAITERS` bit routes
//! frees here only when it is set (see `freelist.rs`).
//!
//! Waiter records are slots of a slab allocated once, when the allocator is created
//! (`max_waiters` of them), linked into a doubly linked FIFO list by index. Enqueueing,
//! granting and cancelling therefore never touch the heap; waking clones a `Waker` (a
//! reference-count increment for every common executor) or wakes the futex on the grant word.
//! A record is in use from the request's queueing until its owner has taken its frame; a
//! request that finds none free is refused with `STATUS_INSUFFICIENT_RESOURCES` naming the
//! bound.
//!
//! A ticket `(slot, generation)` names a request; the generation makes a stale ticket (one
//! whose slot has been recycled) harmless.
//!
//! # Collecting a grant without the lock
//!
//! A free that completes a request also publishes the frame in the slot's word of
//! [`Grants`] (a 32-bit atomic outside the mutex: `generation << 17 | frame`, Release). The woken
//! waiter reads it (Acquire) and takes the frame without touching the waiter lock: one load
//! and one store on the slot's own word, instead of a lock round trip on a line the freer has
//! just written. It marks the word `COLLECTED`; the slot is then recycled lazily, under the
//! lock, by the next `enqueue` (granted slots wait in a FIFO "granted" list until then).
//! Only the ticket's owner collects, so a grant is taken once: either lock-free here, or
//! under the lock by `poll`/`remove` (which check the word first).
//!
//! A thread blocked in `allocate_blocking` sleeps in `futex_wait` on that same word, so the
//! freer's grant store is also what the sleeper waits for, and the wake is one `futex_wake`
//! on a line the freer already owns (measured 5-8 % faster than `std::thread::park`/`unpark`
//! or a `Condvar`, which each add a separate parker word). Close writes `CANCELLED` into the
//! words of the requests it cancels, so a sleeper can never miss it. The word is 32 bits (the
//! futex size): 15 bits of the slot generation, 17 of value.

use std::task::Waker;
use std::time::Instant;

use crate::frame::Holder;
use crate::loom::{AtomicU32, Ordering};

const NIL: u32 = u32::MAX;

/// Value bits of a grant word (frame indices are below `MAX_FRAMES` = 0xFFFF).
const VALUE_BITS: u32 = 17;
const VALUE_MASK: u32 = (1 << VALUE_BITS) - 1;
/// Value of a grant word: the request is queued (or its slot vacant).
const PENDING: u32 = VALUE_MASK;
/// Value of a grant word: the owner took its frame; the slot may be recycled.
const COLLECTED: u32 = VALUE_MASK - 1;
/// Value of a grant word: the request was cancelled by close (ask under the lock).
const CANCELLED: u32 = VALUE_MASK - 2;
/// Value of a grant word: the request failed (a vendor's misaligned frame; ask under the
/// lock). The lowest non-frame value: frame indices are below it.
const FAILED: u32 = VALUE_MASK - 3;

#[inline(always)]
fn pack(generation: u32, value: u32) -> u32 {
    (generation << VALUE_BITS) | value
}

#[inline(always)]
fn same_generation(word: u32, generation: u32) -> bool {
    word >> VALUE_BITS == generation & (u32::MAX >> VALUE_BITS)
}

/// One grant word per waiter slot, outside the waiter mutex (see the module docs).
#[derive(Debug)]
pub(crate) struct Grants {
    words: Box<[AtomicU32]>,
}

impl Grants {
    pub(crate) fn new(capacity: u32) -> Grants {
        Grants {
            words: (0..capacity)
                .map(|_| AtomicU32::new(pack(0, PENDING)))
                .collect(),
        }
    }

    /// The ticket's owner takes its granted frame without the lock, or learns that it must
    /// ask under the lock (`None`: still queued, cancelled, or already collected).
    #[inline]
    pub(crate) fn try_collect(&self, t: Ticket) -> Option<u32> {
        let w = self.words.get(t.slot as usize)?;
        // Acquire: pairs with the Release store in `WaitQueue::grant`, so the frame's bytes
        // and slot metadata written before the hand-off are visible to the new holder.
        let v = w.load(Ordering::Acquire);
        let frame = v & VALUE_MASK;
        if !same_generation(v, t.generation) || frame >= FAILED {
            return None;
        }
        // Release: pairs with the Acquire load in `WaitQueue::reclaim`; after this store the
        // owner never touches the slot again, so the slot may be recycled.
        w.store(pack(t.generation, COLLECTED), Ordering::Release);
        Some(frame)
    }

    /// Whether slot `slot`'s grant has been collected (read under the waiter lock).
    fn collected(&self, slot: u32) -> bool {
        // Acquire: see `try_collect`.
        self.words[slot as usize].load(Ordering::Acquire) & VALUE_MASK == COLLECTED
    }

    /// Whether a grant word value `seen` says anything but "still queued" for `t` (granted,
    /// collected, cancelled, or recycled): then its owner must look under the lock rather
    /// than sleep on the word, which may never change again.
    pub(crate) fn settled(t: Ticket, seen: u32) -> bool {
        !same_generation(seen, t.generation) || seen & VALUE_MASK != PENDING
    }

    /// The grant word a blocked owner of `t` sleeps on.
    pub(crate) fn word(&self, t: Ticket) -> &AtomicU32 {
        &self.words[t.slot as usize]
    }

    /// Wakes the thread sleeping on slot `slot`'s word (if any). A stale wake (the slot was
    /// recycled meanwhile) only makes the new owner re-check its word.
    #[inline]
    pub(crate) fn wake(&self, slot: u32) {
        #[cfg(not(loom))]
        {
            // The result is the number woken (0 or 1) or EFAULT, which a word in a live slab
            // cannot cause; nothing to do either way.
            let _ = rustix::thread::futex::wake(
                &self.words[slot as usize],
                rustix::thread::futex::Flags::PRIVATE,
                1,
            );
        }
        #[cfg(loom)]
        let _ = slot; // loom: sleepers spin (`Allocator::sleep_on`).
    }

    #[inline(always)]
    fn set(&self, slot: u32, generation: u32, low: u32) {
        // Release: for a grant, publishes the frame to the owner's Acquire load in
        // `try_collect`; for PENDING (written by `enqueue`), the only other readers hold the
        // lock, which orders it.
        self.words[slot as usize].store(pack(generation, low), Ordering::Release);
    }
}

/// How a waiter wants to be told its request completed.
#[derive(Debug, Default)]
pub(crate) enum Notify {
    #[default]
    None,
    Waker(Waker),
    /// A thread sleeping on the grant word of slot `.0` (`enqueue` fills in the slot, so a
    /// request that is not queued yet passes any value).
    Futex(u32),
}

/// Wakes its notifies when dropped. Declared before a waiter-lock guard, it wakes after the
/// unlock on every return path (locals drop in reverse order). Empty, it allocates nothing.
///
/// Its wakers belong to other requests: one that panics is reported (`tracing` error) and
/// the others are woken all the same. The panic does not unwind into the caller, whose own
/// request (queued, or holding a frame) must not be dropped for someone else's bug.
pub(crate) struct WakeOnDrop<'a> {
    pub(crate) notify: Vec<Notify>,
    grants: &'a Grants,
}

impl<'a> WakeOnDrop<'a> {
    pub(crate) fn new(grants: &'a Grants) -> WakeOnDrop<'a> {
        WakeOnDrop {
            notify: Vec::new(),
            grants,
        }
    }
}

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        for n in self.notify.drain(..) {
            if catch_unwind(AssertUnwindSafe(|| n.wake(self.grants))).is_err() {
                tracing::error!(
                    "a waker of a request served by a vendor retry panicked; the other \
                     requests were woken all the same"
                );
            }
        }
    }
}

impl Notify {
    /// The thread owning `t` sleeps on its grant word.
    pub(crate) fn futex(t: Ticket) -> Notify {
        Notify::Futex(t.slot)
    }

    #[inline]
    pub(crate) fn wake(self, grants: &Grants) {
        match self {
            Notify::None => {}
            Notify::Waker(w) => w.wake(),
            Notify::Futex(slot) => grants.wake(slot),
        }
    }
}

/// Wakes every cancelled request and every awaiting event subscriber of a closing
/// allocator. A `Waker` that panics does not keep the others asleep: each is woken, then the
/// first panic resumes.
pub(crate) fn wake_all(cancelled: Vec<Notify>, subscribers: Vec<(u64, Waker)>, grants: &Grants) {
    use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
    type Panic = Box<dyn std::any::Any + Send>;
    fn guarded(first: &mut Option<Panic>, wake: impl FnOnce()) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(wake)) {
            first.get_or_insert(p);
        }
    }
    let mut first = None;
    for n in cancelled {
        guarded(&mut first, || n.wake(grants));
    }
    for (_, w) in subscribers {
        guarded(&mut first, || w.wake());
    }
    if let Some(p) = first {
        resume_unwind(p);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Vacant,
    Queued,
    /// Completed with this frame index (already claimed for the waiter).
    Granted(u32),
    Cancelled,
    /// Completed without a frame: the vendor returned this misaligned address for it.
    Failed(usize),
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    state: State,
    notify: Notify,
    holder: Option<&'static Holder>,
    since: Option<Instant>,
    prev: u32,
    next: u32,
}

/// Names one request in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    slot: u32,
    generation: u32,
}

/// What a poll of a ticket found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polled {
    Granted(u32),
    Cancelled,
    /// The vendor returned this misaligned address for the request
    /// (`STATUS_INVALID_PARAMETER`).
    Misaligned(usize),
    Queued,
}

#[derive(Debug)]
pub(crate) struct WaitQueue {
    slots: Box<[Slot]>,
    head: u32,
    tail: u32,
    /// Granted slots not yet recycled (FIFO, linked through `prev`/`next`).
    granted_head: u32,
    granted_tail: u32,
    vacant: u32,
    len: u32,
    pub(crate) max_len: u32,
    pub(crate) handoffs: u64,
}

impl WaitQueue {
    pub(crate) fn new(capacity: u32) -> WaitQueue {
        let slots = (0..capacity)
            .map(|i| Slot {
                generation: 0,
                state: State::Vacant,
                notify: Notify::None,
                holder: None,
                since: None,
                prev: NIL,
                next: if i + 1 == capacity { NIL } else { i + 1 },
            })
            .collect();
        WaitQueue {
            slots,
            head: NIL,
            tail: NIL,
            granted_head: NIL,
            granted_tail: NIL,
            vacant: if capacity == 0 { NIL } else { 0 },
            len: 0,
            max_len: 0,
            handoffs: 0,
        }
    }

    pub(crate) fn capacity(&self) -> u32 {
        self.slots.len() as u32
    }

    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// Appends a request. `None` when all `capacity` slots are in use.
    pub(crate) fn enqueue(
        &mut self,
        grants: &Grants,
        notify: Notify,
        holder: Option<&'static Holder>,
    ) -> Option<Ticket> {
        // Recycle the grants collected since (usually the oldest granted slot, if any).
        self.reclaim(grants, false);
        if self.vacant == NIL {
            self.reclaim(grants, true);
        }
        let i = self.vacant;
        if i == NIL {
            return None;
        }
        let tail = self.tail;
        let s = &mut self.slots[i as usize];
        self.vacant = s.next;
        s.generation = s.generation.wrapping_add(1);
        s.state = State::Queued;
        s.notify = match notify {
            Notify::Futex(_) => Notify::Futex(i),
            n => n,
        };
        s.holder = holder;
        s.since = Some(Instant::now());
        s.prev = tail;
        s.next = NIL;
        let ticket = Ticket {
            slot: i,
            generation: s.generation,
        };
        grants.set(i, ticket.generation, PENDING);
        if tail == NIL {
            self.head = i;
        } else {
            self.slots[tail as usize].next = i;
        }
        self.tail = i;
        self.len += 1;
        self.max_len = self.max_len.max(self.len);
        Some(ticket)
    }

    /// The oldest queued request: its slot and holder tag.
    #[inline]
    pub(crate) fn front(&self) -> Option<(u32, Option<&'static Holder>)> {
        (self.head != NIL).then(|| (self.head, self.slots[self.head as usize].holder))
    }

    /// When the oldest request was queued.
    pub(crate) fn oldest_since(&self) -> Option<Instant> {
        (self.head != NIL)
            .then(|| self.slots[self.head as usize].since)
            .flatten()
    }

    #[inline]
    fn unlink(&mut self, i: u32) {
        let (mut head, mut tail) = (self.head, self.tail);
        self.unlink_from(i, &mut head, &mut tail);
        (self.head, self.tail) = (head, tail);
        self.len -= 1;
    }

    fn unlink_granted(&mut self, i: u32) {
        let (mut head, mut tail) = (self.granted_head, self.granted_tail);
        self.unlink_from(i, &mut head, &mut tail);
        (self.granted_head, self.granted_tail) = (head, tail);
    }

    #[inline]
    fn unlink_from(&mut self, i: u32, head: &mut u32, tail: &mut u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        if prev == NIL {
            *head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            *tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }

    /// Recycles granted slots whose owners collected their frame: from the oldest while they
    /// are collected, or (`all`) every one of them.
    fn reclaim(&mut self, grants: &Grants, all: bool) {
        let mut i = self.granted_head;
        while i != NIL {
            let next = self.slots[i as usize].next;
            if grants.collected(i) {
                self.unlink_granted(i);
                // A granted slot's notify was taken by its grant: nothing to drop.
                let _none = self.vacate(grants, i);
            } else if !all {
                break;
            }
            i = next;
        }
    }

    /// Returns slot `i` to the vacant list; its grant word no longer offers a frame. Returns
    /// how the request wanted to be woken, for the caller to drop after unlocking: dropping
    /// a `Waker` may run anything, even drop another request of this allocator, whose
    /// cancel takes the waiter lock.
    #[must_use = "drop the old notify after unlocking"]
    fn vacate(&mut self, grants: &Grants, i: u32) -> Notify {
        let vacant = self.vacant;
        let s = &mut self.slots[i as usize];
        grants.set(i, s.generation, PENDING);
        s.state = State::Vacant;
        let old = std::mem::take(&mut s.notify);
        s.holder = None;
        s.since = None;
        s.prev = NIL;
        s.next = vacant;
        self.vacant = i;
        old
    }

    /// Completes the queued request in `slot` with frame `frame`; returns whom to wake.
    #[inline]
    pub(crate) fn grant(&mut self, grants: &Grants, slot: u32, frame: u32) -> Notify {
        self.unlink(slot);
        self.handoffs += 1;
        let gt = self.granted_tail;
        let s = &mut self.slots[slot as usize];
        s.state = State::Granted(frame);
        s.prev = gt;
        s.next = NIL;
        grants.set(slot, s.generation, frame);
        let notify = std::mem::take(&mut s.notify);
        if gt == NIL {
            self.granted_head = slot;
        } else {
            self.slots[gt as usize].next = slot;
        }
        self.granted_tail = slot;
        notify
    }

    /// Completes the queued request in `slot` without a frame: the vendor returned the
    /// misaligned address `addr` for it. Its owner learns it under the lock (`poll`); returns
    /// whom to wake. The other requests keep their order.
    pub(crate) fn fail(&mut self, grants: &Grants, slot: u32, addr: usize) -> Notify {
        self.unlink(slot);
        let s = &mut self.slots[slot as usize];
        s.state = State::Failed(addr);
        grants.set(slot, s.generation, FAILED);
        std::mem::take(&mut s.notify)
    }

    /// Cancels every queued request (close); returns whom to wake.
    pub(crate) fn cancel_all(&mut self, grants: &Grants) -> Vec<Notify> {
        let mut wake = Vec::with_capacity(self.len as usize);
        while self.head != NIL {
            let i = self.head;
            self.unlink(i);
            let s = &mut self.slots[i as usize];
            s.state = State::Cancelled;
            grants.set(i, s.generation, CANCELLED);
            wake.push(std::mem::take(&mut s.notify));
        }
        wake
    }

    fn live(&self, t: Ticket) -> bool {
        self.slots
            .get(t.slot as usize)
            .is_some_and(|s| s.generation == t.generation && s.state != State::Vacant)
    }

    /// Checks a request. Completed requests (granted or cancelled) release their slot;
    /// a queued one stores `notify` for its wake-up (replacing the previous one unless it
    /// would wake the same task).
    pub(crate) fn poll(
        &mut self,
        grants: &Grants,
        t: Ticket,
        notify: impl FnOnce(&mut Notify),
    ) -> Polled {
        if !self.live(t) {
            // A ticket is only created by `enqueue` and vacated by `poll`/`remove`, both of
            // which consume it; treat a stale one as cancelled rather than panic.
            return Polled::Cancelled;
        }
        let s = &mut self.slots[t.slot as usize];
        match s.state {
            State::Queued => {
                notify(&mut s.notify);
                Polled::Queued
            }
            State::Granted(_) if grants.collected(t.slot) => Polled::Cancelled,
            // A granted or cancelled request's notify was taken by its grant or by close.
            State::Granted(f) => {
                self.unlink_granted(t.slot);
                let _none = self.vacate(grants, t.slot);
                Polled::Granted(f)
            }
            State::Cancelled | State::Vacant => {
                let _none = self.vacate(grants, t.slot);
                Polled::Cancelled
            }
            State::Failed(addr) => {
                let _none = self.vacate(grants, t.slot);
                Polled::Misaligned(addr)
            }
        }
    }

    /// Withdraws a request (its future was dropped or its wait timed out). Returns the frame
    /// if it had already been granted one, which the caller must free again, and the
    /// request's notify, which the caller must drop after unlocking (see `vacate`).
    pub(crate) fn remove(&mut self, grants: &Grants, t: Ticket) -> (Option<u32>, Notify) {
        if !self.live(t) {
            return (None, Notify::None);
        }
        let state = self.slots[t.slot as usize].state;
        match state {
            State::Queued => self.unlink(t.slot),
            // Already taken lock-free: `reclaim` recycles the slot.
            State::Granted(_) if grants.collected(t.slot) => return (None, Notify::None),
            State::Granted(_) => self.unlink_granted(t.slot),
            State::Cancelled | State::Failed(_) | State::Vacant => {}
        }
        let old = self.vacate(grants, t.slot);
        match state {
            State::Granted(f) => (Some(f), old),
            _ => (None, old),
        }
    }
}

/// Stores `waker` unless the stored one already wakes the same task (no clone then).
/// Returns the notify it replaced, for the caller to drop after unlocking (see `vacate`).
#[must_use = "drop the old notify after unlocking"]
pub(crate) fn set_waker(slot: &mut Notify, waker: &Waker) -> Notify {
    if let Notify::Waker(w) = slot {
        if w.will_wake(waker) {
            return Notify::None;
        }
    }
    std::mem::replace(slot, Notify::Waker(waker.clone()))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_grant_and_cancel_keep_order() {
        let g = Grants::new(3);
        let mut q = WaitQueue::new(3);
        let a = q.enqueue(&g, Notify::None, None).unwrap();
        let b = q.enqueue(&g, Notify::None, None).unwrap();
        let c = q.enqueue(&g, Notify::None, None).unwrap();
        assert!(
            q.enqueue(&g, Notify::None, None).is_none(),
            "bounded by capacity"
        );
        // b cancels: a then c keep their order.
        assert_eq!(q.remove(&g, b).0, None);
        assert_eq!(q.front().map(|f| f.0), Some(a.slot));
        q.grant(&g, a.slot, 7);
        assert_eq!(q.front().map(|f| f.0), Some(c.slot));
        assert_eq!(q.poll(&g, a, |_| {}), Polled::Granted(7));
        assert_eq!(q.poll(&g, a, |_| {}), Polled::Cancelled, "stale ticket");
        assert_eq!(g.try_collect(a), None, "taken under the lock already");
        assert_eq!(q.poll(&g, c, |_| {}), Polled::Queued);
        assert_eq!(g.try_collect(c), None, "still queued");
        assert_eq!(q.cancel_all(&g).len(), 1);
        assert_eq!(g.word(c).load(Ordering::Relaxed) & VALUE_MASK, CANCELLED);
        assert_eq!(g.try_collect(c), None, "cancelled: asked under the lock");
        assert_eq!(q.poll(&g, c, |_| {}), Polled::Cancelled);
        assert!(q.is_empty());
        assert_eq!(q.max_len, 3);
        assert_eq!(q.handoffs, 1);
    }

    #[test]
    fn removing_a_granted_request_returns_its_frame() {
        let g = Grants::new(1);
        let mut q = WaitQueue::new(1);
        let a = q.enqueue(&g, Notify::None, None).unwrap();
        q.grant(&g, a.slot, 3);
        assert_eq!(q.remove(&g, a).0, Some(3));
        assert_eq!(g.try_collect(a), None, "removed: nothing to collect");
        assert!(q.enqueue(&g, Notify::None, None).is_some(), "slot recycled");
    }

    #[test]
    fn lock_free_collect_takes_the_grant_once_and_the_slot_is_recycled() {
        let g = Grants::new(2);
        let mut q = WaitQueue::new(2);
        let a = q.enqueue(&g, Notify::None, None).unwrap();
        let b = q.enqueue(&g, Notify::None, None).unwrap();
        assert_eq!(q.enqueue(&g, Notify::None, None), None, "both slots in use");
        q.grant(&g, a.slot, 5);
        q.grant(&g, b.slot, 6);
        // b collects first: a (older, uncollected) blocks the cheap reclaim, the full scan
        // on exhaustion still finds b's slot.
        assert_eq!(g.try_collect(b), Some(6));
        assert_eq!(g.try_collect(b), None, "collected once");
        assert_eq!(
            q.poll(&g, b, |_| {}),
            Polled::Cancelled,
            "not twice under the lock"
        );
        assert_eq!(q.remove(&g, b).0, None);
        let c = q
            .enqueue(&g, Notify::None, None)
            .expect("b's slot recycled");
        assert_eq!(c.slot, b.slot);
        assert_ne!(c.generation, b.generation);
        assert_eq!(g.try_collect(b), None, "stale ticket");
        assert_eq!(g.try_collect(a), Some(5));
        q.grant(&g, c.slot, 1);
        assert_eq!(q.poll(&g, c, |_| {}), Polled::Granted(1), "under the lock");
        assert_eq!(g.try_collect(c), None);
        // a's slot comes back at the next enqueue.
        let d = q.enqueue(&g, Notify::None, None).unwrap();
        let e = q.enqueue(&g, Notify::None, None).unwrap();
        assert!(q.enqueue(&g, Notify::None, None).is_none());
        let mut slots = [d.slot, e.slot];
        slots.sort();
        assert_eq!(slots, [0, 1]);
        assert_eq!(q.len(), 2);
    }
}
