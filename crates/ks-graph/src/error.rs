//! Errors of the graph manager: building graphs ([`GraphError`]), negotiating allocators
//! ([`NegotiationError`]), changing state ([`StateError`]) and delivering frames
//! ([`DeliveryError`]).
//!
//! Every error names the filters and pins involved (as `"filter.pin"`) and maps to the KS
//! status a kernel-streaming client would see ([`GraphError::status`] and friends).

use std::fmt;

use ks_alloc::Status;

use crate::model::{FilterMode, PinDirection};
use crate::state::KsState;

/// A graph that cannot be built or edited.
///
/// ```
/// use ks_graph::{FilterDescriptor, GraphBuilder, GraphError, PinDescriptor};
/// let src = FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"));
/// let mut b = GraphBuilder::new();
/// b.add_filter("a", src.clone().into())?;
/// let err = b.add_filter("a", src.into()).unwrap_err();
/// assert!(matches!(err, GraphError::DuplicateFilter { .. }));
/// # Ok::<(), GraphError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// Two filter instances were given the same name.
    DuplicateFilter {
        /// The repeated instance name.
        filter: String,
    },
    /// A filter descriptor is malformed (duplicate pin names, a pass-through filter without
    /// exactly one input, an empty or dotted name, ...).
    InvalidDescriptor {
        /// The filter (instance or descriptor) name.
        filter: String,
        /// What is wrong and what is allowed.
        detail: String,
    },
    /// A pin's framing is malformed (for example a range whose minimum exceeds its maximum).
    InvalidFraming {
        /// `"filter.pin"`.
        pin: String,
        /// What is wrong and what is allowed.
        detail: String,
    },
    /// No filter instance has this name.
    UnknownFilter {
        /// The name that was looked up.
        filter: String,
    },
    /// The filter exists but has no pin of this name.
    UnknownPin {
        /// The filter instance name.
        filter: String,
        /// The pin name that was looked up.
        pin: String,
    },
    /// A [`PinId`](crate::PinId) of another graph (or builder) was given to this one.
    ForeignPin {
        /// The pin's filter index in its own graph.
        filter: u32,
        /// The pin's index in its filter.
        pin: u32,
    },
    /// A pin reference is not of the form `"filter.pin"`.
    BadPinName {
        /// The text given.
        text: String,
    },
    /// `connect(from, to)` needs an output pin as `from` and an input pin as `to`.
    WrongDirection {
        /// `"filter.pin"`.
        pin: String,
        /// The direction this position of `connect` needs.
        expected: PinDirection,
        /// The pin's direction.
        actual: PinDirection,
    },
    /// A pin can take part in one connection only.
    AlreadyConnected {
        /// `"filter.pin"` that was to be connected.
        pin: String,
        /// `"filter.pin"` it is already connected to.
        peer: String,
    },
    /// An output pin was connected to an input pin of the same filter.
    SelfConnection {
        /// The filter instance name.
        filter: String,
    },
    /// The connections form a cycle (frames would flow back into a filter they left).
    Cycle {
        /// The filters on the cycle, in flow order; the first one is repeated at the end.
        filters: Vec<String>,
    },
    /// A pin marked [`required`](crate::PinDescriptor::required) is not connected.
    Unconnected {
        /// `"filter.pin"`.
        pin: String,
        /// Its direction.
        direction: PinDirection,
    },
    /// `disconnect` on a pin that has no connection.
    NotConnected {
        /// `"filter.pin"`.
        pin: String,
    },
    /// The operation needs an output pin and was given an input pin (for example injection
    /// mode, which only an output pin can be in).
    NotAnOutputPin {
        /// `"filter.pin"`.
        pin: String,
        /// What was attempted.
        operation: &'static str,
    },
    /// The operation is only legal in another state (for example a framing edit outside STOP).
    WrongState {
        /// What was attempted.
        operation: &'static str,
        /// The graph's current state.
        state: KsState,
        /// The state the operation needs.
        required: KsState,
    },
}

