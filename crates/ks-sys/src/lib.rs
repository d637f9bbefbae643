//! Raw Windows Kernel Streaming (KS) allocator ABI: structures, constants, GUIDs and NTSTATUS
//! values, with the C names verbatim (in the manner of `windows-sys`).
#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]
#![deny(missing_docs)]
