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
        self.buf.clear();
        frame_record(&mut self.buf, record)?;
        self.write_buf()
    }

    /// Frames encoded elsewhere ([`Frames`]), sealed with their CRCs here.
    pub fn write_frames(&mut self, frames: &mut Frames) -> Result<()> {
        seal(&mut frames.buf);
        self.out.write_all(&frames.buf)?;
        self.bytes += frames.buf.len() as u64;
        Ok(())
    }

    fn write_frame<T: serde::Serialize>(&mut self, value: &T) -> Result<()> {
        self.buf.clear();
        frame_with(&mut self.buf, |b| crate::encode_into(b, value))?;
        self.write_buf()
    }

    fn write_buf(&mut self) -> Result<()> {
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

/// Appends `record` to `buf` as one frame (a syscall's encoded by hand).
fn frame_record(buf: &mut Vec<u8>, record: &TraceRecord) -> Result<()> {
    frame_with(buf, |b| encode_record(b, record))
}

/// A record's payload: syscalls, the hottest, encoded by hand.
fn encode_record(buf: &mut Vec<u8>, record: &TraceRecord) -> Result<()> {
    match record {
        TraceRecord::Syscall(r) => crate::encode::syscall_record(buf, r),
        other => crate::encode_into(buf, other),
    }
}

/// Appends one frame to `buf`: length, CRC-32, and the payload `encode`
/// appends.
fn frame_with(buf: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
    let start = buf.len();
    frame_unsealed(buf, encode)?;
    seal(&mut buf[start..]);
    Ok(())
}

/// [`frame_with`] but for the CRC, left for [`seal`] to write.
fn frame_unsealed(
    buf: &mut Vec<u8>,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 8]);
    if let Err(e) = encode(buf) {
        buf.truncate(start);
        return Err(e);
    }
    let payload_len = buf.len() - start - 8;
    let Some(len) = u32::try_from(payload_len)
        .ok()
        .filter(|l| *l <= crate::MAX_FRAME_LEN)
    else {
        buf.truncate(start);
        return Err(TraceError::Encode(format!(
            "record of {payload_len} bytes is too large"
        )));
    };
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Writes the CRC of every frame in `frames` (whole frames, as
/// [`frame_unsealed`] left them).
fn seal(frames: &mut [u8]) {
    let mut at = 0;
    while let Some(head) = frames.get(at..at + 8) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = (at + 8 + len).min(frames.len());
        let crc = crc32fast::hash(&frames[at + 8..end]);
        frames[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// Records framed on the producer's thread, to go to the writer in one
/// message: a tracer that turns a few hundred buffered calls into records
/// at once then pays for one channel send, not one per record. The writer
/// hands the buffer back ([`TraceSender::frames`]) instead of freeing it
/// on its own thread (which made the allocator's arenas contend), and
/// writes the frames' CRCs itself ([`TraceWriter::write_frames`]): they
/// were a tenth of the tracer's time on buffered calls.
#[derive(Default)]
pub struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    pub fn new() -> Frames {
        Frames::default()
    }

    pub fn push(&mut self, record: &TraceRecord) -> Result<()> {
        frame_unsealed(&mut self.buf, |b| encode_record(b, record))
    }

    /// A syscall record, framed as `TraceRecord::Syscall` is (without
    /// moving it into one).
    pub fn push_syscall(&mut self, record: &crate::SyscallRecord) -> Result<()> {
        frame_unsealed(&mut self.buf, |b| crate::encode::syscall_record(b, record))
    }

    /// The syscall record made of `fields`, `inputs` and `outputs`,
    /// framed as [`Self::push_syscall`] frames the record built.
    pub fn push_syscall_parts(
        &mut self,
        fields: &crate::SyscallFields,
        inputs: impl ExactSizeIterator<Item = impl AsRef<[u8]>>,
        outputs: impl ExactSizeIterator<Item = impl AsRef<[u8]>>,
    ) -> Result<()> {
        frame_unsealed(&mut self.buf, |b| {
            crate::encode::syscall_parts(b, fields, inputs, outputs)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// What goes down the writer's channel.
enum Item {
    // Boxed: a record is ten times the size of a batch of frames.
    Record(Box<TraceRecord>),
    Frames(Frames),
}

/// A producer's end of the writer's channel.
#[derive(Clone)]
pub struct TraceSender {
    inner: Sender<Item>,
    /// Buffers the writer is done with, for the next batch of frames: a
    /// new one each time grew through fresh pages the kernel had to zero
    /// (a tenth of a busy recording's processor time).
    spare: Receiver<Vec<u8>>,
}

/// How many emptied frame buffers the writer keeps for the producers.
const SPARE_BUFFERS: usize = 32;

impl TraceSender {
    /// An empty batch of frames, in a buffer the writer has handed back
    /// when there is one.
    pub fn frames(&self) -> Frames {
        Frames {
            buf: self.spare.try_recv().unwrap_or_default(),
        }
    }

    pub fn send(&self, record: TraceRecord) -> Result<()> {
        self.inner
            .send(Item::Record(Box::new(record)))
            .map_err(|_| TraceError::WriterGone)
    }

    /// Records already framed, written in order after what was sent before.
    pub fn send_frames(&self, frames: Frames) -> Result<()> {
        self.inner
            .send(Item::Frames(frames))
            .map_err(|_| TraceError::WriterGone)
    }
}

/// The sending end of a background trace writer.
pub struct WriterHandle {
    sender: Option<TraceSender>,
    join: Option<JoinHandle<Result<u64>>>,
}

impl WriterHandle {
    /// Another sender for the same writer (for a second producer thread).
    pub fn sender(&self) -> TraceSender {
        match &self.sender {
            Some(s) => s.clone(),
            None => TraceSender {
                inner: disconnected_sender(),
                spare: crossbeam_channel::never(),
            },
        }
    }

    pub fn send(&self, record: TraceRecord) -> Result<()> {
        match &self.sender {
            Some(s) => s.send(record),
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

fn disconnected_sender() -> Sender<Item> {
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
    let (spare_tx, spare) = crossbeam_channel::bounded(SPARE_BUFFERS);
    let join = std::thread::Builder::new()
        .name("rrc-trace-writer".into())
        .spawn(move || run_writer(writer, receiver, spare_tx))?;
    Ok(WriterHandle {
        sender: Some(TraceSender {
            inner: sender,
            spare,
        }),
        join: Some(join),
    })
}

fn write_item(
    writer: &mut TraceWriter<Box<dyn TraceSink>>,
    item: Item,
    spare: &Sender<Vec<u8>>,
) -> Result<()> {
    match item {
        Item::Record(record) => writer.write(&record),
        Item::Frames(mut frames) => {
            writer.write_frames(&mut frames)?;
            let mut buf = frames.buf;
            buf.clear();
            // Kept for the producers unless they have enough already.
            let _ = spare.try_send(buf);
            Ok(())
        }
    }
}

fn run_writer(
    mut writer: TraceWriter<Box<dyn TraceSink>>,
    rx: Receiver<Item>,
    spare: Sender<Vec<u8>>,
) -> Result<u64> {
    // Asleep until a batch starts (or every sender is gone)...
    while let Ok(item) = rx.recv() {
        write_item(&mut writer, item, &spare)?;
        // ...then the batch gathers (`finish` cuts this short).
        std::thread::park_timeout(WRITE_PERIOD);
        loop {
            match rx.try_recv() {
                Ok(item) => write_item(&mut writer, item, &spare)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TraceReader, TraceRecord};

    fn header() -> TraceHeader {
        TraceHeader {
            argv: vec![b"prog".to_vec()],
            env: Vec::new(),
            cwd: b"/".to_vec(),
            exe: b"/prog".to_vec(),
            start_time_unix_ns: 0,
            shim_path: Vec::new(),
            shim_digest: (0, 0),
            rrc_version: String::new(),
            ignored_signals: 0,
            blocked_signals: 0,
            inherited_fds: Vec::new(),
            exe_digest: crate::ExeDigest::default(),
            secret_env: Vec::new(),
            serialized: false,
        }
    }

    #[test]
    fn frames_made_elsewhere_read_back_as_records_written_one_by_one() {
        let records: Vec<TraceRecord> = (0..5)
            .map(|thread| TraceRecord::ThreadExit { thread, events: 7 })
            .collect();
        let mut one_by_one = TraceWriter::new(Vec::new(), &header()).expect("header");
        let mut batched = TraceWriter::new(Vec::new(), &header()).expect("header");
        let mut frames = Frames::new();
        for r in &records {
            one_by_one.write(r).expect("write");
            frames.push(r).expect("push");
        }
        batched.write_frames(&mut frames).expect("frames");
        assert_eq!(one_by_one.bytes_written(), batched.bytes_written());
        let bytes = batched.into_inner();
        assert_eq!(bytes, one_by_one.into_inner());
        let mut reader = TraceReader::new(&bytes[..]).expect("reader");
        for r in &records {
            assert_eq!(reader.next_record().expect("frame").as_ref(), Some(r));
        }
    }

    #[test]
    fn a_syscall_framed_by_reference_reads_back_as_the_record() {
        let call = crate::SyscallRecord {
            thread: 3,
            index: 9,
            nr: 1,
            args: [1, 0x7000, 64, 0, 0, 0],
            ret: 64,
            inputs: vec![vec![0xab; 64]],
            outputs: Vec::new(),
            interval_ns: 1_500,
            return_ns: 9_000_000,
            order: 77,
            extra: crate::SyscallExtra::Buffered,
            digested: 0,
        };
        let mut frames = Frames::new();
        frames.push_syscall(&call).expect("push");
        let mut writer = TraceWriter::new(Vec::new(), &header()).expect("header");
        writer.write_frames(&mut frames).expect("frames");
        let bytes = writer.into_inner();
        let mut reader = TraceReader::new(&bytes[..]).expect("reader");
        assert_eq!(
            reader.next_record().expect("frame"),
            Some(TraceRecord::Syscall(call))
        );
    }

    #[test]
    fn a_syscall_framed_from_borrowed_parts_is_the_record_framed_whole() {
        let call = crate::SyscallRecord {
            thread: 2,
            index: 70_000,
            nr: 44,
            args: [5, 0x7fff_cb33_4d80, 300, 0, 0x7000, 16],
            ret: 300,
            inputs: vec![vec![7; 300], vec![2, 0, 0x1f, 0x90]],
            outputs: vec![Vec::new(), vec![9; 16]],
            interval_ns: 1_234,
            return_ns: 5_000_000_000,
            order: 1 << 40,
            extra: crate::SyscallExtra::StdStream(1),
            digested: 0,
        };
        let mut whole = Frames::new();
        whole.push_syscall(&call).expect("push");
        let mut parts = Frames::new();
        let fields = call.fields();
        let inputs: Vec<&[u8]> = call.inputs.iter().map(Vec::as_slice).collect();
        let outputs: Vec<&[u8]> = call.outputs.iter().map(Vec::as_slice).collect();
        parts
            .push_syscall_parts(&fields, inputs.iter(), outputs.iter())
            .expect("push parts");
        let mut sealed = Vec::new();
        for mut frames in [whole, parts] {
            let mut writer = TraceWriter::new(Vec::new(), &header()).expect("header");
            writer.write_frames(&mut frames).expect("frames");
            sealed.push(writer.into_inner());
        }
        assert_eq!(sealed[0], sealed[1]);
        let mut reader = TraceReader::new(&sealed[1][..]).expect("reader");
        assert_eq!(
            reader.next_record().expect("a checked frame"),
            Some(TraceRecord::Syscall(call))
        );
    }

    #[test]
    fn the_writer_thread_writes_records_and_frames_in_the_order_sent() {
        let (tx, rx) = crossbeam_channel::unbounded::<Vec<u8>>();
        struct Sink(Vec<u8>, crossbeam_channel::Sender<Vec<u8>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl Drop for Sink {
            fn drop(&mut self) {
                let _ = self.1.send(std::mem::take(&mut self.0));
            }
        }
        let handle = spawn_writer(Box::new(Sink(Vec::new(), tx)), &header()).expect("spawn");
        let sender = handle.sender();
        sender
            .send(TraceRecord::ThreadExit {
                thread: 0,
                events: 1,
            })
            .expect("send");
        let mut frames = Frames::new();
        for thread in 1..3 {
            frames
                .push(&TraceRecord::ThreadExit { thread, events: 1 })
                .expect("push");
        }
        sender.send_frames(frames).expect("frames");
        handle
            .send(TraceRecord::ThreadExit {
                thread: 3,
                events: 1,
            })
            .expect("send");
        drop(sender);
        handle.finish().expect("finish");
        let bytes = rx.recv().expect("the sink's bytes");
        let outcome = TraceReader::new(&bytes[..]).expect("reader").read_all();
        let threads: Vec<u32> = outcome
            .records
            .iter()
            .map(|r| match r {
                TraceRecord::ThreadExit { thread, .. } => *thread,
                _ => u32::MAX,
            })
            .collect();
        assert_eq!(threads, vec![0, 1, 2, 3]);
    }

    #[test]
    fn the_writer_hands_a_written_batch_buffer_back_empty() {
        let handle = spawn_writer(Box::new(std::io::sink()), &header()).expect("spawn");
        let sender = handle.sender();
        let mut frames = sender.frames();
        for thread in 0..100 {
            frames
                .push(&TraceRecord::ThreadExit { thread, events: 1 })
                .expect("push");
        }
        let capacity = frames.buf.capacity();
        sender.send_frames(frames).expect("frames");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let back = loop {
            let f = sender.frames();
            if f.buf.capacity() > 0 || std::time::Instant::now() > deadline {
                break f;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        assert!(back.is_empty());
        assert_eq!(
            back.buf.capacity(),
            capacity,
            "the same buffer, its room kept"
        );
        drop(sender);
        handle.finish().expect("finish");
    }
}
