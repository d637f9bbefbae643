//! Stream pointers and pin queues: one test per behaviour 47–57 and 59 of ks-spec.md §9.7,
//! plus a proptest of random operation sequences against the queue's invariants.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ks_graph::queue::{
    Completed, Direction, FrameId, PIN_FLAG_DISTINCT_TRAILING_EDGE, Queue, QueueConfig,
    StreamHeader,
};
use ks_graph::stream_pointer::Offset;
use ks_graph::stream_pointer::{CancelAction, CancelNotice, PointerId, PointerKind, PointerState};
use proptest::prelude::*;

type Q = Queue<Vec<u8>>;

fn frame(byte: u8, len: usize) -> (Vec<u8>, StreamHeader) {
    (
        vec![byte; len],
        StreamHeader::with_data(len as u32, len as u32),
    )
}

fn push(q: &mut Q, byte: u8, len: usize) -> FrameId {
    let (f, h) = frame(byte, len);
    q.push(f, h)
}

fn completed_ids(q: &mut Q) -> Vec<u64> {
    q.drain_completed().map(|c| c.id.sequence()).collect()
}

fn is_device_not_ready<T: std::fmt::Debug>(r: Result<T, ks_alloc::Status>) -> bool {
    matches!(r, Err(ks_alloc::Status::DeviceNotReady(_)))
}

#[test]
fn a_pointer_of_one_queue_is_refused_by_another() {
    // Both queues' leading edges and first clones have the same slot and generation; the
    // handle also names its queue, so a mix-up (unlocking the input's pointer on the output
    // queue of a copy filter) is refused instead of ejecting the wrong frame.
    let mut input = Q::new(QueueConfig::input());
    let mut output = Q::new(QueueConfig::output());
    push(&mut input, 1, 4);
    push(&mut output, 2, 4);
    let src = input.leading_edge(PointerState::Locked).unwrap();
    let dst = output.leading_edge(PointerState::Locked).unwrap();
    let stale = output.unlock(src, true).unwrap_err();
    assert_eq!(stale.name(), "STATUS_INVALID_PARAMETER");
    assert!(stale.to_string().contains("another queue"), "{stale}");
    assert_eq!(output.completed_len(), 0, "nothing was ejected");
    assert!(input.clone_pointer(dst, None, 0).is_err());
    assert!(output.unlock(dst, true).is_ok());
    assert!(input.unlock(src, true).is_ok());
}

#[test]
fn a_cancelled_frame_keeps_its_cancelled_status() {
    let mut q = Q::new(QueueConfig::input());
    let id = push(&mut q, 1, 4);
    let c = q.clone_pointer(q.leading_edge_id(), None, 0).unwrap();
    q.cancel(id).unwrap();
    assert!(
        is_device_not_ready(q.set_status_code(c, Ok(()))),
        "no success for a cancelled frame"
    );
    q.delete(c).unwrap();
    let done = q.pop_completed().unwrap();
    assert_eq!(done.status, Err(ks_alloc::Status::Cancelled));
}

#[test]
fn advance_offsets_and_unlock_unlocks_even_when_the_amounts_are_refused() {
    let mut q = Q::new(QueueConfig::input());
    push(&mut q, 1, 4);
    let p = q.leading_edge(PointerState::Locked).unwrap();
    assert!(q.advance_offsets_and_unlock(p, 999, 0, false).is_err());
    assert_eq!(q.is_locked(p), Ok(false), "no lock left behind");
    assert_eq!(q.check_invariants(), Ok(()));
}

#[test]
fn reserving_absurd_counts_keeps_the_queue_intact() {
    let mut q = Q::new(QueueConfig::input());
    push(&mut q, 1, 4);
    q.reserve(usize::MAX / 2 + 2, usize::MAX);
    assert_eq!(q.len(), 1);
    let p = q.leading_edge(PointerState::Locked).unwrap();
    assert_eq!(q.remaining_data(p).unwrap(), &[1; 4]);
    assert_eq!(q.check_invariants(), Ok(()));
}

#[test]
fn b47_locked_leading_edge_is_none_without_a_frame_unlocked_always_returned() {
    let mut q = Q::new(QueueConfig::input());
    assert!(q.leading_edge(PointerState::Locked).is_none());
    let lead = q
        .leading_edge(PointerState::Unlocked)
        .expect("unlocked edge always exists");
    assert_eq!(q.frame_id(lead).unwrap(), None);
    assert!(!q.is_locked(lead).unwrap());
    push(&mut q, 1, 8);
    let locked = q
        .leading_edge(PointerState::Locked)
        .expect("a frame is at the edge");
    assert_eq!(locked, lead);
    assert!(q.is_locked(lead).unwrap());
    // Asking for it unlocked returns it unlocked.
    q.leading_edge(PointerState::Unlocked).unwrap();
    assert!(!q.is_locked(lead).unwrap());
}

#[test]
fn b48_trailing_edge_only_with_distinct_trailing_edge_flag() {
    let mut plain = Q::new(QueueConfig::input());
    push(&mut plain, 1, 4);
    assert!(plain.trailing_edge(PointerState::Unlocked).is_none());
    assert!(plain.trailing_edge(PointerState::Locked).is_none());

    let cfg = QueueConfig::from_pin_flags(Direction::Input, PIN_FLAG_DISTINCT_TRAILING_EDGE);
    let mut q = Q::new(cfg);
    assert!(q.trailing_edge(PointerState::Unlocked).is_some());
    assert!(
        q.trailing_edge(PointerState::Locked).is_none(),
        "no frame yet"
    );
    push(&mut q, 1, 4);
    let t = q
        .trailing_edge(PointerState::Locked)
        .expect("frame at trailing edge");
    assert_eq!(q.kind(t).unwrap(), PointerKind::TrailingEdge);
    assert_ne!(t, q.leading_edge_id());
}

#[test]
fn b49_frame_into_empty_queue_becomes_leading_frame_and_cancel_moves_edge() {
    let mut q = Q::new(QueueConfig::input());
    let lead = q.leading_edge_id();
    let a = push(&mut q, 1, 4);
    assert_eq!(q.frame_id(lead).unwrap(), Some(a));
    let b = push(&mut q, 2, 4);
    assert_eq!(
        q.frame_id(lead).unwrap(),
        Some(a),
        "the edge stays until moved"
    );
    q.cancel(a).unwrap();
    assert_eq!(
        q.frame_id(lead).unwrap(),
        Some(b),
        "cancel moved the edge to a newer frame"
    );
    let done: Vec<Completed<Vec<u8>>> = q.drain_completed().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, a);
    assert_eq!(done[0].status, Err(ks_alloc::Status::Cancelled));
    // Consuming every frame, then a new arrival: the edge picks it up again.
    q.advance(lead).unwrap();
    assert_eq!(q.frame_id(lead).unwrap(), None);
    let c = push(&mut q, 3, 4);
    assert_eq!(q.frame_id(lead).unwrap(), Some(c));
    q.check_invariants().unwrap();
}

