//! Writes to rrc's own stdout and stderr made by the tracer at the call's
//! seccomp stop: one ptrace stop instead of two. A program that prints a
//! line per call (Rust's `println!`, stdio on a line-buffered stream) took
//! two stops per line, about 60 µs on this kind of VM.
//!
//! The tracer writes the bytes it read for the trace through its own
//! descriptor, which must be the program's very open file (`kcmp`: one
//! offset, one set of flags), and skips the call with that result. The
//! record is the one the call's exit would have made, and the output's
//! order is the tracer's, as it is for the serial calls of `serial`. Only
//! where such a write can neither block the tracer nor be cut short: a
//! pipe or a unix socket with at most `PIPE_BUF` bytes, written with
//! `RWF_NOWAIT` (whole, or nothing and an error), `/dev/null`, and a file
//! on a local file system while the program's file-size limit is
//! unlimited (the limit is the writer's: the program's would raise its
//! `SIGXFSZ`). Anything else (a terminal, a network file system, a full
//! pipe, a reader gone, whose `SIGPIPE` is the program's) goes the usual
//! way: the program makes the call.
//!
//! And only in a process of one thread. With threads that race where rrc
//! cannot see (Rust's locks, atomics), the faster write made recordings
//! that replay, which prints each write at a stop of its own, followed
//! less well: Rust programs of the test suite replayed 183 of 216 times
//! against 204 (BENCHMARKS.md, session 32).

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use anyhow::Result;
use nix::unistd::Pid;
use rrc_interposer::{model, SyscallRegs, Tracee, TraceeMemory};
use rrc_trace::{ProcessId, SyscallExtra};

use super::syscall::InFlight;
use super::{Recorder, Resume};

/// The most iovecs a writev may have (`IOV_MAX`).
const MOST_IOVECS: u64 = 1024;

/// What one of our stdout and stderr is, for writes made here.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sink {
    /// A pipe or a unix socket: an `RWF_NOWAIT` write of at most
    /// `PIPE_BUF` bytes is whole, or writes nothing and fails.
    Atomic,
    /// `/dev/null`: takes everything, at once.
    Null,
    /// A regular file on a local file system: a write does not wait for
    /// anyone else.
    File,
    /// Anything else: the program makes its own writes.
    Not,
}

impl Sink {
    fn of(fd: i32) -> Sink {
        let Ok(meta) = std::fs::metadata(format!("/proc/self/fd/{fd}")) else {
            return Sink::Not;
        };
        let kind = meta.file_type();
        if kind.is_fifo() || (kind.is_socket() && is_unix_socket(fd)) {
            Sink::Atomic
        } else if kind.is_char_device() && meta.rdev() == libc::makedev(1, 3) {
            Sink::Null
        } else if kind.is_file() && on_local_disk(fd) {
            Sink::File
        } else {
            Sink::Not
        }
    }

    /// The most bytes one write made here may have.
    fn most(self) -> usize {
        match self {
            Sink::Atomic => libc::PIPE_BUF,
            Sink::Null | Sink::File => usize::MAX,
            Sink::Not => 0,
        }
    }
}

/// Whether `fd`'s file system keeps its writes on this machine (ext4,
/// XFS, Btrfs, tmpfs, overlayfs), where a write takes no other process's
/// time (a FUSE daemon may be the recorded program itself).
fn on_local_disk(fd: i32) -> bool {
    const LOCAL: [i64; 5] = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0x794C_7630];
    // SAFETY: fstatfs fills the struct it is given.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `fs` outlives the call.
    let r = unsafe { libc::fstatfs(fd, &mut fs) };
    r == 0 && LOCAL.contains(&(fs.f_type as i64))
}

fn is_unix_socket(fd: i32) -> bool {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: SO_DOMAIN writes one int into `domain`, whose size `len` gives.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut domain as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0 && domain == libc::AF_UNIX
}

/// Our stdout (1) and stderr (2), as sinks of writes made here.
pub(super) struct OwnSinks([Sink; 3]);

