//! Reading GRAPH arguments: a TOML file, a pipeline string, or the embedded default graph.

use std::ops::Range;

use ks_graph::filters::{self, Built};
use ks_graph::runtime::spec::{GraphSpec, SpecError, SpecLocation};

use crate::{Failure, Result};

/// The default graph of `ksalloc run` / `ksalloc plan` (examples/graphs/default.toml).
pub(crate) const DEFAULT_GRAPH: &str = include_str!("../../../examples/graphs/default.toml");

/// A GRAPH argument, read and parsed: the description and, for a TOML document, its text, so
/// that a value refused when the graph is built is reported at its line and column.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The description.
    spec: GraphSpec,
    /// The TOML document it came from: (name for messages, text).
    toml: Option<(String, String)>,
}

impl Loaded {
    /// Builds the graph. An error about one value of a TOML document (a property of the wrong
    /// kind or out of range, an unknown property, filter type or pin, a bad framing field)
    /// starts with `NAME:LINE:COLUMN:` of that value, like a TOML syntax error.
    pub(crate) fn build(self) -> Result<Built> {
        let Loaded { mut spec, toml } = self;
        if let Some((name, text)) = &toml {
            // The document's `pipeline` string, merged here (`filters::build` would do it too)
            // so that its own errors, which name a column of the string but no value of a
            // filter, start with the position of the string.
            spec.expand().map_err(|e| {
                let doc = toml_edit::ImDocument::parse(text.as_str()).ok();
                Failure::Input(match doc.and_then(|d| pipeline_span(d.as_item())) {
                    Some(span) => at(name, text, span.start, &e.message),
                    None => e.message,
                })
            })?;
        }
        filters::build(spec).map_err(|e| match &toml {
            Some((name, text)) => Failure::Input(located(e, name, text)),
            None => Failure::Input(e.message),
        })
    }
}

/// Loads GRAPH: `None` is the default graph; otherwise [`argument_kind`] tells a TOML
/// document from a pipeline string, and refuses a directory.
pub(crate) fn load(graph: Option<&str>) -> Result<Loaded> {
    let Some(arg) = graph else {
        return toml_document(DEFAULT_GRAPH.to_owned(), "<default graph>");
    };
    match argument_kind(arg) {
        ArgumentKind::Directory => Err(Failure::Input(format!(
            "cannot read graph file '{arg}': it is a directory"
        ))),
        ArgumentKind::File => {
            let text = std::fs::read_to_string(arg)
                .map_err(|e| Failure::Input(format!("cannot read graph file '{arg}': {e}")))?;
            toml_document(text, arg)
        }
        ArgumentKind::Pipeline => {
            let spec = GraphSpec::parse_pipeline(arg).map_err(|e| Failure::Input(e.message))?;
            Ok(Loaded { spec, toml: None })
        }
    }
}

/// What a GRAPH argument names (see [`argument_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgumentKind {
    /// An existing directory, which cannot be read as a graph.
    Directory,
    /// A TOML file.
    File,
    /// A pipeline string.
    Pipeline,
}

/// What GRAPH argument `arg` names, from one look at the file system: anything that exists
/// is a directory or else a file (a regular file, or a FIFO or device the graph is piped
/// through); otherwise a single word (no `!`, no white space) ending in `.toml` or holding a
/// `/` is taken for a file name, to be reported as unreadable; anything else is a pipeline
/// string (`… ! filesink location=out.toml` included).
fn argument_kind(arg: &str) -> ArgumentKind {
    match std::fs::metadata(arg) {
        Ok(m) if m.is_dir() => return ArgumentKind::Directory,
        Ok(_) => return ArgumentKind::File,
        Err(_) => {}
    }
    let one_word = !arg.contains('!') && !arg.contains(char::is_whitespace);
    if one_word && (arg.ends_with(".toml") || arg.contains('/')) {
        ArgumentKind::File
    } else {
        ArgumentKind::Pipeline
    }
}

fn toml_document(text: String, name: &str) -> Result<Loaded> {
    let spec = parse_toml(&text, name)?;
    Ok(Loaded {
        spec,
        toml: Some((name.to_owned(), text)),
    })
}

