//! Making a process's rdtsc and rdtscp trap without `PR_TSC_SIGSEGV`.
//!
//! rrc records rdtsc by making it fault. `PR_TSC_SIGSEGV` does that for a
//! whole thread, but costs more than the faults: on this kind of VM the
//! kernel rewrites a control register each time it switches between a
//! task that traps rdtsc and one that does not, about 5 µs a switch
//! (BENCHMARKS.md), and a server switches with its clients once a request
//! or more. It also hides the vDSO's clocks, which read the TSC. So when
//! a busy thread first asks (the shim's `TSC_ASK`), each rdtsc and rdtscp
//! in the code the process has mapped is patched into `ud2` (its first two
//! bytes; an rdtscp keeps its third), which raises SIGILL where it stood,
//! and the trap ends for the thread that asked and the threads it creates
//! after; code mapped later is patched when mapped. A SIGILL at a patched
//! site is recognised by comparing memory with the file behind it, so
//! nothing needs remembering across forks and execs.
//!
//! The scan decodes every executable segment of every mapped file (a
//! linear sweep: a byte pair that only looks like rdtsc inside another
//! instruction is not one), except three whose rdtsc rrc knows to be
//! harmless to a replay and leaves alone: the dynamic loader's (start-up
//! timing, which ran trapped before the shim asked), libc's (the jitter of
//! an adaptive mutex's spin, which changes only how long it spins) and the
//! shim's. Anonymous executable memory (a JIT, the shim's call site aside)
//! and shared file mappings (which a patch would write through to the
//! file) keep the thread trap: their code cannot be patched for good.

use std::collections::HashMap;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use iced_x86::{Decoder, DecoderOptions, Mnemonic};
use nix::unistd::Pid;
use rrc_synclog::syscallbuf::FAST_PAGE;

use crate::elf::{Elf, PF_X, PT_LOAD};
use crate::tracee::{Tracee, TraceeMemory, TscInstruction};

/// SIGILL's code for an illegal operand (`ud2`), not in the libc crate.
const ILL_ILLOPN: i32 = 2;

/// Whether a signal may come from a trapped rdtsc: `SIGSEGV` with
/// `SI_KERNEL` under `PR_TSC_SIGSEGV`, `SIGILL` with `ILL_ILLOPN` where
/// patched (`Tracee::tsc_instruction_at` tells).
pub fn may_be_tsc_fault(sig: i32, code: i32) -> bool {
    (sig == libc::SIGSEGV && code == libc::SI_KERNEL) || (sig == libc::SIGILL && code == ILL_ILLOPN)
}

/// Whether a call that returned `ret` mapped a file's code: both tracers
/// patch its rdtsc then (a library loaded by `dlopen` after the shim
/// asked), unless the program set its own rdtsc mode.
pub fn maps_code_of_a_file(nr: i64, args: &[u64; 6], ret: i64) -> bool {
    nr == libc::SYS_mmap
        && !(-4095..0).contains(&ret)
        && args[2] & libc::PROT_EXEC as u64 != 0
        && args[3] & libc::MAP_ANONYMOUS as u64 == 0
}

/// `ud2`: what a patched rdtsc or rdtscp starts with.
const UD2: [u8; 2] = [0x0f, 0x0b];

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdtscScan {
    /// Every rdtsc the process has mapped is patched (`patched` sites
    /// now): the thread trap may end. `vdso`: where the vDSO is mapped.
    Free { vdso: Option<u64>, patched: usize },
    /// The first mapping that keeps the thread trap.
    Found(String),
}

/// One executable mapping of a file: where, and which part of the file.
struct FileMapping<'a> {
    start: u64,
    end: u64,
    offset: u64,
    private: bool,
    path: &'a str,
}

/// Scans the code of a traced process's mappings for rdtsc and patches it
/// (what it has scanned is kept in `SCANNED`, for the whole process).
#[derive(Default)]
pub struct RdtscScanner;

/// Files already scanned, by (device, inode, size, modification time):
/// the file offsets of their rdtsc and rdtscp (`None`: not readable as an
/// ELF image). One cache for the whole tracer process, so that a scan
/// begun early on a thread of its own (`prewarm`) and each try of a
/// replay find what was scanned before. A file is scanned with the lock
/// held: whoever asks for it meanwhile waits rather than scans it twice.
static SCANNED: LazyLock<Mutex<HashMap<FileKey, Scan>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A file's rdtsc sites, `None` if it is not an ELF image.
type Scan = Option<Arc<Vec<Site>>>;

