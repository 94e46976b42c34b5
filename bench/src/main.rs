//! rrc-bench: how much recording and replaying with rrc costs, measured
//! against native runs of the same workloads in the same invocation.
//!
//! ```text
//! cargo run --release -p rrc-bench -- [--json] [--quick] [--only NAME,...]
//! ```
//!
//! Every benchmark interleaves its native, recorded and replayed runs,
//! repeats them (3 times) and reports medians. The table goes to stdout;
//! with `--json` the JSON document goes to stdout and the table to
//! stderr. A benchmark whose programs are not installed is skipped; the
//! exit status is non-zero only when a benchmark failed (rrc-record or
//! rrc-replay failing, or the harness itself).

mod cpu_bench;
mod locks_bench;
mod memcached_bench;
mod one_shot;
mod process;
mod redis_bench;
mod report;
mod rrc_tools;
mod server_runs;
mod syscalls_bench;

use std::fs;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use tempfile::TempDir;

use report::{BenchmarkResult, Machine, Report, Status};
use rrc_tools::{is_rrc_failure, RrcTools};

/// How often each benchmark's native/recorded/replayed runs are repeated.
const REPEATS: usize = 3;

#[derive(Parser)]
#[command(
    name = "rrc-bench",
    about = "Measures rrc's recording and replay overhead against native runs"
)]
struct Cli {
    /// Print the results as JSON on stdout (the table then goes to stderr).
    #[arg(long)]
    json: bool,
    /// Much smaller workloads: a smoke test, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Run only these benchmarks (syscalls, locks, cpu, memcached, redis).
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    only: Vec<String>,
}

/// What every benchmark gets to run with.
pub struct BenchContext {
    pub tools: RrcTools,
    pub quick: bool,
    pub repeats: usize,
}

impl BenchContext {
    /// A fresh temporary directory for one benchmark's programs, traces
    /// and logs, deleted when dropped.
    pub fn scratch_dir(&self, benchmark: &str) -> Result<TempDir> {
        tempfile::Builder::new()
            .prefix(&format!("rrc-bench-{benchmark}-"))
            .tempdir()
            .context("cannot create a temporary directory")
    }

    /// Longest one program, recording or replay may run.
    pub fn run_timeout(&self) -> Duration {
        Duration::from_secs(if self.quick { 120 } else { 600 })
    }

    pub fn progress(&self, benchmark: &str, message: &str) {
        eprintln!("rrc-bench: {benchmark}: {message}");
    }
}

type BenchmarkFn = fn(&BenchContext) -> Result<BenchmarkResult>;

const BENCHMARKS: [(&str, BenchmarkFn); 5] = [
    (syscalls_bench::NAME, syscalls_bench::run),
    (locks_bench::NAME, locks_bench::run),
    (cpu_bench::NAME, cpu_bench::run),
    (memcached_bench::NAME, memcached_bench::run),
    (redis_bench::NAME, redis_bench::run),
];

/// "YYYY-MM-DD HH:MM" in UTC for seconds since the epoch.
fn utc_date(seconds_since_epoch: u64) -> String {
    let days = (seconds_since_epoch / 86_400) as i64;
    let seconds_of_day = seconds_since_epoch % 86_400;
    // Howard Hinnant's civil_from_days.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        seconds_of_day / 3600,
        seconds_of_day % 3600 / 60
    )
}

fn describe_machine() -> Machine {
    let cpu_model = fs::read_to_string("/proc/cpuinfo").ok().and_then(|info| {
        info.lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_string())
    });
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|release| release.trim().to_string());
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        cpu_model,
        kernel,
        load_average_at_start: load_average(),
        load_average_at_end: None,
    }
}

/// The load average over the last minute.
fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
}

fn run_benchmarks(cli: &Cli) -> Result<(Report, bool)> {
    for name in &cli.only {
        if !BENCHMARKS.iter().any(|(known, _)| known == name) {
            let known: Vec<&str> = BENCHMARKS.iter().map(|(known, _)| *known).collect();
            bail!(
                "unknown benchmark {name:?}; the benchmarks are {}",
                known.join(", ")
            );
        }
    }
    let context = BenchContext {
        tools: rrc_tools::locate()?,
        quick: cli.quick,
        repeats: REPEATS,
    };
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    let mut machine = describe_machine();

    let mut results = Vec::new();
    let mut any_failed = false;
    for (name, run) in BENCHMARKS {
        if !cli.only.is_empty() && !cli.only.iter().any(|only| only == name) {
            continue;
        }
        context.progress(name, "starting");
        let result = match run(&context) {
            Ok(result) => result,
            Err(error) => {
                let status = if is_rrc_failure(&error) {
                    Status::RrcFailed
                } else {
                    Status::Error
                };
                BenchmarkResult::not_ok(name, status, format!("{error:#}"))
            }
        };
        match (result.status, &result.message) {
            (Status::Ok, _) => context.progress(name, "done"),
            (status, Some(message)) => {
                any_failed |= status != Status::Skipped;
                let what = match status {
                    Status::Skipped => "skipped",
                    Status::RrcFailed => "FAILED under rrc",
                    Status::Error | Status::Ok => "FAILED",
                };
                context.progress(name, &format!("{what}: {message}"));
            }
            (status, None) => any_failed |= status != Status::Skipped,
        }
        results.push(result);
    }
    machine.load_average_at_end = load_average();
    let report = Report {
        date: utc_date(started.as_secs()),
        quick: cli.quick,
        repeats: REPEATS,
        machine,
        benchmarks: results,
    };
    Ok((report, any_failed))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = process::kill_children_on_interrupt() {
        eprintln!("rrc-bench: {error:#}");
        return ExitCode::FAILURE;
    }
    let (report, any_failed) = match run_benchmarks(&cli) {
        Ok(done) => done,
        Err(error) => {
            eprintln!("rrc-bench: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let table = report.table();
    if cli.json {
        eprint!("{table}");
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("rrc-bench: cannot encode the results as JSON: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{table}");
    }
    if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14 22:13");
    }
}
