//! Human-readable output: plans (text and DOT), run reports, pin properties, progress.

use std::fmt::Write as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ks_alloc::{Framing, FramingEx, Status};
use ks_graph::props::PropertyHeader;
use ks_graph::runtime::RunReport;
use ks_graph::{AllocationPlan, AllocatorKind, Graph, PinDirection, PinId};
use ks_sys::{
    KSPROPERTY_CONNECTION_ALLOCATORFRAMING, KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
    KSPROPERTY_TYPE_GET, KSPROPSETID_Connection,
};

/// The plan as text: per pipe its pins, allocator, framing, and every refusal with its reason.
pub(crate) fn plan_text(graph: &Graph, plan: &AllocationPlan) -> String {
    let mut s = String::new();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let _ = writeln!(
        s,
        "plan: {}, {}",
        plural(graph.filter_count(), "filter"),
        plural(plan.pipes.len(), "pipe")
    );
    for p in &plan.pipes {
        let a = &p.allocator;
        let kind = match a.kind {
            AllocatorKind::Default => "default allocator",
            AllocatorKind::Vendor => "vendor allocator",
            AllocatorKind::Client => "client's allocator",
        };
        let _ = writeln!(s, "pipe {} ({})", p.id, p.mode);
        let _ = writeln!(s, "  pins:      {}", p.pins.join(", "));
        let _ = writeln!(
            s,
            "  allocator: {} '{}' on {}, {} memory",
            kind, a.name, a.pin, a.memory
        );
        let f = &p.framing;
        let _ = writeln!(
            s,
            "  framing:   {} frames × {} bytes, alignment {} bytes, {}{}",
            f.frames,
            f.frame_size,
            f.alignment,
            f.memory_type,
            // A client's allocator met this at least; its own framing is its own.
            if a.kind == AllocatorKind::Client {
                " (what the pins need)"
            } else {
                ""
            }
        );
        for r in &p.rejected {
            let who = match &r.pin {
                Some(pin) => format!("vendor '{}' on {}", r.candidate, pin),
                None => format!("'{}'", r.candidate),
            };
            let _ = writeln!(s, "  not chosen: {who}: {}", r.reason);
        }
        for r in &p.relaxed {
            let _ = writeln!(s, "  relaxed:   {} {:?}: {}", r.pin, r.field, r.detail);
        }
    }
    s
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The plan as Graphviz DOT: a cluster per filter with its pins, connections coloured by
/// pipe, and one node per pipe allocator (kind, framing, memory) pointing at its root pin.
pub(crate) fn plan_dot(graph: &Graph, plan: &AllocationPlan) -> String {
    let mut s = String::new();
    s.push_str("digraph ksalloc {\n  rankdir=LR;\n  compound=true;\n");
    s.push_str("  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    s.push_str("  edge [fontname=\"monospace\", fontsize=9];\n");
    let color = |pin: PinId| {
        plan.pipe_of(pin)
            .map_or("gray", |p| COLORS[p.id % COLORS.len()])
    };
    for (i, f) in graph.filter_ids().enumerate() {
        let d = graph.filter_descriptor(f);
        let _ = writeln!(
            s,
            "  subgraph cluster_{i} {{\n    label=\"{} ({}, {})\";\n    style=rounded;",
            dot_escape(graph.filter_name(f)),
            dot_escape(&d.name),
            graph.filter_mode(f)
        );
        for pin in graph.pins(f) {
            let pd = graph.pin_descriptor(pin);
            let vendor = pd
                .vendor
                .as_ref()
                .map(|v| format!("\\nvendor: {}", dot_escape(&v.name)))
                .unwrap_or_default();
            let shape = match pd.direction {
                PinDirection::In => "invhouse",
                PinDirection::Out => "house",
            };
            let _ = writeln!(
                s,
                "    \"{}\" [label=\"{}{}\", shape={shape}, color=\"{}\"];",
                dot_escape(&graph.pin_name(pin)),
                dot_escape(&pd.name),
                vendor,
                color(pin)
            );
        }
        s.push_str("  }\n");
    }
    for c in graph.connections() {
        let pipe = plan
            .pipe_of(c.from)
            .map_or(String::new(), |p| format!("pipe {}", p.id));
        let _ = writeln!(
            s,
            "  \"{}\" -> \"{}\" [color=\"{}\", label=\"{}\", penwidth=2];",
            dot_escape(&graph.pin_name(c.from)),
            dot_escape(&graph.pin_name(c.to)),
            color(c.from),
            pipe
        );
    }
    for p in &plan.pipes {
        let a = &p.allocator;
        let f = &p.framing;
        let kind = match a.kind {
            AllocatorKind::Default => "default",
            AllocatorKind::Vendor => "vendor",
            AllocatorKind::Client => "client's",
        };
        let refused: String = p
            .rejected
            .iter()
            .filter(|r| r.kind == AllocatorKind::Vendor)
            .map(|r| {
                format!(
                    "\\nrefused {}: {}",
                    dot_escape(&r.candidate),
                    dot_escape(&r.reason)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "  \"pipe{}\" [shape=cylinder, color=\"{}\", label=\"pipe {} allocator\\n{} '{}' ({} memory)\\n{} × {} B, align {} B\\n{}{}\"];",
            p.id,
            COLORS[p.id % COLORS.len()],
            p.id,
            kind,
            dot_escape(&a.name),
            a.memory,
            f.frames,
            f.frame_size,
            f.alignment,
            dot_escape(&f.memory_type),
            refused
        );
        if let Some(root) = p.pins.first() {
            let _ = writeln!(
                s,
                "  \"pipe{}\" -> \"{}\" [style=dashed, color=\"{}\", label=\"frames\"];",
                p.id,
                dot_escape(root),
                COLORS[p.id % COLORS.len()]
            );
        }
    }
    s.push_str("}\n");
    s
}

fn human_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.2} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}

/// The end-of-run report.
pub(crate) fn run_text(r: &RunReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "report{}",
        if r.completed {
            ""
        } else {
            " (stopped before the end of the stream)"
        }
    );
    let _ = writeln!(s, "  frames:     {}", r.frames);
    let _ = writeln!(
        s,
        "  bytes:      {} ({})",
        r.bytes,
        human_bytes(r.bytes as f64)
    );
    let _ = writeln!(s, "  elapsed:    {:.3} s", r.elapsed.as_secs_f64());
    let _ = writeln!(s, "  frames/s:   {:.0}", r.frames_per_sec());
    let _ = writeln!(s, "  MB/s:       {:.1}", r.mb_per_sec());
    for p in &r.pipes {
        let _ = writeln!(
            s,
            "  pipe {}:     allocator '{}' ({} memory): requested {}, allocated {} now, peak {}, pending at most {}, hand-offs {}",
            p.id,
            p.allocator,
            p.memory,
            p.requested,
            p.allocated,
            p.peak,
            p.max_pending,
            p.handoffs
        );
    }
    let mut any = false;
    for (name, sum) in r.checksums() {
        let _ = writeln!(s, "  checksum:   {sum:016x} ({name}, FNV-1a 64)");
        any = true;
    }
    if !any {
        let _ = writeln!(s, "  checksum:   none (add a checksum filter)");
    }
    let _ = writeln!(
        s,
        "  frames returned, allocators closed: {}",
        if r.all_frames_returned { "yes" } else { "NO" }
    );
    s
}

/// A progress counter on stderr (shown only when stderr is a terminal and the run lasts).
pub(crate) fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} frames  {per_sec}  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(s, "    {:04x}:", i * 16);
        for b in chunk {
            let _ = write!(s, " {b:02x}");
        }
        s.push('\n');
    }
    s
}

