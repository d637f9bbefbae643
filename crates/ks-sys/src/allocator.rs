//! Allocator objects: status structures, the DISPATCH_LEVEL function table, AVStream's vendor
//! allocator dispatch and the default-allocator callbacks (ks-spec.md §4, §5.4, §5.6).

use core::ffi::c_void;
use core::mem::{align_of, offset_of, size_of};

use crate::framing::{KSALLOCATOR_FRAMING, KSALLOCATOR_FRAMING_EX};
use crate::opaque::{PFILE_OBJECT, PKSPIN};
use crate::status::NTSTATUS;

/// `KSPROPERTY_STREAMALLOCATOR_STATUS` value (32 bytes): creation framing and current count.
///
/// ```
/// use ks_sys::*;
/// let mut s = KSSTREAMALLOCATOR_STATUS { AllocatedFrames: 3, ..Default::default() };
/// s.Framing.Frames = 4;
/// assert_eq!(core::mem::offset_of!(KSSTREAMALLOCATOR_STATUS, Reserved), 28);
/// assert_eq!(core::mem::size_of_val(&s), 32);
/// assert_eq!(core::mem::offset_of!(KSSTREAMALLOCATOR_STATUS, AllocatedFrames), 24);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct KSSTREAMALLOCATOR_STATUS {
    /// The framing the allocator was created with.
    pub Framing: KSALLOCATOR_FRAMING,
    /// Frames currently allocated.
    pub AllocatedFrames: u32,
    /// Zero.
    pub Reserved: u32,
}

const _: () = assert!(size_of::<KSSTREAMALLOCATOR_STATUS>() == 32);
const _: () = assert!(align_of::<KSSTREAMALLOCATOR_STATUS>() == 4);
const _: () = assert!(offset_of!(KSSTREAMALLOCATOR_STATUS, Framing) == 0);
const _: () = assert!(offset_of!(KSSTREAMALLOCATOR_STATUS, AllocatedFrames) == 24);
const _: () = assert!(offset_of!(KSSTREAMALLOCATOR_STATUS, Reserved) == 28);

/// The same for allocators created with extended framing (120 bytes with one item; no
/// property id returns it).
///
/// ```
/// use ks_sys::*;
/// let s = KSSTREAMALLOCATOR_STATUS_EX {
///     Framing: DECLARE_SIMPLE_FRAMING_EX(KSMEMORY_TYPE_KERNEL_NONPAGED, 0, 2, FILE_BYTE_ALIGNMENT, 64, 64),
///     AllocatedFrames: 1,
///     Reserved: 0,
/// };
/// assert_eq!(s.Framing.CountItems, 1);
/// assert_eq!(core::mem::size_of_val(&s), 120);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct KSSTREAMALLOCATOR_STATUS_EX {
    /// The extended framing the allocator was created with.
    pub Framing: KSALLOCATOR_FRAMING_EX,
    /// Frames currently allocated.
    pub AllocatedFrames: u32,
    /// Zero.
    pub Reserved: u32,
}

const _: () = assert!(size_of::<KSSTREAMALLOCATOR_STATUS_EX>() == 120);
const _: () = assert!(align_of::<KSSTREAMALLOCATOR_STATUS_EX>() == 4);
const _: () = assert!(offset_of!(KSSTREAMALLOCATOR_STATUS_EX, Framing) == 0);
const _: () = assert!(offset_of!(KSSTREAMALLOCATOR_STATUS_EX, AllocatedFrames) == 112);
const _: () = assert!(offset_of!(KSSTREAMALLOCATOR_STATUS_EX, Reserved) == 116);

/// Function-table allocate: never waits; a failure status and no frame when none is free.
///
/// ```
/// use ks_sys::*;
/// unsafe extern "C" fn never(_file: PFILE_OBJECT, frame: *mut *mut core::ffi::c_void) -> NTSTATUS {
///     let _ = frame; // a real allocator writes the frame through `frame`
///     STATUS_INSUFFICIENT_RESOURCES
/// }
/// let f: PFNALLOCATOR_ALLOCATEFRAME = Some(never);
/// assert!(f.is_some());
/// assert_eq!(core::mem::size_of::<PFNALLOCATOR_ALLOCATEFRAME>(), core::mem::size_of::<usize>());
/// ```
pub type PFNALLOCATOR_ALLOCATEFRAME =
    Option<unsafe extern "C" fn(FileObject: PFILE_OBJECT, Frame: *mut *mut c_void) -> NTSTATUS>;
/// Function-table free: returns the frame and signals `KSEVENT_STREAMALLOCATOR_FREEFRAME`.
pub type PFNALLOCATOR_FREEFRAME =
    Option<unsafe extern "C" fn(FileObject: PFILE_OBJECT, Frame: *mut c_void)>;

