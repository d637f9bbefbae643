//! The built `ksalloc` binary, end to end: runs, plans, properties, bench, and every kind of
//! bad input with its exit code and its one-line message.

use std::path::PathBuf;
use std::process::{Command, Output};

use ks_graph::filters::{FNV_OFFSET, fnv1a64};
use serde_json::Value;

fn ksalloc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ksalloc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn checksum_of(report: &Value) -> u64 {
    let sums: Vec<u64> = report["filters"]
        .as_array()
        .expect("filters")
        .iter()
        .filter_map(|f| f["checksum"].as_u64())
        .collect();
    assert_eq!(sums.len(), 1, "exactly one checksum filter: {report}");
    // The hex form carries the same value, exactly, for tools that read numbers as doubles.
    let hex: Vec<&str> = report["filters"]
        .as_array()
        .expect("filters")
        .iter()
        .filter_map(|f| f["checksum_hex"].as_str())
        .collect();
    assert_eq!(
        hex,
        [format!("{:016x}", sums[0])],
        "checksum_hex in {report}"
    );
    sums[0]
}

fn run_json(graph: &str) -> Value {
    let o = if graph.is_empty() {
        ksalloc(&["run", "--json"])
    } else {
        ksalloc(&["run", graph, "--json"])
    };
    assert!(o.status.success(), "run {graph} failed: {}", stderr(&o));
    let doc = json(&o);
    assert_eq!(doc["report"]["completed"], true);
    assert_eq!(doc["report"]["all_frames_returned"], true);
    // The rates are the counts over the elapsed time, as in the text report.
    let r = &doc["report"];
    let (frames, bytes, elapsed) = (
        r["frames"].as_f64().unwrap_or(-1.0),
        r["bytes"].as_f64().unwrap_or(-1.0),
        r["elapsed"].as_f64().unwrap_or(-1.0),
    );
    assert!(frames > 0.0 && elapsed > 0.0, "report: {r}");
    let fps = r["frames_per_sec"].as_f64().unwrap_or(-1.0);
    let mbs = r["mb_per_sec"].as_f64().unwrap_or(-1.0);
    assert!(
        (fps - frames / elapsed).abs() <= 1e-6 * fps,
        "frames_per_sec in {r}"
    );
    assert!(
        (mbs - bytes / elapsed / 1e6).abs() <= 1e-6 * mbs.max(1.0),
        "mb_per_sec in {r}"
    );
    doc
}

/// FNV-1a 64 of `testsrc frames=F size=S` (ramp pattern), optionally inverted.
fn ramp_checksum(frames: u64, size: usize, inverted: bool) -> u64 {
    let mut h = FNV_OFFSET;
    let mut buf = vec![0u8; size];
    for n in 0..frames {
        for (i, b) in buf.iter_mut().enumerate() {
            let v = (n as usize + i) as u8;
            *b = if inverted { !v } else { v };
        }
        h = fnv1a64(h, &buf);
    }
    h
}

