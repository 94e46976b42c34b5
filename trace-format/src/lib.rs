//! The rrc trace: a fixed preamble (magic and format version), a header
//! frame, then a stream of frames, each `len: u32 LE | crc32: u32 LE |
//! payload` where the payload is one bincode-encoded [`TraceRecord`].
//!
//! The format is a stream on purpose: a recorder killed at any point leaves
//! a readable prefix, and the same bytes can later be sent over a socket to
//! a backup. A complete trace ends with [`TraceRecord::End`].

mod bytes;
mod digest;
mod encode;
mod file;
mod head;
mod reader;
mod records;
mod scan;
mod syncpack;
mod writer;

pub use digest::{digest_sent, hex, InputDigest, RecordedInput, DIGEST_ABOVE};
pub use encode::SyscallFields;
pub use file::{create_for_writing, exe_digest, open_for_reading};
pub use reader::{read_record_at, read_trace_file, FrameReader, ReadOutcome, TraceReader};
pub use records::*;
pub use scan::{ScanRecord, SyscallHead};
pub use writer::{spawn_writer, Frames, TraceSender, TraceSink, TraceWriter, WriterHandle};

/// First eight bytes of every trace file.
pub const MAGIC: [u8; 8] = *b"RRCTRACE";
/// Bumped whenever a record's encoding changes. 10: integers as
/// variable-length integers, and large sent data as a digest. 11: an
/// exec keeps the program's `AT_RANDOM` bytes; the digest is XXH3-128.
/// 12: a batch's sync operations packed as differences.
pub const FORMAT_VERSION: u32 = 13;
/// Frames larger than this are treated as corruption rather than allocated.
pub const MAX_FRAME_LEN: u32 = 256 << 20;
/// Size of the fixed preamble: magic plus version.
pub const PREAMBLE_LEN: u64 = 12;

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    // Not a #[source]: the message already carries it, and error chains
    // would print it twice.
    #[error("{0}")]
    Io(std::io::Error),
    #[error("not an rrc trace (bad magic at byte offset 0)")]
    NotATrace,
    #[error("trace format version {found}, but this rrc reads version {supported}")]
    VersionMismatch { found: u32, supported: u32 },
    #[error("trace truncated at byte offset {offset}: {what}")]
    Truncated { offset: u64, what: String },
    #[error("trace corrupted at byte offset {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    #[error("cannot encode trace record: {0}")]
    Encode(String),
    #[error("{}: {what}", path.display())]
    File {
        path: std::path::PathBuf,
        what: String,
    },
    #[error("trace writer has stopped")]
    WriterGone,
}

impl From<std::io::Error> for TraceError {
    fn from(e: std::io::Error) -> Self {
        TraceError::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, TraceError>;

/// How records are encoded: bincode with variable-length integers (a
/// buffered call's record is mostly small numbers: this made the trace of
/// a call less than half as long as fixed-width ones).
fn encoding() -> impl bincode::Options + Copy {
    use bincode::Options;
    bincode::DefaultOptions::new().with_varint_encoding()
}

/// The same, for reading: a damaged length inside a record is refused
/// rather than allocated.
fn decoding() -> impl bincode::Options + Copy {
    use bincode::Options;
    encoding().with_limit(u64::from(MAX_FRAME_LEN))
}

/// One record's payload, as a frame holds it.
pub fn encode_into<T: serde::Serialize>(out: &mut Vec<u8>, value: &T) -> Result<()> {
    use bincode::Options;
    encoding()
        .serialize_into(out, value)
        .map_err(|e| TraceError::Encode(e.to_string()))
}

/// A frame's payload decoded; the whole payload must be one value.
pub fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> std::result::Result<T, String> {
    use bincode::Options;
    decoding().deserialize(payload).map_err(|e| e.to_string())
}
