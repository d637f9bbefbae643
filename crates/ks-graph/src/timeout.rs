//! Stream-pointer timeouts (`KsStreamPointerScheduleTimeout` / `KsStreamPointerCancelTimeout`,
//! ks-spec.md §8.3): a callback the queue calls when a pointer has been held too long, for
//! instance a clone a device was programmed with and never completed.
//!
//! A [`Queue`] has no clock and no thread: it keeps each pointer's deadline, and whoever owns
//! the queue fires what is due with [`Queue::fire_timeouts`] and learns when to look next
//! from [`Queue::next_timeout`]. The streaming runtime does that for every filter while the
//! graph runs (see [`runtime`](crate::runtime)); code that drives a queue itself calls them
//! itself, which also makes timeouts testable without sleeping.
//!
//! Policies (KS documents the calls but not these details):
//! * At most one timeout per pointer; scheduling again replaces it (as KS documents).
//! * Deleting a pointer cancels its timeout; [`Queue::flush`] cancels every timeout.
//! * Due timeouts fire in deadline order (ties: the order they were scheduled). Each is
//!   removed before its callback runs, so the callback may schedule a new one; a timeout
//!   scheduled during a [`Queue::fire_timeouts`] call waits for the next call, so a callback
//!   that keeps rescheduling cannot hold the caller in a loop.
//! * An interval whose deadline the clock cannot represent is refused with
//!   `STATUS_INVALID_PARAMETER`.
//! * KS warns that a timeout scheduled while the pin pauses may fire late; here timeouts fire
//!   whenever the queue's owner calls [`Queue::fire_timeouts`] (the runtime: while running).
//!
//! No heap allocation per timeout once the queue has held as many timeouts at once before.

use std::time::{Duration, Instant};

use ks_alloc::Status;

use crate::queue::Queue;
use crate::stream_pointer::PointerId;

/// A stream pointer's timeout callback (`AVStrMiniTimeoutCallback`, a `PFNKSSTREAMPOINTER`):
/// called with the queue and the pointer whose timeout expired. Unlike a cancel callback it
/// may use the queue freely: set the frame's status, advance or unlock the pointer, delete
/// the clone, schedule another timeout. A plain function, so scheduling never allocates.
///
/// ```
/// use ks_alloc::Status;
/// use ks_graph::queue::Queue;
/// use ks_graph::stream_pointer::PointerId;
/// use ks_graph::timeout::TimeoutCallback;
/// // The usual one: the device never completed the frame; fail it and drop the clone.
/// fn give_up(q: &mut Queue<Vec<u8>>, p: PointerId) {
///     let _ = q.set_status_code(p, Err(Status::Unsuccessful("device timed out".into())));
///     let _ = q.delete(p);
/// }
/// let cb: TimeoutCallback<Vec<u8>> = give_up;
/// # let _ = cb;
/// ```
#[doc(alias = "AVStrMiniTimeoutCallback")]
pub type TimeoutCallback<F> = fn(&mut Queue<F>, PointerId);

/// One scheduled timeout.
pub(crate) struct Timeout<F> {
    pointer: PointerId,
    deadline: Instant,
    /// Scheduling order: breaks deadline ties, and bounds one `fire_timeouts` call.
    seq: u64,
    callback: TimeoutCallback<F>,
}

/// The timeouts of one queue.
pub(crate) struct Timeouts<F> {
    list: Vec<Timeout<F>>,
    next_seq: u64,
}

impl<F> Timeouts<F> {
    pub(crate) const fn new() -> Timeouts<F> {
        Timeouts {
            list: Vec::new(),
            next_seq: 0,
        }
    }

    fn position(&self, pointer: PointerId) -> Option<usize> {
        self.list.iter().position(|t| t.pointer == pointer)
    }

