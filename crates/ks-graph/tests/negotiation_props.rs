//! Pin properties, bytes in and out: ALLOCATORFRAMING_EX (behaviours 6-9),
//! ALLOCATORFRAMING (behaviour 10), STREAM_ALLOCATOR (behaviour 46), header handling; with
//! property tests of the size rules.

mod negotiation_support;

use std::sync::Arc;

use ks_alloc::{
    Alignment, Allocator, Framing, FramingEx, FramingItem, ItemFlags, Memory, MemoryType, PoolType,
    Status,
};
use ks_graph::props::*;
use ks_graph::{Graph, GraphBuilder, PinDescriptor, PinId};
use ks_sys::{GUID, KSPROPSETID_Connection, KSPROPSETID_Stream};
use negotiation_support::*;
use proptest::prelude::*;

fn req(set: GUID, id: u32, flags: u32) -> [u8; 24] {
    PropertyHeader::new(set, id, flags).to_bytes()
}

fn ex_get() -> [u8; 24] {
    req(
        KSPROPSETID_Connection,
        KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
        KSPROPERTY_TYPE_GET,
    )
}

fn old_get() -> [u8; 24] {
    req(
        KSPROPSETID_Connection,
        KSPROPERTY_CONNECTION_ALLOCATORFRAMING,
        KSPROPERTY_TYPE_GET,
    )
}

fn alloc_req(flags: u32) -> [u8; 24] {
    req(KSPROPSETID_Stream, KSPROPERTY_STREAM_ALLOCATOR, flags)
}

/// `src.out` with `framing`, `dst.in` without, connected; plus a second instance `src2` of
/// the same descriptor.
fn graph(framing: Option<FramingEx>) -> (Graph, PinId, PinId) {
    let d = Arc::new(source(K, out_pin(framing)));
    let mut b = GraphBuilder::new();
    b.add_filter("src", d.clone()).unwrap();
    b.add_filter("src2", d).unwrap();
    b.add_filter("dst", Arc::new(sink(K, in_pin(None))))
        .unwrap();
    b.connect("src.out", "dst.in").unwrap();
    let g = b.build().unwrap();
    let (o, i) = (g.pin("src.out").unwrap(), g.pin("dst.in").unwrap());
    (g, o, i)
}

fn simple() -> FramingEx {
    fx(
        MemoryType::KERNEL_PAGED,
        ItemFlags::SYSTEM_MEMORY | ItemFlags::PREFERENCES_ONLY,
        5,
        16,
        1000,
        2000,
    )
}

#[test]
fn framing_ex_get_follows_the_size_rules() {
    let (mut g, o, _) = graph(Some(simple()));
    assert_eq!(
        g.pin_property(o, &ex_get(), &mut []),
        Err(Status::BufferOverflow { required: 112 })
    );
    let mut short = [0u8; 111];
    match g.pin_property(o, &ex_get(), &mut short) {
        Err(Status::BufferTooSmall { required, .. }) => assert_eq!(required, 112),
        other => panic!("{other:?}"),
    }
    let mut big = [0xAAu8; 200];
    assert_eq!(g.pin_property(o, &ex_get(), &mut big), Ok(112));
    assert_eq!(FramingEx::from_bytes(&big[..112]).unwrap(), simple());
    assert!(
        big[112..].iter().all(|&b| b == 0xAA),
        "nothing written past the value"
    );
}

#[test]
fn framing_ex_without_framing_is_not_found_and_set_is_refused() {
    let (mut g, o, i) = graph(Some(simple()));
    let mut buf = [0u8; 112];
    assert!(matches!(
        g.pin_property(i, &ex_get(), &mut buf),
        Err(Status::NotFound(_))
    ));
    let set = req(
        KSPROPSETID_Connection,
        KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
        KSPROPERTY_TYPE_SET,
    );
    let e = g.pin_property(o, &set, &mut buf).unwrap_err();
    assert_eq!(e.to_ntstatus(), 0xC0000010u32 as i32);
    let set_old = req(
        KSPROPSETID_Connection,
        KSPROPERTY_CONNECTION_ALLOCATORFRAMING,
        KSPROPERTY_TYPE_SET,
    );
    assert!(matches!(
        g.pin_property(o, &set_old, &mut buf),
        Err(Status::InvalidDeviceRequest(_))
    ));
}

