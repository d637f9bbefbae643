//! Sink filters: `nullsink` and `filesink`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use ks_alloc::Status;

use super::{FilterType, Made, PropDef, PropKind, Props, any_framing};
use crate::model::{FilterDescriptor, PinDescriptor};
use crate::runtime::spec::{SpecError, SpecErrorKind};
use crate::runtime::{FilterStats, Pins, Process};

/// Frames a sink's input pin holds at once.
const SINK_FRAMES: u32 = 2;

fn sink_descriptor(kind: &str) -> FilterDescriptor {
    FilterDescriptor::kernel(kind).with_pin(
        PinDescriptor::input("in")
            .with_framing(any_framing(SINK_FRAMES))
            .required(),
    )
}

/// Consumes every frame at the input's leading edge, handing each frame's data to `each`.
fn consume(
    pins: &mut Pins<'_>,
    stats: &mut FilterStats,
    mut each: impl FnMut(&[u8]) -> Result<(), Status>,
) -> Result<bool, Status> {
    let Some(q) = pins.queue(0) else {
        return Ok(false);
    };
    let mut eos = false;
    q.eject_leading(usize::MAX, |f| {
        let used = f.header.data_used;
        eos |= f.header.is_end_of_stream();
        each(f.used_data())?;
        stats.record(used);
        Ok::<(), Status>(())
    })?;
    if eos {
        pins.end_of_stream();
    }
    Ok(eos)
}

/// `nullsink`: discards every frame (returning it to its allocator at once).
///
/// Pins: `in` (input, required; any memory, 2 frames, any size).
pub(super) const NULLSINK: FilterType = FilterType {
    name: "nullsink",
    summary: "discards frames",
    pins: "in: input, any memory, 2 frames, any size",
    properties: &[],
    make: |_| {
        Ok(Made {
            descriptor: sink_descriptor("nullsink"),
            process: Box::new(NullSink(FilterStats::default())),
        })
    },
};

struct NullSink(FilterStats);

impl Process for NullSink {
    fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
        consume(pins, &mut self.0, |_| Ok(())).map(|_| ())
    }
    fn stats(&self) -> FilterStats {
        self.0.clone()
    }
}

/// `filesink`: writes the data of every frame to a file, in order.
///
/// Pins: `in` (input, required; any memory, 2 frames, any size). When the graph is built,
/// the path is only checked (an unwritable path is reported before anything runs, and a
/// graph that is only planned, or refused, leaves an existing file alone); the file is
/// created or truncated when the first frame arrives, and flushed at the end of the stream
/// and at STOP (a run stopped by `until`, or by an error elsewhere, loses nothing it
/// reported). A write or flush error fails the run, naming the filter.
pub(super) const FILESINK: FilterType = FilterType {
    name: "filesink",
    summary: "writes the stream's data to a file",
    pins: "in: input, any memory, 2 frames, any size",
    properties: &[PropDef {
        name: "location",
        kind: PropKind::Path,
        default: "",
        doc: "the file to write (required; created or truncated)",
    }],
    make: make_filesink,
};

fn make_filesink(p: &Props<'_>) -> Result<Made, SpecError> {
    let location = p.text("location")?;
    let cannot = |why: String| {
        SpecError::new(
            SpecErrorKind::Io,
            format!(
                "filter '{}' (filesink): cannot create '{location}': {why}",
                p.instance()
            ),
        )
    };
    // Checked without touching the file: opened for writing (not truncated) if it exists,
    // else its directory must exist.
    match std::fs::metadata(&location) {
        Ok(m) if m.is_dir() => return Err(cannot("it is a directory".into())),
        Ok(_) => {
            OpenOptions::new()
                .write(true)
                .open(&location)
                .map_err(|e| cannot(e.to_string()))?;
        }
        Err(_) => {
            let dir = Path::new(&location)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                return Err(cannot(format!(
                    "directory '{}' does not exist",
                    dir.display()
                )));
            }
        }
    }
    Ok(Made {
        descriptor: sink_descriptor("filesink"),
        process: Box::new(FileSink {
            location,
            out: None,
            stats: FilterStats::default(),
        }),
    })
}

struct FileSink {
    location: String,
    /// Created at the first frame (see [`FILESINK`]); flushed and closed at STOP.
    out: Option<BufWriter<File>>,
    stats: FilterStats,
}

impl Process for FileSink {
    fn process(&mut self, pins: &mut Pins<'_>) -> Result<(), Status> {
        let out = match &mut self.out {
            Some(out) => out,
            None => {
                let file = File::create(&self.location).map_err(|e| {
                    Status::Unsuccessful(
                        format!("filesink: cannot create '{}': {e}", self.location).into(),
                    )
                })?;
                self.out.insert(BufWriter::with_capacity(1 << 16, file))
            }
        };
        let eos = consume(pins, &mut self.stats, |data| {
            out.write_all(data).map_err(write_failed)
        })?;
        if eos {
            out.flush().map_err(write_failed)?;
        }
        Ok(())
    }
    fn stats(&self) -> FilterStats {
        self.stats.clone()
    }
    /// The run may stop before the end of the stream (`until`, an error elsewhere): what is
    /// still buffered is written now, so that a failure is reported rather than lost when
    /// the writer is dropped.
    fn stop(&mut self) -> Result<(), Status> {
        let Some(mut out) = self.out.take() else {
            return Ok(());
        };
        let flushed = out.flush();
        // On failure, what could not be written goes with the report's error, not into a
        // second (silent) attempt when the writer is dropped.
        let (file, _unwritten) = out.into_parts();
        drop(file);
        flushed.map_err(write_failed)
    }
}

fn write_failed(e: std::io::Error) -> Status {
    Status::Unsuccessful(format!("filesink: write failed: {e}").into())
}
