//! Malformed payloads: truncated input, a CountItems that does not fit the length, trailing
//! bytes and invalid alignments give the documented status, naming the offset and field.

use ks_alloc::{Alignment, Framing, FramingEx, ItemFlags, MemoryType, Status};
use ks_sys::{STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_PARAMETER};

fn two_items() -> Vec<u8> {
    let mut f = FramingEx::simple(MemoryType::USER, ItemFlags(2), 3, Alignment::LONG, 64, 128);
    f.items.push(f.items[0].clone());
    f.to_bytes()
}

#[test]
fn framing_truncated_is_buffer_too_small() {
    for len in 0..24 {
        let e = Framing::from_bytes(&vec![0; len]).unwrap_err();
        assert_eq!(e.to_ntstatus(), STATUS_BUFFER_TOO_SMALL);
        assert_eq!(e.required_size(), Some(24));
        assert!(e.to_string().contains(&format!("offset {len}")), "{e}");
    }
}

#[test]
fn framing_trailing_bytes_is_invalid_parameter() {
    let e = Framing::from_bytes(&[0; 25]).unwrap_err();
    assert_eq!(e.to_ntstatus(), STATUS_INVALID_PARAMETER);
    assert!(e.to_string().contains("trailing bytes at offset 24"), "{e}");
}

#[test]
fn framing_invalid_alignment_and_reserved_name_the_field() {
    let mut b = [0u8; 24];
    b[16] = 5;
    let e = Framing::from_bytes(&b).unwrap_err();
    assert_eq!(e.to_ntstatus(), STATUS_INVALID_PARAMETER);
    assert!(
        e.to_string()
            .contains("FileAlignment (offset 16) 0x00000005"),
        "{e}"
    );
    let mut b = [0u8; 24];
    b[20] = 1;
    let e = Framing::from_bytes(&b).unwrap_err();
    assert!(
        e.to_string().contains("Reserved (offset 20) is 0x00000001"),
        "{e}"
    );
}

#[test]
fn framing_ex_truncated_header() {
    for len in 0..24 {
        let e = FramingEx::from_bytes(&two_items()[..len]).unwrap_err();
        assert_eq!(e.to_ntstatus(), STATUS_BUFFER_TOO_SMALL);
        assert_eq!(e.required_size(), Some(24));
        assert!(e.to_string().contains("header"), "{e}");
    }
}

#[test]
fn framing_ex_count_that_does_not_fit() {
    let b = two_items();
    for len in [24, 25, 111, 112, 199] {
        let e = FramingEx::from_bytes(&b[..len]).unwrap_err();
        assert_eq!(e.to_ntstatus(), STATUS_BUFFER_TOO_SMALL, "len {len}");
        assert_eq!(e.required_size(), Some(200));
        let t = e.to_string();
        assert!(t.contains("CountItems (offset 0) is 2"), "{t}");
        assert!(t.contains(&format!("offset {len}")), "{t}");
    }
    // A huge count must not overflow or allocate.
    let mut b = two_items();
    b[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = FramingEx::from_bytes(&b).unwrap_err();
    assert_eq!(e.required_size(), Some(24 + 88 * u32::MAX as usize));
}

#[test]
fn framing_ex_trailing_bytes() {
    let mut b = two_items();
    b.push(0);
    let e = FramingEx::from_bytes(&b).unwrap_err();
    assert_eq!(e.to_ntstatus(), STATUS_INVALID_PARAMETER);
    assert!(
        e.to_string().contains("trailing bytes at offset 200"),
        "{e}"
    );
    // CountItems smaller than the items present is the same case.
    let mut b = two_items();
    b[0] = 1;
    let e = FramingEx::from_bytes(&b).unwrap_err();
    assert!(
        e.to_string().contains("trailing bytes at offset 112"),
        "{e}"
    );
}

#[test]
fn framing_ex_zero_items_is_invalid_parameter() {
    let e = FramingEx::from_bytes(&[0; 24]).unwrap_err();
    assert_eq!(e.to_ntstatus(), STATUS_INVALID_PARAMETER);
    assert!(e.to_string().contains("CountItems (offset 0) is 0"), "{e}");
}

#[test]
fn framing_ex_bad_item_alignment_names_item_and_offset() {
    let mut b = two_items();
    let off = 24 + 88 + 48;
    b[off..off + 4].copy_from_slice(&6u32.to_le_bytes());
    let e = FramingEx::from_bytes(&b).unwrap_err();
    assert_eq!(e.to_ntstatus(), STATUS_INVALID_PARAMETER);
    let t = e.to_string();
    assert!(
        t.contains("FramingItem[1].FileAlignment (offset 160)"),
        "{t}"
    );
    assert!(t.contains("0x00000006"), "{t}");
}

#[test]
fn from_sys_count_mismatch_is_rejected() {
    let raw = ks_sys::DECLARE_SIMPLE_FRAMING_EX(ks_sys::GUID_NULL, 0, 1, 0, 1, 1);
    let e = FramingEx::from_sys(&raw, &[]).unwrap_err();
    assert!(matches!(e, Status::InvalidParameter(_)));
    assert!(e.to_string().contains("CountItems"), "{e}");
    let two = FramingEx::from_bytes(&two_items()).unwrap();
    assert!(ks_sys::KSALLOCATOR_FRAMING_EX::try_from(&two).is_err());
}

#[test]
fn from_sys_refuses_zero_items_as_from_bytes_does() {
    let mut raw = ks_sys::DECLARE_SIMPLE_FRAMING_EX(ks_sys::GUID_NULL, 0, 1, 0, 1, 1);
    raw.CountItems = 0;
    let e = FramingEx::from_sys(&raw, &[]).unwrap_err();
    assert!(matches!(e, Status::InvalidParameter(_)));
    assert!(e.to_string().contains("CountItems (offset 0) is 0"), "{e}");
}
