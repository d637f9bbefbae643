//! The lock-free free list: a Treiber stack of frame indices (R. K. Treiber, "Systems
//! Programming: Coping with Parallelism", IBM RJ 5118, 1986) whose whole state lives in one
//! `AtomicU64`, so that allocating is one compare-and-swap and freeing is one
//! compare-and-swap on the uncontended path.
//!
//! # The head word
//!
//! ```text
//!  63            34  33      32       31      16 15      0
//! +----------------+--------+--------+----------+---------+
//! | ABA tag (30 b) | CLOSED | WAITERS| free cnt | top idx |
//! +----------------+--------+--------+----------+---------+
//! ```
//!
//! * `top` is the index of the first free frame (`NIL` = empty); `next[i]` links the rest.
//! * `free cnt` is the number of frames on the stack, so "frames outstanding" is
//!   `capacity - free cnt` without a second counter.
//! * `WAITERS` is set (only under the allocator's waiter lock) while requests are pending.
//!   A free that sees it does not push: it diverts the frame to the oldest waiter. Because the
//!   flag and the stack are one word, "free vs a request enqueuing" needs no Dekker-style
//!   fence: the requester's CAS either pops a frame or sets the flag, and the freer's CAS either
//!   pushes (flag clear) or diverts (flag set), one of them strictly first.
//! * `CLOSED` makes every pop fail; pushes still succeed. The push that brings the free count
//!   back to `capacity` with `CLOSED` set (or the close that finds it there) is the unique
//!   moment at which the allocator may be torn down.
//! * The tag is incremented by every successful CAS, so a stale `(top, next)` pair read by a
//!   preempted popper can never be installed (the ABA problem); 2^30 operations would have to
//!   complete during one preemption for the tag to wrap.
//!
//! A second, tag-free stack (`deferred`) holds frames freed at Dispatch level while requests
//! are pending; the library worker takes it whole with one `swap` (single consumer, so no
//! ABA), see `worker.rs`.

use crate::loom::{AtomicU32, AtomicU64, Ordering};
use crossbeam_utils::{Backoff, CachePadded};

/// Largest number of frames one allocator may have (indices are 16 bits; 0xFFFF is `NIL`).
pub const MAX_FRAMES: u32 = 0xFFFF;

const NIL: u64 = 0xFFFF;
const TOP_MASK: u64 = 0xFFFF;
const COUNT_SHIFT: u32 = 16;
const COUNT_MASK: u64 = 0xFFFF << COUNT_SHIFT;
const WAITERS: u64 = 1 << 32;
const CLOSED: u64 = 1 << 33;
const TAG_SHIFT: u32 = 34;
const TAG_ONE: u64 = 1 << TAG_SHIFT;
/// Bits of the deferred stack head that hold the top index; the rest is unused.
const DEFERRED_NIL: u32 = u32::MAX;

#[inline]
fn top(w: u64) -> u64 {
    w & TOP_MASK
}
#[inline]
fn count(w: u64) -> u32 {
    ((w & COUNT_MASK) >> COUNT_SHIFT) as u32
}
/// `w` with a new top, a count changed by `delta` and the tag bumped (wrapping).
#[inline]
fn with(w: u64, new_top: u64, new_count: u32) -> u64 {
    (w & (WAITERS | CLOSED))
        | (w.wrapping_add(TAG_ONE) & !((1 << TAG_SHIFT) - 1))
        | ((new_count as u64) << COUNT_SHIFT)
        | new_top
}

/// Result of [`FreeList::pop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pop {
    /// A frame index, now exclusively the caller's, and how many frames the pop left free.
    Frame(u32, u32),
    /// No free frame.
    Empty,
    /// The allocator is closed.
    Closed,
}

/// Result of [`FreeList::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// On the stack. `finalize` is true for the unique push that brought every frame home
    /// after close: the caller must tear the allocator down.
    Pushed { finalize: bool },
    /// `WAITERS` was set: the frame was not pushed and still belongs to the caller, who must
    /// hand it to a waiter.
    Diverted,
}

/// Result of [`FreeList::pop_or_wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PopOrWait {
    /// As [`Pop::Frame`].
    Frame(u32, u32),
    /// No frame: `WAITERS` is now set.
    Wait,
    Closed,
}

