//! KS filter graphs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod filters;
pub mod queue;
pub mod runtime;
pub mod stream_pointer;
pub mod timeout;

// Graph manager (helper D): model, graph building, pin properties, negotiation, plan, states.
pub mod error;
pub mod graph;
pub mod model;
pub mod negotiate;
pub mod plan;
pub mod props;
pub mod state;

pub use error::{Conflict, ConflictField, DeliveryError, GraphError, NegotiationError, StateError};
pub use graph::{Connection, FilterId, Graph, GraphBuilder, PinId};
pub use model::{
    FilterDescriptor, FilterMode, PinDescriptor, PinDirection, Routing, VendorCapabilities,
    VendorSpec,
};
pub use negotiate::negotiate;
pub use plan::{
    AllocationPlan, AllocatorChoice, AllocatorKind, MemoryKind, MergedFraming, PipePlan,
    RejectCode, Rejection, Relaxation,
};
pub use props::AllocatorHandle;
pub use state::{KsState, PipeAllocator};