fn get(graph: &mut Graph, pin: PinId, id: u32) -> (Result<usize, Status>, Vec<u8>) {
    let req = PropertyHeader::new(KSPROPSETID_Connection, id, KSPROPERTY_TYPE_GET).to_bytes();
    // Size probe first (zero-length buffer), as a KS client does for a variable-size value.
    let mut empty = [0u8; 0];
    let size = match graph.pin_property(pin, &req, &mut empty) {
        Err(Status::BufferOverflow { required }) => required,
        Err(Status::BufferTooSmall { required, .. }) => required,
        Ok(n) => n,
        Err(e) => return (Err(e), Vec::new()),
    };
    let mut buf = vec![0u8; size];
    let r = graph.pin_property(pin, &req, &mut buf);
    if let Ok(n) = r {
        buf.truncate(n);
    }
    (r, buf)
}

fn describe_ex(fx: &FramingEx) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "    CountItems {}, PinFlags {:#x}, OutputCompression {}/{} (margin {}), PinWeight {}",
        fx.items.len(),
        fx.pin_flags,
        fx.output_compression.numerator,
        fx.output_compression.denominator,
        fx.output_compression.margin,
        fx.pin_weight
    );
    for (i, it) in fx.items.iter().enumerate() {
        let _ = writeln!(s, "    item {i}:");
        let _ = writeln!(s, "      MemoryType        {}", it.memory_type);
        let _ = writeln!(
            s,
            "      BusType           {}",
            it.bus_type.name().unwrap_or("(other)")
        );
        let _ = writeln!(s, "      MemoryFlags       {:#x}", it.memory_flags);
        let _ = writeln!(s, "      BusFlags          {:#x}", it.bus_flags);
        let _ = writeln!(s, "      Flags             {:?}", it.flags);
        let _ = writeln!(s, "      Frames            {}", it.frames);
        let _ = writeln!(
            s,
            "      FileAlignment     {:#x} ({} bytes)",
            it.alignment.mask(),
            it.alignment.bytes()
        );
        let _ = writeln!(s, "      MemoryTypeWeight  {}", it.memory_type_weight);
        for (name, r) in [
            ("PhysicalRange", it.physical_range),
            ("FramingRange", it.framing_range),
        ] {
            let _ = writeln!(
                s,
                "      {name:<17} min {} max {} stepping {}",
                r.min, r.max, r.stepping
            );
        }
        let _ = writeln!(s, "      InPlaceWeight     {}", it.in_place_weight);
        let _ = writeln!(s, "      NotInPlaceWeight  {}", it.not_in_place_weight);
    }
    s
}