#[test]
fn old_framing_is_derived_from_the_first_item() {
    let (mut g, o, i) = graph(Some(alt(
        simple(),
        fx(MemoryType::USER, ItemFlags::empty(), 9, 1, 1, 1),
    )));
    assert_eq!(
        g.pin_property(o, &old_get(), &mut []),
        Err(Status::BufferOverflow { required: 24 })
    );
    assert!(matches!(
        g.pin_property(o, &old_get(), &mut [0u8; 23]),
        Err(Status::BufferTooSmall { required: 24, .. })
    ));
    let mut buf = [0u8; 24];
    assert_eq!(g.pin_property(o, &old_get(), &mut buf), Ok(24));
    let f = Framing::from_bytes(&buf).unwrap();
    assert_eq!(f.frames, 5);
    assert_eq!(f.frame_size, 2000);
    assert_eq!(f.alignment, Alignment::from_bytes(16).unwrap());
    assert_eq!(f.pool_type, PoolType::PAGED);
    assert_eq!(f.flags, 0x8000_0002);
    assert!(matches!(
        g.pin_property(i, &old_get(), &mut buf),
        Err(Status::NotFound(_))
    ));
}

#[test]
fn ksedit_replaces_one_instance_only() {
    let (mut g, o, _) = graph(Some(simple()));
    let other = g.pin("src2.out").unwrap();
    let mut edited = simple();
    edited.items[0].frames = 2;
    edited.items.push(FramingItem {
        frames: 7,
        ..edited.items[0].clone()
    });
    g.set_pin_framing(o, edited.clone()).unwrap();
    let mut buf = [0u8; 200];
    assert_eq!(g.pin_property(o, &ex_get(), &mut buf), Ok(200));
    assert_eq!(FramingEx::from_bytes(&buf).unwrap(), edited);
    assert_eq!(g.pin_property(other, &ex_get(), &mut buf), Ok(112));
    assert_eq!(FramingEx::from_bytes(&buf[..112]).unwrap(), simple());
}

#[test]
fn stream_allocator_get_is_null_and_only_on_accepting_pins() {
    let (mut g, o, i) = graph(None);
    let mut h = [0xFFu8; HANDLE_SIZE];
    assert_eq!(
        g.pin_property(o, &alloc_req(KSPROPERTY_TYPE_GET), &mut h),
        Ok(HANDLE_SIZE)
    );
    assert_eq!(h, [0u8; HANDLE_SIZE]);
    assert_eq!(
        g.pin_property(o, &alloc_req(KSPROPERTY_TYPE_GET), &mut []),
        Err(Status::BufferOverflow {
            required: HANDLE_SIZE
        })
    );
    assert!(matches!(
        g.pin_property(i, &alloc_req(KSPROPERTY_TYPE_GET), &mut h),
        Err(Status::NotFound(_))
    ));
}

fn allocator() -> Allocator {
    let f = Framing {
        flags: 2,
        pool_type: PoolType::NON_PAGED,
        frames: 2,
        frame_size: 64,
        alignment: Alignment::BYTE,
    };
    Allocator::new(&f, Memory::NonPaged).unwrap()
}

#[test]
fn stream_allocator_set_assigns_and_replacing_releases() {
    let (mut g, o, _) = graph(None);
    let a = g.register_allocator(allocator());
    let b = g.register_allocator(allocator());
    let set = alloc_req(KSPROPERTY_TYPE_SET);
    assert_eq!(g.pin_property(o, &set, &mut a.to_bytes()), Ok(HANDLE_SIZE));
    assert_eq!(g.assigned_allocator(o).map(|x| x.0), Some(a));
    assert_eq!(g.allocator_references(a), 1);
    // Replacing releases the previous reference (behaviour 46).
    assert_eq!(g.pin_property(o, &set, &mut b.to_bytes()), Ok(HANDLE_SIZE));
    assert_eq!(
        (g.allocator_references(a), g.allocator_references(b)),
        (0, 1)
    );
    // The null handle releases too.
    assert_eq!(
        g.pin_property(o, &set, &mut [0u8; HANDLE_SIZE]),
        Ok(HANDLE_SIZE)
    );
    assert_eq!(g.allocator_references(b), 0);
    assert!(g.assigned_allocator(o).is_none());
    // GET still answers null while assigned.
    g.assign_allocator(o, Some(a)).unwrap();
    let mut h = [1u8; HANDLE_SIZE];
    g.pin_property(o, &alloc_req(KSPROPERTY_TYPE_GET), &mut h)
        .unwrap();
    assert_eq!(h, [0u8; HANDLE_SIZE]);
}

