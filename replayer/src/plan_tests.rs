//! The plan's pass over a trace file and the window its events are read
//! through.

use std::path::Path;

use rrc_trace::{
    EndRecord, ExitStatus, SyncBatch, SyncOp, SyncRecord, SyscallExtra, SyscallRecord, ThreadId,
    TraceHeader, TraceRecord, TraceWriter, NO_ORDER,
};

use crate::plan::{PlannedEvent, ReplayPlan};

fn header() -> TraceHeader {
    TraceHeader {
        argv: vec![b"./prog".to_vec()],
        env: vec![],
        cwd: b"/tmp".to_vec(),
        exe: b"/tmp/prog".to_vec(),
        start_time_unix_ns: 42,
        shim_path: b"/lib/librrc_shim.so".to_vec(),
        shim_digest: (0, 0),
        ignored_signals: 0,
        blocked_signals: 0,
        inherited_fds: Vec::new(),
        exe_digest: Default::default(),
        secret_env: Vec::new(),
        serialized: false,
        rrc_version: "0.1.0".into(),
    }
}

fn read(thread: ThreadId, index: u64, order: u64, bytes: usize) -> TraceRecord {
    TraceRecord::Syscall(SyscallRecord {
        thread,
        index,
        // Event 1 is a write to stdout (marked as output), the rest reads.
        nr: if index == 1 {
            libc::SYS_write
        } else {
            libc::SYS_read
        } as u32,
        args: [u64::from(index == 1), 0, 0, 0, 0, 0],
        ret: bytes as i64,
        inputs: Vec::new(),
        outputs: vec![vec![index as u8; bytes]],
        interval_ns: 0,
        return_ns: 0,
        order,
        extra: if index == 1 {
            SyscallExtra::StdStream(1)
        } else {
            SyscallExtra::None
        },
        digested: 0,
    })
}

fn start(thread: ThreadId) -> TraceRecord {
    TraceRecord::ThreadStart {
        thread,
        process: 0,
        parent: None,
        tid: 100 + thread as i32,
        pid: 100,
    }
}

const BIG: usize = 64 << 10;

/// Thread 0 reads 100 blocks of 64 KiB (stamps 10, 20, ...); thread 1's
/// one event (stamp 15, the second in the order) and a sync op (arrival
/// 5, acquisition 25) are written after all of them, as a thread blocked
/// in a call for the whole run would be.
fn records() -> Vec<TraceRecord> {
    let mut recs = vec![start(0), start(1)];
    recs.extend((0..100).map(|i| read(0, i, 10 * (i + 1), BIG)));
    recs.push(read(1, 0, 15, 10));
    recs.push(TraceRecord::Sync(SyncBatch {
        thread: 1,
        first: 0,
        ops: vec![SyncRecord {
            object: 0x1000,
            seq: 0,
            order: 25,
            arrival: 5,
            op: SyncOp::MutexLock,
            result: 0,
        }],
    }));
    recs.push(TraceRecord::End(EndRecord {
        exit: ExitStatus::Exited(0),
        duration_ns: 1,
    }));
    recs
}

fn write(path: &Path, recs: &[TraceRecord]) -> Vec<u8> {
    let mut w = TraceWriter::new(Vec::new(), &header()).expect("header");
    for r in recs {
        w.write(r).expect("record");
    }
    let bytes = w.into_inner();
    std::fs::write(path, &bytes).expect("write trace");
    bytes
}

fn index_of(e: &PlannedEvent) -> u64 {
    match e {
        PlannedEvent::Syscall(s) => s.index,
        PlannedEvent::Tsc(t) => t.index,
        PlannedEvent::Signal(s) => s.index,
    }
}

#[test]
fn events_come_through_a_window_far_smaller_than_the_trace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.trace");
    let bytes = write(&path, &records());
    let window = 256 << 10;
    let mut plan = ReplayPlan::open(&path, window).expect("plan");
    assert_eq!(plan.exit, ExitStatus::Exited(0));
    assert_eq!(plan.threads.len(), 2);
    // Thread 1's event sits after 6 MB of thread 0's: it was loaded by
    // its offset, not by holding everything before it.
    let t1 = &plan.threads[1].events;
    assert_eq!(t1.len(), 1);
    assert!(matches!(t1.front(), Some(PlannedEvent::Syscall(s)) if s.thread == 1));
    let stats = plan.reader.stats();
    let t0 = &mut plan.threads[0].events;
    assert_eq!(t0.len(), 100);
    for i in 0..100u64 {
        let e = t0.pop_front().expect("an event");
        assert_eq!(index_of(&e), i);
        assert!(matches!(&e, PlannedEvent::Syscall(s) if s.outputs[0] == vec![i as u8; BIG]));
        if i == 50 {
            // A restarted call goes back to the front.
            t0.push_front(e);
            assert_eq!(t0.len(), 50);
            assert!(t0.pop_front().is_some_and(|e| index_of(&e) == 50));
        }
    }
    assert!(t0.is_empty());
    assert!(t0.pop_front().is_none());
    let frame = BIG as u64 + 200;
    assert!(
        stats.peak_bytes() <= window + frame,
        "read ahead {} bytes with a window of {window} (trace {} bytes)",
        stats.peak_bytes(),
        bytes.len()
    );
}

