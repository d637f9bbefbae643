//! Requests: `KSIDENTIFIER` (= `KSPROPERTY` / `KSMETHOD` / `KSEVENT`), the KS IOCTLs, request
//! type flags and the property, method and event ids of the allocator subsystem
//! (ks-spec.md §1.2, §5.5–§5.8).

use core::fmt;
use core::mem::{align_of, offset_of, size_of};

use crate::guid::GUID;

/// The set/id/flags triple of a [`KSIDENTIFIER`].
///
/// ```
/// use ks_sys::*;
/// let t = KSIDENTIFIER_0_0 { Set: KSPROPSETID_StreamAllocator, Id: KSPROPERTY_STREAMALLOCATOR_STATUS, Flags: KSPROPERTY_TYPE_GET };
/// assert_eq!(core::mem::size_of_val(&t), 24);
/// assert_eq!(core::mem::offset_of!(KSIDENTIFIER_0_0, Id), 16);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct KSIDENTIFIER_0_0 {
    /// Property, method or event set.
    pub Set: GUID,
    /// Item id within the set.
    pub Id: u32,
    /// `KSPROPERTY_TYPE_*` / `KSMETHOD_TYPE_*` / `KSEVENT_TYPE_*` flags.
    pub Flags: u32,
}

/// The union that gives [`KSIDENTIFIER`] its 8-byte alignment.
///
/// ```
/// use ks_sys::*;
/// let mut p = KSPROPERTY::default();
/// p.Anonymous = KSIDENTIFIER_0 { Alignment: 0 };
/// assert_eq!(core::mem::size_of::<KSIDENTIFIER_0>(), 24);
/// assert_eq!(core::mem::align_of::<KSIDENTIFIER_0>(), 8);
/// ```
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub union KSIDENTIFIER_0 {
    /// Set, id and flags.
    pub Anonymous: KSIDENTIFIER_0_0,
    /// Forces 8-byte alignment (`LONGLONG`).
    pub Alignment: i64,
}

const _: () = assert!(size_of::<KSIDENTIFIER_0_0>() == 24);
const _: () = assert!(align_of::<KSIDENTIFIER_0_0>() == 4);
const _: () = assert!(size_of::<KSIDENTIFIER_0>() == 24);
const _: () = assert!(align_of::<KSIDENTIFIER_0>() == 8);

impl Default for KSIDENTIFIER_0 {
    fn default() -> Self {
        KSIDENTIFIER_0 {
            Anonymous: KSIDENTIFIER_0_0::default(),
        }
    }
}

impl fmt::Debug for KSIDENTIFIER_0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KSIDENTIFIER_0").finish_non_exhaustive()
    }
}

/// Header of every property, method and event request (24 bytes, 8-byte aligned).
///
/// ```
/// use ks_sys::*;
/// let p = KSIDENTIFIER::new(KSPROPSETID_Connection,
///     KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX, KSPROPERTY_TYPE_GET);
/// assert_eq!(core::mem::size_of_val(&p), 24);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct KSIDENTIFIER {
    /// Set/id/flags, or the alignment member.
    pub Anonymous: KSIDENTIFIER_0,
}

impl KSIDENTIFIER {
    /// Builds an identifier from its set, id and flags.
    ///
    /// ```
    /// use ks_sys::*;
    /// let m = KSIDENTIFIER::new(KSMETHODSETID_StreamAllocator, KSMETHOD_STREAMALLOCATOR_ALLOC, KSMETHOD_TYPE_WRITE);
    /// assert_eq!(core::mem::size_of_val(&m), 24);
    /// ```
    pub const fn new(Set: GUID, Id: u32, Flags: u32) -> KSIDENTIFIER {
        KSIDENTIFIER {
            Anonymous: KSIDENTIFIER_0 {
                Anonymous: KSIDENTIFIER_0_0 { Set, Id, Flags },
            },
        }
    }
}

