//! The memory the kernel writes: `outputs()` reads the table's
//! description, and the argument-dependent layouts are the functions here,
//! which rows point to with `Out::Custom`.

use libc::EINTR;

use super::ioctl::ioctl_outputs;
use super::row::{Add, Outputs};
use super::table::row;
use super::Region;
use crate::{Result, TraceeMemory};

/// Memory the kernel wrote for a call that returned `ret`, read (record)
/// or to be written (replay) at syscall exit. In replay, `args` and the
/// memory are the live ones, `ret` the recorded one.
pub fn outputs(
    nr: libc::c_long,
    a: &[u64; 6],
    ret: i64,
    mem: &dyn TraceeMemory,
) -> Result<Vec<Region>> {
    let mut out = Vec::new();
    let mut add = |addr: u64, len: u64| {
        if addr != 0 && len > 0 {
            out.push(Region {
                addr,
                len: len as usize,
            });
        }
    };
    let Some(row) = row(nr) else {
        return Ok(out);
    };
    match row.outputs {
        Outputs::None => {}
        Outputs::Returned(arg, size) => add(a[arg], returned(ret) * size),
        Outputs::OnSuccess(fixed) if ret >= 0 => {
            for &(arg, len) in fixed {
                add(a[arg], len);
            }
        }
        Outputs::OnSuccess(_) => {}
        Outputs::Always(fixed) => {
            for &(arg, len) in fixed {
                add(a[arg], len);
            }
        }
        Outputs::Custom(f) => f(a, ret, mem, &mut add)?,
    }
    Ok(out)
}

/// What a call returned as a count: 0 for an error.
fn returned(ret: i64) -> u64 {
    ret.max(0) as u64
}

const RET_EINTR: i64 = -(EINTR as i64);

/// The largest socket address rrc records.
const SOCKADDR_MAX: u64 = 128;

pub(super) fn recvfrom(
    a: &[u64; 6],
    ret: i64,
    mem: &dyn TraceeMemory,
    add: &mut Add,
) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    add(a[1], returned(ret));
    if a[4] != 0 && a[5] != 0 {
        let alen = u64::from(mem.read_u32(a[5])?);
        add(a[5], 4);
        add(a[4], alen.min(SOCKADDR_MAX));
    }
    Ok(())
}

/// readv, preadv, preadv2: what was read, spread over the iovecs.
pub(super) fn readv(a: &[u64; 6], ret: i64, mem: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    scatter(mem, a[1], a[2], returned(ret), add)
}

pub(super) fn recvmsg(a: &[u64; 6], ret: i64, mem: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    let m = a[1];
    let name = mem.read_u64(m)?;
    let namelen = u64::from(mem.read_u32(m + 8)?);
    let iov = mem.read_u64(m + 16)?;
    let iovlen = mem.read_u64(m + 24)?;
    let control = mem.read_u64(m + 32)?;
    let controllen = mem.read_u64(m + 40)?;
    add(m + 8, 4);
    add(name, namelen.min(SOCKADDR_MAX));
    scatter(mem, iov, iovlen, returned(ret), add)?;
    // The returned msg_controllen, the control bytes and msg_flags come
    // last, in this order: replay finds received descriptors there (see
    // `cmsg::received_fds`).
    add(m + 40, 8);
    add(control, controllen.min(1 << 16));
    add(m + 48, 4);
    Ok(())
}

/// An interrupted sleep writes the time it had left.
pub(super) fn nanosleep(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret == RET_EINTR {
        add(a[1], 16);
    }
    Ok(())
}

/// The raw call returns -EINTR (glibc turns it into a positive code); an
/// absolute sleep leaves `remain` alone.
pub(super) fn clock_nanosleep(
    a: &[u64; 6],
    ret: i64,
    _: &dyn TraceeMemory,
    add: &mut Add,
) -> Result<()> {
    if ret == RET_EINTR && a[1] & libc::TIMER_ABSTIME as u64 == 0 {
        add(a[3], 16);
    }
    Ok(())
}

/// The status only when a child was reaped, the usage whenever it succeeded.
pub(super) fn wait4(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    if ret > 0 {
        add(a[1], 4);
    }
    add(a[3], 144);
    Ok(())
}

/// The pollfd array (8 bytes each), for their revents.
pub(super) fn poll(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret >= 0 {
        add(a[0], a[1].min(1 << 16) * 8);
    }
    Ok(())
}

