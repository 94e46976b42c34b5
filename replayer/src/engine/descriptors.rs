//! Descriptors and mappings replay cannot make as recorded: placeholder
//! descriptors with the recorded numbers, descriptors received through
//! SCM_RIGHTS, anonymous copies of mapped files, files that may be
//! reopened for real, and recorded ids turned into live ones.

use std::os::unix::ffi::OsStrExt;

use nix::unistd::Pid;
use rrc_interposer::{fd_target, SyscallRegs, Tracee};
use rrc_trace::{SyscallExtra, SyscallRecord, ThreadId};

use super::exit::ExitCheck;
use super::{diverged, Replayer, Res};
use crate::divergence::{describe_record, Expected, Need, Observed};

/// The descriptors a recorded recvmsg received through SCM_RIGHTS (the
/// model's parser, on the outputs the recorder kept).
pub(crate) fn received_fds(record: &SyscallRecord) -> Vec<i32> {
    rrc_interposer::model::received_fds(i64::from(record.nr), record.ret, &record.outputs)
}

/// The call that makes a placeholder descriptor numbered `want`:
/// `(nr, args)`.
///
/// The kernel reserves a descriptor number when a call such as a blocking
/// `accept` starts, so a recorded number need not be the lowest free one
/// when the call returned (another thread may have closed a lower one
/// meanwhile): when `want` is free (`want_free`), `dup3` of the sync
/// log's descriptor, present in every tracee (`log_open`), puts the
/// placeholder exactly there. Otherwise (the program closed the sync
/// log, or `want` is taken, which the exit check reports) `eventfd2`
/// takes the lowest free number.
pub(crate) fn placeholder_choice(
    want: i64,
    want_free: bool,
    log_open: bool,
    cloexec: bool,
) -> (i64, [u64; 6]) {
    if want >= 0 && want_free && log_open {
        let flags = if cloexec { libc::O_CLOEXEC as u64 } else { 0 };
        let log = rrc_synclog::SHM_FD as u64;
        (libc::SYS_dup3, [log, want as u64, flags, 0, 0, 0])
    } else {
        let flags = if cloexec { libc::EFD_CLOEXEC as u64 } else { 0 };
        (libc::SYS_eventfd2, [0, flags, 0, 0, 0, 0])
    }
}

/// Rewrites the syscall at `regs` into one that makes a placeholder
/// descriptor numbered `want` (see [`placeholder_choice`]).
fn placeholder_call(pid: Pid, regs: &mut SyscallRegs, want: i64, cloexec: bool) {
    let open = |fd: i64| std::fs::symlink_metadata(format!("/proc/{pid}/fd/{fd}")).is_ok();
    let want_free = want >= 0 && !open(want);
    let log_open = want_free && open(i64::from(rrc_synclog::SHM_FD));
    let (nr, args) = placeholder_choice(want, want_free, log_open, cloexec);
    regs.regs.orig_rax = nr as u64;
    regs.set_args(&args);
}

/// The arguments of the anonymous mmap that stands in for a mapping of a
/// file the recorder copied, at the address it returned (`at`).
pub(crate) fn mapped_copy_args(at: i64, args: &[u64; 6]) -> [u64; 6] {
    // A read-only mapping is filled through /proc/PID/mem, which may
    // write into private read-only memory only; shared or not makes
    // no difference to memory nobody writes.
    let writable = args[2] & libc::PROT_WRITE as u64 != 0;
    let sharing = if args[3] & 0x3 == libc::MAP_PRIVATE as u64 || !writable {
        libc::MAP_PRIVATE
    } else {
        libc::MAP_SHARED
    };
    let placement = if args[3] & libc::MAP_FIXED as u64 != 0 {
        libc::MAP_FIXED
    } else {
        libc::MAP_FIXED_NOREPLACE
    };
    let flags = (sharing | libc::MAP_ANONYMOUS | placement) as u64;
    [at as u64, args[1], args[2], flags, u64::MAX, 0]
}