const _: () = assert!(size_of::<KSIDENTIFIER>() == 24);
const _: () = assert!(align_of::<KSIDENTIFIER>() == 8);
const _: () = assert!(offset_of!(KSIDENTIFIER, Anonymous) == 0);
const _: () = assert!(offset_of!(KSIDENTIFIER_0_0, Set) == 0);
const _: () = assert!(offset_of!(KSIDENTIFIER_0_0, Id) == 16);
const _: () = assert!(offset_of!(KSIDENTIFIER_0_0, Flags) == 20);

/// A property request header.
///
/// ```
/// use ks_sys::*;
/// let p: KSPROPERTY = KSIDENTIFIER::new(KSPROPSETID_Stream, KSPROPERTY_STREAM_ALLOCATOR, KSPROPERTY_TYPE_SET);
/// assert_eq!(core::mem::size_of_val(&p), core::mem::size_of::<KSEVENT>());
/// ```
pub type KSPROPERTY = KSIDENTIFIER;
/// A method request header.
pub type KSMETHOD = KSIDENTIFIER;
/// An event request header.
pub type KSEVENT = KSIDENTIFIER;
/// A pin interface (set + id).
pub type KSPIN_INTERFACE = KSIDENTIFIER;
/// A pin medium (set + id).
pub type KSPIN_MEDIUM = KSIDENTIFIER;

/// Device type of every KS IOCTL.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(IOCTL_KS_PROPERTY >> 16, FILE_DEVICE_KS);
/// assert_eq!(IOCTL_KS_PROPERTY & 3, METHOD_NEITHER);
/// assert_eq!((IOCTL_KS_WRITE_STREAM >> 14) & 3, FILE_WRITE_ACCESS);
/// ```
pub const FILE_DEVICE_KS: u32 = 0x0000_002F;
/// Buffered transfer type.
pub const METHOD_BUFFERED: u32 = 0;
/// Direct-input transfer type.
pub const METHOD_IN_DIRECT: u32 = 1;
/// Direct-output transfer type.
pub const METHOD_OUT_DIRECT: u32 = 2;
/// Neither-buffered-nor-direct transfer type (used by every KS IOCTL).
pub const METHOD_NEITHER: u32 = 3;
/// Any access.
pub const FILE_ANY_ACCESS: u32 = 0;
/// Read access.
pub const FILE_READ_ACCESS: u32 = 1;
/// Write access.
pub const FILE_WRITE_ACCESS: u32 = 2;

/// The `CTL_CODE` macro: `(device << 16) | (access << 14) | (function << 2) | method`.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(CTL_CODE(FILE_DEVICE_KS, 5, METHOD_NEITHER, FILE_READ_ACCESS), IOCTL_KS_READ_STREAM);
/// ```
pub const fn CTL_CODE(DeviceType: u32, Function: u32, Method: u32, Access: u32) -> u32 {
    (DeviceType << 16) | (Access << 14) | (Function << 2) | Method
}

/// Property request.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(IOCTL_KS_PROPERTY, 0x002F_0003);
/// assert_eq!(IOCTL_KS_METHOD, 0x002F_000F);
/// assert_eq!(IOCTL_KS_READ_STREAM, 0x002F_4017);
/// ```
pub const IOCTL_KS_PROPERTY: u32 = CTL_CODE(FILE_DEVICE_KS, 0, METHOD_NEITHER, FILE_ANY_ACCESS);
/// Enable an event.
pub const IOCTL_KS_ENABLE_EVENT: u32 = CTL_CODE(FILE_DEVICE_KS, 1, METHOD_NEITHER, FILE_ANY_ACCESS);
/// Disable an event.
pub const IOCTL_KS_DISABLE_EVENT: u32 =
    CTL_CODE(FILE_DEVICE_KS, 2, METHOD_NEITHER, FILE_ANY_ACCESS);
