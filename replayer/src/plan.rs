//! The trace rearranged for replay: per logical thread, its events in
//! order and its sync operations; plus the global order of writes to
//! stdout and stderr.
//!
//! The plan is made in one streaming pass over the trace that keeps only
//! compact metadata per event (where its frame starts, its rank in the
//! event order); the events themselves are read again, through a bounded
//! window, as replay needs them (`window.rs`).

use std::ffi::OsStr;
use std::fs::File;
use std::io::BufReader;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rrc_trace::{
    ExitStatus, ProcessId, ScanRecord, SignalPoint, SignalRecord, SyncRecord, SyscallExtra,
    SyscallHead, SyscallRecord, ThreadId, TraceError, TraceHeader, TraceReader, TscRecord,
    NO_ORDER,
};

use crate::ranks::{late_until, rank_stamps, EventRanks, NextOwnRanks, RankTable, SparseRanks};
use crate::regroup;
use crate::search::Tweaks;
use crate::window::{EventIndex, EventQueue, FrameOffsets, WindowReader};
use rrc_trace::SyncOp;

#[derive(Debug)]
pub enum PlannedEvent {
    /// Boxed: events move through the reader's and the engine's queues
    /// several times, and a record is a few hundred bytes.
    Syscall(Box<SyscallRecord>),
    Tsc(TscRecord),
    Signal(SignalRecord),
}

impl PlannedEvent {
    /// A call's or an rdtsc's index in its thread's events (none for a
    /// signal).
    pub fn call_index(&self) -> Option<u64> {
        match self {
            PlannedEvent::Syscall(s) => Some(s.index),
            PlannedEvent::Tsc(x) => Some(x.index),
            PlannedEvent::Signal(_) => None,
        }
    }

    /// A call's or an rdtsc's recorded interval since its thread's
    /// previous return, and its return's time since the recording began,
    /// in nanoseconds (none for a signal).
    pub fn call_times(&self) -> Option<(u64, u64)> {
        match self {
            PlannedEvent::Syscall(s) => Some((s.interval_ns, s.return_ns)),
            PlannedEvent::Tsc(x) => Some((x.interval_ns, x.return_ns)),
            PlannedEvent::Signal(_) => None,
        }
    }
}

#[derive(Debug, Default)]
pub struct ThreadPlan {
    pub process: ProcessId,
    /// tid and pid the program saw when recorded.
    pub tid: i32,
    pub pid: i32,
    pub events: EventQueue,
    /// Events already replayed (the index of the front event).
    pub done: u64,
    pub sync: Arc<Vec<SyncRecord>>,
    /// For each sync operation, where replay holds its thread besides the
    /// operation's own place.
    pub sync_holds: Arc<Vec<SyncHolds>>,
    pub started: bool,
}

pub struct ReplayPlan {
    pub header: TraceHeader,
    pub threads: Vec<ThreadPlan>,
    pub exit: ExitStatus,
    /// (thread, event index) of each write to stdout/stderr -> its place
    /// in the recorded output order.
    pub output_rank: SparseRanks,
    /// (thread, event index) of each syscall or rdtsc -> its rank in the
    /// event order (sync operations and returns of all threads). The sync
    /// operations in `ThreadPlan::sync` carry their rank in `order`.
    pub return_rank: EventRanks,
    /// The thread whose event each rank is.
    pub rank_owner: Vec<ThreadId>,
    /// For each rank, the rank of the same thread's next event in the
    /// order: how far the others get while the code between the two runs
    /// (see [`late_until`]).
    pub next_own: NextOwnRanks,
    /// Whether each rank is a thread's arrival at a sync operation or at
    /// a call it logged itself that returns at once.
    pub arrival_ranks: Vec<bool>,
    /// (thread, event index) of an accept that made a descriptor -> the
    /// rank of its entry, where the kernel took the descriptor number.
    pub entry_rank: SparseRanks,
    /// Loads the events ahead of the engine; stops when the plan goes.
    pub reader: WindowReader,
    /// Rules this replay does not apply at some events (`search.rs`).
    pub tweaks: Tweaks,
    /// Catch-up replay: hand-offs between threads in the recorded order
    /// and in the regrouped one (`regroup.rs`).
    pub catch_up: Option<(u64, u64)>,
}

