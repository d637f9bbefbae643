//! Shared helpers of the negotiation tests: framing shorthands, filter shapes, a graph
//! builder that panics with the error (tests only), and a counting vendor allocator.
#![allow(dead_code)]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ks_alloc::{
    Alignment, FrameRange, Framing, FramingEx, ItemFlags, Memory, MemoryType, Status,
    VendorAllocator,
};
use ks_graph::{
    FilterDescriptor, FilterMode, Graph, GraphBuilder, PinDescriptor, Routing, VendorCapabilities,
    VendorSpec,
};

pub const K: FilterMode = FilterMode::Kernel;
pub const U: FilterMode = FilterMode::User;

/// A one-item framing (DECLARE_SIMPLE_FRAMING_EX) with alignment given in bytes.
pub fn fx(
    mem: MemoryType,
    flags: ItemFlags,
    frames: u32,
    align: u32,
    min: u32,
    max: u32,
) -> FramingEx {
    FramingEx::simple(
        mem,
        flags,
        frames,
        Alignment::from_bytes(align).unwrap(),
        min,
        max,
    )
}

/// A wildcard framing holding `frames` frames and nothing else.
pub fn frames(n: u32) -> FramingEx {
    fx(MemoryType::WILDCARD, ItemFlags::empty(), n, 1, 0, 0)
}

/// Sets the physical range of every item.
pub fn phys(mut f: FramingEx, min: u32, max: u32, stepping: u32) -> FramingEx {
    for i in &mut f.items {
        i.physical_range = FrameRange { min, max, stepping };
    }
    f
}

/// Appends the items of `b` to `a` (alternatives).
pub fn alt(mut a: FramingEx, b: FramingEx) -> FramingEx {
    a.items.extend(b.items);
    a
}

pub fn out_pin(f: Option<FramingEx>) -> PinDescriptor {
    let p = PinDescriptor::output("out");
    match f {
        Some(f) => p.with_framing(f),
        None => p,
    }
}

pub fn in_pin(f: Option<FramingEx>) -> PinDescriptor {
    let p = PinDescriptor::input("in");
    match f {
        Some(f) => p.with_framing(f),
        None => p,
    }
}

pub fn source(mode: FilterMode, out: PinDescriptor) -> FilterDescriptor {
    FilterDescriptor::new("source", mode).with_pin(out)
}

pub fn sink(mode: FilterMode, input: PinDescriptor) -> FilterDescriptor {
    FilterDescriptor::new("sink", mode).with_pin(input)
}

/// An in-place transform: pass-through, its input modifies frames.
pub fn inplace(mode: FilterMode, input: PinDescriptor, out: PinDescriptor) -> FilterDescriptor {
    FilterDescriptor::new("inplace", mode)
        .with_routing(Routing::PassThrough)
        .with_pin(input.in_place())
        .with_pin(out)
}

/// A pass-through filter that does not modify (a null transform).
pub fn passthru(mode: FilterMode, input: PinDescriptor, out: PinDescriptor) -> FilterDescriptor {
    FilterDescriptor::new("pass", mode)
        .with_routing(Routing::PassThrough)
        .with_pin(input)
        .with_pin(out)
}

/// A copy transform.
pub fn copy(mode: FilterMode, input: PinDescriptor, out: PinDescriptor) -> FilterDescriptor {
    FilterDescriptor::new("copy", mode)
        .with_pin(input)
        .with_pin(out)
}

/// A tee with outputs `o0..o{n-1}`.
pub fn tee(mode: FilterMode, n: usize) -> FilterDescriptor {
    let mut d = FilterDescriptor::new("tee", mode)
        .with_routing(Routing::PassThrough)
        .with_pin(PinDescriptor::input("in"));
    for i in 0..n {
        d = d.with_pin(PinDescriptor::output(format!("o{i}")));
    }
    d
}

/// Source `a` (mode `so`, output framing `out`) connected to sink `b` (mode `si`, input
/// framing `inp`): one pipe of two pins.
pub fn two(
    out: Option<FramingEx>,
    inp: Option<FramingEx>,
    so: FilterMode,
    si: FilterMode,
) -> Graph {
    Net::new()
        .f("a", source(so, out_pin(out)))
        .f("b", sink(si, in_pin(inp)))
        .c("a.out", "b.in")
        .build()
}

/// Kernel source `cam` whose output (framing `out`) offers vendor `v`, connected to sink
/// `dst` (mode `sink_mode`, input framing `inp`).
pub fn vend_graph(
    v: VendorSpec,
    out: Option<FramingEx>,
    inp: Option<FramingEx>,
    sink_mode: FilterMode,
) -> Graph {
    Net::new()
        .f("cam", source(K, out_pin(out).with_vendor(v)))
        .f("dst", sink(sink_mode, in_pin(inp)))
        .c("cam.out", "dst.in")
        .build()
}

/// Test graph construction; panics with the error text (tests only).
pub struct Net(GraphBuilder);

