//! Allocator framing: `KSALLOCATOR_FRAMING`, `KSALLOCATOR_FRAMING_EX` and their parts, the
//! requirement/option/pipe flag bits, alignment masks and `POOL_TYPE` (ks-spec.md §2, §3).

use core::fmt;
use core::mem::{align_of, offset_of, size_of};

use crate::guid::{GUID, GUID_NULL};

/// Kernel pool type (`POOL_TYPE`, an `i32` enum; user-mode `ks.h` declares the field `ULONG`).
pub type POOL_TYPE = i32;
/// Non-paged pool.
///
/// ```
/// use ks_sys::*;
/// assert_eq!((NonPagedPool, PagedPool), (0, 1));
/// assert_eq!(NonPagedPoolNx, 512);
/// assert_eq!(NonPagedPoolExecute, NonPagedPool);
/// ```
pub const NonPagedPool: POOL_TYPE = 0;
/// Non-paged executable pool (= `NonPagedPool`).
pub const NonPagedPoolExecute: POOL_TYPE = 0;
/// Paged pool.
pub const PagedPool: POOL_TYPE = 1;
/// Non-paged pool, must succeed (obsolete).
pub const NonPagedPoolMustSucceed: POOL_TYPE = 2;
/// Reserved.
pub const DontUseThisType: POOL_TYPE = 3;
/// Non-paged pool, cache-aligned.
pub const NonPagedPoolCacheAligned: POOL_TYPE = 4;
/// Paged pool, cache-aligned.
pub const PagedPoolCacheAligned: POOL_TYPE = 5;
/// Non-paged pool, cache-aligned, must succeed (obsolete).
pub const NonPagedPoolCacheAlignedMustS: POOL_TYPE = 6;
/// One past the last basic pool type.
pub const MaxPoolType: POOL_TYPE = 7;
/// Base of the non-paged pool types.
pub const NonPagedPoolBase: POOL_TYPE = 0;
/// Base non-paged pool, must succeed.
pub const NonPagedPoolBaseMustSucceed: POOL_TYPE = 2;
/// Base non-paged pool, cache-aligned.
pub const NonPagedPoolBaseCacheAligned: POOL_TYPE = 4;
/// Base non-paged pool, cache-aligned, must succeed.
pub const NonPagedPoolBaseCacheAlignedMustS: POOL_TYPE = 6;
/// Session non-paged pool.
pub const NonPagedPoolSession: POOL_TYPE = 32;
/// Session paged pool.
pub const PagedPoolSession: POOL_TYPE = 33;
/// Session non-paged pool, must succeed.
pub const NonPagedPoolMustSucceedSession: POOL_TYPE = 34;
/// Reserved (session).
pub const DontUseThisTypeSession: POOL_TYPE = 35;
/// Session non-paged pool, cache-aligned.
pub const NonPagedPoolCacheAlignedSession: POOL_TYPE = 36;
/// Session paged pool, cache-aligned.
pub const PagedPoolCacheAlignedSession: POOL_TYPE = 37;
/// Session non-paged pool, cache-aligned, must succeed.
pub const NonPagedPoolCacheAlignedMustSSession: POOL_TYPE = 38;
/// Non-executable non-paged pool.
pub const NonPagedPoolNx: POOL_TYPE = 512;
/// Non-executable non-paged pool, cache-aligned.
pub const NonPagedPoolNxCacheAligned: POOL_TYPE = 516;
/// Non-executable session non-paged pool.
pub const NonPagedPoolSessionNx: POOL_TYPE = 544;

