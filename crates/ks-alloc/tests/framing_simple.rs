//! Behaviour 4: `FramingEx::simple` yields byte for byte what `DECLARE_SIMPLE_FRAMING_EX`
//! declares (ks-spec §3.3), checked against a byte array built by hand from the spec table.
#![cfg(target_endian = "little")]

use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};

fn le(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// The spec table of §3.3 for (KSMEMORY_TYPE_KERNEL_NONPAGED, SYSTEM_MEMORY|PREFERENCES_ONLY,
/// 2 frames, FILE_OCTA_ALIGNMENT, 8192, 16384), written out field by field.
fn hand_built() -> Vec<u8> {
    let mut b: Vec<u8> = Vec::new();
    b.extend(le(1)); // CountItems
    b.extend(le(0)); // PinFlags
    b.extend(le(1)); // OutputCompression.RatioNumerator
    b.extend(le(1)); // OutputCompression.RatioDenominator
    b.extend(le(0)); // OutputCompression.RatioConstantMargin
    b.extend(le(0)); // PinWeight
    // item MemoryType = {4A6D5FC4-7895-11D1-B069-00A0C9062802}, memory layout
    b.extend([0xC4, 0x5F, 0x6D, 0x4A, 0x95, 0x78, 0xD1, 0x11]);
    b.extend([0xB0, 0x69, 0x00, 0xA0, 0xC9, 0x06, 0x28, 0x02]);
    b.extend([0u8; 16]); // BusType = GUID_NULL
    b.extend(le(0)); // MemoryFlags
    b.extend(le(0)); // BusFlags
    b.extend(le(0x8000_0002)); // Flags
    b.extend(le(2)); // Frames
    b.extend(le(0xF)); // FileAlignment
    b.extend(le(0)); // MemoryTypeWeight
    b.extend(le(0)); // PhysicalRange.MinFrameSize
    b.extend(le(0xFFFF_FFFF)); // PhysicalRange.MaxFrameSize
    b.extend(le(1)); // PhysicalRange.Stepping
    b.extend(le(8192)); // FramingRange.Range.MinFrameSize
    b.extend(le(16384)); // FramingRange.Range.MaxFrameSize
    b.extend(le(1)); // FramingRange.Range.Stepping
    b.extend(le(0)); // InPlaceWeight
    b.extend(le(0)); // NotInPlaceWeight
    b
}

#[test]
fn simple_framing_matches_hand_built_bytes() {
    let f = FramingEx::simple(
        MemoryType::KERNEL_NONPAGED,
        ItemFlags::SYSTEM_MEMORY | ItemFlags::PREFERENCES_ONLY,
        2,
        Alignment::OCTA,
        8192,
        16384,
    );
    let expect = hand_built();
    assert_eq!(expect.len(), 112);
    assert_eq!(f.byte_len(), 112);
    assert_eq!(f.to_bytes(), expect);
    assert_eq!(FramingEx::from_bytes(&expect).unwrap(), f);
}

#[test]
fn simple_framing_matches_ks_sys_macro_memory() {
    let raw = ks_sys::DECLARE_SIMPLE_FRAMING_EX(
        ks_sys::KSMEMORY_TYPE_KERNEL_NONPAGED,
        0x8000_0002,
        2,
        0xF,
        8192,
        16384,
    );
    // SAFETY: KSALLOCATOR_FRAMING_EX is #[repr(C)], 112 bytes of u32/GUID fields without
    // padding (ks-sys layout asserts), so every byte is initialised; the slice borrows `raw`.
    let mem = unsafe {
        std::slice::from_raw_parts(
            (&raw as *const ks_sys::KSALLOCATOR_FRAMING_EX).cast::<u8>(),
            std::mem::size_of::<ks_sys::KSALLOCATOR_FRAMING_EX>(),
        )
    };
    assert_eq!(mem, hand_built().as_slice());
}

#[test]
fn simple_framing_differs_when_any_argument_differs() {
    let base = FramingEx::simple(MemoryType::USER, ItemFlags(2), 4, Alignment::LONG, 10, 20);
    let variants = [
        FramingEx::simple(MemoryType::SYSTEM, ItemFlags(2), 4, Alignment::LONG, 10, 20),
        FramingEx::simple(MemoryType::USER, ItemFlags(3), 4, Alignment::LONG, 10, 20),
        FramingEx::simple(MemoryType::USER, ItemFlags(2), 5, Alignment::LONG, 10, 20),
        FramingEx::simple(MemoryType::USER, ItemFlags(2), 4, Alignment::QUAD, 10, 20),
        FramingEx::simple(MemoryType::USER, ItemFlags(2), 4, Alignment::LONG, 11, 20),
        FramingEx::simple(MemoryType::USER, ItemFlags(2), 4, Alignment::LONG, 10, 21),
    ];
    // Offsets of MemoryType (24), Flags (64), Frames (68), FileAlignment (72),
    // FramingRange.Min (92), FramingRange.Max (96).
    for (v, off) in variants.iter().zip([24usize, 64, 68, 72, 92, 96]) {
        let (a, b) = (base.to_bytes(), v.to_bytes());
        let first_diff = a.iter().zip(&b).position(|(x, y)| x != y);
        assert_eq!(first_diff, Some(off), "{v:?}");
    }
}
