//! Reading a trace, frame by frame, with every way it can be damaged named
//! by byte offset.

use std::io::{ErrorKind, Read};
use std::path::Path;

use crate::{Result, TraceError, TraceHeader, TraceRecord, FORMAT_VERSION, MAGIC, MAX_FRAME_LEN};

pub struct TraceReader<R: Read> {
    input: R,
    offset: u64,
    header: TraceHeader,
    /// The current frame's payload, reused from frame to frame.
    payload: Vec<u8>,
}

/// A whole trace read into memory, and how it ended.
#[derive(Debug)]
pub struct ReadOutcome {
    pub header: TraceHeader,
    pub records: Vec<TraceRecord>,
    /// Total bytes of intact frames, preamble included.
    pub intact_bytes: u64,
    /// `None` when the trace ends with its End record; otherwise why the
    /// readable prefix stops where it does.
    pub damage: Option<TraceError>,
}

impl ReadOutcome {
    pub fn is_complete(&self) -> bool {
        self.damage.is_none()
    }
}

impl<R: Read> TraceReader<R> {
    /// Reads and checks the preamble and the header.
    pub fn new(mut input: R) -> Result<Self> {
        let mut pre = [0u8; 12];
        let got = read_up_to(&mut input, &mut pre)?;
        if got < 8 || pre[..8] != MAGIC {
            if got < 8 && pre[..got] == MAGIC[..got] {
                return Err(TraceError::Truncated {
                    offset: got as u64,
                    what: "the file ends inside the preamble".into(),
                });
            }
            return Err(TraceError::NotATrace);
        }
        if got < 12 {
            return Err(TraceError::Truncated {
                offset: got as u64,
                what: "the file ends inside the preamble".into(),
            });
        }
        let version = u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]);
        if version != FORMAT_VERSION {
            return Err(TraceError::VersionMismatch {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let mut offset = crate::PREAMBLE_LEN;
        let mut payload = Vec::new();
        let header: TraceHeader = match read_frame(&mut input, &mut offset, &mut payload)? {
            Some(h) => h,
            None => {
                return Err(TraceError::Truncated {
                    offset,
                    what: "the file ends before the header".into(),
                })
            }
        };
        Ok(TraceReader {
            input,
            offset,
            header,
            payload,
        })
    }

    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// Byte offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, `Ok(None)` at a clean end of input.
    pub fn next_record(&mut self) -> Result<Option<TraceRecord>> {
        read_frame(&mut self.input, &mut self.offset, &mut self.payload)
    }

    /// Called after the End record: a complete trace has nothing after it,
    /// so bytes there are damage (a trace appended to, or two glued).
    pub fn after_end(&mut self) -> Option<TraceError> {
        let mut probe = [0u8; 1];
        match read_up_to(&mut self.input, &mut probe) {
            Ok(0) => None,
            Ok(_) => Some(TraceError::Corrupt {
                offset: self.offset,
                what: "bytes after the end record (appended to, or two traces joined)".into(),
            }),
            Err(e) => Some(e),
        }
    }

    /// Reads everything that is readable; damage after the header is
    /// reported in the outcome, not as an error, so the prefix stays usable.
    pub fn read_all(mut self) -> ReadOutcome {
        let mut records = Vec::new();
        let damage = loop {
            match self.next_record() {
                Ok(Some(rec)) => {
                    let end = matches!(rec, TraceRecord::End(_));
                    records.push(rec);
                    if end {
                        break self.after_end();
                    }
                }
                Ok(None) => {
                    break Some(TraceError::Truncated {
                        offset: self.offset,
                        what: "the recording stopped before its end record (recorder killed?)"
                            .into(),
                    })
                }
                Err(e) => break Some(e),
            }
        };
        ReadOutcome {
            header: self.header,
            records,
            intact_bytes: self.offset,
            damage,
        }
    }
}

impl<R: std::io::BufRead> TraceReader<R> {
    /// The next record without the bytes syscalls read and wrote (see
    /// [`crate::ScanRecord`]), checked as `next_record` checks it. A frame
    /// already in the read buffer is read there, without a copy.
    pub fn next_scan(&mut self) -> Result<Option<crate::ScanRecord>> {
        let start = self.offset;
        let buffered = self.input.fill_buf()?;
        if let Some((head, rest)) = buffered.split_first_chunk::<8>() {
            let len = frame_len(head, start)?;
            if let Some(payload) = rest.get(..len) {
                let head = *head;
                let scanned = scan_payload(&head, payload, start)?;
                self.input.consume(8 + len);
                self.offset = start + 8 + len as u64;
                return Ok(Some(scanned));
            }
        }
        let Some(head) = read_payload(&mut self.input, start, &mut self.payload)? else {
            return Ok(None);
        };
        let scanned = scan_payload(&head, &self.payload, start)?;
        self.offset = start + 8 + self.payload.len() as u64;
        Ok(Some(scanned))
    }
}

/// A frame's payload as a [`crate::ScanRecord`]: syscalls, nearly all of
/// a trace, without bincode's general decoder.
fn scan_payload(head: &[u8; 8], payload: &[u8], offset: u64) -> Result<crate::ScanRecord> {
    check_crc(head, payload, offset)?;
    if let Some(syscall) = crate::head::syscall_head(payload) {
        return Ok(crate::ScanRecord::Syscall(syscall));
    }
    decode_checked(payload, offset)
}

impl TraceReader<std::io::BufReader<std::fs::File>> {
    pub fn open(path: &Path) -> Result<Self> {
        let f = crate::open_for_reading(path)?;
        TraceReader::new(std::io::BufReader::with_capacity(1 << 20, f))
    }
}

fn read_up_to<R: Read>(input: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// Frames up to this long are read in one go into a buffer of their
/// length; longer ones grow the buffer as their bytes arrive.
const TRUSTED_FRAME_LEN: usize = 1 << 20;

fn read_frame<R: Read, T: serde::de::DeserializeOwned>(
    input: &mut R,
    offset: &mut u64,
    payload: &mut Vec<u8>,
) -> Result<Option<T>> {
    let start = *offset;
    let Some(head) = read_payload(input, start, payload)? else {
        return Ok(None);
    };
    let value = decode_frame(&head, payload, start)?;
    // Only past a frame that decodes: a damaged one is where the intact
    // prefix ends.
    *offset = start + 8 + payload.len() as u64;
    Ok(Some(value))
}

/// Reads the payload of the frame at `start` into `payload`; returns the
/// frame's header, `None` at a clean end of input.
fn read_payload<R: Read>(
    input: &mut R,
    start: u64,
    payload: &mut Vec<u8>,
) -> Result<Option<[u8; 8]>> {
    let mut head = [0u8; 8];
    let got = read_up_to(input, &mut head)?;
    if got == 0 {
        return Ok(None);
    }
    if got < 8 {
        return Err(TraceError::Truncated {
            offset: start,
            what: format!("only {got} of 8 bytes of a frame header"),
        });
    }
    let len = frame_len(&head, start)?;
    // Past a megabyte, grow as data arrives rather than trusting the
    // length up front: a damaged length must not make us allocate hundreds
    // of megabytes.
    payload.clear();
    if len <= TRUSTED_FRAME_LEN {
        payload.resize(len, 0);
        let got = read_up_to(input, payload)?;
        payload.truncate(got);
    } else {
        input.by_ref().take(len as u64).read_to_end(payload)?;
    }
    if payload.len() < len {
        return Err(TraceError::Truncated {
            offset: start,
            what: format!(
                "the record there claims {len} bytes but only {} follow (cut short, or a damaged length)",
                payload.len()
            ),
        });
    }
    Ok(Some(head))
}

/// The record whose frame starts at byte `offset` of `file`, and the
/// frame's size (head included), checked as when read in sequence: replay
/// reads a trace a second time this way, record by record, keeping only a
/// window of it in memory.
pub fn read_record_at(file: &std::fs::File, offset: u64) -> Result<(TraceRecord, u64)> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, offset)
        .map_err(|e| short_read(e, offset))?;
    let len = frame_len(&head, offset)?;
    let mut payload = vec![0u8; len];
    file.read_exact_at(&mut payload, offset + 8)
        .map_err(|e| short_read(e, offset))?;
    Ok((decode_frame(&head, &payload, offset)?, 8 + len as u64))
}

