//! The queued allocate as a `Future`: [`Allocate`] (borrows the allocator) and
//! [`AllocateOwned`] (`'static`, holds a handle), plus [`PendingAlloc`], the handle of a KS
//! ALLOC request that returned `STATUS_PENDING`.
//!
//! Runtime-agnostic: only `std::future::Future` and `std::task::Waker`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::allocator::Begin;
use crate::frame::Holder;
use crate::level::{Level, current_level, refuse_blocking};
use crate::waiters::{Notify, Polled, Ticket};
use crate::{Allocator, Frame, Status};

/// State shared by both futures.
#[derive(Debug, Clone, Copy)]
enum State {
    Init,
    Queued(Ticket),
    Done,
}

#[inline(always)]
fn poll_state(
    alloc: &Allocator,
    state: &mut State,
    holder: Option<&'static Holder>,
    cx: &mut Context<'_>,
) -> Poll<Result<Frame, Status>> {
    match *state {
        State::Init => {
            if let Some(f) = alloc.fast_frame(holder) {
                *state = State::Done;
                return Poll::Ready(Ok(f));
            }
            match poll_begin(alloc, state, holder, cx) {
                Begun::Frame(i) => Poll::Ready(Ok(alloc.frame_from_grant(i))),
                Begun::Queued => Poll::Pending,
                Begun::Failed(e) => Poll::Ready(Err(*e)),
            }
        }
        State::Queued(t) => match alloc.poll_ticket_waker(t, cx.waker()) {
            Polled::Granted(i) => {
                *state = State::Done;
                Poll::Ready(Ok(alloc.frame_from_grant(i)))
            }
            Polled::Cancelled => {
                *state = State::Done;
                Poll::Ready(Err(Status::Cancelled))
            }
            Polled::Misaligned(addr) => {
                *state = State::Done;
                Poll::Ready(Err(alloc.misaligned(addr)))
            }
            Polled::Queued => Poll::Pending,
        },
        State::Done => Poll::Ready(Err(Status::InvalidDeviceRequest(
            "allocate future polled after completion".into(),
        ))),
    }
}

/// What [`poll_begin`] found, in two words so that it comes back in registers.
///
/// Not a `Poll<Result<Frame, Status>>`: a cold call returning that would write it through
/// memory, and the ready path beside it, which shares the result, would then build its frame
/// on the stack too (stores that the next atomic read-modify-write must drain, see
/// BENCHMARKS.md (a), twelfth round). The error is boxed: this path already formats its
/// message, and a frame never takes it.
enum Begun {
    /// A frame (claimed, its slot index): built into a `Frame` by the caller.
    Frame(u32),
    /// Queued; the state holds the ticket.
    Queued,
    /// Refused (closed, or too many requests pending); boxed, see above.
    Failed(Box<Status>),
}

/// The locked first step from the `Init` state: a frame, a place in the queue, or an error.
#[cold]
#[inline(never)]
fn poll_begin(
    alloc: &Allocator,
    state: &mut State,
    holder: Option<&'static Holder>,
    cx: &mut Context<'_>,
) -> Begun {
    debug_assert!(matches!(state, State::Init));
    match alloc.begin(holder, || Notify::Waker(cx.waker().clone())) {
        Ok(Begin::Ready(f)) => {
            *state = State::Done;
            Begun::Frame(f.into_index())
        }
        Ok(Begin::Queued(t)) => {
            *state = State::Queued(t);
            Begun::Queued
        }
        Err(e) => {
            *state = State::Done;
            Begun::Failed(Box::new(e))
        }
    }
}

#[inline(always)]
fn cancel_state(alloc: &Allocator, state: &mut State) {
    if let State::Queued(t) = *state {
        *state = State::Done;
        alloc.cancel(t);
    }
}

