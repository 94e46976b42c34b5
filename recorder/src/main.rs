//! rrc-record: runs a program under the tracer and writes its trace.

mod drain;
mod engine;
mod environment;
mod preflight;

/// The tracer thread allocates the records it makes and the writer thread
/// frees them: glibc's allocator makes each such free contend for the
/// tracer's arena; mimalloc frees across threads cheaply.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rrc_interposer::{shim_path, spawn_traced, traced_env, SpawnOptions};
use rrc_synclog::{Schedule, SharedSyncLog, MODE_RECORD, SHM_FD};
use rrc_trace::{spawn_writer, EndRecord, TraceHeader, TraceRecord};

/// Record a program's nondeterministic events so that rrc-replay can
/// re-execute it faithfully.
#[derive(Parser, Debug)]
#[command(name = "rrc-record", version, about)]
struct Cli {
    /// Where to write the trace.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "TRACE",
        default_value = "rrc.trace"
    )]
    output: PathBuf,
    /// Keep the values of environment variables whose names match
    /// PATTERN (`*` matches any run of characters) out of the trace; the
    /// program still gets them, and rrc-replay takes them from its own
    /// environment. Repeatable.
    #[arg(long = "env-secret", value_name = "PATTERN")]
    env_secret: Vec<OsString>,
    /// Run one thread at a time, switching only at syscalls (futex and
    /// sched_yield included), and record that schedule: slower, but races
    /// that no lock or syscall orders (Rust's std locks, atomics) replay
    /// exactly. A thread that spins without a syscall until another one
    /// runs is switched away from on a timer, and replay cannot find that
    /// point again. Replay follows the trace's choice.
    #[arg(long)]
    serialize: bool,
    /// Trap every recorded call: no in-process fast path (the shim's
    /// buffered reads, writes, sends, receives, polls and clock reads).
    /// `RRC_FAST_PATH=0` in the environment does the same.
    #[arg(long)]
    no_fast_path: bool,
    /// Let a thread that releases a contended lock rrc does not see (Rust's
    /// `Mutex`, a hand-written futex lock) take it straight back. By
    /// default the releaser waits, up to about a millisecond, until the
    /// waiter it woke has taken the lock, which replay then hands on the
    /// same way: contended locks are slower when recorded, and replay much
    /// more often faithful. `RRC_LOCK_HANDOFF=0` does the same.
    #[arg(long)]
    no_lock_handoff: bool,
    /// Keep every byte the program sends (writes, sends) in the trace.
    /// By default data over 64 bytes is kept as its length and XXH3-128 hash,
    /// which is all replay needs to compare it; a divergence there then
    /// shows the differing bytes of the replay only.
    #[arg(long)]
    full_inputs: bool,
    /// Keep every thread's rdtsc and rdtscp faulting through
    /// `PR_TSC_SIGSEGV`. By default a thread that has made 1,000 calls the
    /// shim wraps leaves that trap once rrc has patched each rdtsc in the
    /// process's code into a fault of its own (still recorded), which
    /// spares each switch between it and another program several
    /// microseconds, and its clocks are read through the vDSO.
    #[arg(long)]
    trap_rdtsc: bool,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROGRAM [ARGS]...")]
    command: Vec<OsString>,
}

static CHILD: AtomicI32 = AtomicI32::new(0);

/// Whether SIGPIPE was ignored when we were started, read before Rust's
/// runtime sets it to ignored for itself (which the program would
/// otherwise inherit: `rrc-record -- prog | head -1` must end `prog` the
/// way it ends natively). `.init_array` functions run before `main`.
static SIGPIPE_IGNORED_AT_START: AtomicBool = AtomicBool::new(false);

extern "C" fn note_sigpipe_at_start() {
    // SAFETY: querying a disposition with a null new action.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0 {
            SIGPIPE_IGNORED_AT_START.store(old.sa_sigaction == libc::SIG_IGN, Ordering::Relaxed);
        }
    }
}

