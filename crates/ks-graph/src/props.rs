//! Pin properties that concern allocators, bytes in and bytes out with the KS rules
//! (ks-spec §5.8, behaviours 6–10 and 46):
//!
//! | Property | Set / Id | Access |
//! |---|---|---|
//! | `KSPROPERTY_CONNECTION_ALLOCATORFRAMING` | Connection / 3 | GET: 24-byte `KSALLOCATOR_FRAMING` derived from the EX form |
//! | `KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX` | Connection / 6 | GET: 24 + 88 × N bytes |
//! | `KSPROPERTY_STREAM_ALLOCATOR` | Stream / 0 | GET: null handle; SET: assign an allocator |
//!
//! Size rules (the KS convention, ks-spec §5.8/§5.9): a zero-length data buffer is a size
//! probe answered with `STATUS_BUFFER_OVERFLOW` and the required size; a non-empty buffer that
//! is too short fails with `STATUS_BUFFER_TOO_SMALL` and the required size. SET on a get-only
//! property is `STATUS_INVALID_DEVICE_REQUEST` (policy, ks-spec §10 item 5). A pin without
//! framing answers the framing properties with `STATUS_NOT_FOUND` (behaviour 7); a pin that
//! does not accept allocators answers `KSPROPERTY_STREAM_ALLOCATOR` with `STATUS_NOT_FOUND`.
//!
//! Allocator handles are modelled as a registry of allocator objects in the graph keyed by a
//! non-zero handle value ([`AllocatorHandle`]). A pin assigned an allocator holds a reference
//! (an `Arc`) to it; a new assignment, a SET of the null handle, or a disconnect drops it
//! (behaviour 46).

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;

use ks_alloc::{Allocator, Status};
use ks_sys::{GUID, KSPROPSETID_Connection, KSPROPSETID_Stream};

use crate::graph::{Graph, PinId};

