//! Allocator negotiation: pipes, merged framing, allocator choice. Pure functions of a
//! [`Graph`]; the result is an [`AllocationPlan`] or a [`NegotiationError`].
//!
//! KS never published its proxy's algorithm (ks-spec §7.2, §10); this one is ours. The rules
//! and the reason for each are in `docs/negotiation.md`; in short:
//!
//! 1. **Pipes.** A pipe is rooted at an output pin where frames enter (a filter with
//!    [`Routing::Copy`], a pass-through filter with no connected input, or a tee branch that
//!    had to be split). It runs on through pass-through filters (in-place transforms and tee
//!    branches). A tee branch whose downstream modifies frames in place gets its own pipe,
//!    because the other branches still read the same frames (ks-spec §7.1).
//! 2. **Items.** A pin's framing items are alternatives. A depth-first search over the pins
//!    in pipe order, items in declared order, takes the *preferred* combination that
//!    satisfies the pipe: earlier items first, earlier pins' preferences before later pins'.
//!    It backtracks when a later pin cannot be satisfied, so a satisfiable pipe is always
//!    found; failed states are remembered so each is searched once (see `Search`), and pins
//!    with one item never branch.
//! 3. **Merge.** Memory: wildcard matches anything, paged is satisfied by non-paged or user
//!    memory, any pipe touching a user-mode filter uses USER memory. Size: intersection of the
//!    physical ranges with their steppings (hard), then of the optimal ranges where possible;
//!    the smallest size every pin accepts. Alignment: the strictest. Frames: the sum over the
//!    pins, because every pin may hold its frames at the same time. Flags: hard unless the
//!    item says `PREFERENCES_ONLY`.
//! 4. **Allocator.** The vendor of a `MUST_ALLOCATE` pin first, then vendors in pipe order,
//!    each only on an all-kernel pipe and only if its declared capabilities meet the merged
//!    framing; otherwise the default allocator of the pipe's memory.
//!
//! Cost: linear in pins + connections when pins have one item each (plus the items per pin);
//! with alternatives, bounded by the distinct search states (see `Search`).

use ks_alloc::{Alignment, FrameRange, FramingItem, MemoryType, RequirementFlags};

use crate::error::{Conflict, ConflictField, NegotiationError};
use crate::graph::{Graph, PinId};
use crate::model::{FilterMode, PinDescriptor, Routing, VendorSpec};
use crate::plan::{
    AllocationPlan, AllocatorChoice, AllocatorKind, MemoryKind, MergedFraming, PipePlan,
    RejectCode, Rejection, Relaxation,
};

/// Frame size used when no pin of a pipe states a minimum (one page). Policy.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out"))))?;
/// # b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in"))))?;
/// # b.connect("a.out", "b.in")?;
/// # let g = b.build()?;
/// assert_eq!(negotiate(&g)?.pipes[0].framing.frame_size, negotiate::DEFAULT_FRAME_SIZE);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const DEFAULT_FRAME_SIZE: u32 = 4096;

/// Frames used when no pin of a pipe states a count (double buffering). Policy.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out"))))?;
/// # b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in"))))?;
/// # b.connect("a.out", "b.in")?;
/// # let g = b.build()?;
/// assert_eq!(negotiate(&g)?.pipes[0].framing.frames, negotiate::DEFAULT_FRAMES);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const DEFAULT_FRAMES: u32 = 2;

/// Requirement flags an allocator must honour (the others concern the pins, not the memory).
const ALLOCATOR_FLAGS: u32 =
    RequirementFlags::SYSTEM_MEMORY.bits() | RequirementFlags::FRAME_INTEGRITY.bits();

// ---------------------------------------------------------------------------------------------
// Pipes
// ---------------------------------------------------------------------------------------------

/// The pipes of a graph, each as its pins (root output pin first, every pin after the pins
/// upstream of it). Every connected pin is in exactly one pipe; unconnected pins in none.
///
/// ```
/// use std::sync::Arc;
/// use ks_graph::{negotiate::pipes, FilterDescriptor, GraphBuilder, PinDescriptor, Routing};
/// let src = Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out")));
/// let xform = Arc::new(FilterDescriptor::kernel("inplace").with_routing(Routing::PassThrough)
///     .with_pin(PinDescriptor::input("in").in_place()).with_pin(PinDescriptor::output("out")));
/// let sink = Arc::new(FilterDescriptor::kernel("sink").with_pin(PinDescriptor::input("in")));
/// let mut b = GraphBuilder::new();
/// b.add_filter("s", src)?; b.add_filter("x", xform)?; b.add_filter("k", sink)?;
/// b.connect("s.out", "x.in")?; b.connect("x.out", "k.in")?;
/// let g = b.build()?;
/// assert_eq!(pipes(&g).len(), 1); // the in-place transform keeps one pipe
/// # Ok::<(), ks_graph::GraphError>(())
/// ```
pub fn pipes(graph: &Graph) -> Vec<Vec<PinId>> {
    form_pipes(graph).0
}

/// Returns the pipes and, per filter and pin, the pipe index.
fn form_pipes(graph: &Graph) -> (Vec<Vec<PinId>>, Vec<Vec<Option<usize>>>) {
    let nodes = &graph.filters.nodes;
    let n = nodes.len();
    // Connected outputs per filter, and the connected input of pass-through filters.
    let mut outs: Vec<Vec<PinId>> = vec![Vec::new(); n];
    for (fi, f) in nodes.iter().enumerate() {
        for (pi, p) in f.pins.iter().enumerate() {
            if p.peer.is_some() && f.desc.pins[pi].direction == crate::PinDirection::Out {
                outs[fi].push(graph.filters.pin_at(fi, pi));
            }
        }
    }
    let pass_input = |fi: usize| -> Option<PinId> {
        let f = &nodes[fi];
        if f.desc.routing != Routing::PassThrough {
            return None;
        }
        f.desc.pins.iter().enumerate().find_map(|(pi, d)| {
            (d.direction == crate::PinDirection::In && f.pins[pi].peer.is_some())
                .then(|| graph.filters.pin_at(fi, pi))
        })
    };
    let modifies = |p: PinId| graph.filters.pin_desc(p).modifies_in_place;

    // branch_mod[f][pin]: for a connected output, whether frames sent through it would be
    // modified in place before they leave the pipe it would share. Computed downstream first.
    let mut branch_mod: Vec<Vec<bool>> = nodes.iter().map(|f| vec![false; f.pins.len()]).collect();
    for &fid in graph.topo.iter().rev() {
        let fi = fid.index();
        for &o in &outs[fi] {
            let Some(i) = graph.filters.node(o).peer else {
                continue;
            };
            let mut m = modifies(o) || modifies(i);
            let down = i.filter.index();
            if !m && pass_input(down) == Some(i) && outs[down].len() == 1 {
                // A single-output pass-through filter carries its output's modification back
                // up; a tee does not (its modifying branches are split off below).
                let o2 = outs[down][0];
                m = branch_mod[down][o2.index()];
            }
            branch_mod[fi][o.index()] = m;
        }
    }

    let mut pipe_of: Vec<Vec<Option<usize>>> =
        nodes.iter().map(|f| vec![None; f.pins.len()]).collect();
    let mut pipes: Vec<Vec<PinId>> = Vec::new();
    for &fid in &graph.topo {
        let fi = fid.index();
        let inherited = pass_input(fi).and_then(|i| pipe_of[fi][i.index()]);
        let tee = outs[fi].len() >= 2;
        for &o in &outs[fi] {
            let Some(i) = graph.filters.node(o).peer else {
                continue;
            };
            let p = match inherited {
                Some(p) if !(tee && branch_mod[fi][o.index()]) => p,
                _ => {
                    pipes.push(Vec::new());
                    pipes.len() - 1
                }
            };
            pipes[p].push(o);
            pipes[p].push(i);
            pipe_of[fi][o.index()] = Some(p);
            pipe_of[i.filter.index()][i.index()] = Some(p);
        }
    }
    (pipes, pipe_of)
}

// ---------------------------------------------------------------------------------------------
// Sets of frame sizes
// ---------------------------------------------------------------------------------------------