#[derive(Debug)]
pub(crate) struct FreeList {
    head: CachePadded<AtomicU64>,
    /// Top of the deferred stack (`DEFERRED_NIL` = empty).
    deferred: CachePadded<AtomicU32>,
    /// `next[i]`: the index below `i` on whichever stack `i` is on. A frame is on at most one
    /// stack at a time, so the two stacks share the links.
    next: Box<[AtomicU32]>,
    capacity: u32,
}

impl FreeList {
    /// A full stack of `capacity` frames (0 on top). `capacity` must be `1..=MAX_FRAMES`.
    pub(crate) fn new(capacity: u32) -> FreeList {
        debug_assert!((1..=MAX_FRAMES).contains(&capacity));
        let next = (0..capacity)
            .map(|i| AtomicU32::new(if i + 1 == capacity { NIL as u32 } else { i + 1 }))
            .collect();
        FreeList {
            head: CachePadded::new(AtomicU64::new((capacity as u64) << COUNT_SHIFT)),
            deferred: CachePadded::new(AtomicU32::new(DEFERRED_NIL)),
            next,
            capacity,
        }
    }

    #[inline(always)]
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Takes a free frame. Never blocks, never allocates; one CAS when uncontended.
    #[inline]
    pub(crate) fn pop(&self) -> Pop {
        // Acquire: pairs with the Release half of the AcqRel CAS in `push`, so the `next`
        // link written before that push (and the frame bytes written by the previous holder)
        // are visible here.
        let mut cur = self.head.load(Ordering::Acquire);
        let backoff = Backoff::new();
        loop {
            if cur & CLOSED != 0 {
                return Pop::Closed;
            }
            let t = top(cur);
            if t == NIL {
                return Pop::Empty;
            }
            // Relaxed: ordered by the Acquire load/CAS failure of `cur` above (the link was
            // written before the Release push that installed `t`). If `t` was popped and
            // re-pushed since, the value may be stale, but then the tag has moved and the CAS
            // below fails.
            let n = self.next[t as usize].load(Ordering::Relaxed) as u64;
            let left = count(cur) - 1;
            let new = with(cur, n, left);
            // Acquire on success: see the load above. Acquire on failure: we read `next`
            // of the new top next time round.
            match self
                .head
                .compare_exchange_weak(cur, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Pop::Frame(t as u32, left),
                Err(actual) => {
                    // Contended: back off before retrying so that two threads do not keep
                    // stealing the line from each other (crossbeam's `Backoff`).
                    backoff.spin();
                    cur = actual;
                }
            }
        }
    }

