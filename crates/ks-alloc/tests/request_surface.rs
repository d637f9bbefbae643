//! The KS byte surface: property, method and event requests (behaviours 19-37 as seen by a KS
//! client), with the status policy of request.rs.
#![cfg(not(loom))]

use ks_alloc::{Alignment, Allocator, Framing, FreeFrameEvents, Memory, PoolType, Status};
use ks_sys::{
    GUID, KSEVENT_STREAMALLOCATOR_FREEFRAME, KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME,
    KSEVENT_TYPE_BASICSUPPORT, KSEVENT_TYPE_ENABLE, KSEVENT_TYPE_ENABLEBUFFERED,
    KSEVENT_TYPE_ONESHOT, KSEVENT_TYPE_QUERYBUFFER, KSEVENT_TYPE_SETSUPPORT, KSEVENT_TYPE_TOPOLOGY,
    KSEVENTSETID_StreamAllocator, KSMETHOD_STREAMALLOCATOR_ALLOC, KSMETHOD_STREAMALLOCATOR_FREE,
    KSMETHOD_TYPE_BASICSUPPORT, KSMETHOD_TYPE_MODIFY, KSMETHOD_TYPE_NONE, KSMETHOD_TYPE_READ,
    KSMETHOD_TYPE_SETSUPPORT, KSMETHOD_TYPE_SOURCE, KSMETHOD_TYPE_TOPOLOGY, KSMETHOD_TYPE_WRITE,
    KSMETHODSETID_StreamAllocator, KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
    KSPROPERTY_STREAMALLOCATOR_STATUS, KSPROPERTY_TYPE_BASICSUPPORT, KSPROPERTY_TYPE_DEFAULTVALUES,
    KSPROPERTY_TYPE_GET, KSPROPERTY_TYPE_RELATIONS, KSPROPERTY_TYPE_SERIALIZERAW,
    KSPROPERTY_TYPE_SERIALIZESET, KSPROPERTY_TYPE_SERIALIZESIZE, KSPROPERTY_TYPE_SET,
    KSPROPERTY_TYPE_SETSUPPORT, KSPROPERTY_TYPE_TOPOLOGY, KSPROPERTY_TYPE_UNSERIALIZERAW,
    KSPROPERTY_TYPE_UNSERIALIZESET, KSPROPSETID_Connection, KSPROPSETID_StreamAllocator,
    KSSTREAMALLOCATOR_FUNCTIONTABLE, PFILE_OBJECT,
};

const PTR: usize = std::mem::size_of::<usize>();

fn hdr(set: GUID, id: u32, flags: u32) -> Vec<u8> {
    [
        &set.to_le_bytes()[..],
        &id.to_le_bytes(),
        &flags.to_le_bytes(),
    ]
    .concat()
}

fn alloc(frames: u32, memory: Memory) -> Allocator {
    let f = Framing {
        flags: 2,
        pool_type: PoolType::NON_PAGED,
        frames,
        frame_size: 512,
        alignment: Alignment::QUAD,
    };
    Allocator::new(&f, memory).unwrap()
}

#[test]
fn status_property_reports_framing_and_allocated_frames() {
    let a = alloc(3, Memory::NonPaged);
    let _f = a.try_allocate().unwrap();
    let mut out = [0xFFu8; 40];
    let r = a.property(
        &hdr(
            KSPROPSETID_StreamAllocator,
            KSPROPERTY_STREAMALLOCATOR_STATUS,
            KSPROPERTY_TYPE_GET,
        ),
        &mut out,
    );
    assert_eq!(r.status, Ok(()));
    assert_eq!(r.information, 32);
    // Behaviour 19: the framing given at creation, field by field (as `alloc` makes it).
    let ulong = |at: usize| u32::from_le_bytes(out[at..at + 4].try_into().unwrap());
    assert_eq!(ulong(0), 2, "OptionsFlags");
    assert_eq!(ulong(4), PoolType::NON_PAGED.0 as u32, "PoolType");
    assert_eq!(ulong(8), 3, "Frames");
    assert_eq!(ulong(12), 512, "FrameSize");
    assert_eq!(ulong(16), Alignment::QUAD.mask(), "FileAlignment");
    assert_eq!(ulong(20), 0, "Reserved");
    assert_eq!(&out[..24], &a.framing().to_bytes());
    assert_eq!(ulong(24), 1, "AllocatedFrames");
    assert_eq!(&out[28..32], &[0; 4], "Reserved");
}

