//! The trace file itself: private permissions, and a readable prefix
//! when the recorder is killed.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use rrc_tests::*;

#[test]
fn trace_file_mode_is_0600() {
    let rec = record(&program("exit_code"), &["0"], b"");
    rec.assert_exit_code(0);
    let mode = std::fs::metadata(&rec.trace)
        .expect("trace exists")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o7777,
        0o600,
        "traces hold everything the program read: mode must be 0600, is {:o}",
        mode & 0o7777
    );
}

#[test]
fn killed_recorder_leaves_readable_prefix() {
    let dir = TempDir::new().expect("temporary directory");
    let trace = dir.path().join("killed.rrc");
    let mut cmd = Command::new(rrc_record());
    cmd.arg("-o").arg(&trace).arg("--").arg(program("sleeper"));
    let mut child = spawn(&mut cmd, None, "rrc-record of sleeper");
    let pgid = child.id();
    let lines = line_reader(child.stdout.take().expect("stdout was piped"));
    let stderr_rx = line_reader(child.stderr.take().expect("stderr was piped"));

    // Wait until the program is well under way: started, and a few ticks.
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("sleeper: tick 3 "))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                kill_group(pgid);
                let _ = child.wait();
                let err: Vec<String> = stderr_rx.try_iter().collect();
                panic!(
                    "the recorded sleeper did not print its first ticks in time; stdout: \
                     {seen:?}; stderr: {err:?}"
                );
            }
        }
    }
    assert_eq!(seen[0], "sleeper: started");

    child.kill().expect("SIGKILL the recorder");
    let status = child.wait().expect("wait for the recorder");
    assert_eq!(
        shell_code(status),
        128 + libc::SIGKILL,
        "the recorder died of SIGKILL"
    );
    // Let any orphaned tracee go before inspecting.
    std::thread::sleep(Duration::from_millis(200));
    kill_group(pgid);

    let len = std::fs::metadata(&trace)
        .expect("the killed recorder left a trace file")
        .len();
    let out = inspect_raw(&[trace.as_os_str(), OsStr::new("--json")]);
    assert!(
        !out.status.success(),
        "rrc-inspect must exit non-zero for an incomplete trace"
    );
    assert_one_line_error(&out, "rrc-inspect --json of a killed recording");
    let json = parse_json(&out.stdout, "rrc-inspect --json of a killed recording");
    assert_eq!(json["complete"], false, "{json:#}");
    let damage = json["damage"].as_str().unwrap_or_default();
    assert!(
        damage.contains("byte offset"),
        "damage should say where the trace stops: {damage:?}"
    );
    assert_eq!(json["trace_bytes"], len, "trace_bytes is the file size");
    let intact = json["intact_bytes"].as_u64().expect("intact_bytes");
    assert!(
        intact > PREAMBLE_LEN as u64 && intact <= len,
        "intact prefix {intact} of {len} bytes holds at least the header"
    );
    assert!(
        json["program"].to_string().contains("sleeper"),
        "the header survived: {}",
        json["program"]
    );
    assert!(
        !threads(&json).is_empty(),
        "the prefix records the first thread: {json:#}"
    );
    assert!(
        json["exit_status"].is_null(),
        "no exit status in a killed recording: {}",
        json["exit_status"]
    );

    let replayed = replay(&trace, &[]);
    assert_one_line_error(&replayed, "rrc-replay of a killed recording");
}
