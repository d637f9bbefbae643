//! `GUID` and every GUID the allocator subsystem uses (ks-spec.md §1.1 and Appendix B).

use core::fmt;

/// A Windows `GUID`: 16 bytes, 4-byte aligned; `data1`..`data3` are stored little-endian.
///
/// ```
/// use ks_sys::{GUID, KSMEMORY_TYPE_USER};
/// let g = GUID::from_u128(0x8cb0fc28_7893_11d1_b069_00a0c9062802);
/// assert_eq!(g, KSMEMORY_TYPE_USER);
/// assert_eq!(g.to_u128(), 0x8cb0fc28_7893_11d1_b069_00a0c9062802);
/// ```
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GUID {
    /// First 32 bits (little-endian in memory).
    pub data1: u32,
    /// Next 16 bits (little-endian in memory).
    pub data2: u16,
    /// Next 16 bits (little-endian in memory).
    pub data3: u16,
    /// Last 64 bits, stored in textual (big-endian) order.
    pub data4: [u8; 8],
}

const _: () = assert!(core::mem::size_of::<GUID>() == 16);
const _: () = assert!(core::mem::align_of::<GUID>() == 4);
const _: () = assert!(core::mem::offset_of!(GUID, data1) == 0);
const _: () = assert!(core::mem::offset_of!(GUID, data2) == 4);
const _: () = assert!(core::mem::offset_of!(GUID, data3) == 6);
const _: () = assert!(core::mem::offset_of!(GUID, data4) == 8);

impl GUID {
    /// Builds a GUID from its 128-bit textual value (`windows-rs` form), e.g.
    /// `0x8cb0fc28_7893_11d1_b069_00a0c9062802` for `{8CB0FC28-7893-11D1-B069-00A0C9062802}`.
    pub const fn from_u128(uuid: u128) -> GUID {
        GUID {
            data1: (uuid >> 96) as u32,
            data2: (uuid >> 80) as u16,
            data3: (uuid >> 64) as u16,
            data4: (uuid as u64).to_be_bytes(),
        }
    }

    /// The 128-bit textual value (inverse of [`GUID::from_u128`]).
    pub const fn to_u128(&self) -> u128 {
        ((self.data1 as u128) << 96)
            | ((self.data2 as u128) << 80)
            | ((self.data3 as u128) << 64)
            | (u64::from_be_bytes(self.data4) as u128)
    }

    /// The 16 bytes exactly as the GUID is laid out in memory on Windows.
    ///
    /// ```
    /// use ks_sys::GUID;
    /// let g = GUID::from_u128(0x00112233_4455_6677_8899_aabbccddeeff);
    /// assert_eq!(g.to_le_bytes()[..4], [0x33, 0x22, 0x11, 0x00]);
    /// assert_eq!(GUID::from_le_bytes(g.to_le_bytes()), g);
    /// ```
    pub const fn to_le_bytes(&self) -> [u8; 16] {
        let a = self.data1.to_le_bytes();
        let b = self.data2.to_le_bytes();
        let c = self.data3.to_le_bytes();
        let d = self.data4;
        [
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5],
            d[6], d[7],
        ]
    }

    /// Reads a GUID from its 16-byte in-memory (Windows) layout.
    pub const fn from_le_bytes(b: [u8; 16]) -> GUID {
        GUID {
            data1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_le_bytes([b[4], b[5]]),
            data3: u16::from_le_bytes([b[6], b[7]]),
            data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        }
    }
}

/// Formats as `8CB0FC28-7893-11D1-B069-00A0C9062802` (registry form without braces).
///
/// ```
/// assert_eq!(ks_sys::KSMEMORY_TYPE_USER.to_string(), "8CB0FC28-7893-11D1-B069-00A0C9062802");
/// ```
impl fmt::Display for GUID {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

/// Formats as `GUID(8CB0FC28-7893-11D1-B069-00A0C9062802)`.
impl fmt::Debug for GUID {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GUID({self})")
    }
}

/// The all-zero GUID.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(GUID_NULL.to_u128(), 0);
/// assert_eq!(KSMEMORY_TYPE_WILDCARD, GUID_NULL);
/// assert_ne!(KSMEMORY_TYPE_KERNEL_PAGED, KSMEMORY_TYPE_KERNEL_NONPAGED);
/// ```
pub const GUID_NULL: GUID = GUID::from_u128(0);

/// Object class of an allocator create request; [`KSSTRING_Allocator`] is its text.
///
/// ```
/// use ks_sys::*;
/// assert_eq!(format!("{{{KSNAME_Allocator}}}"), KSSTRING_Allocator);
/// ```
pub const KSNAME_Allocator: GUID = GUID::from_u128(0x642f5d00_4791_11d0_a5d6_28db04c10000);
/// [`KSNAME_Allocator`] as the headers spell it: the braced text that starts the file name
/// of an allocator create request (ks-spec.md §5.1). `ks.h` has it as a wide string.
///
/// ```
/// assert_eq!(ks_sys::KSSTRING_Allocator, "{642F5D00-4791-11D0-A5D6-28DB04C10000}");
/// ```
pub const KSSTRING_Allocator: &str = "{642F5D00-4791-11D0-A5D6-28DB04C10000}";
/// Defined in the headers as a braced string, like [`KSSTRING_Allocator`]; no
/// documentation and no user of it were found (ks-spec.md §1.1: its meaning is silent).
///
/// ```
/// assert_eq!(ks_sys::KSSTRING_AllocatorEx, "{091BB63B-603F-11D1-B067-00A0C9062802}");
/// ```
pub const KSSTRING_AllocatorEx: &str = "{091BB63B-603F-11D1-B067-00A0C9062802}";
/// Allocator property set (FUNCTIONTABLE, STATUS).
pub const KSPROPSETID_StreamAllocator: GUID =
    GUID::from_u128(0xcf6e4342_ec87_11cf_a130_0020afd156e4);
