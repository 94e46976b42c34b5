//! What an ioctl writes, decoded from its request number.

use super::row::Add;
use crate::{Result, TraceeMemory};

/// Size of `struct ifreq` (an interface name and a union of 24 bytes).
const IFREQ_LEN: u64 = 40;
/// Size of the kernel's `struct termios` (asm-generic/termbits.h).
const KERNEL_TERMIOS_LEN: u64 = 36;
/// Size of `struct arpreq`.
const ARPREQ_LEN: u64 = 68;

/// linux/vt.h: the first free console (an int).
const VT_OPENQRY: libc::c_ulong = 0x5600;
/// linux/vt.h: struct vt_stat, three shorts.
const VT_GETSTATE: libc::c_ulong = 0x5603;
/// asm-generic/ioctls.h: terminal requests libc does not name. These
/// write: TCGETA a struct termio (18 bytes), TIOCGLCKTRMIOS a (kernel)
/// struct termios, TIOCGETD/TIOCGSOFTCAR/TIOCSERGETLSR an int, TIOCGICOUNT a
/// struct serial_icounter_struct (20 ints), TIOCLINUX at most the one
/// byte its subcode is read from (a shift state, a console number).
const TCGETA: libc::c_ulong = 0x5405;
const TIOCGLCKTRMIOS: libc::c_ulong = 0x5456;
const TIOCGETD: libc::c_ulong = 0x5424;
const TIOCGSOFTCAR: libc::c_ulong = 0x5419;
const TIOCSERGETLSR: libc::c_ulong = 0x5459;
const TIOCGICOUNT: libc::c_ulong = 0x545d;
const TIOCLINUX: libc::c_ulong = 0x541c;
/// These only take data in, or nothing.
const TTY_SETTERS: &[libc::c_ulong] = &[
    0x5406, // TCSETA
    0x5407, // TCSETAW
    0x5408, // TCSETAF
    0x5409, // TCSBRK
    0x540a, // TCXONC
    0x540b, // TCFLSH
    0x540c, // TIOCEXCL
    0x540d, // TIOCNXCL
    0x5412, // TIOCSTI
    0x541a, // TIOCSSOFTCAR
    0x5420, // TIOCPKT
    0x5422, // TIOCNOTTY
    0x5423, // TIOCSETD
    0x5425, // TCSBRKP
    0x5427, // TIOCSBRK
    0x5428, // TIOCCBRK
    0x5457, // TIOCSLCKTRMIOS
];
/// asm-generic/ioctls.h: opens the peer of a pseudo-terminal master,
/// returning a new descriptor (its argument is the open's flags).
pub const TIOCGPTPEER: libc::c_ulong = 0x5441;
/// linux/sockios.h: the old bridge interface. Its argument points to
/// three unsigned longs: a command and its two arguments; only
/// BRCTL_GET_BRIDGES writes, one int per bridge (the return value) into
/// the buffer the second one points to.
const SIOCGIFBR: libc::c_ulong = 0x8940;
const SIOCSIFBR: libc::c_ulong = 0x8941;
const BRCTL_GET_BRIDGES: u64 = 1;
/// linux/kd.h: the keyboard mode (an int).
const KDGKBMODE: libc::c_ulong = 0x4b44;
/// linux/sockios.h: interface, route and bridge changes, which only take
/// data in (replay emulates them: the network is outside the program).
const NET_SETTERS: &[libc::c_ulong] = &[
    0x890b, // SIOCADDRT
    0x890c, // SIOCDELRT
    0x8914, // SIOCSIFFLAGS
    0x8916, // SIOCSIFADDR
    0x891c, // SIOCSIFNETMASK
    0x89a0, // SIOCBRADDBR
    0x89a1, // SIOCBRDELBR
    0x89a2, // SIOCBRADDIF
    0x89a3, // SIOCBRDELIF
];
/// linux/if_tun.h: encoded as taking or giving an int, but both write a
/// whole struct ifreq back (the interface's name and flags).
const TUNSETIFF: libc::c_ulong = 0x400454ca;
const TUNGETIFF: libc::c_ulong = 0x800454d2;
/// linux/fs.h: `_IOWR('f', 11, struct fiemap)`, whose encoded size is
/// the 32-byte header only: the kernel also fills `fm_mapped_extents`
/// extents of 56 bytes after it (none when `fm_extent_count` is 0, a
/// program asking only for the count).
const FS_IOC_FIEMAP: libc::c_ulong = 0xc020660b;
const FIEMAP_HEADER: u64 = 32;
const FIEMAP_EXTENT: u64 = 56;
/// linux/perf_event.h: `_IO('$', n)`, taking an integer, writing nothing.
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
const PERF_EVENT_IOC_RESET: libc::c_ulong = 0x2403;

/// ioctl numbers encode their direction in bits 30-31 (1: the program
/// passes data in, 2: the kernel writes data out) and the size of that
/// data in bits 16-29, except for old numbers that predate the scheme
/// (direction 0), which only a table can describe.
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

fn ioc_dir(request: u64) -> u64 {
    (request >> 30) & 3
}

