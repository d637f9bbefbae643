//! AVStream stream pointers: `KSMAPPING`, `KSSTREAM_POINTER_OFFSET`, `KSSTREAM_POINTER`,
//! `KSSTREAM_POINTER_STATE` (ks-spec.md §8.1).

use core::ffi::c_void;
use core::fmt;
use core::mem::{align_of, offset_of, size_of};

use crate::opaque::PKSPIN;
use crate::stream::KSSTREAM_HEADER;

/// One scatter/gather mapping (16 bytes).
///
/// ```
/// use ks_sys::KSMAPPING;
/// let m = KSMAPPING { PhysicalAddress: 0x1000_0000, ByteCount: 4096, Alignment: 0 };
/// assert_eq!(core::mem::size_of_val(&m), 16);
/// assert_eq!(core::mem::offset_of!(KSMAPPING, ByteCount), 8);
/// ```
#[repr(C, align(8))]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct KSMAPPING {
    /// Physical address (`PHYSICAL_ADDRESS`).
    pub PhysicalAddress: i64,
    /// Bytes in the mapping.
    pub ByteCount: u32,
    /// Alignment.
    pub Alignment: u32,
}

const _: () = assert!(size_of::<KSMAPPING>() == 16);
const _: () = assert!(align_of::<KSMAPPING>() == 8);
const _: () = assert!(offset_of!(KSMAPPING, PhysicalAddress) == 0);
const _: () = assert!(offset_of!(KSMAPPING, ByteCount) == 8);
const _: () = assert!(offset_of!(KSMAPPING, Alignment) == 12);

/// `Data` / `Mappings` of a [`KSSTREAM_POINTER_OFFSET`].
///
/// ```
/// use ks_sys::*;
/// let mut data = [0u8; 16];
/// let mut off = KSSTREAM_POINTER_OFFSET::default();
/// off.Anonymous.Data = data.as_mut_ptr(); // writing a union field is safe
/// assert_eq!(core::mem::size_of::<KSSTREAM_POINTER_OFFSET_0>(), core::mem::size_of::<usize>());
/// ```
#[repr(C)]
#[derive(Clone, Copy)]
pub union KSSTREAM_POINTER_OFFSET_0 {
    /// Virtual address within the frame (pins without `KSPIN_FLAG_GENERATE_MAPPINGS`).
    pub Data: *mut u8,
    /// Current mapping (pins with `KSPIN_FLAG_GENERATE_MAPPINGS`).
    pub Mappings: *mut KSMAPPING,
}

// One pointer, whichever member.
const _: () = assert!(size_of::<KSSTREAM_POINTER_OFFSET_0>() == size_of::<*mut u8>());
const _: () = assert!(align_of::<KSSTREAM_POINTER_OFFSET_0>() == align_of::<*mut u8>());

impl Default for KSSTREAM_POINTER_OFFSET_0 {
    fn default() -> Self {
        KSSTREAM_POINTER_OFFSET_0 {
            Data: core::ptr::null_mut(),
        }
    }
}

impl fmt::Debug for KSSTREAM_POINTER_OFFSET_0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KSSTREAM_POINTER_OFFSET_0")
            .finish_non_exhaustive()
    }
}

/// Position of a stream pointer within its frame (16 bytes on x86 and x64).
///
/// ```
/// use ks_sys::*;
/// let mut data = [0u8; 64];
/// let off = KSSTREAM_POINTER_OFFSET {
///     Anonymous: KSSTREAM_POINTER_OFFSET_0 { Data: data.as_mut_ptr() },
///     Count: 64,
///     Remaining: 64,
///     ..Default::default() // the x86 padding field
/// };
/// assert_eq!(off.Count - off.Remaining, 0); // at the start of the frame
/// assert_eq!(core::mem::size_of_val(&off), 16);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSSTREAM_POINTER_OFFSET {
    /// `Data` / `Mappings`.
    pub Anonymous: KSSTREAM_POINTER_OFFSET_0,
    /// Padding that keeps the structure 16 bytes on x86.
    #[cfg(target_pointer_width = "32")]
    pub Alignment: *mut c_void,
    /// Bytes (or mappings) in the frame.
    pub Count: u32,
    /// Bytes (or mappings) at and after the current position.
    pub Remaining: u32,
}

// Not derivable on 32-bit targets, where the raw-pointer padding field has no `Default`.
#[allow(clippy::derivable_impls)]
impl Default for KSSTREAM_POINTER_OFFSET {
    fn default() -> Self {
        KSSTREAM_POINTER_OFFSET {
            Anonymous: KSSTREAM_POINTER_OFFSET_0::default(),
            #[cfg(target_pointer_width = "32")]
            Alignment: core::ptr::null_mut(),
            Count: 0,
            Remaining: 0,
        }
    }
}