/// The scan of `path`, from the cache or made now.
fn scanned(path: &Path) -> Scan {
    let meta = std::fs::metadata(path).ok()?;
    // A device or a pipe (a crafted trace may name one) is no image, and
    // reading it whole might never end.
    if !meta.is_file() {
        return None;
    }
    let key = (meta.dev(), meta.ino(), meta.size(), meta.mtime());
    let mut files = SCANNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    files
        .entry(key)
        .or_insert_with(|| {
            std::fs::read(path)
                .ok()
                .and_then(|image| elf_rdtsc_sites(&image))
                .map(Arc::new)
        })
        .clone()
}

/// Starts scanning, on a thread of its own, the files a program about to
/// start will map and a busy thread of it will have scanned when it asks
/// (see the module's comment): its executable, and the unwinder library
/// the shim needs, which the tracer (a Rust program too) has mapped
/// itself. While the program's loader runs with the tracer on one
/// processor (`startup_pin`), the other is free for it; scanning at the
/// question instead took a millisecond or more of the program's time
/// (iced-x86's tables are built at the first decode, too).
pub fn prewarm_rdtsc_scan(executable: &Path) {
    let mut ahead = ScanAhead::start();
    if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
        let unwinder = maps
            .lines()
            .filter_map(parse_maps_line)
            .map(|(_, _, _, _, path)| path)
            .find(|path| {
                path.rsplit('/')
                    .next()
                    .is_some_and(|name| name.starts_with("libgcc_s"))
            });
        if let Some(path) = unwinder {
            ahead.add(Path::new(path));
        }
    }
    ahead.add_with_libraries(executable);
}

/// Files to scan on a thread of their own, named as they are found, each
/// once; the thread ends when this is dropped and it has scanned them.
/// Replay names every file whose code the trace maps while it reads the
/// trace for its plan, so that the libraries a program loads (a server's
/// `libcrypto` alone took 10 ms or more) are scanned before the replayed
/// loader maps them, on the processor the plan's reading leaves free;
/// recording names the executable, and the thread finds the libraries it
/// needs (`libstdc++` took a quarter of a C++ program's recording).
pub struct ScanAhead {
    to_scan: Option<std::sync::mpsc::Sender<(PathBuf, bool)>>,
    named: std::collections::HashSet<PathBuf>,
}

impl ScanAhead {
    pub fn start() -> ScanAhead {
        let (tx, rx) = std::sync::mpsc::channel::<(PathBuf, bool)>();
        let spawned = std::thread::Builder::new()
            .name("rrc-rdtsc-scan".into())
            .spawn(move || {
                for (path, libraries) in rx {
                    let _ = scanned(&path);
                    if libraries {
                        crate::elf::libraries_of(&path, &mut |lib| {
                            if !harmless_path(lib) {
                                let _ = scanned(lib);
                            }
                        });
                    }
                }
            });
        ScanAhead {
            // Without the thread, files are scanned where first needed.
            to_scan: spawned.ok().map(|_| tx),
            named: Default::default(),
        }
    }

    /// Scans `path` ahead, unless it was named before or is one of the
    /// files never scanned.
    pub fn add(&mut self, path: &Path) {
        self.send(path, false);
    }

    /// Scans `path` ahead, and then the shared libraries it needs.
    pub fn add_with_libraries(&mut self, path: &Path) {
        self.send(path, true);
    }

    fn send(&mut self, path: &Path, libraries: bool) {
        let Some(tx) = &self.to_scan else {
            return;
        };
        if harmless_path(path) || !self.named.insert(path.to_path_buf()) {
            return;
        }
        let _ = tx.send((path.to_path_buf(), libraries));
    }
}

fn harmless_path(path: &Path) -> bool {
    path.to_str().is_some_and(harmless)
}

/// A file's (device, inode, size, modification time).
type FileKey = (u64, u64, u64, i64);
/// An rdtsc or rdtscp at a file offset.
type Site = (u64, TscInstruction);

