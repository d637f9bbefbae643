//! KS frame allocators.
#![deny(missing_docs)]
// Under loom the model plays the worker, so the worker's entry points look unused.
#![cfg_attr(loom, allow(dead_code))]

mod allocator;
#[cfg(not(loom))]
pub mod bench;
mod builder;
mod cache;
mod diagnostics;
mod events;
mod frame;
mod framing;
mod freelist;
mod future;
mod level;
mod loom;
#[cfg(all(test, loom))]
mod loom_tests;
mod memory;
#[cfg(not(loom))]
mod request;
mod status;
#[cfg(all(test, not(loom)))]
mod test_hooks;
mod validate;
mod vendor;
mod waiters;
mod worker;

pub use allocator::Allocator;
pub use builder::{
    AllocatorBuilder, DEFAULT_MAX_WAITERS, DEFAULT_STARVATION_THRESHOLD, MAX_WAITERS,
};
pub use diagnostics::{AllocatorStatus, SharedMemory, StarvationReport};
pub use events::{EventSubscription, FreeFrameEvents, NextFreeFrame};
pub use frame::{Frame, Holder, OutstandingFrame};
pub use framing::{
    Alignment, BusType, Compression, FrameRange, Framing, FramingEx, FramingItem, ItemFlags,
    MemoryType, OptionFlags, PoolType, RequirementFlags,
};
pub use freelist::MAX_FRAMES;
pub use future::{Allocate, AllocateOwned, PendingAlloc};
pub use level::{DispatchGuard, Level, current_level, raise_to_dispatch};
pub use memory::Memory;
#[cfg(not(loom))]
pub use request::KsReply;
pub use status::{Message, Status, TryAllocateError};
pub use validate::{
    DEFAULT_MAX_ALIGNMENT, VALID_CREATE_OPTIONS, check_region_size, validate_create_request,
    validate_create_request_with, validate_framing,
};
pub use vendor::{
    CommonBuffer, DefaultVendor, DynVendor, ErasedContext, RegionContext, VendorAllocator,
};
