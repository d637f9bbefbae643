//! `Status` ↔ NTSTATUS round trips for every code of ks-spec §1.3 and for arbitrary codes.

use ks_alloc::Status;
use proptest::prelude::*;

/// Every non-success code of §1.3 with its name.
const CODES: &[(i32, &str)] = &[
    (ks_sys::STATUS_PENDING, "STATUS_PENDING"),
    (ks_sys::STATUS_MORE_ENTRIES, "STATUS_MORE_ENTRIES"),
    (ks_sys::STATUS_BUFFER_OVERFLOW, "STATUS_BUFFER_OVERFLOW"),
    (ks_sys::STATUS_UNSUCCESSFUL, "STATUS_UNSUCCESSFUL"),
    (ks_sys::STATUS_NOT_IMPLEMENTED, "STATUS_NOT_IMPLEMENTED"),
    (ks_sys::STATUS_INVALID_PARAMETER, "STATUS_INVALID_PARAMETER"),
    (
        ks_sys::STATUS_INVALID_DEVICE_REQUEST,
        "STATUS_INVALID_DEVICE_REQUEST",
    ),
    (ks_sys::STATUS_BUFFER_TOO_SMALL, "STATUS_BUFFER_TOO_SMALL"),
    (ks_sys::STATUS_INTEGER_OVERFLOW, "STATUS_INTEGER_OVERFLOW"),
    (
        ks_sys::STATUS_INSUFFICIENT_RESOURCES,
        "STATUS_INSUFFICIENT_RESOURCES",
    ),
    (ks_sys::STATUS_DEVICE_NOT_READY, "STATUS_DEVICE_NOT_READY"),
    (ks_sys::STATUS_NOT_SUPPORTED, "STATUS_NOT_SUPPORTED"),
    (ks_sys::STATUS_CANCELLED, "STATUS_CANCELLED"),
    (
        ks_sys::STATUS_INVALID_DEVICE_STATE,
        "STATUS_INVALID_DEVICE_STATE",
    ),
    (
        ks_sys::STATUS_INVALID_BUFFER_SIZE,
        "STATUS_INVALID_BUFFER_SIZE",
    ),
    (ks_sys::STATUS_NOT_FOUND, "STATUS_NOT_FOUND"),
    (ks_sys::STATUS_PROPSET_NOT_FOUND, "STATUS_PROPSET_NOT_FOUND"),
];

#[test]
fn every_spec_code_round_trips_with_its_name() {
    for &(code, name) in CODES {
        let s = Status::from_ntstatus(code).unwrap_or_else(|| panic!("{name} is not success"));
        assert_eq!(s.to_ntstatus(), code, "{name}");
        assert_eq!(s.name(), name);
        assert!(s.to_string().starts_with(name), "{s}");
        assert!(
            !matches!(s, Status::Other(_)),
            "{name} must have its own variant"
        );
    }
    // The variants are distinct codes.
    let mut codes: Vec<i32> = CODES.iter().map(|c| c.0).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), CODES.len());
}

#[test]
fn success_is_none() {
    assert_eq!(Status::from_ntstatus(ks_sys::STATUS_SUCCESS), None);
    assert_eq!(Status::from_ntstatus(1), None);
    assert_eq!(Status::from_ntstatus(0x104), None);
}

#[test]
fn display_names_status_and_message() {
    let s = Status::InvalidParameter("FrameSize is 0; must be at least 1".into());
    assert_eq!(
        s.to_string(),
        "STATUS_INVALID_PARAMETER: FrameSize is 0; must be at least 1"
    );
    let s = Status::BufferTooSmall {
        required: 112,
        message: "output is 24 bytes".into(),
    };
    assert_eq!(
        s.to_string(),
        "STATUS_BUFFER_TOO_SMALL: output is 24 bytes (112 bytes required)"
    );
    assert_eq!(s.required_size(), Some(112));
    assert_eq!(
        Status::Other(0xC000_0005u32 as i32).to_string(),
        "NTSTATUS 0xC0000005"
    );
    let bare = Status::from_ntstatus(ks_sys::STATUS_NOT_FOUND).unwrap();
    assert_eq!(bare.to_string(), "STATUS_NOT_FOUND (0xC0000225)");
    assert_eq!(Status::MoreEntries { required: 8 }.required_size(), Some(8));
    assert_eq!(Status::Cancelled.required_size(), None);
}

#[test]
fn status_is_a_std_error() {
    fn takes(_: &dyn std::error::Error) {}
    takes(&Status::Cancelled);
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(Status::Pending);
    assert!(e.to_string().starts_with("STATUS_PENDING"));
}

proptest! {
    #[test]
    fn any_code_round_trips(code in any::<i32>()) {
        match Status::from_ntstatus(code) {
            None => prop_assert!(code >= 0 && code != 0x103 && code != 0x105),
            Some(s) => {
                prop_assert_eq!(s.to_ntstatus(), code);
                prop_assert!(code < 0 || code == 0x103 || code == 0x105);
                prop_assert_eq!(Status::from_ntstatus(s.to_ntstatus()), Some(s));
            }
        }
    }
}
