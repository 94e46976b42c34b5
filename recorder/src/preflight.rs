//! What rrc can tell about a program before starting it, so that a
//! program it cannot record fails with one clear line rather than an exit
//! status of 127 or an error from deep inside the tracer.

use std::io::Read;
use std::path::Path;

/// The program cannot be recorded: why, in one line.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

/// What a start-able program will lack under rrc.
#[derive(Debug, PartialEq, Eq)]
pub enum Warning {
    /// No dynamic loader, so `LD_PRELOAD` and rrc's shim never load.
    StaticallyLinked,
}

const ELFCLASS64: u8 = 2;
const EM_X86_64: u16 = 62;
const PT_INTERP: u32 = 3;

/// Checks the executable at `path` (already resolved like a shell would).
pub fn check(path: &Path) -> Result<Option<Warning>, Refusal> {
    let shown = path.display();
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(|e| Refusal(format!("cannot read '{shown}': {e}")))?;
    if let Some(line) = head.strip_prefix(b"#!") {
        return check_script(path, line);
    }
    if !head.starts_with(b"\x7fELF") {
        return Err(Refusal(format!(
            "cannot execute '{shown}': neither an ELF executable nor a script starting with #! \
             (run it through its interpreter, e.g. rrc-record -- sh {shown})"
        )));
    }
    check_elf(path, &head)
}

fn check_script(path: &Path, line: &[u8]) -> Result<Option<Warning>, Refusal> {
    let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
    let text = String::from_utf8_lossy(line);
    let interpreter = text.split_whitespace().next().unwrap_or_default();
    if interpreter.is_empty() || !Path::new(interpreter).is_file() {
        return Err(Refusal(format!(
            "cannot execute '{}': its #! interpreter '{interpreter}' does not exist",
            path.display()
        )));
    }
    Ok(None)
}

fn check_elf(path: &Path, head: &[u8]) -> Result<Option<Warning>, Refusal> {
    let shown = path.display();
    let class = head.get(4).copied().unwrap_or(0);
    let machine = u16_at(head, 18).unwrap_or(0);
    if class != ELFCLASS64 || machine != EM_X86_64 {
        let what = if class == 1 {
            "a 32-bit"
        } else {
            "not an x86-64"
        };
        return Err(Refusal(format!(
            "'{shown}' is {what} program: rrc records only 64-bit x86-64 programs"
        )));
    }
    let interp = match interpreter(head) {
        Some(i) => i,
        // Headers beyond what we read: let exec decide.
        None if program_headers_unread(head) => return Ok(None),
        None => return Ok(Some(Warning::StaticallyLinked)),
    };
    if !Path::new(&interp).exists() {
        return Err(Refusal(format!(
            "cannot execute '{shown}': its ELF interpreter '{interp}' does not exist"
        )));
    }
    Ok(None)
}

/// The PT_INTERP path of a 64-bit little-endian ELF image's first bytes.
fn interpreter(head: &[u8]) -> Option<String> {
    let phoff = u64_at(head, 32)? as usize;
    let entsize = u16_at(head, 54)? as usize;
    let count = u16_at(head, 56)? as usize;
    for i in 0..count {
        let ph = phoff.checked_add(i.checked_mul(entsize)?)?;
        if u32_at(head, ph)? != PT_INTERP {
            continue;
        }
        let off = u64_at(head, ph + 8)? as usize;
        let len = u64_at(head, ph + 32)? as usize;
        let bytes = head.get(off..off.checked_add(len)?)?;
        let bytes = bytes.split(|b| *b == 0).next().unwrap_or_default();
        return Some(String::from_utf8_lossy(bytes).into_owned());
    }
    None
}

fn program_headers_unread(head: &[u8]) -> bool {
    let end = || -> Option<usize> {
        let phoff = u64_at(head, 32)? as usize;
        let size = (u16_at(head, 54)? as usize).checked_mul(u16_at(head, 56)? as usize)?;
        phoff.checked_add(size)
    };
    end().is_none_or(|e| e > head.len())
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write test file");
        p
    }

    #[test]
    fn a_dynamic_64_bit_program_passes() {
        assert_eq!(check(Path::new("/bin/true")), Ok(None));
    }

    #[test]
    fn a_script_without_interpreter_line_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = write(dir.path(), "s", b"echo hi\n");
        let e = check(&p).expect_err("refused");
        assert!(e.0.contains("#!"), "{}", e.0);
        let p = write(dir.path(), "t", b"#!/no/such/shell\necho hi\n");
        let e = check(&p).expect_err("refused");
        assert!(e.0.contains("/no/such/shell"), "{}", e.0);
        let p = write(dir.path(), "u", b"#!/bin/sh -e\necho hi\n");
        assert_eq!(check(&p), Ok(None));
    }

    #[test]
    fn a_32_bit_elf_and_a_missing_loader_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut elf32 = b"\x7fELF\x01\x01\x01".to_vec();
        elf32.resize(64, 0);
        let e = check(&write(dir.path(), "e32", &elf32)).expect_err("refused");
        assert!(e.0.contains("32-bit"), "{}", e.0);
        // A minimal ELF64 header with one PT_INTERP program header.
        let mut elf = vec![0u8; 64 + 56 + 32];
        elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        elf[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&PT_INTERP.to_le_bytes());
        elf[72..80].copy_from_slice(&120u64.to_le_bytes());
        elf[96..104].copy_from_slice(&14u64.to_le_bytes());
        elf[120..134].copy_from_slice(b"/no/such/ld.s\0");
        let e = check(&write(dir.path(), "e64", &elf)).expect_err("refused");
        assert!(e.0.contains("/no/such/ld.s"), "{}", e.0);
        // The same image without the interpreter header: static.
        elf[64..68].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(
            check(&write(dir.path(), "st", &elf)),
            Ok(Some(Warning::StaticallyLinked))
        );
    }
}