/// What the first pass keeps of one thread.
#[derive(Default)]
struct ThreadScan {
    process: ProcessId,
    tid: i32,
    pid: i32,
    /// Byte offset of each event's frame.
    offsets: FrameOffsets,
    /// Each event's stamp in the event order (`NO_ORDER` for none).
    stamps: Vec<u64>,
    sync: Vec<SyncRecord>,
    /// Its events stamped as it got to them (see [`stamped_on_arrival`]).
    arrivals: Vec<u64>,
    /// What each event touches, for catch-up replay only.
    touches: Vec<regroup::Touch>,
}

/// Whether a recorded call's stamp marks the thread's arrival at it: a
/// call the thread logged itself (buffered), stamped just after a return
/// that does not wait (clock reads, process ids, output). A trapped
/// call's stamp is the tracer's, taken at its return after a stop.
fn stamped_on_arrival(nr: i64) -> bool {
    rrc_synclog::syscallbuf::RETURN_AT_ONCE.contains(&nr)
        || matches!(nr, libc::SYS_write | libc::SYS_writev)
}

/// The first pass's result: everything but the events' contents.
#[derive(Default)]
struct Scan {
    threads: Vec<ThreadScan>,
    exit: Option<ExitStatus>,
    output_rank: SparseRanks,
    outputs: u64,
    /// Each output's stamp, in the order the trace lists them.
    output_stamps: Vec<u64>,
    /// Accepts' entry stamps.
    entries: SparseRanks,
    /// Catch-up replay's window (`regroup.rs`); 0 for none.
    catch_up: usize,
}

/// Where the code after a futex wait runs in replay: just before the
/// thread's next event (the rank returned), when that event is stamped as
/// the thread got to it and other threads' events came between. A futex
/// wait is the slow path of a lock or condvar rrc does not see: what the
/// thread does once woken (take the lock again, pop a job) races with
/// the others' code, and was recorded as happening before its next
/// event, not at the wake (a woken thread may wait for a processor).
/// `NO_ARRIVAL` for no such rank.
fn late_to(op: &SyncRecord, next_own: &NextOwnRanks, arrival: &[bool]) -> u64 {
    if op.op != rrc_trace::SyncOp::FutexWait || op.order == NO_ORDER {
        return rrc_synclog::NO_ARRIVAL;
    }
    late_until(op.order, next_own, arrival).unwrap_or(rrc_synclog::NO_ARRIVAL)
}

/// Where replay holds a thread around one of its sync operations, besides
/// at the operation's own ranks (`NO_ARRIVAL` for no hold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncHolds {
    /// A futex wait: the rank its thread's code after it runs just before
    /// (see [`late_to`]).
    pub late_to: u64,
    /// A futex wait on a lock word: the rank after which the thread goes
    /// on only once another holds the word (see [`gate_after`]).
    pub gate_after: u64,
    /// A futex wait that another thread's wake on its word may have ended
    /// (see [`WakeRanks::during`]).
    pub woken_by_wake: bool,
}

impl SyncHolds {
    pub const NONE: SyncHolds = SyncHolds {
        late_to: rrc_synclog::NO_ARRIVAL,
        gate_after: rrc_synclog::NO_ARRIVAL,
        woken_by_wake: false,
    };
}

/// The ranks at which the program's futex wakes that woke a thread were
/// made, by futex word, and whether each handed a lock on (see
/// `rrc_synclog::HANDED_OFF`).
#[derive(Default)]
struct WakeRanks(std::collections::HashMap<u64, Vec<(u64, bool)>>);

