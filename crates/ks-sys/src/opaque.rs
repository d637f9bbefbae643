//! Opaque kernel objects that the allocator structures only point to.

use core::marker::{PhantomData, PhantomPinned};

macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// Opaque: only ever used behind a pointer; this crate does not model its fields.
        ///
        /// ```
        #[doc = concat!("let p: *mut ks_sys::", stringify!($name), " = core::ptr::null_mut();")]
        /// assert!(p.is_null());
        #[doc = concat!("assert_eq!(core::mem::size_of::<ks_sys::", stringify!($name), ">(), 0);")]
        /// ```
        #[repr(C)]
        #[derive(Debug)]
        pub struct $name {
            _opaque: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}

opaque! {
    /// A kernel file object (`FILE_OBJECT`); an allocator is one.
    FILE_OBJECT;
    /// An I/O request packet (`IRP`).
    IRP;
    /// An AVStream pin object (`KSPIN`).
    KSPIN;
    /// The clock dispatch table of a pin (`KSCLOCK_DISPATCH`).
    KSCLOCK_DISPATCH;
    /// A property/method/event automation table (`KSAUTOMATION_TABLE`).
    KSAUTOMATION_TABLE;
    /// A data range / data format header (`KSDATARANGE` = `KSDATAFORMAT`).
    KSDATARANGE;
    /// A counted list of items (`KSMULTIPLE_ITEM`).
    KSMULTIPLE_ITEM;
    /// An attribute list (`KSATTRIBUTE_LIST`).
    KSATTRIBUTE_LIST;
    /// A KS proxy pipe segment (the COM interface `IKsAllocatorEx`, user mode).
    IKsAllocatorEx;
}

/// A data format (`KSDATAFORMAT`, the same union as `KSDATARANGE`).
pub type KSDATAFORMAT = KSDATARANGE;
/// Pointer to a [`FILE_OBJECT`].
///
/// ```
/// let file: ks_sys::PFILE_OBJECT = core::ptr::null_mut();
/// assert!(file.is_null());
/// assert_eq!(core::mem::size_of::<ks_sys::PIRP>(), core::mem::size_of::<usize>());
/// ```
pub type PFILE_OBJECT = *mut FILE_OBJECT;
/// Pointer to an [`IRP`].
pub type PIRP = *mut IRP;
/// Pointer to a [`KSPIN`].
pub type PKSPIN = *mut KSPIN;
