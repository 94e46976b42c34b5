//! RLIMIT_AS while recording: rrc's own mappings (the sync log, the shim)
//! live in the program's address space, so a limit the program sets on
//! itself is raised by their size while it runs under rrc, and the
//! program reads back the limit it set.

use rrc_interposer::{Tracee, TraceeMemory};

/// Address space rrc adds to every recorded process: the sync log's
/// mapping and the shim, with room to spare. A limit the program puts on
/// its own (RLIMIT_AS: vsftpd sets 200 MB) is raised by this much while it
/// is recorded, or rrc's mappings would leave it too little and its own
/// mmap calls would fail where they succeed natively; the program still
/// reads back the limit it set. Replay does not apply such limits.
const RRC_ADDRESS_SPACE: u64 = rrc_synclog::Layout::TOTAL as u64 + (64 << 20);

/// setrlimit/prlimit64/getrlimit on RLIMIT_AS: where the new limit is
/// (with the program's own bytes, put back at the exit) and where the
/// kernel writes the old one.
#[derive(Default)]
pub(super) struct AddressLimit {
    new: Option<(u64, Vec<u8>)>,
    old: Option<u64>,
}

impl AddressLimit {
    pub(super) fn at_entry(tracee: &Tracee, nr: i64, args: &[u64; 6]) -> AddressLimit {
        let Some((new, old)) = limit_pointers(nr, args) else {
            return AddressLimit::default();
        };
        let mut limit = AddressLimit {
            new: None,
            old: (old != 0).then_some(old),
        };
        if new != 0 {
            if let Ok(bytes) = tracee.read(new, 16) {
                let raised = adjust_limit(&bytes, |v| v.saturating_add(RRC_ADDRESS_SPACE));
                if tracee.write(new, &raised).is_ok() {
                    limit.new = Some((new, bytes));
                }
            }
        }
        limit
    }

    /// Puts the program's own bytes back, and lowers the old limit the
    /// kernel reported by what was added.
    pub(super) fn at_exit(&self, tracee: &Tracee, ret: i64) {
        if let Some((addr, bytes)) = &self.new {
            let _ = tracee.write(*addr, bytes);
        }
        if let Some(addr) = self.old.filter(|_| ret == 0) {
            if let Ok(bytes) = tracee.read(addr, 16) {
                let lowered = adjust_limit(&bytes, |v| v.saturating_sub(RRC_ADDRESS_SPACE));
                let _ = tracee.write(addr, &lowered);
            }
        }
    }
}

/// The (new limit, old limit) pointers of a call on RLIMIT_AS (0: none),
/// or `None` for any other call.
fn limit_pointers(nr: i64, args: &[u64; 6]) -> Option<(u64, u64)> {
    let as_limit = libc::RLIMIT_AS as u64;
    match nr {
        libc::SYS_setrlimit if args[0] == as_limit => Some((args[1], 0)),
        libc::SYS_getrlimit if args[0] == as_limit => Some((0, args[1])),
        libc::SYS_prlimit64 if args[1] == as_limit => Some((args[2], args[3])),
        _ => None,
    }
}

/// Applies `f` to both fields of a `struct rlimit` that are not
/// RLIM_INFINITY.
fn adjust_limit(bytes: &[u8], f: impl Fn(u64) -> u64) -> Vec<u8> {
    bytes
        .chunks(8)
        .flat_map(|c| {
            let v = u64::from_ne_bytes(c.try_into().unwrap_or([0xff; 8]));
            let v = if v == libc::RLIM_INFINITY { v } else { f(v) };
            v.to_ne_bytes()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rlimit(cur: u64, max: u64) -> Vec<u8> {
        [cur.to_ne_bytes(), max.to_ne_bytes()].concat()
    }

    #[test]
    fn adjust_limit_changes_finite_fields_only() {
        let bytes = rlimit(200 << 20, libc::RLIM_INFINITY);
        let raised = adjust_limit(&bytes, |v| v + RRC_ADDRESS_SPACE);
        assert_eq!(
            raised,
            rlimit((200 << 20) + RRC_ADDRESS_SPACE, libc::RLIM_INFINITY)
        );
        let lowered = adjust_limit(&raised, |v| v.saturating_sub(RRC_ADDRESS_SPACE));
        assert_eq!(lowered, bytes, "lowering undoes raising");
    }

    #[test]
    fn adjust_limit_treats_a_short_field_as_infinite() {
        // A read that came back short leaves the odd bytes alone rather
        // than panicking (it is padded to RLIM_INFINITY, then unchanged).
        let out = adjust_limit(&[1, 2, 3], |v| v + 1);
        assert_eq!(out, libc::RLIM_INFINITY.to_ne_bytes().to_vec());
    }

    #[test]
    fn only_address_space_limits_are_adjusted() {
        let as_limit = libc::RLIMIT_AS as u64;
        let nofile = libc::RLIMIT_NOFILE as u64;
        let args = |a: u64, b: u64, c: u64, d: u64| [a, b, c, d, 0, 0];
        assert_eq!(
            limit_pointers(libc::SYS_setrlimit, &args(as_limit, 0x10, 0, 0)),
            Some((0x10, 0))
        );
        assert_eq!(
            limit_pointers(libc::SYS_getrlimit, &args(as_limit, 0x20, 0, 0)),
            Some((0, 0x20))
        );
        assert_eq!(
            limit_pointers(libc::SYS_prlimit64, &args(0, as_limit, 0x30, 0x40)),
            Some((0x30, 0x40))
        );
        assert_eq!(
            limit_pointers(libc::SYS_setrlimit, &args(nofile, 0x10, 0, 0)),
            None
        );
        assert_eq!(
            limit_pointers(libc::SYS_write, &args(as_limit, 0, 0, 0)),
            None
        );
    }
}
