//! KS states and allocator lifetime: STOP → ACQUIRE creates the plan's allocators (vendor
//! initialize only when chosen, behaviour 38), failures close what was created, ACQUIRE → STOP
//! closes; the delivery rule of behaviour 40 tested by trying.

mod negotiation_support;

use ks_alloc::{ItemFlags, Memory, MemoryType, Status};
use ks_graph::{AllocatorKind, GraphError, KsState, StateError, VendorCapabilities};
use negotiation_support::*;

const NP: MemoryType = MemoryType::KERNEL_NONPAGED;

#[test]
fn chosen_vendor_is_initialized_once_at_acquire_and_deleted_at_stop() {
    let (v, counts) = vendor("dma", caps());
    let out = fx(NP, ItemFlags::empty(), 3, 64, 4096, 4096);
    let mut g = vend_graph(v, Some(out), None, K);
    assert_eq!(counts.inits(), 0, "negotiation alone never initializes");
    g.set_state(KsState::Acquire).unwrap();
    assert_eq!(counts.inits(), 1);
    let plan = g.plan().unwrap();
    assert_eq!(plan.pipes[0].allocator.kind, AllocatorKind::Vendor);
    let alloc = g.pipe_allocator(g.pin("dst.in").unwrap()).unwrap().clone();
    assert_eq!(alloc.framing().frames, 3);
    assert_eq!(alloc.framing().frame_size, 4096);
    assert_eq!(alloc.name(), "cam.out (dma)");
    let f = alloc.try_allocate().unwrap();
    assert_eq!(f.addr() % 64, 0);
    drop(f);
    // The pipe's root (source) pin was assigned the allocator, as KSPROPERTY_STREAM_ALLOCATOR would.
    let (h, a) = g.assigned_allocator(g.pin("cam.out").unwrap()).unwrap();
    assert!(a.same(&alloc));
    assert_eq!(g.allocator_references(h), 1);
    drop(alloc);
    g.set_state(KsState::Stop).unwrap();
    assert_eq!(counts.deletes(), 1);
    assert!(g.plan().is_none());
    assert!(g.allocators().is_empty());
    assert!(g.assigned_allocator(g.pin("cam.out").unwrap()).is_none());
}

#[test]
fn vendor_on_a_user_mode_connection_is_never_initialized() {
    let (v, counts) = vendor("dma", caps());
    let mut g = Net::new()
        .f("cam", source(K, out_pin(None).with_vendor(v)))
        .f("app", sink(U, in_pin(None)))
        .c("cam.out", "app.in")
        .build();
    g.set_state(KsState::Run).unwrap();
    assert_eq!(counts.inits(), 0);
    assert_eq!(g.allocators()[0].allocator.memory(), Memory::User);
    g.set_state(KsState::Stop).unwrap();
    assert_eq!(counts.inits(), 0);
    assert_eq!(counts.deletes(), 0);
}

#[test]
fn vendor_refused_for_capabilities_is_never_initialized() {
    let (v, counts) = vendor("small", caps().with_max_frames(1));
    let mut g = vend_graph(v, Some(frames(4)), None, K);
    g.set_state(KsState::Acquire).unwrap();
    assert_eq!(
        g.plan().unwrap().pipes[0].allocator.kind,
        AllocatorKind::Default
    );
    assert_eq!(counts.inits(), 0);
}

