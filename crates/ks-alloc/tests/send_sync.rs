//! Auto-trait contract of the public types (as tokio's `async_send_sync`).
#![cfg(not(loom))]

use ks_alloc::*;

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}

#[test]
fn public_types_are_send_sync_unpin() {
    send::<Allocator>();
    sync::<Allocator>();
    unpin::<Allocator>();
    send::<Frame>();
    sync::<Frame>();
    unpin::<Frame>();
    send::<Allocate<'static>>();
    sync::<Allocate<'static>>();
    unpin::<Allocate<'static>>();
    send::<AllocateOwned>();
    sync::<AllocateOwned>();
    unpin::<AllocateOwned>();
    send::<PendingAlloc>();
    sync::<PendingAlloc>();
    unpin::<PendingAlloc>();
    send::<FreeFrameEvents>();
    sync::<FreeFrameEvents>();
    unpin::<NextFreeFrame<'static>>();
    send::<EventSubscription>();
    sync::<EventSubscription>();
    send::<AllocatorStatus>();
    send::<StarvationReport>();
    send::<OutstandingFrame>();
    send::<CommonBuffer>();
    sync::<CommonBuffer>();
    send::<std::sync::Arc<dyn DynVendor>>();
    send::<KsReply>();
    send::<Memory>();
    send::<Level>();
    send::<AllocatorBuilder>();
}

/// `DispatchGuard` is deliberately not `Send`: the level belongs to the thread.
#[test]
fn dispatch_guard_is_thread_bound() {
    trait NotSend {
        const IS_SEND: bool = false;
    }
    impl<T> NotSend for T {}
    struct Probe<T>(std::marker::PhantomData<T>);
    impl<T: Send> Probe<T> {
        #[allow(dead_code)]
        const IS_SEND: bool = true;
    }
    const { assert!(!<Probe<DispatchGuard>>::IS_SEND) };
    const { assert!(<Probe<Allocator>>::IS_SEND) };
}