    /// Removes `pointer`'s timeout, if any; whether there was one.
    pub(crate) fn remove(&mut self, pointer: PointerId) -> bool {
        // The common case, no timeouts at all, is one length check.
        match self.position(pointer) {
            Some(i) => {
                self.list.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Every timeout names a live pointer (`live`), and no pointer has two.
    pub(crate) fn check(&self, live: impl Fn(PointerId) -> bool) -> Result<(), String> {
        for (i, t) in self.list.iter().enumerate() {
            if !live(t.pointer) {
                return Err(format!("a timeout of {} outlived it", t.pointer));
            }
            if self.list[..i].iter().any(|u| u.pointer == t.pointer) {
                return Err(format!("{} has two timeouts", t.pointer));
            }
        }
        Ok(())
    }

    pub(crate) fn clear(&mut self) {
        self.list.clear();
    }

    /// The earliest due timeout scheduled before `limit`, removed.
    fn take_due(&mut self, now: Instant, limit: u64) -> Option<(PointerId, TimeoutCallback<F>)> {
        let i = self
            .list
            .iter()
            .enumerate()
            .filter(|(_, t)| t.deadline <= now && t.seq < limit)
            .min_by_key(|(_, t)| (t.deadline, t.seq))
            .map(|(i, _)| i)?;
        let t = self.list.swap_remove(i);
        Some((t.pointer, t.callback))
    }
}

impl<F> Queue<F> {
    /// Schedules `callback` to run for pointer `id` once `interval` has passed (from now),
    /// replacing the pointer's earlier timeout if it had one. Any pointer may have one:
    /// edges and clones. The callback runs from [`fire_timeouts`](Self::fire_timeouts).
    ///
    /// `STATUS_INVALID_PARAMETER` for a stale handle, or an interval whose deadline the
    /// clock cannot represent. KS gives the interval in 100 ns units; here it is a
    /// [`Duration`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ks_alloc::Status;
    /// use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// use ks_graph::stream_pointer::{PointerId, PointerState};
    ///
    /// fn give_up(q: &mut Queue<Vec<u8>>, p: PointerId) {
    ///     q.set_status_code(p, Err(Status::Unsuccessful("device timed out".into()))).unwrap();
    ///     q.delete(p).unwrap();
    /// }
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge(PointerState::Locked).unwrap();
    /// let dma = q.clone_pointer(lead, None, 0)?; // the device works on this frame
    /// q.unlock(lead, true)?;
    /// q.schedule_timeout(dma, give_up, Duration::from_millis(40))?;
    /// assert_eq!(q.fire_timeouts(Instant::now()), 0); // not yet
    /// let later = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(q.fire_timeouts(later), 1);
    /// let done = q.pop_completed().unwrap();
    /// assert!(matches!(done.status, Err(Status::Unsuccessful(_))));
    /// # Ok::<(), Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerScheduleTimeout")]
    pub fn schedule_timeout(
        &mut self,
        id: PointerId,
        callback: TimeoutCallback<F>,
        interval: Duration,
    ) -> Result<(), Status> {
        self.kind(id)?;
        let deadline = Instant::now().checked_add(interval).ok_or_else(|| {
            Status::InvalidParameter(
                format!(
                    "timeout interval {interval:?} is too long: its deadline is beyond what the \
                     clock can represent"
                )
                .into(),
            )
        })?;
        let t = &mut self.timeouts;
        let seq = t.next_seq;
        t.next_seq += 1;
        let timeout = Timeout {
            pointer: id,
            deadline,
            seq,
            callback,
        };
        match t.position(id) {
            Some(i) => t.list[i] = timeout,
            None => t.list.push(timeout),
        }
        Ok(())
    }

    /// Cancels pointer `id`'s timeout; whether it had one (KS returns nothing). A stale
    /// handle: `STATUS_INVALID_PARAMETER`.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use ks_graph::queue::{Queue, QueueConfig};
    /// # use ks_graph::stream_pointer::PointerId;
    /// fn never(_: &mut Queue<Vec<u8>>, _: PointerId) {
    ///     unreachable!("cancelled")
    /// }
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let lead = q.leading_edge_id();
    /// q.schedule_timeout(lead, never, Duration::ZERO)?;
    /// assert!(q.cancel_timeout(lead)?);
    /// assert!(!q.cancel_timeout(lead)?); // nothing left to cancel
    /// assert_eq!(q.fire_timeouts(Instant::now() + Duration::from_secs(1)), 0);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "KsStreamPointerCancelTimeout")]
    pub fn cancel_timeout(&mut self, id: PointerId) -> Result<bool, Status> {
        self.kind(id)?;
        Ok(self.timeouts.remove(id))
    }

    /// When pointer `id`'s timeout is due, if it has one.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use ks_graph::queue::{Queue, QueueConfig};
    /// # use ks_graph::stream_pointer::PointerId;
    /// # fn cb(_: &mut Queue<Vec<u8>>, _: PointerId) {}
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// let lead = q.leading_edge_id();
    /// assert_eq!(q.timeout_deadline(lead)?, None);
    /// let before = Instant::now();
    /// q.schedule_timeout(lead, cb, Duration::from_secs(5))?;
    /// assert!(q.timeout_deadline(lead)?.unwrap() >= before + Duration::from_secs(5));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn timeout_deadline(&self, id: PointerId) -> Result<Option<Instant>, Status> {
        self.kind(id)?;
        Ok(self
            .timeouts
            .position(id)
            .map(|i| self.timeouts.list[i].deadline))
    }

    /// The earliest deadline of all this queue's timeouts: when
    /// [`fire_timeouts`](Self::fire_timeouts) next has work.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerId;
    /// # fn cb(_: &mut Queue<Vec<u8>>, _: PointerId) {}
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// assert_eq!(q.next_timeout(), None);
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// let clone = q.clone_pointer(lead, None, 0)?;
    /// q.schedule_timeout(lead, cb, Duration::from_secs(9))?;
    /// q.schedule_timeout(clone, cb, Duration::from_secs(1))?;
    /// assert_eq!(q.next_timeout(), q.timeout_deadline(clone)?);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timeouts.list.iter().map(|t| t.deadline).min()
    }

    /// Runs the callback of every timeout due at `now` (deadline ≤ `now`), earliest first,
    /// each removed before its callback runs; returns how many ran. Timeouts the callbacks
    /// schedule wait for the next call.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use ks_graph::queue::{Queue, QueueConfig, StreamHeader};
    /// # use ks_graph::stream_pointer::PointerId;
    /// // Context 1 reschedules itself; the other just records that it ran.
    /// fn tick(q: &mut Queue<Vec<u8>>, p: PointerId) {
    ///     q.set_context(p, q.context(p).unwrap() + 10).unwrap();
    ///     if q.context(p).unwrap() == 11 {
    ///         q.schedule_timeout(p, tick, Duration::ZERO).unwrap();
    ///     }
    /// }
    /// let mut q: Queue<Vec<u8>> = Queue::new(QueueConfig::input());
    /// q.push(vec![0; 4], StreamHeader::with_data(4, 4));
    /// let lead = q.leading_edge_id();
    /// let (a, b) = (q.clone_pointer(lead, None, 1)?, q.clone_pointer(lead, None, 2)?);
    /// q.schedule_timeout(b, tick, Duration::from_millis(1))?;
    /// q.schedule_timeout(a, tick, Duration::from_millis(2))?;
    /// let later = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(q.fire_timeouts(later), 2); // b, then a; a's new timeout waits
    /// assert_eq!((q.context(a)?, q.context(b)?), (11, 12));
    /// assert_eq!(q.fire_timeouts(later + Duration::from_secs(1)), 1);
    /// assert_eq!(q.context(a)?, 21);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn fire_timeouts(&mut self, now: Instant) -> usize {
        let limit = self.timeouts.next_seq;
        let mut fired = 0;
        while let Some((pointer, callback)) = self.timeouts.take_due(now, limit) {
            callback(self, pointer);
            fired += 1;
        }
        fired
    }
}
