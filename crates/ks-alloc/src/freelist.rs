//! The lock-free free list: a bitmap of free frames, whose words also carry the flags that
//! make "free vs a request enqueuing" and "close vs the last free" single-word races.
//!
//! # The words
//!
//! Frame `i` is bit `i % 32` of word `i / 32`. Word 0 also counts every free frame, so
//! "frames free" is one load and the peak check after a pop needs no population count (the
//! baseline x86-64 target has no `popcnt` instruction: counting in software cost about 0.7 ns
//! per allocation).
//!
//! ```text
//!          63       62        61 .. 48   47 .. 32           31 .. 0
//!         +--------+---------+----------+------------------+---------------------+
//! word 0  | CLOSED | WAITERS |    0     | frames free (all)| frames 0..=31 free  |
//! word s  | CLOSED | WAITERS |    0     |        0         | frames 32s..32s+31  |
//!         +--------+---------+----------+------------------+---------------------+
//! ```
//!
//! * **Allocating** loads a word and clears its lowest set bit with one compare-and-swap;
//!   **freeing** sets the bit with one compare-and-swap. No link is read or written (a Treiber
//!   stack's pop reads `next[top]`, a load that depends on the head), and a bitmap has no ABA
//!   problem: the new value is a function of the value the CAS compares against, so a word
//!   that changed and changed back is still correctly updated. Word 0's frames update the
//!   count in the same CAS; frames of other words cost one more RMW (on word 0's count), made
//!   while the caller owns the frame, so the count is never below the true number of free
//!   frames, and exact whenever no such operation is in flight.
//! * `WAITERS` is set (under the allocator's waiter lock) on every word while requests are
//!   pending, and may stay set after the last one was served, until the next free clears it
//!   under the lock ([`FreeList::clear_waiters`]). A free that sees it in its frame's word does
//!   not set the bit: it diverts the frame to the oldest waiter, if there is one. Because the
//!   flag and the bits are one word, the requester's CAS either takes a bit or sets the flag,
//!   and the freer's CAS either sets the bit (flag clear) or diverts (flag set), one of them
//!   strictly first. A requester flags the words one
//!   after another under the lock; a frame freed into a word it has not flagged yet is found
//!   by its scan (`pop_or_wait`).
//! * `CLOSED` makes every pop fail; frees still succeed. A word is *home* when it is closed
//!   and every one of its frames is free; the RMW that makes a word home (a free, or the close
//!   itself) is unique, and decrements `live`, the number of words not yet home. The one that
//!   takes `live` to 0 is the unique moment at which the allocator may be torn down. Until a
//!   thread has made its own decrement `live` is at least 1, so a freer may still touch the
//!   list after its CAS if (and only if) that CAS made its word home.
//! * **The free hint.** A pop returns, with the frame, the value its CAS left in the word
//!   ([`Taken::hint`]), and the RAII [`Frame`](crate::Frame) carries it back to its free, which
//!   first tries one CAS from that value without loading the word ([`FreeList::try_push_hinted`]):
//!   when nothing else touched the word meanwhile (one thread allocating and freeing), freeing
//!   is one CAS and nothing else, like a `fetch_or`, and small enough for the `Frame`'s drop
//!   glue to be inlined where the frame is dropped. Any hint is safe: the CAS succeeds only if
//!   the word is exactly the hint, which has no flag set (checked) and, the frame being ours,
//!   not its bit. If it fails, nothing happened, and the free takes the full path
//!   ([`FreeList::push`]: load, flags, CAS).
//! * **Contention.** A CAS lost to another thread is followed by a pause of
//!   `CONTENDED_SPINS` spin-loop hints before the retry (then crossbeam's exponential
//!   `Backoff`). Measured with two threads allocating and freeing: with crossbeam's first
//!   step (one hint) the threads keep colliding (2 % of CASes lost, 35 ns per cycle); with 64,
//!   the winner runs on while the loser waits (0.3 % lost, 22 ns), see BENCHMARKS.md (a).
//!
//! A second, lock-free stack (`deferred`) holds frames freed at Dispatch level while requests
//! are pending; the library worker takes it whole with one `swap` (single consumer, so no
//! ABA), see `worker.rs`.

use crate::loom::{AtomicU32, AtomicU64, Ordering};
use crossbeam_utils::{Backoff, CachePadded};

/// Largest number of frames one allocator may have (the free count is a 16-bit field, and
/// slot indices travel in 16-bit fields of the waiter grant words).
///
/// ```
/// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType, Status, MAX_FRAMES};
/// assert_eq!(MAX_FRAMES, 65535);
/// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let too_many = Framing { frames: MAX_FRAMES + 1, ..framing };
/// assert!(matches!(Allocator::new(&too_many, Memory::Paged), Err(Status::InvalidParameter(_))));
/// ```
pub const MAX_FRAMES: u32 = 0xFFFF;

