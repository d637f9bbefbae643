//! Pin and filter descriptors: what a filter declares about itself before it is put in a graph.
//!
//! A [`FilterDescriptor`] is shared (`Arc`) between every instance of that filter type, like a
//! `KSFILTER_DESCRIPTOR` is a shared constant in AVStream. Per-instance changes (KsEdit of a
//! pin's framing, behaviour 9) live in the [`Graph`](crate::Graph), not here.

use std::fmt;
use std::sync::Arc;

use ks_alloc::{Alignment, DynVendor, FrameRange, FramingEx, MemoryType, RequirementFlags};

use crate::error::GraphError;

/// Whether a pin receives frames (`In`, a sink in KS terms) or sends them (`Out`, a source).
///
/// ```
/// use ks_graph::{PinDescriptor, PinDirection};
/// assert_eq!(PinDescriptor::input("in").direction, PinDirection::In);
/// assert_eq!(PinDirection::Out.to_string(), "output");
/// ```
#[doc(alias = "KSPIN_DATAFLOW")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PinDirection {
    /// Frames flow into the filter through this pin (`KSPIN_DATAFLOW_IN`).
    In,
    /// Frames flow out of the filter through this pin (`KSPIN_DATAFLOW_OUT`).
    Out,
}

impl fmt::Display for PinDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinDirection::In => "input",
            PinDirection::Out => "output",
        })
    }
}

/// Where a filter runs (design.md): kernel-mode filters may receive kernel-side memory,
/// user-mode filters only USER memory (behaviour 40).
///
/// ```
/// use ks_graph::{FilterDescriptor, FilterMode};
/// assert_eq!(FilterDescriptor::user("player").mode, FilterMode::User);
/// assert_eq!(FilterMode::Kernel.to_string(), "kernel-mode");
/// ```
#[doc(alias = "KSALLOCATORMODE")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    /// A kernel-mode filter (`KsAllocatorMode_Kernel`).
    Kernel,
    /// A user-mode filter (`KsAllocatorMode_User`).
    User,
}

impl fmt::Display for FilterMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FilterMode::Kernel => "kernel-mode",
            FilterMode::User => "user-mode",
        })
    }
}

/// How frames cross a filter, which decides where pipes end (ks-spec §7.1).
///
/// ```
/// use ks_graph::{FilterDescriptor, PinDescriptor, Routing};
/// // New filters copy (each output starts a pipe); an in-place transform passes through.
/// assert_eq!(FilterDescriptor::kernel("enc").routing, Routing::Copy);
/// let xform = FilterDescriptor::kernel("gain")
///     .with_routing(Routing::PassThrough)
///     .with_pin(PinDescriptor::input("in").in_place())
///     .with_pin(PinDescriptor::output("out"));
/// assert!(xform.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// The filter forwards the frames of its single input pin to its output pins: an in-place
    /// transform (one output) or a splitter/tee (several outputs, each receiving the same
    /// frames). Its outputs stay in the input's pipe, except a tee branch whose downstream
    /// modifies frames (that branch gets its own pipe and a copy).
    PassThrough,
    /// The filter writes into new frames on every output (a copy transform, a source, a
    /// mux): each connected output starts a new pipe.
    Copy,
}

