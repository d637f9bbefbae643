//! Reading GRAPH arguments: a TOML file, a pipeline string, or the embedded default graph.

use std::path::Path;

use ks_graph::runtime::spec::GraphSpec;

use crate::{Failure, Result};

/// The default graph of `ksalloc run` / `ksalloc plan` (examples/graphs/default.toml).
pub(crate) const DEFAULT_GRAPH: &str = include_str!("../../../examples/graphs/default.toml");

/// Loads GRAPH: `None` is the default graph; an existing file (or anything ending in `.toml`)
/// is a TOML document; anything else is a pipeline string.
pub(crate) fn load(graph: Option<&str>) -> Result<GraphSpec> {
    let Some(arg) = graph else {
        return parse_toml(DEFAULT_GRAPH, "<default graph>");
    };
    let path = Path::new(arg);
    if path.is_dir() {
        return Err(Failure::Input(format!(
            "cannot read graph file '{arg}': it is a directory"
        )));
    }
    if path.is_file() || arg.ends_with(".toml") {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Input(format!("cannot read graph file '{arg}': {e}")))?;
        return parse_toml(&text, arg);
    }
    GraphSpec::parse_pipeline(arg).map_err(|e| Failure::Input(e.message))
}

/// Parses a TOML graph; errors name the file, line and column.
pub(crate) fn parse_toml(text: &str, name: &str) -> Result<GraphSpec> {
    toml::from_str::<GraphSpec>(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        let msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        Failure::Input(format!("{name}:{line}:{col}: invalid graph TOML: {msg}"))
    })
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
        let spec = load(None).unwrap();
        assert!(spec.filters.len() >= 8);
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
                "string \"four\", expected u32",
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
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
