//! The trace rearranged for replay: per logical thread, its events in
//! order and its sync operations; plus the global order of writes to
//! stdout and stderr.

use std::collections::{HashMap, VecDeque};

use anyhow::{bail, Result};
use rrc_trace::{
    ExitStatus, ProcessId, ReadOutcome, SignalPoint, SignalRecord, SyncRecord, SyscallExtra,
    SyscallRecord, ThreadId, TraceHeader, TraceRecord, TscRecord, NO_ORDER,
};

#[derive(Debug)]
pub enum PlannedEvent {
    Syscall(SyscallRecord),
    Tsc(TscRecord),
    Signal(SignalRecord),
}

#[derive(Debug, Default)]
pub struct ThreadPlan {
    pub process: ProcessId,
    /// tid and pid the program saw when recorded.
    pub tid: i32,
    pub pid: i32,
    pub events: VecDeque<PlannedEvent>,
    /// Events already replayed (the index of the front event).
    pub done: u64,
    pub sync: Vec<SyncRecord>,
    pub started: bool,
}

pub struct ReplayPlan {
    pub header: TraceHeader,
    pub threads: Vec<ThreadPlan>,
    pub exit: ExitStatus,
    /// (thread, event index) of each write to stdout/stderr -> its place
    /// in the recorded output order.
    pub output_rank: HashMap<(ThreadId, u64), u64>,
    /// (thread, event index) of each syscall or rdtsc -> its rank in the
    /// event order (sync operations and returns of all threads). The sync
    /// operations in `ThreadPlan::sync` carry their rank in `order`.
    pub return_rank: HashMap<(ThreadId, u64), u64>,
    /// The thread whose event each rank is.
    pub rank_owner: Vec<ThreadId>,
    /// For each rank, the rank of the same thread's next event in the
    /// order (`NO_ORDER` after its last): how far the others get while
    /// the code between the two runs.
    pub next_own_rank: Vec<u64>,
    /// Whether each rank is a thread's arrival at a sync operation.
    pub arrival_ranks: Vec<bool>,
    /// (thread, event index) of an accept that made a descriptor -> the
    /// rank of its entry, where the kernel took the descriptor number.
    pub entry_rank: HashMap<(ThreadId, u64), u64>,
}

/// Gives every stamped event its dense rank in stamp order: the shim and
/// the tracer count ranks, and a stamp lost with a killed thread must not
/// leave a gap that nothing would fill.
struct Ranks {
    return_rank: HashMap<(ThreadId, u64), u64>,
    entry_rank: HashMap<(ThreadId, u64), u64>,
    rank_owner: Vec<ThreadId>,
    arrivals: Vec<bool>,
}

fn rank_events(threads: &mut [ThreadPlan]) -> Result<Ranks> {
    let mut stamps: Vec<u64> = Vec::new();
    for p in threads.iter() {
        stamps.extend(p.sync.iter().map(|op| op.order));
        stamps.extend(p.sync.iter().map(|op| op.arrival));
        stamps.extend(p.events.iter().filter_map(event_order));
        stamps.extend(p.events.iter().filter_map(entry_order));
    }
    stamps.retain(|o| *o != NO_ORDER);
    stamps.sort_unstable();
    if stamps.windows(2).any(|w| w[0] == w[1]) {
        bail!("trace is inconsistent: two events share a place in the event order");
    }
    let rank = |stamp: u64| stamps.binary_search(&stamp).map_or(NO_ORDER, |r| r as u64);
    let mut return_rank = HashMap::new();
    let mut entry_rank = HashMap::new();
    let mut rank_owner = vec![0; stamps.len()];
    let mut arrivals = vec![false; stamps.len()];
    for (thread, p) in threads.iter_mut().enumerate() {
        let thread = thread as ThreadId;
        // Gives the rank to this thread; false for a stamp with no rank.
        let mut claim = |r: u64| match rank_owner.get_mut(r as usize) {
            Some(owner) => {
                *owner = thread;
                true
            }
            None => false,
        };
        for op in p.sync.iter_mut() {
            op.order = rank(op.order);
            claim(op.order);
            op.arrival = rank(op.arrival);
            if claim(op.arrival) {
                arrivals[op.arrival as usize] = true;
            }
        }
        for e in p.events.iter() {
            let index = match e {
                PlannedEvent::Syscall(s) => s.index,
                PlannedEvent::Tsc(r) => r.index,
                PlannedEvent::Signal(s) => s.index,
            };
            if let Some(stamp) = event_order(e).filter(|o| *o != NO_ORDER) {
                let r = rank(stamp);
                return_rank.insert((thread, index), r);
                claim(r);
            }
            if let Some(stamp) = entry_order(e) {
                let r = rank(stamp);
                entry_rank.insert((thread, index), r);
                claim(r);
            }
        }
    }
    Ok(Ranks {
        return_rank,
        entry_rank,
        rank_owner,
        arrivals,
    })
}

fn next_own_ranks(rank_owner: &[ThreadId]) -> Vec<u64> {
    let mut next = vec![NO_ORDER; rank_owner.len()];
    let mut seen: HashMap<ThreadId, u64> = HashMap::new();
    for (rank, owner) in rank_owner.iter().enumerate().rev() {
        if let Some(later) = seen.insert(*owner, rank as u64) {
            next[rank] = later;
        }
    }
    next
}

