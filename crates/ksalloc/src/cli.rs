//! Command-line definitions (clap derive) and dispatch.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ks_alloc::{Memory, MemoryType, RequirementFlags, Status};
use ks_graph::filters;
use ks_graph::runtime::{self, RunError, RunOptions};
use ks_graph::{AllocationPlan, AllocatorKind, Graph, MemoryKind, PinId, StateError};

use crate::{Failure, Result, bench, input, output, report};

const AFTER_HELP: &str = "\
GRAPH is a TOML file (see examples/graphs/) or a pipeline string:
  ksalloc run \"testsrc frames=1000 size=4096 ! invert ! nullsink\"
  ksalloc plan examples/graphs/default.toml --dot | dot -Tsvg > plan.svg
An existing file is read as TOML, and so is a single word (no '!', no white space) ending
in .toml or holding a '/'; anything else is a pipeline string.

Exit codes: 0 success, 1 the graph cannot be negotiated or run, 2 bad input.";

/// Run, plan, inspect and benchmark Kernel Streaming allocator graphs.
#[derive(Debug, Parser)]
#[command(name = "ksalloc", version, about, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Negotiate a graph, stream it to the end, and report throughput and allocator status.
    ///
    /// Without GRAPH, runs the embedded default graph: two pipes, an in-place filter, a tee,
    /// and a vendor allocator chosen on one pipe and refused on the other.
    #[command(after_long_help = filter_help())]
    Run(RunArgs),
    /// Show the allocation plan: pipes, pins, merged framing, the chosen allocator and why
    /// every other candidate was refused.
    Plan(PlanArgs),
    /// Show what a KS client reads from a pin's framing properties: the bytes and their
    /// decoded form.
    Props(PropsArgs),
    /// Measure the allocator on this machine: function-table and async allocate+free,
    /// two threads on one allocator (thread caches on), hand-off latency.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// A TOML file or a pipeline string (default: the embedded default graph).
    graph: Option<String>,
    /// Print one JSON document (plan and report) instead of text.
    #[arg(long)]
    json: bool,
    /// Stop after this many seconds even if the stream has not ended.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    until: Option<f64>,
    /// Do not print the plan before streaming.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// A TOML file or a pipeline string (default: the embedded default graph).
    graph: Option<String>,
    /// Print the plan as JSON.
    #[arg(long, conflicts_with = "dot")]
    json: bool,
    /// Draw filters, pins, pipes and each pipe's allocator as Graphviz DOT.
    #[arg(long)]
    dot: bool,
}

#[derive(Debug, Args)]
struct PropsArgs {
    /// A TOML file or a pipeline string.
    graph: String,
    /// The pin, as FILTER.PIN (e.g. src.out; pin names hold no dot, so `cam.front.out` is
    /// pin `out` of filter `cam.front`).
    pin: String,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Bytes per frame.
    #[arg(long, default_value_t = 4096)]
    frame_size: u32,
    /// Frames in the allocator (at most 65535); with --fill-invert-loop, how many times the
    /// loop fills and inverts its buffer.
    #[arg(long, default_value_t = 64)]
    frames: u32,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
    /// Instead of the allocator benchmarks, time the data-path baseline: a plain
    /// single-thread loop filling one FRAME_SIZE buffer with testsrc's pattern and inverting
    /// it, FRAMES times (compare with `ksalloc run "testsrc size=N frames=M ! invert !
    /// nullsink"`).
    #[arg(long)]
    fill_invert_loop: bool,
}

fn filter_help() -> String {
    let mut s = String::from("Filter types (properties: default):\n");
    for t in filters::registry() {
        s.push_str(&format!("  {:<10} {}\n", t.name, t.summary));
        s.push_str(&format!("             pins: {}\n", t.pins));
        for p in t.properties {
            let d = if p.default.is_empty() {
                "required"
            } else {
                p.default
            };
            s.push_str(&format!("             {}={d}  {}\n", p.name, p.doc));
        }
    }
    s.push_str("  every filter: mode=kernel|user, PIN.frames=, PIN.frame_size=, PIN.min_size=,\n");
    s.push_str(
        "  PIN.max_size=, PIN.alignment=, PIN.memory=any|system|user|paged|nonpaged|device\n\n",
    );
    s.push_str(AFTER_HELP);
    s
}

pub(crate) fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(a) => run(a),
        Command::Plan(a) => plan(a),
        Command::Props(a) => props(a),
        Command::Bench(a) => bench_cmd(a),
    }
}

