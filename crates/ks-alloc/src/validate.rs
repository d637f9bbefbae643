//! Validation of allocator create requests (`KsValidateAllocatorCreateRequest`, ks-spec §5.3,
//! behaviours 11–14).
//!
//! The rules are documented on [`validate_create_request`].

use std::borrow::Cow;

use crate::framing::{Alignment, Framing, PoolType, rd_u32};
use crate::status::Status;

/// The largest alignment the default allocator accepts: one 4 KiB page (`FileAlignment` mask
/// 4095). Policy: a fixed constant rather than the host page size, so that a framing valid on
/// one machine is valid on every machine (ReactOS compares against `PAGE_SIZE - 1`, which is
/// 4095 on every Windows architecture with 4 KiB pages).
///
/// ```
/// assert_eq!(ks_alloc::DEFAULT_MAX_ALIGNMENT.bytes(), 4096);
/// ```
pub const DEFAULT_MAX_ALIGNMENT: Alignment = Alignment::BYTES_4096;

/// Mask of the option bits an allocator create request may carry (`OPTIONF_COMPATIBLE |
/// OPTIONF_SYSTEM_MEMORY | REQUIREMENTF_FRAME_INTEGRITY | REQUIREMENTF_MUST_ALLOCATE`, as in
/// ReactOS).
///
/// ```
/// assert_eq!(ks_alloc::VALID_CREATE_OPTIONS & ks_alloc::RequirementFlags::PREFERENCES_ONLY.bits(), 0);
/// ```
pub const VALID_CREATE_OPTIONS: u32 = 0x0000_000F;

/// Validates the parameter block of an allocator create request (the 24-byte
/// `KSALLOCATOR_FRAMING` that follows the object-class name) and returns the framing.
///
/// Uses the default allocator's alignment limit [`DEFAULT_MAX_ALIGNMENT`]; every rejection
/// names the field, its value and what is allowed.
///
/// The rules, in the order they are checked. Each is either ReactOS behaviour (the only
/// evidence; Microsoft documents "an error") or our *policy*, with the reason in one line:
///
/// | # | Rule | Status | Source / reason |
/// |---|---|---|---|
/// | 1 | parameter block shorter than 24 bytes | `STATUS_UNSUCCESSFUL` | ReactOS (behaviour 12) |
/// | 2 | parameter block longer than 24 bytes | `STATUS_INVALID_PARAMETER` | policy: `KsCreateAllocator` sends exactly one `KSALLOCATOR_FRAMING`; extra bytes mean the caller sent another structure (e.g. the EX form) and ignoring them would hide that bug |
/// | 3 | `FrameSize` = 0 | `STATUS_INVALID_PARAMETER` | ReactOS (behaviour 13) |
/// | 4 | `OptionsFlags` bit outside 0xF | `STATUS_INVALID_PARAMETER` | ReactOS (behaviour 13); rejects `PREFERENCES_ONLY` and 0x10 too |
/// | 5 | `Reserved` ≠ 0 | `STATUS_INVALID_PARAMETER` | policy: documented "must be zero"; rejecting keeps the field free for future use |
/// | 6 | `FileAlignment` not of the form 2^n − 1 | `STATUS_INVALID_PARAMETER` | policy: every header value is a mask; anything else has no meaning |
/// | 7 | alignment larger than [`DEFAULT_MAX_ALIGNMENT`] (mask > 4095) | `STATUS_INVALID_PARAMETER` | ReactOS default allocator (behaviour 14), with a fixed 4 KiB page for portability |
/// | 8 | `Frames` = 0 | `STATUS_INVALID_PARAMETER` | policy (ks-spec §10 item 1): an allocator that may hand out no frame, or unboundedly many, has no useful meaning and defeats flow control |
/// | 9 | `Frames` × `FrameSize` (each frame rounded up to the alignment) exceeds `isize::MAX` | `STATUS_INTEGER_OVERFLOW` | policy: the frames must fit one contiguous region of the address space |
///
/// `PoolType` is not checked here (ReactOS does not either); the allocator constructor decides
/// which pools it serves.
///
/// ```
/// use ks_alloc::{validate_create_request, Alignment, Framing, PoolType};
/// let f = Framing { flags: 2, pool_type: PoolType::NON_PAGED, frames: 4, frame_size: 4096, alignment: Alignment::OCTA };
/// assert_eq!(validate_create_request(&f.to_bytes())?, f);
///
/// let bad = Framing { frame_size: 0, ..f };
/// let e = validate_create_request(&bad.to_bytes()).unwrap_err();
/// assert_eq!(e.to_string(), "STATUS_INVALID_PARAMETER: FrameSize (offset 12) is 0; must be at least 1");
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KsValidateAllocatorCreateRequest")]
pub fn validate_create_request(params: &[u8]) -> Result<Framing, Status> {
    validate_create_request_with(params, DEFAULT_MAX_ALIGNMENT)
}

