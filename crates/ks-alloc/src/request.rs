//! The KS request surface of an allocator: property, method and event requests as bytes
//! (a `KSPROPERTY` / `KSMETHOD` / `KSEVENT` header and a data buffer), answered with a status
//! and the bytes written — a thin adapter over the idiomatic API, for KS clients and
//! conformance tests.
//!
//! | Request | Answer |
//! |---|---|
//! | `KSPROPSETID_StreamAllocator` / `STATUS` (GET) | the 32-byte `KSSTREAMALLOCATOR_STATUS` |
//! | `KSPROPSETID_StreamAllocator` / `FUNCTIONTABLE` (GET) | `KSSTREAMALLOCATOR_FUNCTIONTABLE`: two callable `extern "C"` pointers taking [`Allocator::file_object`] (read it as that structure) |
//! | `KSMETHODSETID_StreamAllocator` / `ALLOC` | the frame address, or `STATUS_PENDING` and a [`PendingAlloc`] |
//! | `KSMETHODSETID_StreamAllocator` / `FREE` | frees the address in the data buffer |
//! | `KSEVENTSETID_StreamAllocator` / `FREEFRAME` | a [`FreeFrameEvents`] subscription (none for a support query) |
//!
//! # Status policy (KS is silent; ks-spec §10 item 5)
//!
//! * header shorter than 24 bytes → `STATUS_INVALID_BUFFER_SIZE` (generic KS handler);
//! * unknown set → `STATUS_PROPSET_NOT_FOUND`; unknown id → `STATUS_NOT_FOUND`;
//! * a property request other than `KSPROPERTY_TYPE_GET` alone (SET, support queries,
//!   serialization, `GET | TOPOLOGY`) on the get-only properties →
//!   `STATUS_INVALID_DEVICE_REQUEST`; a method with `KSMETHOD_TYPE_TOPOLOGY` →
//!   `STATUS_INVALID_DEVICE_REQUEST` (an allocator has no nodes); property or method flag bits
//!   that are no `KSPROPERTY_TYPE_*` / `KSMETHOD_TYPE_*` flag → `STATUS_INVALID_PARAMETER`,
//!   and nothing runs;
//! * data buffer too small for a property → `STATUS_BUFFER_TOO_SMALL`, `information` = required
//!   size; for a method (shorter than a pointer, behaviour 28) → `STATUS_MORE_ENTRIES` with the
//!   required size (ReactOS method-handler convention);
//! * FUNCTIONTABLE on pageable memory → `STATUS_NOT_SUPPORTED` (behaviour 29), after close →
//!   `STATUS_INVALID_DEVICE_STATE`;
//! * FREE of an address not outstanding → `STATUS_INVALID_PARAMETER`;
//! * the FUNCTIONTABLE answer is the ks-sys `KSSTREAMALLOCATOR_FUNCTIONTABLE` written with a
//!   pointer-typed store, so its bytes keep the entry points' provenance: read it back as that
//!   structure (`ptr::read_unaligned`, see [`Allocator::file_object`]) and call (move the
//!   bytes as bytes, e.g. `copy_from_slice`: a copy through integer values, such as assigning
//!   a `[u8; N]`, drops the provenance). Reading the
//!   words as `usize` and casting them to pointers with `as` works too (the entry points'
//!   provenance is exposed); transmuting such an integer to a function pointer does not;
//! * a method support query runs nothing: `KSMETHOD_TYPE_BASICSUPPORT` writes the method's
//!   type flags (a `ULONG`: `KSMETHOD_TYPE_WRITE` for ALLOC, `KSMETHOD_TYPE_READ` for FREE;
//!   `STATUS_BUFFER_TOO_SMALL` with 4 below 4 bytes), as ReactOS's method handler does, and
//!   `KSMETHOD_TYPE_SETSUPPORT` succeeds with no data (the method is supported);
//! * event flags name exactly one request (Microsoft's `KSEVENT` reference: `Flags` "should
//!   be one of" the request types, `KSEVENT_TYPE_TOPOLOGY` ORed with one):
//!   `KSEVENT_TYPE_ENABLE` enables FREEFRAME; `KSEVENT_TYPE_ONESHOT` (also accepted with
//!   `KSEVENT_TYPE_ENABLE`) enables it "for the next occurrence only": after its first event
//!   the subscription is disabled and stays silent;
//! * an event support query runs nothing: `KSEVENT_TYPE_SETSUPPORT` or
//!   `KSEVENT_TYPE_BASICSUPPORT` on FREEFRAME → `STATUS_SUCCESS` (supported), no data and no
//!   subscription (`enable_event` answers `Ok(None)`), as for methods;
//! * event flags without a request (0, no `KSEVENT_TYPE_ENABLE`), with several, or with
//!   unknown bits → `STATUS_INVALID_PARAMETER`; `KSEVENT_TYPE_ENABLEBUFFERED` /
//!   `KSEVENT_TYPE_QUERYBUFFER` (FREEFRAME has no event data to buffer) and
//!   `KSEVENT_TYPE_TOPOLOGY` (an allocator has no nodes) → `STATUS_INVALID_DEVICE_REQUEST`;
//! * `INTERNAL_FREEFRAME` → `STATUS_INVALID_DEVICE_REQUEST` (behaviour 37), whatever the
//!   flags: a support query too, since it is not offered to clients (answering "supported"
//!   for an event that cannot be enabled would mislead them).