/// Frame sizes `x` with `lo <= x <= hi` and `x ≡ r (mod m)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SizeSet {
    lo: u64,
    hi: u64,
    r: u64,
    m: u64,
}

/// Why two size sets do not meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    /// The `[min, max]` intervals do not overlap.
    Disjoint,
    /// They overlap but no size lies on both steppings.
    Stepping,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Inverse of `a` modulo `m` (`gcd(a, m) == 1`, `m >= 1`).
fn mod_inverse(a: u64, m: u64) -> u64 {
    if m == 1 {
        return 0;
    }
    let (mut old_r, mut r) = (a as i128 % m as i128, m as i128);
    let (mut old_s, mut s) = (1i128, 0i128);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    old_s.rem_euclid(m as i128) as u64
}

impl SizeSet {
    const ANY: SizeSet = SizeSet {
        lo: 0,
        hi: u32::MAX as u64,
        r: 0,
        m: 1,
    };

    /// The sizes of a KS range; a range with `max == 0` states no requirement (policy: KS
    /// uses 0 for "no requirement" in frame sizes).
    fn from_range(r: FrameRange) -> SizeSet {
        if r.max == 0 {
            return SizeSet::ANY;
        }
        let m = if r.stepping <= 1 {
            1
        } else {
            r.stepping as u64
        };
        SizeSet {
            lo: r.min as u64,
            hi: r.max as u64,
            r: r.min as u64 % m,
            m,
        }
    }

    fn is_any(&self) -> bool {
        *self == SizeSet::ANY
    }

    /// The smallest member `>= t`.
    fn first_at_or_above(&self, t: u64) -> Option<u64> {
        let t = t.max(self.lo);
        let x = t + (self.r + self.m - t % self.m) % self.m;
        (x <= self.hi).then_some(x)
    }

    /// The largest member `<= t`.
    fn last_at_or_below(&self, t: u64) -> Option<u64> {
        let t = t.min(self.hi);
        let back = (t % self.m + self.m - self.r) % self.m;
        let x = t.checked_sub(back)?;
        (x >= self.lo).then_some(x)
    }

    fn is_empty(&self) -> bool {
        self.first_at_or_above(self.lo).is_none()
    }

    fn intersect(&self, o: &SizeSet) -> Result<SizeSet, Miss> {
        let lo = self.lo.max(o.lo);
        let hi = self.hi.min(o.hi);
        if lo > hi {
            return Err(Miss::Disjoint);
        }
        // Chinese remainder theorem for x ≡ r1 (mod m1), x ≡ r2 (mod m2).
        let g = gcd(self.m, o.m);
        let diff = (o.r as i128 - self.r as i128).rem_euclid(g as i128) as u64;
        if diff != 0 {
            return Err(Miss::Stepping);
        }
        let m2g = o.m / g;
        let lcm = self.m as u128 * m2g as u128;
        let k = (((o.r as i128 - self.r as i128) / g as i128).rem_euclid(m2g as i128) as u128
            * mod_inverse((self.m / g) % m2g.max(1), m2g) as u128)
            % m2g.max(1) as u128;
        let x = (self.r as u128 + self.m as u128 * k) % lcm;
        let set = if lcm > u32::MAX as u128 + 1 {
            // At most one member fits in [lo, hi] (its width is below the modulus): keep the
            // modulus small by turning the set into that one size.
            let first = lo as u128 + (x + lcm - lo as u128 % lcm) % lcm;
            if first > hi as u128 {
                return Err(Miss::Stepping);
            }
            SizeSet {
                lo: first as u64,
                hi: first as u64,
                r: 0,
                m: 1,
            }
        } else {
            SizeSet {
                lo,
                hi,
                r: x as u64,
                m: lcm as u64,
            }
        };
        if set.is_empty() {
            return Err(Miss::Stepping);
        }
        Ok(set)
    }

    /// The frame size chosen from this set: the smallest member at least the set's minimum
    /// (the smallest size every pin accepts), or [`DEFAULT_FRAME_SIZE`] when no minimum is
    /// stated; failing that the largest member below it. Never 0.
    fn pick(&self) -> Option<u32> {
        self.pick_near(self.target())
    }

    /// The size a pick aims at: the set's minimum, or [`DEFAULT_FRAME_SIZE`] when none is
    /// stated.
    fn target(&self) -> u64 {
        if self.lo >= 1 {
            self.lo
        } else {
            DEFAULT_FRAME_SIZE as u64
        }
    }

    /// The smallest member at least `target`, else the largest below it. Never 0.
    fn pick_near(&self, target: u64) -> Option<u32> {
        self.first_at_or_above(target)
            .or_else(|| self.last_at_or_below(target).filter(|&x| x >= 1))
            .map(|x| x as u32)
    }

    fn describe(&self) -> String {
        if self.m > 1 {
            format!(
                "{}..={} (sizes ≡ {} mod {})",
                self.lo, self.hi, self.r, self.m
            )
        } else {
            format!("{}..={}", self.lo, self.hi)
        }
    }
}

fn describe_range(r: FrameRange) -> String {
    if r.stepping > 1 {
        format!("{}..={} step {}", r.min, r.max, r.stepping)
    } else {
        format!("{}..={}", r.min, r.max)
    }
}

/// Why an optimal range was not honoured.
#[derive(Debug, Clone)]
enum OptSkip {
    /// It holds no size (of at least one byte) that the pins' physical ranges allow.
    Physical,
    /// Its sizes that the physical ranges allow all lie outside the allocating vendor's range.
    Vendor,
    /// It meets the physical sizes (and the vendor's), but not together with the optimal
    /// ranges taken before it (of these pins), which left `set`.
    Earlier { set: SizeSet, pins: Vec<usize> },
}

/// A pipe's frame size once its optimal ranges are decided.
struct Sizing {
    size: u32,
    /// Each optimal range not honoured (index into the ranges given), and why.
    skipped: Vec<(usize, OptSkip)>,
}

/// Decides the optimal ranges `opts` (pin, range; in pipe order) against the final sizes:
/// the physical sizes `phys` (every pin's physical range), narrowed by the range of the
/// vendor that would allocate, if any. Each optimal range in turn is taken if the sizes
/// taken so far keep a size of at least one byte in it, else skipped (policy §3: greedy in
/// pipe order, but never judged against sizes that a later pin or the vendor has yet to
/// narrow, so where the optimal ranges agree the result does not depend on the pins' order).
/// The size is picked from what is left, aiming at the pins' own sizes (physical and optimal
/// taken): the vendor's minimum is not a pin's. `None` when no size of at least one byte is
/// left at all.
fn size_pipe(
    phys: SizeSet,
    vendor: Option<&SizeSet>,
    opts: &[(usize, FrameRange)],
) -> Option<Sizing> {
    let fits = |s: Result<SizeSet, Miss>| s.ok().filter(|s| s.pick().is_some());
    let base = fits(vendor.map_or(Ok(phys), |v| phys.intersect(v)))?;
    // `set`: the sizes allowed so far; `aim`: the same without the vendor's range.
    let (mut set, mut aim) = (base, phys);
    let mut taken: Vec<usize> = Vec::new();
    let mut skipped = Vec::new();
    for (i, &(k, r)) in opts.iter().enumerate() {
        let o = SizeSet::from_range(r);
        if let Some(s) = fits(set.intersect(&o)) {
            set = s;
            // `set` lies inside `aim`, so this meets.
            aim = aim.intersect(&o).unwrap_or(aim);
            taken.push(k);
        } else if fits(phys.intersect(&o)).is_none() {
            skipped.push((i, OptSkip::Physical));
        } else if fits(base.intersect(&o)).is_none() {
            skipped.push((i, OptSkip::Vendor));
        } else {
            let pins = taken.clone();
            skipped.push((i, OptSkip::Earlier { set, pins }));
        }
    }
    let size = set.pick_near(aim.target())?;
    Some(Sizing { size, skipped })
}

// ---------------------------------------------------------------------------------------------
// Memory classes
// ---------------------------------------------------------------------------------------------