/// Requirement: the connection point can modify frames in place.
///
/// ```
/// use ks_sys::*;
/// let required = KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY | KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY;
/// assert_eq!(required, 0x8000_0002);
/// assert_eq!(KSALLOCATOR_OPTIONF_VALID,
///     KSALLOCATOR_OPTIONF_COMPATIBLE | KSALLOCATOR_OPTIONF_SYSTEM_MEMORY);
/// ```
pub const KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER: u32 = 0x0000_0001;
/// Requirement: the connection point needs system memory.
pub const KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY: u32 = 0x0000_0002;
/// Requirement: downstream filters must preserve frame data.
pub const KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY: u32 = 0x0000_0004;
/// Requirement: the connection point must allocate every frame it sends.
pub const KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE: u32 = 0x0000_0008;
/// Requirement (post-2003): undocumented; the name suggests system memory with a custom
/// allocation (ks-spec.md §2.2).
pub const KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION: u32 = 0x0000_0010;
/// Requirement: the other requirement bits are preferences only.
pub const KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY: u32 = 0x8000_0000;
/// Option: the new allocator's framing is compatible with the downstream allocator.
pub const KSALLOCATOR_OPTIONF_COMPATIBLE: u32 = 0x0000_0001;
/// Option: allocate from the pool named by `PoolType`.
pub const KSALLOCATOR_OPTIONF_SYSTEM_MEMORY: u32 = 0x0000_0002;
/// Mask of the valid option bits.
pub const KSALLOCATOR_OPTIONF_VALID: u32 = 0x0000_0003;
/// Pin framing flag: partial reads supported.
///
/// ```
/// use ks_sys::*;
/// // Item flags carry the requirement bits (0x1..0x8) and these flag bits side by side.
/// let flags = KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE | KSALLOCATOR_FLAG_CAN_ALLOCATE;
/// assert_eq!(flags, 0x48);
/// assert_eq!(KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED, 0x8000);
/// ```
pub const KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT: u32 = 0x0000_0010;
/// Pin framing flag: device-specific.
pub const KSALLOCATOR_FLAG_DEVICE_SPECIFIC: u32 = 0x0000_0020;
/// Pin framing flag: by its name, the pin can allocate frames of this item's memory type
/// (ks-spec.md §2.2: that meaning is inferred, not documented).
pub const KSALLOCATOR_FLAG_CAN_ALLOCATE: u32 = 0x0000_0040;
/// Pin framing flag: undocumented; the name suggests the frame-size (compression) ratio is
/// to be insisted on (ks-spec.md §2.2 and §10: silent).
pub const KSALLOCATOR_FLAG_INSIST_ON_FRAMESIZE_RATIO: u32 = 0x0000_0080;
/// Pipe flag: at least one data modification happens inside the pipe.
pub const KSALLOCATOR_FLAG_NO_FRAME_INTEGRITY: u32 = 0x0000_0100;
/// Pipe flag: multiple outputs.
pub const KSALLOCATOR_FLAG_MULTIPLE_OUTPUT: u32 = 0x0000_0200;
/// Pipe flag: cycle.
pub const KSALLOCATOR_FLAG_CYCLE: u32 = 0x0000_0400;
/// Pipe flag: an allocator exists.
pub const KSALLOCATOR_FLAG_ALLOCATOR_EXISTS: u32 = 0x0000_0800;
/// Pipe flag: no framing dependency between neighbouring pipes.
pub const KSALLOCATOR_FLAG_INDEPENDENT_RANGES: u32 = 0x0000_1000;
/// Pipe flag: undocumented; the name suggests range steppings need attention (ks-spec.md
/// §2.2 and §10: silent).
pub const KSALLOCATOR_FLAG_ATTENTION_STEPPING: u32 = 0x0000_2000;
/// Post-2003 flag: enable cached MDLs.
pub const KSALLOCATOR_FLAG_ENABLE_CACHED_MDL: u32 = 0x0000_4000;
/// Post-2003 flag: a 2-D buffer is required.
pub const KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED: u32 = 0x0000_8000;