/// The stamp of a call's entry, for the calls that have one.
fn entry_order(e: &PlannedEvent) -> Option<u64> {
    match e {
        PlannedEvent::Syscall(SyscallRecord {
            extra: SyscallExtra::ReservedAt(stamp),
            ..
        }) if *stamp != NO_ORDER => Some(*stamp),
        _ => None,
    }
}

fn event_order(e: &PlannedEvent) -> Option<u64> {
    match e {
        PlannedEvent::Syscall(s) => Some(s.order),
        PlannedEvent::Tsc(r) => Some(r.order),
        PlannedEvent::Signal(s) => match s.at {
            SignalPoint::WhileWaiting(stamp) => Some(stamp),
            _ => None,
        },
    }
}

/// A write replay prints on its own stdout or stderr must be one: a
/// write-type call (the recorder marks write, writev, pwrite64 and
/// sendfile) to descriptor 1 or 2, and the stream it names. Anything else
/// (a crafted trace) would have replay write the program's bytes into
/// another of its own descriptors (its sync log), or drop them.
fn check_std_stream(s: &SyscallRecord) -> Result<()> {
    let SyscallExtra::StdStream(fd) = s.extra else {
        return Ok(());
    };
    let writes_out = matches!(
        i64::from(s.nr),
        libc::SYS_write | libc::SYS_writev | libc::SYS_pwrite64 | libc::SYS_sendfile
    );
    if !matches!(fd, 1 | 2) || !writes_out || s.args[0] != u64::from(fd) {
        bail!(
            "trace is inconsistent: thread {} event {} ({} to descriptor {}) is marked as \
             output to descriptor {fd}, which only a write to stdout (1) or stderr (2) can be",
            s.thread,
            s.index,
            rrc_interposer::model::name(i64::from(s.nr)),
            s.args[0] as i64,
        );
    }
    Ok(())
}

fn slot(threads: &mut Vec<ThreadPlan>, t: ThreadId) -> Result<&mut ThreadPlan> {
    if t as usize >= rrc_synclog::MAX_THREADS {
        bail!("trace names thread {t}, beyond rrc's limit");
    }
    if threads.len() <= t as usize {
        threads.resize_with(t as usize + 1, ThreadPlan::default);
    }
    Ok(&mut threads[t as usize])
}

/// Appends a thread's next event, which the trace says is at `index`
/// (`what` names it in the error).
fn push_event(
    threads: &mut Vec<ThreadPlan>,
    thread: ThreadId,
    index: u64,
    what: &str,
    event: PlannedEvent,
) -> Result<()> {
    let p = slot(threads, thread)?;
    if index != p.events.len() as u64 {
        bail!("trace is inconsistent: thread {thread} {what} {index} out of order");
    }
    p.events.push_back(event);
    Ok(())
}

impl ReplayPlan {
    pub fn build(outcome: ReadOutcome) -> Result<ReplayPlan> {
        if let Some(damage) = outcome.damage {
            bail!("{damage}");
        }
        let mut threads: Vec<ThreadPlan> = Vec::new();
        let mut exit = None;
        let mut output_rank = HashMap::new();
        for rec in outcome.records {
            match rec {
                TraceRecord::ThreadStart {
                    thread,
                    process,
                    tid,
                    pid,
                    ..
                } => {
                    let p = slot(&mut threads, thread)?;
                    p.process = process;
                    p.tid = tid;
                    p.pid = pid;
                }
                TraceRecord::Syscall(s) => {
                    let (thread, index) = (s.thread, s.index);
                    let output = matches!(s.extra, SyscallExtra::StdStream(_));
                    if output {
                        check_std_stream(&s)?;
                    }
                    push_event(
                        &mut threads,
                        thread,
                        index,
                        "event",
                        PlannedEvent::Syscall(s),
                    )?;
                    if output {
                        let rank = output_rank.len() as u64;
                        output_rank.insert((thread, index), rank);
                    }
                }
                TraceRecord::Tsc(r) => {
                    let (thread, index) = (r.thread, r.index);
                    let event = PlannedEvent::Tsc(r);
                    push_event(&mut threads, thread, index, "rdtsc at event", event)?;
                }
                TraceRecord::Signal(s) => {
                    let (thread, index) = (s.thread, s.index);
                    let event = PlannedEvent::Signal(s);
                    push_event(&mut threads, thread, index, "signal at event", event)?;
                }
                TraceRecord::Sync(batch) => {
                    let p = slot(&mut threads, batch.thread)?;
                    if batch.first != p.sync.len() as u64 {
                        bail!(
                            "trace is inconsistent: thread {} sync operations out of order",
                            batch.thread
                        );
                    }
                    p.sync.extend(batch.ops);
                }
                TraceRecord::End(end) => exit = Some(end.exit),
                TraceRecord::ThreadExit { .. } | TraceRecord::Warning { .. } => {}
            }
        }
        let Some(exit) = exit else {
            bail!("trace has no end record");
        };
        if threads.is_empty() {
            bail!("trace has no threads");
        }
        let Ranks {
            return_rank,
            entry_rank,
            rank_owner,
            arrivals: arrival_ranks,
        } = rank_events(&mut threads)?;
        let next_own_rank = next_own_ranks(&rank_owner);
        Ok(ReplayPlan {
            header: outcome.header,
            threads,
            exit,
            output_rank,
            return_rank,
            rank_owner,
            next_own_rank,
            arrival_ranks,
            entry_rank,
        })
    }
}
