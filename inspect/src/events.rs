//! One strace-style line per event, in trace order.

use std::io::{self, Write};

use rrc_trace::{
    EndRecord, ExitStatus, RecordedInput, SignalRecord, SyncBatch, SyncOp, SyncRecord,
    SyscallExtra, SyscallRecord, ThreadId, TraceRecord,
};

use crate::names::{errno_name, signal_name, syscall_arg_count, syscall_name};
use crate::units::{format_duration_ns, quote_bytes};

/// Bytes of a syscall input shown before it is cut with `...`.
const SHOWN_INPUT_BYTES: usize = 64;
/// Bytes of a path shown before it is cut with `...`.
const SHOWN_PATH_BYTES: usize = 256;
/// Kernel return values in `-MAX_ERRNO..0` are negated errno values.
const MAX_ERRNO: i64 = 4095;

/// The logical thread a record belongs to; `None` for the End record.
pub fn record_thread(record: &TraceRecord) -> Option<ThreadId> {
    match record {
        TraceRecord::ThreadStart { thread, .. }
        | TraceRecord::ThreadExit { thread, .. }
        | TraceRecord::Warning { thread, .. } => Some(*thread),
        TraceRecord::Syscall(syscall) => Some(syscall.thread),
        TraceRecord::Tsc(tsc) => Some(tsc.thread),
        TraceRecord::Sync(batch) => Some(batch.thread),
        TraceRecord::Signal(signal) => Some(signal.thread),
        TraceRecord::End(_) => None,
    }
}

/// Writes the line (or, for a sync batch, lines) describing `record`.
pub fn write_event(out: &mut impl Write, record: &TraceRecord) -> io::Result<()> {
    match record {
        TraceRecord::ThreadStart {
            thread,
            process,
            parent,
            tid,
            pid,
        } => {
            let parent = parent.map_or_else(|| "none".to_string(), |p| format!("t{p}"));
            writeln!(
                out,
                "[t{thread}] +++ thread start: process p{process}, parent {parent}, tid {tid}, pid {pid} +++"
            )
        }
        TraceRecord::Syscall(syscall) => writeln!(out, "{}", syscall_line(syscall)),
        TraceRecord::Tsc(tsc) => {
            let insn = if tsc.aux.is_some() { "rdtscp" } else { "rdtsc" };
            writeln!(
                out,
                "[t{} #{}] {insn} = {:#x}{}{}",
                tsc.thread,
                tsc.index,
                tsc.value,
                tsc.aux.map_or_else(String::new, |a| format!(" aux {a}")),
                order_note(tsc.order)
            )
        }
        TraceRecord::Sync(batch) => write_sync_batch(out, batch),
        TraceRecord::Signal(signal) => writeln!(out, "{}", signal_line(signal)),
        TraceRecord::ThreadExit { thread, events } => {
            writeln!(out, "[t{thread}] +++ thread exit after {events} events +++")
        }
        TraceRecord::Warning { thread, message } => {
            writeln!(out, "[t{thread}] !!! warning: {message}")
        }
        TraceRecord::End(end) => writeln!(out, "{}", end_line(end)),
    }
}

/// `[t0 #12] read(0, 0x7ffd..., 4096) = 17  <17 bytes out>  +1.2ms`
fn syscall_line(syscall: &SyscallRecord) -> String {
    let args: Vec<String> = shown_args(syscall)
        .iter()
        .map(|&arg| format_arg(arg))
        .collect();
    let mut line = format!(
        "[t{} #{}] {}({}) = {}",
        syscall.thread,
        syscall.index,
        syscall_name(syscall.nr),
        args.join(", "),
        format_return(syscall.ret)
    );
    for note in syscall_notes(syscall) {
        line.push_str("  <");
        line.push_str(&note);
        line.push('>');
    }
    line.push_str("  +");
    line.push_str(&format_duration_ns(syscall.interval_ns));
    line.push_str(&order_note(syscall.order));
    line
}

/// The event's place in the recorded event order (which replay follows
/// across threads), when it has one.
fn order_note(order: u64) -> String {
    if order == rrc_trace::NO_ORDER {
        String::new()
    } else {
        format!("  @{order}")
    }
}