const WAITERS: u64 = 1 << 62;
const CLOSED: u64 = 1 << 63;
/// Frames per word.
const SHIFT: u32 = 5;
const BITS: u64 = (1 << (1 << SHIFT)) - 1;
const COUNT_SHIFT: u32 = 32;
const COUNT_ONE: u64 = 1 << COUNT_SHIFT;
const COUNT_MASK: u64 = 0xFFFF << COUNT_SHIFT;
const DEFERRED_NIL: u32 = u32::MAX;
/// A free hint that is never right (frames that did not come from `pop_hinted`): the free
/// loads the word instead.
pub(crate) const NO_HINT: u64 = u64::MAX;

/// Spin-loop hints after a CAS lost to another thread (see the module docs).
const CONTENDED_SPINS: u32 = 64;

/// Pauses after a CAS lost to another thread, before the retry.
#[inline(never)]
#[cold]
fn contended() {
    for _ in 0..CONTENDED_SPINS {
        std::hint::spin_loop();
    }
}

/// Eight words (1.. of the list), aligned to a cache line so that they share no line with
/// other data.
#[repr(align(64))]
#[derive(Debug)]
struct Line([AtomicU64; 8]);

/// Result of [`FreeList::pop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pop {
    /// A frame index, now exclusively the caller's, and the frames left free.
    Frame(u32, u32),
    /// No free frame.
    Empty,
    /// The allocator is closed.
    Closed,
}

/// A frame taken by [`FreeList::pop_hinted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken {
    /// The frame index, now exclusively the caller's.
    pub(crate) index: u32,
    /// Frames left free.
    pub(crate) left: u32,
    /// The value the pop's CAS left in the frame's word: where its free starts (see the
    /// module docs).
    pub(crate) hint: u64,
}

impl Taken {
    /// `index` of a pop that found no free frame (never a frame index: `MAX_FRAMES` < this).
    const EMPTY: u32 = u32::MAX;
    /// `index` of a pop that found the list closed.
    const CLOSED: u32 = u32::MAX - 1;

    #[inline(always)]
    fn failed(index: u32) -> Wire {
        Taken {
            index,
            left: 0,
            hint: NO_HINT,
        }
        .wire()
    }

    /// The form that crosses the non-inlined `pop_scan` (see [`Wire`]).
    #[inline(always)]
    fn wire(self) -> Wire {
        Wire {
            index_left: u64::from(self.index) | u64::from(self.left) << 32,
            hint: self.hint,
        }
    }
}

/// A [`Taken`] as two `u64`s: a scalar pair, which the Rust ABI returns in two registers.
/// `Taken`'s three fields make it an aggregate, returned through memory by the non-inlined
/// `pop_scan`; the allocation's fast path, merged with that return, then went through memory
/// too (three stores and two reloads on every allocation, seen in the bench's machine code;
/// the time they cost is below what the (a) bench can resolve).
#[derive(Clone, Copy)]
struct Wire {
    /// `index` in the low half, `left` in the high half.
    index_left: u64,
    hint: u64,
}

impl Wire {
    #[inline(always)]
    fn taken(self) -> Taken {
        Taken {
            index: self.index_left as u32,
            left: (self.index_left >> 32) as u32,
            hint: self.hint,
        }
    }
}

/// Why [`FreeList::pop_hinted`] returned no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoFrame {
    /// No free frame.
    Empty,
    /// The allocator is closed.
    Closed,
}

/// Result of [`FreeList::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// On the list. `finalize` is true for the unique push that brought every frame home
    /// after close: the caller must tear the allocator down.
    Pushed { finalize: bool },
    /// `WAITERS` was set: the frame was not pushed and still belongs to the caller, who must
    /// hand it to a waiter.
    Diverted,
}

/// Result of [`FreeList::pop_or_wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PopOrWait {
    /// A frame index and the frames left free.
    Frame(u32, u32),
    /// No frame: `WAITERS` is now set on every word. `flagged`: this call set it on word 0
    /// (it was clear), so frames cached by threads must now be drained (`cache.rs`).
    Wait {
        flagged: bool,
    },
    Closed,
}

#[derive(Debug)]
pub(crate) struct FreeList {
    /// Word 0 (frames 0..32 and the free count).
    first: CachePadded<AtomicU64>,
    /// Words 1.. (none for 32 frames or fewer).
    lines: Box<[Line]>,
    words: u32,
    capacity: u32,
    /// Words not yet home (closed with every frame free); see the module docs.
    live: AtomicU32,
    /// Top of the deferred stack (`DEFERRED_NIL` = empty).
    deferred: CachePadded<AtomicU32>,
    /// `next[i]`: the index below `i` on the deferred stack.
    next: Box<[AtomicU32]>,
}

