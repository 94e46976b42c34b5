//! Descriptors passed in ancillary data (SCM_RIGHTS), read from the memory
//! a recvmsg wrote as the model lists it.

/// The descriptors a recvmsg or recvmmsg received through SCM_RIGHTS, from its
/// recorded outputs (`outputs()` lists the returned msg_controllen, the
/// control bytes and msg_flags last).
pub fn received_fds(nr: i64, ret: i64, outputs: &[Vec<u8>]) -> Vec<i32> {
    let n = outputs.len();
    if nr == libc::SYS_recvmmsg && ret > 0 {
        return recvmmsg_fds(outputs);
    }
    if nr != libc::SYS_recvmsg || ret < 0 || n < 3 {
        return Vec::new();
    }
    let Ok(len_bytes) = <[u8; 8]>::try_from(outputs[n - 3].as_slice()) else {
        return Vec::new();
    };
    let len = usize::try_from(u64::from_le_bytes(len_bytes)).unwrap_or(usize::MAX);
    scm_rights(&outputs[n - 2], len)
}

/// The descriptors a recvmmsg received: each message's regions end with
/// its returned msg_controllen (8 bytes), the control bytes of that
/// length, and msg_flags (4 bytes); the data before them varies in
/// number of regions, so the three are found by their shape.
fn recvmmsg_fds(outputs: &[Vec<u8>]) -> Vec<i32> {
    outputs
        .windows(3)
        .filter_map(|w| {
            let len = u64::from_le_bytes(<[u8; 8]>::try_from(w[0].as_slice()).ok()?);
            let fits = len == w[1].len() as u64 && w[2].len() == 4 && !w[1].is_empty();
            fits.then(|| scm_rights(&w[1], w[1].len()))
        })
        .flatten()
        .collect()
}

/// The SCM_RIGHTS descriptors in the first `len` bytes of a control
/// buffer; a malformed header ends the walk.
pub fn scm_rights(control: &[u8], len: usize) -> Vec<i32> {
    let len = len.min(control.len());
    let mut fds = Vec::new();
    let mut at = 0;
    // struct cmsghdr: u64 cmsg_len, i32 level, i32 type, data; 8-aligned.
    while at + 16 <= len {
        let word = |o: usize, w: usize| {
            control.get(at + o..at + o + w).map_or(0, |b| {
                b.iter().rev().fold(0u64, |v, x| v << 8 | u64::from(*x))
            })
        };
        let cmsg_len = usize::try_from(word(0, 8)).unwrap_or(usize::MAX);
        let (level, kind) = (word(8, 4) as i32, word(12, 4) as i32);
        if cmsg_len < 16 || cmsg_len > len - at {
            break;
        }
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            for i in 0..(cmsg_len - 16) / 4 {
                fds.push(word(16 + 4 * i, 4) as i32);
            }
        }
        at += cmsg_len.div_ceil(8) * 8;
    }
    fds
}