/// `KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE` value: the DISPATCH_LEVEL interface.
///
/// ```
/// use ks_sys::*;
/// unsafe extern "C" fn free_frame(_file: PFILE_OBJECT, _frame: *mut core::ffi::c_void) {}
/// let t = KSSTREAMALLOCATOR_FUNCTIONTABLE { AllocateFrame: None, FreeFrame: Some(free_frame) };
/// assert!(t.AllocateFrame.is_none() && t.FreeFrame.is_some());
/// assert_eq!(core::mem::size_of_val(&t), 2 * core::mem::size_of::<usize>());
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct KSSTREAMALLOCATOR_FUNCTIONTABLE {
    /// Allocate a frame without waiting.
    pub AllocateFrame: PFNALLOCATOR_ALLOCATEFRAME,
    /// Free a frame.
    pub FreeFrame: PFNALLOCATOR_FREEFRAME,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<KSSTREAMALLOCATOR_FUNCTIONTABLE>() == 16);
    assert!(align_of::<KSSTREAMALLOCATOR_FUNCTIONTABLE>() == 8);
    assert!(offset_of!(KSSTREAMALLOCATOR_FUNCTIONTABLE, AllocateFrame) == 0);
    assert!(offset_of!(KSSTREAMALLOCATOR_FUNCTIONTABLE, FreeFrame) == 8);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<KSSTREAMALLOCATOR_FUNCTIONTABLE>() == 8);
    assert!(align_of::<KSSTREAMALLOCATOR_FUNCTIONTABLE>() == 4);
    assert!(offset_of!(KSSTREAMALLOCATOR_FUNCTIONTABLE, AllocateFrame) == 0);
    assert!(offset_of!(KSSTREAMALLOCATOR_FUNCTIONTABLE, FreeFrame) == 4);
};

/// Default-allocator external allocate: a frame, or null.
pub type PFNKSDEFAULTALLOCATE = Option<unsafe extern "C" fn(Context: *mut c_void) -> *mut c_void>;
/// Default-allocator external free.
pub type PFNKSDEFAULTFREE = Option<unsafe extern "C" fn(Context: *mut c_void, Buffer: *mut c_void)>;
/// `KsCreateDefaultAllocatorEx` initializer: produces the context from the framing.
pub type PFNKSINITIALIZEALLOCATOR = Option<
    unsafe extern "C" fn(
        InitialContext: *mut c_void,
        AllocatorFraming: *mut KSALLOCATOR_FRAMING,
        Context: *mut *mut c_void,
    ) -> NTSTATUS,
>;
/// Tears the external allocator down; nothing follows it.
pub type PFNKSDELETEALLOCATOR = Option<unsafe extern "C" fn(Context: *mut c_void)>;
/// AVStream vendor allocator initializer (`AVStrMiniInitializeAllocator`).
pub type PFNKSPININITIALIZEALLOCATOR = Option<
    unsafe extern "C" fn(
        Pin: PKSPIN,
        AllocatorFraming: *mut KSALLOCATOR_FRAMING,
        Context: *mut *mut c_void,
    ) -> NTSTATUS,
>;

/// An AVStream pin's vendor allocator (`KSPIN_DISPATCH.Allocator`).
///
/// ```
/// use ks_sys::*;
/// unsafe extern "C" fn delete(_context: *mut core::ffi::c_void) {}
/// let d = KSALLOCATOR_DISPATCH { DeleteAllocator: Some(delete), ..Default::default() };
/// assert!(d.DeleteAllocator.is_some() && d.Allocate.is_none());
/// assert_eq!(core::mem::size_of::<KSALLOCATOR_DISPATCH>(), 4 * core::mem::size_of::<usize>());
/// assert_eq!(core::mem::offset_of!(KSALLOCATOR_DISPATCH, Free), 3 * core::mem::size_of::<usize>());
/// ```
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct KSALLOCATOR_DISPATCH {
    /// Called only when this pin's allocator is selected.
    pub InitializeAllocator: PFNKSPININITIALIZEALLOCATOR,
    /// Called at teardown.
    pub DeleteAllocator: PFNKSDELETEALLOCATOR,
    /// Allocate one frame (may return null).
    pub Allocate: PFNKSDEFAULTALLOCATE,
    /// Free one frame.
    pub Free: PFNKSDEFAULTFREE,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<KSALLOCATOR_DISPATCH>() == 32);
    assert!(align_of::<KSALLOCATOR_DISPATCH>() == 8);
    assert!(offset_of!(KSALLOCATOR_DISPATCH, InitializeAllocator) == 0);
    assert!(offset_of!(KSALLOCATOR_DISPATCH, DeleteAllocator) == 8);
    assert!(offset_of!(KSALLOCATOR_DISPATCH, Allocate) == 16);
    assert!(offset_of!(KSALLOCATOR_DISPATCH, Free) == 24);
};
#[cfg(target_pointer_width = "32")]
const _: () = {
    assert!(size_of::<KSALLOCATOR_DISPATCH>() == 16);
    assert!(align_of::<KSALLOCATOR_DISPATCH>() == 4);
    assert!(offset_of!(KSALLOCATOR_DISPATCH, InitializeAllocator) == 0);
    assert!(offset_of!(KSALLOCATOR_DISPATCH, DeleteAllocator) == 4);
    assert!(offset_of!(KSALLOCATOR_DISPATCH, Allocate) == 8);
    assert!(offset_of!(KSALLOCATOR_DISPATCH, Free) == 12);
};
