//! The human-readable form of a [`TraceSummary`].

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use crate::names::signal_name;
use crate::summary::{ExitSummary, ThreadSummary, TraceSummary};
use crate::units::{format_bytes, format_duration_ns, format_unix_time_ns};

/// Warnings listed before the rest are only counted.
const SHOWN_WARNINGS: usize = 20;

pub fn write_summary(out: &mut impl Write, path: &Path, summary: &TraceSummary) -> io::Result<()> {
    write_header_block(out, path, summary)?;
    write_threads(out, &summary.threads, summary.processes)?;
    write_counts(out, "Syscalls", &summary.syscalls)?;
    let total: u64 = summary.syscalls.values().sum();
    writeln!(
        out,
        "  ({} buffered by the fast path, {} trapped)",
        summary.buffered_syscalls,
        total.saturating_sub(summary.buffered_syscalls)
    )?;
    write_counts(out, "Sync operations", &summary.sync_ops)?;
    write_counts(out, "Signals", &summary.signals)?;
    write_activity(out, summary)?;
    write_warnings(out, &summary.warnings)?;
    write_unknown_syscalls(out, &summary.unknown_syscalls)
}

fn write_header_block(out: &mut impl Write, path: &Path, summary: &TraceSummary) -> io::Result<()> {
    writeln!(
        out,
        "Trace        {}  ({}, format version {}, recorded by rrc {})",
        path.display(),
        format_bytes(summary.trace_bytes),
        summary.format_version,
        summary.rrc_version
    )?;
    writeln!(out, "Status       {}", status_text(summary))?;
    writeln!(out, "Program      {}", command_line(&summary.program))?;
    writeln!(out, "Executable   {}", shell_word(&summary.exe))?;
    writeln!(out, "Directory    {}", shell_word(&summary.cwd))?;
    if summary.serialized {
        writeln!(
            out,
            "Schedule     serialised: one thread at a time (--serialize)"
        )?;
    }
    if !summary.inherited_fds.is_empty() {
        let fds: Vec<String> = summary.inherited_fds.iter().map(i32::to_string).collect();
        writeln!(out, "Inherited    descriptors {}", fds.join(", "))?;
    }
    writeln!(
        out,
        "Started      {}",
        format_unix_time_ns(summary.start_time_unix_ns)
    )?;
    writeln!(out, "Exit         {}", exit_text(summary))
}

fn status_text(summary: &TraceSummary) -> String {
    match &summary.damage {
        None => "complete".to_string(),
        Some(damage) => format!(
            "INCOMPLETE, {} of {} intact: {damage}",
            format_bytes(summary.intact_bytes),
            format_bytes(summary.trace_bytes)
        ),
    }
}

fn exit_text(summary: &TraceSummary) -> String {
    let how = match summary.exit_status {
        Some(ExitSummary::Exited(code)) => format!("exited with status {code}"),
        Some(ExitSummary::Signaled(signo)) => {
            format!("killed by {} ({signo})", signal_name(signo))
        }
        None => return "unknown: the trace is incomplete".to_string(),
    };
    match summary.duration_ns {
        Some(ns) => format!("{how} after {}", format_duration_ns(ns)),
        None => how,
    }
}

/// The arguments joined by spaces, each quoted for a POSIX shell when it
/// would not read back as one word.
fn command_line(program: &[String]) -> String {
    let words: Vec<String> = program.iter().map(|arg| shell_word(arg)).collect();
    words.join(" ")
}

fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-+=./:,@%".contains(c));
    if plain {
        arg.to_string()
    } else if arg.chars().any(char::is_control) {
        // A trace is data from anywhere: escape sequences in it must not
        // reach the terminal. Bash's $'...' reads this back as the word.
        let mut quoted = String::from("$'");
        for c in arg.chars() {
            match c {
                '\\' => quoted.push_str("\\\\"),
                '\'' => quoted.push_str("\\'"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        quoted.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => quoted.push(c),
            }
        }
        quoted.push('\'');
        quoted
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn write_threads(
    out: &mut impl Write,
    threads: &[ThreadSummary],
    processes: usize,
) -> io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "Threads: {} in {}",
        threads.len(),
        plural(processes as u64, "process", "processes")
    )?;
    if threads.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "  {:<7} {:<8} {:<7} {:>8} {:>8} {:>9} {:>8} {:>9}  exited",
        "thread", "process", "parent", "tid", "pid", "syscalls", "signals", "sync ops"
    )?;
    for thread in threads {
        write_thread_row(out, thread)?;
    }
    Ok(())
}

