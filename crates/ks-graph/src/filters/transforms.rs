//! Transform filters: `identity`, `invert`, `copy`, `tee`, `checksum`, `commonbuf`.

use std::sync::Arc;

use ks_alloc::{Alignment, CommonBuffer, FramingEx, ItemFlags, MemoryType, Status};

use super::{FilterType, Made, PropDef, PropKind, Props, any_framing};
use crate::model::{FilterDescriptor, PinDescriptor, Routing, VendorCapabilities, VendorSpec};
use crate::runtime::spec::SpecError;
use crate::runtime::{FilterStats, PinRole, Pins, Process, RtFrame, RtQueue};
use crate::stream_pointer::{AtEdge, PointerId, PointerState};

/// Frames an input pin of a transform holds at once.
const TRANSFORM_FRAMES: u32 = 2;

fn pass_through(kind: &str, input: PinDescriptor, outputs: usize) -> FilterDescriptor {
    let mut d = FilterDescriptor::kernel(kind)
        .with_routing(Routing::PassThrough)
        .with_pin(input.required());
    if outputs == 1 {
        d = d.with_pin(PinDescriptor::output("out"));
    } else {
        for i in 0..outputs {
            d = d.with_pin(PinDescriptor::output(format!("out{i}")));
        }
    }
    d
}

/// Copies the frame under `src` (locked, on `qin`) into the leading-edge frame of `qout`
/// (data, `DataUsed`, flags and times) and ejects the output frame.
fn copy_into(qin: &RtQueue, src: PointerId, qout: &mut RtQueue) -> Result<bool, Status> {
    let Some(dst) = qout.leading_edge(PointerState::Locked) else {
        return Ok(false);
    };
    let header = *qin.header(src)?;
    let data = qin.data(src)?;
    let used = (header.data_used as usize).min(data.len());
    let out = qout.data_mut(dst)?;
    let n = used.min(out.len());
    out[..n].copy_from_slice(&data[..n]);
    let h = qout.header_mut(dst)?;
    h.data_used = n as u32;
    h.options_flags = header.options_flags;
    h.type_specific_flags = header.type_specific_flags;
    h.presentation_time = header.presentation_time;
    h.duration = header.duration;
    qout.unlock(dst, true)?;
    Ok(true)
}

/// The common loop of in-place filters: for every frame at the input's leading edge, run
/// `work` on it, copy it into every root output (a tee branch the negotiation split off),
/// and eject it; the runtime sends it on through the pass-through outputs. Stops early when a
/// root output has no empty frame yet (it is called again when one arrives). Counts frames and
/// bytes into `stats` and reports the end of stream.
fn pass_frames(
    pins: &mut Pins<'_>,
    stats: &mut FilterStats,
    mut work: impl FnMut(&mut AtEdge<'_, RtFrame>) -> Result<(), Status>,
) -> Result<(), Status> {
    if pins.root_outputs().next().is_none() {
        // Nothing to copy into: the whole batch in one pass over the input queue.
        let Some(q) = pins.queue(0) else {
            return Ok(());
        };
        let mut eos = false;
        let result = q.eject_leading(usize::MAX, |mut f| {
            let header = *f.header;
            work(&mut f)?;
            stats.record(header.data_used);
            eos |= header.is_end_of_stream();
            Ok(())
        });
        if eos {
            pins.end_of_stream();
        }
        return result.map(|_| ());
    }
    loop {
        let mut roots_ready = true;
        for r in 0..pins.len() {
            if pins.role(r) == PinRole::Root {
                let ready = pins
                    .queue(r)
                    .is_some_and(|q| q.leading_edge(PointerState::Locked).is_some());
                roots_ready &= ready;
            }
        }
        if !roots_ready {
            return Ok(());
        }
        let Some(q) = pins.queue(0) else {
            return Ok(());
        };
        let Some(p) = q.leading_edge(PointerState::Locked) else {
            return Ok(());
        };
        let header = *q.header(p)?;
        work(&mut q.at_pointer(p)?)?;
        for r in 0..pins.len() {
            if pins.role(r) == PinRole::Root {
                if let (Some(qin), Some(qout)) = pins.pair(0, r) {
                    copy_into(qin, p, qout)?;
                }
            }
        }
        if let Some(q) = pins.queue(0) {
            q.unlock(p, true)?;
        }
        stats.record(header.data_used);
        if header.is_end_of_stream() {
            pins.end_of_stream();
        }
    }
}

/// `identity`: passes frames on untouched.
///
/// Pins: `in` (input, required; any memory, 2 frames, any size), `out` (output, same pipe).
pub(super) const IDENTITY: FilterType = FilterType {
    name: "identity",
    summary: "passes frames on untouched",
    pins: "in: input, any memory, 2 frames, any size; out: output in the same pipe",
    properties: &[],
    make: |_| {
        Ok(Made {
            descriptor: pass_through(
                "identity",
                PinDescriptor::input("in").with_framing(any_framing(TRANSFORM_FRAMES)),
                1,
            ),
            process: Box::new(Untouched(FilterStats::default())),
        })
    },
};

/// The processing of `identity`, `tee` and `commonbuf`: every frame passes on untouched
/// (the runtime sends it on through each pass-through output; [`pass_frames`] copies it
/// into a root one).
struct Untouched(FilterStats);

impl Process for Untouched {
    fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
        pass_frames(pins, &mut self.0, |_| Ok(()))
    }
    fn stats(&self) -> FilterStats {
        self.0.clone()
    }
}

