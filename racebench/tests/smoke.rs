//! Runs the racebench driver on two programs with two replays per mode and
//! checks the shape of its JSON report (not the success rates).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const PROGRAMS: [&str; 2] = ["check_then_act", "stop_flag"];
const RUNS: u64 = 2;

fn has_tools(dir: &Path) -> bool {
    dir.join("rrc-record").is_file() && dir.join("rrc-replay").is_file()
}

/// The same places the driver looks: $RRC_BIN_DIR, the driver's own
/// directory, or the release directory beside it.
fn rrc_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RRC_BIN_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            has_tools(&dir),
            "RRC_BIN_DIR={} holds no rrc-record and rrc-replay",
            dir.display()
        );
        return dir;
    }
    let exe = Path::new(env!("CARGO_BIN_EXE_racebench"));
    let own_dir = exe.parent().expect("racebench has a parent directory");
    [own_dir.to_path_buf(), own_dir.join("../release")]
        .into_iter()
        .find(|d| has_tools(d))
        .unwrap_or_else(|| {
            panic!(
                "rrc-record and rrc-replay are not in {} (or ../release): \
                 run `cargo build --release --workspace` first",
                own_dir.display()
            )
        })
}

#[test]
fn json_report_has_every_program_and_mode() {
    let bin_dir = rrc_bin_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_racebench"))
        .args([
            "--runs",
            &RUNS.to_string(),
            "--json",
            "--stall-timeout",
            "3",
        ])
        .args(["--programs", &PROGRAMS.join(",")])
        .env("RRC_BIN_DIR", &bin_dir)
        .output()
        .expect("run racebench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "racebench failed ({}):\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });

    assert_eq!(report["runs"], RUNS);
    assert_eq!(report["native_runs"], RUNS);
    assert_eq!(report["time_scale"], 1.0);
    assert!(report["elapsed_s"].as_f64().is_some());
    let modes: Vec<&str> = report["modes"]
        .as_array()
        .expect("modes is an array")
        .iter()
        .map(|m| m["name"].as_str().expect("mode name"))
        .collect();
    assert_eq!(modes, ["intervals", "no-intervals"]);
    assert_eq!(report["modes"][1]["flags"][0], "--no-intervals");

    let programs = report["programs"].as_array().expect("programs is an array");
    let names: Vec<&str> = programs
        .iter()
        .map(|p| p["program"].as_str().expect("program name"))
        .collect();
    assert_eq!(names, PROGRAMS);
    for program in programs {
        let name = &program["program"];
        assert!(program["models"].as_str().is_some_and(|m| !m.is_empty()));

        let native = &program["native"];
        assert_eq!(native["runs"], RUNS, "{name}: native runs");
        let stable = native["stable"].as_u64().expect("native.stable");
        assert!(
            (1..=RUNS).contains(&stable),
            "{name}: native.stable {stable}"
        );
        assert!(native["stability"].as_f64().is_some());
        assert!(native["median_wall_ms"].as_f64().is_some_and(|ms| ms > 0.0));

        let record = &program["record"];
        assert!(record["wall_ms"].as_f64().is_some_and(|ms| ms > 0.0));
        assert!(record["race_lines"].as_u64().is_some_and(|n| n > 0));
        assert!(record["outcome_is_most_common_native"].is_boolean());

        let results = program["modes"].as_array().expect("per-mode results");
        assert_eq!(results.len(), modes.len(), "{name}: one result per mode");
        for (result, mode) in results.iter().zip(&modes) {
            assert_eq!(result["mode"], *mode);
            assert_eq!(result["runs"], RUNS, "{name} [{mode}]: runs");
            let successes = result["successes"].as_u64().expect("successes");
            assert!(successes <= RUNS);
            let rate = result["success_rate"].as_f64().expect("success_rate");
            assert!((rate - successes as f64 / RUNS as f64).abs() < 1e-9);
            let failures = &result["failures"];
            let failed: u64 = ["divergence", "timeout", "exit_0_output_differs", "other"]
                .iter()
                .map(|k| failures[k].as_u64().expect("failure count"))
                .sum();
            assert_eq!(failed + successes, RUNS, "{name} [{mode}]: failures add up");
            assert!(result["median_wall_ms"].as_f64().is_some_and(|ms| ms > 0.0));
            assert!(result["median_slowdown"].as_f64().is_some_and(|x| x > 0.0));
            // A first divergence is reported exactly when a replay failed.
            assert_eq!(result["first_divergence"].is_string(), failed > 0);
        }
    }
}
