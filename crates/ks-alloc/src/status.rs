//! KS completion statuses as a Rust error type.
//!
//! [`Status`] covers every NTSTATUS value of the allocator subsystem (ks-spec §1.3) except
//! `STATUS_SUCCESS`, which is `Ok(..)`. Each error variant carries a [`Message`] saying what was
//! wrong (field, value, what is allowed); hot paths use `Cow::Borrowed` messages so that
//! building an error never touches the heap.

use std::borrow::Cow;
use std::fmt;

/// Text of a [`Status`]: `Cow::Borrowed` for static messages on hot paths (no heap), owned for
/// rich messages naming the offending field and value.
///
/// ```
/// use ks_alloc::{Message, Status};
/// let m: Message = "FrameSize is 0; must be at least 1".into();
/// assert_eq!(Status::InvalidParameter(m).to_ntstatus(), 0xC000_000Du32 as i32);
/// ```
pub type Message = Cow<'static, str>;

/// NTSTATUS values of ks-spec §1.3, from `ks_sys`.
mod code {
    pub use ks_sys::{
        STATUS_BUFFER_OVERFLOW as BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL as BUFFER_TOO_SMALL,
        STATUS_CANCELLED as CANCELLED, STATUS_DEVICE_NOT_READY as DEVICE_NOT_READY,
        STATUS_INSUFFICIENT_RESOURCES as INSUFFICIENT_RESOURCES,
        STATUS_INTEGER_OVERFLOW as INTEGER_OVERFLOW,
        STATUS_INVALID_BUFFER_SIZE as INVALID_BUFFER_SIZE,
        STATUS_INVALID_DEVICE_REQUEST as INVALID_DEVICE_REQUEST,
        STATUS_INVALID_DEVICE_STATE as INVALID_DEVICE_STATE,
        STATUS_INVALID_PARAMETER as INVALID_PARAMETER, STATUS_MORE_ENTRIES as MORE_ENTRIES,
        STATUS_NOT_FOUND as NOT_FOUND, STATUS_NOT_IMPLEMENTED as NOT_IMPLEMENTED,
        STATUS_NOT_SUPPORTED as NOT_SUPPORTED, STATUS_PENDING as PENDING,
        STATUS_PROPSET_NOT_FOUND as PROPSET_NOT_FOUND, STATUS_UNSUCCESSFUL as UNSUCCESSFUL,
    };
}