/// `invert`: inverts every data byte, in place (an in-place modifier: frames stay in the
/// pipe, and a tee upstream gives this branch its own pipe).
///
/// Pins: `in` (input, required, modifies in place; any memory, 2 frames, any size), `out`.
pub(super) const INVERT: FilterType = FilterType {
    name: "invert",
    summary: "inverts every byte in place (an in-place modifier)",
    pins: "in: input, in-place modifier, any memory, 2 frames, any size; out: output in the same pipe",
    properties: &[],
    make: |_| {
        Ok(Made {
            descriptor: pass_through(
                "invert",
                PinDescriptor::input("in")
                    .with_framing(FramingEx::simple(
                        MemoryType::WILDCARD,
                        ItemFlags(ks_alloc::RequirementFlags::INPLACE_MODIFIER.bits()),
                        TRANSFORM_FRAMES,
                        Alignment::BYTE,
                        1,
                        u32::MAX,
                    ))
                    .in_place(),
                1,
            ),
            process: Box::new(Invert(FilterStats::default())),
        })
    },
};

struct Invert(FilterStats);

/// Inverts every byte of `data`, a machine word at a time (what `invert` does to a frame).
///
/// ```
/// let mut d = [0x00u8, 0x0f, 0xff];
/// ks_graph::filters::invert_bytes(&mut d);
/// assert_eq!(d, [0xff, 0xf0, 0x00]);
/// ```
pub fn invert_bytes(data: &mut [u8]) {
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(!u64::from_ne_bytes(w)).to_ne_bytes());
    }
    for b in chunks.into_remainder() {
        *b = !*b;
    }
}

impl Process for Invert {
    fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
        pass_frames(pins, &mut self.0, |f| {
            let used = f.header.data_used as usize;
            let data = f.data_mut()?;
            let n = used.min(data.len());
            invert_bytes(&mut data[..n]);
            Ok(())
        })
    }
    fn stats(&self) -> FilterStats {
        self.0.clone()
    }
}

