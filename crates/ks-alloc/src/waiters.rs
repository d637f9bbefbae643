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
//! reference-count increment for every common executor) or a `Thread` handle. A request beyond
//! `max_waiters` is refused with `STATUS_INSUFFICIENT_RESOURCES` naming the bound.
//!
//! A ticket `(slot, generation)` names a request; the generation makes a stale ticket (one
//! whose slot has been recycled) harmless.

use std::task::Waker;
use std::thread::Thread;
use std::time::Instant;

use crate::frame::Holder;

const NIL: u32 = u32::MAX;

/// How a waiter wants to be told its request completed.
#[derive(Debug, Default)]
pub(crate) enum Notify {
    #[default]
    None,
    Waker(Waker),
    Thread(Thread),
}

impl Notify {
    pub(crate) fn wake(self) {
        match self {
            Notify::None => {}
            Notify::Waker(w) => w.wake(),
            Notify::Thread(t) => t.unpark(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Vacant,
    Queued,
    /// Completed with this frame index (already claimed for the waiter).
    Granted(u32),
    Cancelled,
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
    Queued,
}

#[derive(Debug)]
pub(crate) struct WaitQueue {
    slots: Box<[Slot]>,
    head: u32,
    tail: u32,
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
        notify: Notify,
        holder: Option<&'static Holder>,
    ) -> Option<Ticket> {
        let i = self.vacant;
        if i == NIL {
            return None;
        }
        let tail = self.tail;
        let s = &mut self.slots[i as usize];
        self.vacant = s.next;
        s.generation = s.generation.wrapping_add(1);
        s.state = State::Queued;
        s.notify = notify;
        s.holder = holder;
        s.since = Some(Instant::now());
        s.prev = tail;
        s.next = NIL;
        let ticket = Ticket {
            slot: i,
            generation: s.generation,
        };
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
    pub(crate) fn front(&self) -> Option<(u32, Option<&'static Holder>)> {
        (self.head != NIL).then(|| (self.head, self.slots[self.head as usize].holder))
    }

    /// When the oldest request was queued.
    pub(crate) fn oldest_since(&self) -> Option<Instant> {
        (self.head != NIL)
            .then(|| self.slots[self.head as usize].since)
            .flatten()
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        self.len -= 1;
    }

    fn vacate(&mut self, i: u32) {
        let vacant = self.vacant;
        let s = &mut self.slots[i as usize];
        s.state = State::Vacant;
        s.notify = Notify::None;
        s.holder = None;
        s.since = None;
        s.prev = NIL;
        s.next = vacant;
        self.vacant = i;
    }

    /// Completes the queued request in `slot` with frame `frame`; returns whom to wake.
    pub(crate) fn grant(&mut self, slot: u32, frame: u32) -> Notify {
        self.unlink(slot);
        self.handoffs += 1;
        let s = &mut self.slots[slot as usize];
        s.state = State::Granted(frame);
        std::mem::take(&mut s.notify)
    }

    /// Cancels every queued request (close); returns whom to wake.
    pub(crate) fn cancel_all(&mut self) -> Vec<Notify> {
        let mut wake = Vec::with_capacity(self.len as usize);
        while self.head != NIL {
            let i = self.head;
            self.unlink(i);
            let s = &mut self.slots[i as usize];
            s.state = State::Cancelled;
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
    pub(crate) fn poll(&mut self, t: Ticket, notify: impl FnOnce(&mut Notify)) -> Polled {
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
            State::Granted(f) => {
                self.vacate(t.slot);
                Polled::Granted(f)
            }
            State::Cancelled | State::Vacant => {
                self.vacate(t.slot);
                Polled::Cancelled
            }
        }
    }

    /// Withdraws a request (its future was dropped or its wait timed out). Returns the frame
    /// if it had already been granted one, which the caller must free again.
    pub(crate) fn remove(&mut self, t: Ticket) -> Option<u32> {
        if !self.live(t) {
            return None;
        }
        let state = self.slots[t.slot as usize].state;
        if state == State::Queued {
            self.unlink(t.slot);
        }
        self.vacate(t.slot);
        match state {
            State::Granted(f) => Some(f),
            _ => None,
        }
    }
}

/// Stores `waker` unless the stored one already wakes the same task (no clone then).
pub(crate) fn set_waker(slot: &mut Notify, waker: &Waker) {
    if let Notify::Waker(w) = slot {
        if w.will_wake(waker) {
            return;
        }
    }
    *slot = Notify::Waker(waker.clone());
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_grant_and_cancel_keep_order() {
        let mut q = WaitQueue::new(3);
        let a = q.enqueue(Notify::None, None).unwrap();
        let b = q.enqueue(Notify::None, None).unwrap();
        let c = q.enqueue(Notify::None, None).unwrap();
        assert!(
            q.enqueue(Notify::None, None).is_none(),
            "bounded by capacity"
        );
        // b cancels: a then c keep their order.
        assert_eq!(q.remove(b), None);
        assert_eq!(q.front().map(|f| f.0), Some(a.slot));
        q.grant(a.slot, 7);
        assert_eq!(q.front().map(|f| f.0), Some(c.slot));
        assert_eq!(q.poll(a, |_| {}), Polled::Granted(7));
        assert_eq!(q.poll(a, |_| {}), Polled::Cancelled, "stale ticket");
        assert_eq!(q.poll(c, |_| {}), Polled::Queued);
        assert_eq!(q.cancel_all().len(), 1);
        assert_eq!(q.poll(c, |_| {}), Polled::Cancelled);
        assert!(q.is_empty());
        assert_eq!(q.max_len, 3);
        assert_eq!(q.handoffs, 1);
    }

    #[test]
    fn removing_a_granted_request_returns_its_frame() {
        let mut q = WaitQueue::new(1);
        let a = q.enqueue(Notify::None, None).unwrap();
        q.grant(a.slot, 3);
        assert_eq!(q.remove(a), Some(3));
        assert!(q.enqueue(Notify::None, None).is_some(), "slot recycled");
    }
}