#[test]
fn ranks_are_dense_over_the_whole_trace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.trace");
    write(&path, &records());
    let plan = ReplayPlan::open(&path, 1 << 20).expect("plan");
    // Stamps: 5 (t1 arrival), 10 (t0 #0), 15 (t1 #0), 20 (t0 #1), 25 (t1
    // acquisition), 30 (t0 #2), ...
    assert_eq!(plan.return_rank.get(&(0, 0)), Some(&1));
    assert_eq!(plan.return_rank.get(&(1, 0)), Some(&2));
    assert_eq!(plan.return_rank.get(&(0, 1)), Some(&3));
    assert_eq!(plan.return_rank.get(&(0, 2)), Some(&5));
    assert_eq!(plan.return_rank.get(&(0, 99)), Some(&102));
    let op = plan.threads[1].sync[0];
    assert_eq!((op.arrival, op.order), (0, 4));
    assert_eq!(&plan.rank_owner[..6], &[1, 0, 1, 0, 1, 0]);
    assert_eq!(&plan.arrival_ranks[..3], &[true, false, false]);
    let next: Vec<_> = (0..3).filter_map(|r| plan.next_own.get(r)).collect();
    assert_eq!(next, vec![2, 3, 4]);
    assert_eq!(plan.next_own.get(102), Some(NO_ORDER));
    assert_eq!(plan.next_own.get(103), None);
    // Only thread 0's event 1 wrote to stdout.
    assert_eq!(plan.output_rank.get(&(0, 1)), Some(&0));
    assert_eq!(plan.output_rank.get(&(0, 2)), None);
    assert_eq!(plan.entry_rank.get(&(0, 1)), None);
}

#[test]
fn a_damaged_trace_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.trace");
    let bytes = write(&path, &records());
    // Cut in the middle: the recording stopped there.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("cut");
    let e = ReplayPlan::open(&path, 1 << 20)
        .err()
        .expect("a cut trace is refused");
    assert!(e.to_string().contains("byte offset"), "{e}");
    // Bytes after the end record.
    let mut more = bytes.clone();
    more.extend_from_slice(b"junk");
    std::fs::write(&path, &more).expect("append");
    let e = ReplayPlan::open(&path, 1 << 20)
        .err()
        .expect("trailing bytes are refused");
    assert!(e.to_string().contains("after the end record"), "{e}");
    // An event out of its thread's order.
    let mut recs = records();
    recs.swap(2, 3);
    write(&path, &recs);
    let e = ReplayPlan::open(&path, 1 << 20)
        .err()
        .expect("events out of order are refused");
    assert!(e.to_string().contains("out of order"), "{e}");
}

#[test]
fn a_record_is_read_again_by_its_offset_and_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.trace");
    let mut bytes = write(&path, &records());
    let file = std::fs::File::open(&path).expect("open");
    let first = 12 + 8 + u32::from_le_bytes(bytes[12..16].try_into().expect("len")) as u64;
    let (rec, size) = rrc_trace::read_record_at(&file, first).expect("first record");
    assert_eq!(rec, start(0));
    let (rec, _) = rrc_trace::read_record_at(&file, first + size).expect("second record");
    assert_eq!(rec, start(1));
    let e = rrc_trace::read_record_at(&file, first + 1).expect_err("not a frame start");
    assert!(e.to_string().contains("byte offset"), "{e}");
    let e = rrc_trace::read_record_at(&file, bytes.len() as u64).expect_err("past the end");
    assert!(e.to_string().contains("shorter"), "{e}");
    let at = first as usize + 9;
    bytes[at] ^= 1;
    std::fs::write(&path, &bytes).expect("flip");
    let file = std::fs::File::open(&path).expect("open");
    let e = rrc_trace::read_record_at(&file, first).expect_err("flipped");
    assert!(e.to_string().contains("checksum"), "{e}");
}

