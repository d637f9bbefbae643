//! The result of negotiation: an [`AllocationPlan`] with one [`PipePlan`] per pipe, saying
//! which pins share frames, the merged framing, the chosen allocator and why every other
//! candidate was not chosen. The plan serialises to JSON (`serde`), alignment in bytes:
//!
//! ```json
//! {"pipes":[{"id":0,"pins":["cam.out","dst.in"],"items":[0,null],"root":"cam.out","mode":"kernel",
//!   "allocator":{"kind":"vendor","name":"dma","memory":"nonpaged","pin":"cam.out"},
//!   "framing":{"frames":4,"frame_size":8192,"alignment":64,
//!              "memory_type":"KSMEMORY_TYPE_KERNEL_NONPAGED",
//!              "required_memory_type":"KSMEMORY_TYPE_KERNEL_NONPAGED","requirements":0},
//!   "rejected":[{"candidate":"default","kind":"default","pin":null,
//!                "reason":"vendor 'dma' on 'cam.out' is eligible and ranks before the default allocator (...)",
//!                "codes":["outranked"]}],
//!   "relaxed":[]}]}
//! ```

use std::fmt;

use ks_alloc::{Alignment, Framing, MemoryType, OptionFlags, RequirementFlags};

use crate::error::ConflictField;
use crate::graph::PinId;
use crate::model::{FilterMode, VendorSpec};

/// Which kind of allocator serves a pipe.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
/// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
/// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
/// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
/// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
/// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// # b.connect("cam.out", "enc.in")?;
/// # let g = b.build()?;
/// # let plan = negotiate(&g)?;
/// # let pipe = &plan.pipes[0];
/// assert_eq!(pipe.allocator.kind, AllocatorKind::Vendor); // the camera's DMA allocator
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AllocatorKind {
    /// The library's default allocator (`KsCreateDefaultAllocator`) of the pipe's memory.
    Default,
    /// A vendor allocator offered by a pin (`KSALLOCATOR_DISPATCH`).
    Vendor,
    /// The client's own allocator, assigned to the pipe's root pin with
    /// `KSPROPERTY_STREAM_ALLOCATOR` before ACQUIRE (behaviour 46). Only the plan of an
    /// acquired graph ([`Graph::plan`](crate::Graph::plan)) names it: negotiation alone
    /// chooses a default or vendor allocator, which the client's then replaces (and which
    /// [`PipePlan::rejected`] lists with [`RejectCode::ClientAllocator`]).
    Client,
}

/// The memory a pipe's frames live in.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
/// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
/// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
/// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
/// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
/// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// # b.connect("cam.out", "enc.in")?;
/// # let g = b.build()?;
/// # let plan = negotiate(&g)?;
/// # let pipe = &plan.pipes[0];
/// assert_eq!(pipe.allocator.memory, MemoryKind::NonPaged);
/// assert_eq!(MemoryKind::User.to_string(), "user");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryKind {
    /// Non-paged (locked) system memory: `KERNEL_NONPAGED`, `SYSTEM`.
    NonPaged,
    /// Pageable system memory: `KERNEL_PAGED`.
    Paged,
    /// Memory shareable with user-mode filters: `USER`.
    User,
    /// Device memory of a vendor allocator (any other memory type GUID).
    Device,
}

/// The kind of an allocator's memory (a vendor's reports the library memory it is closest
/// to, so never `Device`).
///
/// ```
/// use ks_graph::plan::MemoryKind;
/// assert_eq!(MemoryKind::from(ks_alloc::Memory::Paged), MemoryKind::Paged);
/// assert_eq!(MemoryKind::from(ks_alloc::Memory::User).to_string(), "user");
/// ```
impl From<ks_alloc::Memory> for MemoryKind {
    fn from(m: ks_alloc::Memory) -> MemoryKind {
        match m {
            ks_alloc::Memory::NonPaged => MemoryKind::NonPaged,
            ks_alloc::Memory::Paged => MemoryKind::Paged,
            ks_alloc::Memory::User => MemoryKind::User,
        }
    }
}