fn short_read(e: std::io::Error, offset: u64) -> TraceError {
    match e.kind() {
        ErrorKind::UnexpectedEof => TraceError::Truncated {
            offset,
            what: "the file is shorter than when it was first read".into(),
        },
        _ => TraceError::Io(e),
    }
}

/// The payload length a frame header gives, if plausible.
fn frame_len(head: &[u8; 8], offset: u64) -> Result<usize> {
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    if len > MAX_FRAME_LEN {
        return Err(TraceError::Corrupt {
            offset,
            what: format!("frame length {len} is implausible"),
        });
    }
    Ok(len as usize)
}

/// Checks a frame's payload against its header's checksum and decodes it.
fn decode_frame<T: serde::de::DeserializeOwned>(
    head: &[u8; 8],
    payload: &[u8],
    offset: u64,
) -> Result<T> {
    check_crc(head, payload, offset)?;
    decode_checked(payload, offset)
}

fn check_crc(head: &[u8; 8], payload: &[u8], offset: u64) -> Result<()> {
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if crc32fast::hash(payload) != crc {
        return Err(TraceError::Corrupt {
            offset,
            what: "checksum mismatch".into(),
        });
    }
    Ok(())
}

fn decode_checked<T: serde::de::DeserializeOwned>(payload: &[u8], offset: u64) -> Result<T> {
    crate::decode(payload).map_err(|e| TraceError::Corrupt {
        offset,
        what: format!("undecodable record: {e}"),
    })
}

