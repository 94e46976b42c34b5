//! Serial calls: calls whose recorded order must be the order they ran
//! in, so they run one at a time. A thread entering one while another of
//! its key is in flight stays stopped at its seccomp stop (held) until
//! that one has returned, or until it has waited too long.
//!
//! [`SerialCalls`] only decides; it never resumes anyone: `finish` and
//! `overdue` return the threads to let go, and the engine runs their
//! seccomp stops again.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use rrc_trace::ProcessId;

/// How long a descriptor call waits for another one of its process that
/// is in flight and may block (a blocking accept can be, for as long as
/// no one connects) before it goes ahead anyway.
const SERIAL_CALL_WAIT: Duration = Duration::from_millis(2);
/// The same when the call in flight never blocks (`socket`, `pipe2`,
/// `epoll_create1`, `dup`...): it returns at once, but on a loaded
/// machine its thread can wait milliseconds for a CPU before its exit
/// stop, and two such calls let run together may take their numbers in
/// the other order than they are stamped.
const QUICK_CALL_WAIT: Duration = Duration::from_millis(100);
/// The same for writes to rrc's stdout and stderr, whose order across
/// processes is the order replay prints them in: a write does not block
/// for long, but on a loaded machine its thread can wait milliseconds for
/// a CPU between the write and its exit stop.
const STD_STREAM_WAIT: Duration = Duration::from_millis(100);

fn serial_wait(key: &SerialKey, queue: &Queue) -> Duration {
    match key {
        SerialKey::StdStreams => STD_STREAM_WAIT,
        _ if queue.in_flight_may_block => SERIAL_CALL_WAIT,
        _ => QUICK_CALL_WAIT,
    }
}

/// Descriptor-table calls that may block: all but those that make a
/// descriptor and return at once. `accept` waits for a client, `open` of
/// a FIFO for the other end, `close` of a lingering socket for its peer;
/// calls not listed here keep the short wait.
pub(super) fn may_block(nr: i64) -> bool {
    !matches!(
        nr,
        libc::SYS_socket
            | libc::SYS_socketpair
            | libc::SYS_pipe
            | libc::SYS_pipe2
            | libc::SYS_dup
            | libc::SYS_dup2
            | libc::SYS_dup3
            | libc::SYS_fcntl
            | libc::SYS_epoll_create
            | libc::SYS_epoll_create1
            | libc::SYS_eventfd
            | libc::SYS_eventfd2
            | libc::SYS_timerfd_create
            | libc::SYS_signalfd
            | libc::SYS_signalfd4
            | libc::SYS_inotify_init
            | libc::SYS_inotify_init1
            | libc::SYS_memfd_create
            | libc::SYS_pidfd_open
    )
}

/// Calls whose recorded order must be the order they ran in: the
/// descriptor-table calls of one process (replay gives out the same
/// numbers), and writes to our stdout/stderr from any process (replay
/// prints them in the recorded order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum SerialKey {
    Descriptors(ProcessId),
    StdStreams,
}

/// The calls of one `SerialKey`: the one running, and those waiting.
#[derive(Default)]
struct Queue {
    in_flight: Option<Pid>,
    /// The call in flight may block (see [`may_block`]).
    in_flight_may_block: bool,
    /// Threads stopped at the entry of such a call, and since when.
    waiting: VecDeque<(Pid, Instant)>,
}

/// Every key's queue.
#[derive(Default)]
pub(super) struct SerialCalls {
    queues: HashMap<SerialKey, Queue>,
}

impl SerialCalls {
    /// `pid` enters a call of `key`: true when it must wait (it is then
    /// queued, and stays stopped); otherwise it takes the slot.
    /// `blocks`: the call may block (see [`may_block`]).
    pub(super) fn enter(&mut self, pid: Pid, key: SerialKey, blocks: bool, now: Instant) -> bool {
        let queue = self.queues.entry(key).or_default();
        match queue.in_flight {
            Some(other) if other != pid => {
                queue.waiting.push_back((pid, now));
                true
            }
            _ => {
                queue.in_flight = Some(pid);
                queue.in_flight_may_block = blocks;
                false
            }
        }
    }

    /// `pid` takes `key`'s slot if no call holds it (a thread let go from
    /// the queue without entering again).
    pub(super) fn take_if_free(&mut self, pid: Pid, key: SerialKey) {
        let queue = self.queues.entry(key).or_default();
        if queue.in_flight.is_none() {
            queue.in_flight = Some(pid);
            queue.in_flight_may_block = false;
        }
    }

    /// `pid`'s call (if it had a slot) is done: returns the next waiting
    /// thread of each key it held, which the engine lets go.
    pub(super) fn finish(&mut self, pid: Pid) -> Vec<Pid> {
        let mut next = Vec::new();
        for queue in self.queues.values_mut() {
            if queue.in_flight == Some(pid) {
                queue.in_flight = None;
                next.extend(queue.waiting.pop_front().map(|(p, _)| p));
            }
        }
        next
    }