#[test]
fn b49_cancelling_the_leading_frame_skips_a_next_frame_cancelled_already() {
    // Frames a, b, c; b is cancelled first but an unlocked clone (no callback) keeps it in
    // the queue. Cancelling a must move the leading edge to c, the next *live* frame, not
    // onto the cancelled b.
    let mut q = Q::new(QueueConfig::input());
    let lead = q.leading_edge_id();
    let a = push(&mut q, 1, 4);
    let b = push(&mut q, 2, 4);
    let c = push(&mut q, 3, 4);
    let holder = q.clone_pointer(lead, None, 0).unwrap();
    q.advance(holder).unwrap();
    assert_eq!(q.frame_id(holder).unwrap(), Some(b));
    q.cancel(b).unwrap();
    assert_eq!(q.is_cancelled(b), Some(true));
    assert!(q.contains(b), "the clone still holds the cancelled frame");
    assert_eq!(q.frame_id(lead).unwrap(), Some(a));
    q.cancel(a).unwrap();
    assert_eq!(
        q.frame_id(lead).unwrap(),
        Some(c),
        "the leading edge skips the cancelled frame b"
    );
    q.lock(lead).unwrap();
    assert_eq!(q.data(lead).unwrap(), &[3; 4]);
    assert_eq!(completed_ids(&mut q), vec![0]);
    q.check_invariants().unwrap();
}

#[test]
fn b49_cancelling_the_leading_frame_with_only_cancelled_frames_after_goes_past_the_end() {
    // Frames a, b; b cancelled and kept by a clone. Cancelling a leaves no live frame: the
    // leading edge goes past the end, and picks up the next frame to arrive.
    let mut q = Q::new(QueueConfig::input());
    let lead = q.leading_edge_id();
    let a = push(&mut q, 1, 4);
    let b = push(&mut q, 2, 4);
    let holder = q.clone_pointer(lead, None, 0).unwrap();
    q.advance(holder).unwrap();
    q.cancel(b).unwrap();
    assert!(q.contains(b));
    q.cancel(a).unwrap();
    assert_eq!(
        q.frame_id(lead).unwrap(),
        None,
        "no live frame after a: past the end, not on the cancelled b"
    );
    assert!(is_device_not_ready(q.lock(lead)));
    assert_eq!(completed_ids(&mut q), vec![0]);
    let d = push(&mut q, 4, 4);
    assert_eq!(q.frame_id(lead).unwrap(), Some(d));
    q.delete(holder).unwrap();
    assert_eq!(completed_ids(&mut q), vec![1]);
    q.check_invariants().unwrap();
}

#[test]
fn b49_cancelling_the_trailing_edge_frame_moves_the_trailing_edge_on() {
    let mut q = Q::new(QueueConfig::input().with_distinct_trailing_edge());
    let a = push(&mut q, 1, 4);
    let b = push(&mut q, 2, 4);
    let lead = q.leading_edge(PointerState::Unlocked).unwrap();
    q.advance(lead).unwrap();
    let trail = q.trailing_edge_id().unwrap();
    assert_eq!(q.frame_id(trail).unwrap(), Some(a));
    assert_eq!(q.frame_id(lead).unwrap(), Some(b));
    q.cancel(a).unwrap();
    assert_eq!(
        q.frame_id(trail).unwrap(),
        Some(b),
        "the trailing edge left the cancelled frame"
    );
    assert_eq!(q.frame_id(lead).unwrap(), Some(b));
    // Nothing holds a any more: it completes, cancelled.
    let done: Vec<Completed<Vec<u8>>> = q.drain_completed().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, a);
    assert_eq!(done[0].status, Err(ks_alloc::Status::Cancelled));
    q.check_invariants().unwrap();
}

#[test]
fn b50_clone_same_frame_same_lock_state_adds_a_reference() {
    let mut q = Q::new(QueueConfig::input());
    let a = push(&mut q, 1, 4);
    push(&mut q, 2, 4);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    q.advance_offsets(lead, 1, 0, false).unwrap();
    let clone = q.clone_pointer(lead, None, 42).unwrap();
    assert_eq!(q.frame_id(clone).unwrap(), Some(a));
    assert!(q.is_locked(clone).unwrap());
    assert_eq!(q.offset_in(clone).unwrap(), q.offset_in(lead).unwrap());
    assert_eq!(q.context(clone).unwrap(), 42);
    assert_eq!(q.kind(clone).unwrap(), PointerKind::Clone);
    // The edge leaves; the clone's reference keeps the frame.
    q.unlock(lead, true).unwrap();
    assert!(q.contains(a));
    assert_eq!(q.completed_len(), 0);
    // An unlocked parent gives an unlocked clone.
    let unlocked_clone = q.clone_pointer(lead, None, 0).unwrap();
    assert!(!q.is_locked(unlocked_clone).unwrap());
    q.delete(clone).unwrap();
    assert_eq!(completed_ids(&mut q), vec![0]);
    q.check_invariants().unwrap();
}

#[test]
fn b50_a_clone_of_an_unlocked_pointer_starts_at_its_parents_offsets() {
    let mut q = Q::new(QueueConfig::input());
    let a = push(&mut q, 1, 10);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    q.advance_offsets(lead, 3, 2, false).unwrap();
    q.unlock(lead, false).unwrap();
    let clone = q.clone_pointer(lead, None, 0).unwrap();
    assert!(!q.is_locked(clone).unwrap());
    assert_eq!(q.frame_id(clone).unwrap(), Some(a));
    let expected_in = Offset {
        position: 3,
        count: 10,
        remaining: 7,
    };
    let expected_out = Offset {
        position: 2,
        count: 10,
        remaining: 8,
    };
    assert_eq!(q.offset_in(lead).unwrap(), expected_in);
    assert_eq!(q.offset_out(lead).unwrap(), expected_out);
    assert_eq!(
        q.offset_in(clone).unwrap(),
        expected_in,
        "OffsetIn of the clone"
    );
    assert_eq!(
        q.offset_out(clone).unwrap(),
        expected_out,
        "OffsetOut of the clone"
    );
    // Locked, the clone carries on from there: 7 bytes left, and they move it on.
    q.lock(clone).unwrap();
    assert_eq!(q.remaining_data(clone).unwrap(), &[1; 7]);
    assert!(is_device_not_ready(q.advance_offsets(clone, 7, 0, false)));
    assert_eq!(q.frame_id(clone).unwrap(), None);
    q.delete(clone).unwrap();
    q.check_invariants().unwrap();
}

#[test]
fn b51_frame_completes_exactly_when_last_reference_goes() {
    let mut q = Q::new(QueueConfig::input());
    let a = push(&mut q, 1, 4);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    let c1 = q.clone_pointer(lead, None, 0).unwrap();
    let c2 = q.clone_pointer(c1, None, 0).unwrap();
    q.unlock(lead, true).unwrap();
    assert!(q.contains(a));
    q.delete(c1).unwrap();
    assert!(q.contains(a), "one reference left");
    assert_eq!(q.completed_len(), 0);
    q.delete(c2).unwrap();
    assert!(!q.contains(a));
    assert_eq!(completed_ids(&mut q), vec![0]);
    // The deleted clone's handle is now stale.
    assert!(matches!(
        q.delete(c2),
        Err(ks_alloc::Status::InvalidParameter(_))
    ));
}

#[test]
fn b52_frames_between_edges_wait_for_the_trailing_edge() {
    let cfg = QueueConfig::input().with_distinct_trailing_edge();
    let mut q = Q::new(cfg);
    for i in 0..3 {
        push(&mut q, i, 4);
    }
    let lead = q.leading_edge(PointerState::Unlocked).unwrap();
    q.advance(lead).unwrap();
    q.advance(lead).unwrap();
    assert_eq!(q.completed_len(), 0, "frames 0 and 1 are in the window");
    let trail = q.trailing_edge(PointerState::Unlocked).unwrap();
    q.advance(trail).unwrap();
    assert_eq!(completed_ids(&mut q), vec![0]);
    q.advance(trail).unwrap();
    assert_eq!(completed_ids(&mut q), vec![1]);
    // Frame 2 is at both edges: held until both pass.
    q.advance(lead).unwrap();
    assert_eq!(q.completed_len(), 0);
    q.advance(trail).unwrap();
    assert_eq!(completed_ids(&mut q), vec![2]);
    q.check_invariants().unwrap();
}

