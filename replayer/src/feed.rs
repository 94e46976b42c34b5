//! Feeding each thread's recorded sync operations to the shim, and
//! watching for divergences the shim reports and for a replay that has
//! stopped making progress.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rrc_synclog::{futex_wait, futex_wake, SharedSyncLog, SyncEntry};
use rrc_trace::SyncRecord;

use crate::divergence::{describe_sync_op, Cause, Divergence};
use crate::plan::SyncHolds;

/// State shared between the tracer and the feeder.
#[derive(Default)]
pub struct ReplayShared {
    /// Set by whoever finds the first divergence.
    pub divergence: Mutex<Option<Divergence>>,
    /// Bumped by the tracer at every event: the watchdog's sign of life.
    pub progress: AtomicU64,
    pub finished: AtomicBool,
    /// Set by the watchdog when nothing has moved for the stall timeout;
    /// the tracer then writes the report (it knows what each thread waits for).
    pub stalled: AtomicBool,
    /// Real pids of the traced processes, to kill on divergence.
    pub pids: Mutex<Vec<i32>>,
}

impl ReplayShared {
    /// Records a divergence (the first one wins) and kills the program.
    pub fn diverge(&self, d: Divergence) {
        if let Ok(mut slot) = self.divergence.lock() {
            if slot.is_none() {
                *slot = Some(d);
            }
        }
        self.kill_all();
    }

    pub fn has_diverged(&self) -> bool {
        self.divergence.lock().map(|d| d.is_some()).unwrap_or(true)
    }

