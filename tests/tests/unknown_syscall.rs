//! A syscall rrc does not model (kcmp, called twice by
//! tests/programs/unknown_syscall.c): the recording warns once, the trace
//! names it, and replay stops there with a divergence naming it.

use rrc_tests::*;

const SYSCALL: &str = "kcmp";

#[test]
fn unknown_syscall_warns_once_and_replay_diverges() {
    let prog = program("unknown_syscall");
    for round in 1..=repeat() {
        let rec = record(&prog, &[], b"");
        let ctx = format!("round {round}: {}", rec.describe());
        rec.assert_exit_code(0);
        let stdout = rec.stdout_str();
        assert!(
            stdout.starts_with("kcmp call 1: ")
                && stdout.contains("\nkcmp call 2: ")
                && stdout.ends_with("unknown_syscall: done\n"),
            "{ctx}: the program called kcmp twice and finished:\n{stdout}"
        );

        let stderr = String::from_utf8_lossy(&rec.stderr);
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("rrc-record: warning:"))
            .collect();
        assert_eq!(
            warnings.len(),
            1,
            "{ctx}: exactly one warning for the unknown syscall, even though it was \
             called twice; stderr:\n{stderr}"
        );
        assert!(
            warnings[0].starts_with(&format!(
                "rrc-record: warning: syscall {SYSCALL} ({}) is not supported",
                libc::SYS_kcmp
            )),
            "{ctx}: the warning names {SYSCALL} and its number (if rrc now models \
             {SYSCALL}, pick another syscall it does not know): {}",
            warnings[0]
        );

        let json = inspect_json(&rec.trace);
        assert_eq!(json["complete"], true, "{ctx}: complete trace");
        let unknown: Vec<&str> = json["unknown_syscalls"]
            .as_array()
            .unwrap_or_else(|| panic!("{ctx}: unknown_syscalls is not an array: {json:#}"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            unknown,
            [SYSCALL],
            "{ctx}: rrc-inspect lists the unknown syscall"
        );
        let warned = json["warnings"].to_string();
        assert!(
            warned.contains(SYSCALL),
            "{ctx}: the trace's warnings name {SYSCALL}: {warned}"
        );

        let out = replay(&rec.trace, &[]);
        let line = assert_divergence(&out, &format!("{ctx}: replay of an unknown syscall"));
        assert!(
            line.contains(SYSCALL) && line.contains("unsupported syscall"),
            "{ctx}: the divergence names the unsupported syscall {SYSCALL}: {line}"
        );
        let replayed = String::from_utf8_lossy(&out.stdout);
        assert!(
            !replayed.contains("kcmp call"),
            "{ctx}: replay stopped at the first kcmp, before its result was printed:\n\
             {replayed}"
        );
    }
}