const _: () = assert!(size_of::<KSSTREAM_POINTER_OFFSET>() == 16);
const _: () = assert!(offset_of!(KSSTREAM_POINTER_OFFSET, Anonymous) == 0);
const _: () = assert!(offset_of!(KSSTREAM_POINTER_OFFSET, Count) == 8);
const _: () = assert!(offset_of!(KSSTREAM_POINTER_OFFSET, Remaining) == 12);
#[cfg(target_pointer_width = "64")]
const _: () = assert!(align_of::<KSSTREAM_POINTER_OFFSET>() == 8);
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(align_of::<KSSTREAM_POINTER_OFFSET>() == 4);
    assert!(offset_of!(KSSTREAM_POINTER_OFFSET, Alignment) == 4);
};

/// An AVStream stream pointer (x64 64 bytes, x86 48).
///
/// ```
/// use ks_sys::*;
/// let mut p = KSSTREAM_POINTER::default();
/// p.OffsetIn.Count = 128;
/// p.Offset = &mut p.OffsetIn; // an input pin's pointer
/// assert!(p.Context.is_null() && !p.Offset.is_null());
/// let w = core::mem::size_of::<usize>();
/// assert_eq!(core::mem::offset_of!(KSSTREAM_POINTER, OffsetIn), 4 * w);
/// assert_eq!(core::mem::size_of::<KSSTREAM_POINTER>(), 4 * w + 32);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSSTREAM_POINTER {
    /// Clone context (null for the leading and trailing edges).
    pub Context: *mut c_void,
    /// The pin that owns the queue.
    pub Pin: PKSPIN,
    /// Header of the frame the pointer is on.
    pub StreamHeader: *mut KSSTREAM_HEADER,
    /// `&OffsetIn` on input pins, `&OffsetOut` on output pins.
    pub Offset: *mut KSSTREAM_POINTER_OFFSET,
    /// Input position.
    pub OffsetIn: KSSTREAM_POINTER_OFFSET,
    /// Output position.
    pub OffsetOut: KSSTREAM_POINTER_OFFSET,
}

impl Default for KSSTREAM_POINTER {
    fn default() -> Self {
        KSSTREAM_POINTER {
            Context: core::ptr::null_mut(),
            Pin: core::ptr::null_mut(),
            StreamHeader: core::ptr::null_mut(),
            Offset: core::ptr::null_mut(),
            OffsetIn: KSSTREAM_POINTER_OFFSET::default(),
            OffsetOut: KSSTREAM_POINTER_OFFSET::default(),
        }
    }
}

const _: () = assert!(offset_of!(KSSTREAM_POINTER, Context) == 0);
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<KSSTREAM_POINTER>() == 64);
    assert!(align_of::<KSSTREAM_POINTER>() == 8);
    assert!(offset_of!(KSSTREAM_POINTER, Pin) == 8);
    assert!(offset_of!(KSSTREAM_POINTER, StreamHeader) == 16);
    assert!(offset_of!(KSSTREAM_POINTER, Offset) == 24);
    assert!(offset_of!(KSSTREAM_POINTER, OffsetIn) == 32);
    assert!(offset_of!(KSSTREAM_POINTER, OffsetOut) == 48);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<KSSTREAM_POINTER>() == 48);
    assert!(align_of::<KSSTREAM_POINTER>() == 4);
    assert!(offset_of!(KSSTREAM_POINTER, Pin) == 4);
    assert!(offset_of!(KSSTREAM_POINTER, StreamHeader) == 8);
    assert!(offset_of!(KSSTREAM_POINTER, Offset) == 12);
    assert!(offset_of!(KSSTREAM_POINTER, OffsetIn) == 16);
    assert!(offset_of!(KSSTREAM_POINTER, OffsetOut) == 32);
};

/// Lock state requested when acquiring a stream pointer (`i32` enum).
///
/// ```
/// use ks_sys::*;
/// let s: KSSTREAM_POINTER_STATE = KSSTREAM_POINTER_STATE_LOCKED;
/// assert_eq!((KSSTREAM_POINTER_STATE_UNLOCKED, s), (0, 1));
/// ```
pub type KSSTREAM_POINTER_STATE = i32;
/// Unlocked: may point at nothing, or at a frame that can be cancelled.
pub const KSSTREAM_POINTER_STATE_UNLOCKED: KSSTREAM_POINTER_STATE = 0;
/// Locked: points at a real frame that cannot be cancelled.
pub const KSSTREAM_POINTER_STATE_LOCKED: KSSTREAM_POINTER_STATE = 1;
