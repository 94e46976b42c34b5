//! rrc-replay: re-executes a recorded program, enforcing every recorded
//! outcome, and reports the first divergence.

mod divergence;
mod engine;
mod feed;
mod plan;
#[cfg(test)]
mod plan_tests;
mod ranks;
mod regroup;
mod search;
mod trust;
mod window;

/// The reader thread allocates the events it decodes and the engine
/// frees them: glibc's allocator makes each such free contend for the
/// other thread's arena; mimalloc frees across threads cheaply.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use rrc_interposer::{shim_path, spawn_traced, traced_env, SpawnOptions};
use rrc_synclog::{Schedule, SharedSyncLog, MODE_REPLAY, SHM_FD};
use rrc_trace::SyncOp;

/// Replay a trace recorded by rrc-record. Exits 0 only for a faithful
/// replay to the end; otherwise prints a line beginning `divergence:`.
#[derive(Parser, Debug, Clone)]
#[command(name = "rrc-replay", version, about)]
struct Cli {
    /// Do not hold syscall returns to the recorded inter-syscall intervals.
    #[arg(long)]
    no_intervals: bool,
    /// What syscall returns are held against: each thread's own previous
    /// return only, or also the recording's shared timeline.
    #[arg(long, value_enum, default_value = "shared")]
    anchor: engine::Anchor,
    /// Do not replay syscall returns and sync operations across threads in
    /// their recorded order (which orders the data races that no lock
    /// covers); sync objects then keep only their own order.
    #[arg(long)]
    no_order_returns: bool,
    /// Catch-up replay: within each window of events of the recorded
    /// order (`--catch-up-window`), events of different threads that touch
    /// nothing in common trade places so that each thread replays runs of
    /// its own (each thread's and each lock's order kept; nothing moves
    /// across a call that changes shared state). Fewer hand-offs between
    /// threads: for a backup catching up; data races no lock covers are
    /// less exact
    #[arg(long)]
    catch_up: bool,
    /// The catch-up window, in events of the recorded order: wider hands
    /// off less and moves unlocked races further. A catch-up replay that
    /// diverges replays again in the recorded order (BENCHMARKS.md)
    #[arg(long, value_name = "N", default_value_t = 1024)]
    catch_up_window: usize,
    /// Let a thread run on as soon as its syscall or futex wait return's
    /// turn in the recorded order comes, instead of keeping it until its
    /// own next event is next (which replays the unlocked accesses between
    /// events, such as counters, closer to where they were recorded).
    #[arg(long)]
    no_late_returns: bool,
    /// Do not hold a thread whose next recorded call is a wait on a
    /// futex lock until another thread holds that lock (a lock rrc does
    /// not see, such as Rust's `Mutex`, was held when it got there).
    #[arg(long)]
    no_lock_gates: bool,
    /// Have the shim answer hot calls in-process (reads, sends, clock
    /// reads: no ptrace stop each). The default; kept for scripts that
    /// ask for it.
    #[arg(long)]
    in_process: bool,
    /// Trap every call, as without the fast path: the shim answers no
    /// call in-process. `RRC_FAST_PATH=0` in the environment does the same.
    #[arg(long)]
    no_fast_path: bool,
    /// Let the order move on as soon as an event has happened. By default
    /// a trace recorded in parallel replays in segments: a thread let go
    /// at its event has the run of the program until it gets to its next
    /// event (or sleeps or spins where rrc cannot see), so races decided
    /// right after an event (a job taken from a queue whose lock rrc does
    /// not see) go as they mostly went when recorded.
    #[arg(long)]
    no_segments: bool,
    /// Print interval-enforcement figures on stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Seconds without any progress before replay is declared stuck.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    stall_timeout: u64,
    /// Run the program at the recorded path even if it is not the file
    /// that was recorded (to see where a changed build departs from the
    /// recording); by default that is a divergence before anything runs.
    #[arg(long)]
    allow_changed_executable: bool,
    /// Megabytes of the trace's events to read ahead of the replay (its
    /// memory for events, beyond the one each thread is at).
    #[arg(long, value_name = "MB", default_value_t = 16)]
    window_mb: u64,
    /// After a divergence in a program recorded in parallel, replay again
    /// up to this many times, placing the code between its threads' events
    /// differently near the divergence (see BENCHMARKS.md): the recorded
    /// events fix where most of it ran, not all. 0 reports the first
    /// divergence at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    retries: u32,
    /// The trace to replay.
    trace: PathBuf,
}