impl FreeList {
    /// A list with all `capacity` frames free. `capacity` must be `1..=MAX_FRAMES`.
    pub(crate) fn new(capacity: u32) -> FreeList {
        debug_assert!((1..=MAX_FRAMES).contains(&capacity));
        let words = capacity.div_ceil(1 << SHIFT);
        let lines = (0..(words - 1).div_ceil(8))
            .map(|l| {
                Line(std::array::from_fn(|k| {
                    let s = 1 + l * 8 + k as u32;
                    AtomicU64::new(if s < words { full(capacity, s) } else { 0 })
                }))
            })
            .collect();
        FreeList {
            first: CachePadded::new(AtomicU64::new(
                full(capacity, 0) | (u64::from(capacity) << COUNT_SHIFT),
            )),
            lines,
            words,
            capacity,
            live: AtomicU32::new(words),
            deferred: CachePadded::new(AtomicU32::new(DEFERRED_NIL)),
            next: (0..capacity)
                .map(|_| AtomicU32::new(DEFERRED_NIL))
                .collect(),
        }
    }

    #[inline(always)]
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Word `s`: word 0 inline (the hot one), the others in `lines`.
    #[inline(always)]
    fn word(&self, s: u32) -> &AtomicU64 {
        match s.checked_sub(1) {
            None => &self.first,
            Some(t) => &self.lines[(t / 8) as usize].0[(t % 8) as usize],
        }
    }

    /// The bits of word `s` when all its frames are free.
    #[inline(always)]
    fn full(&self, s: u32) -> u64 {
        full(self.capacity, s)
    }

    /// Takes a free frame. Never blocks, never allocates; one CAS when uncontended.
    #[inline(always)]
    pub(crate) fn pop(&self) -> Pop {
        match self.pop_hinted() {
            Ok(t) => Pop::Frame(t.index, t.left),
            Err(NoFrame::Empty) => Pop::Empty,
            Err(NoFrame::Closed) => Pop::Closed,
        }
    }

    /// [`pop`](Self::pop), also returning the free hint.
    #[inline(always)]
    pub(crate) fn pop_hinted(&self) -> Result<Taken, NoFrame> {
        let t = self.pop_raw().taken();
        match t.index {
            Taken::EMPTY => Err(NoFrame::Empty),
            Taken::CLOSED => Err(NoFrame::Closed),
            _ => Ok(t),
        }
    }

