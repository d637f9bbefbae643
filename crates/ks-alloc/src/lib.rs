//! KS frame allocators.
#![deny(missing_docs)]
