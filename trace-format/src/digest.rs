//! Sent data kept as a digest. Replay compares the bytes a program writes
//! out with the recorded ones; for that a strong hash of them is as good
//! as the bytes, and a server's replies are most of its trace (memcached
//! under memcaslap: 1 KB of a 2.2 KB request). So the recorder keeps the
//! length and 128-bit XXH3 hash of large sent data instead (`rrc-record
//! --full-inputs` keeps the bytes), and marks which inputs it hashed in
//! [`SyscallRecord::digested`]. XXH3 rather than a cryptographic hash:
//! the digest tells a replay that went another way from the recorded
//! one, where any change gives another hash but for a 2^-128 chance, and
//! SHA-256 of every reply was a fifth of the recorder's time under a
//! busy memcached (XXH3: a tenth of SHA-256's cost). The executable's
//! identity, which guards what replay runs, stays SHA-256 (`file.rs`).
//!
//! Only data a call sends is hashed: paths and socket addresses, which
//! replay needs whole, never are, and neither is what a program writes
//! to rrc's stdout or stderr, which replay prints.

use crate::SyscallRecord;

/// Inputs longer than this are kept as a digest (which takes 24 bytes).
pub const DIGEST_ABOVE: usize = 64;

/// The length and XXH3-128 hash of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputDigest {
    pub len: u64,
    /// The hash, little-endian.
    pub hash: [u8; 16],
}

/// Bytes an encoded digest takes in `SyscallRecord::inputs`.
const ENCODED: usize = 24;

impl InputDigest {
    pub fn of(bytes: &[u8]) -> InputDigest {
        InputDigest {
            len: bytes.len() as u64,
            hash: xxhash_rust::xxh3::xxh3_128(bytes).to_le_bytes(),
        }
    }

    /// How it is stored in place of the bytes: length (u64 LE), digest.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(ENCODED);
        v.extend_from_slice(&self.len.to_le_bytes());
        v.extend_from_slice(&self.hash);
        v
    }

    /// `None` when `stored` is not an encoded digest (a damaged trace).
    pub fn decode(stored: &[u8]) -> Option<InputDigest> {
        let (len, hash) = stored.split_first_chunk::<8>()?;
        let hash: [u8; 16] = hash.try_into().ok()?;
        Some(InputDigest {
            len: u64::from_le_bytes(*len),
            hash,
        })
    }

    pub fn matches(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.len && *self == InputDigest::of(bytes)
    }

    /// The first bytes of the digest in hex, enough to tell two apart.
    pub fn short_hex(&self) -> String {
        hex(&self.hash[..8])
    }
}

/// A recorded input as the trace holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordedInput<'a> {
    Bytes(&'a [u8]),
    Digest(InputDigest),
    /// Marked as a digest but not one: a damaged or foreign trace.
    Malformed,
}

impl RecordedInput<'_> {
    /// Whether `now`, what the program gives in replay, is what it gave.
    pub fn matches(&self, now: &[u8]) -> bool {
        match self {
            RecordedInput::Bytes(b) => *b == now,
            RecordedInput::Digest(d) => d.matches(now),
            RecordedInput::Malformed => false,
        }
    }

    /// Its length in the recording.
    pub fn len(&self) -> u64 {
        match self {
            RecordedInput::Bytes(b) => b.len() as u64,
            RecordedInput::Digest(d) => d.len,
            RecordedInput::Malformed => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Calls whose first input is data sent out (to a file, pipe or socket).
const SENDS_DATA: [i64; 11] = [
    libc::SYS_write,
    libc::SYS_pwrite64,
    libc::SYS_writev,
    libc::SYS_pwritev,
    libc::SYS_pwritev2,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_sendfile,
    libc::SYS_copy_file_range,
    libc::SYS_splice,
    libc::SYS_tee,
];

impl SyscallRecord {
    /// Input `i` as recorded, `None` past the last.
    pub fn input(&self, i: usize) -> Option<RecordedInput<'_>> {
        let stored = self.inputs.get(i)?;
        if i < 32 && self.digested & (1 << i) != 0 {
            Some(
                InputDigest::decode(stored).map_or(RecordedInput::Malformed, RecordedInput::Digest),
            )
        } else {
            Some(RecordedInput::Bytes(stored))
        }
    }

    /// Every input as recorded.
    pub fn recorded_inputs(&self) -> impl Iterator<Item = RecordedInput<'_>> {
        (0..self.inputs.len()).filter_map(|i| self.input(i))
    }

    /// Replaces large sent data by its digest (the recorder, unless told
    /// to keep it). Writes to rrc's stdout and stderr stay whole: replay
    /// prints them.
    pub fn digest_sent_data(&mut self) {
        if self.digested & 1 == 0 {
            self.digested |= digest_sent(self.nr, &self.extra, &mut self.inputs);
        }
    }
}

