//! A trace record read for its bookkeeping only: replay's first pass over
//! a trace needs each syscall's thread, index, stamps and kind, not the
//! bytes it read or wrote, and skips them without copying (the full record
//! is read again, through a window, when replay gets to it).

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use crate::{EndRecord, ProcessId, SignalRecord, SyncBatch, SyscallExtra, ThreadId, TscRecord};

/// [`crate::SyscallRecord`] without its data: the same fields in the same
/// order, `inputs` and `outputs` skipped.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct SyscallHead {
    pub thread: ThreadId,
    pub index: u64,
    pub nr: u32,
    pub args: [u64; 6],
    pub ret: i64,
    #[serde(deserialize_with = "skip_list")]
    pub inputs: (),
    #[serde(deserialize_with = "skip_list")]
    pub outputs: (),
    pub interval_ns: u64,
    pub return_ns: u64,
    pub order: u64,
    pub extra: SyscallExtra,
    pub digested: u32,
}

/// [`crate::TraceRecord`], variant for variant, with [`SyscallHead`] for
/// syscalls (a unit test keeps the two in step).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub enum ScanRecord {
    ThreadStart {
        thread: ThreadId,
        process: ProcessId,
        parent: Option<ThreadId>,
        tid: i32,
        pid: i32,
    },
    Syscall(SyscallHead),
    Tsc(TscRecord),
    Sync(SyncBatch),
    Signal(SignalRecord),
    ThreadExit {
        thread: ThreadId,
        events: u64,
    },
    Warning {
        thread: ThreadId,
        message: String,
    },
    End(EndRecord),
}

fn skip_list<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    d.deserialize_seq(SkipList)
}

struct SkipList;

impl<'de> Visitor<'de> for SkipList {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of byte strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<SkipBytes>()?.is_some() {}
        Ok(())
    }
}

struct SkipBytes;

impl<'de> Deserialize<'de> for SkipBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_bytes(SkipBytesVisitor).map(|()| SkipBytes)
    }
}

struct SkipBytesVisitor;

impl<'de> Visitor<'de> for SkipBytesVisitor {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_borrowed_bytes<E>(self, _: &'de [u8]) -> Result<(), E> {
        Ok(())
    }

    fn visit_bytes<E>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }

    fn visit_byte_buf<E>(self, _: Vec<u8>) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ExitStatus, SignalPoint, SyncOp, SyncRecord, SyscallRecord, TraceRecord, NO_ORDER,
    };

    #[test]
    fn every_record_reads_the_same_without_its_data() {
        let syscall = SyscallRecord {
            thread: 3,
            index: 9,
            nr: 0,
            args: [1, 2, 3, 4, 5, 6],
            ret: 5,
            inputs: vec![b"in".to_vec()],
            outputs: vec![b"hello".to_vec(), Vec::new()],
            interval_ns: 7,
            return_ns: 8,
            order: 11,
            extra: SyscallExtra::EnteredAt(10),
            digested: 1,
        };
        let records = vec![
            TraceRecord::ThreadStart {
                thread: 1,
                process: 0,
                parent: Some(0),
                tid: 100,
                pid: 99,
            },
            TraceRecord::Syscall(syscall.clone()),
            TraceRecord::Tsc(TscRecord {
                thread: 1,
                index: 2,
                value: 3,
                aux: None,
                interval_ns: 5,
                return_ns: 6,
                order: 4,
            }),
            TraceRecord::Sync(SyncBatch {
                thread: 1,
                first: 0,
                ops: vec![SyncRecord {
                    object: 1,
                    seq: 2,
                    order: 3,
                    arrival: NO_ORDER,
                    op: SyncOp::MutexLock,
                    result: 0,
                }],
            }),
            TraceRecord::Signal(SignalRecord {
                thread: 1,
                index: 3,
                signo: 10,
                asynchronous: true,
                at: SignalPoint::WhileWaiting(8),
                siginfo: vec![1, 2, 3],
            }),
            TraceRecord::ThreadExit {
                thread: 1,
                events: 4,
            },
            TraceRecord::Warning {
                thread: 1,
                message: "m".into(),
            },
            TraceRecord::End(EndRecord {
                exit: ExitStatus::Exited(0),
                duration_ns: 12,
            }),
        ];
        for record in records {
            let mut bytes = Vec::new();
            crate::encode_into(&mut bytes, &record).expect("encode");
            let scanned: ScanRecord = crate::decode(&bytes).expect("scan");
            let same = match (&record, &scanned) {
                (TraceRecord::Syscall(s), ScanRecord::Syscall(h)) => {
                    (s.thread, s.index, s.nr, s.args, s.ret, s.order, &s.extra)
                        == (h.thread, h.index, h.nr, h.args, h.ret, h.order, &h.extra)
                        && s.digested == h.digested
                        && (s.interval_ns, s.return_ns) == (h.interval_ns, h.return_ns)
                }
                _ => format!("{record:?}") == format!("{scanned:?}"),
            };
            assert!(same, "{record:?} read as {scanned:?}");
        }
    }
}