    pub fn kill_all(&self) {
        if let Ok(pids) = self.pids.lock() {
            for &p in pids.iter() {
                // SAFETY: plain kill of a traced process we started.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
}

pub struct SyncFeeder {
    join: Option<JoinHandle<()>>,
    shared: Arc<ReplayShared>,
    log: Arc<SharedSyncLog>,
}

/// A thread's recorded sync operations, the holds around them (see the
/// plan's `sync_holds`; empty for none) and the thread's recorded tid.
pub type SyncStream = (Arc<Vec<SyncRecord>>, Arc<Vec<SyncHolds>>, i32);

struct Stream {
    ops: Arc<Vec<SyncRecord>>,
    holds: Arc<Vec<SyncHolds>>,
    pushed: usize,
    tid: i32,
}

impl SyncFeeder {
    pub fn spawn(
        log: Arc<SharedSyncLog>,
        streams: Vec<SyncStream>,
        shared: Arc<ReplayShared>,
        stall_timeout: Duration,
    ) -> std::io::Result<SyncFeeder> {
        let shared2 = shared.clone();
        let woken = log.clone();
        let join = std::thread::Builder::new()
            .name("rrc-sync-feed".into())
            .spawn(move || {
                let mut streams: Vec<Stream> = streams
                    .into_iter()
                    .map(|(ops, holds, tid)| Stream {
                        ops,
                        holds,
                        pushed: 0,
                        tid,
                    })
                    .collect();
                let mut last_progress = (0u64, Instant::now());
                loop {
                    let seen = log.header().service_wake.load(Ordering::Acquire);
                    if shared2.finished.load(Ordering::Acquire) {
                        break;
                    }
                    let fed = feed_all(&log, &mut streams);
                    if let Some(d) = log.divergence() {
                        let t = d.thread as usize;
                        let expected = if d.expected_op == 0 {
                            "no further synchronisation (end of the thread's recorded sync operations)".to_string()
                        } else {
                            format!("{} on {:#x}", describe_sync_op(d.expected_op), d.expected_object)
                        };
                        shared2.diverge(Divergence {
                            cause: Cause::Threads,
                            thread: Some(d.thread),
                            recorded_tid: streams.get(t).map_or(0, |s| s.tid),
                            index: Some(d.index),
                            expected: format!("sync op #{}: {expected}", d.index),
                            observed: format!(
                                "{} on {:#x}",
                                describe_sync_op(d.observed_op),
                                d.observed_object
                            ),
                        });
                    }
                    let consumed: u64 = (0..streams.len())
                        .filter_map(|i| log.ring(i as u32))
                        .map(|r| r.consumed())
                        .sum();
                    // Calls the shims answered in-process move the program too.
                    let answered: u64 = (0..streams.len())
                        .filter_map(|i| log.syscall_buf(i as u32))
                        .map(|b| b.replay_taken())
                        .sum();
                    let progress =
                        shared2.progress.load(Ordering::Acquire) + consumed + fed + answered;
                    if progress != last_progress.0 {
                        last_progress = (progress, Instant::now());
                    } else if last_progress.1.elapsed() > stall_timeout
                        && !shared2.has_diverged()
                        && !shared2.stalled.swap(true, Ordering::AcqRel)
                    {
                        // Wake the tracer, which waits on SIGCHLD.
                        // SAFETY: signalling our own process; SIGCHLD is
                        // blocked everywhere and read through a signalfd.
                        unsafe { libc::kill(libc::getpid(), libc::SIGCHLD) };
                    }
                    futex_wait(&log.header().service_wake, seen, Some(Duration::from_millis(2)));
                }
            })?;
        Ok(SyncFeeder {
            join: Some(join),
            shared,
            log: woken,
        })
    }

    pub fn finish(mut self) {
        self.shared.finished.store(true, Ordering::Release);
        // Woken, not left to its next look (replay's end waited for it).
        self.log.poke_service();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Wakes the tracer when the shim moves the event order to a rank the
/// tracer holds a thread for (`SharedSyncLog::tracer_wants_rank`).
pub struct OrderWaker {
    join: Option<JoinHandle<()>>,
    shared: Arc<ReplayShared>,
    log: Arc<SharedSyncLog>,
}

impl OrderWaker {
    pub fn spawn(log: Arc<SharedSyncLog>, shared: Arc<ReplayShared>) -> std::io::Result<Self> {
        let (log2, shared2) = (log.clone(), shared.clone());
        let join = std::thread::Builder::new()
            .name("rrc-order-wake".into())
            .spawn(move || {
                let word = &log2.header().tracer_wake;
                let mut seen = word.load(Ordering::Acquire);
                while !shared2.finished.load(Ordering::Acquire) {
                    futex_wait(word, seen, Some(Duration::from_millis(50)));
                    let now = word.load(Ordering::Acquire);
                    if now != seen {
                        seen = now;
                        // SAFETY: signalling our own process; SIGCHLD is
                        // blocked everywhere and read through the tracer's
                        // signalfd, so this only ends its wait.
                        unsafe { libc::kill(libc::getpid(), libc::SIGCHLD) };
                    }
                }
            })?;
        Ok(OrderWaker {
            join: Some(join),
            shared,
            log,
        })
    }

    pub fn finish(mut self) {
        self.shared.finished.store(true, Ordering::Release);
        let word = &self.log.header().tracer_wake;
        word.fetch_add(1, Ordering::AcqRel);
        futex_wake(word, i32::MAX);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Tops up every ring; returns how many entries were pushed.
fn feed_all(log: &SharedSyncLog, streams: &mut [Stream]) -> u64 {
    let mut fed = 0;
    for (slot, s) in streams.iter_mut().enumerate() {
        let Some(ring) = log.ring(slot as u32) else {
            break;
        };
        if ring.closed.load(Ordering::Acquire) != 0 {
            continue;
        }
        let before = s.pushed;
        while let Some(op) = s.ops.get(s.pushed) {
            let holds = s.holds.get(s.pushed).copied().unwrap_or(SyncHolds::NONE);
            let entry = SyncEntry {
                object: op.object,
                seq: if holds.woken_by_wake {
                    op.seq | rrc_synclog::WOKEN_BY_WAKE
                } else {
                    op.seq
                },
                // The plan has made it the event's rank.
                order: op.order,
                // NO_ORDER is NO_ARRIVAL (checked in the recorder's drain).
                arrival: op.arrival,
                late_to: holds.late_to,
                gate_after: holds.gate_after,
                op: op.op as u32,
                result: op.result,
            };
            if !ring.push(entry) {
                break;
            }
            s.pushed += 1;
        }
        if s.pushed == s.ops.len() {
            ring.closed.store(1, Ordering::Release);
        }
        if s.pushed != before || s.pushed == s.ops.len() {
            ring.pushed.fetch_add(1, Ordering::Release);
            futex_wake(&ring.pushed, i32::MAX);
        }
        fed += (s.pushed - before) as u64;
    }
    fed
}
