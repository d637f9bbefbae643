//! `NTSTATUS` and the status codes of ks-spec.md §1.3.

/// A Windows `NTSTATUS` value. The top two bits give its severity: `00` success, `01`
/// information, `10` warning, `11` error; so warnings are negative too.
///
/// ```
/// use ks_sys::*;
/// let status: NTSTATUS = STATUS_INVALID_PARAMETER;
/// assert!(status < 0); // errors have the top two bits set
/// assert_eq!(status as u32 >> 30, 3);
/// // A warning is negative as well, with severity 10.
/// assert!(STATUS_BUFFER_OVERFLOW < 0 && STATUS_BUFFER_OVERFLOW as u32 >> 30 == 2);
/// ```
pub type NTSTATUS = i32;

/// The operation succeeded.
///
/// ```
/// use ks_sys::*;
/// assert!(STATUS_SUCCESS >= 0 && STATUS_PENDING >= 0); // success codes
/// assert_eq!(STATUS_BUFFER_OVERFLOW as u32, 0x8000_0005); // warning
/// assert_eq!(STATUS_NOT_FOUND as u32, 0xC000_0225); // error
/// ```
pub const STATUS_SUCCESS: NTSTATUS = 0x0000_0000;
/// The operation will complete later (e.g. an ALLOC with no free frame).
pub const STATUS_PENDING: NTSTATUS = 0x0000_0103;
/// More data is available (ReactOS: data buffer shorter than MinData).
pub const STATUS_MORE_ENTRIES: NTSTATUS = 0x0000_0105;
/// Warning: the buffer was too small; the required size is returned (zero-length probe).
pub const STATUS_BUFFER_OVERFLOW: NTSTATUS = 0x8000_0005_u32 as i32;
/// Generic failure.
pub const STATUS_UNSUCCESSFUL: NTSTATUS = 0xC000_0001_u32 as i32;
/// The request is not implemented.
pub const STATUS_NOT_IMPLEMENTED: NTSTATUS = 0xC000_0002_u32 as i32;
/// An invalid parameter was passed.
pub const STATUS_INVALID_PARAMETER: NTSTATUS = 0xC000_000D_u32 as i32;
/// The request is not valid for this object.
pub const STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = 0xC000_0010_u32 as i32;
/// The buffer is too small for the data.
pub const STATUS_BUFFER_TOO_SMALL: NTSTATUS = 0xC000_0023_u32 as i32;
/// Integer overflow.
pub const STATUS_INTEGER_OVERFLOW: NTSTATUS = 0xC000_0095_u32 as i32;
/// Not enough resources (memory) to complete the request.
pub const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000_009A_u32 as i32;
/// The device (e.g. a stream pointer's frame) is not ready.
pub const STATUS_DEVICE_NOT_READY: NTSTATUS = 0xC000_00A3_u32 as i32;
/// The request is not supported.
pub const STATUS_NOT_SUPPORTED: NTSTATUS = 0xC000_00BB_u32 as i32;
/// The request was cancelled.
pub const STATUS_CANCELLED: NTSTATUS = 0xC000_0120_u32 as i32;
/// The object is in the wrong state for the request.
pub const STATUS_INVALID_DEVICE_STATE: NTSTATUS = 0xC000_0184_u32 as i32;
/// The buffer size is invalid.
pub const STATUS_INVALID_BUFFER_SIZE: NTSTATUS = 0xC000_0206_u32 as i32;
/// The item (e.g. a method or a pin's framing) was not found.
pub const STATUS_NOT_FOUND: NTSTATUS = 0xC000_0225_u32 as i32;
/// The property set is not supported.
pub const STATUS_PROPSET_NOT_FOUND: NTSTATUS = 0xC000_0230_u32 as i32;
