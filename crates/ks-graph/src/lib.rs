//! KS filter graphs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod queue;
pub mod stream_pointer;