/// Method request.
pub const IOCTL_KS_METHOD: u32 = CTL_CODE(FILE_DEVICE_KS, 3, METHOD_NEITHER, FILE_ANY_ACCESS);
/// Write stream data.
pub const IOCTL_KS_WRITE_STREAM: u32 =
    CTL_CODE(FILE_DEVICE_KS, 4, METHOD_NEITHER, FILE_WRITE_ACCESS);
/// Read stream data.
pub const IOCTL_KS_READ_STREAM: u32 = CTL_CODE(FILE_DEVICE_KS, 5, METHOD_NEITHER, FILE_READ_ACCESS);
/// Reset the stream state.
pub const IOCTL_KS_RESET_STATE: u32 = CTL_CODE(FILE_DEVICE_KS, 6, METHOD_NEITHER, FILE_ANY_ACCESS);
/// Pin handshake (kernel).
pub const IOCTL_KS_HANDSHAKE: u32 = CTL_CODE(FILE_DEVICE_KS, 7, METHOD_NEITHER, FILE_ANY_ACCESS);

/// Property flag: get.
///
/// ```
/// use ks_sys::*;
/// let flags = KSPROPERTY_TYPE_GET | KSPROPERTY_TYPE_TOPOLOGY;
/// assert_eq!(flags, 0x1000_0001);
/// assert_eq!(KSPROPERTY_TYPE_BASICSUPPORT, 0x200);
/// ```
pub const KSPROPERTY_TYPE_GET: u32 = 0x0000_0001;
/// Property flag: set.
pub const KSPROPERTY_TYPE_SET: u32 = 0x0000_0002;
/// Property flag: query whether the set is supported.
pub const KSPROPERTY_TYPE_SETSUPPORT: u32 = 0x0000_0100;
/// Property flag: query basic support (access flags, ranges).
pub const KSPROPERTY_TYPE_BASICSUPPORT: u32 = 0x0000_0200;
/// Property flag: query related properties.
pub const KSPROPERTY_TYPE_RELATIONS: u32 = 0x0000_0400;
/// Property flag: serialize the set.
pub const KSPROPERTY_TYPE_SERIALIZESET: u32 = 0x0000_0800;
/// Property flag: unserialize the set.
pub const KSPROPERTY_TYPE_UNSERIALIZESET: u32 = 0x0000_1000;
/// Property flag: serialize raw.
pub const KSPROPERTY_TYPE_SERIALIZERAW: u32 = 0x0000_2000;
/// Property flag: unserialize raw.
pub const KSPROPERTY_TYPE_UNSERIALIZERAW: u32 = 0x0000_4000;
/// Property flag: query the serialized size.
pub const KSPROPERTY_TYPE_SERIALIZESIZE: u32 = 0x0000_8000;
/// Property flag: query default values.
pub const KSPROPERTY_TYPE_DEFAULTVALUES: u32 = 0x0001_0000;
/// Property flag: the request addresses a topology node.
pub const KSPROPERTY_TYPE_TOPOLOGY: u32 = 0x1000_0000;

/// Method flag: none.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(KSMETHOD_TYPE_MODIFY, KSMETHOD_TYPE_READ | KSMETHOD_TYPE_WRITE);
/// assert_eq!(KSMETHOD_TYPE_SEND, KSMETHOD_TYPE_READ);
/// ```
pub const KSMETHOD_TYPE_NONE: u32 = 0x0000_0000;
/// Method flag: the handler reads the caller's data buffer.
pub const KSMETHOD_TYPE_READ: u32 = 0x0000_0001;
/// Method flag: the handler writes the caller's data buffer.
pub const KSMETHOD_TYPE_WRITE: u32 = 0x0000_0002;
/// Method flag: read and write.
pub const KSMETHOD_TYPE_MODIFY: u32 = 0x0000_0003;
/// Method flag: the data buffer is a source.
pub const KSMETHOD_TYPE_SOURCE: u32 = 0x0000_0004;
/// Method flag: send (= `KSMETHOD_TYPE_READ`).
pub const KSMETHOD_TYPE_SEND: u32 = 0x0000_0001;
/// Method flag: query whether the set is supported.
pub const KSMETHOD_TYPE_SETSUPPORT: u32 = 0x0000_0100;
/// Method flag: query basic support.
pub const KSMETHOD_TYPE_BASICSUPPORT: u32 = 0x0000_0200;
/// Method flag: the request addresses a topology node.
pub const KSMETHOD_TYPE_TOPOLOGY: u32 = 0x1000_0000;