/// An interrupted ppoll still writes the time it had left (not the fds).
pub(super) fn ppoll(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret >= 0 || ret == RET_EINTR {
        if ret >= 0 {
            add(a[0], a[1].min(1 << 16) * 8);
        }
        add(a[2], 16);
    }
    Ok(())
}

/// select and pselect6: the three descriptor sets, and the time left
/// (which an interrupted call writes too).
pub(super) fn select(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret >= 0 || ret == RET_EINTR {
        if ret >= 0 {
            let words = (a[0].min(1 << 16)).div_ceil(64) * 8;
            add(a[1], words);
            add(a[2], words);
            add(a[3], words);
        }
        add(a[4], 16);
    }
    Ok(())
}

/// accept, accept4, getsockname, getpeername: the address and its length.
pub(super) fn sockaddr(
    a: &[u64; 6],
    ret: i64,
    mem: &dyn TraceeMemory,
    add: &mut Add,
) -> Result<()> {
    // The kernel sets the length even without an address buffer (a
    // program asking only for the size).
    if ret >= 0 && a[2] != 0 {
        let alen = u64::from(mem.read_u32(a[2])?);
        add(a[2], 4);
        if a[1] != 0 {
            add(a[1], alen.min(SOCKADDR_MAX));
        }
    }
    Ok(())
}

/// netfilter's IPT_SO_SET_REPLACE and IP6T_SO_SET_REPLACE (option 64 at
/// SOL_IP or SOL_IPV6) hand back the replaced table's counters: the
/// replace structure gives their number (offset 84) and where they go
/// (a pointer at offset 88), 16 bytes each.
pub(super) fn setsockopt(
    a: &[u64; 6],
    ret: i64,
    mem: &dyn TraceeMemory,
    add: &mut Add,
) -> Result<()> {
    const SET_REPLACE: i32 = 64;
    let level = a[1] as i32;
    let replace = (level == libc::SOL_IP || level == libc::SOL_IPV6) && a[2] as i32 == SET_REPLACE;
    if ret == 0 && replace && a[4] & 0xffff_ffff >= 96 {
        let count = u64::from(mem.read_u32(a[3] + 84)?);
        let counters = mem.read_u64(a[3] + 88)?;
        if counters != 0 {
            add(counters, count.min(1 << 16) * 16);
        }
    }
    Ok(())
}

pub(super) fn getsockopt(
    a: &[u64; 6],
    ret: i64,
    mem: &dyn TraceeMemory,
    add: &mut Add,
) -> Result<()> {
    if ret >= 0 && a[4] != 0 {
        let len = u64::from(mem.read_u32(a[4])?);
        add(a[4], 4);
        add(a[3], len.min(1024));
    }
    Ok(())
}

pub(super) fn ioctl(a: &[u64; 6], ret: i64, mem: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret >= 0 {
        ioctl_outputs(mem, a[1], a[2], ret, add)?;
    }
    Ok(())
}

/// asm-generic/fcntl.h and linux/fcntl.h: queries libc does not name for
/// x86-64. The owner ones write 8 bytes, the write-lifetime hints a u64.
pub const F_GETOWN_EX: i32 = 16;
pub const F_GETOWNER_UIDS: i32 = 17;
pub const F_GET_RW_HINT: i32 = 1035;
pub const F_GET_FILE_RW_HINT: i32 = 1037;

/// The queries that write at their argument: the lock ones (a struct
/// flock), the owner ones (`struct f_owner_ex`, two uids) and the
/// write-lifetime hints (a u64).
pub(super) fn fcntl(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    match a[1] as i32 {
        libc::F_GETLK | libc::F_OFD_GETLK => add(a[2], 32),
        F_GETOWN_EX | F_GETOWNER_UIDS | F_GET_RW_HINT | F_GET_FILE_RW_HINT => add(a[2], 8),
        _ => {}
    }
    Ok(())
}

/// syslog's reading actions (2: read, 3: read all, 4: read and clear)
/// fill `ret` bytes of the buffer.
pub(super) fn syslog(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret > 0 && matches!(a[0] as i32, 2..=4) {
        add(a[1], returned(ret).min(a[2] & 0xffff_ffff));
    }
    Ok(())
}

/// A zero size asks only for the count: nothing is written.
pub(super) fn getgroups(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret >= 0 && a[0] > 0 {
        add(a[1], returned(ret) * 4);
    }
    Ok(())
}

pub(super) fn rt_sigpending(
    a: &[u64; 6],
    ret: i64,
    _: &dyn TraceeMemory,
    add: &mut Add,
) -> Result<()> {
    if ret >= 0 {
        add(a[0], a[1].min(128));
    }
    Ok(())
}

