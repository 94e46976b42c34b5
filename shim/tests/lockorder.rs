//! Drives tests/lockorder.c under librrc_shim.so with a sync log made here,
//! standing in for the tracer: the test registers the program's threads
//! (the program announces its tids and waits for a byte on stdin before
//! its first sync op), drains rings after recording, and feeds rings for
//! replay.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rrc_synclog::{
    futex_wait, futex_wake, SharedSyncLog, SyncEntry, DIVERGENCE_OP_MISMATCH,
    DIVERGENCE_UNKNOWN_THREAD, MODE_RECORD, MODE_REPLAY, RING_CAPACITY, SHM_FD, SHM_FD_ENV,
};

// The operation codes, defined once (the trace's SyncOp uses them too).
use rrc_synclog::ops::{
    BARRIER_WAIT, COND_TIMEDWAIT, COND_WAIT, MUTEX_LOCK, MUTEX_TIMEDLOCK, MUTEX_TRYLOCK,
    RWLOCK_RDLOCK, RWLOCK_TIMEDRDLOCK, RWLOCK_TIMEDWRLOCK, RWLOCK_TRYRDLOCK, RWLOCK_TRYWRLOCK,
    RWLOCK_WRLOCK, SEM_TIMEDWAIT, SEM_TRYWAIT, SEM_WAIT, SPIN_LOCK, SPIN_TRYLOCK,
};

const EBUSY: i32 = libc::EBUSY;
const EAGAIN: i32 = libc::EAGAIN;
const ETIMEDOUT: i32 = libc::ETIMEDOUT;
const BARRIER_SERIAL: i32 = libc::PTHREAD_BARRIER_SERIAL_THREAD;

/// No single program run may take longer than this.
const RUN_LIMIT: Duration = Duration::from_secs(10);

fn shim_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let shim = profile_dir.join("librrc_shim.so");
    assert!(
        shim.exists(),
        "{} is missing: run `cargo build -p rrc-shim` first",
        shim.display()
    );
    // `cargo test` does not rebuild the cdylib: refuse a stale one.
    let built = modified(&shim);
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for source in std::fs::read_dir(&sources)
        .expect("read shim/src")
        .flatten()
    {
        assert!(
            modified(&source.path()) <= built,
            "{} is older than {}: run `cargo build -p rrc-shim` first",
            shim.display(),
            source.path().display()
        );
    }
    shim
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("file modification time")
}

/// tests/lockorder.c, compiled once per test run.
fn test_program() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lockorder.c");
        let program = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lockorder");
        let status = Command::new("gcc")
            .args(["-O1", "-g", "-Wall", "-Werror", "-pthread", "-o"])
            .arg(&program)
            .arg(&source)
            .status()
            .expect("run gcc");
        assert!(status.success(), "gcc failed on {}", source.display());
        program
    })
}

/// A running test program.
struct Run {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    finished: Arc<AtomicBool>,
}