/// [`read_record_at`] through a read-ahead buffer: records read in about
/// the order they lie in the file cost one read per chunk, not two reads
/// each.
pub struct FrameReader {
    file: std::fs::File,
    chunk: Vec<u8>,
    /// The file offset of `chunk[0]`.
    start: u64,
}

impl FrameReader {
    /// How much is read at once.
    const CHUNK: usize = 1 << 20;

    pub fn new(file: std::fs::File) -> FrameReader {
        FrameReader {
            file,
            chunk: Vec::new(),
            start: 0,
        }
    }

    /// The record whose frame starts at `offset`, and the frame's size.
    pub fn read_at(&mut self, offset: u64) -> Result<(TraceRecord, u64)> {
        let head: [u8; 8] =
            self.bytes(offset, 8)?
                .try_into()
                .map_err(|_| TraceError::Truncated {
                    offset,
                    what: "the file is shorter than when it was first read".into(),
                })?;
        let len = frame_len(&head, offset)?;
        let payload = self.bytes(offset + 8, len)?;
        Ok((decode_frame(&head, payload, offset)?, 8 + len as u64))
    }

    /// `len` bytes at `offset`, read into the buffer first unless there.
    fn bytes(&mut self, offset: u64, len: usize) -> Result<&[u8]> {
        use std::os::unix::fs::FileExt;
        let end = offset + len as u64;
        let held = self.start + self.chunk.len() as u64;
        if offset < self.start || end > held {
            let want = len.max(Self::CHUNK);
            self.chunk.resize(want, 0);
            let mut got = 0;
            while got < want {
                match self
                    .file
                    .read_at(&mut self.chunk[got..], offset + got as u64)
                {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(TraceError::Io(e)),
                }
            }
            self.chunk.truncate(got);
            self.start = offset;
            if got < len {
                return Err(short_read(ErrorKind::UnexpectedEof.into(), offset));
            }
        }
        let at = (offset - self.start) as usize;
        Ok(&self.chunk[at..at + len])
    }
}

/// Convenience: open and read a whole trace file.
pub fn read_trace_file(path: &Path) -> Result<ReadOutcome> {
    Ok(TraceReader::open(path)?.read_all())
}
