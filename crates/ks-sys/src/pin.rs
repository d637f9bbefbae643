//! AVStream pin descriptors: `KSPIN_DISPATCH`, `KSPIN_DESCRIPTOR`, `KSPIN_DESCRIPTOR_EX` and the
//! pin flags (ks-spec.md §4.1, §8.2).

use core::ffi::c_void;
use core::fmt;
use core::mem::{align_of, offset_of, size_of};

use crate::allocator::KSALLOCATOR_DISPATCH;
use crate::framing::KSALLOCATOR_FRAMING_EX;
use crate::guid::GUID;
use crate::opaque::{
    KSATTRIBUTE_LIST, KSAUTOMATION_TABLE, KSCLOCK_DISPATCH, KSDATAFORMAT, KSDATARANGE,
    KSMULTIPLE_ITEM, PIRP, PKSPIN,
};
use crate::property::{KSPIN_INTERFACE, KSPIN_MEDIUM};
use crate::status::NTSTATUS;
use crate::stream::KSSTATE;

/// Pin callback taking an IRP (`Create`, `Close`).
pub type PFNKSPINIRP = Option<unsafe extern "C" fn(Pin: PKSPIN, Irp: PIRP) -> NTSTATUS>;
/// Pin callback returning a status (`Process`, `Connect`).
///
/// ```
/// use ks_sys::*;
/// unsafe extern "C" fn process(_pin: PKSPIN) -> NTSTATUS { STATUS_SUCCESS }
/// let f: PFNKSPIN = Some(process);
/// assert!(f.is_some());
/// assert_eq!(core::mem::size_of::<PFNKSPIN>(), core::mem::size_of::<usize>());
/// ```
pub type PFNKSPIN = Option<unsafe extern "C" fn(Pin: PKSPIN) -> NTSTATUS>;
/// Pin callback without result (`Reset`, `Disconnect`).
pub type PFNKSPINVOID = Option<unsafe extern "C" fn(Pin: PKSPIN)>;
/// Data-format change callback.
pub type PFNKSPINSETDATAFORMAT = Option<
    unsafe extern "C" fn(
        Pin: PKSPIN,
        OldFormat: *mut KSDATAFORMAT,
        OldAttributeList: *mut KSMULTIPLE_ITEM,
        DataRange: *const KSDATARANGE,
        AttributeRange: *const KSATTRIBUTE_LIST,
    ) -> NTSTATUS,
>;
/// Device-state change callback.
pub type PFNKSPINSETDEVICESTATE =
    Option<unsafe extern "C" fn(Pin: PKSPIN, ToState: KSSTATE, FromState: KSSTATE) -> NTSTATUS>;
/// Data-range intersection handler (`KSP_PIN` is passed as an opaque pointer).
pub type PFNKSINTERSECTHANDLEREX = Option<
    unsafe extern "C" fn(
        Context: *mut c_void,
        Irp: PIRP,
        Pin: *mut c_void,
        DataRange: *mut KSDATARANGE,
        MatchingDataRange: *mut KSDATARANGE,
        DataBufferSize: u32,
        Data: *mut c_void,
        DataSize: *mut u32,
    ) -> NTSTATUS,
>;