/// Exit status for a divergence (bad input and internal errors use 1).
const EXIT_DIVERGENCE: i32 = 3;

/// The stall timeout of a try after the first (`search.rs`), in seconds.
const RETRY_STALL_SECS: u64 = 5;

/// How many times the first try's length a later try may run.
const TRY_LENGTHS: u32 = 4;

// Huge pages off before Rust's runtime allocates (see the macro).
rrc_interposer::no_huge_pages_before_main!();

fn main() {
    let cli: Cli = rrc_cli::parse_or_exit("rrc-replay");
    match run(&cli) {
        Ok(None) => std::process::exit(0),
        Ok(Some((d, hint))) => {
            // The program's stderr may stop mid-line where it diverged.
            if engine::stderr_mid_line() {
                eprintln!();
            }
            eprintln!("{d}");
            if let Some(hint) = hint {
                eprintln!("rrc-replay: {hint}");
            }
            std::process::exit(EXIT_DIVERGENCE);
        }
        Err(e) => rrc_cli::fail("rrc-replay", &format!("{e:#}"), 1),
    }
}

/// Our shim, refused unless it is the build that recorded the trace.
fn same_shim(trace: &Path, recorded_digest: (u64, u32)) -> Result<std::path::PathBuf> {
    let shim = shim_path()?;
    let digest = rrc_interposer::file_digest(&shim)
        .with_context(|| format!("reading {}", shim.display()))?;
    if digest != recorded_digest {
        anyhow::bail!(
            "{} was recorded with a different build of librrc_shim.so than {} (replay needs the rrc that recorded it)",
            trace.display(),
            shim.display()
        );
    }
    Ok(shim)
}

/// What to tell a user whose replay needs a file that has changed.
const CHANGED_FILE_HINT: &str = "hint: replay maps the files the recording mapped (libraries, \
     the program, data files larger than 256 KiB): replay on the machine that recorded, \
     before they change";

/// What to tell a user whose replay of a program recorded in parallel
/// diverged: its threads may share data rrc does not order.
fn serialize_hint(plan: &plan::ReplayPlan) -> Option<String> {
    if plan.header.serialized || plan.threads.len() < 2 {
        return None;
    }
    let futex = plan
        .threads
        .iter()
        .flat_map(|t| t.sync.iter())
        .filter(|op| matches!(op.op, SyncOp::FutexWait | SyncOp::FutexWake))
        .count();
    let seen = if futex > 0 {
        format!("; it made {futex} futex calls outside pthread")
    } else {
        String::new()
    };
    Some(format!(
        "hint: this program's threads ran in parallel when recorded, and what they share \
         without pthread locks or stdio (atomics, Rust's std::sync, hand-written locks{seen}) \
         is not ordered: a recording that diverged that way usually diverges again. `rrc-record \
         --serialize` records one thread at a time and replays exactly, unless a thread spins \
         without a syscall until another one runs"
    ))
}

/// A divergence, with a hint for the user.
type Verdict = Option<(divergence::Divergence, Option<String>)>;

/// One replay's end.
struct Try {
    verdict: Verdict,
    /// It may be tried again (see `search.rs`).
    again: bool,
    /// Where it stopped.
    stop: search::Stop,
    replayer: Option<engine::Replayer>,
}