#[test]
fn get_only_properties_refuse_set_and_small_buffers() {
    let a = alloc(1, Memory::NonPaged);
    for id in [
        KSPROPERTY_STREAMALLOCATOR_STATUS,
        KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
    ] {
        let r = a.property(
            &hdr(KSPROPSETID_StreamAllocator, id, KSPROPERTY_TYPE_SET),
            &mut [0; 64],
        );
        assert!(
            matches!(r.status, Err(Status::InvalidDeviceRequest(_))),
            "{r:?}"
        );
        assert_eq!(r.ntstatus(), 0xC000_0010u32 as i32);
    }
    let r = a.property(
        &hdr(
            KSPROPSETID_StreamAllocator,
            KSPROPERTY_STREAMALLOCATOR_STATUS,
            KSPROPERTY_TYPE_GET,
        ),
        &mut [0; 31],
    );
    assert!(matches!(
        r.status,
        Err(Status::BufferTooSmall { required: 32, .. })
    ));
    assert_eq!(r.information, 32);
    // An empty buffer too (policy: both properties are fixed-size; no probe status).
    let r = a.property(
        &hdr(
            KSPROPSETID_StreamAllocator,
            KSPROPERTY_STREAMALLOCATOR_STATUS,
            KSPROPERTY_TYPE_GET,
        ),
        &mut [],
    );
    assert!(matches!(
        r.status,
        Err(Status::BufferTooSmall { required: 32, .. })
    ));
    assert_eq!(r.information, 32);
    let r = a.property(
        &hdr(
            KSPROPSETID_StreamAllocator,
            KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
            KSPROPERTY_TYPE_GET,
        ),
        &mut [0; 4],
    );
    assert!(matches!(r.status, Err(Status::BufferTooSmall { .. })));
    assert_eq!(
        r.information,
        std::mem::size_of::<KSSTREAMALLOCATOR_FUNCTIONTABLE>()
    );
}

#[test]
fn unknown_sets_ids_and_short_headers() {
    let a = alloc(1, Memory::NonPaged);
    let r = a.property(
        &hdr(KSPROPSETID_Connection, 1, KSPROPERTY_TYPE_GET),
        &mut [0; 64],
    );
    assert!(matches!(r.status, Err(Status::PropsetNotFound(_))));
    let r = a.property(
        &hdr(KSPROPSETID_StreamAllocator, 7, KSPROPERTY_TYPE_GET),
        &mut [0; 64],
    );
    assert!(matches!(r.status, Err(Status::NotFound(_))));
    let (r, _) = a.method(&hdr(KSMETHODSETID_StreamAllocator, 9, 0), &mut [0; 8]);
    assert!(matches!(r.status, Err(Status::NotFound(_))));
    let (r, _) = a.method(&hdr(KSPROPSETID_StreamAllocator, 0, 0), &mut [0; 8]);
    assert!(matches!(r.status, Err(Status::PropsetNotFound(_))));
    let r = a.property(&[0; 10], &mut [0; 64]);
    assert!(matches!(r.status, Err(Status::InvalidBufferSize(_))));
    assert!(matches!(
        a.enable_event(&hdr(KSEVENTSETID_StreamAllocator, 5, 0), &[]),
        Err(Status::NotFound(_))
    ));
}

#[test]
fn function_table_is_callable_and_refused_for_paged_memory() {
    let a = alloc(1, Memory::NonPaged);
    let mut out = [0u8; 16];
    let r = a.property(
        &hdr(
            KSPROPSETID_StreamAllocator,
            KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
            KSPROPERTY_TYPE_GET,
        ),
        &mut out,
    );
    assert_eq!(r.status, Ok(()));
    let word = |o: usize| usize::from_ne_bytes(out[o..o + PTR].try_into().unwrap());
    type AllocFn = unsafe extern "C" fn(PFILE_OBJECT, *mut *mut std::ffi::c_void) -> i32;
    type FreeFn = unsafe extern "C" fn(PFILE_OBJECT, *mut std::ffi::c_void);
    // Read as integers, the words lose the functions' provenance; an `as` cast turns each
    // back into a pointer with the provenance the property exposed, which a transmute of the
    // integer would not give it (Miri rejects the call then). The struct route is in
    // `function_table_reads_back_as_the_ks_sys_structure`.
    // SAFETY: the property wrote the addresses of functions of exactly these signatures.
    let (allocate, free): (AllocFn, FreeFn) = unsafe {
        (
            std::mem::transmute::<*const (), AllocFn>(word(0) as *const ()),
            std::mem::transmute::<*const (), FreeFn>(word(PTR) as *const ()),
        )
    };
    let file = a.file_object();
    let mut frame = std::ptr::null_mut();
    // SAFETY: `file` is this live allocator's file object; `frame` is writable.
    assert_eq!(unsafe { allocate(file, &mut frame) }, 0);
    assert!(!frame.is_null());
    let mut none = std::ptr::null_mut();
    // SAFETY: as above.
    let st = unsafe { allocate(file, &mut none) };
    assert_eq!(st, 0xC000_0001u32 as i32, "STATUS_UNSUCCESSFUL at once");
    assert!(none.is_null());
    // SAFETY: as above.
    unsafe { free(file, frame) };
    assert_eq!(a.status().allocated_frames, 0);

    let p = alloc(1, Memory::Paged);
    let r = p.property(
        &hdr(
            KSPROPSETID_StreamAllocator,
            KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
            KSPROPERTY_TYPE_GET,
        ),
        &mut out,
    );
    assert!(matches!(r.status, Err(Status::NotSupported(_))));
    a.close();
    let r = a.property(
        &hdr(
            KSPROPSETID_StreamAllocator,
            KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
            KSPROPERTY_TYPE_GET,
        ),
        &mut out,
    );
    assert!(
        matches!(r.status, Err(Status::InvalidDeviceState(_))),
        "behaviour 36"
    );
}

