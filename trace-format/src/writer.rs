//! Writing a trace as a stream of frames, on a background thread fed by a
//! channel so the tracer never waits on the disk.

use std::io::Write;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::{Result, TraceError, TraceHeader, TraceRecord, FORMAT_VERSION, MAGIC};

/// Where a trace goes: a file now, a socket to a backup later.
pub trait TraceSink: Write + Send {}
impl<T: Write + Send> TraceSink for T {}

pub struct TraceWriter<W: Write> {
    out: W,
    bytes: u64,
    buf: Vec<u8>,
}

impl<W: Write> TraceWriter<W> {
    /// Writes the preamble and the header frame.
    pub fn new(mut out: W, header: &TraceHeader) -> Result<Self> {
        out.write_all(&MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        let mut w = TraceWriter {
            out,
            bytes: crate::PREAMBLE_LEN,
            buf: Vec::with_capacity(4096),
        };
        w.write_frame(header)?;
        Ok(w)
    }

    pub fn write(&mut self, record: &TraceRecord) -> Result<()> {
        self.write_frame(record)
    }

    fn write_frame<T: serde::Serialize>(&mut self, value: &T) -> Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0u8; 8]);
        crate::encode_into(&mut self.buf, value)?;
        let payload_len = self.buf.len() - 8;
        let len = u32::try_from(payload_len)
            .ok()
            .filter(|l| *l <= crate::MAX_FRAME_LEN)
            .ok_or_else(|| {
                TraceError::Encode(format!("record of {payload_len} bytes is too large"))
            })?;
        let crc = crc32fast::hash(&self.buf[8..]);
        self.buf[0..4].copy_from_slice(&len.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        // One write per frame: a reader of a cut file sees whole frames
        // followed by at most one partial one.
        self.out.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    /// Bytes written so far, preamble included.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The sending end of a background trace writer.
pub struct WriterHandle {
    sender: Option<Sender<TraceRecord>>,
    join: Option<JoinHandle<Result<u64>>>,
}

impl WriterHandle {
    /// Another sender for the same writer (for a second producer thread).
    pub fn sender(&self) -> Sender<TraceRecord> {
        match &self.sender {
            Some(s) => s.clone(),
            None => disconnected_sender(),
        }
    }

    pub fn send(&self, record: TraceRecord) -> Result<()> {
        match &self.sender {
            Some(s) => s.send(record).map_err(|_| TraceError::WriterGone),
            None => Err(TraceError::WriterGone),
        }
    }

    /// Closes the channel, waits for every record to reach the sink, and
    /// returns the number of bytes written.
    pub fn finish(mut self) -> Result<u64> {
        self.sender.take();
        if let Some(j) = &self.join {
            // Cuts its wait for the rest of a batch short: the recorder's
            // exit waits for this.
            j.thread().unpark();
        }
        match self.join.take() {
            Some(j) => j.join().map_err(|_| TraceError::WriterGone)?,
            None => Err(TraceError::WriterGone),
        }
    }
}

fn disconnected_sender() -> Sender<TraceRecord> {
    // Sending on it fails, which callers report as WriterGone.
    let (s, _) = crossbeam_channel::bounded(0);
    s
}

/// How long the writer thread lets a batch gather after its first
/// record. Waking on every record would cost the tracer a futex wake-up
/// (and, on a small machine, a context switch) per traced syscall.
const WRITE_PERIOD: std::time::Duration = std::time::Duration::from_millis(2);

/// Starts the writer thread. Records sent to the handle are framed and
/// written in order, in batches every couple of milliseconds, each batch
/// flushed: a killed recorder loses at most the last batch, and what it
/// leaves is a readable prefix.
pub fn spawn_writer(sink: Box<dyn TraceSink>, header: &TraceHeader) -> Result<WriterHandle> {
    let mut writer = TraceWriter::new(sink, header)?;
    writer.flush()?;
    let (sender, receiver) = crossbeam_channel::unbounded();
    let join = std::thread::Builder::new()
        .name("rrc-trace-writer".into())
        .spawn(move || run_writer(writer, receiver))?;
    Ok(WriterHandle {
        sender: Some(sender),
        join: Some(join),
    })
}

fn run_writer(
    mut writer: TraceWriter<Box<dyn TraceSink>>,
    rx: Receiver<TraceRecord>,
) -> Result<u64> {
    // Asleep until a batch starts (or every sender is gone)...
    while let Ok(record) = rx.recv() {
        writer.write(&record)?;
        // ...then the batch gathers (`finish` cuts this short).
        std::thread::park_timeout(WRITE_PERIOD);
        loop {
            match rx.try_recv() {
                Ok(record) => writer.write(&record)?,
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    writer.flush()?;
                    return Ok(writer.bytes_written());
                }
            }
        }
        writer.flush()?;
    }
    writer.flush()?;
    Ok(writer.bytes_written())
}
