//! The KS byte surface under random request sequences, against a model.
//!
//! A KS client speaks to the allocator in bytes: property, method and event headers it built
//! itself, data buffers of any length, and frame addresses it may have kept too long, made up
//! or taken from another allocator. Each case runs a random sequence of such requests on a
//! small allocator and checks every reply against the status policy of `request.rs` and a
//! model of the frames: which addresses are out, which requests are pending and which of
//! them have been handed a frame (always the oldest, behaviour 26). After every step the
//! allocator's STATUS agrees with the model; a FREE of an address the allocator does not have
//! out changes nothing (STATUS_INVALID_PARAMETER); no frame is handed out twice or lost; and
//! at the end, with every frame back, AllocatedFrames is 0.
#![cfg(not(loom))]

use std::collections::{HashSet, VecDeque};

use ks_alloc::{
    Alignment, Allocator, CommonBuffer, Framing, Memory, PendingAlloc, PoolType, Status,
};
use ks_sys::{
    GUID, KSEVENT_STREAMALLOCATOR_FREEFRAME, KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME,
    KSEVENT_TYPE_BASICSUPPORT, KSEVENT_TYPE_ENABLE, KSEVENT_TYPE_ENABLEBUFFERED,
    KSEVENT_TYPE_ONESHOT, KSEVENT_TYPE_QUERYBUFFER, KSEVENT_TYPE_SETSUPPORT, KSEVENT_TYPE_TOPOLOGY,
    KSEVENTSETID_StreamAllocator, KSMETHOD_STREAMALLOCATOR_ALLOC, KSMETHOD_STREAMALLOCATOR_FREE,
    KSMETHODSETID_StreamAllocator, KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
    KSPROPERTY_STREAMALLOCATOR_STATUS, KSPROPERTY_TYPE_BASICSUPPORT, KSPROPERTY_TYPE_GET,
    KSPROPERTY_TYPE_TOPOLOGY, KSPROPSETID_Connection, KSPROPSETID_StreamAllocator,
};
use proptest::prelude::*;

const PTR: usize = std::mem::size_of::<usize>();
const FRAME_SIZE: u32 = 512;

/// Which property / method / event set a header names.
#[derive(Debug, Clone, Copy)]
enum Set {
    /// The set the request kind expects.
    Right,
    /// One of the allocator's other sets, or another KS set.
    Other(u8),
}

/// Where a FREE points.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The k-th address out now (modulo their number).
    Out(usize),
    /// Inside the k-th address out now, `1..FRAME_SIZE` bytes past its start.
    Interior(usize, u32),
    /// An address handed out earlier and freed since.
    Stale(usize),
    /// A frame of another allocator.
    Foreign,
    /// Any number at all.
    Any(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Property {
        set: Set,
        id: u32,
        flags: u32,
        header_len: usize,
        data_len: usize,
    },
    Alloc {
        set: Set,
        data_len: usize,
    },
    Free {
        target: Target,
        data_len: usize,
    },
    /// `try_complete` on the k-th pending request.
    Complete(usize),
    /// Drops the k-th pending request (a cancel, or a hand-back if it was granted).
    Cancel(usize),
    Event {
        set: Set,
        id: u32,
        flags: u32,
        header_len: usize,
    },
    /// A method with an id that is neither ALLOC nor FREE.
    MethodId(u32),
}

fn set_strategy() -> impl Strategy<Value = Set> {
    prop_oneof![4 => Just(Set::Right), 1 => (0u8..4).prop_map(Set::Other)]
}

fn header_len() -> impl Strategy<Value = usize> {
    prop_oneof![6 => Just(24usize), 1 => 0usize..24, 1 => 25usize..40]
}

/// `KSEVENT` flags: mostly the valid requests, sometimes none, several, unsupported or
/// unknown ones.
fn event_flags() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => Just(KSEVENT_TYPE_ENABLE),
        1 => Just(KSEVENT_TYPE_ONESHOT),
        1 => Just(KSEVENT_TYPE_ENABLE | KSEVENT_TYPE_ONESHOT),
        1 => Just(KSEVENT_TYPE_SETSUPPORT),
        1 => Just(KSEVENT_TYPE_BASICSUPPORT),
        1 => Just(0),
        1 => Just(KSEVENT_TYPE_ENABLEBUFFERED),
        1 => Just(KSEVENT_TYPE_QUERYBUFFER),
        1 => Just(KSEVENT_TYPE_ENABLE | KSEVENT_TYPE_TOPOLOGY),
        1 => Just(KSEVENT_TYPE_ENABLE | KSEVENT_TYPE_BASICSUPPORT),
        1 => any::<u32>(),
    ]
}