fn state_failure(e: StateError) -> Failure {
    match e {
        // A graph that is invalid for streaming is bad input.
        StateError::Graph(g) => Failure::Input(g.to_string()),
        other => Failure::Graph(other.to_string()),
    }
}

/// [`state_failure`] for a state change made while running a graph. When a pipe's default
/// allocator could not get its locked (non-paged) memory — the memory kernel pipes get
/// unless a pin asks for another, limited by `RLIMIT_MEMLOCK` — the message ends with the
/// pipe's hint from [`paged_memory_hints`], if it has one: how to ask for pageable memory in
/// the graph, since the allocator's own message can only name the library's `Memory::Paged`.
fn run_state_failure(e: StateError, hints: &[Option<String>]) -> Failure {
    let hint = match &e {
        // Only when locking failed: when the mapping itself failed, pageable memory would
        // fail the same way.
        StateError::Allocator {
            pipe,
            status: Status::InsufficientResources(m),
            ..
        } if m.contains("RLIMIT_MEMLOCK") => hints.get(*pipe).cloned().flatten(),
        _ => None,
    };
    match (state_failure(e), hint) {
        (Failure::Graph(m), Some(hint)) => Failure::Graph(format!("{m}; {hint}")),
        (failure, _) => failure,
    }
}

/// For each pipe of `plan`, how to give it pageable memory (see [`paged_memory_hint`]), when
/// its default allocator has non-paged memory and following the hint would change that: the
/// hint asks for paged memory on the allocator's pin, and paged is met by non-paged, so a
/// hard requirement of non-paged memory on another pin of the pipe keeps its memory locked.
fn paged_memory_hints(graph: &Graph, plan: &AllocationPlan) -> Vec<Option<String>> {
    plan.pipes
        .iter()
        .map(|p| {
            if p.allocator.kind != AllocatorKind::Default
                || p.allocator.memory != MemoryKind::NonPaged
            {
                return None;
            }
            let nonpaged_elsewhere = p.framing.required_memory == MemoryType::KERNEL_NONPAGED
                && p.pin_ids.iter().zip(&p.items).any(|(&pin, item)| {
                    pin != p.allocator.pin_id
                        && item
                            .and_then(|i| graph.pin_framing(pin)?.items.get(i))
                            .is_some_and(|it| {
                                // KERNEL_NONPAGED or SYSTEM, both non-paged.
                                Memory::from_memory_type(it.memory_type) == Ok(Memory::NonPaged)
                                    && !it
                                        .flags
                                        .requirements()
                                        .contains(RequirementFlags::PREFERENCES_ONLY)
                            })
                });
            (!nonpaged_elsewhere).then(|| paged_memory_hint(&p.allocator.pin))
        })
        .collect()
}

/// How to give pin `pin` (`"filter.pin"`) pageable memory, in both graph forms.
fn paged_memory_hint(pin: &str) -> String {
    // Pin names have no '.', instance names of a TOML graph may: the last one splits.
    let (filter, pin) = pin.rsplit_once('.').unwrap_or((pin, "out"));
    format!(
        "hint: for pageable memory, add {pin}.memory=paged to filter \
         '{filter}' (in a TOML graph: memory = \"paged\" under [filter.framing.{pin}])"
    )
}