/// Memory types by what they guarantee. Policy: SYSTEM is non-paged system memory; paged is
/// the weakest host requirement (non-paged or user memory satisfies it: both are addressable
/// host memory, and non-paged never faults); any other GUID is device memory that only the
/// same GUID satisfies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mem {
    Any,
    Paged,
    NonPaged,
    User,
    Device(MemoryType),
}

impl Mem {
    fn of(t: MemoryType) -> Mem {
        if t.is_wildcard() {
            Mem::Any
        } else if t == MemoryType::KERNEL_PAGED {
            Mem::Paged
        } else if t == MemoryType::KERNEL_NONPAGED || t == MemoryType::SYSTEM {
            Mem::NonPaged
        } else if t == MemoryType::USER {
            Mem::User
        } else {
            Mem::Device(t)
        }
    }

    /// The weakest memory satisfying both, if any.
    fn meet(self, o: Mem) -> Option<Mem> {
        match (self, o) {
            (Mem::Any, x) | (x, Mem::Any) => Some(x),
            (a, b) if a == b => Some(a),
            (Mem::Paged, x @ (Mem::NonPaged | Mem::User))
            | (x @ (Mem::NonPaged | Mem::User), Mem::Paged) => Some(x),
            _ => None,
        }
    }

    /// Whether memory `self` (as offered) meets requirement `req`.
    fn satisfies(self, req: Mem) -> bool {
        self == Mem::Any || self.meet(req) == Some(self)
    }

    fn memory_type(self) -> MemoryType {
        match self {
            Mem::Any => MemoryType::WILDCARD,
            Mem::Paged => MemoryType::KERNEL_PAGED,
            Mem::NonPaged => MemoryType::KERNEL_NONPAGED,
            Mem::User => MemoryType::USER,
            Mem::Device(t) => t,
        }
    }

    fn kind(self) -> MemoryKind {
        match self {
            Mem::Any | Mem::NonPaged => MemoryKind::NonPaged,
            Mem::Paged => MemoryKind::Paged,
            Mem::User => MemoryKind::User,
            Mem::Device(_) => MemoryKind::Device,
        }
    }

    fn is_device(self) -> bool {
        matches!(self, Mem::Device(_))
    }
}

/// Why a memory preference did not refine a pipe's memory (reported only if the memory
/// finally served misses it too).
#[derive(Debug, Clone, Copy)]
enum Unmet {
    /// `chose` was refined by an earlier preference, of pin `pin`, and does not meet it.
    Earlier { chose: Mem, pin: usize },
    /// A device-memory preference where SYSTEM_MEMORY is required.
    SystemMemory,
    /// It conflicts with `with`, the hard requirement (or, if `chosen`, the memory an
    /// earlier preference refined).
    Conflict { with: Mem, chosen: bool },
}

impl Unmet {
    /// The memory the report names as the reason, if any.
    fn compared_with(self) -> Option<Mem> {
        match self {
            Unmet::Earlier { chose, .. } => Some(chose),
            Unmet::SystemMemory => None,
            Unmet::Conflict { with, .. } => Some(with),
        }
    }
}

/// Whether an allocator of host memory `have` meets the required memory type `required`,
/// by the merge rules of docs/negotiation.md §3: the wildcard takes any host memory, paged
/// takes non-paged and user memory too, every other type only itself; device memory is
/// never host memory.
pub(crate) fn host_memory_meets(have: ks_alloc::Memory, required: MemoryType) -> bool {
    Mem::of(have.memory_type()).satisfies(Mem::of(required))
}

// ---------------------------------------------------------------------------------------------
// Merging one pipe
// ---------------------------------------------------------------------------------------------

struct PinInfo<'g> {
    id: PinId,
    name: String,
    desc: &'g PinDescriptor,
    items: &'g [FramingItem],
}

fn is_pref(item: &FramingItem) -> bool {
    item.flags
        .requirements()
        .contains(RequirementFlags::PREFERENCES_ONLY)
}

/// Everything fixed so far while walking a pipe's pins.
struct Acc {
    phys: SizeSet,
    lo_pin: Option<usize>,
    hi_pin: Option<usize>,
    step_pins: Vec<usize>,
    /// Every optimal range stated (not "no requirement"), in pipe order, with its pin.
    opts: Vec<(usize, FrameRange)>,
    hard_mem: Mem,
    mem_pin: Option<usize>,
    /// Every preference-only memory type (not the wildcard), in pipe order, with its pin.
    pref_mems: Vec<(Mem, usize)>,
    align: Alignment,
    frames: u64,
    hard_flags: u32,
    sysmem_pin: Option<usize>,
    must_allocate: Vec<(usize, bool)>,
    integrity: Vec<(usize, bool)>,
    /// Preference-only SYSTEM_MEMORY / FRAME_INTEGRITY bits, per pin.
    pref_flags: Vec<(usize, u32)>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            phys: SizeSet::ANY,
            lo_pin: None,
            hi_pin: None,
            step_pins: Vec::new(),
            opts: Vec::new(),
            hard_mem: Mem::Any,
            mem_pin: None,
            pref_mems: Vec::new(),
            align: Alignment::BYTE,
            frames: 0,
            hard_flags: 0,
            sysmem_pin: None,
            must_allocate: Vec::new(),
            integrity: Vec::new(),
            pref_flags: Vec::new(),
        }
    }
}

struct PipeCtx<'g> {
    id: usize,
    pins: Vec<PinInfo<'g>>,
    user_filter: Option<String>,
}

