//! Calls that send bytes to a descriptor, and where those bytes are: the
//! program's output when the descriptor is rrc's own stdout or stderr
//! (replay prints a call's first input, truncated to its result).
//!
//! Most of them take the bytes from memory (write, writev, pwrite64,
//! pwritev, pwritev2). sendfile, copy_file_range, splice and tee take them
//! from another descriptor, read here at the call's entry: a file where
//! the call reads it, or what a pipe holds, copied without taking it out
//! (tee into a pipe of our own). GNU `cat` writes to a file through
//! copy_file_range, and Rust's `io::copy` to stdout through
//! copy_file_range, sendfile or splice: without this, their output was
//! missing from the replay.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{InputSpec, MAX_INPUT};
use crate::TraceeMemory;

/// Where a call that copies from one descriptor to another finds its
/// arguments: the descriptor read from, the pointer to its offset (`None`:
/// tee, which reads a pipe), the descriptor written to, and the count.
struct Copy {
    from: usize,
    offset: Option<usize>,
    to: usize,
    count: usize,
}

/// sendfile(out, in, offset_ptr, count); copy_file_range and splice (in,
/// off_in_ptr, out, off_out_ptr, len, flags); tee(in, out, len, flags).
fn copy_of(nr: libc::c_long) -> Option<Copy> {
    let (from, offset, to, count) = match nr {
        libc::SYS_sendfile => (1, Some(2), 0, 3),
        libc::SYS_copy_file_range | libc::SYS_splice => (0, Some(1), 2, 4),
        libc::SYS_tee => (0, None, 1, 2),
        _ => return None,
    };
    Some(Copy {
        from,
        offset,
        to,
        count,
    })
}

/// The descriptor `nr` sends bytes to, when its first input is those
/// bytes.
pub fn sends_to(nr: libc::c_long, args: &[u64; 6]) -> Option<u64> {
    match nr {
        libc::SYS_write
        | libc::SYS_writev
        | libc::SYS_pwrite64
        | libc::SYS_pwritev
        | libc::SYS_pwritev2 => Some(args[0]),
        _ => copy_of(nr).map(|c| args[c.to]),
    }
}

/// Whether `nr` sends bytes it reads from another descriptor (sendfile,
/// copy_file_range, splice, tee).
pub fn sends_from_descriptor(nr: libc::c_long) -> bool {
    copy_of(nr).is_some()
}

/// Whether the bytes `nr` sends come from a descriptor's own position (no
/// offset given): replay, which moves no position (reads and seeks are
/// emulated), cannot read them again to compare.
pub fn sent_from_position(nr: libc::c_long, args: &[u64; 6]) -> bool {
    copy_of(nr).is_some_and(|c| c.offset.is_none_or(|o| args[o] == 0))
}

/// The argument that bounds how many bytes `nr` moves from another
/// descriptor.
pub fn sent_count_arg(nr: libc::c_long) -> Option<usize> {
    copy_of(nr).map(|c| c.count)
}

/// The bytes a copy takes in (the table's inputs of sendfile,
/// copy_file_range, splice and tee).
fn copy_inputs_of(nr: libc::c_long, a: &[u64; 6]) -> Vec<InputSpec> {
    copy_of(nr).map_or_else(Vec::new, |c| {
        vec![range(a[c.from], c.offset.map_or(0, |o| a[o]), a[c.count])]
    })
}

pub(super) fn sendfile_inputs(a: &[u64; 6]) -> Vec<InputSpec> {
    copy_inputs_of(libc::SYS_sendfile, a)
}

/// copy_file_range's and splice's (the same arguments).
pub(super) fn copy_inputs(a: &[u64; 6]) -> Vec<InputSpec> {
    copy_inputs_of(libc::SYS_splice, a)
}

pub(super) fn tee_inputs(a: &[u64; 6]) -> Vec<InputSpec> {
    copy_inputs_of(libc::SYS_tee, a)
}

fn range(fd: u64, offset_ptr: u64, count: u64) -> InputSpec {
    InputSpec::FileRange {
        fd,
        offset_ptr,
        count: count.min(MAX_INPUT),
    }
}

