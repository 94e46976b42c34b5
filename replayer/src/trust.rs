//! What replay checks before it runs anything: a trace is data, and must
//! not become a way to run a program the user did not record. The
//! executable must be the recorded file (size and SHA-256), secret
//! environment variables come from rrc-replay's own environment, and the
//! user is told what is about to run.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

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

/// The shim as the replayed program's loader gets it (`path`, see
/// [`shim_as_recorded`]), and the copy made for that, removed with this.
pub struct ReplayShim {
    pub path: PathBuf,
    copy_dir: Option<PathBuf>,
}

impl Drop for ReplayShim {
    fn drop(&mut self) {
        if let Some(dir) = &self.copy_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// [`shim_as_recorded`], and for a path longer than the recorded one
/// (rrc installed deeper than where it recorded), a copy of the shim in a
/// short private directory of its own (`/tmp/rrc<pid>`), padded in turn.
/// Without room even there, the path stays as it is.
pub fn shim_for_replay(shim: &Path, recorded: &[u8]) -> ReplayShim {
    let longer = shim.as_os_str().len() > recorded.len();
    longer
        .then(|| private_copy(shim, recorded))
        .flatten()
        .unwrap_or_else(|| ReplayShim {
            path: shim_as_recorded(shim, recorded),
            copy_dir: None,
        })
}

/// The shim copied into `/tmp/rrc<pid>/`, if that path fits in the
/// recorded length and the copy can be made.
fn private_copy(shim: &Path, recorded: &[u8]) -> Option<ReplayShim> {
    let dir = PathBuf::from(format!("/tmp/rrc{}", std::process::id()));
    let file = dir.join(shim.file_name()?);
    if file.as_os_str().len() > recorded.len() {
        return None;
    }
    // Private (0700, and refused if it exists): the copy is what runs.
    std::fs::DirBuilder::new().mode(0o700).create(&dir).ok()?;
    // Made first, so that a failed copy removes the directory again.
    let copy = ReplayShim {
        path: shim_as_recorded(&file, recorded),
        copy_dir: Some(dir),
    };
    std::fs::copy(shim, &file).ok()?;
    Some(copy)
}

/// The shim's path as the replayed program's loader gets it: as long as
/// when recorded. The loader keeps the path in memory it allocates, and
/// the environment holding it sits at the top of the stack, so a path of
/// another length (rrc installed elsewhere) moves the program's stack
/// and the loader's allocations, and with them what the program does
/// with its addresses (a Rust program's `RwLock` readers replayed 3 of
/// 10 recordings instead of 6). A shorter path gets extra `/` before its
/// file name, which the kernel ignores; a longer one stays as it is
/// (see [`shim_for_replay`]).
pub fn shim_as_recorded(shim: &Path, recorded: &[u8]) -> PathBuf {
    let now = shim.as_os_str().as_bytes();
    let (Some(missing), Some(cut)) = (
        recorded.len().checked_sub(now.len()).filter(|n| *n > 0),
        now.iter().rposition(|&b| b == b'/'),
    ) else {
        return shim.to_path_buf();
    };
    let mut padded = now[..cut].to_vec();
    padded.resize(cut + missing, b'/');
    padded.extend_from_slice(&now[cut..]);
    PathBuf::from(OsStr::from_bytes(&padded))
}

/// Whether two paths name the same place, `/` runs counted as one (the
/// kernel names an open file without the padding of `shim_as_recorded`);
/// `Path` compares by components, which do not count them.
pub fn same_path(a: &[u8], b: &[u8]) -> bool {
    Path::new(OsStr::from_bytes(a)) == Path::new(OsStr::from_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shorter_shim_path_is_padded_to_the_recorded_length() {
        let shim = Path::new("/opt/rrc/librrc_shim.so");
        let recorded = b"/home/user/rrc/target/release/librrc_shim.so";
        let padded = shim_as_recorded(shim, recorded);
        let bytes = padded.as_os_str().as_bytes();
        assert_eq!(bytes.len(), recorded.len());
        assert!(bytes.starts_with(b"/opt/rrc//") && bytes.ends_with(b"/librrc_shim.so"));
        assert!(same_path(bytes, shim.as_os_str().as_bytes()));
    }

    #[test]
    fn a_longer_or_equal_shim_path_is_left_alone() {
        let shim = Path::new("/home/user/rrc/target/release/librrc_shim.so");
        assert_eq!(shim_as_recorded(shim, b"/opt/librrc_shim.so"), shim);
        assert_eq!(shim_as_recorded(shim, shim.as_os_str().as_bytes()), shim);
    }

    #[test]
    fn a_longer_shim_path_is_replaced_by_a_private_copy_for_the_replay() {
        let dir = std::env::temp_dir().join(format!(
            "rrc-trust-test-{}-with-a-long-directory-name",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("test directory");
        let shim = dir.join("librrc_shim.so");
        std::fs::write(&shim, b"not really a shim").expect("test shim");
        let recorded = b"/usr/local/lib/rrc-0.1/librrc_shim.so";
        let copy = shim_for_replay(&shim, recorded);
        let bytes = copy.path.as_os_str().as_bytes().to_vec();
        assert_eq!(bytes.len(), recorded.len(), "{}", copy.path.display());
        assert!(bytes.starts_with(b"/tmp/rrc"), "{}", copy.path.display());
        assert_eq!(
            std::fs::read(&copy.path).expect("the copy"),
            b"not really a shim"
        );
        let copied = copy.path.clone();
        drop(copy);
        assert!(!copied.exists(), "the copy goes with the replay");
        // No room even in /tmp: the path stays as it is.
        let kept = shim_for_replay(&shim, b"/lib/librrc_shim.so");
        assert_eq!(kept.path, shim);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn paths_differing_only_in_slash_runs_are_the_same() {
        assert!(same_path(b"/a//b///c", b"/a/b/c"));
        assert!(!same_path(b"/a/bc", b"/a/b/c"));
    }
}