/// Size of a `KSPROPERTY` header (`KSIDENTIFIER`): set GUID, id, flags, 8-byte aligned.
///
/// ```
/// use ks_graph::props::{PropertyHeader, KSPROPERTY_SIZE, KSPROPERTY_TYPE_GET};
/// let h = PropertyHeader::new(ks_sys::KSPROPSETID_Stream, 0, KSPROPERTY_TYPE_GET);
/// assert_eq!(h.to_bytes().len(), KSPROPERTY_SIZE);
/// assert!(PropertyHeader::from_bytes(&[0; KSPROPERTY_SIZE - 1]).is_err());
/// ```
pub const KSPROPERTY_SIZE: usize = 24;
/// `KSPROPERTY_TYPE_GET`.
///
/// ```
/// # use std::sync::Arc;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTE, 512, 512);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out").with_framing(fx))))?;
/// # let mut g = b.build()?;
/// # let pin = g.pin("s.out")?;
/// use ks_graph::props::*;
/// let req = PropertyHeader::new(ks_sys::KSPROPSETID_Connection,
///     KSPROPERTY_CONNECTION_ALLOCATORFRAMING, KSPROPERTY_TYPE_GET).to_bytes();
/// let mut buf = [0u8; FRAMING_SIZE];
/// assert_eq!(g.pin_property(pin, &req, &mut buf)?, FRAMING_SIZE); // bytes written
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const KSPROPERTY_TYPE_GET: u32 = 0x1;
/// `KSPROPERTY_TYPE_SET`.
///
/// ```
/// # use std::sync::Arc;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTE, 512, 512);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out").with_framing(fx))))?;
/// # let mut g = b.build()?;
/// # let pin = g.pin("s.out")?;
/// use ks_graph::props::*;
/// let req = PropertyHeader::new(ks_sys::KSPROPSETID_Connection,
///     KSPROPERTY_CONNECTION_ALLOCATORFRAMING, KSPROPERTY_TYPE_SET).to_bytes();
/// let err = g.pin_property(pin, &req, &mut [0u8; FRAMING_SIZE]).unwrap_err();
/// assert_eq!(err.name(), "STATUS_INVALID_DEVICE_REQUEST"); // the framing is get-only
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const KSPROPERTY_TYPE_SET: u32 = 0x2;
/// `KSPROPERTY_TYPE_TOPOLOGY` (ignored by pin properties).
///
/// ```
/// # use std::sync::Arc;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTE, 512, 512);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out").with_framing(fx))))?;
/// # let mut g = b.build()?;
/// # let pin = g.pin("s.out")?;
/// use ks_graph::props::*;
/// let flags = KSPROPERTY_TYPE_GET | KSPROPERTY_TYPE_TOPOLOGY;
/// let req = PropertyHeader::new(ks_sys::KSPROPSETID_Connection,
///     KSPROPERTY_CONNECTION_ALLOCATORFRAMING, flags).to_bytes();
/// assert_eq!(g.pin_property(pin, &req, &mut [0u8; FRAMING_SIZE])?, FRAMING_SIZE); // a plain GET
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const KSPROPERTY_TYPE_TOPOLOGY: u32 = 0x1000_0000;
/// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING` (Connection set, id 3).
///
/// ```
/// # use std::sync::Arc;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTE, 512, 512);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out").with_framing(fx))))?;
/// # let mut g = b.build()?;
/// # let pin = g.pin("s.out")?;
/// use ks_graph::props::*;
/// let req = PropertyHeader::new(ks_sys::KSPROPSETID_Connection,
///     KSPROPERTY_CONNECTION_ALLOCATORFRAMING, KSPROPERTY_TYPE_GET).to_bytes();
/// let mut buf = [0u8; FRAMING_SIZE];
/// g.pin_property(pin, &req, &mut buf)?;
/// let framing = ks_alloc::Framing::from_bytes(&buf)?;
/// assert_eq!((framing.frames, framing.frame_size), (4, 512));
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const KSPROPERTY_CONNECTION_ALLOCATORFRAMING: u32 = 3;
/// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX` (Connection set, id 6).
///
/// ```
/// # use std::sync::Arc;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTE, 512, 512);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out").with_framing(fx))))?;
/// # let mut g = b.build()?;
/// # let pin = g.pin("s.out")?;
/// use ks_graph::props::*;
/// let req = PropertyHeader::new(ks_sys::KSPROPSETID_Connection,
///     KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX, KSPROPERTY_TYPE_GET).to_bytes();
/// let mut buf = vec![0u8; 24 + 88]; // one framing item
/// assert_eq!(g.pin_property(pin, &req, &mut buf)?, buf.len());
/// assert_eq!(FramingEx::from_bytes(&buf)?.items[0].frames, 4);
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX: u32 = 6;
/// `KSPROPERTY_STREAM_ALLOCATOR` (Stream set, id 0).
///
/// ```
/// # use std::sync::Arc;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTE, 512, 512);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out").with_framing(fx))))?;
/// # let mut g = b.build()?;
/// # let pin = g.pin("s.out")?;
/// use ks_graph::props::*;
/// let req = PropertyHeader::new(ks_sys::KSPROPSETID_Stream,
///     KSPROPERTY_STREAM_ALLOCATOR, KSPROPERTY_TYPE_GET).to_bytes();
/// let mut handle = [0xffu8; HANDLE_SIZE];
/// assert_eq!(g.pin_property(pin, &req, &mut handle)?, HANDLE_SIZE);
/// assert_eq!(handle, [0; HANDLE_SIZE]); // GET answers the null handle
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const KSPROPERTY_STREAM_ALLOCATOR: u32 = 0;
/// Size of a `HANDLE` value in property data: a pointer's size, as in KS (8 bytes on a 64-bit
/// host, 4 on a 32-bit one). Handle values are given out so that they always fit.
///
/// ```
/// # use std::sync::Arc;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTE, 512, 512);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out").with_framing(fx))))?;
/// # let mut g = b.build()?;
/// # let pin = g.pin("s.out")?;
/// # use ks_alloc::{Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 256, alignment: Alignment::BYTE };
/// use ks_graph::props::*;
/// let h = g.register_allocator(Allocator::new(&framing, Memory::NonPaged)?);
/// let req = PropertyHeader::new(ks_sys::KSPROPSETID_Stream,
///     KSPROPERTY_STREAM_ALLOCATOR, KSPROPERTY_TYPE_SET).to_bytes();
/// let mut value = h.to_bytes();
/// assert_eq!(g.pin_property(pin, &req, &mut value)?, HANDLE_SIZE); // SET the handle
/// assert_eq!(g.allocator_references(h), 1);
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const HANDLE_SIZE: usize = size_of::<usize>();
/// Size of an old-style `KSALLOCATOR_FRAMING`.
///
/// ```
/// # use std::sync::Arc;
/// # use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
/// # use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
/// # let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTE, 512, 512);
/// # let mut b = GraphBuilder::new();
/// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out").with_framing(fx))))?;
/// # let mut g = b.build()?;
/// # let pin = g.pin("s.out")?;
/// use ks_graph::props::*;
/// let req = PropertyHeader::new(ks_sys::KSPROPSETID_Connection,
///     KSPROPERTY_CONNECTION_ALLOCATORFRAMING, KSPROPERTY_TYPE_GET).to_bytes();
/// // A zero-length buffer is a size probe.
/// let probe = g.pin_property(pin, &req, &mut []).unwrap_err();
/// assert_eq!(probe, ks_alloc::Status::BufferOverflow { required: FRAMING_SIZE });
///
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const FRAMING_SIZE: usize = 24;

