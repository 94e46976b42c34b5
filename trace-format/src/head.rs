//! A syscall record's head read straight from its bytes, for replay's
//! first pass over a trace: a server's trace holds a million of them, and
//! bincode's general decoder took most of that pass. The bytes are
//! bincode's (variable-length integers, see `encoding`); anything this
//! reader does not expect, it leaves to bincode (`None`), which decodes
//! it or says what is wrong. A unit test checks both agree.

use crate::{SyscallExtra, SyscallHead};

/// `TraceRecord::Syscall`'s variant index.
const SYSCALL: u64 = 1;

/// `SyscallExtra`'s variant indexes that carry at most integers.
const EXTRA_NONE: u64 = 0;
const EXTRA_NEW_THREAD: u64 = 2;
const EXTRA_NEW_PROCESS: u64 = 3;
const EXTRA_STD_STREAM: u64 = 4;
const EXTRA_UNKNOWN: u64 = 6;
const EXTRA_ENTERED_AT: u64 = 7;
const EXTRA_BUFFERED: u64 = 8;

/// The head of a payload that is a `TraceRecord::Syscall` with a plain
/// `extra`; `None` for anything else.
pub(crate) fn syscall_head(payload: &[u8]) -> Option<SyscallHead> {
    let mut c = Cursor { b: payload, at: 0 };
    if c.varint()? != SYSCALL {
        return None;
    }
    let thread = c.u32()?;
    let index = c.varint()?;
    let nr = c.u32()?;
    let mut args = [0u64; 6];
    for a in &mut args {
        *a = c.varint()?;
    }
    let ret = c.i64()?;
    c.skip_list()?;
    c.skip_list()?;
    let interval_ns = c.varint()?;
    let return_ns = c.varint()?;
    let order = c.varint()?;
    let extra = match c.varint()? {
        EXTRA_NONE => SyscallExtra::None,
        EXTRA_NEW_THREAD => SyscallExtra::NewThread(c.u32()?),
        EXTRA_NEW_PROCESS => SyscallExtra::NewProcess {
            process: c.u32()?,
            thread: c.u32()?,
        },
        EXTRA_STD_STREAM => SyscallExtra::StdStream(c.byte()?),
        EXTRA_UNKNOWN => SyscallExtra::Unknown,
        EXTRA_ENTERED_AT => SyscallExtra::EnteredAt(c.varint()?),
        EXTRA_BUFFERED => SyscallExtra::Buffered,
        _ => return None,
    };
    let digested = c.u32()?;
    // The whole payload is the one value.
    (c.at == payload.len()).then_some(SyscallHead {
        thread,
        index,
        nr,
        args,
        ret,
        inputs: (),
        outputs: (),
        interval_ns,
        return_ns,
        order,
        extra,
        digested,
    })
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.b.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// bincode's varint: one byte up to 250, else a marker (251, 252,
    /// 253) and a little-endian u16, u32 or u64.
    fn varint(&mut self) -> Option<u64> {
        match self.byte()? {
            b @ 0..=250 => Some(u64::from(b)),
            251 => Some(u64::from(u16::from_le_bytes(
                self.take(2)?.try_into().ok()?,
            ))),
            252 => Some(u64::from(u32::from_le_bytes(
                self.take(4)?.try_into().ok()?,
            ))),
            253 => Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            _ => None,
        }
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.varint()?).ok()
    }

    /// Zigzag: 0, -1, 1, -2, ... as 0, 1, 2, 3, ...
    fn i64(&mut self) -> Option<i64> {
        let n = self.varint()?;
        Some(if n % 2 == 0 {
            (n / 2) as i64
        } else {
            !(n / 2) as i64
        })
    }

    /// A list of byte strings (a length, then each one's length and bytes).
    fn skip_list(&mut self) -> Option<()> {
        for _ in 0..self.varint()? {
            let len = usize::try_from(self.varint()?).ok()?;
            self.take(len)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileIdentity, ScanRecord, SyscallRecord, TraceRecord};

    fn record(extra: SyscallExtra, n: u64) -> SyscallRecord {
        SyscallRecord {
            thread: (n % 7) as u32 * 300,
            index: n * n * 977,
            nr: (n % 3) as u32 * 200,
            args: [0, 1, 250, 251, 65_536, u64::MAX - n],
            ret: match n % 4 {
                0 => -1,
                1 => i64::MIN + 1,
                2 => i64::MAX,
                _ => -(n as i64) * 1000,
            },
            inputs: (0..n % 3)
                .map(|i| vec![i as u8; (n * 100) as usize])
                .collect(),
            outputs: (0..n % 4)
                .map(|i| vec![i as u8; (n * 40) as usize])
                .collect(),
            interval_ns: n << 20,
            return_ns: n << 40,
            order: n.wrapping_mul(0x1234_5678_9abc),
            extra,
            digested: (n % 2) as u32,
        }
    }

    #[test]
    fn heads_read_as_bincode_reads_them() {
        let extras = [
            SyscallExtra::None,
            SyscallExtra::NewThread(70_000),
            SyscallExtra::NewProcess {
                process: 3,
                thread: 300,
            },
            SyscallExtra::StdStream(2),
            SyscallExtra::Unknown,
            SyscallExtra::EnteredAt(u64::MAX),
            SyscallExtra::Buffered,
        ];
        for n in 0..40u64 {
            for extra in &extras {
                let rec = TraceRecord::Syscall(record(extra.clone(), n));
                let mut bytes = Vec::new();
                crate::encode_into(&mut bytes, &rec).expect("encode");
                let slow: ScanRecord = crate::decode(&bytes).expect("decode");
                let fast = syscall_head(&bytes).map(ScanRecord::Syscall);
                assert_eq!(fast, Some(slow), "record {n} with {extra:?}");
                // Cut short or lengthened, it is left to bincode.
                assert_eq!(syscall_head(&bytes[..bytes.len() - 1]), None);
                bytes.push(0);
                assert_eq!(syscall_head(&bytes), None);
            }
        }
    }

    #[test]
    fn other_records_are_left_to_bincode() {
        let opened = SyscallExtra::Opened(FileIdentity {
            path: b"/etc/hosts".to_vec(),
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: -4,
            regular: true,
        });
        let exec = SyscallExtra::Exec { random: [7; 16] };
        for extra in [opened, exec, SyscallExtra::MappedFd(b"x".to_vec())] {
            let mut bytes = Vec::new();
            crate::encode_into(&mut bytes, &TraceRecord::Syscall(record(extra, 3)))
                .expect("encode");
            assert_eq!(syscall_head(&bytes), None);
        }
        let mut bytes = Vec::new();
        let exit = TraceRecord::ThreadExit {
            thread: 1,
            events: 1,
        };
        crate::encode_into(&mut bytes, &exit).expect("encode");
        assert_eq!(syscall_head(&bytes), None);
    }
}
