//! Files replay keeps live: the program's own memfds (memfd_create runs
//! in replay) and, standing in for a regular file the program opened
//! read-write while it was empty, a memfd of replay's making (a
//! *shadow*). Everything in such a file came from the program itself, so
//! its reads, writes, seeks and size changes run for real (checked
//! against the recording; reads give the program the recorded bytes),
//! and a shared mapping of it is a real one: two
//! mappings of the file share their pages, and they see the program's
//! later writes, as they did when recorded. Emulated, those writes would
//! never reach the mapping, and a size set with ftruncate would leave the
//! mapping past the end of an empty file (SIGBUS).

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use nix::unistd::Pid;
use rrc_interposer::{fd_target, SyscallRegs, Tracee, TraceeMemory};
use rrc_trace::{SyscallExtra, SyscallRecord, ThreadId};

use super::exit::ExitCheck;
use super::{diverged, Replayer, Res};
use crate::divergence::{describe_record, Expected, Need, Observed};

/// The shadows replay made, by the recorded file's device and inode, each
/// held open by the replayer, so that a later open of the same file (by
/// any of the program's processes, after any of its descriptors closed)
/// gets the same memfd.
pub(crate) type Shadows = HashMap<(u64, u64), std::fs::File>;

/// memfd_create's longest name (NAME_MAX less its "memfd:" prefix).
const MEMFD_NAME_MAX: usize = 249;
/// fcntl's memfd sealing command: seals decide which later writes fail.
const F_ADD_SEALS: u64 = 1033;

/// Where the path of an open the replayer may shadow is, in the
/// program's memory (`None`: not a shadow). A shadow stands in for a
/// regular file the call opened read-write (no `O_APPEND`), that was
/// empty just after it opened: new, truncated, or empty already. The
/// memfd is named after that path, so it must fit a memfd's name.
pub(crate) fn shadow_name(record: &SyscallRecord, args: &[u64; 6]) -> Option<u64> {
    let (flags, path) = match record.nr as i64 {
        libc::SYS_open => (args[1], args[0]),
        libc::SYS_openat => (args[2], args[1]),
        // creat opens write-only: reads, which a memfd allows, would fail.
        _ => return None,
    };
    let flags = flags as i32;
    let SyscallExtra::Opened(id) = &record.extra else {
        return None;
    };
    // Not the kernel's files (/proc/self/mem is regular, and empty).
    let kernel = ["/proc/", "/sys/", "/dev/"]
        .iter()
        .any(|k| id.path.starts_with(k.as_bytes()))
        && !id.path.starts_with(b"/dev/shm/");
    let empty_regular = id.regular && id.size == 0 && !kernel;
    let read_write = flags & libc::O_ACCMODE == libc::O_RDWR && flags & libc::O_APPEND == 0;
    let name_fits = record
        .inputs
        .first()
        .is_some_and(|p| p.len() <= MEMFD_NAME_MAX);
    (record.ret >= 0 && empty_regular && read_write && name_fits).then_some(path)
}

/// Whether an open opened the process's own memory (`/proc/self/mem`):
/// replay opens it for real, and reads and writes through it run, as the
/// program's own loads and stores do.
pub(crate) fn opens_own_memory(record: &SyscallRecord) -> bool {
    let path = record.inputs.first().map_or(&[][..], Vec::as_slice);
    record.ret >= 0 && matches!(path, b"/proc/self/mem" | b"/proc/thread-self/mem")
}

/// Whether a descriptor's target (its `/proc/PID/fd` link) is a live
/// file: a memfd, but not rrc's sync log, which placeholders duplicate;
/// or a process's memory (replay opens only the program's own).
pub(crate) fn is_live_target(target: &[u8]) -> bool {
    let log = format!("/memfd:{}", rrc_synclog::MEMFD_NAME.to_string_lossy());
    let memfd = target.starts_with(b"/memfd:") && !target.starts_with(log.as_bytes());
    memfd || target.starts_with(b"/proc/") && target.ends_with(b"/mem")
}

