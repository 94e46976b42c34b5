//! The C programs with infrequent data races (sources in `programs/`,
//! embedded in the binary) and building them with gcc.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// One benchmark program.
pub struct ProgramSource {
    pub name: &'static str,
    /// The bug pattern it models, in a few words.
    pub models: &'static str,
    pub source: &'static str,
}

/// Header every program includes.
const HEADER_NAME: &str = "racebench.h";
const HEADER: &str = include_str!("../programs/racebench.h");

pub const PROGRAMS: &[ProgramSource] = &[
    ProgramSource {
        name: "check_then_act",
        models: "check-then-act on a shared flag (a slot claimed twice)",
        source: include_str!("../programs/check_then_act.c"),
    },
    ProgramSource {
        name: "lost_update",
        models: "lost update on a statistics counter (non-atomic read-modify-write)",
        source: include_str!("../programs/lost_update.c"),
    },
    ProgramSource {
        name: "publish_init",
        models: "pointer published before the object is initialised",
        source: include_str!("../programs/publish_init.c"),
    },
    ProgramSource {
        name: "lazy_init",
        models: "double-checked lazy initialisation",
        source: include_str!("../programs/lazy_init.c"),
    },
    ProgramSource {
        name: "last_seen",
        models: "racy \"last seen\" timestamp (two writers, one reader)",
        source: include_str!("../programs/last_seen.c"),
    },
    ProgramSource {
        name: "stop_flag",
        models: "stop flag read without synchronisation",
        source: include_str!("../programs/stop_flag.c"),
    },
];

/// Flags every program is compiled with.
const CFLAGS: &[&str] = &["-O2", "-pthread", "-Wall"];

/// A compiled program.
pub struct BuiltProgram {
    pub source: &'static ProgramSource,
    pub executable: PathBuf,
}

/// Picks programs by name, in the table's order; all of them for `None`.
pub fn select(names: Option<&[String]>) -> Result<Vec<&'static ProgramSource>> {
    let Some(names) = names else {
        return Ok(PROGRAMS.iter().collect());
    };
    for name in names {
        if !PROGRAMS.iter().any(|p| p.name == name) {
            let known: Vec<&str> = PROGRAMS.iter().map(|p| p.name).collect();
            bail!("unknown program {name:?}; known: {}", known.join(", "));
        }
    }
    Ok(PROGRAMS
        .iter()
        .filter(|p| names.iter().any(|n| n == p.name))
        .collect())
}

/// Fails with a clear message when gcc cannot be run.
pub fn check_compiler() -> Result<()> {
    match Command::new("gcc").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => bail!(
            "gcc --version failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => bail!("cannot run gcc ({e}): racebench compiles its C programs with gcc; install it (apt-get install gcc)"),
    }
}

/// Writes the sources into `dir` and compiles each with gcc.
/// `time_scale_percent` scales every race's timing (100: as written).
pub fn build(
    programs: &[&'static ProgramSource],
    dir: &Path,
    time_scale_percent: u32,
) -> Result<Vec<BuiltProgram>> {
    check_compiler()?;
    let header = dir.join(HEADER_NAME);
    fs::write(&header, HEADER).with_context(|| format!("cannot write {}", header.display()))?;
    programs
        .iter()
        .map(|program| {
            let c_file = dir.join(format!("{}.c", program.name));
            fs::write(&c_file, program.source)
                .with_context(|| format!("cannot write {}", c_file.display()))?;
            let executable = dir.join(program.name);
            let out = Command::new("gcc")
                .args(CFLAGS)
                .arg(format!(
                    "-DRACEBENCH_TIME_SCALE_PERCENT={time_scale_percent}"
                ))
                .arg("-o")
                .arg(&executable)
                .arg(&c_file)
                .output()
                .context("cannot run gcc")?;
            if !out.status.success() {
                bail!(
                    "gcc failed to compile {} ({}):\n{}",
                    program.name,
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(BuiltProgram {
                source: program,
                executable,
            })
        })
        .collect()
}