fn ioc_size(request: u64) -> u64 {
    (request >> 16) & 0x3fff
}

/// An ioctl's request as the kernel reads it: an `unsigned int`, whatever
/// a sign-extending caller left in the register's upper half.
pub fn ioctl_request(arg: u64) -> u64 {
    arg & 0xffff_ffff
}

/// Known ioctls that write a fixed amount of memory at their argument.
pub fn ioctl_output_len(request: u64) -> Option<u64> {
    Some(match ioctl_request(request) as libc::c_ulong {
        // The kernel's struct termios (4 flags, the line discipline and
        // 19 control characters), not glibc's larger one: writing more
        // back in replay would overwrite what follows it on the stack (a
        // stack protector's canary, which differs from run to run).
        libc::TCGETS | TIOCGLCKTRMIOS => KERNEL_TERMIOS_LEN,
        TCGETA => 18,
        TIOCGETD | TIOCGSOFTCAR | TIOCSERGETLSR | KDGKBMODE => 4,
        TIOCGICOUNT => 80,
        TIOCLINUX => 1,
        libc::TIOCGWINSZ => 8,
        libc::FIONREAD | libc::TIOCGPGRP | libc::TIOCOUTQ | libc::TIOCGSID | libc::TIOCMGET => 4,
        VT_OPENQRY => 4,
        VT_GETSTATE => 6,
        libc::SIOCGIFNAME
        | libc::SIOCGIFINDEX
        | libc::SIOCGIFFLAGS
        | libc::SIOCGIFADDR
        | libc::SIOCGIFDSTADDR
        | libc::SIOCGIFBRDADDR
        | libc::SIOCGIFNETMASK
        | libc::SIOCGIFMETRIC
        | libc::SIOCGIFMTU
        | libc::SIOCGIFHWADDR
        | libc::SIOCGIFTXQLEN
        | TUNSETIFF
        | TUNGETIFF => IFREQ_LEN,
        libc::SIOCGARP | libc::SIOCGRARP => ARPREQ_LEN,
        // Encoded: the kernel writes at most the encoded size.
        r if ioc_dir(r) & IOC_READ != 0 => ioc_size(r),
        _ => return None,
    })
}

/// The memory a known ioctl wrote.
pub(super) fn ioctl_outputs(
    mem: &dyn TraceeMemory,
    request: u64,
    arg: u64,
    ret: i64,
    add: &mut Add,
) -> Result<()> {
    if ioctl_request(request) == libc::SIOCGIFCONF {
        // struct ifconf { int ifc_len; char *ifc_buf; }: the kernel sets
        // ifc_len to what it wrote into ifc_buf (or needs, when NULL).
        let len = u64::from(mem.read_u32(arg)?);
        let buf = mem.read_u64(arg + 8)?;
        add(arg, 4);
        if buf != 0 {
            add(buf, len.min(1 << 20));
        }
    } else if matches!(
        ioctl_request(request) as libc::c_ulong,
        SIOCGIFBR | SIOCSIFBR
    ) {
        if mem.read_u64(arg)? == BRCTL_GET_BRIDGES && ret > 0 {
            add(mem.read_u64(arg + 8)?, 4 * ret as u64);
        }
    } else if ioctl_request(request) == FS_IOC_FIEMAP {
        let mapped = u64::from(mem.read_u32(arg + 20)?);
        let room = u64::from(mem.read_u32(arg + 24)?);
        add(
            arg,
            FIEMAP_HEADER + mapped.min(room).min(1 << 16) * FIEMAP_EXTENT,
        );
    } else if let Some(len) = ioctl_output_len(request) {
        add(arg, len);
    }
    Ok(())
}

/// Whether the ioctl returns a new descriptor.
pub fn ioctl_makes_fd(request: u64) -> bool {
    ioctl_request(request) as libc::c_ulong == TIOCGPTPEER
}

/// Whether rrc knows what the ioctl writes (possibly nothing).
pub fn ioctl_is_known(request: u64) -> bool {
    let r = ioctl_request(request);
    ioctl_output_len(r).is_some()
        || r == libc::SIOCGIFCONF
        // Encoded as passing data in only: the kernel writes nothing.
        || ioc_dir(r) == IOC_WRITE
        || TTY_SETTERS.contains(&(r as libc::c_ulong))
        || NET_SETTERS.contains(&(r as libc::c_ulong))
        || matches!(
            r as libc::c_ulong,
            libc::FIONBIO
                | libc::FIOCLEX
                | libc::FIONCLEX
                | libc::FIOASYNC
                | libc::TCSETS
                | libc::TCSETSW
                | libc::TCSETSF
                | libc::TIOCSWINSZ
                | libc::TIOCSPGRP
                | libc::TIOCSCTTY
                | libc::TIOCMSET
                | libc::TIOCMBIS
                | libc::TIOCMBIC
                | PERF_EVENT_IOC_ENABLE
                | PERF_EVENT_IOC_DISABLE
                | PERF_EVENT_IOC_RESET
                | TIOCGPTPEER
                | SIOCGIFBR
                | SIOCSIFBR
        )
}