#[test]
fn stream_allocator_disconnect_releases_and_bad_handles_are_refused() {
    let (mut g, o, i) = graph(None);
    let a = g.register_allocator(allocator());
    g.assign_allocator(o, Some(a)).unwrap();
    g.disconnect(i).unwrap();
    assert_eq!(g.allocator_references(a), 0);
    let set = alloc_req(KSPROPERTY_TYPE_SET);
    assert!(matches!(
        g.pin_property(o, &set, &mut [0x44; HANDLE_SIZE]),
        Err(Status::InvalidParameter(_))
    ));
    assert!(matches!(
        g.pin_property(o, &set, &mut [0u8; HANDLE_SIZE - 1]),
        Err(Status::BufferTooSmall {
            required: HANDLE_SIZE,
            ..
        })
    ));
    // Closing the handle leaves an existing assignment's reference alone.
    g.assign_allocator(o, Some(a)).unwrap();
    g.close_allocator_handle(a).unwrap();
    assert_eq!(g.allocator_references(a), 1);
    assert!(
        g.assign_allocator(o, Some(a)).is_err(),
        "a closed handle cannot be assigned"
    );
    assert!(g.close_allocator_handle(a).is_err());
}

#[test]
fn header_errors() {
    let (mut g, o, _) = graph(Some(simple()));
    let mut buf = [0u8; 200];
    assert!(matches!(
        g.pin_property(o, &ex_get()[..23], &mut buf),
        Err(Status::InvalidBufferSize(_))
    ));
    let unknown = GUID::from_u128(0x1234);
    assert!(matches!(
        g.pin_property(o, &req(unknown, 0, 1), &mut buf),
        Err(Status::PropsetNotFound(_))
    ));
    assert!(matches!(
        g.pin_property(o, &req(KSPROPSETID_Connection, 99, 1), &mut buf),
        Err(Status::NotFound(_))
    ));
    assert!(matches!(
        g.pin_property(o, &req(KSPROPSETID_Stream, 10, 1), &mut buf),
        Err(Status::NotFound(_))
    ));
    assert!(matches!(
        g.pin_property(o, &req(KSPROPSETID_Connection, 6, 3), &mut buf),
        Err(Status::InvalidParameter(_))
    ));
    assert!(matches!(
        g.pin_property(o, &req(KSPROPSETID_Connection, 6, 0x200), &mut buf),
        Err(Status::InvalidDeviceRequest(_))
    ));
    // The set, then the id, then the flags: bad flags do not hide an unknown set or id.
    for flags in [0, 3, 0x200] {
        assert!(matches!(
            g.pin_property(o, &req(unknown, 0, flags), &mut buf),
            Err(Status::PropsetNotFound(_))
        ));
        assert!(matches!(
            g.pin_property(o, &req(KSPROPSETID_Connection, 99, flags), &mut buf),
            Err(Status::NotFound(_))
        ));
    }
    // A SET on a get-only property names the property and the flags.
    let set = g.pin_property(o, &req(KSPROPSETID_Connection, 6, 2), &mut buf);
    let msg = set.unwrap_err().to_string();
    assert!(
        msg.contains("ALLOCATORFRAMING_EX (id 6) is get-only") && msg.contains("0x2"),
        "{msg}"
    );
    // The topology bit is ignored on pins; trailing request bytes too.
    let mut long = ex_get().to_vec();
    long.extend_from_slice(&[9; 8]);
    let flags_topo = req(
        KSPROPSETID_Connection,
        6,
        KSPROPERTY_TYPE_GET | KSPROPERTY_TYPE_TOPOLOGY,
    );
    assert_eq!(g.pin_property(o, &flags_topo, &mut buf), Ok(112));
    assert_eq!(g.pin_property(o, &long, &mut buf), Ok(112));
}

