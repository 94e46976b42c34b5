//! Characterization of `rrc_interposer::model`: every public function's
//! result for every syscall number and a spread of arguments, return
//! values and tracee memory, compared with a golden file generated from
//! the model as it was before the syscall table replaced its `match`es.
//! Set `RRC_BLESS=1` to rewrite the golden file after an intended change.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rrc_interposer::model;
use rrc_interposer::{InterposeError, TraceeMemory};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/model.txt");

/// Memory whose every 8-aligned word holds a small number (1..=7, from
/// its address) and whose other bytes are zero: lengths and counts read
/// from it stay small, pointers read from it are non-null.
struct Patterned;

impl TraceeMemory for Patterned {
    fn read(&self, addr: u64, len: usize) -> rrc_interposer::Result<Vec<u8>> {
        Ok((0..len as u64)
            .map(|i| {
                let at = addr.wrapping_add(i);
                if at % 8 == 0 {
                    ((at / 8) % 7) as u8 + 1
                } else {
                    0
                }
            })
            .collect())
    }

    fn write(&self, _addr: u64, _data: &[u8]) -> rrc_interposer::Result<()> {
        Ok(())
    }
}

/// Memory that cannot be read (the tracee is gone).
struct Unreadable;

impl TraceeMemory for Unreadable {
    fn read(&self, addr: u64, len: usize) -> rrc_interposer::Result<Vec<u8>> {
        Err(InterposeError::Memory {
            tid: 1,
            op: "read",
            addr,
            len,
            errno: nix::errno::Errno::ESRCH,
        })
    }

    fn write(&self, _addr: u64, _data: &[u8]) -> rrc_interposer::Result<()> {
        Ok(())
    }
}

/// Argument sets: pointer-like values, zeros, and the flag values that
/// select special cases (fcntl commands, clone flags, ioctl requests,
/// TIMER_ABSTIME).
fn arg_sets() -> Vec<[u64; 6]> {
    let ptrs = [0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000];
    let mut sets = vec![ptrs, [0; 6], [3, 5, 0x3000, 0, 0x5000, 0x6000]];
    // args[0] as clone flags, args[1] as TIMER_ABSTIME and as fcntl command.
    for a0 in [0, 0x100, 0x4000, 0x4100] {
        sets.push([a0, 1, 0x3000, 0x4000, 0x5000, 0x6000]);
    }
    for cmd in [0, 1, 2, 3, 4, 5, 6, 36, 1030, 1031] {
        sets.push([3, cmd, 0x3000, 0x4000, 0x5000, 0x6000]);
    }
    for req in ioctl_requests() {
        sets.push([3, req, 0x3000, 0x4000, 0x5000, 0x6000]);
    }
    // A huge count and a poll/select count.
    sets.push([0x1000, 0x2000, 1 << 40, 0x4000, 0x5000, 0x6000]);
    sets.push([70, 3, 0x3000, 0x4000, 0x5000, 0x6000]);
    sets
}

fn ioctl_requests() -> Vec<u64> {
    vec![
        0x5401,                // TCGETS
        0x5402,                // TCSETS
        0x5413,                // TIOCGWINSZ
        0x5414,                // TIOCSWINSZ
        0x541b,                // FIONREAD
        0x5421,                // FIONBIO
        0x5451,                // FIOCLEX
        0x8912,                // SIOCGIFCONF
        0x8910,                // SIOCGIFNAME
        0x8933,                // SIOCGIFINDEX
        0x8954,                // SIOCGARP
        0x8004_5401,           // _IOR, 4 bytes
        0x4004_5401,           // _IOW, 4 bytes
        0xc010_5401,           // _IOWR, 16 bytes
        0x1234,                // unknown, old style
        0xffff_ffff_8004_5401, // sign-extended _IOR
    ]
}

fn rets() -> [i64; 7] {
    [-4, -2, -1, 0, 1, 7, 100]
}

fn dump() -> String {
    let mut s = String::new();
    let nrs: Vec<i64> = (-3..=600)
        .chain([1000, 1023, 1024, i64::MAX, i64::MIN])
        .collect();
    for &nr in &nrs {
        let _ = writeln!(
            s,
            "nr {nr} name={} untrapped={} known={} handler_end={} creds={} cmp={:#04x} args={:?}",
            model::name(nr),
            model::runs_untrapped(nr),
            model::is_known(nr),
            model::marks_handler_end(nr),
            model::changes_credentials(nr),
            model::compared_args(nr),
            model::arg_names(nr),
        );
        let mut detail = String::new();
        dump_call(&mut detail, nr);
        let _ = writeln!(s, "  detail {:016x}", fnv1a(detail.as_bytes()));
    }
    for req in ioctl_requests() {
        let _ = writeln!(
            s,
            "ioctl {req:#x} request={:#x} len={:?} known={}",
            model::ioctl_request(req),
            model::ioctl_output_len(req),
            model::ioctl_is_known(req),
        );
    }
    let _ = writeln!(
        s,
        "sendmsg {:?} {}",
        model::sendmsg_inputs(&Patterned, 0x1000),
        model::sendmsg_inputs(&Unreadable, 0x1000).is_err()
    );
    let _ = writeln!(s, "MAX_INPUT {}", model::MAX_INPUT);
    s
}

/// The argument- and result-dependent answers. Identical answers for
/// one syscall are written once, with the argument sets (and return
/// values) that gave them, to keep the file short.
fn dump_call(s: &mut String, nr: i64) {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, a) in arg_sets().iter().enumerate() {
        let action = model::replay_action(nr, a);
        let inputs = model::inputs(nr, a);
        let line = format!(
            "snapshots={} fd_table={} {action:?} in={inputs:?}",
            model::snapshots_memory(nr, a),
            model::changes_descriptor_table(nr, a),
        );
        seen.entry(line).or_default().push(i.to_string());
        for ret in rets() {
            let out = |mem: &dyn TraceeMemory| match model::outputs(nr, a, ret, mem) {
                Ok(v) => v
                    .iter()
                    .map(|r| format!("{:#x}+{}", r.addr, r.len))
                    .collect::<Vec<_>>()
                    .join(" "),
                Err(_) => "error".to_string(),
            };
            let line = format!(
                "  out {} / unreadable: {}",
                out(&Patterned),
                out(&Unreadable)
            );
            seen.entry(line).or_default().push(format!("{i}:{ret}"));
        }
    }
    for (line, keys) in seen {
        let _ = writeln!(s, "  [{}] {line}", keys.join(","));
    }
}

/// A stable hash (std's may change between Rust versions), so that the
/// golden file holds one line per syscall for its many argument-dependent
/// answers; `RRC_DETAIL=<nr>` prints them for a syscall that differs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn model_matches_golden() {
    if let Some(nr) = std::env::var("RRC_DETAIL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        let mut detail = String::new();
        dump_call(&mut detail, nr);
        println!("{detail}");
    }
    let now = dump();
    if std::env::var_os("RRC_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(GOLDEN).parent().expect("parent"))
            .expect("mkdir");
        std::fs::write(GOLDEN, &now).expect("write golden");
        return;
    }
    let golden = std::fs::read_to_string(GOLDEN).expect("golden file");
    if golden != now {
        let (line, (g, n)) = golden
            .lines()
            .zip(now.lines())
            .enumerate()
            .find(|(_, (g, n))| g != n)
            .unwrap_or((0, ("(length differs)", "")));
        panic!(
            "model differs from the golden file at line {}:\n  golden: {g}\n  now:    {n}",
            line + 1
        );
    }
}