/// Future of [`Allocator::allocate`]. Dropping it while pending cancels the request without
/// consuming a frame.
///
/// ```
/// use std::{future::Future, pin::pin, task::{Context, Waker}};
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::Paged)?;
/// let held = alloc.allocate_blocking(None)?;
/// {
///     let mut request = pin!(alloc.allocate());
///     assert!(request.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
///     assert_eq!(alloc.status().pending, 1);
/// } // dropped while pending: withdrawn
/// assert_eq!(alloc.status().pending, 0);
/// drop(held);
/// assert_eq!(alloc.status().allocated_frames, 0, "the withdrawn request took no frame");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Allocate<'a> {
    alloc: &'a Allocator,
    holder: Option<&'static Holder>,
    state: State,
}

impl<'a> Allocate<'a> {
    #[inline]
    pub(crate) fn new(alloc: &'a Allocator, holder: Option<&'static Holder>) -> Self {
        Allocate {
            alloc,
            holder,
            state: State::Init,
        }
    }
}

impl Future for Allocate<'_> {
    type Output = Result<Frame, Status>;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        poll_state(this.alloc, &mut this.state, this.holder, cx)
    }
}

impl Drop for Allocate<'_> {
    #[inline]
    fn drop(&mut self) {
        cancel_state(self.alloc, &mut self.state);
    }
}

impl fmt::Debug for Allocate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Allocate")
            .field("state", &self.state)
            .finish()
    }
}

/// Future of [`Allocator::allocate_owned`]: like [`Allocate`] but `'static`.
///
/// ```
/// use ks_alloc::{bench::block_on, AllocateOwned};
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::Paged)?;
/// let request: AllocateOwned = alloc.allocate_owned();
/// drop(alloc); // the request holds a handle of its own
/// let frame = block_on(request)?;
/// assert_eq!(frame.len(), 64);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct AllocateOwned {
    alloc: Allocator,
    holder: Option<&'static Holder>,
    state: State,
}

impl AllocateOwned {
    pub(crate) fn new(alloc: Allocator, holder: Option<&'static Holder>) -> Self {
        AllocateOwned {
            alloc,
            holder,
            state: State::Init,
        }
    }
}

impl Future for AllocateOwned {
    type Output = Result<Frame, Status>;
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        poll_state(&this.alloc, &mut this.state, this.holder, cx)
    }
}

impl Drop for AllocateOwned {
    fn drop(&mut self) {
        cancel_state(&self.alloc, &mut self.state);
    }
}

impl fmt::Debug for AllocateOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllocateOwned")
            .field("state", &self.state)
            .finish()
    }
}

/// A pending KS ALLOC request (the method returned `STATUS_PENDING`): it holds its place in
/// the FIFO queue. Await it, [`wait`](Self::wait) for it, or drop it to cancel (KS:
/// `IoCancelIrp`, completing with `STATUS_CANCELLED`).
///
/// ```
/// use ks_alloc::{bench::block_on, PendingAlloc};
/// use ks_sys::{KSMETHODSETID_StreamAllocator, KSMETHOD_STREAMALLOCATOR_ALLOC};
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
/// # let alloc_hdr = [&KSMETHODSETID_StreamAllocator.to_le_bytes()[..], &KSMETHOD_STREAMALLOCATOR_ALLOC.to_le_bytes(), &2u32.to_le_bytes()].concat();
/// let alloc = Allocator::new(&framing, Memory::Paged)?;
/// let held = alloc.allocate_blocking(None)?;
/// let (reply, pending) = alloc.method(&alloc_hdr, &mut [0u8; 8]);
/// assert_eq!(reply.ntstatus(), 0x103, "STATUS_PENDING");
/// let pending: PendingAlloc = pending.expect("a request handle");
/// drop(held); // the free completes the request
/// assert_eq!(block_on(pending)?.len(), 64);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[must_use = "dropping a pending request cancels it"]
pub struct PendingAlloc {
    alloc: Allocator,
    state: State,
}

impl fmt::Debug for PendingAlloc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAlloc")
            .field("state", &self.state)
            .finish()
    }
}

impl PendingAlloc {
    pub(crate) fn new(alloc: Allocator, ticket: Ticket) -> Self {
        PendingAlloc {
            alloc,
            state: State::Queued(ticket),
        }
    }