/// What the status policy makes of event flags on FREEFRAME (request.rs).
#[derive(Debug, PartialEq)]
enum EventAnswer {
    Enabled,
    Supported,
    InvalidParameter,
    InvalidDeviceRequest,
}

fn event_answer(flags: u32) -> EventAnswer {
    const KNOWN: u32 = KSEVENT_TYPE_ENABLE
        | KSEVENT_TYPE_ONESHOT
        | KSEVENT_TYPE_ENABLEBUFFERED
        | KSEVENT_TYPE_SETSUPPORT
        | KSEVENT_TYPE_BASICSUPPORT
        | KSEVENT_TYPE_QUERYBUFFER
        | KSEVENT_TYPE_TOPOLOGY;
    if flags & !KNOWN != 0 {
        return EventAnswer::InvalidParameter;
    }
    let answer = match flags & !KSEVENT_TYPE_TOPOLOGY {
        0x1..=0x3 => EventAnswer::Enabled,
        KSEVENT_TYPE_SETSUPPORT | KSEVENT_TYPE_BASICSUPPORT => EventAnswer::Supported,
        KSEVENT_TYPE_ENABLEBUFFERED | KSEVENT_TYPE_QUERYBUFFER => {
            return EventAnswer::InvalidDeviceRequest;
        }
        _ => return EventAnswer::InvalidParameter,
    };
    if flags & KSEVENT_TYPE_TOPOLOGY != 0 {
        EventAnswer::InvalidDeviceRequest
    } else {
        answer
    }
}

/// `KSPROPERTY` flags: mostly GET, SET or both, sometimes another known request or unknown
/// bits.
fn property_flags() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 0u32..4,
        1 => Just(KSPROPERTY_TYPE_GET | KSPROPERTY_TYPE_TOPOLOGY),
        1 => Just(KSPROPERTY_TYPE_GET | KSPROPERTY_TYPE_BASICSUPPORT),
        1 => any::<u32>(),
    ]
}

/// Every `KSPROPERTY_TYPE_*` bit (GET, SET, the support and serialization requests,
/// DEFAULTVALUES, TOPOLOGY).
const PROPERTY_BITS: u32 = 0x0001_FF03 | KSPROPERTY_TYPE_TOPOLOGY;

fn op_strategy() -> impl Strategy<Value = Op> {
    let data_len = || prop_oneof![4 => Just(PTR), 1 => 0usize..PTR, 1 => PTR + 1..3 * PTR];
    prop_oneof![
        2 => (set_strategy(), 0u32..3, property_flags(), header_len(), 0usize..48).prop_map(
            |(set, id, flags, header_len, data_len)| Op::Property { set, id, flags, header_len, data_len }
        ),
        5 => (set_strategy(), data_len()).prop_map(|(set, data_len)| Op::Alloc { set, data_len }),
        5 => (
            prop_oneof![
                6 => any::<usize>().prop_map(Target::Out),
                1 => (any::<usize>(), 1..FRAME_SIZE).prop_map(|(k, o)| Target::Interior(k, o)),
                1 => any::<usize>().prop_map(Target::Stale),
                1 => Just(Target::Foreign),
                1 => any::<u64>().prop_map(Target::Any),
            ],
            data_len()
        )
            .prop_map(|(target, data_len)| Op::Free { target, data_len }),
        2 => any::<usize>().prop_map(Op::Complete),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => (set_strategy(), 0u32..3, event_flags(), header_len())
            .prop_map(|(set, id, flags, header_len)| Op::Event { set, id, flags, header_len }),
        1 => (2u32..u32::MAX).prop_map(Op::MethodId),
    ]
}

fn guid(right: GUID, set: Set) -> GUID {
    match set {
        Set::Right => right,
        Set::Other(k) => {
            let others = [
                KSPROPSETID_StreamAllocator,
                KSMETHODSETID_StreamAllocator,
                KSEVENTSETID_StreamAllocator,
                KSPROPSETID_Connection,
            ];
            let g = others[usize::from(k) % others.len()];
            if g == right {
                // Not the right set: the GUID with one byte changed.
                let mut b = g.to_le_bytes();
                b[15] ^= 0x5A;
                GUID::from_le_bytes(b)
            } else {
                g
            }
        }
    }
}

/// A KSIDENTIFIER of `len` bytes (cut short or padded with zeros).
fn header(set: GUID, id: u32, flags: u32, len: usize) -> Vec<u8> {
    let mut h = [
        &set.to_le_bytes()[..],
        &id.to_le_bytes(),
        &flags.to_le_bytes(),
    ]
    .concat();
    h.resize(len, 0);
    h
}