/// What a vendor allocator can serve, declared by the pin that offers it (the
/// `KSALLOCATOR_DISPATCH` of a `KSPIN_DISPATCH`). KS has no structure for this: it is how
/// this library lets the graph manager decide, before calling anything, whether a vendor
/// allocator "matches the allocator requirements" (behaviour 41).
///
/// ```
/// use ks_alloc::{Alignment, MemoryType, RequirementFlags};
/// use ks_graph::VendorCapabilities;
/// let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED])
///     .with_max_alignment(Alignment::BYTES_512)
///     .with_honours(RequirementFlags::SYSTEM_MEMORY);
/// assert!(!caps.honours.contains(RequirementFlags::FRAME_INTEGRITY));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorCapabilities {
    /// Memory types the vendor can hand out frames in (first = preferred). A wildcard entry
    /// means "any memory type".
    pub memory_types: Vec<MemoryType>,
    /// Frame sizes it can serve (stepping honoured).
    pub frame_size: FrameRange,
    /// The strictest alignment it can guarantee.
    pub max_alignment: Alignment,
    /// The most frames it can have outstanding at once.
    pub max_frames: u32,
    /// The requirement flags it honours (`SYSTEM_MEMORY`: its frames are system memory;
    /// `FRAME_INTEGRITY`: it never reuses a frame that is still held). A pipe whose hard
    /// requirements include a flag the vendor does not honour refuses it.
    pub honours: RequirementFlags,
}

impl VendorCapabilities {
    /// Capabilities of a vendor serving `memory_types`, any frame size from 1 byte up, any
    /// alignment up to one page (4096 bytes), up to `u32::MAX` frames, honouring
    /// `SYSTEM_MEMORY` and `FRAME_INTEGRITY`. Narrow them with the `with_*` methods.
    ///
    /// ```
    /// use ks_alloc::{Alignment, MemoryType};
    /// use ks_graph::VendorCapabilities;
    /// let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED])
    ///     .with_frame_size(4096, 65536, 4096)
    ///     .with_max_frames(16);
    /// assert_eq!(caps.max_frames, 16);
    /// assert_eq!(caps.max_alignment, Alignment::from_bytes(4096).unwrap());
    /// ```
    pub fn new(memory_types: Vec<MemoryType>) -> VendorCapabilities {
        VendorCapabilities {
            memory_types,
            frame_size: FrameRange {
                min: 1,
                max: u32::MAX,
                stepping: 1,
            },
            max_alignment: Alignment::from_mask(4095).unwrap_or(Alignment::BYTE),
            max_frames: u32::MAX,
            honours: RequirementFlags::SYSTEM_MEMORY | RequirementFlags::FRAME_INTEGRITY,
        }
    }

    /// Sets the frame sizes served: `min..=max` in steps of `stepping` (0 or 1 = every size).
    ///
    /// ```
    /// # use ks_alloc::MemoryType; use ks_graph::VendorCapabilities;
    /// let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED])
    ///     .with_frame_size(4096, 16384, 4096);
    /// assert!(caps.frame_size.contains(8192) && !caps.frame_size.contains(5000));
    /// ```
    pub fn with_frame_size(mut self, min: u32, max: u32, stepping: u32) -> VendorCapabilities {
        self.frame_size = FrameRange { min, max, stepping };
        self
    }

    /// Sets the strictest alignment served.
    ///
    /// ```
    /// # use ks_alloc::{Alignment, MemoryType}; use ks_graph::VendorCapabilities;
    /// let caps = VendorCapabilities::new(vec![MemoryType::USER]).with_max_alignment(Alignment::BYTES_64);
    /// assert_eq!(caps.max_alignment.bytes(), 64);
    /// ```
    pub fn with_max_alignment(mut self, alignment: Alignment) -> VendorCapabilities {
        self.max_alignment = alignment;
        self
    }

    /// Sets the most frames served at once.
    ///
    /// ```
    /// # use ks_alloc::MemoryType; use ks_graph::VendorCapabilities;
    /// let caps = VendorCapabilities::new(vec![MemoryType::USER]).with_max_frames(8);
    /// assert_eq!(caps.max_frames, 8);
    /// ```
    pub fn with_max_frames(mut self, frames: u32) -> VendorCapabilities {
        self.max_frames = frames;
        self
    }

    /// Sets the requirement flags honoured.
    ///
    /// ```
    /// # use ks_alloc::{MemoryType, RequirementFlags}; use ks_graph::VendorCapabilities;
    /// let caps = VendorCapabilities::new(vec![MemoryType::USER]).with_honours(RequirementFlags(0));
    /// assert!(!caps.honours.contains(RequirementFlags::SYSTEM_MEMORY));
    /// ```
    pub fn with_honours(mut self, flags: RequirementFlags) -> VendorCapabilities {
        self.honours = flags;
        self
    }
}