/// One byte per page of the range.
pub(super) fn mincore(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret >= 0 {
        add(a[2], a[1].div_ceil(4096));
    }
    Ok(())
}

/// recvmmsg fills up to `ret` mmsghdr entries (64 bytes each: a msghdr
/// and the received length).
pub(super) fn recvmmsg(
    a: &[u64; 6],
    ret: i64,
    mem: &dyn TraceeMemory,
    add: &mut Add,
) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    for i in 0..returned(ret).min(1024) {
        let m = a[1] + i * 64;
        let len = u64::from(mem.read_u32(m + 56)?);
        let name = mem.read_u64(m)?;
        let namelen = u64::from(mem.read_u32(m + 8)?);
        let iov = mem.read_u64(m + 16)?;
        let iovlen = mem.read_u64(m + 24)?;
        let control = mem.read_u64(m + 32)?;
        let controllen = mem.read_u64(m + 40)?;
        // msg_len first: the data's regions follow from it, and replay
        // finds each region after writing the ones before it.
        add(m + 56, 4);
        add(m + 8, 4);
        add(name, namelen.min(SOCKADDR_MAX));
        scatter(mem, iov, iovlen, len, add)?;
        // As for recvmsg: the returned msg_controllen, the control bytes
        // (received descriptors, packet info), then msg_flags.
        add(m + 40, 8);
        add(control, controllen.min(1 << 16));
        add(m + 48, 4);
    }
    Ok(())
}

/// The kernel writes each sent message's length.
pub(super) fn sendmmsg(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret >= 0 {
        for i in 0..returned(ret).min(1024) {
            add(a[1] + i * 64 + 56, 4);
        }
    }
    Ok(())
}

/// Splits `total` bytes across an iovec array.
fn scatter(
    mem: &dyn TraceeMemory,
    iov: u64,
    count: u64,
    mut total: u64,
    add: &mut Add,
) -> Result<()> {
    for i in 0..count.min(1024) {
        if total == 0 {
            break;
        }
        let base = mem.read_u64(iov + i * 16)?;
        let len = mem.read_u64(iov + i * 16 + 8)?;
        let take = len.min(total);
        add(base, take);
        total -= take;
    }
    Ok(())
}

/// System V IPC commands without the IPC_64 flag (the layout is the same
/// on x86-64 either way).
pub(super) fn ipc_cmd(cmd: u64) -> u64 {
    cmd & 0xffff_ffff & !0x100
}

/// semctl's struct semid_ds and struct seminfo, and GETALL's values.
pub(super) fn semctl(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    match ipc_cmd(a[2]) as i32 {
        libc::IPC_STAT | libc::SEM_STAT | libc::SEM_STAT_ANY => add(a[3], 104),
        libc::IPC_INFO | libc::SEM_INFO => add(a[3], 40),
        libc::GETALL => add(a[3], 2 * semaphores_in_set(a[0]).unwrap_or(1)),
        _ => {}
    }
    Ok(())
}

/// How many semaphores set `semid` has (GETALL writes one unsigned
/// short each), asked of the kernel by the tracer, which shares the
/// program's IPC namespace (unless the program made its own). In replay
/// the set may not exist: any size does there, since replay writes the
/// recorded bytes whatever the region's length.
fn semaphores_in_set(semid: u64) -> Option<u64> {
    // SAFETY: semid_ds is plain data, for which all zeroes are valid.
    let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes one struct semid_ds into `ds`; the other
    // arguments are plain values.
    let r = unsafe { libc::semctl(semid as libc::c_int, 0, libc::IPC_STAT, &mut ds) };
    let n = ds.sem_nsems as u64;
    (r == 0 && n > 0).then_some(n)
}

/// The kernel's struct sched_attr today (linux/sched/types.h, with the
/// utilization clamps).
const SCHED_ATTR_LEN: u64 = 56;

/// sched_getattr: the struct, cut to the size the caller gave.
pub(super) fn sched_getattr(
    a: &[u64; 6],
    ret: i64,
    _: &dyn TraceeMemory,
    add: &mut Add,
) -> Result<()> {
    if ret >= 0 {
        add(a[1], a[2].min(SCHED_ATTR_LEN));
    }
    Ok(())
}

/// linux/shm.h's commands (not in libc).
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;