impl PipeCtx<'_> {
    fn names(&self, idx: impl IntoIterator<Item = usize>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for i in idx {
            let n = &self.pins[i].name;
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        out
    }

    fn error(&self, conflicts: Vec<Conflict>) -> NegotiationError {
        NegotiationError {
            pipe: self.id,
            pins: self.pins.iter().map(|p| p.name.clone()).collect(),
            conflicts,
            items: Vec::new(),
            alternatives_tried: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Choosing one framing item per pin: a complete search
// ---------------------------------------------------------------------------------------------

/// What the pins chosen so far fix, reduced to what decides whether the rest of the pipe can
/// still be satisfied (the frame count is kept beside it: see [`Search`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct State {
    /// Hard memory type (stays `Any` on user pipes: memory never blocks an item there).
    mem: Mem,
    /// Hard frame sizes (physical ranges with steppings).
    phys: SizeSet,
    /// Strictest alignment, in bytes.
    align: u32,
    /// Hard requirement bits 0x0–0xF.
    flags: u32,
    /// The first pin with a hard MUST_ALLOCATE.
    must_allocate: Option<usize>,
    /// A second hard MUST_ALLOCATE was chosen.
    two_allocators: bool,
    /// A hard FRAME_INTEGRITY was chosen on a pin with an in-place modifier after it.
    integrity_broken: bool,
}

/// The outcome of the item search.
enum Choice {
    /// The preferred combination that satisfies the pipe.
    Found(Vec<Option<usize>>),
    /// None does; this is the preferred combination whose items are pairwise compatible in
    /// memory type and physical range (it fails a whole-pipe check: frames, flags, device
    /// memory without a vendor, ...).
    Complete(Vec<Option<usize>>),
    /// None does and no combination is even pairwise compatible: the longest prefix (the
    /// first in preference order among the longest) after which the next pin has no
    /// compatible item.
    Prefix(Vec<Option<usize>>),
}

/// Depth-first search over the pins of a pipe, in pipe order, each pin's items in declared
/// order, so the first combination that satisfies the pipe is the *preferred* one: the
/// lexicographically smallest vector of item indexes (earlier pins' preferences outrank later
/// pins'). It backtracks when a later pin cannot be satisfied, so a satisfiable pipe is always
/// found.
///
/// Bound: whether the pins from `k` on can still be satisfied depends only on `k`, the
/// [`State`] and the frame count so far, and only monotonically on the count (more frames
/// never help). Every `(k, State)` that failed is remembered with the smallest count it failed
/// with; an equal state with at least that count is not searched again. So each distinct state
/// is expanded at most once per smaller count, and the work is
/// O(Σₖ Sₖ · itemsₖ + leaves · vendors), Sₖ the number of distinct states reaching pin `k`.
/// Pins with one item never branch (Sₖ stays 1 on a success path): linear. The worst case is
/// exponential only in the number of multi-item pins whose alternatives keep the states
/// distinct (differing ranges, alignments, frame counts) while the pipe fails late.
struct Search<'c, 'g> {
    ctx: &'c PipeCtx<'g>,
    user: bool,
    /// Index of the last pin that modifies frames in place.
    last_modifier: Option<usize>,
    /// `(state before pin k, frames so far)`, for `k = 0 ..= depth`.
    states: Vec<(State, u64)>,
    /// Next item to try at each pin on the current path.
    next: Vec<usize>,
    choice: Vec<Option<usize>>,
    /// Failed `(pin, state)` → the smallest frame count it failed with.
    failed: std::collections::HashMap<(usize, State, bool), u64>,
    first_complete: Option<Vec<Option<usize>>>,
    deepest: Option<Vec<Option<usize>>>,
}

impl<'c, 'g> Search<'c, 'g> {
    fn new(ctx: &'c PipeCtx<'g>) -> Search<'c, 'g> {
        let n = ctx.pins.len();
        let mut states = Vec::with_capacity(n + 1);
        states.push((
            State {
                mem: Mem::Any,
                phys: SizeSet::ANY,
                align: 1,
                flags: 0,
                must_allocate: None,
                two_allocators: false,
                integrity_broken: false,
            },
            0,
        ));
        Search {
            ctx,
            user: ctx.user_filter.is_some(),
            last_modifier: ctx.pins.iter().rposition(|p| p.desc.modifies_in_place),
            states,
            next: vec![0; n],
            choice: vec![None; n],
            failed: std::collections::HashMap::new(),
            first_complete: None,
            deepest: None,
        }
    }

    /// `state` after pin `k` takes `item`, or `None` when the item is incompatible with it
    /// (hard memory types with no common memory, physical ranges with no common size). The
    /// same test the merge applies (`merge_pipe`), so both agree on compatibility.
    fn apply(
        &self,
        k: usize,
        (s, frames): (State, u64),
        item: &FramingItem,
    ) -> Option<(State, u64)> {
        let pref = is_pref(item);
        let mut t = s;
        if !self.user && !pref {
            t.mem = s.mem.meet(Mem::of(item.memory_type))?;
        }
        t.phys = s
            .phys
            .intersect(&SizeSet::from_range(item.physical_range))
            .ok()?;
        t.align = s.align.max(item.alignment.bytes());
        if !pref {
            let req = item.flags.requirements();
            t.flags |= req.bits() & 0xF;
            if req.contains(RequirementFlags::MUST_ALLOCATE) {
                if s.must_allocate.is_some() {
                    t.two_allocators = true;
                } else {
                    t.must_allocate = Some(k);
                }
            }
            if req.contains(RequirementFlags::FRAME_INTEGRITY)
                && self.last_modifier.is_some_and(|m| m > k)
            {
                t.integrity_broken = true;
            }
        }
        Some((t, frames + item.frames as u64))
    }

    /// A state no further pin can repair (every part of this test only gets worse as pins
    /// are added). The frame bound is the one `merge_pipe` enforces: what one allocator
    /// holds.
    fn dead(&self, (s, frames): (State, u64)) -> bool {
        s.two_allocators
            || s.integrity_broken
            || frames > u64::from(ks_alloc::MAX_FRAMES)
            || (s.mem.is_device() && s.flags & RequirementFlags::SYSTEM_MEMORY.bits() != 0)
    }

    /// Whether a complete combination ending in this state satisfies the pipe: the
    /// whole-pipe checks of `merge_pipe` (flags, frame count, device memory needs an eligible
    /// vendor, some frame size of at least one byte).
    fn satisfies(&self, (s, frames): (State, u64)) -> bool {
        if self.dead((s, frames)) {
            return false;
        }
        if !s.mem.is_device() {
            return s.phys.pick().is_some();
        }
        let frames = if frames == 0 {
            DEFAULT_FRAMES as u64
        } else {
            frames
        };
        !self.user
            && self.ctx.pins.iter().enumerate().any(|(k, p)| {
                let Some(v) = &p.desc.vendor else {
                    return false;
                };
                let caps = &v.capabilities;
                caps.memory_types.iter().any(|&t| {
                    let o = Mem::of(t);
                    o == Mem::Any || o.satisfies(s.mem)
                }) && s
                    .phys
                    .intersect(&SizeSet::from_range(caps.frame_size))
                    .ok()
                    .and_then(|x| x.pick())
                    .is_some()
                    && s.align <= caps.max_alignment.bytes()
                    && frames <= caps.max_frames as u64
                    && s.flags & ALLOCATOR_FLAGS & !caps.honours.bits() == 0
                    && s.must_allocate.is_none_or(|a| a == k)
            })
    }

    /// Moves pin `k` to its next compatible item (pushing the state after it). False when
    /// the pin has no further alternative.
    fn advance(&mut self, k: usize) -> bool {
        let items = self.ctx.pins[k].items;
        let here = self.states[k];
        if items.is_empty() {
            if self.next[k] == 0 {
                self.next[k] = 1;
                self.choice[k] = None;
                self.states.push(here);
                return true;
            }
            return false;
        }
        while self.next[k] < items.len() {
            let i = self.next[k];
            self.next[k] += 1;
            if let Some(t) = self.apply(k, here, &items[i]) {
                self.choice[k] = Some(i);
                self.states.push(t);
                return true;
            }
        }
        false
    }

    /// Remembers that pin `k`'s state led nowhere, with the fewest frames it was tried at.
    /// More frames never help, except past 0: a pipe whose pins ask for no frame gets
    /// `DEFAULT_FRAMES` (2), more than a pipe that asks for 1. So states with no frames yet
    /// are remembered apart from the others.
    fn remember_failed(&mut self, k: usize) {
        let (s, f) = self.states[k];
        self.failed
            .entry((k, s, f == 0))
            .and_modify(|f0| *f0 = (*f0).min(f))
            .or_insert(f);
    }

    fn run(mut self) -> Choice {
        let n = self.ctx.pins.len();
        let mut k = 0;
        loop {
            // Enter pin `k` (or the end of the pipe) with `states[k]` fixed by pins `..k`.
            let here = self.states[k];
            let mut entered = false;
            if k == n {
                if self.satisfies(here) {
                    return Choice::Found(self.choice);
                }
                if self.first_complete.is_none() {
                    self.first_complete = Some(self.choice.clone());
                }
            } else {
                let known_bad = !self.failed.is_empty()
                    && self
                        .failed
                        .get(&(k, here.0, here.1 == 0))
                        .is_some_and(|&f0| here.1 >= f0);
                // Before the first complete combination is found, dead states are still
                // walked so that the error can explain the preferred complete one.
                let hopeless = self.first_complete.is_some() && self.dead(here);
                if !known_bad && !hopeless {
                    self.next[k] = 0;
                    if self.advance(k) {
                        k += 1;
                        continue;
                    }
                    entered = true;
                }
            }
            if entered {
                // Pin `k` has no item compatible with what pins `..k` fixed.
                if self.deepest.as_ref().is_none_or(|d| k > d.len()) {
                    self.deepest = Some(self.choice[..k].to_vec());
                }
                self.remember_failed(k);
            }
            // Backtrack to the latest pin with an untried alternative.
            loop {
                if k == 0 {
                    return match (self.first_complete, self.deepest) {
                        (Some(c), _) => Choice::Complete(c),
                        (None, Some(d)) => Choice::Prefix(d),
                        // Unreachable: a pipe that has no complete combination has a pin
                        // where the walk stopped. Explain the all-first choice then.
                        (None, None) => Choice::Prefix(Vec::new()),
                    };
                }
                k -= 1;
                self.states.truncate(k + 1);
                if self.advance(k) {
                    k += 1;
                    break;
                }
                self.remember_failed(k);
            }
        }
    }
}

/// Negotiates every pipe of `graph`.
///
/// Deterministic and side-effect free: no allocator is created and no vendor callback runs
/// (that happens at STOP → ACQUIRE, [`Graph::set_state`](crate::Graph::set_state)).
///
/// # Errors
/// A [`NegotiationError`] for the first pipe (in plan order) whose pins cannot all be
/// satisfied, naming its pins and the conflicting fields.
///
/// ```
/// use std::sync::Arc;
/// use ks_alloc::{Alignment, FrameRange, FramingEx, ItemFlags, MemoryType};
/// use ks_graph::{negotiate, FilterDescriptor, GraphBuilder, PinDescriptor};
/// let sized = |min, max| {
///     let mut fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 2, Alignment::BYTE, 0, 0);
///     fx.items[0].physical_range = FrameRange { min, max, stepping: 1 };
///     fx
/// };
/// // The camera offers 640..=1024-byte frames, or 2048..=4096; the encoder needs >= 2048.
/// let mut cam = sized(640, 1024);
/// cam.items.extend(sized(2048, 4096).items);
/// let mut b = GraphBuilder::new();
/// b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(PinDescriptor::output("out").with_framing(cam))))?;
/// b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in").with_framing(sized(2048, 8192)))))?;
/// b.connect("cam.out", "enc.in")?;
/// let plan = negotiate(&b.build()?)?;
/// let pipe = &plan.pipes[0];
/// assert_eq!(pipe.items, [Some(1), Some(0)]); // the camera's second alternative fits
/// assert_eq!((pipe.framing.frame_size, pipe.framing.frames), (2048, 4));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn negotiate(graph: &Graph) -> Result<AllocationPlan, NegotiationError> {
    let (pipes, pipe_of) = form_pipes(graph);
    let mut plan = AllocationPlan {
        pipes: Vec::with_capacity(pipes.len()),
        pipe_of,
        graph: graph.filters.id,
    };
    for (id, pins) in pipes.into_iter().enumerate() {
        plan.pipes.push(negotiate_pipe(graph, id, pins)?);
    }
    Ok(plan)
}

fn negotiate_pipe(
    graph: &Graph,
    id: usize,
    pin_ids: Vec<PinId>,
) -> Result<PipePlan, NegotiationError> {
    let mut user_filter = None;
    let infos: Vec<PinInfo<'_>> = pin_ids
        .iter()
        .map(|&p| {
            let f = &graph.filters.nodes[p.filter.index()];
            if f.desc.mode == FilterMode::User && user_filter.is_none() {
                user_filter = Some(f.name.clone());
            }
            PinInfo {
                id: p,
                name: graph.filters.pin_name(p),
                desc: &f.desc.pins[p.index()],
                items: graph
                    .pin_framing(p)
                    .map(|fx| fx.items.as_slice())
                    .unwrap_or(&[]),
            }
        })
        .collect();
    let ctx = PipeCtx {
        id,
        pins: infos,
        user_filter,
    };
    let alternatives = ctx.pins.iter().any(|p| p.items.len() > 1);
    let forced = match Search::new(&ctx).run() {
        Choice::Found(c) => return merge_pipe(&ctx, &c, pin_ids),
        Choice::Complete(c) | Choice::Prefix(c) => c,
    };
    // No combination satisfies the pipe: explain the one the search got furthest with.
    match merge_pipe(&ctx, &forced, pin_ids) {
        Err(mut e) => {
            if alternatives {
                e.items = forced;
                e.items.resize(ctx.pins.len(), None);
                e.alternatives_tried = true;
            }
            Err(e)
        }
        // Unreachable while the search and the merge apply the same rules; a plan that
        // satisfies every check is still a correct plan.
        ok => ok,
    }
}

/// The relaxation text of an optimal range `r` skipped for `why`; `phys` is the pipe's
/// physical sizes, `vendor` the allocating vendor's name and range, if any.
fn opt_skip_detail(
    ctx: &PipeCtx<'_>,
    r: FrameRange,
    why: &OptSkip,
    phys: SizeSet,
    vendor: Option<(&str, FrameRange)>,
) -> String {
    let r = describe_range(r);
    match (why, vendor) {
        (OptSkip::Physical, _) => format!(
            "optimal range {r} not honoured: it holds no size that the pins' physical ranges \
             allow ({})",
            phys.describe()
        ),
        (OptSkip::Vendor, Some((name, vr))) => format!(
            "optimal range {r} not honoured: vendor '{name}' allocates the pipe and serves {}, \
             none of which lies in it{}",
            describe_range(vr),
            if phys.is_any() {
                String::new()
            } else {
                format!(" within the physical range {}", phys.describe())
            }
        ),
        (OptSkip::Earlier { set, pins }, v) => format!(
            "optimal range {r} not honoured: it does not meet {}, what the physical range {}{} \
             and the optimal ranges taken before it (of '{}') leave",
            set.describe(),
            phys.describe(),
            v.map(|(name, vr)| format!(", vendor '{name}''s range {}", describe_range(vr)))
                .unwrap_or_default(),
            ctx.names(pins.iter().copied()).join("', '")
        ),
        // Not produced without a vendor.
        (OptSkip::Vendor, None) => format!("optimal range {r} not honoured"),
    }
}

/// Merges the pins of a pipe. Pin `k < forced.len()` takes item `forced[k]`; later pins take
/// their first compatible item (only used to explain a failure: see [`Choice::Prefix`]).
fn merge_pipe(
    ctx: &PipeCtx<'_>,
    forced: &[Option<usize>],
    pin_ids: Vec<PinId>,
) -> Result<PipePlan, NegotiationError> {
    let id = ctx.id;
    let user = ctx.user_filter.is_some();
    let mut acc = Acc::new();
    let mut relaxed: Vec<Relaxation> = Vec::new();
    let mut chosen_items: Vec<Option<usize>> = Vec::with_capacity(ctx.pins.len());

    for (k, pin) in ctx.pins.iter().enumerate() {
        if pin.items.is_empty() {
            chosen_items.push(None);
            continue;
        }
        // The forced alternative, or the first compatible with the hard memory type and
        // physical range.
        let candidates = match forced.get(k) {
            Some(&Some(n)) if n < pin.items.len() => n..n + 1,
            _ => 0..pin.items.len(),
        };
        let mut chosen = None;
        let mut first_miss: Option<(ConflictField, String)> = None;
        for (n, item) in pin
            .items
            .iter()
            .enumerate()
            .skip(candidates.start)
            .take(candidates.len())
        {
            let check_mem = !user && !is_pref(item);
            let mem = Mem::of(item.memory_type);
            if check_mem && acc.hard_mem.meet(mem).is_none() {
                first_miss.get_or_insert_with(|| {
                    (
                        ConflictField::MemoryType,
                        format!(
                            "'{}' item {n} requires {} but {} is already required",
                            pin.name,
                            item.memory_type,
                            acc.hard_mem.memory_type()
                        ),
                    )
                });
                continue;
            }
            match acc
                .phys
                .intersect(&SizeSet::from_range(item.physical_range))
            {
                Ok(set) => {
                    chosen = Some((n, set));
                    break;
                }
                Err(miss) => {
                    let what = match miss {
                        Miss::Disjoint => "does not overlap",
                        Miss::Stepping => "has no size on the same stepping as",
                    };
                    // A size miss is more telling than a memory miss of an earlier item.
                    if !matches!(first_miss, Some((ConflictField::FrameSize, _))) {
                        first_miss = Some((
                            ConflictField::FrameSize,
                            format!(
                                "'{}' item {n} physical range {} {what} the range {} required so far",
                                pin.name,
                                describe_range(item.physical_range),
                                acc.phys.describe()
                            ),
                        ));
                    }
                }
            }
        }
        let Some((n, phys)) = chosen else {
            let (field, detail) = first_miss.unwrap_or((
                ConflictField::FrameSize,
                format!("'{}' has no usable framing item", pin.name),
            ));
            let mut who: Vec<usize> = match field {
                ConflictField::MemoryType => acc.mem_pin.into_iter().collect(),
                _ => acc
                    .lo_pin
                    .into_iter()
                    .chain(acc.hi_pin)
                    .chain(acc.step_pins.iter().copied())
                    .collect(),
            };
            who.push(k);
            return Err(ctx.error(vec![Conflict {
                field,
                pins: ctx.names(who),
                detail,
            }]));
        };
        chosen_items.push(Some(n));
        let item = &pin.items[n];
        let pref = is_pref(item);

        // Physical range (hard, whatever PREFERENCES_ONLY says: it is not a flag).
        let r = SizeSet::from_range(item.physical_range);
        if !r.is_any() {
            if r.lo > acc.phys.lo || acc.lo_pin.is_none() {
                acc.lo_pin = Some(k);
            }
            if r.hi < acc.phys.hi || acc.hi_pin.is_none() {
                acc.hi_pin = Some(k);
            }
            if r.m > 1 {
                acc.step_pins.push(k);
            }
        }
        acc.phys = phys;

        // Optimal range: decided after the walk, against the final physical sizes (§3).
        if !SizeSet::from_range(item.framing_range).is_any() {
            acc.opts.push((k, item.framing_range));
        }

        acc.align = acc.align.max(item.alignment);
        acc.frames += item.frames as u64;

        // Memory.
        let mem = Mem::of(item.memory_type);
        if user {
            if !Mem::User.satisfies(mem) {
                relaxed.push(Relaxation {
                    pin: pin.name.clone(),
                    field: ConflictField::MemoryType,
                    detail: format!(
                        "asks for {}; the pipe touches user-mode filter '{}', so its frames are \
                         USER memory (kernel-side memory never reaches user mode, behaviour 40)",
                        item.memory_type,
                        ctx.user_filter.as_deref().unwrap_or("?")
                    ),
                });
            }
        } else if pref {
            if mem != Mem::Any {
                acc.pref_mems.push((mem, k));
            }
        } else if let Some(m) = acc.hard_mem.meet(mem) {
            if m != acc.hard_mem {
                acc.mem_pin = Some(k);
            }
            acc.hard_mem = m;
        }

        // Flags.
        let req = item.flags.requirements();
        if !pref {
            acc.hard_flags |= req.bits() & 0xF;
            if req.contains(RequirementFlags::SYSTEM_MEMORY) && acc.sysmem_pin.is_none() {
                acc.sysmem_pin = Some(k);
            }
        }
        if req.contains(RequirementFlags::MUST_ALLOCATE) {
            acc.must_allocate.push((k, !pref));
        }
        if req.contains(RequirementFlags::FRAME_INTEGRITY) {
            acc.integrity.push((k, !pref));
        }
        if pref && req.bits() & ALLOCATOR_FLAGS != 0 {
            acc.pref_flags.push((k, req.bits() & ALLOCATOR_FLAGS));
        }
    }

    let mut conflicts = Vec::new();

    // FRAME_INTEGRITY: no pin after it in the pipe may modify frames in place. (Modifying
    // pins only occur before the first tee of a pipe, so "after" means "downstream".)
    let last_modifier = ctx.pins.iter().rposition(|p| p.desc.modifies_in_place);
    for &(k, hard) in &acc.integrity {
        if let Some(m) = last_modifier.filter(|&m| m > k) {
            let detail = format!(
                "'{}' requires FRAME_INTEGRITY but '{}' downstream in the same pipe modifies \
                 frames in place",
                ctx.pins[k].name, ctx.pins[m].name
            );
            if hard {
                conflicts.push(Conflict {
                    field: ConflictField::Flags,
                    pins: ctx.names([k, m]),
                    detail,
                });
            } else {
                relaxed.push(Relaxation {
                    pin: ctx.pins[k].name.clone(),
                    field: ConflictField::Flags,
                    detail: format!("{detail} (preference only: relaxed)"),
                });
            }
        }
    }

    // MUST_ALLOCATE: at most one pin can allocate a pipe's frames.
    let hard_alloc: Vec<usize> = acc
        .must_allocate
        .iter()
        .filter(|m| m.1)
        .map(|m| m.0)
        .collect();
    if hard_alloc.len() > 1 {
        conflicts.push(Conflict {
            field: ConflictField::Flags,
            pins: ctx.names(hard_alloc.iter().copied()),
            detail: "more than one pin requires MUST_ALLOCATE; one pipe has one allocator".into(),
        });
    }
    let allocating_pin = hard_alloc
        .first()
        .copied()
        .or_else(|| acc.must_allocate.first().map(|m| m.0));

    // Frames.
    let frames = if acc.frames == 0 {
        DEFAULT_FRAMES as u64
    } else {
        acc.frames
    };
    // One allocator (default or vendor) tracks at most `MAX_FRAMES` frames; a plan that asks
    // for more could never be created at ACQUIRE, so it is refused here, where the pins that
    // ask for the frames can be named.
    if frames > u64::from(ks_alloc::MAX_FRAMES) {
        conflicts.push(Conflict {
            field: ConflictField::Frames,
            pins: ctx.names(0..ctx.pins.len()),
            detail: format!(
                "the pins together hold {frames} frames, more than one allocator holds ({})",
                ks_alloc::MAX_FRAMES
            ),
        });
    }

    // Memory: USER for user pipes; otherwise the hard type refined by the first compatible
    // preference; non-paged when nothing is asked.
    // What the pins require (USER on a user pipe), as the plan records it.
    let required = if user { Mem::User } else { acc.hard_mem };
    let mut mem = required;
    // The pin whose preference refined the hard type: the first compatible one (policy §4).
    let mut pref_used: Option<usize> = None;
    // Every preference that `mem` meets (the one that refined it and later ones it already
    // meets), with its pin, and every other preference with why it did not refine `mem`:
    // all are judged against the memory finally served, which may still change (a device
    // preference nobody serves falls back to the hard type; a vendor may serve another).
    let mut pref_met: Vec<(Mem, usize)> = Vec::new();
    let mut pref_unmet: Vec<(Mem, usize, Unmet)> = Vec::new();
    if !user {
        let sysmem = acc.hard_flags & RequirementFlags::SYSTEM_MEMORY.bits() != 0;
        for &(p, k) in &acc.pref_mems {
            match (mem.meet(p), pref_used) {
                // Honoured by what an earlier preference chose.
                (Some(m), Some(_)) if m == mem => pref_met.push((p, k)),
                (Some(_), Some(j)) => {
                    pref_unmet.push((p, k, Unmet::Earlier { chose: mem, pin: j }));
                }
                (Some(m), None) if m.is_device() && !mem.is_device() && sysmem => {
                    pref_unmet.push((p, k, Unmet::SystemMemory));
                }
                (Some(m), None) => {
                    mem = m;
                    pref_used = Some(k);
                    pref_met.push((p, k));
                }
                (None, _) => pref_unmet.push((
                    p,
                    k,
                    Unmet::Conflict {
                        with: mem,
                        chosen: pref_used.is_some(),
                    },
                )),
            }
        }
    }
    if !user && mem.is_device() && acc.hard_flags & RequirementFlags::SYSTEM_MEMORY.bits() != 0 {
        conflicts.push(Conflict {
            field: ConflictField::Flags,
            pins: ctx.names(acc.sysmem_pin.into_iter().chain(acc.mem_pin)),
            detail: format!(
                "SYSTEM_MEMORY is required but the memory type is device memory {}",
                mem.memory_type()
            ),
        });
    }
    if !conflicts.is_empty() {
        return Err(ctx.error(conflicts));
    }
    let frames = frames as u32;

    // Candidates: the MUST_ALLOCATE pin's vendor, then every vendor in pipe order.
    let first = allocating_pin.filter(|&a| ctx.pins[a].desc.vendor.is_some());
    let order = first.into_iter().chain(
        (0..ctx.pins.len()).filter(|&k| ctx.pins[k].desc.vendor.is_some() && Some(k) != first),
    );

    // On a user pipe the memory is USER only because of the user-mode connection, which is
    // reported as such; the memory check then covers the kernel pins' own requirements.
    let required_mem = acc.hard_mem;
    let mut rejected = Vec::new();
    let mut chosen: Option<(usize, &VendorSpec, Mem, Sizing)> = None;
    for k in order {
        let Some(v) = ctx.pins[k].desc.vendor.as_ref() else {
            continue;
        };
        let caps = &v.capabilities;
        let mut codes = Vec::new();
        let mut reasons = Vec::new();
        if let Some(f) = &ctx.user_filter {
            codes.push(RejectCode::UserModeConnection);
            reasons.push(format!(
                "the pipe touches user-mode filter '{f}'; vendor (kernel) allocators serve \
                 kernel-to-kernel connections only"
            ));
        }
        // The vendor's memory: the first it offers that meets the pipe's memory including
        // its preference; a wildcard offer takes the pipe's memory; failing both, the first
        // that meets the hard requirement alone (the preference then goes unmet). A hard
        // SYSTEM_MEMORY excludes device memory. A host memory type counts only if the
        // vendor's frames really are of a kind that meets it (`DynVendor::memory`: pageable
        // frames do not serve a pipe that requires non-paged memory, whatever the vendor
        // declares); device memory is the vendor's own, taken as declared.
        let host_only = acc.hard_flags & RequirementFlags::SYSTEM_MEMORY.bits() != 0;
        let frames_mem = Mem::of(v.allocator.memory().memory_type());
        let honest = |o: Mem| o.is_device() || frames_mem.satisfies(o);
        let usable = |o: Mem| o != Mem::Any && !(host_only && o.is_device()) && honest(o);
        let offered: Vec<Mem> = caps.memory_types.iter().map(|&t| Mem::of(t)).collect();
        let vmem = offered
            .iter()
            .copied()
            .find(|&o| usable(o) && o.satisfies(mem))
            .or_else(|| {
                offered
                    .contains(&Mem::Any)
                    .then_some(if mem == Mem::Any { frames_mem } else { mem })
                    .filter(|&m| honest(m))
            })
            .or_else(|| {
                offered
                    .iter()
                    .copied()
                    .find(|&o| usable(o) && o.satisfies(required_mem))
            });
        if vmem.is_none() {
            codes.push(RejectCode::MemoryType);
            let list: Vec<String> = caps.memory_types.iter().map(|t| t.to_string()).collect();
            // Declared types its frames do not meet, said as such.
            let dishonest: Vec<String> = offered
                .iter()
                .filter(|&&o| o != Mem::Any && !honest(o))
                .map(|o| o.memory_type().to_string())
                .collect();
            reasons.push(format!(
                "the pipe needs {} memory{}; the vendor serves [{}]{}",
                required_mem.memory_type(),
                if host_only {
                    " in host memory (SYSTEM_MEMORY is required)"
                } else {
                    ""
                },
                list.join(", "),
                if dishonest.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", but its frames are {} memory, which does not meet {}",
                        frames_mem.memory_type(),
                        dishonest.join(" or ")
                    )
                }
            ));
        }
        // The sizes with this vendor: its range narrows the physical set before the optimal
        // ranges are decided, so they are judged against what it can serve.
        let size = size_pipe(
            acc.phys,
            Some(&SizeSet::from_range(caps.frame_size)),
            &acc.opts,
        );
        if size.is_none() {
            codes.push(RejectCode::FrameSizeRange);
            reasons.push(format!(
                "the pipe's sizes {} and the vendor's {} have no common frame size",
                acc.phys.describe(),
                describe_range(caps.frame_size)
            ));
        }
        if acc.align.bytes() > caps.max_alignment.bytes() {
            codes.push(RejectCode::Alignment);
            reasons.push(format!(
                "the pipe needs {}-byte alignment; the vendor guarantees {} bytes",
                acc.align.bytes(),
                caps.max_alignment.bytes()
            ));
        }
        if frames > caps.max_frames {
            codes.push(RejectCode::FrameCount);
            reasons.push(format!(
                "the pipe needs {frames} frames outstanding; the vendor serves at most {}",
                caps.max_frames
            ));
        }
        let missing = acc.hard_flags & ALLOCATOR_FLAGS & !caps.honours.bits();
        if missing != 0 {
            codes.push(RejectCode::Flags);
            reasons.push(format!(
                "the pipe requires {:?}, which the vendor does not honour",
                RequirementFlags(missing)
            ));
        }
        if let Some(&a) = hard_alloc.first() {
            if a != k {
                codes.push(RejectCode::MustAllocate);
                reasons.push(format!(
                    "'{}' must allocate the pipe's frames (MUST_ALLOCATE)",
                    ctx.pins[a].name
                ));
            }
        }
        match (&chosen, codes.is_empty()) {
            (None, true) => {
                if let (Some(m), Some(sizing)) = (vmem, size) {
                    chosen = Some((k, v, m, sizing));
                    continue;
                }
            }
            (Some((c, cv, _, _)), true) => {
                codes.push(RejectCode::Outranked);
                reasons.push(format!(
                    "eligible, but vendor '{}' on '{}' ranks first",
                    cv.name, ctx.pins[*c].name
                ));
            }
            _ => {}
        }
        rejected.push(Rejection {
            candidate: v.name.clone(),
            kind: AllocatorKind::Vendor,
            pin: Some(ctx.pins[k].name.clone()),
            reason: reasons.join("; "),
            codes,
        });
    }

    let (allocator, sizing, final_mem) = match chosen {
        Some((k, v, m, sizing)) => {
            rejected.push(Rejection {
                candidate: "default".into(),
                kind: AllocatorKind::Default,
                pin: None,
                reason: format!(
                    "vendor '{}' on '{}' is eligible and ranks before the default allocator (a \
                     pin's own allocator serves the memory the device works with)",
                    v.name, ctx.pins[k].name
                ),
                codes: vec![RejectCode::Outranked],
            });
            (
                AllocatorChoice {
                    kind: AllocatorKind::Vendor,
                    name: v.name.clone(),
                    memory: m.kind(),
                    pin: ctx.pins[k].name.clone(),
                    pin_id: ctx.pins[k].id,
                    vendor: Some(v.clone()),
                },
                sizing,
                m,
            )
        }
        None => {
            // The default allocator serves host memory only.
            if mem.is_device() {
                if acc.hard_mem.is_device() {
                    let mut pins: Vec<usize> = acc.mem_pin.into_iter().collect();
                    pins.extend(rejected.iter().filter_map(|r| {
                        ctx.pins
                            .iter()
                            .position(|p| Some(&p.name) == r.pin.as_ref())
                    }));
                    let why: Vec<String> = rejected
                        .iter()
                        .map(|r| format!("'{}': {}", r.candidate, r.reason))
                        .collect();
                    return Err(ctx.error(vec![Conflict {
                        field: ConflictField::MemoryType,
                        pins: ctx.names(pins),
                        detail: format!(
                            "device memory {} can only come from a vendor allocator, and none is \
                             eligible{}{}",
                            mem.memory_type(),
                            if why.is_empty() { "" } else { ": " },
                            why.join("; ")
                        ),
                    }]));
                }
                // The preference for it goes unmet (reported below).
                mem = acc.hard_mem;
            }
            let mem = if mem == Mem::Any { Mem::NonPaged } else { mem };
            let Some(sizing) = size_pipe(acc.phys, None, &acc.opts) else {
                return Err(ctx.error(vec![Conflict {
                    field: ConflictField::FrameSize,
                    pins: ctx.names(acc.lo_pin.into_iter().chain(acc.hi_pin)),
                    detail: format!(
                        "the common range {} holds no size of at least 1 byte",
                        acc.phys.describe()
                    ),
                }]));
            };
            let owner = allocating_pin.unwrap_or(0);
            (
                AllocatorChoice {
                    kind: AllocatorKind::Default,
                    name: "default".into(),
                    memory: mem.kind(),
                    pin: ctx.pins[owner].name.clone(),
                    pin_id: ctx.pins[owner].id,
                    vendor: None,
                },
                sizing,
                mem,
            )
        }
    };

    // Memory preferences the memory served does not meet: a vendor may serve only the hard
    // requirement, and the default allocator serves no device memory.
    for &(p, k) in &pref_met {
        if final_mem.satisfies(p) {
            continue;
        }
        let detail = match &allocator.vendor {
            Some(v) => format!(
                "prefers {} but vendor '{}' serves {} (preference only: relaxed)",
                p.memory_type(),
                v.name,
                final_mem.memory_type()
            ),
            None if p.is_device() => format!(
                "prefers device memory {}, which no eligible vendor serves; the default \
                 allocator uses host memory",
                p.memory_type()
            ),
            None => format!(
                "prefers {} but the default allocator uses {} (preference only: relaxed)",
                p.memory_type(),
                final_mem.memory_type()
            ),
        };
        relaxed.push(Relaxation {
            pin: ctx.pins[k].name.clone(),
            field: ConflictField::MemoryType,
            detail,
        });
    }
    // Preferences that did not refine the memory, if the memory served misses them too.
    for &(p, k, why) in &pref_unmet {
        if final_mem.satisfies(p) {
            continue;
        }
        let served = if Some(final_mem) == why.compared_with() {
            String::new()
        } else {
            format!("; {} is served", final_mem.memory_type())
        };
        let detail = match why {
            Unmet::Earlier { chose, pin } => format!(
                "prefers {} but {} was chosen for an earlier preference (of '{}'){served}; \
                 preference only: relaxed",
                p.memory_type(),
                chose.memory_type(),
                ctx.pins[pin].name
            ),
            Unmet::SystemMemory => format!(
                "prefers device memory {} but SYSTEM_MEMORY is required (by '{}'){served}; \
                 preference only: relaxed",
                p.memory_type(),
                acc.sysmem_pin
                    .map(|s| ctx.pins[s].name.as_str())
                    .unwrap_or("?")
            ),
            Unmet::Conflict { with, chosen } => format!(
                "prefers {} but {} is {}{served} (preference only: relaxed)",
                p.memory_type(),
                with.memory_type(),
                if chosen { "chosen" } else { "required" }
            ),
        };
        relaxed.push(Relaxation {
            pin: ctx.pins[k].name.clone(),
            field: ConflictField::MemoryType,
            detail,
        });
    }

    // Optimal ranges not honoured, judged against the sizes the chosen allocator serves.
    let vendor_range = allocator
        .vendor
        .as_ref()
        .map(|v| (v.name.as_str(), v.capabilities.frame_size));
    for (i, why) in &sizing.skipped {
        let (k, r) = acc.opts[*i];
        relaxed.push(Relaxation {
            pin: ctx.pins[k].name.clone(),
            field: ConflictField::FrameSize,
            detail: opt_skip_detail(ctx, r, why, acc.phys, vendor_range),
        });
    }
    let frame_size = sizing.size;
    if let Some(a) = allocating_pin {
        if hard_alloc.first() == Some(&a) && allocator.pin_id != ctx.pins[a].id {
            // Unreachable by construction (the MUST_ALLOCATE pin owns the default allocator
            // and every other vendor is refused), kept as a guard on the invariant.
            return Err(ctx.error(vec![Conflict {
                field: ConflictField::Flags,
                pins: ctx.names([a]),
                detail: "the MUST_ALLOCATE pin does not own the chosen allocator".into(),
            }]));
        }
    }

    // A preference-only MUST_ALLOCATE is honoured only if its pin owns the chosen allocator:
    // another pin's hard MUST_ALLOCATE, an earlier preference, or another pin's vendor may
    // own it instead.
    for &(k, hard) in &acc.must_allocate {
        if hard || allocator.pin_id == ctx.pins[k].id {
            continue;
        }
        let why = if hard_alloc
            .first()
            .is_some_and(|&a| allocator.pin_id == ctx.pins[a].id)
        {
            "it requires MUST_ALLOCATE".to_string()
        } else if let Some(v) = &allocator.vendor {
            format!("its vendor allocator '{}' serves the pipe", v.name)
        } else {
            "its MUST_ALLOCATE preference comes first in the pipe".to_string()
        };
        relaxed.push(Relaxation {
            pin: ctx.pins[k].name.clone(),
            field: ConflictField::Flags,
            detail: format!(
                "MUST_ALLOCATE (preference only) not honoured: '{}' allocates the pipe ({why})",
                allocator.pin
            ),
        });
    }

    // Preference-only flags the chosen allocator does not meet are relaxed and reported.
    for &(k, bits) in &acc.pref_flags {
        let honours = allocator
            .vendor
            .as_ref()
            .map_or(ALLOCATOR_FLAGS, |v| v.capabilities.honours.bits());
        let mut unmet = bits & !honours;
        if final_mem.is_device() {
            unmet |= bits & RequirementFlags::SYSTEM_MEMORY.bits();
        }
        if unmet != 0 {
            relaxed.push(Relaxation {
                pin: ctx.pins[k].name.clone(),
                field: ConflictField::Flags,
                detail: format!(
                    "prefers {:?}, which {} '{}' ({} memory) does not provide (preference only: \
                     relaxed)",
                    RequirementFlags(unmet),
                    if allocator.vendor.is_some() {
                        "vendor allocator"
                    } else {
                        "allocator"
                    },
                    allocator.name,
                    final_mem.memory_type()
                ),
            });
        }
    }

    let memory_type = final_mem.memory_type();
    let required_memory = required.memory_type();
    Ok(PipePlan {
        id,
        root: ctx.pins[0].name.clone(),
        mode: if user {
            FilterMode::User
        } else {
            FilterMode::Kernel
        },
        items: chosen_items,
        framing: MergedFraming {
            frames,
            frame_size,
            alignment: acc.align.bytes(),
            memory_type: memory_type.to_string(),
            requirements: acc.hard_flags,
            memory: memory_type,
            required_memory_type: required_memory.to_string(),
            required_memory,
        },
        allocator,
        rejected,
        relaxed,
        pins: ctx.pins.iter().map(|p| p.name.clone()).collect(),
        pin_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(min: u32, max: u32, step: u32) -> SizeSet {
        SizeSet::from_range(FrameRange {
            min,
            max,
            stepping: step,
        })
    }

    #[test]
    fn steppings_combine_by_crt() {
        let s = set(100, 1000, 6).intersect(&set(2, 1000, 4)).unwrap();
        // x ≡ 4 (mod 6), x ≡ 2 (mod 4) → x ≡ 10 (mod 12); first ≥ 100 is 106.
        assert_eq!(s.first_at_or_above(0), Some(106));
        assert_eq!(s.m, 12);
        assert_eq!(
            set(100, 1000, 3).intersect(&set(101, 1000, 3)),
            Err(Miss::Stepping)
        );
        assert_eq!(
            set(1, 10, 1).intersect(&set(11, 20, 1)),
            Err(Miss::Disjoint)
        );
    }

    #[test]
    fn huge_moduli_collapse_to_one_size() {
        let a = set(0, u32::MAX, 65521);
        let b = set(0, u32::MAX, 65519);
        let c = set(0, u32::MAX, 65497);
        let ab = a.intersect(&b).unwrap();
        let abc = ab.intersect(&c);
        // 0 is on all three steppings and is the only member below the product.
        assert_eq!(abc.map(|s| (s.lo, s.hi)), Ok((0, 0)));
    }

    #[test]
    fn pick_prefers_the_smallest_accepted_size() {
        assert_eq!(set(1000, 5000, 512).pick(), Some(1000));
        assert_eq!(SizeSet::ANY.pick(), Some(DEFAULT_FRAME_SIZE));
        assert_eq!(set(0, 100, 1).pick(), Some(100));
        assert_eq!(set(0, 0, 1).pick(), Some(DEFAULT_FRAME_SIZE)); // max 0 = no requirement
    }

    #[test]
    fn memory_lattice() {
        assert_eq!(Mem::Paged.meet(Mem::NonPaged), Some(Mem::NonPaged));
        assert_eq!(Mem::NonPaged.meet(Mem::User), None);
        assert!(Mem::NonPaged.satisfies(Mem::Paged));
        assert!(!Mem::Paged.satisfies(Mem::NonPaged));
        assert!(Mem::Any.satisfies(Mem::User));
    }
}