/// A parsed `KSPROPERTY` header.
///
/// ```
/// use ks_graph::props::{PropertyHeader, KSPROPERTY_STREAM_ALLOCATOR, KSPROPERTY_TYPE_GET};
/// let h = PropertyHeader::new(ks_sys::KSPROPSETID_Stream, KSPROPERTY_STREAM_ALLOCATOR, KSPROPERTY_TYPE_GET);
/// assert_eq!(PropertyHeader::from_bytes(&h.to_bytes()), Ok(h));
/// ```
#[doc(alias = "KSPROPERTY")]
#[doc(alias = "KSIDENTIFIER")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropertyHeader {
    /// The property set.
    pub set: GUID,
    /// The property id within the set.
    pub id: u32,
    /// `KSPROPERTY_TYPE_*` flags.
    pub flags: u32,
}

impl PropertyHeader {
    /// A header for `set`/`id` with `flags`.
    ///
    /// ```
    /// # use ks_graph::props::*;
    /// let h = PropertyHeader::new(ks_sys::KSPROPSETID_Connection, KSPROPERTY_CONNECTION_ALLOCATORFRAMING, KSPROPERTY_TYPE_GET);
    /// assert_eq!((h.id, h.flags), (3, KSPROPERTY_TYPE_GET));
    /// ```
    pub fn new(set: GUID, id: u32, flags: u32) -> PropertyHeader {
        PropertyHeader { set, id, flags }
    }

    /// The 24 header bytes (GUID in memory layout, then id and flags little-endian).
    ///
    /// ```
    /// # use ks_graph::props::*;
    /// let b = PropertyHeader::new(ks_sys::KSPROPSETID_Stream, 0, KSPROPERTY_TYPE_SET).to_bytes();
    /// assert_eq!(b.len(), KSPROPERTY_SIZE);
    /// assert_eq!(&b[20..24], &KSPROPERTY_TYPE_SET.to_le_bytes());
    /// ```
    pub fn to_bytes(&self) -> [u8; KSPROPERTY_SIZE] {
        let mut b = [0u8; KSPROPERTY_SIZE];
        b[..16].copy_from_slice(&self.set.to_le_bytes());
        b[16..20].copy_from_slice(&self.id.to_le_bytes());
        b[20..24].copy_from_slice(&self.flags.to_le_bytes());
        b
    }