/// The syscall's own arguments when its arity is known; otherwise all six
/// registers without the trailing zeros.
fn shown_args(syscall: &SyscallRecord) -> &[u64] {
    let count = syscall_arg_count(syscall.nr).unwrap_or_else(|| {
        syscall
            .args
            .iter()
            .rposition(|&arg| arg != 0)
            .map_or(0, |last| last + 1)
    });
    &syscall.args[..count.min(syscall.args.len())]
}

/// Small integers in decimal, everything else in hex. Small negative
/// ones (AT_FDCWD) count as small whether the caller passed them as a
/// 64-bit value or as a 32-bit int, whose upper register half is zero.
fn format_arg(arg: u64) -> String {
    const SMALL: std::ops::RangeInclusive<i64> = -4096..=65536;
    let as_long = arg as i64;
    let as_int = i64::from(arg as u32 as i32);
    if SMALL.contains(&as_long) {
        as_long.to_string()
    } else if arg <= u64::from(u32::MAX) && SMALL.contains(&as_int) {
        as_int.to_string()
    } else {
        format!("{arg:#x}")
    }
}

/// `17`, `0x7f12a000` for addresses, `-1 ENOENT` for errors.
fn format_return(ret: i64) -> String {
    if (-MAX_ERRNO..0).contains(&ret) {
        let errno = -ret;
        match errno_name(errno) {
            Some(name) => format!("-1 {name}"),
            None => format!("-1 errno {errno}"),
        }
    } else if ret > i64::from(u32::MAX) {
        format!("{ret:#x}")
    } else {
        ret.to_string()
    }
}

/// The bracketed notes after a syscall's result: what rrc learned about
/// it, what went in, how much came out.
fn syscall_notes(syscall: &SyscallRecord) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(note) = extra_note(syscall) {
        notes.push(note);
    }
    for input in syscall.recorded_inputs() {
        notes.push(match input {
            RecordedInput::Bytes(b) => format!("in {}", quote_bytes(b, SHOWN_INPUT_BYTES)),
            RecordedInput::Digest(d) => format!("in {} bytes, XXH3 {}...", d.len, d.short_hex()),
            RecordedInput::Malformed => "in a damaged digest".to_string(),
        });
    }
    let output_bytes: usize = syscall.outputs.iter().map(Vec::len).sum();
    if output_bytes > 0 {
        notes.push(format!("{output_bytes} bytes out"));
    }
    notes
}

/// What `extra` says; an opened file's path only when it is not the path
/// the program gave, which the inputs show anyway.
fn extra_note(syscall: &SyscallRecord) -> Option<String> {
    let note = match &syscall.extra {
        SyscallExtra::None => return None,
        SyscallExtra::Opened(file) if syscall.inputs.contains(&file.path) => "opened".to_string(),
        SyscallExtra::Opened(file) => {
            format!("opened {}", quote_bytes(&file.path, SHOWN_PATH_BYTES))
        }
        SyscallExtra::NewThread(thread) => format!("new thread t{thread}"),
        SyscallExtra::NewProcess { process, thread } => {
            format!("new process p{process}, thread t{thread}")
        }
        SyscallExtra::StdStream(1) => "to stdout".to_string(),
        SyscallExtra::StdStream(2) => "to stderr".to_string(),
        SyscallExtra::StdStream(fd) => format!("to fd {fd}"),
        SyscallExtra::MappedFd(path) => format!("maps {}", quote_bytes(path, SHOWN_PATH_BYTES)),
        SyscallExtra::Unknown => "unknown to rrc: only the result was recorded".to_string(),
        SyscallExtra::EnteredAt(order) => format!("entered @{order}"),
        SyscallExtra::Buffered => "buffered".to_string(),
        SyscallExtra::Exec { random } => format!("AT_RANDOM {}", rrc_trace::hex(random)),
    };
    Some(note)
}

/// `[t1 sync #40] pthread_mutex_lock(0x55..) = 0 seq 7`, one per op.
fn write_sync_batch(out: &mut impl Write, batch: &SyncBatch) -> io::Result<()> {
    for (position, op) in batch.ops.iter().enumerate() {
        let index = batch.first.saturating_add(position as u64);
        writeln!(out, "{}", sync_line(batch.thread, index, op))?;
    }
    Ok(())
}