    /// Blocks until the request completes or `timeout` elapses.
    ///
    /// # Errors
    /// `STATUS_CANCELLED` if the allocator closed; `STATUS_DEVICE_NOT_READY` on timeout (the
    /// request is then withdrawn); `STATUS_INVALID_DEVICE_STATE` at Dispatch level, where
    /// blocking is refused (the request, consumed by the call, is then withdrawn as if
    /// dropped; at Dispatch level, use [`try_complete`](Self::try_complete) instead);
    /// `STATUS_INVALID_DEVICE_REQUEST` if the request already completed (through
    /// `try_complete` or a poll). A timeout too long for the clock to represent waits
    /// without one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ks_alloc::Status;
    /// use ks_sys::{KSMETHODSETID_StreamAllocator, KSMETHOD_STREAMALLOCATOR_ALLOC};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// # let alloc_hdr = [&KSMETHODSETID_StreamAllocator.to_le_bytes()[..], &KSMETHOD_STREAMALLOCATOR_ALLOC.to_le_bytes(), &2u32.to_le_bytes()].concat();
    /// let alloc = Allocator::new(&framing, Memory::Paged)?;
    /// let _held = alloc.allocate_blocking(None)?;
    /// let (_, pending) = alloc.method(&alloc_hdr, &mut [0u8; 8]);
    /// let r = pending.expect("pending").wait(Some(Duration::from_millis(10)));
    /// assert!(matches!(r, Err(Status::DeviceNotReady(_))), "timed out");
    /// assert_eq!(alloc.status().pending, 0, "and withdrawn");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn wait(mut self, timeout: Option<Duration>) -> Result<Frame, Status> {
        if current_level() == Level::Dispatch {
            return Err(refuse_blocking("PendingAlloc::wait"));
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Queued(t) => self.alloc.wait_ticket(t, timeout, false),
            _ => Err(Status::InvalidDeviceRequest(
                "request already completed".into(),
            )),
        }
    }

    /// Completes the request now if a frame has been handed to it (the KS client's view of
    /// the IRP completing): `Ok(Some(frame))`, `Ok(None)` while still pending.
    ///
    /// # Errors
    /// `STATUS_CANCELLED` if the allocator closed.
    ///
    /// ```
    /// use ks_sys::{KSMETHODSETID_StreamAllocator, KSMETHOD_STREAMALLOCATOR_ALLOC};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// # let alloc_hdr = [&KSMETHODSETID_StreamAllocator.to_le_bytes()[..], &KSMETHOD_STREAMALLOCATOR_ALLOC.to_le_bytes(), &2u32.to_le_bytes()].concat();
    /// let alloc = Allocator::new(&framing, Memory::Paged)?;
    /// let held = alloc.allocate_blocking(None)?;
    /// let (_, pending) = alloc.method(&alloc_hdr, &mut [0u8; 8]);
    /// let mut pending = pending.expect("pending");
    /// assert!(pending.try_complete()?.is_none(), "still pending");
    /// drop(held);
    /// let frame = pending.try_complete()?.expect("completed by the free");
    /// assert_eq!(alloc.status().allocated_frames, 1);
    /// # drop(frame);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn try_complete(&mut self) -> Result<Option<Frame>, Status> {
        let State::Queued(t) = self.state else {
            return Err(Status::InvalidDeviceRequest(
                "request already completed".into(),
            ));
        };
        match self.alloc.poll_ticket(t, |_| Notify::None) {
            Polled::Granted(i) => {
                self.state = State::Done;
                Ok(Some(self.alloc.frame_from_grant(i)))
            }
            Polled::Cancelled => {
                self.state = State::Done;
                Err(Status::Cancelled)
            }
            Polled::Misaligned(addr) => {
                self.state = State::Done;
                Err(self.alloc.misaligned(addr))
            }
            Polled::Queued => Ok(None),
        }
    }
}

impl Future for PendingAlloc {
    type Output = Result<Frame, Status>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        poll_state(&this.alloc, &mut this.state, None, cx)
    }
}

impl Drop for PendingAlloc {
    fn drop(&mut self) {
        cancel_state(&self.alloc, &mut self.state);
    }
}
