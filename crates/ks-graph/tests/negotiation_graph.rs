//! Graph building errors: every bad graph gets a `GraphError` naming its filters and pins.

mod negotiation_support;

use std::sync::Arc;

use ks_alloc::FrameRange;
use ks_graph::{FilterDescriptor, GraphBuilder, GraphError, PinDescriptor, PinDirection, Routing};
use negotiation_support::*;

fn builder() -> GraphBuilder {
    let mut b = GraphBuilder::new();
    b.add_filter("src", Arc::new(source(K, out_pin(None))))
        .unwrap();
    b.add_filter("x", Arc::new(copy(K, in_pin(None), out_pin(None))))
        .unwrap();
    b.add_filter("dst", Arc::new(sink(K, in_pin(None))))
        .unwrap();
    b
}

#[test]
fn duplicate_instance_name() {
    let mut b = builder();
    let e = b
        .add_filter("x", Arc::new(sink(K, in_pin(None))))
        .unwrap_err();
    assert_eq!(e, GraphError::DuplicateFilter { filter: "x".into() });
    assert!(e.to_string().contains("'x'"));
}

#[test]
fn unknown_filter_and_pin() {
    let mut b = builder();
    assert_eq!(
        b.connect("nope.out", "x.in").unwrap_err(),
        GraphError::UnknownFilter {
            filter: "nope".into()
        }
    );
    assert_eq!(
        b.connect("src.output", "x.in").unwrap_err(),
        GraphError::UnknownPin {
            filter: "src".into(),
            pin: "output".into()
        }
    );
    let e = b.connect("src", "x.in").unwrap_err();
    assert_eq!(e, GraphError::BadPinName { text: "src".into() });
    assert_eq!(
        GraphError::UnknownFilter { filter: "n".into() }
            .status()
            .to_ntstatus(),
        0xC0000225u32 as i32
    );
}

#[test]
fn wrong_direction_both_ends() {
    let mut b = builder();
    assert_eq!(
        b.connect("x.in", "dst.in").unwrap_err(),
        GraphError::WrongDirection {
            pin: "x.in".into(),
            expected: PinDirection::Out,
            actual: PinDirection::In
        }
    );
    assert_eq!(
        b.connect("src.out", "x.out").unwrap_err(),
        GraphError::WrongDirection {
            pin: "x.out".into(),
            expected: PinDirection::In,
            actual: PinDirection::Out
        }
    );
}

#[test]
fn pin_already_connected() {
    let mut b = builder();
    b.connect("src.out", "x.in").unwrap();
    assert_eq!(
        b.connect("src.out", "dst.in").unwrap_err(),
        GraphError::AlreadyConnected {
            pin: "src.out".into(),
            peer: "x.in".into()
        }
    );
    assert_eq!(
        b.connect("x.out", "x.in").unwrap_err(),
        GraphError::SelfConnection { filter: "x".into() }
    );
}

#[test]
fn self_connection() {
    let mut b = builder();
    assert_eq!(
        b.connect("x.out", "x.in").unwrap_err(),
        GraphError::SelfConnection { filter: "x".into() }
    );
}

#[test]
fn cycle_is_reported_with_its_filters() {
    let mut b = GraphBuilder::new();
    for n in ["a", "b", "c"] {
        b.add_filter(n, Arc::new(copy(K, in_pin(None), out_pin(None))))
            .unwrap();
    }
    b.add_filter("src", Arc::new(source(K, out_pin(None))))
        .unwrap();
    b.connect("a.out", "b.in").unwrap();
    b.connect("b.out", "c.in").unwrap();
    b.connect("c.out", "a.in").unwrap();
    let e = b.build().unwrap_err();
    let GraphError::Cycle { filters } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(filters.len(), 4);
    assert_eq!(filters.first(), filters.last());
    let mut inner: Vec<&str> = filters[..3].iter().map(String::as_str).collect();
    inner.sort();
    assert_eq!(inner, ["a", "b", "c"]);
    assert!(e.to_string().contains(" -> "));
}

#[test]
fn required_pin_left_unconnected() {
    let mut b = GraphBuilder::new();
    b.add_filter("cam", Arc::new(source(K, out_pin(None).required())))
        .unwrap();
    assert_eq!(
        b.build().unwrap_err(),
        GraphError::Unconnected {
            pin: "cam.out".into(),
            direction: PinDirection::Out
        }
    );
    // Optional pins may stay unconnected.
    let mut b = GraphBuilder::new();
    b.add_filter("cam", Arc::new(source(K, out_pin(None))))
        .unwrap();
    assert!(b.build().is_ok());
}

