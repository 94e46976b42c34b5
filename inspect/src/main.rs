//! rrc-inspect: what an rrc trace holds, as a summary (human or JSON) or as
//! one line per event.
//!
//! Exit status: 0 for a complete trace; 1 when the trace cannot be read at
//! all, or when only a damaged prefix of it could be (then what was read is
//! printed first); 2 for a bad command line. Every error is one line on
//! stderr beginning `rrc-inspect: error: `.

mod events;
mod human;
mod names;
mod source;
mod summary;
mod units;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use rrc_trace::{ThreadId, TraceError};

use crate::source::OpenedTrace;
use crate::summary::SummaryBuilder;

#[derive(Debug, Parser)]
#[command(name = "rrc-inspect", version, about = "Show what an rrc trace holds")]
struct Cli {
    /// Trace file written by rrc-record.
    #[arg(value_name = "TRACE")]
    trace: PathBuf,

    /// Print the summary as one JSON object.
    #[arg(long, conflicts_with = "events")]
    json: bool,

    /// List every event, one line each, in trace order.
    #[arg(long)]
    events: bool,

    /// With --events: only the events of this logical thread.
    #[arg(long, value_name = "N", requires = "events")]
    thread: Option<ThreadId>,
}

/// How a run that could open the trace ended.
enum Verdict {
    /// The whole trace was read.
    Complete,
    /// Only a prefix was readable; this says why.
    Damaged(TraceError),
    /// Whoever read our output stopped reading (`| head`).
    OutputClosed,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return report_usage_error(err),
    };
    match run(&cli) {
        Ok(Verdict::Complete | Verdict::OutputClosed) => ExitCode::SUCCESS,
        Ok(Verdict::Damaged(damage)) => report_error(&damage.to_string()),
        Err(err) => report_error(&format!("{err:#}")),
    }
}

/// Help and version go to stdout as usual; a bad command line is one line
/// on stderr, like every other error, with clap's exit status (2).
fn report_usage_error(err: clap::Error) -> ExitCode {
    if !err.use_stderr() {
        err.exit();
    }
    print_error_line(&format!("{}; try --help", usage_error_line(&err)));
    ExitCode::from(USAGE_ERROR_STATUS)
}

/// Exit status for a bad command line, as clap itself uses.
const USAGE_ERROR_STATUS: u8 = 2;

/// clap's message without its `error:` prefix, usage block and advice,
/// folded onto one line.
fn usage_error_line(err: &clap::Error) -> String {
    let rendered = err.to_string();
    let message = rendered.split("\n\nUsage:").next().unwrap_or_default();
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|line| !is_usage_advice(line))
        .collect();
    let one_line = lines.join(" ");
    match one_line.strip_prefix("error: ") {
        Some(rest) => rest.to_string(),
        None => one_line,
    }
}

fn is_usage_advice(line: &str) -> bool {
    line.is_empty() || line.starts_with("tip:") || line.starts_with("For more information")
}

fn report_error(message: &str) -> ExitCode {
    print_error_line(message);
    ExitCode::FAILURE
}

/// One line on stderr, whatever the message holds. A closed stderr is
/// ignored: the exit status still tells.
fn print_error_line(message: &str) {
    let one_line = message.replace(['\n', '\r'], " ");
    let _ = writeln!(io::stderr(), "rrc-inspect: error: {one_line}");
}

fn run(cli: &Cli) -> anyhow::Result<Verdict> {
    let trace = OpenedTrace::open(&cli.trace)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let printed = if cli.events {
        print_events(trace, cli.thread, &mut out)
    } else {
        print_summary(trace, &cli.trace, cli.json, &mut out)
    };
    match printed.and_then(|damage| out.flush().map(|()| damage)) {
        Ok(None) => Ok(Verdict::Complete),
        Ok(Some(damage)) => Ok(Verdict::Damaged(damage)),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(Verdict::OutputClosed),
        Err(err) => Err(err).context("cannot write to standard output"),
    }
}

/// Prints one line per event (of `thread` only, when given); returns the
/// damage that stopped reading, if any.
fn print_events(
    trace: OpenedTrace,
    thread: Option<ThreadId>,
    out: &mut impl Write,
) -> io::Result<Option<TraceError>> {
    let end = trace.for_each_record(|record| {
        let other_thread = matches!(
            (thread, events::record_thread(record)),
            (Some(wanted), Some(actual)) if wanted != actual
        );
        if other_thread {
            return Ok(());
        }
        events::write_event(out, record)
    })?;
    Ok(end.damage)
}

/// Prints the summary of the readable prefix; returns the damage that
/// stopped reading, if any.
fn print_summary(
    trace: OpenedTrace,
    path: &Path,
    json: bool,
    out: &mut impl Write,
) -> io::Result<Option<TraceError>> {
    let file_size = trace.file_size;
    let mut builder = SummaryBuilder::new(trace.header().clone());
    let end = trace.for_each_record(|record| {
        builder.observe(record);
        Ok(())
    })?;
    let summary = builder.finish(end.intact_bytes, end.damage.as_ref(), file_size);
    if json {
        serde_json::to_writer_pretty(&mut *out, &summary)?;
        writeln!(out)?;
    } else {
        human::write_summary(out, path, &summary)?;
    }
    Ok(end.damage)
}