/// The bytes descriptor `fd` of the tracee gives where the call reads
/// them: a file's at the offset (`offset_ptr`, or its own position), or
/// the first `count` bytes a pipe holds. `None` for anything else (a
/// socket; a placeholder in replay, which holds none of the recorded
/// file's bytes).
pub(super) fn read_file_range(
    tracee: &crate::Tracee,
    fd: u64,
    offset_ptr: u64,
    count: u64,
) -> Option<Vec<u8>> {
    use std::os::unix::fs::{FileExt, FileTypeExt};
    let tid = tracee.tid;
    let link = format!("/proc/{tid}/fd/{fd}");
    let placeholder = format!("/memfd:{}", rrc_synclog::MEMFD_NAME.to_string_lossy());
    if std::fs::read_link(&link)
        .ok()?
        .as_os_str()
        .as_encoded_bytes()
        .starts_with(placeholder.as_bytes())
    {
        return None;
    }
    let kind = std::fs::metadata(&link).ok()?.file_type();
    if kind.is_fifo() {
        return peek_pipe(&link, count);
    }
    if !kind.is_file() {
        return None;
    }
    let offset = if offset_ptr != 0 {
        tracee.read_u64(offset_ptr).ok()?
    } else {
        let info = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}")).ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("pos:"))
            .and_then(|v| v.trim().parse().ok())?
    };
    let file = std::fs::File::open(&link).ok()?;
    // The call's count may be far past the end (cat asks for 2^62 bytes).
    let left = file.metadata().ok()?.len().saturating_sub(offset);
    let mut buf = vec![0u8; count.min(left) as usize];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    buf.truncate(got);
    Some(buf)
}

/// Up to `count` bytes the pipe at `link` holds, left in it: tee(2) copies
/// them into a pipe of ours, as large as the program's, and we read that.
fn peek_pipe(link: &str, count: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: opening a pipe's /proc link is opening a FIFO.
    let pipe = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(link)
        .ok()?;
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return None;
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by nothing
    // else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    // SAFETY: fcntl on descriptors we own; a failure leaves the default size.
    unsafe {
        let size = libc::fcntl(pipe.as_raw_fd(), libc::F_GETPIPE_SZ);
        if size > 0 {
            libc::fcntl(write_end.as_raw_fd(), libc::F_SETPIPE_SZ, size);
        }
    }
    let want = usize::try_from(count).unwrap_or(usize::MAX);
    // SAFETY: tee between two pipe descriptors we hold.
    let n = unsafe {
        libc::tee(
            pipe.as_raw_fd(),
            write_end.as_raw_fd(),
            want,
            libc::SPLICE_F_NONBLOCK,
        )
    };
    if n <= 0 {
        return Some(Vec::new());
    }
    drop(write_end);
    let mut out = Vec::with_capacity(n as usize);
    std::fs::File::from(read_end).read_to_end(&mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_bytes_go_to_is_the_one_each_call_names() {
        let a = [3, 4, 5, 6, 7, 8];
        for nr in [
            libc::SYS_write,
            libc::SYS_writev,
            libc::SYS_pwrite64,
            libc::SYS_pwritev,
            libc::SYS_pwritev2,
            libc::SYS_sendfile,
        ] {
            assert_eq!(sends_to(nr, &a), Some(3), "{nr}");
        }
        assert_eq!(sends_to(libc::SYS_copy_file_range, &a), Some(5));
        assert_eq!(sends_to(libc::SYS_splice, &a), Some(5));
        assert_eq!(sends_to(libc::SYS_tee, &a), Some(4));
        for nr in [libc::SYS_read, libc::SYS_sendto, libc::SYS_sendmsg] {
            assert_eq!(sends_to(nr, &a), None, "{nr}");
        }
    }

    #[test]
    fn bytes_taken_from_a_position_are_not_compared_again() {
        assert!(sent_from_position(libc::SYS_sendfile, &[1, 3, 0, 9, 0, 0]));
        assert!(!sent_from_position(
            libc::SYS_sendfile,
            &[1, 3, 0x10, 9, 0, 0]
        ));
        assert!(sent_from_position(
            libc::SYS_copy_file_range,
            &[3, 0, 1, 0, 9, 0]
        ));
        assert!(!sent_from_position(
            libc::SYS_splice,
            &[3, 0x10, 1, 0, 9, 0]
        ));
        assert!(sent_from_position(libc::SYS_tee, &[3, 1, 9, 0, 0, 0]));
        assert!(!sent_from_position(libc::SYS_write, &[1, 0x10, 9, 0, 0, 0]));
    }

    #[test]
    fn a_pipe_is_read_without_taking_its_bytes_out() {
        let mut ends = [0; 2];
        // SAFETY: room for two descriptors.
        assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
        // SAFETY: pipe returned them; owned here only.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
        // SAFETY: writing from a valid buffer to our pipe.
        assert_eq!(
            unsafe { libc::write(w.as_raw_fd(), b"hello".as_ptr().cast(), 5) },
            5
        );
        let link = format!("/proc/self/fd/{}", r.as_raw_fd());
        assert_eq!(peek_pipe(&link, 3).as_deref(), Some(&b"hel"[..]));
        assert_eq!(peek_pipe(&link, 100).as_deref(), Some(&b"hello"[..]));
        let mut buf = [0u8; 8];
        // SAFETY: reading into a valid buffer from our pipe.
        let n = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        assert_eq!(&buf[..n as usize], b"hello", "still all there");
    }
}