fn run(cli: &Cli) -> Result<Verdict> {
    // First, before any thread exists: blocks SIGCHLD process-wide (the
    // threads of later tries inherit the mask too).
    let clock = rrc_interposer::StopClock::new().context("setting up the replay clock")?;
    let mut started = std::time::Instant::now();
    let mut first = attempt(cli, clock, search::Tweaks::default(), None, None)?;
    // A catch-up replay that diverged (its regrouping moved a race): the
    // recorded order, from the start, and the usual search after it.
    let exact;
    let cli = match &first.replayer {
        Some(r) if cli.catch_up && first.again => {
            if cli.stats {
                eprintln!("rrc-replay: stats: the catch-up order diverged: replaying in the recorded order");
            }
            let printed = r.outputs_printed();
            drop(first.replayer.take());
            exact = Cli {
                catch_up: false,
                ..cli.clone()
            };
            let clock = rrc_interposer::StopClock::new().context("setting up the replay clock")?;
            started = std::time::Instant::now();
            first = attempt(
                &exact,
                clock,
                search::Tweaks::default(),
                Some(printed),
                None,
            )?;
            &exact
        }
        _ => cli,
    };
    let Some(mut replayer) = first.replayer.take() else {
        return Ok(first.verdict);
    };
    if !first.again {
        replayer.flush_output();
        return Ok(first.verdict);
    }
    // Tries are cheap for the short programs whose unseen races decide
    // them; a long trace gets a few at most.
    let per_try = started.elapsed();
    let budget = (per_try * 3).clamp(Duration::from_secs(3), Duration::from_secs(30));
    let mut search = search::Search::new(cli.retries, started, budget, per_try);
    let try_limit = (per_try * TRY_LENGTHS).max(Duration::from_millis(300));
    let mut stop = first.stop;
    let mut printed = replayer.outputs_printed();
    while let Some(tweaks) = search.next(replayer.plan(), stop) {
        engine::debug_log(format_args!(
            "try {}: after {stop:?}; {} rules off, mode {:?}",
            search.tries,
            tweaks.len(),
            tweaks.mode
        ));
        let clock = rrc_interposer::StopClock::new().context("setting up the replay clock")?;
        drop(replayer);
        // A try that fails to run, or ends before the program starts,
        // leaves the first try's verdict standing.
        let next = match attempt(cli, clock, tweaks, Some(printed), Some(try_limit)) {
            Ok(next) => next,
            Err(e) => {
                engine::debug_log(format_args!("try {} failed: {e:#}", search.tries));
                return Ok(first.verdict);
            }
        };
        let Some(r) = next.replayer else {
            return Ok(first.verdict);
        };
        replayer = r;
        if next.verdict.is_none() {
            if cli.stats {
                eprintln!(
                    "rrc-replay: stats: faithful on try {} of {} (the first diverged)",
                    search.tries + 1,
                    cli.retries + 1
                );
            }
            return Ok(None);
        }
        stop = next.stop;
        printed = replayer.outputs_printed();
    }
    // No try was faithful: what the last replayed is printed, and the
    // first try's divergence (the replay's own rules) reported.
    replayer.flush_output();
    if cli.stats {
        eprintln!(
            "rrc-replay: stats: {} more tries after the divergence, none faithful",
            search.tries
        );
    }
    Ok(first.verdict)
}