#[test]
fn malformed_descriptors() {
    let mut b = GraphBuilder::new();
    let dup = FilterDescriptor::kernel("dup")
        .with_pin(PinDescriptor::input("p"))
        .with_pin(PinDescriptor::output("p"));
    assert!(matches!(
        b.add_filter("d", Arc::new(dup)),
        Err(GraphError::InvalidDescriptor { .. })
    ));
    let two_in = FilterDescriptor::kernel("t")
        .with_routing(Routing::PassThrough)
        .with_pin(PinDescriptor::input("a"))
        .with_pin(PinDescriptor::input("b"))
        .with_pin(PinDescriptor::output("o"));
    let e = b.add_filter("t", Arc::new(two_in)).unwrap_err();
    assert!(e.to_string().contains("exactly one input"), "{e}");
    let dotted = FilterDescriptor::kernel("d").with_pin(PinDescriptor::output("a.b"));
    assert!(matches!(
        b.add_filter("d2", Arc::new(dotted)),
        Err(GraphError::InvalidDescriptor { .. })
    ));
    let mut bad = frames(1);
    bad.items[0].physical_range = FrameRange {
        min: 10,
        max: 5,
        stepping: 1,
    };
    let e = b
        .add_filter("s", Arc::new(source(K, out_pin(Some(bad)))))
        .unwrap_err();
    assert!(
        matches!(&e, GraphError::InvalidFraming { pin, .. } if pin == "source.out"),
        "{e:?}"
    );
    assert_eq!(e.status().to_ntstatus(), 0xC000000Du32 as i32);
    let mut empty = frames(1);
    empty.items.clear();
    let e = b
        .add_filter("s", Arc::new(source(K, out_pin(Some(empty)))))
        .unwrap_err();
    assert!(e.to_string().contains("no items"), "{e}");
}

#[test]
fn filter_names_may_contain_dots() {
    let mut b = GraphBuilder::new();
    b.add_filter("cam.front", Arc::new(source(K, out_pin(None))))
        .unwrap();
    b.add_filter("dst", Arc::new(sink(K, in_pin(None))))
        .unwrap();
    b.connect("cam.front.out", "dst.in").unwrap();
    let g = b.build().unwrap();
    assert_eq!(g.pin_name(g.pin("cam.front.out").unwrap()), "cam.front.out");
}

#[test]
fn disconnect_rules() {
    let mut b = builder();
    b.connect("src.out", "x.in").unwrap();
    let mut g = b.build().unwrap();
    let dst = g.pin("dst.in").unwrap();
    assert_eq!(
        g.disconnect(dst).unwrap_err(),
        GraphError::NotConnected {
            pin: "dst.in".into()
        }
    );
    let c = g.disconnect(g.pin("x.in").unwrap()).unwrap();
    assert_eq!(c.from, g.pin("src.out").unwrap());
    assert!(g.connections().is_empty());
    assert_eq!(g.peer(g.pin("src.out").unwrap()), None);
}

#[test]
fn topological_order_puts_upstream_first() {
    let mut b = GraphBuilder::new();
    b.add_filter("dst", Arc::new(sink(K, in_pin(None))))
        .unwrap();
    b.add_filter("x", Arc::new(copy(K, in_pin(None), out_pin(None))))
        .unwrap();
    b.add_filter("src", Arc::new(source(K, out_pin(None))))
        .unwrap();
    b.connect("x.out", "dst.in").unwrap();
    b.connect("src.out", "x.in").unwrap();
    let g = b.build().unwrap();
    let names: Vec<&str> = g
        .topological_order()
        .iter()
        .map(|&f| g.filter_name(f))
        .collect();
    assert_eq!(names, ["src", "x", "dst"]);
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<ks_graph::Graph>();
    check::<ks_graph::GraphBuilder>();
    check::<ks_graph::AllocationPlan>();
    check::<ks_graph::FilterDescriptor>();
    check::<ks_graph::GraphError>();
    check::<ks_graph::NegotiationError>();
    check::<ks_graph::StateError>();
}
