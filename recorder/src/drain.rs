//! Draining the shim's per-thread sync rings into the trace, on its own
//! thread so the tracer never waits for it and the shim rarely waits at all.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rrc_synclog::{futex_wait, futex_wake, SharedSyncLog};
use rrc_trace::{SyncBatch, SyncOp, SyncRecord, TraceRecord, TraceSender};

// The shim's "no arrival" and the trace's "no place in the order" are the
// same value, so an arrival crosses between the two unchanged (here and
// in the replayer's feeder).
const _: () = assert!(rrc_synclog::NO_ARRIVAL == rrc_trace::NO_ORDER);

pub struct SyncDrainer {
    log: Arc<SharedSyncLog>,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl SyncDrainer {
    /// `threads` is how many logical thread slots the tracer has handed out.
    pub fn spawn(
        log: Arc<SharedSyncLog>,
        threads: Arc<AtomicU32>,
        sink: TraceSender,
    ) -> std::io::Result<SyncDrainer> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let log2 = log.clone();
        let join = std::thread::Builder::new()
            .name("rrc-sync-drain".into())
            .spawn(move || {
                let mut drained = Vec::new();
                loop {
                    let seen = log.header().service_wake.load(Ordering::Acquire);
                    let finishing = stop2.load(Ordering::Acquire);
                    drain_all(&log, threads.load(Ordering::Acquire), &sink, &mut drained);
                    if finishing {
                        break;
                    }
                    futex_wait(
                        &log.header().service_wake,
                        seen,
                        Some(Duration::from_millis(2)),
                    );
                }
            })?;
        Ok(SyncDrainer {
            log: log2,
            stop,
            join: Some(join),
        })
    }

    /// Drains what is left and stops. Call after every tracee has exited.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Release);
        // Woken, not left to its next look (a recording's end waited for it).
        self.log.poke_service();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn drain_all(log: &SharedSyncLog, threads: u32, sink: &TraceSender, drained: &mut Vec<u64>) {
    if drained.len() < threads as usize {
        drained.resize(threads as usize, 0);
    }
    for slot in 0..threads {
        let Some(ring) = log.ring(slot) else { break };
        if ring.is_empty() {
            continue;
        }
        let first = drained[slot as usize];
        let mut ops = Vec::with_capacity(ring.len() as usize);
        while let Some(e) = ring.pop() {
            // An op code the shim should never produce is dropped here and
            // surfaces in replay as a sync divergence, not as a bad trace.
            if let Some(op) = u8::try_from(e.op).ok().and_then(SyncOp::from_u8) {
                ops.push(SyncRecord {
                    object: e.object,
                    seq: e.seq,
                    order: e.order,
                    // NO_ARRIVAL is NO_ORDER (checked at compile time).
                    arrival: e.arrival,
                    op,
                    result: e.result,
                });
            }
        }
        ring.popped.fetch_add(1, Ordering::Release);
        futex_wake(&ring.popped, i32::MAX);
        drained[slot as usize] += ops.len() as u64;
        // A send only fails when the writer is gone, which the tracer
        // reports on its own next send.
        let _ = sink.send(TraceRecord::Sync(SyncBatch {
            thread: slot,
            first,
            ops,
        }));
    }
}