/// Alignment mask for 1-byte alignment.
///
/// ```
/// use ks_sys::*;
/// // Each mask is the alignment in bytes minus one.
/// assert_eq!(FILE_QUAD_ALIGNMENT + 1, 8);
/// assert_eq!(FILE_512_BYTE_ALIGNMENT + 1, 512);
/// assert_eq!(0x1000 & FILE_64_BYTE_ALIGNMENT, 0); // 0x1000 is 64-byte aligned
/// ```
pub const FILE_BYTE_ALIGNMENT: u32 = 0x0000_0000;
/// Alignment mask for 2-byte alignment.
pub const FILE_WORD_ALIGNMENT: u32 = 0x0000_0001;
/// Alignment mask for 4-byte alignment.
pub const FILE_LONG_ALIGNMENT: u32 = 0x0000_0003;
/// Alignment mask for 8-byte alignment.
pub const FILE_QUAD_ALIGNMENT: u32 = 0x0000_0007;
/// Alignment mask for 16-byte alignment.
pub const FILE_OCTA_ALIGNMENT: u32 = 0x0000_000F;
/// Alignment mask for 32-byte alignment.
pub const FILE_32_BYTE_ALIGNMENT: u32 = 0x0000_001F;
/// Alignment mask for 64-byte alignment.
pub const FILE_64_BYTE_ALIGNMENT: u32 = 0x0000_003F;
/// Alignment mask for 128-byte alignment.
pub const FILE_128_BYTE_ALIGNMENT: u32 = 0x0000_007F;
/// Alignment mask for 256-byte alignment.
pub const FILE_256_BYTE_ALIGNMENT: u32 = 0x0000_00FF;
/// Alignment mask for 512-byte alignment.
pub const FILE_512_BYTE_ALIGNMENT: u32 = 0x0000_01FF;

/// `OptionsFlags` (create request) / `RequirementsFlags` (framing query) of
/// [`KSALLOCATOR_FRAMING`]; one `u32` of storage.
///
/// ```
/// use ks_sys::*;
/// let mut u = KSALLOCATOR_FRAMING_0::default();
/// u.RequirementsFlags = KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY; // writing a field is safe
/// assert_eq!(core::mem::size_of_val(&u), 4);
/// ```
#[repr(C)]
#[derive(Clone, Copy)]
pub union KSALLOCATOR_FRAMING_0 {
    /// `KSALLOCATOR_OPTIONF_*` bits, when the framing is an allocator-create parameter.
    pub OptionsFlags: u32,
    /// `KSALLOCATOR_REQUIREMENTF_*` bits, when the framing answers a pin's query.
    pub RequirementsFlags: u32,
}

impl Default for KSALLOCATOR_FRAMING_0 {
    fn default() -> Self {
        KSALLOCATOR_FRAMING_0 { OptionsFlags: 0 }
    }
}

impl fmt::Debug for KSALLOCATOR_FRAMING_0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Reading a union field needs `unsafe`, which this crate does not use.
        f.debug_struct("KSALLOCATOR_FRAMING_0")
            .finish_non_exhaustive()
    }
}

/// `FileAlignment` (an alignment mask, `2^n - 1`) / `FramePitch` (later SDK alias); one 32-bit
/// storage unit, shared by [`KSALLOCATOR_FRAMING`].
///
/// ```
/// use ks_sys::*;
/// let u = KSALLOCATOR_FRAMING_1 { FileAlignment: FILE_LONG_ALIGNMENT };
/// assert_eq!(core::mem::size_of_val(&u), 4);
/// assert_eq!(core::mem::offset_of!(KSALLOCATOR_FRAMING, Anonymous2), 16);
/// ```
#[repr(C)]
#[derive(Clone, Copy)]
pub union KSALLOCATOR_FRAMING_1 {
    /// Alignment mask: required alignment in bytes = value + 1 (see `FILE_*_ALIGNMENT`).
    pub FileAlignment: u32,
    /// Frame pitch (current SDK only; semantics undocumented).
    pub FramePitch: i32,
}

impl Default for KSALLOCATOR_FRAMING_1 {
    fn default() -> Self {
        KSALLOCATOR_FRAMING_1 { FileAlignment: 0 }
    }
}

impl fmt::Debug for KSALLOCATOR_FRAMING_1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KSALLOCATOR_FRAMING_1")
            .finish_non_exhaustive()
    }
}