/// Event flag: enable.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(KSEVENT_TYPE_ENABLE | KSEVENT_TYPE_ONESHOT, 0x3);
/// assert_eq!(KSEVENT_TYPE_TOPOLOGY, KSPROPERTY_TYPE_TOPOLOGY);
/// ```
pub const KSEVENT_TYPE_ENABLE: u32 = 0x0000_0001;
/// Event flag: one-shot.
pub const KSEVENT_TYPE_ONESHOT: u32 = 0x0000_0002;
/// Event flag: enable buffered.
pub const KSEVENT_TYPE_ENABLEBUFFERED: u32 = 0x0000_0004;
/// Event flag: query whether the set is supported.
pub const KSEVENT_TYPE_SETSUPPORT: u32 = 0x0000_0100;
/// Event flag: query basic support.
pub const KSEVENT_TYPE_BASICSUPPORT: u32 = 0x0000_0200;
/// Event flag: query the event buffer.
pub const KSEVENT_TYPE_QUERYBUFFER: u32 = 0x0000_0400;
/// Event flag: the request addresses a topology node.
pub const KSEVENT_TYPE_TOPOLOGY: u32 = 0x1000_0000;

/// Ids of `KSPROPSETID_StreamAllocator` (a C enum; typed `u32` here because ids are stored in
/// [`KSIDENTIFIER_0_0::Id`]).
///
/// ```
/// use ks_sys::*;
/// let status = KSIDENTIFIER::new(KSPROPSETID_StreamAllocator, KSPROPERTY_STREAMALLOCATOR_STATUS, KSPROPERTY_TYPE_GET);
/// assert_eq!((KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE, KSPROPERTY_STREAMALLOCATOR_STATUS), (0, 1));
/// assert_eq!(core::mem::size_of_val(&status), 24);
/// ```
pub type KSPROPERTY_STREAMALLOCATOR = u32;
/// Get the DISPATCH_LEVEL function table (`KSSTREAMALLOCATOR_FUNCTIONTABLE`).
pub const KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE: KSPROPERTY_STREAMALLOCATOR = 0;
/// Get the allocator status (`KSSTREAMALLOCATOR_STATUS`).
pub const KSPROPERTY_STREAMALLOCATOR_STATUS: KSPROPERTY_STREAMALLOCATOR = 1;

/// Ids of `KSMETHODSETID_StreamAllocator`.
///
/// ```
/// use ks_sys::*;
/// assert_eq!((KSMETHOD_STREAMALLOCATOR_ALLOC, KSMETHOD_STREAMALLOCATOR_FREE), (0, 1));
/// ```
pub type KSMETHOD_STREAMALLOCATOR = u32;
/// Allocate one frame (may pend).
pub const KSMETHOD_STREAMALLOCATOR_ALLOC: KSMETHOD_STREAMALLOCATOR = 0;
/// Free one frame.
pub const KSMETHOD_STREAMALLOCATOR_FREE: KSMETHOD_STREAMALLOCATOR = 1;

/// Ids of `KSEVENTSETID_StreamAllocator`.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME, 0);
/// assert_eq!(KSEVENT_STREAMALLOCATOR_FREEFRAME, 1);
/// ```
pub type KSEVENT_STREAMALLOCATOR = u32;
/// Internal: services pending ALLOC requests; clients must not enable it.
pub const KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME: KSEVENT_STREAMALLOCATOR = 0;
/// Signalled when a free frame becomes available.
pub const KSEVENT_STREAMALLOCATOR_FREEFRAME: KSEVENT_STREAMALLOCATOR = 1;