/// A call of `thread` at `index`, stamped `order`, buffered or trapped.
fn call(thread: ThreadId, index: u64, order: u64, nr: i64, buffered: bool) -> TraceRecord {
    TraceRecord::Syscall(SyscallRecord {
        thread,
        index,
        nr: nr as u32,
        args: [0; 6],
        ret: 0,
        inputs: Vec::new(),
        outputs: Vec::new(),
        interval_ns: 0,
        return_ns: 0,
        order,
        extra: if buffered {
            SyscallExtra::Buffered
        } else {
            SyscallExtra::None
        },
        digested: 0,
    })
}

/// The plan of a trace of `recs` and its end (the directory holds it).
fn plan_of(mut recs: Vec<TraceRecord>) -> (tempfile::TempDir, ReplayPlan) {
    recs.push(TraceRecord::End(EndRecord {
        exit: ExitStatus::Exited(0),
        duration_ns: 1,
    }));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.trace");
    write(&path, &recs);
    let plan = ReplayPlan::open(&path, 1 << 20).expect("plan");
    (dir, plan)
}

fn futex_wait(order: u64, arrival: u64) -> SyncRecord {
    SyncRecord {
        object: 0x2000,
        seq: 0,
        order,
        arrival,
        op: SyncOp::FutexWait,
        result: 0,
    }
}

#[test]
fn a_futex_wait_returns_late_only_before_an_event_stamped_on_arrival() {
    // Thread 1: a futex wait (arrival 1, return 2), a buffered clock read
    // (5); another wait (6, 7), a buffered read (10), a wait (11, 12), a
    // trapped clock read (15). Thread 0's calls fill the ranks between.
    let mut recs = vec![start(0), start(1)];
    for (i, s) in [3, 4, 8, 9, 13, 14].into_iter().enumerate() {
        recs.push(call(0, i as u64, s, libc::SYS_getppid, false));
    }
    recs.push(call(1, 0, 5, libc::SYS_clock_gettime, true));
    recs.push(call(1, 1, 10, libc::SYS_read, true));
    recs.push(call(1, 2, 15, libc::SYS_clock_gettime, false));
    recs.push(TraceRecord::Sync(SyncBatch {
        thread: 1,
        first: 0,
        ops: vec![futex_wait(2, 1), futex_wait(7, 6), futex_wait(12, 11)],
    }));
    let (_dir, plan) = plan_of(recs);
    // Stamps 1..=15 rank 0..=14: the clock read the thread logged itself
    // (rank 4) marks its arrival; a buffered read (9) may have blocked, a
    // trapped call's stamp (14) is the tracer's.
    assert!(plan.arrival_ranks[4]);
    assert!(!plan.arrival_ranks[9]);
    assert!(!plan.arrival_ranks[14]);
    let none = rrc_synclog::NO_ARRIVAL;
    let late: Vec<u64> = plan.threads[1]
        .sync_holds
        .iter()
        .map(|h| h.late_to)
        .collect();
    assert_eq!(late, [4, none, none]);
}

#[test]
fn a_wait_on_a_held_lock_word_gates_the_threads_previous_event() {
    // Thread 1: a buffered clock read (stamp 2), then a futex wait on a
    // lock word ("held with waiters", 2: arrival 4, return 5), another on
    // a condvar's sequence word (arrival 7, return 8), another on a Rust
    // `Once` another thread runs ("running, with waiters", 5: arrival
    // 10, return 11). Thread 0's calls fill the ranks between.
    let mut recs = vec![start(0), start(1)];
    for (i, s) in [1, 3, 6, 9].into_iter().enumerate() {
        recs.push(call(0, i as u64, s, libc::SYS_getppid, false));
    }
    recs.push(call(1, 0, 2, libc::SYS_clock_gettime, true));
    let lock = SyncRecord {
        seq: 2,
        ..futex_wait(5, 4)
    };
    let condvar = SyncRecord {
        seq: 7,
        ..futex_wait(8, 7)
    };
    let once = SyncRecord {
        seq: 5,
        ..futex_wait(11, 10)
    };
    recs.push(TraceRecord::Sync(SyncBatch {
        thread: 1,
        first: 0,
        ops: vec![lock, condvar, once],
    }));
    let (_dir, plan) = plan_of(recs);
    // Stamps 1..=9 rank 0..=8: the clock read is rank 1; the lock wait
    // arrives at rank 3, after the clock read, with thread 0's call
    // between; the condvar wait gates nothing; the `Once` wait gates the
    // condvar wait's return (rank 7).
    let gates: Vec<u64> = plan.threads[1]
        .sync_holds
        .iter()
        .map(|h| h.gate_after)
        .collect();
    assert_eq!(gates, [1, rrc_synclog::NO_ARRIVAL, 7]);
}