use std::ffi::c_void;
use std::mem::ManuallyDrop;

use ks_sys::{
    GUID, KSEVENT_STREAMALLOCATOR_FREEFRAME, KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME,
    KSEVENT_TYPE_BASICSUPPORT, KSEVENT_TYPE_ENABLE, KSEVENT_TYPE_ENABLEBUFFERED,
    KSEVENT_TYPE_ONESHOT, KSEVENT_TYPE_QUERYBUFFER, KSEVENT_TYPE_SETSUPPORT, KSEVENT_TYPE_TOPOLOGY,
    KSEVENTSETID_StreamAllocator, KSMETHOD_STREAMALLOCATOR_ALLOC, KSMETHOD_STREAMALLOCATOR_FREE,
    KSMETHOD_TYPE_BASICSUPPORT, KSMETHOD_TYPE_MODIFY, KSMETHOD_TYPE_READ, KSMETHOD_TYPE_SETSUPPORT,
    KSMETHOD_TYPE_SOURCE, KSMETHOD_TYPE_TOPOLOGY, KSMETHOD_TYPE_WRITE,
    KSMETHODSETID_StreamAllocator, KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE,
    KSPROPERTY_STREAMALLOCATOR_STATUS, KSPROPERTY_TYPE_BASICSUPPORT, KSPROPERTY_TYPE_DEFAULTVALUES,
    KSPROPERTY_TYPE_GET, KSPROPERTY_TYPE_RELATIONS, KSPROPERTY_TYPE_SERIALIZERAW,
    KSPROPERTY_TYPE_SERIALIZESET, KSPROPERTY_TYPE_SERIALIZESIZE, KSPROPERTY_TYPE_SET,
    KSPROPERTY_TYPE_SETSUPPORT, KSPROPERTY_TYPE_TOPOLOGY, KSPROPERTY_TYPE_UNSERIALIZERAW,
    KSPROPERTY_TYPE_UNSERIALIZESET, KSPROPSETID_StreamAllocator, KSSTREAMALLOCATOR_FUNCTIONTABLE,
    NTSTATUS, PFILE_OBJECT,
};

use crate::allocator::{Begin, Inner};
use crate::framing::{rd_guid, rd_u32};
use crate::loom::Arc;
use crate::waiters::Notify;
use crate::{Allocator, AllocatorStatus, FreeFrameEvents, PendingAlloc, Status};

const HEADER: usize = 24;
const PTR: usize = std::mem::size_of::<usize>();
const TABLE: usize = 2 * PTR;

/// The answer to a KS request: the completion status and `Information` (bytes written, or the
/// required size when the buffer was too small).
///
/// ```
/// use ks_alloc::Status;
/// use ks_sys::{KSPROPSETID_StreamAllocator, KSPROPERTY_STREAMALLOCATOR_STATUS, KSPROPERTY_TYPE_GET};
/// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
/// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
/// # let hdr = [&KSPROPSETID_StreamAllocator.to_le_bytes()[..], &KSPROPERTY_STREAMALLOCATOR_STATUS.to_le_bytes(), &KSPROPERTY_TYPE_GET.to_le_bytes()].concat();
/// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
/// let reply = alloc.property(&hdr, &mut [0u8; 16]); // KSSTREAMALLOCATOR_STATUS is 32 bytes
/// assert!(matches!(reply.status, Err(Status::BufferTooSmall { required: 32, .. })));
/// assert_eq!(reply.information, 32, "the size required");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsReply {
    /// `Ok` for `STATUS_SUCCESS`.
    pub status: Result<(), Status>,
    /// Bytes written to the data buffer, or the size required.
    pub information: usize,
}

impl KsReply {
    fn ok(n: usize) -> KsReply {
        KsReply {
            status: Ok(()),
            information: n,
        }
    }

