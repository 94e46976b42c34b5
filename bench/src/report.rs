//! The results of the benchmarks: their data model, the Markdown table
//! and the JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// The median of `samples` (the mean of the middle two for an even
/// count); `None` when there are none.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let count = sorted.len();
    match count {
        0 => None,
        _ if count % 2 == 1 => Some(sorted[count / 2]),
        _ => Some((sorted[count / 2 - 1] + sorted[count / 2]) / 2.0),
    }
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d != 0.0 => Some(n / d),
        _ => None,
    }
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// A program it needs is not installed.
    Skipped,
    /// rrc-record or rrc-replay failed.
    RrcFailed,
    /// The harness itself failed (e.g. a native run or gcc).
    Error,
}

/// The per-run values behind one metric, in run order.
#[derive(Serialize, Default, Clone)]
pub struct Samples {
    pub native: Vec<f64>,
    pub recorded: Vec<f64>,
    pub replayed: Vec<f64>,
}

/// One quantity measured natively, recorded and (optionally) replayed.
/// Each value is the median of its samples; each ratio divides two of
/// those medians.
#[derive(Serialize, Clone)]
pub struct Metric {
    pub name: String,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub native: Option<f64>,
    pub recorded: Option<f64>,
    pub replayed: Option<f64>,
    /// The rrc-replay flags of the replayed runs ("" for the defaults).
    pub replay_flags: Option<String>,
    pub recorded_vs_native: Option<f64>,
    pub replayed_vs_native: Option<f64>,
    pub replayed_vs_recorded: Option<f64>,
    pub samples: Samples,
}

impl Metric {
    /// Builds a metric from per-run samples; an empty sample list (e.g.
    /// `replayed` where nothing is replayed) gives no value.
    pub fn from_samples(
        name: impl Into<String>,
        unit: &'static str,
        higher_is_better: bool,
        samples: Samples,
        replay_flags: Option<&[&str]>,
    ) -> Metric {
        let native = median(&samples.native);
        let recorded = median(&samples.recorded);
        let replayed = median(&samples.replayed);
        Metric {
            name: name.into(),
            unit,
            higher_is_better,
            native,
            recorded,
            replayed,
            replay_flags: replayed.and(replay_flags.map(|flags| flags.join(" "))),
            recorded_vs_native: ratio(recorded, native),
            replayed_vs_native: ratio(replayed, native),
            replayed_vs_recorded: ratio(replayed, recorded),
            samples,
        }
    }
}

/// A size figure about the traces (no native counterpart).
#[derive(Serialize, Clone)]
pub struct TraceFigure {
    pub name: String,
    pub unit: &'static str,
    pub value: f64,
    pub samples: Vec<f64>,
}

impl TraceFigure {
    /// The median of `samples`; `None` when there are none.
    pub fn from_samples(
        name: impl Into<String>,
        unit: &'static str,
        samples: Vec<f64>,
    ) -> Option<TraceFigure> {
        Some(TraceFigure {
            name: name.into(),
            unit,
            value: median(&samples)?,
            samples,
        })
    }
}

#[derive(Serialize)]
pub struct BenchmarkResult {
    pub name: &'static str,
    pub status: Status,
    /// Why it was skipped or failed.
    pub message: Option<String>,
    /// Workload sizes and other settings, for reproducing the numbers.
    pub parameters: BTreeMap<String, Value>,
    pub metrics: Vec<Metric>,
    pub trace: Vec<TraceFigure>,
}

impl BenchmarkResult {
    pub fn new(name: &'static str) -> BenchmarkResult {
        BenchmarkResult {
            name,
            status: Status::Ok,
            message: None,
            parameters: BTreeMap::new(),
            metrics: Vec::new(),
            trace: Vec::new(),
        }
    }

    pub fn not_ok(name: &'static str, status: Status, message: String) -> BenchmarkResult {
        BenchmarkResult {
            status,
            message: Some(message),
            ..BenchmarkResult::new(name)
        }
    }

    pub fn parameter(&mut self, key: &str, value: impl Into<Value>) {
        self.parameters.insert(key.to_string(), value.into());
    }
}

#[derive(Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub kernel: Option<String>,
    /// Load average over the last minute when the bench started: other
    /// work on the machine skews the numbers.
    pub load_average_at_start: Option<f64>,
    pub load_average_at_end: Option<f64>,
}

#[derive(Serialize)]
pub struct Report {
    /// UTC, "YYYY-MM-DD HH:MM".
    pub date: String,
    pub quick: bool,
    pub repeats: usize,
    pub machine: Machine,
    pub benchmarks: Vec<BenchmarkResult>,
}

/// A value with three significant digits (no fewer integer digits).
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn format_ratio(ratio: Option<f64>) -> String {
    match ratio {
        Some(r) if r >= 100.0 => format!("{r:.0}x"),
        Some(r) if r >= 10.0 => format!("{r:.1}x"),
        Some(r) => format!("{r:.2}x"),
        None => "-".to_string(),
    }
}

fn format_load(load: Option<f64>) -> String {
    load.map_or_else(|| "unknown".to_string(), |load| format!("{load:.2}"))
}

fn format_option(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), format_value)
}

