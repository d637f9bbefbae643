//! Names and values of the KS proxy (`ksproxy.h`) types that describe allocator selection and
//! pipes (ks-spec.md §7.2). Microsoft documents them as "for proxy use"; only the values are
//! known, not the algorithm behind them.

use core::mem::{align_of, offset_of, size_of};

use crate::framing::{KS_COMPRESSION, KS_FRAMING_RANGE, KS_FRAMING_RANGE_WEIGHTED};
use crate::guid::{GUID, GUID_NULL};
use crate::opaque::IKsAllocatorEx;

/// Where an allocator lives (`KSALLOCATORMODE`, `i32` enum).
///
/// ```
/// use ks_sys::*;
/// assert_eq!((KsAllocatorMode_User, KsAllocatorMode_Kernel), (0, 1));
/// ```
pub type KSALLOCATORMODE = i32;
/// User-mode allocator.
pub const KsAllocatorMode_User: KSALLOCATORMODE = 0;
/// Kernel-mode allocator.
pub const KsAllocatorMode_Kernel: KSALLOCATORMODE = 1;

/// Which framing property a pin supports (`FRAMING_PROP`).
///
/// ```
/// use ks_sys::*;
/// assert_eq!(FramingProp_Old, 2);
/// assert_eq!(FramingProp_Ex, 3);
/// ```
pub type FRAMING_PROP = i32;
/// Not queried yet.
pub const FramingProp_Uninitialized: FRAMING_PROP = 0;
/// No framing property.
pub const FramingProp_None: FRAMING_PROP = 1;
/// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING`.
pub const FramingProp_Old: FRAMING_PROP = 2;
/// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX`.
pub const FramingProp_Ex: FRAMING_PROP = 3;

/// Framing-cache operation (`FRAMING_CACHE_OPS`).
///
/// ```
/// use ks_sys::*;
/// assert_eq!(Framing_Cache_Update, 0);
/// assert_eq!(Framing_Cache_Write, 3);
/// ```
pub type FRAMING_CACHE_OPS = i32;
/// Bypass the cache.
pub const Framing_Cache_Update: FRAMING_CACHE_OPS = 0;
/// Last value read.
pub const Framing_Cache_ReadLast: FRAMING_CACHE_OPS = 1;
/// Original value.
pub const Framing_Cache_ReadOrig: FRAMING_CACHE_OPS = 2;
/// Write.
pub const Framing_Cache_Write: FRAMING_CACHE_OPS = 3;

/// Summed optimal-range weights of a pipe (24 bytes).
///
/// ```
/// use ks_sys::OPTIMAL_WEIGHT_TOTALS;
/// let t = OPTIMAL_WEIGHT_TOTALS { MinTotalNominator: 1, MaxTotalNominator: 2, TotalDenominator: 4 };
/// assert!(t.MinTotalNominator <= t.MaxTotalNominator);
/// assert_eq!(core::mem::size_of_val(&t), 24);
/// ```
#[repr(C, align(8))]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct OPTIMAL_WEIGHT_TOTALS {
    /// Minimum total numerator (sic: "Nominator").
    pub MinTotalNominator: i64,
    /// Maximum total numerator.
    pub MaxTotalNominator: i64,
    /// Total denominator.
    pub TotalDenominator: i64,
}

const _: () = assert!(size_of::<OPTIMAL_WEIGHT_TOTALS>() == 24);
const _: () = assert!(align_of::<OPTIMAL_WEIGHT_TOTALS>() == 8);
const _: () = assert!(offset_of!(OPTIMAL_WEIGHT_TOTALS, MinTotalNominator) == 0);
const _: () = assert!(offset_of!(OPTIMAL_WEIGHT_TOTALS, MaxTotalNominator) == 8);
const _: () = assert!(offset_of!(OPTIMAL_WEIGHT_TOTALS, TotalDenominator) == 16);

/// Allocator strategy: no preference.
///
/// ```
/// use ks_sys::*;
/// let s = AllocatorStrategy_MinimizeNumberOfFrames | AllocatorStrategy_MaximizeSpeed;
/// assert_eq!(s, 0x9);
/// ```
pub const AllocatorStrategy_DontCare: u32 = 0;
/// Allocator strategy: minimise the number of frames.
pub const AllocatorStrategy_MinimizeNumberOfFrames: u32 = 0x0000_0001;
/// Allocator strategy: minimise the frame size.
pub const AllocatorStrategy_MinimizeFrameSize: u32 = 0x0000_0002;
/// Allocator strategy: minimise the number of allocators.
pub const AllocatorStrategy_MinimizeNumberOfAllocators: u32 = 0x0000_0004;
/// Allocator strategy: maximise speed.
pub const AllocatorStrategy_MaximizeSpeed: u32 = 0x0000_0008;

