//! Opening trace files safely. A trace holds everything a program read and
//! its whole environment, and rrc often runs as root in shared
//! directories, so a trace is only ever written into a file rrc has just
//! created itself (never through a link, never into a device or someone
//! else's file), and only read from a regular file (a FIFO would block).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::{Result, TraceError};

/// Opens an existing trace for reading. Refuses anything but a regular
/// file without blocking on it: opening a FIFO for reading waits for a
/// writer, which may never come.
pub fn open_for_reading(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| TraceError::File {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?;
    let kind = file.metadata().map(|m| m.file_type())?;
    if !kind.is_file() {
        return Err(TraceError::File {
            path: path.to_path_buf(),
            what: format!("not a regular file ({})", describe_kind(&kind)),
        });
    }
    // A regular file never blocks; the flag only mattered for the open.
    set_blocking(&file)?;
    Ok(file)
}

/// Creates the trace file `target` for writing, mode 0600, owned by the
/// caller. The file is made new beside the target (`O_EXCL`, so no link is
/// followed and nothing existing is truncated) and renamed over it at
/// once: a recorder killed later leaves a readable prefix at `target`, and
/// a recorder that cannot create files there fails before touching it.
pub fn create_for_writing(target: &Path) -> Result<File> {
    let fail = |what: String| TraceError::File {
        path: target.to_path_buf(),
        what,
    };
    if target.as_os_str() == "-" {
        return Err(fail(
            "a trace cannot go to standard output (the program's output goes there); name a file"
                .into(),
        ));
    }
    match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(fail(
                "is a symbolic link: rrc writes traces only to a plain path, never through a link"
                    .into(),
            ))
        }
        Ok(meta) if !meta.is_file() => {
            return Err(fail(format!(
                "not a regular file ({}): a trace is written only to a regular file",
                describe_kind(&meta.file_type())
            )))
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    // The trace the new one replaces is freed when its last descriptor
    // closes: held open across the rename and closed on a thread of its
    // own, freeing a large one's pages and blocks (milliseconds) is not
    // part of the recording's start.
    let replaced = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(target)
        .ok();
    let (temp, mut file) = create_beside(target).map_err(|e| fail(e.to_string()))?;
    // Something on disk before the rename, so the target never shows as an
    // empty file; the recorder's header follows at once.
    file.flush()?;
    if let Err(e) = std::fs::rename(&temp, target) {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(format!("cannot move the new trace into place: {e}")));
    }
    if let Some(old) = replaced {
        let _ = std::thread::Builder::new()
            .name("rrc-old-trace".into())
            .spawn(move || drop(old));
    }
    Ok(file)
}

/// A new file beside `target`, exclusive and private.
fn create_beside(target: &Path) -> io::Result<(PathBuf, File)> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trace".into());
    let mut last = None;
    for attempt in 0..100u32 {
        let temp = dir.join(format!(".{name}.rrc-{}-{attempt}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)
        {
            Ok(f) => return Ok((temp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// What identifies an executable's contents: its size, modification time
/// and SHA-256.
pub fn exe_digest(path: &Path) -> io::Result<crate::ExeDigest> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf)? {
            0 => break,
            n => hasher.update(&buf[..n]),
        }
    }
    use std::os::unix::fs::MetadataExt;
    Ok(crate::ExeDigest {
        size: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        sha256: hasher.finalize().into(),
    })
}

fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn describe_kind(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a plain file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_trace_replaces_a_file_with_a_private_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("t.trace");
        std::fs::write(&target, b"old contents").expect("write old");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut f = create_for_writing(&target).expect("create");
        f.write_all(b"new").expect("write");
        drop(f);
        let mut s = String::new();
        File::open(&target)
            .and_then(|mut f| f.read_to_string(&mut s))
            .expect("read back");
        assert_eq!(s, "new");
        let mode = std::fs::metadata(&target)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
    }

    #[test]
    fn a_link_a_device_and_a_dash_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").expect("write victim");
        let link = dir.path().join("rrc.trace");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        let e = create_for_writing(&link).expect_err("a link is refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
        let e = create_for_writing(Path::new("/dev/null")).expect_err("a device is refused");
        assert!(e.to_string().contains("character device"), "{e}");
        let e = create_for_writing(Path::new("-")).expect_err("a dash is refused");
        assert!(e.to_string().contains("standard output"), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_for_reading_without_blocking() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_for_reading(&fifo).expect_err("a FIFO is refused");
        assert!(e.to_string().contains("FIFO"), "{e}");
    }
}