impl Run {
    /// Starts the program under the shim; with a log, its fd goes to
    /// SHM_FD in the child and RRC_SHM_FD names it.
    fn start(args: &[&str], log_fd: Option<&OwnedFd>) -> Run {
        let mut command = Command::new(test_program());
        command
            .args(args)
            .env("LD_PRELOAD", shim_path())
            .env_remove(SHM_FD_ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(fd) = log_fd {
            let raw = fd.as_raw_fd();
            command.env(SHM_FD_ENV, SHM_FD.to_string());
            // SAFETY: dup2 and fcntl are async-signal-safe; nothing else runs.
            unsafe {
                command.pre_exec(move || {
                    // dup2 to a different number clears close-on-exec.
                    let placed = if raw == SHM_FD {
                        libc::fcntl(raw, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(raw, SHM_FD)
                    };
                    if placed < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("spawn test program");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let finished = Arc::new(AtomicBool::new(false));
        let watchdog_finished = finished.clone();
        let pid = child.id() as libc::pid_t;
        thread::spawn(move || {
            let start = Instant::now();
            while !watchdog_finished.load(Ordering::Acquire) {
                if start.elapsed() > RUN_LIMIT {
                    // SAFETY: the child is not reaped before `finished` is set.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        Run {
            child,
            stdin,
            stdout,
            finished,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let read = self.stdout.read_line(&mut line).expect("read stdout");
        assert!(read > 0, "program ended its output early");
        line.trim_end().to_string()
    }

    /// Reads `name value` lines until `last`, returning them as a map.
    fn lines_until(&mut self, last: &str) -> HashMap<String, String> {
        let mut seen = HashMap::new();
        loop {
            let line = self.line();
            if line == last {
                return seen;
            }
            let (name, value) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            seen.insert(name.to_string(), value.to_string());
        }
    }

    fn go(&mut self) {
        self.stdin.write_all(b"g").expect("write go byte");
        self.stdin.flush().expect("flush go byte");
    }

    /// Waits for the program to exit and returns the rest of its output.
    fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).expect("read stdout");
        let status = self.child.wait().expect("wait");
        self.finished.store(true, Ordering::Release);
        assert_ne!(
            status.signal(),
            Some(libc::SIGKILL),
            "program exceeded {RUN_LIMIT:?}"
        );
        (status, rest.lines().map(str::to_string).collect())
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finished.store(true, Ordering::Release);
    }
}

fn address(text: &str) -> u64 {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex address")
}

fn drain(log: &SharedSyncLog, slot: u32) -> Vec<SyncEntry> {
    let ring = log.ring(slot).expect("ring");
    std::iter::from_fn(|| ring.pop()).collect()
}

fn feed(log: &SharedSyncLog, slot: u32, entries: &[SyncEntry]) {
    let ring = log.ring(slot).expect("ring");
    for entry in entries {
        assert!(ring.push(*entry), "replay ring overflow in test");
    }
    ring.closed.store(1, Ordering::Release);
}

fn entry(object: u64, seq: u64, op: u32, result: i32) -> SyncEntry {
    SyncEntry {
        object,
        seq,
        order: 0,
        arrival: rrc_synclog::NO_ARRIVAL,
        late_to: rrc_synclog::NO_ARRIVAL,
        gate_after: rrc_synclog::NO_ARRIVAL,
        op,
        result,
    }
}

/// Addresses `single` mode prints before it starts.
struct SingleObjects {
    mutex: u64,
    rwlock: u64,
    sem: u64,
    spin: u64,
    barrier: u64,
}

impl SingleObjects {
    fn read(run: &mut Run) -> SingleObjects {
        let seen = run.lines_until("ready");
        assert_eq!(seen["errno"], "0", "errno at startup");
        SingleObjects {
            mutex: address(&seen["mutex"]),
            rwlock: address(&seen["rwlock"]),
            sem: address(&seen["sem"]),
            spin: address(&seen["spin"]),
            barrier: address(&seen["barrier"]),
        }
    }

    /// The sync stream `single` mode records, in program order.
    fn expected_stream(&self) -> Vec<SyncEntry> {
        let (m, rw, sem, spin) = (self.mutex, self.rwlock, self.sem, self.spin);
        vec![
            entry(m, 0, MUTEX_LOCK, 0),
            entry(m, 0, MUTEX_TRYLOCK, EBUSY),
            entry(m, 1, MUTEX_TRYLOCK, 0),
            entry(m, 2, MUTEX_TIMEDLOCK, 0),
            entry(m, 3, MUTEX_TIMEDLOCK, 0), // clocklock
            entry(m, 4, COND_TIMEDWAIT, ETIMEDOUT),
            entry(m, 5, COND_TIMEDWAIT, ETIMEDOUT), // clockwait
            entry(rw, 0, RWLOCK_RDLOCK, 0),
            entry(rw, 1, RWLOCK_TRYRDLOCK, 0),
            entry(rw, 0, RWLOCK_TRYWRLOCK, EBUSY),
            entry(rw, 2, RWLOCK_WRLOCK, 0),
            entry(rw, 0, RWLOCK_TRYRDLOCK, EBUSY),
            entry(rw, 3, RWLOCK_TIMEDRDLOCK, 0),
            entry(rw, 4, RWLOCK_TIMEDWRLOCK, 0),
            entry(rw, 5, RWLOCK_TIMEDRDLOCK, 0), // clockrdlock
            entry(rw, 6, RWLOCK_TIMEDWRLOCK, 0), // clockwrlock
            entry(sem, 0, SEM_TRYWAIT, EAGAIN),
            entry(sem, 0, SEM_WAIT, 0),
            entry(sem, 0, SEM_TIMEDWAIT, ETIMEDOUT),
            entry(sem, 1, SEM_TIMEDWAIT, 0), // clockwait
            entry(spin, 0, SPIN_LOCK, 0),
            entry(spin, 0, SPIN_TRYLOCK, EBUSY),
            entry(spin, 1, SPIN_TRYLOCK, 0),
            entry(self.barrier, 0, BARRIER_WAIT, BARRIER_SERIAL),
        ]
    }
}

/// What `single` mode prints when nothing interferes.
fn natural_single_output() -> Vec<String> {
    [
        "mutex_lock 0".to_string(),
        format!("mutex_trylock_held {EBUSY}"),
        "mutex_trylock_free 0".to_string(),
        "mutex_timedlock 0".to_string(),
        "mutex_clocklock 0".to_string(),
        format!("cond_timedwait {ETIMEDOUT}"),
        format!("cond_clockwait {ETIMEDOUT}"),
        "cond_signal 0".to_string(),
        "cond_broadcast 0".to_string(),
        "rdlock 0".to_string(),
        "tryrdlock_shared 0".to_string(),
        format!("trywrlock_busy {EBUSY}"),
        "wrlock 0".to_string(),
        format!("tryrdlock_busy {EBUSY}"),
        "timedrdlock 0".to_string(),
        "timedwrlock 0".to_string(),
        "clockrdlock 0".to_string(),
        "clockwrlock 0".to_string(),
        format!("sem_trywait_empty -1 {EAGAIN}"),
        "sem_wait 0".to_string(),
        format!("sem_timedwait_empty -1 {ETIMEDOUT}"),
        "sem_clockwait 0".to_string(),
        "spin_lock 0".to_string(),
        format!("spin_trylock_held {EBUSY}"),
        "spin_trylock_free 0".to_string(),
        format!("barrier_wait {BARRIER_SERIAL}"),
        "done".to_string(),
    ]
    .to_vec()
}

/// Records `single` mode with its main thread at slot 0.
fn record_single() -> (SingleObjects, Vec<SyncEntry>, Vec<String>) {
    let (fd, log) = SharedSyncLog::create(MODE_RECORD).expect("create log");
    let mut run = Run::start(&["single"], Some(&fd));
    let objects = SingleObjects::read(&mut run);
    assert!(log.register_thread(run.pid(), 0, 0));
    run.go();
    let (status, output) = run.finish();
    assert!(status.success(), "single exited with {status}");
    assert_eq!(log.divergence(), None);
    (objects, drain(&log, 0), output)
}

/// Runs `single` mode in replay with `stream` fed to slot 0.
fn replay_single(stream: &[SyncEntry]) -> (SharedSyncLog, Vec<String>) {
    let (fd, log) = SharedSyncLog::create(MODE_REPLAY).expect("create log");
    feed(&log, 0, stream);
    let mut run = Run::start(&["single"], Some(&fd));
    SingleObjects::read(&mut run);
    assert!(log.register_thread(run.pid(), 0, 0));
    run.go();
    let (status, output) = run.finish();
    assert!(status.success(), "single exited with {status}");
    (log, output)
}

/// Starts `single` in replay with `stream`, waits for a divergence, and
/// kills the program (which parks once it has reported).
fn replay_single_until_divergence(
    stream: &[SyncEntry],
    register: bool,
) -> (SingleObjects, rrc_synclog::ShimDivergence, i32) {
    let (fd, log) = SharedSyncLog::create(MODE_REPLAY).expect("create log");
    feed(&log, 0, stream);
    let mut run = Run::start(&["single"], Some(&fd));
    let objects = SingleObjects::read(&mut run);
    if register {
        assert!(log.register_thread(run.pid(), 0, 0));
    }
    run.go();
    let start = Instant::now();
    let divergence = loop {
        if let Some(divergence) = log.divergence() {
            break divergence;
        }
        if let Ok(Some(status)) = run.child.try_wait() {
            panic!("program exited ({status}) instead of reporting a divergence");
        }
        assert!(start.elapsed() < RUN_LIMIT, "no divergence reported");
        thread::sleep(Duration::from_millis(2));
    };
    // A diverged thread stays parked rather than carrying on.
    thread::sleep(Duration::from_millis(30));
    assert!(
        matches!(run.child.try_wait(), Ok(None)),
        "a diverged program must block"
    );
    let pid = run.pid();
    run.kill();
    (objects, divergence, pid)
}

#[test]
fn records_each_operation_in_program_order() {
    let (objects, recorded, output) = record_single();
    assert_eq!(output, natural_single_output());
    // One thread: its stamps in the event order are its program order.
    let expected: Vec<SyncEntry> = objects
        .expected_stream()
        .into_iter()
        .enumerate()
        .map(|(i, e)| SyncEntry {
            // Each operation stamps its arrival, then itself.
            arrival: 2 * i as u64,
            order: 2 * i as u64 + 1,
            ..e
        })
        .collect();
    assert_eq!(recorded, expected);
}

#[test]
fn replaying_a_recording_reproduces_its_results() {
    let (_, recorded, recorded_output) = record_single();
    let (log, replayed_output) = replay_single(&recorded);
    assert_eq!(log.divergence(), None);
    assert_eq!(replayed_output, recorded_output);
    let ring = log.ring(0).expect("ring");
    assert_eq!(ring.consumed(), recorded.len() as u64);
}

#[test]
fn replay_returns_recorded_failures_without_touching_the_object() {
    // Fake addresses: replay orders turns by the recorded identities only.
    let objects = SingleObjects {
        mutex: 0x1000,
        rwlock: 0x2000,
        sem: 0x3000,
        spin: 0x4000,
        barrier: 0x5000,
    };
    let mut stream = objects.expected_stream();
    // The trylock on the free mutex "failed" when recorded: later turns on
    // the mutex move down by one.
    stream[2].result = EBUSY;
    stream[2].seq = 0;
    for later in stream[3..].iter_mut().filter(|e| e.object == objects.mutex) {
        later.seq -= 1;
    }
    // The spin trylock on the free lock too, and the barrier was not serial.
    stream[22] = entry(objects.spin, 0, SPIN_TRYLOCK, EBUSY);
    stream[23].result = 0;
    // The sem_trywait on an empty semaphore failed differently.
    stream[16].result = libc::EINTR;

    let (log, output) = replay_single(&stream);
    assert_eq!(log.divergence(), None);
    let mut expected = natural_single_output();
    expected[2] = format!("mutex_trylock_free {EBUSY}");
    expected[18] = format!("sem_trywait_empty -1 {}", libc::EINTR);
    expected[24] = format!("spin_trylock_free {EBUSY}");
    expected[25] = "barrier_wait 0".to_string();
    assert_eq!(output, expected);
}

#[test]
fn replay_reports_an_operation_mismatch() {
    let fake = SingleObjects {
        mutex: 0x1000,
        rwlock: 0x2000,
        sem: 0x3000,
        spin: 0x4000,
        barrier: 0x5000,
    };
    let mut stream = fake.expected_stream();
    // The program does rdlock at index 7; pretend wrlock was recorded.
    stream[7].op = RWLOCK_WRLOCK;
    let (objects, divergence, _) = replay_single_until_divergence(&stream, true);
    assert_eq!(divergence.kind, DIVERGENCE_OP_MISMATCH);
    assert_eq!(divergence.thread, 0);
    assert_eq!(divergence.index, 7);
    assert_eq!(divergence.expected_op, RWLOCK_WRLOCK);
    assert_eq!(divergence.expected_object, fake.rwlock);
    assert_eq!(divergence.observed_op, RWLOCK_RDLOCK);
    assert_eq!(divergence.observed_object, objects.rwlock);
}

#[test]
fn replay_parks_a_thread_that_runs_past_the_recorded_end() {
    let fake = SingleObjects {
        mutex: 0x1000,
        rwlock: 0x2000,
        sem: 0x3000,
        spin: 0x4000,
        barrier: 0x5000,
    };
    let stream = fake.expected_stream();
    let (fd, log) = SharedSyncLog::create(MODE_REPLAY).expect("create log");
    feed(&log, 0, &stream[..3]);
    let mut run = Run::start(&["single"], Some(&fd));
    let _objects = SingleObjects::read(&mut run);
    assert!(log.register_thread(run.pid(), 0, 0));
    run.go();
    let ring = log.ring(0).expect("ring");
    let start = Instant::now();
    while ring.parked_past_end.load(Ordering::Acquire) == 0 {
        if let Ok(Some(status)) = run.child.try_wait() {
            panic!("program exited ({status}) instead of parking");
        }
        assert!(start.elapsed() < RUN_LIMIT, "the thread never parked");
        thread::sleep(Duration::from_millis(2));
    }
    // Parked, as it was blocked when recorded: no divergence, no progress.
    thread::sleep(Duration::from_millis(30));
    assert!(
        matches!(run.child.try_wait(), Ok(None)),
        "a parked thread must block"
    );
    assert_eq!(
        log.divergence(),
        None,
        "running past the end is not a divergence by itself"
    );
    assert_eq!(
        ring.consumed(),
        3,
        "all three recorded operations were consumed first"
    );
    run.kill();
}

#[test]
fn replay_reports_an_unregistered_thread() {
    let (objects, divergence, pid) = replay_single_until_divergence(&[], false);
    assert_eq!(divergence.kind, DIVERGENCE_UNKNOWN_THREAD);
    assert_eq!(divergence.thread, u32::MAX);
    assert_eq!(divergence.index, pid as u64, "the index carries the tid");
    assert_eq!(divergence.observed_op, MUTEX_LOCK);
    assert_eq!(divergence.observed_object, objects.mutex);
}

#[test]
fn recording_passes_unregistered_threads_through() {
    let (fd, log) = SharedSyncLog::create(MODE_RECORD).expect("create log");
    let mut run = Run::start(&["single"], Some(&fd));
    SingleObjects::read(&mut run);
    run.go();
    let (status, output) = run.finish();
    assert!(status.success());
    assert_eq!(output, natural_single_output());
    assert!(drain(&log, 0).is_empty());
    assert_eq!(log.divergence(), None);
}

/// Starts a two-worker mode and registers A at slot 1, B at slot 2.
fn start_workers(mode: &str, iterations: usize, fd: &OwnedFd, log: &SharedSyncLog) -> Run {
    let count = iterations.to_string();
    let mut run = Run::start(&[mode, &count], Some(fd));
    for _ in 0..2 {
        let line = run.line();
        let mut words = line.split(' ');
        assert_eq!(words.next(), Some("tid"), "unexpected line {line:?}");
        let slot = match words.next() {
            Some("A") => 1,
            Some("B") => 2,
            other => panic!("unexpected worker {other:?}"),
        };
        let tid: i32 = words.next().and_then(|t| t.parse().ok()).expect("tid");
        assert!(log.register_thread(tid, slot, 0));
    }
    run.go();
    run
}

fn finish_order(run: Run) -> String {
    let (status, output) = run.finish();
    assert!(status.success(), "workers exited with {status}");
    let line = output.last().expect("order line");
    line.strip_prefix("order ").expect("order line").to_string()
}

#[test]
fn records_contended_acquisitions_in_the_order_they_happened() {
    const ITERATIONS: usize = 2000;
    let (fd, log) = SharedSyncLog::create(MODE_RECORD).expect("create log");
    let run = start_workers("threads", ITERATIONS, &fd, &log);
    let order = finish_order(run);
    assert_eq!(order.len(), 2 * ITERATIONS);
    assert_eq!(log.divergence(), None);

    // Each acquisition appended its name while holding the mutex, so the
    // name at position `seq` must be the thread that recorded `seq`.
    let order = order.as_bytes();
    let mut seen = vec![false; order.len()];
    let mut object = None;
    for (slot, name) in [(1, b'A'), (2, b'B')] {
        let entries = drain(&log, slot);
        assert_eq!(entries.len(), ITERATIONS);
        let mut previous = None;
        for e in entries {
            assert_eq!((e.op, e.result), (MUTEX_LOCK, 0));
            assert_eq!(*object.get_or_insert(e.object), e.object);
            let seq = e.seq as usize;
            assert!(previous < Some(seq), "turns rise within a thread");
            previous = Some(seq);
            assert_eq!(order[seq], name, "turn {seq} was taken by {name}");
            assert!(!seen[seq], "turn {seq} taken twice");
            seen[seq] = true;
        }
    }
}

/// Feeds per-thread entries that make the workers acquire in `order`.
fn replay_workers_in_order(order: &str) -> String {
    let (fd, log) = SharedSyncLog::create(MODE_REPLAY).expect("create log");
    let mutex = 0xdead_0000; // any identity: only the turns matter
    for (slot, name) in [(1, 'A'), (2, 'B')] {
        let entries: Vec<SyncEntry> = order
            .chars()
            .enumerate()
            .filter(|(_, c)| *c == name)
            .map(|(seq, _)| entry(mutex, seq as u64, MUTEX_LOCK, 0))
            .collect();
        feed(&log, slot, &entries);
    }
    let iterations = order.len() / 2;
    let run = start_workers("threads", iterations, &fd, &log);
    let replayed = finish_order(run);
    assert_eq!(log.divergence(), None);
    replayed
}

#[test]
fn replay_enforces_the_recorded_interleaving() {
    let alternating = "BA".repeat(300);
    assert_eq!(replay_workers_in_order(&alternating), alternating);
    let blocks = format!("{}{}{}", "B".repeat(100), "A".repeat(300), "B".repeat(200));
    assert_eq!(replay_workers_in_order(&blocks), blocks);
}

#[test]
fn condvar_pingpong_replays_its_recording() {
    const ITERATIONS: usize = 200;
    let (fd, log) = SharedSyncLog::create(MODE_RECORD).expect("create log");
    let run = start_workers("pingpong", ITERATIONS, &fd, &log);
    let recorded_order = finish_order(run);
    assert_eq!(recorded_order, "AB".repeat(ITERATIONS));
    let streams = [drain(&log, 1), drain(&log, 2)];
    assert!(
        streams.iter().flatten().any(|e| e.op == COND_WAIT),
        "a strict alternation makes somebody wait"
    );
    let mut turns: Vec<u64> = streams.iter().flatten().map(|e| e.seq).collect();
    turns.sort_unstable();
    assert_eq!(turns, (0..turns.len() as u64).collect::<Vec<_>>());

    let (fd, log) = SharedSyncLog::create(MODE_REPLAY).expect("create log");
    feed(&log, 1, &streams[0]);
    feed(&log, 2, &streams[1]);
    let run = start_workers("pingpong", ITERATIONS, &fd, &log);
    assert_eq!(finish_order(run), recorded_order);
    assert_eq!(log.divergence(), None);
    for (slot, stream) in [(1, &streams[0]), (2, &streams[1])] {
        let ring = log.ring(slot).expect("ring");
        assert_eq!(
            ring.consumed(),
            stream.len() as u64,
            "slot {slot} used its stream"
        );
    }
}

#[test]
fn a_full_ring_waits_for_the_drainer() {
    const ITERATIONS: usize = 30_000; // several times the ring capacity
    let (fd, log) = SharedSyncLog::create(MODE_RECORD).expect("create log");
    let log = Arc::new(log);
    let mut run = Run::start(&["many", &ITERATIONS.to_string()], Some(&fd));
    assert_eq!(run.line(), "ready");
    assert!(log.register_thread(run.pid(), 0, 0));

    let stop = Arc::new(AtomicBool::new(false));
    let drainer = {
        let (log, stop) = (log.clone(), stop.clone());
        thread::spawn(move || {
            let ring = log.ring(0).expect("ring");
            let wake = &log.header().service_wake;
            let mut drained = Vec::new();
            let mut pokes = 0u32;
            let mut found_full = false;
            loop {
                let seen = wake.load(Ordering::Acquire);
                if !ring.is_empty() {
                    // A slow drainer, so that the program fills the ring.
                    thread::sleep(Duration::from_millis(5));
                    found_full |= ring.len() == RING_CAPACITY as u64;
                    drained.extend(std::iter::from_fn(|| ring.pop()));
                    ring.popped.fetch_add(1, Ordering::Release);
                    futex_wake(&ring.popped, i32::MAX);
                }
                if stop.load(Ordering::Acquire) {
                    drained.extend(std::iter::from_fn(|| ring.pop()));
                    return (drained, pokes, found_full);
                }
                futex_wait(wake, seen, Some(Duration::from_millis(200)));
                if wake.load(Ordering::Acquire) != seen {
                    pokes += 1;
                }
            }
        })
    };
    run.go();
    let (status, output) = run.finish();
    stop.store(true, Ordering::Release);
    log.poke_service();
    let (drained, pokes, found_full) = drainer.join().expect("drainer");
    assert!(status.success());
    assert_eq!(output, ["done"]);
    assert!(pokes > 0, "the shim pokes the drainer");
    assert!(found_full, "the program filled the ring and waited");
    assert_eq!(drained.len(), ITERATIONS);
    for (i, e) in drained.iter().enumerate() {
        assert_eq!((e.op, e.seq, e.result), (MUTEX_LOCK, i as u64, 0));
    }
}

#[test]
fn a_forked_child_records_as_its_own_thread() {
    let (fd, log) = SharedSyncLog::create(MODE_RECORD).expect("create log");
    let mut run = Run::start(&["fork"], Some(&fd));
    assert_eq!(run.line(), "ready");
    assert!(log.register_thread(run.pid(), 0, 0));
    run.go();
    let child_line = run.line();
    let child: i32 = child_line
        .strip_prefix("child ")
        .and_then(|pid| pid.parse().ok())
        .expect("child pid");
    assert!(log.register_thread(child, 1, 1));
    run.go(); // the child reads this one
    let (status, output) = run.finish();
    assert!(status.success());
    assert_eq!(output, ["done"]);
    let parent = drain(&log, 0);
    let child = drain(&log, 1);
    assert_eq!(parent.len(), 2);
    assert_eq!((parent[0].seq, parent[1].seq), (0, 1));
    // Same address, but the child's process has its own turn counter.
    assert_eq!(
        child,
        [SyncEntry {
            order: child.first().map_or(0, |c| c.order),
            arrival: child.first().map_or(0, |c| c.arrival),
            ..entry(parent[0].object, 0, MUTEX_LOCK, 0)
        }]
    );
    // Both processes stamp from the one event order.
    let mut stamps: Vec<u64> = parent
        .iter()
        .chain(&child)
        .flat_map(|e| [e.arrival, e.order])
        .collect();
    stamps.sort_unstable();
    assert_eq!(stamps, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn without_a_log_the_shim_passes_everything_through() {
    // No RRC_SHM_FD.
    let mut run = Run::start(&["mixed"], None);
    run.go();
    let (status, output) = run.finish();
    assert!(status.success(), "mixed: {output:?}");
    assert_eq!(output, ["mixed ok"]);

    let mut run = Run::start(&["pingpong", "300"], None);
    run.line();
    run.line();
    run.go();
    assert_eq!(finish_order(run), "AB".repeat(300));

    let mut run = Run::start(&["threads", "1000"], None);
    run.line();
    run.line();
    run.go();
    assert_eq!(finish_order(run).len(), 2000);

    // Unusable values: garbage, and a descriptor that is not a sync log.
    for value in ["not-a-number", "2", "999"] {
        let mut command = Command::new(test_program());
        command
            .arg("single")
            .env("LD_PRELOAD", shim_path())
            .env(SHM_FD_ENV, value)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = command.spawn().expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"g")
            .expect("go");
        let done = child.wait_with_output().expect("wait");
        assert!(done.status.success(), "RRC_SHM_FD={value}");
        let text = String::from_utf8_lossy(&done.stdout);
        assert!(text.starts_with("errno 0\n"), "RRC_SHM_FD={value}: {text}");
        let lines: Vec<String> = text
            .lines()
            .skip_while(|l| *l != "ready")
            .skip(1)
            .map(str::to_string)
            .collect();
        assert_eq!(lines, natural_single_output(), "RRC_SHM_FD={value}");
    }
}
