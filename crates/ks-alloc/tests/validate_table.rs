//! One row per create-request rejection rule (ks-spec §5.3, behaviours 11–14 and our
//! policies): the exact NTSTATUS and a message naming the field and the value.

use ks_alloc::{Alignment, Framing, PoolType, validate_create_request};

fn good() -> Framing {
    Framing {
        flags: 0x2, // OPTIONF_SYSTEM_MEMORY
        pool_type: PoolType::NON_PAGED,
        frames: 8,
        frame_size: 4096,
        alignment: Alignment::OCTA,
    }
}

/// `good()` encoded, with the little-endian word at `offset` replaced by `value`.
fn with_word(offset: usize, value: u32) -> Vec<u8> {
    let mut b = good().to_bytes().to_vec();
    b[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    b
}

struct Row {
    rule: &'static str,
    params: Vec<u8>,
    status: i32,
    /// Substrings the message must contain (field and value).
    mentions: &'static [&'static str],
}

fn rows() -> Vec<Row> {
    use ks_sys::{STATUS_INTEGER_OVERFLOW, STATUS_INVALID_PARAMETER, STATUS_UNSUCCESSFUL};
    vec![
        Row {
            rule: "parameter block shorter than 24 bytes (behaviour 12)",
            params: good().to_bytes()[..23].to_vec(),
            status: STATUS_UNSUCCESSFUL,
            mentions: &["23 bytes", "KSALLOCATOR_FRAMING needs 24"],
        },
        Row {
            rule: "empty parameter block",
            params: Vec::new(),
            status: STATUS_UNSUCCESSFUL,
            mentions: &["0 bytes", "24"],
        },
        Row {
            rule: "parameter block longer than 24 bytes (policy)",
            params: [&good().to_bytes()[..], &[0u8; 4]].concat(),
            status: STATUS_INVALID_PARAMETER,
            mentions: &["28 bytes", "exactly 24", "offset 24"],
        },
        Row {
            rule: "FrameSize 0 (behaviour 13)",
            params: with_word(12, 0),
            status: STATUS_INVALID_PARAMETER,
            mentions: &["FrameSize", "is 0", "at least 1"],
        },
        Row {
            rule: "option bit 0x10 outside 0xF (behaviour 13)",
            params: with_word(0, 0x12),
            status: STATUS_INVALID_PARAMETER,
            mentions: &["OptionsFlags", "0x00000012", "0x00000010", "0x0000000F"],
        },
        Row {
            rule: "PREFERENCES_ONLY is not a create option (behaviour 13)",
            params: with_word(0, 0x8000_0002),
            status: STATUS_INVALID_PARAMETER,
            mentions: &["OptionsFlags", "0x80000002", "0x80000000"],
        },
        Row {
            rule: "Reserved not 0 (policy)",
            params: with_word(20, 7),
            status: STATUS_INVALID_PARAMETER,
            mentions: &["Reserved", "0x00000007", "must be 0"],
        },
        Row {
            rule: "alignment mask not 2^n-1 (policy)",
            params: with_word(16, 0x0E),
            status: STATUS_INVALID_PARAMETER,
            mentions: &["FileAlignment", "0x0000000E", "2^n-1"],
        },
        Row {
            rule: "alignment larger than a page for the default allocator (behaviour 14)",
            params: with_word(16, 0x1FFF),
            status: STATUS_INVALID_PARAMETER,
            mentions: &[
                "FileAlignment",
                "0x00001FFF",
                "8192 bytes",
                "0xFFF",
                "4096 bytes",
            ],
        },
        Row {
            rule: "Frames 0 (policy)",
            params: with_word(8, 0),
            status: STATUS_INVALID_PARAMETER,
            mentions: &["Frames", "is 0", "at least 1"],
        },
        Row {
            rule: "Frames x FrameSize overflows the address space (policy)",
            params: {
                let mut b = with_word(8, u32::MAX);
                b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
                b
            },
            status: STATUS_INTEGER_OVERFLOW,
            mentions: &["Frames (4294967295)", "FrameSize (4294967295"],
        },
    ]
}

#[test]
fn every_rejection_rule_has_its_status_and_names_the_field() {
    for row in rows() {
        let e = match validate_create_request(&row.params) {
            Ok(f) => panic!("{}: accepted {f:?}", row.rule),
            Err(e) => e,
        };
        assert_eq!(
            e.to_ntstatus(),
            row.status,
            "{}: got {e} (0x{:08X})",
            row.rule,
            e.to_ntstatus() as u32
        );
        let text = e.to_string();
        assert!(text.starts_with(e.name()), "{}: {text}", row.rule);
        for m in row.mentions {
            assert!(
                text.contains(m),
                "{}: message {text:?} lacks {m:?}",
                row.rule
            );
        }
    }
}

#[test]
fn valid_requests_are_accepted_unchanged() {
    let cases = [
        good(),
        Framing {
            flags: 0xF,
            ..good()
        },
        Framing {
            flags: 0,
            pool_type: PoolType::PAGED,
            ..good()
        },
        Framing {
            alignment: Alignment::BYTES_4096,
            ..good()
        }, // exactly one page
        Framing {
            alignment: Alignment::BYTE,
            frames: 1,
            frame_size: 1,
            ..good()
        },
        Framing {
            pool_type: PoolType(12345),
            ..good()
        }, // PoolType is not checked here
    ];
    for f in cases {
        assert_eq!(validate_create_request(&f.to_bytes()), Ok(f), "{f:?}");
    }
}

#[test]
fn reactos_rules_win_when_several_apply() {
    // FrameSize 0 and bad option bits and Reserved != 0: the first ReactOS rule is reported.
    let mut b = with_word(12, 0);
    b[0..4].copy_from_slice(&0xFFu32.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    let e = validate_create_request(&b).unwrap_err();
    assert!(e.to_string().contains("FrameSize"), "{e}");
}

#[cfg(target_pointer_width = "64")]
#[test]
fn largest_framing_that_fits_is_accepted_on_64_bit() {
    // u32::MAX frames of u32::MAX bytes = 2^64 - 2^33 + 1 > isize::MAX: overflow.
    // 2^31 frames of 2^31 bytes = 2^62 <= isize::MAX: accepted (the region is only checked,
    // not allocated, here).
    let f = Framing {
        frames: 1 << 31,
        frame_size: 1 << 31,
        alignment: Alignment::BYTE,
        ..good()
    };
    assert_eq!(validate_create_request(&f.to_bytes()), Ok(f));
    // Alignment rounding counts: 2^31 frames of (2^31 + 1) bytes rounded to 4096 still fit,
    // but frames of u32::MAX bytes times 2^32-1 do not.
    let g = Framing {
        frames: u32::MAX,
        frame_size: u32::MAX,
        ..good()
    };
    assert!(validate_create_request(&g.to_bytes()).is_err());
}