impl OwnSinks {
    pub(super) fn new() -> OwnSinks {
        OwnSinks([Sink::Not, Sink::of(1), Sink::of(2)])
    }

    fn sink(&self, stream: u8) -> Sink {
        self.0
            .get(usize::from(stream))
            .copied()
            .unwrap_or(Sink::Not)
    }

    /// Writes `data` to our `stream` if it can be done here: the call's
    /// result, or `None` (nothing written) when the program must make the
    /// call itself.
    /// `pid`: the writer.
    fn write(&self, pid: Pid, stream: u8, data: &[u8]) -> Option<i64> {
        let sink = self.sink(stream);
        if sink == Sink::File && !unlimited_file_size(pid) {
            return None;
        }
        write_to(i32::from(stream), sink, data)
    }
}

/// Whether `pid` may write files of any size (`RLIMIT_FSIZE`).
fn unlimited_file_size(pid: Pid) -> bool {
    // SAFETY: prlimit with no new limit only fills `limit`.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `limit` outlives the call.
    let r = unsafe {
        libc::prlimit(
            pid.as_raw(),
            libc::RLIMIT_FSIZE,
            std::ptr::null(),
            &mut limit,
        )
    };
    r == 0 && limit.rlim_cur == libc::RLIM_INFINITY
}

/// Writes `data` to `fd`, a `sink`, if that can be done here (see
/// [`OwnSinks::write`]).
fn write_to(fd: i32, sink: Sink, data: &[u8]) -> Option<i64> {
    // Nothing is more than `Sink::Not` takes.
    if data.is_empty() || data.len() > sink.most() {
        return None;
    }
    let flags = if sink == Sink::Atomic {
        libc::RWF_NOWAIT
    } else {
        0
    };
    let iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: one iovec over `data`, which outlives the call; offset -1
    // writes at the file's own position, as write(2) does.
    let n = unsafe { libc::pwritev2(fd, &iov, 1, -1, flags) };
    // Written, whole for a pipe: the program's result. A failure wrote
    // nothing, and the program's own call meets it again.
    (n > 0).then_some(n as i64)
}

impl Recorder {
    /// Makes `call` here if it is a write or writev to our stdout or
    /// stderr that can be (see the module's comment): its result.
    /// `process`: the caller's.
    pub(super) fn write_at_entry(
        &mut self,
        pid: Pid,
        process: ProcessId,
        call: &InFlight,
    ) -> Option<i64> {
        let SyscallExtra::StdStream(stream) = call.extra else {
            return None;
        };
        // The bytes of a sendfile or splice come from a descriptor.
        if !matches!(call.nr, libc::SYS_write | libc::SYS_writev) {
            return None;
        }
        // A terminal, say: nothing else to look at.
        if self.own_sinks.sink(stream) == Sink::Not {
            return None;
        }
        // A serialised recording's token, the end's left-behind writers,
        // a fork or a handler running alone: all look at a call's exit.
        if self.token.enabled() || self.left_behind.begun() || self.alone.holds(process) {
            return None;
        }
        if self.has_other_threads(pid, process) {
            return None;
        }
        let (_, same) = self.std_streams.get_open_file(pid, process, call.args[0])?;
        if !same {
            return None;
        }
        let data = call.inputs.first()?;
        let wanted = match call.nr {
            libc::SYS_write => call.args[2],
            libc::SYS_writev => gathered_len(pid, call.args[1], call.args[2])?,
            _ => return None,
        };
        // What could not be read (a bad buffer) is the kernel's to refuse.
        if data.len() as u64 != wanted {
            return None;
        }
        self.own_sinks.write(pid, stream, data)
    }

