//! A vendor `delete` that panics while ACQUIRE → STOP closes the graph's allocators: every
//! allocator is still closed and unregistered, the graph reaches STOP with no stale state,
//! and the panic then reaches the caller of `set_state`.

mod negotiation_support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::Arc;

use ks_alloc::{DefaultVendor, Framing, Memory, RegionContext, Status, VendorAllocator};
use ks_graph::{KsState, VendorSpec};
use negotiation_support::*;

struct PanicDelete;
const INNER: DefaultVendor = DefaultVendor {
    memory: Memory::NonPaged,
};
// SAFETY: delegates the frames to `DefaultVendor`.
unsafe impl VendorAllocator for PanicDelete {
    type Context = RegionContext;
    fn initialize(&self, f: &Framing) -> Result<RegionContext, Status> {
        INNER.initialize(f)
    }
    fn allocate(&self, cx: &RegionContext) -> Option<NonNull<u8>> {
        INNER.allocate(cx)
    }
    fn free(&self, cx: &RegionContext, p: NonNull<u8>) {
        INNER.free(cx, p)
    }
    fn delete(&self, cx: RegionContext) {
        INNER.delete(cx);
        panic!("vendor delete panics (on purpose)")
    }
}

#[test]
fn a_panicking_vendor_delete_at_stop_closes_every_allocator_and_reaches_stop() {
    let p = VendorSpec::new("p", Arc::new(PanicDelete), caps());
    let (c, counts) = vendor("c", caps());
    let mut g = Net::new()
        .f("cam", source(K, out_pin(None).with_vendor(p)))
        .f("cp", copy(K, in_pin(None), out_pin(None).with_vendor(c)))
        .f("dst", sink(K, in_pin(None)))
        .c("cam.out", "cp.in")
        .c("cp.out", "dst.in")
        .build();
    g.set_state(KsState::Acquire).unwrap();
    assert_eq!(g.allocators().len(), 2);
    assert_eq!(counts.inits(), 1);
    let first = g.allocators()[0].allocator.clone();
    let second = g.allocators()[1].allocator.clone();
    let r = catch_unwind(AssertUnwindSafe(|| g.set_state(KsState::Stop)));
    assert!(r.is_err(), "the vendor's panic reaches the caller");
    assert_eq!(
        g.state(),
        KsState::Stop,
        "the graph reached STOP all the same"
    );
    assert!(
        g.allocators().is_empty() && g.plan().is_none(),
        "no stale state"
    );
    assert!(
        first.is_closed(),
        "the panicking vendor's allocator is closed"
    );
    assert!(
        second.is_closed(),
        "the next pipe's allocator is closed too"
    );
    drop(second);
    assert_eq!(counts.deletes(), 1, "and its vendor deleted");
    // The next ACQUIRE creates fresh allocators: nothing adopted as a client's.
    g.set_state(KsState::Acquire).unwrap();
    assert_eq!(counts.inits(), 2, "a fresh allocator for the second pipe");
    assert!(g.allocators().iter().all(|a| !a.client_owned));
    assert!(!g.allocators()[1].allocator.same(&first));
    let r = catch_unwind(AssertUnwindSafe(|| g.set_state(KsState::Stop)));
    assert!(r.is_err());
    assert_eq!(g.state(), KsState::Stop);
    assert_eq!(counts.deletes(), 2);
}
