//! Property tests over random graphs: whenever negotiation succeeds, the plan's framing
//! satisfies every non-preference requirement of every pin of its pipe, every connected pin
//! is in exactly one pipe (unconnected pins in none), chosen vendors meet their declared
//! capabilities, `relaxed` reports an optimal range exactly when the frame size lies outside
//! it (and a memory preference the memory served misses, a MUST_ALLOCATE preference when
//! another pin allocates), and after STOP → ACQUIRE the vendor initialize calls equal the
//! vendors chosen (and after ACQUIRE → STOP every initialized vendor was deleted). Pins carry
//! one to three framing items; a brute-force enumeration of the item combinations of small
//! pipes checks that the search is complete (a pipe some combination satisfies is never
//! reported as a conflict) and picks the preferred combination (the first satisfying one in
//! pipe order).

mod negotiation_support;

use std::sync::Arc;

use ks_alloc::{
    Alignment, FrameRange, FramingEx, FramingItem, ItemFlags, MemoryType, RequirementFlags,
};
use ks_graph::{
    AllocatorKind, ConflictField, FilterDescriptor, FilterMode, Graph, GraphBuilder, KsState,
    MemoryKind, PinDescriptor, PinDirection, PinId, Routing, VendorCapabilities, negotiate,
};
use negotiation_support::{Counts, vendor};
use proptest::prelude::*;

const MEMS: [MemoryType; 6] = [
    MemoryType::WILDCARD,
    MemoryType::KERNEL_NONPAGED,
    MemoryType::KERNEL_PAGED,
    MemoryType::USER,
    MemoryType::SYSTEM,
    // Device memory: only a vendor that declares it can serve it.
    MemoryType::from_u128(0x0bad_cafe_0000_4000_8000_0000_0000_0001),
];

#[derive(Debug, Clone)]
struct ItemSpec {
    mem: usize,
    flags: u32,
    frames: u32,
    align_pow: u32,
    phys: Option<(u32, u32, u32)>,
    opt: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
struct VendorSpecGen {
    mems: Vec<usize>,
    size: (u32, u32, u32),
    align_pow: u32,
    max_frames: u32,
    honours: u32,
}

#[derive(Debug, Clone)]
struct PinSpec {
    items: Option<Vec<ItemSpec>>,
    vendor: Option<VendorSpecGen>,
    in_place: bool,
}

#[derive(Debug, Clone)]
struct FilterSpec {
    user: bool,
    pass: bool,
    inputs: usize,
    outputs: Vec<PinSpec>,
    input_pins: Vec<PinSpec>,
}

fn item() -> impl Strategy<Value = ItemSpec> {
    (
        0usize..MEMS.len(),
        prop::sample::select(vec![
            0u32,
            0x2,
            0x4,
            0x8,
            0x8000_0000,
            0x8000_0002,
            0x8000_0008,
            0x8000_0004,
            0x6,
        ]),
        // Now and then a count that, summed along a pipe, passes what one allocator holds
        // (`MAX_FRAMES`, 65 535): the search must treat such combinations as dead.
        prop_oneof![8 => 0u32..4, 1 => Just(40_000u32)],
        0u32..7,
        prop::option::weighted(0.4, (0u32..3000, 0u32..3000, 0u32..5)),
        prop::option::weighted(0.4, (1u32..3000, 0u32..2000)),
    )
        .prop_map(|(mem, flags, frames, align_pow, phys, opt)| ItemSpec {
            mem,
            flags,
            frames,
            align_pow,
            phys,
            opt,
        })
}

fn vendor_gen() -> impl Strategy<Value = VendorSpecGen> {
    (
        prop::collection::vec(0usize..MEMS.len(), 1..3),
        (0u32..2000, 1000u32..8000, 0u32..3),
        0u32..8,
        1u32..40,
        prop::sample::select(vec![0u32, 2, 4, 6]),
    )
        .prop_map(
            |(mems, size, align_pow, max_frames, honours)| VendorSpecGen {
                mems,
                size,
                align_pow,
                max_frames,
                honours,
            },
        )
}

fn pin() -> impl Strategy<Value = PinSpec> {
    (
        prop::option::weighted(0.7, prop::collection::vec(item(), 1..4)),
        prop::option::weighted(0.3, vendor_gen()),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(items, vendor, in_place)| PinSpec {
            items,
            vendor,
            in_place,
        })
}

fn filter() -> impl Strategy<Value = FilterSpec> {
    (
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.5),
        0usize..3,
        prop::collection::vec(pin(), 1..4),
        prop::collection::vec(pin(), 2),
    )
        .prop_map(|(user, pass, inputs, outputs, input_pins)| {
            let inputs = if pass { 1 } else { inputs };
            FilterSpec {
                user,
                pass,
                inputs,
                outputs,
                input_pins,
            }
        })
}