/// The calls on a live file that run for real instead of being emulated:
/// those that read or move its contents, position or size. (fstat and
/// the like stay emulated: a memfd's device and inode are not the file's.)
pub(crate) fn runs_live(nr: i64, args: &[u64; 6]) -> bool {
    match nr {
        libc::SYS_read
        | libc::SYS_write
        | libc::SYS_pread64
        | libc::SYS_pwrite64
        | libc::SYS_readv
        | libc::SYS_writev
        | libc::SYS_preadv
        | libc::SYS_pwritev
        | libc::SYS_preadv2
        | libc::SYS_pwritev2
        | libc::SYS_lseek
        | libc::SYS_ftruncate
        | libc::SYS_fallocate => true,
        libc::SYS_fcntl => args[1] == F_ADD_SEALS,
        _ => false,
    }
}

/// The recorded file an open opened, when replay shadows it already:
/// its key in [`Shadows`].
pub(crate) fn shadowed(shadows: &Shadows, record: &SyscallRecord) -> Option<(u64, u64)> {
    let reopens = matches!(
        record.nr as i64,
        libc::SYS_open | libc::SYS_openat | libc::SYS_creat
    );
    match &record.extra {
        SyscallExtra::Opened(id) if reopens && record.ret >= 0 && id.regular => {
            let key = (id.dev, id.ino);
            shadows.contains_key(&key).then_some(key)
        }
        _ => None,
    }
}

/// The flags that reopen a shadow through its `/proc` link as the
/// program's open opened the file (`flags`): it exists, and the link is
/// the one followed.
pub(crate) fn reopen_flags(nr: i64, flags: u64) -> u64 {
    let flags = if nr == libc::SYS_creat {
        (libc::O_WRONLY | libc::O_TRUNC) as u64
    } else {
        flags
    };
    flags & !((libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW) as u64)
}

/// The calls on a live file that only read it: they run for their effect
/// on its position, and the program gets the recorded bytes (see
/// `ExitCheck::LiveRead`).
pub(crate) fn only_reads(nr: i64) -> bool {
    matches!(
        nr,
        libc::SYS_read | libc::SYS_pread64 | libc::SYS_readv | libc::SYS_preadv | libc::SYS_preadv2
    )
}

/// Whether tracee `pid`'s descriptor `fd` is a live file.
pub(crate) fn fd_is_live(pid: Pid, fd: u64) -> bool {
    fd_target(pid, fd as i32 as i64).is_some_and(|t| is_live_target(&t))
}

impl Replayer {
    /// Turns an open (see [`shadow_name`]) into memfd_create, named by the
    /// program's own path argument; it must take the recorded number.
    pub(super) fn make_shadow(
        &mut self,
        pid: Pid,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
        args: [u64; 6],
        name: u64,
    ) -> Res {
        let flags = match record.nr as i64 {
            libc::SYS_open => args[1],
            _ => args[2],
        } as i32;
        let cloexec = if flags & libc::O_CLOEXEC != 0 {
            libc::MFD_CLOEXEC
        } else {
            0
        };
        regs.regs.orig_rax = libc::SYS_memfd_create as u64;
        regs.set_args(&[name, u64::from(cloexec), 0, 0, 0, 0]);
        Tracee::new(pid).set_regs(regs, "turn an open into a shadow memfd")?;
        let key = match &record.extra {
            SyscallExtra::Opened(id) => (id.dev, id.ino),
            _ => (0, 0),
        };
        self.run_to_exit(pid, record, args, ExitCheck::Shadow(key))
    }

    /// Keeps the shadow memfd tracee `pid` got as descriptor `fd` open in
    /// the replayer, for later opens of the same file.
    pub(super) fn keep_shadow(&mut self, pid: Pid, key: (u64, u64), fd: i64) {
        if let Ok(file) = std::fs::File::options()
            .read(true)
            .write(true)
            .open(format!("/proc/{pid}/fd/{fd}"))
        {
            self.shadows.insert(key, file);
        }
    }

