//! Measuring one program: native runs, one recording, and replays of that
//! recording in every mode.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::exec::{self, Finished};
use crate::modes::Mode;
use crate::programs::BuiltProgram;
use crate::tools::Tools;

/// Lines of a program's output that say how a race resolved.
pub const RACE_LINE_PREFIX: &str = "race ";

/// Longest divergence line kept in a report.
const DIVERGENCE_CHARS: usize = 240;

pub struct Settings<'a> {
    pub tools: &'a Tools,
    pub modes: &'a [Mode],
    pub replay_runs: usize,
    pub native_runs: usize,
    pub timeout: Duration,
    /// Passed to rrc-replay as `--stall-timeout`; `None` leaves its default.
    pub stall_timeout_s: Option<u64>,
    /// Where traces go.
    pub work_dir: &'a Path,
}

#[derive(Debug, Serialize)]
pub struct ProgramReport {
    pub program: String,
    pub models: String,
    pub native: NativeReport,
    pub record: RecordReport,
    pub modes: Vec<ModeReport>,
}

#[derive(Debug, Serialize)]
pub struct NativeReport {
    pub runs: usize,
    /// Runs that exited non-zero or timed out.
    pub failed: usize,
    /// Runs whose race-outcome lines equal the most common ones.
    pub stable: usize,
    /// `stable / runs`.
    pub stability: f64,
    /// How many different race outcomes the runs showed.
    pub distinct_outcomes: usize,
    pub median_wall_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct RecordReport {
    pub wall_ms: f64,
    /// Whether the recorded race outcome is the most common native one.
    pub outcome_is_most_common_native: bool,
    pub race_lines: usize,
    pub trace: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Failures {
    /// rrc-replay reported a divergence.
    pub divergence: usize,
    /// Killed at the timeout.
    pub timeout: usize,
    /// rrc-replay exited 0 but printed something other than the recording.
    pub exit_0_output_differs: usize,
    /// Any other non-zero exit without a divergence line.
    pub other: usize,
}

#[derive(Debug, Serialize)]
pub struct ModeReport {
    pub mode: String,
    pub flags: Vec<String>,
    pub runs: usize,
    pub successes: usize,
    /// `successes / runs`.
    pub success_rate: f64,
    pub failures: Failures,
    pub median_wall_ms: f64,
    /// Median of replay wall time / recording wall time.
    pub median_slowdown: f64,
    /// The first divergence (or other failure) seen in this mode.
    pub first_divergence: Option<String>,
}

/// Measures one program. Errors are infrastructure failures (cannot run
/// the program or rrc-record, the recording failed).
pub fn measure(
    program: &BuiltProgram,
    settings: &Settings,
    progress: &mut Progress,
) -> Result<ProgramReport> {
    let native = run_native(program, settings, progress)?;

    progress.note(format_args!("recording"));
    let trace = settings
        .work_dir
        .join(format!("{}.trace", program.source.name));
    let mut record = Command::new(&settings.tools.record);
    record
        .arg("-o")
        .arg(&trace)
        .arg("--")
        .arg(&program.executable);
    let recorded = exec::run(record, settings.timeout)?;
    if !recorded.succeeded() {
        bail!(
            "recording {} failed ({}): {}",
            program.source.name,
            describe_status(&recorded),
            last_line(&recorded.stderr)
        );
    }
    let recorded_outcome = race_outcome(&recorded.stdout);
    let record_report = RecordReport {
        wall_ms: ms(recorded.wall),
        outcome_is_most_common_native: native.most_common.as_ref() == Some(&recorded_outcome),
        race_lines: recorded_outcome.len(),
        trace: trace.display().to_string(),
    };
    progress.note(format_args!("recorded in {:.0} ms", record_report.wall_ms));

    let mut tallies: Vec<ModeTally> = settings
        .modes
        .iter()
        .map(|_| ModeTally::default())
        .collect();
    for i in 0..settings.replay_runs {
        // Modes take turns, so a change in machine load hits all alike.
        for (mode, tally) in settings.modes.iter().zip(tallies.iter_mut()) {
            let mut replay = Command::new(&settings.tools.replay);
            if let Some(secs) = settings.stall_timeout_s {
                replay.arg("--stall-timeout").arg(secs.to_string());
            }
            replay.args(&mode.flags).arg(&trace);
            let replayed = exec::run(replay, settings.timeout)?;
            tally.add(&replayed, &recorded.stdout, settings.timeout);
        }
        progress.replays(i + 1, settings.replay_runs, settings.modes, &tallies);
    }
    progress.done_replays();

    let modes = settings
        .modes
        .iter()
        .zip(tallies)
        .map(|(mode, tally)| tally.report(mode, recorded.wall))
        .collect();
    Ok(ProgramReport {
        program: program.source.name.into(),
        models: program.source.models.into(),
        native: native.report,
        record: record_report,
        modes,
    })
}

struct NativeResult {
    report: NativeReport,
    most_common: Option<Vec<String>>,
}

fn run_native(
    program: &BuiltProgram,
    settings: &Settings,
    progress: &mut Progress,
) -> Result<NativeResult> {
    let mut outcomes: HashMap<Vec<String>, usize> = HashMap::new();
    let mut walls = Vec::new();
    let mut failed = 0;
    for i in 0..settings.native_runs {
        let run = exec::run(Command::new(&program.executable), settings.timeout)?;
        if !run.succeeded() {
            failed += 1;
        }
        walls.push(ms(run.wall));
        let mut outcome = race_outcome(&run.stdout);
        if !run.succeeded() {
            outcome.push(format!("(failed: {})", describe_status(&run)));
        }
        *outcomes.entry(outcome).or_default() += 1;
        progress.native(i + 1, settings.native_runs);
    }
    let most_common = outcomes
        .iter()
        .max_by_key(|(_, count)| **count)
        .map(|(outcome, count)| (outcome.clone(), *count));
    let stable = most_common.as_ref().map_or(0, |(_, c)| *c);
    let runs = settings.native_runs;
    Ok(NativeResult {
        report: NativeReport {
            runs,
            failed,
            stable,
            stability: ratio(stable, runs),
            distinct_outcomes: outcomes.len(),
            median_wall_ms: median(&mut walls),
        },
        most_common: most_common.map(|(o, _)| o),
    })
}

#[derive(Default)]
struct ModeTally {
    successes: usize,
    runs: usize,
    failures: Failures,
    walls: Vec<Duration>,
    first_divergence: Option<String>,
}

impl ModeTally {
    fn add(&mut self, replayed: &Finished, recorded_stdout: &[u8], timeout: Duration) {
        self.runs += 1;
        self.walls.push(replayed.wall);
        let same_output = replayed.stdout == recorded_stdout;
        if replayed.succeeded() && same_output {
            self.successes += 1;
            return;
        }
        let divergence = divergence_line(&replayed.stderr);
        let description = if replayed.timed_out() {
            self.failures.timeout += 1;
            format!("timed out after {} s", timeout.as_secs())
        } else if let Some(line) = divergence {
            self.failures.divergence += 1;
            line
        } else if replayed.succeeded() {
            self.failures.exit_0_output_differs += 1;
            "rrc-replay exited 0 but its stdout differs from the recording's".into()
        } else {
            self.failures.other += 1;
            format!(
                "{} without a divergence line: {}",
                describe_status(replayed),
                last_line(&replayed.stderr)
            )
        };
        if self.first_divergence.is_none() {
            self.first_divergence = Some(truncate(&description, DIVERGENCE_CHARS));
        }
    }

    fn report(self, mode: &Mode, record_wall: Duration) -> ModeReport {
        let mut walls_ms: Vec<f64> = self.walls.iter().map(|w| ms(*w)).collect();
        let record_ms = ms(record_wall);
        let mut slowdowns: Vec<f64> = walls_ms.iter().map(|w| w / record_ms).collect();
        ModeReport {
            mode: mode.name.clone(),
            flags: mode.flags.clone(),
            runs: self.runs,
            successes: self.successes,
            success_rate: ratio(self.successes, self.runs),
            failures: self.failures,
            median_wall_ms: median(&mut walls_ms),
            median_slowdown: median(&mut slowdowns),
            first_divergence: self.first_divergence,
        }
    }
}

/// The lines saying how each race resolved.
pub fn race_outcome(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.starts_with(RACE_LINE_PREFIX))
        .map(String::from)
        .collect()
}

fn divergence_line(stderr: &[u8]) -> Option<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .find(|l| l.starts_with("divergence:"))
        .map(String::from)
}

fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)");
    truncate(line, DIVERGENCE_CHARS)
}

fn describe_status(run: &Finished) -> String {
    match run.status {
        None => "timed out".into(),
        Some(status) => status.to_string(),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.into();
    }
    let mut cut: String = text.chars().take(max_chars).collect();
    cut.push('…');
    cut
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Progress lines on stderr: rewritten in place on a terminal, otherwise
/// printed now and then.
pub struct Progress {
    terminal: bool,
    label: String,
    /// Whether a line rewritten in place is showing.
    open_line: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            label: String::new(),
            open_line: false,
        }
    }

    pub fn start_program(&mut self, index: usize, count: usize, name: &str) {
        self.label = format!("[{}/{} {}]", index + 1, count, name);
    }

    pub fn note(&mut self, message: std::fmt::Arguments) {
        self.finish_line();
        eprintln!("{} {}", self.label, message);
    }

    fn native(&mut self, done: usize, total: usize) {
        self.update(done, total, format_args!("native run {done}/{total}"));
    }

    fn replays(&mut self, done: usize, total: usize, modes: &[Mode], tallies: &[ModeTally]) {
        let parts: Vec<String> = modes
            .iter()
            .zip(tallies)
            .map(|(m, t)| format!("{} {}/{} ok", m.name, t.successes, t.runs))
            .collect();
        self.update(
            done,
            total,
            format_args!("replay {done}/{total}: {}", parts.join(", ")),
        );
    }

    fn done_replays(&mut self) {
        self.finish_line();
    }

    fn update(&mut self, done: usize, total: usize, message: std::fmt::Arguments) {
        if self.terminal {
            eprint!("\r\x1b[2K{} {}", self.label, message);
            let _ = std::io::stderr().flush();
            self.open_line = true;
            if done == total {
                self.finish_line();
            }
        } else if done == total || done.is_multiple_of(10) {
            eprintln!("{} {}", self.label, message);
        }
    }

    fn finish_line(&mut self) {
        if self.open_line {
            eprintln!();
            self.open_line = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_race_lines() {
        let out = b"info x\nrace a round 00: 1\nrace a round 01: 2\nother\n";
        assert_eq!(
            race_outcome(out),
            ["race a round 00: 1", "race a round 01: 2"]
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}
