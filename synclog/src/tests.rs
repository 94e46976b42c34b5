//! Unit tests of the shared log's own rules (see `lib.rs`).

use super::*;

#[test]
fn at_a_standstill_the_nearest_kept_thread_goes_first_and_the_wait_is_bounded() {
    assert_eq!(late_still(0), LATE_STILL);
    assert_eq!(late_still(1), LATE_STILL);
    assert!(late_still(2) > late_still(1));
    assert!(late_still(3) > late_still(2));
    let most = late_still(u32::MAX);
    assert_eq!(most, late_still(STAGGER_RANKS + 1));
    assert!(
        most < LATE_LIMIT,
        "a standstill ends before the overall limit"
    );
}

#[test]
fn ring_round_trip_and_capacity() {
    let (_fd, log) = SharedSyncLog::create(MODE_RECORD).expect("create");
    let ring = log.ring(3).expect("ring");
    for i in 0..RING_CAPACITY as u64 {
        assert!(ring.push(SyncEntry {
            object: i,
            seq: i,
            order: i,
            arrival: i,
            late_to: NO_ARRIVAL,
            gate_after: NO_ARRIVAL,
            op: 1,
            result: 0
        }));
    }
    assert!(!ring.push(SyncEntry::default()), "a full ring refuses");
    assert_eq!(ring.pop().map(|e| e.object), Some(0));
    assert!(ring.push(SyncEntry {
        object: 99,
        seq: 0,
        order: 0,
        arrival: NO_ARRIVAL,
        late_to: NO_ARRIVAL,
        gate_after: NO_ARRIVAL,
        op: 2,
        result: -1
    }));
    assert_eq!(ring.len(), RING_CAPACITY as u64);
}

#[test]
fn objects_are_per_process_and_stable() {
    let (_fd, log) = SharedSyncLog::create(MODE_RECORD).expect("create");
    let a = log.object(0, 0x1000).expect("a") as *const ObjectTurn;
    let b = log.object(1, 0x1000).expect("b") as *const ObjectTurn;
    let a2 = log.object(0, 0x1000).expect("a2") as *const ObjectTurn;
    assert_eq!(a, a2);
    assert_ne!(a, b);
}

#[test]
fn thread_table() {
    let (_fd, log) = SharedSyncLog::create(MODE_REPLAY).expect("create");
    assert!(log.register_thread(4242, 7, 1));
    assert_eq!(log.lookup_thread(4242), Some((7, 1)));
    assert_eq!(log.lookup_thread(1), None);
}

#[test]
fn a_futex_wait_gated_after_an_event_names_its_lock_word_and_free_value() {
    let wait = SyncEntry {
        op: ops::FUTEX_WAIT,
        object: 0x3050,
        seq: 2 | WOKEN_BY_WAKE,
        gate_after: 7,
        ..SyncEntry::default()
    };
    let lock = LockGate {
        word: 0x3050,
        free: 0,
    };
    assert_eq!(wait.lock_gate_after(7), Some(lock));
    assert_eq!(wait.lock_gate_after(6), None, "gated after another event");
    let once = SyncEntry { seq: 5, ..wait };
    assert_eq!(once.lock_gate_after(7).map(|g| g.free), Some(3));
    let condvar = SyncEntry { seq: 9, ..wait };
    assert_eq!(condvar.lock_gate_after(7), None);
    let wake = SyncEntry {
        op: ops::FUTEX_WAKE,
        ..wait
    };
    assert_eq!(wake.lock_gate_after(7), None);
}