fn run(a: RunArgs) -> Result<()> {
    let until = match a.until {
        Some(s) => match Duration::try_from_secs_f64(s) {
            Ok(d) if !d.is_zero() => Some(d),
            _ => {
                return Err(Failure::Input(format!(
                    "--until {s:?} is invalid; it must be a number of seconds from 0.000000001 \
                     (1 ns) to {}",
                    u64::MAX
                )));
            }
        },
        None => None,
    };
    let mut built = input::load(a.graph.as_deref())?.build()?;
    let plan = runtime::fit_frame_sizes(&mut built.graph).map_err(state_failure)?;
    let mut out = output::Out::new();
    if !a.json && !a.quiet {
        out.write(&report::plan_text(&built.graph, &plan))?;
        out.write("\nstreaming …\n")?;
        out.flush()?;
    }
    let progress = if std::io::stderr().is_terminal() && !a.json {
        Some(report::progress_bar())
    } else {
        None
    };
    let options = RunOptions {
        until,
        progress: progress.clone().map(|bar| {
            Box::new(move |n: u64| bar.set_position(n)) as Box<dyn Fn(u64) + Send + Sync>
        }),
    };
    let hints = paged_memory_hints(&built.graph, &plan);
    let runtime = built
        .into_runtime()
        .map_err(|e| Failure::Graph(e.to_string()))?;
    let outcome = runtime.run(&options).map_err(|e| match e {
        RunError::State(s) => run_state_failure(s, &hints),
        other => Failure::Graph(other.to_string()),
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let outcome = outcome?;
    if a.json {
        let mut report = serde_json::to_value(&outcome.report).unwrap_or_default();
        if let Some(r) = report.as_object_mut() {
            // The rates the text report prints, derived from frames, bytes and elapsed.
            r.insert(
                "frames_per_sec".into(),
                outcome.report.frames_per_sec().into(),
            );
            r.insert("mb_per_sec".into(), outcome.report.mb_per_sec().into());
            // 64-bit checksums exceed what JSON tools built on doubles (jq, JavaScript) hold
            // exactly: give each also as the 16-digit hex string the text report prints.
            if let Some(filters) = r.get_mut("filters").and_then(|f| f.as_array_mut()) {
                for f in filters.iter_mut().filter_map(|f| f.as_object_mut()) {
                    if let Some(sum) = f.get("checksum").and_then(|c| c.as_u64()) {
                        f.insert("checksum_hex".into(), format!("{sum:016x}").into());
                    }
                }
            }
        }
        let doc = serde_json::json!({ "plan": outcome.plan, "report": report });
        out.write(&serde_json::to_string_pretty(&doc).unwrap_or_default())?;
        out.write("\n")?;
    } else {
        out.write(&report::run_text(&outcome.report))?;
    }
    out.flush()
}

fn plan(a: PlanArgs) -> Result<()> {
    let mut built = input::load(a.graph.as_deref())?.build()?;
    let plan = runtime::fit_frame_sizes(&mut built.graph).map_err(state_failure)?;
    let mut out = output::Out::new();
    if a.json {
        out.write(&plan.to_json())?;
        out.write("\n")?;
    } else if a.dot {
        out.write(&report::plan_dot(&built.graph, &plan))?;
    } else {
        out.write(&report::plan_text(&built.graph, &plan))?;
    }
    out.flush()
}

fn props(a: PropsArgs) -> Result<()> {
    let mut built = input::load(Some(&a.graph))?.build()?;
    let pin = find_pin(&built.graph, &a.pin)?;
    let text = report::props_text(&mut built.graph, pin, &a.pin);
    let mut out = output::Out::new();
    out.write(&text)?;
    out.flush()
}

/// The pin `text` names, as `FILTER.PIN`. Pin names hold no dot, instance names of a TOML
/// graph may: when the last dot does not split `text` into a filter and one of its pins, the
/// error is about the longest filter name `text` starts with (the whole of it, or followed
/// by a dot), and lists that filter's pins, or, when no name fits, the graph's filters.
fn find_pin(graph: &Graph, text: &str) -> Result<PinId> {
    if let Ok(pin) = graph.pin(text) {
        return Ok(pin);
    }
    // The whole of `text`, then each prefix before a dot, longest first.
    let longest = std::iter::once(text)
        .chain(text.rmatch_indices('.').map(|(i, _)| &text[..i]))
        .find_map(|name| graph.filter(name).ok());
    let message = match longest {
        Some(f) => {
            let name = graph.filter_name(f);
            let pins = graph
                .pins(f)
                .map(|p| graph.pin_name(p))
                .collect::<Vec<_>>()
                .join(", ");
            let pins = if pins.is_empty() {
                "none".to_owned()
            } else {
                pins
            };
            match text[name.len()..].strip_prefix('.') {
                Some(pin) => format!("filter '{name}' has no pin named '{pin}'; its pins: {pins}"),
                None => format!("'{name}' is a filter, not a pin; its pins: {pins}"),
            }
        }
        None => {
            let name = text.rsplit_once('.').map_or(text, |(f, _)| f);
            let names = graph
                .filter_ids()
                .map(|f| graph.filter_name(f))
                .collect::<Vec<_>>()
                .join(", ");
            format!("no filter named '{name}'; filters: {names}")
        }
    };
    Err(Failure::Input(format!(
        "{message} (give the pin as FILTER.PIN)"
    )))
}

fn bench_cmd(a: BenchArgs) -> Result<()> {
    if a.frame_size == 0 || a.frames == 0 {
        return Err(Failure::Input(format!(
            "--frame-size {} --frames {}: both must be at least 1",
            a.frame_size, a.frames
        )));
    }
    let mut out = output::Out::new();
    if a.fill_invert_loop {
        let mbs = bench::fill_invert_loop(a.frame_size, a.frames).map_err(Failure::Graph)?;
        if a.json {
            out.write(&format!(
                "{{\"frame_size\":{},\"frames\":{},\"results\":[{{\"name\":\"fill_invert_loop\",\"mb_per_s\":{mbs:.1}}}]}}\n",
                a.frame_size, a.frames
            ))?;
        } else {
            out.write(&format!(
                "fill+invert loop: {} frames of {} bytes: {mbs:.1} MB/s\n",
                a.frames, a.frame_size
            ))?;
        }
        return out.flush();
    }
    // Only here is FRAMES the size of an allocator (in the loop above it counts iterations).
    if a.frames > ks_alloc::MAX_FRAMES {
        return Err(Failure::Input(format!(
            "--frames {}: an allocator holds at most {} frames",
            a.frames,
            ks_alloc::MAX_FRAMES
        )));
    }
    let results = bench::run(a.frame_size, a.frames).map_err(|s| Failure::Graph(s.to_string()))?;
    if a.json {
        out.write(&bench::json(a.frame_size, a.frames, &results))?;
        out.write("\n")?;
    } else {
        out.write(&bench::text(a.frame_size, a.frames, &results))?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of `pipeline`, and its allocator failing as `mlock` past `RLIMIT_MEMLOCK` does.
    fn failing(pipeline: &str, status: Status) -> Failure {
        let mut built = input::load(Some(pipeline))
            .and_then(input::Loaded::build)
            .expect("the graph builds");
        let plan = runtime::fit_frame_sizes(&mut built.graph).expect("the graph negotiates");
        let e = StateError::Allocator {
            pipe: 0,
            allocator: "default".into(),
            status,
        };
        run_state_failure(e, &paged_memory_hints(&built.graph, &plan))
    }

    fn memlock() -> Status {
        Status::InsufficientResources(
            "cannot lock 6291456 bytes of non-paged frame memory: mlock failed; \
             RLIMIT_MEMLOCK is 65536 bytes"
                .into(),
        )
    }

    #[test]
    fn locked_memory_failures_name_the_graph_property_for_paged_memory() {
        let Failure::Graph(m) = failing("testsrc name=src ! nullsink", memlock()) else {
            panic!("not a graph failure")
        };
        assert!(m.contains("RLIMIT_MEMLOCK"), "{m}");
        assert!(
            m.ends_with(
                "hint: for pageable memory, add out.memory=paged to \
                 filter 'src' (in a TOML graph: memory = \"paged\" under [filter.framing.out])"
            ),
            "{m}"
        );
    }

    #[test]
    fn other_allocator_failures_get_no_paged_memory_hint() {
        // The pipe already is pageable: nothing to suggest.
        let Failure::Graph(m) = failing("testsrc out.memory=paged ! nullsink", memlock()) else {
            panic!("not a graph failure")
        };
        assert!(!m.contains("hint"), "{m}");
        // Another status than a lack of resources.
        let other = Status::Unsuccessful("the vendor said no".into());
        let Failure::Graph(m) = failing("testsrc ! nullsink", other) else {
            panic!("not a graph failure")
        };
        assert!(!m.contains("hint"), "{m}");
    }

    #[test]
    fn the_paged_memory_hint_is_given_only_where_following_it_changes_the_memory() {
        let hinted = |pipeline: &str| match failing(pipeline, memlock()) {
            Failure::Graph(m) => m.contains("hint: for pageable memory"),
            other => panic!("{pipeline}: not a graph failure: {other:?}"),
        };
        // Another pin requires non-paged memory: paged on the source's pin is met by it, so
        // the pipe stays non-paged, before and after the hint was followed.
        assert!(!hinted("testsrc name=src ! nullsink in.memory=nonpaged"));
        assert!(!hinted(
            "testsrc name=src out.memory=paged ! nullsink in.memory=nonpaged"
        ));
        assert!(!hinted(
            "testsrc name=src ! identity in.memory=nonpaged ! nullsink"
        ));
        // SYSTEM memory is non-paged memory as well.
        assert!(!hinted("testsrc name=src ! nullsink in.memory=system"));
        // Only the hint's own pin asks for non-paged memory: following the hint replaces it.
        assert!(hinted("testsrc name=src out.memory=nonpaged ! nullsink"));
        // Other pins that require nothing do not stand in the way.
        assert!(hinted("testsrc name=src ! identity ! nullsink"));
    }
}