/// A pin's dispatch table: ten optional pointers, `Allocator` last.
///
/// ```
/// use ks_sys::*;
/// static ALLOCATOR: KSALLOCATOR_DISPATCH = KSALLOCATOR_DISPATCH {
///     InitializeAllocator: None, DeleteAllocator: None, Allocate: None, Free: None,
/// };
/// let d = KSPIN_DISPATCH { Allocator: &ALLOCATOR, ..Default::default() };
/// assert!(!d.Allocator.is_null() && d.Clock.is_null());
/// let w = core::mem::size_of::<usize>();
/// assert_eq!(core::mem::size_of::<KSPIN_DISPATCH>(), 10 * w);
/// assert_eq!(core::mem::offset_of!(KSPIN_DISPATCH, Allocator), 9 * w);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPIN_DISPATCH {
    /// Pin creation.
    pub Create: PFNKSPINIRP,
    /// Pin close.
    pub Close: PFNKSPINIRP,
    /// Pin-centric processing.
    pub Process: PFNKSPIN,
    /// Reset.
    pub Reset: PFNKSPINVOID,
    /// Data-format change.
    pub SetDataFormat: PFNKSPINSETDATAFORMAT,
    /// Device-state change.
    pub SetDeviceState: PFNKSPINSETDEVICESTATE,
    /// Connection.
    pub Connect: PFNKSPIN,
    /// Disconnection.
    pub Disconnect: PFNKSPINVOID,
    /// Clock dispatch.
    pub Clock: *const KSCLOCK_DISPATCH,
    /// Vendor allocator (non-null: the pin can allocate at kernel level).
    pub Allocator: *const KSALLOCATOR_DISPATCH,
}

impl Default for KSPIN_DISPATCH {
    fn default() -> Self {
        KSPIN_DISPATCH {
            Create: None,
            Close: None,
            Process: None,
            Reset: None,
            SetDataFormat: None,
            SetDeviceState: None,
            Connect: None,
            Disconnect: None,
            Clock: core::ptr::null(),
            Allocator: core::ptr::null(),
        }
    }
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<KSPIN_DISPATCH>() == 80);
    assert!(align_of::<KSPIN_DISPATCH>() == 8);
    assert!(offset_of!(KSPIN_DISPATCH, Create) == 0);
    assert!(offset_of!(KSPIN_DISPATCH, Close) == 8);
    assert!(offset_of!(KSPIN_DISPATCH, Process) == 16);
    assert!(offset_of!(KSPIN_DISPATCH, Reset) == 24);
    assert!(offset_of!(KSPIN_DISPATCH, SetDataFormat) == 32);
    assert!(offset_of!(KSPIN_DISPATCH, SetDeviceState) == 40);
    assert!(offset_of!(KSPIN_DISPATCH, Connect) == 48);
    assert!(offset_of!(KSPIN_DISPATCH, Disconnect) == 56);
    assert!(offset_of!(KSPIN_DISPATCH, Clock) == 64);
    assert!(offset_of!(KSPIN_DISPATCH, Allocator) == 72);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<KSPIN_DISPATCH>() == 40);
    assert!(align_of::<KSPIN_DISPATCH>() == 4);
    assert!(offset_of!(KSPIN_DISPATCH, Create) == 0);
    assert!(offset_of!(KSPIN_DISPATCH, Close) == 4);
    assert!(offset_of!(KSPIN_DISPATCH, Process) == 8);
    assert!(offset_of!(KSPIN_DISPATCH, Reset) == 12);
    assert!(offset_of!(KSPIN_DISPATCH, SetDataFormat) == 16);
    assert!(offset_of!(KSPIN_DISPATCH, SetDeviceState) == 20);
    assert!(offset_of!(KSPIN_DISPATCH, Connect) == 24);
    assert!(offset_of!(KSPIN_DISPATCH, Disconnect) == 28);
    assert!(offset_of!(KSPIN_DISPATCH, Clock) == 32);
    assert!(offset_of!(KSPIN_DISPATCH, Allocator) == 36);
};

/// Data flow direction of a pin (`i32` enum).
///
/// ```
/// use ks_sys::*;
/// let flow: KSPIN_DATAFLOW = KSPIN_DATAFLOW_OUT;
/// assert_eq!((KSPIN_DATAFLOW_IN, flow), (1, 2));
/// ```
pub type KSPIN_DATAFLOW = i32;
/// Data flows into the pin.
pub const KSPIN_DATAFLOW_IN: KSPIN_DATAFLOW = 1;
/// Data flows out of the pin.
pub const KSPIN_DATAFLOW_OUT: KSPIN_DATAFLOW = 2;