#[used]
#[link_section = ".init_array"]
static NOTE_SIGPIPE: extern "C" fn() = note_sigpipe_at_start;

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; pid is our traced child.
        unsafe { libc::kill(pid, sig) };
    }
}

/// SIGINT and SIGTERM stop the recorded program, not the recorder: the
/// trace is then completed normally.
fn forward_stop_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installing a handler that only calls kill(2).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

// Huge pages off before Rust's runtime allocates (see the macro).
rrc_interposer::no_huge_pages_before_main!();

fn main() {
    let cli: Cli = rrc_cli::parse_or_exit("rrc-record");
    match run(cli) {
        Ok(code) => std::process::exit(code),
        // 125: like env(1) and docker, a failure of the tool rather than of
        // the program, whose own codes pass through.
        Err(e) => rrc_cli::fail("rrc-record", &format!("{e:#}"), 125),
    }
}

/// Why the trace writer stopped, from its own result (its thread has
/// ended: joining it does not wait), or `stopped` itself.
fn writer_failure(writer: rrc_trace::WriterHandle, stopped: anyhow::Error) -> anyhow::Error {
    match writer.finish() {
        Err(rrc_trace::TraceError::Io(e)) if e.raw_os_error() == Some(libc::EFBIG) => {
            anyhow::anyhow!("writing the trace: it reached the file-size limit (ulimit -f)")
        }
        Err(e) => anyhow::anyhow!("writing the trace: {e}"),
        Ok(_) => stopped,
    }
}

/// Finds the program the way a shell would.
fn resolve_program(program: &OsString) -> Result<PathBuf> {
    let p = Path::new(program);
    let candidates: Vec<PathBuf> = if program.as_bytes().contains(&b'/') {
        vec![p.to_path_buf()]
    } else {
        std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).map(|d| d.join(p)).collect())
            .unwrap_or_default()
    };
    for c in &candidates {
        if let Ok(meta) = std::fs::metadata(c) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return std::path::absolute(c)
                    .with_context(|| format!("resolving {}", c.display()));
            }
            if c.as_os_str().as_bytes().contains(&b'/') && candidates.len() == 1 {
                bail!("cannot execute '{}': not an executable file", c.display());
            }
        }
    }
    if candidates.len() == 1 {
        bail!("cannot execute '{}': no such file", p.display());
    }
    bail!("cannot find program '{}' in PATH", p.display())
}

/// Refuses a program rrc cannot record; warns of what it will lack.
fn check_program(exe: &Path) -> Result<()> {
    match preflight::check(exe) {
        Err(preflight::Refusal(why)) => bail!("{why}"),
        Ok(Some(preflight::Warning::StaticallyLinked)) => eprintln!(
            "rrc-record: warning: '{}' is statically linked: rrc's shim cannot load into it, so \
             no lock order is recorded and its threads may replay in another order",
            exe.display()
        ),
        Ok(None) => {}
    }
    Ok(())
}