impl RdtscScanner {
    /// Patches every rdtsc in the executable mappings of process `pid`
    /// (whose thread `pid` is stopped), or says what keeps the trap.
    pub fn patch(&self, pid: Pid) -> RdtscScan {
        self.apply(pid, true)
    }

    /// After call `nr` returned `ret`, as both tracers do: patches the
    /// code it mapped (a library `dlopen` loads), unless the program set
    /// its own rdtsc mode (`own_mode` non-zero: rdtsc must fault as
    /// SIGSEGV then). Only the answer to the shim's question needs the
    /// scan's outcome.
    pub fn after_call(&self, pid: Pid, nr: i64, args: &[u64; 6], ret: i64, own_mode: &AtomicU32) {
        if maps_code_of_a_file(nr, args, ret) && own_mode.load(Ordering::SeqCst) == 0 {
            let _ = self.patch(pid);
        }
    }

    /// Puts back the rdtsc instructions `patch` replaced: the program set
    /// its own rdtsc mode, under which rdtsc must fault as SIGSEGV.
    pub fn unpatch(&self, pid: Pid) {
        self.apply(pid, false);
    }

    fn apply(&self, pid: Pid, patch: bool) -> RdtscScan {
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            return RdtscScan::Found("/proc/PID/maps (unreadable)".into());
        };
        let mut vdso = None;
        let mut files = Vec::new();
        for line in maps.lines() {
            let Some((start, end, perms, offset, path)) = parse_maps_line(line) else {
                continue;
            };
            if path == "[vdso]" {
                vdso = Some(start);
                continue;
            }
            if !perms.contains('x') || path == "[vsyscall]" || harmless(path) {
                continue;
            }
            if !path.starts_with('/') {
                // Putting patches back goes on past what keeps the trap.
                if start == FAST_PAGE || !patch {
                    continue;
                }
                return RdtscScan::Found(format!("anonymous executable memory at {start:#x}"));
            }
            let private = perms.contains('p');
            files.push(FileMapping {
                start,
                end,
                offset,
                private,
                path,
            });
        }
        let tracee = Tracee::new(pid);
        let mut patched = 0;
        for m in &files {
            let Some(sites) = scanned(Path::new(m.path)) else {
                if !patch {
                    continue;
                }
                return RdtscScan::Found(format!("{} (not a readable ELF image)", m.path));
            };
            let mapped = m.offset..m.offset + (m.end - m.start);
            for (at, insn) in sites.iter().filter(|(at, _)| mapped.contains(at)) {
                if !m.private {
                    if !patch {
                        continue;
                    }
                    return RdtscScan::Found(format!("{} (mapped shared)", m.path));
                }
                let addr = m.start + (at - m.offset);
                let is_patched = tracee.read(addr, 2).ok().as_deref() == Some(UD2.as_slice());
                let original = match insn {
                    TscInstruction::Rdtsc => [0x0f, 0x31],
                    TscInstruction::Rdtscp => [0x0f, 0x01],
                };
                let (want, done) = if patch {
                    (UD2, is_patched)
                } else {
                    (original, !is_patched)
                };
                if done {
                    continue;
                }
                if tracee.write(addr, &want).is_err() && patch {
                    return RdtscScan::Found(format!("{} (could not be patched)", m.path));
                }
                patched += 1;
            }
        }
        RdtscScan::Free { vdso, patched }
    }
}

/// (start, end, permissions, file offset, path) of a /proc/PID/maps line.
fn parse_maps_line(line: &str) -> Option<(u64, u64, &str, u64, &str)> {
    let mut fields = line.split_whitespace();
    let (range, perms, offset) = (fields.next()?, fields.next()?, fields.next()?);
    let path = fields.nth(2).unwrap_or("");
    let (start, end) = range.split_once('-')?;
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    Some((hex(start)?, hex(end)?, perms, hex(offset)?, path))
}

