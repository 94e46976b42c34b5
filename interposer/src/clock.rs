//! Waiting for "a tracee stopped, or a deadline passed", for a tracer that
//! must hold threads for precise amounts of time. SIGCHLD is blocked and
//! read through a signalfd, so one ppoll waits for both.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;

/// Below this, sleeping overshoots more than spinning costs.
const SPIN_BELOW: Duration = Duration::from_micros(30);

pub struct StopClock {
    sigchld: OwnedFd,
}

impl StopClock {
    /// Blocks SIGCHLD for the calling thread; call it before spawning any
    /// other thread so they inherit the mask and the signal always queues
    /// on the signalfd. The traced child unblocks it before exec.
    pub fn new() -> std::io::Result<StopClock> {
        // SAFETY: plain signal-mask and signalfd calls on stack-owned sets.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Precise sleeps: the default 50 us timer slack would swamp
            // short intervals.
            libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0);
            Ok(StopClock {
                sigchld: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// Returns when a SIGCHLD may have arrived or at `deadline`, whichever
    /// is first. Spins through the last few microseconds of a deadline.
    pub fn wait(&self, deadline: Option<Instant>) {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if let Some(t) = timeout {
            if t < SPIN_BELOW {
                while Instant::now() < deadline.unwrap_or_else(Instant::now) {
                    std::hint::spin_loop();
                }
                return;
            }
        }
        let ts = timeout.map(|t| {
            let t = t - SPIN_BELOW / 2;
            libc::timespec {
                tv_sec: t.as_secs() as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            }
        });
        let mut pfd = libc::pollfd {
            fd: self.sigchld.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd and ts live across the call.
        let r = unsafe {
            libc::ppoll(
                &mut pfd,
                1,
                ts.as_ref()
                    .map_or(std::ptr::null(), |t| t as *const libc::timespec),
                std::ptr::null(),
            )
        };
        if r > 0 {
            self.drain();
        } else if r < 0 && Errno::last() != Errno::EINTR {
            // Should not happen; avoid a busy loop if it does.
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    fn drain(&self) {
        let mut buf = [0u8; 128 * 8];
        // SAFETY: reading into a stack buffer from our nonblocking signalfd.
        while unsafe {
            libc::read(
                self.sigchld.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        } > 0
        {}
    }
}