impl WakeRanks {
    fn new<'a>(ops: impl Iterator<Item = &'a SyncRecord>) -> WakeRanks {
        let mut by_word: std::collections::HashMap<u64, Vec<(u64, bool)>> = Default::default();
        for op in ops {
            if op.op == rrc_trace::SyncOp::FutexWake && op.result > 0 && op.order != NO_ORDER {
                // A wake happens at its arrival's place in replay.
                let at = if op.arrival != NO_ORDER {
                    op.arrival
                } else {
                    op.order
                };
                let handed = op.seq & rrc_synclog::HANDED_OFF != 0;
                by_word.entry(op.object).or_default().push((at, handed));
            }
        }
        for ranks in by_word.values_mut() {
            ranks.sort_unstable();
        }
        WakeRanks(by_word)
    }

    /// Whether a futex wait that returned 0 may have been ended by a wake
    /// of the program's on its word: one was made between its arrival and
    /// its return. Replay then need not wait for a wake from the kernel
    /// (the shim's `settle_woken`): the word may hold the waited-on value
    /// again because another thread took the lock since, and the thread
    /// must go on to find that out, as it did when recorded.
    fn during(&self, op: &SyncRecord) -> bool {
        self.last_during(op).is_some()
    }

    /// Whether the wake that ended a futex wait (the last on its word
    /// before its return) handed a lock on: the woken thread took the
    /// lock right after its return, before the waker went on, and its
    /// code after the wait runs there in replay too, not just before its
    /// next event (`late_to`).
    fn handed_on(&self, op: &SyncRecord) -> bool {
        self.last_during(op) == Some(true)
    }

    /// The last wake on the word of a futex wait that returned 0 between
    /// its arrival and its return: whether it handed a lock on.
    fn last_during(&self, op: &SyncRecord) -> Option<bool> {
        if op.op != rrc_trace::SyncOp::FutexWait || op.result != 0 || op.order == NO_ORDER {
            return None;
        }
        let from = if op.arrival != NO_ORDER {
            op.arrival
        } else {
            0
        };
        let ranks = self.0.get(&op.object)?;
        let first_after = ranks.partition_point(|(r, _)| *r <= from);
        let before_return = ranks.partition_point(|(r, _)| *r < op.order);
        (before_return > first_after).then(|| ranks[before_return - 1].1)
    }
}

/// How far back [`gate_after`] looks for the thread's previous event.
const GATE_LOOKBACK: u64 = 4096;

/// For a futex wait on a lock word (waited on as "held with waiters"; the
/// shim logs the expected value as `seq`), the rank of its thread's event
/// just before it: the thread's code from there to the lock is unseen,
/// and when recorded another thread held the lock as it got there. The
/// shim, or the tracer for a trapped event, then lets it go on only once
/// the word is held (or after about a millisecond). `NO_ARRIVAL` for
/// other operations, or a previous event too far back to be worth
/// finding.
fn gate_after(op: &SyncRecord, owner: &[ThreadId], thread: ThreadId) -> u64 {
    let none = rrc_synclog::NO_ARRIVAL;
    let held = rrc_synclog::ops::free_word(op.seq).is_some();
    if op.op != rrc_trace::SyncOp::FutexWait || !held || op.arrival == NO_ORDER {
        return none;
    }
    let lowest = op.arrival.saturating_sub(GATE_LOOKBACK);
    (lowest..op.arrival)
        .rev()
        .find(|r| owner.get(*r as usize) == Some(&thread))
        .unwrap_or(none)
}

/// A write replay prints on its own stdout or stderr must be one: a call
/// that sends bytes (`model::sends_to`: write, writev, sendfile, splice...)
/// to a descriptor (1, 2, or a dup of one of them), marked with
/// the stream, 1 or 2, it wrote to. Anything else (a crafted trace) would
/// have replay write the program's bytes into another of its own
/// descriptors (its sync log), or drop them.
fn check_std_stream(s: &SyscallHead) -> Result<()> {
    let SyscallExtra::StdStream(fd) = s.extra else {
        return Ok(());
    };
    let sent_to = rrc_interposer::model::sends_to(i64::from(s.nr), &s.args);
    if sent_to.is_none_or(|to| !matches!(fd, 1 | 2) || to > i32::MAX as u64) {
        bail!(
            "trace is inconsistent: thread {} event {} ({} to descriptor {}) is marked as \
             output to descriptor {fd}, which only a write to stdout (1) or stderr (2) can be",
            s.thread,
            s.index,
            rrc_interposer::model::name(i64::from(s.nr)),
            sent_to.unwrap_or(s.args[0]) as i64,
        );
    }
    Ok(())
}

impl Scan {
    fn slot(&mut self, t: ThreadId) -> Result<&mut ThreadScan> {
        if t as usize >= rrc_synclog::MAX_THREADS {
            bail!("trace names thread {t}, beyond rrc's limit");
        }
        if self.threads.len() <= t as usize {
            self.threads
                .resize_with(t as usize + 1, ThreadScan::default);
        }
        Ok(&mut self.threads[t as usize])
    }

    /// Notes a thread's next event, which the trace says is at `index`
    /// (`what` names it in the error), with its frame's offset and stamp.
    fn push_event(
        &mut self,
        thread: ThreadId,
        index: u64,
        what: &str,
        offset: u64,
        stamp: u64,
    ) -> Result<()> {
        let p = self.slot(thread)?;
        if index != p.offsets.len() as u64 {
            bail!("trace is inconsistent: thread {thread} {what} {index} out of order");
        }
        p.offsets.push(offset);
        p.stamps.push(stamp);
        Ok(())
    }