/// A KS completion status other than `STATUS_SUCCESS`.
///
/// Each variant maps to one NTSTATUS of ks-spec §1.3 ([`to_ntstatus`](Status::to_ntstatus));
/// any other NTSTATUS value is kept in [`Status::Other`] so that
/// [`from_ntstatus`](Status::from_ntstatus) and `to_ntstatus` round-trip for every code.
/// `Display` prints the KS name followed by what was wrong:
///
/// ```
/// use ks_alloc::Status;
/// let s = Status::InvalidParameter("FrameSize is 0; must be at least 1".into());
/// assert_eq!(s.to_string(), "STATUS_INVALID_PARAMETER: FrameSize is 0; must be at least 1");
/// assert_eq!(s.to_ntstatus(), 0xC000_000Du32 as i32);
/// assert_eq!(Status::from_ntstatus(s.to_ntstatus()).map(|s| s.name()), Some(s.name()));
/// ```
#[doc(alias = "NTSTATUS")]
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// `STATUS_PENDING` (0x00000103): the request was queued and completes later.
    #[doc(alias = "STATUS_PENDING")]
    Pending,
    /// `STATUS_CANCELLED` (0xC0000120): a pending request was cancelled.
    #[doc(alias = "STATUS_CANCELLED")]
    Cancelled,
    /// `STATUS_MORE_ENTRIES` (0x00000105): the data buffer is too small; `required` bytes are
    /// needed (ReactOS method-handler convention, ks-spec §5.5).
    #[doc(alias = "STATUS_MORE_ENTRIES")]
    MoreEntries {
        /// Bytes the caller must supply.
        required: usize,
    },
    /// `STATUS_BUFFER_OVERFLOW` (0x80000005, a warning): answer to a zero-length size probe;
    /// `required` is the size of the value.
    #[doc(alias = "STATUS_BUFFER_OVERFLOW")]
    BufferOverflow {
        /// Bytes the caller must supply.
        required: usize,
    },
    /// `STATUS_BUFFER_TOO_SMALL` (0xC0000023): a buffer is shorter than `required` bytes.
    #[doc(alias = "STATUS_BUFFER_TOO_SMALL")]
    BufferTooSmall {
        /// Bytes the caller must supply.
        required: usize,
        /// What was too small.
        message: Message,
    },
    /// `STATUS_UNSUCCESSFUL` (0xC0000001).
    #[doc(alias = "STATUS_UNSUCCESSFUL")]
    Unsuccessful(Message),
    /// `STATUS_NOT_IMPLEMENTED` (0xC0000002).
    #[doc(alias = "STATUS_NOT_IMPLEMENTED")]
    NotImplemented(Message),
    /// `STATUS_INVALID_PARAMETER` (0xC000000D).
    #[doc(alias = "STATUS_INVALID_PARAMETER")]
    InvalidParameter(Message),
    /// `STATUS_INVALID_DEVICE_REQUEST` (0xC0000010).
    #[doc(alias = "STATUS_INVALID_DEVICE_REQUEST")]
    InvalidDeviceRequest(Message),
    /// `STATUS_INTEGER_OVERFLOW` (0xC0000095).
    #[doc(alias = "STATUS_INTEGER_OVERFLOW")]
    IntegerOverflow(Message),
    /// `STATUS_INSUFFICIENT_RESOURCES` (0xC000009A).
    #[doc(alias = "STATUS_INSUFFICIENT_RESOURCES")]
    InsufficientResources(Message),
    /// `STATUS_DEVICE_NOT_READY` (0xC00000A3).
    #[doc(alias = "STATUS_DEVICE_NOT_READY")]
    DeviceNotReady(Message),
    /// `STATUS_NOT_SUPPORTED` (0xC00000BB).
    #[doc(alias = "STATUS_NOT_SUPPORTED")]
    NotSupported(Message),
    /// `STATUS_INVALID_DEVICE_STATE` (0xC0000184).
    #[doc(alias = "STATUS_INVALID_DEVICE_STATE")]
    InvalidDeviceState(Message),
    /// `STATUS_INVALID_BUFFER_SIZE` (0xC0000206).
    #[doc(alias = "STATUS_INVALID_BUFFER_SIZE")]
    InvalidBufferSize(Message),
    /// `STATUS_NOT_FOUND` (0xC0000225).
    #[doc(alias = "STATUS_NOT_FOUND")]
    NotFound(Message),
    /// `STATUS_PROPSET_NOT_FOUND` (0xC0000230).
    #[doc(alias = "STATUS_PROPSET_NOT_FOUND")]
    PropsetNotFound(Message),
    /// Any other non-success NTSTATUS value, kept verbatim so that codes round-trip.
    Other(i32),
}

impl Status {
    /// The NTSTATUS value of this status.
    ///
    /// ```
    /// use ks_alloc::Status;
    /// assert_eq!(Status::Pending.to_ntstatus(), 0x103);
    /// assert_eq!(Status::Other(0xC000_0005u32 as i32).to_ntstatus(), 0xC000_0005u32 as i32);
    /// ```
    pub fn to_ntstatus(&self) -> i32 {
        match self {
            Status::Pending => code::PENDING,
            Status::Cancelled => code::CANCELLED,
            Status::MoreEntries { .. } => code::MORE_ENTRIES,
            Status::BufferOverflow { .. } => code::BUFFER_OVERFLOW,
            Status::BufferTooSmall { .. } => code::BUFFER_TOO_SMALL,
            Status::Unsuccessful(_) => code::UNSUCCESSFUL,
            Status::NotImplemented(_) => code::NOT_IMPLEMENTED,
            Status::InvalidParameter(_) => code::INVALID_PARAMETER,
            Status::InvalidDeviceRequest(_) => code::INVALID_DEVICE_REQUEST,
            Status::IntegerOverflow(_) => code::INTEGER_OVERFLOW,
            Status::InsufficientResources(_) => code::INSUFFICIENT_RESOURCES,
            Status::DeviceNotReady(_) => code::DEVICE_NOT_READY,
            Status::NotSupported(_) => code::NOT_SUPPORTED,
            Status::InvalidDeviceState(_) => code::INVALID_DEVICE_STATE,
            Status::InvalidBufferSize(_) => code::INVALID_BUFFER_SIZE,
            Status::NotFound(_) => code::NOT_FOUND,
            Status::PropsetNotFound(_) => code::PROPSET_NOT_FOUND,
            Status::Other(c) => *c,
        }
    }