/// The instruction rrc patched at `rip` in thread `tid`'s memory, if the
/// file behind it has an rdtsc or rdtscp there.
pub(crate) fn patched_at(tid: Pid, rip: u64) -> Option<TscInstruction> {
    let maps = std::fs::read_to_string(format!("/proc/{tid}/maps")).ok()?;
    let (start, _, _, offset, path) =
        maps.lines()
            .filter_map(parse_maps_line)
            .find(|(start, end, perms, _, path)| {
                (*start..*end).contains(&rip) && perms.contains('x') && path.starts_with('/')
            })?;
    let mut original = [0u8; 3];
    let file = std::fs::File::open(path).ok()?;
    file.read_exact_at(&mut original, offset + (rip - start))
        .ok()?;
    match original {
        [0x0f, 0x31, _] => Some(TscInstruction::Rdtsc),
        [0x0f, 0x01, 0xf9] => Some(TscInstruction::Rdtscp),
        _ => None,
    }
}

/// The loader, libc and the shim (see the module's comment).
fn harmless(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("ld-linux") || name == "libc.so.6" || name == "librrc_shim.so"
}

/// Whether an ELF image's executable segments contain rdtsc or rdtscp;
/// true for anything that is not a little-endian 64-bit ELF file.
pub fn elf_has_rdtsc(image: &[u8]) -> bool {
    elf_rdtsc_sites(image).is_none_or(|sites| !sites.is_empty())
}

/// The file offsets of the rdtsc and rdtscp in an ELF image's executable
/// segments; `None` for anything that is not a little-endian 64-bit ELF.
fn elf_rdtsc_sites(image: &[u8]) -> Option<Vec<Site>> {
    let elf = Elf(image);
    let mut sites = Vec::new();
    for s in elf.segments()? {
        if s.kind != PT_LOAD || s.flags & PF_X == 0 {
            continue;
        }
        sites.extend(code_rdtsc_sites(elf.contents(&s)?, s.offset));
    }
    Some(sites)
}

/// Whether machine code (at address `ip`) decodes to rdtsc or rdtscp
/// anywhere.
pub fn code_has_rdtsc(code: &[u8], ip: u64) -> bool {
    !code_rdtsc_sites(code, ip).is_empty()
}

/// Where machine code placed at `ip` has rdtsc or rdtscp. Code without
/// the two opcodes' first bytes is not decoded.
fn code_rdtsc_sites(code: &[u8], ip: u64) -> Vec<Site> {
    let candidate = code
        .windows(3)
        .any(|w| w[..2] == [0x0f, 0x31] || w == [0x0f, 0x01, 0xf9])
        || code.ends_with(&[0x0f, 0x31]);
    if !candidate {
        return Vec::new();
    }
    let mut sites = Vec::new();
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut insn = iced_x86::Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        match insn.mnemonic() {
            Mnemonic::Rdtsc => sites.push((insn.ip(), TscInstruction::Rdtsc)),
            Mnemonic::Rdtscp => sites.push((insn.ip(), TscInstruction::Rdtscp)),
            _ => {}
        }
    }
    sites
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdtsc_counts_only_as_a_whole_instruction() {
        // mov eax, 1; rdtsc; ret
        assert!(code_has_rdtsc(&[0xb8, 1, 0, 0, 0, 0x0f, 0x31, 0xc3], 0));
        // rdtscp
        assert!(code_has_rdtsc(&[0x0f, 0x01, 0xf9, 0xc3], 0));
        // mov eax, 0x310f (the bytes inside an immediate); ret
        assert!(!code_has_rdtsc(&[0xb8, 0x0f, 0x31, 0, 0, 0xc3], 0));
        // swapgs-free code with 0f 01 of another instruction (mfence is
        // 0f ae f0; xgetbv is 0f 01 d0)
        assert!(!code_has_rdtsc(&[0x0f, 0x01, 0xd0, 0xc3], 0));
    }

    #[test]
    fn what_is_not_a_64_bit_elf_image_may_run_rdtsc() {
        assert!(elf_has_rdtsc(b"#!/bin/sh\n"));
        assert!(elf_has_rdtsc(&[]));
    }

    #[test]
    fn this_test_binary_has_no_rdtsc_and_the_loader_and_libc_are_left_alone() {
        // The test binary's own code is Rust's std and this crate's.
        let me = std::fs::read("/proc/self/exe").expect("read own executable");
        assert!(!elf_has_rdtsc(&me));
        assert!(harmless("/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(harmless("/lib64/ld-linux-x86-64.so.2"));
        assert!(!harmless("/usr/lib/x86_64-linux-gnu/libcrypto.so.3"));
    }
}
