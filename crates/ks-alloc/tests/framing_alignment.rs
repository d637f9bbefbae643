//! Alignment masks: `2^n - 1` ⇔ alignment `2^n`; everything else is rejected with
//! STATUS_INVALID_PARAMETER naming the field and the value.

use ks_alloc::{Alignment, Status};
use proptest::prelude::*;

#[test]
fn alignment_mask_table() {
    // (mask, Some(bytes) if valid)
    let table: &[(u32, Option<u32>)] = &[
        (0x000, Some(1)),   // FILE_BYTE_ALIGNMENT
        (0x001, Some(2)),   // FILE_WORD_ALIGNMENT
        (0x003, Some(4)),   // FILE_LONG_ALIGNMENT
        (0x007, Some(8)),   // FILE_QUAD_ALIGNMENT
        (0x00F, Some(16)),  // FILE_OCTA_ALIGNMENT
        (0x01F, Some(32)),  // FILE_32_BYTE_ALIGNMENT
        (0x03F, Some(64)),  // FILE_64_BYTE_ALIGNMENT
        (0x07F, Some(128)), // FILE_128_BYTE_ALIGNMENT
        (0x0FF, Some(256)), // FILE_256_BYTE_ALIGNMENT
        (0x1FF, Some(512)), // FILE_512_BYTE_ALIGNMENT
        (0xFFF, Some(4096)),
        (0x7FFF_FFFF, Some(0x8000_0000)),
        (0x002, None),
        (0x004, None),
        (0x005, None),
        (0x006, None),
        (0x010, None),
        (0x0FE, None),
        (0x1000, None),
        (0x8000_0000, None),
        (0xFFFF_FFFE, None),
        (0xFFFF_FFFF, None), // 2^32 bytes does not fit a u32
    ];
    for &(mask, bytes) in table {
        match (Alignment::from_mask(mask), bytes) {
            (Ok(a), Some(b)) => {
                assert_eq!(a.bytes(), b, "mask {mask:#x}");
                assert_eq!(a.mask(), mask);
                assert_eq!(Alignment::from_bytes(b).unwrap(), a);
            }
            (Err(e), None) => {
                assert_eq!(e.to_ntstatus(), ks_sys::STATUS_INVALID_PARAMETER);
                let text = e.to_string();
                assert!(text.contains("FileAlignment"), "{text}");
                assert!(text.contains(&format!("0x{mask:08X}")), "{text}");
            }
            (r, b) => panic!("mask {mask:#x}: got {r:?}, expected bytes {b:?}"),
        }
    }
}

#[test]
fn named_constants_match_ks_sys() {
    let pairs = [
        (Alignment::BYTE, ks_sys::FILE_BYTE_ALIGNMENT),
        (Alignment::WORD, ks_sys::FILE_WORD_ALIGNMENT),
        (Alignment::LONG, ks_sys::FILE_LONG_ALIGNMENT),
        (Alignment::QUAD, ks_sys::FILE_QUAD_ALIGNMENT),
        (Alignment::OCTA, ks_sys::FILE_OCTA_ALIGNMENT),
        (Alignment::BYTES_32, ks_sys::FILE_32_BYTE_ALIGNMENT),
        (Alignment::BYTES_64, ks_sys::FILE_64_BYTE_ALIGNMENT),
        (Alignment::BYTES_128, ks_sys::FILE_128_BYTE_ALIGNMENT),
        (Alignment::BYTES_256, ks_sys::FILE_256_BYTE_ALIGNMENT),
        (Alignment::BYTES_512, ks_sys::FILE_512_BYTE_ALIGNMENT),
    ];
    for (a, m) in pairs {
        assert_eq!(a.mask(), m);
        assert_eq!(Alignment::from_mask(m).unwrap(), a);
    }
}

#[test]
fn from_bytes_rejects_non_powers_of_two() {
    for b in [0u32, 3, 6, 12, 100, 0xFFFF_FFFF] {
        let e = Alignment::from_bytes(b).unwrap_err();
        assert!(matches!(e, Status::InvalidParameter(_)));
        assert!(e.to_string().contains(&b.to_string()), "{e}");
    }
}

#[test]
fn max_is_or_of_masks_and_is_aligned_uses_mask() {
    assert_eq!(
        Alignment::LONG.max(Alignment::BYTES_64),
        Alignment::BYTES_64
    );
    assert_eq!(Alignment::BYTE.max(Alignment::BYTE), Alignment::BYTE);
    assert!(Alignment::BYTES_64.is_aligned(128));
    assert!(!Alignment::BYTES_64.is_aligned(96));
    assert!(Alignment::BYTE.is_aligned(7));
    assert_eq!(Alignment::BYTES_512.align_up(513), Some(1024));
    assert_eq!(Alignment::BYTES_512.align_up(0), Some(0));
}

proptest! {
    #[test]
    fn mask_valid_iff_power_of_two_minus_one(mask in any::<u32>()) {
        let expected = mask != u32::MAX && (mask as u64 + 1).is_power_of_two();
        prop_assert_eq!(Alignment::from_mask(mask).is_ok(), expected);
    }

    #[test]
    fn is_aligned_agrees_with_modulo(n in 0u32..31, addr in any::<usize>()) {
        let a = Alignment::from_bytes(1 << n).unwrap();
        prop_assert_eq!(a.is_aligned(addr), addr % (1usize << n) == 0);
    }
}