    /// The status for an NTSTATUS value, or `None` for success.
    ///
    /// Success means `code >= 0` except `STATUS_PENDING` and `STATUS_MORE_ENTRIES`, which
    /// are informational values KS uses to say the request is not complete. Known codes get an
    /// empty message and `required: 0` (the size travels separately, in `Information`);
    /// everything else becomes [`Status::Other`]. For every code `c` that is not success,
    /// `Status::from_ntstatus(c).unwrap().to_ntstatus() == c`.
    ///
    /// ```
    /// use ks_alloc::Status;
    /// assert_eq!(Status::from_ntstatus(0), None);
    /// assert_eq!(Status::from_ntstatus(0x103), Some(Status::Pending));
    /// assert_eq!(Status::from_ntstatus(0xC000_0005u32 as i32), Some(Status::Other(0xC000_0005u32 as i32)));
    /// ```
    pub fn from_ntstatus(code: i32) -> Option<Status> {
        const E: Message = Cow::Borrowed("");
        Some(match code {
            code::PENDING => Status::Pending,
            code::MORE_ENTRIES => Status::MoreEntries { required: 0 },
            c if c >= 0 => return None,
            code::CANCELLED => Status::Cancelled,
            code::BUFFER_OVERFLOW => Status::BufferOverflow { required: 0 },
            code::BUFFER_TOO_SMALL => Status::BufferTooSmall {
                required: 0,
                message: E,
            },
            code::UNSUCCESSFUL => Status::Unsuccessful(E),
            code::NOT_IMPLEMENTED => Status::NotImplemented(E),
            code::INVALID_PARAMETER => Status::InvalidParameter(E),
            code::INVALID_DEVICE_REQUEST => Status::InvalidDeviceRequest(E),
            code::INTEGER_OVERFLOW => Status::IntegerOverflow(E),
            code::INSUFFICIENT_RESOURCES => Status::InsufficientResources(E),
            code::DEVICE_NOT_READY => Status::DeviceNotReady(E),
            code::NOT_SUPPORTED => Status::NotSupported(E),
            code::INVALID_DEVICE_STATE => Status::InvalidDeviceState(E),
            code::INVALID_BUFFER_SIZE => Status::InvalidBufferSize(E),
            code::NOT_FOUND => Status::NotFound(E),
            code::PROPSET_NOT_FOUND => Status::PropsetNotFound(E),
            other => Status::Other(other),
        })
    }

    /// The required buffer size carried by `MoreEntries`, `BufferOverflow` and
    /// `BufferTooSmall` (the IRP's `Information`), `None` for every other status.
    ///
    /// ```
    /// use ks_alloc::Status;
    /// assert_eq!(Status::BufferOverflow { required: 112 }.required_size(), Some(112));
    /// assert_eq!(Status::Pending.required_size(), None);
    /// ```
    pub fn required_size(&self) -> Option<usize> {
        match self {
            Status::MoreEntries { required }
            | Status::BufferOverflow { required }
            | Status::BufferTooSmall { required, .. } => Some(*required),
            _ => None,
        }
    }

