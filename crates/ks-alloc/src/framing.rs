//! Idiomatic framing types: `KSALLOCATOR_FRAMING`, `KSALLOCATOR_FRAMING_EX` and their parts.
//!
//! Everything here converts losslessly to and from the raw `ks_sys` structures and to and from
//! the little-endian property payload bytes (24 bytes for [`Framing`], 24 + 88 × N bytes for
//! [`FramingEx`]). Decoding never panics: malformed input yields a [`Status`] that names the
//! byte offset and the field.
//!
//! Decoding policy (not Windows-documented): a `FileAlignment` that is not of the form
//! `2^n − 1` is rejected with `STATUS_INVALID_PARAMETER` wherever it is decoded, because
//! [`Alignment`] cannot represent it (no KS header defines such a value, and the negotiation
//! and allocator layers rely on masks being masks). `Reserved` of the old framing must be 0
//! (documented "must be zero"). All other fields accept every value.

use std::borrow::Cow;
use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not};

use ks_sys::{
    GUID, KS_COMPRESSION, KS_FRAMING_ITEM, KS_FRAMING_ITEM_0, KS_FRAMING_RANGE,
    KS_FRAMING_RANGE_WEIGHTED, KSALLOCATOR_FRAMING, KSALLOCATOR_FRAMING_0, KSALLOCATOR_FRAMING_1,
    KSALLOCATOR_FRAMING_EX,
};

use crate::status::Status;

// ---------------------------------------------------------------------------------------------
// Little-endian and payload-length helpers
// ---------------------------------------------------------------------------------------------

/// Reads a little-endian `u32` at `off` (the caller has checked the length).
pub(crate) fn rd_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

/// Reads a GUID in its memory (little-endian) form at `off` (the caller has checked the length).
pub(crate) fn rd_guid(b: &[u8], off: usize) -> GUID {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[off..off + 16]);
    GUID::from_le_bytes(a)
}

fn wr_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn wr_guid(out: &mut Vec<u8>, g: &GUID) {
    out.extend_from_slice(&g.to_le_bytes());
}

/// `STATUS_BUFFER_TOO_SMALL`, required `size`, for `bytes` shorter than the `size` bytes of
/// `what` (a structure, or its header), naming the offset where they end.
fn truncated(what: &str, size: usize, bytes: &[u8]) -> Status {
    Status::BufferTooSmall {
        required: size,
        message: Cow::Owned(format!(
            "{what} is {size} bytes, got {} (truncated at offset {})",
            bytes.len(),
            bytes.len()
        )),
    }
}

/// Checks that `bytes` is exactly the `size` bytes of structure `what`: fewer is
/// [`truncated`], more is `STATUS_INVALID_PARAMETER` naming the trailing bytes.
fn check_len(what: &str, size: usize, bytes: &[u8]) -> Result<(), Status> {
    if bytes.len() < size {
        return Err(truncated(what, size, bytes));
    }
    if bytes.len() > size {
        return Err(Status::InvalidParameter(Cow::Owned(format!(
            "{what} is {size} bytes, got {}: {} trailing bytes at offset {size}",
            bytes.len(),
            bytes.len() - size
        ))));
    }
    Ok(())
}

/// Writes `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` (registry form, upper case).
fn fmt_guid(g: &GUID, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{{{g}}}")
}

// ---------------------------------------------------------------------------------------------
// Alignment
// ---------------------------------------------------------------------------------------------

/// A power-of-two byte alignment. KS stores it as a mask (`FileAlignment` = bytes − 1): an
/// address `a` is aligned iff `a & mask == 0`.
///
/// Only masks of the form `2^n − 1` are valid, for `n` in 0..=31 (alignments 1 B .. 2 GiB);
/// `0xFFFF_FFFF` (2^32 bytes) is rejected because the alignment would not fit in a `u32`.
///
/// Policy (not Windows-documented): every decoder in this crate (bytes, ks-sys structures,
/// create requests) rejects a `FileAlignment` that is not such a mask with
/// `STATUS_INVALID_PARAMETER`, since no KS header defines one and negotiation and allocation
/// rely on masks being masks. (The `FramePitch` reading of the same union field, tied to
/// `KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED`, is undocumented and not supported.)
///
/// ```
/// use ks_alloc::Alignment;
/// let a = Alignment::from_mask(3)?; // FILE_LONG_ALIGNMENT
/// assert_eq!(a.bytes(), 4);
/// assert!(a.is_aligned(0x1000) && !a.is_aligned(0x1002));
/// assert!(Alignment::from_mask(5).is_err());
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "FileAlignment")]
#[doc(alias = "FILE_BYTE_ALIGNMENT")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Alignment(u32);

impl Alignment {
    /// 1-byte alignment (mask 0, `FILE_BYTE_ALIGNMENT`).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::BYTE.mask(), 0);
    /// assert_eq!(Alignment::BYTE.bytes(), 1);
    /// assert_eq!(Alignment::BYTE.mask(), ks_sys::FILE_BYTE_ALIGNMENT);
    /// ```
    #[doc(alias = "FILE_BYTE_ALIGNMENT")]
    pub const BYTE: Alignment = Alignment(0);
    /// 2-byte alignment (mask 1, `FILE_WORD_ALIGNMENT`).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::WORD.mask(), 1);
    /// assert_eq!(Alignment::WORD.bytes(), 2);
    /// assert_eq!(Alignment::WORD.mask(), ks_sys::FILE_WORD_ALIGNMENT);
    /// ```
    #[doc(alias = "FILE_WORD_ALIGNMENT")]
    pub const WORD: Alignment = Alignment(1);
    /// 4-byte alignment (mask 3, `FILE_LONG_ALIGNMENT`).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::LONG.mask(), 3);
    /// assert_eq!(Alignment::LONG.bytes(), 4);
    /// assert_eq!(Alignment::LONG.mask(), ks_sys::FILE_LONG_ALIGNMENT);
    /// ```
    #[doc(alias = "FILE_LONG_ALIGNMENT")]
    pub const LONG: Alignment = Alignment(3);
    /// 8-byte alignment (mask 7, `FILE_QUAD_ALIGNMENT`).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::QUAD.mask(), 7);
    /// assert_eq!(Alignment::QUAD.bytes(), 8);
    /// assert_eq!(Alignment::QUAD.mask(), ks_sys::FILE_QUAD_ALIGNMENT);
    /// ```
    #[doc(alias = "FILE_QUAD_ALIGNMENT")]
    pub const QUAD: Alignment = Alignment(7);
    /// 16-byte alignment (mask 0xF, `FILE_OCTA_ALIGNMENT`).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::OCTA.mask(), 0xF);
    /// assert_eq!(Alignment::OCTA.bytes(), 16);
    /// assert_eq!(Alignment::OCTA.mask(), ks_sys::FILE_OCTA_ALIGNMENT);
    /// ```
    #[doc(alias = "FILE_OCTA_ALIGNMENT")]
    pub const OCTA: Alignment = Alignment(0xF);
    /// 32-byte alignment (`FILE_32_BYTE_ALIGNMENT`).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::BYTES_32.mask(), 0x1F);
    /// assert_eq!(Alignment::BYTES_32.bytes(), 32);
    /// assert_eq!(Alignment::BYTES_32.mask(), ks_sys::FILE_32_BYTE_ALIGNMENT);
    /// ```
    #[doc(alias = "FILE_32_BYTE_ALIGNMENT")]
    pub const BYTES_32: Alignment = Alignment(0x1F);
    /// 64-byte alignment (`FILE_64_BYTE_ALIGNMENT`).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::BYTES_64.mask(), 0x3F);
    /// assert_eq!(Alignment::BYTES_64.bytes(), 64);
    /// assert_eq!(Alignment::BYTES_64.mask(), ks_sys::FILE_64_BYTE_ALIGNMENT);
    /// ```
    #[doc(alias = "FILE_64_BYTE_ALIGNMENT")]
    pub const BYTES_64: Alignment = Alignment(0x3F);
    /// 128-byte alignment (`FILE_128_BYTE_ALIGNMENT`).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::BYTES_128.mask(), 0x7F);
    /// assert_eq!(Alignment::BYTES_128.bytes(), 128);
    /// assert_eq!(Alignment::BYTES_128.mask(), ks_sys::FILE_128_BYTE_ALIGNMENT);
    /// ```
    #[doc(alias = "FILE_128_BYTE_ALIGNMENT")]
    pub const BYTES_128: Alignment = Alignment(0x7F);
    /// 256-byte alignment (`FILE_256_BYTE_ALIGNMENT`).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::BYTES_256.mask(), 0xFF);
    /// assert_eq!(Alignment::BYTES_256.bytes(), 256);
    /// assert_eq!(Alignment::BYTES_256.mask(), ks_sys::FILE_256_BYTE_ALIGNMENT);
    /// ```
    #[doc(alias = "FILE_256_BYTE_ALIGNMENT")]
    pub const BYTES_256: Alignment = Alignment(0xFF);
    /// 512-byte alignment (`FILE_512_BYTE_ALIGNMENT`).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::BYTES_512.mask(), 0x1FF);
    /// assert_eq!(Alignment::BYTES_512.bytes(), 512);
    /// assert_eq!(Alignment::BYTES_512.mask(), ks_sys::FILE_512_BYTE_ALIGNMENT);
    /// ```
    #[doc(alias = "FILE_512_BYTE_ALIGNMENT")]
    pub const BYTES_512: Alignment = Alignment(0x1FF);
    /// 4096-byte alignment (mask 0xFFF): one 4 KiB page.
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::BYTES_4096.mask(), 0xFFF);
    /// assert_eq!(Alignment::BYTES_4096.bytes(), 4096);
    /// assert!(Alignment::BYTES_4096.is_aligned(0x2000) && !Alignment::BYTES_4096.is_aligned(0x2800));
    /// ```
    pub const BYTES_4096: Alignment = Alignment(0xFFF);
    /// The largest representable alignment, 2^31 bytes.
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::MAX.mask(), 0x7FFF_FFFF);
    /// assert_eq!(Alignment::MAX.bytes(), 0x8000_0000);
    /// assert_eq!(Alignment::from_bytes(0x8000_0000), Ok(Alignment::MAX));
    /// assert!(Alignment::from_mask(0xFFFF_FFFF).is_err());
    /// ```
    pub const MAX: Alignment = Alignment(0x7FFF_FFFF);

    /// The alignment for a KS mask (`FileAlignment`). Fails with `STATUS_INVALID_PARAMETER`
    /// naming the value unless `mask` is `2^n − 1` with `n <= 31`.
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::from_mask(0x1FF)?.bytes(), 512);
    /// let e = Alignment::from_mask(6).unwrap_err();
    /// assert!(e.to_string().contains("FileAlignment 0x00000006"));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn from_mask(mask: u32) -> Result<Alignment, Status> {
        Self::from_mask_field(mask, "FileAlignment")
    }

    /// [`from_mask`](Self::from_mask) with the field name used in the error message.
    pub(crate) fn from_mask_field(mask: u32, field: &str) -> Result<Alignment, Status> {
        if mask & mask.wrapping_add(1) == 0 && mask != u32::MAX {
            Ok(Alignment(mask))
        } else {
            Err(Status::InvalidParameter(Cow::Owned(format!(
                "{field} 0x{mask:08X} is not an alignment mask; must be 2^n-1 with n <= 31 \
                 (0, 1, 3, 7, ..., 0x7FFFFFFF)"
            ))))
        }
    }

    /// The alignment of `bytes` bytes. Fails with `STATUS_INVALID_PARAMETER` unless `bytes` is
    /// a power of two (1, 2, 4, ... 2^31).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::from_bytes(16)?, Alignment::OCTA);
    /// assert!(Alignment::from_bytes(0).is_err());
    /// assert!(Alignment::from_bytes(12).is_err());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn from_bytes(bytes: u32) -> Result<Alignment, Status> {
        if bytes.is_power_of_two() {
            Ok(Alignment(bytes - 1))
        } else {
            Err(Status::InvalidParameter(Cow::Owned(format!(
                "alignment {bytes} bytes is not a power of two; must be 1, 2, 4, ..., 2^31"
            ))))
        }
    }

    /// The KS mask (`FileAlignment`), bytes − 1.
    ///
    /// ```
    /// assert_eq!(ks_alloc::Alignment::LONG.mask(), 3);
    /// ```
    pub const fn mask(self) -> u32 {
        self.0
    }

    /// The alignment in bytes, mask + 1.
    ///
    /// ```
    /// assert_eq!(ks_alloc::Alignment::QUAD.bytes(), 8);
    /// ```
    pub const fn bytes(self) -> u32 {
        self.0 + 1
    }

    /// The stricter of two alignments (equivalently the bitwise OR of the masks).
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::LONG.max(Alignment::OCTA), Alignment::OCTA);
    /// ```
    pub fn max(self, other: Alignment) -> Alignment {
        Alignment(self.0 | other.0)
    }

    /// Whether `addr` (an address or offset) satisfies this alignment.
    ///
    /// ```
    /// assert!(ks_alloc::Alignment::OCTA.is_aligned(48));
    /// assert!(!ks_alloc::Alignment::OCTA.is_aligned(40));
    /// ```
    pub fn is_aligned(self, addr: usize) -> bool {
        addr & self.0 as usize == 0
    }

    /// `size` rounded up to a multiple of this alignment, `None` on overflow.
    ///
    /// ```
    /// use ks_alloc::Alignment;
    /// assert_eq!(Alignment::OCTA.align_up(17), Some(32));
    /// assert_eq!(Alignment::OCTA.align_up(usize::MAX), None);
    /// ```
    pub fn align_up(self, size: usize) -> Option<usize> {
        let m = self.0 as usize;
        size.checked_add(m).map(|v| v & !m)
    }
}

