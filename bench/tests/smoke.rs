//! Smoke test: `rrc-bench --quick --json --only syscalls,locks,cpu` runs
//! and reports positive native and rrc figures for each benchmark. No
//! assertion on the ratios: this machine's noise is not rrc's fault.
//!
//! Needs rrc-record and rrc-replay built (`cargo build --release
//! --workspace`), or RRC_BIN_DIR naming their directory, and gcc.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const BENCHMARKS: [&str; 3] = ["syscalls", "locks", "cpu"];
const TIMEOUT: Duration = Duration::from_secs(120);

fn positive(value: &Value) -> bool {
    value.as_f64().is_some_and(|number| number > 0.0)
}

/// Runs `rrc-bench --quick --json --only BENCHMARKS`, killing it after
/// TIMEOUT; asserts it succeeded and returns its stdout. Both pipes are
/// drained on threads so a full pipe cannot stall it.
fn run_quick_bench() -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rrc-bench"))
        .args(["--quick", "--json", "--only", &BENCHMARKS.join(",")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start rrc-bench");
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stdout_reader = thread::spawn(move || {
        let mut text = String::new();
        stdout_pipe.read_to_string(&mut text).map(|_| text)
    });
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        stderr_pipe.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("cannot poll rrc-bench") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rrc-bench --quick took longer than {} s", TIMEOUT.as_secs());
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout_reader
        .join()
        .expect("stdout reader panicked")
        .expect("cannot read rrc-bench's stdout");
    let stderr = stderr_reader
        .join()
        .expect("stderr reader panicked")
        .expect("cannot read rrc-bench's stderr");
    assert!(
        status.success(),
        "rrc-bench failed ({status}):\n{stderr}\n{stdout}"
    );
    stdout
}

/// Checks one metric of benchmark `name`: positive native, recorded and
/// replayed values.
fn check_metric(name: &Value, metric: &Value) {
    let metric_name = &metric["name"];
    // A short native run may use no system CPU time the kernel
    // accounts: zero is a fair measurement there. A per-call cost is the
    // difference of two whole runs (with and without the calls), which a
    // loaded machine can make negative in a quick run: a number is all a
    // smoke test can ask of it.
    if name.as_str() == Some("syscalls") {
        for mode in ["native", "recorded", "replayed"] {
            assert!(
                metric[mode].as_f64().is_some_and(f64::is_finite),
                "{name} {metric_name}: {mode} {}",
                metric[mode]
            );
        }
        return;
    }
    if metric_name
        .as_str()
        .is_some_and(|text| text.starts_with("system CPU"))
    {
        for mode in ["native", "recorded", "replayed"] {
            assert!(
                metric[mode].as_f64().is_some_and(|seconds| seconds >= 0.0),
                "{name} {metric_name}: {mode} {}",
                metric[mode]
            );
        }
        return;
    }
    assert!(
        positive(&metric["native"]),
        "{name} {metric_name}: native {}",
        metric["native"]
    );
    assert!(
        positive(&metric["recorded"]),
        "{name} {metric_name}: recorded {}",
        metric["recorded"]
    );
    assert!(
        positive(&metric["replayed"]),
        "{name} {metric_name}: replayed {}",
        metric["replayed"]
    );
}

/// Checks one benchmark of the report: status ok, some metrics, each
/// checked, and positive trace figures.
fn check_benchmark(benchmark: &Value) {
    let name = &benchmark["name"];
    assert_eq!(
        benchmark["status"], "ok",
        "{name}: {}",
        benchmark["message"]
    );
    let metrics = benchmark["metrics"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no metrics"));
    assert!(!metrics.is_empty(), "{name}: no metrics");
    for metric in metrics {
        check_metric(name, metric);
    }
    let trace = benchmark["trace"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no trace figures"));
    assert!(
        trace.iter().all(|figure| positive(&figure["value"])),
        "{name}: trace figures {trace:?}"
    );
}

#[test]
fn quick_json_reports_positive_native_and_rrc_figures() {
    let stdout = run_quick_bench();

    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("rrc-bench --json printed no JSON ({e}):\n{stdout}"));
    assert_eq!(report["quick"], true);
    let benchmarks = report["benchmarks"]
        .as_array()
        .unwrap_or_else(|| panic!("no benchmarks array:\n{stdout}"));
    let names: Vec<&str> = benchmarks
        .iter()
        .filter_map(|benchmark| benchmark["name"].as_str())
        .collect();
    assert_eq!(names, BENCHMARKS, "the benchmarks asked for, in order");

    for benchmark in benchmarks {
        check_benchmark(benchmark);
    }
}
