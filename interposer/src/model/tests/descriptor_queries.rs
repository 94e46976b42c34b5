//! Queries on a descriptor whose answers are written to memory (fcntl's
//! owner and hints, socket names, the kernel log), terminal, console and
//! network ioctls, and the flag changes that replay runs.

use super::*;

fn out(nr: i64, a: &[u64; 6], ret: i64, mem: &FakeMemory) -> Vec<Region> {
    outputs(nr, a, ret, mem).expect("outputs")
}

#[test]
fn fcntl_queries_that_write() {
    let mem = FakeMemory::default();
    for cmd in [16, 17, 1035, 1037] {
        let a = [3, cmd, 0x1000, 0, 0, 0];
        assert_eq!(
            out(libc::SYS_fcntl, &a, 0, &mem),
            vec![region(0x1000, 8)],
            "{cmd}"
        );
        assert!(out(libc::SYS_fcntl, &a, -22, &mem).is_empty(), "{cmd}");
    }
    // Setting a hint only reads it.
    let set = [3, 1036, 0x1000, 0, 0, 0];
    assert!(out(libc::SYS_fcntl, &set, 0, &mem).is_empty());
}

#[test]
fn flag_changes_run_and_report_the_recorded_result() {
    use ReplayAction::*;
    let ioctl = |req: libc::c_ulong| [3, req, 0, 0, 0, 0];
    let nr = libc::SYS_ioctl;
    assert_eq!(replay_action(nr, &ioctl(libc::FIOCLEX)), Execute);
    assert_eq!(replay_action(nr, &ioctl(libc::FIONCLEX)), Execute);
    assert_eq!(replay_action(nr, &ioctl(libc::FIONBIO)), Apply);
    assert_eq!(replay_action(nr, &ioctl(libc::FIOASYNC)), Apply);
    assert_eq!(replay_action(nr, &ioctl(libc::TCGETS)), Emulate);
    // A sign-extended request is the same request.
    let extended = [3, 0xffff_ffff_0000_0000 | libc::FIOCLEX, 0, 0, 0, 0];
    assert_eq!(replay_action(nr, &extended), Execute);
}

#[test]
fn socket_name_length_without_a_buffer() {
    let mem = FakeMemory::default();
    mem.put(0x2000, &110u32.to_le_bytes());
    let null_addr = [3, 0, 0x2000, 0, 0, 0];
    assert_eq!(
        out(libc::SYS_getsockname, &null_addr, 0, &mem),
        vec![region(0x2000, 4)]
    );
    let both = [3, 0x1000, 0x2000, 0, 0, 0];
    assert_eq!(
        out(libc::SYS_getsockname, &both, 0, &mem),
        vec![region(0x2000, 4), region(0x1000, 110)]
    );
}

#[test]
fn kernel_log_reads_fill_what_they_return() {
    let mem = FakeMemory::default();
    let read_all = [3, 0x1000, 4096, 0, 0, 0];
    assert_eq!(
        out(libc::SYS_syslog, &read_all, 100, &mem),
        vec![region(0x1000, 100)]
    );
    // The buffer size query returns a size, not bytes written.
    let size = [10, 0, 42, 0, 0, 0];
    assert!(out(libc::SYS_syslog, &size, 4096, &mem).is_empty());
}

#[test]
fn terminal_console_and_network_ioctls() {
    use super::ioctl::{ioctl_is_known, ioctl_output_len};
    assert_eq!(ioctl_output_len(0x5405), Some(18)); // TCGETA
    assert_eq!(ioctl_output_len(0x5456), Some(36)); // TIOCGLCKTRMIOS
    assert_eq!(ioctl_output_len(0x545d), Some(80)); // TIOCGICOUNT
    assert_eq!(ioctl_output_len(0x5459), Some(4)); // TIOCSERGETLSR
    assert_eq!(ioctl_output_len(0x4b44), Some(4)); // KDGKBMODE
                                                   // tun's interface requests write a whole struct ifreq, whatever their
                                                   // encoding says.
    assert_eq!(ioctl_output_len(0x400454ca), Some(40)); // TUNSETIFF
    assert_eq!(ioctl_output_len(0x800454d2), Some(40)); // TUNGETIFF
                                                        // Setters write nothing, and are known.
    for req in [
        0x5406, 0x540b, 0x5420, 0x5457, 0x8916, 0x8914, 0x89a0, 0x890b,
    ] {
        assert_eq!(ioctl_output_len(req), None, "{req:#x}");
        assert!(ioctl_is_known(req), "{req:#x}");
    }
    // Old-style numbers rrc has no entry for stay unknown.
    for req in [0x54ff, 0x89ff] {
        assert!(!ioctl_is_known(req), "{req:#x}");
    }
}