    fn err(s: Status) -> KsReply {
        let information = s.required_size().unwrap_or(0);
        KsReply {
            status: Err(s),
            information,
        }
    }

    /// The NTSTATUS value.
    ///
    /// ```
    /// use ks_sys::{KSPROPSETID_StreamAllocator, KSPROPERTY_STREAMALLOCATOR_STATUS, KSPROPERTY_TYPE_GET};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// # let hdr = [&KSPROPSETID_StreamAllocator.to_le_bytes()[..], &KSPROPERTY_STREAMALLOCATOR_STATUS.to_le_bytes(), &KSPROPERTY_TYPE_GET.to_le_bytes()].concat();
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// assert_eq!(alloc.property(&hdr, &mut [0u8; 32]).ntstatus(), 0, "STATUS_SUCCESS");
    /// let short = alloc.property(&hdr, &mut [0u8; 4]);
    /// assert_eq!(short.ntstatus(), ks_sys::STATUS_BUFFER_TOO_SMALL);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn ntstatus(&self) -> i32 {
        match &self.status {
            Ok(()) => 0,
            Err(s) => s.to_ntstatus(),
        }
    }
}

/// A parsed `KSIDENTIFIER`.
struct Header {
    set: GUID,
    id: u32,
    flags: u32,
}

fn header(bytes: &[u8], what: &str) -> Result<Header, Status> {
    if bytes.len() < HEADER {
        return Err(Status::InvalidBufferSize(
            format!(
                "{what} header is {} bytes; must be at least {HEADER} (KSIDENTIFIER)",
                bytes.len()
            )
            .into(),
        ));
    }
    Ok(Header {
        set: rd_guid(bytes, 0),
        id: rd_u32(bytes, 16),
        flags: rd_u32(bytes, 20),
    })
}

fn wrong_set(set: GUID, expected: &str) -> Status {
    Status::PropsetNotFound(
        format!("set {set:?} is not supported by an allocator; expected {expected}").into(),
    )
}

fn wrong_id(id: u32, set: &str, allowed: &str) -> Status {
    Status::NotFound(format!("id {id} is not in {set}; allowed: {allowed}").into())
}

impl Allocator {
    /// A property request (KS: `IOCTL_KS_PROPERTY`) on `KSPROPSETID_StreamAllocator`.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// use ks_sys::{KSIDENTIFIER, KSPROPSETID_StreamAllocator, KSPROPERTY_STREAMALLOCATOR_STATUS, KSPROPERTY_TYPE_GET};
    /// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2,
    ///                         frame_size: 64, alignment: Alignment::BYTE };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let _f = alloc.try_allocate()?;
    /// let mut hdr = Vec::new();
    /// hdr.extend_from_slice(&KSPROPSETID_StreamAllocator.to_le_bytes());
    /// hdr.extend_from_slice(&KSPROPERTY_STREAMALLOCATOR_STATUS.to_le_bytes());
    /// hdr.extend_from_slice(&KSPROPERTY_TYPE_GET.to_le_bytes());
    /// let mut out = [0u8; 32];
    /// let r = alloc.property(&hdr, &mut out);
    /// assert_eq!(r.ntstatus(), 0);
    /// assert_eq!(r.information, 32);
    /// assert_eq!(&out[24..28], &1u32.to_le_bytes(), "AllocatedFrames");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "IOCTL_KS_PROPERTY")]
    pub fn property(&self, header_bytes: &[u8], data: &mut [u8]) -> KsReply {
        match self.property_inner(header_bytes, data) {
            Ok(n) => KsReply::ok(n),
            Err(s) => KsReply::err(s),
        }
    }