/// [`validate_create_request`] with a caller-chosen alignment limit instead of
/// [`DEFAULT_MAX_ALIGNMENT`] (for vendor allocators that can honour larger alignments; pass
/// [`Alignment::MAX`] for no limit).
///
/// ```
/// use ks_alloc::{validate_create_request, validate_create_request_with, Alignment, Framing, PoolType};
/// let f = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 2, frame_size: 65536,
///                   alignment: Alignment::from_bytes(65536)? };
/// assert!(validate_create_request(&f.to_bytes()).is_err());
/// assert_eq!(validate_create_request_with(&f.to_bytes(), Alignment::MAX)?, f);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
#[doc(alias = "KsValidateAllocatorCreateRequest")]
pub fn validate_create_request_with(
    params: &[u8],
    max_alignment: Alignment,
) -> Result<Framing, Status> {
    if params.len() < Framing::SIZE {
        return Err(Status::Unsuccessful(Cow::Owned(format!(
            "allocator create parameters are {} bytes; a KSALLOCATOR_FRAMING needs 24",
            params.len()
        ))));
    }
    if params.len() > Framing::SIZE {
        return Err(Status::InvalidParameter(Cow::Owned(format!(
            "allocator create parameters are {} bytes; must be exactly 24 (one \
             KSALLOCATOR_FRAMING), {} trailing bytes at offset 24",
            params.len(),
            params.len() - Framing::SIZE
        ))));
    }
    let word = |off: usize| rd_u32(params, off);
    let (flags, pool, frames, frame_size, mask, reserved) =
        (word(0), word(4), word(8), word(12), word(16), word(20));
    check_frame_size(frame_size)?;
    check_options(flags)?;
    if reserved != 0 {
        return Err(Status::InvalidParameter(Cow::Owned(format!(
            "Reserved (offset 20) is 0x{reserved:08X}; must be 0"
        ))));
    }
    let framing = Framing {
        flags,
        pool_type: PoolType(pool as i32),
        frames,
        frame_size,
        alignment: Alignment::from_mask_field(mask, "FileAlignment (offset 16)")?,
    };
    validate_framing(&framing, max_alignment)?;
    Ok(framing)
}

/// Rules 3, 4 and 7–9 of [`validate_create_request`] for a framing that is already a
/// [`Framing`] (rules 1, 2, 5 and 6 are guaranteed by the type): call it before creating an
/// allocator from Rust to apply the create-request rules there too. These are KS's rules;
/// `AllocatorBuilder::build` checks what this library's allocator needs instead: `Frames` 1
/// to [`MAX_FRAMES`](crate::MAX_FRAMES) (so a request this function accepts may still be
/// refused there), `FrameSize` at least 1, a region that fits the address space; and it
/// serves alignments beyond a page and any option bits. Returns the size of the frame region
/// in bytes (see [`check_region_size`]).
///
/// ```
/// use ks_alloc::{validate_framing, Alignment, Framing, PoolType, DEFAULT_MAX_ALIGNMENT};
/// let f = Framing { flags: 0, pool_type: PoolType::PAGED, frames: 2, frame_size: 100, alignment: Alignment::BYTES_64 };
/// assert_eq!(validate_framing(&f, DEFAULT_MAX_ALIGNMENT)?, 256);
/// assert!(validate_framing(&Framing { frames: 0, ..f }, DEFAULT_MAX_ALIGNMENT).is_err());
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub fn validate_framing(framing: &Framing, max_alignment: Alignment) -> Result<usize, Status> {
    check_frame_size(framing.frame_size)?;
    check_options(framing.flags)?;
    if framing.alignment > max_alignment {
        return Err(Status::InvalidParameter(Cow::Owned(format!(
            "FileAlignment (offset 16) is 0x{:08X} ({} bytes); the allocator supports at most \
             mask 0x{:X} ({} bytes)",
            framing.alignment.mask(),
            framing.alignment.bytes(),
            max_alignment.mask(),
            max_alignment.bytes()
        ))));
    }
    if framing.frames == 0 {
        return Err(Status::InvalidParameter(Cow::Borrowed(
            "Frames (offset 8) is 0; must be at least 1 (policy: an allocator needs a frame limit)",
        )));
    }
    check_region_size(framing)
}

/// Rule 3: `FrameSize` must not be 0.
fn check_frame_size(frame_size: u32) -> Result<(), Status> {
    if frame_size == 0 {
        return Err(Status::InvalidParameter(Cow::Borrowed(
            "FrameSize (offset 12) is 0; must be at least 1",
        )));
    }
    Ok(())
}

/// Rule 4: only the bits of [`VALID_CREATE_OPTIONS`].
fn check_options(flags: u32) -> Result<(), Status> {
    if flags & !VALID_CREATE_OPTIONS != 0 {
        return Err(Status::InvalidParameter(Cow::Owned(format!(
            "OptionsFlags (offset 0) is 0x{flags:08X}; bits 0x{:08X} are outside the valid \
             create options 0x0000000F",
            flags & !VALID_CREATE_OPTIONS
        ))));
    }
    Ok(())
}

/// Checks rule 9: `Frames` frames of `FrameSize` bytes, each rounded up to the alignment, fit
/// one region of at most `isize::MAX` bytes (the Rust limit for one allocation).
///
/// ```
/// use ks_alloc::{check_region_size, Alignment, Framing, PoolType};
/// let f = Framing { flags: 0, pool_type: PoolType::NON_PAGED, frames: 3, frame_size: 10, alignment: Alignment::OCTA };
/// assert_eq!(check_region_size(&f)?, 48);
/// # Ok::<(), ks_alloc::Status>(())
/// ```
pub fn check_region_size(framing: &Framing) -> Result<usize, Status> {
    let overflow = || {
        Status::IntegerOverflow(Cow::Owned(format!(
            "Frames ({}) x FrameSize ({}, rounded up to a multiple of {}) overflows the \
             address space; the frame region must be at most {} bytes",
            framing.frames,
            framing.frame_size,
            framing.alignment,
            isize::MAX
        )))
    };
    let stride = framing
        .alignment
        .align_up(framing.frame_size as usize)
        .ok_or_else(overflow)?;
    let total = stride
        .checked_mul(framing.frames as usize)
        .ok_or_else(overflow)?;
    if total > isize::MAX as usize {
        return Err(overflow());
    }
    Ok(total)
}