/// The natural reading of the FUNCTIONTABLE answer (ks-spec §5.6): the bytes are a
/// `KSSTREAMALLOCATOR_FUNCTIONTABLE`, read back with `read_unaligned` and called. The
/// property used to write the entry points as integers, so the function pointers read back
/// had no provenance and calling them was undefined behaviour: run under Miri to see it
/// (`cargo +nightly miri test -p ks-alloc --test request_surface function_table`).
#[test]
fn function_table_reads_back_as_the_ks_sys_structure() {
    let a = alloc(1, Memory::NonPaged);
    // One byte of offset: the client's buffer need not be aligned for the structure.
    let mut buf = [0u8; 1 + std::mem::size_of::<KSSTREAMALLOCATOR_FUNCTIONTABLE>()];
    let r = a.property(
        &hdr(
            KSPROPSETID_StreamAllocator,
            KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
            KSPROPERTY_TYPE_GET,
        ),
        &mut buf[1..],
    );
    assert_eq!((r.ntstatus(), r.information), (0, 2 * PTR));
    // The answer is copied out of the I/O buffer as bytes (KS: the I/O manager's memcpy),
    // which keeps their provenance.
    let mut copy = [0u8; 1 + std::mem::size_of::<KSSTREAMALLOCATOR_FUNCTIONTABLE>()];
    copy.copy_from_slice(&buf);
    // SAFETY: the property wrote a `KSSTREAMALLOCATOR_FUNCTIONTABLE` at offset 1 (the copy
    // keeps the bytes' provenance); `read_unaligned` needs no alignment.
    let table = unsafe {
        copy.as_ptr()
            .add(1)
            .cast::<KSSTREAMALLOCATOR_FUNCTIONTABLE>()
            .read_unaligned()
    };
    let allocate = table.AllocateFrame.expect("AllocateFrame is set");
    let free = table.FreeFrame.expect("FreeFrame is set");
    let file = a.file_object();
    let mut frame = std::ptr::null_mut();
    // SAFETY: `file` is this live allocator's file object; `frame` is writable.
    assert_eq!(unsafe { allocate(file, &mut frame) }, 0);
    assert!(!frame.is_null());
    assert_eq!(a.status().allocated_frames, 1);
    // SAFETY: the frame's memory is the allocator's, 512 bytes, and ours until freed.
    unsafe { frame.cast::<u8>().write_bytes(0xA5, 512) };
    let mut none = std::ptr::null_mut();
    // SAFETY: as above.
    let st = unsafe { allocate(file, &mut none) };
    assert_eq!(st, 0xC000_0001u32 as i32, "STATUS_UNSUCCESSFUL at once");
    assert!(none.is_null());
    // SAFETY: as above; `frame` came from `allocate`.
    unsafe { free(file, frame) };
    assert_eq!(a.status().allocated_frames, 0);
}

#[test]
fn alloc_method_pends_and_free_completes_it() {
    let a = alloc(1, Memory::Paged); // the IRP interface works for any memory
    let mut addr = [0u8; 8];
    let (r, p) = a.method(
        &hdr(
            KSMETHODSETID_StreamAllocator,
            KSMETHOD_STREAMALLOCATOR_ALLOC,
            2,
        ),
        &mut addr,
    );
    assert_eq!((r.ntstatus(), r.information), (0, PTR));
    assert!(p.is_none());
    let (r, pending) = a.method(
        &hdr(
            KSMETHODSETID_StreamAllocator,
            KSMETHOD_STREAMALLOCATOR_ALLOC,
            2,
        ),
        &mut [0; 8],
    );
    assert_eq!(r.ntstatus(), 0x103, "STATUS_PENDING");
    let mut pending = pending.expect("a request handle");
    assert!(pending.try_complete().unwrap().is_none());
    let (r, _) = a.method(
        &hdr(
            KSMETHODSETID_StreamAllocator,
            KSMETHOD_STREAMALLOCATOR_FREE,
            1,
        ),
        &mut addr,
    );
    assert_eq!(r.status, Ok(()));
    let f = pending
        .try_complete()
        .unwrap()
        .expect("completed by the free");
    assert_eq!(f.addr(), usize::from_ne_bytes(addr));
    assert_eq!(a.status().allocated_frames, 1);
}