impl fmt::Debug for Alignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Alignment({} bytes, mask 0x{:X})", self.bytes(), self.0)
    }
}

impl fmt::Display for Alignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.bytes())
    }
}

impl TryFrom<u32> for Alignment {
    type Error = Status;
    /// Same as [`Alignment::from_mask`].
    fn try_from(mask: u32) -> Result<Alignment, Status> {
        Alignment::from_mask(mask)
    }
}

impl From<Alignment> for u32 {
    /// The mask.
    fn from(a: Alignment) -> u32 {
        a.mask()
    }
}

// ---------------------------------------------------------------------------------------------
// Flag sets
// ---------------------------------------------------------------------------------------------

/// A typed set of KS flag bits. Each constant is written `NAME = bits => KS_NAME;`: its value
/// is spelled out here, and its generated doc example checks it against `ks_sys::KS_NAME`
/// (itself checked against mingw-w64's `ks.h` by ks-sys's ABI test).
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$cmeta:meta])* $cname:ident = $value:expr => $ks:ident; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub u32);

        impl $name {
            $(
                $(#[$cmeta])*
                ///
                /// ```
                #[doc = concat!("use ks_alloc::", stringify!($name), " as F;")]
                #[doc = concat!("assert_eq!(F::", stringify!($cname), ".bits(), ks_sys::", stringify!($ks), ");")]
                #[doc = concat!("assert!(F::NAMED.contains(&(\"", stringify!($cname), "\", ks_sys::", stringify!($ks), ")));")]
                /// ```
                pub const $cname: $name = $name($value);
            )*

            /// Names and bits of the named flags, in declaration order.
            ///
            /// ```
            #[doc = concat!("let names = ks_alloc::", stringify!($name), "::NAMED;")]
            /// assert!(names.iter().all(|(n, bits)| !n.is_empty() && *bits != 0));
            /// ```
            pub const NAMED: &'static [(&'static str, u32)] = &[$((stringify!($cname), $value)),*];

            /// The empty set.
            ///
            /// ```
            #[doc = concat!("assert!(ks_alloc::", stringify!($name), "::empty().is_empty());")]
            /// ```
            pub const fn empty() -> Self {
                $name(0)
            }

            /// The raw bits.
            ///
            /// ```
            #[doc = concat!("assert_eq!(ks_alloc::", stringify!($name), "(0x3).bits(), 3);")]
            /// ```
            pub const fn bits(self) -> u32 {
                self.0
            }

            /// Whether every bit of `other` is set in `self`.
            ///
            /// ```
            #[doc = concat!("use ks_alloc::", stringify!($name), " as F;")]
            /// assert!(F(0b101).contains(F(0b100)));
            /// assert!(!F(0b101).contains(F(0b110)));
            /// ```
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether `self` and `other` share a bit.
            ///
            /// ```
            #[doc = concat!("use ks_alloc::", stringify!($name), " as F;")]
            /// assert!(F(0b101).intersects(F(0b110)));
            /// assert!(!F(0b001).intersects(F(0b110)));
            /// ```
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            /// Whether no bit is set.
            ///
            /// ```
            #[doc = concat!("assert!(!ks_alloc::", stringify!($name), "(1).is_empty());")]
            /// ```
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// The bits that no named constant covers.
            ///
            /// ```
            #[doc = concat!("assert_eq!(ks_alloc::", stringify!($name), "(0x4000_0001).unknown_bits(), 0x4000_0000);")]
            /// ```
            pub fn unknown_bits(self) -> u32 {
                let known = Self::NAMED.iter().fold(0u32, |acc, (_, v)| acc | v);
                self.0 & !known
            }

            /// `self` with the bits of `other` cleared.
            ///
            /// ```
            #[doc = concat!("use ks_alloc::", stringify!($name), " as F;")]
            /// assert_eq!(F(0b111).difference(F(0b010)), F(0b101));
            /// ```
            pub const fn difference(self, other: Self) -> Self {
                $name(self.0 & !other.0)
            }
        }

        impl BitOr for $name {
            type Output = $name;
            fn bitor(self, rhs: $name) -> $name {
                $name(self.0 | rhs.0)
            }
        }
        impl BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: $name) {
                self.0 |= rhs.0;
            }
        }
        impl BitAnd for $name {
            type Output = $name;
            fn bitand(self, rhs: $name) -> $name {
                $name(self.0 & rhs.0)
            }
        }
        impl BitAndAssign for $name {
            fn bitand_assign(&mut self, rhs: $name) {
                self.0 &= rhs.0;
            }
        }
        impl Not for $name {
            type Output = $name;
            fn not(self) -> $name {
                $name(!self.0)
            }
        }
        impl From<u32> for $name {
            fn from(bits: u32) -> $name {
                $name(bits)
            }
        }
        impl From<$name> for u32 {
            fn from(f: $name) -> u32 {
                f.0
            }
        }
        /// Prints the names of the set flags joined by `|` (a bit named twice prints the
        /// first name only), then any unknown bits in hex: `Name(A | B | 0x40)`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                let mut shown = 0u32;
                let mut first = true;
                for (n, v) in Self::NAMED {
                    if *v != 0 && self.0 & v == *v && shown & v != *v {
                        if !first {
                            f.write_str(" | ")?;
                        }
                        f.write_str(n)?;
                        shown |= v;
                        first = false;
                    }
                }
                let rest = self.0 & !shown;
                if rest != 0 {
                    if !first {
                        f.write_str(" | ")?;
                    }
                    write!(f, "0x{rest:X}")?;
                    first = false;
                }
                if first {
                    f.write_str("empty")?;
                }
                f.write_str(")")
            }
        }
    };
}

flag_set! {
    /// Requirement bits of a pin's framing query (`RequirementsFlags`, ks-spec §2.2).
    ///
    /// ```
    /// use ks_alloc::RequirementFlags as R;
    /// let r = R::SYSTEM_MEMORY | R::PREFERENCES_ONLY;
    /// assert!(r.contains(R::SYSTEM_MEMORY));
    /// assert_eq!(r.bits(), 0x8000_0002);
    /// assert_eq!(format!("{r:?}"), "RequirementFlags(SYSTEM_MEMORY | PREFERENCES_ONLY)");
    /// ```
    #[doc(alias = "RequirementsFlags")]
    #[doc(alias = "KSALLOCATOR_REQUIREMENTF")]
    RequirementFlags {
        /// `KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER` (0x1): may change frames in place.
        #[doc(alias = "KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER")]
        INPLACE_MODIFIER = 0x0000_0001 => KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER;
        /// `KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY` (0x2): needs system memory.
        #[doc(alias = "KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY")]
        SYSTEM_MEMORY = 0x0000_0002 => KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY;
        /// `KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY` (0x4): downstream must preserve data.
        #[doc(alias = "KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY")]
        FRAME_INTEGRITY = 0x0000_0004 => KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY;
        /// `KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE` (0x8): must allocate every frame it sends.
        #[doc(alias = "KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE")]
        MUST_ALLOCATE = 0x0000_0008 => KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE;
        /// `KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION` (0x10, undocumented).
        #[doc(alias = "KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION")]
        SYSTEM_MEMORY_CUSTOM_ALLOCATION = 0x0000_0010 => KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION;
        /// `KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY` (0x80000000): the other bits are
        /// preferences only.
        #[doc(alias = "KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY")]
        PREFERENCES_ONLY = 0x8000_0000 => KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY;
    }
}

flag_set! {
    /// Option bits of an allocator create request (`OptionsFlags`, ks-spec §2.2). They share
    /// storage and values with [`RequirementFlags`] (behaviour 5).
    ///
    /// ```
    /// use ks_alloc::OptionFlags as O;
    /// let o = O::SYSTEM_MEMORY;
    /// assert!(O::VALID.contains(o));
    /// assert_eq!(format!("{:?}", O(0x12)), "OptionFlags(SYSTEM_MEMORY | 0x10)");
    /// ```
    #[doc(alias = "OptionsFlags")]
    #[doc(alias = "KSALLOCATOR_OPTIONF")]
    OptionFlags {
        /// `KSALLOCATOR_OPTIONF_COMPATIBLE` (0x1): compatible with the downstream allocator.
        #[doc(alias = "KSALLOCATOR_OPTIONF_COMPATIBLE")]
        COMPATIBLE = 0x0000_0001 => KSALLOCATOR_OPTIONF_COMPATIBLE;
        /// `KSALLOCATOR_OPTIONF_SYSTEM_MEMORY` (0x2): allocate from the pool named by `PoolType`.
        #[doc(alias = "KSALLOCATOR_OPTIONF_SYSTEM_MEMORY")]
        SYSTEM_MEMORY = 0x0000_0002 => KSALLOCATOR_OPTIONF_SYSTEM_MEMORY;
        /// `KSALLOCATOR_OPTIONF_VALID` (0x3): mask of the valid option bits.
        #[doc(alias = "KSALLOCATOR_OPTIONF_VALID")]
        VALID = 0x0000_0003 => KSALLOCATOR_OPTIONF_VALID;
    }
}