impl Net {
    pub fn new() -> Net {
        Net(GraphBuilder::new())
    }
    pub fn f(mut self, name: &str, d: FilterDescriptor) -> Net {
        self.0
            .add_filter(name, Arc::new(d))
            .unwrap_or_else(|e| panic!("{e}"));
        self
    }
    pub fn c(mut self, from: &str, to: &str) -> Net {
        self.0.connect(from, to).unwrap_or_else(|e| panic!("{e}"));
        self
    }
    pub fn build(self) -> Graph {
        self.0.build().unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Counters of a [`Counting`] vendor.
#[derive(Debug, Default)]
pub struct Counts {
    pub inits: AtomicUsize,
    pub deletes: AtomicUsize,
    pub allocs: AtomicUsize,
}

impl Counts {
    pub fn inits(&self) -> usize {
        self.inits.load(Ordering::SeqCst)
    }
    pub fn deletes(&self) -> usize {
        self.deletes.load(Ordering::SeqCst)
    }
}

/// A vendor allocator that counts its callbacks and serves frames from one buffer owned by
/// its context (freed at delete). `fail` makes initialize fail with a status. `memory` is
/// what it reports its frames to be (negotiation holds a vendor to it).
pub struct Counting {
    pub counts: Arc<Counts>,
    pub fail: Option<Status>,
    pub memory: Memory,
}

pub struct Cx {
    free: Mutex<Vec<usize>>,
    /// The frames' memory. Never touched after initialize (only through the raw addresses
    /// taken from `as_mut_ptr`, which stay valid while the Vec is neither reallocated nor
    /// dropped); dropped with the context at delete, after the last frame came back.
    _region: Vec<u8>,
}

// SAFETY: every address handed out is a distinct `frame_size`-byte slot of the context's
// buffer, aligned as the framing asks, handed out again only after `free`; the buffer lives
// until `delete`, which the allocator calls only after the last frame has come back.
unsafe impl VendorAllocator for Counting {
    type Context = Cx;

    fn initialize(&self, framing: &Framing) -> Result<Cx, Status> {
        self.counts.inits.fetch_add(1, Ordering::SeqCst);
        if let Some(s) = &self.fail {
            return Err(s.clone());
        }
        let align = framing.alignment.bytes() as usize;
        let stride = (framing.frame_size as usize).div_ceil(align) * align;
        let n = framing.frames as usize;
        let mut region = vec![0u8; stride * n + align];
        let base = region.as_mut_ptr();
        let skip = (align - (base as usize) % align) % align;
        let free = (0..n)
            .map(|i| base.wrapping_add(skip + i * stride) as usize)
            .collect();
        Ok(Cx {
            free: Mutex::new(free),
            _region: region,
        })
    }

    fn allocate(&self, cx: &Cx) -> Option<NonNull<u8>> {
        self.counts.allocs.fetch_add(1, Ordering::SeqCst);
        let addr = cx.free.lock().unwrap().pop()?;
        NonNull::new(addr as *mut u8)
    }

    fn free(&self, cx: &Cx, frame: NonNull<u8>) {
        cx.free.lock().unwrap().push(frame.as_ptr() as usize);
    }

    fn delete(&self, _cx: Cx) {
        self.counts.deletes.fetch_add(1, Ordering::SeqCst);
    }

    fn memory(&self) -> Memory {
        self.memory
    }
}

/// A counting vendor with capabilities `caps`, and its counters.
pub fn vendor(name: &str, caps: VendorCapabilities) -> (VendorSpec, Arc<Counts>) {
    counting_vendor(name, caps, None)
}

/// A counting vendor whose initialize fails with `status`.
pub fn failing_vendor(
    name: &str,
    caps: VendorCapabilities,
    status: Status,
) -> (VendorSpec, Arc<Counts>) {
    counting_vendor(name, caps, Some(status))
}

fn counting_vendor(
    name: &str,
    caps: VendorCapabilities,
    fail: Option<Status>,
) -> (VendorSpec, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    // Frames of the strongest host memory it declares (non-paged frames meet paged too):
    // a vendor whose frames meet what it declares, one declaring both non-paged and user
    // memory excepted (no frame is both).
    let declares = |ts: &[MemoryType]| caps.memory_types.iter().any(|t| ts.contains(t));
    let memory = if declares(&[MemoryType::KERNEL_NONPAGED, MemoryType::SYSTEM]) {
        Memory::NonPaged
    } else if declares(&[MemoryType::USER]) {
        Memory::User
    } else if declares(&[MemoryType::KERNEL_PAGED]) {
        Memory::Paged
    } else {
        Memory::NonPaged
    };
    let v = Counting {
        counts: counts.clone(),
        fail,
        memory,
    };
    (VendorSpec::new(name, Arc::new(v), caps), counts)
}

/// Non-paged kernel memory, any size, generous limits.
pub fn caps() -> VendorCapabilities {
    VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED])
}