    /// A later open of a file replay shadows: the program opens the
    /// shadow (a new open file description, with its own position, as
    /// the recorded open had) through the replayer's `/proc` link to it,
    /// a path written below the thread's stack (past its red zone, memory
    /// a signal handler's frame would take as well).
    pub(super) fn reopen_shadow(
        &mut self,
        pid: Pid,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
        args: [u64; 6],
        key: (u64, u64),
    ) -> Res {
        let Some(file) = self.shadows.get(&key) else {
            return self.make_placeholder(pid, regs, record, args);
        };
        let path = format!("/proc/{}/fd/{}\0", std::process::id(), file.as_raw_fd());
        let at = regs.regs.rsp.wrapping_sub(512 + path.len() as u64) & !15;
        let tracee = Tracee::new(pid);
        tracee.write(at, path.as_bytes())?;
        let flags = match record.nr as i64 {
            libc::SYS_openat => args[2],
            _ => args[1],
        };
        let flags = reopen_flags(record.nr as i64, flags);
        regs.regs.orig_rax = libc::SYS_openat as u64;
        regs.set_args(&[libc::AT_FDCWD as u64, at, flags, 0, 0, 0]);
        tracee.set_regs(regs, "reopen a shadow memfd")?;
        self.run_to_exit(pid, record, args, ExitCheck::Placeholder)
    }