impl GraphError {
    /// The KS status a client sees for this error.
    ///
    /// Unknown names are `STATUS_NOT_FOUND`; edits in the wrong state are
    /// `STATUS_INVALID_DEVICE_STATE`; every other malformed request is
    /// `STATUS_INVALID_PARAMETER`.
    ///
    /// ```
    /// # use ks_graph::*;
    /// let e = GraphBuilder::new().pin("x.y").unwrap_err();
    /// assert_eq!(e.status().name(), "STATUS_NOT_FOUND");
    /// assert_eq!(GraphError::BadPinName { text: "x".into() }.status().name(), "STATUS_INVALID_PARAMETER");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> Status {
        let msg = self.to_string().into();
        match self {
            GraphError::UnknownFilter { .. } | GraphError::UnknownPin { .. } => {
                Status::NotFound(msg)
            }
            GraphError::WrongState { .. } => Status::InvalidDeviceState(msg),
            _ => Status::InvalidParameter(msg),
        }
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::DuplicateFilter { filter } => {
                write!(
                    f,
                    "filter '{filter}' is already in the graph; instance names must be unique"
                )
            }
            GraphError::InvalidDescriptor { filter, detail } => {
                write!(f, "filter '{filter}': {detail}")
            }
            GraphError::InvalidFraming { pin, detail } => {
                write!(f, "pin '{pin}': framing {detail}")
            }
            GraphError::UnknownFilter { filter } => write!(f, "no filter named '{filter}'"),
            GraphError::UnknownPin { filter, pin } => {
                write!(f, "filter '{filter}' has no pin named '{pin}'")
            }
            GraphError::ForeignPin { filter, pin } => write!(
                f,
                "pin #{pin} of filter #{filter} belongs to another graph; use the pin ids of \
                 this graph (`Graph::pin`)"
            ),
            GraphError::BadPinName { text } => {
                write!(
                    f,
                    "'{text}' is not a pin reference; expected \"filter.pin\""
                )
            }
            GraphError::WrongDirection {
                pin,
                expected,
                actual,
            } => write!(
                f,
                "pin '{pin}' is an {actual} pin; this end of a connection must be an {expected} pin \
                 (connect goes from an output to an input)"
            ),
            GraphError::AlreadyConnected { pin, peer } => {
                write!(f, "pin '{pin}' is already connected to '{peer}'")
            }
            GraphError::SelfConnection { filter } => {
                write!(f, "filter '{filter}' cannot be connected to itself")
            }
            GraphError::Cycle { filters } => {
                write!(f, "the connections form a cycle: {}", filters.join(" -> "))
            }
            GraphError::Unconnected { pin, direction } => {
                write!(f, "required {direction} pin '{pin}' is not connected")
            }
            GraphError::NotConnected { pin } => write!(f, "pin '{pin}' is not connected"),
            GraphError::NotAnOutputPin { pin, operation } => {
                write!(
                    f,
                    "{operation} needs an output pin; pin '{pin}' is an input pin"
                )
            }
            GraphError::WrongState {
                operation,
                state,
                required,
            } => {
                write!(
                    f,
                    "{operation} needs the graph in {required}; it is in {state}"
                )
            }
        }
    }
}

impl std::error::Error for GraphError {}

impl From<GraphError> for Status {
    fn from(e: GraphError) -> Status {
        e.status()
    }
}

/// The framing field over which pins of a pipe disagree.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # let must = FramingEx::simple(MemoryType::WILDCARD, ItemFlags::MUST_ALLOCATE, 1, Alignment::BYTE, 0, 0);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out").with_framing(must.clone()))))?;
/// # b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in").with_framing(must))))?;
/// # b.connect("a.out", "b.in")?;
/// # let mut g = b.build()?;
/// let e = negotiate(&g).unwrap_err();
/// assert_eq!(e.conflicts[0].field, ConflictField::Flags); // two MUST_ALLOCATE pins
/// assert_eq!(ConflictField::FrameSize.to_string(), "frame size");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictField {
    /// Memory types that no memory satisfies together.
    MemoryType,
    /// Frame-size ranges (or steppings) with no common size.
    FrameSize,
    /// Alignment.
    Alignment,
    /// Frame count.
    Frames,
    /// Requirement flags (MUST_ALLOCATE twice, FRAME_INTEGRITY with an in-place modifier
    /// downstream, SYSTEM_MEMORY with device memory).
    Flags,
}

impl fmt::Display for ConflictField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConflictField::MemoryType => "memory type",
            ConflictField::FrameSize => "frame size",
            ConflictField::Alignment => "alignment",
            ConflictField::Frames => "frame count",
            ConflictField::Flags => "requirement flags",
        })
    }
}

/// One disagreement inside a pipe.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # let must = FramingEx::simple(MemoryType::WILDCARD, ItemFlags::MUST_ALLOCATE, 1, Alignment::BYTE, 0, 0);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out").with_framing(must.clone()))))?;
/// # b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in").with_framing(must))))?;
/// # b.connect("a.out", "b.in")?;
/// # let mut g = b.build()?;
/// let c = &negotiate(&g).unwrap_err().conflicts[0];
/// assert_eq!(c.pins, ["a.out", "b.in"]);
/// assert!(c.to_string().starts_with("requirement flags conflict between a.out, b.in: "));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conflict {
    /// The field in conflict.
    pub field: ConflictField,
    /// The pins (`"filter.pin"`) whose requirements conflict.
    pub pins: Vec<String>,
    /// The values involved, in words.
    pub detail: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} conflict between {}: {}",
            self.field,
            self.pins.join(", "),
            self.detail
        )
    }
}