    fn property_inner(&self, header_bytes: &[u8], data: &mut [u8]) -> Result<usize, Status> {
        let h = header(header_bytes, "KSPROPERTY")?;
        if h.set != KSPROPSETID_StreamAllocator {
            return Err(wrong_set(h.set, "KSPROPSETID_StreamAllocator"));
        }
        let name = match h.id {
            KSPROPERTY_STREAMALLOCATOR_STATUS => "STATUS",
            KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE => "FUNCTIONTABLE",
            id => {
                return Err(wrong_id(
                    id,
                    "KSPROPSETID_StreamAllocator",
                    "0 (FUNCTIONTABLE), 1 (STATUS)",
                ));
            }
        };
        known_flags("KSPROPERTY", h.flags, PROPERTY_FLAGS)?;
        if h.flags != KSPROPERTY_TYPE_GET {
            return Err(Status::InvalidDeviceRequest(
                format!(
                    "KSPROPERTY_STREAMALLOCATOR_{name} is get-only; flags {:#x} ask for \
                     something else (policy)",
                    h.flags
                )
                .into(),
            ));
        }
        let need = |n: usize| {
            if data.len() < n {
                Err(Status::BufferTooSmall {
                    required: n,
                    message: format!(
                        "KSPROPERTY_STREAMALLOCATOR_{name} needs {n} bytes; the buffer has {}",
                        data.len()
                    )
                    .into(),
                })
            } else {
                Ok(())
            }
        };
        if h.id == KSPROPERTY_STREAMALLOCATOR_STATUS {
            need(AllocatorStatus::KS_SIZE)?;
            data[..32].copy_from_slice(&self.status().to_ks_bytes());
            return Ok(32);
        }
        if !self.offers_function_table() {
            return Err(Status::NotSupported(
                format!(
                    "the function table is offered only for non-paged memory; this allocator's \
                     memory is {:?} (behaviour 29)",
                    self.memory()
                )
                .into(),
            ));
        }
        if self.is_closed() {
            return Err(crate::allocator::closed_status());
        }
        need(TABLE)?;
        write_function_table(&mut data[..TABLE]);
        Ok(TABLE)
    }

