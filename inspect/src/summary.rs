//! What a trace holds, in numbers: computed record by record by a
//! [`SummaryBuilder`], printed by `human` or as JSON.

use std::collections::{BTreeMap, BTreeSet};

use rrc_trace::{
    EndRecord, ExitStatus, RecordedInput, SignalRecord, SyncBatch, SyncOp, SyscallExtra,
    SyscallRecord, ThreadId, TraceError, TraceHeader, TraceRecord, FORMAT_VERSION,
};
use serde::Serialize;
// Trace syscall numbers are always x86_64, whatever this tool runs on.
use syscalls::x86_64::Sysno;

use crate::names::{signal_name, syscall_name};

#[derive(Debug, Clone, Serialize)]
pub struct TraceSummary {
    pub format_version: u32,
    pub complete: bool,
    /// Why the readable prefix stops, when the trace is not complete.
    pub damage: Option<String>,
    pub program: Vec<String>,
    pub exe: String,
    pub cwd: String,
    /// Descriptors above 2 the program started with.
    pub inherited_fds: Vec<i32>,
    /// Recorded one thread at a time (`rrc-record --serialize`).
    pub serialized: bool,
    pub start_time_unix_ns: u64,
    pub rrc_version: String,
    /// Size of the file on disk.
    pub trace_bytes: u64,
    pub intact_bytes: u64,
    pub exit_status: Option<ExitSummary>,
    pub duration_ns: Option<u64>,
    pub threads: Vec<ThreadSummary>,
    pub processes: usize,
    /// Syscall counts by name, all threads.
    pub syscalls: BTreeMap<String, u64>,
    /// Of those, calls the fast path made untrapped and logged in-process;
    /// the rest trapped (a ptrace stop or two each).
    pub buffered_syscalls: u64,
    /// Sync operation counts by pthread name, all threads.
    pub sync_ops: BTreeMap<String, u64>,
    /// Signal counts by name, all threads.
    pub signals: BTreeMap<String, u64>,
    pub intervals: IntervalStats,
    pub bytes: ByteCounts,
    pub warnings: Vec<String>,
    /// Distinct names of syscalls rrc did not know how to record.
    pub unknown_syscalls: Vec<String>,
    /// Time-stamp counter reads (rdtsc/rdtscp) trapped and recorded.
    pub tsc_reads: u64,
}

/// How the recorded program ended: `{"exited": 0}` or `{"signaled": 9}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitSummary {
    Exited(i32),
    Signaled(i32),
}

impl From<ExitStatus> for ExitSummary {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Exited(code) => ExitSummary::Exited(code),
            ExitStatus::Signaled(signo) => ExitSummary::Signaled(signo),
        }
    }
}

/// One logical thread. Its start facts are `None` when the readable
/// prefix holds events of the thread but not its ThreadStart record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadSummary {
    pub thread: ThreadId,
    pub process: Option<u32>,
    pub parent: Option<ThreadId>,
    pub tid: Option<i32>,
    pub pid: Option<i32>,
    pub syscalls: u64,
    pub signals: u64,
    pub sync_ops: u64,
    pub exited: bool,
}

impl ThreadSummary {
    fn unstarted(thread: ThreadId) -> Self {
        ThreadSummary {
            thread,
            process: None,
            parent: None,
            tid: None,
            pid: None,
            syscalls: 0,
            signals: 0,
            sync_ops: 0,
            exited: false,
        }
    }
}

/// Distribution of `SyscallRecord::interval_ns` over all threads, by the
/// nearest-rank method (the median of an even count is the lower middle
/// value). All zero when there are no syscalls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IntervalStats {
    pub count: u64,
    pub median_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl IntervalStats {
    pub fn from_samples(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        let Some(&max_ns) = samples.last() else {
            return IntervalStats::default();
        };
        IntervalStats {
            count: samples.len() as u64,
            median_ns: nearest_rank(&samples, 50),
            p99_ns: nearest_rank(&samples, 99),
            max_ns,
        }
    }
}