/// Communication type of a pin (`i32` enum).
///
/// ```
/// use ks_sys::*;
/// // BOTH is SINK | SOURCE.
/// assert_eq!(KSPIN_COMMUNICATION_BOTH, KSPIN_COMMUNICATION_SINK | KSPIN_COMMUNICATION_SOURCE);
/// assert_eq!(KSPIN_COMMUNICATION_BRIDGE, 4);
/// ```
pub type KSPIN_COMMUNICATION = i32;
/// No communication.
pub const KSPIN_COMMUNICATION_NONE: KSPIN_COMMUNICATION = 0;
/// Sink (receives connections).
pub const KSPIN_COMMUNICATION_SINK: KSPIN_COMMUNICATION = 1;
/// Source (initiates connections; consults `KSPROPERTY_STREAM_ALLOCATOR`).
pub const KSPIN_COMMUNICATION_SOURCE: KSPIN_COMMUNICATION = 2;
/// Both sink and source.
pub const KSPIN_COMMUNICATION_BOTH: KSPIN_COMMUNICATION = 3;
/// Bridge.
pub const KSPIN_COMMUNICATION_BRIDGE: KSPIN_COMMUNICATION = 4;

/// The constrained-data-ranges member of [`KSPIN_DESCRIPTOR_0`].
///
/// ```
/// use ks_sys::*;
/// let c = KSPIN_DESCRIPTOR_0_0 { ConstrainedDataRangesCount: 0, ConstrainedDataRanges: core::ptr::null_mut() };
/// assert_eq!(c.ConstrainedDataRangesCount, 0);
/// assert_eq!(core::mem::size_of_val(&c), 2 * core::mem::size_of::<usize>());
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPIN_DESCRIPTOR_0_0 {
    /// Number of constrained data ranges.
    pub ConstrainedDataRangesCount: u32,
    /// The constrained data ranges.
    pub ConstrainedDataRanges: *mut *mut KSDATARANGE,
}

/// `Reserved` / constrained data ranges of a [`KSPIN_DESCRIPTOR`].
///
/// ```
/// use ks_sys::*;
/// let mut d = KSPIN_DESCRIPTOR::default();
/// d.Anonymous = KSPIN_DESCRIPTOR_0 { Reserved: 0 };
/// assert_eq!(core::mem::align_of::<KSPIN_DESCRIPTOR_0>(), 8);
/// assert_eq!(core::mem::size_of::<KSPIN_DESCRIPTOR_0>(), if cfg!(target_pointer_width = "64") { 16 } else { 8 });
/// ```
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub union KSPIN_DESCRIPTOR_0 {
    /// Reserved (`LONGLONG`).
    pub Reserved: i64,
    /// Constrained data ranges.
    pub Anonymous: KSPIN_DESCRIPTOR_0_0,
}

// Both widths: the union is as large and aligned as an `i64` (MSVC: 8 on x86 too).
const _: () = assert!(size_of::<KSPIN_DESCRIPTOR_0>() == size_of::<KSPIN_DESCRIPTOR_0_0>());
const _: () = assert!(align_of::<KSPIN_DESCRIPTOR_0>() == 8);
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<KSPIN_DESCRIPTOR_0_0>() == 16);
    assert!(align_of::<KSPIN_DESCRIPTOR_0_0>() == 8);
    assert!(offset_of!(KSPIN_DESCRIPTOR_0_0, ConstrainedDataRanges) == 8);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<KSPIN_DESCRIPTOR_0_0>() == 8);
    assert!(align_of::<KSPIN_DESCRIPTOR_0_0>() == 4);
    assert!(offset_of!(KSPIN_DESCRIPTOR_0_0, ConstrainedDataRanges) == 4);
};

impl fmt::Debug for KSPIN_DESCRIPTOR_0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KSPIN_DESCRIPTOR_0").finish_non_exhaustive()
    }
}