    /// Notes what a thread's next event touches (`touch` is worked out
    /// for catch-up replay only: it looks the call up in the model).
    fn touches(&mut self, thread: ThreadId, touch: impl FnOnce() -> regroup::Touch) -> Result<()> {
        if self.catch_up > 0 {
            self.slot(thread)?.touches.push(touch());
        }
        Ok(())
    }

    /// Takes in one record, whose frame starts at `offset`.
    fn add(&mut self, rec: ScanRecord, offset: u64) -> Result<()> {
        match rec {
            ScanRecord::ThreadStart {
                thread,
                process,
                tid,
                pid,
                ..
            } => {
                let p = self.slot(thread)?;
                p.process = process;
                p.tid = tid;
                p.pid = pid;
            }
            ScanRecord::Syscall(s) => {
                let (thread, index) = (s.thread, s.index);
                check_std_stream(&s)?;
                self.push_event(thread, index, "event", offset, s.order)?;
                self.touches(thread, || regroup::call_touch(&s))?;
                match s.extra {
                    SyscallExtra::EnteredAt(entry) if entry != NO_ORDER => {
                        self.entries.push(thread, index, entry);
                    }
                    SyscallExtra::StdStream(_) => {
                        self.output_rank.push(thread, index, self.outputs);
                        self.output_stamps.push(s.order);
                        self.outputs += 1;
                    }
                    SyscallExtra::Buffered if stamped_on_arrival(i64::from(s.nr)) => {
                        self.slot(thread)?.arrivals.push(index);
                    }
                    // A trapped call that never waits: see `Duration::AtOnce`.
                    SyscallExtra::None
                        if rrc_interposer::model::returns_at_once(i64::from(s.nr)) =>
                    {
                        self.slot(thread)?.arrivals.push(index);
                    }
                    _ => {}
                }
            }
            ScanRecord::Tsc(r) => {
                self.push_event(r.thread, r.index, "rdtsc at event", offset, r.order)?;
                self.touches(r.thread, || regroup::LOCAL)?;
            }
            ScanRecord::Signal(s) => {
                let stamp = match s.at {
                    SignalPoint::WhileWaiting(stamp) | SignalPoint::AfterReturn(stamp) => stamp,
                    _ => NO_ORDER,
                };
                self.push_event(s.thread, s.index, "signal at event", offset, stamp)?;
                self.touches(s.thread, || regroup::SHARED)?;
            }
            ScanRecord::Sync(batch) => {
                let p = self.slot(batch.thread)?;
                if batch.first != p.sync.len() as u64 {
                    bail!(
                        "trace is inconsistent: thread {} sync operations out of order",
                        batch.thread
                    );
                }
                p.sync.extend(batch.ops);
            }
            ScanRecord::End(end) => self.exit = Some(end.exit),
            ScanRecord::ThreadExit { .. } | ScanRecord::Warning { .. } => {}
        }
        Ok(())
    }

    /// Reads the whole trace once; damage anywhere is an error.
    fn read<R: std::io::BufRead>(
        mut reader: TraceReader<R>,
        catch_up: usize,
        code_file: &mut dyn FnMut(&Path),
    ) -> Result<(TraceHeader, Scan)> {
        let mut scan = Scan {
            catch_up,
            ..Scan::default()
        };
        code_file(Path::new(OsStr::from_bytes(&reader.header().exe)));
        loop {
            let offset = reader.offset();
            match reader.next_scan()? {
                Some(rec) => {
                    let end = matches!(rec, ScanRecord::End(_));
                    if let ScanRecord::Syscall(s) = &rec {
                        name_code_file(s, code_file);
                    }
                    scan.add(rec, offset)?;
                    if end {
                        if let Some(damage) = reader.after_end() {
                            bail!("{damage}");
                        }
                        break;
                    }
                }
                None => bail!(
                    "{}",
                    TraceError::Truncated {
                        offset: reader.offset(),
                        what: "the recording stopped before its end record (recorder killed?)"
                            .into(),
                    }
                ),
            }
        }
        Ok((reader.header().clone(), scan))
    }
}

/// Tells `code_file` the file a syscall mapped the code of.
fn name_code_file(s: &rrc_trace::SyscallHead, code_file: &mut dyn FnMut(&Path)) {
    if let SyscallExtra::MappedFd(path) = &s.extra {
        if rrc_interposer::maps_code_of_a_file(i64::from(s.nr), &s.args, s.ret) {
            code_file(Path::new(OsStr::from_bytes(path)));
        }
    }
}