    /// A call that sends another descriptor's bytes to our stdout or
    /// stderr (sendfile, copy_file_range, splice, tee) is made to move no
    /// more than the bytes read for the trace as it began: a pipe that
    /// fills, or a file that grows, in between would put bytes on our
    /// stdout that the trace lacks, and replay could not print them.
    pub(super) fn limit_to_recorded(
        &self,
        pid: Pid,
        regs: &SyscallRegs,
        call: &InFlight,
    ) -> Result<()> {
        let Some(arg) = model::sent_count_arg(call.nr) else {
            return Ok(());
        };
        if !matches!(call.extra, SyscallExtra::StdStream(_)) {
            return Ok(());
        }
        let held = call.inputs.first().map_or(0, |d| d.len() as u64);
        let mut args = regs.args();
        // Nothing read (an empty pipe, a socket): the call goes as made,
        // and replay says the bytes are missing if it sends any.
        if held == 0 || held >= args[arg] {
            return Ok(());
        }
        args[arg] = held;
        let mut limited = *regs;
        limited.set_args(&args);
        Tracee::new(pid).set_regs(&limited, "limit a copy to stdout to the bytes recorded")?;
        Ok(())
    }

    /// Ends a call made at its seccomp stop with `ret`: skipped, recorded
    /// as its exit would have, and the next serial call let go.
    pub(super) fn finish_at_entry(
        &mut self,
        pid: Pid,
        mut regs: SyscallRegs,
        call: InFlight,
        ret: i64,
    ) -> Result<()> {
        Tracee::new(pid).skip_syscall(&mut regs, ret)?;
        if let Some(t) = self.threads.get_mut(&pid) {
            t.last_exit_rip = Some(regs.regs.rip);
        }
        self.finish_syscall(pid, call, ret, true)?;
        let next = self.finish_serial_call(pid);
        self.resume(
            pid,
            Resume::Run(0, "resume after a write made at its entry"),
        )?;
        self.release_all(next)
    }
}

/// The bytes a writev's `count` iovecs at `iov` name, if readable.
fn gathered_len(pid: Pid, iov: u64, count: u64) -> Option<u64> {
    if !(1..=MOST_IOVECS).contains(&count) {
        return None;
    }
    let table = Tracee::new(pid).read(iov, (count * 16) as usize).ok()?;
    if table.len() as u64 != count * 16 {
        return None;
    }
    table.chunks_exact(16).try_fold(0u64, |total, entry| {
        let len = u64::from_le_bytes(entry[8..16].try_into().ok()?);
        total.checked_add(len)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_takes_a_write_here_and_a_full_one_is_left_to_the_program() {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors, which the test closes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        assert_eq!(Sink::of(fds[1]), Sink::Atomic);
        let write = |data: &[u8]| write_to(fds[1], Sink::Atomic, data);
        assert_eq!(write(b"line\n"), Some(5));
        // Fill it: a nowait write then fails whole, nothing written.
        let block = vec![b'x'; libc::PIPE_BUF];
        while write(&block).is_some() {}
        assert_eq!(write(b"more\n"), None);
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        assert_eq!(
            unsafe { libc::ioctl(fds[0], libc::FIONREAD, &mut queued) },
            0
        );
        assert_eq!(queued as usize % libc::PIPE_BUF, 5, "no part of a write");
        // Too large for one atomic write, or empty: never tried here.
        assert_eq!(write(&vec![b'y'; libc::PIPE_BUF + 1]), None);
        assert_eq!(write(b""), None);
        // SAFETY: closing the test's own descriptors.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }

    #[test]
    fn dev_null_and_a_local_file_are_sinks_and_proc_is_not() {
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("/dev/null");
        assert_eq!(Sink::of(std::os::fd::AsRawFd::as_raw_fd(&null)), Sink::Null);
        let proc = std::fs::File::open("/proc/self/status").expect("open");
        assert_eq!(Sink::of(std::os::fd::AsRawFd::as_raw_fd(&proc)), Sink::Not);
        let me = std::process::id() as i32;
        assert!(
            unlimited_file_size(Pid::from_raw(me)) || {
                // SAFETY: getrlimit fills the struct it is given.
                let mut l: libc::rlimit = unsafe { std::mem::zeroed() };
                unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut l) };
                l.rlim_cur != libc::RLIM_INFINITY
            }
        );
    }
}
