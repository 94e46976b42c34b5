//! Reading a trace's events for replay through a bounded window.
//!
//! The plan's first pass over the trace keeps, per thread, only where each
//! event's frame starts. A reader thread then loads events ahead of the
//! engine into per-thread queues, in file order (which is close to the
//! order replay needs them), while the queues hold less than the window's
//! bytes. The engine takes a thread's events one at a time through its
//! [`EventQueue`]; when a thread's next event is not loaded yet, it asks
//! the reader for that one event, which is loaded at once even with the
//! window full (it is read by its offset, so no other thread's records
//! need to be held to get to it). Memory for events is thus the window,
//! plus the one event at the front of each thread's queue.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rrc_trace::{FrameReader, ThreadId, TraceRecord};

use crate::plan::PlannedEvent;

/// What a trace's events are read from: the file, and per thread where
/// each event's frame starts, in the thread's order.
pub struct EventIndex {
    pub file: File,
    pub offsets: Vec<FrameOffsets>,
}

/// Where a thread's event frames start, 4 bytes an event: each as its
/// distance from the thread's previous one.
#[derive(Debug, Default)]
pub struct FrameOffsets {
    deltas: Vec<u32>,
    /// `(event, offset)` for the distances that do not fit (`u32::MAX`).
    far: Vec<(usize, u64)>,
    last: u64,
}

impl FrameOffsets {
    /// Adds the next event's frame offset (increasing).
    pub fn push(&mut self, offset: u64) {
        match u32::try_from(offset - self.last) {
            Ok(d) if d != u32::MAX => self.deltas.push(d),
            _ => {
                self.far.push((self.deltas.len(), offset));
                self.deltas.push(u32::MAX);
            }
        }
        self.last = offset;
    }

    pub fn len(&self) -> usize {
        self.deltas.len()
    }

    /// The offset of event `index`, given the offset of the one before
    /// (0 for the first).
    fn after(&self, index: usize, previous: u64) -> u64 {
        match self.deltas[index] {
            u32::MAX => self
                .far
                .binary_search_by_key(&index, |f| f.0)
                .map_or(u64::MAX, |at| self.far[at].1),
            d => previous + u64::from(d),
        }
    }
}

/// About what an event takes in memory once decoded: the window counts
/// this, not the frame's bytes (a small record's allocations take
/// several times its encoded size).
fn footprint(event: &PlannedEvent) -> u64 {
    // malloc's overhead per allocation, about.
    const ALLOC: usize = 16;
    let bufs = |v: &Vec<Vec<u8>>| {
        v.capacity() * std::mem::size_of::<Vec<u8>>()
            + ALLOC
            + v.iter().map(|b| b.capacity() + ALLOC).sum::<usize>()
    };
    let heap = match event {
        PlannedEvent::Syscall(s) => {
            let extra = match &s.extra {
                rrc_trace::SyscallExtra::MappedFd(p) => p.capacity() + ALLOC,
                rrc_trace::SyscallExtra::Opened(_) => 256,
                _ => 0,
            };
            bufs(&s.inputs) + bufs(&s.outputs) + extra
        }
        PlannedEvent::Tsc(_) => 0,
        PlannedEvent::Signal(s) => s.siginfo.capacity() + ALLOC,
    };
    (std::mem::size_of::<(PlannedEvent, u64)>() + heap) as u64
}

struct WindowState {
    /// Loaded, not yet taken: each event with its footprint.
    queues: Vec<VecDeque<(PlannedEvent, u64)>>,
    /// Per thread, how many of its events have been loaded.
    loaded: Vec<usize>,
    /// Per thread, the offset of its next event to load.
    cursor: Vec<u64>,
    /// Bytes (decoded, about) in the queues.
    bytes: u64,
    /// The most `bytes` ever held.
    peak: u64,
    /// Threads whose next event the engine waits for.
    wanted: Vec<bool>,
    error: Option<String>,
    stop: bool,
    /// The reader waits for room or for a wanted thread.
    reader_waiting: bool,
    /// Events the engine is done with, for the reader to free: it made
    /// them, and frees from its own thread cost far less than the
    /// engine's (a tenth of the engine's time on a busy server's trace).
    spent: Vec<PlannedEvent>,
}