#[test]
fn only_a_wait_no_wake_of_the_programs_came_during_waits_for_the_kernel() {
    // Thread 1 waits three times on one word: during the first (arrival
    // 2, return 5) thread 0 wakes one waiter (arrival 3, return 4); the
    // second (6, 9) overlaps only a wake that woke nobody (7, 8); the
    // third (10, 13) a wake on another word (11, 12).
    let mut recs = vec![start(0), start(1), call(0, 0, 1, libc::SYS_getppid, false)];
    let wake = |order, arrival, result, object| SyncRecord {
        object,
        seq: 1,
        order,
        arrival,
        op: SyncOp::FutexWake,
        result,
    };
    recs.push(TraceRecord::Sync(SyncBatch {
        thread: 0,
        first: 0,
        ops: vec![
            wake(4, 3, 1, 0x2000),
            wake(8, 7, 0, 0x2000),
            wake(12, 11, 1, 0x3000),
        ],
    }));
    recs.push(TraceRecord::Sync(SyncBatch {
        thread: 1,
        first: 0,
        ops: vec![futex_wait(5, 2), futex_wait(9, 6), futex_wait(13, 10)],
    }));
    let (_dir, plan) = plan_of(recs);
    let woken: Vec<bool> = plan.threads[1]
        .sync_holds
        .iter()
        .map(|h| h.woken_by_wake)
        .collect();
    assert_eq!(woken, [true, false, false]);
}

#[test]
fn the_code_before_a_sleep_or_a_thread_exit_runs_just_before_it() {
    // Thread 1: a trapped getppid (stamp 1), then a sleep entered at 4
    // and returned at 6. Thread 0's calls (2, 3, 5) come between. The
    // sleep's entry is the thread's arrival: the getppid's thread is kept
    // until it (rank 3), and the entry has its own rank.
    let mut recs = vec![start(0), start(1)];
    for (i, s) in [2, 3, 5].into_iter().enumerate() {
        recs.push(call(0, i as u64, s, libc::SYS_getppid, false));
    }
    recs.push(call(1, 0, 1, libc::SYS_getppid, false));
    let TraceRecord::Syscall(mut sleep) = call(1, 1, 6, libc::SYS_clock_nanosleep, false) else {
        unreachable!("call makes a syscall record");
    };
    sleep.extra = SyscallExtra::EnteredAt(4);
    recs.push(TraceRecord::Syscall(sleep));
    // Then thread 0 (7) and thread 1's exit, a trapped call that never
    // waits (8): its stamp is its arrival too.
    recs.push(call(0, 3, 7, libc::SYS_getppid, false));
    recs.push(call(1, 2, 8, libc::SYS_rt_sigprocmask, false));
    let (_dir, mut plan) = plan_of(recs);
    assert_eq!(plan.entry_rank.get(&(1, 1)), Some(&3));
    assert_eq!(plan.return_rank.get(&(1, 1)), Some(&5));
    assert!(plan.arrival_ranks[3]);
    assert!(plan.arrival_ranks[7]);
    assert!(!plan.arrival_ranks[5], "a sleep's return is no arrival");
    plan.threads[1].events.load_ahead(3);
    let next = |i| match plan.threads[1].events.peek(i) {
        Some(e) => e,
        None => unreachable!("thread 1 has three events"),
    };
    assert_eq!(plan.late_return_to(1, 0, next(1)), Some(3));
    assert_eq!(plan.late_return_to(1, 5, next(2)), Some(7));
}

/// Thread 1 of `a_futex_wait_returns_late_only_before_an_event_stamped_on_arrival`'s
/// trace: a futex wait whose code runs late, then a buffered clock read.
fn waiting_thread_plan() -> (tempfile::TempDir, ReplayPlan) {
    let mut recs = vec![start(0), start(1)];
    for (i, s) in [3, 4, 8, 9].into_iter().enumerate() {
        recs.push(call(0, i as u64, s, libc::SYS_getppid, false));
    }
    recs.push(call(1, 0, 5, libc::SYS_clock_gettime, true));
    recs.push(call(1, 1, 10, libc::SYS_read, true));
    recs.push(TraceRecord::Sync(SyncBatch {
        thread: 1,
        first: 0,
        ops: vec![futex_wait(2, 1), futex_wait(7, 6)],
    }));
    plan_of(recs)
}

