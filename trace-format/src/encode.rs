//! The hottest record, a syscall, encoded by hand: the same bytes bincode
//! writes for it (varint integers, the format's encoding), without serde's
//! per-field calls and bincode's one-byte writes. A busy recording turns
//! every buffered call into one of these, and serde's way was a third of
//! the recorder's time spent on it. A unit test holds the two encodings
//! equal, field edge by field edge; the rare kinds of `extra` (all but
//! none, buffered and a std stream) still go through bincode.

use crate::{Result, SyscallExtra, SyscallRecord};

/// Variant indices in `SyscallExtra` (the unit tests hold them to serde's).
const EXTRA_NONE: u64 = 0;
const EXTRA_STD_STREAM: u64 = 4;
const EXTRA_BUFFERED: u64 = 8;

/// Integers gathered on the stack and appended at once: a push per
/// integer onto the trace's buffer, through a reference the compiler
/// cannot keep in registers, was most of the encoding's time.
struct Ints {
    buf: [u8; Ints::CAP],
    len: usize,
}

impl Ints {
    /// Room for more integers than one run holds (12, up to the inputs'
    /// count), at 9 bytes each.
    const CAP: usize = 16 * 9;

    fn new() -> Ints {
        Ints {
            buf: [0; Ints::CAP],
            len: 0,
        }
    }

    #[inline(always)]
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    /// bincode's varint: one byte up to 250, else a marker and the value.
    #[inline(always)]
    fn varint(&mut self, n: u64) {
        if n <= 250 {
            self.buf[self.len] = n as u8;
            self.len += 1;
        } else if n <= u64::from(u16::MAX) {
            self.bytes(&[251]);
            self.bytes(&(n as u16).to_le_bytes());
        } else if n <= u64::from(u32::MAX) {
            self.bytes(&[252]);
            self.bytes(&(n as u32).to_le_bytes());
        } else {
            self.bytes(&[253]);
            self.bytes(&n.to_le_bytes());
        }
    }

    /// Signed integers are zigzagged first, as bincode does.
    fn signed(&mut self, n: i64) {
        self.varint(((n << 1) ^ (n >> 63)) as u64);
    }

    /// Appends what was gathered to `out`, and starts again.
    #[inline]
    fn flush(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf[..self.len]);
        self.len = 0;
    }
}

fn byte_strings(
    out: &mut Vec<u8>,
    ints: &mut Ints,
    list: impl ExactSizeIterator<Item = impl AsRef<[u8]>>,
) {
    ints.varint(list.len() as u64);
    ints.flush(out);
    for b in list {
        let b = b.as_ref();
        ints.varint(b.len() as u64);
        ints.flush(out);
        out.extend_from_slice(b);
    }
}

/// A syscall record's fields but its byte strings: with those borrowed
/// from elsewhere (a thread's syscall buffer), a record is encoded without
/// being built, which spared the tracer an allocation and a copy per
/// string of every buffered call.
pub struct SyscallFields<'a> {
    pub thread: crate::ThreadId,
    pub index: u64,
    pub nr: u32,
    pub args: [u64; 6],
    pub ret: i64,
    pub interval_ns: u64,
    pub return_ns: u64,
    pub order: u64,
    pub extra: &'a SyscallExtra,
    pub digested: u32,
}

impl SyscallRecord {
    /// Its fields but the byte strings.
    pub fn fields(&self) -> SyscallFields<'_> {
        SyscallFields {
            thread: self.thread,
            index: self.index,
            nr: self.nr,
            args: self.args,
            ret: self.ret,
            interval_ns: self.interval_ns,
            return_ns: self.return_ns,
            order: self.order,
            extra: &self.extra,
            digested: self.digested,
        }
    }
}

impl SyscallFields<'_> {
    /// The record of these fields with `inputs` and `outputs`.
    pub fn into_record(self, inputs: Vec<Vec<u8>>, outputs: Vec<Vec<u8>>) -> SyscallRecord {
        SyscallRecord {
            thread: self.thread,
            index: self.index,
            nr: self.nr,
            args: self.args,
            ret: self.ret,
            inputs,
            outputs,
            interval_ns: self.interval_ns,
            return_ns: self.return_ns,
            order: self.order,
            extra: self.extra.clone(),
            digested: self.digested,
        }
    }
}

/// `TraceRecord::Syscall(record)`'s payload, appended to `out`.
pub(crate) fn syscall_record(out: &mut Vec<u8>, r: &SyscallRecord) -> Result<()> {
    syscall_parts(out, &r.fields(), r.inputs.iter(), r.outputs.iter())
}