    /// The `FileObject` argument for the function-table entry points returned by the
    /// FUNCTIONTABLE property: valid while the allocator is open (behaviour 36).
    ///
    /// The property writes a `KSSTREAMALLOCATOR_FUNCTIONTABLE` with pointer stores; read it
    /// back as that structure, as below. (Reading the words as `usize` and casting them with
    /// `as` also works, since the entry points' provenance is exposed; a transmute from the
    /// integer would give a function pointer without provenance, which must not be called.)
    ///
    /// ```
    /// use std::ffi::c_void;
    /// use ks_sys::{KSPROPSETID_StreamAllocator, KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE, KSSTREAMALLOCATOR_FUNCTIONTABLE};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// # let hdr = [&KSPROPSETID_StreamAllocator.to_le_bytes()[..], &KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE.to_le_bytes(), &ks_sys::KSPROPERTY_TYPE_GET.to_le_bytes()].concat();
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let mut bytes = [0u8; size_of::<KSSTREAMALLOCATOR_FUNCTIONTABLE>()];
    /// assert_eq!(alloc.property(&hdr, &mut bytes).ntstatus(), 0);
    /// // SAFETY: FUNCTIONTABLE wrote a `KSSTREAMALLOCATOR_FUNCTIONTABLE` there (with pointer
    /// // stores: the bytes carry the functions' provenance); the read needs no alignment.
    /// let table = unsafe { bytes.as_ptr().cast::<KSSTREAMALLOCATOR_FUNCTIONTABLE>().read_unaligned() };
    /// let (allocate_frame, free_frame) = (table.AllocateFrame.unwrap(), table.FreeFrame.unwrap());
    /// let mut frame: *mut c_void = std::ptr::null_mut();
    /// // SAFETY: the file object of an open allocator; `frame` is writable.
    /// assert_eq!(unsafe { allocate_frame(alloc.file_object(), &mut frame) }, 0);
    /// assert_eq!(alloc.status().allocated_frames, 1);
    /// // SAFETY: as above; `frame` came from `allocate_frame`.
    /// unsafe { free_frame(alloc.file_object(), frame) };
    /// assert_eq!(alloc.status().allocated_frames, 0);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    pub fn file_object(&self) -> PFILE_OBJECT {
        Arc::as_ptr(&self.inner).cast_mut().cast()
    }

    /// A method request (KS: `IOCTL_KS_METHOD`) on `KSMETHODSETID_StreamAllocator`. A pending
    /// ALLOC answers `STATUS_PENDING` and returns the request's handle.
    ///
    /// ```
    /// use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType, Status};
    /// use ks_sys::{KSMETHODSETID_StreamAllocator, KSMETHOD_STREAMALLOCATOR_ALLOC, KSMETHOD_STREAMALLOCATOR_FREE};
    /// let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1,
    ///                         frame_size: 64, alignment: Alignment::BYTE };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let hdr = |id: u32| [&KSMETHODSETID_StreamAllocator.to_le_bytes()[..], &id.to_le_bytes(), &2u32.to_le_bytes()].concat();
    /// let mut addr = [0u8; 8];
    /// let (r, _) = alloc.method(&hdr(KSMETHOD_STREAMALLOCATOR_ALLOC), &mut addr);
    /// assert_eq!(r.ntstatus(), 0);
    /// let (r, pending) = alloc.method(&hdr(KSMETHOD_STREAMALLOCATOR_ALLOC), &mut [0u8; 8]);
    /// assert_eq!(r.status, Err(Status::Pending));
    /// let (r, _) = alloc.method(&hdr(KSMETHOD_STREAMALLOCATOR_FREE), &mut addr);
    /// assert_eq!(r.ntstatus(), 0);
    /// let frame = pending.unwrap().wait(None)?; // completed by the free
    /// # drop(frame);
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "IOCTL_KS_METHOD")]
    pub fn method(&self, header_bytes: &[u8], data: &mut [u8]) -> (KsReply, Option<PendingAlloc>) {
        match self.method_inner(header_bytes, data) {
            Ok(MethodDone::Written(n)) => (KsReply::ok(n), None),
            Ok(MethodDone::Pending(p)) => (KsReply::err(Status::Pending), Some(p)),
            Err(s) => (KsReply::err(s), None),
        }
    }

    fn method_inner(&self, header_bytes: &[u8], data: &mut [u8]) -> Result<MethodDone, Status> {
        let h = header(header_bytes, "KSMETHOD")?;
        if h.set != KSMETHODSETID_StreamAllocator {
            return Err(wrong_set(h.set, "KSMETHODSETID_StreamAllocator"));
        }
        if h.id != KSMETHOD_STREAMALLOCATOR_ALLOC && h.id != KSMETHOD_STREAMALLOCATOR_FREE {
            return Err(wrong_id(
                h.id,
                "KSMETHODSETID_StreamAllocator",
                "0 (ALLOC), 1 (FREE)",
            ));
        }
        known_flags("KSMETHOD", h.flags, METHOD_FLAGS)?;
        if h.flags & KSMETHOD_TYPE_TOPOLOGY != 0 {
            return Err(Status::InvalidDeviceRequest(
                format!(
                    "KSMETHOD flags {:#x}: KSMETHOD_TYPE_TOPOLOGY, but an allocator has no \
                     topology nodes (policy)",
                    h.flags
                )
                .into(),
            ));
        }
        // Support queries ask about the method without running it (an ALLOC probe must not
        // take a frame, nor a FREE probe free the address in the buffer).
        if h.flags & KSMETHOD_TYPE_BASICSUPPORT != 0 {
            let flags = if h.id == KSMETHOD_STREAMALLOCATOR_ALLOC {
                KSMETHOD_TYPE_WRITE
            } else {
                KSMETHOD_TYPE_READ
            };
            let Some(out) = data.get_mut(..4) else {
                return Err(Status::BufferTooSmall {
                    required: 4,
                    message: format!(
                        "KSMETHOD_TYPE_BASICSUPPORT answers a ULONG of 4 bytes; the buffer has {}",
                        data.len()
                    )
                    .into(),
                });
            };
            out.copy_from_slice(&flags.to_le_bytes());
            return Ok(MethodDone::Written(4));
        }
        if h.flags & KSMETHOD_TYPE_SETSUPPORT != 0 {
            return Ok(MethodDone::Written(0));
        }
        if data.len() < PTR {
            // Behaviour 28: MinData = sizeof(PVOID).
            return Err(Status::MoreEntries { required: PTR });
        }
        if h.id == KSMETHOD_STREAMALLOCATOR_FREE {
            let mut b = [0u8; PTR];
            b.copy_from_slice(&data[..PTR]);
            self.free_raw(usize::from_ne_bytes(b))?;
            return Ok(MethodDone::Written(0));
        }
        match self.begin(None, || Notify::None)? {
            Begin::Ready(f) => {
                data[..PTR].copy_from_slice(&f.into_raw().to_ne_bytes());
                Ok(MethodDone::Written(PTR))
            }
            Begin::Queued(t) => Ok(MethodDone::Pending(PendingAlloc::new(self.clone(), t))),
        }
    }

    /// An event request (KS: `IOCTL_KS_ENABLE_EVENT`) on `KSEVENTSETID_StreamAllocator`.
    ///
    /// Enabling FREEFRAME (`KSEVENT_TYPE_ENABLE`, or `KSEVENT_TYPE_ONESHOT` for a subscription
    /// disabled by its first event) answers `Ok(Some(_))`, an awaitable subscription: the
    /// returned value is the notification (and the KS event handle: disable it with
    /// [`disable_event`](Self::disable_event) or by dropping it); the event data
    /// (`KSEVENTDATA`) is not interpreted. A support query (`KSEVENT_TYPE_SETSUPPORT` or
    /// `KSEVENT_TYPE_BASICSUPPORT`) enables nothing: it answers `Ok(None)`, `STATUS_SUCCESS`
    /// (FREEFRAME is supported).
    ///
    /// # Errors
    /// See the module's status policy: the flags must name exactly one request (else
    /// `STATUS_INVALID_PARAMETER`); buffered events and topology nodes are not offered
    /// (`STATUS_INVALID_DEVICE_REQUEST`); `INTERNAL_FREEFRAME` is refused, to a support query
    /// too (behaviour 37); `STATUS_INVALID_DEVICE_STATE` for an enable after close.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ks_alloc::Status;
    /// use ks_sys::{KSEVENTSETID_StreamAllocator as SET, KSEVENT_STREAMALLOCATOR_FREEFRAME as FREEFRAME};
    /// use ks_sys::{KSEVENT_TYPE_BASICSUPPORT, KSEVENT_TYPE_ENABLE};
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let hdr = |id: u32, flags: u32| [&SET.to_le_bytes()[..], &id.to_le_bytes(), &flags.to_le_bytes()].concat();
    /// let mut events = alloc.enable_event(&hdr(FREEFRAME, KSEVENT_TYPE_ENABLE), &[])?.expect("enabled");
    /// drop(alloc.try_allocate()?);
    /// assert!(events.wait(Duration::from_millis(10))?);
    /// // A support query: supported, nothing enabled.
    /// assert!(alloc.enable_event(&hdr(FREEFRAME, KSEVENT_TYPE_BASICSUPPORT), &[])?.is_none());
    /// // No request named in the flags.
    /// assert!(matches!(alloc.enable_event(&hdr(FREEFRAME, 0), &[]), Err(Status::InvalidParameter(_))));
    /// let internal = ks_sys::KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME;
    /// assert!(alloc.enable_event(&hdr(internal, KSEVENT_TYPE_ENABLE), &[]).is_err(), "behaviour 37");
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "IOCTL_KS_ENABLE_EVENT")]
    pub fn enable_event(
        &self,
        header_bytes: &[u8],
        _data: &[u8],
    ) -> Result<Option<FreeFrameEvents>, Status> {
        let h = header(header_bytes, "KSEVENT")?;
        if h.set != KSEVENTSETID_StreamAllocator {
            return Err(wrong_set(h.set, "KSEVENTSETID_StreamAllocator"));
        }
        match h.id {
            KSEVENT_STREAMALLOCATOR_FREEFRAME => {}
            KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME => {
                return Err(Status::InvalidDeviceRequest(
                    "KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME is internal to the allocator; \
                     clients enable KSEVENT_STREAMALLOCATOR_FREEFRAME (behaviour 37)"
                        .into(),
                ));
            }
            id => {
                return Err(wrong_id(
                    id,
                    "KSEVENTSETID_StreamAllocator",
                    "1 (FREEFRAME)",
                ));
            }
        }
        match event_request(h.flags)? {
            EventRequest::Support => Ok(None),
            EventRequest::Enable { oneshot } => self.subscribe_events(oneshot).map(Some),
        }
    }

    /// Disables an event (KS: `IOCTL_KS_DISABLE_EVENT`).
    ///
    /// # Errors
    /// `STATUS_INVALID_PARAMETER` if the subscription belongs to another allocator (it is
    /// disabled anyway).
    ///
    /// ```
    /// use ks_alloc::Status;
    /// # use ks_alloc::{Alignment, Allocator, Framing, Memory, PoolType};
    /// # let framing = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 1, frame_size: 64, alignment: Alignment::BYTES_64 };
    /// let alloc = Allocator::new(&framing, Memory::NonPaged)?;
    /// let events = alloc.free_frame_events()?;
    /// assert_eq!(alloc.disable_event(events), Ok(()));
    /// let other = Allocator::new(&framing, Memory::NonPaged)?;
    /// let foreign = other.free_frame_events()?;
    /// assert!(matches!(alloc.disable_event(foreign), Err(Status::InvalidParameter(_))));
    /// # Ok::<(), ks_alloc::Status>(())
    /// ```
    #[doc(alias = "IOCTL_KS_DISABLE_EVENT")]
    pub fn disable_event(&self, events: FreeFrameEvents) -> Result<(), Status> {
        if events.allocator().same(self) {
            Ok(())
        } else {
            Err(Status::InvalidParameter(
                "the event subscription belongs to another allocator".into(),
            ))
        }
    }
}