    /// The waiting threads that have waited too long (the call in flight
    /// is probably blocked, as a blocking accept is): they go ahead
    /// without the slot.
    pub(super) fn overdue(&mut self, now: Instant) -> Vec<Pid> {
        self.queues
            .iter_mut()
            .filter_map(|(key, queue)| match queue.waiting.front() {
                Some((pid, since)) if now >= *since + serial_wait(key, queue) => {
                    let pid = *pid;
                    queue.waiting.pop_front();
                    Some(pid)
                }
                _ => None,
            })
            .collect()
    }

    /// When the first waiting thread becomes overdue.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.queues
            .iter()
            .filter_map(|(key, queue)| {
                queue
                    .waiting
                    .front()
                    .map(|(_, since)| *since + serial_wait(key, queue))
            })
            .min()
    }

    /// `pid` ended: it waits no more (its slot, if any, is let go with
    /// [`Self::finish`] first).
    pub(super) fn forget(&mut self, pid: Pid) {
        for queue in self.queues.values_mut() {
            queue.waiting.retain(|(p, _)| *p != pid);
        }
    }
}

/// Which of each process's descriptors are our own stdout and stderr:
/// its fds 1 and 2, and their dups (dup, dup2, fcntl F_DUPFD...), which
/// write to the same place.
pub(super) struct StdStreams {
    /// Our own fds 1 and 2, as (device, inode).
    ours: [Option<(u64, u64)>; 3],
    /// By (process, fd): which stream, and whether it is our very open
    /// file (kcmp; `None`: the kernel cannot tell). Kept until a
    /// descriptor-table call or exec of that process completes (all of
    /// them trap), so a write needs no stat.
    of: rrc_interposer::IdMap<(ProcessId, u64), Option<StreamOpen>>,
}

/// Which of our streams a descriptor is, and whether it is our very open
/// file (`None`: the kernel cannot tell).
type StreamOpen = (u8, Option<bool>);

impl StdStreams {
    pub(super) fn new() -> StdStreams {
        StdStreams {
            ours: [None, stream_identity(1), stream_identity(2)],
            of: rrc_interposer::IdMap::default(),
        }
    }

    /// Which of our stdout (1) and stderr (2) the process's `fd` is, if
    /// either.
    pub(super) fn get(&mut self, pid: Pid, process: ProcessId, fd: u64) -> Option<u8> {
        self.get_open_file(pid, process, fd)
            .map(|(stream, _)| stream)
    }

    /// The same, and whether `fd` is that stream's very open file (same
    /// offset and flags: a write through either is the same write).
    pub(super) fn get_open_file(
        &mut self,
        pid: Pid,
        process: ProcessId,
        fd: u64,
    ) -> Option<(u8, bool)> {
        let ours = self.ours;
        let (stream, same) = (*self.of.entry((process, fd)).or_insert_with(|| {
            let meta = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok();
            let target = meta.as_ref().map(|m| (m.dev(), m.ino()));
            let stream = which_stream(fd, target, ours)?;
            let same = same_open_file(pid, fd, stream);
            // A device is one inode for every open of it: the program's own
            // /dev/null (or terminal) is our stream only if it is our very
            // open file, inherited or dup'ed.
            let device = meta.is_some_and(|m| m.file_type().is_char_device());
            (!device || same != Some(false)).then_some((stream, same))
        }))?;
        Some((stream, same == Some(true)))
    }

    /// The process's descriptor table changed: look again.
    pub(super) fn forget_process(&mut self, process: ProcessId) {
        self.of.retain(|(p, _), _| *p != process);
    }
}

/// The stream (1 or 2) descriptor `fd`, open on `target`, writes to:
/// its own number when it is 1 or 2 and on that stream (stdout and stderr
/// may be one terminal), else the first of ours it is open on.
fn which_stream(fd: u64, target: Option<(u64, u64)>, ours: [Option<(u64, u64)>; 3]) -> Option<u8> {
    target?;
    if (fd == 1 || fd == 2) && target == ours[fd as usize] {
        return Some(fd as u8);
    }
    [1u8, 2]
        .into_iter()
        .find(|&s| target == ours[usize::from(s)])
}

/// Whether the tracee's `fd` is our `stream`'s open file (kcmp's
/// KCMP_FILE); `None` when the kernel cannot tell us.
fn same_open_file(pid: Pid, fd: u64, stream: u8) -> Option<bool> {
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: kcmp compares two descriptors and touches no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            libc::c_long::from(std::process::id() as i32),
            libc::c_long::from(pid.as_raw()),
            KCMP_FILE,
            libc::c_long::from(stream),
            fd as libc::c_long,
        )
    };
    (r >= 0).then_some(r == 0)
}