#[test]
fn b53_advance_unlocked_always_succeeds_locked_off_last_frame_is_not_ready() {
    let mut q = Q::new(QueueConfig::input());
    let lead = q.leading_edge(PointerState::Unlocked).unwrap();
    q.advance(lead).unwrap(); // no frame at all: still success
    push(&mut q, 1, 4);
    push(&mut q, 2, 4);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    q.advance(lead).unwrap(); // onto frame 1, relocked
    assert!(q.is_locked(lead).unwrap());
    assert_eq!(q.data(lead).unwrap()[0], 2);
    let r = q.advance(lead);
    assert!(is_device_not_ready(r), "locked pointer off the last frame");
    assert!(
        !q.is_locked(lead).unwrap(),
        "relock failed: it is unlocked now"
    );
    assert_eq!(q.frame_id(lead).unwrap(), None);
    assert_eq!(completed_ids(&mut q), vec![0, 1]);
}

#[test]
fn b54_advance_offsets_needs_a_lock_and_exact_remaining_moves_on() {
    let mut q = Q::new(QueueConfig::input());
    push(&mut q, 1, 10);
    push(&mut q, 2, 6);
    let lead = q.leading_edge(PointerState::Unlocked).unwrap();
    assert!(is_device_not_ready(q.advance_offsets(lead, 1, 0, false)));
    q.lock(lead).unwrap();
    q.advance_offsets(lead, 4, 0, false).unwrap();
    let off = q.offset_in(lead).unwrap();
    assert_eq!((off.position, off.count, off.remaining), (4, 10, 6));
    // More than Remaining: refused with the field, the value and the limit; nothing moves.
    match q.advance_offsets(lead, 7, 0, false) {
        Err(ks_alloc::Status::InvalidParameter(m)) => {
            assert!(
                m.contains("InUsed is 7") && m.contains("OffsetIn.Remaining (6)"),
                "{m}"
            )
        }
        other => panic!("expected STATUS_INVALID_PARAMETER, got {other:?}"),
    }
    assert_eq!(q.offset_in(lead).unwrap().remaining, 6);
    // Exactly Remaining: on to the next frame, relocked, offsets reset.
    q.advance_offsets(lead, 6, 0, false).unwrap();
    assert_eq!(q.frame_id(lead).unwrap(), Some(FrameId::from_sequence(1)));
    assert!(q.is_locked(lead).unwrap());
    assert_eq!(q.offset_in(lead).unwrap().remaining, 6);
    assert_eq!(completed_ids(&mut q), vec![0]);
    // And off the last frame: moved, but relock fails.
    assert!(is_device_not_ready(q.advance_offsets(lead, 6, 0, false)));
    // The AndUnlock form ends unlocked and reports success.
    push(&mut q, 3, 2);
    q.lock(lead).unwrap();
    q.advance_offsets_and_unlock(lead, 2, 0, false).unwrap();
    assert!(!q.is_locked(lead).unwrap());
    assert_eq!(completed_ids(&mut q), vec![1, 2]);
}

#[test]
fn b54_output_pin_exactly_offset_out_remaining_moves_on_less_does_not() {
    let mut q = Q::new(QueueConfig::output());
    let a = q.push(vec![0; 10], StreamHeader::empty(10));
    let b = q.push(vec![0; 6], StreamHeader::empty(6));
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    // Less than OffsetOut.Remaining: the pointer stays on the frame.
    q.advance_offsets(lead, 0, 4, false).unwrap();
    assert_eq!(q.frame_id(lead).unwrap(), Some(a));
    let off = q.offset_out(lead).unwrap();
    assert_eq!((off.position, off.count, off.remaining), (4, 10, 6));
    assert_eq!(q.completed_len(), 0);
    // Exactly OffsetOut.Remaining: on to the next frame, relocked, offsets of that frame.
    q.advance_offsets(lead, 0, 6, false).unwrap();
    assert_eq!(
        q.frame_id(lead).unwrap(),
        Some(b),
        "using all of OffsetOut.Remaining moves to the next frame"
    );
    assert!(q.is_locked(lead).unwrap());
    let off = q.offset_out(lead).unwrap();
    assert_eq!((off.position, off.count, off.remaining), (0, 6, 6));
    assert_eq!(completed_ids(&mut q), vec![0]);
    // The AndUnlock form too: exactly Remaining moves past the last frame, unlocked.
    q.advance_offsets_and_unlock(lead, 0, 6, false).unwrap();
    assert_eq!(q.frame_id(lead).unwrap(), None);
    assert!(!q.is_locked(lead).unwrap());
    assert_eq!(completed_ids(&mut q), vec![1]);
    q.check_invariants().unwrap();
}

#[test]
fn b54_advance_offsets_and_unlock_on_an_unlocked_pointer_is_not_ready_and_changes_nothing() {
    let mut q = Q::new(QueueConfig::input());
    let a = push(&mut q, 1, 8);
    push(&mut q, 2, 8);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    q.advance_offsets(lead, 3, 0, false).unwrap();
    q.unlock(lead, false).unwrap();
    let before = (q.offset_in(lead).unwrap(), q.offset_out(lead).unwrap());
    // Partial, exact (5 = Remaining) and ejecting amounts: all refused, nothing moves.
    for (used, eject) in [(1, false), (5, false), (0, true)] {
        let r = q.advance_offsets_and_unlock(lead, used, 0, eject);
        assert!(
            is_device_not_ready(r.clone()),
            "unlocked pointer, InUsed {used}, eject {eject}: {r:?}"
        );
        assert_eq!(q.frame_id(lead).unwrap(), Some(a));
        assert!(!q.is_locked(lead).unwrap());
        assert_eq!(
            (q.offset_in(lead).unwrap(), q.offset_out(lead).unwrap()),
            before
        );
        assert_eq!(q.completed_len(), 0);
    }
    q.check_invariants().unwrap();
}

#[test]
fn b55_locking_a_cancelled_frame_is_not_ready() {
    let mut q = Q::new(QueueConfig::input());
    let a = push(&mut q, 1, 4);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    let clone = q.clone_pointer(lead, None, 0).unwrap();
    q.unlock(clone, false).unwrap();
    q.unlock(lead, false).unwrap();
    q.cancel(a).unwrap();
    assert!(is_device_not_ready(q.lock(clone)));
    assert!(q.contains(a), "the clone still references it");
    q.delete(clone).unwrap();
    let done: Vec<_> = q.drain_completed().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].status, Err(ks_alloc::Status::Cancelled));
}

fn delete_me(_: &CancelNotice) -> CancelAction {
    CancelAction::Delete
}

fn keep_me(_: &CancelNotice) -> CancelAction {
    CancelAction::Keep
}