/// A pin type's static description (x64 88 bytes, x86 48).
///
/// ```
/// use ks_sys::*;
/// static CATEGORY: GUID = GUID::from_u128(0x65e8773d_8f56_11d0_a3b9_00a0c9223196);
/// let d = KSPIN_DESCRIPTOR {
///     DataFlow: KSPIN_DATAFLOW_OUT,
///     Communication: KSPIN_COMMUNICATION_SINK,
///     Category: &CATEGORY,
///     ..Default::default()
/// };
/// assert_eq!(d.DataRangesCount, 0);
/// assert_eq!(core::mem::size_of_val(&d), if cfg!(target_pointer_width = "64") { 88 } else { 48 });
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPIN_DESCRIPTOR {
    /// Number of interfaces.
    pub InterfacesCount: u32,
    /// Interfaces.
    pub Interfaces: *const KSPIN_INTERFACE,
    /// Number of mediums.
    pub MediumsCount: u32,
    /// Mediums.
    pub Mediums: *const KSPIN_MEDIUM,
    /// Number of data ranges.
    pub DataRangesCount: u32,
    /// Data ranges.
    pub DataRanges: *const *mut KSDATARANGE,
    /// Data flow (`KSPIN_DATAFLOW_*`).
    pub DataFlow: KSPIN_DATAFLOW,
    /// Communication (`KSPIN_COMMUNICATION_*`).
    pub Communication: KSPIN_COMMUNICATION,
    /// Pin category.
    pub Category: *const GUID,
    /// Pin name.
    pub Name: *const GUID,
    /// Reserved / constrained data ranges.
    pub Anonymous: KSPIN_DESCRIPTOR_0,
}

impl Default for KSPIN_DESCRIPTOR {
    fn default() -> Self {
        KSPIN_DESCRIPTOR {
            InterfacesCount: 0,
            Interfaces: core::ptr::null(),
            MediumsCount: 0,
            Mediums: core::ptr::null(),
            DataRangesCount: 0,
            DataRanges: core::ptr::null(),
            DataFlow: 0,
            Communication: KSPIN_COMMUNICATION_NONE,
            Category: core::ptr::null(),
            Name: core::ptr::null(),
            Anonymous: KSPIN_DESCRIPTOR_0 { Reserved: 0 },
        }
    }
}

const _: () = assert!(align_of::<KSPIN_DESCRIPTOR>() == 8);
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<KSPIN_DESCRIPTOR>() == 88);
    assert!(offset_of!(KSPIN_DESCRIPTOR, InterfacesCount) == 0);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Interfaces) == 8);
    assert!(offset_of!(KSPIN_DESCRIPTOR, MediumsCount) == 16);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Mediums) == 24);
    assert!(offset_of!(KSPIN_DESCRIPTOR, DataRangesCount) == 32);
    assert!(offset_of!(KSPIN_DESCRIPTOR, DataRanges) == 40);
    assert!(offset_of!(KSPIN_DESCRIPTOR, DataFlow) == 48);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Communication) == 52);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Category) == 56);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Name) == 64);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Anonymous) == 72);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<KSPIN_DESCRIPTOR>() == 48);
    assert!(offset_of!(KSPIN_DESCRIPTOR, InterfacesCount) == 0);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Interfaces) == 4);
    assert!(offset_of!(KSPIN_DESCRIPTOR, MediumsCount) == 8);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Mediums) == 12);
    assert!(offset_of!(KSPIN_DESCRIPTOR, DataRangesCount) == 16);
    assert!(offset_of!(KSPIN_DESCRIPTOR, DataRanges) == 20);
    assert!(offset_of!(KSPIN_DESCRIPTOR, DataFlow) == 24);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Communication) == 28);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Category) == 32);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Name) == 36);
    assert!(offset_of!(KSPIN_DESCRIPTOR, Anonymous) == 40);
};

