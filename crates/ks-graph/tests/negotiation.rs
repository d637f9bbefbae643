//! Table-driven negotiation tests: each case builds a graph, negotiates it, and checks the
//! plan (pipes, merged framing, allocator, rejections, relaxations) or the error.

mod negotiation_support;

use ks_alloc::{ItemFlags, MemoryType, RequirementFlags};
use ks_graph::{
    AllocationPlan, AllocatorKind, ConflictField, Graph, MemoryKind, NegotiationError,
    PinDescriptor, PipePlan, RejectCode, VendorCapabilities, negotiate,
};
use negotiation_support::*;

type Outcome = Result<AllocationPlan, NegotiationError>;

struct Case {
    name: &'static str,
    graph: fn() -> Graph,
    check: fn(Outcome),
}

fn ok(r: Outcome) -> AllocationPlan {
    r.unwrap_or_else(|e| panic!("negotiation failed: {e}"))
}

fn err(r: Outcome) -> NegotiationError {
    match r {
        Ok(p) => panic!("expected a negotiation error, got plan {}", p.to_json()),
        Err(e) => e,
    }
}

fn one(r: Outcome) -> PipePlan {
    let p = ok(r);
    assert_eq!(p.pipes.len(), 1, "expected one pipe: {}", p.to_json());
    p.pipes.into_iter().next().unwrap()
}

fn rejected_codes(p: &PipePlan, candidate: &str) -> Vec<RejectCode> {
    p.rejected
        .iter()
        .find(|r| r.candidate == candidate)
        .unwrap_or_else(|| panic!("{candidate} not among rejected: {:?}", p.rejected))
        .codes
        .clone()
}