/// The `percent`-th percentile of non-empty sorted samples: the smallest
/// sample with at least `percent`% of the samples at or below it.
fn nearest_rank(sorted: &[u64], percent: u128) -> u64 {
    let rank = (sorted.len() as u128 * percent).div_ceil(100);
    let index = usize::try_from(rank.saturating_sub(1)).unwrap_or(usize::MAX);
    sorted[index.min(sorted.len() - 1)]
}

/// Bytes of syscall memory effects the trace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByteCounts {
    /// Bytes the kernel wrote into the program's memory.
    pub syscall_outputs: u64,
    /// Bytes the program handed to the kernel that replay checks.
    pub syscall_inputs: u64,
    /// Of those, bytes the trace keeps as a digest (length and XXH3-128 hash).
    pub syscall_inputs_digested: u64,
}

/// Folds records, in trace order, into a [`TraceSummary`].
pub struct SummaryBuilder {
    header: TraceHeader,
    threads: BTreeMap<ThreadId, ThreadSummary>,
    syscalls_by_nr: BTreeMap<u32, u64>,
    sync_ops: BTreeMap<SyncOp, u64>,
    signals_by_number: BTreeMap<i32, u64>,
    intervals: Vec<u64>,
    bytes: ByteCounts,
    warnings: Vec<String>,
    /// Named, with an ioctl's request: `ioctl 0x8912`.
    unknown_syscall_names: BTreeSet<String>,
    tsc_reads: u64,
    buffered_syscalls: u64,
    end: Option<EndRecord>,
}

impl SummaryBuilder {
    pub fn new(header: TraceHeader) -> Self {
        SummaryBuilder {
            header,
            threads: BTreeMap::new(),
            syscalls_by_nr: BTreeMap::new(),
            sync_ops: BTreeMap::new(),
            signals_by_number: BTreeMap::new(),
            intervals: Vec::new(),
            bytes: ByteCounts::default(),
            warnings: Vec::new(),
            unknown_syscall_names: BTreeSet::new(),
            tsc_reads: 0,
            buffered_syscalls: 0,
            end: None,
        }
    }

    pub fn observe(&mut self, record: &TraceRecord) {
        match record {
            TraceRecord::ThreadStart {
                thread,
                process,
                parent,
                tid,
                pid,
            } => {
                let entry = self.thread_mut(*thread);
                entry.process = Some(*process);
                entry.parent = *parent;
                entry.tid = Some(*tid);
                entry.pid = Some(*pid);
            }
            TraceRecord::Syscall(syscall) => self.observe_syscall(syscall),
            TraceRecord::Tsc(_) => self.tsc_reads += 1,
            TraceRecord::Sync(batch) => self.observe_sync(batch),
            TraceRecord::Signal(signal) => self.observe_signal(signal),
            TraceRecord::ThreadExit { thread, .. } => self.thread_mut(*thread).exited = true,
            TraceRecord::Warning { thread, message } => {
                self.warnings.push(format!("t{thread}: {message}"));
            }
            TraceRecord::End(end) => self.end = Some(end.clone()),
        }
    }

    fn thread_mut(&mut self, thread: ThreadId) -> &mut ThreadSummary {
        self.threads
            .entry(thread)
            .or_insert_with(|| ThreadSummary::unstarted(thread))
    }

    fn observe_syscall(&mut self, syscall: &SyscallRecord) {
        self.thread_mut(syscall.thread).syscalls += 1;
        *self.syscalls_by_nr.entry(syscall.nr).or_default() += 1;
        self.intervals.push(syscall.interval_ns);
        self.bytes.syscall_outputs += total_len(&syscall.outputs);
        for input in syscall.recorded_inputs() {
            self.bytes.syscall_inputs += input.len();
            if matches!(input, RecordedInput::Digest(_)) {
                self.bytes.syscall_inputs_digested += input.len();
            }
        }
        if syscall.extra == SyscallExtra::Buffered {
            self.buffered_syscalls += 1;
        }
        if syscall.extra == SyscallExtra::Unknown {
            let name = if syscall.nr == Sysno::ioctl as u32 {
                format!("ioctl {:#x}", syscall.args[1] & 0xffff_ffff)
            } else {
                syscall_name(syscall.nr)
            };
            self.unknown_syscall_names.insert(name);
        }
    }