flag_set! {
    /// Flags of a framing item (`KS_FRAMING_ITEM.Flags`): the requirement bits plus the
    /// `KSALLOCATOR_FLAG_*` pipe bits (ks-spec §2.2).
    ///
    /// Note the header collision: `SYSTEM_MEMORY_CUSTOM_ALLOCATION` and
    /// `PARTIAL_READ_SUPPORT` are both 0x10. In an item, 0x10 is printed as
    /// `PARTIAL_READ_SUPPORT` (the item-flag meaning of the pipe-flag group).
    ///
    /// ```
    /// use ks_alloc::{ItemFlags as F, RequirementFlags as R};
    /// let f = F::SYSTEM_MEMORY | F::CAN_ALLOCATE;
    /// assert_eq!(f.requirements(), R::SYSTEM_MEMORY);
    /// assert_eq!(format!("{f:?}"), "ItemFlags(SYSTEM_MEMORY | CAN_ALLOCATE)");
    /// ```
    #[doc(alias = "KSALLOCATOR_FLAG")]
    ItemFlags {
        /// `KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER` (0x1).
        INPLACE_MODIFIER = 0x0000_0001 => KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER;
        /// `KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY` (0x2).
        SYSTEM_MEMORY = 0x0000_0002 => KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY;
        /// `KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY` (0x4).
        FRAME_INTEGRITY = 0x0000_0004 => KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY;
        /// `KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE` (0x8).
        MUST_ALLOCATE = 0x0000_0008 => KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE;
        /// `KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT` (0x10).
        #[doc(alias = "KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT")]
        PARTIAL_READ_SUPPORT = 0x0000_0010 => KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT;
        /// `KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION` (0x10; same bit as
        /// `PARTIAL_READ_SUPPORT`).
        SYSTEM_MEMORY_CUSTOM_ALLOCATION = 0x0000_0010 => KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION;
        /// `KSALLOCATOR_FLAG_DEVICE_SPECIFIC` (0x20).
        #[doc(alias = "KSALLOCATOR_FLAG_DEVICE_SPECIFIC")]
        DEVICE_SPECIFIC = 0x0000_0020 => KSALLOCATOR_FLAG_DEVICE_SPECIFIC;
        /// `KSALLOCATOR_FLAG_CAN_ALLOCATE` (0x40): the pin can allocate frames of this item's
        /// memory type.
        #[doc(alias = "KSALLOCATOR_FLAG_CAN_ALLOCATE")]
        CAN_ALLOCATE = 0x0000_0040 => KSALLOCATOR_FLAG_CAN_ALLOCATE;
        /// `KSALLOCATOR_FLAG_INSIST_ON_FRAMESIZE_RATIO` (0x80).
        #[doc(alias = "KSALLOCATOR_FLAG_INSIST_ON_FRAMESIZE_RATIO")]
        INSIST_ON_FRAMESIZE_RATIO = 0x0000_0080 => KSALLOCATOR_FLAG_INSIST_ON_FRAMESIZE_RATIO;
        /// `KSALLOCATOR_FLAG_NO_FRAME_INTEGRITY` (0x100).
        #[doc(alias = "KSALLOCATOR_FLAG_NO_FRAME_INTEGRITY")]
        NO_FRAME_INTEGRITY = 0x0000_0100 => KSALLOCATOR_FLAG_NO_FRAME_INTEGRITY;
        /// `KSALLOCATOR_FLAG_MULTIPLE_OUTPUT` (0x200).
        #[doc(alias = "KSALLOCATOR_FLAG_MULTIPLE_OUTPUT")]
        MULTIPLE_OUTPUT = 0x0000_0200 => KSALLOCATOR_FLAG_MULTIPLE_OUTPUT;
        /// `KSALLOCATOR_FLAG_CYCLE` (0x400).
        #[doc(alias = "KSALLOCATOR_FLAG_CYCLE")]
        CYCLE = 0x0000_0400 => KSALLOCATOR_FLAG_CYCLE;
        /// `KSALLOCATOR_FLAG_ALLOCATOR_EXISTS` (0x800).
        #[doc(alias = "KSALLOCATOR_FLAG_ALLOCATOR_EXISTS")]
        ALLOCATOR_EXISTS = 0x0000_0800 => KSALLOCATOR_FLAG_ALLOCATOR_EXISTS;
        /// `KSALLOCATOR_FLAG_INDEPENDENT_RANGES` (0x1000).
        #[doc(alias = "KSALLOCATOR_FLAG_INDEPENDENT_RANGES")]
        INDEPENDENT_RANGES = 0x0000_1000 => KSALLOCATOR_FLAG_INDEPENDENT_RANGES;
        /// `KSALLOCATOR_FLAG_ATTENTION_STEPPING` (0x2000).
        #[doc(alias = "KSALLOCATOR_FLAG_ATTENTION_STEPPING")]
        ATTENTION_STEPPING = 0x0000_2000 => KSALLOCATOR_FLAG_ATTENTION_STEPPING;
        /// `KSALLOCATOR_FLAG_ENABLE_CACHED_MDL` (0x4000).
        #[doc(alias = "KSALLOCATOR_FLAG_ENABLE_CACHED_MDL")]
        ENABLE_CACHED_MDL = 0x0000_4000 => KSALLOCATOR_FLAG_ENABLE_CACHED_MDL;
        /// `KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED` (0x8000).
        #[doc(alias = "KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED")]
        BUFFER_2D_REQUIRED = 0x0000_8000 => KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED;
        /// `KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY` (0x80000000).
        PREFERENCES_ONLY = 0x8000_0000 => KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY;
    }
}

impl RequirementFlags {
    /// The same bits read as create-request options (behaviour 5: shared storage).
    ///
    /// ```
    /// use ks_alloc::{OptionFlags, RequirementFlags};
    /// assert_eq!(RequirementFlags::SYSTEM_MEMORY.as_options(), OptionFlags::SYSTEM_MEMORY);
    /// ```
    pub const fn as_options(self) -> OptionFlags {
        OptionFlags(self.0)
    }
}

impl OptionFlags {
    /// The same bits read as requirements (behaviour 5: shared storage).
    ///
    /// ```
    /// use ks_alloc::{OptionFlags, RequirementFlags};
    /// assert_eq!(OptionFlags::COMPATIBLE.as_requirements(), RequirementFlags::INPLACE_MODIFIER);
    /// ```
    pub const fn as_requirements(self) -> RequirementFlags {
        RequirementFlags(self.0)
    }
}

impl ItemFlags {
    /// Mask of the bits of an item's flags that are old-style requirement bits:
    /// 0x1–0x8 and `PREFERENCES_ONLY` (0x10 is not included: in an item it is
    /// `PARTIAL_READ_SUPPORT`).
    ///
    /// ```
    /// use ks_alloc::ItemFlags;
    /// let bits = ItemFlags::PARTIAL_READ_SUPPORT.bits() | ItemFlags::MUST_ALLOCATE.bits();
    /// assert_eq!(bits & ItemFlags::REQUIREMENT_MASK, ItemFlags::MUST_ALLOCATE.bits());
    /// ```
    pub const REQUIREMENT_MASK: u32 = 0x8000_000F;

    /// The old-style requirement bits of these flags (`bits & 0x8000000F`).
    ///
    /// ```
    /// use ks_alloc::{ItemFlags, RequirementFlags};
    /// let f = ItemFlags::MUST_ALLOCATE | ItemFlags::PARTIAL_READ_SUPPORT;
    /// assert_eq!(f.requirements(), RequirementFlags::MUST_ALLOCATE);
    /// ```
    pub const fn requirements(self) -> RequirementFlags {
        RequirementFlags(self.0 & Self::REQUIREMENT_MASK)
    }
}

impl From<RequirementFlags> for ItemFlags {
    fn from(r: RequirementFlags) -> ItemFlags {
        ItemFlags(r.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Memory type, bus type, pool type
// ---------------------------------------------------------------------------------------------

/// A typed KS GUID. Each constant is written `NAME = u128 => KS_NAME;`: `KS_NAME` is what
/// `name()` and `Display` print, and the constant's generated doc example checks the value
/// against `ks_sys::KS_NAME`.
macro_rules! guid_type {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$cmeta:meta])* $cname:ident = $value:expr => $ks:ident; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub GUID);

        impl $name {
            $(
                $(#[$cmeta])*
                ///
                /// ```
                #[doc = concat!("use ks_alloc::", stringify!($name), " as T;")]
                #[doc = concat!("assert_eq!(T::", stringify!($cname), ".0, ks_sys::", stringify!($ks), ");")]
                #[doc = concat!("assert_eq!(T::", stringify!($cname), ".name(), Some(\"", stringify!($ks), "\"));")]
                /// ```
                pub const $cname: $name = $name(GUID::from_u128($value));
            )*

            /// The value for a 128-bit GUID literal (`windows-rs` `from_u128` form).
            ///
            /// ```
            #[doc = concat!("let t = ks_alloc::", stringify!($name), "::from_u128(0x12345678_9abc_def0_1122_334455667788);")]
            /// assert_eq!(t.0.data1, 0x12345678);
            /// ```
            pub const fn from_u128(v: u128) -> Self {
                $name(GUID::from_u128(v))
            }

            /// The GUID as a 128-bit literal.
            ///
            /// ```
            #[doc = concat!("let t = ks_alloc::", stringify!($name), "::from_u128(42);")]
            /// assert_eq!(t.to_u128(), 42);
            /// ```
            pub const fn to_u128(self) -> u128 {
                self.0.to_u128()
            }

            /// The KS name of a known GUID, `None` for any other value.
            ///
            /// ```
            #[doc = concat!("use ks_alloc::", stringify!($name), " as T;")]
            /// assert!(T::default().name().is_some()); // GUID_NULL has a name
            /// assert_eq!(T::from_u128(42).name(), None);
            /// ```
            pub fn name(self) -> Option<&'static str> {
                let k = self.0.to_u128();
                $( if k == $value { return Some(stringify!($ks)); } )*
                None
            }

            /// Whether this is `GUID_NULL` (wildcard / don't care).
            ///
            /// ```
            #[doc = concat!("use ks_alloc::", stringify!($name), " as T;")]
            /// assert!(T::default().is_wildcard());
            /// assert!(!T::from_u128(1).is_wildcard());
            /// ```
            pub const fn is_wildcard(self) -> bool {
                self.0.to_u128() == 0
            }
        }

        /// The KS name for a known GUID, else the GUID in registry form.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => fmt_guid(&self.0, f),
                }
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                match self.name() {
                    Some(n) => f.write_str(n)?,
                    None => fmt_guid(&self.0, f)?,
                }
                f.write_str(")")
            }
        }
        impl From<GUID> for $name {
            fn from(g: GUID) -> $name {
                $name(g)
            }
        }
        impl From<$name> for GUID {
            fn from(t: $name) -> GUID {
                t.0
            }
        }
    };
}