/// An AVStream pin descriptor (x64 136 bytes, x86 80).
///
/// ```
/// use ks_sys::*;
/// static FRAMING: KSALLOCATOR_FRAMING_EX = DECLARE_SIMPLE_FRAMING_EX(
///     KSMEMORY_TYPE_KERNEL_NONPAGED, KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY, 4, FILE_QUAD_ALIGNMENT, 4096, 4096);
/// let d = KSPIN_DESCRIPTOR_EX {
///     Flags: KSPIN_FLAG_GENERATE_MAPPINGS,
///     InstancesPossible: 1,
///     InstancesNecessary: 1,
///     AllocatorFraming: &FRAMING,
///     ..Default::default()
/// };
/// assert!(d.Dispatch.is_null() && !d.AllocatorFraming.is_null());
/// assert_eq!(core::mem::size_of_val(&d), if cfg!(target_pointer_width = "64") { 136 } else { 80 });
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPIN_DESCRIPTOR_EX {
    /// Dispatch table (may be null).
    pub Dispatch: *const KSPIN_DISPATCH,
    /// Automation table (may be null).
    pub AutomationTable: *const KSAUTOMATION_TABLE,
    /// The KS pin descriptor.
    pub PinDescriptor: KSPIN_DESCRIPTOR,
    /// `KSPIN_FLAG_*` bits.
    pub Flags: u32,
    /// Instances possible.
    pub InstancesPossible: u32,
    /// Instances necessary.
    pub InstancesNecessary: u32,
    /// Framing (null: the pin does not support the framing property).
    pub AllocatorFraming: *const KSALLOCATOR_FRAMING_EX,
    /// Data intersection handler.
    pub IntersectHandler: PFNKSINTERSECTHANDLEREX,
}

impl Default for KSPIN_DESCRIPTOR_EX {
    fn default() -> Self {
        KSPIN_DESCRIPTOR_EX {
            Dispatch: core::ptr::null(),
            AutomationTable: core::ptr::null(),
            PinDescriptor: KSPIN_DESCRIPTOR::default(),
            Flags: 0,
            InstancesPossible: 0,
            InstancesNecessary: 0,
            AllocatorFraming: core::ptr::null(),
            IntersectHandler: None,
        }
    }
}

const _: () = assert!(align_of::<KSPIN_DESCRIPTOR_EX>() == 8);
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<KSPIN_DESCRIPTOR_EX>() == 136);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, Dispatch) == 0);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, AutomationTable) == 8);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, PinDescriptor) == 16);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, Flags) == 104);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, InstancesPossible) == 108);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, InstancesNecessary) == 112);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, AllocatorFraming) == 120);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, IntersectHandler) == 128);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<KSPIN_DESCRIPTOR_EX>() == 80);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, Dispatch) == 0);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, AutomationTable) == 4);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, PinDescriptor) == 8);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, Flags) == 56);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, InstancesPossible) == 60);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, InstancesNecessary) == 64);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, AllocatorFraming) == 68);
    assert!(offset_of!(KSPIN_DESCRIPTOR_EX, IntersectHandler) == 72);
};

/// Filter flag: process at DISPATCH_LEVEL.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(KSFILTER_FLAG_CRITICAL_PROCESSING | KSFILTER_FLAG_HYPERCRITICAL_PROCESSING, 0x6);
/// assert_eq!(KSFILTER_FLAG_DENY_USERMODE_ACCESS, 0x8000_0000);
/// ```
pub const KSFILTER_FLAG_DISPATCH_LEVEL_PROCESSING: u32 = 0x0000_0001;
/// Filter flag: critical processing.
pub const KSFILTER_FLAG_CRITICAL_PROCESSING: u32 = 0x0000_0002;
/// Filter flag: hypercritical processing.
pub const KSFILTER_FLAG_HYPERCRITICAL_PROCESSING: u32 = 0x0000_0004;
/// Filter flag: receive zero-length samples.
pub const KSFILTER_FLAG_RECEIVE_ZERO_LENGTH_SAMPLES: u32 = 0x0000_0008;
/// Filter flag: deny user-mode access.
pub const KSFILTER_FLAG_DENY_USERMODE_ACCESS: u32 = 0x8000_0000;