/// What the flags of an event request ask for.
enum EventRequest {
    /// `KSEVENT_TYPE_ENABLE`, or one-shot: `KSEVENT_TYPE_ONESHOT` (with or without
    /// `KSEVENT_TYPE_ENABLE`).
    Enable { oneshot: bool },
    /// `KSEVENT_TYPE_SETSUPPORT` or `KSEVENT_TYPE_BASICSUPPORT`.
    Support,
}

/// Every `KSPROPERTY_TYPE_*` flag.
const PROPERTY_FLAGS: u32 = KSPROPERTY_TYPE_GET
    | KSPROPERTY_TYPE_SET
    | KSPROPERTY_TYPE_SETSUPPORT
    | KSPROPERTY_TYPE_BASICSUPPORT
    | KSPROPERTY_TYPE_RELATIONS
    | KSPROPERTY_TYPE_SERIALIZESET
    | KSPROPERTY_TYPE_UNSERIALIZESET
    | KSPROPERTY_TYPE_SERIALIZERAW
    | KSPROPERTY_TYPE_UNSERIALIZERAW
    | KSPROPERTY_TYPE_SERIALIZESIZE
    | KSPROPERTY_TYPE_DEFAULTVALUES
    | KSPROPERTY_TYPE_TOPOLOGY;