/// Replays the trace once, with the rules in `tweaks` off; a later try
/// does not print the first `printed` outputs again, and is ended after
/// `limit`.
fn attempt(
    cli: &Cli,
    clock: rrc_interposer::StopClock,
    tweaks: search::Tweaks,
    printed: Option<u64>,
    limit: Option<Duration>,
) -> Result<Try> {
    let opened = std::time::Instant::now();
    // Once: later tries find the scans in the process's cache.
    let mut ahead = printed.is_none().then(rrc_interposer::ScanAhead::start);
    let mut code_file = |p: &std::path::Path| {
        if let Some(a) = ahead.as_mut() {
            a.add(p);
        }
    };
    let mut plan = plan::ReplayPlan::open_naming_code(
        &cli.trace,
        cli.window_mb.max(1) << 20,
        if cli.catch_up {
            cli.catch_up_window.max(1)
        } else {
            0
        },
        &mut code_file,
    )
    .with_context(|| format!("cannot replay {}", cli.trace.display()))?;
    drop(ahead);
    if cli.catch_up && plan.header.serialized {
        bail!("--catch-up: this trace was recorded one thread at a time (--serialize) and replays only in its recorded schedule");
    }
    // The whole replay's mode: the user's, and a later try's.
    let mode = tweaks.mode.or(search::Mode {
        no_segments: cli.no_segments,
        no_late_returns: cli.no_late_returns,
        no_lock_gates: cli.no_lock_gates,
    });
    plan.tweak(search::Tweaks { mode, ..tweaks });
    engine::debug_log(format_args!("plan built in {:?}", opened.elapsed()));
    let window = plan.reader.stats();
    // Kept to the end of the try: a copy the program may exec again.
    let replay_shim = trust::shim_for_replay(
        &same_shim(&cli.trace, plan.header.shim_digest)?,
        &plan.header.shim_path,
    );
    let (shm_fd, log) = SharedSyncLog::create(MODE_REPLAY).context("creating the sync log")?;
    // Sync operations take their rank in the event order along with the
    // syscall returns, or neither does.
    log.set_ordering(!cli.no_order_returns);
    // Recorded one thread at a time: replayed the same way (the order
    // then carries the whole schedule). Recorded in parallel: in segments.
    log.set_schedule(if cli.no_order_returns {
        Schedule::Parallel
    } else if plan.header.serialized {
        Schedule::Serial
    } else if plan.threads.len() > 1 && !mode.no_segments {
        Schedule::Segments
    } else {
        Schedule::Parallel
    });
    // Hot calls answered in the shim, without a stop (not serialised:
    // there the tracer hands the run of the program from event to event).
    // The shim keeps a thread after an answer as the tracer keeps a late
    // return, so several busy threads replay as faithfully this way as
    // trapped (BENCHMARKS.md), and several times faster.
    let in_process = !cli.no_fast_path
        && !log.serial()
        && std::env::var_os("RRC_FAST_PATH").is_none_or(|v| v != "0");
    log.set_fast_path(in_process, 0);
    let log = Arc::new(log);
    let shared = Arc::new(feed::ReplayShared::default());
    let watched = Arc::clone(&shared);
    let streams = plan
        .threads
        .iter()
        .map(|t| {
            // Futex waits' late returns go with the tracer's; a serialised
            // replay hands the run of the program on event by event.
            let holds = if plan.header.serialized {
                Arc::default()
            } else {
                Arc::clone(&t.sync_holds)
            };
            (Arc::clone(&t.sync), holds, t.tid)
        })
        .collect();
    let feeder = feed::SyncFeeder::spawn(
        log.clone(),
        streams,
        shared.clone(),
        // A later try that stands still is given up sooner: the first
        // one did not, and others are waiting.
        Duration::from_secs(if printed.is_some() {
            cli.stall_timeout.clamp(1, RETRY_STALL_SECS)
        } else {
            cli.stall_timeout.max(1)
        }),
    )
    .context("starting the sync feeder")?;
    let waker = feed::OrderWaker::spawn(log.clone(), shared.clone())
        .context("starting the event-order waker")?;

    let header = &plan.header;
    if let Some((expected, observed)) = trust::changed_executable(header)? {
        if !cli.allow_changed_executable {
            let d = divergence::Divergence {
                cause: divergence::Cause::Threads,
                thread: None,
                recorded_tid: 0,
                index: None,
                expected,
                observed,
            };
            return Ok(Try {
                verdict: Some((d, None)),
                again: false,
                stop: search::Stop::default(),
                replayer: None,
            });
        }
    }
    if printed.is_none() {
        trust::announce(header);
    }
    let cstr = |b: &[u8]| CString::new(b.to_vec()).context("trace holds a string with a NUL byte");
    let cwd = Path::new(std::ffi::OsStr::from_bytes(&header.cwd));
    // The program's own stdio is /dev/null: its output comes from the
    // trace through us, and its input is replayed.
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    let null = devnull.as_raw_fd();
    // Placeholders for what it inherited when recorded (its reads and
    // writes on them are replayed); anything we inherited is closed.
    let mut fds = vec![
        (null, 0),
        (null, 1),
        (null, 2),
        (shm_fd.as_raw_fd(), SHM_FD),
    ];
    fds.extend(
        header
            .inherited_fds
            .iter()
            .filter(|&&fd| fd > 2 && fd != SHM_FD)
            .map(|&fd| (null, fd)),
    );
    let opts = SpawnOptions {
        program: cstr(&header.exe)?,
        argv: header.argv.iter().map(|a| cstr(a)).collect::<Result<_>>()?,
        env: traced_env(&trust::program_env(header)?, &replay_shim.path),
        cwd: cwd.is_dir().then(|| cstr(&header.cwd)).transpose()?,
        fds,
        signals: rrc_interposer::SignalState {
            ignored: header.ignored_signals,
            blocked: header.blocked_signals,
        },
        close_inherited: true,
        serialized: header.serialized,
        // The shim answers calls in-process and reads the clock for their
        // intervals from its call site.
        fast_path: in_process,
    };
    let serialized = header.serialized;
    let root = spawn_traced(&opts)?;
    if let Ok(mut pids) = shared.pids.lock() {
        pids.push(root.as_raw());
    }
    let mut replayer = engine::Replayer::new(
        plan,
        log.clone(),
        shared,
        root,
        replay_shim.path.as_os_str().as_bytes().to_vec(),
        clock,
        engine::ReplayOptions {
            enforce_intervals: !cli.no_intervals,
            anchor: cli.anchor,
            order_returns: !cli.no_order_returns,
            // A serialised replay hands the run of the program on event
            // by event: the recorded schedule places the code between.
            late_returns: !mode.no_late_returns && !serialized,
            in_process,
        },
    );
    replayer.stats.keep_samples = cli.stats;
    // Another try may follow a divergence of a program whose threads ran
    // in parallel, ordered by the recorded events.
    let may_retry = cli.retries > 0
        && !serialized
        && !cli.no_order_returns
        && replayer.plan().threads.len() > 1;
    if may_retry {
        replayer.retrying(printed.unwrap_or(0));
    }
    // A later try that runs far longer than the first is spending its
    // time giving way: it is ended, as a try that failed.
    let watchdog = limit.map(|limit| {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let shared = Arc::clone(&watched);
        let join = std::thread::spawn(move || {
            if wait.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                shared.diverge(divergence::Divergence {
                    cause: divergence::Cause::Threads,
                    thread: None,
                    recorded_tid: 0,
                    index: None,
                    expected: format!("the try to end within {limit:?}"),
                    observed: "it ran on".into(),
                });
            }
        });
        (done, join)
    });
    let verdict = replayer.run();
    if let Some((done, join)) = watchdog {
        drop(done);
        let _ = join.join();
    }
    feeder.finish();
    waker.finish();
    if cli.stats {
        print_stats(&replayer.stats, &window, cli.window_mb.max(1));
        print_handoffs(replayer.plan());
        let header = log.header();
        eprintln!(
            "rrc-replay: stats: threads held before a futex lock until another held it: {} ({} went on without)",
            header.lock_gates.load(std::sync::atomic::Ordering::Relaxed),
            header.lock_gates_given_way.load(std::sync::atomic::Ordering::Relaxed)
        );
        print_ways(&replayer.ways);
        let b = replayer.batons_taken_back();
        eprintln!(
            "rrc-replay: stats: segments ended by replay: {} (stopped or ended {}, waiting for a lock rrc does not see {}, asleep outside rrc {}, spinning {})",
            b.stopped + b.unseen_lock + b.asleep + b.spinning,
            b.stopped,
            b.unseen_lock,
            b.asleep,
            b.spinning
        );
    }
    let verdict = verdict?;
    // A divergence at an event (not a stall the timeout ended, which
    // would take as long again) may be tried again.
    let again = may_retry
        && verdict
            .as_ref()
            .is_err_and(|d| d.thread.is_some() && d.cause == divergence::Cause::Threads)
        && replayer.ways.stalls_timed_out == 0;
    let stop = search::Stop::new(
        replayer.plan(),
        u64::from(log.order_turn()),
        verdict.as_ref().err(),
    );
    // Looked for only once a thread's replay has departed.
    let verdict = verdict.err().map(|d| {
        let hint = match d.cause {
            divergence::Cause::ChangedFile => Some(CHANGED_FILE_HINT.to_string()),
            divergence::Cause::RrcLimit => None,
            divergence::Cause::Threads => d.thread.and_then(|_| serialize_hint(replayer.plan())),
        };
        (d, hint)
    });
    Ok(Try {
        verdict,
        again,
        stop,
        replayer: Some(replayer),
    })
}

