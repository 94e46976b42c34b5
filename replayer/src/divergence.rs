//! Divergence reports: where replay stopped matching the recording, named
//! by thread and event index, expected versus observed.

use rrc_interposer::model;
use rrc_trace::{SyncOp, SyscallRecord, ThreadId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub thread: Option<ThreadId>,
    /// The tid the thread had when recorded.
    pub recorded_tid: i32,
    pub index: Option<u64>,
    pub expected: String,
    pub observed: String,
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
    let names = model::arg_names(nr);
    let mask = model::compared_args(nr);
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
    let mut s = format!("{}({})", model::name(nr), shown.join(", "));
    for input in inputs {
        s.push_str(&format!(" {} bytes {}", input.len(), preview(input)));
    }
    s
}

pub fn describe_record(r: &SyscallRecord) -> String {
    format!(
        "{} = {}",
        describe_call(r.nr as i64, &r.args, &r.inputs),
        r.ret
    )
}

pub fn describe_sync_op(code: u32) -> String {
    u8::try_from(code)
        .ok()
        .and_then(SyncOp::from_u8)
        .map_or_else(|| format!("sync op {code}"), |op| op.name().to_string())
}