/// A vendor allocator offered by a pin: the erased [`ks_alloc::VendorAllocator`], a name for
/// reports, and what it declares it can serve.
///
/// ```
/// use std::sync::Arc;
/// use ks_alloc::{Alignment, CommonBuffer, MemoryType};
/// use ks_graph::{PinDescriptor, VendorCapabilities, VendorSpec};
/// let dma = CommonBuffer { name: "dma0", max_frame_size: 8192, max_frames: 8, alignment: Alignment::BYTES_64 };
/// let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED])
///     .with_frame_size(1, 8192, 1)
///     .with_max_frames(8);
/// let pin = PinDescriptor::output("out").with_vendor(VendorSpec::new("dma0", Arc::new(dma), caps));
/// assert_eq!(pin.vendor.as_ref().map(|v| v.name.as_str()), Some("dma0"));
/// ```
#[doc(alias = "KSALLOCATOR_DISPATCH")]
#[derive(Clone)]
pub struct VendorSpec {
    /// A name for plans and error messages.
    pub name: String,
    /// The allocator callbacks (initialize runs only if the graph manager chooses it,
    /// behaviour 38).
    pub allocator: Arc<dyn DynVendor>,
    /// What it can serve.
    pub capabilities: VendorCapabilities,
}

impl VendorSpec {
    /// Bundles a vendor allocator with its name and capabilities. Nothing of the vendor
    /// runs until the graph chooses it (behaviour 38).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_alloc::{Alignment, CommonBuffer, MemoryType};
    /// # use ks_graph::{VendorCapabilities, VendorSpec};
    /// let dev = CommonBuffer { name: "dma0", max_frame_size: 4096, max_frames: 4, alignment: Alignment::BYTE };
    /// let v = VendorSpec::new("dma0", Arc::new(dev), VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]));
    /// assert_eq!(v.name, "dma0");
    /// ```
    pub fn new(
        name: impl Into<String>,
        allocator: Arc<dyn DynVendor>,
        capabilities: VendorCapabilities,
    ) -> VendorSpec {
        VendorSpec {
            name: name.into(),
            allocator,
            capabilities,
        }
    }
}

impl fmt::Debug for VendorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendorSpec")
            .field("name", &self.name)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// A pin type of a filter (`KSPIN_DESCRIPTOR_EX` reduced to what allocation needs).
///
/// ```
/// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// use ks_graph::{PinDescriptor, PinDirection};
/// let framing = FramingEx::simple(
///     MemoryType::KERNEL_NONPAGED, ItemFlags::SYSTEM_MEMORY, 4, Alignment::BYTE, 4096, 4096);
/// let pin = PinDescriptor::output("out").with_framing(framing).required();
/// assert_eq!(pin.direction, PinDirection::Out);
/// assert!(pin.required && pin.accepts_allocator);
/// ```
#[doc(alias = "KSPIN_DESCRIPTOR_EX")]
#[doc(alias = "KSPIN_DESCRIPTOR")]
#[derive(Debug, Clone)]
pub struct PinDescriptor {
    /// The pin's name, unique within its filter; must not contain `.`.
    pub name: String,
    /// Input or output.
    pub direction: PinDirection,
    /// `KSPIN_DESCRIPTOR_EX.AllocatorFraming`; `None` = the pin does not support the
    /// allocator-framing properties (and imposes no framing requirement).
    pub framing: Option<FramingEx>,
    /// `KSPIN_DISPATCH.Allocator`: a vendor allocator this pin offers, if any.
    pub vendor: Option<VendorSpec>,
    /// The pin writes into the frames it holds (an in-place modifier). A tee branch whose
    /// downstream modifies frames gets its own pipe; `FRAME_INTEGRITY` upstream conflicts.
    pub modifies_in_place: bool,
    /// The pin must be connected for the graph to be valid (like `InstancesNecessary` ≥ 1).
    pub required: bool,
    /// The pin supports `KSPROPERTY_STREAM_ALLOCATOR` (default: output pins, which are the
    /// KS communication sources that take frames from an assigned allocator).
    pub accepts_allocator: bool,
}

