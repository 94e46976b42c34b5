//! bpf(2): maps, programs and links live in the kernel, outside the
//! process. The calls that return a descriptor get a placeholder in
//! replay, every other call is emulated, and the memory the kernel writes
//! (the attribute union, looked-up values and keys, a program's load log,
//! query and info results) is recorded from the union's layout
//! (linux/bpf.h).

use super::row::Add;
use super::ReplayAction;
use crate::{Result, TraceeMemory};

/// The commands that return a new descriptor: map and program creation,
/// pinned objects, descriptors by id, BTF, links, stats and iterators.
const MAKES_FD: &[u64] = &[0, 5, 7, 13, 14, 17, 18, 19, 28, 30, 32, 33, 36];
const MAP_LOOKUP_ELEM: u64 = 1;
const MAP_GET_NEXT_KEY: u64 = 4;
const PROG_LOAD: u64 = 5;
const OBJ_GET_INFO_BY_FD: u64 = 15;
const PROG_QUERY: u64 = 16;
const MAP_LOOKUP_AND_DELETE_ELEM: u64 = 21;
/// The union's size is the caller's; what rrc keeps of it is bounded.
const MAX_ATTR: u64 = 256;

/// Whether the call returns a new descriptor.
pub(super) fn makes_fd(args: &[u64; 6]) -> bool {
    MAKES_FD.contains(&args[0])
}

/// A placeholder for a new descriptor; the rest is emulated.
pub(super) fn action(args: &[u64; 6]) -> ReplayAction {
    if makes_fd(args) {
        ReplayAction::Placeholder
    } else {
        ReplayAction::Emulate
    }
}

/// A map's key or value size, from its descriptor's fdinfo (`key_size:`,
/// `value_size:`), when the memory is a live tracee's; `fallback` (any
/// non-zero size: replay writes the recorded bytes, whatever their
/// length) otherwise.
fn map_size(mem: &dyn TraceeMemory, fd: u32, field: &str, fallback: u64) -> u64 {
    let Some(tid) = mem.tid() else {
        return fallback;
    };
    std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(fallback)
}

/// The memory bpf wrote: the union itself (commands write results into
/// it), then what its pointers lead to.
pub(super) fn outputs(a: &[u64; 6], ret: i64, mem: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    let (cmd, attr) = (a[0], a[1]);
    let size = a[2].min(MAX_ATTR);
    let field = |off: u64| mem.read_u64(attr + off);
    let field32 = |off: u64| mem.read_u32(attr + off);
    if cmd == PROG_LOAD {
        // The verifier's log is written whether or not the load worked.
        add(attr, size);
        if size >= 40 && field32(24)? != 0 {
            add(field(32)?, u64::from(field32(28)?));
        }
        return Ok(());
    }
    if ret < 0 {
        return Ok(());
    }
    add(attr, size);
    match cmd {
        MAP_LOOKUP_ELEM | MAP_LOOKUP_AND_DELETE_ELEM if size >= 24 => {
            let len = map_size(mem, field32(0)?, "value_size:", 8);
            add(field(16)?, len);
        }
        MAP_GET_NEXT_KEY if size >= 24 => {
            let len = map_size(mem, field32(0)?, "key_size:", 4);
            add(field(16)?, len);
        }
        // The counts are written back into the union: recorded after the
        // call, but replay finds the regions before it writes the union
        // back, so a count of 0 must still make one region.
        PROG_QUERY if size >= 28 => add(field(16)?, 4 * u64::from(field32(24)?.max(1))),
        OBJ_GET_INFO_BY_FD if size >= 16 => add(field(8)?, u64::from(field32(4)?.max(1))),
        _ => {}
    }
    Ok(())
}
