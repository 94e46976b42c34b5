//! racebench: how often rrc replays programs with infrequent data races
//! faithfully, in each replay mode.
//!
//! For every program: build it with gcc, run it natively (how stable are
//! its race outcomes?), record it once with rrc-record, then replay the
//! recording N times per mode with rrc-replay and count faithful replays
//! (exit 0 and the recording's stdout).

mod bench;
mod exec;
mod modes;
mod programs;
mod report;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

use crate::bench::{Progress, Settings};
use crate::modes::Mode;
use crate::report::BenchReport;

#[derive(Parser, Debug)]
#[command(
    name = "racebench",
    about = "Measures how often rrc faithfully replays programs with infrequent data races",
    after_help = "Modes: intervals (rrc-replay's default) and no-intervals (--no-intervals) are \
                  built in. Define more with --mode NAME=FLAG1,FLAG2, e.g. \
                  --mode thread-anchor=--anchor=thread. rrc-record and rrc-replay are taken from \
                  $RRC_BIN_DIR, or else from racebench's own directory."
)]
struct Cli {
    /// Replays per program and mode.
    #[arg(long, default_value_t = 20)]
    runs: usize,

    /// Native runs per program (default: the same as --runs).
    #[arg(long)]
    native_runs: Option<usize>,

    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,

    /// Programs to measure, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    programs: Option<Vec<String>>,

    /// Modes to run, comma-separated (default: intervals,no-intervals).
    #[arg(long, value_delimiter = ',')]
    modes: Option<Vec<String>>,

    /// Defines a mode as NAME=FLAGS (rrc-replay flags, comma-separated);
    /// repeatable. Defined modes run in addition to those of --modes.
    #[arg(long = "mode", value_name = "NAME=FLAGS", value_parser = modes::parse_definition)]
    mode_definitions: Vec<Mode>,

    /// Seconds before a run (native, record or replay) is killed; a replay
    /// killed this way counts as a failure.
    #[arg(long, default_value_t = 60)]
    timeout: u64,

    /// rrc-replay's --stall-timeout, in seconds (0: leave rrc-replay's
    /// default). A replay whose race went the other way can leave a thread
    /// held until the stall timeout; a short one keeps runs quick.
    #[arg(long, default_value_t = 5)]
    stall_timeout: u64,

    /// Multiplies every race's timing (the gaps between the racing sides)
    /// by this factor: 0.1 makes the races ten times tighter.
    #[arg(long, default_value_t = 1.0, value_parser = parse_time_scale)]
    time_scale: f64,

    /// Keep the built programs and the traces in this directory instead of
    /// a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,

    /// List the programs and exit.
    #[arg(long)]
    list: bool,
}

/// A factor between 0.01 and 100, kept as whole percent.
fn parse_time_scale(text: &str) -> Result<f64, String> {
    let factor: f64 = text.parse().map_err(|e| format!("not a number: {e}"))?;
    if !(0.01..=100.0).contains(&factor) {
        return Err(format!("{factor} is outside 0.01..100"));
    }
    Ok(factor)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("racebench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if cli.list {
        for p in programs::PROGRAMS {
            println!("{:<16} {}", p.name, p.models);
        }
        return Ok(());
    }
    let started = Instant::now();
    let selected = programs::select(cli.programs.as_deref())?;
    let modes = modes::resolve(cli.modes.as_deref(), &cli.mode_definitions)?;
    let tools = tools::locate()?;

    let temp;
    let work_dir = match &cli.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("racebench-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let time_scale_percent = (cli.time_scale * 100.0).round() as u32;
    let built = programs::build(&selected, &work_dir, time_scale_percent)?;
    eprintln!(
        "racebench: {} programs, {} replays each in modes {}; rrc tools from {}",
        built.len(),
        cli.runs,
        modes
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        tools
            .replay
            .parent()
            .map_or_else(|| "?".into(), |d| d.display().to_string())
    );

    let stall_timeout_s = (cli.stall_timeout > 0).then_some(cli.stall_timeout);
    let native_runs = cli.native_runs.unwrap_or(cli.runs);
    let settings = Settings {
        tools: &tools,
        modes: &modes,
        replay_runs: cli.runs,
        native_runs,
        timeout: Duration::from_secs(cli.timeout),
        stall_timeout_s,
        work_dir: &work_dir,
    };
    let mut progress = Progress::new();
    let mut reports = Vec::new();
    for (i, program) in built.iter().enumerate() {
        progress.start_program(i, built.len(), program.source.name);
        reports.push(bench::measure(program, &settings, &mut progress)?);
    }
    let report = BenchReport {
        runs: cli.runs,
        native_runs,
        time_scale: f64::from(time_scale_percent) / 100.0,
        timeout_s: cli.timeout,
        stall_timeout_s,
        modes,
        programs: reports,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    if cli.json {
        let json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
        println!("{json}");
    } else {
        print!("{}", report::table(&report));
    }
    if let Some(dir) = &cli.keep {
        eprintln!("racebench: programs and traces kept in {}", dir.display());
    }
    Ok(())
}