/// Events the reader loads for one thread before it hands them over.
const LOAD_BATCH: usize = 32;

struct Window {
    state: Mutex<WindowState>,
    changed: Condvar,
    index: EventIndex,
    /// Reads the file ahead in chunks (the reader thread's alone).
    frames: Mutex<FrameReader>,
    limit: u64,
}

/// The reader thread; stopped when dropped.
pub struct WindowReader {
    window: Arc<Window>,
    join: Option<JoinHandle<()>>,
}

/// One thread's events, front first. The front event is always in memory
/// (so the engine can look at it), the rest come from the window.
#[derive(Default)]
pub struct EventQueue {
    local: VecDeque<PlannedEvent>,
    /// Events done with, handed to the reader at the next take.
    spent: Vec<PlannedEvent>,
    /// Events still in the window (loaded or not).
    left: usize,
    thread: ThreadId,
    window: Option<Arc<Window>>,
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("local", &self.local.len())
            .field("left", &self.left)
            .finish()
    }
}

impl Window {
    fn lock(&self) -> MutexGuard<'_, WindowState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The thread to load an event of next: one the engine waits for,
    /// else (while there is room) the one whose next event comes first in
    /// the file.
    fn pick(&self, s: &WindowState) -> Option<usize> {
        let unloaded = |t: usize| s.loaded[t] < self.index.offsets[t].len();
        if let Some(t) = (0..s.wanted.len()).find(|&t| s.wanted[t] && s.queues[t].is_empty()) {
            if unloaded(t) {
                return Some(t);
            }
        }
        if s.bytes >= self.limit {
            return None;
        }
        (0..s.loaded.len())
            .filter(|&t| unloaded(t))
            .min_by_key(|&t| s.cursor[t])
    }

    fn load(
        &self,
        thread: usize,
        index: usize,
        offset: u64,
    ) -> Result<(PlannedEvent, u64), String> {
        let (record, _) = self
            .frames
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .read_at(offset)
            .map_err(|e| format!("reading the trace again: {e}"))?;
        let changed = || {
            format!(
                "the trace changed since replay started: the record at byte offset {offset} is not thread {thread}'s event {index}"
            )
        };
        let (t, i, event) = match record {
            TraceRecord::Syscall(s) => (s.thread, s.index, PlannedEvent::Syscall(Box::new(s))),
            TraceRecord::Tsc(r) => (r.thread, r.index, PlannedEvent::Tsc(r)),
            TraceRecord::Signal(s) => (s.thread, s.index, PlannedEvent::Signal(s)),
            _ => return Err(changed()),
        };
        if t as usize != thread || i != index as u64 {
            return Err(changed());
        }
        let size = footprint(&event);
        Ok((event, size))
    }