fn print_ways(ways: &engine::WayStats) {
    let total: u64 = ways.given_way.values().sum();
    let kinds: Vec<String> = ways
        .given_way
        .iter()
        .map(|(kind, n)| format!("{}: {n}", kind.name()))
        .collect();
    eprintln!(
        "rrc-replay: stats: holds given way: {total}{}",
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        }
    );
    eprintln!(
        "rrc-replay: stats: stalls broken: {} (standstills reported as divergences); stalls at the stall timeout: {}",
        ways.stalls_broken, ways.stalls_timed_out
    );
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Catch-up replay's figures for `--stats`.
fn print_handoffs(plan: &plan::ReplayPlan) {
    if let Some((recorded, replayed)) = plan.catch_up {
        eprintln!(
            "rrc-replay: stats: hand-offs between threads in the event order: {recorded} recorded, {replayed} in the catch-up order"
        );
    }
}

fn print_stats(stats: &engine::IntervalStats, window: &window::WindowStats, window_mb: u64) {
    let mut all = stats.error_ns.clone();
    all.sort_unstable();
    let mut held = stats.held_error_ns.clone();
    held.sort_unstable();
    let us = |ns: i64| ns as f64 / 1000.0;
    eprintln!(
        "rrc-replay: stats: {} syscalls replayed, {} held for their interval ({:.1} ms in all)",
        all.len(),
        held.len(),
        stats.held_total.as_secs_f64() * 1000.0
    );
    eprintln!(
        "rrc-replay: stats: enforcement error (actual - recorded interval) of held returns: median {:.1} us, p99 {:.1} us",
        us(percentile(&held, 50.0)),
        us(percentile(&held, 99.0))
    );
    eprintln!(
        "rrc-replay: stats: interval error over all returns: median {:.1} us, p99 {:.1} us",
        us(percentile(&all, 50.0)),
        us(percentile(&all, 99.0))
    );
    eprintln!(
        "rrc-replay: stats: event-order ranks skipped because their thread ran its events in another order: {}",
        stats.inversions
    );
    eprintln!(
        "rrc-replay: stats: events let go ahead of the order because the next thread was stuck outside rrc's view: {}",
        stats.early_returns
    );
    eprintln!(
        "rrc-replay: stats: returns kept until the thread's next event was next: {} ({} let go early because the order stood still)",
        stats.late_returns, stats.late_released_stalled
    );
    eprintln!(
        "rrc-replay: stats: calls answered in-process by the shim: {}",
        stats.in_process
    );
    eprintln!(
        "rrc-replay: stats: trace events read ahead: at most {:.1} MB at once (window {window_mb} MB)",
        window.peak_bytes() as f64 / f64::from(1 << 20),
    );
}