fn build_item(s: &ItemSpec) -> FramingItem {
    let mut i = FramingEx::simple(
        MEMS[s.mem],
        ItemFlags(s.flags),
        s.frames,
        Alignment::from_bytes(1 << s.align_pow).unwrap(),
        0,
        0,
    )
    .items
    .remove(0);
    if let Some((min, w, step)) = s.phys {
        i.physical_range = FrameRange {
            min,
            max: (min + w).max(1),
            stepping: step * 64,
        };
    }
    if let Some((min, w)) = s.opt {
        i.framing_range = FrameRange {
            min,
            max: min + w,
            stepping: 1,
        };
    }
    i
}

type Vendors = Vec<(PinId, Arc<Counts>, VendorCapabilities)>;

fn build_pin(
    p: &PinSpec,
    d: PinDescriptor,
    counts: &mut Vec<(String, Arc<Counts>, VendorCapabilities)>,
    pin_name: String,
) -> PinDescriptor {
    let mut d = d;
    if let Some(items) = &p.items {
        d = d.with_framing(FramingEx {
            pin_flags: 0,
            output_compression: ks_alloc::Compression::IDENTITY,
            pin_weight: 0,
            items: items.iter().map(build_item).collect(),
        });
    }
    if let Some(v) = &p.vendor {
        let caps = VendorCapabilities::new(v.mems.iter().map(|&m| MEMS[m]).collect())
            .with_frame_size(v.size.0, v.size.0 + v.size.1, v.size.2 * 64)
            .with_max_alignment(Alignment::from_bytes(1 << v.align_pow).unwrap())
            .with_max_frames(v.max_frames)
            .with_honours(RequirementFlags(v.honours));
        let (spec, c) = vendor(&pin_name, caps.clone());
        counts.push((pin_name, c, caps));
        d = d.with_vendor(spec);
    }
    if p.in_place {
        d = d.in_place();
    }
    d
}

fn build(filters: &[FilterSpec], wiring: &[usize]) -> (Graph, Vendors) {
    let mut b = GraphBuilder::new();
    let mut counts = Vec::new();
    let mut free_outputs: Vec<String> = Vec::new();
    let mut w = wiring.iter().cycle();
    let mut connections = Vec::new();
    for (fi, f) in filters.iter().enumerate() {
        let name = format!("f{fi}");
        let mode = if f.user {
            FilterMode::User
        } else {
            FilterMode::Kernel
        };
        let mut d = FilterDescriptor::new(name.clone(), mode).with_routing(if f.pass {
            Routing::PassThrough
        } else {
            Routing::Copy
        });
        for i in 0..f.inputs {
            let p = &f.input_pins[i % f.input_pins.len()];
            d = d.with_pin(build_pin(
                p,
                PinDescriptor::input(format!("i{i}")),
                &mut counts,
                format!("{name}.i{i}"),
            ));
            // Wire this input to a free earlier output, or leave it unconnected.
            // (one value in eight leaves it unconnected).
            let r = w.next().copied().unwrap_or(0);
            if r != 7 && !free_outputs.is_empty() {
                let from = free_outputs.swap_remove(r % free_outputs.len());
                connections.push((from, format!("{name}.i{i}")));
            }
        }
        for (o, p) in f.outputs.iter().enumerate() {
            d = d.with_pin(build_pin(
                p,
                PinDescriptor::output(format!("o{o}")),
                &mut counts,
                format!("{name}.o{o}"),
            ));
            free_outputs.push(format!("{name}.o{o}"));
        }
        b.add_filter(name, Arc::new(d)).unwrap();
    }
    for (from, to) in connections {
        b.connect(&from, &to).unwrap();
    }
    let g = b.build().unwrap();
    let vendors = counts
        .into_iter()
        .map(|(n, c, caps)| (g.pin(&n).unwrap(), c, caps))
        .collect();
    (g, vendors)
}