impl ReplayPlan {
    /// Plans the replay of the trace at `path`, keeping at most `window`
    /// bytes of events read ahead of the engine.
    #[cfg(test)]
    pub fn open(path: &Path, window: u64) -> Result<ReplayPlan> {
        Self::open_naming_code(path, window, 0, &mut |_| {})
    }

    /// [`ReplayPlan::open`], telling `code_file` the program's executable
    /// and each file whose code the trace maps as it reads them (for
    /// their rdtsc scans to begin before the program starts). `catch_up`:
    /// the event order regrouped within windows of that many ranks
    /// (`regroup.rs`), 0 for the recorded order.
    pub fn open_naming_code(
        path: &Path,
        window: u64,
        catch_up: usize,
        code_file: &mut dyn FnMut(&Path),
    ) -> Result<ReplayPlan> {
        let file = rrc_trace::open_for_reading(path)?;
        // The same open file for the second reading: the path may be
        // replaced meanwhile, the file we checked stays.
        let again = file.try_clone()?;
        let reader = TraceReader::new(BufReader::with_capacity(1 << 20, file))?;
        let (header, scan) = Scan::read(reader, catch_up, code_file)?;
        Self::build(header, scan, again, window)
    }

    /// Where `thread`'s return at `rank` is kept until, when its next
    /// event is `next` (a late return, kept by the tracer or by the shim
    /// after an answer): the rank of its arrival at its next sync
    /// operation, when others' events come first and its next syscall or
    /// rdtsc has a place in the order too (not a signal).
    pub fn late_return_to(&self, thread: ThreadId, rank: u64, next: &PlannedEvent) -> Option<u64> {
        let index = next.call_index()?;
        // Its next call has a place in the order (exit_group has none).
        self.return_rank.get(&(thread, index))?;
        if self.tweaks.no_late.contains(&rank) {
            return None;
        }
        if self.tweaks.late.contains(&rank) {
            return self.next_own.get(rank);
        }
        late_until(rank, &self.next_own, &self.arrival_ranks)
    }

    /// Applies `tweaks` to this replay: the whole replay's rules its mode
    /// turns off, and the rules changed at single events. The futex
    /// waits' holds are rewritten only when something changes them.
    pub fn tweak(&mut self, tweaks: Tweaks) {
        let mode = tweaks.mode;
        let at_events =
            !tweaks.no_late.is_empty() || !tweaks.no_gate.is_empty() || !tweaks.late.is_empty();
        if at_events || mode.no_late_returns || mode.no_lock_gates {
            let none = rrc_synclog::NO_ARRIVAL;
            for t in &mut self.threads {
                let holds = t
                    .sync
                    .iter()
                    .zip(t.sync_holds.iter())
                    .map(|(op, h)| SyncHolds {
                        late_to: if mode.no_late_returns || tweaks.no_late.contains(&op.order) {
                            none
                        } else if tweaks.late.contains(&op.order)
                            && matches!(op.op, SyncOp::FutexWait | SyncOp::FutexWake)
                        {
                            self.next_own.get(op.order).unwrap_or(h.late_to)
                        } else {
                            h.late_to
                        },
                        gate_after: if mode.no_lock_gates || tweaks.no_gate.contains(&op.order) {
                            none
                        } else {
                            h.gate_after
                        },
                        ..*h
                    })
                    .collect();
                t.sync_holds = Arc::new(holds);
            }
        }
        self.tweaks = tweaks;
    }