    /// The KS name of the status, e.g. `"STATUS_INVALID_PARAMETER"`; `"NTSTATUS"` for
    /// [`Status::Other`] (whose `Display` shows the value in hex).
    ///
    /// ```
    /// use ks_alloc::Status;
    /// assert_eq!(Status::Cancelled.name(), "STATUS_CANCELLED");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Status::Pending => "STATUS_PENDING",
            Status::Cancelled => "STATUS_CANCELLED",
            Status::MoreEntries { .. } => "STATUS_MORE_ENTRIES",
            Status::BufferOverflow { .. } => "STATUS_BUFFER_OVERFLOW",
            Status::BufferTooSmall { .. } => "STATUS_BUFFER_TOO_SMALL",
            Status::Unsuccessful(_) => "STATUS_UNSUCCESSFUL",
            Status::NotImplemented(_) => "STATUS_NOT_IMPLEMENTED",
            Status::InvalidParameter(_) => "STATUS_INVALID_PARAMETER",
            Status::InvalidDeviceRequest(_) => "STATUS_INVALID_DEVICE_REQUEST",
            Status::IntegerOverflow(_) => "STATUS_INTEGER_OVERFLOW",
            Status::InsufficientResources(_) => "STATUS_INSUFFICIENT_RESOURCES",
            Status::DeviceNotReady(_) => "STATUS_DEVICE_NOT_READY",
            Status::NotSupported(_) => "STATUS_NOT_SUPPORTED",
            Status::InvalidDeviceState(_) => "STATUS_INVALID_DEVICE_STATE",
            Status::InvalidBufferSize(_) => "STATUS_INVALID_BUFFER_SIZE",
            Status::NotFound(_) => "STATUS_NOT_FOUND",
            Status::PropsetNotFound(_) => "STATUS_PROPSET_NOT_FOUND",
            Status::Other(_) => "NTSTATUS",
        }
    }

    /// The message text, if the variant carries one (empty for statuses made by
    /// [`from_ntstatus`](Status::from_ntstatus)).
    ///
    /// ```
    /// use ks_alloc::Status;
    /// assert_eq!(Status::NotFound("pin 3 has no framing".into()).message(), Some("pin 3 has no framing"));
    /// assert_eq!(Status::Pending.message(), None);
    /// ```
    pub fn message(&self) -> Option<&str> {
        match self {
            Status::BufferTooSmall { message, .. }
            | Status::Unsuccessful(message)
            | Status::NotImplemented(message)
            | Status::InvalidParameter(message)
            | Status::InvalidDeviceRequest(message)
            | Status::IntegerOverflow(message)
            | Status::InsufficientResources(message)
            | Status::DeviceNotReady(message)
            | Status::NotSupported(message)
            | Status::InvalidDeviceState(message)
            | Status::InvalidBufferSize(message)
            | Status::NotFound(message)
            | Status::PropsetNotFound(message) => Some(message),
            _ => None,
        }
    }

    /// `true` for error-severity codes (top two bits `11`), `false` for `STATUS_PENDING`,
    /// `STATUS_MORE_ENTRIES` and the warning `STATUS_BUFFER_OVERFLOW`.
    ///
    /// ```
    /// use ks_alloc::Status;
    /// assert!(Status::Cancelled.is_error());
    /// assert!(!Status::Pending.is_error());
    /// assert!(!Status::BufferOverflow { required: 24 }.is_error());
    /// ```
    pub fn is_error(&self) -> bool {
        (self.to_ntstatus() as u32) >> 30 == 3
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Pending => write!(
                f,
                "STATUS_PENDING: the request is queued until it can complete"
            ),
            Status::Cancelled => write!(f, "STATUS_CANCELLED: the pending request was cancelled"),
            Status::MoreEntries { required } => write!(
                f,
                "STATUS_MORE_ENTRIES: the data buffer is too small; {required} bytes required"
            ),
            Status::BufferOverflow { required } => write!(
                f,
                "STATUS_BUFFER_OVERFLOW: size probe; the value needs {required} bytes"
            ),
            Status::BufferTooSmall { required, message } if message.is_empty() => write!(
                f,
                "STATUS_BUFFER_TOO_SMALL: the buffer is too small; {required} bytes required"
            ),
            Status::BufferTooSmall { required, message } => write!(
                f,
                "STATUS_BUFFER_TOO_SMALL: {message} ({required} bytes required)"
            ),
            Status::Other(c) => write!(f, "NTSTATUS 0x{:08X}", *c as u32),
            other => match other.message() {
                Some(m) if !m.is_empty() => write!(f, "{}: {m}", other.name()),
                _ => write!(f, "{} (0x{:08X})", other.name(), other.to_ntstatus() as u32),
            },
        }
    }
}

impl std::error::Error for Status {}

impl From<&Status> for i32 {
    /// Same as [`Status::to_ntstatus`].
    fn from(s: &Status) -> i32 {
        s.to_ntstatus()
    }
}

