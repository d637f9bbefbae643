//! The `ksalloc` command-line tool.
#![forbid(unsafe_code)]

fn main() {
    println!("ksalloc {}", env!("CARGO_PKG_VERSION"));
}