    /// Parses the first 24 bytes of `bytes`; shorter input is `STATUS_INVALID_BUFFER_SIZE`
    /// (the generic KS handler's answer to a request shorter than its header, ks-spec §5.5).
    ///
    /// ```
    /// # use ks_graph::props::*;
    /// let err = PropertyHeader::from_bytes(&[0u8; 16]).unwrap_err();
    /// assert_eq!(err.name(), "STATUS_INVALID_BUFFER_SIZE");
    /// ```
    ///
    /// # Errors
    /// `STATUS_INVALID_BUFFER_SIZE` for fewer than 24 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<PropertyHeader, Status> {
        if bytes.len() < KSPROPERTY_SIZE {
            return Err(Status::InvalidBufferSize(
                format!(
                    "property request is {} bytes; a KSPROPERTY header needs {KSPROPERTY_SIZE}",
                    bytes.len()
                )
                .into(),
            ));
        }
        let mut g = [0u8; 16];
        g.copy_from_slice(&bytes[..16]);
        let u = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        Ok(PropertyHeader {
            set: GUID::from_le_bytes(g),
            id: u(16),
            flags: u(20),
        })
    }
}

/// A handle to an allocator registered in a graph (the `HANDLE` of
/// `KSPROPERTY_STREAM_ALLOCATOR`). Never 0: 0 is the null handle.
///
/// ```
/// use ks_graph::AllocatorHandle;
/// assert_eq!(AllocatorHandle::from_value(0), None); // the null handle
/// let h = AllocatorHandle::from_value(0x10).unwrap();
/// assert_eq!((h.value(), h.to_string()), (0x10, "0x10".to_string()));
/// ```
#[doc(alias = "HANDLE")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocatorHandle(NonZeroU64);

impl AllocatorHandle {
    /// The handle value as it travels in property data.
    ///
    /// ```
    /// # use ks_graph::AllocatorHandle;
    /// assert_eq!(AllocatorHandle::from_value(7).map(|h| h.value()), Some(7));
    /// ```
    pub fn value(self) -> u64 {
        self.0.get()
    }

    /// The handle for a value (`None` for the null handle 0).
    ///
    /// ```
    /// # use ks_graph::AllocatorHandle;
    /// assert!(AllocatorHandle::from_value(0).is_none() && AllocatorHandle::from_value(1).is_some());
    /// ```
    pub fn from_value(v: u64) -> Option<AllocatorHandle> {
        NonZeroU64::new(v).map(AllocatorHandle)
    }

    /// The handle as `KSPROPERTY_STREAM_ALLOCATOR` data: [`HANDLE_SIZE`] bytes, little-endian.
    /// A handle the graph gave out always fits; a larger value made with
    /// [`from_value`](Self::from_value) keeps its low bytes.
    ///
    /// ```
    /// # use ks_graph::{AllocatorHandle, props::HANDLE_SIZE};
    /// let h = AllocatorHandle::from_value(0x1004).unwrap();
    /// assert_eq!(h.to_bytes()[..2], [0x04, 0x10]);
    /// assert_eq!(h.to_bytes().len(), HANDLE_SIZE);
    /// ```
    pub fn to_bytes(self) -> [u8; HANDLE_SIZE] {
        let mut b = [0; HANDLE_SIZE];
        b.copy_from_slice(&self.value().to_le_bytes()[..HANDLE_SIZE]);
        b
    }
}

impl fmt::Display for AllocatorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// One registered allocator object.
pub(crate) struct Registered {
    pub(crate) allocator: Allocator,
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered").finish_non_exhaustive()
    }
}

/// A pin's reference to an assigned allocator.
#[derive(Debug, Clone)]
pub(crate) struct Assignment {
    pub(crate) handle: AllocatorHandle,
    pub(crate) object: Arc<Registered>,
}

/// The graph's table of allocator objects by handle.
#[derive(Debug, Default)]
pub(crate) struct AllocatorRegistry {
    entries: HashMap<AllocatorHandle, Arc<Registered>>,
}

/// The last handle value given out, process-wide: like Windows handles, a value names one
/// allocator in one graph only, and a closed handle is not reused soon. Values start at an
/// arbitrary non-zero, non-small value, so that a stray small integer is unlikely to name an
/// allocator. A `usize`, so that every value fits the pointer-sized `HANDLE` of property data.
static LAST_HANDLE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0x1000);