guid_type! {
    /// The kind of memory frames live in (`KS_FRAMING_ITEM.MemoryType`, ks-spec §1.1).
    ///
    /// ```
    /// use ks_alloc::MemoryType;
    /// assert_eq!(MemoryType::KERNEL_NONPAGED.to_string(), "KSMEMORY_TYPE_KERNEL_NONPAGED");
    /// assert!(MemoryType::WILDCARD.is_wildcard());
    /// let dev = MemoryType::from_u128(0x12345678_9abc_def0_1122_334455667788);
    /// assert_eq!(dev.name(), None);
    /// assert_eq!(dev.to_string(), "{12345678-9ABC-DEF0-1122-334455667788}");
    /// ```
    #[doc(alias = "KSMEMORY_TYPE")]
    MemoryType {
        /// `KSMEMORY_TYPE_WILDCARD` = `KSMEMORY_TYPE_DONT_CARE` = `GUID_NULL`: any memory.
        #[doc(alias = "KSMEMORY_TYPE_WILDCARD")]
        #[doc(alias = "KSMEMORY_TYPE_DONT_CARE")]
        WILDCARD = 0 => KSMEMORY_TYPE_WILDCARD;
        /// `KSMEMORY_TYPE_SYSTEM`.
        #[doc(alias = "KSMEMORY_TYPE_SYSTEM")]
        SYSTEM = 0x091bb638_603f_11d1_b067_00a0c9062802 => KSMEMORY_TYPE_SYSTEM;
        /// `KSMEMORY_TYPE_USER`.
        #[doc(alias = "KSMEMORY_TYPE_USER")]
        USER = 0x8cb0fc28_7893_11d1_b069_00a0c9062802 => KSMEMORY_TYPE_USER;
        /// `KSMEMORY_TYPE_KERNEL_PAGED`.
        #[doc(alias = "KSMEMORY_TYPE_KERNEL_PAGED")]
        KERNEL_PAGED = 0xd833f8f8_7894_11d1_b069_00a0c9062802 => KSMEMORY_TYPE_KERNEL_PAGED;
        /// `KSMEMORY_TYPE_KERNEL_NONPAGED`.
        #[doc(alias = "KSMEMORY_TYPE_KERNEL_NONPAGED")]
        KERNEL_NONPAGED = 0x4a6d5fc4_7895_11d1_b069_00a0c9062802 => KSMEMORY_TYPE_KERNEL_NONPAGED;
        /// `KSMEMORY_TYPE_DEVICE_UNKNOWN`: device memory of an unnamed kind.
        #[doc(alias = "KSMEMORY_TYPE_DEVICE_UNKNOWN")]
        DEVICE_UNKNOWN = 0x091bb639_603f_11d1_b067_00a0c9062802 => KSMEMORY_TYPE_DEVICE_UNKNOWN;
    }
}

guid_type! {
    /// The bus over which an item's memory is reached (`KS_FRAMING_ITEM.BusType`).
    ///
    /// ```
    /// use ks_alloc::BusType;
    /// assert_eq!(BusType::PCI.name(), Some("GUID_BUS_TYPE_PCI"));
    /// assert!(BusType::DONT_CARE.is_wildcard());
    /// ```
    #[doc(alias = "GUID_BUS_TYPE")]
    BusType {
        /// `KS_TYPE_DONT_CARE` = `GUID_NULL`: any bus.
        #[doc(alias = "KS_TYPE_DONT_CARE")]
        DONT_CARE = 0 => KS_TYPE_DONT_CARE;
        /// `GUID_BUS_TYPE_PCI`.
        #[doc(alias = "GUID_BUS_TYPE_PCI")]
        PCI = 0xc8ebdfb0_b510_11d0_80e5_00a0c92542e3 => GUID_BUS_TYPE_PCI;
        /// `GUID_BUS_TYPE_USB`.
        #[doc(alias = "GUID_BUS_TYPE_USB")]
        USB = 0x9d7debbc_c85d_11d1_9eb4_006008c3a19a => GUID_BUS_TYPE_USB;
        /// `GUID_BUS_TYPE_1394`.
        #[doc(alias = "GUID_BUS_TYPE_1394")]
        IEEE1394 = 0xf74e73eb_9ac5_45eb_be4d_772cc71ddfb3 => GUID_BUS_TYPE_1394;
        /// `GUID_BUS_TYPE_AVC`.
        #[doc(alias = "GUID_BUS_TYPE_AVC")]
        AVC = 0xc06ff265_ae09_48f0_812c_16753d7cba83 => GUID_BUS_TYPE_AVC;
        /// `GUID_61883_CLASS` (a device-class GUID reused as a bus tag).
        #[doc(alias = "GUID_61883_CLASS")]
        CLASS_61883 = 0x7ebefbc0_3200_11d2_b4c2_00a0c9697d07 => GUID_61883_CLASS;
    }
}

impl MemoryType {
    /// The pool an old-style framing names for this memory type (policy, following
    /// DDI ns-ks-ks_framing_item and ReactOS ksproxy): `KERNEL_PAGED` → [`PoolType::PAGED`],
    /// everything else → [`PoolType::NON_PAGED`].
    ///
    /// ```
    /// use ks_alloc::{MemoryType, PoolType};
    /// assert_eq!(MemoryType::KERNEL_PAGED.pool_type(), PoolType::PAGED);
    /// assert_eq!(MemoryType::USER.pool_type(), PoolType::NON_PAGED);
    /// ```
    pub fn pool_type(self) -> PoolType {
        if self == MemoryType::KERNEL_PAGED {
            PoolType::PAGED
        } else {
            PoolType::NON_PAGED
        }
    }

    /// Whether this is a system-memory type (`SYSTEM`, `KERNEL_PAGED`, `KERNEL_NONPAGED`),
    /// which the old framing expresses with the `SYSTEM_MEMORY` flag.
    ///
    /// ```
    /// use ks_alloc::MemoryType;
    /// assert!(MemoryType::KERNEL_NONPAGED.is_system());
    /// assert!(!MemoryType::USER.is_system());
    /// ```
    pub fn is_system(self) -> bool {
        self == MemoryType::SYSTEM
            || self == MemoryType::KERNEL_PAGED
            || self == MemoryType::KERNEL_NONPAGED
    }
}

/// A kernel pool type (`POOL_TYPE`, ks-spec §2.4). Any `i32` is representable; only
/// [`NON_PAGED`](Self::NON_PAGED) and [`PAGED`](Self::PAGED) are used by the allocator
/// subsystem.
///
/// ```
/// use ks_alloc::PoolType;
/// assert_eq!(PoolType::PAGED.0, 1);
/// assert_eq!(PoolType(512).name(), Some("NonPagedPoolNx"));
/// assert_eq!(format!("{:?}", PoolType(7)), "PoolType(7)");
/// ```
#[doc(alias = "POOL_TYPE")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PoolType(pub i32);

impl PoolType {
    /// `NonPagedPool` (0).
    ///
    /// ```
    /// use ks_alloc::PoolType;
    /// assert_eq!(PoolType::NON_PAGED, PoolType(ks_sys::NonPagedPool));
    /// assert_eq!(PoolType::NON_PAGED.name(), Some("NonPagedPool"));
    /// ```
    #[doc(alias = "NonPagedPool")]
    pub const NON_PAGED: PoolType = PoolType(0);
    /// `PagedPool` (1).
    ///
    /// ```
    /// use ks_alloc::PoolType;
    /// assert_eq!(PoolType::PAGED, PoolType(ks_sys::PagedPool));
    /// assert_eq!(PoolType::PAGED.name(), Some("PagedPool"));
    /// ```
    #[doc(alias = "PagedPool")]
    pub const PAGED: PoolType = PoolType(1);

    /// The `POOL_TYPE` enumerator name for the values of ks-spec §2.4.
    ///
    /// ```
    /// assert_eq!(ks_alloc::PoolType::NON_PAGED.name(), Some("NonPagedPool"));
    /// ```
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "NonPagedPool",
            1 => "PagedPool",
            2 => "NonPagedPoolMustSucceed",
            3 => "DontUseThisType",
            4 => "NonPagedPoolCacheAligned",
            5 => "PagedPoolCacheAligned",
            6 => "NonPagedPoolCacheAlignedMustS",
            32 => "NonPagedPoolSession",
            33 => "PagedPoolSession",
            34 => "NonPagedPoolMustSucceedSession",
            35 => "DontUseThisTypeSession",
            36 => "NonPagedPoolCacheAlignedSession",
            37 => "PagedPoolCacheAlignedSession",
            38 => "NonPagedPoolCacheAlignedMustSSession",
            512 => "NonPagedPoolNx",
            516 => "NonPagedPoolNxCacheAligned",
            544 => "NonPagedPoolSessionNx",
            _ => return None,
        })
    }
}

impl fmt::Debug for PoolType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "PoolType({n})"),
            None => write!(f, "PoolType({})", self.0),
        }
    }
}

impl fmt::Display for PoolType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "pool type {}", self.0),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// KSALLOCATOR_FRAMING
// ---------------------------------------------------------------------------------------------

/// The old framing, `KSALLOCATOR_FRAMING` (24 bytes, ks-spec §2.1): the parameter of an
/// allocator create request and the answer to `KSPROPERTY_CONNECTION_ALLOCATORFRAMING`.
///
/// `flags` is the `OptionsFlags` / `RequirementsFlags` union; read it with
/// [`options`](Self::options) or [`requirements`](Self::requirements) depending on the
/// direction. `Reserved` is not stored: it is always 0 ([`from_bytes`](Self::from_bytes)
/// rejects anything else).
///
/// ```
/// use ks_alloc::{Alignment, Framing, OptionFlags, PoolType};
/// let f = Framing { flags: OptionFlags::SYSTEM_MEMORY.bits(), pool_type: PoolType::NON_PAGED,
///                   frames: 4, frame_size: 4096, alignment: Alignment::OCTA };
/// let bytes = f.to_bytes();
/// assert_eq!(&bytes[8..12], &4u32.to_le_bytes());
/// assert_eq!(Framing::from_bytes(&bytes)?, f);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KSALLOCATOR_FRAMING")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Framing {
    /// `OptionsFlags` (create request) / `RequirementsFlags` (query result).
    #[doc(alias = "OptionsFlags")]
    #[doc(alias = "RequirementsFlags")]
    pub flags: u32,
    /// `PoolType`.
    pub pool_type: PoolType,
    /// `Frames`: frames that may be outstanding at once (0 in a query: no requirement).
    pub frames: u32,
    /// `FrameSize`: bytes per frame (0 in a query: no requirement).
    pub frame_size: u32,
    /// `FileAlignment`.
    pub alignment: Alignment,
}

/// The tests' framing: `frames` frames of 64 bytes, byte-aligned, no flags, of `pool_type`.
#[cfg(test)]
pub(crate) fn test_framing(pool_type: PoolType, frames: u32) -> Framing {
    Framing {
        flags: 0,
        pool_type,
        frames,
        frame_size: 64,
        alignment: Alignment::BYTE,
    }
}

