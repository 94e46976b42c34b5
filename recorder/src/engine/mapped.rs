//! Copies of mapped files replay may not find as they were.

use std::time::SystemTime;

use nix::unistd::Pid;
use rrc_interposer::fd_target;
use rrc_interposer::model;

/// The bytes an mmap of a file maps (up to the file's end), when replay
/// may not find that file as it was: the program had it open for writing,
/// it changed while the recording ran (a file the program made), or it is
/// a small data file mapped privately, such as the loader's
/// `/etc/ld.so.cache`, which every `ldconfig` (every package install)
/// rewrites and which every dynamically linked program maps: without a
/// copy, no recording made before it would replay. Code and large files,
/// such as libraries, must be the same files when replayed.
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
    let must = writable || changed;
    if !meta.is_file() || !(must || small_private_data(args[2], args[3], meta.len())) {
        return None;
    }
    let file = std::fs::File::open(&path).ok()?;
    // A library's segments (its first mapping is the whole file, read
    // only) map the file's code too, which must be the same file anyway.
    if !must && is_elf(&file) {
        return None;
    }
    let (offset, len) = (args[5], args[1]);
    let n = copy_len(meta.len(), offset, len)?;
    let mut bytes = vec![0u8; n as usize];
    file.read_exact_at(&mut bytes, offset).ok()?;
    Some(bytes)
}

/// Files up to this size mapped privately without execute permission are
/// copied: the loader's cache is 34 KB here, and a copy costs the trace
/// its size at each exec.
const SMALL_DATA_FILE: u64 = 256 << 10;

/// Whether a mapping with protection `prot` and `flags` of a file of
/// `file_len` bytes is a small data file's private mapping.
fn small_private_data(prot: u64, flags: u64, file_len: u64) -> bool {
    let private = flags & 0x3 == libc::MAP_PRIVATE as u64;
    private && prot & libc::PROT_EXEC as u64 == 0 && file_len <= SMALL_DATA_FILE
}

fn is_elf(file: &std::fs::File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut magic = [0u8; 4];
    file.read_exact_at(&mut magic, 0).is_ok() && magic == *b"\x7fELF"
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
    fn small_data_files_mapped_privately_are_copied_not_code_or_shared_ones() {
        let (read, exec) = (libc::PROT_READ as u64, libc::PROT_EXEC as u64);
        let (private, shared) = (libc::MAP_PRIVATE as u64, libc::MAP_SHARED as u64);
        // The loader's cache, as the loader maps it.
        assert!(small_private_data(read, private, 34_015));
        assert!(!small_private_data(read | exec, private, 34_015));
        assert!(!small_private_data(read, shared, 34_015));
        assert!(!small_private_data(read, private, 2 << 20));
    }

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