fn write_thread_row(out: &mut impl Write, thread: &ThreadSummary) -> io::Result<()> {
    writeln!(
        out,
        "  {:<7} {:<8} {:<7} {:>8} {:>8} {:>9} {:>8} {:>9}  {}",
        format!("t{}", thread.thread),
        or_dash(thread.process.map(|p| format!("p{p}"))),
        or_dash(thread.parent.map(|t| format!("t{t}"))),
        or_dash(thread.tid.map(|tid| tid.to_string())),
        or_dash(thread.pid.map(|pid| pid.to_string())),
        thread.syscalls,
        thread.signals,
        thread.sync_ops,
        if thread.exited { "yes" } else { "no" }
    )
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_string())
}

/// A titled list of counts, largest first (ties by name).
fn write_counts(
    out: &mut impl Write,
    title: &str,
    counts: &BTreeMap<String, u64>,
) -> io::Result<()> {
    let total: u64 = counts.values().sum();
    writeln!(out)?;
    writeln!(
        out,
        "{title}: {total} in total, {}",
        plural(counts.len() as u64, "kind", "kinds")
    )?;
    let mut by_count: Vec<(&String, &u64)> = counts.iter().collect();
    by_count.sort_by(|(name_a, count_a), (name_b, count_b)| {
        count_b.cmp(count_a).then_with(|| name_a.cmp(name_b))
    });
    for (name, count) in by_count {
        writeln!(out, "  {count:>10}  {name}")?;
    }
    Ok(())
}

fn write_activity(out: &mut impl Write, summary: &TraceSummary) -> io::Result<()> {
    let intervals = &summary.intervals;
    writeln!(out)?;
    if intervals.count == 0 {
        writeln!(out, "Syscall intervals: none recorded")?;
    } else {
        writeln!(
            out,
            "Syscall intervals: median {}, p99 {}, max {} over {}",
            format_duration_ns(intervals.median_ns),
            format_duration_ns(intervals.p99_ns),
            format_duration_ns(intervals.max_ns),
            plural(intervals.count, "syscall", "syscalls")
        )?;
    }
    writeln!(
        out,
        "Syscall data: {} from the kernel, {} checked on the way in ({} of it kept as XXH3-128 digests)",
        format_bytes(summary.bytes.syscall_outputs),
        format_bytes(summary.bytes.syscall_inputs),
        format_bytes(summary.bytes.syscall_inputs_digested)
    )?;
    writeln!(
        out,
        "Time-stamp counter reads (rdtsc): {}",
        summary.tsc_reads
    )
}

fn write_warnings(out: &mut impl Write, warnings: &[String]) -> io::Result<()> {
    if warnings.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "Warnings: {}", warnings.len())?;
    for warning in warnings.iter().take(SHOWN_WARNINGS) {
        writeln!(out, "  {warning}")?;
    }
    if warnings.len() > SHOWN_WARNINGS {
        writeln!(
            out,
            "  ... and {} more (all of them are in --json)",
            warnings.len() - SHOWN_WARNINGS
        )?;
    }
    Ok(())
}

fn write_unknown_syscalls(out: &mut impl Write, unknown: &[String]) -> io::Result<()> {
    if unknown.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "Syscalls unknown to rrc (only their results were recorded): {}",
        unknown.join(", ")
    )
}

fn plural(count: u64, one: &str, many: &str) -> String {
    if count == 1 {
        format!("{count} {one}")
    } else {
        format!("{count} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        let program = vec!["./prog".to_string(), "a b".to_string(), "it's".to_string()];
        assert_eq!(command_line(&program), r"./prog 'a b' 'it'\''s'");
        let hostile = vec!["\u{1b}]0;owned\u{7}".to_string(), "a'\u{9b}b".to_string()];
        let shown = command_line(&hostile);
        assert_eq!(shown, r"$'\x1b]0;owned\x07' $'a\'\xc2\x9bb'");
        assert!(!shown.chars().any(char::is_control));
        assert_eq!(command_line(&[String::new()]), "''");
    }
}