impl Framing {
    /// Size of the structure in bytes.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Framing, PoolType};
    /// assert_eq!(Framing::SIZE, core::mem::size_of::<ks_sys::KSALLOCATOR_FRAMING>());
    /// let f = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 1, frame_size: 1, alignment: Alignment::BYTE };
    /// assert_eq!(f.to_bytes().len(), Framing::SIZE);
    /// ```
    pub const SIZE: usize = 24;

    /// `flags` read as create-request options.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Framing, OptionFlags, PoolType};
    /// let f = Framing { flags: 3, pool_type: PoolType::PAGED, frames: 1, frame_size: 1, alignment: Alignment::BYTE };
    /// assert!(f.options().contains(OptionFlags::COMPATIBLE | OptionFlags::SYSTEM_MEMORY));
    /// ```
    #[doc(alias = "OptionsFlags")]
    pub const fn options(&self) -> OptionFlags {
        OptionFlags(self.flags)
    }

    /// `flags` read as query requirements.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Framing, RequirementFlags, PoolType};
    /// let f = Framing { flags: 0x8000_0002, pool_type: PoolType::PAGED, frames: 0, frame_size: 0, alignment: Alignment::BYTE };
    /// assert!(f.requirements().contains(RequirementFlags::PREFERENCES_ONLY));
    /// ```
    #[doc(alias = "RequirementsFlags")]
    pub const fn requirements(&self) -> RequirementFlags {
        RequirementFlags(self.flags)
    }

    /// The 24 little-endian bytes of the structure (Reserved = 0).
    ///
    /// ```
    /// use ks_alloc::{Alignment, Framing, PoolType};
    /// let f = Framing { flags: 2, pool_type: PoolType::PAGED, frames: 8, frame_size: 188, alignment: Alignment::LONG };
    /// assert_eq!(f.to_bytes(), [2,0,0,0, 1,0,0,0, 8,0,0,0, 188,0,0,0, 3,0,0,0, 0,0,0,0]);
    /// ```
    pub fn to_bytes(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        let words = [
            self.flags,
            self.pool_type.0 as u32,
            self.frames,
            self.frame_size,
            self.alignment.mask(),
            0,
        ];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Decodes exactly 24 little-endian bytes.
    ///
    /// Errors: fewer than 24 bytes → `STATUS_BUFFER_TOO_SMALL` (required 24); more than 24 →
    /// `STATUS_INVALID_PARAMETER` (trailing bytes at offset 24); an invalid `FileAlignment`
    /// (offset 16) or a non-zero `Reserved` (offset 20) → `STATUS_INVALID_PARAMETER`.
    /// `FrameSize` 0 and `Frames` 0 are accepted (a query's "no requirement"); the create-request
    /// rules are in [`validate_create_request`](crate::validate_create_request).
    ///
    /// ```
    /// use ks_alloc::Framing;
    /// let e = Framing::from_bytes(&[0; 10]).unwrap_err();
    /// assert_eq!(e.required_size(), Some(24));
    /// assert!(Framing::from_bytes(&[0; 24]).is_ok());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Framing, Status> {
        check_len("KSALLOCATOR_FRAMING", Self::SIZE, bytes)?;
        Self::decode_fields(bytes)
    }