/// The "old" allocator framing (24 bytes): allocator-create parameter and
/// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING` value.
///
/// ```
/// use ks_sys::*;
/// let f = KSALLOCATOR_FRAMING {
///     Anonymous1: KSALLOCATOR_FRAMING_0 { OptionsFlags: KSALLOCATOR_OPTIONF_SYSTEM_MEMORY },
///     PoolType: NonPagedPool,
///     Frames: 4,
///     FrameSize: 4096,
///     Anonymous2: KSALLOCATOR_FRAMING_1 { FileAlignment: FILE_QUAD_ALIGNMENT },
///     Reserved: 0,
/// };
/// assert_eq!(core::mem::size_of_val(&f), 24);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct KSALLOCATOR_FRAMING {
    /// `OptionsFlags` / `RequirementsFlags`.
    pub Anonymous1: KSALLOCATOR_FRAMING_0,
    /// Kernel pool to allocate from (`POOL_TYPE`).
    pub PoolType: POOL_TYPE,
    /// Maximum number of outstanding frames (0 in a query: no requirement).
    pub Frames: u32,
    /// Whole frame size in bytes (0 in a query: no requirement).
    pub FrameSize: u32,
    /// `FileAlignment` / `FramePitch`.
    pub Anonymous2: KSALLOCATOR_FRAMING_1,
    /// Must be zero.
    pub Reserved: u32,
}

const _: () = assert!(size_of::<KSALLOCATOR_FRAMING_0>() == 4);
const _: () = assert!(size_of::<KSALLOCATOR_FRAMING_1>() == 4);
const _: () = assert!(align_of::<KSALLOCATOR_FRAMING_0>() == 4);
const _: () = assert!(align_of::<KSALLOCATOR_FRAMING_1>() == 4);
const _: () = assert!(size_of::<KSALLOCATOR_FRAMING>() == 24);
const _: () = assert!(align_of::<KSALLOCATOR_FRAMING>() == 4);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING, Anonymous1) == 0);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING, PoolType) == 4);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING, Frames) == 8);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING, FrameSize) == 12);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING, Anonymous2) == 16);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING, Reserved) == 20);

/// A frame-size range (12 bytes): legal sizes are `MinFrameSize..=MaxFrameSize` by `Stepping`.
///
/// ```
/// use ks_sys::KS_FRAMING_RANGE;
/// let r = KS_FRAMING_RANGE { MinFrameSize: 1024, MaxFrameSize: 4096, Stepping: 1024 };
/// assert_eq!(core::mem::size_of_val(&r), 12);
/// assert_eq!(core::mem::offset_of!(KS_FRAMING_RANGE, Stepping), 8);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct KS_FRAMING_RANGE {
    /// Smallest frame size.
    pub MinFrameSize: u32,
    /// Largest frame size.
    pub MaxFrameSize: u32,
    /// Step between legal sizes.
    pub Stepping: u32,
}

const _: () = assert!(size_of::<KS_FRAMING_RANGE>() == 12);
const _: () = assert!(align_of::<KS_FRAMING_RANGE>() == 4);
const _: () = assert!(offset_of!(KS_FRAMING_RANGE, MinFrameSize) == 0);
const _: () = assert!(offset_of!(KS_FRAMING_RANGE, MaxFrameSize) == 4);
const _: () = assert!(offset_of!(KS_FRAMING_RANGE, Stepping) == 8);

/// A frame-size range with in-place / not-in-place weights (20 bytes; weights must be 0).
///
/// ```
/// use ks_sys::*;
/// let w = KS_FRAMING_RANGE_WEIGHTED { Range: KS_FRAMING_RANGE_DONT_CARE, ..Default::default() };
/// assert_eq!(w.Range.MaxFrameSize, u32::MAX);
/// assert_eq!(core::mem::size_of::<KS_FRAMING_RANGE_WEIGHTED>(), 20);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct KS_FRAMING_RANGE_WEIGHTED {
    /// The range.
    pub Range: KS_FRAMING_RANGE,
    /// Weight when the pipe is in place (reserved, 0).
    pub InPlaceWeight: u32,
    /// Weight when the pipe is not in place (reserved, 0).
    pub NotInPlaceWeight: u32,
}