/// The anonymous mmap that stands in for a mapping of `/dev/zero` (which
/// is anonymous memory, shared between processes when `MAP_SHARED`), at
/// the address it returned (`at`); replay's descriptor is a placeholder.
pub(crate) fn dev_zero_args(at: i64, args: &[u64; 6]) -> [u64; 6] {
    let mut anonymous = mapped_copy_args(at, args);
    let sharing = (libc::MAP_PRIVATE | libc::MAP_SHARED) as u64;
    anonymous[3] = anonymous[3] & !sharing | args[3] & sharing;
    anonymous
}

/// Whether a recorded mapping is of `/dev/zero`.
pub(crate) fn maps_dev_zero(record: &SyscallRecord) -> bool {
    matches!(&record.extra, SyscallExtra::MappedFd(path) if path == b"/dev/zero")
}

/// The file a relative `path` names for tracee `pid` now, seen from its
/// working directory (`AT_FDCWD`) or directory descriptor `dirfd`.
fn resolve_live(pid: Pid, dirfd: i32, path: &[u8]) -> Option<std::path::PathBuf> {
    let base = if dirfd == libc::AT_FDCWD {
        format!("/proc/{pid}/cwd")
    } else {
        format!("/proc/{pid}/fd/{dirfd}")
    };
    let base = std::fs::read_link(base).ok()?;
    std::fs::canonicalize(base.join(std::ffi::OsStr::from_bytes(path))).ok()
}

impl Replayer {
    /// Turns the call into one that makes a placeholder descriptor with
    /// the recorded number (see [`placeholder_choice`]).
    pub(super) fn make_placeholder(
        &mut self,
        pid: Pid,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
        args: [u64; 6],
    ) -> Res {
        let flags = match record.nr as i64 {
            libc::SYS_open => args[1],
            libc::SYS_openat => args[2],
            libc::SYS_socket => args[1],
            libc::SYS_accept4 => args[3],
            _ => 0,
        } as i32;
        let want = record.ret;
        placeholder_call(pid, regs, want, flags & libc::O_CLOEXEC != 0);
        Tracee::new(pid).set_regs(regs, "turn a syscall into a placeholder descriptor")?;
        self.run_to_exit(pid, record, args, ExitCheck::Placeholder)
    }

    /// An mmap of a file the recorder copied (one the program wrote or
    /// made): anonymous memory at the recorded address instead, given the
    /// recorded bytes at the exit.
    pub(super) fn map_recorded_copy(
        &mut self,
        pid: Pid,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
        args: [u64; 6],
    ) -> Res {
        let anonymous = if maps_dev_zero(&record) {
            dev_zero_args(record.ret, &args)
        } else {
            mapped_copy_args(record.ret, &args)
        };
        regs.set_args(&anonymous);
        Tracee::new(pid).set_regs(regs, "map a recorded copy of a file")?;
        self.run_to_exit(pid, record, args, ExitCheck::MappedCopy)
    }

    /// A recvmsg (or recvmmsg) that received a descriptor: it came from
    /// another process whose send replay emulated, so a placeholder takes
    /// its number (the call becomes eventfd2, as for `make_placeholder`).
    pub(super) fn receive_placeholder_fd(
        &mut self,
        pid: Pid,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
        args: [u64; 6],
    ) -> Res {
        let fds = received_fds(&record);
        if fds.len() != 1 {
            let expected = Expected::Event {
                event: describe_record(&record),
                need: Need::ReceivingFds(fds.len()),
            };
            let observed = Observed::Text(
                "replay gives placeholders for one received descriptor per message".into(),
            );
            return diverged(record.thread, expected, observed);
        }
        // recvmsg(fd, msg, flags); recvmmsg(fd, msgvec, vlen, flags, timeout)
        let flags = if i64::from(record.nr) == libc::SYS_recvmmsg {
            args[3]
        } else {
            args[2]
        };
        let cloexec = flags & libc::MSG_CMSG_CLOEXEC as u64 != 0;
        placeholder_call(pid, regs, i64::from(fds[0]), cloexec);
        Tracee::new(pid).set_regs(regs, "turn recvmsg into a placeholder descriptor")?;
        self.run_to_exit(pid, record, args, ExitCheck::ReceivedFd(fds[0]))
    }

