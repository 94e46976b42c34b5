//! Reading ELF images: their segments, for the rdtsc scan, and the shared
//! libraries an executable needs, found as the dynamic loader would find
//! most of them: its `DT_NEEDED` names, looked up in its
//! `DT_RUNPATH` or `DT_RPATH` (with `$ORIGIN`), then in the system's
//! library directories, and theirs in turn. Only the rdtsc scan's
//! look-ahead uses this (`rdtsc_scan::ScanAhead`): a library missed or
//! found elsewhere than the loader finds it is only scanned later, when
//! mapped, as it would be without the look-ahead.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where Debian's loader looks when no run path names the library.
const SYSTEM_DIRS: [&str; 5] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib",
    "/lib",
];

/// More than any program here needs; a bound for a crafted file.
const MOST_LIBRARIES: usize = 64;

/// Files larger than this are not read for their libraries.
const LARGEST_IMAGE: u64 = 256 << 20;

/// The libraries `executable` needs, directly or through each other, in
/// the order the loader maps them (breadth first), without itself; each
/// is given to `each` as soon as found, before its own are looked for.
pub(crate) fn libraries_of(executable: &Path, each: &mut dyn FnMut(&Path)) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut queue = VecDeque::from([executable.to_path_buf()]);
    while let Some(file) = queue.pop_front() {
        let Some(image) = read_image(&file) else {
            continue;
        };
        let Some(dynamic) = Dynamic::of(&image) else {
            continue;
        };
        let origin = file.parent().unwrap_or(Path::new("/"));
        for name in &dynamic.needed {
            let Some(path) = resolve(name, &dynamic.run_path, origin) else {
                continue;
            };
            if found.len() < MOST_LIBRARIES && seen.insert(path.clone()) {
                each(&path);
                found.push(path.clone());
                queue.push_back(path);
            }
        }
    }
    found
}

fn read_image(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > LARGEST_IMAGE {
        return None;
    }
    std::fs::read(path).ok()
}

/// Where the loader would find `name`.
fn resolve(name: &[u8], run_path: &[Vec<u8>], origin: &Path) -> Option<PathBuf> {
    let name = Path::new(OsStr::from_bytes(name));
    if name.is_absolute() {
        return name.is_file().then(|| name.to_path_buf());
    }
    let origin = origin.as_os_str().as_bytes();
    let from_run_path = run_path.iter().map(|dir| {
        let dir = replace_origin(dir, origin);
        PathBuf::from(OsStr::from_bytes(&dir))
    });
    from_run_path
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

fn replace_origin(dir: &[u8], origin: &[u8]) -> Vec<u8> {
    for token in [b"${ORIGIN}".as_slice(), b"$ORIGIN".as_slice()] {
        if let Some(at) = dir.windows(token.len()).position(|w| w == token) {
            let mut out = dir[..at].to_vec();
            out.extend_from_slice(origin);
            out.extend_from_slice(&dir[at + token.len()..]);
            return out;
        }
    }
    dir.to_vec()
}

/// An ELF image, read little-endian; every read is `None` past its end.
pub(crate) struct Elf<'a>(pub &'a [u8]);

/// A program header's type, flags, file offset, address and size in the
/// file.
pub(crate) struct Segment {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
}

pub(crate) const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
pub(crate) const PF_X: u32 = 1;

impl Elf<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.0.get(at..at.checked_add(N)?)?.try_into().ok()
    }

    fn u16(&self, at: usize) -> Option<u16> {
        self.bytes(at).map(u16::from_le_bytes)
    }

    fn u32(&self, at: usize) -> Option<u32> {
        self.bytes(at).map(u32::from_le_bytes)
    }

    fn u64(&self, at: usize) -> Option<u64> {
        self.bytes(at).map(u64::from_le_bytes)
    }

    /// Its program headers; `None` for anything but a little-endian
    /// 64-bit ELF image.
    pub fn segments(&self) -> Option<Vec<Segment>> {
        if self.0.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
            return None;
        }
        let (phoff, phentsize, phnum) = (self.u64(0x20)?, self.u16(0x36)?, self.u16(0x38)?);
        (0..usize::from(phnum))
            .map(|i| {
                let at = usize::try_from(phoff)
                    .ok()?
                    .checked_add(i.checked_mul(usize::from(phentsize))?)?;
                Some(Segment {
                    kind: self.u32(at)?,
                    flags: self.u32(at.checked_add(4)?)?,
                    offset: self.u64(at.checked_add(8)?)?,
                    vaddr: self.u64(at.checked_add(16)?)?,
                    filesz: self.u64(at.checked_add(32)?)?,
                })
            })
            .collect()
    }

    /// The bytes of a segment's part of the file.
    pub fn contents(&self, s: &Segment) -> Option<&[u8]> {
        let start = usize::try_from(s.offset).ok()?;
        self.0
            .get(start..start.checked_add(usize::try_from(s.filesz).ok()?)?)
    }
}