impl PinDescriptor {
    fn new(name: impl Into<String>, direction: PinDirection) -> PinDescriptor {
        PinDescriptor {
            name: name.into(),
            direction,
            framing: None,
            vendor: None,
            modifies_in_place: false,
            required: false,
            accepts_allocator: direction == PinDirection::Out,
        }
    }

    /// An input pin without framing, vendor, or in-place modification; not required.
    ///
    /// ```
    /// # use ks_graph::{PinDescriptor, PinDirection};
    /// let pin = PinDescriptor::input("in");
    /// assert_eq!(pin.direction, PinDirection::In);
    /// assert!(pin.framing.is_none() && !pin.accepts_allocator && !pin.required);
    /// ```
    pub fn input(name: impl Into<String>) -> PinDescriptor {
        PinDescriptor::new(name, PinDirection::In)
    }

    /// An output pin without framing, vendor, or in-place modification; not required;
    /// accepting an allocator assignment.
    ///
    /// ```
    /// # use ks_graph::{PinDescriptor, PinDirection};
    /// let pin = PinDescriptor::output("out");
    /// assert_eq!(pin.direction, PinDirection::Out);
    /// assert!(pin.accepts_allocator);
    /// ```
    pub fn output(name: impl Into<String>) -> PinDescriptor {
        PinDescriptor::new(name, PinDirection::Out)
    }

    /// Declares the pin's framing (`AllocatorFraming`).
    ///
    /// ```
    /// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType}; use ks_graph::PinDescriptor;
    /// let fx = FramingEx::simple(MemoryType::USER, ItemFlags::empty(), 2, Alignment::BYTE, 512, 1024);
    /// let pin = PinDescriptor::input("in").with_framing(fx);
    /// assert_eq!(pin.framing.map(|f| f.items.len()), Some(1));
    /// ```
    #[doc(alias = "KSALLOCATOR_FRAMING_EX")]
    pub fn with_framing(mut self, framing: FramingEx) -> PinDescriptor {
        self.framing = Some(framing);
        self
    }

    /// Declares a vendor allocator on this pin (see [`VendorSpec`] for a full example).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_alloc::{Alignment, CommonBuffer, MemoryType};
    /// # use ks_graph::{PinDescriptor, VendorCapabilities, VendorSpec};
    /// # let dev = CommonBuffer { name: "d", max_frame_size: 4096, max_frames: 4, alignment: Alignment::BYTE };
    /// # let spec = VendorSpec::new("d", Arc::new(dev), VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED]));
    /// let pin = PinDescriptor::output("out").with_vendor(spec);
    /// assert!(pin.vendor.is_some());
    /// ```
    pub fn with_vendor(mut self, vendor: VendorSpec) -> PinDescriptor {
        self.vendor = Some(vendor);
        self
    }

    /// Marks the pin as modifying frames in place.
    ///
    /// ```
    /// # use ks_graph::PinDescriptor;
    /// assert!(PinDescriptor::input("in").in_place().modifies_in_place);
    /// ```
    pub fn in_place(mut self) -> PinDescriptor {
        self.modifies_in_place = true;
        self
    }

    /// Marks the pin as required (it must be connected).
    ///
    /// ```
    /// # use ks_graph::PinDescriptor;
    /// assert!(PinDescriptor::output("out").required().required);
    /// ```
    pub fn required(mut self) -> PinDescriptor {
        self.required = true;
        self
    }