/// Allocator method set (ALLOC, FREE).
pub const KSMETHODSETID_StreamAllocator: GUID =
    GUID::from_u128(0xcf6e4341_ec87_11cf_a130_0020afd156e4);
/// Allocator event set (INTERNAL_FREEFRAME, FREEFRAME).
pub const KSEVENTSETID_StreamAllocator: GUID =
    GUID::from_u128(0x75d95571_073c_11d0_a161_0020afd156e4);
/// Connection property set (ALLOCATORFRAMING, ALLOCATORFRAMING_EX).
pub const KSPROPSETID_Connection: GUID = GUID::from_u128(0x1d58c920_ac9b_11cf_a5d6_28db04c10000);
/// Stream property set (STREAM_ALLOCATOR, PIPE_ID).
pub const KSPROPSETID_Stream: GUID = GUID::from_u128(0x65aaba60_98ae_11cf_a10d_0020afd156e4);
/// Memory-transport property set (`KSPROPERTY_MEMORY_TRANSPORT`).
pub const KSPROPSETID_MemoryTransport: GUID =
    GUID::from_u128(0x0a3d1c5d_5243_4819_9ed0_aee8044cee2b);
/// Any memory type (= `GUID_NULL`).
pub const KSMEMORY_TYPE_WILDCARD: GUID = GUID_NULL;
/// Any memory type (= `GUID_NULL`).
pub const KSMEMORY_TYPE_DONT_CARE: GUID = GUID_NULL;
/// Any memory or bus type (= `GUID_NULL`).
pub const KS_TYPE_DONT_CARE: GUID = GUID_NULL;
/// System memory.
pub const KSMEMORY_TYPE_SYSTEM: GUID = GUID::from_u128(0x091bb638_603f_11d1_b067_00a0c9062802);
/// User-mode memory.
pub const KSMEMORY_TYPE_USER: GUID = GUID::from_u128(0x8cb0fc28_7893_11d1_b069_00a0c9062802);
/// Kernel paged pool.
pub const KSMEMORY_TYPE_KERNEL_PAGED: GUID =
    GUID::from_u128(0xd833f8f8_7894_11d1_b069_00a0c9062802);
/// Kernel non-paged pool.
pub const KSMEMORY_TYPE_KERNEL_NONPAGED: GUID =
    GUID::from_u128(0x4a6d5fc4_7895_11d1_b069_00a0c9062802);
/// Device memory of an unnamed type (older KS clients).
pub const KSMEMORY_TYPE_DEVICE_UNKNOWN: GUID =
    GUID::from_u128(0x091bb639_603f_11d1_b067_00a0c9062802);
/// PCI bus.
pub const GUID_BUS_TYPE_PCI: GUID = GUID::from_u128(0xc8ebdfb0_b510_11d0_80e5_00a0c92542e3);
/// USB bus.
pub const GUID_BUS_TYPE_USB: GUID = GUID::from_u128(0x9d7debbc_c85d_11d1_9eb4_006008c3a19a);
/// IEEE 1394 bus.
pub const GUID_BUS_TYPE_1394: GUID = GUID::from_u128(0xf74e73eb_9ac5_45eb_be4d_772cc71ddfb3);
/// AV/C bus.
pub const GUID_BUS_TYPE_AVC: GUID = GUID::from_u128(0xc06ff265_ae09_48f0_812c_16753d7cba83);
/// IEC 61883 device class (reused as a bus tag).
pub const GUID_61883_CLASS: GUID = GUID::from_u128(0x7ebefbc0_3200_11d2_b4c2_00a0c9697d07);
/// The IEC 61883 device setup class under its mingw-w64 name (= [`GUID_61883_CLASS`]).
pub const GUID_DEVCLASS_61883: GUID = GUID_61883_CLASS;
/// ksproxy `IKsAllocator` interface id (user mode).
pub const IID_IKsAllocator: GUID = GUID::from_u128(0x8da64899_c0d9_11d0_8413_0000f822fe8a);
/// ksproxy `IKsAllocatorEx` interface id.
pub const IID_IKsAllocatorEx: GUID = GUID::from_u128(0x091bb63a_603f_11d1_b067_00a0c9062802);
/// ksproxy `IKsPinPipe` interface id.
pub const IID_IKsPinPipe: GUID = GUID::from_u128(0xe539cd90_a8b4_11d1_8189_00a0c9062802);
/// ksproxy `IKsPin` interface id.
pub const IID_IKsPin: GUID = GUID::from_u128(0xb61178d1_a2d9_11cf_9e53_00aa00a216a1);
/// Standard medium set of a pin connection.
pub const KSMEDIUMSETID_Standard: GUID = GUID::from_u128(0x4747b320_62ce_11cf_a5d6_28db04c10000);
/// Standard interface set of a pin connection.
pub const KSINTERFACESETID_Standard: GUID = GUID::from_u128(0x1a8766a0_62ce_11cf_a5d6_28db04c10000);