/// `copy`: a transform that does not work in place. Its input ends one pipe; its output
/// starts the next, whose frames come from that pipe's own allocator (ks-spec §4.5).
///
/// Pins: `in` (input, required; any memory, 2 frames, any size), `out` (output, required;
/// any memory, 2 frames, any size).
pub(super) const COPY: FilterType = FilterType {
    name: "copy",
    summary: "copies each frame into a frame of the next pipe's allocator (not in place)",
    pins: "in: input, any memory, 2 frames, any size; out: output starting a new pipe, 2 frames",
    properties: &[],
    make: |_| {
        Ok(Made {
            descriptor: FilterDescriptor::kernel("copy")
                .with_routing(Routing::Copy)
                .with_pin(
                    PinDescriptor::input("in")
                        .with_framing(any_framing(TRANSFORM_FRAMES))
                        .required(),
                )
                .with_pin(
                    PinDescriptor::output("out")
                        .with_framing(any_framing(TRANSFORM_FRAMES))
                        .required(),
                ),
            process: Box::new(Copy(FilterStats::default())),
        })
    },
};

struct Copy(FilterStats);

impl Process for Copy {
    fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
        loop {
            let (Some(qin), Some(qout)) = pins.pair(0, 1) else {
                return Ok(());
            };
            let Some(src) = qin.leading_edge(PointerState::Locked) else {
                return Ok(());
            };
            if !copy_into(qin, src, qout)? {
                return Ok(()); // no empty output frame yet
            }
            let header = *qin.header(src)?;
            qin.unlock(src, true)?;
            self.0.record(header.data_used);
            if header.is_end_of_stream() {
                pins.end_of_stream();
            }
        }
    }
    fn stats(&self) -> FilterStats {
        self.0.clone()
    }
}

/// `tee`: every frame to every branch. Read-only branches share the pipe and the frame; a
/// branch whose downstream modifies frames gets its own pipe from the negotiation, and the
/// tee copies into it.
///
/// Pins: `in` (input, required; any memory, 2 frames, any size), `out0` … `out{N-1}`
/// (outputs, `branches=N`).
pub(super) const TEE: FilterType = FilterType {
    name: "tee",
    summary: "sends every frame to every branch (shared read-only)",
    pins: "in: input, any memory, 2 frames, any size; out0..outN-1: outputs",
    properties: &[PropDef {
        name: "branches",
        kind: PropKind::Int,
        default: "2",
        doc: "number of output pins (out0, out1, …)",
    }],
    make: |p| {
        let n = p.int("branches", 1, 64)? as usize;
        let mut d = FilterDescriptor::kernel("tee")
            .with_routing(Routing::PassThrough)
            .with_pin(
                PinDescriptor::input("in")
                    .with_framing(any_framing(TRANSFORM_FRAMES))
                    .required(),
            );
        for i in 0..n {
            d = d.with_pin(PinDescriptor::output(format!("out{i}")));
        }
        Ok(Made {
            descriptor: d,
            process: Box::new(Untouched(FilterStats::default())),
        })
    },
};

/// FNV-1a, 64-bit: the stable hash `checksum` reports. `state` is the running hash (start
/// with [`FNV_OFFSET`]).
///
/// ```
/// use ks_graph::filters::{fnv1a64, FNV_OFFSET};
/// assert_eq!(fnv1a64(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(fnv1a64(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
/// // Streaming: hashing in pieces gives the same value.
/// assert_eq!(fnv1a64(fnv1a64(FNV_OFFSET, b"foo"), b"bar"), fnv1a64(FNV_OFFSET, b"foobar"));
/// ```
pub fn fnv1a64(mut state: u64, data: &[u8]) -> u64 {
    for &b in data {
        state ^= u64::from(b);
        state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    state
}

/// The FNV-1a 64 offset basis.
///
/// ```
/// use ks_graph::filters::{fnv1a64, FNV_OFFSET};
/// let mut hash = FNV_OFFSET; // the hash of no data
/// for chunk in [&b"ab"[..], b"c"] {
///     hash = fnv1a64(hash, chunk);
/// }
/// assert_eq!(hash, fnv1a64(FNV_OFFSET, b"abc"));
/// ```
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// `checksum`: FNV-1a 64 over every data byte of the stream, in order; reported at the end.
/// Passes frames on untouched (its output is optional: it can end a branch).
///
/// Pins: `in` (input, required; any memory, 2 frames, any size), `out` (optional output).
pub(super) const CHECKSUM: FilterType = FilterType {
    name: "checksum",
    summary: "FNV-1a 64 of the stream's data, reported at the end; passes frames on",
    pins: "in: input, any memory, 2 frames, any size; out: optional output in the same pipe",
    properties: &[],
    make: |_| {
        Ok(Made {
            descriptor: pass_through(
                "checksum",
                PinDescriptor::input("in").with_framing(any_framing(TRANSFORM_FRAMES)),
                1,
            ),
            process: Box::new(Checksum {
                stats: FilterStats::default(),
                hash: FNV_OFFSET,
            }),
        })
    },
};

struct Checksum {
    stats: FilterStats,
    hash: u64,
}

impl Process for Checksum {
    fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
        let hash = &mut self.hash;
        pass_frames(pins, &mut self.stats, |f| {
            *hash = fnv1a64(*hash, f.used_data());
            Ok(())
        })
    }
    fn stats(&self) -> FilterStats {
        FilterStats {
            checksum: Some(self.hash),
            ..self.stats.clone()
        }
    }
}