    /// Sets whether the pin supports `KSPROPERTY_STREAM_ALLOCATOR`.
    ///
    /// ```
    /// # use ks_graph::PinDescriptor;
    /// assert!(PinDescriptor::input("in").with_accepts_allocator(true).accepts_allocator);
    /// ```
    pub fn with_accepts_allocator(mut self, accepts: bool) -> PinDescriptor {
        self.accepts_allocator = accepts;
        self
    }
}

/// A filter type: its name, mode, routing and pins (`KSFILTER_DESCRIPTOR` reduced to what
/// allocation needs).
///
/// ```
/// use ks_graph::{FilterDescriptor, FilterMode, PinDescriptor, Routing};
/// let tee = FilterDescriptor::kernel("tee")
///     .with_routing(Routing::PassThrough)
///     .with_pin(PinDescriptor::input("in"))
///     .with_pin(PinDescriptor::output("a"))
///     .with_pin(PinDescriptor::output("b"));
/// assert_eq!(tee.mode, FilterMode::Kernel);
/// assert_eq!(tee.pin_index("b"), Some(2));
/// ```
#[doc(alias = "KSFILTER_DESCRIPTOR")]
#[derive(Debug, Clone)]
pub struct FilterDescriptor {
    /// The filter type's name (instances get their own names in the graph).
    pub name: String,
    /// Kernel or user mode.
    pub mode: FilterMode,
    /// How frames cross the filter.
    pub routing: Routing,
    /// The pins, in declaration order (their index is their id within the filter).
    pub pins: Vec<PinDescriptor>,
}

impl FilterDescriptor {
    /// A filter of the given mode with copy routing and no pins.
    ///
    /// ```
    /// # use ks_graph::{FilterDescriptor, FilterMode, Routing};
    /// let f = FilterDescriptor::new("mux", FilterMode::Kernel);
    /// assert_eq!((f.routing, f.pins.len()), (Routing::Copy, 0));
    /// ```
    pub fn new(name: impl Into<String>, mode: FilterMode) -> FilterDescriptor {
        FilterDescriptor {
            name: name.into(),
            mode,
            routing: Routing::Copy,
            pins: Vec::new(),
        }
    }

    /// A kernel-mode filter with copy routing and no pins.
    ///
    /// ```
    /// # use ks_graph::{FilterDescriptor, FilterMode};
    /// assert_eq!(FilterDescriptor::kernel("cam").mode, FilterMode::Kernel);
    /// ```
    pub fn kernel(name: impl Into<String>) -> FilterDescriptor {
        FilterDescriptor::new(name, FilterMode::Kernel)
    }

    /// A user-mode filter with copy routing and no pins.
    ///
    /// ```
    /// # use ks_graph::{FilterDescriptor, FilterMode};
    /// assert_eq!(FilterDescriptor::user("app").mode, FilterMode::User);
    /// ```
    pub fn user(name: impl Into<String>) -> FilterDescriptor {
        FilterDescriptor::new(name, FilterMode::User)
    }

    /// Sets the routing.
    ///
    /// ```
    /// # use ks_graph::{FilterDescriptor, Routing};
    /// let f = FilterDescriptor::kernel("tee").with_routing(Routing::PassThrough);
    /// assert_eq!(f.routing, Routing::PassThrough);
    /// ```
    pub fn with_routing(mut self, routing: Routing) -> FilterDescriptor {
        self.routing = routing;
        self
    }

    /// Appends a pin.
    ///
    /// ```
    /// # use ks_graph::{FilterDescriptor, PinDescriptor};
    /// let f = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
    /// assert_eq!(f.pins[0].name, "out");
    /// ```
    pub fn with_pin(mut self, pin: PinDescriptor) -> FilterDescriptor {
        self.pins.push(pin);
        self
    }

    /// The index of the pin named `name`.
    ///
    /// ```
    /// # use ks_graph::{FilterDescriptor, PinDescriptor};
    /// let f = FilterDescriptor::kernel("x").with_pin(PinDescriptor::input("in")).with_pin(PinDescriptor::output("out"));
    /// assert_eq!((f.pin_index("out"), f.pin_index("nope")), (Some(1), None));
    /// ```
    pub fn pin_index(&self, name: &str) -> Option<usize> {
        self.pins.iter().position(|p| p.name == name)
    }