/// Pin flag: process at DISPATCH_LEVEL.
///
/// ```
/// use ks_sys::*;
/// // The low processing flags share the filter flags' values.
/// assert_eq!(KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING, KSFILTER_FLAG_DISPATCH_LEVEL_PROCESSING);
/// assert_eq!(KSPIN_FLAG_RENDERER, 0x0021_0000);
/// assert_ne!(KSPIN_FLAG_RENDERER & KSPIN_FLAG_GENERATE_EOS_EVENTS, 0);
/// ```
pub const KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING: u32 = KSFILTER_FLAG_DISPATCH_LEVEL_PROCESSING;
/// Pin flag: critical processing.
pub const KSPIN_FLAG_CRITICAL_PROCESSING: u32 = KSFILTER_FLAG_CRITICAL_PROCESSING;
/// Pin flag: hypercritical processing.
pub const KSPIN_FLAG_HYPERCRITICAL_PROCESSING: u32 = KSFILTER_FLAG_HYPERCRITICAL_PROCESSING;
/// Pin flag: asynchronous processing.
pub const KSPIN_FLAG_ASYNCHRONOUS_PROCESSING: u32 = 0x0000_0008;
/// Pin flag: never start processing on frame arrival.
pub const KSPIN_FLAG_DO_NOT_INITIATE_PROCESSING: u32 = 0x0000_0010;
/// Pin flag: start processing on every frame arrival.
pub const KSPIN_FLAG_INITIATE_PROCESSING_ON_EVERY_ARRIVAL: u32 = 0x0000_0020;
/// Pin flag: frames are not required for processing.
pub const KSPIN_FLAG_FRAMES_NOT_REQUIRED_FOR_PROCESSING: u32 = 0x0000_0040;
/// Pin flag: complete frames in FIFO order.
pub const KSPIN_FLAG_ENFORCE_FIFO: u32 = 0x0000_0080;
/// Pin flag: generate scatter/gather mappings (`KSSTREAM_POINTER_OFFSET::Mappings`).
pub const KSPIN_FLAG_GENERATE_MAPPINGS: u32 = 0x0000_0100;
/// Pin flag: the queue has a trailing edge distinct from the leading edge.
pub const KSPIN_FLAG_DISTINCT_TRAILING_EDGE: u32 = 0x0000_0200;
/// Pin flag: process in RUN state only.
pub const KSPIN_FLAG_PROCESS_IN_RUN_STATE_ONLY: u32 = 0x0001_0000;
/// Pin flag: splitter.
pub const KSPIN_FLAG_SPLITTER: u32 = 0x0002_0000;
/// Pin flag: use the standard transport.
pub const KSPIN_FLAG_USE_STANDARD_TRANSPORT: u32 = 0x0004_0000;
/// Pin flag: no standard transport (no queue, no pipe section).
pub const KSPIN_FLAG_DO_NOT_USE_STANDARD_TRANSPORT: u32 = 0x0008_0000;
/// Pin flag: fixed format.
pub const KSPIN_FLAG_FIXED_FORMAT: u32 = 0x0010_0000;
/// Pin flag: generate end-of-stream events.
pub const KSPIN_FLAG_GENERATE_EOS_EVENTS: u32 = 0x0020_0000;
/// Pin flag: renderer (`PROCESS_IN_RUN_STATE_ONLY | GENERATE_EOS_EVENTS`).
pub const KSPIN_FLAG_RENDERER: u32 =
    KSPIN_FLAG_PROCESS_IN_RUN_STATE_ONLY | KSPIN_FLAG_GENERATE_EOS_EVENTS;
/// Pin flag: the pin implements a clock.
pub const KSPIN_FLAG_IMPLEMENT_CLOCK: u32 = 0x0040_0000;
/// Pin flag: some frames are required for processing.
pub const KSPIN_FLAG_SOME_FRAMES_REQUIRED_FOR_PROCESSING: u32 = 0x0080_0000;
/// Pin flag: process if any pin is in RUN state.
pub const KSPIN_FLAG_PROCESS_IF_ANY_IN_RUN_STATE: u32 = 0x0100_0000;
/// Pin flag: deny user-mode access.
pub const KSPIN_FLAG_DENY_USERMODE_ACCESS: u32 = 0x8000_0000;
