//! Running programs and timing them: one-shot commands measured with
//! wait4 (wall and CPU time), and servers that run until told to stop.
//!
//! Everything runs in a process group of its own, so a timeout or an
//! error kills the whole group: rrc-record, its tracer threads and the
//! traced program alike.

use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How many lines of a failed command's stderr an error message quotes.
const STDERR_LINES_QUOTED: usize = 15;

/// Process groups this bench started and has not reaped yet, so that an
/// interrupted bench kills them (a signal handler can read atomics but not
/// take locks). 0 marks a free slot.
static LIVE_GROUPS: [AtomicI32; 16] = [const { AtomicI32::new(0) }; 16];

fn register_group(leader: u32) {
    let leader = leader as i32;
    for slot in &LIVE_GROUPS {
        if slot
            .compare_exchange(0, leader, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
    // Never more than a few at once; an unregistered group is still killed
    // on every path but an interrupted bench.
}

fn unregister_group(leader: u32) {
    let leader = leader as i32;
    for slot in &LIVE_GROUPS {
        let _ = slot.compare_exchange(leader, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

extern "C" fn kill_groups_and_exit(signal: libc::c_int) {
    for slot in &LIVE_GROUPS {
        let leader = slot.load(Ordering::SeqCst);
        if leader > 0 {
            // SAFETY: kill(2) is async-signal-safe; the group is ours.
            unsafe {
                libc::kill(-leader, libc::SIGKILL);
            }
        }
    }
    // SAFETY: _exit(2) is async-signal-safe.
    unsafe { libc::_exit(128 + signal) }
}

/// On SIGINT, SIGTERM or SIGHUP, kills every process group the bench has
/// running (servers, rrc-record, rrc-replay and what they traced) before
/// exiting: they run in groups of their own, which a terminal's Ctrl-C
/// does not reach.
pub fn kill_children_on_interrupt() -> Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only makes async-signal-safe
        // calls; sigaction is plain old data.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = kill_groups_and_exit as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed != 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("cannot install a handler for signal {signal}"));
        }
    }
    Ok(())
}

/// What one finished command cost.
pub struct Measurement {
    pub status: ExitStatus,
    /// From just before spawning to wait4's return.
    pub wall: Duration,
    /// User CPU time of the command and every descendant it waited for
    /// (for rrc-record and rrc-replay: the tracer and the traced program).
    pub user_cpu: Duration,
    /// System CPU time, likewise.
    pub system_cpu: Duration,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Measurement {
    /// Fails, quoting the end of the command's stderr, unless it exited 0.
    pub fn require_success(&self, label: &str) -> Result<()> {
        if self.status.success() {
            return Ok(());
        }
        bail!(
            "{label} failed ({}){}",
            self.status,
            quote_tail(&self.stderr_path)
        )
    }

    pub fn stdout(&self) -> Result<String> {
        fs::read_to_string(&self.stdout_path)
            .with_context(|| format!("cannot read {}", self.stdout_path.display()))
    }
}

/// The last lines of a log file (which is deleted with its temporary
/// directory), formatted to follow an error message; empty when the file
/// is empty or unreadable.
pub fn quote_tail(path: &Path) -> String {
    let Ok(text) = fs::read_to_string(path) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(STDERR_LINES_QUOTED);
    format!(
        "; its output ended with:\n  {}",
        lines[start..].join("\n  ")
    )
}

/// A file-name-safe form of `label`.
fn file_stem(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn timeval_duration(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Sends `signal` to every process in the group led by `group_leader`.
fn signal_group(group_leader: u32, signal: libc::c_int) {
    // SAFETY: kill(2) on a process group we created; a group that no
    // longer exists only makes kill return ESRCH, which is harmless.
    unsafe {
        libc::kill(-(group_leader as libc::pid_t), signal);
    }
}

/// Runs `command` to completion with stdin from /dev/null and stdout and
/// stderr written to `LABEL.out` and `LABEL.err` in `log_dir`, and
/// measures its wall and CPU time. Kills its process group and fails if it
/// runs longer than `timeout`. A non-zero exit is not an error here: see
/// [`Measurement::require_success`].
pub fn run_measured(
    mut command: Command,
    label: &str,
    log_dir: &Path,
    timeout: Duration,
) -> Result<Measurement> {
    let stem = file_stem(label);
    let stdout_path = log_dir.join(format!("{stem}.out"));
    let stderr_path = log_dir.join(format!("{stem}.err"));
    let stdout = File::create(&stdout_path)
        .with_context(|| format!("cannot create {}", stdout_path.display()))?;
    let stderr = File::create(&stderr_path)
        .with_context(|| format!("cannot create {}", stderr_path.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);

    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("{label}: cannot start {command:?}"))?;
    let pid = child.id();
    register_group(pid);
    // The waiter reaps the child with wait4 for its resource usage; the
    // std handle is only dropped (which neither waits nor kills).
    drop(child);
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain old data; wait4 fills it in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let result = loop {
            // SAFETY: waiting for our own child with valid out-pointers.
            let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
            if waited >= 0 {
                unregister_group(pid);
                break Ok(());
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                break Err(error);
            }
        };
        let wall = started.elapsed();
        // The receiver only goes away when the caller has already failed.
        let _ = done_tx.send((result, status, usage, wall));
    });
    let (result, status, usage, wall) = match done_rx.recv_timeout(timeout) {
        Ok(done) => done,
        Err(_) => {
            signal_group(pid, libc::SIGKILL);
            // Reap it so no zombie is left; the waiter returns promptly
            // after SIGKILL.
            let _ = done_rx.recv();
            let _ = waiter.join();
            bail!(
                "{label} did not finish within {} s and was killed{}",
                timeout.as_secs(),
                quote_tail(&stderr_path)
            );
        }
    };
    waiter
        .join()
        .map_err(|_| anyhow!("{label}: the thread waiting for it panicked"))?;
    result.with_context(|| format!("{label}: wait4 failed"))?;
    Ok(Measurement {
        status: ExitStatus::from_raw(status),
        wall,
        user_cpu: timeval_duration(usage.ru_utime),
        system_cpu: timeval_duration(usage.ru_stime),
        stdout_path,
        stderr_path,
    })
}

/// A free TCP port on 127.0.0.1 (free when this returns; the server that
/// is given it binds it a moment later).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("cannot bind a socket on 127.0.0.1 to find a free port")?;
    Ok(listener
        .local_addr()
        .context("cannot read the free port's address")?
        .port())
}

/// A server process (native, or rrc-record running one) in its own
/// process group. Dropping it without [`RunningServer::stop`] kills the
/// whole group, so error paths leave nothing running.
pub struct RunningServer {
    child: Child,
    label: String,
    log_path: PathBuf,
    started: Instant,
    reaped: bool,
}

/// How a stopped server ended.
pub struct StoppedServer {
    pub status: ExitStatus,
    /// From spawning to its exit.
    pub wall: Duration,
}

impl RunningServer {
    /// Starts `command` with stdin from /dev/null and stdout and stderr
    /// both appended to `LABEL.log` in `log_dir`.
    pub fn start(mut command: Command, label: &str, log_dir: &Path) -> Result<Self> {
        let log_path = log_dir.join(format!("{}.log", file_stem(label)));
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let log_for_stderr = log
            .try_clone()
            .with_context(|| format!("cannot duplicate {}", log_path.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr)
            .process_group(0);
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("{label}: cannot start {command:?}"))?;
        register_group(child.id());
        Ok(RunningServer {
            child,
            label: label.to_string(),
            log_path,
            started,
            reaped: false,
        })
    }

    /// Waits until something accepts connections on 127.0.0.1:`port`;
    /// fails if the server exits first or `timeout` passes.
    pub fn wait_until_listening(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .with_context(|| format!("{}: cannot poll the process", self.label))?
            {
                self.mark_reaped();
                bail!(
                    "{} exited ({status}) before listening on port {port}{}",
                    self.label,
                    quote_tail(&self.log_path)
                );
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on port {port} within {} s{}",
                    self.label,
                    timeout.as_secs(),
                    quote_tail(&self.log_path)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM to the process (rrc-record forwards it to the
    /// server) and waits for it to exit; after `timeout`, kills the whole
    /// group and fails.
    pub fn stop(mut self, timeout: Duration) -> Result<StoppedServer> {
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let polled = self
                .child
                .try_wait()
                .with_context(|| format!("{}: cannot poll the process", self.label))?;
            if let Some(status) = polled {
                self.mark_reaped();
                return Ok(StoppedServer {
                    status,
                    wall: self.started.elapsed(),
                });
            }
            if Instant::now() > deadline {
                // Drop kills the group.
                bail!(
                    "{} did not exit within {} s of SIGTERM{}",
                    self.label,
                    timeout.as_secs(),
                    quote_tail(&self.log_path)
                );
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn mark_reaped(&mut self) {
        self.reaped = true;
        unregister_group(self.child.id());
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // Only while the leader is unreaped: its id then still names our
        // group and no one else's.
        if !self.reaped {
            signal_group(self.child.id(), libc::SIGKILL);
            let _ = self.child.wait();
            unregister_group(self.child.id());
        }
    }
}