#[test]
fn b56_locked_frames_are_not_cancelled_unlocked_clones_get_callbacks() {
    let mut q = Q::new(QueueConfig::input());
    let a = push(&mut q, 1, 4);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    assert!(matches!(
        q.cancel(a),
        Err(ks_alloc::Status::InvalidDeviceState(_))
    ));
    assert_eq!(q.is_cancelled(a), Some(false));
    let deleting = q.clone_pointer(lead, Some(delete_me), 1).unwrap();
    let keeping = q.clone_pointer(lead, Some(keep_me), 2).unwrap();
    let silent = q.clone_pointer(lead, None, 3).unwrap();
    for c in [deleting, keeping, silent] {
        q.unlock(c, false).unwrap();
    }
    q.unlock(lead, false).unwrap();
    q.cancel(a).unwrap();
    assert!(q.kind(deleting).is_err(), "callback asked for deletion");
    assert_eq!(q.first_clone(), Some(keeping));
    assert_eq!(q.next_clone(keeping), Some(silent));
    assert_eq!(q.next_clone(silent), None);
    assert!(q.contains(a));
    q.delete(keeping).unwrap();
    q.delete(silent).unwrap();
    assert!(!q.contains(a));
    q.check_invariants().unwrap();
}

#[test]
fn b56_every_unlocked_clone_is_told_once_even_after_one_asks_to_be_deleted() {
    thread_local! {
        static TOLD: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    fn told(n: &CancelNotice) -> CancelAction {
        TOLD.with(|t| t.borrow_mut().push(n.context));
        if n.context == 1 {
            CancelAction::Delete
        } else {
            CancelAction::Keep
        }
    }
    let mut q = Q::new(QueueConfig::input());
    let a = push(&mut q, 1, 4);
    push(&mut q, 2, 4);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    let clones: Vec<PointerId> = (1..=3)
        .map(|context| q.clone_pointer(lead, Some(told), context).unwrap())
        .collect();
    for &c in &clones {
        q.unlock(c, false).unwrap();
    }
    // A fourth clone on the other frame is not told.
    q.unlock(lead, true).unwrap();
    q.lock(lead).unwrap();
    let elsewhere = q.clone_pointer(lead, Some(told), 4).unwrap();
    q.unlock(elsewhere, false).unwrap();
    q.unlock(lead, false).unwrap();

    q.cancel(a).unwrap();
    assert_eq!(
        TOLD.with(|t| t.borrow().clone()),
        [1, 2, 3],
        "each clone on the cancelled frame told exactly once, in creation order"
    );
    assert!(q.kind(clones[0]).is_err(), "the first asked to be deleted");
    assert_eq!(q.first_clone(), Some(clones[1]));
    assert_eq!(q.next_clone(clones[1]), Some(clones[2]));
    assert_eq!(q.next_clone(clones[2]), Some(elsewhere));
    assert!(q.contains(a), "the kept clones hold the frame");
    q.delete(clones[1]).unwrap();
    q.delete(clones[2]).unwrap();
    assert_eq!(completed_ids(&mut q), vec![0]);
    q.check_invariants().unwrap();
}

#[test]
fn b57_edges_cannot_be_deleted() {
    let mut q = Q::new(QueueConfig::input().with_distinct_trailing_edge());
    let lead = q.leading_edge_id();
    let trail = q.trailing_edge_id().unwrap();
    assert!(matches!(
        q.delete(lead),
        Err(ks_alloc::Status::InvalidParameter(_))
    ));
    assert!(matches!(
        q.delete(trail),
        Err(ks_alloc::Status::InvalidParameter(_))
    ));
    assert_eq!(q.kind(lead).unwrap(), PointerKind::LeadingEdge);
}

#[test]
fn b59_data_used_with_and_without_generate_mappings() {
    // With GENERATE_MAPPINGS: DataUsed = Count − Remaining when a pointer leaves the frame.
    let mut q: Q = Queue::new(QueueConfig::output().with_generate_mappings());
    q.push(vec![0; 16], StreamHeader::empty(16));
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    q.remaining_buffer_mut(lead).unwrap()[..5].fill(9);
    q.advance_offsets(lead, 0, 5, true).unwrap_err(); // eject off the only frame
    let done = q.pop_completed().unwrap();
    assert_eq!(done.header.data_used, 5);
    assert_eq!(&done.frame[..6], &[9, 9, 9, 9, 9, 0]);

    // Without it: DataUsed is what the filter wrote.
    let mut q: Q = Queue::new(QueueConfig::output());
    q.push(vec![0; 16], StreamHeader::empty(16));
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    q.advance_offsets(lead, 0, 5, false).unwrap();
    q.header_mut(lead).unwrap().data_used = 12;
    q.unlock(lead, true).unwrap();
    assert_eq!(q.pop_completed().unwrap().header.data_used, 12);
}

#[test]
fn header_and_data_need_a_lock_and_set_status_code_is_reported() {
    let mut q = Q::new(QueueConfig::input());
    push(&mut q, 5, 4);
    let lead = q.leading_edge(PointerState::Unlocked).unwrap();
    assert!(is_device_not_ready(q.data(lead)));
    assert!(is_device_not_ready(q.header(lead)));
    q.lock(lead).unwrap();
    assert_eq!(q.header(lead).unwrap().data_used, 4);
    q.set_status_code(
        lead,
        Err(ks_alloc::Status::Unsuccessful("device error".into())),
    )
    .unwrap();
    q.unlock(lead, true).unwrap();
    let done = q.pop_completed().unwrap();
    assert!(matches!(
        done.status,
        Err(ks_alloc::Status::Unsuccessful(_))
    ));
}

#[test]
fn completion_sink_receives_frames_and_flush_completes_everything() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut q = Q::new(QueueConfig::input().with_distinct_trailing_edge());
    let s = Arc::clone(&seen);
    q.set_completion_sink(Box::new(move |c| {
        s.lock().unwrap().push((c.id.sequence(), c.status.is_ok()))
    }));
    for i in 0..4 {
        push(&mut q, i, 4);
    }
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    let _clone = q.clone_pointer(lead, None, 0).unwrap();
    q.advance(lead).unwrap();
    assert_eq!(q.flush(), 4);
    assert!(q.is_empty());
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    // Frame 0 had been passed by the leading edge (success); the rest were cancelled.
    assert_eq!(got, vec![(0, true), (1, false), (2, false), (3, false)]);
    q.check_invariants().unwrap();
    assert_eq!(q.stats().arrived, 4);
    assert_eq!(q.stats().completed, 4);
}

#[test]
fn available_bytes_counts_input_and_output_ahead_of_the_leading_edge() {
    let mut q = Q::new(QueueConfig::input());
    q.push(vec![0; 8], StreamHeader::with_data(8, 6));
    q.push(vec![0; 8], StreamHeader::with_data(8, 3));
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    q.advance_offsets(lead, 2, 0, false).unwrap();
    assert_eq!(q.available_bytes(), (4 + 3, 8 + 8));
    assert_eq!(q.frames_ahead(), 2);
}

// ---- proptest: random operation sequences ----

/// The proptest's timeout callback: a clone fails its frame and goes, an edge moves on.
fn expire(q: &mut Q, p: PointerId) {
    if q.kind(p).unwrap() == PointerKind::Clone {
        let _ = q.set_status_code(p, Err(ks_alloc::Status::Unsuccessful("timed out".into())));
        q.delete(p).unwrap();
    } else {
        let _ = q.advance(p);
    }
}

/// Records which pointer's timeout ran, in the pointer's context (its order of firing).
fn note_fired(q: &mut Q, p: PointerId) {
    let n = FIRED.with(|f| {
        f.borrow_mut().push(p);
        f.borrow().len()
    });
    q.set_context(p, 100 + n as u64).unwrap();
}

