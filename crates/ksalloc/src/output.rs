//! Writing to stdout with a closed pipe treated as a quiet end.

use std::io::{self, BufWriter, Stdout, Write};

use crate::{Failure, Result};

/// Buffered stdout.
pub(crate) struct Out(BufWriter<Stdout>);

impl Out {
    pub(crate) fn new() -> Out {
        Out(BufWriter::new(io::stdout()))
    }

    pub(crate) fn write(&mut self, s: &str) -> Result<()> {
        self.0.write_all(s.as_bytes()).map_err(io_failure)
    }

    pub(crate) fn flush(&mut self) -> Result<()> {
        self.0.flush().map_err(io_failure)
    }
}

fn io_failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::BrokenPipe
    } else {
        Failure::Graph(format!("cannot write the output: {e}"))
    }
}