/// A pending ALLOC in the model: its handle, and the frame it has been handed, if any.
struct Pending {
    request: PendingAlloc,
    granted: Option<usize>,
}

struct Model {
    frames: u32,
    non_paged: bool,
    /// Addresses out to the client (completed ALLOCs, not yet freed).
    out: Vec<usize>,
    /// Addresses handed out before and not out now.
    stale: Vec<usize>,
    /// Pending ALLOCs, oldest first.
    pending: VecDeque<Pending>,
}

impl Model {
    fn granted(&self) -> usize {
        self.pending.iter().filter(|p| p.granted.is_some()).count()
    }

    /// Frames out of the allocator's hands: out to the client or granted to a request.
    fn allocated(&self) -> usize {
        self.out.len() + self.granted()
    }

    /// A frame came back (FREE, or a granted request dropped): the oldest request that has
    /// none gets it; otherwise it is free again.
    fn frame_back(&mut self, addr: usize) {
        match self.pending.iter_mut().find(|p| p.granted.is_none()) {
            Some(p) => p.granted = Some(addr),
            None => self.stale.push(addr),
        }
    }

    fn take_out(&mut self, addr: usize) {
        assert!(
            !self.out.contains(&addr) && !self.pending.iter().any(|p| p.granted == Some(addr)),
            "frame {addr:#x} handed out while already out"
        );
        assert_eq!(addr % 8, 0, "frame {addr:#x} is not QUAD-aligned");
        self.stale.retain(|&a| a != addr);
        self.out.push(addr);
    }
}

fn is<T>(r: &Result<T, Status>, f: impl Fn(&Status) -> bool) -> bool {
    matches!(r, Err(s) if f(s))
}

fn check(a: &Allocator, m: &Model) -> Result<(), TestCaseError> {
    let s = a.status();
    prop_assert_eq!(
        s.allocated_frames as usize,
        m.allocated(),
        "AllocatedFrames"
    );
    prop_assert_eq!(
        s.pending as usize,
        m.pending.len() - m.granted(),
        "pending requests"
    );
    Ok(())
}

/// The allocator under test.
#[derive(Debug, Clone, Copy)]
enum Backend {
    /// The default allocator over memory of this type.
    Default(Memory),
    /// A vendor allocator (the example common buffer, non-paged): its frees are looked up
    /// by address among the frames out, not computed from a region's offsets.
    Vendor,
}