    /// An mmap of a descriptor must map the file it mapped when recorded.
    pub(super) fn check_mapped_file(
        &self,
        pid: Pid,
        thread: ThreadId,
        record: &SyscallRecord,
        recorded: &[u8],
        fd_arg: u64,
    ) -> Res {
        let now = fd_target(pid, fd_arg as i32 as i64);
        if now.as_deref() == Some(recorded) || self.is_shim(recorded, now.as_deref()) {
            return Ok(());
        }
        let path = String::from_utf8_lossy(recorded).into_owned();
        // Placeholders are copies of the sync log's descriptor.
        let placeholder = now.is_some() && now == fd_target(pid, i64::from(rrc_synclog::SHM_FD));
        let observed = if placeholder {
            // The open gave a placeholder: the file was not the recorded one.
            Observed::ChangedFile(path.clone())
        } else {
            Observed::Text(format!(
                "a mapping of {}",
                now.map_or("nothing".into(), |p| String::from_utf8_lossy(&p)
                    .into_owned())
            ))
        };
        let expected = Expected::Event {
            event: describe_record(record),
            need: Need::Mapping(path),
        };
        diverged(thread, expected, observed)
    }

    fn is_shim(&self, recorded: &[u8], now: Option<&[u8]>) -> bool {
        recorded == self.shim_recorded.as_slice()
            && now.is_some_and(|now| crate::trust::same_path(now, &self.shim_now))
    }

    /// A recorded pid, tid or process group (negative: kill(-pgid)) as the
    /// live one; 0, -1 and unknown ids stay as they are.
    pub(super) fn live_process_id(&self, arg: u64) -> u64 {
        let id = arg as i32;
        let (group, abs) = (id < -1, id.unsigned_abs() as i32);
        match self.live_id.get(&abs) {
            Some(&live) if id != 0 && id != -1 => (if group { -live } else { live }) as i64 as u64,
            _ => arg,
        }
    }

    /// A recorded pid, tid or process group (`group`; negative for kill)
    /// the program named, as the live id of the same one of its own
    /// processes, threads or groups, still followed; `None` for any other
    /// (a process outside the program, -1 for every process, one of its
    /// own that has ended). 0 (the caller's own process or group) stays.
    pub(super) fn own_live_id(&self, arg: u64, group: bool) -> Option<u64> {
        let id = arg as i32;
        if id == 0 {
            return Some(arg);
        }
        if id == -1 {
            return None;
        }
        let live = *self.live_id.get(&(id.unsigned_abs() as i32))?;
        let own = if group {
            self.live
                .values()
                .any(|t| nix::unistd::getpgid(Some(t.tgid)).is_ok_and(|g| g.as_raw() == live))
        } else {
            self.live
                .iter()
                .any(|(tid, t)| tid.as_raw() == live || t.tgid.as_raw() == live)
        };
        let live = if id < 0 { -live } else { live };
        own.then_some(live as i64 as u64)
    }