fn sync_line(thread: ThreadId, index: u64, op: &SyncRecord) -> String {
    let mut line = format!(
        "[t{thread} sync #{index}] {}({:#x}) = {}",
        op.op.name(),
        op.object,
        format_sync_result(op.op, op.result)
    );
    if acquired(op) {
        line.push_str(&format!(" seq {}", op.seq));
    }
    if op.op == rrc_trace::SyncOp::FutexWake && op.seq & rrc_synclog::HANDED_OFF != 0 {
        line.push_str(" (lock handed on)");
    }
    line.push_str(&order_note(op.order));
    if op.arrival != rrc_trace::NO_ORDER {
        line.push_str(&format!(" (arrived @{})", op.arrival));
    }
    line
}

/// pthread functions return an errno value, named here; sem_* functions
/// return -1 and leave the errno value in `errno`, which is not recorded;
/// futex calls return what the kernel does: a count, or a negated errno.
fn format_sync_result(op: SyncOp, result: i32) -> String {
    if matches!(op, SyncOp::FutexWait | SyncOp::FutexWake) {
        return match errno_name(-i64::from(result)) {
            Some(name) if result < 0 => format!("-1 {name}"),
            _ => result.to_string(),
        };
    }
    match errno_name(i64::from(result)) {
        Some(name) if returns_errno(op) && result > 0 => format!("{result} {name}"),
        _ => result.to_string(),
    }
}

fn returns_errno(op: SyncOp) -> bool {
    !matches!(
        op,
        SyncOp::SemWait | SyncOp::SemTrywait | SyncOp::SemTimedwait | SyncOp::StaticInit
    )
}

/// Whether the operation took its object, so its `seq` means something.
/// A condition wait re-acquires its mutex even when it times out; futex
/// calls take nothing.
fn acquired(op: &SyncRecord) -> bool {
    !matches!(
        op.op,
        SyncOp::FutexWait
            | SyncOp::FutexWake
            | SyncOp::StaticInit
            | SyncOp::ThreadJoin
            | SyncOp::SchedYield
    ) && (op.result == 0 || op.op == SyncOp::CondTimedwait)
}

/// `[t2 #9] --- SIGALRM (async) ---`
fn signal_line(signal: &SignalRecord) -> String {
    let origin = match signal.at {
        rrc_trace::SignalPoint::Synchronous => "sync".to_string(),
        rrc_trace::SignalPoint::SyscallReturn => "async, at syscall return".to_string(),
        rrc_trace::SignalPoint::WhileWaiting(_) => {
            "async, while it waited; handler ran alone".to_string()
        }
        rrc_trace::SignalPoint::InterruptedCall => {
            "async, at the return of the call it interrupted; handler ran alone".to_string()
        }
        rrc_trace::SignalPoint::SyscallEntry => "async, at syscall entry".to_string(),
        rrc_trace::SignalPoint::Elapsed(ns) => format!("async, {ns} ns into user code"),
        rrc_trace::SignalPoint::AfterReturn(_) => {
            "async, at syscall return; handler ran alone".to_string()
        }
    };
    format!(
        "[t{} #{}] --- {} ({origin}) ---",
        signal.thread,
        signal.index,
        signal_name(signal.signo)
    )
}