/// Pipe factor: none.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(PipeFactor_PhysicalRanges | PipeFactor_OptimalRanges, 0x30);
/// assert_eq!(PipeFactor_LogicalEnd, 0x800);
/// ```
pub const PipeFactor_None: u32 = 0;
/// Pipe factor: user-mode upstream.
pub const PipeFactor_UserModeUpstream: u32 = 0x0000_0001;
/// Pipe factor: user-mode downstream.
pub const PipeFactor_UserModeDownstream: u32 = 0x0000_0002;
/// Pipe factor: memory types.
pub const PipeFactor_MemoryTypes: u32 = 0x0000_0004;
/// Pipe factor: flags.
pub const PipeFactor_Flags: u32 = 0x0000_0008;
/// Pipe factor: physical ranges.
pub const PipeFactor_PhysicalRanges: u32 = 0x0000_0010;
/// Pipe factor: optimal ranges.
pub const PipeFactor_OptimalRanges: u32 = 0x0000_0020;
/// Pipe factor: fixed compression.
pub const PipeFactor_FixedCompression: u32 = 0x0000_0040;
/// Pipe factor: unknown compression.
pub const PipeFactor_UnknownCompression: u32 = 0x0000_0080;
/// Pipe factor: buffers.
pub const PipeFactor_Buffers: u32 = 0x0000_0100;
/// Pipe factor: alignment.
pub const PipeFactor_Align: u32 = 0x0000_0200;
/// Pipe factor: physical end.
pub const PipeFactor_PhysicalEnd: u32 = 0x0000_0400;
/// Pipe factor: logical end.
pub const PipeFactor_LogicalEnd: u32 = 0x0000_0800;

/// Negotiation state of a pipe (`PIPE_STATE`).
///
/// ```
/// use ks_sys::*;
/// assert!(PipeState_RangeNotFixed < PipeState_Finalized);
/// assert_eq!(PipeState_Finalized, 4);
/// ```
pub type PIPE_STATE = i32;
/// No state.
pub const PipeState_DontCare: PIPE_STATE = 0;
/// Range not fixed yet.
pub const PipeState_RangeNotFixed: PIPE_STATE = 1;
/// Range fixed.
pub const PipeState_RangeFixed: PIPE_STATE = 2;
/// Compression unknown.
pub const PipeState_CompressionUnknown: PIPE_STATE = 3;
/// Finalised.
pub const PipeState_Finalized: PIPE_STATE = 4;

/// Compression at the allocator pin, the most expanding pin and the end pin (36 bytes).
///
/// ```
/// use ks_sys::*;
/// let d = PIPE_DIMENSIONS { EndPin: KS_COMPRESSION_DEFAULT, ..Default::default() };
/// assert_eq!(d.EndPin.RatioNumerator, 1);
/// assert_eq!(core::mem::size_of_val(&d), 36);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct PIPE_DIMENSIONS {
    /// At the allocator pin.
    pub AllocatorPin: KS_COMPRESSION,
    /// At the most expanding pin.
    pub MaxExpansionPin: KS_COMPRESSION,
    /// At the end pin.
    pub EndPin: KS_COMPRESSION,
}

const _: () = assert!(size_of::<PIPE_DIMENSIONS>() == 36);
const _: () = assert!(align_of::<PIPE_DIMENSIONS>() == 4);
const _: () = assert!(offset_of!(PIPE_DIMENSIONS, AllocatorPin) == 0);
const _: () = assert!(offset_of!(PIPE_DIMENSIONS, MaxExpansionPin) == 12);
const _: () = assert!(offset_of!(PIPE_DIMENSIONS, EndPin) == 24);

/// Where a pipe's allocator sits (`PIPE_ALLOCATOR_PLACE`).
///
/// ```
/// use ks_sys::*;
/// assert_eq!(Pipe_Allocator_FirstPin, 1);
/// assert_eq!(Pipe_Allocator_MiddlePin, 3);
/// ```
pub type PIPE_ALLOCATOR_PLACE = i32;
/// No allocator.
pub const Pipe_Allocator_None: PIPE_ALLOCATOR_PLACE = 0;
/// On the first pin.
pub const Pipe_Allocator_FirstPin: PIPE_ALLOCATOR_PLACE = 1;
/// On the last pin.
pub const Pipe_Allocator_LastPin: PIPE_ALLOCATOR_PLACE = 2;
/// On a pin in the middle.
pub const Pipe_Allocator_MiddlePin: PIPE_ALLOCATOR_PLACE = 3;