const _: () = assert!(size_of::<KS_FRAMING_RANGE_WEIGHTED>() == 20);
const _: () = assert!(align_of::<KS_FRAMING_RANGE_WEIGHTED>() == 4);
const _: () = assert!(offset_of!(KS_FRAMING_RANGE_WEIGHTED, Range) == 0);
const _: () = assert!(offset_of!(KS_FRAMING_RANGE_WEIGHTED, InPlaceWeight) == 12);
const _: () = assert!(offset_of!(KS_FRAMING_RANGE_WEIGHTED, NotInPlaceWeight) == 16);

/// Output/input frame-size ratio of a transform (12 bytes); `{1, 1, 0}` is 1:1.
///
/// ```
/// use ks_sys::KS_COMPRESSION;
/// // A 2:1 expander; a margin of 16 (how KS applies the margin is not documented).
/// let c = KS_COMPRESSION { RatioNumerator: 2, RatioDenominator: 1, RatioConstantMargin: 16 };
/// assert_eq!(core::mem::size_of_val(&c), 12);
/// assert_eq!(core::mem::offset_of!(KS_COMPRESSION, RatioConstantMargin), 8);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct KS_COMPRESSION {
    /// Ratio numerator.
    pub RatioNumerator: u32,
    /// Ratio denominator.
    pub RatioDenominator: u32,
    /// Constant margin applied to the ratio.
    pub RatioConstantMargin: u32,
}

const _: () = assert!(size_of::<KS_COMPRESSION>() == 12);
const _: () = assert!(align_of::<KS_COMPRESSION>() == 4);
const _: () = assert!(offset_of!(KS_COMPRESSION, RatioNumerator) == 0);
const _: () = assert!(offset_of!(KS_COMPRESSION, RatioDenominator) == 4);
const _: () = assert!(offset_of!(KS_COMPRESSION, RatioConstantMargin) == 8);

/// `FileAlignment` / `FramePitch` of a [`KS_FRAMING_ITEM`] (union of the current SDK).
///
/// ```
/// use ks_sys::*;
/// let mut item = KS_FRAMING_ITEM::default();
/// item.Anonymous = KS_FRAMING_ITEM_0 { FileAlignment: FILE_OCTA_ALIGNMENT };
/// assert_eq!(core::mem::size_of::<KS_FRAMING_ITEM_0>(), 4);
/// assert_eq!(core::mem::offset_of!(KS_FRAMING_ITEM, Anonymous), 48);
/// ```
#[repr(C)]
#[derive(Clone, Copy)]
pub union KS_FRAMING_ITEM_0 {
    /// Alignment mask (`2^n - 1`).
    pub FileAlignment: u32,
    /// Frame pitch (current SDK only; semantics undocumented).
    pub FramePitch: i32,
}

impl Default for KS_FRAMING_ITEM_0 {
    fn default() -> Self {
        KS_FRAMING_ITEM_0 { FileAlignment: 0 }
    }
}

impl fmt::Debug for KS_FRAMING_ITEM_0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KS_FRAMING_ITEM_0").finish_non_exhaustive()
    }
}