    /// An open can run for real when it only reads, and the file is still
    /// the one that was recorded (or it is the shim, which replay must map).
    pub(super) fn may_reopen(&self, pid: Pid, record: &SyscallRecord, args: &[u64; 6]) -> bool {
        let flags = match record.nr as i64 {
            libc::SYS_open => args[1],
            libc::SYS_openat => args[2],
            _ => return false,
        } as i32;
        let read_only = flags & libc::O_ACCMODE == libc::O_RDONLY
            && flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_TMPFILE) == 0;
        let SyscallExtra::Opened(id) = &record.extra else {
            return false;
        };
        if id.path == self.shim_recorded {
            return true;
        }
        if !read_only || !id.regular {
            return false;
        }
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&id.path));
        let unchanged = std::fs::metadata(path)
            .map(|m| rrc_interposer::identity_of(id.path.clone(), &m) == *id)
            .unwrap_or(false);
        // A relative path must lead to that file from where the program
        // is now (its working directory or directory descriptor).
        let dirfd = match record.nr as i64 {
            libc::SYS_openat => args[0] as i32,
            _ => libc::AT_FDCWD,
        };
        let opened = record.inputs.first().map_or(&[][..], Vec::as_slice);
        unchanged
            && (opened.starts_with(b"/")
                || resolve_live(pid, dirfd, opened).is_some_and(|p| p == path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_number_gets_an_exact_placeholder() {
        let (nr, args) = placeholder_choice(7, true, true, true);
        assert_eq!(nr, libc::SYS_dup3);
        assert_eq!(
            args,
            [
                rrc_synclog::SHM_FD as u64,
                7,
                libc::O_CLOEXEC as u64,
                0,
                0,
                0
            ]
        );
    }

    #[test]
    fn a_taken_number_or_a_closed_log_falls_back_to_eventfd() {
        for (free, log) in [(false, true), (true, false), (false, false)] {
            let (nr, args) = placeholder_choice(7, free, log, false);
            assert_eq!(nr, libc::SYS_eventfd2);
            assert_eq!(args, [0; 6]);
        }
        let (nr, args) = placeholder_choice(-1, true, true, true);
        assert_eq!(nr, libc::SYS_eventfd2, "no number to take");
        assert_eq!(args[1], libc::EFD_CLOEXEC as u64);
    }

    #[test]
    fn a_mapped_copy_is_anonymous_memory_at_the_recorded_address() {
        let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let shared = [0, 4096, prot, libc::MAP_SHARED as u64, 5, 0];
        let args = mapped_copy_args(0x7000_0000, &shared);
        let flags = (libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64;
        assert_eq!(args, [0x7000_0000, 4096, prot, flags, u64::MAX, 0]);
        // Read-only: private, so /proc/PID/mem may fill it.
        let ro = [
            0,
            4096,
            libc::PROT_READ as u64,
            libc::MAP_SHARED as u64,
            5,
            0,
        ];
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64;
        assert_eq!(mapped_copy_args(0x1000, &ro)[3], flags);
        let fixed = [
            0,
            4096,
            prot,
            (libc::MAP_PRIVATE | libc::MAP_FIXED) as u64,
            5,
            0,
        ];
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED) as u64;
        assert_eq!(mapped_copy_args(0x1000, &fixed)[3], flags);
    }

    #[test]
    fn a_mapping_of_dev_zero_is_anonymous_memory_shared_as_the_program_asked() {
        let ro_shared = [
            0,
            4096,
            libc::PROT_READ as u64,
            libc::MAP_SHARED as u64,
            3,
            0,
        ];
        let flags = (libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64;
        assert_eq!(
            dev_zero_args(0x1000, &ro_shared),
            [0x1000, 4096, libc::PROT_READ as u64, flags, u64::MAX, 0]
        );
        let private = [
            0,
            4096,
            libc::PROT_READ as u64,
            libc::MAP_PRIVATE as u64,
            3,
            0,
        ];
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as u64;
        assert_eq!(dev_zero_args(0x1000, &private)[3], flags);
    }

    #[test]
    fn descriptors_received_through_scm_rights_are_read_from_the_control_buffer() {
        let mut control = Vec::new();
        control.extend_from_slice(&24u64.to_le_bytes()); // cmsg_len: 16 + 2 fds
        control.extend_from_slice(&libc::SOL_SOCKET.to_le_bytes());
        control.extend_from_slice(&libc::SCM_RIGHTS.to_le_bytes());
        control.extend_from_slice(&5i32.to_le_bytes());
        control.extend_from_slice(&9i32.to_le_bytes());
        let record = SyscallRecord {
            thread: 0,
            index: 0,
            nr: libc::SYS_recvmsg as u32,
            args: [0; 6],
            ret: 1,
            inputs: Vec::new(),
            outputs: vec![
                b"x".to_vec(),
                (control.len() as u64).to_le_bytes().to_vec(),
                control,
                0u32.to_le_bytes().to_vec(),
            ],
            interval_ns: 0,
            return_ns: 0,
            order: 0,
            extra: SyscallExtra::None,
            digested: 0,
        };
        assert_eq!(received_fds(&record), vec![5, 9]);
        let failed = SyscallRecord { ret: -11, ..record };
        assert!(received_fds(&failed).is_empty());
    }
}