/// Logical memory type of a pipe (`KS_LogicalMemoryType`).
///
/// ```
/// use ks_sys::*;
/// assert_eq!(KS_MemoryTypeKernelNonPaged, 2);
/// assert_eq!(KS_MemoryTypeUser, 5);
/// ```
pub type KS_LogicalMemoryType = i32;
/// Any.
pub const KS_MemoryTypeDontCare: KS_LogicalMemoryType = 0;
/// Kernel paged pool.
pub const KS_MemoryTypeKernelPaged: KS_LogicalMemoryType = 1;
/// Kernel non-paged pool.
pub const KS_MemoryTypeKernelNonPaged: KS_LogicalMemoryType = 2;
/// Device memory mapped into the host.
pub const KS_MemoryTypeDeviceHostMapped: KS_LogicalMemoryType = 3;
/// Device-specific memory.
pub const KS_MemoryTypeDeviceSpecific: KS_LogicalMemoryType = 4;
/// User-mode memory.
pub const KS_MemoryTypeUser: KS_LogicalMemoryType = 5;
/// Any host memory.
pub const KS_MemoryTypeAnyHost: KS_LogicalMemoryType = 6;

/// One end of a pipe (56 bytes).
///
/// ```
/// use ks_sys::*;
/// let t = PIPE_TERMINATION {
///     OutsideFactors: PipeFactor_UserModeUpstream,
///     PhysicalRange: KS_FRAMING_RANGE_DONT_CARE,
///     Compression: KS_COMPRESSION_DEFAULT,
///     ..Default::default()
/// };
/// assert_eq!(t.Flags, 0);
/// assert_eq!(core::mem::size_of_val(&t), 56);
/// assert_eq!(core::mem::offset_of!(PIPE_TERMINATION, Compression), 44);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct PIPE_TERMINATION {
    /// Flags.
    pub Flags: u32,
    /// `PipeFactor_*` bits from outside the pipe.
    pub OutsideFactors: u32,
    /// Weight (sic: "Weigth").
    pub Weigth: u32,
    /// Physical range.
    pub PhysicalRange: KS_FRAMING_RANGE,
    /// Optimal range.
    pub OptimalRange: KS_FRAMING_RANGE_WEIGHTED,
    /// Compression.
    pub Compression: KS_COMPRESSION,
}

const _: () = assert!(size_of::<PIPE_TERMINATION>() == 56);
const _: () = assert!(align_of::<PIPE_TERMINATION>() == 4);
const _: () = assert!(offset_of!(PIPE_TERMINATION, Flags) == 0);
const _: () = assert!(offset_of!(PIPE_TERMINATION, OutsideFactors) == 4);
const _: () = assert!(offset_of!(PIPE_TERMINATION, Weigth) == 8);
const _: () = assert!(offset_of!(PIPE_TERMINATION, PhysicalRange) == 12);
const _: () = assert!(offset_of!(PIPE_TERMINATION, OptimalRange) == 24);
const _: () = assert!(offset_of!(PIPE_TERMINATION, Compression) == 44);