thread_local! {
    static FIRED: std::cell::RefCell<Vec<PointerId>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn fired() -> Vec<PointerId> {
    FIRED.with(|f| std::mem::take(&mut *f.borrow_mut()))
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

#[test]
fn a_timeout_fires_once_after_its_interval_and_may_complete_the_frame() {
    let mut q = Q::new(QueueConfig::input());
    let id = push(&mut q, 1, 4);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    let dma = q.clone_pointer(lead, None, 0).unwrap();
    q.unlock(lead, true).unwrap();
    q.schedule_timeout(dma, expire, Duration::from_secs(60))
        .unwrap();
    assert_eq!(q.fire_timeouts(Instant::now()), 0, "not due yet");
    assert!(q.contains(id), "the clone holds the frame");
    assert_eq!(q.fire_timeouts(soon()), 1);
    let done = q.pop_completed().expect("the callback deleted the clone");
    assert_eq!(done.id, id);
    assert!(matches!(
        done.status,
        Err(ks_alloc::Status::Unsuccessful(_))
    ));
    assert_eq!(q.fire_timeouts(soon()), 0, "fired once");
    q.check_invariants().unwrap();
}

#[test]
fn timeouts_fire_in_deadline_order_and_rescheduling_replaces() {
    let mut q = Q::new(QueueConfig::input());
    push(&mut q, 1, 4);
    let lead = q.leading_edge_id();
    let a = q.clone_pointer(lead, None, 0).unwrap();
    let b = q.clone_pointer(lead, None, 0).unwrap();
    q.schedule_timeout(a, note_fired, Duration::from_millis(30))
        .unwrap();
    q.schedule_timeout(b, note_fired, Duration::from_millis(20))
        .unwrap();
    q.schedule_timeout(lead, note_fired, Duration::from_millis(10))
        .unwrap();
    // Again for the leading edge: the new deadline replaces the old one.
    q.schedule_timeout(lead, note_fired, Duration::from_secs(7200))
        .unwrap();
    assert_eq!(q.next_timeout(), q.timeout_deadline(b).unwrap());
    assert_eq!(q.fire_timeouts(soon()), 2);
    assert_eq!(fired(), [b, a]);
    assert_eq!(q.fire_timeouts(soon() + Duration::from_secs(7200)), 1);
    assert_eq!(fired(), [lead]);
    assert_eq!(q.next_timeout(), None);
}

#[test]
fn deleting_a_pointer_or_flushing_cancels_its_timeout() {
    let mut q = Q::new(QueueConfig::input());
    push(&mut q, 1, 4);
    let lead = q.leading_edge_id();
    let c = q.clone_pointer(lead, None, 0).unwrap();
    q.schedule_timeout(c, note_fired, Duration::ZERO).unwrap();
    q.delete(c).unwrap();
    assert_eq!(q.next_timeout(), None);
    assert_eq!(q.fire_timeouts(soon()), 0);
    // A stale handle is refused by all three calls.
    for r in [
        q.schedule_timeout(c, note_fired, Duration::ZERO),
        q.cancel_timeout(c).map(drop),
        q.timeout_deadline(c).map(drop),
    ] {
        assert!(
            matches!(r, Err(ks_alloc::Status::InvalidParameter(_))),
            "{r:?}"
        );
    }
    q.schedule_timeout(lead, note_fired, Duration::ZERO)
        .unwrap();
    q.flush();
    assert_eq!(q.next_timeout(), None, "a stopped queue has no timeouts");
    assert_eq!(q.fire_timeouts(soon()), 0);
    assert!(fired().is_empty());
}

#[test]
fn a_callback_that_deletes_another_due_pointer_cancels_its_timeout() {
    fn delete_next_clone(q: &mut Q, p: PointerId) {
        FIRED.with(|f| f.borrow_mut().push(p));
        let next = q.next_clone(p).expect("a younger clone");
        q.delete(next).unwrap();
    }
    let mut q = Q::new(QueueConfig::input());
    push(&mut q, 1, 4);
    let lead = q.leading_edge_id();
    let a = q.clone_pointer(lead, None, 0).unwrap();
    let b = q.clone_pointer(lead, None, 0).unwrap();
    q.schedule_timeout(a, delete_next_clone, Duration::ZERO)
        .unwrap();
    q.schedule_timeout(b, note_fired, Duration::from_millis(1))
        .unwrap();
    assert_eq!(q.fire_timeouts(soon()), 1, "b went before its turn");
    assert_eq!(fired(), [a]);
    q.check_invariants().unwrap();
}

#[test]
fn a_callback_that_reschedules_at_once_waits_for_the_next_call() {
    fn again(q: &mut Q, p: PointerId) {
        q.schedule_timeout(p, again, Duration::ZERO).unwrap();
    }
    // On its own thread: a `fire_timeouts` that kept running what its callbacks scheduled
    // would never return, and the test fails at the deadline instead of hanging.
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut q = Q::new(QueueConfig::input());
        let lead = q.leading_edge_id();
        q.schedule_timeout(lead, again, Duration::ZERO).unwrap();
        let fired = [q.fire_timeouts(soon()), q.fire_timeouts(soon())];
        let _ = done.send((fired, q.timeout_deadline(lead).unwrap().is_some()));
    });
    let (fired, rescheduled) = result
        .recv_timeout(Duration::from_secs(20))
        .expect("fire_timeouts returned");
    assert_eq!(fired, [1, 1]);
    assert!(rescheduled);
}

#[test]
fn an_interval_past_the_clock_is_refused() {
    let mut q = Q::new(QueueConfig::input());
    let lead = q.leading_edge_id();
    match q.schedule_timeout(lead, note_fired, Duration::MAX) {
        Err(ks_alloc::Status::InvalidParameter(m)) => assert!(m.contains("too long"), "{m}"),
        other => panic!("expected STATUS_INVALID_PARAMETER, got {other:?}"),
    }
    assert_eq!(q.next_timeout(), None);
}

#[test]
fn flush_tells_unlocked_clones_on_the_frames_it_cancels() {
    fn count(n: &CancelNotice) -> CancelAction {
        CANCELLED.with(|c| c.borrow_mut().push(n.context));
        CancelAction::Keep
    }
    thread_local! {
        static CANCELLED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut q = Q::new(QueueConfig::input());
    push(&mut q, 0, 4);
    push(&mut q, 1, 4);
    push(&mut q, 2, 4);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    // Frame 0: processed, the leading edge moves past it; a clone keeps it (not cancelled
    // by the flush: it completes successfully, so its clone is not told).
    let behind = q.clone_pointer(lead, Some(count), 1).unwrap();
    q.unlock(behind, false).unwrap();
    q.unlock(lead, true).unwrap();
    // Frame 1: one unlocked clone (told) and one locked clone (not told: locked).
    q.lock(lead).unwrap();
    let unlocked = q.clone_pointer(lead, Some(count), 2).unwrap();
    q.unlock(unlocked, false).unwrap();
    let _locked = q.clone_pointer(lead, Some(count), 3).unwrap();
    q.unlock(lead, false).unwrap();
    assert_eq!(q.flush(), 3);
    assert_eq!(CANCELLED.with(|c| c.borrow().clone()), [2]);
    assert_eq!(q.first_clone(), None, "every clone deleted");
    let statuses: Vec<bool> = q.drain_completed().map(|c| c.status.is_ok()).collect();
    assert_eq!(statuses, [true, false, false]);
    q.check_invariants().unwrap();
}

#[derive(Debug, Clone)]
enum Op {
    Push(u8),
    Lock(usize),
    Unlock(usize, bool),
    Advance(usize),
    AdvanceOffsets(usize, u32, bool),
    Clone(usize, bool),
    Delete(usize),
    Cancel(u64),
    GetLeading(bool),
    GetTrailing(bool),
    ScheduleTimeout(usize, u64),
    CancelTimeout(usize),
    FireTimeouts(u64),
    SetDataUsed(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..16).prop_map(Op::Push),
        2 => any::<usize>().prop_map(Op::Lock),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(p, e)| Op::Unlock(p, e)),
        3 => any::<usize>().prop_map(Op::Advance),
        2 => (any::<usize>(), 0u32..20, any::<bool>()).prop_map(|(p, n, e)| Op::AdvanceOffsets(p, n, e)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(p, d)| Op::Clone(p, d)),
        2 => any::<usize>().prop_map(Op::Delete),
        1 => (0u64..40).prop_map(Op::Cancel),
        1 => any::<bool>().prop_map(Op::GetLeading),
        1 => any::<bool>().prop_map(Op::GetTrailing),
        2 => (any::<usize>(), 0u64..40).prop_map(|(p, ms)| Op::ScheduleTimeout(p, ms)),
        1 => any::<usize>().prop_map(Op::CancelTimeout),
        2 => (0u64..80).prop_map(Op::FireTimeouts),
        1 => (any::<usize>(), 0u8..20).prop_map(|(p, n)| Op::SetDataUsed(p, n)),
    ]
}