/// Ids of `KSPROPSETID_Connection`.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(KSPROPERTY_CONNECTION_ALLOCATORFRAMING, 3);
/// assert_eq!(KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX, 6);
/// ```
pub type KSPROPERTY_CONNECTION = u32;
/// Connection state (`KSSTATE`).
pub const KSPROPERTY_CONNECTION_STATE: KSPROPERTY_CONNECTION = 0;
/// Connection priority.
pub const KSPROPERTY_CONNECTION_PRIORITY: KSPROPERTY_CONNECTION = 1;
/// Data format.
pub const KSPROPERTY_CONNECTION_DATAFORMAT: KSPROPERTY_CONNECTION = 2;
/// Framing requirements (`KSALLOCATOR_FRAMING`).
pub const KSPROPERTY_CONNECTION_ALLOCATORFRAMING: KSPROPERTY_CONNECTION = 3;
/// Propose a data format.
pub const KSPROPERTY_CONNECTION_PROPOSEDATAFORMAT: KSPROPERTY_CONNECTION = 4;
/// Acquire ordering.
pub const KSPROPERTY_CONNECTION_ACQUIREORDERING: KSPROPERTY_CONNECTION = 5;
/// Extended framing requirements (`KSALLOCATOR_FRAMING_EX`, variable length).
pub const KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX: KSPROPERTY_CONNECTION = 6;
/// Start at a given time.
pub const KSPROPERTY_CONNECTION_STARTAT: KSPROPERTY_CONNECTION = 7;

/// Ids of `KSPROPSETID_Stream`.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(KSPROPERTY_STREAM_ALLOCATOR, 0);
/// assert_eq!(KSPROPERTY_STREAM_PIPE_ID, 10);
/// ```
pub type KSPROPERTY_STREAM = u32;
/// The allocator a connection point uses (`HANDLE`).
pub const KSPROPERTY_STREAM_ALLOCATOR: KSPROPERTY_STREAM = 0;
/// Stream quality.
pub const KSPROPERTY_STREAM_QUALITY: KSPROPERTY_STREAM = 1;
/// Stream degradation.
pub const KSPROPERTY_STREAM_DEGRADATION: KSPROPERTY_STREAM = 2;
/// Master clock.
pub const KSPROPERTY_STREAM_MASTERCLOCK: KSPROPERTY_STREAM = 3;
/// Time format.
pub const KSPROPERTY_STREAM_TIMEFORMAT: KSPROPERTY_STREAM = 4;
/// Presentation time.
pub const KSPROPERTY_STREAM_PRESENTATIONTIME: KSPROPERTY_STREAM = 5;
/// Presentation extent.
pub const KSPROPERTY_STREAM_PRESENTATIONEXTENT: KSPROPERTY_STREAM = 6;
/// Frame time.
pub const KSPROPERTY_STREAM_FRAMETIME: KSPROPERTY_STREAM = 7;
/// Rate capability.
pub const KSPROPERTY_STREAM_RATECAPABILITY: KSPROPERTY_STREAM = 8;
/// Rate.
pub const KSPROPERTY_STREAM_RATE: KSPROPERTY_STREAM = 9;
/// Pipe id (opaque `HANDLE`, KS proxy ↔ AVStream).
pub const KSPROPERTY_STREAM_PIPE_ID: KSPROPERTY_STREAM = 10;

/// Id in `KSPROPSETID_MemoryTransport`: choose a pin's memory transport (set-only, `BOOL`).
///
/// ```
/// use ks_sys::*;
/// let set = KSIDENTIFIER::new(KSPROPSETID_MemoryTransport, KSPROPERTY_MEMORY_TRANSPORT, KSPROPERTY_TYPE_SET);
/// assert_eq!(core::mem::size_of_val(&set), 24);
/// assert_eq!(KSPROPERTY_MEMORY_TRANSPORT, 1);
/// ```
pub const KSPROPERTY_MEMORY_TRANSPORT: u32 = 1;