#[test]
fn methods_reject_short_data_and_unknown_frees() {
    let a = alloc(1, Memory::NonPaged);
    for id in [
        KSMETHOD_STREAMALLOCATOR_ALLOC,
        KSMETHOD_STREAMALLOCATOR_FREE,
    ] {
        let (r, _) = a.method(&hdr(KSMETHODSETID_StreamAllocator, id, 0), &mut [0; 4]);
        assert_eq!(
            r.status,
            Err(Status::MoreEntries { required: PTR }),
            "behaviour 28"
        );
        assert_eq!(r.information, PTR);
    }
    let mut bogus = 0x1234usize.to_ne_bytes();
    let (r, _) = a.method(
        &hdr(
            KSMETHODSETID_StreamAllocator,
            KSMETHOD_STREAMALLOCATOR_FREE,
            0,
        ),
        &mut bogus,
    );
    assert!(matches!(r.status, Err(Status::InvalidParameter(_))));
    assert_eq!(a.status().allocated_frames, 0);
}

#[test]
fn a_pending_alloc_cancelled_by_close_completes_with_status_cancelled() {
    // Behaviour 27 / close: the KS request handle learns STATUS_CANCELLED.
    let a = alloc(1, Memory::NonPaged);
    let held = a.try_allocate().unwrap();
    let (r, pending) = a.method(
        &hdr(
            KSMETHODSETID_StreamAllocator,
            KSMETHOD_STREAMALLOCATOR_ALLOC,
            KSMETHOD_TYPE_WRITE,
        ),
        &mut [0u8; 8],
    );
    assert_eq!(
        r.status.as_ref().map_err(Status::name),
        Err("STATUS_PENDING")
    );
    let mut pending = pending.expect("pending");
    assert!(pending.try_complete().unwrap().is_none(), "still pending");
    a.close();
    assert_eq!(
        pending.try_complete().map(|f| f.is_some()),
        Err(Status::Cancelled)
    );
    drop(held);
    assert_eq!(a.status().allocated_frames, 0);
}

#[test]
fn cancelled_pending_alloc_consumes_no_frame() {
    let a = alloc(1, Memory::NonPaged);
    let f = a.try_allocate().unwrap();
    let (_, pending) = a.method(
        &hdr(
            KSMETHODSETID_StreamAllocator,
            KSMETHOD_STREAMALLOCATOR_ALLOC,
            2,
        ),
        &mut [0; 8],
    );
    drop(pending); // IoCancelIrp
    drop(f);
    assert_eq!(a.status().allocated_frames, 0);
    assert_eq!(a.status().pending, 0);
    let (_, pending) = a.method(
        &hdr(
            KSMETHODSETID_StreamAllocator,
            KSMETHOD_STREAMALLOCATOR_ALLOC,
            2,
        ),
        &mut [0; 8],
    );
    assert!(pending.is_none(), "frame free again");
}

#[test]
fn freeframe_event_enables_and_internal_is_refused() {
    let a = alloc(1, Memory::NonPaged);
    assert!(matches!(
        a.enable_event(
            &hdr(
                KSEVENTSETID_StreamAllocator,
                KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME,
                1
            ),
            &[]
        ),
        Err(Status::InvalidDeviceRequest(_))
    ));
    let mut ev = a
        .enable_event(
            &hdr(
                KSEVENTSETID_StreamAllocator,
                KSEVENT_STREAMALLOCATOR_FREEFRAME,
                1,
            ),
            &[],
        )
        .unwrap()
        .expect("KSEVENT_TYPE_ENABLE subscribes");
    drop(a.try_allocate().unwrap());
    assert!(ev.wait(std::time::Duration::from_secs(5)).unwrap());
    a.disable_event(ev).unwrap();
}

/// Whether this thread's frees of `a`'s frames are kept in its cache, which happens only
/// while nobody subscribes to FREEFRAME. (A thread's first free may go uncached: its id is
/// taken with a lock that is only tried, so a few rounds.)
fn frees_are_cached(a: &Allocator) -> bool {
    for _ in 0..100 {
        drop(a.try_allocate().unwrap());
        if a.status().cached_frames == 1 {
            drop(a.try_allocate().unwrap()); // out of the cache again
            return true;
        }
    }
    false
}

fn event(a: &Allocator, id: u32, flags: u32) -> Result<Option<FreeFrameEvents>, Status> {
    a.enable_event(&hdr(KSEVENTSETID_StreamAllocator, id, flags), &[])
}