    fn observe_sync(&mut self, batch: &SyncBatch) {
        self.thread_mut(batch.thread).sync_ops += batch.ops.len() as u64;
        for op in &batch.ops {
            *self.sync_ops.entry(op.op).or_default() += 1;
        }
    }

    fn observe_signal(&mut self, signal: &SignalRecord) {
        self.thread_mut(signal.thread).signals += 1;
        *self.signals_by_number.entry(signal.signo).or_default() += 1;
    }

    /// The summary of everything observed. `damage` is why the readable
    /// prefix stops (None for a complete trace).
    pub fn finish(
        self,
        intact_bytes: u64,
        damage: Option<&TraceError>,
        trace_bytes: u64,
    ) -> TraceSummary {
        let header = self.header;
        let threads: Vec<ThreadSummary> = self.threads.into_values().collect();
        TraceSummary {
            format_version: FORMAT_VERSION,
            complete: damage.is_none(),
            damage: damage.map(|err| err.to_string()),
            program: header.argv.iter().map(|arg| lossy(arg)).collect(),
            exe: lossy(&header.exe),
            cwd: lossy(&header.cwd),
            inherited_fds: header.inherited_fds.clone(),
            serialized: header.serialized,
            start_time_unix_ns: header.start_time_unix_ns,
            rrc_version: header.rrc_version,
            trace_bytes,
            intact_bytes,
            exit_status: self.end.as_ref().map(|end| end.exit.into()),
            duration_ns: self.end.as_ref().map(|end| end.duration_ns),
            processes: count_processes(&threads),
            threads,
            syscalls: rename_keys(self.syscalls_by_nr, syscall_name),
            buffered_syscalls: self.buffered_syscalls,
            sync_ops: rename_keys(self.sync_ops, |op| op.name().to_string()),
            signals: rename_keys(self.signals_by_number, signal_name),
            intervals: IntervalStats::from_samples(self.intervals),
            bytes: self.bytes,
            warnings: self.warnings,
            unknown_syscalls: self.unknown_syscall_names.into_iter().collect(),
            tsc_reads: self.tsc_reads,
        }
    }
}