#[test]
fn failing_initialize_fails_the_transition_and_closes_everything_created() {
    let (ok_v, ok_counts) = vendor("first", caps());
    let (bad_v, bad_counts) = failing_vendor(
        "second",
        caps(),
        Status::InsufficientResources("no DMA memory".into()),
    );
    let mut g = Net::new()
        .f("a", source(K, out_pin(None).with_vendor(ok_v)))
        .f(
            "cp",
            copy(K, in_pin(None), out_pin(None).with_vendor(bad_v)),
        )
        .f("z", sink(K, in_pin(None)))
        .c("a.out", "cp.in")
        .c("cp.out", "z.in")
        .build();
    let err = g.set_state(KsState::Run).unwrap_err();
    match &err {
        StateError::Allocator {
            pipe,
            allocator,
            status,
        } => {
            assert_eq!((*pipe, allocator.as_str()), (1, "second"));
            assert!(matches!(status, Status::InsufficientResources(_)));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.status().to_ntstatus(), 0xC000009Au32 as i32);
    assert_eq!(g.state(), KsState::Stop);
    assert!(g.allocators().is_empty());
    assert_eq!(
        (ok_counts.inits(), ok_counts.deletes()),
        (1, 1),
        "created allocator was closed"
    );
    assert_eq!(
        (bad_counts.inits(), bad_counts.deletes()),
        (1, 0),
        "a failed initialize has nothing to delete"
    );
}

#[test]
fn states_walk_through_the_intermediate_ones() {
    let mut g = two(None, None, K, K);
    assert_eq!(g.state(), KsState::Stop);
    g.set_state(KsState::Pause).unwrap();
    assert_eq!(g.state(), KsState::Pause);
    assert_eq!(g.allocators().len(), 1);
    g.set_state(KsState::Run).unwrap();
    g.set_state(KsState::Acquire).unwrap();
    assert_eq!(g.allocators().len(), 1, "allocators live until STOP");
    let a = g.allocators()[0].allocator.clone();
    g.set_state(KsState::Stop).unwrap();
    assert!(a.is_closed());
    // Idempotent requests are fine.
    g.set_state(KsState::Stop).unwrap();
}

#[test]
fn framing_edits_and_disconnects_need_stop() {
    let mut g = two(None, None, K, K);
    g.set_state(KsState::Acquire).unwrap();
    let pin = g.pin("a.out").unwrap();
    let e = g.set_pin_framing(pin, frames(3)).unwrap_err();
    assert!(matches!(
        e,
        GraphError::WrongState {
            state: KsState::Acquire,
            required: KsState::Stop,
            ..
        }
    ));
    assert_eq!(e.status().to_ntstatus(), 0xC0000184u32 as i32);
    assert!(matches!(
        g.disconnect(pin),
        Err(GraphError::WrongState { .. })
    ));
    g.set_state(KsState::Stop).unwrap();
    g.set_pin_framing(pin, frames(3)).unwrap();
    g.set_state(KsState::Acquire).unwrap();
    assert_eq!(g.plan().unwrap().pipes[0].framing.frames, 3);
}

#[test]
fn unnegotiable_graph_fails_acquire_and_stays_in_stop() {
    let mut g = two(
        Some(phys(frames(1), 10, 20, 1)),
        Some(phys(frames(1), 30, 40, 1)),
        K,
        K,
    );
    let e = g.set_state(KsState::Acquire).unwrap_err();
    assert!(matches!(e, StateError::Negotiation(_)));
    assert_eq!(g.state(), KsState::Stop);
}

#[test]
fn required_pin_disconnected_fails_acquire() {
    let mut g = Net::new()
        .f("a", source(K, out_pin(None).required()))
        .f("b", sink(K, in_pin(None)))
        .c("a.out", "b.in")
        .build();
    g.disconnect(g.pin("b.in").unwrap()).unwrap();
    let e = g.set_state(KsState::Acquire).unwrap_err();
    assert_eq!(
        e,
        StateError::Graph(GraphError::Unconnected {
            pin: "a.out".into(),
            direction: ks_graph::PinDirection::Out
        })
    );
}

#[test]
fn kernel_frames_are_refused_at_user_mode_pins_and_user_frames_pass() {
    // kernel source → (kernel pipe) → kernel copy → (user pipe) → user sink
    let mut g = Net::new()
        .f("src", source(K, out_pin(None)))
        .f("cp", copy(K, in_pin(None), out_pin(None)))
        .f("app", sink(U, in_pin(None)))
        .c("src.out", "cp.in")
        .c("cp.out", "app.in")
        .build();
    g.set_state(KsState::Run).unwrap();
    let app = g.pin("app.in").unwrap();
    let cp_in = g.pin("cp.in").unwrap();
    let kernel = g.pipe_allocator(cp_in).unwrap().clone();
    let user = g.pipe_allocator(app).unwrap().clone();
    assert_eq!(kernel.memory(), Memory::NonPaged);
    assert_eq!(user.memory(), Memory::User);

    let kf = kernel.try_allocate().unwrap();
    let e = g.check_frame_delivery(&kf, app).unwrap_err();
    assert_eq!(e.pin, "app.in");
    assert_eq!(e.status().to_ntstatus(), 0xC0000010u32 as i32);
    assert!(
        g.check_frame_delivery(&kf, cp_in).is_ok(),
        "kernel frames reach kernel pins"
    );
    let uf = user
        .allocate_blocking(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    assert!(g.check_frame_delivery(&uf, app).is_ok());
    for m in [Memory::NonPaged, Memory::Paged] {
        assert!(g.check_delivery(m, app).is_err());
    }
    drop((kf, uf));
    g.set_state(KsState::Stop).unwrap();
}

#[test]
fn vendor_frames_never_reach_a_user_mode_pin() {
    let (v, _counts) = vendor("dma", caps());
    let mut g = Net::new()
        .f("cam", source(K, out_pin(None).with_vendor(v)))
        .f("cp", copy(K, in_pin(None), out_pin(None)))
        .f("app", sink(U, in_pin(None)))
        .c("cam.out", "cp.in")
        .c("cp.out", "app.in")
        .build();
    g.set_state(KsState::Acquire).unwrap();
    assert_eq!(
        g.plan().unwrap().pipes[0].allocator.kind,
        AllocatorKind::Vendor
    );
    let vf = g.allocators()[0].allocator.try_allocate().unwrap();
    assert!(
        g.check_frame_delivery(&vf, g.pin("app.in").unwrap())
            .is_err()
    );
}

#[test]
fn dropping_an_acquired_graph_closes_its_allocators() {
    let (v, counts) = vendor("dma", caps());
    let mut g = vend_graph(v, None, None, K);
    g.set_state(KsState::Run).unwrap();
    drop(g);
    assert_eq!((counts.inits(), counts.deletes()), (1, 1));
}

#[test]
fn stop_cancels_pending_requests_and_deletes_the_vendor_after_the_last_frame() {
    let (v, counts) = vendor("dma", caps());
    let out = fx(NP, ItemFlags::empty(), 1, 1, 4096, 4096);
    let mut g = vend_graph(v, Some(out), None, K);
    g.set_state(KsState::Run).unwrap();
    let alloc = g.pipe_allocator(g.pin("cam.out").unwrap()).unwrap().clone();
    assert_eq!(alloc.framing().frames, 1);
    let held = alloc.try_allocate().unwrap();
    // A second request pends: the only frame is held.
    let waiter = {
        let a = alloc.clone();
        std::thread::spawn(move || a.allocate_blocking(None).map(|_| ()))
    };
    while alloc.status().pending == 0 {
        std::thread::yield_now();
    }
    g.set_state(KsState::Stop).unwrap();
    assert_eq!(waiter.join().unwrap(), Err(Status::Cancelled));
    assert!(alloc.try_allocate().is_err(), "closed: no new frames");
    assert_eq!(counts.deletes(), 0, "a frame is still out");
    drop(held);
    drop(alloc);
    assert_eq!(
        counts.deletes(),
        1,
        "deleted after the last frame came back"
    );
}

/// An allocator of `frames` frames of `size` bytes in non-paged memory.
fn client_allocator(frames: u32, size: u32) -> ks_alloc::Allocator {
    let f = ks_alloc::Framing {
        flags: 0,
        pool_type: ks_alloc::PoolType::NON_PAGED,
        frames,
        frame_size: size,
        alignment: ks_alloc::Alignment::BYTES_64,
    };
    ks_alloc::Allocator::new(&f, Memory::NonPaged).unwrap()
}

#[test]
fn an_allocator_the_client_assigns_to_the_root_pin_is_the_one_the_pipe_uses() {
    let out = fx(NP, ItemFlags::empty(), 3, 64, 4096, 4096);
    let mut g = two(Some(out), None, K, K);
    let mine = client_allocator(4, 4096);
    let root = g.pin("a.out").unwrap();
    let h = g.register_allocator(mine.clone());
    g.assign_allocator(root, Some(h)).unwrap();
    g.close_allocator_handle(h).unwrap(); // the pin's reference keeps it (behaviour 46)
    g.set_state(KsState::Acquire).unwrap();
    let used = g.pipe_allocator(g.pin("b.in").unwrap()).unwrap();
    assert!(
        used.same(&mine),
        "the pipe streams through the client's allocator"
    );
    assert!(g.allocators()[0].client_owned);
    // The acquired graph's plan names the allocator that serves the pipe, and lists
    // negotiation's choice as replaced by it.
    let p = &g.plan().unwrap().pipes[0];
    assert_eq!(
        (
            p.allocator.kind,
            p.allocator.name.as_str(),
            p.allocator.pin.as_str()
        ),
        (AllocatorKind::Client, mine.name(), "a.out")
    );
    assert_eq!(p.allocator.memory, ks_graph::MemoryKind::NonPaged);
    assert!(p.allocator.vendor.is_none());
    let r = &p.rejected[0];
    assert_eq!(
        (r.candidate.as_str(), r.kind, r.pin.as_deref()),
        ("default", AllocatorKind::Default, None)
    );
    assert_eq!(r.codes, [ks_graph::RejectCode::ClientAllocator]);
    assert!(r.reason.contains("'a.out'"), "{}", r.reason);
    // Assignments are fixed from ACQUIRE to STOP.
    let refused = g.assign_allocator(root, None).unwrap_err();
    assert_eq!(refused.name(), "STATUS_INVALID_DEVICE_STATE");
    g.set_state(KsState::Stop).unwrap();
    assert!(!mine.is_closed(), "STOP leaves the client's allocator open");
    let (_, still) = g.assigned_allocator(root).expect("and assigned");
    assert!(still.same(&mine));
}

#[test]
fn a_client_allocator_that_cannot_serve_the_pipe_fails_acquire_with_the_reason() {
    let out = fx(NP, ItemFlags::empty(), 3, 64, 4096, 4096);
    let mut g = two(Some(out), None, K, K);
    let small = client_allocator(8, 256);
    let root = g.pin("a.out").unwrap();
    let h = g.register_allocator(small.clone());
    g.assign_allocator(root, Some(h)).unwrap();
    let err = g.set_state(KsState::Acquire).unwrap_err();
    let StateError::ClientAllocator { status, .. } = &err else {
        panic!("expected a client allocator error, got {err}")
    };
    assert!(!err.to_string().starts_with("creating"), "{err}");
    assert_eq!(status.name(), "STATUS_INVALID_PARAMETER");
    assert!(
        err.to_string()
            .contains("frames are 256 bytes, the pipe's 4096"),
        "{err}"
    );
    assert_eq!(g.state(), KsState::Stop);
    assert!(!small.is_closed());
}

#[test]
fn one_client_allocator_on_the_root_pins_of_two_pipes_is_refused_at_acquire() {
    // a → c1 (copy) → c2 (copy) → b: three pipes; the chosen vendor serves pipe 0.
    let (v, counts) = vendor("dma", caps());
    let out = fx(NP, ItemFlags::empty(), 3, 64, 4096, 4096);
    let mut g = Net::new()
        .f("a", source(K, out_pin(Some(out)).with_vendor(v)))
        .f("c1", copy(K, in_pin(None), out_pin(None)))
        .f("c2", copy(K, in_pin(None), out_pin(None)))
        .f("b", sink(K, in_pin(None)))
        .c("a.out", "c1.in")
        .c("c1.out", "c2.in")
        .c("c2.out", "b.in")
        .build();
    let plan = ks_graph::negotiate(&g).unwrap();
    assert_eq!(plan.pipes.len(), 3);
    assert_eq!(plan.pipes[0].allocator.kind, AllocatorKind::Vendor);
    let second = plan.pipe_of(g.pin("c2.out").unwrap()).unwrap().id;
    // Large enough for either pipe on its own: only the sharing is refused.
    let mine = client_allocator(8, 4096);
    let h = g.register_allocator(mine.clone());
    let (r1, r2) = (g.pin("c1.out").unwrap(), g.pin("c2.out").unwrap());
    g.assign_allocator(r1, Some(h)).unwrap();
    g.assign_allocator(r2, Some(h)).unwrap();
    let err = g.set_state(KsState::Acquire).unwrap_err();
    let StateError::ClientAllocator { pipe, status, .. } = &err else {
        panic!("expected a client allocator error, got {err}")
    };
    assert_eq!(*pipe, second);
    assert_eq!(status.name(), "STATUS_INVALID_PARAMETER");
    assert_eq!(err.status().name(), "STATUS_INVALID_PARAMETER");
    let text = err.to_string();
    assert!(
        text.contains("'c2.out'") && text.contains("'c1.out'"),
        "both pins named: {text}"
    );
    assert!(text.contains("serves one pipe"), "{text}");
    // Nothing created; the graph stays in STOP; the allocator stays open and assigned.
    assert_eq!(g.state(), KsState::Stop);
    assert!(g.plan().is_none() && g.allocators().is_empty());
    assert_eq!(counts.inits(), 0, "pipe 0's vendor was not initialized");
    assert!(!mine.is_closed());
    for root in [r1, r2] {
        let (still, a) = g.assigned_allocator(root).expect("still assigned");
        assert_eq!(still, h);
        assert!(a.same(&mine));
    }
    assert_eq!(mine.status().allocated_frames, 0);
    // Registered twice (two handles), it is still one allocator: refused the same way.
    let h2 = g.register_allocator(mine.clone());
    g.assign_allocator(r2, Some(h2)).unwrap();
    let err = g.set_state(KsState::Run).unwrap_err();
    assert!(matches!(err, StateError::ClientAllocator { .. }), "{err}");
    assert!(
        err.to_string().contains("also assigned to 'c1.out'"),
        "{err}"
    );
    assert_eq!(g.state(), KsState::Stop);
    // On one pipe only, it serves that pipe.
    g.assign_allocator(r2, None).unwrap();
    g.set_state(KsState::Acquire).unwrap();
    assert!(g.pipe_allocator(r1).unwrap().same(&mine));
    assert!(!g.pipe_allocator(r2).unwrap().same(&mine));
    assert_eq!(counts.inits(), 1);
    g.set_state(KsState::Stop).unwrap();
    assert!(!mine.is_closed());
}

#[test]
fn a_client_allocator_replaces_the_vendor_negotiation_chose_which_is_never_initialized() {
    let (v, counts) = vendor("dma", caps());
    let out = fx(NP, ItemFlags::empty(), 3, 64, 4096, 4096);
    let mut g = Net::new()
        .f("a", source(K, out_pin(Some(out)).with_vendor(v)))
        .f("b", sink(K, in_pin(None)))
        .c("a.out", "b.in")
        .build();
    let negotiated = ks_graph::negotiate(&g).unwrap();
    assert_eq!(negotiated.pipes[0].allocator.kind, AllocatorKind::Vendor);
    let mine = client_allocator(8, 4096);
    let h = g.register_allocator(mine.clone());
    g.assign_allocator(g.pin("a.out").unwrap(), Some(h))
        .unwrap();
    g.set_state(KsState::Acquire).unwrap();
    let p = &g.plan().unwrap().pipes[0];
    assert_eq!(p.allocator.kind, AllocatorKind::Client);
    assert!(p.allocator.vendor.is_none());
    assert_eq!(g.plan().unwrap().vendors_chosen(), 0);
    // The vendor is listed first among the rejected, with its pin, and the rest of
    // negotiation's record follows unchanged.
    let r = &p.rejected[0];
    assert_eq!(
        (r.candidate.as_str(), r.kind, r.pin.as_deref()),
        ("dma", AllocatorKind::Vendor, Some("a.out"))
    );
    assert_eq!(r.codes, [ks_graph::RejectCode::ClientAllocator]);
    assert_eq!(p.rejected[1..], negotiated.pipes[0].rejected[..]);
    assert_eq!(
        counts.inits(),
        0,
        "the replaced vendor is never initialized"
    );
    g.set_state(KsState::Stop).unwrap();
    assert_eq!(counts.deletes(), 0);
}

fn client_allocator_in(memory: Memory, frames: u32, size: u32) -> ks_alloc::Allocator {
    let pool_type = match memory {
        Memory::Paged => ks_alloc::PoolType::PAGED,
        _ => ks_alloc::PoolType::NON_PAGED,
    };
    let f = ks_alloc::Framing {
        flags: 0,
        pool_type,
        frames,
        frame_size: size,
        alignment: ks_alloc::Alignment::BYTES_64,
    };
    ks_alloc::Allocator::new(&f, memory).unwrap()
}

/// ACQUIRE with `client` assigned to the root pin "a.out" of `g`.
fn acquire_with_client(
    g: &mut ks_graph::Graph,
    client: &ks_alloc::Allocator,
) -> Result<(), StateError> {
    let h = g.register_allocator(client.clone());
    g.assign_allocator(g.pin("a.out").unwrap(), Some(h))
        .unwrap();
    g.set_state(KsState::Acquire)
}

#[test]
fn a_client_allocator_is_judged_by_the_memory_the_pins_require_not_by_the_plans_choice() {
    // (required by both pins, client memory, accepted)
    let cases = [
        // Nothing required: the plan picks non-paged, but any host memory serves.
        (MemoryType::WILDCARD, Memory::Paged, true),
        (MemoryType::WILDCARD, Memory::User, true),
        (MemoryType::WILDCARD, Memory::NonPaged, true),
        // Paged is met by non-paged and user memory too (docs/negotiation.md §3).
        (MemoryType::KERNEL_PAGED, Memory::User, true),
        (MemoryType::KERNEL_PAGED, Memory::NonPaged, true),
        (MemoryType::KERNEL_PAGED, Memory::Paged, true),
        // Non-paged and user memory only by themselves.
        (NP, Memory::Paged, false),
        (NP, Memory::User, false),
        (MemoryType::SYSTEM, Memory::NonPaged, true),
        (MemoryType::USER, Memory::NonPaged, false),
        (MemoryType::USER, Memory::User, true),
    ];
    for (required, memory, accepted) in cases {
        let f = fx(required, ItemFlags::empty(), 2, 64, 256, 256);
        let mut g = two(Some(f.clone()), Some(f), K, K);
        let client = client_allocator_in(memory, 8, 256);
        let got = acquire_with_client(&mut g, &client);
        let what = format!("pins require {required}, client memory {memory:?}: {got:?}");
        assert_eq!(got.is_ok(), accepted, "{what}");
        if accepted {
            assert!(g.allocators()[0].allocator.same(&client), "{what}");
            assert!(g.allocators()[0].client_owned, "{what}");
        } else {
            let err = got.unwrap_err();
            assert!(matches!(err, StateError::ClientAllocator { .. }), "{what}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("its memory is {memory:?}")),
                "{text}"
            );
            assert!(text.contains(&required.to_string()), "{text}");
            assert_eq!(g.state(), KsState::Stop);
        }
    }
    // A user-mode pipe requires USER memory whatever the kernel pin asks (behaviour 40).
    let mut g = two(None, None, K, U);
    let err =
        acquire_with_client(&mut g, &client_allocator_in(Memory::NonPaged, 8, 4096)).unwrap_err();
    assert!(
        err.to_string().contains(&MemoryType::USER.to_string()),
        "{err}"
    );
    let mut g = two(None, None, K, U);
    acquire_with_client(&mut g, &client_allocator_in(Memory::User, 8, 4096)).unwrap();
}

#[test]
fn a_client_allocator_never_serves_a_pipe_that_requires_device_memory() {
    const DEVICE: MemoryType = MemoryType::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
    let (v, counts) = vendor(
        "dma",
        VendorCapabilities::new(vec![DEVICE]).with_max_frames(16),
    );
    let mut g = Net::new()
        .f("a", source(K, out_pin(None)))
        .f(
            "b",
            sink(
                K,
                in_pin(Some(fx(DEVICE, ItemFlags::empty(), 2, 64, 256, 256))).with_vendor(v),
            ),
        )
        .c("a.out", "b.in")
        .build();
    assert_eq!(
        ks_graph::negotiate(&g).unwrap().pipes[0].allocator.name,
        "dma"
    );
    let client = client_allocator_in(Memory::NonPaged, 8, 4096);
    let err = acquire_with_client(&mut g, &client).unwrap_err();
    assert!(matches!(err, StateError::ClientAllocator { .. }), "{err}");
    assert!(err.to_string().contains("device memory"), "{err}");
    assert_eq!(g.state(), KsState::Stop);
    assert_eq!(counts.inits(), 0, "nothing was created");
}

#[test]
fn allocator_handles_name_one_allocator_across_graphs() {
    let mut g1 = two(None, None, K, K);
    let mut g2 = two(None, None, K, K);
    let h1 = g1.register_allocator(client_allocator(2, 64));
    let h2 = g2.register_allocator(client_allocator(2, 64));
    assert_ne!(h1, h2);
    // A handle (and a pin) of another graph is refused, not taken for one of this graph's.
    assert!(
        g2.assign_allocator(g2.pin("a.out").unwrap(), Some(h1))
            .is_err()
    );
    // g1's "a.out" has the same indices as g2's: still refused, and g2 is left unchanged.
    let foreign = g1.pin("a.out").unwrap();
    let err = g2.assign_allocator(foreign, Some(h2)).unwrap_err();
    assert_eq!(err.name(), "STATUS_INVALID_PARAMETER");
    assert!(err.to_string().contains("another graph"), "{err}");
    assert!(g2.assigned_allocator(g2.pin("a.out").unwrap()).is_none());
    let mut data = [0u8; 8];
    let request = ks_graph::props::PropertyHeader {
        set: ks_sys::KSPROPSETID_Stream,
        id: ks_sys::KSPROPERTY_STREAM_ALLOCATOR,
        flags: ks_sys::KSPROPERTY_TYPE_GET,
    }
    .to_bytes();
    let err = g2.pin_property(foreign, &request, &mut data).unwrap_err();
    assert!(err.to_string().contains("another graph"), "{err}");
    // Once g2's own pin has an allocator, the foreign pin still has none here.
    g2.assign_allocator(g2.pin("a.out").unwrap(), Some(h2))
        .unwrap();
    assert!(g2.assigned_allocator(g2.pin("a.out").unwrap()).is_some());
    assert!(g2.assigned_allocator(foreign).is_none());
}

#[test]
fn a_pin_of_another_graph_is_in_no_pipe_of_this_one() {
    let mut g1 = two(None, None, K, K);
    let g2 = two(None, None, K, U);
    let foreign = g2.pin("b.in").unwrap();
    let plan = ks_graph::negotiate(&g1).unwrap();
    assert!(plan.pipe_of(g1.pin("b.in").unwrap()).is_some());
    assert!(
        plan.pipe_of(foreign).is_none(),
        "same indices, another graph"
    );
    assert!(!plan.pipes[0].contains(foreign));
    g1.set_state(KsState::Acquire).unwrap();
    assert!(g1.pipe_allocator(g1.pin("b.in").unwrap()).is_some());
    assert!(g1.pipe_allocator(foreign).is_none());
}

#[test]
fn the_filter_accessors_panic_on_a_filter_of_another_graph_as_documented() {
    let g1 = two(None, None, K, K);
    let g2 = two(None, None, K, U);
    let foreign = g2.filter("b").unwrap();
    assert_eq!(g1.filter_mode(g1.filter("b").unwrap()), K);
    for (what, call) in [
        (
            "filter_name",
            Box::new(|| {
                let _ = g1.filter_name(foreign);
            }) as Box<dyn Fn()>,
        ),
        (
            "filter_mode",
            Box::new(|| {
                let _ = g1.filter_mode(foreign);
            }),
        ),
        (
            "filter_descriptor",
            Box::new(|| {
                let _ = g1.filter_descriptor(foreign);
            }),
        ),
        (
            "pins",
            Box::new(|| {
                let _ = g1.pins(foreign).count();
            }),
        ),
    ] {
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).expect_err(what);
        let msg = err
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        assert!(msg.contains("belongs to another graph"), "{what}: {msg}");
    }
}

#[test]
#[should_panic(expected = "belongs to another graph")]
fn peer_panics_on_a_pin_of_another_graph_as_documented() {
    let g1 = two(None, None, K, K);
    let g2 = two(None, None, K, K);
    let _ = g2.peer(g1.pin("a.out").unwrap());
}

#[test]
#[should_panic(expected = "belongs to another graph")]
fn check_delivery_panics_on_a_pin_of_another_graph() {
    let g1 = two(None, None, K, K);
    let g2 = two(None, None, K, K);
    let _ = g2.check_delivery(ks_alloc::Memory::User, g1.pin("b.in").unwrap());
}

/// A non-paged allocator of `frames` frames of `size` bytes aligned to `align` bytes.
fn client_aligned(frames: u32, size: u32, align: u32) -> ks_alloc::Allocator {
    let f = ks_alloc::Framing {
        flags: 0,
        pool_type: ks_alloc::PoolType::NON_PAGED,
        frames,
        frame_size: size,
        alignment: ks_alloc::Alignment::from_bytes(align).unwrap(),
    };
    ks_alloc::Allocator::new(&f, Memory::NonPaged).unwrap()
}

#[test]
fn a_client_allocator_must_be_open_and_at_least_as_large_many_and_aligned_as_the_pipe() {
    // The pipe: 3 frames of 4096 bytes aligned to 64, non-paged.
    let pipe = || {
        two(
            Some(fx(NP, ItemFlags::empty(), 3, 64, 4096, 4096)),
            None,
            K,
            K,
        )
    };
    let refused = |client: ks_alloc::Allocator, why: &str| {
        let mut g = pipe();
        let err = acquire_with_client(&mut g, &client).unwrap_err();
        assert!(matches!(err, StateError::ClientAllocator { .. }), "{err}");
        assert_eq!(err.status().name(), "STATUS_INVALID_PARAMETER");
        assert!(err.to_string().contains(why), "{why}: {err}");
        assert_eq!(g.state(), KsState::Stop);
        assert!(g.allocators().is_empty());
    };
    let accepted = |client: ks_alloc::Allocator| {
        let mut g = pipe();
        acquire_with_client(&mut g, &client)
            .unwrap_or_else(|e| panic!("client allocator refused: {e}"));
        assert!(g.allocators()[0].allocator.same(&client));
        assert!(g.allocators()[0].client_owned);
        g.set_state(KsState::Stop).unwrap();
    };

    // Closed: refused, although it is large enough in every respect.
    let closed = client_aligned(8, 8192, 128);
    closed.close();
    refused(closed, "it is closed");
    // Frames: one short refused, exactly enough accepted.
    refused(
        client_aligned(2, 4096, 64),
        "it holds 2 frames, the pipe needs 3",
    );
    accepted(client_aligned(3, 4096, 64));
    // Frame size: one byte too small refused, exactly the size accepted.
    refused(
        client_aligned(3, 4095, 64),
        "its frames are 4095 bytes, the pipe's 4096",
    );
    accepted(client_aligned(3, 4096, 64));
    // Alignment: weaker refused, equal accepted.
    refused(
        client_aligned(3, 4096, 32),
        "it aligns frames to 32 bytes, the pipe needs 64",
    );
    accepted(client_aligned(3, 4096, 64));
}

#[test]
fn a_root_pin_that_accepts_no_allocator_is_assigned_none_and_the_graph_runs() {
    let mut g = Net::new()
        .f("a", source(K, out_pin(None).with_accepts_allocator(false)))
        .f("b", sink(K, in_pin(None)))
        .c("a.out", "b.in")
        .build();
    g.set_state(KsState::Acquire).unwrap();
    let root = g.pin("a.out").unwrap();
    assert!(
        g.assigned_allocator(root).is_none(),
        "no allocator assigned to a pin that accepts none"
    );
    // The pipe still has its allocator.
    assert_eq!(g.allocators().len(), 1);
    let alloc = g.pipe_allocator(g.pin("b.in").unwrap()).unwrap().clone();
    assert!(alloc.same(&g.allocators()[0].allocator));
    g.set_state(KsState::Run).unwrap();
    assert_eq!(g.state(), KsState::Run);
    drop(g.pipe_allocator(root).unwrap().try_allocate().unwrap());
    g.set_state(KsState::Stop).unwrap();
    assert!(alloc.is_closed());
}