/// Why [`Allocator::try_allocate`](crate::Allocator::try_allocate) (the function table's
/// `AllocateFrame`) returned no frame.
///
/// A small `Copy` value rather than a [`Status`], so that the function table keeps its
/// promise when it fails too: no heap allocation (a vendor's misaligned address used to
/// format its message right there) and nothing to drop, so a caller's `match` keeps the
/// frame in registers. Each variant converts into the KS [`Status`] it stands for
/// ([`status`](Self::status), or `?` in a function returning `Result<_, Status>`), and
/// [`to_ntstatus`](Self::to_ntstatus) gives the code without building a message.
///
/// ```
/// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType, Status, TryAllocateError};
/// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1,
///                         frame_size: 4096, alignment: Alignment::BYTES_64 };
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let f = alloc.try_allocate()?;
/// let none = alloc.try_allocate().unwrap_err();
/// assert_eq!(none, TryAllocateError::Empty);
/// assert!(matches!(none.status(), Status::Unsuccessful(_)));
/// drop(f);
/// alloc.close();
/// assert_eq!(alloc.try_allocate().unwrap_err(), TryAllocateError::Closed);
/// # Ok::<(), Status>(())
/// ```
#[doc(alias = "AllocateFrame")]
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryAllocateError {
    /// Every frame is outstanding (KS: `AllocateFrame` returns `NULL`); `STATUS_UNSUCCESSFUL`.
    /// Counted in
    /// [`AllocatorStatus::failed_try_allocates`](crate::AllocatorStatus::failed_try_allocates).
    Empty,
    /// The allocator is closed (behaviour 36); `STATUS_INVALID_DEVICE_STATE`.
    Closed,
    /// The memory is not non-paged, so the function table is not offered (behaviour 29);
    /// `STATUS_NOT_SUPPORTED`.
    NotOffered,
    /// The vendor allocator's `allocate` returned none ("no frame now");
    /// `STATUS_UNSUCCESSFUL`.
    VendorEmpty,
    /// The vendor allocator returned an address that is not aligned as the framing requires;
    /// it was returned to the vendor and not handed out. `STATUS_INVALID_PARAMETER`.
    VendorMisaligned {
        /// The address the vendor returned.
        addr: usize,
        /// The alignment the framing requires, in bytes.
        alignment: usize,
    },
}

impl TryAllocateError {
    /// The NTSTATUS value of [`status`](Self::status), without building its message.
    ///
    /// ```
    /// use ks_alloc::TryAllocateError;
    /// assert_eq!(TryAllocateError::Empty.to_ntstatus(), 0xC000_0001u32 as i32);
    /// ```
    pub fn to_ntstatus(&self) -> i32 {
        match self {
            TryAllocateError::Empty | TryAllocateError::VendorEmpty => code::UNSUCCESSFUL,
            TryAllocateError::Closed => code::INVALID_DEVICE_STATE,
            TryAllocateError::NotOffered => code::NOT_SUPPORTED,
            TryAllocateError::VendorMisaligned { .. } => code::INVALID_PARAMETER,
        }
    }

    /// The KS status this failure stands for, with its message.
    ///
    /// ```
    /// use ks_alloc::TryAllocateError;
    /// assert_eq!(TryAllocateError::NotOffered.status().name(), "STATUS_NOT_SUPPORTED");
    /// ```
    pub fn status(&self) -> Status {
        match *self {
            TryAllocateError::Empty => Status::Unsuccessful("no free frame".into()),
            TryAllocateError::Closed => {
                Status::InvalidDeviceState("the allocator is closed".into())
            }
            TryAllocateError::NotOffered => Status::NotSupported(
                "the function table (non-blocking allocate) is offered only for non-paged \
                 memory; this allocator's memory may page-fault (use allocate() or \
                 allocate_blocking())"
                    .into(),
            ),
            TryAllocateError::VendorEmpty => Status::Unsuccessful(
                "the vendor allocator has no frame now (its allocate returned none)".into(),
            ),
            TryAllocateError::VendorMisaligned { addr, alignment } => Status::InvalidParameter(
                format!(
                    "the vendor allocator returned frame address {addr:#x}, which is not \
                     aligned to {alignment} bytes as the framing requires; the frame was \
                     returned to the vendor"
                )
                .into(),
            ),
        }
    }
}

impl From<TryAllocateError> for Status {
    fn from(e: TryAllocateError) -> Status {
        e.status()
    }
}

impl fmt::Display for TryAllocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.status().fmt(f)
    }
}

impl std::error::Error for TryAllocateError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `to_ntstatus` skips building the message, so it keeps its own table; it must agree
    /// with the status `status()` builds, for every variant.
    #[test]
    fn try_allocate_error_codes_match_their_statuses() {
        let all = [
            TryAllocateError::Empty,
            TryAllocateError::Closed,
            TryAllocateError::NotOffered,
            TryAllocateError::VendorEmpty,
            TryAllocateError::VendorMisaligned {
                addr: 0x1001,
                alignment: 64,
            },
        ];
        for e in all {
            assert_eq!(e.to_ntstatus(), e.status().to_ntstatus(), "{e:?}");
            assert_eq!(e.to_string(), e.status().to_string());
        }
    }
}