/// The table's column titles.
const TABLE_HEADER: [&str; 9] = [
    "benchmark",
    "metric",
    "unit",
    "native",
    "recorded",
    "replayed",
    "rec/native",
    "replay/native",
    "replay/rec",
];

/// A table row.
type Row = [String; 9];

/// The row saying a benchmark did not run to completion, or `None` for
/// one whose status is ok.
fn status_row(benchmark: &BenchmarkResult) -> Option<Row> {
    let status = match benchmark.status {
        Status::Ok => return None,
        Status::Skipped => "skipped",
        Status::RrcFailed => "RRC FAILED",
        Status::Error => "error",
    };
    Some([
        benchmark.name.to_string(),
        status.to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    ])
}

/// The row of a trace figure: it has a recorded value only.
fn trace_row(benchmark: &BenchmarkResult, figure: &TraceFigure) -> Row {
    [
        benchmark.name.to_string(),
        figure.name.clone(),
        figure.unit.to_string(),
        "-".to_string(),
        format_value(figure.value),
        "-".to_string(),
        "-".to_string(),
        "-".to_string(),
        "-".to_string(),
    ]
}

/// `header` and `rows` as a Markdown table, each column as wide as its
/// widest cell.
fn markdown_table(header: [&str; 9], rows: &[Row]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    // Columns after the unit hold numbers: right-aligned.
    let numeric = |column: usize| column >= 3;
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::from("|");
        for (column, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if numeric(column) {
                let _ = write!(text, " {cell:>width$} |");
            } else {
                let _ = write!(text, " {cell:<width$} |");
            }
        }
        out.push_str(&text);
        out.push('\n');
    };
    line(&header.map(str::to_string));
    let separator: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(column, width)| {
            if numeric(column) {
                format!("{}:", "-".repeat(width - 1))
            } else {
                "-".repeat(*width)
            }
        })
        .collect();
    line(&separator);
    for row in rows {
        line(row);
    }
    out
}

impl Report {
    /// The results as a Markdown table, followed by each benchmark's
    /// parameters and any skip or failure messages.
    pub fn table(&self) -> String {
        let mut out = markdown_table(TABLE_HEADER, &self.rows());
        self.write_notes(&mut out);
        out
    }

    /// The table's rows, benchmark by benchmark: its status (unless ok),
    /// its metrics, then its trace figures.
    fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        for benchmark in &self.benchmarks {
            rows.extend(status_row(benchmark));
            for metric in &benchmark.metrics {
                rows.push(self.metric_row(benchmark, metric));
            }
            for figure in &benchmark.trace {
                rows.push(trace_row(benchmark, figure));
            }
        }
        rows
    }

    /// The row of one metric: its three values and their ratios.
    fn metric_row(&self, benchmark: &BenchmarkResult, metric: &Metric) -> Row {
        let replay_note = metric
            .replay_flags
            .as_deref()
            .filter(|flags| !flags.is_empty());
        [
            benchmark.name.to_string(),
            metric.name.clone(),
            metric.unit.to_string(),
            self.cell(metric.native, &metric.samples.native, None),
            self.cell(metric.recorded, &metric.samples.recorded, None),
            self.cell(metric.replayed, &metric.samples.replayed, replay_note),
            format_ratio(metric.recorded_vs_native),
            format_ratio(metric.replayed_vs_native),
            format_ratio(metric.replayed_vs_recorded),
        ]
    }

    /// A metric's value with its notes: a median of fewer runs than the
    /// others (some failed) says so.
    fn cell(&self, value: Option<f64>, samples: &[f64], note: Option<&str>) -> String {
        let mut notes: Vec<String> = note.map(str::to_string).into_iter().collect();
        if !samples.is_empty() && samples.len() < self.repeats {
            notes.push(format!("{} of {} runs", samples.len(), self.repeats));
        }
        match (value, notes.is_empty()) {
            (Some(value), false) => {
                format!("{} ({})", format_value(value), notes.join(", "))
            }
            _ => format_option(value),
        }
    }

    /// Appends the lines below the table: the date and machine, then each
    /// benchmark's parameters and message.
    fn write_notes(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n{} UTC; {} CPUs ({}), kernel {}; 1-minute load average {} at start, {} at end; \
             medians of {} runs{}.",
            self.date,
            self.machine.cpus,
            self.machine.cpu_model.as_deref().unwrap_or("unknown CPU"),
            self.machine.kernel.as_deref().unwrap_or("unknown"),
            format_load(self.machine.load_average_at_start),
            format_load(self.machine.load_average_at_end),
            self.repeats,
            if self.quick { ", --quick sizes" } else { "" },
        );
        for benchmark in &self.benchmarks {
            if !benchmark.parameters.is_empty() {
                let parameters: Vec<String> = benchmark
                    .parameters
                    .iter()
                    .map(|(key, value)| match value {
                        Value::String(text) => format!("{key}={text}"),
                        other => format!("{key}={other}"),
                    })
                    .collect();
                let _ = writeln!(out, "- {}: {}", benchmark.name, parameters.join(", "));
            }
            if let Some(message) = &benchmark.message {
                let _ = writeln!(out, "- {}: {message}", benchmark.name);
            }
        }
    }
}