/// `STATUS_INVALID_PARAMETER` if `flags` of a `kind` request (`KSPROPERTY`, `KSMETHOD`) has
/// bits outside `known` (policy: a malformed request).
fn known_flags(kind: &str, flags: u32, known: u32) -> Result<(), Status> {
    if flags & !known == 0 {
        return Ok(());
    }
    Err(Status::InvalidParameter(
        format!(
            "{kind} flags {flags:#x}: unknown bits {:#x}; a request names {kind}_TYPE_* flags \
             only (policy)",
            flags & !known
        )
        .into(),
    ))
}

/// Every `KSMETHOD_TYPE_*` flag (`MODIFY` is `READ | WRITE`, `SEND` is `READ`).
const METHOD_FLAGS: u32 = KSMETHOD_TYPE_MODIFY
    | KSMETHOD_TYPE_SOURCE
    | KSMETHOD_TYPE_SETSUPPORT
    | KSMETHOD_TYPE_BASICSUPPORT
    | KSMETHOD_TYPE_TOPOLOGY;

/// Every `KSEVENT_TYPE_*` flag.
const EVENT_FLAGS: u32 = KSEVENT_TYPE_ENABLE
    | KSEVENT_TYPE_ONESHOT
    | KSEVENT_TYPE_ENABLEBUFFERED
    | KSEVENT_TYPE_SETSUPPORT
    | KSEVENT_TYPE_BASICSUPPORT
    | KSEVENT_TYPE_QUERYBUFFER
    | KSEVENT_TYPE_TOPOLOGY;

/// Decodes the flags of an event request: exactly one request type, possibly ORed with
/// `KSEVENT_TYPE_TOPOLOGY` (Microsoft's `KSEVENT` reference); `ENABLE | ONESHOT` is accepted
/// too, as one-shot. Anything else is `STATUS_INVALID_PARAMETER` (policy: KS names no status).
fn event_request(flags: u32) -> Result<EventRequest, Status> {
    let invalid = |why: &str| {
        Err(Status::InvalidParameter(
            format!(
                "KSEVENT flags {flags:#x}: {why}; name one of KSEVENT_TYPE_ENABLE, \
                 KSEVENT_TYPE_ONESHOT (or ENABLE | ONESHOT), KSEVENT_TYPE_SETSUPPORT, \
                 KSEVENT_TYPE_BASICSUPPORT (policy)"
            )
            .into(),
        ))
    };
    let unsupported = |what: &str| {
        Err(Status::InvalidDeviceRequest(
            format!("KSEVENT flags {flags:#x}: {what} (policy)").into(),
        ))
    };
    if flags & !EVENT_FLAGS != 0 {
        return invalid(&format!("unknown bits {:#x}", flags & !EVENT_FLAGS));
    }
    let request = match flags & !KSEVENT_TYPE_TOPOLOGY {
        KSEVENT_TYPE_ENABLE => EventRequest::Enable { oneshot: false },
        KSEVENT_TYPE_ONESHOT => EventRequest::Enable { oneshot: true },
        f if f == KSEVENT_TYPE_ENABLE | KSEVENT_TYPE_ONESHOT => {
            EventRequest::Enable { oneshot: true }
        }
        KSEVENT_TYPE_SETSUPPORT | KSEVENT_TYPE_BASICSUPPORT => EventRequest::Support,
        KSEVENT_TYPE_ENABLEBUFFERED | KSEVENT_TYPE_QUERYBUFFER => {
            return unsupported("FREEFRAME carries no event data: no buffered events");
        }
        0 => return invalid("no request (KSEVENT_TYPE_ENABLE is not set)"),
        _ => return invalid("several requests at once"),
    };
    if flags & KSEVENT_TYPE_TOPOLOGY != 0 {
        return unsupported("an allocator has no topology nodes");
    }
    Ok(request)
}

