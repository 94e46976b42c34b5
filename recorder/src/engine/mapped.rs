//! Copies of mapped files replay may not find as they were.

use std::time::SystemTime;

use nix::unistd::Pid;
use rrc_interposer::fd_target;
use rrc_interposer::model;

/// The bytes an mmap of a file maps (up to the file's end), when replay
/// may not find that file as it was: the program had it open for writing,
/// or it changed while the recording ran (a file the program made). Other
/// files, such as libraries, must be the same files when replayed.
/// Pages past the file's end are not kept: replay maps anonymous memory,
/// where touching them does not raise SIGBUS.
pub(super) fn mapped_copy(pid: Pid, args: &[u64; 6], started: SystemTime) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let fd = args[4] as i32;
    if fd < 0 || args[3] & libc::MAP_ANONYMOUS as u64 != 0 {
        return None;
    }
    let path = format!("/proc/{pid}/fd/{fd}");
    // A memfd (ours, the sync log, or the program's) exists for real in
    // replay: memfd_create runs there.
    if fd_target(pid, fd.into()).is_some_and(|t| t.starts_with(b"/memfd:")) {
        return None;
    }
    let meta = std::fs::metadata(&path).ok()?;
    let writable = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| i32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & libc::O_ACCMODE != libc::O_RDONLY);
    let changed = meta.modified().is_ok_and(|m| m >= started);
    if !meta.is_file() || !(writable || changed) {
        return None;
    }
    let (offset, len) = (args[5], args[1]);
    let n = copy_len(meta.len(), offset, len)?;
    let mut bytes = vec![0u8; n as usize];
    let file = std::fs::File::open(&path).ok()?;
    file.read_exact_at(&mut bytes, offset).ok()?;
    Some(bytes)
}

/// How many bytes of a `file_len`-byte file a mapping of `len` bytes at
/// `offset` covers; `None` when that is too much to keep (replay then
/// stops at this mapping, named).
fn copy_len(file_len: u64, offset: u64, len: u64) -> Option<u64> {
    let n = file_len.saturating_sub(offset).min(len);
    (n <= model::MAX_INPUT).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_stops_at_the_files_end() {
        assert_eq!(copy_len(10_000, 4096, 8192), Some(10_000 - 4096));
        assert_eq!(copy_len(10_000, 0, 4096), Some(4096));
        assert_eq!(copy_len(100, 4096, 4096), Some(0), "all past the end");
    }

    #[test]
    fn a_copy_too_big_to_keep_is_none() {
        let big = model::MAX_INPUT + 1;
        assert_eq!(copy_len(big, 0, big), None);
        assert_eq!(copy_len(big, 0, model::MAX_INPUT), Some(model::MAX_INPUT));
    }
}