    /// `pop_hinted` with the failures as sentinel indices, as a [`Wire`], so that the result
    /// travels in two registers, also out of the non-inlined `pop_scan`: a `Result` of it
    /// would be returned through memory, and the fast path merged with it would go through
    /// memory too (a store and a dependent reload on every allocation).
    #[inline(always)]
    fn pop_raw(&self) -> Wire {
        // The common case inline: word 0 has a free frame and the CAS wins.
        // Relaxed: the value only seeds the CAS, which carries the ordering.
        let cur = self.first.load(Ordering::Relaxed);
        if cur & CLOSED == 0 && cur & BITS != 0 {
            let new = (cur & (cur - 1)) - COUNT_ONE;
            // Acquire on success: pairs with the Release of the push that freed the frame, so
            // everything its previous holder wrote is visible to us. Relaxed on failure: the
            // value only seeds the retry.
            match self
                .first
                .compare_exchange_weak(cur, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Taken {
                        index: cur.trailing_zeros(),
                        left: free_in(new),
                        hint: new,
                    }
                    .wire();
                }
                Err(actual) => return self.pop_scan(actual, true),
            }
        }
        self.pop_scan(cur, false)
    }

    /// `pop` past its first attempt: every word in turn, with back-off under contention.
    /// `first` is word 0's value as last seen (`lost`: by a failed CAS), so that a contended
    /// retry does not reload the line.
    #[inline(never)]
    fn pop_scan(&self, first: u64, lost: bool) -> Wire {
        for s in 0..self.words {
            let w = self.word(s);
            let backoff = Backoff::new();
            let mut cur = if s == 0 {
                if lost {
                    contended();
                }
                first
            } else {
                // Relaxed: seeds the CAS.
                w.load(Ordering::Relaxed)
            };
            loop {
                if cur & CLOSED != 0 {
                    return Taken::failed(Taken::CLOSED);
                }
                if cur & BITS == 0 {
                    break;
                }
                let (new, left) = self.take_lowest(s, cur);
                // Acquire / Relaxed: as in `pop`.
                match w.compare_exchange_weak(cur, new, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => {
                        return Taken {
                            index: (s << SHIFT) | cur.trailing_zeros(),
                            left: left(),
                            hint: new,
                        }
                        .wire();
                    }
                    Err(actual) => {
                        // Contended: back off before retrying so that two threads do not keep
                        // stealing the line from each other (crossbeam's `Backoff`).
                        backoff.spin();
                        cur = actual;
                    }
                }
            }
        }
        Taken::failed(Taken::EMPTY)
    }

    /// For word `s` holding `cur` (with a free bit): the word without its lowest free bit,
    /// and (to call once that CAS won) what updates the free count and returns it.
    #[inline(always)]
    fn take_lowest(&self, s: u32, cur: u64) -> (u64, impl FnOnce() -> u32 + '_) {
        // Word 0 counts every free frame, so its own frames are counted in the same CAS.
        let new = if s == 0 {
            (cur & (cur - 1)) - COUNT_ONE
        } else {
            cur & (cur - 1)
        };
        (new, move || {
            if s == 0 {
                free_in(new)
            } else {
                // Relaxed: the count is a statistic; the frame is ordered by the word's CAS.
                // We own the frame, so the list is alive.
                free_in(self.first.fetch_sub(COUNT_ONE, Ordering::Relaxed)) - 1
            }
        })
    }

    /// Returns frame `index` (owned by the caller), for a caller that keeps the list alive
    /// past the call (it holds a handle, or the waiter lock with requests pending). The free
    /// paths, after which the allocator may be torn down at once, use
    /// [`push_ptr`](Self::push_ptr).
    #[inline(always)]
    pub(crate) fn push(&self, index: u32, divert: bool) -> Push {
        // SAFETY: `self` is alive now, and the caller keeps it alive.
        unsafe { FreeList::push_ptr(self, index, divert) }
    }

    /// Returns frame `index` (owned by the caller). If `WAITERS` is set on its word and
    /// `divert` is true, does not push and returns `Diverted`.
    ///
    /// Once the frame is home, another thread's free may bring the last frame home after
    /// close and tear the list down, so past its CAS this touches only the word it changed
    /// (an atomic, which may be freed under a live reference). Hence a pointer, not `&self`:
    /// a `&self` argument would count as borrowed until the return, and memory may not be
    /// freed under it (Stacked and Tree Borrows).
    ///
    /// # Safety
    /// `this` is alive when called.
    #[inline(always)]
    pub(crate) unsafe fn push_ptr(this: *const FreeList, index: u32, divert: bool) -> Push {
        // SAFETY: alive on entry (caller); a local, not used after the release point.
        let list = unsafe { &*this };
        // The common case inline: a frame of word 0, no flag set, and the CAS wins.
        if index < (1 << SHIFT) {
            let first: &AtomicU64 = &list.first;
            // Relaxed: the value only seeds the CAS, which carries the ordering.
            let cur = first.load(Ordering::Relaxed);
            if cur & (WAITERS | CLOSED) == 0 {
                // Release: publishes everything the holder wrote to the frame to the next
                // popper (its Acquire). Relaxed on failure: the slow path retries.
                return match first.compare_exchange_weak(
                    cur,
                    (cur | (1 << index)) + COUNT_ONE,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        #[cfg(all(test, not(loom)))]
                        crate::test_hooks::reach(crate::test_hooks::Point::FrameFree);
                        Push::Pushed { finalize: false }
                    }
                    // SAFETY: the frame is still ours, so the list is alive.
                    Err(actual) => unsafe {
                        FreeList::push_slow(this, index, divert, Some(actual), true)
                    },
                };
            }
            // SAFETY: as above.
            return unsafe { FreeList::push_slow(this, index, divert, Some(cur), false) };
        }
        // SAFETY: as above.
        unsafe { FreeList::push_slow(this, index, divert, None, false) }
    }

    /// One CAS from `hint` (see the module docs), for a frame of word 0 when the hint shows
    /// no flag: true if it won. It then did not bring the last frame home after close
    /// (`CLOSED` was clear), so there is nothing more to do. If false, nothing happened and
    /// the caller still owns the frame (then [`push`](Self::push) it). Small on purpose: it
    /// is the whole free of a `Frame` on the fast path, inlined into the drop glue.
    ///
    /// # Safety
    /// As [`push_ptr`](Self::push_ptr), and for the same reason a pointer.
    #[inline(always)]
    pub(crate) unsafe fn try_push_hinted(this: *const FreeList, index: u32, hint: u64) -> bool {
        let bit = 1u64 << (index & 63);
        if index >= (1 << SHIFT) || hint & (WAITERS | CLOSED | bit) != 0 {
            return false;
        }
        // SAFETY: alive on entry (caller); only the atomic is used after the CAS.
        let first: &AtomicU64 = unsafe { &(*this).first };
        // Release: as in `push`. Relaxed on failure: nothing was done.
        let won = first
            .compare_exchange_weak(
                hint,
                (hint | bit) + COUNT_ONE,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok();
        #[cfg(all(test, not(loom)))]
        if won {
            crate::test_hooks::reach(crate::test_hooks::Point::FrameFree);
        }
        won
    }

    /// [`try_push_hinted`](Self::try_push_hinted), then [`push`](Self::push) if it lost: the
    /// free of a `Frame`, as one call (benches, tests and loom models, which keep the list
    /// alive).
    #[inline(always)]
    pub(crate) fn push_hinted(&self, index: u32, divert: bool, hint: u64) -> Push {
        // SAFETY: alive, and the caller keeps it alive.
        if unsafe { FreeList::try_push_hinted(self, index, hint) } {
            return Push::Pushed { finalize: false };
        }
        self.push(index, divert)
    }

    /// `push` past its first attempt: flags set, another word, or a lost CAS (`lost`).
    /// `seen`: the word's value as a failed CAS returned it (never a hint), if known.
    ///
    /// # Safety
    /// As [`push_ptr`](Self::push_ptr).
    #[inline(never)]
    unsafe fn push_slow(
        this: *const FreeList,
        index: u32,
        divert: bool,
        seen: Option<u64>,
        lost: bool,
    ) -> Push {
        // SAFETY: alive on entry (caller); a local, not used after the release point (the
        // CAS): from there on only the atomics `w` and `live` are.
        let list = unsafe { &*this };
        let s = index >> SHIFT;
        let bit = 1u64 << (index & ((1 << SHIFT) - 1));
        let w = list.word(s);
        let first: &AtomicU64 = &list.first;
        let live: &AtomicU32 = &list.live;
        // Read before the CAS: after it, another thread may tear the list down (see below).
        let full = list.full(s);
        let backoff = Backoff::new();
        if lost {
            contended();
        }
        // Relaxed: the value only seeds the CAS loop; the CAS itself carries the ordering.
        let mut cur = seen.unwrap_or_else(|| w.load(Ordering::Relaxed));
        // A frame going to a waiter is decided on this load, before word 0 is touched: with
        // requests pending, word 0 is a line the requester wrote last, and counting there
        // first (then undoing it) cost the hand-off two RMWs and a miss ahead of the wake.
        // Diverting on a plain load is safe: the caller then decides under the waiter lock.
        if divert && cur & WAITERS != 0 {
            return Push::Diverted;
        }
        // Another word's frame is counted in word 0 first, while we still own it: after the
        // CAS we may no longer touch the list (see below).
        if s != 0 {
            // Relaxed: a statistic (undone if the frame is diverted).
            first.fetch_add(COUNT_ONE, Ordering::Relaxed);
        }
        loop {
            debug_assert_eq!(cur & bit, 0, "frame {index} freed twice");
            if divert && cur & WAITERS != 0 {
                if s != 0 {
                    // Relaxed: undoes the count above; we still own the frame.
                    first.fetch_sub(COUNT_ONE, Ordering::Relaxed);
                }
                return Push::Diverted;
            }
            // Word 0 counts its own frames in the same CAS (others were counted above).
            let new = if s == 0 {
                (cur | bit) + COUNT_ONE
            } else {
                cur | bit
            };
            // Release: as in `push`. Acquire: the push that makes the word home must see every
            // earlier push to it (release sequence), e.g. vendor `free` calls, before tearing
            // down.
            match w.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    // After this CAS the frame is free and the allocator may be torn down by
                    // another thread at any moment, unless this CAS made the word home: then
                    // `live` still counts it and nobody else can take `live` to 0. Only the
                    // atomics are touched from here (`live` through its own reference, as
                    // another word's last push may take it to 0 right after ours).
                    #[cfg(all(test, not(loom)))]
                    crate::test_hooks::reach(crate::test_hooks::Point::FrameFree);
                    let home = cur & CLOSED != 0 && new & BITS == full;
                    return Push::Pushed {
                        finalize: home && word_home(live),
                    };
                }
                Err(actual) => {
                    backoff.spin();
                    cur = actual;
                }
            }
        }
    }

    /// Under the waiter lock: pops a frame, or (if none) sets `WAITERS` on every word — each
    /// word atomically with the check of its bits, so a concurrent free either is seen by the
    /// scan or sees the flag.
    pub(crate) fn pop_or_wait(&self) -> PopOrWait {
        // Relaxed: under the waiter lock, which orders every change of `WAITERS`.
        let flag_ours = self.first.load(Ordering::Relaxed) & WAITERS == 0;
        for s in 0..self.words {
            let w = self.word(s);
            // Relaxed: seeds the CAS.
            let mut cur = w.load(Ordering::Relaxed);
            loop {
                if cur & CLOSED != 0 {
                    return PopOrWait::Closed;
                }
                let (new, left) = if cur & BITS != 0 {
                    let (new, left) = self.take_lowest(s, cur);
                    (new, Some(left))
                } else if cur & WAITERS != 0 {
                    // Flagged already (by an earlier request; flags outlive the queue until
                    // the next free, see `clear_waiters`): no write, so a run of requests
                    // served one by one leaves the freer's lines alone. A diverting free
                    // cannot set a bit in a flagged word; only a non-diverting push can (a
                    // slot the vendor could not back). That slot is the pending requests':
                    // a new allocate retries it for the oldest, never takes it itself
                    // (`Inner::vendor_queue_ahead`, `Inner::retry_oldest`).
                    break;
                } else {
                    (cur | WAITERS, None)
                };
                // AcqRel: Acquire as in `pop` when taking a frame; Release so that a freer
                // that sees WAITERS and then takes the lock sees a consistent queue (the lock
                // orders that anyway).
                match w.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
                    Ok(_) => {
                        let Some(left) = left else { break };
                        let left = left();
                        // Unflag the words this scan flagged (the queue is empty: it is
                        // non-empty exactly when every word is flagged already).
                        if flag_ours {
                            (0..s).for_each(|t| self.clear_waiters_on(t));
                        }
                        return PopOrWait::Frame((s << SHIFT) | cur.trailing_zeros(), left);
                    }
                    Err(actual) => cur = actual,
                }
            }
        }
        PopOrWait::Wait { flagged: flag_ours }
    }

    /// Whether `WAITERS` or `CLOSED` is set on word 0: a freeing thread may not cache its
    /// frame (`cache.rs`).
    #[inline(always)]
    pub(crate) fn flagged(&self) -> bool {
        // Relaxed: ordered by the cache protocol's barrier pair (see `cache.rs`).
        self.first.load(Ordering::Relaxed) & (WAITERS | CLOSED) != 0
    }

    /// Sets `WAITERS` on every word regardless of its bits (under the waiter lock; used when
    /// a vendor allocator had no memory although slots were free).
    pub(crate) fn set_waiters(&self) {
        for s in 0..self.words {
            // AcqRel: an RMW under the waiter lock; ordering as in `pop_or_wait`.
            self.word(s).fetch_or(WAITERS, Ordering::AcqRel);
        }
    }

    /// Clears `WAITERS` (under the waiter lock, when the queue is empty).
    ///
    /// Flags may outlive the queue: a hand-off that empties it leaves them set (clearing them
    /// is two RMWs on lines the next request would write again), and the next free that
    /// sees them finds the queue empty and clears them then. So `WAITERS` means "requests
    /// may be pending: ask under the lock", never the reverse: it is always set while they
    /// are.
    pub(crate) fn clear_waiters(&self) {
        (0..self.words).for_each(|s| self.clear_waiters_on(s));
    }

    fn clear_waiters_on(&self, s: u32) {
        // AcqRel: pairs with freers' CAS on the word; after this, frees push again.
        self.word(s).fetch_and(!WAITERS, Ordering::AcqRel);
    }

    /// Sets `CLOSED` and clears `WAITERS` on every word, word 0 first (under the waiter lock).
    /// Returns `(was_closed, finalize)`: `finalize` is true if this call made the last word
    /// home.
    pub(crate) fn close(&self) -> (bool, bool) {
        let mut was = false;
        let mut finalize = false;
        for s in 0..self.words {
            let w = self.word(s);
            // Relaxed: seeds the CAS.
            let mut cur = w.load(Ordering::Relaxed);
            // AcqRel: Acquire so that, if the word is home, every earlier push to it
            // happened-before; Release so that poppers failing with Closed see the close.
            while let Err(actual) = w.compare_exchange_weak(
                cur,
                (cur | CLOSED) & !WAITERS,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                cur = actual;
            }
            was |= cur & CLOSED != 0;
            if cur & CLOSED == 0 && cur & BITS == self.full(s) {
                finalize |= word_home(&self.live);
            }
        }
        (was, finalize)
    }

    /// Frames currently free (a snapshot; see the module docs).
    #[inline(always)]
    pub(crate) fn free_count(&self) -> u32 {
        // Relaxed: a statistics snapshot; no data is read based on it.
        free_in(self.first.load(Ordering::Relaxed))
    }

    /// Marks in `free` (indexed by frame, `capacity` long) the frames on the list, for
    /// diagnostics: exact for each word (one load each), not across words.
    pub(crate) fn snapshot_free(&self, free: &mut [bool]) {
        for s in 0..self.words {
            // Acquire: pairs with the pushes' Release, like a pop (nothing is read through it,
            // but diagnostics then read the slots of the frames it shows out).
            let w = self.word(s).load(Ordering::Acquire);
            for b in 0..(1u32 << SHIFT) {
                if let Some(f) = free.get_mut(((s << SHIFT) | b) as usize) {
                    *f = w & (1 << b) != 0;
                }
            }
        }
    }

    /// Whether `WAITERS` is set (and the list is not closed) on word 0. For a vendor
    /// allocator the flag is cleared whenever its queue empties, so this says "requests are
    /// pending" (`Inner::vendor_queue_ahead`); a region's flags may outlive its queue.
    #[inline]
    pub(crate) fn waiting(&self) -> bool {
        // Relaxed: a hint for a lock-free path; a request racing with it is a concurrent
        // arrival either way, and the locked path decides.
        self.first.load(Ordering::Relaxed) & (WAITERS | CLOSED) == WAITERS
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        // Acquire: callers use it to refuse new work after close. (`close` closes word 0
        // first, under the waiter lock.)
        self.first.load(Ordering::Acquire) & CLOSED != 0
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
    /// index, most recent first. If `f` unwinds, the indices it has not reached yet go back
    /// on the stack (they would otherwise be lost: neither free nor held, ever), for the
    /// caller to schedule another pass.
    pub(crate) fn take_deferred(&self, mut f: impl FnMut(u32)) {
        /// The chain not reached yet, from `cur`: pushed back when dropped (on unwind only:
        /// a completed walk leaves `cur` at the end).
        struct Rest<'a> {
            list: &'a FreeList,
            cur: u32,
        }
        impl Drop for Rest<'_> {
            fn drop(&mut self) {
                let mut cur = self.cur;
                while cur != DEFERRED_NIL {
                    // Relaxed: ours, as in the walk below; read before the push relinks it.
                    let n = self.list.next[cur as usize].load(Ordering::Relaxed);
                    self.list.push_deferred(cur);
                    cur = n;
                }
            }
        }
        let mut rest = Rest {
            list: self,
            // Acquire: pairs with the Release CAS of every `push_deferred` in the chain.
            cur: self.deferred.swap(DEFERRED_NIL, Ordering::Acquire),
        };
        while rest.cur != DEFERRED_NIL {
            let i = rest.cur;
            // Relaxed: ordered by the Acquire swap; `i` is ours now (popped as a batch), so
            // read the link before `f` reuses it.
            rest.cur = self.next[i as usize].load(Ordering::Relaxed);
            f(i);
        }
    }
}