#[test]
fn a_later_try_can_turn_a_late_return_off_at_one_event() {
    let (_dir, mut plan) = waiting_thread_plan();
    assert_eq!(plan.threads[1].sync_holds[0].late_to, 4);
    let mut tweaks = crate::search::Tweaks::default();
    tweaks.no_late.insert(1); // the first wait's return
    plan.tweak(tweaks);
    assert_eq!(
        plan.threads[1].sync_holds[0].late_to,
        rrc_synclog::NO_ARRIVAL
    );
}

#[test]
fn a_search_tries_changes_near_the_divergence_then_other_modes_then_stops() {
    use crate::search::{Search, Stop};
    let (_dir, plan) = waiting_thread_plan();
    let start = std::time::Instant::now();
    let second = std::time::Duration::from_secs(1);
    let mut search = Search::new(6, start, 60 * second, second / 10);
    // Thread 1 diverged at its clock read (rank 4): its code ran from the
    // wait's return at rank 1.
    let stop = Stop {
        reach: 4,
        thread: Some(1),
        event: Some((1, 0)),
        code_at: Some(1),
    };
    let mut tried = Vec::new();
    while let Some(t) = search.next(&plan, stop) {
        tried.push(t);
    }
    assert_eq!(tried.len(), 6, "every try used: {tried:?}");
    assert_eq!(
        tried[0],
        Default::default(),
        "first, the same replay again (what runs unordered differs from try to try)"
    );
    assert!(
        tried[1].no_late.contains(&1) && tried[1].mode == Default::default(),
        "then the late return before the divergence goes: {:?}",
        tried[1]
    );
    assert!(
        tried.iter().any(|t| t.mode.no_segments) && tried.iter().any(|t| t.mode.no_late_returns),
        "then the other modes: {tried:?}"
    );
    let mut modes: Vec<_> = tried.iter().map(|t| t.mode).collect();
    modes.dedup();
    assert_eq!(modes.len(), 3, "each mode in its turn: {modes:?}");
}

#[test]
fn a_search_replays_unchanged_every_third_try_while_it_changes_rules() {
    use crate::search::{Search, Stop};
    let (_dir, plan) = waiting_thread_plan();
    let second = std::time::Duration::from_secs(1);
    let mut search = Search::new(64, std::time::Instant::now(), 600 * second, second / 10);
    let mut stop = Stop {
        reach: 4,
        thread: Some(1),
        event: Some((1, 0)),
        code_at: Some(1),
    };
    let mut tried = Vec::new();
    for _ in 0..5 {
        let Some(t) = search.next(&plan, stop) else {
            break;
        };
        tried.push(t);
        // Each try gets further, so each change tried is kept.
        stop.reach += 1;
    }
    let plain: Vec<usize> = (0..tried.len())
        .filter(|i| tried[*i] == Default::default())
        .collect();
    assert_eq!(plain, [0, 3], "{tried:?}");
    // The changes kept go on between plain tries.
    assert!(tried[4].len() > tried[2].len(), "{tried:?}");
}

#[test]
fn a_search_with_time_for_few_tries_goes_to_the_other_modes_at_once() {
    use crate::search::{Search, Stop};
    let (_dir, plan) = waiting_thread_plan();
    let second = std::time::Duration::from_secs(1);
    // Time for one or two tries of the twelve: one in each other mode.
    let mut search = Search::new(12, std::time::Instant::now(), 2 * second, second);
    let stop = Stop {
        reach: 4,
        thread: Some(1),
        event: Some((1, 0)),
        code_at: Some(1),
    };
    let first = search.next(&plan, stop).expect("a try");
    assert!(first.mode.no_segments, "{first:?}");
    let second_try = search.next(&plan, stop).expect("a try");
    assert!(second_try.mode.no_late_returns, "{second_try:?}");
}

fn futex_wake(order: u64, arrival: u64) -> SyncRecord {
    SyncRecord {
        op: SyncOp::FutexWake,
        result: 1,
        ..futex_wait(order, arrival)
    }
}

