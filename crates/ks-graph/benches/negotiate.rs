//! Negotiation cost against graph size: chains of in-place filters (one long pipe), chains of
//! copy filters (one pipe per link), and tees with many read-only branches. Each at two
//! sizes (×10) to show linear growth. Only `negotiate` is timed (graph building is not).
//!
//! Run: `cargo bench -p ks-graph --bench negotiate`.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ks_alloc::{Alignment, FramingEx, ItemFlags, MemoryType};
use ks_graph::{FilterDescriptor, Graph, GraphBuilder, PinDescriptor, Routing, negotiate};

fn framing(frames: u32) -> FramingEx {
    FramingEx::simple(
        MemoryType::KERNEL_NONPAGED,
        ItemFlags::SYSTEM_MEMORY | ItemFlags::PREFERENCES_ONLY,
        frames,
        Alignment::BYTES_64,
        4096,
        65536,
    )
}

/// `n` filters: a source, `n - 2` transforms (in place or copying), a sink.
fn chain(n: usize, in_place: bool) -> Graph {
    let src = Arc::new(
        FilterDescriptor::kernel("src")
            .with_pin(PinDescriptor::output("out").with_framing(framing(2))),
    );
    let mut input = PinDescriptor::input("in").with_framing(framing(1));
    if in_place {
        input = input.in_place();
    }
    let mid = Arc::new(
        FilterDescriptor::kernel("mid")
            .with_routing(if in_place {
                Routing::PassThrough
            } else {
                Routing::Copy
            })
            .with_pin(input)
            .with_pin(PinDescriptor::output("out").with_framing(framing(1))),
    );
    let sink = Arc::new(
        FilterDescriptor::user("sink")
            .with_pin(PinDescriptor::input("in").with_framing(framing(2))),
    );
    let mut b = GraphBuilder::new();
    b.add_filter("f0", src).unwrap();
    for i in 1..n - 1 {
        b.add_filter(format!("f{i}"), mid.clone()).unwrap();
    }
    b.add_filter(format!("f{}", n - 1), sink).unwrap();
    for i in 0..n - 1 {
        b.connect(&format!("f{i}.out"), &format!("f{}.in", i + 1))
            .unwrap();
    }
    b.build().unwrap()
}

/// A source feeding a tee with `branches` outputs, each to a sink; every fourth sink modifies
/// in place (so its branch is split into its own pipe).
fn tee(branches: usize) -> Graph {
    let src = Arc::new(
        FilterDescriptor::kernel("src")
            .with_pin(PinDescriptor::output("out").with_framing(framing(2))),
    );
    let mut t = FilterDescriptor::kernel("tee")
        .with_routing(Routing::PassThrough)
        .with_pin(PinDescriptor::input("in"));
    for i in 0..branches {
        t = t.with_pin(PinDescriptor::output(format!("o{i}")));
    }
    let ro = Arc::new(
        FilterDescriptor::kernel("ro")
            .with_pin(PinDescriptor::input("in").with_framing(framing(1))),
    );
    let rw = Arc::new(
        FilterDescriptor::kernel("rw").with_pin(
            PinDescriptor::input("in")
                .with_framing(framing(1))
                .in_place(),
        ),
    );
    let mut b = GraphBuilder::new();
    b.add_filter("src", src).unwrap();
    b.add_filter("tee", Arc::new(t)).unwrap();
    b.connect("src.out", "tee.in").unwrap();
    for i in 0..branches {
        let d = if i % 4 == 3 { rw.clone() } else { ro.clone() };
        b.add_filter(format!("s{i}"), d).unwrap();
        b.connect(&format!("tee.o{i}"), &format!("s{i}.in"))
            .unwrap();
    }
    b.build().unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("negotiate");
    for (label, in_place) in [("chain_inplace", true), ("chain_copy", false)] {
        for n in [100usize, 1000] {
            let graph = chain(n, in_place);
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::new(label, n), &graph, |b, graph| {
                b.iter(|| negotiate(black_box(graph)).unwrap())
            });
        }
    }
    for n in [10usize, 100] {
        let graph = tee(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("tee", n), &graph, |b, graph| {
            b.iter(|| negotiate(black_box(graph)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