/// What an ELF image's dynamic section says about its libraries.
struct Dynamic {
    needed: Vec<Vec<u8>>,
    run_path: Vec<Vec<u8>>,
}

impl Dynamic {
    /// `None` for anything but a little-endian 64-bit ELF image with a
    /// readable dynamic section.
    fn of(image: &[u8]) -> Option<Dynamic> {
        const DT_NEEDED: u64 = 1;
        const DT_STRTAB: u64 = 5;
        const DT_RPATH: u64 = 15;
        const DT_RUNPATH: u64 = 29;
        let elf = Elf(image);
        let segments = elf.segments()?;
        let dynamic = segments.iter().find(|s| s.kind == PT_DYNAMIC)?;
        let (mut needed, mut run_path, mut strtab) = (Vec::new(), Vec::new(), None);
        for entry in 0..dynamic.filesz / 16 {
            let at = usize::try_from(dynamic.offset.checked_add(entry * 16)?).ok()?;
            let (tag, value) = (elf.u64(at)?, elf.u64(at.checked_add(8)?)?);
            match tag {
                0 => break,
                DT_NEEDED => needed.push(value),
                DT_RPATH | DT_RUNPATH => run_path.push(value),
                DT_STRTAB => strtab = Some(value),
                _ => {}
            }
        }
        let strtab = strtab?;
        // The string table's address, as a file offset.
        let table = segments
            .iter()
            .filter(|s| s.kind == PT_LOAD)
            .find_map(|s| {
                (s.vaddr..s.vaddr.checked_add(s.filesz)?)
                    .contains(&strtab)
                    .then(|| s.offset + (strtab - s.vaddr))
            })?;
        let string = |at: u64| -> Option<Vec<u8>> {
            let start = usize::try_from(table.checked_add(at)?).ok()?;
            let rest = image.get(start..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            Some(rest[..end].to_vec())
        };
        Some(Dynamic {
            needed: needed.into_iter().filter_map(string).collect(),
            run_path: run_path
                .into_iter()
                .filter_map(string)
                .flat_map(|p| {
                    p.split(|&b| b == b':')
                        .filter(|d| !d.is_empty())
                        .map(<[u8]>::to_vec)
                        .collect::<Vec<_>>()
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_programs_libraries_include_libc_where_the_loader_finds_it() {
        // The test binary itself is a Rust program: it needs libc and the
        // unwinder at least, found where the loader finds them.
        let me = std::env::current_exe().expect("own path");
        let mut told = Vec::new();
        let libs = libraries_of(&me, &mut |p| told.push(p.to_path_buf()));
        assert_eq!(told, libs);
        let names: Vec<String> = libs
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        assert!(names.iter().any(|n| n == "libc.so.6"), "{names:?}");
        assert!(libs.iter().all(|p| p.is_file()), "{libs:?}");
    }

    #[test]
    fn origin_in_a_run_path_is_the_files_directory() {
        assert_eq!(
            replace_origin(b"$ORIGIN/../lib", b"/opt/app/bin"),
            b"/opt/app/bin/../lib"
        );
        assert_eq!(replace_origin(b"${ORIGIN}/lib", b"/x"), b"/x/lib");
        assert_eq!(replace_origin(b"/usr/lib", b"/x"), b"/usr/lib");
    }

    #[test]
    fn anything_but_an_elf_image_has_no_libraries() {
        assert!(Dynamic::of(b"#!/bin/sh\n").is_none());
        assert!(Dynamic::of(b"\x7fELF\x02\x01").is_none());
        assert!(Dynamic::of(&[]).is_none());
    }
}
