//! System V shared memory in replay. A segment is memory the program's
//! processes share, and what they write to it never passes through a
//! syscall: replay cannot emulate it, so each segment the program made is
//! made again, as a private segment of the recorded size (never one found
//! by key: replay does not reach outside the program), attached at the
//! recorded address, and removed when the program removed its own, or
//! when replay ends. The program sees the recorded ids and results.

use std::collections::HashMap;

use nix::unistd::Pid;
use rrc_interposer::{SyscallRegs, Tracee};
use rrc_trace::{SyscallRecord, ThreadId};

use super::exit::ExitCheck;
use super::{diverged, Replayer, Res};
use crate::divergence::{describe_record, Expected, Need, Observed};

/// Recorded segment id -> replay's.
pub(crate) type Segments = HashMap<i64, i64>;

/// shmget's arguments in replay: a private segment of the recorded size,
/// created whatever the recorded key and flags found (only the mode, and
/// huge-page flags, are kept).
pub(crate) fn shmget_args(args: &[u64; 6]) -> [u64; 6] {
    let keep = 0o777 | libc::SHM_HUGETLB as u64 | (0x3f << 26); // mode, huge pages and their size
    let flags = args[2] & keep | libc::IPC_CREAT as u64;
    [libc::IPC_PRIVATE as u64, args[1], flags, 0, 0, 0]
}

/// shmat's arguments in replay: replay's segment, attached where the
/// recorded call attached it (the recorded address is page-aligned, so
/// no rounding flag is kept).
pub(crate) fn shmat_args(live_id: i64, at: i64, args: &[u64; 6]) -> [u64; 6] {
    let flags = args[2] & !(libc::SHM_RND as u64);
    [live_id as u64, at as u64, flags, 0, 0, 0]
}

impl Replayer {
    /// shmget, shmat or shmctl(IPC_RMID), by the recorded call: see the
    /// module's comment. A call that failed when recorded fails again
    /// without running (an attach needs no segment to fail).
    pub(super) fn shared_memory(
        &mut self,
        pid: Pid,
        thread: ThreadId,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
    ) -> Res {
        let (nr, args) = (regs.nr(), regs.args());
        if record.ret < 0 {
            return self.emulate(pid, thread, regs, record);
        }
        let (live_args, check) = match nr {
            libc::SYS_shmget => (shmget_args(&args), ExitCheck::NewSegment),
            libc::SYS_shmat => {
                let Some(&live) = self.segments.get(&(args[0] as i32 as i64)) else {
                    return not_made_here(thread, &record);
                };
                (shmat_args(live, record.ret, &args), ExitCheck::Executed)
            }
            _ => {
                // IPC_RMID.
                let Some(live) = self.segments.remove(&(args[0] as i32 as i64)) else {
                    return self.emulate(pid, thread, regs, record);
                };
                let mut live_args = args;
                live_args[0] = live as u64;
                (live_args, ExitCheck::ReportRecorded)
            }
        };
        regs.set_args(&live_args);
        Tracee::new(pid).set_regs(regs, "make replay's own shared memory segment")?;
        self.run_to_exit(pid, record, args, check)
    }

    /// The segment replay made for a recorded shmget.
    pub(super) fn keep_segment(&mut self, recorded: i64, live: i64) {
        self.segments.insert(recorded, live);
    }

    /// Removes the segments the program did not remove itself (they
    /// stayed when recorded; replay's own must not).
    pub(super) fn remove_segments(&mut self) {
        for (_, live) in self.segments.drain() {
            // SAFETY: IPC_RMID takes no buffer; the id is a segment this
            // replay made.
            unsafe { libc::shmctl(live as i32, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }
}

/// shmat of a segment the recording found (made before it, or by another
/// program): replay has no copy of what it held.
fn not_made_here(thread: ThreadId, record: &SyscallRecord) -> Res {
    let expected = Expected::Event {
        event: describe_record(record),
        need: Need::Itself,
    };
    let observed = Observed::Text(
        "a shared memory segment the program did not make while recorded: \
         replay has no copy of it"
            .into(),
    );
    diverged(thread, expected, observed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_makes_a_private_segment_of_the_recorded_size() {
        let keyed = [
            0x1234,
            8192,
            (libc::IPC_CREAT | libc::IPC_EXCL | 0o640) as u64,
            0,
            0,
            0,
        ];
        assert_eq!(
            shmget_args(&keyed),
            [0, 8192, (libc::IPC_CREAT | 0o640) as u64, 0, 0, 0]
        );
        let huge = [0, 1 << 21, (libc::SHM_HUGETLB | 0o600) as u64, 0, 0, 0];
        assert_eq!(
            shmget_args(&huge)[2],
            (libc::IPC_CREAT | libc::SHM_HUGETLB | 0o600) as u64
        );
    }

    #[test]
    fn replay_attaches_its_segment_at_the_recorded_address() {
        let args = [7, 0, (libc::SHM_RDONLY | libc::SHM_RND) as u64, 0, 0, 0];
        assert_eq!(
            shmat_args(42, 0x7fff_0000_0000, &args),
            [42, 0x7fff_0000_0000, libc::SHM_RDONLY as u64, 0, 0, 0]
        );
    }
}