    /// Returns frame `index` (owned by the caller). If `WAITERS` is set and `divert` is true,
    /// does not push and returns `Diverted`.
    #[inline]
    pub(crate) fn push(&self, index: u32, divert: bool) -> Push {
        // Relaxed: the value only seeds the CAS loop; the CAS itself carries the ordering.
        let mut cur = self.head.load(Ordering::Relaxed);
        let backoff = Backoff::new();
        loop {
            if divert && cur & WAITERS != 0 {
                return Push::Diverted;
            }
            // Relaxed (both): published by the Release CAS below; `index` is ours until then.
            // The link is written only if it changes: a frame freed onto the top it was taken
            // from (the common one-thread case) then costs no store, and a store ahead of the
            // CAS would have to drain from the store buffer before the locked instruction.
            let link = &self.next[index as usize];
            if link.load(Ordering::Relaxed) != top(cur) as u32 {
                link.store(top(cur) as u32, Ordering::Relaxed);
            }
            let c = count(cur) + 1;
            let new = with(cur, index as u64, c);
            // Release: publishes the link and everything the holder wrote to the frame to the
            // next popper (its Acquire). Acquire: the finalizing push must see every earlier
            // push (release sequence on `head`) before tearing down, e.g. vendor `free` calls.
            match self
                .head
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Push::Pushed {
                        finalize: cur & CLOSED != 0 && c == self.capacity,
                    }
                }
                Err(actual) => {
                    backoff.spin();
                    cur = actual;
                }
            }
        }
    }

    /// Under the waiter lock: pops a frame, or (if none) sets `WAITERS` — atomically, so a
    /// concurrent free either is seen by the pop or sees the flag.
    pub(crate) fn pop_or_wait(&self) -> PopOrWait {
        // Acquire: as in `pop`.
        let mut cur = self.head.load(Ordering::Acquire);
        loop {
            if cur & CLOSED != 0 {
                return PopOrWait::Closed;
            }
            let t = top(cur);
            let (new, res) = if t == NIL {
                (cur | WAITERS, PopOrWait::Wait)
            } else {
                // Relaxed: as in `pop`.
                let n = self.next[t as usize].load(Ordering::Relaxed) as u64;
                let left = count(cur) - 1;
                (with(cur, n, left), PopOrWait::Frame(t as u32, left))
            };
            // AcqRel: Acquire as in `pop`; Release so that a freer which sees WAITERS (its
            // Relaxed load then its CAS failure/success chain) sees the waiter entry written
            // under the lock before we set the flag... the freer takes the lock anyway, so
            // this is belt and braces.
            match self
                .head
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return res,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Sets `WAITERS` regardless of the stack (under the waiter lock; used when a vendor
    /// allocator had no memory although slots were free).
    pub(crate) fn set_waiters(&self) {
        // AcqRel: an RMW under the waiter lock; ordering as in `pop_or_wait`.
        self.head.fetch_or(WAITERS, Ordering::AcqRel);
    }

    /// Clears `WAITERS` (under the waiter lock, when the queue became empty).
    pub(crate) fn clear_waiters(&self) {
        // AcqRel: pairs with freers' CAS on `head`; after this, frees push again.
        self.head.fetch_and(!WAITERS, Ordering::AcqRel);
    }

    /// Sets `CLOSED` and clears `WAITERS`. Returns `(was_closed, finalize)`: `finalize` is
    /// true if this call closed the list and every frame was already home.
    pub(crate) fn close(&self) -> (bool, bool) {
        // AcqRel: Acquire so that, if we finalize, every earlier push happened-before; Release
        // so that poppers failing with Closed see the close.
        let prev = self.head.fetch_or(CLOSED, Ordering::AcqRel);
        // AcqRel: as above (called under the waiter lock; the queue is being emptied).
        self.head.fetch_and(!WAITERS, Ordering::AcqRel);
        let was = prev & CLOSED != 0;
        (was, !was && count(prev) == self.capacity)
    }

    /// Frames currently on the stack (a snapshot).
    #[inline(always)]
    pub(crate) fn free_count(&self) -> u32 {
        // Relaxed: a statistics snapshot; no data is read based on it.
        count(self.head.load(Ordering::Relaxed))
    }

    /// Marks in `free` (indexed by frame, `capacity` long, all `false` on entry) the frames on
    /// the stack, for diagnostics. Returns whether the snapshot is exact: the walk is retried
    /// while pushes or pops interleave with it (every successful CAS changes the tag, so an
    /// unchanged head word means the links walked were those of one instant); after a few
    /// retries it returns its last, best-effort walk.
    pub(crate) fn snapshot_free(&self, free: &mut [bool]) -> bool {
        const TRIES: usize = 8;
        for attempt in 0..TRIES {
            free.iter_mut().for_each(|f| *f = false);
            // Acquire: pairs with the pushes' Release, so the links of the frames on the
            // stack at this instant are visible.
            let w = self.head.load(Ordering::Acquire);
            let mut t = top(w);
            // At most `count` links: a concurrent change can make a stale walk cycle.
            for _ in 0..count(w) {
                let Some(f) = free.get_mut(t as usize) else {
                    break;
                };
                *f = true;
                // Relaxed: ordered by the Acquire load of `w` (see `pop`).
                t = self.next[t as usize].load(Ordering::Relaxed) as u64;
            }
            // Acquire: the links read above happen-before this load, and an unchanged word
            // means no CAS (hence no link change of a stacked frame) happened in between.
            if self.head.load(Ordering::Acquire) == w {
                return true;
            }
            if attempt + 1 < TRIES {
                std::hint::spin_loop();
            }
        }
        false
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        // Acquire: callers use it to refuse new work after close.
        self.head.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Pushes `index` on the deferred stack. Returns true if the stack was empty before.
    pub(crate) fn push_deferred(&self, index: u32) -> bool {
        // Relaxed: seeds the CAS.
        let mut cur = self.deferred.load(Ordering::Relaxed);
        loop {
            // Relaxed: published by the Release CAS below.
            self.next[index as usize].store(cur, Ordering::Relaxed);
            // Release: pairs with the Acquire swap in `take_deferred`.
            match self.deferred.compare_exchange_weak(
                cur,
                index,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return cur == DEFERRED_NIL,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Takes the whole deferred stack (single consumer: the worker), calling `f` on each
    /// index, most recent first.
    pub(crate) fn take_deferred(&self, mut f: impl FnMut(u32)) {
        // Acquire: pairs with the Release CAS of every `push_deferred` in the chain.
        let mut cur = self.deferred.swap(DEFERRED_NIL, Ordering::Acquire);
        while cur != DEFERRED_NIL {
            // Relaxed: ordered by the Acquire swap; `cur` is ours now (popped as a batch), so
            // read the link before `f` reuses it.
            let n = self.next[cur as usize].load(Ordering::Relaxed);
            f(cur);
            cur = n;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn pops_every_frame_once_then_empty() {
        let l = FreeList::new(3);
        let mut got = vec![];
        while let Pop::Frame(i, _) = l.pop() {
            got.push(i);
        }
        got.sort();
        assert_eq!(got, vec![0, 1, 2]);
        assert_eq!(l.pop(), Pop::Empty);
        assert_eq!(l.free_count(), 0);
        assert_eq!(l.push(1, true), Push::Pushed { finalize: false });
        assert_eq!(l.free_count(), 1);
        assert_eq!(l.pop(), Pop::Frame(1, 0));
    }

    #[test]
    fn snapshot_lists_exactly_the_stacked_frames() {
        let l = FreeList::new(5);
        let mut taken = vec![];
        for _ in 0..3 {
            let Pop::Frame(i, _) = l.pop() else {
                panic!("expected a frame")
            };
            taken.push(i);
        }
        l.push(taken[1], true);
        let mut free = vec![false; 5];
        assert!(l.snapshot_free(&mut free));
        let stacked: Vec<u32> = (0..5).filter(|&i| free[i as usize]).collect();
        let mut want: Vec<u32> = (0..5)
            .filter(|i| *i == taken[1] || !taken.contains(i))
            .collect();
        want.sort();
        assert_eq!(stacked, want);
    }

    #[test]
    fn push_onto_the_same_top_keeps_the_link() {
        let l = FreeList::new(3);
        assert_eq!(l.pop(), Pop::Frame(0, 2));
        // Frame 0 goes back on top of 1, which is where its link already points.
        l.push(0, true);
        assert_eq!(l.pop(), Pop::Frame(0, 2));
        assert_eq!(l.pop(), Pop::Frame(1, 1));
        // Now 0 goes on top of 2: the link must change.
        l.push(0, true);
        assert_eq!(l.pop(), Pop::Frame(0, 1));
        assert_eq!(l.pop(), Pop::Frame(2, 0));
        assert_eq!(l.pop(), Pop::Empty);
    }

    #[test]
    fn waiters_flag_diverts_pushes() {
        let l = FreeList::new(1);
        assert_eq!(l.pop_or_wait(), PopOrWait::Frame(0, 0));
        assert_eq!(l.pop_or_wait(), PopOrWait::Wait);
        assert_eq!(l.push(0, true), Push::Diverted);
        assert_eq!(l.free_count(), 0);
        l.clear_waiters();
        assert_eq!(l.push(0, true), Push::Pushed { finalize: false });
    }

    #[test]
    fn close_finalizes_exactly_once() {
        let l = FreeList::new(2);
        let a = l.pop();
        assert_eq!(l.close(), (false, false));
        assert_eq!(l.close(), (true, false));
        assert_eq!(l.pop(), Pop::Closed);
        let Pop::Frame(a, _) = a else {
            panic!("expected a frame")
        };
        assert_eq!(l.push(a, true), Push::Pushed { finalize: true });

        let l = FreeList::new(1);
        assert_eq!(l.close(), (false, true));
    }

    #[test]
    fn deferred_stack_takes_all() {
        let l = FreeList::new(4);
        for _ in 0..4 {
            assert!(matches!(l.pop(), Pop::Frame(..)));
        }
        assert!(l.push_deferred(2));
        assert!(!l.push_deferred(0));
        let mut got = vec![];
        l.take_deferred(|i| got.push(i));
        assert_eq!(got, vec![0, 2]);
        l.take_deferred(|_| panic!("empty"));
    }

    #[test]
    fn tag_wraps_without_touching_flags() {
        let w = (0x3FFF_FFFFu64 << TAG_SHIFT) | CLOSED | WAITERS | (5 << COUNT_SHIFT) | 3;
        let n = with(w, 7, 4);
        assert_eq!(n >> TAG_SHIFT, 0);
        assert_eq!(n & (CLOSED | WAITERS), CLOSED | WAITERS);
        assert_eq!(count(n), 4);
        assert_eq!(top(n), 7);
    }
}