fn run(cli: Cli) -> Result<i32> {
    // The signal state the program inherits from whoever started us, read
    // before the clock blocks SIGCHLD and we install our own handlers.
    let mut signals = rrc_interposer::SignalState::current();
    signals.set_ignored(
        libc::SIGPIPE,
        SIGPIPE_IGNORED_AT_START.load(Ordering::Relaxed),
    );
    // The trace obeys a file-size limit (`ulimit -f`) too: reaching it
    // must end the recording with a message, not kill us with SIGXFSZ.
    // The program still starts with the disposition read above.
    // SAFETY: signal() with SIG_IGN installs no handler of ours.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    // Likewise the descriptors it inherits, before we open any.
    let inherited_fds = rrc_interposer::inherited_fds();
    // Then, before any thread exists: blocks SIGCHLD process-wide.
    let clock = rrc_interposer::StopClock::new().context("setting up the tracer clock")?;
    let Some(program) = cli.command.first() else {
        bail!("no program given (usage: rrc-record [-o TRACE] -- PROGRAM [ARGS...])");
    };
    let exe = resolve_program(program)?;
    check_program(&exe)?;
    let shim = shim_path()?;
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let env: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            kv
        })
        .collect();
    let secret_patterns: Vec<Vec<u8>> = cli
        .env_secret
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    let (trace_env, secret_env) = environment::for_trace(&env, &secret_patterns);
    let header = TraceHeader {
        argv: cli.command.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env: trace_env,
        exe_digest: rrc_trace::exe_digest(&exe)
            .with_context(|| format!("reading {}", exe.display()))?,
        secret_env,
        serialized: cli.serialize,
        cwd: cwd.as_os_str().as_bytes().to_vec(),
        exe: exe.as_os_str().as_bytes().to_vec(),
        start_time_unix_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        shim_path: shim.as_os_str().as_bytes().to_vec(),
        shim_digest: rrc_interposer::file_digest(&shim)
            .with_context(|| format!("reading {}", shim.display()))?,
        rrc_version: env!("CARGO_PKG_VERSION").to_string(),
        ignored_signals: signals.ignored,
        blocked_signals: signals.blocked,
        inherited_fds,
    };
    // The trace holds everything the program read: a new owner-only file,
    // never one reached through a link or a device (see rrc_trace::file).
    let file = rrc_trace::create_for_writing(&cli.output).context("cannot create the trace")?;
    let sink = std::io::BufWriter::with_capacity(1 << 16, file);
    let writer = spawn_writer(Box::new(sink), &header).context("writing the trace header")?;

    let (shm_fd, log) = SharedSyncLog::create(MODE_RECORD).context("creating the sync log")?;
    log.set_schedule(if cli.serialize {
        Schedule::Serial
    } else {
        Schedule::Parallel
    });
    let fast_path = !cli.serialize
        && !cli.no_fast_path
        && std::env::var_os("RRC_FAST_PATH").is_none_or(|v| v != "0");
    log.set_lock_handoff(
        !cli.serialize
            && !cli.no_lock_handoff
            && std::env::var_os("RRC_LOCK_HANDOFF").is_none_or(|v| v != "0"),
    );
    let log = Arc::new(log);
    let next_thread = Arc::new(AtomicU32::new(0));
    let drainer = drain::SyncDrainer::spawn(log.clone(), next_thread.clone(), writer.sender())
        .context("starting the sync drainer")?;

    let cstr = |b: &[u8]| CString::new(b.to_vec()).context("argument contains a NUL byte");
    let opts = SpawnOptions {
        program: cstr(exe.as_os_str().as_bytes())?,
        argv: cli
            .command
            .iter()
            .map(|a| cstr(a.as_bytes()))
            .collect::<Result<_>>()?,
        env: traced_env(&env, &shim),
        cwd: None,
        fds: vec![(std::os::fd::AsRawFd::as_raw_fd(&shm_fd), SHM_FD)],
        signals,
        close_inherited: false,
        serialized: cli.serialize,
        fast_path,
    };
    forward_stop_signals();
    if !cli.trap_rdtsc {
        rrc_interposer::prewarm_rdtsc_scan(&exe);
    }
    let started = Instant::now();
    let root = spawn_traced(&opts)?;
    CHILD.store(root.as_raw(), Ordering::Relaxed);
    let recorder = engine::Recorder::new(
        writer.sender(),
        log.clone(),
        next_thread,
        root,
        clock,
        cli.serialize,
        fast_path,
    )?
    .with_full_inputs(cli.full_inputs)
    .with_rdtsc_trapped(cli.trap_rdtsc);
    let status = match recorder.run() {
        Ok(status) => status,
        Err(e) if e.is::<engine::WriterStopped>() => return Err(writer_failure(writer, e)),
        Err(e) => return Err(e),
    };
    rrc_interposer::reclaim_terminal();
    drainer.finish();
    writer
        .send(TraceRecord::End(EndRecord {
            exit: status,
            duration_ns: started.elapsed().as_nanos() as u64,
        }))
        .context("writing the end record")?;
    writer.finish().context("finishing the trace")?;
    Ok(status.as_shell_code())
}
