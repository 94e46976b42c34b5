//! The whole benchmark's results: a table for people, JSON for machines.

use std::fmt::Write as _;

use serde::Serialize;

use crate::bench::ProgramReport;
use crate::modes::Mode;

#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Replays per program and mode.
    pub runs: usize,
    pub native_runs: usize,
    /// Factor applied to every race's timing.
    pub time_scale: f64,
    pub timeout_s: u64,
    pub stall_timeout_s: Option<u64>,
    pub modes: Vec<Mode>,
    pub programs: Vec<ProgramReport>,
    pub elapsed_s: f64,
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// The table, then the first divergence per program and mode.
pub fn table(report: &BenchReport) -> String {
    let mut header = vec![
        "program".to_string(),
        "native stability".to_string(),
        "record".to_string(),
    ];
    for mode in &report.modes {
        header.push(format!("{} ok", mode.name));
        header.push(format!("{} slowdown", mode.name));
    }
    let mut rows = vec![header];
    for p in &report.programs {
        let mut row = vec![
            p.program.clone(),
            format!(
                "{}/{} {}",
                p.native.stable,
                p.native.runs,
                percent(p.native.stability)
            ),
            format!("{:.0} ms", p.record.wall_ms),
        ];
        for m in &p.modes {
            row.push(format!(
                "{}/{} {}",
                m.successes,
                m.runs,
                percent(m.success_rate)
            ));
            row.push(format!("{:.2}x", m.median_slowdown));
        }
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
    }
    let _ = writeln!(
        out,
        "\n{} replays per program and mode, {} native runs, time scale {}; ok = rrc-replay exited 0 and printed \
         what the recording printed; slowdown = median replay wall time / recording wall time; \
         native stability = native runs whose race outcomes equal the most common ones.",
        report.runs, report.native_runs, report.time_scale
    );
    for mode in &report.modes {
        let flags = if mode.flags.is_empty() {
            "(no extra flags)".to_string()
        } else {
            mode.flags.join(" ")
        };
        let _ = writeln!(out, "mode {}: rrc-replay {}", mode.name, flags);
    }

    let mut divergences = String::new();
    for p in &report.programs {
        if !p.record.outcome_is_most_common_native {
            let _ = writeln!(
                divergences,
                "  {}: note: the recorded race outcome is not the most common native one",
                p.program
            );
        }
        for m in &p.modes {
            if let Some(d) = &m.first_divergence {
                let _ = writeln!(divergences, "  {} [{}]: {}", p.program, m.mode, d);
            }
        }
    }
    if !divergences.is_empty() {
        let _ = writeln!(out, "\nFirst failure per program and mode:\n{divergences}");
    }
    let _ = writeln!(out, "Total time: {:.0} s", report.elapsed_s);
    out
}