fn record(q: &mut Q, completions: &mut HashMap<u64, usize>) -> Result<(), TestCaseError> {
    for c in q.drain_completed() {
        // The frame carries its own sequence number: the right frame came back.
        prop_assert_eq!(u64::from(c.frame[0]), c.id.sequence() % 256);
        *completions.entry(c.id.sequence()).or_default() += 1;
    }
    Ok(())
}

fn state(locked: bool) -> PointerState {
    if locked {
        PointerState::Locked
    } else {
        PointerState::Unlocked
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_operations_keep_invariants_and_complete_every_frame_once(
        trailing in any::<bool>(),
        output in any::<bool>(),
        generate_mappings in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        let mut cfg = if output { QueueConfig::output() } else { QueueConfig::input() };
        if trailing {
            cfg = cfg.with_distinct_trailing_edge();
        }
        if generate_mappings {
            cfg = cfg.with_generate_mappings();
        }
        let mut q = Q::new(cfg);
        let mut pointers = vec![q.leading_edge_id()];
        if let Some(t) = q.trailing_edge_id() {
            pointers.push(t);
        }
        let mut completions: HashMap<u64, usize> = HashMap::new();
        let mut pushed = 0u64;
        for op in ops {
            let pick = |i: usize| pointers[i % pointers.len()];
            let before: Vec<_> = pointers
                .iter()
                .map(|&p| (p, q.frame_id(p), q.offset_in(p), q.offset_out(p)))
                .collect();
            match op {
                Op::SetDataUsed(i, n) => {
                    if let Ok(h) = q.header_mut(pick(i)) {
                        h.data_used = u32::from(n);
                    }
                }
                Op::Push(len) => {
                    let mut f = vec![0u8; usize::from(len)];
                    f[0] = (pushed % 256) as u8;
                    q.push(f, StreamHeader::with_data(u32::from(len), u32::from(len)));
                    pushed += 1;
                }
                Op::Lock(i) => {
                    let p = pick(i);
                    let had_frame = q.frame_id(p).unwrap().is_some();
                    let r = q.lock(p);
                    if !had_frame {
                        prop_assert!(r.is_err());
                    }
                }
                Op::Unlock(i, eject) => q.unlock(pick(i), eject).unwrap(),
                Op::Advance(i) => {
                    let p = pick(i);
                    let locked = q.is_locked(p).unwrap();
                    let r = q.advance(p);
                    if !locked {
                        prop_assert!(r.is_ok(), "unlocked advance always succeeds");
                    }
                }
                Op::AdvanceOffsets(i, n, eject) => {
                    let p = pick(i);
                    let locked = q.is_locked(p).unwrap();
                    let r = q.advance_offsets(p, if output { 0 } else { n }, if output { n } else { 0 }, eject);
                    if !locked {
                        prop_assert!(is_device_not_ready(r));
                    }
                }
                Op::Clone(i, keep_locked) => {
                    let p = pick(i);
                    if let Ok(c) = q.clone_pointer(p, Some(delete_me), 0) {
                        prop_assert_eq!(q.is_locked(c).unwrap(), q.is_locked(p).unwrap());
                        if !keep_locked {
                            q.unlock(c, false).unwrap();
                        }
                        pointers.push(c);
                    }
                }
                Op::Delete(i) => {
                    let p = pick(i);
                    let kind = q.kind(p).unwrap();
                    let r = q.delete(p);
                    if kind == PointerKind::Clone {
                        prop_assert!(r.is_ok());
                        pointers.retain(|x| *x != p);
                    } else {
                        prop_assert!(r.is_err());
                    }
                }
                Op::Cancel(seq) => {
                    let _ = q.cancel(FrameId::from_sequence(seq));
                    // Cancel callbacks may have deleted clones.
                    pointers.retain(|p| q.kind(*p).is_ok());
                }
                Op::GetLeading(l) => {
                    let _ = q.leading_edge(state(l));
                }
                Op::GetTrailing(l) => {
                    let t = q.trailing_edge(state(l));
                    if !trailing {
                        prop_assert!(t.is_none());
                    }
                }
                Op::ScheduleTimeout(i, ms) => {
                    q.schedule_timeout(pick(i), expire, Duration::from_millis(ms)).unwrap();
                }
                Op::CancelTimeout(i) => {
                    q.cancel_timeout(pick(i)).unwrap();
                }
                Op::FireTimeouts(ms) => {
                    q.fire_timeouts(Instant::now() + Duration::from_millis(ms));
                    // Timeout callbacks may have deleted clones.
                    pointers.retain(|p| q.kind(*p).is_ok());
                }
            }
            if let Err(e) = q.check_invariants() {
                prop_assert!(false, "invariant broken: {}", e);
            }
            // ks-spec.md §8.1: a pointer's Count changes only when it moves to another
            // frame, and its Remaining only decreases.
            for (p, frame, oin, oout) in before {
                if q.kind(p).is_err() || q.frame_id(p) != frame {
                    continue;
                }
                for (was, now) in [(oin, q.offset_in(p)), (oout, q.offset_out(p))] {
                    let (was, now) = (was.unwrap(), now.unwrap());
                    prop_assert_eq!(now.count, was.count, "{:?} changed a Count", op);
                    prop_assert!(now.remaining <= was.remaining, "{:?} raised a Remaining", op);
                }
            }
            record(&mut q, &mut completions)?;
            prop_assert!(completions.values().all(|n| *n == 1), "a frame completed twice");
        }
        // Drain: delete every clone, unlock and move both edges to the end.
        for p in pointers.clone() {
            if q.kind(p).unwrap() == PointerKind::Clone {
                q.delete(p).unwrap();
            }
        }
        for edge in [Some(q.leading_edge_id()), q.trailing_edge_id()].into_iter().flatten() {
            q.unlock(edge, false).unwrap();
            while q.frame_id(edge).unwrap().is_some() {
                q.advance(edge).unwrap();
            }
        }
        record(&mut q, &mut completions)?;
        prop_assert!(q.is_empty());
        prop_assert_eq!(completions.len() as u64, pushed);
        prop_assert!(completions.values().all(|n| *n == 1));
        q.check_invariants().map_err(TestCaseError::fail)?;
    }
}

#[test]
fn b58_frame_access_needs_a_locked_pointer() {
    // KsStreamPointerGetIrp returns NULL for an unlocked pointer: here the frame itself.
    let mut q = Q::new(QueueConfig::input());
    push(&mut q, 9, 4);
    let lead = q.leading_edge(PointerState::Unlocked).unwrap();
    assert!(is_device_not_ready(q.frame(lead)));
    q.lock(lead).unwrap();
    assert_eq!(q.frame(lead).unwrap()[0], 9);
}

#[test]
fn a_header_claiming_more_data_than_its_frame_counts_only_the_frame() {
    let mut q = Q::new(QueueConfig::input());
    // DataUsed 20 in an 8-byte frame: an inconsistent header (policy: Count is clamped).
    let (f, _) = frame(7, 8);
    q.push(f, StreamHeader::with_data(8, 20));
    push(&mut q, 8, 4);
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    let o = q.offset_in(lead).unwrap();
    assert_eq!((o.count, o.remaining), (8, 8));
    assert_eq!(q.remaining_data(lead).unwrap().len(), 8);
    assert_eq!(q.available_bytes().0, 12, "input bytes: 8 + 4");
    // Consuming the 8 bytes there are finishes the frame, as for any frame.
    q.advance_offsets(lead, 8, 0, false).unwrap();
    assert_eq!(q.frame_id(lead).unwrap().map(|f| f.sequence()), Some(1));
    q.check_invariants().unwrap();
}

#[test]
fn a_panicking_cancel_callback_does_not_leave_a_cancel_or_a_flush_half_done() {
    fn boom(_: &CancelNotice) -> CancelAction {
        panic!("a filter's bug (on purpose)");
    }
    let mut q = Q::new(QueueConfig::input());
    let a = push(&mut q, 1, 4);
    push(&mut q, 2, 4);
    let lead = q.leading_edge_id();
    let bad = q.clone_pointer(lead, Some(boom), 0).unwrap();
    let good = q.clone_pointer(lead, Some(delete_me), 0).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.cancel(a)));
    assert!(r.is_err(), "the panic resumes");
    assert!(
        q.kind(good).is_err(),
        "the other clone was still told, and deleted"
    );
    assert!(q.kind(bad).is_ok(), "the panicking one keeps its clone");
    q.check_invariants().unwrap();
    // The flush: the panic resumes once every clone is gone and every frame completed.
    q.lock(q.leading_edge_id()).unwrap();
    q.unlock(q.leading_edge_id(), false).unwrap();
    let c2 = q.clone_pointer(q.leading_edge_id(), Some(boom), 0).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| q.flush()));
    assert!(r.is_err());
    assert!(
        q.kind(c2).is_err() && q.kind(bad).is_err(),
        "every clone deleted"
    );
    q.check_invariants().unwrap();
    let done = q.drain_completed().count();
    assert_eq!(done, 2);
    assert!(q.is_empty());
}