const NP: MemoryType = MemoryType::KERNEL_NONPAGED;
const PG: MemoryType = MemoryType::KERNEL_PAGED;
const USR: MemoryType = MemoryType::USER;
const ANY: MemoryType = MemoryType::WILDCARD;
const NONE: ItemFlags = ItemFlags(0);
const PREF: ItemFlags = ItemFlags(0x8000_0000);
const DEVICE: MemoryType = MemoryType::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "no framing anywhere: defaults (one page, two frames, non-paged)",
            graph: || two(None, None, K, K),
            check: |r| {
                let p = one(r);
                assert_eq!(p.pins, ["a.out", "b.in"]);
                assert_eq!(
                    (p.framing.frames, p.framing.frame_size, p.framing.alignment),
                    (2, 4096, 1)
                );
                assert_eq!(p.allocator.kind, AllocatorKind::Default);
                assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
                assert_eq!(p.allocator.pin, "a.out");
                assert_eq!(p.items, [None, None]);
            },
        },
        Case {
            name: "frame counts are summed along the pipe",
            graph: || {
                two(
                    Some(fx(NP, NONE, 4, 1, 4096, 4096)),
                    Some(fx(ANY, NONE, 3, 1, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.framing.frames, 7);
                assert_eq!(p.framing.frame_size, 4096);
            },
        },
        Case {
            name: "the strictest alignment wins",
            graph: || {
                two(
                    Some(fx(ANY, NONE, 1, 16, 0, 0)),
                    Some(fx(ANY, NONE, 1, 64, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| assert_eq!(one(r).framing.alignment, 64),
        },
        Case {
            name: "wildcard meets paged: paged default allocator",
            graph: || {
                two(
                    Some(fx(ANY, NONE, 1, 1, 0, 0)),
                    Some(fx(PG, NONE, 1, 1, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.memory, MemoryKind::Paged);
                assert_eq!(p.framing.memory_type, "KSMEMORY_TYPE_KERNEL_PAGED");
            },
        },
        Case {
            name: "paged meets non-paged: non-paged satisfies both",
            graph: || {
                two(
                    Some(fx(PG, NONE, 1, 1, 0, 0)),
                    Some(fx(NP, NONE, 1, 1, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| assert_eq!(one(r).allocator.memory, MemoryKind::NonPaged),
        },
        Case {
            name: "hard non-paged vs hard user memory on a kernel pipe conflicts",
            graph: || {
                two(
                    Some(fx(NP, NONE, 1, 1, 0, 0)),
                    Some(fx(USR, NONE, 1, 1, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| {
                let e = err(r);
                assert_eq!(e.conflicts[0].field, ConflictField::MemoryType);
                assert_eq!(e.conflicts[0].pins, ["a.out", "b.in"]);
                assert_eq!(e.pins, ["a.out", "b.in"]);
            },
        },
        Case {
            name: "a user-mode filter makes the pipe USER memory",
            graph: || two(None, None, K, U),
            check: |r| {
                let p = one(r);
                assert_eq!(p.mode, ks_graph::FilterMode::User);
                assert_eq!(p.allocator.memory, MemoryKind::User);
                assert_eq!(p.framing.memory_type, "KSMEMORY_TYPE_USER");
            },
        },
        Case {
            name: "a kernel pin's non-paged requirement is overridden on a user pipe, and reported",
            graph: || two(Some(fx(NP, NONE, 2, 1, 1024, 1024)), None, K, U),
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.memory, MemoryKind::User);
                assert_eq!(p.relaxed.len(), 1);
                assert_eq!(p.relaxed[0].pin, "a.out");
                assert_eq!(p.relaxed[0].field, ConflictField::MemoryType);
                assert!(
                    p.relaxed[0].detail.contains("user-mode filter 'b'"),
                    "{}",
                    p.relaxed[0].detail
                );
            },
        },
        Case {
            name: "vendor chosen on a kernel-to-kernel pipe whose framing it meets",
            graph: || {
                vend_graph(
                    vendor("dma", caps()).0,
                    Some(fx(NP, NONE, 4, 64, 8192, 8192)),
                    None,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.kind, AllocatorKind::Vendor);
                assert_eq!(p.allocator.name, "dma");
                assert_eq!(p.allocator.pin, "cam.out");
                assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
                assert_eq!(
                    (p.framing.frames, p.framing.frame_size, p.framing.alignment),
                    (4, 8192, 64)
                );
                assert_eq!(rejected_codes(&p, "default"), [RejectCode::Outranked]);
            },
        },
        Case {
            name: "vendor refused on a user-mode connection",
            graph: || vend_graph(vendor("dma", caps()).0, None, None, U),
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.kind, AllocatorKind::Default);
                assert_eq!(p.allocator.memory, MemoryKind::User);
                assert_eq!(rejected_codes(&p, "dma"), [RejectCode::UserModeConnection]);
            },
        },
        Case {
            name: "vendor refused for memory type",
            graph: || {
                let c = VendorCapabilities::new(vec![DEVICE]);
                vend_graph(vendor("dev", c).0, Some(fx(NP, NONE, 2, 1, 0, 0)), None, K)
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.kind, AllocatorKind::Default);
                assert_eq!(rejected_codes(&p, "dev"), [RejectCode::MemoryType]);
            },
        },
        Case {
            name: "vendor refused for frame size range",
            graph: || {
                vend_graph(
                    vendor("big", caps().with_frame_size(65536, 1 << 20, 1)).0,
                    Some(phys(fx(NP, NONE, 2, 1, 4096, 4096), 0, 8192, 1)),
                    None,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.kind, AllocatorKind::Default);
                assert_eq!(rejected_codes(&p, "big"), [RejectCode::FrameSizeRange]);
                assert_eq!(p.framing.frame_size, 4096);
            },
        },
        Case {
            name: "vendor refused for alignment",
            graph: || {
                vend_graph(
                    vendor(
                        "v",
                        caps().with_max_alignment(ks_alloc::Alignment::from_bytes(16).unwrap()),
                    )
                    .0,
                    None,
                    Some(fx(ANY, NONE, 1, 128, 0, 0)),
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.framing.alignment, 128);
                assert_eq!(rejected_codes(&p, "v"), [RejectCode::Alignment]);
            },
        },
        Case {
            name: "vendor refused for frame count",
            graph: || {
                vend_graph(
                    vendor("v", caps().with_max_frames(4)).0,
                    Some(frames(3)),
                    Some(frames(3)),
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.framing.frames, 6);
                assert_eq!(rejected_codes(&p, "v"), [RejectCode::FrameCount]);
            },
        },
        Case {
            name: "vendor refused for flags it does not honour",
            graph: || {
                vend_graph(
                    vendor("v", caps().with_honours(RequirementFlags::SYSTEM_MEMORY)).0,
                    None,
                    Some(fx(ANY, ItemFlags::FRAME_INTEGRITY, 1, 1, 0, 0)),
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.kind, AllocatorKind::Default);
                assert_eq!(rejected_codes(&p, "v"), [RejectCode::Flags]);
            },
        },
        Case {
            name: "every failing capability is listed, in order (memory is USER because of the user connection, reported once)",
            graph: || {
                vend_graph(
                    vendor(
                        "v",
                        VendorCapabilities::new(vec![DEVICE])
                            .with_max_frames(1)
                            .with_max_alignment(ks_alloc::Alignment::BYTE),
                    )
                    .0,
                    Some(fx(NP, NONE, 2, 8, 0, 0)),
                    None,
                    U,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(
                    rejected_codes(&p, "v"),
                    [
                        RejectCode::UserModeConnection,
                        RejectCode::Alignment,
                        RejectCode::FrameCount
                    ]
                );
            },
        },
        Case {
            name: "a vendor gets a size inside its own range when the pipe allows it",
            graph: || {
                vend_graph(
                    vendor("v", caps().with_frame_size(16384, 65536, 16384)).0,
                    Some(phys(frames(2), 1000, 40000, 1)),
                    None,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.kind, AllocatorKind::Vendor);
                assert_eq!(p.framing.frame_size, 16384);
            },
        },
        Case {
            name: "two eligible vendors: the first in pipe order wins, the other is outranked",
            graph: || {
                Net::new()
                    .f(
                        "a",
                        source(K, out_pin(None).with_vendor(vendor("first", caps()).0)),
                    )
                    .f(
                        "b",
                        sink(K, in_pin(None).with_vendor(vendor("second", caps()).0)),
                    )
                    .c("a.out", "b.in")
                    .build()
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.name, "first");
                assert_eq!(rejected_codes(&p, "second"), [RejectCode::Outranked]);
            },
        },
        Case {
            name: "MUST_ALLOCATE pin's vendor ranks first",
            graph: || {
                Net::new()
                    .f(
                        "a",
                        source(K, out_pin(None).with_vendor(vendor("up", caps()).0)),
                    )
                    .f(
                        "b",
                        sink(
                            K,
                            in_pin(Some(fx(ANY, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0)))
                                .with_vendor(vendor("down", caps()).0),
                        ),
                    )
                    .c("a.out", "b.in")
                    .build()
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.name, "down");
                assert_eq!(p.allocator.pin, "b.in");
                assert_eq!(rejected_codes(&p, "up"), [RejectCode::MustAllocate]);
            },
        },
        Case {
            name: "MUST_ALLOCATE pin without a vendor owns a default allocator; vendors elsewhere are refused",
            graph: || {
                Net::new()
                    .f(
                        "a",
                        source(K, out_pin(None).with_vendor(vendor("up", caps()).0)),
                    )
                    .f(
                        "b",
                        sink(
                            K,
                            in_pin(Some(fx(ANY, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0))),
                        ),
                    )
                    .c("a.out", "b.in")
                    .build()
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.kind, AllocatorKind::Default);
                assert_eq!(p.allocator.pin, "b.in");
                assert_eq!(rejected_codes(&p, "up"), [RejectCode::MustAllocate]);
            },
        },
        Case {
            name: "two hard MUST_ALLOCATE pins conflict",
            graph: || {
                two(
                    Some(fx(ANY, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0)),
                    Some(fx(ANY, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| {
                let e = err(r);
                assert_eq!(e.conflicts[0].field, ConflictField::Flags);
                assert_eq!(e.conflicts[0].pins, ["a.out", "b.in"]);
            },
        },
        Case {
            name: "PREFERENCES_ONLY MUST_ALLOCATE yields to a hard one and is reported",
            graph: || {
                two(
                    Some(fx(ANY, ItemFlags::MUST_ALLOCATE | PREF, 1, 1, 0, 0)),
                    Some(fx(ANY, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.pin, "b.in");
                assert_eq!(p.relaxed.len(), 1);
                assert_eq!(p.relaxed[0].pin, "a.out");
                assert_eq!(p.relaxed[0].field, ConflictField::Flags);
            },
        },
        Case {
            name: "PREFERENCES_ONLY memory type relaxed against a hard one, and reported",
            graph: || {
                two(
                    Some(fx(NP, NONE, 1, 1, 0, 0)),
                    Some(fx(USR, ItemFlags::SYSTEM_MEMORY | PREF, 1, 1, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
                assert_eq!(p.relaxed.len(), 1);
                assert_eq!(p.relaxed[0].pin, "b.in");
                assert_eq!(p.relaxed[0].field, ConflictField::MemoryType);
                assert_eq!(
                    p.framing.requirements, 0,
                    "preference flags are not hard requirements"
                );
            },
        },
        Case {
            name: "a compatible preference refines a wildcard memory type",
            graph: || {
                two(
                    Some(fx(PG, ItemFlags::SYSTEM_MEMORY | PREF, 1, 1, 0, 0)),
                    None,
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.memory, MemoryKind::Paged);
                assert!(p.relaxed.is_empty());
            },
        },
        Case {
            name: "hard FRAME_INTEGRITY with an in-place modifier downstream conflicts",
            graph: || {
                Net::new()
                    .f(
                        "a",
                        source(
                            K,
                            out_pin(Some(fx(ANY, ItemFlags::FRAME_INTEGRITY, 1, 1, 0, 0))),
                        ),
                    )
                    .f("x", inplace(K, in_pin(None), out_pin(None)))
                    .f("b", sink(K, in_pin(None)))
                    .c("a.out", "x.in")
                    .c("x.out", "b.in")
                    .build()
            },
            check: |r| {
                let e = err(r);
                assert_eq!(e.conflicts[0].field, ConflictField::Flags);
                assert_eq!(e.conflicts[0].pins, ["a.out", "x.in"]);
            },
        },
        Case {
            name: "PREFERENCES_ONLY FRAME_INTEGRITY is relaxed and reported",
            graph: || {
                Net::new()
                    .f(
                        "a",
                        source(
                            K,
                            out_pin(Some(fx(ANY, ItemFlags::FRAME_INTEGRITY | PREF, 1, 1, 0, 0))),
                        ),
                    )
                    .f("x", inplace(K, in_pin(None), out_pin(None)))
                    .f("b", sink(K, in_pin(None)))
                    .c("a.out", "x.in")
                    .c("x.out", "b.in")
                    .build()
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.relaxed.len(), 1);
                assert_eq!(p.relaxed[0].field, ConflictField::Flags);
                assert!(p.relaxed[0].detail.contains("x.in"));
            },
        },
        Case {
            name: "an in-place chain of five filters is one pipe; frames summed over all ten pins",
            graph: || {
                let mut n = Net::new().f("src", source(K, out_pin(Some(frames(1)))));
                let mut prev = "src.out".to_string();
                for i in 0..5 {
                    let name = format!("x{i}");
                    n = n.f(
                        &name,
                        inplace(K, in_pin(Some(frames(1))), out_pin(Some(frames(1)))),
                    );
                    n = n.c(&prev, &format!("{name}.in"));
                    prev = format!("{name}.out");
                }
                n.f("dst", sink(K, in_pin(Some(frames(1)))))
                    .c(&prev, "dst.in")
                    .build()
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.pins.len(), 12);
                assert_eq!(p.pins[0], "src.out");
                assert_eq!(p.pins[11], "dst.in");
                assert_eq!(p.framing.frames, 12);
            },
        },
        Case {
            name: "a copy transform splits pipes, each with its own allocator and framing",
            graph: || {
                Net::new()
                    .f(
                        "src",
                        source(K, out_pin(Some(fx(NP, NONE, 2, 1, 1000, 1000)))),
                    )
                    .f(
                        "cp",
                        copy(
                            K,
                            in_pin(Some(frames(1))),
                            out_pin(Some(fx(ANY, NONE, 3, 1, 500, 500))),
                        ),
                    )
                    .f("dst", sink(U, in_pin(None)))
                    .c("src.out", "cp.in")
                    .c("cp.out", "dst.in")
                    .build()
            },
            check: |r| {
                let p = ok(r);
                assert_eq!(p.pipes.len(), 2);
                assert_eq!(p.pipes[0].pins, ["src.out", "cp.in"]);
                assert_eq!(p.pipes[1].pins, ["cp.out", "dst.in"]);
                assert_eq!(
                    (p.pipes[0].framing.frames, p.pipes[0].framing.frame_size),
                    (3, 1000)
                );
                assert_eq!(p.pipes[0].allocator.memory, MemoryKind::NonPaged);
                assert_eq!(
                    (p.pipes[1].framing.frames, p.pipes[1].framing.frame_size),
                    (3, 500)
                );
                assert_eq!(p.pipes[1].allocator.memory, MemoryKind::User);
            },
        },
        Case {
            name: "tee branches that do not modify share the input's pipe",
            graph: || {
                Net::new()
                    .f("src", source(K, out_pin(None)))
                    .f("t", tee(K, 3))
                    .f("s0", sink(K, in_pin(Some(frames(2)))))
                    .f("s1", sink(K, in_pin(Some(frames(2)))))
                    .f("s2", sink(K, in_pin(Some(frames(2)))))
                    .c("src.out", "t.in")
                    .c("t.o0", "s0.in")
                    .c("t.o1", "s1.in")
                    .c("t.o2", "s2.in")
                    .build()
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.pins.len(), 8);
                assert_eq!(p.framing.frames, 6);
            },
        },
        Case {
            name: "a tee branch whose downstream modifies in place gets its own pipe",
            graph: || {
                Net::new()
                    .f("src", source(K, out_pin(None)))
                    .f("t", tee(K, 2))
                    .f("ro", sink(K, in_pin(None)))
                    .f("rw", sink(K, in_pin(None).in_place()))
                    .c("src.out", "t.in")
                    .c("t.o0", "ro.in")
                    .c("t.o1", "rw.in")
                    .build()
            },
            check: |r| {
                let p = ok(r);
                assert_eq!(p.pipes.len(), 2);
                assert_eq!(p.pipes[0].pins, ["src.out", "t.in", "t.o0", "ro.in"]);
                assert_eq!(p.pipes[1].pins, ["t.o1", "rw.in"]);
            },
        },
        Case {
            name: "modification further down a tee branch (through a null transform) also splits it",
            graph: || {
                Net::new()
                    .f("src", source(K, out_pin(None)))
                    .f("t", tee(K, 2))
                    .f("p", passthru(K, in_pin(None), out_pin(None)))
                    .f("x", inplace(K, in_pin(None), out_pin(None)))
                    .f("ro", sink(K, in_pin(None)))
                    .f("end", sink(K, in_pin(None)))
                    .c("src.out", "t.in")
                    .c("t.o0", "p.in")
                    .c("p.out", "x.in")
                    .c("x.out", "end.in")
                    .c("t.o1", "ro.in")
                    .build()
            },
            check: |r| {
                let p = ok(r);
                assert_eq!(p.pipes.len(), 2);
                assert_eq!(p.pipes[0].pins, ["src.out", "t.in", "t.o1", "ro.in"]);
                assert_eq!(
                    p.pipes[1].pins,
                    ["t.o0", "p.in", "p.out", "x.in", "x.out", "end.in"]
                );
            },
        },
        Case {
            name: "a single-output in-place filter keeps the pipe even though it modifies",
            graph: || {
                Net::new()
                    .f("src", source(K, out_pin(None)))
                    .f("x", inplace(K, in_pin(None), out_pin(None)))
                    .f("dst", sink(K, in_pin(None)))
                    .c("src.out", "x.in")
                    .c("x.out", "dst.in")
                    .build()
            },
            check: |r| assert_eq!(one(r).pins.len(), 4),
        },
        Case {
            name: "disjoint physical ranges conflict on frame size, naming both pins",
            graph: || {
                two(
                    Some(phys(frames(1), 100, 200, 1)),
                    Some(phys(frames(1), 300, 400, 1)),
                    K,
                    K,
                )
            },
            check: |r| {
                let e = err(r);
                assert_eq!(e.conflicts[0].field, ConflictField::FrameSize);
                assert_eq!(e.conflicts[0].pins, ["a.out", "b.in"]);
                assert!(
                    e.conflicts[0].detail.contains("does not overlap"),
                    "{}",
                    e.conflicts[0].detail
                );
                assert_eq!(e.status().to_ntstatus(), 0xC000000Du32 as i32);
            },
        },
        Case {
            name: "steppings that never meet conflict on frame size",
            graph: || {
                two(
                    Some(phys(frames(1), 100, 1000, 3)),
                    Some(phys(frames(1), 101, 1000, 3)),
                    K,
                    K,
                )
            },
            check: |r| {
                let e = err(r);
                assert_eq!(e.conflicts[0].field, ConflictField::FrameSize);
                assert!(
                    e.conflicts[0].detail.contains("stepping"),
                    "{}",
                    e.conflicts[0].detail
                );
            },
        },
        Case {
            name: "steppings that meet: the smallest size on both",
            graph: || {
                two(
                    Some(phys(frames(1), 100, 1000, 6)),
                    Some(phys(frames(1), 2, 1000, 4)),
                    K,
                    K,
                )
            },
            check: |r| assert_eq!(one(r).framing.frame_size, 106),
        },
        Case {
            name: "an optimal range inside the physical range is preferred",
            graph: || {
                two(
                    Some(phys(fx(ANY, NONE, 1, 1, 8192, 16384), 1, 65536, 1)),
                    None,
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.framing.frame_size, 8192);
                assert!(p.relaxed.is_empty());
            },
        },
        Case {
            name: "disjoint optimal ranges are relaxed (reported); the size still meets every physical range",
            graph: || {
                two(
                    Some(fx(ANY, NONE, 1, 1, 1024, 1024)),
                    Some(fx(ANY, NONE, 1, 1, 2048, 2048)),
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.framing.frame_size, 1024);
                assert_eq!(p.relaxed.len(), 1);
                assert_eq!(p.relaxed[0].pin, "b.in");
                assert_eq!(p.relaxed[0].field, ConflictField::FrameSize);
            },
        },
        Case {
            name: "alternatives: the first compatible item is taken",
            graph: || {
                two(
                    Some(fx(NP, NONE, 1, 1, 0, 0)),
                    Some(alt(fx(USR, NONE, 5, 1, 0, 0), fx(NP, NONE, 2, 1, 0, 0))),
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.items, [Some(0), Some(1)]);
                assert_eq!(p.framing.frames, 3);
            },
        },
        Case {
            name: "alternatives on a user pipe: the USER item is taken",
            graph: || {
                two(
                    Some(alt(fx(NP, NONE, 1, 1, 0, 0), fx(USR, NONE, 4, 1, 0, 0))),
                    None,
                    K,
                    U,
                )
            },
            check: |r| {
                let p = one(r);
                // Memory never blocks an item on a user pipe, so the first item is taken and
                // its non-paged wish is reported as overridden.
                assert_eq!(p.items[0], Some(0));
                assert_eq!(p.relaxed.len(), 1);
            },
        },
        Case {
            name: "alternatives none of which fits conflict",
            graph: || {
                two(
                    Some(fx(NP, NONE, 1, 1, 0, 0)),
                    Some(alt(fx(USR, NONE, 1, 1, 0, 0), fx(DEVICE, NONE, 1, 1, 0, 0))),
                    K,
                    K,
                )
            },
            check: |r| assert_eq!(err(r).conflicts[0].field, ConflictField::MemoryType),
        },
        Case {
            name: "backtracking: only the second item of the first pin fits",
            // Greedy choice would fix a.out to 100..=200 and then find nothing for b.in.
            graph: || {
                two(
                    Some(alt(
                        phys(fx(NP, NONE, 1, 1, 0, 0), 100, 200, 1),
                        phys(fx(NP, NONE, 3, 1, 0, 0), 1000, 2000, 1),
                    )),
                    Some(phys(fx(ANY, NONE, 1, 1, 0, 0), 1000, 4000, 1)),
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.items, [Some(1), Some(0)]);
                assert_eq!((p.framing.frame_size, p.framing.frames), (1000, 4));
            },
        },
        Case {
            name: "backtracking: a preferred item holding more frames than one allocator is passed over",
            // The first item of a.out asks for 70 000 frames, more than `MAX_FRAMES`; the
            // search must treat that combination as dead, not pick it and fail the merge.
            graph: || {
                two(
                    Some(alt(fx(NP, NONE, 70_000, 1, 0, 0), fx(NP, NONE, 3, 1, 0, 0))),
                    Some(frames(1)),
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.items, [Some(1), Some(0)]);
                assert_eq!(p.framing.frames, 4);
            },
        },
        Case {
            name: "backtracking: an item asking for 0 frames failing does not rule out one asking for 1",
            // 0 frames means the default of 2, which the vendor cannot hold; 1 it can. Both
            // items reach the same search state, so the memo must keep 0 apart.
            graph: || {
                let caps = VendorCapabilities::new(vec![DEVICE]).with_max_frames(1);
                vend_graph(
                    vendor("dma", caps).0,
                    Some(alt(
                        fx(DEVICE, NONE, 0, 1, 0, 0),
                        fx(DEVICE, NONE, 1, 1, 0, 0),
                    )),
                    None,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.items, [Some(1), None]);
                assert_eq!(p.allocator.name, "dma");
                assert_eq!(p.framing.frames, 1);
            },
        },
        Case {
            name: "a vendor's own minimum size is not a pin's: a page when no pin states one",
            graph: || vend_graph(vendor("dma", caps()).0, None, None, K),
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.name, "dma");
                assert_eq!(p.framing.frame_size, 4096);
            },
        },
        Case {
            name: "the first compatible memory preference refines the hard type; the others are reported",
            graph: || {
                Net::new()
                    .f("src", source(K, out_pin(Some(fx(PG, NONE, 1, 1, 0, 0)))))
                    .f(
                        "x",
                        inplace(K, in_pin(Some(fx(DEVICE, PREF, 1, 1, 0, 0))), out_pin(None)),
                    )
                    .f("sink", sink(K, in_pin(Some(fx(NP, PREF, 1, 1, 0, 0)))))
                    .c("src.out", "x.in")
                    .c("x.out", "sink.in")
                    .build()
            },
            check: |r| {
                let p = one(r);
                assert_eq!(
                    p.allocator.memory,
                    MemoryKind::NonPaged,
                    "sink.in's preference"
                );
                let relaxed: Vec<_> = p.relaxed.iter().map(|x| x.pin.as_str()).collect();
                assert_eq!(relaxed, ["x.in"], "{:?}", p.relaxed);
            },
        },
        Case {
            name: "a memory preference the chosen vendor does not serve is reported",
            graph: || {
                vend_graph(
                    vendor("dma", caps()).0,
                    Some(fx(USR, PREF, 1, 1, 0, 0)),
                    None,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.name, "dma");
                assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
                assert_eq!(p.relaxed.len(), 1, "{:?}", p.relaxed);
                assert_eq!(p.relaxed[0].field, ConflictField::MemoryType);
                assert!(
                    p.relaxed[0].detail.contains("vendor 'dma'"),
                    "{}",
                    p.relaxed[0].detail
                );
            },
        },
        Case {
            name: "backtracking: only the second items of two pins fit together",
            // (0,0) sizes disjoint, (0,1) memory, (1,0) memory, (1,1) fits.
            graph: || {
                let a = alt(
                    phys(fx(NP, NONE, 1, 1, 0, 0), 100, 200, 1),
                    phys(fx(USR, NONE, 2, 1, 0, 0), 1000, 2000, 1),
                );
                let b = alt(
                    phys(fx(NP, NONE, 1, 1, 0, 0), 1000, 2000, 1),
                    phys(fx(USR, NONE, 5, 1, 0, 0), 500, 1500, 1),
                );
                Net::new()
                    .f("a", source(K, out_pin(Some(a))))
                    .f("x", inplace(K, in_pin(Some(frames(1))), out_pin(None)))
                    .f("b", sink(K, in_pin(Some(b))))
                    .c("a.out", "x.in")
                    .c("x.out", "b.in")
                    .build()
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.pins, ["a.out", "x.in", "x.out", "b.in"]);
                assert_eq!(p.items, [Some(1), Some(0), None, Some(1)]);
                assert_eq!(p.allocator.memory, MemoryKind::User);
                assert_eq!((p.framing.frame_size, p.framing.frames), (1000, 8));
            },
        },
        Case {
            name: "preference order: an earlier pin's first item outranks a later pin's",
            // Both (0,1) and (1,0) fit; the earlier pin keeps its first item.
            graph: || {
                let a = alt(
                    phys(fx(NP, NONE, 1, 1, 0, 0), 100, 200, 1),
                    phys(fx(NP, NONE, 1, 1, 0, 0), 300, 400, 1),
                );
                let b = alt(
                    phys(fx(NP, NONE, 1, 1, 0, 0), 300, 400, 1),
                    phys(fx(NP, NONE, 1, 1, 0, 0), 150, 250, 1),
                );
                two(Some(a), Some(b), K, K)
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.items, [Some(0), Some(1)]);
                assert_eq!(p.framing.frame_size, 150);
            },
        },
        Case {
            name: "backtracking over a whole-pipe conflict: the item without MUST_ALLOCATE is taken",
            graph: || {
                two(
                    Some(alt(
                        fx(ANY, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0),
                        fx(ANY, NONE, 1, 1, 0, 0),
                    )),
                    Some(fx(ANY, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.items, [Some(1), Some(0)]);
                assert_eq!(p.allocator.pin, "b.in");
            },
        },
        Case {
            name: "device memory no vendor serves: the host-memory alternative is taken",
            graph: || {
                two(
                    Some(alt(fx(DEVICE, NONE, 1, 1, 0, 0), fx(NP, NONE, 1, 1, 0, 0))),
                    None,
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.items, [Some(1), None]);
                assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
            },
        },
        Case {
            name: "unsatisfiable alternatives: the error names the pins, the field and the combination",
            // (0,0) memory, (0,1) sizes, (1,0) sizes, (1,1) memory.
            graph: || {
                let a = alt(
                    phys(fx(NP, NONE, 1, 1, 0, 0), 100, 200, 1),
                    phys(fx(USR, NONE, 1, 1, 0, 0), 1000, 2000, 1),
                );
                let b = alt(
                    phys(fx(USR, NONE, 1, 1, 0, 0), 100, 200, 1),
                    phys(fx(NP, NONE, 1, 1, 0, 0), 1000, 2000, 1),
                );
                two(Some(a), Some(b), K, K)
            },
            check: |r| {
                let e = err(r);
                assert!(e.alternatives_tried);
                // Explained for a.out's preferred item, after which b.in has no compatible item.
                assert_eq!(e.items, [Some(0), None]);
                assert_eq!(e.conflicts.len(), 1);
                assert_eq!(e.conflicts[0].field, ConflictField::FrameSize);
                assert_eq!(e.conflicts[0].pins, ["a.out", "b.in"]);
                assert!(e.conflicts[0].detail.contains("100..=200"), "{e}");
                let text = e.to_string();
                assert!(text.contains("no combination"), "{text}");
                assert!(text.contains("a.out item 0"), "{text}");
            },
        },
        Case {
            name: "unsatisfiable alternatives failing a whole-pipe check: the preferred complete combination is explained",
            graph: || {
                two(
                    Some(alt(
                        fx(NP, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0),
                        fx(PG, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0),
                    )),
                    Some(fx(ANY, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| {
                let e = err(r);
                assert!(e.alternatives_tried);
                assert_eq!(e.items, [Some(0), Some(0)]);
                assert_eq!(e.conflicts[0].field, ConflictField::Flags);
                assert_eq!(e.conflicts[0].pins, ["a.out", "b.in"]);
            },
        },
        Case {
            name: "a vendor serving only device memory is refused when SYSTEM_MEMORY is required",
            graph: || {
                let caps = VendorCapabilities::new(vec![DEVICE])
                    .with_honours(RequirementFlags::SYSTEM_MEMORY);
                vend_graph(
                    vendor("dev", caps).0,
                    Some(fx(ANY, ItemFlags::SYSTEM_MEMORY, 1, 1, 0, 0)),
                    None,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.kind, AllocatorKind::Default);
                assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
                assert_eq!(rejected_codes(&p, "dev"), [RejectCode::MemoryType]);
            },
        },
        Case {
            name: "preferred device memory yields to a hard SYSTEM_MEMORY and is reported",
            graph: || {
                two(
                    Some(fx(DEVICE, PREF, 1, 1, 0, 0)),
                    Some(fx(ANY, ItemFlags::SYSTEM_MEMORY, 1, 1, 0, 0)),
                    K,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
                assert!(
                    p.relaxed
                        .iter()
                        .any(|x| x.pin == "a.out" && x.field == ConflictField::MemoryType),
                    "{:?}",
                    p.relaxed
                );
            },
        },
        Case {
            name: "a preference-only SYSTEM_MEMORY the chosen vendor does not honour is relaxed and reported",
            graph: || {
                let caps = VendorCapabilities::new(vec![DEVICE]).with_honours(RequirementFlags(0));
                vend_graph(
                    vendor("dev", caps).0,
                    Some(fx(ANY, ItemFlags::SYSTEM_MEMORY | PREF, 1, 1, 0, 0)),
                    None,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(
                    (p.allocator.kind, p.allocator.memory),
                    (AllocatorKind::Vendor, MemoryKind::Device)
                );
                let x = p
                    .relaxed
                    .iter()
                    .find(|x| x.field == ConflictField::Flags)
                    .expect("flags relaxed");
                assert_eq!(x.pin, "cam.out");
                assert!(x.detail.contains("SYSTEM_MEMORY"), "{}", x.detail);
            },
        },
        Case {
            name: "device memory with no vendor to serve it conflicts",
            graph: || two(Some(fx(DEVICE, NONE, 1, 1, 0, 0)), None, K, K),
            check: |r| {
                let e = err(r);
                assert_eq!(e.conflicts[0].field, ConflictField::MemoryType);
                assert!(e.conflicts[0].detail.contains("vendor"));
            },
        },
        Case {
            name: "device memory served by a vendor that declares it",
            graph: || {
                vend_graph(
                    vendor("dev", VendorCapabilities::new(vec![DEVICE])).0,
                    Some(fx(DEVICE, NONE, 2, 1, 0, 0)),
                    None,
                    K,
                )
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.allocator.kind, AllocatorKind::Vendor);
                assert_eq!(p.allocator.memory, MemoryKind::Device);
            },
        },
        Case {
            name: "SYSTEM_MEMORY with device memory conflicts on flags",
            graph: || {
                vend_graph(
                    vendor("dev", VendorCapabilities::new(vec![DEVICE])).0,
                    Some(fx(DEVICE, NONE, 2, 1, 0, 0)),
                    Some(fx(ANY, ItemFlags::SYSTEM_MEMORY, 1, 1, 0, 0)),
                    K,
                )
            },
            check: |r| {
                let e = err(r);
                assert_eq!(e.conflicts[0].field, ConflictField::Flags);
                assert_eq!(e.conflicts[0].pins, ["dst.in", "cam.out"]);
            },
        },
        Case {
            name: "a pass-through filter with its input unconnected starts a new pipe",
            graph: || {
                Net::new()
                    .f("x", passthru(K, in_pin(None), out_pin(None)))
                    .f("dst", sink(K, in_pin(None)))
                    .c("x.out", "dst.in")
                    .build()
            },
            check: |r| assert_eq!(one(r).pins, ["x.out", "dst.in"]),
        },
        Case {
            name: "a mux (copy filter, two inputs) ends both input pipes",
            graph: || {
                let mux = ks_graph::FilterDescriptor::kernel("mux")
                    .with_pin(PinDescriptor::input("a"))
                    .with_pin(PinDescriptor::input("b"))
                    .with_pin(PinDescriptor::output("out"));
                Net::new()
                    .f("s1", source(K, out_pin(None)))
                    .f("s2", source(K, out_pin(None)))
                    .f("m", mux)
                    .f("dst", sink(K, in_pin(None)))
                    .c("s1.out", "m.a")
                    .c("s2.out", "m.b")
                    .c("m.out", "dst.in")
                    .build()
            },
            check: |r| {
                let p = ok(r);
                assert_eq!(p.pipes.len(), 3);
                let roots: Vec<&str> = p.pipes.iter().map(|p| p.root.as_str()).collect();
                assert_eq!(roots, ["s1.out", "s2.out", "m.out"]);
            },
        },
        Case {
            name: "unconnected pins belong to no pipe",
            graph: || {
                Net::new()
                    .f("t", tee(K, 2))
                    .f("src", source(K, out_pin(None)))
                    .f("dst", sink(K, in_pin(None)))
                    .c("src.out", "t.in")
                    .c("t.o1", "dst.in")
                    .build()
            },
            check: |r| {
                let p = one(r);
                assert_eq!(p.pins, ["src.out", "t.in", "t.o1", "dst.in"]);
            },
        },
        Case {
            name: "the plan serialises to JSON with the documented shape",
            graph: || {
                vend_graph(
                    vendor("dma", caps()).0,
                    Some(fx(NP, NONE, 4, 64, 8192, 8192)),
                    None,
                    K,
                )
            },
            check: |r| {
                let p = ok(r);
                let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
                let pipe = &v["pipes"][0];
                assert_eq!(pipe["id"], 0);
                assert_eq!(pipe["pins"], serde_json::json!(["cam.out", "dst.in"]));
                assert_eq!(pipe["allocator"]["kind"], "vendor");
                assert_eq!(pipe["allocator"]["name"], "dma");
                assert_eq!(pipe["allocator"]["memory"], "nonpaged");
                assert_eq!(pipe["framing"]["frames"], 4);
                assert_eq!(pipe["framing"]["frame_size"], 8192);
                assert_eq!(pipe["framing"]["alignment"], 64);
                assert_eq!(pipe["rejected"][0]["candidate"], "default");
                assert!(
                    pipe["rejected"][0]["reason"]
                        .as_str()
                        .unwrap()
                        .contains("dma")
                );
            },
        },
    ]
}

#[test]
fn negotiation_table() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    for case in cases {
        let graph = (case.graph)();
        let outcome = negotiate(&graph);
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.check)(outcome)));
        if let Err(e) = run {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("case '{}' failed: {msg}", case.name);
        }
    }
}

#[test]
fn b41_vendor_refused_when_the_pipe_asks_twice_its_max_alignment_kept_at_exactly_it() {
    let vendor_max = 16;
    let graph = |align: u32| {
        vend_graph(
            vendor(
                "v",
                caps().with_max_alignment(ks_alloc::Alignment::from_bytes(vendor_max).unwrap()),
            )
            .0,
            None,
            Some(fx(ANY, NONE, 1, align, 0, 0)),
            K,
        )
    };
    // Twice what the vendor guarantees: refused for alignment, the default allocator serves.
    let p = one(negotiate(&graph(2 * vendor_max)));
    assert_eq!(p.framing.alignment, 32);
    assert_eq!(p.allocator.kind, AllocatorKind::Default, "{:?}", p.rejected);
    let r = p
        .rejected
        .iter()
        .find(|r| r.candidate == "v")
        .unwrap_or_else(|| panic!("vendor 'v' not among rejected: {:?}", p.rejected));
    assert_eq!(r.kind, AllocatorKind::Vendor);
    assert_eq!(r.pin.as_deref(), Some("cam.out"));
    assert_eq!(r.codes, [RejectCode::Alignment]);
    assert!(
        r.reason.contains("32-byte alignment") && r.reason.contains("guarantees 16 bytes"),
        "{}",
        r.reason
    );
    // Exactly what the vendor guarantees: the vendor is kept.
    let p = one(negotiate(&graph(vendor_max)));
    assert_eq!(p.framing.alignment, 16);
    assert_eq!(p.allocator.kind, AllocatorKind::Vendor, "{:?}", p.rejected);
    assert_eq!(p.allocator.name, "v");
    assert!(
        p.rejected.iter().all(|r| r.candidate != "v"),
        "{:?}",
        p.rejected
    );
    assert_eq!(rejected_codes(&p, "default"), [RejectCode::Outranked]);
}

#[test]
fn ksedit_framing_override_changes_only_that_instance() {
    let d = std::sync::Arc::new(sink(K, in_pin(Some(frames(1)))));
    let mut b = ks_graph::GraphBuilder::new();
    b.add_filter("src", std::sync::Arc::new(source(K, out_pin(None))))
        .unwrap();
    b.add_filter("t", std::sync::Arc::new(tee(K, 2))).unwrap();
    b.add_filter("s0", d.clone()).unwrap();
    b.add_filter("s1", d).unwrap();
    b.connect("src.out", "t.in").unwrap();
    b.connect("t.o0", "s0.in").unwrap();
    b.connect("t.o1", "s1.in").unwrap();
    let mut g = b.build().unwrap();
    assert_eq!(one(negotiate(&g)).framing.frames, 2);
    let s1 = g.pin("s1.in").unwrap();
    g.set_pin_framing(s1, frames(10)).unwrap();
    assert_eq!(g.pin_framing(s1).unwrap().items[0].frames, 10);
    assert_eq!(
        g.pin_framing(g.pin("s0.in").unwrap()).unwrap().items[0].frames,
        1
    );
    assert_eq!(one(negotiate(&g)).framing.frames, 11);
    g.reset_pin_framing(s1).unwrap();
    assert_eq!(one(negotiate(&g)).framing.frames, 2);
}

#[test]
fn failing_long_pipe_of_alternatives_is_searched_once_per_state() {
    // 60 in-place stages whose inputs each offer two items (different frame counts and
    // alignments), then a sink whose range meets none of them: 2^60 combinations, but the
    // search remembers failed states (pin, memory, sizes, alignment, flags; frame counts by
    // dominance), so this returns promptly with the conflict.
    let two_items = alt(
        phys(fx(ANY, NONE, 2, 1, 0, 0), 100, 200, 1),
        phys(fx(ANY, NONE, 1, 2, 0, 0), 100, 400, 1),
    );
    let stage = std::sync::Arc::new(inplace(K, in_pin(Some(two_items)), out_pin(None)));
    let mut b = ks_graph::GraphBuilder::new();
    b.add_filter("src", std::sync::Arc::new(source(K, out_pin(None))))
        .unwrap();
    let mut prev = "src.out".to_string();
    for i in 0..60 {
        b.add_filter(format!("s{i}"), stage.clone()).unwrap();
        b.connect(&prev, &format!("s{i}.in")).unwrap();
        prev = format!("s{i}.out");
    }
    let last = phys(fx(ANY, NONE, 1, 1, 0, 0), 500, 600, 1);
    b.add_filter("dst", std::sync::Arc::new(sink(K, in_pin(Some(last)))))
        .unwrap();
    b.connect(&prev, "dst.in").unwrap();
    let g = b.build().unwrap();
    let e = negotiate(&g).unwrap_err();
    assert!(e.alternatives_tried);
    assert_eq!(e.conflicts[0].field, ConflictField::FrameSize);
    assert!(e.conflicts[0].pins.contains(&"dst.in".to_string()), "{e}");
    // Explained for the deepest walk in preference order: every stage's first item.
    assert_eq!(e.items[1], Some(0));
    assert_eq!(e.items.last(), Some(&None));
}

#[test]
fn optimal_ranges_are_decided_against_every_physical_range_in_either_order() {
    // a's optimal 1000..=2000 comes with no physical range; b's physical 3000..=9000 rules it
    // out, while b's own optimal 5000..=8000 fits. Judged against the physical range known
    // so far, a's range was taken first, b's skipped for not meeting it, and then both were
    // dropped (3000, "does not meet the physical range"); swapped, the size was 5000.
    let wide = || fx(ANY, NONE, 1, 1, 1000, 2000);
    let narrow = || phys(fx(ANY, NONE, 1, 1, 5000, 8000), 3000, 9000, 1);
    for (g, skipped) in [
        (two(Some(wide()), Some(narrow()), K, K), "a.out"),
        (two(Some(narrow()), Some(wide()), K, K), "b.in"),
    ] {
        let p = one(negotiate(&g));
        assert_eq!(p.framing.frame_size, 5000, "{:?}", p.relaxed);
        assert_eq!(p.relaxed.len(), 1, "{:?}", p.relaxed);
        let r = &p.relaxed[0];
        assert_eq!(
            (r.pin.as_str(), r.field),
            (skipped, ConflictField::FrameSize)
        );
        assert!(
            r.detail.contains("1000..=2000")
                && r.detail.contains("physical ranges allow (3000..=9000)"),
            "{}",
            r.detail
        );
    }

    // Optimal ranges that only miss each other: the earlier pin's wins, and the text names it.
    let p = one(negotiate(&two(
        Some(fx(ANY, NONE, 1, 1, 1024, 1024)),
        Some(fx(ANY, NONE, 1, 1, 2048, 2048)),
        K,
        K,
    )));
    assert_eq!(p.framing.frame_size, 1024);
    assert_eq!(p.relaxed.len(), 1, "{:?}", p.relaxed);
    assert_eq!(p.relaxed[0].pin, "b.in");
    assert!(
        p.relaxed[0].detail.contains("does not meet 1024..=1024")
            && p.relaxed[0].detail.contains("(of 'a.out')"),
        "{}",
        p.relaxed[0].detail
    );
}

#[test]
fn optimal_ranges_a_chosen_vendor_cannot_serve_are_reported_naming_it() {
    let dma = || {
        let caps = VendorCapabilities::new(vec![NP]).with_frame_size(4096, 65536, 1);
        vendor("dma", caps).0
    };
    // The vendor's sizes exclude cam.out's optimal range: the size leaves it, and says so.
    let p = one(negotiate(&vend_graph(
        dma(),
        Some(fx(ANY, NONE, 2, 1, 1000, 2000)),
        None,
        K,
    )));
    assert_eq!(p.allocator.name, "dma");
    assert_eq!(p.framing.frame_size, 4096);
    assert_eq!(p.relaxed.len(), 1, "{:?}", p.relaxed);
    let r = &p.relaxed[0];
    assert_eq!(
        (r.pin.as_str(), r.field),
        ("cam.out", ConflictField::FrameSize)
    );
    assert!(
        r.detail.contains("1000..=2000") && r.detail.contains("vendor 'dma'"),
        "{}",
        r.detail
    );

    // Optimal ranges are decided inside the vendor's range: the one it excludes is reported,
    // the later one it serves is honoured (without the vendor the earlier one would win).
    let p = one(negotiate(&vend_graph(
        dma(),
        Some(fx(ANY, NONE, 2, 1, 1000, 2000)),
        Some(fx(ANY, NONE, 1, 1, 5000, 8000)),
        K,
    )));
    assert_eq!(p.allocator.name, "dma");
    assert_eq!(p.framing.frame_size, 5000, "{:?}", p.relaxed);
    let pins: Vec<&str> = p.relaxed.iter().map(|r| r.pin.as_str()).collect();
    assert_eq!(pins, ["cam.out"], "{:?}", p.relaxed);
    assert!(
        p.relaxed[0].detail.contains("vendor 'dma'"),
        "{}",
        p.relaxed[0].detail
    );
}

#[test]
fn a_preference_only_must_allocate_is_reported_when_another_pin_allocates() {
    let must_pref = || fx(ANY, ItemFlags::MUST_ALLOCATE | PREF, 2, 1, 0, 0);
    // dst.in prefers to allocate but has no vendor; cam.out's vendor serves the pipe.
    let p = one(negotiate(&vend_graph(
        vendor("dma", caps()).0,
        None,
        Some(must_pref()),
        K,
    )));
    assert_eq!(
        (p.allocator.name.as_str(), p.allocator.pin.as_str()),
        ("dma", "cam.out")
    );
    assert_eq!(p.relaxed.len(), 1, "{:?}", p.relaxed);
    let r = &p.relaxed[0];
    assert_eq!((r.pin.as_str(), r.field), ("dst.in", ConflictField::Flags));
    assert!(
        r.detail.contains("MUST_ALLOCATE") && r.detail.contains("'cam.out' allocates"),
        "{}",
        r.detail
    );

    // Two preferences and the default allocator: the first pin's owns it, the second's is
    // reported naming it.
    let p = one(negotiate(&two(Some(must_pref()), Some(must_pref()), K, K)));
    assert_eq!(p.allocator.pin, "a.out");
    let pins: Vec<&str> = p.relaxed.iter().map(|r| r.pin.as_str()).collect();
    assert_eq!(pins, ["b.in"], "{:?}", p.relaxed);
    assert!(
        p.relaxed[0].detail.contains("'a.out' allocates"),
        "{}",
        p.relaxed[0].detail
    );
}

#[test]
fn every_memory_preference_the_served_memory_misses_is_reported() {
    let names = |p: &PipePlan| -> Vec<(String, ConflictField)> {
        p.relaxed.iter().map(|r| (r.pin.clone(), r.field)).collect()
    };
    let mem = |pin: &str| (pin.to_string(), ConflictField::MemoryType);

    // Both pins prefer paged memory; the vendor serves device memory only: both unmet.
    let caps = VendorCapabilities::new(vec![DEVICE]).with_honours(RequirementFlags(0));
    let paged = || fx(PG, PREF, 1, 1, 0, 0);
    let p = one(negotiate(&vend_graph(
        vendor("dev", caps).0,
        Some(paged()),
        Some(paged()),
        K,
    )));
    assert_eq!(p.allocator.memory, MemoryKind::Device);
    assert_eq!(
        names(&p),
        [mem("cam.out"), mem("dst.in")],
        "{:?}",
        p.relaxed
    );
    assert!(
        p.relaxed.iter().all(|r| r.detail.contains("vendor 'dev'")),
        "{:?}",
        p.relaxed
    );

    // Both pins prefer device memory no vendor serves: the default's host memory misses both.
    let device = || fx(DEVICE, PREF, 1, 1, 0, 0);
    let p = one(negotiate(&two(Some(device()), Some(device()), K, K)));
    assert_eq!(p.allocator.kind, AllocatorKind::Default);
    assert_eq!(names(&p), [mem("a.out"), mem("b.in")], "{:?}", p.relaxed);

    // A later preference another one already met stays unreported while it is served.
    let p = one(negotiate(&two(Some(paged()), Some(paged()), K, K)));
    assert_eq!(p.allocator.memory, MemoryKind::Paged);
    assert!(p.relaxed.is_empty(), "{:?}", p.relaxed);

    // A preference that lost to an earlier one is still honoured if the memory finally
    // served meets it: the device preference nobody serves falls back to host memory,
    // which meets b.in's paged preference (only a.out is reported).
    let p = one(negotiate(&two(Some(device()), Some(paged()), K, K)));
    assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
    assert_eq!(names(&p), [mem("a.out")], "{:?}", p.relaxed);

    // cam.out's paged preference refines the memory, dst.in prefers user memory; the vendor
    // serves user memory, which meets both: nothing is reported.
    let caps = VendorCapabilities::new(vec![MemoryType::USER]).with_honours(RequirementFlags(0));
    let user = || fx(MemoryType::USER, PREF, 1, 1, 0, 0);
    let p = one(negotiate(&vend_graph(
        vendor("v", caps).0,
        Some(paged()),
        Some(user()),
        K,
    )));
    assert_eq!(p.allocator.memory, MemoryKind::User);
    assert!(p.relaxed.is_empty(), "{:?}", p.relaxed);

    // Still unmet in the end: reported, naming the memory served when it is not the reason's.
    let caps = VendorCapabilities::new(vec![NP]).with_honours(RequirementFlags(0));
    let p = one(negotiate(&vend_graph(
        vendor("v", caps).0,
        Some(paged()),
        Some(user()),
        K,
    )));
    assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
    assert_eq!(names(&p), [mem("dst.in")], "{:?}", p.relaxed);
    assert!(
        p.relaxed[0]
            .detail
            .contains("KSMEMORY_TYPE_KERNEL_NONPAGED is served"),
        "{:?}",
        p.relaxed
    );
}

#[test]
fn a_pipe_of_exactly_max_frames_is_accepted_one_more_is_a_frames_conflict() {
    // 65 000 + 535 = 65 535 = `ks_alloc::MAX_FRAMES`: what one allocator holds.
    let p = one(negotiate(&two(
        Some(frames(65_000)),
        Some(frames(535)),
        K,
        K,
    )));
    assert_eq!(p.framing.frames, 65_535);
    assert_eq!(ks_alloc::MAX_FRAMES, 65_535);

    // One frame more: a Frames conflict.
    let e = err(negotiate(&two(
        Some(frames(65_000)),
        Some(frames(536)),
        K,
        K,
    )));
    assert_eq!(e.conflicts.len(), 1, "{e}");
    assert_eq!(e.conflicts[0].field, ConflictField::Frames, "{e}");
    assert!(e.conflicts[0].detail.contains("65536"), "{e}");

    // The same boundary when the item search decides: a.out's preferred item makes exactly
    // 65 535 frames and is taken; making 65 536 it is passed over for the next item.
    let p = one(negotiate(&two(
        Some(alt(frames(65_000), frames(1))),
        Some(frames(535)),
        K,
        K,
    )));
    assert_eq!(p.items, [Some(0), Some(0)]);
    assert_eq!(p.framing.frames, 65_535);
    let p = one(negotiate(&two(
        Some(alt(frames(65_000), frames(1))),
        Some(frames(536)),
        K,
        K,
    )));
    assert_eq!(p.items, [Some(1), Some(0)]);
    assert_eq!(p.framing.frames, 537);
}

#[test]
fn a_frames_conflict_names_every_pin_that_sets_frames() {
    let e = err(negotiate(&two(
        Some(frames(40_000)),
        Some(frames(30_000)),
        K,
        K,
    )));
    assert_eq!(e.conflicts.len(), 1, "{e}");
    assert_eq!(e.conflicts[0].field, ConflictField::Frames);
    assert_eq!(e.conflicts[0].pins, ["a.out", "b.in"], "{e}");
}

#[test]
fn a_preference_only_must_allocate_pin_ranks_its_vendor_first_and_else_owns_the_default() {
    let must_pref = || fx(ANY, ItemFlags::MUST_ALLOCATE | PREF, 1, 1, 0, 0);
    // dst's preference-only MUST_ALLOCATE pin offers a vendor; cam.out's vendor is earlier in
    // pipe order, yet dst's is ranked first.
    let g = Net::new()
        .f(
            "cam",
            source(K, out_pin(None).with_vendor(vendor("up", caps()).0)),
        )
        .f(
            "dst",
            sink(
                K,
                in_pin(Some(must_pref())).with_vendor(vendor("down", caps()).0),
            ),
        )
        .c("cam.out", "dst.in")
        .build();
    let p = one(negotiate(&g));
    assert_eq!(p.allocator.kind, AllocatorKind::Vendor);
    assert_eq!(
        (p.allocator.name.as_str(), p.allocator.pin.as_str()),
        ("down", "dst.in")
    );
    assert_eq!(rejected_codes(&p, "up"), [RejectCode::Outranked]);
    assert!(
        p.relaxed.iter().all(|r| r.field != ConflictField::Flags),
        "{:?}",
        p.relaxed
    );

    // No vendor anywhere: the default allocator sits at the preference-only MUST_ALLOCATE
    // pin, not at the pipe's root.
    let p = one(negotiate(&two(None, Some(must_pref()), K, K)));
    assert_eq!(p.allocator.kind, AllocatorKind::Default);
    assert_eq!(p.allocator.pin, "b.in");
    assert!(p.relaxed.is_empty(), "{:?}", p.relaxed);
}

#[test]
fn a_stated_minimum_of_one_byte_is_a_minimum() {
    // The smallest size of at least one byte, not a page.
    let p = one(negotiate(&two(
        Some(phys(frames(1), 1, 10_000, 1)),
        None,
        K,
        K,
    )));
    assert_eq!(p.framing.frame_size, 1);
    // With a stepping: the smallest multiple of 100 at or above 1 (not 4100, the smallest at
    // or above a page).
    let p = one(negotiate(&two(
        Some(phys(frames(1), 1, 10_000, 1)),
        Some(phys(frames(1), 0, 10_000, 100)),
        K,
        K,
    )));
    assert_eq!(p.framing.frame_size, 100);
}

#[test]
fn a_stepping_conflict_names_the_pins_that_set_steppings() {
    // src.out sets both bounds; x.in only a stepping (≡ 1 mod 3); dst.in's stepping
    // (≡ 2 mod 3) never meets it.
    let g = Net::new()
        .f(
            "src",
            source(K, out_pin(Some(phys(frames(1), 200, 1000, 1)))),
        )
        .f(
            "x",
            passthru(
                K,
                in_pin(Some(phys(frames(1), 100, 1000, 3))),
                out_pin(None),
            ),
        )
        .f("dst", sink(K, in_pin(Some(phys(frames(1), 101, 1000, 3)))))
        .c("src.out", "x.in")
        .c("x.out", "dst.in")
        .build();
    let e = err(negotiate(&g));
    assert_eq!(e.conflicts.len(), 1, "{e}");
    assert_eq!(e.conflicts[0].field, ConflictField::FrameSize);
    assert!(
        e.conflicts[0].pins.iter().any(|p| p == "x.in"),
        "the pin that set the stepping is named: {e}"
    );
    assert!(
        e.conflicts[0].pins.iter().any(|p| p == "dst.in"),
        "the pin that could not fit is named: {e}"
    );
}

#[test]
fn a_preference_only_system_memory_is_reported_when_the_vendor_serves_device_memory() {
    // The vendor honours SYSTEM_MEMORY but serves device memory: the preference is not met.
    let caps = VendorCapabilities::new(vec![DEVICE]).with_honours(RequirementFlags::SYSTEM_MEMORY);
    let p = one(negotiate(&vend_graph(
        vendor("dev", caps).0,
        Some(fx(ANY, ItemFlags::SYSTEM_MEMORY | PREF, 1, 1, 0, 0)),
        None,
        K,
    )));
    assert_eq!(
        (p.allocator.kind, p.allocator.memory),
        (AllocatorKind::Vendor, MemoryKind::Device)
    );
    let x = p
        .relaxed
        .iter()
        .find(|x| x.field == ConflictField::Flags)
        .unwrap_or_else(|| panic!("SYSTEM_MEMORY preference not reported: {:?}", p.relaxed));
    assert_eq!(x.pin, "cam.out");
    assert!(x.detail.contains("SYSTEM_MEMORY"), "{}", x.detail);
}

#[test]
fn the_error_explains_the_preferred_pairwise_compatible_combination_over_a_longer_prefix() {
    // (0,0): compatible pin by pin, but two hard MUST_ALLOCATE pins (whole-pipe Flags).
    // (1,0): user vs non-paged memory on a kernel pipe: b.in has no compatible item, so
    // the furthest prefix is [1]. The complete preferred combination is explained.
    let g = two(
        Some(alt(
            fx(NP, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0),
            fx(USR, NONE, 1, 1, 0, 0),
        )),
        Some(fx(NP, ItemFlags::MUST_ALLOCATE, 1, 1, 0, 0)),
        K,
        K,
    );
    let e = err(negotiate(&g));
    assert!(e.alternatives_tried);
    assert_eq!(e.items, [Some(0), Some(0)], "{e}");
    assert_eq!(e.conflicts.len(), 1, "{e}");
    assert_eq!(e.conflicts[0].field, ConflictField::Flags, "{e}");
    assert_eq!(e.conflicts[0].pins, ["a.out", "b.in"], "{e}");
}

#[test]
fn a_vendor_serving_several_memory_types_serves_the_preferred_one() {
    // Nothing is required; dst.in prefers non-paged memory. The vendor offers paged first,
    // then non-paged: it serves non-paged, and no preference goes unmet.
    let caps = VendorCapabilities::new(vec![PG, NP]);
    let p = one(negotiate(&vend_graph(
        vendor("v", caps).0,
        None,
        Some(fx(NP, PREF, 1, 1, 0, 0)),
        K,
    )));
    assert_eq!(p.allocator.kind, AllocatorKind::Vendor);
    assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
    assert_eq!(p.framing.memory_type, "KSMEMORY_TYPE_KERNEL_NONPAGED");
    assert!(p.relaxed.is_empty(), "{:?}", p.relaxed);
}

/// A vendor serves a host memory type only if its frames (`DynVendor::memory`) meet it: one
/// that declares non-paged memory but maps pageable frames does not serve a pipe that
/// requires non-paged memory (its frames would fault, and offer no function table).
#[test]
fn a_vendor_whose_frames_do_not_meet_its_declared_memory_is_refused_for_it() {
    use ks_alloc::{DefaultVendor, Memory};
    use ks_graph::{MemoryKind, RejectCode, VendorCapabilities, VendorSpec};
    use std::sync::Arc;
    let declares = |frames: Memory, types: Vec<MemoryType>| {
        VendorSpec::new(
            "dev",
            Arc::new(DefaultVendor { memory: frames }),
            VendorCapabilities::new(types),
        )
    };
    let nonpaged = Some(fx(NP, ItemFlags::empty(), 2, 64, 4096, 4096));
    // Declares non-paged, maps pageable frames: refused, the default allocator serves.
    let v = declares(Memory::Paged, vec![NP]);
    let plan = ks_graph::negotiate(&vend_graph(v, nonpaged.clone(), None, K)).unwrap();
    let p = &plan.pipes[0];
    assert_eq!(p.allocator.kind, AllocatorKind::Default);
    assert_eq!(p.allocator.memory, MemoryKind::NonPaged);
    let r = &p.rejected[0];
    assert_eq!(r.codes, [RejectCode::MemoryType], "{}", r.reason);
    assert!(
        r.reason
            .contains("its frames are KSMEMORY_TYPE_KERNEL_PAGED memory"),
        "{}",
        r.reason
    );
    // Its frames really are non-paged: chosen, as before.
    let v = declares(Memory::NonPaged, vec![NP]);
    let plan = ks_graph::negotiate(&vend_graph(v, nonpaged, None, K)).unwrap();
    assert_eq!(plan.pipes[0].allocator.kind, AllocatorKind::Vendor);
    // A wildcard offer serves what its frames are: pageable frames on a pipe that asks for
    // nothing are paged memory in the plan, not non-paged.
    let v = declares(Memory::Paged, vec![MemoryType::WILDCARD]);
    let plan = ks_graph::negotiate(&vend_graph(v, None, None, K)).unwrap();
    let p = &plan.pipes[0];
    assert_eq!(
        (p.allocator.kind, p.allocator.memory),
        (AllocatorKind::Vendor, MemoryKind::Paged)
    );
}