impl MemoryKind {
    /// True for memory that must never reach a user-mode filter (everything but `User`).
    ///
    /// ```
    /// use ks_graph::MemoryKind;
    /// assert!(MemoryKind::NonPaged.is_kernel_side() && MemoryKind::Device.is_kernel_side());
    /// assert!(!MemoryKind::User.is_kernel_side());
    /// ```
    pub fn is_kernel_side(self) -> bool {
        self != MemoryKind::User
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemoryKind::NonPaged => "nonpaged",
            MemoryKind::Paged => "paged",
            MemoryKind::User => "user",
            MemoryKind::Device => "device",
        })
    }
}

/// The allocator chosen for a pipe.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
/// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
/// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
/// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
/// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
/// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// # b.connect("cam.out", "enc.in")?;
/// # let g = b.build()?;
/// # let plan = negotiate(&g)?;
/// # let pipe = &plan.pipes[0];
/// let a = &pipe.allocator;
/// assert_eq!((a.name.as_str(), a.pin.as_str()), ("dma", "cam.out"));
/// assert_eq!(a.pin_id, g.pin("cam.out")?);
/// assert!(a.vendor.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, serde::Serialize)]
pub struct AllocatorChoice {
    /// Default, vendor, or (in an acquired graph's plan) the client's.
    pub kind: AllocatorKind,
    /// `"default"`, the vendor's name, or the client allocator's name.
    pub name: String,
    /// The memory its frames live in.
    pub memory: MemoryKind,
    /// The pin that owns the allocator (`"filter.pin"`): the vendor's pin, the
    /// MUST_ALLOCATE pin, or the pipe's root output pin (where a client's is assigned).
    pub pin: String,
    /// The owning pin as an id.
    #[serde(skip)]
    pub pin_id: PinId,
    /// The vendor allocator, when `kind` is `Vendor`.
    #[serde(skip)]
    pub vendor: Option<VendorSpec>,
}

/// The framing every pin of a pipe gets.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
/// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
/// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
/// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
/// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
/// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// # b.connect("cam.out", "enc.in")?;
/// # let g = b.build()?;
/// # let plan = negotiate(&g)?;
/// # let pipe = &plan.pipes[0];
/// let f = &pipe.framing;
/// assert_eq!((f.frames, f.frame_size, f.alignment), (4, 8192, 64));
/// assert_eq!(f.memory_type, "KSMEMORY_TYPE_KERNEL_NONPAGED");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MergedFraming {
    /// Frames the allocator may have outstanding (sum of the pins' counts).
    pub frames: u32,
    /// Bytes per frame.
    pub frame_size: u32,
    /// Alignment in bytes (the strictest of the pins).
    pub alignment: u32,
    /// The memory type, by name (or GUID text for device memory).
    pub memory_type: String,
    /// The hard requirement flags of the pipe (union over non-preference items).
    pub requirements: u32,
    /// The memory type.
    #[serde(skip)]
    pub memory: MemoryType,
    /// The memory the pipe's pins require (hard, not preferences), by name: `USER` on a
    /// user-mode pipe (behaviour 40), the wildcard when no pin requires a type. `memory` is
    /// this refined by preferences and the allocator chosen; an allocator a client assigns
    /// must meet this one (docs/negotiation.md §5).
    pub required_memory_type: String,
    /// The required memory type.
    #[serde(skip)]
    pub required_memory: MemoryType,
}

