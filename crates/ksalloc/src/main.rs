//! The `ksalloc` command-line tool: run, plan, inspect and benchmark KS allocator graphs.
//!
//! A thin layer over `ks-graph` (graphs, negotiation, runtime, filters) and `ks-alloc`
//! (allocators). Errors reach the user in one place ([`main`]): one line on stderr, prefixed
//! `ksalloc: error:`, and exit code 2 for bad input (unknown filter, property or pin,
//! malformed TOML, invalid framing, unreadable file), 1 when the graph cannot be negotiated or
//! run. A closed stdout (`ksalloc plan | head`) ends quietly.
#![forbid(unsafe_code)]

mod bench;
mod cli;
mod input;
mod output;
mod report;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

/// A failure, with the exit code it maps to.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad input: exit code 2.
    Input(String),
    /// The graph cannot be negotiated, its allocators created, or it fails while running:
    /// exit code 1.
    Graph(String),
    /// Writing the output failed because the reader went away: exit quietly.
    BrokenPipe,
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Input(_) => 2,
            Failure::Graph(_) => 1,
            Failure::BrokenPipe => 0,
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, Failure>;

fn main() -> ExitCode {
    // A bug must still end on one line, without a backtrace (exit code 101).
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let _ = writeln!(
            std::io::stderr(),
            "ksalloc: internal error (please report): {}",
            msg.replace('\n', " ")
        );
    }));
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = writeln!(
                std::io::stderr(),
                "ksalloc: error: no command given; use run, plan, props or bench (see \
                 'ksalloc --help')"
            );
            return ExitCode::from(2);
        }
        Err(e) if e.use_stderr() => {
            // A usage error: one line like every other error, exit code 2. Clap's first
            // paragraph says what is wrong, sometimes over several lines (the missing
            // arguments are listed below the sentence); the usage after it is left out.
            let text = e.render().to_string();
            let first = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            let _ = writeln!(
                std::io::stderr(),
                "ksalloc: error: {} (see 'ksalloc --help')",
                one_line(first)
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            // -h, --help, --version: clap prints them to stdout.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    match cli::dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            match &f {
                Failure::Input(m) | Failure::Graph(m) => {
                    let _ = writeln!(std::io::stderr(), "ksalloc: error: {}", one_line(m));
                }
                Failure::BrokenPipe => {}
            }
            ExitCode::from(f.code())
        }
    }
}

/// `m` on one line: white space folded, other control characters (from a graph's names, say)
/// escaped so that they cannot act on the terminal.
fn one_line(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    for word in m.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
    out
}