/// A KS proxy pipe segment's allocator properties (`ALLOCATOR_PROPERTIES_EX`): the
/// DirectShow `ALLOCATOR_PROPERTIES` quartet, then the pipe's memory, ends, strategy and
/// place, and its neighbours in the graph (one previous segment, any number of next ones at
/// a splitter). x64 264 bytes, x86 252.
///
/// ```
/// use core::mem::{offset_of, size_of};
/// use ks_sys::*;
/// let p = ALLOCATOR_PROPERTIES_EX {
///     cBuffers: 8,
///     cbBuffer: 4096,
///     cbAlign: 64,
///     MemoryType: KSMEMORY_TYPE_KERNEL_NONPAGED,
///     State: PipeState_Finalized,
///     AllocatorPlace: Pipe_Allocator_FirstPin,
///     LogicalMemoryType: KS_MemoryTypeKernelNonPaged,
///     ..ALLOCATOR_PROPERTIES_EX::default()
/// };
/// assert!(p.PrevSegment.is_null() && p.NextSegments.is_null());
/// assert_eq!(offset_of!(ALLOCATOR_PROPERTIES_EX, Input), 52);
/// assert_eq!(offset_of!(ALLOCATOR_PROPERTIES_EX, PhysicalRange), 220);
/// # #[cfg(target_pointer_width = "64")]
/// assert_eq!(size_of::<ALLOCATOR_PROPERTIES_EX>(), 264);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ALLOCATOR_PROPERTIES_EX {
    /// Number of buffers (frames).
    pub cBuffers: i32,
    /// Size of each buffer in bytes.
    pub cbBuffer: i32,
    /// Alignment of each buffer in bytes.
    pub cbAlign: i32,
    /// Bytes reserved before each buffer.
    pub cbPrefix: i32,
    /// Memory type GUID (`KSMEMORY_TYPE_*`).
    pub MemoryType: GUID,
    /// Bus type GUID.
    pub BusType: GUID,
    /// Negotiation state of the pipe.
    pub State: PIPE_STATE,
    /// The pipe's input end.
    pub Input: PIPE_TERMINATION,
    /// The pipe's output end.
    pub Output: PIPE_TERMINATION,
    /// `AllocatorStrategy_*` bits.
    pub Strategy: u32,
    /// Flags.
    pub Flags: u32,
    /// Weight.
    pub Weight: u32,
    /// Logical memory type.
    pub LogicalMemoryType: KS_LogicalMemoryType,
    /// Which pin of the pipe holds the allocator.
    pub AllocatorPlace: PIPE_ALLOCATOR_PLACE,
    /// Compression ratios at the allocator pin, the most expanding pin and the end pin.
    pub Dimensions: PIPE_DIMENSIONS,
    /// Physical range.
    pub PhysicalRange: KS_FRAMING_RANGE,
    /// The previous segment.
    pub PrevSegment: *mut IKsAllocatorEx,
    /// Number of next segments.
    pub CountNextSegments: u32,
    /// The next segments (`CountNextSegments` of them).
    pub NextSegments: *mut *mut IKsAllocatorEx,
    /// `PipeFactor_*` bits from inside the pipe.
    pub InsideFactors: u32,
    /// Number of pins in the pipe.
    pub NumberPins: u32,
}

impl Default for ALLOCATOR_PROPERTIES_EX {
    /// Every field zero, both segment pointers null.
    fn default() -> Self {
        ALLOCATOR_PROPERTIES_EX {
            cBuffers: 0,
            cbBuffer: 0,
            cbAlign: 0,
            cbPrefix: 0,
            MemoryType: GUID_NULL,
            BusType: GUID_NULL,
            State: 0,
            Input: PIPE_TERMINATION::default(),
            Output: PIPE_TERMINATION::default(),
            Strategy: 0,
            Flags: 0,
            Weight: 0,
            LogicalMemoryType: 0,
            AllocatorPlace: 0,
            Dimensions: PIPE_DIMENSIONS::default(),
            PhysicalRange: KS_FRAMING_RANGE::default(),
            PrevSegment: core::ptr::null_mut(),
            CountNextSegments: 0,
            NextSegments: core::ptr::null_mut(),
            InsideFactors: 0,
            NumberPins: 0,
        }
    }
}

/// `PALLOCATOR_PROPERTIES_EX`.
pub type PALLOCATOR_PROPERTIES_EX = *mut ALLOCATOR_PROPERTIES_EX;

const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, cBuffers) == 0);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, cbBuffer) == 4);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, cbAlign) == 8);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, cbPrefix) == 12);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, MemoryType) == 16);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, BusType) == 32);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, State) == 48);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, Input) == 52);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, Output) == 108);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, Strategy) == 164);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, Flags) == 168);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, Weight) == 172);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, LogicalMemoryType) == 176);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, AllocatorPlace) == 180);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, Dimensions) == 184);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, PhysicalRange) == 220);
const _: () = assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, PrevSegment) == 232);
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<ALLOCATOR_PROPERTIES_EX>() == 264);
    assert!(align_of::<ALLOCATOR_PROPERTIES_EX>() == 8);
    assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, CountNextSegments) == 240);
    assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, NextSegments) == 248);
    assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, InsideFactors) == 256);
    assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, NumberPins) == 260);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<ALLOCATOR_PROPERTIES_EX>() == 252);
    assert!(align_of::<ALLOCATOR_PROPERTIES_EX>() == 4);
    assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, CountNextSegments) == 236);
    assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, NextSegments) == 240);
    assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, InsideFactors) == 244);
    assert!(offset_of!(ALLOCATOR_PROPERTIES_EX, NumberPins) == 248);
};

/// `IKsPin::KsPeekAllocator` operation (`KSPEEKOPERATION`).
///
/// ```
/// use ks_sys::*;
/// assert_eq!((KsPeekOperation_PeekOnly, KsPeekOperation_AddRef), (0, 1));
/// ```
pub type KSPEEKOPERATION = i32;
/// Peek only.
pub const KsPeekOperation_PeekOnly: KSPEEKOPERATION = 0;
/// Peek and add a reference.
pub const KsPeekOperation_AddRef: KSPEEKOPERATION = 1;