    /// Decodes the six fields of a buffer known to be at least 24 bytes long.
    fn decode_fields(bytes: &[u8]) -> Result<Framing, Status> {
        let reserved = rd_u32(bytes, 20);
        if reserved != 0 {
            return Err(Status::InvalidParameter(Cow::Owned(format!(
                "Reserved (offset 20) is 0x{reserved:08X}; must be 0"
            ))));
        }
        Ok(Framing {
            flags: rd_u32(bytes, 0),
            pool_type: PoolType(rd_u32(bytes, 4) as i32),
            frames: rd_u32(bytes, 8),
            frame_size: rd_u32(bytes, 12),
            alignment: Alignment::from_mask_field(rd_u32(bytes, 16), "FileAlignment (offset 16)")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// KS_FRAMING_RANGE, KS_COMPRESSION
// ---------------------------------------------------------------------------------------------

/// A frame-size range, `KS_FRAMING_RANGE` (12 bytes): the sizes `min, min + stepping, ...`
/// up to `max`. A stepping of 0 or 1 admits every size in `[min, max]`.
///
/// ```
/// use ks_alloc::FrameRange;
/// let r = FrameRange { min: 100, max: 200, stepping: 10 };
/// assert!(r.contains(150) && !r.contains(155) && !r.contains(210));
/// assert!(FrameRange::DONT_CARE.contains(12345));
/// ```
#[doc(alias = "KS_FRAMING_RANGE")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameRange {
    /// `MinFrameSize`.
    pub min: u32,
    /// `MaxFrameSize`.
    pub max: u32,
    /// `Stepping` (0 and 1 both mean "any size").
    pub stepping: u32,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Solves `x ≡ a (mod m)`, `x ≡ b (mod n)`; returns `(x0, lcm)` with `0 <= x0 < lcm`, or
/// `None` when the congruences are incompatible. `m`, `n` ≥ 1 and below 2^32, so every
/// intermediate fits in `u128`.
fn crt(a: u64, m: u64, b: u64, n: u64) -> Option<(u128, u128)> {
    let g = gcd(m, n);
    let (a, b) = (a % m, b % n);
    let diff = (b as i128) - (a as i128);
    if diff % g as i128 != 0 {
        return None;
    }
    let l = (m / g) as u128 * n as u128;
    let (m_g, n_g) = ((m / g) as i128, (n / g) as i128);
    // Inverse of m/g modulo n/g by the extended Euclidean algorithm.
    let inv = if n_g == 1 {
        0
    } else {
        let (mut r0, mut r1) = (m_g.rem_euclid(n_g), n_g);
        let (mut s0, mut s1) = (1i128, 0i128);
        while r1 != 0 {
            let q = r0 / r1;
            (r0, r1) = (r1, r0 - q * r1);
            (s0, s1) = (s1, s0 - q * s1);
        }
        s0.rem_euclid(n_g)
    };
    let k = ((diff / g as i128).rem_euclid(n_g) * inv).rem_euclid(n_g);
    let x = (a as i128 + m as i128 * k).rem_euclid(l as i128) as u128;
    Some((x, l))
}

impl FrameRange {
    /// `{0, 0xFFFFFFFF, 1}`: any size (`SetDontCareKsFramingRange`).
    ///
    /// ```
    /// use ks_alloc::FrameRange;
    /// assert!(FrameRange::DONT_CARE.contains(0) && FrameRange::DONT_CARE.contains(u32::MAX));
    /// assert_eq!(FrameRange::DONT_CARE.max, ks_sys::KS_FRAMING_RANGE_DONT_CARE.MaxFrameSize);
    /// ```
    pub const DONT_CARE: FrameRange = FrameRange {
        min: 0,
        max: u32::MAX,
        stepping: 1,
    };

    /// `{min, max, 1}` (`SetKsFramingRange`).
    ///
    /// ```
    /// let r = ks_alloc::FrameRange::new(64, 128);
    /// assert_eq!((r.min, r.max, r.stepping), (64, 128, 1));
    /// ```
    pub const fn new(min: u32, max: u32) -> FrameRange {
        FrameRange {
            min,
            max,
            stepping: 1,
        }
    }

    /// `{size, size, 1}`: exactly one size.
    ///
    /// ```
    /// assert!(ks_alloc::FrameRange::exactly(188).contains(188));
    /// ```
    pub const fn exactly(size: u32) -> FrameRange {
        FrameRange::new(size, size)
    }

    /// The effective stepping (0 is treated as 1).
    ///
    /// ```
    /// assert_eq!(ks_alloc::FrameRange { min: 0, max: 9, stepping: 0 }.step(), 1);
    /// ```
    pub const fn step(&self) -> u32 {
        if self.stepping == 0 { 1 } else { self.stepping }
    }

    /// Whether the range admits no size at all (`min > max`).
    ///
    /// ```
    /// assert!(ks_alloc::FrameRange::new(10, 5).is_empty());
    /// ```
    pub const fn is_empty(&self) -> bool {
        self.min > self.max
    }

    /// Whether `size` is a legal size: `min <= size <= max` and `(size - min)` is a multiple
    /// of the stepping (any size when the stepping is 0 or 1).
    ///
    /// ```
    /// let r = ks_alloc::FrameRange { min: 4, max: 64, stepping: 4 };
    /// assert!(r.contains(8) && !r.contains(9) && !r.contains(0));
    /// ```
    pub const fn contains(&self, size: u32) -> bool {
        size >= self.min && size <= self.max && (size - self.min) % self.step() == 0
    }

    /// The smallest legal size, `None` if the range is empty.
    ///
    /// ```
    /// assert_eq!(ks_alloc::FrameRange::new(5, 9).smallest(), Some(5));
    /// ```
    pub const fn smallest(&self) -> Option<u32> {
        if self.is_empty() {
            None
        } else {
            Some(self.min)
        }
    }

    /// The largest legal size (`max` rounded down onto the stepping grid), `None` if empty.
    ///
    /// ```
    /// assert_eq!(ks_alloc::FrameRange { min: 0, max: 100, stepping: 64 }.largest(), Some(64));
    /// ```
    pub const fn largest(&self) -> Option<u32> {
        if self.is_empty() {
            None
        } else {
            Some(self.max - (self.max - self.min) % self.step())
        }
    }

    /// The sizes legal in both ranges, as one range, or `None` if no size is legal in both.
    ///
    /// Rule (policy; KS never published its intersection algorithm, ks-spec §10 item 4): a
    /// size is legal in the result iff it is legal in both inputs ([`contains`](Self::contains)).
    /// The legal sizes of each input are an arithmetic progression `min + k·step`; their
    /// intersection is again a progression, with stepping `lcm(step_a, step_b)` (Chinese
    /// remainder theorem; empty when the two grids never meet). The result is normalised:
    /// `min` and `max` are the first and last common sizes, and the stepping is 1 when they
    /// coincide. So `a.intersect(&b).map_or(false, |r| r.contains(s)) == (a.contains(s) &&
    /// b.contains(s))` for every `s`.
    ///
    /// ```
    /// use ks_alloc::FrameRange;
    /// let a = FrameRange { min: 0, max: 1000, stepping: 4 };
    /// let b = FrameRange { min: 2, max: 500, stepping: 6 };
    /// let r = a.intersect(&b).unwrap();
    /// assert_eq!(r, FrameRange { min: 8, max: 500, stepping: 12 });
    /// assert_eq!(FrameRange::new(0, 10).intersect(&FrameRange::new(11, 20)), None);
    /// ```
    pub fn intersect(&self, other: &FrameRange) -> Option<FrameRange> {
        if self.is_empty() || other.is_empty() {
            return None;
        }
        let lo = self.min.max(other.min) as u128;
        let hi = self.max.min(other.max) as u128;
        if lo > hi {
            return None;
        }
        let (x0, l) = crt(
            self.min as u64,
            self.step() as u64,
            other.min as u64,
            other.step() as u64,
        )?;
        // First x >= lo with x ≡ x0 (mod l).
        let first = lo + (x0 + l - lo % l) % l;
        if first > hi {
            return None;
        }
        let last = hi - (hi - first) % l;
        let (first, last) = (first as u32, last as u32);
        let stepping = if first == last { 1 } else { l as u32 };
        Some(FrameRange {
            min: first,
            max: last,
            stepping,
        })
    }
}

impl Default for FrameRange {
    /// [`FrameRange::DONT_CARE`].
    fn default() -> Self {
        FrameRange::DONT_CARE
    }
}

/// The frame-size ratio of a transform, `KS_COMPRESSION` (12 bytes): output size relates to
/// input size as `numerator : denominator`, plus a constant `margin` (how the margin applies
/// is not documented).
///
/// ```
/// use ks_alloc::Compression;
/// assert_eq!(Compression::IDENTITY, Compression { numerator: 1, denominator: 1, margin: 0 });
/// ```
#[doc(alias = "KS_COMPRESSION")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Compression {
    /// `RatioNumerator`.
    pub numerator: u32,
    /// `RatioDenominator`.
    pub denominator: u32,
    /// `RatioConstantMargin`.
    pub margin: u32,
}

impl Compression {
    /// `{1, 1, 0}`: no size change (`SetDefaultKsCompression`).
    ///
    /// ```
    /// use ks_alloc::Compression;
    /// assert_eq!((Compression::IDENTITY.numerator, Compression::IDENTITY.denominator), (1, 1));
    /// assert_eq!(Compression::default(), Compression::IDENTITY);
    /// ```
    pub const IDENTITY: Compression = Compression {
        numerator: 1,
        denominator: 1,
        margin: 0,
    };
}

impl Default for Compression {
    /// [`Compression::IDENTITY`].
    fn default() -> Self {
        Compression::IDENTITY
    }
}

// ---------------------------------------------------------------------------------------------
// KS_FRAMING_ITEM, KSALLOCATOR_FRAMING_EX
// ---------------------------------------------------------------------------------------------

/// One alternative of an extended framing, `KS_FRAMING_ITEM` (88 bytes, ks-spec §3.1).
/// `framing_range` with `in_place_weight` / `not_in_place_weight` is the
/// `KS_FRAMING_RANGE_WEIGHTED` at offset 68.
///
/// ```
/// use ks_alloc::{Alignment, FramingItem, ItemFlags, MemoryType};
/// let item = FramingItem::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::SYSTEM_MEMORY, 4, Alignment::LONG, 1024, 4096);
/// assert!(item.framing_range.contains(2048));
/// assert_eq!(FramingItem::from_bytes(&item.to_bytes())?, item);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KS_FRAMING_ITEM")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FramingItem {
    /// `MemoryType`.
    pub memory_type: MemoryType,
    /// `BusType`.
    pub bus_type: BusType,
    /// `MemoryFlags` (sources disagree on its use; any value accepted, ks-spec §10).
    pub memory_flags: u32,
    /// `BusFlags` (unused).
    pub bus_flags: u32,
    /// `Flags`.
    pub flags: ItemFlags,
    /// `Frames`.
    pub frames: u32,
    /// `FileAlignment`.
    pub alignment: Alignment,
    /// `MemoryTypeWeight`.
    pub memory_type_weight: u32,
    /// `PhysicalRange`.
    pub physical_range: FrameRange,
    /// `FramingRange.Range`.
    pub framing_range: FrameRange,
    /// `FramingRange.InPlaceWeight`.
    pub in_place_weight: u32,
    /// `FramingRange.NotInPlaceWeight`.
    pub not_in_place_weight: u32,
}

impl FramingItem {
    /// Size of the structure in bytes.
    ///
    /// ```
    /// use ks_alloc::{Alignment, FramingItem, ItemFlags, MemoryType};
    /// assert_eq!(FramingItem::SIZE, core::mem::size_of::<ks_sys::KS_FRAMING_ITEM>());
    /// let i = FramingItem::simple(MemoryType::USER, ItemFlags::empty(), 1, Alignment::BYTE, 1, 1);
    /// assert_eq!(i.to_bytes().len(), FramingItem::SIZE);
    /// ```
    pub const SIZE: usize = 88;

    /// The item `DECLARE_SIMPLE_FRAMING_EX` builds: bus don't-care, memory/bus flags 0,
    /// weight 0, physical range don't-care, framing range `{min, max, 1}` with weights 0.
    ///
    /// ```
    /// use ks_alloc::{Alignment, BusType, FrameRange, FramingItem, ItemFlags, MemoryType};
    /// let i = FramingItem::simple(MemoryType::WILDCARD, ItemFlags::empty(), 2, Alignment::BYTE, 10, 20);
    /// assert_eq!(i.bus_type, BusType::DONT_CARE);
    /// assert_eq!(i.physical_range, FrameRange::DONT_CARE);
    /// ```
    pub fn simple(
        memory: MemoryType,
        flags: ItemFlags,
        frames: u32,
        alignment: Alignment,
        min: u32,
        max: u32,
    ) -> FramingItem {
        FramingItem {
            memory_type: memory,
            bus_type: BusType::DONT_CARE,
            memory_flags: 0,
            bus_flags: 0,
            flags,
            frames,
            alignment,
            memory_type_weight: 0,
            physical_range: FrameRange::DONT_CARE,
            framing_range: FrameRange::new(min, max),
            in_place_weight: 0,
            not_in_place_weight: 0,
        }
    }

    /// The 88 little-endian bytes of the item.
    ///
    /// ```
    /// use ks_alloc::{Alignment, FramingItem, ItemFlags, MemoryType};
    /// let b = FramingItem::simple(MemoryType::WILDCARD, ItemFlags(2), 3, Alignment::LONG, 5, 6).to_bytes();
    /// assert_eq!(b.len(), 88);
    /// assert_eq!(&b[40..48], &[2, 0, 0, 0, 3, 0, 0, 0]);
    /// ```
    pub fn to_bytes(&self) -> [u8; 88] {
        let mut v = Vec::with_capacity(Self::SIZE);
        self.write(&mut v);
        let mut out = [0u8; 88];
        out.copy_from_slice(&v);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        wr_guid(out, &self.memory_type.0);
        wr_guid(out, &self.bus_type.0);
        for w in [
            self.memory_flags,
            self.bus_flags,
            self.flags.0,
            self.frames,
            self.alignment.mask(),
            self.memory_type_weight,
            self.physical_range.min,
            self.physical_range.max,
            self.physical_range.stepping,
            self.framing_range.min,
            self.framing_range.max,
            self.framing_range.stepping,
            self.in_place_weight,
            self.not_in_place_weight,
        ] {
            wr_u32(out, w);
        }
    }

    /// Decodes exactly 88 little-endian bytes. Errors as for [`FramingEx::from_bytes`].
    ///
    /// ```
    /// use ks_alloc::FramingItem;
    /// assert_eq!(FramingItem::from_bytes(&[0; 87]).unwrap_err().required_size(), Some(88));
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<FramingItem, Status> {
        check_len("KS_FRAMING_ITEM", Self::SIZE, bytes)?;
        Self::decode(bytes, 0, None)
    }

    /// Decodes the item at `base` (the caller checked `base + 88 <= len`). `index` names the
    /// item in error messages.
    fn decode(b: &[u8], base: usize, index: Option<usize>) -> Result<FramingItem, Status> {
        let mask = rd_u32(b, base + 48);
        let alignment = match Alignment::from_mask(mask) {
            Ok(a) => a,
            Err(_) => {
                let name = match index {
                    Some(i) => format!("FramingItem[{i}].FileAlignment"),
                    None => "FileAlignment".to_owned(),
                };
                return Err(Status::InvalidParameter(Cow::Owned(format!(
                    "{name} (offset {}) is 0x{mask:08X}; must be an alignment mask 2^n-1 \
                     with n <= 31",
                    base + 48
                ))));
            }
        };
        let r = |o: usize| rd_u32(b, base + o);
        Ok(FramingItem {
            memory_type: MemoryType(rd_guid(b, base)),
            bus_type: BusType(rd_guid(b, base + 16)),
            memory_flags: r(32),
            bus_flags: r(36),
            flags: ItemFlags(r(40)),
            frames: r(44),
            alignment,
            memory_type_weight: r(52),
            physical_range: FrameRange {
                min: r(56),
                max: r(60),
                stepping: r(64),
            },
            framing_range: FrameRange {
                min: r(68),
                max: r(72),
                stepping: r(76),
            },
            in_place_weight: r(80),
            not_in_place_weight: r(84),
        })
    }
}

/// The extended framing, `KSALLOCATOR_FRAMING_EX` (24 + 88 × N bytes, ks-spec §3.1): a pin's
/// framing requirements as one or more alternatives ([`FramingItem`]).
///
/// ```
/// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// let f = FramingEx::simple(MemoryType::KERNEL_NONPAGED,
///     ItemFlags::SYSTEM_MEMORY | ItemFlags::PREFERENCES_ONLY, 4, Alignment::BYTE, 8192, 8192);
/// let bytes = f.to_bytes();
/// assert_eq!(bytes.len(), 112);
/// assert_eq!(FramingEx::from_bytes(&bytes)?, f);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KSALLOCATOR_FRAMING_EX")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FramingEx {
    /// `PinFlags` (reserved, 0).
    pub pin_flags: u32,
    /// `OutputCompression`.
    pub output_compression: Compression,
    /// `PinWeight` (reserved, 0).
    pub pin_weight: u32,
    /// `FramingItem[CountItems]`.
    pub items: Vec<FramingItem>,
}

impl FramingEx {
    /// Size of the fixed header (`CountItems` .. `PinWeight`).
    ///
    /// ```
    /// use ks_alloc::{Alignment, FramingEx, FramingItem, ItemFlags, MemoryType};
    /// assert_eq!(FramingEx::HEADER_SIZE, ks_sys::KSALLOCATOR_FRAMING_EX_HEADER_SIZE);
    /// let f = FramingEx::simple(MemoryType::USER, ItemFlags::empty(), 1, Alignment::BYTE, 1, 1);
    /// assert_eq!(f.byte_len(), FramingEx::HEADER_SIZE + FramingItem::SIZE);
    /// ```
    pub const HEADER_SIZE: usize = 24;

    /// What `DECLARE_SIMPLE_FRAMING_EX(name, memory, flags, frames, alignment, min, max)`
    /// declares (behaviour 4): one [`FramingItem::simple`] item, `PinFlags` 0, compression
    /// {1, 1, 0}, `PinWeight` 0. Byte-for-byte identical to the macro's structure.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Compression, FramingEx, ItemFlags, MemoryType};
    /// let f = FramingEx::simple(MemoryType::WILDCARD, ItemFlags::empty(), 2, Alignment::BYTE, 100, 200);
    /// assert_eq!(f.items.len(), 1);
    /// assert_eq!(f.output_compression, Compression::IDENTITY);
    /// ```
    #[doc(alias = "DECLARE_SIMPLE_FRAMING_EX")]
    #[doc(alias = "INITIALIZE_SIMPLE_FRAMING_EX")]
    pub fn simple(
        memory: MemoryType,
        flags: ItemFlags,
        frames: u32,
        alignment: Alignment,
        min: u32,
        max: u32,
    ) -> FramingEx {
        FramingEx {
            pin_flags: 0,
            output_compression: Compression::IDENTITY,
            pin_weight: 0,
            items: vec![FramingItem::simple(
                memory, flags, frames, alignment, min, max,
            )],
        }
    }