/// [`SyscallRecord::digest_sent_data`] for the inputs of call `nr` held
/// elsewhere (borrowed, for a buffered call framed in place): the
/// `digested` bits it sets.
pub fn digest_sent<T: AsRef<[u8]> + From<Vec<u8>>>(
    nr: u32,
    extra: &crate::SyscallExtra,
    inputs: &mut [T],
) -> u32 {
    let Some(data) = inputs.first_mut() else {
        return 0;
    };
    let sends =
        SENDS_DATA.contains(&i64::from(nr)) && !matches!(extra, crate::SyscallExtra::StdStream(_));
    if !sends || data.as_ref().len() <= DIGEST_ABOVE {
        return 0;
    }
    *data = T::from(InputDigest::of(data.as_ref()).encode());
    1
}

/// Bytes as lowercase hexadecimal, two digits each (digests, the random
/// bytes an exec kept).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SyscallExtra, NO_ORDER};

    fn send(data: &[u8], extra: SyscallExtra) -> SyscallRecord {
        SyscallRecord {
            thread: 0,
            index: 3,
            nr: libc::SYS_sendto as u32,
            args: [5, 0x1000, data.len() as u64, 0, 0, 0],
            ret: data.len() as i64,
            inputs: vec![data.to_vec(), b"\x02\x00\x1f\x90".to_vec()],
            outputs: Vec::new(),
            interval_ns: 1,
            return_ns: 2,
            order: NO_ORDER,
            extra,
            digested: 0,
        }
    }

    #[test]
    fn large_sent_data_becomes_a_digest_that_matches_only_the_same_bytes() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let mut r = send(&data, SyscallExtra::Buffered);
        r.digest_sent_data();
        assert_eq!(r.digested, 1);
        assert_eq!(r.inputs[0].len(), ENCODED);
        assert_eq!(
            r.input(1),
            Some(RecordedInput::Bytes(b"\x02\x00\x1f\x90")),
            "the address stays whole"
        );
        let rec = r.input(0).expect("input 0");
        assert_eq!(rec.len(), 1000);
        assert!(rec.matches(&data));
        let mut other = data.clone();
        other[500] ^= 1;
        assert!(!rec.matches(&other), "one byte differs");
        assert!(!rec.matches(&data[..999]), "one byte shorter");
        // Hashing twice changes nothing.
        let once = r.clone();
        r.digest_sent_data();
        assert_eq!(r, once);
    }

    #[test]
    fn small_data_output_and_paths_stay_whole() {
        let small = send(&[1u8; DIGEST_ABOVE], SyscallExtra::Buffered);
        let mut r = small.clone();
        r.digest_sent_data();
        assert_eq!(r, small, "64 bytes are kept");
        let out = send(&[1u8; 4096], SyscallExtra::StdStream(1));
        let mut r = out.clone();
        r.digest_sent_data();
        assert_eq!(r, out, "output replay prints is kept");
        let mut open = send(&[b'/'; 200], SyscallExtra::None);
        open.nr = libc::SYS_openat as u32;
        let before = open.clone();
        open.digest_sent_data();
        assert_eq!(open, before, "a path is kept");
    }

    #[test]
    fn a_damaged_digest_matches_nothing() {
        let mut r = send(&[9u8; 100], SyscallExtra::Buffered);
        r.digest_sent_data();
        r.inputs[0].truncate(10);
        assert_eq!(r.input(0), Some(RecordedInput::Malformed));
        assert!(!r.input(0).expect("input").matches(&[9u8; 100]));
    }

    #[test]
    fn a_digested_record_survives_the_trace_encoding() {
        let mut r = send(&[3u8; 300], SyscallExtra::Buffered);
        r.digest_sent_data();
        let rec = crate::TraceRecord::Syscall(r);
        let mut bytes = Vec::new();
        crate::encode_into(&mut bytes, &rec).expect("encode");
        let back: crate::TraceRecord = crate::decode(&bytes).expect("decode");
        assert_eq!(back, rec);
    }
}
