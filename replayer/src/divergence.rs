//! Divergence reports: where replay stopped matching the recording, named
//! by thread and event index, expected versus observed.

use rrc_interposer::model;
use rrc_trace::{
    ExitStatus, InputDigest, RecordedInput, SignalPoint, SyncOp, SyscallRecord, ThreadId,
};

use crate::plan::PlannedEvent;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub thread: Option<ThreadId>,
    /// The tid the thread had when recorded.
    pub recorded_tid: i32,
    pub index: Option<u64>,
    pub expected: String,
    pub observed: String,
    pub cause: Cause,
}

/// What a divergence comes from, as far as replay can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Where the program's threads ran (or anything else): another try
    /// may place them as recorded.
    Threads,
    /// The world outside the program (a file it mapped has changed
    /// since): no other placing of its threads replays it.
    ChangedFile,
    /// Something rrc cannot replay (an unsupported call, several
    /// descriptors in one message, output the trace lacks): no other
    /// placing of its threads replays it either.
    RrcLimit,
}

impl Cause {
    /// Of a divergence found at an event.
    pub fn of(expected: &Expected, observed: &Observed) -> Cause {
        match (expected, observed) {
            (_, Observed::ChangedFile(_)) => Cause::ChangedFile,
            (
                Expected::Event {
                    need: Need::Unsupported(_) | Need::ReceivingFds(_) | Need::RecordedOutput,
                    ..
                },
                _,
            ) => Cause::RrcLimit,
            _ => Cause::Threads,
        }
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "divergence: ")?;
        if let Some(t) = self.thread {
            write!(f, "thread {t} (recorded tid {})", self.recorded_tid)?;
            if let Some(i) = self.index {
                write!(f, ", event {i}")?;
            }
            write!(f, ": ")?;
        }
        write!(f, "expected {}, observed {}", self.expected, self.observed)
    }
}

/// A short, printable preview of bytes.
pub fn preview(data: &[u8]) -> String {
    let shown: String = data
        .iter()
        .take(40)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if data.len() > 40 {
        format!("\"{shown}\"...")
    } else {
        format!("\"{shown}\"")
    }
}

/// Where two buffers first differ, with a little of each from just
/// before that byte: `at byte N: recorded "...", now "..."`.
pub fn first_difference(recorded: &[u8], now: &[u8]) -> String {
    let at = recorded
        .iter()
        .zip(now)
        .position(|(a, b)| a != b)
        .unwrap_or(recorded.len().min(now.len()));
    let from = at.saturating_sub(8);
    format!(
        "at byte {at}: recorded {}, now {}",
        preview(recorded.get(from..).unwrap_or_default()),
        preview(now.get(from..).unwrap_or_default())
    )
}

/// `name(args) [inputs]` for a syscall as the program made it.
pub fn describe_call(nr: i64, args: &[u64; 6], inputs: &[Vec<u8>]) -> String {
    let mut s = describe_args(nr, args);
    for input in inputs {
        s.push_str(&format!(" {} bytes {}", input.len(), preview(input)));
    }
    s
}

/// How a recorded input shows: its bytes, or what the trace keeps of them.
fn describe_input(input: RecordedInput) -> String {
    match input {
        RecordedInput::Bytes(b) => format!("{} bytes {}", b.len(), preview(b)),
        RecordedInput::Digest(d) => format!("{} bytes (XXH3 {}...)", d.len, d.short_hex()),
        RecordedInput::Malformed => "(a damaged digest)".into(),
    }
}

/// How a recorded input and what the program gives now differ, when the
/// trace kept only a digest of it: the trace cannot say at which byte.
pub fn digest_difference(recorded: &InputDigest, now: &[u8]) -> String {
    format!(
        ": recorded {} bytes with XXH3 {}..., now {} bytes with XXH3 {}... (the trace \
         keeps sent data over {} bytes as a digest; record with rrc-record --full-inputs to \
         see where they differ)",
        recorded.len,
        recorded.short_hex(),
        now.len(),
        InputDigest::of(now).short_hex(),
        rrc_trace::DIGEST_ABOVE
    )
}

/// `name(args)`, the compared arguments only.
fn describe_args(nr: i64, args: &[u64; 6]) -> String {
    let names = model::arg_names(nr);
    let mask = model::compared_args_of(nr, args);
    let shown: Vec<String> = (0..6)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| {
            let v = args[i] as i64;
            let name = names.get(i).copied().unwrap_or("");
            let val = if (-4096..1 << 20).contains(&v) {
                v.to_string()
            } else {
                format!("{:#x}", args[i])
            };
            if name.is_empty() {
                format!("arg{i}={val}")
            } else {
                format!("{name}={val}")
            }
        })
        .collect();
    format!("{}({})", model::name(nr), shown.join(", "))
}

pub fn describe_record(r: &SyscallRecord) -> String {
    let mut s = describe_args(r.nr as i64, &r.args);
    for input in r.recorded_inputs() {
        s.push(' ');
        s.push_str(&describe_input(input));
    }
    format!("{s} = {}", r.ret)
}