    /// An mmap of a live file runs for real; the bytes the recorder kept
    /// of the file (if it kept them) must be what the live file holds.
    pub(super) fn check_live_mapping(
        &self,
        pid: Pid,
        thread: ThreadId,
        record: &SyscallRecord,
        args: &[u64; 6],
    ) -> Res {
        let Some(recorded) = record.outputs.first() else {
            return Ok(());
        };
        let mut now = vec![0u8; recorded.len()];
        let read = std::fs::File::open(format!("/proc/{pid}/fd/{}", args[4] as i32))
            .and_then(|f| f.read_exact_at(&mut now, args[5]));
        if read.is_ok() && now == *recorded {
            return Ok(());
        }
        let expected = Expected::Event {
            event: describe_record(record),
            need: Need::Itself,
        };
        let observed = Observed::Text(
            "the file replay kept live holds other bytes than the recorded mapping".into(),
        );
        diverged(thread, expected, observed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrc_trace::FileIdentity;

    fn opened(nr: i64, args: [u64; 6], size: u64, regular: bool) -> SyscallRecord {
        SyscallRecord {
            thread: 0,
            index: 0,
            nr: nr as u32,
            args,
            ret: 3,
            inputs: vec![b"/dev/shm/rr-test-XXXXXX".to_vec()],
            outputs: Vec::new(),
            interval_ns: 0,
            return_ns: 0,
            order: 0,
            extra: SyscallExtra::Opened(FileIdentity {
                path: b"/dev/shm/rr-test-abc".to_vec(),
                dev: 1,
                ino: 2,
                size,
                mtime_ns: 0,
                regular,
            }),
            digested: 0,
        }
    }

    #[test]
    fn a_new_file_opened_read_write_is_shadowed_by_a_memfd_named_by_its_path() {
        let flags = (libc::O_RDWR | libc::O_CREAT | libc::O_EXCL) as u64;
        let at = libc::AT_FDCWD as u64;
        let record = opened(libc::SYS_openat, [at, 0x1000, flags, 0o600, 0, 0], 0, true);
        assert_eq!(shadow_name(&record, &record.args), Some(0x1000));
        let record = opened(libc::SYS_open, [0x2000, flags, 0o600, 0, 0, 0], 0, true);
        assert_eq!(shadow_name(&record, &record.args), Some(0x2000));
    }

    #[test]
    fn files_with_contents_read_only_appended_or_not_regular_are_not_shadowed() {
        let rw = libc::O_RDWR as u64;
        let at = libc::AT_FDCWD as u64;
        let with_data = opened(libc::SYS_openat, [at, 0x1000, rw, 0, 0, 0], 10, true);
        assert_eq!(shadow_name(&with_data, &with_data.args), None);
        let ro = opened(libc::SYS_openat, [at, 0x1000, 0, 0, 0, 0], 0, true);
        assert_eq!(shadow_name(&ro, &ro.args), None);
        let append = (libc::O_RDWR | libc::O_APPEND) as u64;
        let appended = opened(libc::SYS_openat, [at, 0x1000, append, 0, 0, 0], 0, true);
        assert_eq!(shadow_name(&appended, &appended.args), None);
        let fifo = opened(libc::SYS_openat, [at, 0x1000, rw, 0, 0, 0], 0, false);
        assert_eq!(shadow_name(&fifo, &fifo.args), None);
        let failed = SyscallRecord {
            ret: -2,
            ..opened(libc::SYS_openat, [at, 0x1000, rw, 0, 0, 0], 0, true)
        };
        assert_eq!(shadow_name(&failed, &failed.args), None);
        let long = SyscallRecord {
            inputs: vec![vec![b'a'; MEMFD_NAME_MAX + 1]],
            ..opened(libc::SYS_openat, [at, 0x1000, rw, 0, 0, 0], 0, true)
        };
        assert_eq!(shadow_name(&long, &long.args), None, "too long a name");
        let mut proc_mem = opened(libc::SYS_openat, [at, 0x1000, rw, 0, 0, 0], 0, true);
        if let SyscallExtra::Opened(id) = &mut proc_mem.extra {
            id.path = b"/proc/42/mem".to_vec();
        }
        assert_eq!(shadow_name(&proc_mem, &proc_mem.args), None, "the kernel's");
        proc_mem.inputs = vec![b"/proc/self/mem".to_vec()];
        assert!(opens_own_memory(&proc_mem));
    }

    #[test]
    fn a_reopen_of_a_shadow_keeps_the_access_and_truncation_but_does_not_create() {
        let flags = (libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC) as u64;
        assert_eq!(
            reopen_flags(libc::SYS_openat, flags),
            (libc::O_RDWR | libc::O_TRUNC) as u64
        );
        assert_eq!(
            reopen_flags(libc::SYS_creat, 0o644),
            (libc::O_WRONLY | libc::O_TRUNC) as u64
        );
        let mut shadows = Shadows::new();
        let record = opened(libc::SYS_openat, [0, 0, 0, 0, 0, 0], 5, true);
        assert_eq!(shadowed(&shadows, &record), None);
        let file = std::fs::File::open("/dev/null").expect("open /dev/null");
        shadows.insert((1, 2), file);
        assert_eq!(shadowed(&shadows, &record), Some((1, 2)));
    }

    #[test]
    fn memfds_are_live_but_placeholders_are_not() {
        assert!(is_live_target(b"/memfd:/dev/shm/rr-test-abc (deleted)"));
        assert!(is_live_target(b"/memfd:mine (deleted)"));
        assert!(!is_live_target(b"/memfd:rrc-synclog (deleted)"));
        assert!(!is_live_target(b"/tmp/file"));
        assert!(is_live_target(b"/proc/42/mem"));
        assert!(!is_live_target(b"/proc/42/maps"));
    }

    #[test]
    fn reads_writes_seeks_and_sizes_of_a_live_file_run_for_real() {
        for nr in [
            libc::SYS_read,
            libc::SYS_pwrite64,
            libc::SYS_lseek,
            libc::SYS_ftruncate,
            libc::SYS_writev,
        ] {
            assert!(runs_live(nr, &[3, 0, 0, 0, 0, 0]));
        }
        assert!(!runs_live(libc::SYS_fstat, &[3, 0, 0, 0, 0, 0]));
        assert!(only_reads(libc::SYS_read) && only_reads(libc::SYS_preadv2));
        assert!(!only_reads(libc::SYS_write) && !only_reads(libc::SYS_lseek));
        assert!(runs_live(libc::SYS_fcntl, &[3, F_ADD_SEALS, 1, 0, 0, 0]));
        assert!(!runs_live(
            libc::SYS_fcntl,
            &[3, libc::F_GETFL as u64, 0, 0, 0, 0]
        ));
    }
}