/// Memory `offered` meets requirement `req` (the documented lattice).
fn satisfies(offered: MemoryType, req: MemoryType) -> bool {
    let norm = |m: MemoryType| {
        if m == MemoryType::SYSTEM {
            MemoryType::KERNEL_NONPAGED
        } else {
            m
        }
    };
    let (o, r) = (norm(offered), norm(req));
    r.is_wildcard()
        || o == r
        || (r == MemoryType::KERNEL_PAGED
            && (o == MemoryType::KERNEL_NONPAGED || o == MemoryType::USER))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn plans_satisfy_every_pin(
        filters in prop::collection::vec(filter(), 2..9),
        wiring in prop::collection::vec(0usize..8, 1..24),
    ) {
        let (mut g, vendors) = build(&filters, &wiring);
        let plan = match negotiate(&g) {
            Ok(p) => p,
            Err(e) => {
                // Failures must name pins of the graph and at least one conflict.
                prop_assert!(!e.conflicts.is_empty());
                for c in &e.conflicts {
                    for p in &c.pins {
                        prop_assert!(g.pin(p).is_ok(), "unknown pin {} in {}", p, e);
                    }
                }
                return Ok(());
            }
        };

        // Every connected pin in exactly one pipe; unconnected pins in none.
        for f in g.filter_ids() {
            for p in g.pins(f) {
                let n = plan.pipes.iter().filter(|pp| pp.contains(p)).count();
                let expect = usize::from(g.peer(p).is_some());
                prop_assert_eq!(n, expect, "pin {}", g.pin_name(p));
                if expect == 1 {
                    prop_assert!(plan.pipe_of(p).unwrap().contains(p));
                }
            }
        }

        for pipe in &plan.pipes {
            let fr = &pipe.framing;
            prop_assert!(fr.frame_size >= 1 && fr.frames >= 1);
            prop_assert_eq!(pipe.pin_ids[0], g.pin(&pipe.root).unwrap());
            prop_assert_eq!(g.pin_descriptor(pipe.pin_ids[0]).direction, PinDirection::Out);
            let user = pipe.pin_ids.iter().any(|&p| g.filter_mode(p.filter()) == FilterMode::User);
            prop_assert_eq!(pipe.mode == FilterMode::User, user);
            if user {
                prop_assert_eq!(pipe.allocator.memory, MemoryKind::User);
                prop_assert_eq!(pipe.allocator.kind, AllocatorKind::Default);
            }
            let mut frames_sum = 0u64;
            for (k, &p) in pipe.pin_ids.iter().enumerate() {
                let Some(n) = pipe.items[k] else {
                    continue;
                };
                let item = &g.pin_framing(p).unwrap().items[n];
                let pref = item.flags.requirements().contains(RequirementFlags::PREFERENCES_ONLY);
                frames_sum += item.frames as u64;
                if item.physical_range.max != 0 {
                    prop_assert!(item.physical_range.contains(fr.frame_size),
                        "{}: size {} outside {:?}", pipe.pins[k], fr.frame_size, item.physical_range);
                }
                // An optimal range is reported (a frame-size relaxation of its pin) exactly
                // when the size lies outside it: none is dropped silently, none reported
                // while honoured.
                if item.framing_range.max != 0 {
                    let reported = pipe.relaxed.iter().any(|r| {
                        r.pin == pipe.pins[k] && r.field == ConflictField::FrameSize
                    });
                    prop_assert_eq!(reported, !item.framing_range.contains(fr.frame_size),
                        "{}: size {} and optimal range {:?}: {:?}",
                        pipe.pins[k], fr.frame_size, item.framing_range, pipe.relaxed);
                }
                // A memory preference is reported exactly when the memory served does not
                // meet it (on a kernel pipe; a user pipe overrides every kernel pin's wish).
                if pref && !user {
                    prop_assert_eq!(
                        pipe.relaxed.iter().any(|r| r.pin == pipe.pins[k] && r.field == ConflictField::MemoryType),
                        !satisfies(fr.memory, item.memory_type),
                        "{}: prefers {}, served {}: {:?}",
                        pipe.pins[k], item.memory_type, fr.memory, pipe.relaxed
                    );
                }
                // A MUST_ALLOCATE preference its pin does not get is reported.
                if pref
                    && item.flags.requirements().contains(RequirementFlags::MUST_ALLOCATE)
                    && pipe.allocator.pin_id != p
                {
                    prop_assert!(
                        pipe.relaxed.iter().any(|r| r.pin == pipe.pins[k] && r.field == ConflictField::Flags),
                        "{}: MUST_ALLOCATE preference, '{}' allocates: {:?}",
                        pipe.pins[k], pipe.allocator.pin, pipe.relaxed
                    );
                }
                prop_assert!(fr.alignment >= item.alignment.bytes());
                prop_assert!(fr.frames >= item.frames);
                if !user && !pref {
                    prop_assert!(satisfies(fr.memory, item.memory_type),
                        "{}: {} does not satisfy {}", pipe.pins[k], fr.memory, item.memory_type);
                    let req = item.flags.requirements();
                    if req.contains(RequirementFlags::MUST_ALLOCATE) {
                        prop_assert_eq!(pipe.allocator.pin_id, p);
                    }
                    if req.contains(RequirementFlags::SYSTEM_MEMORY) {
                        prop_assert!(pipe.allocator.memory != MemoryKind::Device);
                    }
                    if req.contains(RequirementFlags::FRAME_INTEGRITY) {
                        for &q in &pipe.pin_ids[k + 1..] {
                            prop_assert!(!g.pin_descriptor(q).modifies_in_place);
                        }
                    }
                }
            }
            prop_assert_eq!(fr.frames as u64, if frames_sum == 0 { 2 } else { frames_sum });
            if pipe.allocator.kind == AllocatorKind::Vendor {
                prop_assert!(!user);
                let (_, _, caps) = vendors.iter().find(|v| v.0 == pipe.allocator.pin_id).unwrap();
                prop_assert!(caps.frame_size.contains(fr.frame_size));
                prop_assert!(fr.alignment <= caps.max_alignment.bytes());
                prop_assert!(fr.frames <= caps.max_frames);
                // Hard SYSTEM_MEMORY / FRAME_INTEGRITY only go to a vendor that honours them.
                prop_assert_eq!(fr.requirements & 0x6 & !caps.honours.bits(), 0);
            }
        }

        // STOP → ACQUIRE: initialize calls == vendors chosen, each chosen one exactly once.
        // Only for plans whose default allocators lock at most 4 MiB: the large frame counts
        // above are for the search, and locking hundreds of megabytes would fail under a
        // common RLIMIT_MEMLOCK (8 MiB) without CAP_IPC_LOCK.
        let locked: u64 = plan
            .pipes
            .iter()
            .filter(|p| p.allocator.kind == AllocatorKind::Default && p.allocator.memory == MemoryKind::NonPaged)
            .map(|p| u64::from(p.framing.frames) * u64::from(p.framing.frame_size))
            .sum();
        if locked > 4 << 20 {
            return Ok(());
        }
        g.set_state(KsState::Acquire).unwrap();
        let inits: usize = vendors.iter().map(|v| v.1.inits()).sum();
        prop_assert_eq!(inits, plan.vendors_chosen());
        for (pin, c, _) in &vendors {
            let chosen = plan.pipes.iter().any(|p| p.allocator.kind == AllocatorKind::Vendor && p.allocator.pin_id == *pin);
            prop_assert_eq!(c.inits(), usize::from(chosen));
        }
        prop_assert_eq!(g.allocators().len(), plan.pipes.len());
        g.set_state(KsState::Stop).unwrap();
        for (_, c, _) in &vendors {
            prop_assert_eq!(c.deletes(), c.inits());
        }
    }
}