pub fn describe_sync_op(code: u32) -> String {
    u8::try_from(code)
        .ok()
        .and_then(SyncOp::from_u8)
        .map_or_else(|| format!("sync op {code}"), |op| op.name().to_string())
}

/// What the recording says comes next, at a divergence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// The thread's next recorded event (described); `None` past its last.
    Next(Option<String>),
    /// A recorded event, and what about it replay needed.
    Event { event: String, need: Need },
    /// The thread's next sync operation.
    SyncOp {
        index: usize,
        op: &'static str,
        object: u64,
    },
    /// No thread or process is created here.
    NoNewThread,
    /// Anything else (deadlock and stall reports).
    Text(String),
}

/// What replay needed of an expected event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// Only the event itself.
    Itself,
    /// A recorded signal to be delivered before this syscall.
    SignalFirst,
    /// The call maps this file.
    Mapping(String),
    /// A call rrc recorded only the return value of (`what` names it).
    Unsupported(String),
    /// recvmsg receiving this many descriptors.
    ReceivingFds(usize),
    /// Writing this many memory regions.
    WritingRegions(usize),
    /// A copy of the mapped file at the recorded address.
    MappedCopy,
    /// recvmsg receiving this descriptor.
    ReceivingFd(i32),
    /// This many recorded events left when the thread ended.
    EventsLeft(usize),
    /// Its bytes to our stdout or stderr, which the recording lacks.
    RecordedOutput,
}

/// What the program did instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A syscall (described), with what differs, if anything.
    Call {
        call: String,
        differs: Option<String>,
    },
    /// A syscall made with the expected signal blocked.
    CallWithSignalBlocked(String),
    /// A signal arrived.
    Signal(i32),
    /// An instruction trapped (rdtsc, rdtscp).
    Instruction(String),
    /// The call returned this value.
    Returned(i64),
    /// The call returned this address.
    ReturnedAddress(i64),
    /// A placeholder descriptor took this number.
    PlaceholderTook(i64),
    /// The thread ended.
    ThreadEnded(ExitStatus),
    /// The program created a thread or process.
    NewThread,
    /// The file a recorded call opened or mapped has changed since, or
    /// is gone: the descriptor is a placeholder.
    ChangedFile(String),
    /// Anything else.
    Text(String),
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Next(Some(event)) => write!(f, "{event}"),
            Expected::Next(None) => write!(f, "the end of the thread's events"),
            Expected::Event { event, need } => match need {
                Need::Itself => write!(f, "{event}"),
                Need::SignalFirst => write!(f, "{event} delivered before this syscall"),
                Need::Mapping(path) => write!(f, "{event} mapping {path}"),
                Need::Unsupported(what) => {
                    write!(f, "{event} ({what}: rrc recorded only its return value)")
                }
                Need::ReceivingFds(n) => write!(f, "{event} receiving {n} descriptors"),
                Need::WritingRegions(n) => write!(f, "{event} writing {n} memory regions"),
                Need::MappedCopy => write!(f, "{event} (a copy of the mapped file)"),
                Need::ReceivingFd(fd) => write!(f, "{event} receiving descriptor {fd}"),
                Need::EventsLeft(n) => write!(f, "{event} ({n} recorded events left)"),
                Need::RecordedOutput => write!(f, "{event} (the bytes it printed)"),
            },
            Expected::SyncOp { index, op, object } => {
                write!(f, "sync op #{index}: {op} on {object:#x}")
            }
            Expected::NoNewThread => write!(f, "no new thread here"),
            Expected::Text(s) => write!(f, "{s}"),
        }
    }
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Observed::Call {
                call,
                differs: None,
            } => write!(f, "{call}"),
            Observed::Call {
                call,
                differs: Some(d),
            } => write!(f, "{call} ({d})"),
            Observed::CallWithSignalBlocked(call) => write!(f, "{call} with the signal blocked"),
            Observed::Signal(sig) => write!(f, "signal {}", signal_name(*sig)),
            Observed::Instruction(insn) => write!(f, "{insn}"),
            Observed::Returned(ret) => write!(f, "it returned {ret}"),
            Observed::ReturnedAddress(ret) => write!(f, "it returned {ret:#x}"),
            Observed::PlaceholderTook(ret) => write!(f, "the placeholder took {ret}"),
            Observed::ThreadEnded(status) => write!(f, "the thread ended ({status})"),
            Observed::NewThread => write!(f, "the program created a thread or process"),
            Observed::ChangedFile(path) => write!(
                f,
                "a placeholder: {path} has changed since it was recorded (or is missing), \
                 and replay needs the same file"
            ),
            Observed::Text(s) => write!(f, "{s}"),
        }
    }
}