/// Thread 1: a futex wake (the unlock of a lock rrc does not see;
/// arrival at rank 0, the wake at rank 1), then a buffered clock read
/// (rank 4); thread 0's calls take ranks 2 and 3.
fn waking_thread_plan() -> (tempfile::TempDir, ReplayPlan) {
    let mut recs = vec![start(0), start(1)];
    for (i, s) in [3, 4].into_iter().enumerate() {
        recs.push(call(0, i as u64, s, libc::SYS_getppid, false));
    }
    recs.push(call(1, 0, 5, libc::SYS_clock_gettime, true));
    recs.push(TraceRecord::Sync(SyncBatch {
        thread: 1,
        first: 0,
        ops: vec![futex_wake(2, 1)],
    }));
    plan_of(recs)
}

#[test]
fn a_search_may_hold_the_code_after_an_unseen_unlock_until_the_threads_next_event() {
    use crate::search::{Search, Stop};
    let (_dir, mut plan) = waking_thread_plan();
    let none = rrc_synclog::NO_ARRIVAL;
    assert_eq!(
        plan.threads[1].sync_holds[0].late_to, none,
        "at once by default"
    );
    let second = std::time::Duration::from_secs(1);
    let mut search = Search::new(64, std::time::Instant::now(), 60 * second, second / 10);
    let stop = Stop {
        reach: 4,
        thread: Some(1),
        event: Some((1, 0)),
        code_at: None,
    };
    let mut tried = Vec::new();
    while let Some(t) = search.next(&plan, stop) {
        tried.push(t);
    }
    let late = tried
        .iter()
        .find(|t| t.late.contains(&1))
        .expect("a try keeps the code after the wake late");
    assert!(
        !tried.iter().any(|t| t.no_late.contains(&1)),
        "no try turns off a late hold the wake does not have: {tried:?}"
    );
    plan.tweak(late.clone());
    assert_eq!(plan.threads[1].sync_holds[0].late_to, 4);
}

#[test]
fn a_change_whose_try_diverged_before_it_is_tried_again() {
    use crate::search::{Search, Stop};
    let (_dir, plan) = waking_thread_plan();
    let second = std::time::Duration::from_secs(1);
    let mut search = Search::new(64, std::time::Instant::now(), 60 * second, second / 10);
    let at = |reach| Stop {
        reach,
        thread: Some(1),
        event: Some((1, 0)),
        code_at: None,
    };
    let plain = search.next(&plan, at(4)).expect("a try");
    assert_eq!(plain.len(), 0, "first the same replay again: {plain:?}");
    let first = search.next(&plan, at(4)).expect("a try");
    assert!(first.late.contains(&1), "{first:?}");
    // Its tries diverge at rank 0, before the change could matter: it is
    // tried twice more (a plain try between), then the search goes on.
    assert_eq!(search.next(&plan, at(0)).as_ref(), Some(&first));
    assert_eq!(search.next(&plan, at(0)).map(|t| t.len()), Some(0));
    assert_eq!(search.next(&plan, at(0)).as_ref(), Some(&first));
    assert_ne!(search.next(&plan, at(0)).as_ref(), Some(&first));
}

/// Thread 1 waits on a lock word (arrival stamp 1, return 3); thread 0's
/// wake ends the wait (arrival 2, return 4), `handed` marking it handed
/// on; thread 0's calls (5, 6) come before thread 1's next event, a
/// clock read it logged itself (7). The plan's `late_to` for the wait.
fn late_to_after_a_wake(handed: bool) -> u64 {
    let mut recs = vec![start(0), start(1)];
    for (i, s) in [5, 6].into_iter().enumerate() {
        recs.push(call(0, i as u64, s, libc::SYS_getppid, false));
    }
    recs.push(call(1, 0, 7, libc::SYS_clock_gettime, true));
    let mut wake = futex_wake(4, 2);
    if handed {
        wake.seq |= rrc_synclog::HANDED_OFF;
    }
    recs.push(TraceRecord::Sync(SyncBatch {
        thread: 0,
        first: 0,
        ops: vec![wake],
    }));
    recs.push(TraceRecord::Sync(SyncBatch {
        thread: 1,
        first: 0,
        ops: vec![futex_wait(3, 1)],
    }));
    let (_dir, plan) = plan_of(recs);
    plan.threads[1].sync_holds[0].late_to
}

#[test]
fn a_waiter_a_lock_was_handed_to_runs_on_at_its_return() {
    // Stamps 1..=7 rank 0..=6: without the hand-off, the woken thread's
    // code runs just before its next event (rank 6); with it, at once (it
    // took the lock before its waker went on).
    assert_eq!(late_to_after_a_wake(false), 6);
    assert_eq!(late_to_after_a_wake(true), rrc_synclog::NO_ARRIVAL);
}