/// `KSEVENT_TYPE_SETSUPPORT` / `BASICSUPPORT` ask whether FREEFRAME is supported: they
/// answer STATUS_SUCCESS and enable nothing (no subscription that fires, none that keeps
/// the thread caches off). They used to enable the event like `KSEVENT_TYPE_ENABLE`.
#[test]
fn event_support_queries_enable_nothing() {
    let a = alloc(64, Memory::NonPaged); // a cache slot for whatever id this thread has
    for flags in [KSEVENT_TYPE_SETSUPPORT, KSEVENT_TYPE_BASICSUPPORT] {
        let r = event(&a, KSEVENT_STREAMALLOCATOR_FREEFRAME, flags);
        assert!(
            matches!(r, Ok(None)),
            "flags {flags:#x}: supported, and no subscription: {r:?}"
        );
        assert!(frees_are_cached(&a), "flags {flags:#x}: nobody subscribed");
        // Behaviour 37: INTERNAL_FREEFRAME is not offered to clients, so not "supported".
        let r = event(&a, KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME, flags);
        assert!(
            matches!(r, Err(Status::InvalidDeviceRequest(_))),
            "flags {flags:#x}: {r:?}"
        );
    }
    assert_eq!(a.status().allocated_frames, 0);
}

/// The flags must name one request: none (flags 0: no `KSEVENT_TYPE_ENABLE`), several, or
/// unknown bits are STATUS_INVALID_PARAMETER; buffered events and topology nodes, which an
/// allocator does not have, STATUS_INVALID_DEVICE_REQUEST. None of them subscribes. Flags 0
/// used to enable the event.
#[test]
fn event_flags_must_name_one_known_request() {
    let a = alloc(64, Memory::NonPaged);
    let invalid_parameter = [
        0,
        KSEVENT_TYPE_ONESHOT | KSEVENT_TYPE_BASICSUPPORT,
        KSEVENT_TYPE_ENABLE | KSEVENT_TYPE_SETSUPPORT,
        KSEVENT_TYPE_SETSUPPORT | KSEVENT_TYPE_BASICSUPPORT,
        KSEVENT_TYPE_ENABLE | KSEVENT_TYPE_ENABLEBUFFERED,
        KSEVENT_TYPE_TOPOLOGY,
        KSEVENT_TYPE_ENABLE | 0x8,
        KSEVENT_TYPE_ENABLE | 0x8000_0000,
        KSEVENT_TYPE_BASICSUPPORT | 0x800,
    ];
    for flags in invalid_parameter {
        let r = event(&a, KSEVENT_STREAMALLOCATOR_FREEFRAME, flags);
        assert!(
            matches!(r, Err(Status::InvalidParameter(_))),
            "flags {flags:#x}: {r:?}"
        );
        assert_eq!(r.unwrap_err().to_ntstatus(), 0xC000_000Du32 as i32);
    }
    for flags in [
        KSEVENT_TYPE_ENABLEBUFFERED,
        KSEVENT_TYPE_QUERYBUFFER,
        KSEVENT_TYPE_ENABLE | KSEVENT_TYPE_TOPOLOGY,
    ] {
        let r = event(&a, KSEVENT_STREAMALLOCATOR_FREEFRAME, flags);
        assert!(
            matches!(r, Err(Status::InvalidDeviceRequest(_))),
            "flags {flags:#x}: {r:?}"
        );
        assert_eq!(r.unwrap_err().to_ntstatus(), 0xC000_0010u32 as i32);
    }
    assert!(frees_are_cached(&a), "no refused request subscribed");
    // The set and the id are judged first, as for properties and methods.
    let r = event(&a, 7, 0);
    assert!(matches!(r, Err(Status::NotFound(_))), "{r:?}");
}

/// `KSEVENT_TYPE_ONESHOT` (alone, as the `KSEVENT` reference lists it, or with
/// `KSEVENT_TYPE_ENABLE`): the first event completes, then the subscription is disabled and
/// stays silent; only close still ends it. It used to keep firing like `KSEVENT_TYPE_ENABLE`.
#[test]
fn oneshot_event_fires_once_then_is_disabled() {
    use std::time::Duration;
    let a = alloc(64, Memory::NonPaged);
    for flags in [
        KSEVENT_TYPE_ONESHOT,
        KSEVENT_TYPE_ENABLE | KSEVENT_TYPE_ONESHOT,
    ] {
        let mut once = event(&a, KSEVENT_STREAMALLOCATOR_FREEFRAME, flags)
            .unwrap()
            .expect("ONESHOT subscribes");
        // A plain subscription alongside, for comparison: it sees every free.
        let mut every = event(&a, KSEVENT_STREAMALLOCATOR_FREEFRAME, KSEVENT_TYPE_ENABLE)
            .unwrap()
            .expect("ENABLE subscribes");
        assert!(!frees_are_cached(&a), "subscribed: frees are not cached");
        assert!(every.wait(Duration::from_secs(5)).unwrap());
        assert!(once.wait(Duration::from_secs(5)).unwrap(), "the one event");
        drop(a.try_allocate().unwrap());
        assert!(every.wait(Duration::from_secs(5)).unwrap());
        assert_eq!(
            once.wait(Duration::from_millis(50)),
            Ok(false),
            "flags {flags:#x}: silent after its event"
        );
        drop(every);
        // The spent one-shot no longer counts as a subscriber: the caches are back.
        assert!(frees_are_cached(&a), "flags {flags:#x}: disabled");
        assert_eq!(
            once.wait(Duration::from_millis(10)),
            Ok(false),
            "still silent"
        );
        assert_eq!(a.disable_event(once), Ok(()));
    }
    // A spent one-shot learns of the close.
    let mut once = event(&a, KSEVENT_STREAMALLOCATOR_FREEFRAME, KSEVENT_TYPE_ONESHOT)
        .unwrap()
        .unwrap();
    drop(a.try_allocate().unwrap());
    assert_eq!(ks_alloc::bench::block_on(once.next_event()), Ok(()));
    let closer = std::thread::spawn({
        let a = a.clone();
        move || {
            std::thread::sleep(Duration::from_millis(20));
            a.close();
        }
    });
    assert_eq!(
        ks_alloc::bench::block_on(once.next_event()),
        Err(Status::Cancelled)
    );
    closer.join().unwrap();
}