fn arb_item() -> impl Strategy<Value = FramingItem> {
    (
        any::<u32>(),
        0u32..32,
        0u32..1000,
        0u32..100_000,
        0u32..100_000,
        0u32..9,
    )
        .prop_map(|(flags, frames, a, min, extra, step)| {
            let mut i = fx(
                MemoryType::KERNEL_NONPAGED,
                ItemFlags(flags),
                frames,
                1 << (a % 13),
                min,
                min + extra,
            )
            .items
            .remove(0);
            i.physical_range.stepping = step;
            i
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For any framing and any buffer length: 0 → overflow with the size; short → too small
    /// with the size; otherwise exactly 24 + 88 N bytes that decode to the pin's framing.
    #[test]
    fn framing_ex_size_rules(items in prop::collection::vec(arb_item(), 1..6), len in 0usize..700) {
        let fxv = FramingEx { pin_flags: 0, output_compression: ks_alloc::Compression::IDENTITY, pin_weight: 0, items };
        let required = 24 + 88 * fxv.items.len();
        let (mut g, o, _) = graph(Some(fxv.clone()));
        let mut buf = vec![0u8; len];
        let r = g.pin_property(o, &ex_get(), &mut buf);
        if len == 0 {
            prop_assert_eq!(r, Err(Status::BufferOverflow { required }));
        } else if len < required {
            let ok = matches!(&r, Err(Status::BufferTooSmall { required: n, .. }) if *n == required);
            prop_assert!(ok, "{:?}", r);
        } else {
            prop_assert_eq!(r, Ok(required));
            prop_assert_eq!(FramingEx::from_bytes(&buf[..required]).unwrap(), fxv);
        }
        // SET is refused whatever the buffer.
        let set = req(KSPROPSETID_Connection, KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX, KSPROPERTY_TYPE_SET);
        prop_assert!(matches!(g.pin_property(o, &set, &mut buf), Err(Status::InvalidDeviceRequest(_))));
    }

    /// The old form is always 24 bytes equal to the EX form's documented conversion.
    #[test]
    fn old_framing_matches_conversion(items in prop::collection::vec(arb_item(), 1..4), len in 0usize..40) {
        let fxv = FramingEx { pin_flags: 0, output_compression: ks_alloc::Compression::IDENTITY, pin_weight: 0, items };
        let (mut g, o, _) = graph(Some(fxv.clone()));
        let mut buf = vec![0u8; len];
        let r = g.pin_property(o, &old_get(), &mut buf);
        match len {
            0 => prop_assert_eq!(r, Err(Status::BufferOverflow { required: 24 })),
            1..=23 => {
                let ok = matches!(&r, Err(Status::BufferTooSmall { required: 24, .. }));
                prop_assert!(ok, "{:?}", r);
            }
            _ => {
                prop_assert_eq!(r, Ok(24));
                prop_assert_eq!(&buf[..24], &fxv.to_framing().unwrap().to_bytes()[..]);
            }
        }
    }

    /// Any request bytes: never a panic; a foreign set GUID is PROPSET_NOT_FOUND; a short
    /// header is INVALID_BUFFER_SIZE.
    #[test]
    fn arbitrary_requests_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..40), len in 0usize..300) {
        let (mut g, o, i) = graph(Some(simple()));
        for pin in [o, i] {
            let mut buf = vec![0u8; len];
            let r = g.pin_property(pin, &bytes, &mut buf);
            if bytes.len() < 24 {
                prop_assert!(matches!(r, Err(Status::InvalidBufferSize(_))));
            } else {
                let h = PropertyHeader::from_bytes(&bytes).unwrap();
                if h.set != KSPROPSETID_Connection && h.set != KSPROPSETID_Stream {
                    let kind = h.flags & !KSPROPERTY_TYPE_TOPOLOGY;
                    if kind == KSPROPERTY_TYPE_GET || kind == KSPROPERTY_TYPE_SET {
                        prop_assert!(matches!(r, Err(Status::PropsetNotFound(_))));
                    } else {
                        prop_assert!(r.is_err());
                    }
                }
                if let Ok(n) = r {
                    prop_assert!(n <= len);
                }
            }
        }
    }

    /// Any sequence of SETs leaves exactly the last assigned allocator referenced by the pin.
    #[test]
    fn assignments_hold_one_reference(seq in prop::collection::vec(0usize..4, 1..12)) {
        let (mut g, o, _) = graph(None);
        let handles: Vec<AllocatorHandle> = (0..3).map(|_| g.register_allocator(allocator())).collect();
        let set = alloc_req(KSPROPERTY_TYPE_SET);
        let mut last = None;
        for k in seq {
            let mut v = if k == 3 { [0; HANDLE_SIZE] } else { handles[k].to_bytes() };
            prop_assert_eq!(g.pin_property(o, &set, &mut v), Ok(HANDLE_SIZE));
            last = if k == 3 { None } else { Some(k) };
        }
        for (k, &h) in handles.iter().enumerate() {
            prop_assert_eq!(g.allocator_references(h), usize::from(last == Some(k)));
        }
    }
}

#[test]
fn pin_descriptor_may_opt_out_of_allocator_assignment() {
    let d = Arc::new(source(
        K,
        PinDescriptor::output("out").with_accepts_allocator(false),
    ));
    let mut b = GraphBuilder::new();
    b.add_filter("s", d).unwrap();
    let mut g = b.build().unwrap();
    let o = g.pin("s.out").unwrap();
    assert!(matches!(
        g.pin_property(o, &alloc_req(KSPROPERTY_TYPE_GET), &mut [0u8; HANDLE_SIZE]),
        Err(Status::NotFound(_))
    ));
}
