//! Round trips: bytes → safe type → ks-sys struct → bytes is the identity for every valid
//! input, and decoding arbitrary bytes never panics.
//!
//! The ks-sys → bytes step reads the raw memory of the `#[repr(C)]` structures, so these tests
//! also check that the byte codec agrees with the C layout (little-endian hosts only).
#![cfg(target_endian = "little")]

use ks_alloc::{Alignment, Framing, FramingEx, FramingItem, Status};
use ks_sys::{KS_FRAMING_ITEM, KSALLOCATOR_FRAMING, KSALLOCATOR_FRAMING_EX};
use proptest::prelude::*;

/// The in-memory bytes of a plain-old-data ks-sys structure.
fn raw_bytes<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: `T` is one of the ks-sys `#[repr(C)]` structures made only of u32/i32/GUID
    // fields (asserted padding-free by ks-sys's layout assertions), so all size_of::<T>()
    // bytes are initialised; the slice borrows `v` for its whole lifetime.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
        .to_vec()
}

fn valid_mask() -> impl Strategy<Value = u32> {
    (0u32..=31).prop_map(|n| ((1u64 << n) - 1) as u32)
}

/// 24 bytes of a valid KSALLOCATOR_FRAMING: any flags, pool, frames, size; a valid mask;
/// Reserved 0.
fn valid_framing_bytes() -> impl Strategy<Value = Vec<u8>> {
    (any::<[u32; 4]>(), valid_mask()).prop_map(|(w, mask)| {
        let mut v = Vec::with_capacity(24);
        for x in [w[0], w[1], w[2], w[3], mask, 0] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    })
}

/// 88 bytes of a valid KS_FRAMING_ITEM: every field arbitrary except a valid mask at 48.
fn valid_item_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 48),
        valid_mask(),
        proptest::collection::vec(any::<u8>(), 36),
    )
        .prop_map(|(a, mask, b)| {
            let mut v = a;
            v.extend_from_slice(&mask.to_le_bytes());
            v.extend_from_slice(&b);
            v
        })
}

fn valid_framing_ex_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u32; 5]>(),
        proptest::collection::vec(valid_item_bytes(), 1..=8),
    )
        .prop_map(|(h, items)| {
            let mut v = Vec::new();
            v.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for x in h {
                v.extend_from_slice(&x.to_le_bytes());
            }
            for i in items {
                v.extend_from_slice(&i);
            }
            v
        })
}

proptest! {
    #[test]
    fn framing_bytes_safe_sys_bytes_is_identity(bytes in valid_framing_bytes()) {
        let safe = Framing::from_bytes(&bytes).expect("valid input decodes");
        let sys = KSALLOCATOR_FRAMING::from(safe);
        prop_assert_eq!(raw_bytes(&sys), bytes.clone());
        let back = Framing::try_from(&sys).expect("sys form converts back");
        prop_assert_eq!(back, safe);
        prop_assert_eq!(back.to_bytes().to_vec(), bytes);
    }

    #[test]
    fn framing_ex_bytes_safe_sys_bytes_is_identity(bytes in valid_framing_ex_bytes()) {
        let safe = FramingEx::from_bytes(&bytes).expect("valid input decodes");
        prop_assert_eq!(safe.byte_len(), bytes.len());
        let (header, items) = safe.to_sys();
        // Header (first 24 bytes of the structure) followed by the item array, as in memory.
        let mut raw = raw_bytes(&header)[..KSALLOCATOR_FRAMING_EX_HEADER].to_vec();
        for item in &items {
            raw.extend_from_slice(&raw_bytes(item));
        }
        prop_assert_eq!(&raw, &bytes);
        let back = FramingEx::from_sys(&header, &items).expect("sys form converts back");
        prop_assert_eq!(&back, &safe);
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn framing_item_bytes_safe_sys_bytes_is_identity(bytes in valid_item_bytes()) {
        let safe = FramingItem::from_bytes(&bytes).expect("valid item decodes");
        let sys = KS_FRAMING_ITEM::from(&safe);
        prop_assert_eq!(raw_bytes(&sys), bytes.clone());
        prop_assert_eq!(FramingItem::try_from(&sys).expect("converts back"), safe.clone());
        prop_assert_eq!(safe.to_bytes().to_vec(), bytes);
    }

    #[test]
    fn one_item_framing_ex_converts_through_fixed_struct(bytes in valid_item_bytes(), h in any::<[u32; 5]>()) {
        let mut v = 1u32.to_le_bytes().to_vec();
        for x in h {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(&bytes);
        let safe = FramingEx::from_bytes(&v).expect("valid");
        let sys = KSALLOCATOR_FRAMING_EX::try_from(&safe).expect("one item fits");
        prop_assert_eq!(raw_bytes(&sys), v);
        prop_assert_eq!(FramingEx::try_from(&sys).expect("back"), safe);
    }

    /// Any 24 bytes: decoding succeeds exactly when the mask is valid and Reserved is 0, and
    /// then re-encodes to the same bytes; otherwise the error is STATUS_INVALID_PARAMETER.
    #[test]
    fn framing_decode_any_24_bytes(bytes in proptest::collection::vec(any::<u8>(), 24)) {
        let mask = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let reserved = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        let valid = Alignment::from_mask(mask).is_ok() && reserved == 0;
        match Framing::from_bytes(&bytes) {
            Ok(f) => {
                prop_assert!(valid);
                prop_assert_eq!(f.to_bytes().to_vec(), bytes);
            }
            Err(e) => {
                prop_assert!(!valid);
                prop_assert!(matches!(e, Status::InvalidParameter(_)), "{e}");
            }
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Framing::from_bytes(&bytes);
        let _ = FramingItem::from_bytes(&bytes);
        let _ = FramingEx::from_bytes(&bytes);
        let _ = ks_alloc::validate_create_request(&bytes);
    }

    /// Arbitrary bytes behind a plausible CountItems, so that item decoding (including invalid
    /// masks) is exercised rather than stopping at the length check.
    #[test]
    fn framing_ex_decode_with_plausible_count_never_panics(
        count in 0u32..10,
        extra in -100i64..100,
        fill in any::<u8>(),
        noise in proptest::collection::vec(any::<u8>(), 0..900),
    ) {
        let len = (24 + 88 * count as i64 + extra).max(0) as usize;
        let mut bytes = vec![fill; len];
        for (b, n) in bytes.iter_mut().zip(noise) {
            *b ^= n;
        }
        if bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&count.to_le_bytes());
        }
        match FramingEx::from_bytes(&bytes) {
            Ok(f) => {
                prop_assert_eq!(f.items.len(), count as usize);
                prop_assert_eq!(f.to_bytes(), bytes);
            }
            Err(e) => prop_assert!(
                matches!(e, Status::InvalidParameter(_) | Status::BufferTooSmall { .. }),
                "{e}"
            ),
        }
    }
}

/// Offset of `FramingItem` in `KSALLOCATOR_FRAMING_EX` (the fixed header size).
const KSALLOCATOR_FRAMING_EX_HEADER: usize = ks_sys::KSALLOCATOR_FRAMING_EX_HEADER_SIZE;

#[test]
fn header_size_constants_agree() {
    assert_eq!(KSALLOCATOR_FRAMING_EX_HEADER, FramingEx::HEADER_SIZE);
    assert_eq!(std::mem::size_of::<KS_FRAMING_ITEM>(), FramingItem::SIZE);
    assert_eq!(std::mem::size_of::<KSALLOCATOR_FRAMING>(), Framing::SIZE);
}
