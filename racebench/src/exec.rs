//! Running a command to completion, or killing it at a deadline, and
//! timing it.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// What a finished (or killed) command did.
pub struct Finished {
    /// `None` when it was killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// From spawning to its exit.
    pub wall: Duration,
}

impl Finished {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `command` with stdin from /dev/null and stdout/stderr captured. It
/// runs in a process group of its own, so a timeout kills everything it
/// started (rrc's tracer and the traced program).
pub fn run(mut command: Command, timeout: Duration) -> Result<Finished> {
    let description = format!("{command:?}");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {description}"))?;
    let group = child.id() as libc::pid_t;
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let output = child.wait_with_output();
        let wall = started.elapsed();
        // The receiver only goes away if the caller has already failed.
        let _ = done_tx.send((output, wall));
    });
    let (output, wall, killed) = match done_rx.recv_timeout(timeout) {
        Ok((output, wall)) => (output, wall, false),
        Err(_) => {
            // SAFETY: kill(2) on our own child's process group; the group
            // outlives the leader while any member is alive.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
            let (output, wall) = done_rx
                .recv()
                .context("lost the thread waiting for a killed command")?;
            (output, wall, true)
        }
    };
    waiter
        .join()
        .map_err(|_| anyhow::anyhow!("the thread waiting for {description} panicked"))?;
    let output = output.with_context(|| format!("cannot wait for {description}"))?;
    Ok(Finished {
        status: if killed { None } else { Some(output.status) },
        stdout: output.stdout,
        stderr: output.stderr,
        wall,
    })
}