/// Parses a TOML graph; errors name the file, line and column.
pub(crate) fn parse_toml(text: &str, name: &str) -> Result<GraphSpec> {
    toml::from_str::<GraphSpec>(text).map_err(|e| {
        let msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        let offset = e.span().map_or(0, |s| s.start);
        Failure::Input(at(
            name,
            text,
            offset,
            &format!("invalid graph TOML: {msg}"),
        ))
    })
}

/// The message of `e`, prefixed with `name:line:column:` when it is about a value of the TOML
/// document `text` that can be found there. An error that names no value (two instances of
/// one name, a connection to a missing filter) is about the `pipeline` string when that is
/// all the document describes the graph with (no `[[filter]]`, no `[[connect]]` table): it
/// then starts with the string's position.
fn located(e: SpecError, name: &str, text: &str) -> String {
    let doc = toml_edit::ImDocument::parse(text).ok();
    let span = doc.as_ref().and_then(|doc| {
        let root = doc.as_item();
        match &e.location {
            Some(l) => span_of(root, l),
            None if root.get("filter").is_none() && root.get("connect").is_none() => {
                pipeline_span(root)
            }
            None => None,
        }
    });
    match span {
        Some(span) => at(name, text, span.start, &e.message),
        None => e.message,
    }
}

/// `message`, prefixed with `name:line:column:` of byte offset `offset` of `text`.
fn at(name: &str, text: &str, offset: usize, message: &str) -> String {
    let (line, col) = line_col(text, offset);
    format!("{name}:{line}:{col}: {message}")
}

/// Byte range of the value of the `pipeline` key of the document `root`.
fn pipeline_span(root: &toml_edit::Item) -> Option<Range<usize>> {
    root.get("pipeline")?.span()
}