    fn run(&self) {
        let mut s = self.lock();
        let mut batch = Vec::with_capacity(LOAD_BATCH);
        let mut loaded = Vec::with_capacity(LOAD_BATCH);
        let mut spent = Vec::new();
        loop {
            if s.stop || s.error.is_some() {
                return;
            }
            if !s.spent.is_empty() {
                std::mem::swap(&mut spent, &mut s.spent);
                drop(s);
                spent.clear();
                s = self.lock();
                continue;
            }
            let Some(t) = self.pick(&s) else {
                let all_loaded =
                    (0..s.loaded.len()).all(|t| s.loaded[t] == self.index.offsets[t].len());
                if all_loaded {
                    return;
                }
                s.reader_waiting = true;
                s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
                s.reader_waiting = false;
                continue;
            };
            // Several of the thread's events at a time: one lock and one
            // wake-up for all of them, as many as there is room for (at
            // least one: the engine may wait for it).
            let total = self.index.offsets[t].len();
            let room = self.limit.saturating_sub(s.bytes);
            while batch.len() < LOAD_BATCH && s.loaded[t] < total {
                let (index, offset) = (s.loaded[t], s.cursor[t]);
                s.loaded[t] += 1;
                if s.loaded[t] < total {
                    s.cursor[t] = self.index.offsets[t].after(index + 1, offset);
                }
                batch.push((index, offset));
            }
            drop(s);
            let mut size = 0;
            let mut unloaded = None;
            for (index, offset) in batch.drain(..) {
                if !loaded.is_empty() && size >= room {
                    // The rest of the batch stays for the next load.
                    unloaded = Some((index, offset));
                    break;
                }
                let event = self.load(t, index, offset);
                size += event.as_ref().map_or(0, |(_, n)| *n);
                let failed = event.is_err();
                loaded.push(event);
                if failed {
                    break;
                }
            }
            s = self.lock();
            if let Some((index, offset)) = unloaded {
                // Reserved, not loaded: the next load starts there.
                s.loaded[t] = index;
                s.cursor[t] = offset;
            }
            for event in loaded.drain(..) {
                match event {
                    Ok((event, size)) => {
                        s.queues[t].push_back((event, size));
                        s.bytes += size;
                        s.peak = s.peak.max(s.bytes);
                    }
                    Err(e) => s.error = Some(e),
                }
            }
            // Only the engine waits on the reader (each notify is a
            // system call).
            if s.wanted.iter().any(|w| *w) || s.error.is_some() {
                self.changed.notify_all();
            }
        }
    }

    /// The thread's next event, waiting for the reader if need be.
    fn take(&self, thread: usize, spent: &mut Vec<PlannedEvent>) -> Result<PlannedEvent, String> {
        let mut one = VecDeque::new();
        self.take_up_to(thread, 1, &mut one, spent)?;
        one.pop_front()
            .ok_or_else(|| "the trace reader gave no event".to_string())
    }