/// One alternative of an extended framing (88 bytes): memory type, bus, flags, count, alignment
/// and frame-size ranges.
///
/// ```
/// use ks_sys::*;
/// let item = KS_FRAMING_ITEM {
///     MemoryType: KSMEMORY_TYPE_KERNEL_PAGED,
///     Flags: KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY,
///     Frames: 8,
///     PhysicalRange: KS_FRAMING_RANGE_DONT_CARE,
///     ..Default::default()
/// };
/// assert_eq!(item.BusType, GUID_NULL);
/// assert_eq!(core::mem::size_of_val(&item), 88);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct KS_FRAMING_ITEM {
    /// Memory type (`KSMEMORY_TYPE_*`, `GUID_NULL` = any).
    pub MemoryType: GUID,
    /// Bus type (`GUID_BUS_TYPE_*`, `KS_TYPE_DONT_CARE`).
    pub BusType: GUID,
    /// Memory flags (docs: `KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE`; the macros put 0).
    pub MemoryFlags: u32,
    /// Bus flags (unused).
    pub BusFlags: u32,
    /// `KSALLOCATOR_REQUIREMENTF_*` / `OPTIONF_*` plus `KSALLOCATOR_FLAG_*` bits.
    pub Flags: u32,
    /// Maximum number of outstanding frames.
    pub Frames: u32,
    /// `FileAlignment` / `FramePitch`.
    pub Anonymous: KS_FRAMING_ITEM_0,
    /// Pin-wide weight of this memory type.
    pub MemoryTypeWeight: u32,
    /// Physical limits on the frame size.
    pub PhysicalRange: KS_FRAMING_RANGE,
    /// Preferred frame-size range.
    pub FramingRange: KS_FRAMING_RANGE_WEIGHTED,
}

const _: () = assert!(size_of::<KS_FRAMING_ITEM_0>() == 4);
const _: () = assert!(align_of::<KS_FRAMING_ITEM_0>() == 4);
const _: () = assert!(size_of::<KS_FRAMING_ITEM>() == 88);
const _: () = assert!(align_of::<KS_FRAMING_ITEM>() == 4);
const _: () = assert!(offset_of!(KS_FRAMING_ITEM, MemoryType) == 0);
const _: () = assert!(offset_of!(KS_FRAMING_ITEM, BusType) == 16);
const _: () = assert!(offset_of!(KS_FRAMING_ITEM, MemoryFlags) == 32);
const _: () = assert!(offset_of!(KS_FRAMING_ITEM, BusFlags) == 36);
const _: () = assert!(offset_of!(KS_FRAMING_ITEM, Flags) == 40);
const _: () = assert!(offset_of!(KS_FRAMING_ITEM, Frames) == 44);
const _: () = assert!(offset_of!(KS_FRAMING_ITEM, Anonymous) == 48);
const _: () = assert!(offset_of!(KS_FRAMING_ITEM, MemoryTypeWeight) == 52);
const _: () = assert!(offset_of!(KS_FRAMING_ITEM, PhysicalRange) == 56);
const _: () = assert!(offset_of!(KS_FRAMING_ITEM, FramingRange) == 68);

/// Extended framing, declared with one item; the real size is 24 + 88 × `CountItems` bytes.
///
/// ```
/// assert_eq!(core::mem::size_of::<ks_sys::KSALLOCATOR_FRAMING_EX>(), 112);
/// assert_eq!(core::mem::offset_of!(ks_sys::KSALLOCATOR_FRAMING_EX, FramingItem), 24);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct KSALLOCATOR_FRAMING_EX {
    /// Number of entries in `FramingItem`.
    pub CountItems: u32,
    /// Reserved, zero.
    pub PinFlags: u32,
    /// Frame-size ratio of a transform.
    pub OutputCompression: KS_COMPRESSION,
    /// Pin weight (reserved, zero).
    pub PinWeight: u32,
    /// The items (declared with one element).
    pub FramingItem: [KS_FRAMING_ITEM; 1],
}

const _: () = assert!(size_of::<KSALLOCATOR_FRAMING_EX>() == 112);
const _: () = assert!(align_of::<KSALLOCATOR_FRAMING_EX>() == 4);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING_EX, CountItems) == 0);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING_EX, PinFlags) == 4);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING_EX, OutputCompression) == 8);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING_EX, PinWeight) == 20);
const _: () = assert!(offset_of!(KSALLOCATOR_FRAMING_EX, FramingItem) == 24);