impl MergedFraming {
    /// The alignment as a typed value.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
    /// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
    /// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
    /// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
    /// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
    /// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
    /// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let g = b.build()?;
    /// # let plan = negotiate(&g)?;
    /// # let pipe = &plan.pipes[0];
    /// assert_eq!(pipe.framing.alignment(), Alignment::BYTES_64);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn alignment(&self) -> Alignment {
        Alignment::from_bytes(self.alignment).unwrap_or(Alignment::BYTE)
    }

    /// The old-style framing the pipe's allocator is created with: `OPTIONF_SYSTEM_MEMORY`
    /// for system or user memory (not for device memory), the pool of the memory type
    /// (`KERNEL_PAGED` → paged, everything else non-paged), frames, size and alignment.
    /// Preference-only and undocumented bits are never passed on (a create request accepts
    /// option bits 0x0–0xF only, behaviour 13).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
    /// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
    /// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
    /// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
    /// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
    /// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
    /// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let g = b.build()?;
    /// # let plan = negotiate(&g)?;
    /// # let pipe = &plan.pipes[0];
    /// let old = pipe.framing.to_framing(MemoryKind::NonPaged);
    /// assert_eq!((old.frames, old.frame_size, old.alignment.bytes()), (4, 8192, 64));
    /// assert_eq!(old.pool_type, ks_alloc::PoolType::NON_PAGED);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "KSALLOCATOR_FRAMING")]
    pub fn to_framing(&self, memory: MemoryKind) -> Framing {
        let flags = if memory == MemoryKind::Device {
            0
        } else {
            OptionFlags::SYSTEM_MEMORY.bits()
        };
        Framing {
            flags,
            pool_type: self.memory.pool_type(),
            frames: self.frames,
            frame_size: self.frame_size,
            alignment: self.alignment(),
        }
    }

    /// The hard requirement flags, typed.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
    /// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
    /// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
    /// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
    /// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
    /// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
    /// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let g = b.build()?;
    /// # let plan = negotiate(&g)?;
    /// # let pipe = &plan.pipes[0];
    /// assert_eq!(pipe.framing.requirement_flags().bits(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn requirement_flags(&self) -> RequirementFlags {
        RequirementFlags(self.requirements)
    }
}

/// Why a candidate allocator was not chosen.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
/// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
/// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
/// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
/// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
/// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// # b.connect("cam.out", "enc.in")?;
/// # let g = b.build()?;
/// # let plan = negotiate(&g)?;
/// # let pipe = &plan.pipes[0];
/// // The default allocator lost to the eligible vendor.
/// assert_eq!(pipe.rejected[0].codes, [RejectCode::Outranked]);
/// assert_eq!(RejectCode::FrameCount.to_string(), "frame count");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The pipe touches a user-mode filter: kernel (vendor) allocators are not candidates
    /// (behaviour 40).
    UserModeConnection,
    /// The vendor serves no memory type the pipe accepts.
    MemoryType,
    /// The vendor's frame sizes do not meet the pipe's range.
    FrameSizeRange,
    /// The pipe needs a stricter alignment than the vendor guarantees.
    Alignment,
    /// The pipe needs more outstanding frames than the vendor serves.
    FrameCount,
    /// The pipe requires a flag the vendor does not honour.
    Flags,
    /// Another pin of the pipe must allocate (`MUST_ALLOCATE`).
    MustAllocate,
    /// Eligible, but a candidate ranked higher was chosen.
    Outranked,
    /// Negotiation chose it, but the client's allocator assigned to the pipe's root pin
    /// serves the pipe instead (behaviour 46; [`AllocatorKind::Client`]).
    ClientAllocator,
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectCode::UserModeConnection => "user-mode connection",
            RejectCode::MemoryType => "memory type",
            RejectCode::FrameSizeRange => "frame size range",
            RejectCode::Alignment => "alignment",
            RejectCode::FrameCount => "frame count",
            RejectCode::Flags => "flags",
            RejectCode::MustAllocate => "must allocate",
            RejectCode::Outranked => "outranked",
            RejectCode::ClientAllocator => "client allocator",
        })
    }
}