/// Byte range of the value at `location` in the TOML document `root`: the value under the
/// location's keys in the `[[filter]]` table of that name. A filter that no `[[filter]]`
/// table declares came from the document's `pipeline` string: its range then.
fn span_of(root: &toml_edit::Item, location: &SpecLocation) -> Option<Range<usize>> {
    let declared = root.get("filter").and_then(|filters| {
        (0..)
            .map_while(|i| filters.get(i))
            .find(|f| f.get("name").and_then(|n| n.as_str()) == Some(location.filter.as_str()))
    });
    match declared {
        Some(table) => location
            .keys
            .iter()
            .try_fold(table, |item, key| item.get(key.as_str()))?
            .span(),
        None => pipeline_span(root),
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_graph_parses() {
        let loaded = load(None).unwrap();
        assert!(loaded.spec.filters.len() >= 8);
        assert!(loaded.build().is_ok());
    }

    #[test]
    fn toml_errors_have_line_and_column() {
        let err = parse_toml("[[filter]]\nname = \"a\"\ntype = = 3\n", "g.toml").unwrap_err();
        let Failure::Input(m) = err else {
            panic!("not an input error")
        };
        assert!(m.starts_with("g.toml:3:"), "{m}");
        assert!(!m.contains('\n'));
    }

    /// The message of a TOML graph that fails to load.
    fn toml_error(text: &str) -> String {
        match parse_toml(text, "g.toml") {
            Err(Failure::Input(m)) => m,
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn wrongly_typed_values_are_reported_where_they_stand() {
        let filter = "[[filter]]\nname = \"src\"\ntype = \"testsrc\"\n";
        for (text, at, needle) in [
            // Property values (any key of a filter table besides name, type, mode, framing).
            (
                format!("{filter}frames = 4.5\n"),
                "g.toml:4:10:",
                "floating point `4.5`",
            ),
            (
                format!("{filter}size = [1, 2]\n"),
                "g.toml:4:8:",
                "sequence",
            ),
            (
                format!("{filter}size = {{ a = 1 }}\n"),
                "g.toml:4:8:",
                "map",
            ),
            // Framing fields and the filter's own keys.
            (
                format!("{filter}[filter.framing.out]\nframes = \"four\"\n"),
                "g.toml:5:10:",
                "string \"four\", expected framing field 'frames' to be a number of frames",
            ),
            (
                "[[filter]]\nname = 3\ntype = \"testsrc\"\n".to_owned(),
                "g.toml:2:8:",
                "integer `3`, expected a string",
            ),
            // A missing key is reported at its table.
            (
                format!("{filter}\n[[filter]]\nname = \"b\"\n"),
                "g.toml:5:1:",
                "`type`",
            ),
        ] {
            let m = toml_error(&text);
            assert!(m.starts_with(at), "{text:?}: {m}");
            assert!(m.contains(needle), "{text:?}: '{needle}' missing in {m}");
            assert!(!m.contains('\n'), "{m}");
        }
        let m = toml_error(&format!("{filter}frames = 4.5\n"));
        assert!(
            m.ends_with("expected an integer, a boolean or a string"),
            "{m}"
        );
    }

    #[test]
    fn a_mode_other_than_kernel_or_user_names_the_field_and_its_values_where_it_stands() {
        let filter = "[[filter]]\nname = \"src\"\ntype = \"testsrc\"\n";
        for mode in [
            "3",
            "{}",
            "{ user = {} }",
            "{ kernel = \"\" }",
            "[\"user\"]",
            "true",
            "\"User\"",
            "\"\"",
        ] {
            let m = toml_error(&format!("{filter}mode = {mode}\n"));
            assert!(m.starts_with("g.toml:4:8: "), "{mode}: {m}");
            assert!(
                m.contains("expected `mode` to be \"kernel\" or \"user\""),
                "{mode}: {m}"
            );
        }
        // Both strings are what they say.
        for (mode, user) in [("user", true), ("kernel", false)] {
            let text = format!("{filter}mode = \"{mode}\"\n");
            let spec = parse_toml(&text, "g.toml").expect("a valid mode");
            assert_eq!(
                spec.filters[0]
                    .mode
                    .map(|m| m == ks_graph::runtime::spec::ModeSpec::User),
                Some(user)
            );
        }
    }

    /// The message of a TOML graph that parses but is refused when built.
    fn build_error(text: &str) -> String {
        let loaded = toml_document(text.to_owned(), "g.toml").expect("the TOML parses");
        match loaded.build() {
            Err(Failure::Input(m)) => m,
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn values_refused_by_the_filter_are_reported_where_they_stand() {
        let graph = |src: &str| {
            format!(
                "[[filter]]\nname = \"src\"\ntype = \"testsrc\"\n{src}\n\
                 [[filter]]\nname = \"sink\"\ntype = \"nullsink\"\n\n\
                 [[connect]]\nfrom = \"src\"\nto = \"sink\"\n"
            )
        };
        for (src, at, needle) in [
            // A string where the type wants an integer, and an integer out of range.
            (
                "frames = \"four\"",
                "g.toml:4:10:",
                "property frames=four is invalid",
            ),
            ("size = 0", "g.toml:4:8:", "property size=0 is invalid"),
            (
                "pattern = \"wavy\"",
                "g.toml:4:11:",
                "allowed: ramp, zero, none",
            ),
            ("sise = 4", "g.toml:4:8:", "unknown property 'sise'"),
            // Framing overrides, as a table and inline.
            (
                "[filter.framing.out]\nmemory = \"bogus\"",
                "g.toml:5:10:",
                "pin 'src.out': memory 'bogus'",
            ),
            (
                "framing = { out = { alignment = 3 } }",
                "g.toml:4:33:",
                "alignment 3 is invalid",
            ),
            (
                "[filter.framing.bogus]\nframes = 2",
                "g.toml:4:1:",
                "no pin 'bogus'",
            ),
        ] {
            let m = build_error(&graph(src));
            assert!(m.starts_with(at), "{src:?}: {m}");
            assert!(m.contains(needle), "{src:?}: '{needle}' missing in {m}");
        }
        // The filter type, on the second filter table.
        let m = build_error(
            "[[filter]]\nname = \"a\"\ntype = \"testsrc\"\n[[filter]]\nname = \"b\"\ntype = \"blur\"\n",
        );
        assert!(
            m.starts_with("g.toml:6:8: unknown filter type 'blur'"),
            "{m}"
        );
        // A filter of the document's pipeline string: the string's position.
        let m = build_error("# a graph\npipeline = \"testsrc frames=four ! nullsink\"\n");
        assert!(m.starts_with("g.toml:2:12: filter 'testsrc'"), "{m}");
        // So are the errors of the string itself, with the column inside it.
        for (pipeline, needle) in [
            (
                "testsrc ! ! nullsink",
                "pipeline: '!' must stand between two elements",
            ),
            (
                "testsrc out.frames=x ! nullsink",
                "'out.frames=x' at column 9",
            ),
            ("testsrc ! size=3 nullsink", "'size=3' at column 11"),
            (
                "testsrc mode=sideways ! nullsink",
                "mode 'sideways' is not allowed",
            ),
            ("testsrc ! nullsink t.", "reference 't.' at column 20"),
            ("", "the pipeline is empty"),
        ] {
            let m = build_error(&format!(
                "# a graph\n\n  pipeline = \"{pipeline}\"\n[[filter]]\nname = \"a\"\ntype = \"nullsink\"\n"
            ));
            assert!(m.starts_with("g.toml:3:14: "), "{pipeline}: {m}");
            assert!(m.contains(needle), "{pipeline}: '{needle}' missing in {m}");
        }
        // An error about no value in particular has no position.
        let m = build_error("[[filter]]\nname = \"a\"\ntype = \"filesrc\"\n");
        assert!(
            m.starts_with("filter 'a' (filesrc): property 'location' is required"),
            "{m}"
        );
    }

    #[test]
    fn file_names_and_pipeline_strings_are_told_apart() {
        let dir = std::env::temp_dir().join(format!("ksalloc-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let existing = dir.join("a graph ! with odd characters");
        std::fs::write(&existing, "pipeline = \"testsrc ! nullsink\"\n").unwrap();
        let existing = existing.to_str().unwrap();
        for (arg, file) in [
            // A pipeline whose filesink writes a .toml file is a pipeline.
            (
                "testsrc frames=2 size=4 ! filesink location=out.toml",
                false,
            ),
            ("testsrc!nullsink", false),
            ("filesrc location=in.toml ! nullsink", false),
            ("testsrc", false),
            // An existing file is a file, whatever its name.
            (existing, true),
            // A single word that reads as a file name is one, even when it is missing.
            ("missing.toml", true),
            ("graphs/missing", true),
        ] {
            assert_eq!(argument_kind(arg) == ArgumentKind::File, file, "{arg}");
        }
        assert!(load(Some(existing)).unwrap().toml.is_some());

        let loaded = load(Some("testsrc frames=2 size=4 ! filesink location=out.toml")).unwrap();
        assert!(loaded.toml.is_none());
        assert_eq!(loaded.spec.filters[1].kind, "filesink");
        let Err(Failure::Input(m)) = load(Some("no-such-dir/missing.toml")) else {
            panic!("a missing file loads")
        };
        assert!(
            m.starts_with("cannot read graph file 'no-such-dir/missing.toml'"),
            "{m}"
        );
        // A directory is refused, whatever its name.
        let Err(Failure::Input(m)) = load(dir.to_str()) else {
            panic!("a directory loads")
        };
        assert!(m.ends_with("': it is a directory"), "{m}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_of_a_documents_only_pipeline_string_start_at_the_string() {
        for (pipeline, needle) in [
            ("testsrc name=a ! nullsink name=a", "already in the graph"),
            ("testsrc ! foo.in", "no filter instance named"),
        ] {
            let m = build_error(&format!("\n\npipeline = \"{pipeline}\"\n"));
            assert!(m.starts_with("g.toml:3:12:"), "{pipeline}: {m}");
            assert!(m.contains(needle), "{m}");
        }
    }

    #[test]
    fn a_framing_table_value_that_is_no_integer_names_the_field_s_own_range() {
        for (field, value, allowed) in [
            (
                "frames",
                "\"four\"",
                "a number of frames from 1 to 4294967295",
            ),
            ("frame_size", "-1", "a number of bytes from 1 to 4294967295"),
            ("min_size", "1.5", "a number of bytes from 1 to 4294967295"),
            (
                "max_size",
                "4294967296",
                "a number of bytes from 0 to 4294967295",
            ),
            (
                "alignment",
                "\"wide\"",
                "a power of two from 1 to 2147483648 (bytes)",
            ),
        ] {
            let m = toml_error(&format!(
                "[[filter]]\nname = \"src\"\ntype = \"testsrc\"\n[filter.framing.out]\n{field} = {value}\n"
            ));
            assert!(m.starts_with("g.toml:5:"), "{field}: {m}");
            assert!(
                m.contains(&format!("framing field '{field}' to be {allowed}")),
                "{field}: {m}"
            );
        }
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
