//! KS frame allocators.
#![deny(missing_docs)]

mod framing;
mod status;
mod validate;

pub use framing::{
    Alignment, BusType, Compression, FrameRange, Framing, FramingEx, FramingItem, ItemFlags,
    MemoryType, OptionFlags, PoolType, RequirementFlags,
};
pub use status::{Message, Status};
pub use validate::{
    check_region_size, validate_create_request, validate_create_request_with, validate_framing,
    DEFAULT_MAX_ALIGNMENT, VALID_CREATE_OPTIONS,
};