/// A candidate allocator that was not chosen, and why.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
/// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
/// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
/// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
/// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
/// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// # b.connect("cam.out", "enc.in")?;
/// # let g = b.build()?;
/// # let plan = negotiate(&g)?;
/// # let pipe = &plan.pipes[0];
/// let r = &pipe.rejected[0];
/// assert_eq!((r.candidate.as_str(), r.kind, r.pin.as_deref()), ("default", AllocatorKind::Default, None));
/// assert!(r.reason.contains("dma"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    /// `"default"` or the vendor's name.
    pub candidate: String,
    /// Default or vendor.
    pub kind: AllocatorKind,
    /// The pin offering the vendor allocator (`None` for the default allocator).
    pub pin: Option<String>,
    /// Every reason, in words, joined by `"; "`.
    pub reason: String,
    /// Every reason as a code (in the order checked: user mode, memory type, frame size,
    /// alignment, frame count, flags, must-allocate, outranked; or, alone, client allocator).
    pub codes: Vec<RejectCode>,
}

/// A preference (or an optimal range) that could not be honoured, or a requirement the
/// user-mode rule overrode.
///
/// ```
/// use std::sync::Arc;
/// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// use ks_graph::*;
/// // A kernel source asking for non-paged memory feeds a user-mode filter: USER it is.
/// let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 2, Alignment::BYTE, 0, 0);
/// let mut b = GraphBuilder::new();
/// b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(PinDescriptor::output("out").with_framing(fx))))?;
/// b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// b.connect("cam.out", "app.in")?;
/// let plan = negotiate(&b.build()?)?;
/// let r = &plan.pipes[0].relaxed[0];
/// assert_eq!((r.pin.as_str(), r.field), ("cam.out", ConflictField::MemoryType));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Relaxation {
    /// The pin whose wish was relaxed, `"filter.pin"`.
    pub pin: String,
    /// The field.
    pub field: ConflictField,
    /// What was asked and what was given.
    pub detail: String,
}

/// One pipe: the connected pins sharing one allocator.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
/// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
/// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
/// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
/// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
/// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// # b.connect("cam.out", "enc.in")?;
/// # let g = b.build()?;
/// # let plan = negotiate(&g)?;
/// # let pipe = &plan.pipes[0];
/// assert_eq!(pipe.pins, ["cam.out", "enc.in"]);
/// assert_eq!(pipe.items, [Some(0), None]); // enc.in declares no framing
/// assert_eq!((pipe.root.as_str(), pipe.mode), ("cam.out", FilterMode::Kernel));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, serde::Serialize)]
pub struct PipePlan {
    /// The pipe's index in the plan.
    pub id: usize,
    /// Its pins, `"filter.pin"`, root (the output pin where frames enter) first, every pin
    /// after the pins upstream of it.
    pub pins: Vec<String>,
    /// The same pins as ids.
    #[serde(skip)]
    pub pin_ids: Vec<PinId>,
    /// For each pin (same order), the index of the framing item chosen among its
    /// alternatives (`None`: the pin has no framing or no items).
    pub items: Vec<Option<usize>>,
    /// The root pin, `"filter.pin"`.
    pub root: String,
    /// `User` if any filter touching the pipe is user-mode, else `Kernel`.
    pub mode: FilterMode,
    /// The chosen allocator.
    pub allocator: AllocatorChoice,
    /// The merged framing: what every pin of the pipe gets (for a pipe a client's allocator
    /// serves, what the pins need, which that allocator meets).
    pub framing: MergedFraming,
    /// Every candidate not chosen, with its reasons.
    pub rejected: Vec<Rejection>,
    /// Preferences not honoured, optimal ranges missed, requirements overridden.
    pub relaxed: Vec<Relaxation>,
}

impl PipePlan {
    /// The old-style framing the pipe's allocator is created with: what the pins need, from
    /// [`framing`](Self::framing). Where a client's allocator serves the pipe
    /// ([`AllocatorKind::Client`]), the graph creates none: this is what it would have
    /// created, which the client's met (at least as many frames, as large, as aligned);
    /// the client's own framing is [`Allocator::framing`](ks_alloc::Allocator::framing).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
    /// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
    /// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
    /// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
    /// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
    /// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
    /// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let g = b.build()?;
    /// # let plan = negotiate(&g)?;
    /// # let pipe = &plan.pipes[0];
    /// assert_eq!(pipe.allocator_framing().frame_size, 8192);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allocator_framing(&self) -> Framing {
        self.framing.to_framing(self.allocator.memory)
    }

    /// Whether `pin` belongs to this pipe.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
    /// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
    /// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
    /// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
    /// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
    /// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
    /// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let g = b.build()?;
    /// # let plan = negotiate(&g)?;
    /// # let pipe = &plan.pipes[0];
    /// assert!(pipe.contains(g.pin("enc.in")?));
    /// assert!(!pipe.contains(g.pin("app.in")?)); // unconnected: in no pipe
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, pin: PinId) -> bool {
        self.pin_ids.contains(&pin)
    }
}