/// The bits of word `s` of a `capacity`-frame list, all free.
fn full(capacity: u32, s: u32) -> u64 {
    let n = capacity.saturating_sub(s << SHIFT).min(1 << SHIFT);
    (1u64 << n) - 1
}

/// The frames free according to word 0's value `w` (its count field).
#[inline(always)]
fn free_in(w: u64) -> u32 {
    ((w & COUNT_MASK) >> COUNT_SHIFT) as u32
}

/// One more word is home (`live` is the list's count of words not yet home); true if it
/// was the last.
fn word_home(live: &AtomicU32) -> bool {
    // AcqRel: the thread that takes `live` to 0 tears down, so it must see everything the
    // other words' last pushes (and the close) did before they decremented.
    live.fetch_sub(1, Ordering::AcqRel) == 1
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn take(l: &FreeList) -> u32 {
        match l.pop() {
            Pop::Frame(i, _) => i,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    fn drain(l: &FreeList) -> Vec<u32> {
        let mut got = vec![];
        while let Pop::Frame(i, left) = l.pop() {
            got.push(i);
            assert_eq!(left, l.capacity() - got.len() as u32);
        }
        got.sort();
        got
    }

    #[test]
    fn pops_every_frame_once_then_empty() {
        for cap in [1, 3, 31, 32, 33, 64, 65, 300, MAX_FRAMES] {
            if cfg!(miri) && cap > 300 {
                continue; // Too slow under Miri; the word logic is the same as for 300.
            }
            let l = FreeList::new(cap);
            assert_eq!(l.free_count(), cap, "capacity {cap}");
            assert_eq!(drain(&l), (0..cap).collect::<Vec<_>>(), "capacity {cap}");
            assert_eq!(l.pop(), Pop::Empty);
            assert_eq!(l.free_count(), 0);
            assert_eq!(l.push(cap - 1, true), Push::Pushed { finalize: false });
            assert_eq!(l.free_count(), 1);
            assert_eq!(l.pop(), Pop::Frame(cap - 1, 0));
            assert_eq!(l.push(0, true), Push::Pushed { finalize: false });
            assert_eq!(l.free_count(), 1);
        }
    }

    #[test]
    fn word_layout() {
        let one = FreeList::new(32);
        assert_eq!(one.words, 1);
        assert_eq!(one.full(0), 0xFFFF_FFFF);
        assert_eq!(free_in(one.first.load(Ordering::Relaxed)), 32);
        let odd = FreeList::new(70);
        assert_eq!(odd.words, 3);
        assert_eq!(odd.full(1), 0xFFFF_FFFF);
        assert_eq!(odd.full(2), 0x3F);
        if !cfg!(miri) {
            assert_eq!(FreeList::new(MAX_FRAMES).free_count(), MAX_FRAMES);
        }
    }

    #[test]
    fn waiters_flag_diverts_pushes() {
        for cap in [1, 64] {
            let l = FreeList::new(cap);
            for i in 0..cap {
                assert_eq!(l.pop_or_wait(), PopOrWait::Frame(i, cap - 1 - i));
            }
            assert!(matches!(l.pop_or_wait(), PopOrWait::Wait { .. }));
            assert_eq!(l.push(0, true), Push::Diverted);
            assert_eq!(l.push(cap - 1, true), Push::Diverted);
            assert_eq!(l.free_count(), 0, "a diverted frame is not counted free");
            l.clear_waiters();
            assert_eq!(l.push(0, true), Push::Pushed { finalize: false });
            assert_eq!(l.free_count(), 1);
        }
    }

    #[test]
    fn pop_or_wait_unflags_the_words_it_flagged() {
        let l = FreeList::new(64);
        // Word 0 empty, word 1 has frames: the scan flags word 0, then takes from word 1.
        for _ in 0..32 {
            assert!(take(&l) < 32);
        }
        assert_eq!(l.pop_or_wait(), PopOrWait::Frame(32, 31));
        assert_eq!(
            l.push(5, true),
            Push::Pushed { finalize: false },
            "word 0 unflagged"
        );
    }

    #[test]
    fn close_finalizes_exactly_once() {
        for cap in [2, 64, 200] {
            let l = FreeList::new(cap);
            let a = take(&l);
            let b = take(&l);
            assert_eq!(l.close(), (false, false));
            assert_eq!(l.close(), (true, false));
            assert_eq!(l.pop(), Pop::Closed);
            assert_eq!(l.push(a, true), Push::Pushed { finalize: false });
            assert_eq!(l.push(b, true), Push::Pushed { finalize: true });
        }
        let l = FreeList::new(1);
        assert_eq!(l.close(), (false, true));
        let l = FreeList::new(100);
        assert_eq!(l.close(), (false, true));
    }

    #[test]
    fn last_frame_home_in_any_word_finalizes() {
        // Frames out in two words; the word that comes home last finalizes, whichever it is.
        for (first, last) in [(40, 3), (3, 40)] {
            let l = FreeList::new(64);
            for i in drain(&l) {
                if i != first && i != last {
                    assert_eq!(l.push(i, true), Push::Pushed { finalize: false });
                }
            }
            assert_eq!(l.close(), (false, false));
            assert_eq!(l.push(first, true), Push::Pushed { finalize: false });
            assert_eq!(l.push(last, true), Push::Pushed { finalize: true });
            assert_eq!(l.free_count(), 64);
        }
    }

    #[test]
    fn snapshot_lists_exactly_the_free_frames() {
        let l = FreeList::new(40);
        let taken: Vec<u32> = (0..35).map(|_| take(&l)).collect();
        assert_eq!(l.push(3, true), Push::Pushed { finalize: false });
        assert_eq!(l.push(33, true), Push::Pushed { finalize: false });
        let mut free = vec![false; 40];
        l.snapshot_free(&mut free);
        let want: Vec<bool> = (0..40)
            .map(|i| i == 3 || i == 33 || !taken.contains(&i))
            .collect();
        assert_eq!(free, want);
    }

    #[test]
    fn a_free_from_any_hint_is_correct() {
        let l = FreeList::new(40);
        let Ok(a) = l.pop_hinted() else {
            panic!("a frame")
        };
        assert_eq!((a.index, a.left), (0, 39));
        // The exact hint: one CAS, no load.
        assert_eq!(
            l.push_hinted(a.index, true, a.hint),
            Push::Pushed { finalize: false }
        );
        assert_eq!(l.free_count(), 40);
        let a = l.pop_hinted().expect("a frame");
        let b = l.pop_hinted().expect("a frame");
        // `a`'s hint is stale (b was taken since): the free must still land, and only once.
        assert_eq!(
            l.push_hinted(a.index, true, a.hint),
            Push::Pushed { finalize: false }
        );
        assert_eq!(l.free_count(), 39);
        // Hints that are garbage: our own bit set, flags set, or a word-1 frame.
        for hint in [u64::MAX, 1 << b.index, WAITERS, 0] {
            let c = l.pop_hinted().expect("a frame");
            assert_eq!(
                l.push_hinted(c.index, true, hint),
                Push::Pushed { finalize: false }
            );
        }
        assert_eq!(
            l.push_hinted(b.index, true, 0),
            Push::Pushed { finalize: false }
        );
        assert_eq!(drain(&l), (0..40).collect::<Vec<_>>());
        // A stale hint without WAITERS must not hide the flag that is set now.
        let l = FreeList::new(2);
        let a = l.pop_hinted().expect("a frame");
        let b = l.pop_hinted().expect("a frame");
        assert!(matches!(l.pop_or_wait(), PopOrWait::Wait { .. }));
        assert_eq!(l.push_hinted(a.index, true, a.hint), Push::Diverted);
        assert_eq!(l.push_hinted(b.index, true, b.hint), Push::Diverted);
        // And after close, the hinted free of the last frame finalizes.
        let l = FreeList::new(2);
        let a = l.pop_hinted().expect("a frame");
        assert_eq!(l.close(), (false, false));
        assert_eq!(
            l.push_hinted(a.index, true, a.hint),
            Push::Pushed { finalize: true }
        );
    }

    #[test]
    fn deferred_stack_takes_all() {
        let l = FreeList::new(4);
        for _ in 0..4 {
            take(&l);
        }
        assert!(l.push_deferred(2));
        assert!(!l.push_deferred(0));
        let mut got = vec![];
        l.take_deferred(|i| got.push(i));
        assert_eq!(got, vec![0, 2]);
        l.take_deferred(|_| panic!("empty"));
    }

    /// A panic in the worker's callback must not lose the rest of the deferred chain: the
    /// frames it has not reached go back on the stack, for the next pass (before, they were
    /// neither free nor held, ever).
    #[test]
    fn deferred_stack_survives_a_panic() {
        let l = FreeList::new(4);
        for _ in 0..4 {
            take(&l);
        }
        l.push_deferred(0);
        l.push_deferred(1);
        l.push_deferred(2);
        let mut seen = vec![];
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            l.take_deferred(|i| {
                seen.push(i);
                assert_ne!(i, 1, "the worker's step panics");
            });
        }));
        assert!(r.is_err());
        assert_eq!(seen, vec![2, 1]);
        let mut rest = vec![];
        l.take_deferred(|i| rest.push(i));
        assert_eq!(rest, vec![0], "the frame not reached is still deferred");
    }
}