    /// The encoded size, 24 + 88 × `items.len()`.
    ///
    /// ```
    /// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
    /// assert_eq!(FramingEx::simple(MemoryType::USER, ItemFlags::empty(), 1, Alignment::BYTE, 1, 1).byte_len(), 112);
    /// ```
    pub fn byte_len(&self) -> usize {
        Self::HEADER_SIZE + FramingItem::SIZE * self.items.len()
    }

    /// The little-endian property payload: header with `CountItems = items.len()`, then the
    /// items.
    ///
    /// ```
    /// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
    /// let b = FramingEx::simple(MemoryType::USER, ItemFlags::empty(), 1, Alignment::BYTE, 1, 1).to_bytes();
    /// assert_eq!(&b[0..4], &1u32.to_le_bytes()); // CountItems
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.byte_len());
        self.write_to(&mut out);
        out
    }

    /// Appends the property payload to `out` (no allocation beyond `out`'s growth).
    ///
    /// ```
    /// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
    /// let f = FramingEx::simple(MemoryType::USER, ItemFlags::empty(), 1, Alignment::BYTE, 1, 1);
    /// let mut v = Vec::new();
    /// f.write_to(&mut v);
    /// assert_eq!(v, f.to_bytes());
    /// ```
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // CountItems is a ULONG: a Vec longer than u32::MAX items cannot be encoded faithfully;
        // such a framing would need more than 350 GiB, so saturating is unreachable in practice.
        wr_u32(out, u32::try_from(self.items.len()).unwrap_or(u32::MAX));
        wr_u32(out, self.pin_flags);
        wr_u32(out, self.output_compression.numerator);
        wr_u32(out, self.output_compression.denominator);
        wr_u32(out, self.output_compression.margin);
        wr_u32(out, self.pin_weight);
        for item in &self.items {
            item.write(out);
        }
    }

    /// Decodes a property payload of exactly 24 + 88 × `CountItems` bytes. Never panics.
    ///
    /// Errors (each message names the offset and field):
    /// * fewer than 24 bytes → `STATUS_BUFFER_TOO_SMALL`, required 24;
    /// * `CountItems` (offset 0) = 0 → `STATUS_INVALID_PARAMETER` (policy: a framing holds one
    ///   or more items, DDI ns-ks-ks_framing_item);
    /// * fewer than 24 + 88 × `CountItems` bytes → `STATUS_BUFFER_TOO_SMALL` with that size;
    /// * more bytes than that → `STATUS_INVALID_PARAMETER` (trailing bytes);
    /// * an item `FileAlignment` not of the form 2^n − 1 → `STATUS_INVALID_PARAMETER`.
    ///
    /// ```
    /// use ks_alloc::FramingEx;
    /// let mut b = vec![0u8; 24];
    /// b[0] = 2; // CountItems = 2 but no items follow
    /// let e = FramingEx::from_bytes(&b).unwrap_err();
    /// assert_eq!(e.required_size(), Some(24 + 2 * 88));
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<FramingEx, Status> {
        if bytes.len() < Self::HEADER_SIZE {
            return Err(truncated(
                "KSALLOCATOR_FRAMING_EX header",
                Self::HEADER_SIZE,
                bytes,
            ));
        }
        let count = rd_u32(bytes, 0);
        if count == 0 {
            return Err(Status::InvalidParameter(Cow::Borrowed(
                "CountItems (offset 0) is 0; a KSALLOCATOR_FRAMING_EX must hold at least 1 item",
            )));
        }
        let needed = Self::HEADER_SIZE as u64 + FramingItem::SIZE as u64 * count as u64;
        if (bytes.len() as u64) < needed {
            return Err(Status::BufferTooSmall {
                required: usize::try_from(needed).unwrap_or(usize::MAX),
                message: Cow::Owned(format!(
                    "CountItems (offset 0) is {count}, which needs {needed} bytes; got {} \
                     (truncated at offset {})",
                    bytes.len(),
                    bytes.len()
                )),
            });
        }
        if bytes.len() as u64 > needed {
            return Err(Status::InvalidParameter(Cow::Owned(format!(
                "CountItems (offset 0) is {count}, which needs {needed} bytes; got {}: \
                 trailing bytes at offset {needed}",
                bytes.len()
            ))));
        }
        // needed <= bytes.len(), so count fits comfortably in usize here.
        let count = count as usize;
        let mut items = Vec::with_capacity(count);
        for i in 0..count {
            items.push(FramingItem::decode(
                bytes,
                Self::HEADER_SIZE + i * FramingItem::SIZE,
                Some(i),
            )?);
        }
        Ok(FramingEx {
            pin_flags: rd_u32(bytes, 4),
            output_compression: Compression {
                numerator: rd_u32(bytes, 8),
                denominator: rd_u32(bytes, 12),
                margin: rd_u32(bytes, 16),
            },
            pin_weight: rd_u32(bytes, 20),
            items,
        })
    }

    /// The old framing derived from this one (policy: the conversion AVStream uses is not
    /// published, ks-spec §3.2 / §10). From the **first** item (items are read in
    /// preference order; ReactOS uses the last, but with one item — every simple framing —
    /// both agree):
    /// * `frames`, `alignment`: copied;
    /// * `frame_size`: `framing_range.max` (the largest preferred size, so every frame fits),
    ///   clamped to `physical_range.max`;
    /// * `flags`: the item's requirement bits (`flags & 0x8000000F`, see
    ///   [`ItemFlags::requirements`]) plus `SYSTEM_MEMORY` when the memory type is a system
    ///   type (DDI: KERNEL_PAGED/NONPAGED correspond to a pool plus SYSTEM_MEMORY);
    /// * `pool_type`: [`MemoryType::pool_type`] (PAGED for KERNEL_PAGED, else NON_PAGED).
    ///
    /// Fails with `STATUS_NOT_FOUND` when there is no item.
    ///
    /// ```
    /// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType, PoolType, RequirementFlags};
    /// let f = FramingEx::simple(MemoryType::KERNEL_PAGED, ItemFlags::CAN_ALLOCATE, 3, Alignment::OCTA, 100, 200)
    ///     .to_framing()?;
    /// assert_eq!((f.frames, f.frame_size, f.pool_type), (3, 200, PoolType::PAGED));
    /// assert_eq!(f.requirements(), RequirementFlags::SYSTEM_MEMORY);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn to_framing(&self) -> Result<Framing, Status> {
        let item = self.items.first().ok_or(Status::NotFound(Cow::Borrowed(
            "KSALLOCATOR_FRAMING_EX has no items (CountItems 0); no KSALLOCATOR_FRAMING can be derived",
        )))?;
        let mut flags = item.flags.requirements().bits();
        if item.memory_type.is_system() {
            flags |= RequirementFlags::SYSTEM_MEMORY.bits();
        }
        Ok(Framing {
            flags,
            pool_type: item.memory_type.pool_type(),
            frames: item.frames,
            frame_size: item.framing_range.max.min(item.physical_range.max),
            alignment: item.alignment,
        })
    }

    /// The extended framing equivalent to an old one (policy, inverse of
    /// [`to_framing`](Self::to_framing) for the fields both have): a simple framing whose memory
    /// type is KERNEL_PAGED / KERNEL_NONPAGED (from `pool_type`: the paged pools 1, 5, 33 and
    /// 37 are paged, as in [`Memory::from_pool`](crate::Memory::from_pool), any other
    /// non-paged) when the `SYSTEM_MEMORY` bit is set, otherwise WILDCARD; flags copied;
    /// framing range `{frame_size, frame_size, 1}`. `to_framing` gives a paged pool back as
    /// `PagedPool` (1).
    ///
    /// ```
    /// use ks_alloc::{Alignment, Framing, FramingEx, MemoryType, PoolType};
    /// let old = Framing { flags: 2, pool_type: PoolType::NON_PAGED, frames: 4, frame_size: 512, alignment: Alignment::LONG };
    /// let ex = FramingEx::from_framing(&old);
    /// assert_eq!(ex.items[0].memory_type, MemoryType::KERNEL_NONPAGED);
    /// assert_eq!(ex.to_framing()?, old);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn from_framing(framing: &Framing) -> FramingEx {
        let memory = if framing
            .requirements()
            .contains(RequirementFlags::SYSTEM_MEMORY)
        {
            if crate::Memory::from_pool(framing.pool_type) == Ok(crate::Memory::Paged) {
                MemoryType::KERNEL_PAGED
            } else {
                MemoryType::KERNEL_NONPAGED
            }
        } else {
            MemoryType::WILDCARD
        };
        FramingEx::simple(
            memory,
            ItemFlags(framing.flags),
            framing.frames,
            framing.alignment,
            framing.frame_size,
            framing.frame_size,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions to and from the ks-sys structures
// ---------------------------------------------------------------------------------------------

impl From<Framing> for KSALLOCATOR_FRAMING {
    /// The raw structure (`Reserved` = 0).
    ///
    /// ```
    /// use ks_alloc::{Alignment, Framing, PoolType};
    /// let f = Framing { flags: 2, pool_type: PoolType::PAGED, frames: 3, frame_size: 64, alignment: Alignment::LONG };
    /// let raw: ks_sys::KSALLOCATOR_FRAMING = f.into();
    /// assert_eq!((raw.PoolType, raw.Frames, raw.FrameSize, raw.Reserved), (1, 3, 64, 0));
    /// ```
    fn from(f: Framing) -> KSALLOCATOR_FRAMING {
        KSALLOCATOR_FRAMING {
            Anonymous1: KSALLOCATOR_FRAMING_0 {
                OptionsFlags: f.flags,
            },
            PoolType: f.pool_type.0,
            Frames: f.frames,
            FrameSize: f.frame_size,
            Anonymous2: KSALLOCATOR_FRAMING_1 {
                FileAlignment: f.alignment.mask(),
            },
            Reserved: 0,
        }
    }
}

impl TryFrom<&KSALLOCATOR_FRAMING> for Framing {
    type Error = Status;
    /// Fails (`STATUS_INVALID_PARAMETER`) on an invalid `FileAlignment` or `Reserved` ≠ 0.
    ///
    /// ```
    /// use ks_alloc::Framing;
    /// let mut raw = ks_sys::KSALLOCATOR_FRAMING::default();
    /// raw.FrameSize = 100;
    /// assert_eq!(Framing::try_from(&raw)?.frame_size, 100);
    /// raw.Reserved = 1;
    /// assert!(Framing::try_from(&raw).is_err());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    fn try_from(raw: &KSALLOCATOR_FRAMING) -> Result<Framing, Status> {
        // SAFETY: both members of the union are 4-byte integers (u32 / u32), so every bit
        // pattern of the storage is a valid value of the member read.
        let flags = unsafe { raw.Anonymous1.OptionsFlags };
        // SAFETY: the members are u32 (FileAlignment) and i32 (FramePitch) of the same size;
        // every bit pattern is a valid u32.
        let mask = unsafe { raw.Anonymous2.FileAlignment };
        if raw.Reserved != 0 {
            return Err(Status::InvalidParameter(Cow::Owned(format!(
                "Reserved (offset 20) is 0x{:08X}; must be 0",
                raw.Reserved
            ))));
        }
        Ok(Framing {
            flags,
            pool_type: PoolType(raw.PoolType),
            frames: raw.Frames,
            frame_size: raw.FrameSize,
            alignment: Alignment::from_mask_field(mask, "FileAlignment (offset 16)")?,
        })
    }
}

