//! Names and values of the KS proxy (`ksproxy.h`) types that describe allocator selection and
//! pipes (ks-spec.md §7.2). Microsoft documents them as "for proxy use"; only the values are
//! known, not the algorithm behind them.

use core::mem::{align_of, offset_of, size_of};

use crate::framing::{KS_COMPRESSION, KS_FRAMING_RANGE, KS_FRAMING_RANGE_WEIGHTED};

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