impl AllocatorRegistry {
    pub(crate) fn insert(&mut self, allocator: Allocator) -> AllocatorHandle {
        // Multiples of 4, like Windows handles. Relaxed: only uniqueness matters.
        // (Wrapping takes 2^62 registrations on a 64-bit host, 2^30 on a 32-bit one.)
        let value = LAST_HANDLE
            .fetch_add(4, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(4);
        let handle = AllocatorHandle(NonZeroU64::new(value as u64).unwrap_or(NonZeroU64::MIN));
        self.entries
            .insert(handle, Arc::new(Registered { allocator }));
        handle
    }

    pub(crate) fn get(&self, handle: AllocatorHandle) -> Option<&Arc<Registered>> {
        self.entries.get(&handle)
    }

    pub(crate) fn remove(&mut self, handle: AllocatorHandle) -> Option<Arc<Registered>> {
        self.entries.remove(&handle)
    }
}

/// What a `HANDLE` is, for the size errors of `KSPROPERTY_STREAM_ALLOCATOR` (the status
/// carries the byte count, [`HANDLE_SIZE`]).
const HANDLE_TEXT: &str = "a HANDLE is pointer-sized";

fn too_small(required: usize, got: usize, what: &str) -> Status {
    Status::BufferTooSmall {
        required,
        message: format!("{what}; the buffer has {got}").into(),
    }
}

/// The GET size rules: 0 bytes = probe (`STATUS_BUFFER_OVERFLOW`), too short =
/// `STATUS_BUFFER_TOO_SMALL`, both with the required size.
fn check_get_buffer(data: &[u8], required: usize, what: &str) -> Result<(), Status> {
    if data.is_empty() {
        Err(Status::BufferOverflow { required })
    } else if data.len() < required {
        Err(too_small(required, data.len(), what))
    } else {
        Ok(())
    }
}

/// The pin properties served.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PinProp {
    FramingEx,
    Framing,
    Allocator,
}