    /// Checks the descriptor: non-empty names without `.` in pin names, unique pin names, a
    /// pass-through filter with outputs has exactly one input, and every framing is well
    /// formed (see [`check_framing`]).
    ///
    /// ```
    /// # use ks_graph::{FilterDescriptor, GraphError, PinDescriptor};
    /// let dup = FilterDescriptor::kernel("x").with_pin(PinDescriptor::input("p")).with_pin(PinDescriptor::output("p"));
    /// let err = dup.validate().unwrap_err();
    /// assert!(matches!(err, GraphError::InvalidDescriptor { .. }));
    /// assert!(err.to_string().contains("two pins are named 'p'"));
    /// ```
    ///
    /// # Errors
    /// [`GraphError::InvalidDescriptor`] or [`GraphError::InvalidFraming`], naming the filter
    /// (and pin) and what is allowed.
    pub fn validate(&self) -> Result<(), GraphError> {
        let bad = |detail: String| GraphError::InvalidDescriptor {
            filter: self.name.clone(),
            detail,
        };
        if self.name.is_empty() {
            return Err(bad("the filter name is empty".into()));
        }
        for (i, p) in self.pins.iter().enumerate() {
            if p.name.is_empty() || p.name.contains('.') {
                return Err(bad(format!(
                    "pin name '{}' is invalid: pin names must be non-empty and contain no '.'",
                    p.name
                )));
            }
            if self.pins[..i].iter().any(|q| q.name == p.name) {
                return Err(bad(format!("two pins are named '{}'", p.name)));
            }
            if let Some(fx) = &p.framing {
                check_framing(fx).map_err(|detail| GraphError::InvalidFraming {
                    pin: format!("{}.{}", self.name, p.name),
                    detail,
                })?;
            }
        }
        let inputs = self
            .pins
            .iter()
            .filter(|p| p.direction == PinDirection::In)
            .count();
        let outputs = self.pins.len() - inputs;
        if self.routing == Routing::PassThrough && outputs > 0 && inputs != 1 {
            return Err(bad(format!(
                "a pass-through filter forwards the frames of exactly one input pin; it has {inputs}"
            )));
        }
        Ok(())
    }
}

/// Checks that a framing is well formed: at least one item (a `KSALLOCATOR_FRAMING_EX` with
/// `CountItems` 0 cannot be decoded by clients; a pin without requirements has no framing
/// instead), and `min <= max` for the physical and the optimal (framing) range of every item.
/// Returns what is wrong, in words.
///
/// A stepping larger than `max - min` is accepted (KS calls it unpredictable; here the range
/// then holds `min` only).
///
/// ```
/// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// use ks_graph::model::check_framing;
/// let mut fx = FramingEx::simple(MemoryType::USER, ItemFlags::empty(), 1, Alignment::BYTE, 64, 128);
/// assert!(check_framing(&fx).is_ok());
/// fx.items[0].framing_range.min = 4096; // optimal range 4096..=128
/// assert!(check_framing(&fx).unwrap_err().contains("exceeds its maximum"));
/// ```
///
/// # Errors
/// The problem in words (item index, range, values, what is allowed).
pub fn check_framing(framing: &FramingEx) -> Result<(), String> {
    if framing.items.is_empty() {
        return Err(
            "has no items; it must hold at least one (or the pin declares no framing)".into(),
        );
    }
    for (i, item) in framing.items.iter().enumerate() {
        for (what, r) in [
            ("physical", item.physical_range),
            ("framing", item.framing_range),
        ] {
            if r.min > r.max {
                return Err(format!(
                    "item {i}: {what} range minimum {} exceeds its maximum {}; min must be <= max",
                    r.min, r.max
                ));
            }
        }
    }
    Ok(())
}