#[test]
fn a_oneshot_is_disabled_when_its_event_is_delivered_not_when_polled() {
    use std::time::Duration;
    let a = alloc(64, Memory::NonPaged);
    let mut once = event(&a, KSEVENT_STREAMALLOCATOR_FREEFRAME, KSEVENT_TYPE_ONESHOT)
        .unwrap()
        .expect("ONESHOT subscribes");
    // Its event, delivered on this thread. Not polled yet, the one-shot no longer counts as
    // a subscriber: the frees after it are cached again.
    drop(a.try_allocate().unwrap());
    assert!(
        frees_are_cached(&a),
        "disabled by its event, before any poll"
    );
    // It still reports the one event it had, and nothing after it.
    assert!(once.wait(Duration::from_secs(5)).unwrap(), "the one event");
    assert_eq!(once.wait(Duration::from_millis(20)), Ok(false));
    assert_eq!(a.disable_event(once), Ok(()));
    // Disabled by a delivery and dropped unpolled, or dropped before its event: either way
    // the subscriber count stays right (a plain subscription alone turns the caches off,
    // and its drop turns them on again).
    let once = event(&a, KSEVENT_STREAMALLOCATOR_FREEFRAME, KSEVENT_TYPE_ONESHOT)
        .unwrap()
        .unwrap();
    drop(a.try_allocate().unwrap());
    drop(once);
    let unfired = event(&a, KSEVENT_STREAMALLOCATOR_FREEFRAME, KSEVENT_TYPE_ONESHOT)
        .unwrap()
        .unwrap();
    drop(unfired);
    assert!(frees_are_cached(&a));
    let every = a.free_frame_events().unwrap();
    assert!(!frees_are_cached(&a));
    drop(every);
    assert!(frees_are_cached(&a));
}

#[test]
fn method_support_queries_run_nothing() {
    let a = alloc(1, Memory::NonPaged);
    let m = |id: u32, flags: u32| hdr(KSMETHODSETID_StreamAllocator, id, flags);
    // BASICSUPPORT answers the method's type flags and takes no frame.
    let mut out = [0u8; 8];
    let (r, pending) = a.method(
        &m(KSMETHOD_STREAMALLOCATOR_ALLOC, KSMETHOD_TYPE_BASICSUPPORT),
        &mut out,
    );
    assert_eq!((r.ntstatus(), r.information), (0, 4));
    assert!(pending.is_none());
    assert_eq!(
        u32::from_le_bytes(out[..4].try_into().unwrap()),
        KSMETHOD_TYPE_WRITE
    );
    assert_eq!(
        a.status().allocated_frames,
        0,
        "the probe allocated nothing"
    );
    // On FREE it frees nothing, whatever address the buffer holds.
    let f = a.try_allocate().unwrap();
    let mut addr = f.addr().to_ne_bytes();
    let (r, _) = a.method(
        &m(KSMETHOD_STREAMALLOCATOR_FREE, KSMETHOD_TYPE_BASICSUPPORT),
        &mut addr,
    );
    assert_eq!(r.ntstatus(), 0);
    assert_eq!(
        u32::from_le_bytes(addr[..4].try_into().unwrap()),
        KSMETHOD_TYPE_READ
    );
    assert_eq!(a.status().allocated_frames, 1, "the frame is still out");
    drop(f);
    // Too small for the ULONG: the size it needs.
    let (r, _) = a.method(
        &m(KSMETHOD_STREAMALLOCATOR_ALLOC, KSMETHOD_TYPE_BASICSUPPORT),
        &mut [0u8; 2],
    );
    assert_eq!(
        r.status.as_ref().map_err(Status::name),
        Err("STATUS_BUFFER_TOO_SMALL")
    );
    assert_eq!(r.information, 4);
    // SETSUPPORT: supported, nothing written, nothing run.
    let (r, pending) = a.method(
        &m(KSMETHOD_STREAMALLOCATOR_ALLOC, KSMETHOD_TYPE_SETSUPPORT),
        &mut [0u8; 8],
    );
    assert_eq!((r.ntstatus(), r.information), (0, 0));
    assert!(pending.is_none());
    assert_eq!(a.status().allocated_frames, 0);
}