fn run(ops: Vec<Op>, frames: u32, backend: Backend) -> Result<(), TestCaseError> {
    let framing = Framing {
        flags: 0,
        pool_type: PoolType::NON_PAGED,
        frames,
        frame_size: FRAME_SIZE,
        alignment: Alignment::QUAD,
    };
    let a = match backend {
        Backend::Default(memory) => Allocator::new(&framing, memory),
        Backend::Vendor => Allocator::with_vendor(
            &framing,
            std::sync::Arc::new(CommonBuffer {
                name: "dma",
                max_frame_size: FRAME_SIZE,
                max_frames: 4,
                alignment: Alignment::BYTES_64,
            }),
        ),
    }
    .expect("allocator");
    let other = Allocator::new(&framing, Memory::Paged).expect("the other allocator");
    let foreign = other
        .allocate_blocking(None)
        .expect("a frame of the other allocator");
    let mut m = Model {
        frames,
        non_paged: !matches!(backend, Backend::Default(Memory::Paged)),
        out: Vec::new(),
        stale: Vec::new(),
        pending: VecDeque::new(),
    };
    for op in ops {
        match op {
            Op::Property {
                set,
                id,
                flags,
                header_len,
                data_len,
            } => {
                let mut data = vec![0xEEu8; data_len];
                let h = header(
                    guid(KSPROPSETID_StreamAllocator, set),
                    id,
                    flags,
                    header_len,
                );
                let r = a.property(&h, &mut data);
                let get_only = flags == KSPROPERTY_TYPE_GET;
                if header_len < 24 {
                    prop_assert!(
                        is(&r.status, |s| matches!(s, Status::InvalidBufferSize(_))),
                        "{r:?}"
                    );
                } else if !matches!(set, Set::Right) {
                    prop_assert!(
                        is(&r.status, |s| matches!(s, Status::PropsetNotFound(_))),
                        "{r:?}"
                    );
                } else if id > 1 {
                    prop_assert!(is(&r.status, |s| matches!(s, Status::NotFound(_))), "{r:?}");
                } else if flags & !PROPERTY_BITS != 0 {
                    prop_assert!(
                        is(&r.status, |s| matches!(s, Status::InvalidParameter(_))),
                        "{r:?}"
                    );
                } else if !get_only {
                    prop_assert!(
                        is(&r.status, |s| matches!(s, Status::InvalidDeviceRequest(_))),
                        "{r:?}"
                    );
                } else if id == KSPROPERTY_STREAMALLOCATOR_STATUS {
                    if data_len < 32 {
                        prop_assert!(
                            is(&r.status, |s| matches!(
                                s,
                                Status::BufferTooSmall { required: 32, .. }
                            )),
                            "{r:?}"
                        );
                        prop_assert_eq!(r.information, 32, "the size required");
                    } else {
                        prop_assert_eq!(&r.status, &Ok(()));
                        prop_assert_eq!(r.information, 32);
                        prop_assert_eq!(&data[24..28], &(m.allocated() as u32).to_le_bytes());
                        prop_assert_eq!(&data[8..12], &m.frames.to_le_bytes(), "Frames");
                    }
                } else {
                    prop_assert_eq!(id, KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE);
                    if !m.non_paged {
                        prop_assert!(
                            is(&r.status, |s| matches!(s, Status::NotSupported(_))),
                            "{r:?}"
                        );
                    } else if data_len < 2 * PTR {
                        prop_assert!(
                            is(&r.status, |s| matches!(s, Status::BufferTooSmall { .. })),
                            "{r:?}"
                        );
                        prop_assert_eq!(r.information, 2 * PTR);
                    } else {
                        prop_assert_eq!(&r.status, &Ok(()));
                        prop_assert_eq!(r.information, 2 * PTR);
                    }
                }
            }
            Op::Alloc { set, data_len } => {
                let mut data = vec![0u8; data_len];
                let h = header(
                    guid(KSMETHODSETID_StreamAllocator, set),
                    KSMETHOD_STREAMALLOCATOR_ALLOC,
                    2,
                    24,
                );
                let (r, pending) = a.method(&h, &mut data);
                let free = m.frames as usize - m.allocated();
                if !matches!(set, Set::Right) {
                    prop_assert!(
                        is(&r.status, |s| matches!(s, Status::PropsetNotFound(_))),
                        "{r:?}"
                    );
                    prop_assert!(pending.is_none());
                } else if data_len < PTR {
                    // Behaviour 28: MinData is sizeof(PVOID).
                    prop_assert!(
                        is(&r.status, |s| matches!(
                            s,
                            Status::MoreEntries { required: PTR }
                        )),
                        "{r:?}"
                    );
                    prop_assert!(pending.is_none());
                } else if free > 0 {
                    prop_assert_eq!(&r.status, &Ok(()));
                    prop_assert_eq!(r.information, PTR);
                    prop_assert!(pending.is_none());
                    let mut b = [0u8; PTR];
                    b.copy_from_slice(&data[..PTR]);
                    m.take_out(usize::from_ne_bytes(b));
                } else {
                    prop_assert_eq!(&r.status, &Err(Status::Pending));
                    let request = pending.expect("a pending ALLOC returns its handle");
                    m.pending.push_back(Pending {
                        request,
                        granted: None,
                    });
                }
            }
            Op::Free { target, data_len } => {
                let addr = match target {
                    Target::Out(k) if !m.out.is_empty() => m.out[k % m.out.len()],
                    Target::Interior(k, o) if !m.out.is_empty() => {
                        m.out[k % m.out.len()] + o as usize
                    }
                    Target::Stale(k) if !m.stale.is_empty() => m.stale[k % m.stale.len()],
                    Target::Out(_) | Target::Interior(..) | Target::Stale(_) | Target::Foreign => {
                        foreign.addr()
                    }
                    Target::Any(x) => x as usize,
                };
                let mut data = vec![0u8; data_len];
                if data_len >= PTR {
                    data[..PTR].copy_from_slice(&addr.to_ne_bytes());
                }
                let h = header(
                    KSMETHODSETID_StreamAllocator,
                    KSMETHOD_STREAMALLOCATOR_FREE,
                    2,
                    24,
                );
                let (r, pending) = a.method(&h, &mut data);
                prop_assert!(pending.is_none());
                if data_len < PTR {
                    prop_assert!(
                        is(&r.status, |s| matches!(
                            s,
                            Status::MoreEntries { required: PTR }
                        )),
                        "{r:?}"
                    );
                } else if let Some(i) = m.out.iter().position(|&x| x == addr) {
                    prop_assert_eq!(&r.status, &Ok(()), "FREE of {:#x}, which is out", addr);
                    m.out.swap_remove(i);
                    m.frame_back(addr);
                } else {
                    // Foreign, stale, interior or made up: refused, and nothing changes.
                    prop_assert!(
                        is(&r.status, |s| matches!(s, Status::InvalidParameter(_))),
                        "FREE of {:#x}, which is not out: {:?}",
                        addr,
                        r
                    );
                }
            }
            Op::Complete(k) if !m.pending.is_empty() => {
                let k = k % m.pending.len();
                let got = m.pending[k].request.try_complete();
                match m.pending[k].granted {
                    Some(addr) => {
                        let f = got
                            .expect("a granted request completes")
                            .expect("its frame");
                        prop_assert_eq!(f.addr(), addr, "the frame granted to request {}", k);
                        m.pending.remove(k);
                        let raw = f.into_raw();
                        m.out.push(raw);
                    }
                    None => prop_assert!(
                        matches!(got, Ok(None)),
                        "request {} has no frame yet (the older ones come first)",
                        k
                    ),
                }
            }
            Op::Cancel(k) if !m.pending.is_empty() => {
                let p = m.pending.remove(k % m.pending.len()).expect("in range");
                drop(p.request);
                if let Some(addr) = p.granted {
                    m.frame_back(addr);
                }
            }
            Op::Complete(_) | Op::Cancel(_) => {}
            Op::Event {
                set,
                id,
                flags,
                header_len,
            } => {
                let h = header(
                    guid(KSEVENTSETID_StreamAllocator, set),
                    id,
                    flags,
                    header_len,
                );
                let r = a.enable_event(&h, &[]);
                if header_len < 24 {
                    prop_assert!(is(&r, |s| matches!(s, Status::InvalidBufferSize(_))));
                } else if !matches!(set, Set::Right) {
                    prop_assert!(is(&r, |s| matches!(s, Status::PropsetNotFound(_))));
                } else if id == KSEVENT_STREAMALLOCATOR_FREEFRAME {
                    match event_answer(flags) {
                        EventAnswer::Enabled => {
                            let events = r.expect("FREEFRAME enables").expect("a subscription");
                            prop_assert_eq!(a.disable_event(events), Ok(()));
                        }
                        EventAnswer::Supported => {
                            prop_assert!(matches!(r, Ok(None)), "support query: {:?}", r);
                        }
                        EventAnswer::InvalidParameter => prop_assert!(
                            is(&r, |s| matches!(s, Status::InvalidParameter(_))),
                            "flags {:#x}: {:?}",
                            flags,
                            r
                        ),
                        EventAnswer::InvalidDeviceRequest => prop_assert!(
                            is(&r, |s| matches!(s, Status::InvalidDeviceRequest(_))),
                            "flags {:#x}: {:?}",
                            flags,
                            r
                        ),
                    }
                } else if id == KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME {
                    // Behaviour 37.
                    prop_assert!(is(&r, |s| matches!(s, Status::InvalidDeviceRequest(_))));
                } else {
                    prop_assert!(is(&r, |s| matches!(s, Status::NotFound(_))));
                }
            }
            Op::MethodId(id) => {
                let h = header(KSMETHODSETID_StreamAllocator, id, 2, 24);
                let (r, pending) = a.method(&h, &mut [0u8; 16]);
                prop_assert!(is(&r.status, |s| matches!(s, Status::NotFound(_))), "{r:?}");
                prop_assert!(pending.is_none());
            }
        }
        check(&a, &m)?;
    }
    // Every frame back: the completed ones by FREE, the granted ones by completing them.
    while let Some(mut p) = m.pending.pop_front() {
        if let Some(f) = p.request.try_complete().expect("still open") {
            m.out.push(f.into_raw());
        }
    }
    let mut seen = HashSet::new();
    for addr in m.out.drain(..) {
        prop_assert!(seen.insert(addr), "frame {addr:#x} out twice");
        prop_assert_eq!(a.free_raw(addr), Ok(()));
    }
    let s = a.status();
    prop_assert_eq!((s.allocated_frames, s.pending), (0, 0), "every frame back");
    drop(foreign);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn byte_requests_follow_the_policy_and_lose_no_frame(
        ops in proptest::collection::vec(op_strategy(), 1..48),
        frames in 1u32..4,
        backend in prop_oneof![
            Just(Backend::Default(Memory::NonPaged)),
            Just(Backend::Default(Memory::Paged)),
            Just(Backend::Vendor),
        ],
    ) {
        run(ops, frames, backend)?;
    }
}