impl Graph {
    /// Handles a pin property request: `request` is the `KSPROPERTY` header (24 bytes, more
    /// is ignored), `data` the property value buffer (output for GET, input for SET).
    /// Returns the number of bytes written (GET) or consumed (SET) — KS's `Information`.
    ///
    /// # Errors
    /// `STATUS_INVALID_BUFFER_SIZE` (header short), `STATUS_PROPSET_NOT_FOUND` (unknown set),
    /// `STATUS_NOT_FOUND` (unknown id, pin without framing, pin not accepting allocators),
    /// `STATUS_INVALID_PARAMETER` (a pin of another graph, checked first; both GET and SET;
    /// unknown handle), `STATUS_INVALID_DEVICE_REQUEST` (SET on a get-only property; neither
    /// GET nor SET, or another request type), in that order: the set, then the id, then the
    /// flags. `STATUS_BUFFER_OVERFLOW` / `STATUS_BUFFER_TOO_SMALL` with the required size.
    /// `STATUS_INVALID_DEVICE_STATE`: a `STREAM_ALLOCATOR` SET outside STOP.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType, Status};
    /// use ks_graph::{props::*, FilterDescriptor, GraphBuilder, PinDescriptor};
    /// let fx = FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::empty(), 4, Alignment::BYTE, 512, 512);
    /// let d = Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out").with_framing(fx.clone())));
    /// let mut b = GraphBuilder::new();
    /// b.add_filter("s", d)?;
    /// let mut g = b.build()?;
    /// let pin = g.pin("s.out")?;
    /// let req = PropertyHeader::new(ks_sys::KSPROPSETID_Connection,
    ///     KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX, KSPROPERTY_TYPE_GET).to_bytes();
    /// assert_eq!(g.pin_property(pin, &req, &mut []), Err(Status::BufferOverflow { required: 112 }));
    /// let mut buf = [0u8; 112];
    /// assert_eq!(g.pin_property(pin, &req, &mut buf), Ok(112));
    /// assert_eq!(FramingEx::from_bytes(&buf)?, fx);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX")]
    #[doc(alias = "KSPROPERTY_CONNECTION_ALLOCATORFRAMING")]
    #[doc(alias = "KSPROPERTY_STREAM_ALLOCATOR")]
    pub fn pin_property(
        &mut self,
        pin: PinId,
        request: &[u8],
        data: &mut [u8],
    ) -> Result<usize, Status> {
        let h = PropertyHeader::from_bytes(request)?;
        if let Err(e) = self.filters.check_pin(pin) {
            return Err(Status::InvalidParameter(
                format!("the pin does not belong to this graph: {e}").into(),
            ));
        }
        // Set, then id, then flags, as the allocator's request surface checks them.
        let prop = if h.set == KSPROPSETID_Connection {
            match h.id {
                KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX => PinProp::FramingEx,
                KSPROPERTY_CONNECTION_ALLOCATORFRAMING => PinProp::Framing,
                id => {
                    return Err(Status::NotFound(
                        format!("KSPROPSETID_Connection property {id} is not supported on pins")
                            .into(),
                    ));
                }
            }
        } else if h.set == KSPROPSETID_Stream {
            if h.id != KSPROPERTY_STREAM_ALLOCATOR {
                return Err(Status::NotFound(
                    format!(
                        "KSPROPSETID_Stream property {} is not supported on pins",
                        h.id
                    )
                    .into(),
                ));
            }
            PinProp::Allocator
        } else {
            return Err(Status::PropsetNotFound(
                format!(
                    "property set {:#034x} is not supported on pins",
                    h.set.to_u128()
                )
                .into(),
            ));
        };
        let kind = h.flags & !KSPROPERTY_TYPE_TOPOLOGY;
        let is_get = match kind {
            KSPROPERTY_TYPE_GET => true,
            KSPROPERTY_TYPE_SET => false,
            k if k & (KSPROPERTY_TYPE_GET | KSPROPERTY_TYPE_SET)
                == (KSPROPERTY_TYPE_GET | KSPROPERTY_TYPE_SET) =>
            {
                return Err(Status::InvalidParameter(
                    format!(
                        "property flags {:#x} ask for both GET and SET; exactly one is allowed",
                        h.flags
                    )
                    .into(),
                ));
            }
            k => {
                return Err(Status::InvalidDeviceRequest(
                    format!(
                        "property request type {k:#x} is not supported on pins; only \
                         KSPROPERTY_TYPE_GET (0x1) and KSPROPERTY_TYPE_SET (0x2) are"
                    )
                    .into(),
                ));
            }
        };
        match prop {
            PinProp::FramingEx | PinProp::Framing => {
                let ex = prop == PinProp::FramingEx;
                if !is_get {
                    return Err(Status::InvalidDeviceRequest(
                        format!(
                            "KSPROPERTY_CONNECTION_ALLOCATORFRAMING{} (id {}) is get-only \
                             (behaviours 6 and 10); the request's flags are {:#x} (SET)",
                            if ex { "_EX" } else { "" },
                            h.id,
                            h.flags
                        )
                        .into(),
                    ));
                }
                let Some(fx) = self.pin_framing(pin) else {
                    return Err(Status::NotFound(
                        format!(
                            "pin '{}' has no allocator framing (behaviour 7)",
                            self.pin_name(pin)
                        )
                        .into(),
                    ));
                };
                if ex {
                    let required = fx.byte_len();
                    check_get_buffer(
                        data,
                        required,
                        "KSALLOCATOR_FRAMING_EX needs 24 + 88 x CountItems bytes",
                    )?;
                    data[..required].copy_from_slice(&fx.to_bytes());
                    Ok(required)
                } else {
                    check_get_buffer(data, FRAMING_SIZE, "KSALLOCATOR_FRAMING is 24 bytes")?;
                    let old = fx.to_framing()?;
                    data[..FRAMING_SIZE].copy_from_slice(&old.to_bytes());
                    Ok(FRAMING_SIZE)
                }
            }
            PinProp::Allocator => {
                if !self.pin_descriptor(pin).accepts_allocator {
                    return Err(Status::NotFound(
                        format!(
                            "pin '{}' does not accept an allocator (KSPROPERTY_STREAM_ALLOCATOR)",
                            self.pin_name(pin)
                        )
                        .into(),
                    ));
                }
                if is_get {
                    // GET always answers the null handle; success only signals support (DOC).
                    check_get_buffer(data, HANDLE_SIZE, HANDLE_TEXT)?;
                    data[..HANDLE_SIZE].fill(0);
                    Ok(HANDLE_SIZE)
                } else {
                    if data.len() < HANDLE_SIZE {
                        return Err(too_small(HANDLE_SIZE, data.len(), HANDLE_TEXT));
                    }
                    let mut v = [0u8; 8];
                    v[..HANDLE_SIZE].copy_from_slice(&data[..HANDLE_SIZE]);
                    let handle = AllocatorHandle::from_value(u64::from_le_bytes(v));
                    self.assign_allocator(pin, handle)?;
                    Ok(HANDLE_SIZE)
                }
            }
        }
    }