/// shmctl's struct shmid_ds, struct shminfo and struct shm_info.
pub(super) fn shmctl(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    match ipc_cmd(a[1]) as i32 {
        libc::IPC_STAT | SHM_STAT | SHM_STAT_ANY => add(a[2], 112),
        libc::IPC_INFO => add(a[2], 72),
        SHM_INFO => add(a[2], 48),
        _ => {}
    }
    Ok(())
}

/// linux/msg.h (not in libc).
const MSG_STAT_ANY: i32 = 13;

/// msgctl's struct msqid_ds and struct msginfo.
pub(super) fn msgctl(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    match ipc_cmd(a[1]) as i32 {
        libc::IPC_STAT | libc::MSG_STAT | MSG_STAT_ANY => add(a[2], 120),
        libc::IPC_INFO | libc::MSG_INFO => add(a[2], 32),
        _ => {}
    }
    Ok(())
}

/// msgrcv: the message's type (8 bytes) and the text it returned.
pub(super) fn msgrcv(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret >= 0 {
        add(a[1], 8 + returned(ret));
    }
    Ok(())
}

/// mq_timedreceive: the message, and its priority when asked for.
pub(super) fn mq_timedreceive(
    a: &[u64; 6],
    ret: i64,
    _: &dyn TraceeMemory,
    add: &mut Add,
) -> Result<()> {
    if ret >= 0 {
        add(a[1], returned(ret));
        add(a[3], 4);
    }
    Ok(())
}

const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// capget: the kernel writes its own version into the header when the
/// program's is unknown, and one (v1) or two (v2, v3) 12-byte data
/// structs, as the header's version says.
pub(super) fn capget(a: &[u64; 6], ret: i64, mem: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    add(a[0], 4);
    if ret < 0 || a[0] == 0 {
        return Ok(());
    }
    match mem.read_u32(a[0])? {
        CAP_V1 => add(a[1], 12),
        CAP_V2 | CAP_V3 => add(a[1], 24),
        _ => {}
    }
    Ok(())
}

/// quotactl's getters (the subcommand is `cmd >> 8`): struct if_dqblk,
/// if_dqinfo, the format, struct if_nextdqblk.
pub(super) fn quotactl(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    match (a[0] & 0xffff_ffff) >> 8 {
        0x8007 => add(a[3], 72),
        0x8005 => add(a[3], 24),
        0x8004 => add(a[3], 4),
        0x8009 => add(a[3], 80),
        _ => {}
    }
    Ok(())
}

/// get_mempolicy: the mode, and the node mask, whose size the kernel
/// rounds from `maxnode - 1` bits up to whole longs.
pub(super) fn get_mempolicy(
    a: &[u64; 6],
    ret: i64,
    _: &dyn TraceeMemory,
    add: &mut Add,
) -> Result<()> {
    if ret < 0 {
        return Ok(());
    }
    add(a[0], 4);
    let bits = a[2].saturating_sub(1).min(1 << 16);
    add(a[1], bits.div_ceil(64) * 8);
    Ok(())
}

/// seccomp(SECCOMP_GET_NOTIF_SIZES) writes three 16-bit sizes.
pub(super) fn seccomp(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if a[0] == 3 && ret == 0 {
        add(a[2], 6);
    }
    Ok(())
}

/// keyctl's DESCRIBE, READ and GET_SECURITY return the full size and copy
/// at most the buffer's length (arg4) into the buffer (arg3).
pub(super) fn keyctl(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if matches!(a[0], 6 | 11 | 17) && ret > 0 {
        add(a[2], returned(ret).min(a[3]));
    }
    Ok(())
}

/// prctl's options (linux/prctl.h) that are trapped and write memory.
pub(crate) const PR_GET_SECCOMP: u32 = 21;
pub(crate) const PR_SET_SECCOMP: u32 = 22;
pub(crate) const PR_GET_TSC: u32 = 25;
pub(crate) const PR_SET_TSC: u32 = 26;
pub(crate) const PR_SCHED_CORE: u32 = 62;
const PR_SCHED_CORE_GET: u64 = 0;

/// PR_GET_TSC writes an int at arg2; PR_SCHED_CORE_GET a 64-bit cookie at
/// arg5.
pub(super) fn prctl(a: &[u64; 6], ret: i64, _: &dyn TraceeMemory, add: &mut Add) -> Result<()> {
    if ret != 0 {
        return Ok(());
    }
    match a[0] as u32 {
        PR_GET_TSC => add(a[1], 4),
        PR_SCHED_CORE if a[1] == PR_SCHED_CORE_GET => add(a[4], 8),
        _ => {}
    }
    Ok(())
}