/// Whether pipe `pipe` negotiates with the framing of `graph` as it is (every other pipe is
/// unchanged by edits to this pipe's pins, and `negotiate` stops at the first failing pipe).
fn pipe_ok(g: &Graph, pipe: usize) -> bool {
    match negotiate(g) {
        Ok(_) => true,
        Err(e) => e.pipe != pipe,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Brute force over the framing-item combinations of every small pipe (at most 64
    /// combinations), each tried by reducing every pin to the one item (KsEdit): if one
    /// satisfies the pipe, negotiation must not report the pipe as a conflict, and when it
    /// succeeds the plan's items are the first satisfying combination in preference order
    /// (pins in pipe order, items in declared order, later pins varying fastest).
    #[test]
    fn item_search_is_complete_and_preferred(
        filters in prop::collection::vec(filter(), 2..7),
        wiring in prop::collection::vec(0usize..8, 1..24),
    ) {
        let (mut g, _vendors) = build(&filters, &wiring);
        let outcome = negotiate(&g);
        let failing = outcome.as_ref().err().map(|e| e.pipe);
        for (pi, pins) in ks_graph::negotiate::pipes(&g).iter().enumerate() {
            if failing.is_some_and(|f| pi > f) {
                break; // later pipes were never negotiated
            }
            let framings: Vec<(PinId, FramingEx)> = pins
                .iter()
                .filter_map(|&p| g.pin_framing(p).filter(|f| !f.items.is_empty()).map(|f| (p, f.clone())))
                .collect();
            let total: usize = framings.iter().map(|(_, f)| f.items.len()).product();
            if total > 64 {
                continue;
            }
            // Lexicographic order: the last pin's item varies fastest.
            let mut first_ok: Option<Vec<usize>> = None;
            for mut code in 0..total {
                let mut combo = vec![0; framings.len()];
                for (j, (_, f)) in framings.iter().enumerate().rev() {
                    combo[j] = code % f.items.len();
                    code /= f.items.len();
                }
                for (j, (p, f)) in framings.iter().enumerate() {
                    let mut one = f.clone();
                    one.items = vec![f.items[combo[j]].clone()];
                    g.set_pin_framing(*p, one).unwrap();
                }
                let ok = pipe_ok(&g, pi);
                for (p, _) in &framings {
                    g.reset_pin_framing(*p).unwrap();
                }
                if ok {
                    first_ok = Some(combo);
                    break;
                }
            }
            match (&outcome, first_ok) {
                (Err(e), Some(c)) => prop_assert!(
                    e.pipe != pi,
                    "pipe {} is satisfied by items {:?} but negotiation reports: {}", pi, c, e
                ),
                (Err(e), None) => {
                    if e.pipe == pi {
                        let tried = framings.iter().any(|(_, f)| f.items.len() > 1);
                        prop_assert_eq!(e.alternatives_tried, tried);
                    }
                }
                (Ok(plan), Some(c)) => {
                    let pp = &plan.pipes[pi];
                    let chosen: Vec<usize> = pp
                        .items
                        .iter()
                        .zip(&pp.pin_ids)
                        .filter(|(_, p)| framings.iter().any(|(q, _)| q == *p))
                        .map(|(i, _)| i.unwrap())
                        .collect();
                    prop_assert_eq!(chosen, c, "pipe {}: {}", pi, plan.to_json());
                }
                (Ok(plan), None) => prop_assert!(
                    false,
                    "pipe {} negotiated ({}) but no single combination does", pi, plan.to_json()
                ),
            }
        }
    }
}