/// The negotiated allocation of a whole graph: one entry per pipe.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
/// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
/// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
/// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
/// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
/// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// # b.connect("cam.out", "enc.in")?;
/// # let g = b.build()?;
/// # let plan = negotiate(&g)?;
/// # let pipe = &plan.pipes[0];
/// assert_eq!(plan.pipes.len(), 1);
/// assert_eq!(plan.vendors_chosen(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AllocationPlan {
    /// The pipes, numbered from 0 in the order their root filters appear in the graph's
    /// topological order.
    pub pipes: Vec<PipePlan>,
    /// For every pin of the graph (by filter, then pin index), its pipe.
    #[serde(skip)]
    pub(crate) pipe_of: Vec<Vec<Option<usize>>>,
    /// The id of the graph negotiated (a pin of another graph is in none of its pipes).
    #[serde(skip)]
    pub(crate) graph: u32,
}

impl AllocationPlan {
    /// The pipe `pin` belongs to (`None` for an unconnected pin, or a pin of another graph).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
    /// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
    /// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
    /// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
    /// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
    /// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
    /// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let g = b.build()?;
    /// # let plan = negotiate(&g)?;
    /// # let pipe = &plan.pipes[0];
    /// assert_eq!(plan.pipe_of(g.pin("enc.in")?).map(|p| p.id), Some(0));
    /// assert!(plan.pipe_of(g.pin("app.in")?).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pipe_of(&self, pin: PinId) -> Option<&PipePlan> {
        if pin.filter.graph != self.graph {
            return None;
        }
        let i = (*self.pipe_of.get(pin.filter().index())?.get(pin.index())?)?;
        self.pipes.get(i)
    }

    /// How many pipes use a vendor allocator (equal to the vendor initialize calls at
    /// STOP → ACQUIRE).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
    /// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
    /// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
    /// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
    /// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
    /// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
    /// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let g = b.build()?;
    /// # let plan = negotiate(&g)?;
    /// # let pipe = &plan.pipes[0];
    /// assert_eq!(plan.vendors_chosen(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn vendors_chosen(&self) -> usize {
        self.pipes
            .iter()
            .filter(|p| p.allocator.kind == AllocatorKind::Vendor)
            .count()
    }

    /// The plan as pretty-printed JSON.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType};
    /// # let dma = CommonBuffer { name: "dma", max_frame_size: 65536, max_frames: 16, alignment: Alignment::BYTE };
    /// # let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]).with_max_frames(16);
    /// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTES_64, 8192, 8192);
    /// # let out = PinDescriptor::output("out").with_framing(fx).with_vendor(VendorSpec::new("dma", Arc::new(dma), caps));
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("cam", Arc::new(FilterDescriptor::kernel("cam").with_pin(out)))?;
    /// # b.add_filter("enc", Arc::new(FilterDescriptor::kernel("enc").with_pin(PinDescriptor::input("in"))))?;
    /// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
    /// # b.connect("cam.out", "enc.in")?;
    /// # let g = b.build()?;
    /// # let plan = negotiate(&g)?;
    /// # let pipe = &plan.pipes[0];
    /// let v: serde_json::Value = serde_json::from_str(&plan.to_json())?;
    /// assert_eq!(v["pipes"][0]["allocator"]["name"], "dma");
    /// assert_eq!(v["pipes"][0]["framing"]["frame_size"], 8192);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