    /// Registers an allocator object and returns its handle (what a client would get from
    /// `KsCreateAllocator`). The registry holds one reference until
    /// [`close_allocator_handle`](Self::close_allocator_handle).
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"))))?;
    /// # let mut g = b.build()?;
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 256, alignment: Alignment::BYTE };
    /// # let allocator = Allocator::new(&framing, Memory::NonPaged)?;
    /// # let pin = g.pin("s.out")?;
    /// let h = g.register_allocator(allocator);
    /// assert_ne!(h.value(), 0);
    /// assert_eq!(g.allocator_references(h), 0); // no pin holds it yet
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "KsCreateAllocator")]
    pub fn register_allocator(&mut self, allocator: Allocator) -> AllocatorHandle {
        self.registry.insert(allocator)
    }

    /// Closes a handle (like `CloseHandle`): the registry drops its reference; pins assigned
    /// the allocator keep theirs until reassigned or disconnected.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"))))?;
    /// # let mut g = b.build()?;
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 256, alignment: Alignment::BYTE };
    /// # let allocator = Allocator::new(&framing, Memory::NonPaged)?;
    /// # let pin = g.pin("s.out")?;
    /// let h = g.register_allocator(allocator);
    /// g.assign_allocator(pin, Some(h))?;
    /// g.close_allocator_handle(h)?;
    /// assert!(g.assigned_allocator(pin).is_some()); // the pin keeps its reference
    /// assert!(g.close_allocator_handle(h).is_err()); // closed twice
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `STATUS_INVALID_PARAMETER` for a handle that is not registered.
    pub fn close_allocator_handle(&mut self, handle: AllocatorHandle) -> Result<(), Status> {
        self.registry.remove(handle).map(|_| ()).ok_or_else(|| {
            Status::InvalidParameter(format!("no allocator has handle {handle}").into())
        })
    }

    /// `KSPROPERTY_STREAM_ALLOCATOR` SET, typed: assigns the allocator behind `handle` to
    /// `pin` (`None` = the null handle: unassign). The previous assignment's reference is
    /// released (behaviour 46). At STOP → ACQUIRE an allocator assigned to a pipe's root pin
    /// serves that pipe; one allocator assigned to the root pins of two pipes is refused
    /// then ([`StateError::ClientAllocator`](crate::StateError::ClientAllocator)), not here.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"))))?;
    /// # let mut g = b.build()?;
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 256, alignment: Alignment::BYTE };
    /// # let allocator = Allocator::new(&framing, Memory::NonPaged)?;
    /// # let pin = g.pin("s.out")?;
    /// let h = g.register_allocator(allocator);
    /// g.assign_allocator(pin, Some(h))?;
    /// assert_eq!(g.allocator_references(h), 1);
    /// g.assign_allocator(pin, None)?; // the null handle releases it
    /// assert_eq!(g.allocator_references(h), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `STATUS_NOT_FOUND` if the pin does not accept allocators; `STATUS_INVALID_PARAMETER`
    /// for an unknown handle or a pin of another graph; `STATUS_INVALID_DEVICE_STATE`
    /// outside STOP (the pipes' allocators are fixed from ACQUIRE to STOP).
    pub fn assign_allocator(
        &mut self,
        pin: PinId,
        handle: Option<AllocatorHandle>,
    ) -> Result<(), Status> {
        self.filters
            .check_pin(pin)
            .map_err(|e| Status::InvalidParameter(e.to_string().into()))?;
        if self.state() != crate::KsState::Stop {
            return Err(Status::InvalidDeviceState(
                format!(
                    "allocators are assigned in STOP only; the graph is in {}",
                    self.state()
                )
                .into(),
            ));
        }
        self.assign_unchecked(pin, handle)
    }

    /// [`assign_allocator`](Self::assign_allocator) without the state check (ACQUIRE
    /// assigns the allocators it creates). `pin` is this graph's.
    pub(crate) fn assign_unchecked(
        &mut self,
        pin: PinId,
        handle: Option<AllocatorHandle>,
    ) -> Result<(), Status> {
        if !self.pin_descriptor(pin).accepts_allocator {
            return Err(Status::NotFound(
                format!("pin '{}' does not accept an allocator", self.pin_name(pin)).into(),
            ));
        }
        let new = match handle {
            None => None,
            Some(h) => {
                let object = self.registry.get(h).cloned().ok_or_else(|| {
                    Status::InvalidParameter(
                        format!("no allocator has handle {h}; SET needs a handle from the graph's registry").into(),
                    )
                })?;
                Some(Assignment { handle: h, object })
            }
        };
        // Replacing drops the previous Arc: the old allocator loses this pin's reference.
        self.filters.node_mut(pin).assigned = new;
        Ok(())
    }

    /// The allocator assigned to `pin` through `KSPROPERTY_STREAM_ALLOCATOR`, with its handle.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"))))?;
    /// # let mut g = b.build()?;
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 256, alignment: Alignment::BYTE };
    /// # let allocator = Allocator::new(&framing, Memory::NonPaged)?;
    /// # let pin = g.pin("s.out")?;
    /// assert!(g.assigned_allocator(pin).is_none());
    /// let h = g.register_allocator(allocator);
    /// g.assign_allocator(pin, Some(h))?;
    /// let (handle, a) = g.assigned_allocator(pin).unwrap();
    /// assert_eq!((handle, a.frame_size()), (h, 256));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn assigned_allocator(&self, pin: PinId) -> Option<(AllocatorHandle, &Allocator)> {
        // A pin of another graph has none here (and out-of-range indices must not panic).
        self.filters.check_pin(pin).ok()?;
        self.filters
            .node(pin)
            .assigned
            .as_ref()
            .map(|a| (a.handle, &a.object.allocator))
    }

    /// How many pins hold the allocator registered as `handle` (0 for an unknown handle;
    /// a pin keeps its reference after the handle is closed). Lets tests observe behaviour
    /// 46.
    ///
    /// ```
    /// # use std::sync::Arc; use ks_graph::{FilterDescriptor, GraphBuilder, PinDescriptor};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let mut b = GraphBuilder::new();
    /// # b.add_filter("s", Arc::new(FilterDescriptor::kernel("src").with_pin(PinDescriptor::output("out"))))?;
    /// # let mut g = b.build()?;
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 256, alignment: Alignment::BYTE };
    /// # let allocator = Allocator::new(&framing, Memory::NonPaged)?;
    /// # let pin = g.pin("s.out")?;
    /// let h = g.register_allocator(allocator);
    /// g.assign_allocator(pin, Some(h))?;
    /// assert_eq!(g.allocator_references(h), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allocator_references(&self, handle: AllocatorHandle) -> usize {
        self.filters
            .nodes
            .iter()
            .flat_map(|f| f.pins.iter())
            .filter(|p| p.assigned.as_ref().is_some_and(|a| a.handle == handle))
            .count()
    }
}
