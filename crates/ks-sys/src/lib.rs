//! Raw Windows Kernel Streaming (KS) allocator ABI: structures, constants, GUIDs and NTSTATUS
//! values, with the C names verbatim (in the manner of `windows-sys`).
//!
//! Every structure has its size, alignment and field offsets asserted at compile time (x86_64
//! and x86 values; the x86 ones compile only for a 32-bit target, see `tools/abi-probe`), and
//! `tests/abi.rs` checks every structure layout, constant and GUID against data extracted
//! from mingw-w64's `ks.h` by `tools/abi-probe`, or, for the few items mingw lacks, against a
//! hand-kept list (`tests/data/abi-spec-only.txt`). The probe sees no function signature: the
//! callback types (`PFN*`) are written from the headers. The helpers that mirror C macros
//! are checked by their doctests and, for `CTL_CODE`, through the IOCTL values it builds.
//!
//! ```
//! use ks_sys::*;
//! // A property request for a pin's extended framing, and the framing an AVStream pin declares.
//! let request = KSIDENTIFIER::new(KSPROPSETID_Connection,
//!     KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX, KSPROPERTY_TYPE_GET);
//! let framing = DECLARE_SIMPLE_FRAMING_EX(KSMEMORY_TYPE_KERNEL_NONPAGED,
//!     KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY, 4, FILE_QUAD_ALIGNMENT, 4096, 4096);
//! assert_eq!(core::mem::size_of_val(&request), 24);
//! assert_eq!(framing.FramingItem[0].FramingRange.Range.MinFrameSize, 4096);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]
#![deny(missing_docs)]

mod allocator;
mod framing;
mod guid;
mod opaque;
mod pin;
mod pointer;
mod property;
mod proxy;
mod status;
mod stream;

pub use allocator::*;
pub use framing::*;
pub use guid::*;
pub use opaque::*;
pub use pin::*;
pub use pointer::*;
pub use property::*;
pub use proxy::*;
pub use status::*;
pub use stream::*;