    /// At least one and at most `n` of the thread's next events, onto
    /// `into`, waiting for the reader if need be: one lock for all. The
    /// `spent` events go to the reader to free.
    fn take_up_to(
        &self,
        thread: usize,
        n: usize,
        into: &mut VecDeque<PlannedEvent>,
        spent: &mut Vec<PlannedEvent>,
    ) -> Result<(), String> {
        let mut s = self.lock();
        if !spent.is_empty() {
            if s.spent.is_empty() {
                std::mem::swap(&mut s.spent, spent);
            } else {
                s.spent.append(spent);
            }
        }
        loop {
            if !s.queues[thread].is_empty() {
                for _ in 0..n {
                    let Some((event, size)) = s.queues[thread].pop_front() else {
                        break;
                    };
                    s.bytes -= size;
                    into.push_back(event);
                }
                s.wanted[thread] = false;
                // A reader waiting for room is woken once a quarter of the
                // window is free, not as each event leaves (a wake-up is a
                // system call, and it would load one batch and wait again).
                if s.reader_waiting && s.bytes <= self.limit - self.limit / 4 {
                    self.changed.notify_all();
                }
                return Ok(());
            }
            if let Some(e) = &s.error {
                return Err(e.clone());
            }
            if s.stop {
                return Err("the trace reader has stopped".into());
            }
            s.wanted[thread] = true;
            self.changed.notify_all();
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl WindowReader {
    /// Starts the reader over `index`, keeping at most `limit` bytes of
    /// loaded events beyond what the engine waits for; returns it and each
    /// thread's queue, with its front event loaded.
    pub fn start(
        index: EventIndex,
        limit: u64,
    ) -> std::io::Result<(WindowReader, Vec<EventQueue>)> {
        let threads = index.offsets.len();
        let counts: Vec<usize> = index.offsets.iter().map(FrameOffsets::len).collect();
        let frames = Mutex::new(FrameReader::new(index.file.try_clone()?));
        let window = Arc::new(Window {
            state: Mutex::new(WindowState {
                queues: (0..threads).map(|_| VecDeque::new()).collect(),
                loaded: vec![0; threads],
                cursor: index
                    .offsets
                    .iter()
                    .map(|o| if o.len() > 0 { o.after(0, 0) } else { u64::MAX })
                    .collect(),
                bytes: 0,
                peak: 0,
                wanted: vec![false; threads],
                error: None,
                stop: false,
                reader_waiting: false,
                spent: Vec::new(),
            }),
            changed: Condvar::new(),
            index,
            frames,
            limit,
        });
        let w = window.clone();
        let join = std::thread::Builder::new()
            .name("rrc-trace-read".into())
            .spawn(move || w.run())?;
        let reader = WindowReader {
            window: window.clone(),
            join: Some(join),
        };
        let mut queues = Vec::with_capacity(threads);
        for (t, &left) in counts.iter().enumerate() {
            let mut q = EventQueue {
                local: VecDeque::new(),
                spent: Vec::new(),
                left,
                thread: t as ThreadId,
                window: Some(window.clone()),
            };
            q.refill();
            queues.push(q);
        }
        Ok((reader, queues))
    }

    /// A handle on the window's figures, which outlives the plan.
    pub fn stats(&self) -> WindowStats {
        WindowStats(self.window.clone())
    }
}

/// What the window held.
pub struct WindowStats(Arc<Window>);

impl WindowStats {
    /// The most bytes of loaded, untaken events held at once.
    pub fn peak_bytes(&self) -> u64 {
        self.0.lock().peak
    }
}

impl Drop for WindowReader {
    fn drop(&mut self) {
        self.window.lock().stop = true;
        self.window.changed.notify_all();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl EventQueue {
    pub fn front(&self) -> Option<&PlannedEvent> {
        self.local.front()
    }

    /// The events in memory, from the front (not every event left).
    pub fn loaded(&self) -> impl Iterator<Item = &PlannedEvent> {
        self.local.iter()
    }

    /// Takes the front event; the next one is brought into memory.
    pub fn pop_front(&mut self) -> Option<PlannedEvent> {
        let event = self.local.pop_front();
        self.refill();
        event
    }

    /// Drops the front event, the engine done with it: freed by the
    /// reader, which made it.
    pub fn discard_front(&mut self) -> Option<()> {
        let event = self.local.pop_front()?;
        self.spent.push(event);
        self.refill();
        Some(())
    }

    /// Puts an event back at the front (a call the kernel restarts).
    pub fn push_front(&mut self, event: PlannedEvent) {
        self.local.push_front(event);
    }

    /// Reads up to `n` events from the front into memory (waiting for the
    /// reader if need be).
    pub fn load_ahead(&mut self, n: usize) {
        while self.local.len() < n && self.left > 0 {
            let Some(window) = &self.window else { break };
            let had = self.local.len();
            let want = (n - had).min(self.left);
            if let Err(e) =
                window.take_up_to(self.thread as usize, want, &mut self.local, &mut self.spent)
            {
                rrc_cli::fail("rrc-replay", &e, 1);
            }
            self.left -= self.local.len() - had;
        }
    }

    /// Event `i` from the front, if in memory (see [`Self::load_ahead`]).
    pub fn peek(&self, i: usize) -> Option<&PlannedEvent> {
        self.local.get(i)
    }

    /// Events left, in memory or not.
    pub fn len(&self) -> usize {
        self.local.len() + self.left
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn refill(&mut self) {
        if !self.local.is_empty() || self.left == 0 {
            return;
        }
        let Some(window) = &self.window else {
            return;
        };
        match window.take(self.thread as usize, &mut self.spent) {
            Ok(event) => {
                self.local.push_back(event);
                self.left -= 1;
            }
            // The trace was readable a moment ago: it was changed or
            // removed under us. Nothing sensible can go on (the traced
            // program dies with us: it is traced with PTRACE_O_EXITKILL).
            Err(e) => rrc_cli::fail("rrc-replay", &e, 1),
        }
    }
}