/// Asserts a failure: exit code, a single stderr line with the `ksalloc: error:` prefix
/// containing every `needle`, nothing on stdout, no panic.
fn assert_fails(args: &[&str], code: i32, needles: &[&str]) {
    let o = ksalloc(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line expected: {err}");
    assert!(err.starts_with("ksalloc: error: "), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{n}' missing in: {err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(stdout(&o).is_empty(), "{args:?}: stdout: {}", stdout(&o));
}

fn temp(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ksalloc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, content).expect("temp file");
    p
}

#[test]
fn default_run_succeeds_with_a_stable_checksum() {
    let o = ksalloc(&["run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for part in [
        "pipe 0",
        "pipe 1",
        "frames/s",
        "MB/s",
        "peak",
        "hand-offs",
        "checksum",
        "vendor",
    ] {
        assert!(text.contains(part), "'{part}' missing:\n{text}");
    }
    let a = run_json("");
    let b = run_json("");
    let (ca, cb) = (checksum_of(&a["report"]), checksum_of(&b["report"]));
    assert_eq!(ca, cb, "the default run's checksum is stable");
    // testsrc frames=20000 size=4096, inverted once on the way to the checksum.
    assert_eq!(ca, ramp_checksum(20_000, 4096, true));
    assert_eq!(a["report"]["frames"], 20_000);
    for p in a["report"]["pipes"].as_array().expect("pipes") {
        assert_eq!(p["allocated"], 0, "every frame returned: {p}");
    }
}

#[test]
fn invert_twice_returns_the_source_checksum_and_copy_preserves_it() {
    let src = run_json("testsrc frames=500 size=1500 ! checksum ! nullsink");
    let twice = run_json("testsrc frames=500 size=1500 ! invert ! invert ! checksum ! nullsink");
    let copied = run_json("testsrc frames=500 size=1500 ! copy ! checksum ! nullsink");
    let c = checksum_of(&src["report"]);
    assert_eq!(c, ramp_checksum(500, 1500, false));
    assert_eq!(checksum_of(&twice["report"]), c);
    assert_eq!(checksum_of(&copied["report"]), c);
    assert_eq!(copied["plan"]["pipes"].as_array().map(Vec::len), Some(2));
}

#[test]
fn an_empty_input_file_reports_no_frames_and_ends_cleanly() {
    let empty = temp("empty.bin", "");
    let graph = format!(
        "filesrc location={} size=1024 ! checksum ! nullsink",
        empty.display()
    );
    let o = ksalloc(&["run", "--json", &graph]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = &json(&o)["report"];
    // The end of the stream travels in an empty frame, which carries no data and counts as
    // no frame.
    assert_eq!(
        (r["frames"].as_u64(), r["bytes"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(r["completed"], true, "{r}");
    assert_eq!(r["all_frames_returned"], true, "{r}");
    assert_eq!(checksum_of(r), FNV_OFFSET, "the checksum of no data");
    for f in r["filters"].as_array().expect("filters") {
        assert_eq!(f["frames"], 0, "{f}");
    }
}

#[test]
fn plan_json_of_the_default_graph_shows_the_vendor_chosen_and_refused() {
    let o = ksalloc(&["plan", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plan = json(&o);
    let keys: Vec<&String> = plan.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["pipes"], "the documented shape, no internal ids");
    let pipes = plan["pipes"].as_array().expect("pipes");
    assert!(pipes.len() >= 2);
    let chosen = pipes
        .iter()
        .find(|p| p["allocator"]["kind"] == "vendor")
        .expect("a pipe with the vendor allocator");
    assert!(chosen["framing"]["frames"].as_u64().unwrap_or(0) > 0);
    assert!(chosen["framing"]["frame_size"].as_u64().unwrap_or(0) >= 4096);
    assert_eq!(chosen["framing"]["alignment"], 1, "alignment in bytes");
    let refused = pipes
        .iter()
        .flat_map(|p| p["rejected"].as_array().into_iter().flatten())
        .find(|r| r["kind"] == "vendor")
        .expect("a refused vendor");
    let reason = refused["reason"].as_str().unwrap_or("");
    assert!(reason.contains("user-mode"), "{reason}");
    for p in pipes {
        assert!(p["pins"].as_array().is_some_and(|v| !v.is_empty()));
        assert!(p["allocator"]["name"].is_string() && p["allocator"]["memory"].is_string());
    }
}

#[test]
fn plan_text_and_dot() {
    let o = ksalloc(&["plan"]);
    assert!(o.status.success());
    let t = stdout(&o);
    assert!(
        t.contains("not chosen: vendor 'dma2'") && t.contains("user-mode"),
        "{t}"
    );
    let o = ksalloc(&["plan", "../../examples/graphs/default.toml", "--dot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = stdout(&o);
    assert!(d.starts_with("digraph"));
    for part in [
        "cluster_",
        "\"src.out\" -> \"dma.in\"",
        "pipe0",
        "pipe1",
        "cylinder",
        "KSMEMORY_TYPE_USER",
    ] {
        assert!(d.contains(part), "'{part}' missing:\n{d}");
    }
}

#[test]
fn props_shows_the_bytes_and_their_decoded_form() {
    let o = ksalloc(&["props", "testsrc size=4096 ! nullsink", "testsrc.out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = stdout(&o);
    assert!(
        t.contains("KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX (GET): 112 bytes"),
        "{t}"
    );
    assert!(t.contains("0000: 01 00 00 00"), "CountItems 1 first: {t}");
    assert!(t.contains("FramingRange      min 4096 max 4096"), "{t}");
    assert!(
        t.contains("KSPROPERTY_CONNECTION_ALLOCATORFRAMING (GET): 24 bytes"),
        "{t}"
    );
    assert_fails(
        &["props", "testsrc ! nullsink", "testsrc.nope"],
        2,
        &["nope"],
    );
}

#[test]
fn bench_json_reports_every_measurement() {
    let o = ksalloc(&["bench", "--json", "--frames", "8", "--frame-size", "512"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = json(&o);
    assert_eq!(doc["frame_size"], 512);
    assert_eq!(doc["frames"], 8);
    let names = |key: &str| -> Vec<String> {
        let rows = doc[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} in {doc}"));
        rows.iter()
            .filter_map(|r| r["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names("results"),
        [
            "fn_table_single",
            "async_ready",
            "two_threads",
            "handoff_thread",
            "handoff_async"
        ],
        "the five measurements of issue 5, in order"
    );
    assert_eq!(
        names("baselines"),
        ["mutex_vec_single", "handoff_condvar"],
        "the std baselines of the same run, apart from the results"
    );
    let rows = doc["results"].as_array().into_iter().flatten();
    for r in rows.chain(doc["baselines"].as_array().into_iter().flatten()) {
        if let Some(ns) = r.get("ns_per_op") {
            assert!(ns.as_f64().is_some_and(|x| x > 0.0), "{r}");
        } else {
            let (p50, p99) = (r["p50_us"].as_f64(), r["p99_us"].as_f64());
            assert!(p50.is_some_and(|x| x >= 0.0), "{r}");
            assert!(p50 <= p99, "p50 <= p99: {r}");
        }
    }
}

#[test]
fn bad_input_gives_one_line_and_exit_code_2() {
    assert_fails(
        &["run", "testsrc ! blur ! nullsink"],
        2,
        &["unknown filter type 'blur'", "known types"],
    );
    assert_fails(
        &["run", "testsrc sise=10 ! nullsink"],
        2,
        &["unknown property 'sise'", "size"],
    );
    assert_fails(
        &["run", "testsrc name=s ! nullsink name=n s.bogus ! n."],
        2,
        &["no pin 'bogus'", "out"],
    );
    assert_fails(
        &["plan", "testsrc ! nullsink in.alignment=3"],
        2,
        &["alignment 3", "power of two"],
    );
    assert_fails(&["plan", "testsrc frames=0 ! nullsink"], 2, &["frames=0"]);
    // A bad memory word names the pin it was given for and the words allowed.
    assert_fails(
        &["plan", "testsrc name=src out.memory=bogus ! nullsink"],
        2,
        &["pin 'src.out'", "memory 'bogus'", "paged", "nonpaged"],
    );
    assert_fails(&["run", "testsrc ! ! nullsink"], 2, &["'!'"]);
    assert_fails(
        &["plan", "/nonexistent/graph.toml"],
        2,
        &["cannot read graph file"],
    );
    assert_fails(
        &["run", "filesrc location=/nonexistent/input.bin ! nullsink"],
        2,
        &["cannot read '/nonexistent/input.bin'"],
    );
    let bad = temp(
        "bad.toml",
        "[[filter]]\nname = \"src\"\ntype = \"testsrc\"\nsize = = 4\n",
    );
    let bad = bad.to_string_lossy().into_owned();
    assert_fails(&["plan", &bad], 2, &[&format!("{bad}:4:")]);
    // A value of the wrong type for the filter: at its line and column, like a syntax error.
    let typed = temp(
        "typed.toml",
        "[[filter]]\nname = \"src\"\ntype = \"testsrc\"\nframes = \"four\"\n\n\
         [[filter]]\nname = \"sink\"\ntype = \"nullsink\"\n\n\
         [[connect]]\nfrom = \"src\"\nto = \"sink\"\n",
    );
    let typed = typed.to_string_lossy().into_owned();
    for cmd in ["plan", "run"] {
        assert_fails(
            &[cmd, &typed],
            2,
            &[&format!("{typed}:4:10: filter 'src'"), "frames=four"],
        );
    }
    // A framing setting of a pipeline names the filter, the setting and its column.
    assert_fails(
        &["plan", "testsrc out.frames=abc ! nullsink"],
        2,
        &[
            "filter 'testsrc'",
            "'out.frames=abc' at column 9",
            "'frames'",
        ],
    );
    // A dotted instance name keeps the position of a bad framing value.
    let dotted = temp(
        "dotted.toml",
        "[[filter]]\nname = \"cam.a\"\ntype = \"testsrc\"\n\n[filter.framing.out]\nframes = 0\n\n\
         [[filter]]\nname = \"sink\"\ntype = \"nullsink\"\n\n\
         [[connect]]\nfrom = \"cam.a\"\nto = \"sink\"\n",
    );
    let dotted = dotted.to_string_lossy().into_owned();
    assert_fails(
        &["plan", &dotted],
        2,
        &[&format!("{dotted}:6:10: pin 'cam.a.out'"), "frames is 0"],
    );
    let unknown_key = temp(
        "key.toml",
        "[[filter]]\nname = \"a\"\ntype = \"testsrc\"\n\n[[connect]]\nfrom = \"a\"\ntoo = \"b\"\n",
    );
    assert_fails(
        &["plan", &unknown_key.to_string_lossy()],
        2,
        &[":7:", "too"],
    );
    assert_fails(&["run", "testsrc"], 2, &[]);
    assert_fails(
        &["bench", "--frames", "70000"],
        2,
        &["--frames 70000", "65535"],
    );
    assert_fails(&["run", "--until=0", "testsrc ! nullsink"], 2, &["--until"]);
    // Beyond what a Duration holds: an input error, not a panic.
    assert_fails(
        &["run", "--until=1e20", "testsrc ! nullsink"],
        2,
        &["--until 1e20", "1 ns"],
    );
}

#[test]
fn usage_errors_say_what_is_missing_on_one_line() {
    assert_fails(&["props"], 2, &["not provided", "<GRAPH>", "<PIN>"]);
    assert_fails(&[], 2, &["no command given", "run, plan, props or bench"]);
    assert_fails(
        &["run", "--until", "-1", "testsrc ! nullsink"],
        2,
        &["--until -1.0 is invalid"],
    );
    // A dangling pipeline reference is an error, not ignored.
    assert_fails(
        &["plan", "testsrc ! nullsink zz.in"],
        2,
        &["reference 'zz.in' at column 20 links to nothing"],
    );
    // Control characters in a graph's names are escaped in the error line.
    let ctl = temp(
        "ctl.toml",
        "[[filter]]\nname = \"x\\u001b[31m\"\ntype = \"bogus\"\n",
    );
    assert_fails(&["plan", &ctl.to_string_lossy()], 2, &["x\\u{1b}[31m"]);
}

#[test]
fn pipeline_and_graph_file_edge_cases_mean_what_they_say() {
    // A key given twice is an error, not the last one winning.
    assert_fails(
        &["plan", "testsrc frames=5 size=4 frames=2 ! nullsink"],
        2,
        &["sets 'frames' twice"],
    );
    // An explicit pin written after a bare reference keeps its pin.
    let o = ksalloc(&[
        "plan",
        "testsrc ! tee name=t ! nullsink t.out0 ! checksum ! nullsink",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("t.out0, checksum.in"), "{}", stdout(&o));
    // An unknown reference names what was looked up.
    assert_fails(
        &[
            "plan",
            "testsrc ! tee name=t ! nullsink t.out1.x ! nullsink",
        ],
        2,
        &["no filter instance named 't.out1.x' or 't.out1'"],
    );
    // A dotted instance name that also reads as another filter's pin is refused.
    let amb = temp(
        "amb.toml",
        "[[filter]]\nname = \"t\"\ntype = \"tee\"\nbranches = 1\n\n\
         [[filter]]\nname = \"t.out0\"\ntype = \"testsrc\"\n\n\
         [[filter]]\nname = \"a\"\ntype = \"nullsink\"\n\n\
         [[filter]]\nname = \"src\"\ntype = \"testsrc\"\n\n\
         [[connect]]\nfrom = \"src\"\nto = \"t\"\n\n\
         [[connect]]\nfrom = \"t.out0\"\nto = \"a\"\n",
    );
    assert_fails(
        &["plan", &amb.to_string_lossy()],
        2,
        &["'t.out0' is ambiguous"],
    );
    // A graph file's pipeline names its elements around the file's own filters.
    let clash = temp(
        "clash.toml",
        "pipeline = \"testsrc frames=2 size=4 ! tee name=t ! nullsink\"\n\n\
         [[filter]]\nname = \"nullsink\"\ntype = \"nullsink\"\n\n\
         [[connect]]\nfrom = \"t\"\nto = \"nullsink\"\n",
    );
    let o = ksalloc(&["plan", &clash.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("nullsink_.in"), "{}", stdout(&o));
    // A quoted value is text, even when it reads as a number.
    let dir = temp("keep", "").parent().unwrap().to_path_buf();
    let o = Command::new(env!("CARGO_BIN_EXE_ksalloc"))
        .args([
            "run",
            "-q",
            "testsrc frames=1 size=4 ! filesink location=\"123\"",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(dir.join("123")).unwrap(), [0, 1, 2, 3]);
    assert_fails(
        &["plan", "testsrc ! filesink location=4k"],
        2,
        &["read as a number or a boolean", "location=\"...\""],
    );
}

#[test]
fn filesink_leaves_its_file_alone_until_frames_arrive() {
    let keep = temp("keep.bin", "precious");
    let sink = format!(
        "testsrc frames=2 size=4 ! filesink location={}",
        keep.display()
    );
    for cmd in [
        vec!["plan", sink.as_str()],
        vec!["props", sink.as_str(), "filesink.in"],
    ] {
        let o = ksalloc(&cmd);
        assert_eq!(o.status.code(), Some(0), "{cmd:?}: {}", stderr(&o));
        assert_eq!(
            std::fs::read(&keep).unwrap(),
            b"precious",
            "{cmd:?} truncated the file"
        );
    }
    // A graph refused before streaming leaves it alone too.
    let refused = format!("{sink} ! nullsink");
    assert_eq!(ksalloc(&["run", &refused]).status.code(), Some(2));
    assert_eq!(std::fs::read(&keep).unwrap(), b"precious");
    // Streaming writes it.
    assert!(ksalloc(&["run", "-q", &sink]).status.success());
    assert_eq!(std::fs::read(&keep).unwrap(), [0, 1, 2, 3, 1, 2, 3, 4]);
}

#[test]
fn filesrc_reads_a_pipe_until_its_end() {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksalloc"))
        .args([
            "run",
            "--json",
            "filesrc location=/dev/stdin size=4 ! nullsink",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"abcdefghij")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report = &json(&o)["report"];
    assert_eq!(report["bytes"], 10, "{report}");
    assert_eq!(report["frames"], 3, "4 + 4 + 2 bytes");
}

#[test]
fn a_huge_frame_size_plans_without_allocating_a_frame() {
    // testsrc's ramp no longer holds a whole frame (`ramp_pattern` is bounded: see its doc
    // test), so building the graph for a 4 GiB frame size allocates next to nothing.
    let o = ksalloc(&["plan", "testsrc size=4294967295 ! nullsink"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("4294967295 bytes"));
}

#[test]
fn unsatisfiable_negotiation_exits_with_1() {
    // More frames than one allocator holds: refused by the negotiation, for plan and run alike.
    for cmd in ["plan", "run"] {
        assert_fails(
            &[cmd, "testsrc out.frames=100000 ! nullsink"],
            1,
            &["frame count", "100002", "65535"],
        );
    }
    assert_fails(
        &["plan", "testsrc size=4096 ! nullsink in.max_size=100"],
        1,
        &["cannot be negotiated", "testsrc.out", "nullsink.in"],
    );
    assert_fails(
        &["run", "testsrc size=4096 ! nullsink in.max_size=100"],
        1,
        &["frame size"],
    );
}

#[test]
fn help_for_every_command() {
    for args in [
        vec!["-h"],
        vec!["--help"],
        vec!["run", "-h"],
        vec!["run", "--help"],
        vec!["plan", "-h"],
        vec!["plan", "--help"],
        vec!["props", "-h"],
        vec!["props", "--help"],
        vec!["bench", "-h"],
        vec!["bench", "--help"],
    ] {
        let o = ksalloc(&args);
        assert!(o.status.success(), "{args:?}");
        assert!(
            stdout(&o).contains("Usage: ksalloc"),
            "{args:?}: {}",
            stdout(&o)
        );
    }
    let long = stdout(&ksalloc(&["run", "--help"]));
    assert!(long.contains("testsrc") && long.contains("commonbuf") && long.contains("pattern"));
    // A usage error is one line and exit code 2, like any other bad input.
    assert_fails(&["frobnicate"], 2, &["frobnicate", "ksalloc --help"]);
    assert_fails(&["plan", "--json", "--dot"], 2, &["--dot"]);
    assert_fails(&["bench", "--frame-size", "-1"], 2, &["-1"]);
    assert_fails(&["props"], 2, &["required"]);
}

#[test]
fn a_filter_failing_while_running_exits_with_1() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let o = ksalloc(&[
        "run",
        "-q",
        "testsrc frames=100000 size=4096 ! filesink location=/dev/full",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("filesink") && err.contains("STATUS_UNSUCCESSFUL"),
        "{err}"
    );
}

/// Runs `ksalloc ARGS` with locked memory limited to 64 KiB (`ulimit -l 64`); a process that
/// may lock memory past any limit (`CAP_IPC_LOCK`, as root has) runs under `setpriv` without
/// that capability. `None` when this machine cannot impose the limit.
fn ksalloc_with_memlock_limit(args: &[&str]) -> Option<Output> {
    // CapEff is the effective capability mask in hex; CAP_IPC_LOCK is bit 14.
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
    let mut command = vec!["bash", "-c", "ulimit -l 64 && exec \"$@\"", "bash"];
    if cap_eff & (1 << 14) != 0 {
        let drop_cap = ["--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock", "--"];
        // setpriv may be missing, or not allowed to drop capabilities (no CAP_SETPCAP).
        let probe = Command::new("setpriv").args(drop_cap).arg("true").output();
        if !probe.is_ok_and(|o| o.status.success()) {
            return None;
        }
        command.push("setpriv");
        command.extend(drop_cap);
    }
    command.push(env!("CARGO_BIN_EXE_ksalloc"));
    command.extend(args);
    Command::new(command[0])
        .args(&command[1..])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
}

#[test]
fn locked_memory_past_the_limit_suggests_the_paged_memory_property() {
    // 6 frames of 1 MiB in non-paged (locked) memory, the default of a kernel pipe.
    let locked = ["run", "-q", "testsrc name=src frames=10 size=1M ! nullsink"];
    let Some(o) = ksalloc_with_memlock_limit(&locked) else {
        eprintln!("skipped: cannot limit locked memory here (CAP_IPC_LOCK and no setpriv)");
        return;
    };
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    for needle in [
        "RLIMIT_MEMLOCK",
        "add out.memory=paged to filter 'src'",
        "memory = \"paged\" under [filter.framing.out]",
    ] {
        assert!(err.contains(needle), "'{needle}' missing in: {err}");
    }
    // A dotted TOML instance name is named whole in the hint.
    let dotted = temp(
        "dotted-locked.toml",
        "[[filter]]\nname = \"cam.front\"\ntype = \"testsrc\"\nframes = 10\nsize = 1048576\n\n\
         [[filter]]\nname = \"sink\"\ntype = \"nullsink\"\n\n\
         [[connect]]\nfrom = \"cam.front\"\nto = \"sink\"\n",
    );
    let o = ksalloc_with_memlock_limit(&["run", "-q", &dotted.to_string_lossy()])
        .expect("the limit was imposed above");
    let err = stderr(&o);
    assert!(
        err.contains("add out.memory=paged to filter 'cam.front'"),
        "{err}"
    );
    // The suggestion works under the same limit.
    let paged = [
        "run",
        "-q",
        "testsrc name=src frames=10 size=1M out.memory=paged ! nullsink",
    ];
    let o = ksalloc_with_memlock_limit(&paged).expect("the limit was imposed above");
    assert!(o.status.success(), "{}", stderr(&o));
    // Not where another pin requires non-paged memory: the hint could not help there.
    let required = [
        "run",
        "-q",
        "testsrc name=src frames=10 size=1M out.memory=paged ! nullsink in.memory=nonpaged",
    ];
    let o = ksalloc_with_memlock_limit(&required).expect("the limit was imposed above");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("RLIMIT_MEMLOCK") && !err.contains("hint"),
        "{err}"
    );
}

#[test]
fn bench_needs_locked_memory_for_its_largest_allocator_not_for_all_of_them() {
    // 15 frames of 4 KiB (60 KiB) fit a 64 KiB limit; with the two one-frame allocators of
    // the hand-off rows locked beside them they would not (68 KiB).
    let fits = ["bench", "--json", "--frames", "15", "--frame-size", "4096"];
    let Some(o) = ksalloc_with_memlock_limit(&fits) else {
        eprintln!("skipped: cannot limit locked memory here (CAP_IPC_LOCK and no setpriv)");
        return;
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = json(&o);
    let rows = doc["results"].as_array().expect("results").len();
    assert_eq!(rows, 5, "{doc}");
    // An allocator past the limit on its own is still refused, and named.
    let o = ksalloc_with_memlock_limit(&["bench", "--frames", "17", "--frame-size", "4096"])
        .expect("the limit was imposed above");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("17 frames of 4096 bytes"), "{err}");
}

#[test]
fn bench_frames_is_a_loop_count_for_the_fill_invert_loop() {
    // No allocator is made: FRAMES may exceed what one holds.
    let o = ksalloc(&[
        "bench",
        "--json",
        "--fill-invert-loop",
        "--frames",
        "3000000",
        "--frame-size",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = json(&o);
    assert_eq!(doc["frames"], 3_000_000, "{doc}");
    assert_eq!(doc["results"][0]["name"], "fill_invert_loop", "{doc}");
    // Where it sizes an allocator, the allocator's limit applies.
    assert_fails(
        &["bench", "--frames", "3000000"],
        2,
        &["--frames 3000000", "at most 65535 frames"],
    );
}

#[test]
fn a_pipeline_that_mentions_a_toml_file_is_a_pipeline() {
    let dir = temp("keep", "").with_file_name("toml-out");
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ksalloc"))
        .args([
            "run",
            "-q",
            "testsrc frames=2 size=4 ! filesink location=out.toml",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(dir.join("out.toml")).unwrap(),
        [0, 1, 2, 3, 1, 2, 3, 4]
    );
    // A single word naming a missing file is still reported as an unreadable file.
    assert_fails(
        &["plan", "no-such-graph.toml"],
        2,
        &["cannot read graph file 'no-such-graph.toml'"],
    );
}

#[test]
fn props_names_the_pins_or_filters_there_are() {
    // An unknown pin of a known filter: the filter's pins.
    assert_fails(
        &["props", "testsrc ! nullsink", "testsrc.in"],
        2,
        &["filter 'testsrc' has no pin named 'in'; its pins: testsrc.out"],
    );
    // An unknown filter: the graph's filters.
    assert_fails(
        &["props", "testsrc ! nullsink", "foo.in"],
        2,
        &["no filter named 'foo'; filters: testsrc, nullsink"],
    );
    // Dotted instance names: the longest name that fits is the filter.
    let dotted = temp(
        "dotted-props.toml",
        "[[filter]]\nname = \"my\"\ntype = \"nullsink\"\n\n\
         [[filter]]\nname = \"my.src\"\ntype = \"testsrc\"\n\n\
         [[filter]]\nname = \"sink\"\ntype = \"nullsink\"\n\n\
         [[filter]]\nname = \"src\"\ntype = \"testsrc\"\n\n\
         [[connect]]\nfrom = \"my.src\"\nto = \"sink\"\n\n\
         [[connect]]\nfrom = \"src\"\nto = \"my\"\n",
    );
    let dotted = dotted.to_string_lossy();
    assert_fails(
        &["props", &dotted, "my.src"],
        2,
        &["'my.src' is a filter, not a pin; its pins: my.src.out"],
    );
    assert_fails(
        &["props", &dotted, "my.src.in"],
        2,
        &["filter 'my.src' has no pin named 'in'; its pins: my.src.out"],
    );
    assert_fails(
        &["props", &dotted, "my.sr"],
        2,
        &["filter 'my' has no pin named 'sr'; its pins: my.in"],
    );
    let o = ksalloc(&["props", &dotted, "my.src.out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("FramingRange"), "{}", stdout(&o));
}

#[test]
fn a_graph_file_piped_through_a_fifo_named_without_a_slash_is_read_as_a_file() {
    let Some(path) = fifo("graph-pipe") else {
        eprintln!("skipped: no mkfifo");
        return;
    };
    let dir = path.parent().expect("a directory").to_owned();
    let writer = std::thread::spawn({
        let path = path.clone();
        move || std::fs::write(path, "pipeline = \"testsrc frames=2 size=4 ! nullsink\"\n")
    });
    let plan = Command::new(env!("CARGO_BIN_EXE_ksalloc"))
        .args(["plan", "graph-pipe"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let o = wait_or_kill(plan, "plan of a graph file that is a FIFO");
    writer.join().expect("the writer").expect("written");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("testsrc"));
}

/// A FIFO in a fresh directory, or `None` where `mkfifo` is not available.
fn fifo(name: &str) -> Option<PathBuf> {
    let path = temp("keep", "").with_file_name(name);
    let _ = std::fs::remove_file(&path);
    let made = Command::new("mkfifo").arg(&path).status();
    made.is_ok_and(|s| s.success()).then_some(path)
}

/// Waits for `child` to exit; kills it and fails the test if it has not after a minute (a
/// guard against a hang only: no assertion on how long it took).
fn wait_or_kill(mut child: std::process::Child, what: &str) -> Output {
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child
        .try_wait()
        .expect("the child can be waited for")
        .is_none()
    {
        if std::time::Instant::now() > guard {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("its output")
}

#[test]
fn until_stops_a_filesrc_whose_writer_stays_silent() {
    let Some(path) = fifo("silent.fifo") else {
        eprintln!("skipped: no mkfifo");
        return;
    };
    let graph = format!("filesrc location={} size=4 ! nullsink", path.display());
    // Planning opens the file without waiting for a writer.
    let plan = Command::new(env!("CARGO_BIN_EXE_ksalloc"))
        .args(["plan", &graph])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let o = wait_or_kill(plan, "plan of a FIFO without a writer");
    assert!(o.status.success(), "{}", stderr(&o));
    // A writer (this test) that keeps the FIFO open and writes nothing.
    let writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("the FIFO opens");
    let run = Command::new(env!("CARGO_BIN_EXE_ksalloc"))
        .args(["run", "--json", "--until", "0.3", &graph])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let o = wait_or_kill(run, "a run stopped by --until while its source waits");
    drop(writer);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = &json(&o)["report"];
    assert_eq!(report["completed"], false, "{report}");
    assert_eq!(report["all_frames_returned"], true, "{report}");
    assert_eq!(
        (&report["frames"], &report["bytes"]),
        (&0.into(), &0.into())
    );
    // The elapsed time covers at least the time limit.
    assert!(
        report["elapsed"].as_f64().is_some_and(|s| s >= 0.3),
        "{report}"
    );
}

#[test]
fn filesrc_reads_a_fifo_whose_writer_pauses_mid_frame() {
    use std::io::Write as _;
    let Some(path) = fifo("pausing.fifo") else {
        eprintln!("skipped: no mkfifo");
        return;
    };
    let graph = format!(
        "filesrc location={} size=4 ! checksum ! nullsink",
        path.display()
    );
    let run = Command::new(env!("CARGO_BIN_EXE_ksalloc"))
        .args(["run", "--json", &graph])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // Pieces that end mid-frame, with pauses longer than the source's wait for data. The
    // open waits for the reader (so nothing is written before it is there); on a thread, so
    // that a run that never opens the FIFO fails the test below instead of hanging it.
    std::thread::spawn(move || {
        let mut writer = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("the FIFO opens");
        for piece in [&b"ab"[..], b"cdefg", b"hij"] {
            writer.write_all(piece).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    let o = wait_or_kill(run, "a run of a FIFO");
    assert!(o.status.success(), "{}", stderr(&o));
    let report = &json(&o)["report"];
    assert_eq!(report["completed"], true, "{report}");
    assert_eq!(report["bytes"], 10, "{report}");
    assert_eq!(report["frames"], 3, "4 + 4 + 2 bytes: {report}");
    assert_eq!(checksum_of(report), fnv1a64(FNV_OFFSET, b"abcdefghij"));
}
