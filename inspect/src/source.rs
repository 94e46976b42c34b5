//! Opening a trace file and walking its records one at a time, so a trace
//! far larger than memory can still be inspected.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use anyhow::Context;
use rrc_trace::{TraceError, TraceHeader, TraceReader, TraceRecord};

const READ_BUFFER_BYTES: usize = 1 << 20;

/// A trace whose preamble and header were read and checked.
pub struct OpenedTrace {
    reader: TraceReader<BufReader<File>>,
    /// Size of the file on disk.
    pub file_size: u64,
}

/// Where the readable prefix of a trace stops, and why.
pub struct PrefixEnd {
    /// Bytes of intact frames, preamble included.
    pub intact_bytes: u64,
    /// `None` when the trace ended with its End record.
    pub damage: Option<TraceError>,
}

impl OpenedTrace {
    /// Opens `path` and reads its preamble and header. Errors name the path
    /// when the file cannot be read, and are the reader's own words when
    /// the file is not a readable trace.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file =
            rrc_trace::open_for_reading(path).map_err(|e| anyhow::anyhow!("cannot open {e}"))?;
        let file_size = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        let input = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        let reader = TraceReader::new(input).map_err(|err| header_error(err, path))?;
        Ok(OpenedTrace { reader, file_size })
    }

    pub fn header(&self) -> &TraceHeader {
        self.reader.header()
    }

    /// Hands every readable record to `visit`, in trace order, stopping
    /// after the End record or at the first damage, as
    /// `TraceReader::read_all` does. Fails only when `visit` fails.
    pub fn for_each_record(
        mut self,
        mut visit: impl FnMut(&TraceRecord) -> io::Result<()>,
    ) -> io::Result<PrefixEnd> {
        let damage = loop {
            match self.reader.next_record() {
                Ok(Some(record)) => {
                    visit(&record)?;
                    if matches!(record, TraceRecord::End(_)) {
                        break self.reader.after_end();
                    }
                }
                Ok(None) => break Some(missing_end(self.reader.offset())),
                Err(err) => break Some(err),
            }
        };
        Ok(PrefixEnd {
            intact_bytes: self.reader.offset(),
            damage,
        })
    }
}

/// The damage of a trace that stops cleanly between frames before its End
/// record, worded as `TraceReader::read_all` words it.
fn missing_end(offset: u64) -> TraceError {
    TraceError::Truncated {
        offset,
        what: "the recording stopped before its end record (recorder killed?)".into(),
    }
}

fn header_error(err: TraceError, path: &Path) -> anyhow::Error {
    match err {
        TraceError::Io(io_err) => {
            anyhow::Error::new(io_err).context(format!("cannot read {}", path.display()))
        }
        other => other.into(),
    }
}
