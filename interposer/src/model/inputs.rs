//! The program data a syscall is given that replay compares byte for
//! byte: `inputs()` reads the table's description, `read_inputs()` reads
//! the bytes from the tracee.

use std::borrow::Cow;

use super::row::Inputs;
use super::table::row;
use super::{InputSpec, Region};
use crate::TraceeMemory;

/// Inputs larger than this are compared by their first MAX_INPUT bytes.
pub const MAX_INPUT: u64 = 64 << 20;

/// The largest socket address rrc compares.
const SOCKADDR_MAX: u64 = 128;

fn bytes(addr: u64, len: u64) -> InputSpec {
    InputSpec::Bytes(Region {
        addr,
        len: len.min(MAX_INPUT) as usize,
    })
}

/// A socket address whose length is an `int` (the upper half of the
/// register is whatever the caller left).
fn sockaddr(addr: u64, len: u64) -> InputSpec {
    InputSpec::SockAddr(Region {
        addr,
        len: (len & 0xffff_ffff).min(SOCKADDR_MAX) as usize,
    })
}

/// Program data given to the syscall that replay checks byte for byte.
/// Read at the syscall's entry.
pub fn inputs(nr: libc::c_long, a: &[u64; 6]) -> Vec<InputSpec> {
    let Some(row) = row(nr) else {
        return Vec::new();
    };
    match row.inputs {
        // sendmsg's data is found only by reading its msghdr: see
        // `read_inputs`.
        Inputs::None | Inputs::MsgHdr(_) => Vec::new(),
        Inputs::Buf(addr, len) => vec![bytes(a[addr], a[len])],
        Inputs::Gather(iov, count) => vec![InputSpec::Iovec {
            addr: a[iov],
            count: a[count],
            limit: MAX_INPUT,
        }],
        Inputs::Paths(args) => args
            .iter()
            .map(|&i| a[i])
            .filter(|&addr| addr != 0)
            .map(InputSpec::CString)
            .collect(),
        Inputs::SockAddr(addr, len) => vec![sockaddr(a[addr], a[len])],
        Inputs::Custom(f) => f(a),
    }
}

/// sendto: the bytes, and the destination address when there is one.
pub(super) fn sendto_inputs(a: &[u64; 6]) -> Vec<InputSpec> {
    let mut v = vec![bytes(a[1], a[2])];
    if a[4] != 0 {
        v.push(sockaddr(a[4], a[5]));
    }
    v
}

/// `sendmsg` gathers from a msghdr; read it to find the iovecs.
pub fn sendmsg_inputs(mem: &dyn TraceeMemory, msghdr: u64) -> crate::Result<Vec<InputSpec>> {
    let iov = mem.read_u64(msghdr + 16)?;
    let iovlen = mem.read_u64(msghdr + 24)?;
    Ok(vec![InputSpec::Iovec {
        addr: iov,
        count: iovlen,
        limit: MAX_INPUT,
    }])
}

/// Reads the program data a syscall is given, as replay compares it.
pub fn read_inputs(tracee: &crate::Tracee, nr: libc::c_long, args: &[u64; 6]) -> Vec<Vec<u8>> {
    let specs = match row(nr).map(|r| r.inputs) {
        Some(Inputs::MsgHdr(msg)) => sendmsg_inputs(tracee, args[msg]).unwrap_or_default(),
        _ => inputs(nr, args),
    };
    specs
        .into_iter()
        .map(|spec| read_input(tracee, spec))
        .collect()
}

/// The inputs of a call read from memory other than the live process
/// (the fast path's snapshots of it), borrowed from it where it holds
/// them whole; `None` for a call whose inputs need the process itself
/// (paths, file contents). What the memory cannot give reads as empty:
/// replay then reports the difference rather than failing.
pub fn read_inputs_from<'m>(
    mem: &'m dyn TraceeMemory,
    nr: libc::c_long,
    args: &[u64; 6],
) -> Option<Vec<Cow<'m, [u8]>>> {
    let specs = match row(nr).map(|r| r.inputs) {
        Some(Inputs::MsgHdr(msg)) => sendmsg_inputs(mem, args[msg]).ok()?,
        _ => inputs(nr, args),
    };
    specs
        .into_iter()
        .map(|spec| match spec {
            InputSpec::Bytes(r) => Some(mem.bytes(r.addr, r.len).unwrap_or_default()),
            InputSpec::SockAddr(r) => Some(match mem.bytes(r.addr, r.len).unwrap_or_default() {
                Cow::Borrowed(b) => Cow::Borrowed(&b[..sockaddr_meaningful_len(b)]),
                Cow::Owned(mut b) => {
                    b.truncate(sockaddr_meaningful_len(&b));
                    Cow::Owned(b)
                }
            }),
            InputSpec::Iovec { addr, count, limit } => {
                Some(Cow::Owned(read_gather(mem, addr, count, limit)))
            }
            InputSpec::CString(_) | InputSpec::FileRange { .. } => None,
        })
        .collect()
}

fn read_input(tracee: &crate::Tracee, spec: InputSpec) -> Vec<u8> {
    match spec {
        InputSpec::Bytes(r) => tracee.read(r.addr, r.len).unwrap_or_default(),
        InputSpec::CString(addr) => tracee.read_cstring(addr, 4096).unwrap_or_default(),
        InputSpec::SockAddr(r) => {
            let mut b = tracee.read(r.addr, r.len).unwrap_or_default();
            b.truncate(sockaddr_meaningful_len(&b));
            b
        }
        InputSpec::FileRange {
            fd,
            offset_ptr,
            count,
        } => super::sent::read_file_range(tracee, fd, offset_ptr, count).unwrap_or_default(),
        InputSpec::Iovec { addr, count, limit } => read_gather(tracee, addr, count, limit),
    }
}

/// How many bytes of a socket address mean something: padding and
/// whatever follows a Unix path may be uninitialised.
pub fn sockaddr_meaningful_len(b: &[u8]) -> usize {
    let family = b.get(..2).map_or(0, |f| u16::from_le_bytes([f[0], f[1]]));
    let meaningful = match i32::from(family) {
        libc::AF_UNIX => {
            // Up to the path's NUL; an abstract address (leading NUL) is
            // all of the given length.
            match b.get(2) {
                Some(0) => b.len(),
                _ => b
                    .iter()
                    .skip(2)
                    .position(|c| *c == 0)
                    .map_or(b.len(), |p| p + 2),
            }
        }
        libc::AF_INET => 8, // family, port, address; not sin_zero
        libc::AF_INET6 => 28,
        _ => b.len(),
    };
    meaningful.min(b.len())
}

/// The bytes `count` iovecs at `addr` point to, up to `limit` in all; an
/// unreadable iovec ends the list, an unreadable buffer reads as empty.
pub fn read_gather(mem: &dyn TraceeMemory, addr: u64, count: u64, limit: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count.min(1024) {
        let (Ok(base), Ok(len)) = (mem.read_u64(addr + i * 16), mem.read_u64(addr + i * 16 + 8))
        else {
            break;
        };
        let take = len.min(limit.saturating_sub(out.len() as u64));
        out.extend_from_slice(&mem.bytes(base, take as usize).unwrap_or_default());
    }
    out
}