#[test]
fn a_panic_in_eject_leading_work_leaves_the_edge_locked_on_its_frame() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    // Four frames; with `clone`, an unlocked clone on the last one, which the work never
    // reaches but whose presence makes `eject_leading` take its step-by-step path instead
    // of the one for an edge alone.
    fn setup(clone: bool, locked: bool) -> (Q, Option<PointerId>) {
        let mut q = Q::new(QueueConfig::input());
        for i in 0..4 {
            push(&mut q, i, 2);
        }
        let lead = q.leading_edge_id();
        let c = clone.then(|| {
            let c = q.clone_pointer(lead, None, 0).unwrap();
            for _ in 0..3 {
                q.advance(c).unwrap();
            }
            c
        });
        if locked {
            q.lock(lead).unwrap();
        }
        (q, c)
    }
    fn state(q: &mut Q) -> String {
        let lead = q.leading_edge_id();
        format!(
            "{:?} len {} ahead {} lead {:?} {:?} {:?} done {:?}",
            q.stats(),
            q.len(),
            q.frames_ahead(),
            q.is_locked(lead),
            q.frame_id(lead),
            q.offset_in(lead),
            completed_ids(q),
        )
    }
    for locked in [false, true] {
        let mut states = Vec::new();
        for clone in [false, true] {
            let (mut q, c) = setup(clone, locked);
            let mut seen = Vec::new();
            let r = catch_unwind(AssertUnwindSafe(|| {
                q.eject_leading(usize::MAX, |at| {
                    seen.push(at.frame()[0]);
                    if seen.len() == 3 {
                        panic!("a filter's bug (on purpose)");
                    }
                    Ok::<(), ()>(())
                })
            }));
            assert!(r.is_err(), "the panic goes on to the caller");
            assert_eq!(seen, [0, 1, 2]);
            q.check_invariants().unwrap();
            let lead = q.leading_edge_id();
            assert_eq!(q.is_locked(lead), Ok(true), "clone {clone} locked {locked}");
            assert_eq!(q.frame_id(lead), Ok(Some(FrameId::from_sequence(2))));
            assert_eq!(q.leading_edge(PointerState::Locked), Some(lead));
            assert_eq!(q.stats().completed, 2);
            states.push(state(&mut q));
            assert!(states.last().unwrap().ends_with("done [0, 1]"));
            // The next call resumes on the frame where the work panicked.
            if let Some(c) = c {
                q.delete(c).unwrap();
            }
            push(&mut q, 4, 2);
            let mut seen = Vec::new();
            let n = q.eject_leading(usize::MAX, |at| {
                seen.push(at.frame()[0]);
                Ok::<(), ()>(())
            });
            assert_eq!(n, Ok(3));
            assert_eq!(seen, [2, 3, 4]);
            assert_eq!(completed_ids(&mut q), [2, 3, 4]);
            assert_eq!(q.frame_id(lead), Ok(None));
            assert_eq!(q.stats().completed, 5);
            q.check_invariants().unwrap();
        }
        assert_eq!(states[0], states[1], "both paths leave the same state");
    }
}