/// `commonbuf`: a kernel-mode device filter whose input pin offers the `CommonBuffer` vendor
/// allocator — frames carved from one contiguous locked region, like a device's common DMA
/// buffer. The negotiation chooses it on an all-kernel pipe whose framing it can serve, and
/// refuses it (with the reason) otherwise: on a pipe that touches a user-mode filter, or when
/// the pipe needs bigger frames, more frames or a stricter alignment than the device has.
///
/// Pins: `in` (input, required; any memory, 2 frames, any size; vendor allocator with the
/// capabilities below), `out` (output, same pipe).
pub(super) const COMMONBUF: FilterType = FilterType {
    name: "commonbuf",
    summary: "device filter offering the CommonBuffer vendor allocator (common DMA buffer)",
    pins: "in: input, any memory, 2 frames, any size, offers the vendor allocator; out: output",
    properties: &[
        PropDef {
            name: "max_size",
            kind: PropKind::Int,
            default: "65536",
            doc: "largest frame the device can address, bytes",
        },
        PropDef {
            name: "max_frames",
            kind: PropKind::Int,
            default: "32",
            doc: "most frames the common buffer holds",
        },
        PropDef {
            name: "alignment",
            kind: PropKind::Int,
            default: "64",
            doc: "the device's alignment, bytes (a power of two, at most 4096)",
        },
    ],
    make: make_commonbuf,
};

fn make_commonbuf(p: &Props<'_>) -> Result<Made, SpecError> {
    let max_size = p.int("max_size", 1, u64::from(u32::MAX))? as u32;
    let max_frames = p.int("max_frames", 1, 1 << 20)? as u32;
    let align_bytes = p.int("alignment", 1, 4096)? as u32;
    let alignment = Alignment::from_bytes(align_bytes).map_err(|_| {
        p.bad(
            "alignment",
            &crate::runtime::spec::PropValue::Int(i64::from(align_bytes)),
            "it must be a power of two",
        )
    })?;
    let device = CommonBuffer {
        name: "commonbuf",
        max_frame_size: max_size,
        max_frames,
        alignment,
    };
    let caps = VendorCapabilities::new(vec![MemoryType::KERNEL_NONPAGED])
        .with_frame_size(1, max_size, 0)
        .with_max_frames(max_frames)
        .with_max_alignment(Alignment::BYTES_4096);
    let vendor = VendorSpec::new(p.instance(), Arc::new(device), caps);
    Ok(Made {
        descriptor: pass_through(
            "commonbuf",
            PinDescriptor::input("in")
                .with_framing(any_framing(TRANSFORM_FRAMES))
                .with_vendor(vendor),
            1,
        ),
        process: Box::new(Untouched(FilterStats::default())),
    })
}