impl TryFrom<KSALLOCATOR_FRAMING> for Framing {
    type Error = Status;
    /// Same as `Framing::try_from(&raw)`.
    fn try_from(raw: KSALLOCATOR_FRAMING) -> Result<Framing, Status> {
        Framing::try_from(&raw)
    }
}

impl From<FrameRange> for KS_FRAMING_RANGE {
    /// ```
    /// let raw: ks_sys::KS_FRAMING_RANGE = ks_alloc::FrameRange::DONT_CARE.into();
    /// assert_eq!(raw, ks_sys::KS_FRAMING_RANGE_DONT_CARE);
    /// ```
    fn from(r: FrameRange) -> KS_FRAMING_RANGE {
        KS_FRAMING_RANGE {
            MinFrameSize: r.min,
            MaxFrameSize: r.max,
            Stepping: r.stepping,
        }
    }
}

impl From<KS_FRAMING_RANGE> for FrameRange {
    /// ```
    /// let r = ks_alloc::FrameRange::from(ks_sys::KS_FRAMING_RANGE_DONT_CARE);
    /// assert_eq!(r, ks_alloc::FrameRange::DONT_CARE);
    /// ```
    fn from(r: KS_FRAMING_RANGE) -> FrameRange {
        FrameRange {
            min: r.MinFrameSize,
            max: r.MaxFrameSize,
            stepping: r.Stepping,
        }
    }
}

impl From<Compression> for KS_COMPRESSION {
    /// ```
    /// let raw: ks_sys::KS_COMPRESSION = ks_alloc::Compression::IDENTITY.into();
    /// assert_eq!(raw, ks_sys::KS_COMPRESSION_DEFAULT);
    /// ```
    fn from(c: Compression) -> KS_COMPRESSION {
        KS_COMPRESSION {
            RatioNumerator: c.numerator,
            RatioDenominator: c.denominator,
            RatioConstantMargin: c.margin,
        }
    }
}

impl From<KS_COMPRESSION> for Compression {
    /// ```
    /// let c = ks_alloc::Compression::from(ks_sys::KS_COMPRESSION_DEFAULT);
    /// assert_eq!(c, ks_alloc::Compression::IDENTITY);
    /// ```
    fn from(c: KS_COMPRESSION) -> Compression {
        Compression {
            numerator: c.RatioNumerator,
            denominator: c.RatioDenominator,
            margin: c.RatioConstantMargin,
        }
    }
}

impl From<&FramingItem> for KS_FRAMING_ITEM {
    /// ```
    /// use ks_alloc::{Alignment, FramingItem, ItemFlags, MemoryType};
    /// let i = FramingItem::simple(MemoryType::USER, ItemFlags::CAN_ALLOCATE, 2, Alignment::LONG, 1, 9);
    /// let raw = ks_sys::KS_FRAMING_ITEM::from(&i);
    /// assert_eq!(raw.MemoryType, ks_sys::KSMEMORY_TYPE_USER);
    /// assert_eq!(raw.FramingRange.Range.MaxFrameSize, 9);
    /// ```
    fn from(i: &FramingItem) -> KS_FRAMING_ITEM {
        KS_FRAMING_ITEM {
            MemoryType: i.memory_type.0,
            BusType: i.bus_type.0,
            MemoryFlags: i.memory_flags,
            BusFlags: i.bus_flags,
            Flags: i.flags.0,
            Frames: i.frames,
            Anonymous: KS_FRAMING_ITEM_0 {
                FileAlignment: i.alignment.mask(),
            },
            MemoryTypeWeight: i.memory_type_weight,
            PhysicalRange: i.physical_range.into(),
            FramingRange: KS_FRAMING_RANGE_WEIGHTED {
                Range: i.framing_range.into(),
                InPlaceWeight: i.in_place_weight,
                NotInPlaceWeight: i.not_in_place_weight,
            },
        }
    }
}

impl TryFrom<&KS_FRAMING_ITEM> for FramingItem {
    type Error = Status;
    /// Fails (`STATUS_INVALID_PARAMETER`) only on an invalid `FileAlignment`.
    ///
    /// ```
    /// use ks_alloc::FramingItem;
    /// let mut raw = ks_sys::KS_FRAMING_ITEM::default();
    /// raw.Frames = 4;
    /// assert_eq!(FramingItem::try_from(&raw)?.frames, 4);
    /// raw.Anonymous.FileAlignment = 2;
    /// assert!(FramingItem::try_from(&raw).is_err());
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    fn try_from(raw: &KS_FRAMING_ITEM) -> Result<FramingItem, Status> {
        // SAFETY: the members are u32 (FileAlignment) and i32 (FramePitch) of the same size;
        // every bit pattern is a valid u32.
        let mask = unsafe { raw.Anonymous.FileAlignment };
        Ok(FramingItem {
            memory_type: MemoryType(raw.MemoryType),
            bus_type: BusType(raw.BusType),
            memory_flags: raw.MemoryFlags,
            bus_flags: raw.BusFlags,
            flags: ItemFlags(raw.Flags),
            frames: raw.Frames,
            alignment: Alignment::from_mask_field(mask, "FileAlignment (item offset 48)")?,
            memory_type_weight: raw.MemoryTypeWeight,
            physical_range: raw.PhysicalRange.into(),
            framing_range: raw.FramingRange.Range.into(),
            in_place_weight: raw.FramingRange.InPlaceWeight,
            not_in_place_weight: raw.FramingRange.NotInPlaceWeight,
        })
    }
}

impl FramingEx {
    /// The raw form of an N-item framing: the fixed header as a `KSALLOCATOR_FRAMING_EX` whose
    /// `CountItems` is N and whose `FramingItem[0]` is the first item (all-zero when there is
    /// none), and the N raw items (the variable-length array that follows the header in
    /// memory).
    ///
    /// ```
    /// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
    /// let mut f = FramingEx::simple(MemoryType::USER, ItemFlags::empty(), 1, Alignment::BYTE, 4, 8);
    /// f.items.push(f.items[0].clone());
    /// let (header, items) = f.to_sys();
    /// assert_eq!((header.CountItems, items.len()), (2, 2));
    /// assert_eq!(FramingEx::from_sys(&header, &items)?, f);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn to_sys(&self) -> (KSALLOCATOR_FRAMING_EX, Vec<KS_FRAMING_ITEM>) {
        let items: Vec<KS_FRAMING_ITEM> = self.items.iter().map(KS_FRAMING_ITEM::from).collect();
        let header = KSALLOCATOR_FRAMING_EX {
            CountItems: u32::try_from(items.len()).unwrap_or(u32::MAX),
            PinFlags: self.pin_flags,
            OutputCompression: self.output_compression.into(),
            PinWeight: self.pin_weight,
            FramingItem: [items.first().copied().unwrap_or_default()],
        };
        (header, items)
    }

    /// Builds a framing from a raw header and its items. `header.FramingItem` is ignored
    /// (the items come from `items`). Fails with `STATUS_INVALID_PARAMETER` when
    /// `header.CountItems` is 0 (as in [`from_bytes`](Self::from_bytes)) or differs from
    /// `items.len()`, or an item's alignment is invalid.
    ///
    /// ```
    /// use ks_alloc::FramingEx;
    /// let raw = ks_sys::DECLARE_SIMPLE_FRAMING_EX(ks_sys::KSMEMORY_TYPE_USER, 0, 2, 0, 10, 20);
    /// let f = FramingEx::from_sys(&raw, &raw.FramingItem)?;
    /// assert_eq!(f.items[0].framing_range.max, 20);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn from_sys(
        header: &KSALLOCATOR_FRAMING_EX,
        items: &[KS_FRAMING_ITEM],
    ) -> Result<FramingEx, Status> {
        if header.CountItems == 0 {
            return Err(Status::InvalidParameter(
                "CountItems (offset 0) is 0; a KSALLOCATOR_FRAMING_EX must hold at least 1 item"
                    .into(),
            ));
        }
        if header.CountItems as usize != items.len() {
            return Err(Status::InvalidParameter(Cow::Owned(format!(
                "CountItems (offset 0) is {} but {} items were supplied",
                header.CountItems,
                items.len()
            ))));
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, raw) in items.iter().enumerate() {
            out.push(FramingItem::try_from(raw).map_err(|_| {
                // SAFETY: u32/i32 union members of equal size; every bit pattern is a valid u32.
                let mask = unsafe { raw.Anonymous.FileAlignment };
                Status::InvalidParameter(Cow::Owned(format!(
                    "FramingItem[{i}].FileAlignment (offset {}) is 0x{mask:08X}; must be an \
                     alignment mask 2^n-1 with n <= 31",
                    Self::HEADER_SIZE + i * FramingItem::SIZE + 48
                )))
            })?);
        }
        Ok(FramingEx {
            pin_flags: header.PinFlags,
            output_compression: header.OutputCompression.into(),
            pin_weight: header.PinWeight,
            items: out,
        })
    }
}

impl TryFrom<&FramingEx> for KSALLOCATOR_FRAMING_EX {
    type Error = Status;
    /// The fixed-size structure holds exactly one item: fails with `STATUS_INVALID_PARAMETER`
    /// for any other count (use [`FramingEx::to_sys`] for N items).
    ///
    /// ```
    /// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
    /// let f = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags(2), 4, Alignment::LONG, 64, 128);
    /// let raw = ks_sys::KSALLOCATOR_FRAMING_EX::try_from(&f)?;
    /// let expect = ks_sys::DECLARE_SIMPLE_FRAMING_EX(ks_sys::KSMEMORY_TYPE_KERNEL_NONPAGED, 2, 4, 3, 64, 128);
    /// assert_eq!(FramingEx::try_from(&raw)?, FramingEx::try_from(&expect)?);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    fn try_from(f: &FramingEx) -> Result<KSALLOCATOR_FRAMING_EX, Status> {
        if f.items.len() != 1 {
            return Err(Status::InvalidParameter(Cow::Owned(format!(
                "KSALLOCATOR_FRAMING_EX holds exactly 1 item; this framing has {} \
                 (use FramingEx::to_sys for variable-length framings)",
                f.items.len()
            ))));
        }
        Ok(f.to_sys().0)
    }
}

impl TryFrom<&KSALLOCATOR_FRAMING_EX> for FramingEx {
    type Error = Status;
    /// Reads a one-item structure: fails with `STATUS_INVALID_PARAMETER` when `CountItems` is
    /// not 1 (the fixed-size structure cannot carry more) or the item's alignment is invalid.
    ///
    /// ```
    /// use ks_alloc::FramingEx;
    /// let raw = ks_sys::DECLARE_SIMPLE_FRAMING_EX(ks_sys::GUID_NULL, 0, 1, 0, 1, 2);
    /// assert_eq!(FramingEx::try_from(&raw)?.items.len(), 1);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    fn try_from(raw: &KSALLOCATOR_FRAMING_EX) -> Result<FramingEx, Status> {
        FramingEx::from_sys(raw, &raw.FramingItem)
    }
}