/// Byte offset of `FramingItem[0]` in a `KSALLOCATOR_FRAMING_EX` payload.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(KSALLOCATOR_FRAMING_EX_HEADER_SIZE, 24);
/// // A payload with 3 items:
/// assert_eq!(KSALLOCATOR_FRAMING_EX_HEADER_SIZE + 3 * core::mem::size_of::<KS_FRAMING_ITEM>(), 288);
/// ```
#[doc(alias = "FIELD_OFFSET")]
#[doc(alias = "FramingItem")]
pub const KSALLOCATOR_FRAMING_EX_HEADER_SIZE: usize =
    offset_of!(KSALLOCATOR_FRAMING_EX, FramingItem);

/// The 1:1 compression that `DECLARE_SIMPLE_FRAMING_EX` uses (`SetDefaultKsCompression`).
///
/// ```
/// use ks_sys::*;
/// assert_eq!(KS_COMPRESSION_DEFAULT.RatioNumerator, KS_COMPRESSION_DEFAULT.RatioDenominator);
/// assert_eq!(KS_COMPRESSION_DEFAULT.RatioConstantMargin, 0);
/// ```
#[doc(alias = "SetDefaultKsCompression")]
pub const KS_COMPRESSION_DEFAULT: KS_COMPRESSION = KS_COMPRESSION {
    RatioNumerator: 1,
    RatioDenominator: 1,
    RatioConstantMargin: 0,
};

/// The "don't care" range `{0, 0xFFFFFFFF, 1}` (`SetDontCareKsFramingRange`).
///
/// ```
/// use ks_sys::*;
/// assert_eq!(KS_FRAMING_RANGE_DONT_CARE.MinFrameSize, 0);
/// assert_eq!(KS_FRAMING_RANGE_DONT_CARE.MaxFrameSize, u32::MAX);
/// ```
#[doc(alias = "SetDontCareKsFramingRange")]
pub const KS_FRAMING_RANGE_DONT_CARE: KS_FRAMING_RANGE = KS_FRAMING_RANGE {
    MinFrameSize: 0,
    MaxFrameSize: u32::MAX,
    Stepping: 1,
};

/// `DECLARE_SIMPLE_FRAMING_EX` / `INITIALIZE_SIMPLE_FRAMING_EX`: a one-item extended framing
/// with bus `GUID_NULL`, 1:1 compression, a don't-care physical range and the framing range
/// `{min, max, 1}`.
///
/// ```
/// use ks_sys::*;
/// let f = DECLARE_SIMPLE_FRAMING_EX(KSMEMORY_TYPE_KERNEL_NONPAGED,
///     KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY, 2, FILE_BYTE_ALIGNMENT, 8192, 8192);
/// assert_eq!(f.CountItems, 1);
/// assert_eq!(f.FramingItem[0].PhysicalRange.MaxFrameSize, u32::MAX);
/// ```
#[doc(alias = "INITIALIZE_SIMPLE_FRAMING_EX")]
pub const fn DECLARE_SIMPLE_FRAMING_EX(
    MemoryType: GUID,
    Flags: u32,
    Frames: u32,
    Alignment: u32,
    MinFrameSize: u32,
    MaxFrameSize: u32,
) -> KSALLOCATOR_FRAMING_EX {
    KSALLOCATOR_FRAMING_EX {
        CountItems: 1,
        PinFlags: 0,
        OutputCompression: KS_COMPRESSION_DEFAULT,
        PinWeight: 0,
        FramingItem: [KS_FRAMING_ITEM {
            MemoryType,
            BusType: GUID_NULL,
            MemoryFlags: 0,
            BusFlags: 0,
            Flags,
            Frames,
            Anonymous: KS_FRAMING_ITEM_0 {
                FileAlignment: Alignment,
            },
            MemoryTypeWeight: 0,
            PhysicalRange: KS_FRAMING_RANGE_DONT_CARE,
            FramingRange: KS_FRAMING_RANGE_WEIGHTED {
                Range: KS_FRAMING_RANGE {
                    MinFrameSize,
                    MaxFrameSize,
                    Stepping: 1,
                },
                InPlaceWeight: 0,
                NotInPlaceWeight: 0,
            },
        }],
    }
}