/// `=== end: exited with status 0 after 1.23s ===`
fn end_line(end: &EndRecord) -> String {
    let how = match end.exit {
        ExitStatus::Exited(code) => format!("exited with status {code}"),
        ExitStatus::Signaled(signo) => format!("killed by {}", signal_name(signo)),
    };
    format!(
        "=== end: {how} after {} ===",
        format_duration_ns(end.duration_ns)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_record() -> SyscallRecord {
        SyscallRecord {
            thread: 0,
            index: 12,
            nr: 0,
            args: [0, 0x7ffd_1234_5678, 4096, 0, 0, 0],
            ret: 17,
            inputs: vec![],
            outputs: vec![vec![0; 17]],
            interval_ns: 1_200_000,
            return_ns: 0,
            order: 0,
            extra: SyscallExtra::None,
            digested: 0,
        }
    }

    #[test]
    fn syscall_lines_look_like_strace() {
        assert_eq!(
            syscall_line(&read_record()),
            "[t0 #12] read(0, 0x7ffd12345678, 4096) = 17  <17 bytes out>  +1.2ms  @0"
        );
    }

    #[test]
    fn errors_show_errno_names() {
        let mut record = read_record();
        record.nr = 257;
        record.args = [0xffff_ff9c, 0x5555_0000_0000, 0, 0, 0, 0];
        record.ret = -2;
        record.outputs.clear();
        record.inputs = vec![b"/nope".to_vec()];
        assert_eq!(
            syscall_line(&record),
            "[t0 #12] openat(-100, 0x555500000000, 0, 0) = -1 ENOENT  <in \"/nope\">  +1.2ms  @0"
        );
    }

    #[test]
    fn args_are_decimal_when_small() {
        assert_eq!(format_arg((-100i64) as u64), "-100");
        assert_eq!(format_arg(0xffff_ff9c), "-100");
        assert_eq!(format_arg(4096), "4096");
        assert_eq!(format_arg(0x8_0000), "0x80000");
        assert_eq!(format_arg(0xffff_0000), "0xffff0000");
        assert_eq!(format_arg(0xffff_ffff_0000_0000), "0xffffffff00000000");
    }

    #[test]
    fn opened_paths_are_shown_when_they_differ_from_the_given_one() {
        let mut record = read_record();
        record.nr = 257;
        record.outputs.clear();
        record.ret = 3;
        record.inputs = vec![b"/lib/libc.so.6".to_vec()];
        record.extra = SyscallExtra::Opened(rrc_trace::FileIdentity {
            path: b"/usr/lib/libc.so.6".to_vec(),
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 4,
            regular: true,
        });
        assert!(syscall_line(&record)
            .contains("= 3  <opened \"/usr/lib/libc.so.6\">  <in \"/lib/libc.so.6\">"));
        record.inputs = vec![b"/usr/lib/libc.so.6".to_vec()];
        assert!(syscall_line(&record).contains("= 3  <opened>  <in \"/usr/lib/libc.so.6\">"));
    }

    #[test]
    fn unknown_syscalls_show_their_nonzero_registers() {
        let mut record = read_record();
        record.nr = 999;
        record.args = [1, 2, 0, 0, 0, 0];
        record.ret = 0x7f00_0000_0000;
        record.outputs.clear();
        record.extra = SyscallExtra::Unknown;
        assert_eq!(
            syscall_line(&record),
            "[t0 #12] syscall_999(1, 2) = 0x7f0000000000  \
             <unknown to rrc: only the result was recorded>  +1.2ms  @0"
        );
    }

    #[test]
    fn sync_ops_show_seq_only_when_acquired() {
        let lock = SyncRecord {
            object: 0x5555,
            seq: 7,
            order: 3,
            arrival: 2,
            op: SyncOp::MutexLock,
            result: 0,
        };
        assert_eq!(
            sync_line(1, 40, &lock),
            "[t1 sync #40] pthread_mutex_lock(0x5555) = 0 seq 7  @3 (arrived @2)"
        );
        let busy = SyncRecord {
            op: SyncOp::MutexTrylock,
            result: 16,
            ..lock
        };
        assert_eq!(
            sync_line(1, 41, &busy),
            "[t1 sync #41] pthread_mutex_trylock(0x5555) = 16 EBUSY  @3 (arrived @2)"
        );
    }

    #[test]
    fn signals_and_the_end_have_their_own_lines() {
        let signal = SignalRecord {
            thread: 2,
            index: 9,
            signo: 14,
            asynchronous: true,
            at: rrc_trace::SignalPoint::SyscallReturn,
            siginfo: Vec::new(),
        };
        assert_eq!(
            signal_line(&signal),
            "[t2 #9] --- SIGALRM (async, at syscall return) ---"
        );
        let end = EndRecord {
            exit: ExitStatus::Signaled(11),
            duration_ns: 2_500_000_000,
        };
        assert_eq!(end_line(&end), "=== end: killed by SIGSEGV after 2.50s ===");
    }
}