#[test]
fn request_flags_with_unknown_bits_or_topology_run_nothing() {
    let a = alloc(2, Memory::NonPaged);
    let m = |id: u32, flags: u32| hdr(KSMETHODSETID_StreamAllocator, id, flags);
    let status = |r: &ks_alloc::KsReply| r.status.as_ref().map_err(Status::name).err();
    // Unknown bits: a malformed request, refused before anything runs.
    for flags in [0x4000_0000, KSMETHOD_TYPE_WRITE | 0x0000_0010, 0x8000_0000] {
        let (r, pending) = a.method(&m(KSMETHOD_STREAMALLOCATOR_ALLOC, flags), &mut [0u8; 8]);
        assert_eq!(
            status(&r),
            Some("STATUS_INVALID_PARAMETER"),
            "{flags:#x}: {r:?}"
        );
        assert!(format!("{r:?}").contains("unknown bits"), "{r:?}");
        assert!(pending.is_none());
    }
    // TOPOLOGY: well formed, but an allocator has no nodes.
    let (r, _) = a.method(
        &m(
            KSMETHOD_STREAMALLOCATOR_ALLOC,
            KSMETHOD_TYPE_WRITE | KSMETHOD_TYPE_TOPOLOGY,
        ),
        &mut [0u8; 8],
    );
    assert_eq!(status(&r), Some("STATUS_INVALID_DEVICE_REQUEST"), "{r:?}");
    assert_eq!(
        a.status().allocated_frames,
        0,
        "no refused ALLOC took a frame"
    );
    // A FREE with unknown bits frees nothing.
    let f = a.try_allocate().unwrap();
    let mut addr = f.addr().to_ne_bytes();
    let (r, _) = a.method(&m(KSMETHOD_STREAMALLOCATOR_FREE, 0x0100_0000), &mut addr);
    assert_eq!(status(&r), Some("STATUS_INVALID_PARAMETER"), "{r:?}");
    assert_eq!(a.status().allocated_frames, 1, "the frame is still out");
    drop(f);
    // The buffer-type flags are accepted as given.
    for flags in [
        KSMETHOD_TYPE_NONE,
        KSMETHOD_TYPE_WRITE,
        KSMETHOD_TYPE_MODIFY,
    ] {
        let mut out = [0u8; 8];
        let (r, _) = a.method(&m(KSMETHOD_STREAMALLOCATOR_ALLOC, flags), &mut out);
        assert_eq!(r.ntstatus(), 0, "{flags:#x}: {r:?}");
        let (r, _) = a.method(
            &m(KSMETHOD_STREAMALLOCATOR_FREE, KSMETHOD_TYPE_READ),
            &mut out,
        );
        assert_eq!(r.ntstatus(), 0, "{r:?}");
    }
    // Properties: GET alone; unknown bits are malformed, other requests not offered.
    let p = |flags: u32| {
        hdr(
            KSPROPSETID_StreamAllocator,
            KSPROPERTY_STREAMALLOCATOR_STATUS,
            flags,
        )
    };
    let r = a.property(&p(KSPROPERTY_TYPE_GET | 0x0800_0000), &mut [0u8; 64]);
    assert_eq!(status(&r), Some("STATUS_INVALID_PARAMETER"), "{r:?}");
    for flags in [
        KSPROPERTY_TYPE_GET | KSPROPERTY_TYPE_TOPOLOGY,
        KSPROPERTY_TYPE_GET | KSPROPERTY_TYPE_BASICSUPPORT,
    ] {
        let r = a.property(&p(flags), &mut [0u8; 64]);
        assert_eq!(
            status(&r),
            Some("STATUS_INVALID_DEVICE_REQUEST"),
            "{flags:#x}: {r:?}"
        );
    }
    assert_eq!(
        a.property(&p(KSPROPERTY_TYPE_GET), &mut [0u8; 64])
            .ntstatus(),
        0
    );
}

