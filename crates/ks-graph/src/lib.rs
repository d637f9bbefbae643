//! KS filter graphs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