/// The payload of the syscall record with `fields`, `inputs` and
/// `outputs`, appended to `out`: the same bytes as the record built.
pub(crate) fn syscall_parts(
    out: &mut Vec<u8>,
    r: &SyscallFields,
    inputs: impl ExactSizeIterator<Item = impl AsRef<[u8]>>,
    outputs: impl ExactSizeIterator<Item = impl AsRef<[u8]>>,
) -> Result<()> {
    /// The variant's index in `TraceRecord`.
    const SYSCALL_VARIANT: u64 = 1;
    let mut ints = Ints::new();
    ints.varint(SYSCALL_VARIANT);
    ints.varint(u64::from(r.thread));
    ints.varint(r.index);
    ints.varint(u64::from(r.nr));
    for a in r.args {
        ints.varint(a);
    }
    ints.signed(r.ret);
    byte_strings(out, &mut ints, inputs);
    byte_strings(out, &mut ints, outputs);
    ints.varint(r.interval_ns);
    ints.varint(r.return_ns);
    ints.varint(r.order);
    // The kinds of `extra` a buffered call has, by hand too: an enum is
    // its variant's index (a varint), then its fields.
    match r.extra {
        SyscallExtra::None => ints.varint(EXTRA_NONE),
        SyscallExtra::Buffered => ints.varint(EXTRA_BUFFERED),
        SyscallExtra::StdStream(stream) => {
            ints.varint(EXTRA_STD_STREAM);
            ints.bytes(&[*stream]);
        }
        other => {
            ints.flush(out);
            crate::encode_into(out, other)?;
        }
    }
    ints.varint(u64::from(r.digested));
    ints.flush(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileIdentity, SyscallExtra, TraceRecord};

    /// Values on each side of every varint boundary.
    const EDGES: [u64; 12] = [
        0,
        1,
        250,
        251,
        252,
        65_535,
        65_536,
        u32::MAX as u64 - 1,
        u32::MAX as u64,
        u32::MAX as u64 + 1,
        u64::MAX - 1,
        u64::MAX,
    ];

    fn by_serde(r: &SyscallRecord) -> Vec<u8> {
        let mut v = Vec::new();
        crate::encode_into(&mut v, &TraceRecord::Syscall(r.clone())).expect("serde encodes");
        v
    }

    fn by_hand(r: &SyscallRecord) -> Vec<u8> {
        let mut v = Vec::new();
        syscall_record(&mut v, r).expect("hand encodes");
        v
    }

    fn record(n: u64, extra: SyscallExtra) -> SyscallRecord {
        SyscallRecord {
            thread: n as u32,
            index: n,
            nr: (n >> 3) as u32,
            args: [n, n / 2, !n, 7, n.rotate_left(13), 0],
            ret: n as i64,
            inputs: vec![vec![n as u8; (n % 300) as usize], Vec::new()],
            outputs: vec![vec![0xa5; (n % 70_000) as usize]],
            interval_ns: n,
            return_ns: n ^ 0x55,
            order: n.wrapping_add(1),
            extra,
            digested: n as u32,
        }
    }

    #[test]
    fn a_syscall_encoded_by_hand_is_bincodes_encoding_at_every_varint_edge() {
        for &n in &EDGES {
            for extra in [
                SyscallExtra::Buffered,
                SyscallExtra::None,
                SyscallExtra::StdStream(2),
                SyscallExtra::StdStream(251),
                SyscallExtra::NewProcess {
                    process: n as u32,
                    thread: 3,
                },
                SyscallExtra::Opened(FileIdentity {
                    path: b"/etc/hosts".to_vec(),
                    dev: n,
                    ino: 2,
                    size: n / 3,
                    mtime_ns: -(n as i128),
                    regular: true,
                }),
                SyscallExtra::EnteredAt(n),
                SyscallExtra::Exec { random: [9; 16] },
            ] {
                let r = record(n, extra);
                assert_eq!(by_hand(&r), by_serde(&r), "n = {n}, extra {:?}", r.extra);
            }
        }
    }

    #[test]
    fn negative_returns_zigzag_as_bincodes_do() {
        for ret in [
            -1,
            -4095,
            -251,
            -126,
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            125,
            126,
        ] {
            let mut r = record(5, SyscallExtra::Buffered);
            r.ret = ret;
            assert_eq!(by_hand(&r), by_serde(&r), "ret {ret}");
        }
    }

    #[test]
    fn a_hand_encoded_record_reads_back_as_itself() {
        let r = record(70_000, SyscallExtra::Buffered);
        let back: TraceRecord = crate::decode(&by_hand(&r)).expect("decodes");
        assert_eq!(back, TraceRecord::Syscall(r));
    }
}