#[test]
fn alloc_method_takes_a_frame_another_thread_cached_instead_of_pending() {
    // 64 frames: as many cache slots as there are thread cache ids, so the helper thread
    // has one whatever id it gets.
    let a = alloc(64, Memory::NonPaged);
    let (cached, go) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let (cached_tx, cached_rx) = cached;
    let (go_tx, go_rx) = go;
    let b = a.clone();
    let t = std::thread::spawn(move || {
        // Its first free may go uncached (the id pool's lock is only tried): repeat.
        while b.status().cached_frames == 0 {
            drop(b.try_allocate().unwrap());
        }
        cached_tx.send(()).unwrap();
        go_rx.recv().unwrap(); // stay alive (and keep the frame cached) meanwhile
    });
    cached_rx.recv().unwrap();
    let s = a.status();
    assert_eq!(
        (s.allocated_frames, s.cached_frames),
        (0, 1),
        "a cached frame is free"
    );
    // Every other frame out: the one in the helper's cache is the only free one.
    let held: Vec<_> = std::iter::from_fn(|| {
        let f = a.try_allocate().ok()?;
        (a.status().cached_frames == 1).then_some(f)
    })
    .collect();
    assert_eq!(held.len(), 63);
    let (r, pending) = a.method(
        &hdr(
            KSMETHODSETID_StreamAllocator,
            KSMETHOD_STREAMALLOCATOR_ALLOC,
            2,
        ),
        &mut [0u8; PTR],
    );
    assert_eq!(
        r.ntstatus(),
        0,
        "a frame is free: no STATUS_PENDING (behaviour 22)"
    );
    assert!(pending.is_none());
    let s = a.status();
    assert_eq!(
        (
            s.allocated_frames,
            s.cached_frames,
            s.max_pending,
            s.handoffs
        ),
        (64, 0, 0, 0)
    );
    drop(held);
    go_tx.send(()).unwrap();
    t.join().unwrap();
}

#[test]
fn unknown_ids_name_the_ids_the_set_has() {
    let a = alloc(1, Memory::NonPaged);
    let r = a.property(
        &hdr(KSPROPSETID_StreamAllocator, 7, KSPROPERTY_TYPE_GET),
        &mut [0; 64],
    );
    match &r.status {
        Err(Status::NotFound(m)) => {
            assert!(m.contains("0 (FUNCTIONTABLE), 1 (STATUS)"), "{m}")
        }
        other => panic!("expected STATUS_NOT_FOUND, got {other:?}"),
    }
    let (r, pending) = a.method(
        &hdr(KSMETHODSETID_StreamAllocator, 9, KSMETHOD_TYPE_WRITE),
        &mut [0; 8],
    );
    assert!(pending.is_none());
    match &r.status {
        Err(Status::NotFound(m)) => assert!(m.contains("0 (ALLOC), 1 (FREE)"), "{m}"),
        other => panic!("expected STATUS_NOT_FOUND, got {other:?}"),
    }
}

#[test]
fn alloc_with_source_or_read_flags_runs() {
    let a = alloc(1, Memory::NonPaged);
    for flags in [KSMETHOD_TYPE_SOURCE, KSMETHOD_TYPE_READ] {
        let mut addr = [0u8; 8];
        let (r, pending) = a.method(
            &hdr(
                KSMETHODSETID_StreamAllocator,
                KSMETHOD_STREAMALLOCATOR_ALLOC,
                flags,
            ),
            &mut addr,
        );
        assert_eq!((r.ntstatus(), r.information), (0, PTR), "{flags:#x}: {r:?}");
        assert!(pending.is_none());
        assert_eq!(a.status().allocated_frames, 1, "{flags:#x}: a frame taken");
        let (r, _) = a.method(
            &hdr(
                KSMETHODSETID_StreamAllocator,
                KSMETHOD_STREAMALLOCATOR_FREE,
                KSMETHOD_TYPE_READ,
            ),
            &mut addr,
        );
        assert_eq!(r.ntstatus(), 0, "{r:?}");
        assert_eq!(a.status().allocated_frames, 0);
    }
}

#[test]
fn every_known_property_request_but_get_is_not_offered_rather_than_malformed() {
    let a = alloc(1, Memory::NonPaged);
    for id in [
        KSPROPERTY_STREAMALLOCATOR_STATUS,
        KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
    ] {
        for flag in [
            KSPROPERTY_TYPE_SET,
            KSPROPERTY_TYPE_SETSUPPORT,
            KSPROPERTY_TYPE_BASICSUPPORT,
            KSPROPERTY_TYPE_RELATIONS,
            KSPROPERTY_TYPE_SERIALIZESET,
            KSPROPERTY_TYPE_UNSERIALIZESET,
            KSPROPERTY_TYPE_SERIALIZERAW,
            KSPROPERTY_TYPE_UNSERIALIZERAW,
            KSPROPERTY_TYPE_SERIALIZESIZE,
            KSPROPERTY_TYPE_DEFAULTVALUES,
            KSPROPERTY_TYPE_TOPOLOGY,
        ] {
            let flags = KSPROPERTY_TYPE_GET | flag;
            let r = a.property(&hdr(KSPROPSETID_StreamAllocator, id, flags), &mut [0; 64]);
            assert_eq!(
                r.status.as_ref().map_err(Status::name).err(),
                Some("STATUS_INVALID_DEVICE_REQUEST"),
                "id {id}, flags {flags:#x}: {r:?}"
            );
            assert_eq!(
                r.information, 0,
                "id {id}, flags {flags:#x}: nothing written"
            );
        }
    }
}
