//! Replay stays inside the program (issue 14): it does not signal, renice
//! or pin processes outside the recording, it writes the program's output
//! only to its own stdout and stderr; and recordings end the way they
//! ended (killed from outside; refused at a 32-bit system call).

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rrc_tests::*;
use rrc_trace::{read_trace_file, SyscallExtra, TraceRecord, TraceWriter};

/// A process outside the recording that counts the SIGUSR1s it gets
/// (`sigusr1_count`): it answers every line on its stdin with its count.
struct Bystander {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    pid: u32,
}

impl Bystander {
    fn start() -> Bystander {
        let mut child = Command::new(program("sigusr1_count"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start sigusr1_count");
        let stdin = child.stdin.take().expect("stdin was piped");
        let lines = line_reader(child.stdout.take().expect("stdout was piped"));
        let ready = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("sigusr1_count did not say it was ready");
        assert_eq!(ready, format!("ready {}", child.id()));
        let pid = child.id();
        Bystander {
            child,
            stdin,
            lines,
            pid,
        }
    }

    /// How many SIGUSR1s it has had.
    fn count(&mut self) -> u32 {
        // A signal sent just before may still be on its way.
        std::thread::sleep(Duration::from_millis(100));
        writeln!(self.stdin).expect("write to sigusr1_count");
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("sigusr1_count did not answer");
        line.strip_prefix("got ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected answer from sigusr1_count: {line}"))
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn signals_to_processes_outside_the_recording_are_not_sent_again() {
    let mut bystander = Bystander::start();
    let pid = bystander.pid.to_string();
    let rec = record(&program("signal_other"), &[&pid], b"");
    rec.assert_exit_code(0);
    let after_recording = bystander.count();
    assert!(
        after_recording >= 1,
        "the recording should have signalled the bystander (it got {after_recording})"
    );
    assert!(
        rec.stdout_str()
            .contains(&format!("kill({pid}, SIGUSR1) = 0")),
        "{}",
        rec.stdout_str()
    );
    for i in 1..=2 {
        let out = replay(&rec.trace, &[]);
        assert_replay_matches(&rec, &out, &format!("replay {i}"));
        // The program's signal to itself still reaches it (its stdout
        // says it was handled, and the replay matched it).
        assert_eq!(
            bystander.count(),
            after_recording,
            "replay {i} sent SIGUSR1 to a process outside the recording"
        );
    }
}

/// A process's nice value (field 19 of /proc/PID/stat).
fn nice_of(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // The command name (field 2) may hold spaces: count after its ')'.
    let after = &stat[stat.rfind(')').expect("')' in stat") + 2..];
    after
        .split_whitespace()
        .nth(16)
        .and_then(|f| f.parse().ok())
        .expect("a nice value in /proc/PID/stat")
}

/// The CPUs a process may run on.
fn affinity_of(pid: u32) -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let rc = libc::sched_getaffinity(pid as i32, std::mem::size_of_val(&set), &mut set);
        assert_eq!(
            rc,
            0,
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        );
        set
    };
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Puts the bystander back as it was; false if its nice value could not
/// be lowered again (that needs root).
fn reset(pid: u32, cpus: &[usize]) -> bool {
    // SAFETY: plain system calls on a child of ours, with a valid set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        let rc = libc::sched_setaffinity(pid as i32, std::mem::size_of_val(&set), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
        libc::setpriority(libc::PRIO_PROCESS, pid, 0) == 0
    }
}

#[test]
fn calls_on_processes_outside_the_recording_are_not_made_again() {
    let mut bystander = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("cannot start sleep");
    let pid = bystander.id();
    let (nice, affinity) = (nice_of(pid), affinity_of(pid));
    let arg = pid.to_string();
    let rec = record(&program("renice_other"), &[&arg], b"");
    rec.assert_exit_code(0);
    assert_eq!(nice_of(pid), 7, "the recording renices the bystander");
    let several_cpus = affinity.len() > 1;
    if several_cpus {
        assert!(
            affinity_of(pid) != affinity,
            "the recording pins the bystander"
        );
    }
    let can_renice = reset(pid, &affinity);
    if !can_renice {
        eprintln!(
            "not root: the bystander's nice value cannot be put back; checking affinity only"
        );
    }
    let out = replay(&rec.trace, &[]);
    if can_renice {
        assert_eq!(
            nice_of(pid),
            nice,
            "replay reniced a process outside the recording"
        );
    }
    assert!(
        affinity_of(pid) == affinity,
        "replay changed the CPU affinity of a process outside the recording"
    );
    assert_replay_matches(&rec, &out, "replay");
    let _ = bystander.kill();
    let _ = bystander.wait();
}

/// Rewrites a trace, changing every record `change` returns a new one for.
fn rewrite(
    from: &std::path::Path,
    to: &std::path::Path,
    mut change: impl FnMut(&TraceRecord) -> Option<TraceRecord>,
) -> usize {
    let outcome = read_trace_file(from).expect("read the trace");
    assert!(outcome.is_complete(), "the recorded trace is complete");
    let file = std::fs::File::create(to).expect("create the rewritten trace");
    let mut w = TraceWriter::new(file, &outcome.header).expect("write the header");
    let mut changed = 0;
    for rec in &outcome.records {
        match change(rec) {
            Some(new) => {
                changed += 1;
                w.write(&new).expect("write a record");
            }
            None => w.write(rec).expect("write a record"),
        }
    }
    w.flush().expect("flush");
    changed
}

/// The first write to stdout, changed by `edit`.
fn first_stdout_write(
    edit: impl Fn(&mut rrc_trace::SyscallRecord),
) -> impl FnMut(&TraceRecord) -> Option<TraceRecord> {
    let mut done = false;
    move |rec| match rec {
        TraceRecord::Syscall(s) if !done && s.extra == SyscallExtra::StdStream(1) => {
            done = true;
            let mut s = s.clone();
            edit(&mut s);
            Some(TraceRecord::Syscall(s))
        }
        _ => None,
    }
}

#[test]
fn output_marks_that_name_another_descriptor_are_refused() {
    let rec = record(&program("exit_code"), &["0"], b"");
    rec.assert_exit_code(0);
    let dir = rec.dir.path();
    // Rewritten unchanged, the trace replays: the rewriting is faithful.
    let same = dir.join("same.rrc");
    rewrite(&rec.trace, &same, |_| None);
    assert_replay_matches(&rec, &replay(&same, &[]), "the trace rewritten unchanged");

    type Edit = fn(&mut rrc_trace::SyscallRecord);
    // (A write to another descriptor may be marked: a dup of stdout.)
    let edits: [(&str, Edit); 4] = [
        ("to rrc-replay's sync log (4)", |s| {
            s.extra = SyscallExtra::StdStream(4)
        }),
        ("to descriptor 7", |s| s.extra = SyscallExtra::StdStream(7)),
        ("on a write to no descriptor", |s| s.args[0] = u64::MAX),
        ("on a call that is not a write", |s| {
            s.nr = libc::SYS_getpid as u32
        }),
    ];
    for (what, edit) in edits {
        let crafted = dir.join("crafted.rrc");
        let changed = rewrite(&rec.trace, &crafted, first_stdout_write(edit));
        assert_eq!(changed, 1, "the trace has a write to stdout");
        let out = replay(&crafted, &[]);
        let context = format!("replay of a trace with an output mark {what}");
        assert_one_line_error(&out, &context);
        assert_eq!(out.status.code(), Some(1), "{context}: bad input exits 1");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("rrc-replay: ") && stderr.contains("event"),
            "{context}: the error should name the event: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{context}: nothing runs");
    }
}