/// A recorded event as a divergence names it.
pub fn describe_event(e: &PlannedEvent) -> String {
    match e {
        PlannedEvent::Syscall(r) => describe_record(r),
        PlannedEvent::Tsc(t) => {
            if t.aux.is_some() {
                "rdtscp".into()
            } else {
                "rdtsc".into()
            }
        }
        PlannedEvent::Signal(s) => {
            let at = match s.at {
                SignalPoint::Synchronous => "raised by the thread",
                SignalPoint::SyscallReturn => "at a syscall return",
                SignalPoint::InterruptedCall => "at the return of the call it interrupted",
                SignalPoint::WhileWaiting(_) => "while it waited",
                SignalPoint::SyscallEntry => "at a syscall entry",
                SignalPoint::Elapsed(_) => "while running its own code",
                SignalPoint::AfterReturn(_) => "at a syscall return, its handler alone",
            };
            format!("signal {} ({at})", signal_name(s.signo))
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_divergence_names_thread_event_and_both_sides() {
        let d = Divergence {
            cause: Cause::Threads,
            thread: Some(2),
            recorded_tid: 1234,
            index: Some(7),
            expected: Expected::Next(None).to_string(),
            observed: Observed::Signal(libc::SIGSEGV).to_string(),
        };
        assert_eq!(
            d.to_string(),
            "divergence: thread 2 (recorded tid 1234), event 7: \
             expected the end of the thread's events, observed signal SIGSEGV"
        );
    }

    #[test]
    fn a_send_kept_as_a_digest_is_described_by_its_length_and_digest() {
        let data = vec![7u8; 300];
        let mut r = SyscallRecord {
            thread: 1,
            index: 4,
            nr: libc::SYS_write as u32,
            args: [5, 0x1000, 300, 0, 0, 0],
            ret: 300,
            inputs: vec![data.clone()],
            outputs: Vec::new(),
            interval_ns: 0,
            return_ns: 0,
            order: 9,
            extra: rrc_trace::SyscallExtra::Buffered,
            digested: 0,
        };
        r.digest_sent_data();
        let d = InputDigest::of(&data);
        assert_eq!(
            describe_record(&r),
            format!(
                "write(fd=5, count=300) 300 bytes (XXH3 {}...) = 300",
                d.short_hex()
            )
        );
        let mut other = data.clone();
        other[299] = 8;
        let why = digest_difference(&d, &other);
        assert!(
            why.contains(&format!("recorded 300 bytes with XXH3 {}", d.short_hex()))
                && why.contains(&InputDigest::of(&other).short_hex())
                && why.contains("--full-inputs"),
            "{why}"
        );
    }

    #[test]
    fn a_divergence_without_a_thread_is_about_the_program() {
        let d = Divergence {
            cause: Cause::Threads,
            thread: None,
            recorded_tid: 0,
            index: None,
            expected: "the program to end exited 0".into(),
            observed: "no exit status".into(),
        };
        assert_eq!(
            d.to_string(),
            "divergence: expected the program to end exited 0, observed no exit status"
        );
    }

    #[test]
    fn what_no_other_placing_of_threads_replays_is_told_apart() {
        let at = |need| Expected::Event {
            event: "recvmsg(arg0=4) = 1".into(),
            need,
        };
        let text = Observed::Text("x".into());
        assert_eq!(Cause::of(&at(Need::Itself), &text), Cause::Threads);
        assert_eq!(
            Cause::of(&at(Need::Itself), &Observed::ChangedFile("/lib/x".into())),
            Cause::ChangedFile
        );
        for need in [
            Need::ReceivingFds(2),
            Need::Unsupported("vmsplice".into()),
            Need::RecordedOutput,
        ] {
            assert_eq!(Cause::of(&at(need), &text), Cause::RrcLimit);
        }
        assert_eq!(Cause::of(&Expected::NoNewThread, &text), Cause::Threads);
    }

    #[test]
    fn needs_and_observations_render_as_the_tests_expect() {
        let e = |need| {
            Expected::Event {
                event: "read(fd=3) = 5".into(),
                need,
            }
            .to_string()
        };
        assert_eq!(e(Need::Itself), "read(fd=3) = 5");
        assert_eq!(
            e(Need::Unsupported("unsupported syscall".into())),
            "read(fd=3) = 5 (unsupported syscall: rrc recorded only its return value)"
        );
        assert_eq!(
            e(Need::EventsLeft(3)),
            "read(fd=3) = 5 (3 recorded events left)"
        );
        assert_eq!(
            e(Need::ReceivingFd(4)),
            "read(fd=3) = 5 receiving descriptor 4"
        );
        let call = |differs: Option<&str>| {
            Observed::Call {
                call: "read(fd=4)".into(),
                differs: differs.map(str::to_string),
            }
            .to_string()
        };
        assert_eq!(call(None), "read(fd=4)");
        assert_eq!(
            call(Some("a different syscall")),
            "read(fd=4) (a different syscall)"
        );
        assert_eq!(
            Observed::ReturnedAddress(4096).to_string(),
            "it returned 0x1000"
        );
        assert_eq!(
            Observed::ThreadEnded(ExitStatus::Exited(0)).to_string(),
            format!("the thread ended ({})", ExitStatus::Exited(0))
        );
        assert_eq!(
            Expected::SyncOp {
                index: 2,
                op: "mutex_lock",
                object: 0x10
            }
            .to_string(),
            "sync op #2: mutex_lock on 0x10"
        );
        assert_eq!(signal_name(77), "signal 77");
    }
}