fn describe_old(f: &Framing) -> String {
    format!(
        "    OptionsFlags/RequirementsFlags {:#x}, PoolType {}, Frames {}, FrameSize {}, FileAlignment {:#x} ({} bytes)\n",
        f.flags,
        f.pool_type,
        f.frames,
        f.frame_size,
        f.alignment.mask(),
        f.alignment.bytes()
    )
}

/// What a KS client reads from the pin's framing properties.
pub(crate) fn props_text(graph: &mut Graph, pin: PinId, name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "pin {name}");
    for (label, id) in [
        (
            "KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX",
            KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
        ),
        (
            "KSPROPERTY_CONNECTION_ALLOCATORFRAMING",
            KSPROPERTY_CONNECTION_ALLOCATORFRAMING,
        ),
    ] {
        let (r, bytes) = get(graph, pin, id);
        match r {
            Err(e) => {
                let _ = writeln!(s, "{label} (GET): {e}");
            }
            Ok(n) => {
                let _ = writeln!(s, "{label} (GET): {n} bytes");
                s.push_str(&hex(&bytes));
                let decoded = if id == KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX {
                    FramingEx::from_bytes(&bytes).map(|fx| describe_ex(&fx))
                } else {
                    Framing::from_bytes(&bytes).map(|f| describe_old(&f))
                };
                match decoded {
                    Ok(d) => {
                        s.push_str("  decoded:\n");
                        s.push_str(&d);
                    }
                    Err(e) => {
                        let _ = writeln!(s, "  cannot decode: {e}");
                    }
                }
            }
        }
    }
    s
}