enum MethodDone {
    Written(usize),
    Pending(PendingAlloc),
}

/// Writes the `KSSTREAMALLOCATOR_FUNCTIONTABLE` value into `out` (exactly `TABLE` bytes).
///
/// The entry points are stored as pointers, not as integers: bytes written by a pointer-typed
/// store keep the functions' provenance, so a client that reads the value back as the ks-sys
/// structure (`ptr::read_unaligned::<KSSTREAMALLOCATOR_FUNCTIONTABLE>`, the natural reading)
/// gets function pointers it may call. A pointer turned into an integer and back by a
/// transmute has no provenance, and calling it is undefined behaviour (Miri reports it).
///
/// Clients that read each word as a `usize` and cast it back with `as` lose the provenance
/// in the integer read; the cast then takes an exposed one. So both entry points are also
/// exposed here (`expose_provenance`), which keeps that route
/// sound too.
fn write_function_table(out: &mut [u8]) {
    assert_eq!(out.len(), TABLE);
    let table = KSSTREAMALLOCATOR_FUNCTIONTABLE {
        AllocateFrame: Some(function_table_allocate),
        FreeFrame: Some(function_table_free),
    };
    // No effect at run time: it makes the provenance of the very pointers stored available
    // to integer-to-pointer casts (see above). Exposing a fresh `function_table_allocate as
    // *const ()` would not do: each mention of a function may produce a pointer of its own
    // (Miri gives them different addresses).
    if let (Some(allocate), Some(free)) = (table.AllocateFrame, table.FreeFrame) {
        let _ = (allocate as *const ()).expose_provenance();
        let _ = (free as *const ()).expose_provenance();
    }
    // SAFETY: `out` is exclusively borrowed and holds `TABLE` bytes, the size of the
    // structure (checked below at compile time); `write_unaligned` needs no alignment, and
    // every byte pattern is a valid `u8`, so the slice stays valid for its type.
    unsafe {
        out.as_mut_ptr()
            .cast::<KSSTREAMALLOCATOR_FUNCTIONTABLE>()
            .write_unaligned(table);
    }
}

const _: () = assert!(TABLE == std::mem::size_of::<KSSTREAMALLOCATOR_FUNCTIONTABLE>());

/// Borrows the allocator behind a `FileObject` without touching reference counts.
///
/// # Safety
/// `file` is [`Allocator::file_object`] of an allocator that has a live handle.
unsafe fn borrow(file: PFILE_OBJECT) -> ManuallyDrop<Allocator> {
    // SAFETY: `file` is `Arc::as_ptr` of a live `Arc<Inner>` (caller); `ManuallyDrop` makes
    // sure the borrowed strong count is never released.
    let inner = unsafe { Arc::from_raw(file.cast_const().cast::<Inner>()) };
    ManuallyDrop::new(Allocator { inner })
}

/// `KSSTREAMALLOCATOR_FUNCTIONTABLE.AllocateFrame`: never blocks; `STATUS_UNSUCCESSFUL` and a
/// null frame when none is free (behaviour 31).
///
/// # Safety
/// `file` is the [`Allocator::file_object`] of an allocator with a live handle and `frame`
/// is valid for a pointer write.
unsafe extern "C" fn function_table_allocate(
    file: PFILE_OBJECT,
    frame: *mut *mut c_void,
) -> NTSTATUS {
    // SAFETY: forwarded from the caller.
    let a = unsafe { borrow(file) };
    let (status, p) = match a.try_allocate() {
        Ok(f) => (0, f.into_raw() as *mut c_void),
        Err(s) => (s.to_ntstatus(), std::ptr::null_mut()),
    };
    // SAFETY: the caller guarantees `frame` is writable.
    unsafe { frame.write(p) };
    status
}

/// `KSSTREAMALLOCATOR_FUNCTIONTABLE.FreeFrame`: never blocks; an address not outstanding is
/// ignored (the KS signature has no status) and logged.
///
/// # Safety
/// `file` is the [`Allocator::file_object`] of an allocator with a live handle.
unsafe extern "C" fn function_table_free(file: PFILE_OBJECT, frame: *mut c_void) {
    // SAFETY: forwarded from the caller.
    let a = unsafe { borrow(file) };
    if let Err(e) = a.free_raw(frame as usize) {
        tracing::error!("function-table FreeFrame: {e}");
    }
}