    fn build(header: TraceHeader, scan: Scan, file: File, window: u64) -> Result<ReplayPlan> {
        let Some(exit) = scan.exit else {
            bail!("trace has no end record");
        };
        if scan.threads.is_empty() {
            bail!("trace has no threads");
        }
        let Scan {
            threads: mut scanned,
            mut output_rank,
            output_stamps,
            mut entries,
            catch_up,
            ..
        } = scan;
        output_rank.renumber(&crate::ranks::outputs_in_recorded_order(&output_stamps));
        let mut returns = EventRanks::new(
            scanned
                .iter_mut()
                .map(|t| std::mem::take(&mut t.stamps))
                .collect(),
        );
        let arrived: Vec<Vec<u64>> = scanned
            .iter_mut()
            .map(|t| std::mem::take(&mut t.arrivals))
            .collect();
        let sync = scanned
            .iter_mut()
            .enumerate()
            .flat_map(|(t, p)| {
                p.sync
                    .iter_mut()
                    .map(move |op| (t as ThreadId, &mut op.order, &mut op.arrival))
            })
            .collect();
        let mut table = rank_stamps(&mut returns, &mut entries, sync, &arrived)?;
        let catch_up = (catch_up > 0).then(|| {
            regroup_ranks(
                &mut scanned,
                &mut returns,
                &mut entries,
                &mut table,
                catch_up,
            )
        });
        let next_own = NextOwnRanks::new(&table.owner);
        let wakes = WakeRanks::new(scanned.iter().flat_map(|t| t.sync.iter()));
        let sync_holds: Vec<Vec<SyncHolds>> = scanned
            .iter()
            .enumerate()
            .map(|(thread, t)| {
                t.sync
                    .iter()
                    .map(|op| SyncHolds {
                        late_to: if wakes.handed_on(op) {
                            rrc_synclog::NO_ARRIVAL
                        } else {
                            late_to(op, &next_own, &table.arrival)
                        },
                        gate_after: gate_after(op, &table.owner, thread as ThreadId),
                        woken_by_wake: wakes.during(op),
                    })
                    .collect()
            })
            .collect();
        let offsets = scanned
            .iter_mut()
            .map(|t| std::mem::take(&mut t.offsets))
            .collect();
        let (reader, queues) = WindowReader::start(EventIndex { file, offsets }, window)
            .context("starting the trace reader")?;
        let threads = scanned
            .into_iter()
            .zip(queues)
            .zip(sync_holds)
            .map(|((t, events), holds)| ThreadPlan {
                process: t.process,
                tid: t.tid,
                pid: t.pid,
                events,
                done: 0,
                sync: Arc::new(t.sync),
                sync_holds: Arc::new(holds),
                started: false,
            })
            .collect();
        Ok(ReplayPlan {
            header,
            threads,
            exit,
            output_rank,
            return_rank: returns,
            rank_owner: table.owner,
            next_own,
            arrival_ranks: table.arrival,
            entry_rank: entries,
            reader,
            tweaks: Tweaks::default(),
            catch_up,
        })
    }
}

/// Catch-up replay: every rank renumbered as `regroup` places it; the
/// hand-offs between threads before and after.
fn regroup_ranks(
    scanned: &mut [ThreadScan],
    returns: &mut EventRanks,
    entries: &mut SparseRanks,
    table: &mut RankTable,
    window: usize,
) -> (u64, u64) {
    let n = table.owner.len();
    let mut touch = vec![regroup::LOCAL; n];
    for ((thread, index), rank) in returns.iter() {
        let t = scanned.get(thread as usize);
        if let (Some(cell), Some(x)) = (
            touch.get_mut(rank as usize),
            t.and_then(|t| t.touches.get(index as usize)),
        ) {
            *cell = *x;
        }
    }
    // A call's entry touches what the call does (an accept's takes a
    // descriptor number, a sleep's nothing shared).
    for ((thread, index), rank) in entries.iter() {
        let call = scanned
            .get(thread as usize)
            .and_then(|t| t.touches.get(index as usize));
        if let Some(cell) = touch.get_mut(rank as usize) {
            *cell = call.copied().unwrap_or(regroup::SHARED);
        }
    }
    for t in scanned.iter() {
        for op in &t.sync {
            if let Some(cell) = touch.get_mut(op.order as usize) {
                *cell = regroup::sync_touch(t.process, op);
            }
        }
    }
    let new = regroup::regroup(&table.owner, &touch, window);
    drop(touch);
    returns.renumber(&new);
    entries.renumber(&new);
    for t in scanned.iter_mut() {
        t.touches = Vec::new();
        for op in t.sync.iter_mut() {
            crate::ranks::renumber(&mut op.order, &new);
            crate::ranks::renumber(&mut op.arrival, &new);
        }
    }
    let mut owner = vec![0; n];
    let mut arrival = vec![false; n];
    for (old, place) in new.iter().enumerate() {
        owner[*place as usize] = table.owner[old];
        arrival[*place as usize] = table.arrival[old];
    }
    let switches = |o: &[ThreadId]| o.windows(2).filter(|w| w[0] != w[1]).count() as u64;
    let handoffs = (switches(&table.owner), switches(&owner));
    table.owner = owner;
    table.arrival = arrival;
    handoffs
}