fn stream_identity(fd: i32) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(format!("/proc/self/fd/{fd}")).ok()?;
    Some((meta.dev(), meta.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(n: i32) -> Pid {
        Pid::from_raw(n)
    }

    const FDS: SerialKey = SerialKey::Descriptors(0);

    #[test]
    fn calls_of_one_key_run_one_at_a_time_in_arrival_order() {
        let mut s = SerialCalls::default();
        let t0 = Instant::now();
        assert!(!s.enter(pid(1), FDS, true, t0), "the first takes the slot");
        assert!(s.enter(pid(2), FDS, true, t0), "the second waits");
        assert!(s.enter(pid(3), FDS, true, t0));
        assert!(s.finish(pid(2)).is_empty(), "a waiter finishes nothing");
        assert_eq!(s.finish(pid(1)), vec![pid(2)]);
        // The released thread enters again and takes the free slot.
        assert!(!s.enter(pid(2), FDS, true, t0));
        assert_eq!(s.finish(pid(2)), vec![pid(3)]);
        assert!(!s.enter(pid(3), FDS, true, t0));
        assert!(s.finish(pid(3)).is_empty());
    }

    #[test]
    fn the_slot_holder_entering_again_does_not_wait() {
        let mut s = SerialCalls::default();
        let t0 = Instant::now();
        assert!(!s.enter(pid(1), FDS, true, t0));
        assert!(!s.enter(pid(1), FDS, true, t0));
    }

    #[test]
    fn keys_are_independent() {
        let mut s = SerialCalls::default();
        let t0 = Instant::now();
        assert!(!s.enter(pid(1), FDS, true, t0));
        assert!(!s.enter(pid(2), SerialKey::Descriptors(1), true, t0));
        assert!(!s.enter(pid(3), SerialKey::StdStreams, true, t0));
        assert!(s.enter(pid(4), SerialKey::StdStreams, true, t0));
    }

    #[test]
    fn waiters_become_overdue_after_their_keys_wait() {
        let mut s = SerialCalls::default();
        let t0 = Instant::now();
        assert!(!s.enter(pid(1), FDS, true, t0));
        assert!(s.enter(pid(2), FDS, true, t0));
        assert!(!s.enter(pid(3), SerialKey::StdStreams, true, t0));
        assert!(s.enter(pid(4), SerialKey::StdStreams, true, t0));
        assert_eq!(s.next_deadline(), Some(t0 + SERIAL_CALL_WAIT));
        assert!(s.overdue(t0).is_empty());
        assert_eq!(s.overdue(t0 + SERIAL_CALL_WAIT), vec![pid(2)]);
        assert_eq!(s.next_deadline(), Some(t0 + STD_STREAM_WAIT));
        assert_eq!(s.overdue(t0 + STD_STREAM_WAIT), vec![pid(4)]);
        assert_eq!(s.next_deadline(), None);
        // An overdue waiter went without the slot: finishing the holder
        // lets no one else go.
        assert!(s.finish(pid(1)).is_empty());
    }

    #[test]
    fn a_call_that_never_blocks_is_waited_for_longer_than_one_that_may() {
        assert!(may_block(libc::SYS_accept4) && !may_block(libc::SYS_epoll_create1));
        let mut s = SerialCalls::default();
        let t0 = Instant::now();
        assert!(
            !s.enter(pid(1), FDS, false, t0),
            "an epoll_create1 in flight"
        );
        assert!(s.enter(pid(2), FDS, false, t0));
        assert!(s.overdue(t0 + SERIAL_CALL_WAIT).is_empty());
        assert_eq!(s.next_deadline(), Some(t0 + QUICK_CALL_WAIT));
        assert_eq!(s.overdue(t0 + QUICK_CALL_WAIT), vec![pid(2)]);
    }

    #[test]
    fn a_thread_that_ends_waits_no_more() {
        let mut s = SerialCalls::default();
        let t0 = Instant::now();
        assert!(!s.enter(pid(1), FDS, true, t0));
        assert!(s.enter(pid(2), FDS, true, t0));
        assert!(s.enter(pid(3), FDS, true, t0));
        s.forget(pid(2));
        assert_eq!(s.finish(pid(1)), vec![pid(3)]);
    }

    #[test]
    fn a_dup_of_stdout_or_stderr_writes_to_that_stream() {
        let (tty, pipe, file) = (Some((5, 1)), Some((9, 7)), Some((3, 4)));
        let ours = [None, tty, pipe];
        assert_eq!(which_stream(1, tty, ours), Some(1));
        assert_eq!(which_stream(2, pipe, ours), Some(2));
        assert_eq!(which_stream(7, tty, ours), Some(1), "a dup of stdout");
        assert_eq!(which_stream(4, pipe, ours), Some(2), "a dup of stderr");
        assert_eq!(
            which_stream(2, tty, ours),
            Some(1),
            "stderr made a dup of stdout"
        );
        assert_eq!(which_stream(5, file, ours), None);
        assert_eq!(which_stream(5, None, ours), None);
        let one_terminal = [None, tty, tty];
        assert_eq!(which_stream(2, tty, one_terminal), Some(2));
        assert_eq!(which_stream(6, tty, one_terminal), Some(1));
    }
}