/// A pipe whose pins' requirements cannot all be met.
///
/// The error names the pipe (by its root pin), every pin in it, and for each conflict the field
/// and the pins that disagree.
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # let must = FramingEx::simple(MemoryType::WILDCARD, ItemFlags::MUST_ALLOCATE, 1, Alignment::BYTE, 0, 0);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out").with_framing(must.clone()))))?;
/// # b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in").with_framing(must))))?;
/// # b.connect("a.out", "b.in")?;
/// # let mut g = b.build()?;
/// let e = negotiate(&g).unwrap_err();
/// assert_eq!((e.pipe, e.pins.clone()), (0, vec!["a.out".to_string(), "b.in".to_string()]));
/// assert!(!e.alternatives_tried); // each pin declares a single item
/// assert!(e.to_string().contains("more than one pin requires MUST_ALLOCATE"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NegotiationError {
    /// Index of the pipe (same numbering a successful plan would have used).
    pub pipe: usize,
    /// Every pin of the pipe, `"filter.pin"`, root first.
    pub pins: Vec<String>,
    /// What conflicts (at least one).
    pub conflicts: Vec<Conflict>,
    /// When some pin offers several framing items: for each pin (same order as `pins`), the
    /// item of the combination the conflicts are explained for — the preferred combination
    /// whose items are pairwise compatible, else the furthest the search got (`None` past the
    /// pin that had no compatible item, and for pins without framing). Empty otherwise.
    pub items: Vec<Option<usize>>,
    /// True when some pin offers several framing items: every combination was tried and none
    /// satisfies the pipe.
    pub alternatives_tried: bool,
}

impl NegotiationError {
    /// `STATUS_INVALID_PARAMETER`: the framing requirements cannot be met (ks-spec §5.9,
    /// "filter cannot meet framing").
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
    /// # let must = FramingEx::simple(MemoryType::WILDCARD, ItemFlags::MUST_ALLOCATE, 1, Alignment::BYTE, 0, 0);
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out").with_framing(must.clone()))))?;
    /// # b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in").with_framing(must))))?;
    /// # b.connect("a.out", "b.in")?;
    /// # let mut g = b.build()?;
    /// assert_eq!(negotiate(&g).unwrap_err().status().name(), "STATUS_INVALID_PARAMETER");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> Status {
        Status::InvalidParameter(self.to_string().into())
    }
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pipe {} ({}) cannot be negotiated: ",
            self.pipe,
            self.pins.join(", ")
        )?;
        for (i, c) in self.conflicts.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{c}")?;
        }
        if self.alternatives_tried {
            f.write_str(" (no combination of the pins' framing items fits; explained for")?;
            let mut any = false;
            for (pin, item) in self.pins.iter().zip(&self.items) {
                if let Some(n) = item {
                    write!(f, "{} {pin} item {n}", if any { "," } else { "" })?;
                    any = true;
                }
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for NegotiationError {}

impl From<NegotiationError> for Status {
    fn from(e: NegotiationError) -> Status {
        e.status()
    }
}

/// A state change that failed. The graph stays in the state it was in before the failing step
/// (see [`Graph::set_state`](crate::Graph::set_state)).
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # let must = FramingEx::simple(MemoryType::WILDCARD, ItemFlags::MUST_ALLOCATE, 1, Alignment::BYTE, 0, 0);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out").with_framing(must.clone()))))?;
/// # b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in").with_framing(must))))?;
/// # b.connect("a.out", "b.in")?;
/// # let mut g = b.build()?;
/// let err = g.set_state(KsState::Acquire).unwrap_err();
/// assert!(matches!(err, StateError::Negotiation(_)));
/// assert_eq!(g.state(), KsState::Stop); // nothing changed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// The graph is not valid for streaming (a required pin unconnected, ...).
    Graph(GraphError),
    /// Allocator negotiation failed at STOP → ACQUIRE.
    Negotiation(NegotiationError),
    /// Creating a pipe's allocator failed at STOP → ACQUIRE (for a vendor allocator, the status
    /// its initialize callback returned). Every allocator created before it was closed.
    Allocator {
        /// The pipe whose allocator failed.
        pipe: usize,
        /// The allocator's name in the plan.
        allocator: String,
        /// The status it failed with.
        status: Status,
    },
    /// At STOP → ACQUIRE, the allocator a client assigned to a pipe's root pin
    /// (`KSPROPERTY_STREAM_ALLOCATOR` SET, behaviour 46) cannot serve the pipe's framing, or
    /// is also assigned to the root pin of an earlier pipe (one allocator serves one pipe).
    /// Nothing was created.
    ClientAllocator {
        /// The pipe it was assigned to (for an allocator on two pipes, the later one; the
        /// status names both root pins).
        pipe: usize,
        /// The client allocator's name.
        allocator: String,
        /// Why it cannot serve the pipe (`STATUS_INVALID_PARAMETER`).
        status: Status,
    },
}

impl StateError {
    /// The KS status of the failure (for an allocator failure, the allocator's own status).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
    /// # let must = FramingEx::simple(MemoryType::WILDCARD, ItemFlags::MUST_ALLOCATE, 1, Alignment::BYTE, 0, 0);
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("a", Arc::new(FilterDescriptor::kernel("a").with_pin(PinDescriptor::output("out").with_framing(must.clone()))))?;
    /// # b.add_filter("b", Arc::new(FilterDescriptor::kernel("b").with_pin(PinDescriptor::input("in").with_framing(must))))?;
    /// # b.connect("a.out", "b.in")?;
    /// # let mut g = b.build()?;
    /// let err = g.set_state(KsState::Run).unwrap_err();
    /// assert_eq!(err.status().name(), "STATUS_INVALID_PARAMETER");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> Status {
        match self {
            StateError::Graph(e) => e.status(),
            StateError::Negotiation(e) => e.status(),
            StateError::Allocator { status, .. } | StateError::ClientAllocator { status, .. } => {
                status.clone()
            }
        }
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Graph(e) => write!(f, "{e}"),
            StateError::Negotiation(e) => write!(f, "{e}"),
            StateError::Allocator {
                pipe,
                allocator,
                status,
            } => {
                write!(
                    f,
                    "creating allocator '{allocator}' of pipe {pipe} failed: {status}"
                )
            }
            StateError::ClientAllocator {
                pipe,
                allocator,
                status,
            } => write!(
                f,
                "the allocator '{allocator}' assigned to pipe {pipe} cannot serve it: {status}"
            ),
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Graph(e) => Some(e),
            StateError::Negotiation(e) => Some(e),
            StateError::Allocator { status, .. } | StateError::ClientAllocator { status, .. } => {
                Some(status)
            }
        }
    }
}