#[test]
fn a_recording_killed_from_outside_replays_to_where_it_ended() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let trace = dir.path().join("trace.rrc");
    let mut cmd = Command::new(rrc_record());
    cmd.arg("-o").arg(&trace).arg("--").arg(program("sleeper"));
    let mut child = spawn(&mut cmd, None, "rrc-record of sleeper");
    let lines = line_reader(child.stdout.take().expect("stdout was piped"));
    let mut stdout = String::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("sleeper printed its ticks");
        stdout.push_str(&line);
        stdout.push('\n');
        if line.starts_with("sleeper: tick 2 ") {
            break;
        }
    }
    // Kill the program (rrc-record's only child), not the recorder, while
    // it sleeps between ticks: a SIGKILL that lands inside a write leaves
    // the write on stdout with no exit for the tracer to record.
    std::thread::sleep(Duration::from_millis(30));
    let rrc = child.id();
    let children = std::fs::read_to_string(format!("/proc/{rrc}/task/{rrc}/children"))
        .expect("rrc-record's children");
    let program_pid: u32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("rrc-record runs the program");
    send_signal(program_pid, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rrc-record") {
            break status;
        }
        assert!(Instant::now() < deadline, "rrc-record did not end");
        std::thread::sleep(Duration::from_millis(10));
    };
    kill_group(rrc);
    for line in lines.iter() {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    assert_eq!(
        shell_code(status),
        128 + libc::SIGKILL,
        "rrc-record exits as the program did"
    );
    let json = inspect_json(&trace);
    assert_eq!(json["exit_status"]["signaled"], libc::SIGKILL);

    let started = Instant::now();
    let out = replay_within(&trace, &["--stall-timeout", "20"], Duration::from_secs(40));
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "replay of a recording killed from outside should end as it did, exit 0 ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
    assert!(
        took < Duration::from_secs(10),
        "replay should end where the recording ended, not after a stall ({took:?})"
    );
}

#[test]
fn a_32_bit_system_call_is_refused_in_one_line() {
    let rec = record(&program("int80"), &[], b"");
    assert_eq!(rec.stdout_str(), "int80: before\n");
    let out = std::process::Output {
        status: rec.status,
        stdout: Vec::new(),
        stderr: rec.stderr.clone(),
    };
    assert_one_line_error(&out, "rrc-record of a program making int 0x80");
    let stderr = String::from_utf8_lossy(&rec.stderr);
    assert!(
        stderr.starts_with("rrc-record: ") && stderr.contains("32-bit system call (int 0x80)"),
        "rrc-record should say why it stopped: {stderr}"
    );
    assert_ne!(
        shell_code(rec.status),
        128 + libc::SIGSYS,
        "rrc-record itself must not die of SIGSYS"
    );
}

#[test]
fn a_programs_own_dev_null_is_not_rrcs_stdout_even_when_that_is_dev_null_too() {
    // rrc-record's stdout is /dev/null, as in `rrc-record -- prog >
    // /dev/null`; the program opens /dev/null itself and writes there.
    // Those writes vanish natively, so replay, whose stdout is a pipe,
    // must not print them; a dup of stdout is stdout still.
    let prog = program("null_writes");
    let dir = TempDir::new().expect("temporary directory");
    let trace = dir.path().join("trace.rrc");
    let status = Command::new(rrc_record())
        .arg("-o")
        .arg(&trace)
        .arg("--")
        .arg(&prog)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run rrc-record");
    assert!(status.status.success(), "rrc-record: {status:?}");
    let out = replay(&trace, &[]);
    assert!(out.status.success(), "replay: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "through a dup of stdout\n".repeat(3) + "straight to stdout\n",
        "replay prints what the program wrote to stdout, and only that"
    );
}