#[test]
fn fiemap_writes_its_extents() {
    let mem = FakeMemory::default();
    // fm_mapped_extents 2, fm_extent_count 8.
    mem.put(0x1000 + 20, &2u32.to_le_bytes());
    mem.put(0x1000 + 24, &8u32.to_le_bytes());
    let a = [3, 0xc020660b, 0x1000, 0, 0, 0];
    assert_eq!(
        out(libc::SYS_ioctl, &a, 0, &mem),
        vec![region(0x1000, 32 + 2 * 56)]
    );
    // Counting only: the header.
    mem.put(0x1000 + 24, &0u32.to_le_bytes());
    assert_eq!(out(libc::SYS_ioctl, &a, 0, &mem), vec![region(0x1000, 32)]);
}

#[test]
fn netfilter_table_replacement_returns_counters() {
    let mem = FakeMemory::default();
    mem.put(0x1000 + 84, &3u32.to_le_bytes());
    mem.put_u64(0x1000 + 88, 0x5000);
    let replace = [3, libc::SOL_IP as u64, 64, 0x1000, 400, 0];
    assert_eq!(
        out(libc::SYS_setsockopt, &replace, 0, &mem),
        vec![region(0x5000, 48)]
    );
    let v6 = [3, libc::SOL_IPV6 as u64, 64, 0x1000, 400, 0];
    assert_eq!(
        out(libc::SYS_setsockopt, &v6, 0, &mem),
        vec![region(0x5000, 48)]
    );
    // Any other option only reads; a failed replacement wrote nothing.
    let other = [
        3,
        libc::SOL_SOCKET as u64,
        libc::SO_REUSEADDR as u64,
        0x1000,
        4,
        0,
    ];
    assert!(out(libc::SYS_setsockopt, &other, 0, &mem).is_empty());
    assert!(out(libc::SYS_setsockopt, &replace, -1, &mem).is_empty());
}

#[test]
fn a_terminals_peer_is_a_placeholder_and_the_bridge_ioctl_writes_the_bridges_it_lists() {
    let nr = libc::SYS_ioctl;
    let peer = [3, 0x5441, libc::O_RDWR as u64, 0, 0, 0];
    assert_eq!(replay_action(nr, &peer), ReplayAction::Placeholder);
    assert!(changes_descriptor_table(nr, &peer));
    let tcgets = [3, libc::TCGETS, 0x1000, 0, 0, 0];
    assert!(!changes_descriptor_table(nr, &tcgets));
    // TIOCSTI only takes a byte in.
    assert!(super::ioctl::ioctl_is_known(0x5412));

    let mem = FakeMemory::default();
    let br = [3, 0x8940, 0x1000, 0, 0, 0];
    // BRCTL_GET_BRIDGES: as many ints as it returns.
    mem.put_u64(0x1000, 1);
    mem.put_u64(0x1008, 0x2000);
    mem.put_u64(0x1010, 1024);
    assert_eq!(
        outputs(nr, &br, 2, &mem).expect("bridges"),
        vec![region(0x2000, 8)]
    );
    // BRCTL_GET_VERSION and BRCTL_ADD_BRIDGE write nothing.
    for cmd in [0, 2] {
        mem.put_u64(0x1000, cmd);
        assert!(outputs(nr, &br, 2, &mem).expect("nothing").is_empty());
    }
}
