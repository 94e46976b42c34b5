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

/// A program header table, dynamic section or string table larger than
/// this is not read: a bound for a crafted file (libc's string table is
/// 25 KiB).
const LARGEST_PART: u64 = 16 << 20;

/// The libraries `executable` needs, directly or through each other, in
/// the order the loader maps them (breadth first), without itself; each
/// is given to `each` as soon as found, before its own are looked for.
pub(crate) fn libraries_of(executable: &Path, each: &mut dyn FnMut(&Path)) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut queue = VecDeque::from([executable.to_path_buf()]);
    while let Some(file) = queue.pop_front() {
        let Some(dynamic) = Dynamic::of_file(&file) else {
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
        let (phoff, size) = self.program_headers()?;
        let start = usize::try_from(phoff).ok()?;
        let table = self.0.get(start..start.checked_add(size)?)?;
        parse_segments(table, self.u16(0x36)?)
    }

    /// Where its program header table is, and its size in bytes, read
    /// from the first 64 bytes (`None` past them or for a bad magic).
    fn program_headers(&self) -> Option<(u64, usize)> {
        if self.0.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
            return None;
        }
        let (phoff, phentsize, phnum) = (self.u64(0x20)?, self.u16(0x36)?, self.u16(0x38)?);
        Some((
            phoff,
            usize::from(phnum).checked_mul(usize::from(phentsize))?,
        ))
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
    /// What the file at `path` needs, reading only its headers, its
    /// dynamic section and its string table (libc is 2 MB, and reading
    /// it whole took more of the recorder's start than its program).
    fn of_file(path: &Path) -> Option<Dynamic> {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(path).ok()?;
        // A device or a pipe (a crafted trace may name one) is no image.
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        Dynamic::read(&|at, len| {
            let mut buf = vec![0; len];
            file.read_exact_at(&mut buf, at).ok()?;
            Some(buf)
        })
    }

    /// What a whole image in memory needs.
    #[cfg(test)]
    fn of(image: &[u8]) -> Option<Dynamic> {
        Dynamic::read(&|at, len| {
            let start = usize::try_from(at).ok()?;
            Some(image.get(start..start.checked_add(len)?)?.to_vec())
        })
    }

    /// `None` for anything but a little-endian 64-bit ELF image with a
    /// readable dynamic section; `read(offset, len)` gives `len` bytes of
    /// the image or `None`.
    fn read(read: &dyn Fn(u64, usize) -> Option<Vec<u8>>) -> Option<Dynamic> {
        const DT_NEEDED: u64 = 1;
        const DT_STRTAB: u64 = 5;
        const DT_STRSZ: u64 = 10;
        const DT_RPATH: u64 = 15;
        const DT_RUNPATH: u64 = 29;
        let head = read(0, 64)?;
        let head = Elf(&head);
        let (phoff, size) = head.program_headers()?;
        if size as u64 > LARGEST_PART {
            return None;
        }
        let segments = parse_segments(&read(phoff, size)?, head.u16(0x36)?)?;
        let dynamic = segments.iter().find(|s| s.kind == PT_DYNAMIC)?;
        if dynamic.filesz > LARGEST_PART {
            return None;
        }
        let entries = read(dynamic.offset, usize::try_from(dynamic.filesz).ok()?)?;
        let entries = Elf(&entries);
        let (mut needed, mut run_path, mut strtab, mut strsz) =
            (Vec::new(), Vec::new(), None, None);
        for entry in 0..dynamic.filesz / 16 {
            let at = usize::try_from(entry * 16).ok()?;
            let (tag, value) = (entries.u64(at)?, entries.u64(at.checked_add(8)?)?);
            match tag {
                0 => break,
                DT_NEEDED => needed.push(value),
                DT_RPATH | DT_RUNPATH => run_path.push(value),
                DT_STRTAB => strtab = Some(value),
                DT_STRSZ => strsz = Some(value),
                _ => {}
            }
        }
        let (strtab, strsz) = (strtab?, strsz?.min(LARGEST_PART));
        // The string table's address, as a file offset.
        let table = segments
            .iter()
            .filter(|s| s.kind == PT_LOAD)
            .find_map(|s| {
                (s.vaddr..s.vaddr.checked_add(s.filesz)?)
                    .contains(&strtab)
                    .then(|| s.offset + (strtab - s.vaddr))
            })?;
        let table = read(table, usize::try_from(strsz).ok()?)?;
        let string = |at: u64| -> Option<Vec<u8>> {
            let rest = table.get(usize::try_from(at).ok()?..)?;
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

/// A program header table of entries `entry_size` bytes long.
fn parse_segments(table: &[u8], entry_size: u16) -> Option<Vec<Segment>> {
    let entry_size = usize::from(entry_size);
    if entry_size < 40 {
        return None;
    }
    table
        .chunks_exact(entry_size)
        .map(|entry| {
            let entry = Elf(entry);
            Some(Segment {
                kind: entry.u32(0)?,
                flags: entry.u32(4)?,
                offset: entry.u64(8)?,
                vaddr: entry.u64(16)?,
                filesz: entry.u64(32)?,
            })
        })
        .collect()
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
    fn reading_an_images_parts_finds_what_reading_it_whole_finds() {
        let me = std::env::current_exe().expect("own path");
        let libc = libraries_of(&me, &mut |_| {})
            .into_iter()
            .find(|p| p.ends_with("libc.so.6"))
            .expect("libc");
        for file in [me, libc] {
            let whole = Dynamic::of(&std::fs::read(&file).expect("read")).expect("whole");
            let parts = Dynamic::of_file(&file).expect("parts");
            assert!(!parts.needed.is_empty(), "{file:?}");
            assert_eq!(
                (parts.needed, parts.run_path),
                (whole.needed, whole.run_path),
                "{file:?}"
            );
        }
    }

    #[test]
    fn a_header_claiming_a_huge_program_header_table_is_not_read() {
        // 65535 entries of 65535 bytes: 4 GB, which must not be allocated.
        let mut head = vec![0u8; 64];
        head[..6].copy_from_slice(b"\x7fELF\x02\x01");
        head[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        head[0x36..0x38].copy_from_slice(&u16::MAX.to_le_bytes());
        head[0x38..0x3a].copy_from_slice(&u16::MAX.to_le_bytes());
        let path = std::env::temp_dir().join(format!("rrc-elf-test-{}", std::process::id()));
        std::fs::write(&path, &head).expect("write");
        let dynamic = Dynamic::of_file(&path);
        let _ = std::fs::remove_file(&path);
        assert!(dynamic.is_none());
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
