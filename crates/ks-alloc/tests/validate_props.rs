//! The byte path (`validate_create_request`) and the typed path (`Framing::from_bytes` +
//! `validate_framing`) accept exactly the same framings, and an accepted request decodes to
//! the very bytes it came from.

use ks_alloc::{DEFAULT_MAX_ALIGNMENT, Framing, Status, validate_create_request, validate_framing};
use proptest::prelude::*;

/// 24 bytes biased towards the interesting values of each field.
fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        Just(0u32),
        Just(1u32),
        Just(u32::MAX),
        (0u32..=31).prop_map(|n| ((1u64 << n) - 1) as u32),
        0u32..0x20,
        any::<u32>(),
    ];
    proptest::collection::vec(word, 6)
        .prop_map(|w| w.iter().flat_map(|x| x.to_le_bytes()).collect())
}

proptest! {
    #[test]
    fn byte_and_typed_paths_agree(bytes in request_bytes()) {
        let typed = Framing::from_bytes(&bytes)
            .and_then(|f| validate_framing(&f, DEFAULT_MAX_ALIGNMENT).map(|_| f));
        match (validate_create_request(&bytes), typed) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a, b);
                prop_assert_eq!(a.to_bytes().to_vec(), bytes);
                prop_assert!(a.frames >= 1 && a.frame_size >= 1);
                prop_assert!(a.flags & !0xF == 0);
                prop_assert!(a.alignment <= DEFAULT_MAX_ALIGNMENT);
            }
            (Err(a), Err(b)) => {
                // Both reject; the byte path reports FrameSize/options before Reserved/alignment,
                // so only the status class is compared.
                prop_assert!(a.is_error() && b.is_error());
                prop_assert!(matches!(a, Status::InvalidParameter(_) | Status::IntegerOverflow(_)), "{}", a);
            }
            (a, b) => prop_assert!(false, "paths disagree: bytes {:?} -> {:?} vs {:?}", bytes, a, b),
        }
    }

    #[test]
    fn short_blocks_are_unsuccessful(len in 0usize..24) {
        let e = validate_create_request(&vec![0xAB; len]).unwrap_err();
        prop_assert_eq!(e.to_ntstatus(), ks_sys::STATUS_UNSUCCESSFUL);
    }
}