fn total_len(buffers: &[Vec<u8>]) -> u64 {
    buffers.iter().map(|buffer| buffer.len() as u64).sum()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn count_processes(threads: &[ThreadSummary]) -> usize {
    let processes: BTreeSet<u32> = threads.iter().filter_map(|t| t.process).collect();
    processes.len()
}

fn rename_keys<K: Copy>(
    counts: BTreeMap<K, u64>,
    name_of: impl Fn(K) -> String,
) -> BTreeMap<String, u64> {
    let mut named = BTreeMap::new();
    for (key, count) in counts {
        *named.entry(name_of(key)).or_default() += count;
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrc_trace::SyncRecord;

    fn header() -> TraceHeader {
        TraceHeader {
            argv: vec![b"./prog".to_vec(), b"\xffarg".to_vec()],
            env: vec![],
            cwd: b"/tmp".to_vec(),
            exe: b"/tmp/prog".to_vec(),
            start_time_unix_ns: 42,
            shim_path: b"/lib/librrc_shim.so".to_vec(),
            shim_digest: (0, 0),
            ignored_signals: 0,
            blocked_signals: 0,
            inherited_fds: Vec::new(),
            exe_digest: Default::default(),
            secret_env: Vec::new(),
            serialized: false,
            rrc_version: "0.1.0".into(),
        }
    }

    fn syscall(thread: ThreadId, nr: u32, interval_ns: u64, extra: SyscallExtra) -> TraceRecord {
        TraceRecord::Syscall(SyscallRecord {
            thread,
            index: 0,
            nr,
            args: [0; 6],
            ret: 0,
            inputs: vec![b"ab".to_vec()],
            outputs: vec![b"xyz".to_vec(), b"q".to_vec()],
            interval_ns,
            return_ns: 0,
            order: 0,
            extra,
            digested: 0,
        })
    }

    fn summarize(records: &[TraceRecord], damage: Option<&TraceError>) -> TraceSummary {
        let mut builder = SummaryBuilder::new(header());
        for record in records {
            builder.observe(record);
        }
        builder.finish(100, damage, 120)
    }

    #[test]
    fn sent_data_kept_as_a_digest_counts_its_length_and_as_digested() {
        let mut send = match syscall(0, Sysno::write as u32, 1, SyscallExtra::Buffered) {
            TraceRecord::Syscall(s) => s,
            _ => unreachable!(),
        };
        send.inputs = vec![vec![5u8; 1000]];
        send.digest_sent_data();
        let summary = summarize(&[TraceRecord::Syscall(send)], None);
        assert_eq!(summary.bytes.syscall_inputs, 1000);
        assert_eq!(summary.bytes.syscall_inputs_digested, 1000);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let stats = IntervalStats::from_samples(vec![50, 10, 40, 20, 30]);
        assert_eq!(
            stats,
            IntervalStats {
                count: 5,
                median_ns: 30,
                p99_ns: 50,
                max_ns: 50
            }
        );
        let even = IntervalStats::from_samples(vec![4, 1, 3, 2]);
        assert_eq!((even.median_ns, even.p99_ns), (2, 4));
        let many = IntervalStats::from_samples((1..=1000).collect());
        assert_eq!((many.median_ns, many.p99_ns, many.max_ns), (500, 990, 1000));
        assert_eq!(
            IntervalStats::from_samples(vec![]),
            IntervalStats::default()
        );
    }

    #[test]
    fn counts_everything_by_name_and_thread() {
        let records = vec![
            TraceRecord::ThreadStart {
                thread: 0,
                process: 0,
                parent: None,
                tid: 10,
                pid: 10,
            },
            syscall(0, 0, 5, SyscallExtra::None),
            syscall(0, 0, 7, SyscallExtra::None),
            syscall(1, 999, 9, SyscallExtra::Unknown),
            TraceRecord::Sync(SyncBatch {
                thread: 0,
                first: 0,
                ops: vec![SyncRecord {
                    object: 0x1000,
                    seq: 0,
                    order: 0,
                    arrival: rrc_trace::NO_ORDER,
                    op: SyncOp::MutexLock,
                    result: 0,
                }],
            }),
            TraceRecord::Signal(SignalRecord {
                thread: 1,
                index: 1,
                signo: 14,
                asynchronous: true,
                at: rrc_trace::SignalPoint::SyscallReturn,
                siginfo: Vec::new(),
            }),
            TraceRecord::ThreadExit {
                thread: 0,
                events: 2,
            },
            TraceRecord::End(EndRecord {
                exit: ExitStatus::Signaled(9),
                duration_ns: 77,
            }),
        ];
        let summary = summarize(&records, None);
        assert!(summary.complete);
        assert_eq!(summary.program, vec!["./prog", "\u{fffd}arg"]);
        assert_eq!(summary.syscalls.get("read"), Some(&2));
        assert_eq!(summary.syscalls.get("syscall_999"), Some(&1));
        assert_eq!(summary.sync_ops.get("pthread_mutex_lock"), Some(&1));
        assert_eq!(summary.signals.get("SIGALRM"), Some(&1));
        assert_eq!(summary.unknown_syscalls, vec!["syscall_999"]);
        assert_eq!(summary.exit_status, Some(ExitSummary::Signaled(9)));
        assert_eq!(summary.duration_ns, Some(77));
        assert_eq!(summary.processes, 1);
        assert_eq!(
            summary.bytes,
            ByteCounts {
                syscall_outputs: 12,
                syscall_inputs: 6,
                syscall_inputs_digested: 0,
            }
        );
        assert_eq!(summary.threads.len(), 2);
        assert!(summary.threads[0].exited);
        assert_eq!(summary.threads[1].tid, None);
        assert_eq!(summary.threads[1].signals, 1);
    }

    #[test]
    fn a_damaged_prefix_has_no_exit_status() {
        let damage = TraceError::Truncated {
            offset: 100,
            what: "cut".into(),
        };
        let summary = summarize(&[syscall(0, 1, 3, SyscallExtra::None)], Some(&damage));
        assert!(!summary.complete);
        assert_eq!(
            summary.damage.as_deref(),
            Some("trace truncated at byte offset 100: cut")
        );
        assert_eq!(summary.exit_status, None);
        assert_eq!(summary.duration_ns, None);
    }
}
