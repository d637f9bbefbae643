//! Stream headers and stream states: `KSTIME`, `KSSTREAM_HEADER`, `KSSTATE` (ks-spec.md §8.1).

use core::ffi::c_void;
use core::mem::{align_of, offset_of, size_of};

/// A time value with a rational scale (16 bytes, 8-byte aligned).
///
/// ```
/// use ks_sys::KSTIME;
/// // One second in 100 ns units, unscaled.
/// let t = KSTIME { Time: 10_000_000, Numerator: 1, Denominator: 1 };
/// assert_eq!(t.Time * i64::from(t.Numerator) / i64::from(t.Denominator), 10_000_000);
/// assert_eq!((core::mem::size_of_val(&t), core::mem::align_of_val(&t)), (16, 8));
/// ```
#[repr(C, align(8))]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
pub struct KSTIME {
    /// Time in units of `Numerator / Denominator` × 100 ns.
    pub Time: i64,
    /// Scale numerator.
    pub Numerator: u32,
    /// Scale denominator.
    pub Denominator: u32,
}

const _: () = assert!(size_of::<KSTIME>() == 16);
const _: () = assert!(align_of::<KSTIME>() == 8);
const _: () = assert!(offset_of!(KSTIME, Time) == 0);
const _: () = assert!(offset_of!(KSTIME, Numerator) == 8);
const _: () = assert!(offset_of!(KSTIME, Denominator) == 12);

/// Header of one frame in a stream request (x64 56 bytes, x86 48).
///
/// ```
/// use ks_sys::*;
/// let mut frame = [0u8; 256];
/// let h = KSSTREAM_HEADER {
///     Size: core::mem::size_of::<KSSTREAM_HEADER>() as u32,
///     FrameExtent: 256,
///     DataUsed: 100,
///     Data: frame.as_mut_ptr().cast(),
///     OptionsFlags: KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM,
///     ..Default::default()
/// };
/// assert!(h.DataUsed <= h.FrameExtent);
/// assert_eq!(h.Size, if cfg!(target_pointer_width = "64") { 56 } else { 48 });
/// assert_eq!(core::mem::offset_of!(KSSTREAM_HEADER, Data), 40);
/// ```
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct KSSTREAM_HEADER {
    /// Size of this header (plus any extended header).
    pub Size: u32,
    /// Type-specific flags.
    pub TypeSpecificFlags: u32,
    /// Presentation time.
    pub PresentationTime: KSTIME,
    /// Duration.
    pub Duration: i64,
    /// Usable size of the frame.
    pub FrameExtent: u32,
    /// Bytes of valid data.
    pub DataUsed: u32,
    /// The frame.
    pub Data: *mut c_void,
    /// `KSSTREAM_HEADER_OPTIONSF_*` flags.
    pub OptionsFlags: u32,
    /// Reserved (64-bit only).
    #[cfg(target_pointer_width = "64")]
    pub Reserved: u32,
}

impl Default for KSSTREAM_HEADER {
    fn default() -> Self {
        KSSTREAM_HEADER {
            Size: 0,
            TypeSpecificFlags: 0,
            PresentationTime: KSTIME::default(),
            Duration: 0,
            FrameExtent: 0,
            DataUsed: 0,
            Data: core::ptr::null_mut(),
            OptionsFlags: 0,
            #[cfg(target_pointer_width = "64")]
            Reserved: 0,
        }
    }
}

const _: () = assert!(align_of::<KSSTREAM_HEADER>() == 8);
const _: () = assert!(offset_of!(KSSTREAM_HEADER, Size) == 0);
const _: () = assert!(offset_of!(KSSTREAM_HEADER, TypeSpecificFlags) == 4);
const _: () = assert!(offset_of!(KSSTREAM_HEADER, PresentationTime) == 8);
const _: () = assert!(offset_of!(KSSTREAM_HEADER, Duration) == 24);
const _: () = assert!(offset_of!(KSSTREAM_HEADER, FrameExtent) == 32);
const _: () = assert!(offset_of!(KSSTREAM_HEADER, DataUsed) == 36);
const _: () = assert!(offset_of!(KSSTREAM_HEADER, Data) == 40);
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<KSSTREAM_HEADER>() == 56);
    assert!(offset_of!(KSSTREAM_HEADER, OptionsFlags) == 48);
    assert!(offset_of!(KSSTREAM_HEADER, Reserved) == 52);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<KSSTREAM_HEADER>() == 48);
    assert!(offset_of!(KSSTREAM_HEADER, OptionsFlags) == 44);
};

/// Header option: splice point.
///
/// ```
/// use ks_sys::*;
/// let flags = KSSTREAM_HEADER_OPTIONSF_TIMEVALID | KSSTREAM_HEADER_OPTIONSF_DURATIONVALID;
/// assert_eq!(flags, 0x110);
/// assert_eq!(KSSTREAM_HEADER_OPTIONSF_LOOPEDDATA, 1 << 31);
/// ```
pub const KSSTREAM_HEADER_OPTIONSF_SPLICEPOINT: u32 = 0x0000_0001;
/// Header option: preroll.
pub const KSSTREAM_HEADER_OPTIONSF_PREROLL: u32 = 0x0000_0002;
/// Header option: data discontinuity.
pub const KSSTREAM_HEADER_OPTIONSF_DATADISCONTINUITY: u32 = 0x0000_0004;
/// Header option: type changed.
pub const KSSTREAM_HEADER_OPTIONSF_TYPECHANGED: u32 = 0x0000_0008;
/// Header option: `PresentationTime` is valid.
pub const KSSTREAM_HEADER_OPTIONSF_TIMEVALID: u32 = 0x0000_0010;
/// Header option: time discontinuity.
pub const KSSTREAM_HEADER_OPTIONSF_TIMEDISCONTINUITY: u32 = 0x0000_0040;
/// Header option: flush on pause.
pub const KSSTREAM_HEADER_OPTIONSF_FLUSHONPAUSE: u32 = 0x0000_0080;
/// Header option: `Duration` is valid.
pub const KSSTREAM_HEADER_OPTIONSF_DURATIONVALID: u32 = 0x0000_0100;
/// Header option: end of stream.
pub const KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM: u32 = 0x0000_0200;
/// Header option: buffered transfer.
pub const KSSTREAM_HEADER_OPTIONSF_BUFFEREDTRANSFER: u32 = 0x0000_0400;
/// Header option: VRAM data transfer.
pub const KSSTREAM_HEADER_OPTIONSF_VRAM_DATA_TRANSFER: u32 = 0x0000_0800;
/// Header option: looped data.
pub const KSSTREAM_HEADER_OPTIONSF_LOOPEDDATA: u32 = 0x8000_0000;

/// Stream state of a pin (`KSSTATE`, an `i32` enum).
///
/// ```
/// use ks_sys::*;
/// // The states are ordered: a pin moves STOP -> ACQUIRE -> PAUSE -> RUN one step at a time.
/// assert!(KSSTATE_STOP < KSSTATE_ACQUIRE && KSSTATE_PAUSE < KSSTATE_RUN);
/// assert_eq!(KSSTATE_RUN, 3);
/// ```
pub type KSSTATE = i32;
/// Stopped.
pub const KSSTATE_STOP: KSSTATE = 0;
/// Resources acquired (AVStream builds pipe sections on STOP→ACQUIRE).
pub const KSSTATE_ACQUIRE: KSSTATE = 1;
/// Paused.
pub const KSSTATE_PAUSE: KSSTATE = 2;
/// Running.
pub const KSSTATE_RUN: KSSTATE = 3;
