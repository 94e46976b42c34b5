//! What replay checks before it runs anything: a trace is data, and must
//! not become a way to run a program the user did not record. The
//! executable must be the recorded file (size and SHA-256), secret
//! environment variables come from rrc-replay's own environment, and the
//! user is told what is about to run.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use rrc_trace::TraceHeader;

/// What differs between the recorded executable and the file now at its
/// path, as (expected, observed); `None` when they are the same file.
pub fn changed_executable(header: &TraceHeader) -> Result<Option<(String, String)>> {
    let path = Path::new(OsStr::from_bytes(&header.exe));
    if !path.exists() {
        bail!("the recorded program {} no longer exists", path.display());
    }
    let now = rrc_trace::exe_digest(path).with_context(|| format!("reading {}", path.display()))?;
    let then = &header.exe_digest;
    if now.size != then.size || now.sha256 != then.sha256 {
        let when = if now.mtime_ns == then.mtime_ns {
            "its modification time is the same, its contents are not"
        } else {
            "it was modified since"
        };
        let hex = |d: &[u8; 32]| rrc_trace::hex(&d[..8]);
        return Ok(Some((
            format!(
                "the executable that was recorded at {} ({} bytes, sha256 {}...)",
                path.display(),
                then.size,
                hex(&then.sha256)
            ),
            format!(
                "another file there ({} bytes, sha256 {}...; {when}): not run",
                now.size,
                hex(&now.sha256)
            ),
        )));
    }
    Ok(None)
}

/// The environment the program gets: the recorded one, with each secret
/// variable's value taken from ours.
pub fn program_env(header: &TraceHeader) -> Result<Vec<Vec<u8>>> {
    let mut env = header.env.clone();
    for secret in &header.secret_env {
        let name = OsStr::from_bytes(&secret.name);
        let Some(value) = std::env::var_os(name) else {
            bail!(
                "the program was recorded with {} kept out of the trace: set it in \
                 rrc-replay's environment to the value it had",
                name.to_string_lossy()
            );
        };
        if value.len() as u64 != secret.value_len {
            bail!(
                "{} has another length than when recorded ({} bytes, not {}): replay needs \
                 the value it had",
                name.to_string_lossy(),
                value.len(),
                secret.value_len
            );
        }
        let Some(slot) = env.iter_mut().find(|v| v.as_slice() == secret.name) else {
            bail!(
                "the trace names {} as secret but holds no place for it",
                name.to_string_lossy()
            );
        };
        slot.push(b'=');
        slot.extend_from_slice(value.as_bytes());
    }
    Ok(env)
}

/// On a terminal, says what is about to run (on a pipe or a file, the
/// program's own stderr stays byte for byte what it was).
pub fn announce(header: &TraceHeader) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let argv: Vec<String> = header
        .argv
        .iter()
        .map(|a| String::from_utf8_lossy(a).escape_debug().to_string())
        .collect();
    eprintln!(
        "rrc-replay: running {} as [{}] in {}",
        String::from_utf8_lossy(&header.exe).escape_debug(),
        argv.join(", "),
        String::from_utf8_lossy(&header.cwd).escape_debug()
    );
}