impl From<GraphError> for StateError {
    fn from(e: GraphError) -> StateError {
        StateError::Graph(e)
    }
}

impl From<NegotiationError> for StateError {
    fn from(e: NegotiationError) -> StateError {
        StateError::Negotiation(e)
    }
}

impl From<StateError> for Status {
    fn from(e: StateError) -> Status {
        e.status()
    }
}

/// A frame that must not be delivered to a pin (behaviour 40: memory allocated on the kernel
/// side never reaches a user-mode filter).
///
/// ```
/// # use std::sync::Arc; use ks_graph::*;
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
/// # let g = b.build()?;
/// let err = g.check_delivery(ks_alloc::Memory::Paged, g.pin("app.in")?).unwrap_err();
/// assert_eq!((err.pin.as_str(), err.mode), ("app.in", FilterMode::User));
/// assert!(err.to_string().contains("never reaches user mode"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// The receiving pin, `"filter.pin"`.
    pub pin: String,
    /// The mode of the receiving filter.
    pub mode: FilterMode,
    /// The memory the frame lives in.
    pub memory: String,
}

impl DeliveryError {
    /// `STATUS_INVALID_DEVICE_REQUEST`: the delivery is refused.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::*;
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("app", Arc::new(FilterDescriptor::user("app").with_pin(PinDescriptor::input("in"))))?;
    /// # let g = b.build()?;
    /// let err = g.check_delivery(ks_alloc::Memory::NonPaged, g.pin("app.in")?).unwrap_err();
    /// assert_eq!(err.status().name(), "STATUS_INVALID_DEVICE_REQUEST");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn status(&self) -> Status {
        Status::InvalidDeviceRequest(self.to_string().into())
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusing to deliver a frame in {} memory to pin '{}' of a {} filter: kernel-side \
             memory never reaches user mode (KS behaviour 40)",
            self.memory, self.pin, self.mode
        )
    }
}

impl std::error::Error for DeliveryError {}

impl From<DeliveryError> for Status {
    fn from(e: DeliveryError) -> Status {
        e.status()
    }
}