#[test]
fn a_pointers_count_stays_while_the_header_is_rewritten_under_it() {
    // ks-spec.md §8.1: Count changes only when the pointer moves to another frame;
    // Remaining starts equal to Count and only decreases.
    let mut q = Q::new(QueueConfig::input());
    q.push(vec![0; 8], StreamHeader::with_data(8, 2));
    q.push(vec![0; 8], StreamHeader::with_data(8, 6));
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    let at_arrival = Offset {
        position: 0,
        count: 2,
        remaining: 2,
    };
    assert_eq!(q.offset_in(lead).unwrap(), at_arrival);
    let clone = q.clone_pointer(lead, None, 0).unwrap();
    q.header_mut(lead).unwrap().data_used = 8; // the minidriver rewrites DataUsed
    assert_eq!(q.offset_in(lead).unwrap(), at_arrival, "the edge stayed");
    assert_eq!(
        q.offset_in(clone).unwrap(),
        at_arrival,
        "and so did its clone"
    );
    assert_eq!(q.remaining_data(lead).unwrap().len(), 2, "Remaining bytes");
    assert_eq!(q.available_bytes().0, 2 + 6);
    q.advance_offsets(lead, 1, 0, false).unwrap();
    assert_eq!(q.offset_in(lead).unwrap().remaining, 1);
    // A clone made now takes its parent's offsets, Count included.
    let late = q.clone_pointer(lead, None, 0).unwrap();
    assert_eq!(q.offset_in(late).unwrap(), q.offset_in(lead).unwrap());
    // Consuming the last byte of its Count moves the edge on, though DataUsed now says 8.
    q.advance_offsets(lead, 1, 0, false).unwrap();
    assert_eq!(q.frame_id(lead).unwrap(), Some(FrameId::from_sequence(1)));
    assert_eq!(
        q.offset_in(lead).unwrap().count,
        6,
        "a new frame, a new Count"
    );
    q.check_invariants().unwrap();

    // A pointer arriving on a frame takes its header as it is then.
    let mut q = Q::new(QueueConfig::input());
    q.push(vec![0; 8], StreamHeader::with_data(8, 8));
    q.push(vec![0; 8], StreamHeader::with_data(8, 6));
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    let scout = q.clone_pointer(lead, None, 0).unwrap();
    q.advance(scout).unwrap(); // locked on frame 1
    q.header_mut(scout).unwrap().data_used = 3;
    assert_eq!(q.offset_in(scout).unwrap().count, 6);
    q.advance(lead).unwrap();
    assert_eq!(q.offset_in(lead).unwrap().count, 3);
    q.check_invariants().unwrap();

    // Pointers waiting past the end take the Counts of the frame that arrives.
    let mut q = Q::new(QueueConfig::output().with_distinct_trailing_edge());
    let (lead, trail) = (q.leading_edge_id(), q.trailing_edge_id().unwrap());
    q.push(vec![0; 8], StreamHeader::empty(8)); // both edges land on it
    q.lock(lead).unwrap();
    let clone = q.clone_pointer(lead, None, 0).unwrap();
    q.header_mut(lead).unwrap().frame_extent = 4;
    for p in [lead, trail, clone] {
        assert_eq!(q.offset_out(p).unwrap().count, 8);
    }
    assert_eq!(
        q.remaining_buffer_mut(lead).unwrap().len(),
        4,
        "never more than the frame's extent"
    );
    q.unlock(lead, true).unwrap();
    q.unlock(clone, true).unwrap();
    assert_eq!(
        q.offset_out(lead).unwrap(),
        Offset::default(),
        "past the end"
    );
    q.push(vec![0; 16], StreamHeader::empty(16));
    for p in [lead, clone] {
        assert_eq!(q.offset_out(p).unwrap().count, 16);
    }
    assert_eq!(q.offset_out(trail).unwrap().count, 8, "still on frame 0");
    q.check_invariants().unwrap();
}

#[test]
fn a_dma_clone_completes_partially_after_the_edge_moved_on() {
    // ks-spec.md §8.4, the packet-based DMA loop: clone the leading edge, program the
    // device from the clone, advance the edge; on completion, advance the clone's offsets.
    let mut q = Q::new(QueueConfig::input().with_generate_mappings());
    q.push(vec![0; 8], StreamHeader::with_data(8, 8));
    q.push(vec![0; 8], StreamHeader::with_data(8, 8));
    let lead = q.leading_edge(PointerState::Locked).unwrap();
    let dma = q.clone_pointer(lead, None, 0).unwrap();
    q.advance(lead).unwrap();
    // The edge left without moving its offsets: DataUsed = Count − Remaining = 0
    // (behaviour 59) …
    assert_eq!(
        q.frame_header(FrameId::from_sequence(0)).unwrap().data_used,
        0
    );
    // … but the clone never moved: its Count and Remaining are those it started with.
    let full = Offset {
        position: 0,
        count: 8,
        remaining: 8,
    };
    assert_eq!(q.offset_in(dma).unwrap(), full);
    q.advance_offsets(dma, 4, 0, false).unwrap(); // partial completion
    assert_eq!(
        q.offset_in(dma).unwrap(),
        Offset {
            position: 4,
            count: 8,
            remaining: 4
        }
    );
    assert_eq!(q.remaining_data(dma).unwrap().len(), 4);
    // The rest completes the frame: the clone moves on and DataUsed becomes 8 − 0.
    q.advance_offsets_and_unlock(dma, 4, 0, false).unwrap();
    assert_eq!(q.frame_id(dma).unwrap(), Some(FrameId::from_sequence(1)));
    let done = q.pop_completed().unwrap();
    assert_eq!((done.id.sequence(), done.header.data_used), (0, 8));
    q.delete(dma).unwrap();
    q.check_invariants().unwrap();
}

#[test]
fn a_panicking_completion_sink_does_not_leave_a_flush_half_done() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::{Arc, Mutex};
    // A sink that records each frame it gets, then panics (a filter's bug, on purpose).
    fn failing_sink(seen: &Arc<Mutex<Vec<u64>>>) -> ks_graph::queue::CompletionSink<Vec<u8>> {
        let seen = Arc::clone(seen);
        Box::new(move |c| {
            seen.lock().unwrap().push(c.id.sequence());
            panic!("sink bug on frame {}", c.id.sequence());
        })
    }
    fn message(p: Box<dyn std::any::Any + Send>) -> String {
        p.downcast::<String>().map(|s| *s).unwrap_or_default()
    }

    // Flushing frames no clone holds: each is cancelled and completes as the edges move
    // past the end (with a trailing edge, frame 0 waits for it: 1 and 2 go first).
    for (trailing, order) in [(false, [0, 1, 2]), (true, [1, 2, 0])] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut cfg = QueueConfig::input();
        if trailing {
            cfg = cfg.with_distinct_trailing_edge();
        }
        let mut q = Q::new(cfg);
        q.set_completion_sink(failing_sink(&seen));
        for i in 0..3 {
            push(&mut q, i, 2);
        }
        let r = catch_unwind(AssertUnwindSafe(|| q.flush()));
        let first = format!("sink bug on frame {}", order[0]);
        assert_eq!(message(r.unwrap_err()), first, "the first panic resumes");
        assert_eq!(
            *seen.lock().unwrap(),
            order,
            "every frame still went to the sink"
        );
        assert!(q.is_empty());
        assert_eq!(q.stats().completed, 3);
        q.check_invariants().unwrap();
    }

    // Frames the flush completes by deleting the clones on them, and frames it cancels.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut q = Q::new(QueueConfig::input());
    for i in 0..4 {
        push(&mut q, i, 2);
    }
    let lead = q.leading_edge_id();
    let c0 = q.clone_pointer(lead, None, 0).unwrap();
    q.advance(lead).unwrap();
    let c1 = q.clone_pointer(lead, None, 0).unwrap();
    q.advance(lead).unwrap(); // frames 0 and 1 wait for their clones
    q.set_completion_sink(failing_sink(&seen));
    let r = catch_unwind(AssertUnwindSafe(|| q.flush()));
    assert_eq!(message(r.unwrap_err()), "sink bug on frame 0");
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2, 3]);
    assert!(
        q.kind(c0).is_err() && q.kind(c1).is_err(),
        "every clone deleted"
    );
    assert!(q.is_empty());
    assert_eq!(q.frame_id(lead), Ok(None));
    q.check_invariants().unwrap();
    // The sink stays installed: later completions still go to it.
    push(&mut q, 9, 2);
    assert!(catch_unwind(AssertUnwindSafe(|| q.unlock(lead, true))).is_err());
    assert_eq!(seen.lock().unwrap().last(), Some(&4));
    q.check_invariants().unwrap();

    // Installing a sink hands it every frame that completed before; if it panics, the rest
    // still go to it and it is installed.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut q = Q::new(QueueConfig::input());
    for i in 0..3 {
        push(&mut q, i, 2);
    }
    q.eject_leading(usize::MAX, |_| Ok::<(), ()>(())).unwrap();
    assert_eq!(q.completed_len(), 3);
    let r = catch_unwind(AssertUnwindSafe(|| {
        q.set_completion_sink(failing_sink(&seen))
    }));
    assert_eq!(message(r.unwrap_err()), "sink bug on frame 0");
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2]);
    assert_eq!(q.completed_len(), 0);
    assert!(q.take_completion_sink().is_some(), "installed");
    q.check_invariants().unwrap();
}
