//! A minimal Tracy capture: what a Tracy 0.14 profiler (protocol 82) sees
//! when it connects, reduced to counts, so that a test can check that the
//! zones, frame marks, plots and GPU zones it expects reach the wire.
//!
//! It speaks the server side of the protocol that the linked client
//! (tracy-client-sys 0.30.1, `tracy/common/TracyProtocol.hpp` and
//! `TracyQueue.hpp`) implements:
//!
//! 1. Connect to the client's port; send `"TracyPrf"` and the protocol
//!    version (82, u32 little-endian).
//! 2. Read the handshake status (1 = welcome), the `WelcomeMessage` (1170
//!    bytes, packed) and, as the client is built `ondemand`, the
//!    `OnDemandPayloadMessage` (16 bytes).
//! 3. Then frames: a u32 length and an LZ4 block, compressed as one stream
//!    (each block may refer to the 64 KiB decompressed before it). A frame
//!    holds queue items: a type byte and a payload whose size is the type's
//!    `QueueDataSize`; strings and payloads carry a length after it.
//! 4. Names are not in the events but behind pointers: the profiler asks for
//!    them with 13-byte `ServerQueryPacket`s (a source location, a string, a
//!    plot name), and the answers arrive as items in later frames.
//!
//! Timestamps are not decoded: the test counts what arrives, by name.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `QueueDataSize[type]` of tracy-client-sys 0.30.1 (protocol 82): the type
/// byte plus the fixed payload, for each of the 132 queue types in order.
/// Printed from the header with
/// `for (i...) printf("%zu,", tracy::QueueDataSize[i])` (g++, packed structs).
const QUEUE_DATA_SIZE: [u8; 132] = [
    1, 1, 10, 13, 10, 13, 9, 9, 9, 1, 1, 1, 13, 9, 7, 13, //
    9, 7, 10, 17, 13, 11, 17, 13, 11, 9, 5, 3, 17, 17, 13, 17, //
    17, 17, 5, 27, 27, 21, 21, 27, 27, 21, 21, 21, 21, 24, 24, 16, //
    16, 16, 24, 24, 16, 16, 16, 25, 21, 25, 23, 16, 12, 2, 10, 10, //
    13, 1, 1, 1, 25, 13, 15, 13, 3, 1, 1, 5, 26, 18, 1, 17, //
    5, 4, 9, 17, 17, 17, 13, 32, 22, 13, 17, 17, 20, 17, 20, 28, //
    17, 13, 25, 17, 17, 17, 17, 17, 17, 17, 16, 18, 1, 5, 1, 17, //
    1, 1, 1, 1, 9, 9, 24, 9, 9, 9, 9, 9, 9, 9, 9, 9, //
    9, 9, 9, 9,
];

// Queue types this capture reads (their index in `enum class QueueType`).
const ZONE_BEGIN_ALLOC_SRC_LOC: u8 = 7;
const ZONE_BEGIN_ALLOC_SRC_LOC_CALLSTACK: u8 = 8;
const ZONE_BEGIN: u8 = 19;
const ZONE_BEGIN_32: u8 = 20;
const ZONE_BEGIN_16: u8 = 21;
const ZONE_BEGIN_CALLSTACK: u8 = 22;
const ZONE_BEGIN_CALLSTACK_32: u8 = 23;
const ZONE_BEGIN_CALLSTACK_16: u8 = 24;
const GPU_ZONE_BEGIN: u8 = 45;
const GPU_ZONE_BEGIN_CALLSTACK: u8 = 46;
const GPU_ZONE_BEGIN_SERIAL: u8 = 50;
const GPU_ZONE_BEGIN_CALLSTACK_SERIAL: u8 = 51;
const GPU_ZONE_BEGIN_ALLOC_SRC_LOC: u8 = 47;
const GPU_ZONE_BEGIN_ALLOC_SRC_LOC_CALLSTACK: u8 = 48;
const GPU_ZONE_BEGIN_ALLOC_SRC_LOC_SERIAL: u8 = 52;
const GPU_ZONE_BEGIN_ALLOC_SRC_LOC_CALLSTACK_SERIAL: u8 = 53;
const PLOT_DATA_INT: u8 = 55;
const PLOT_DATA_DOUBLE: u8 = 57;
const GPU_TIME: u8 = 60;
const FRAME_MARK_MSG: u8 = 83;
const SOURCE_LOCATION: u8 = 87;
const GPU_NEW_CONTEXT: u8 = 95;
const SINGLE_STRING_DATA: u8 = 112;
const SECOND_STRING_DATA: u8 = 113;
const SINGLE_STRING_DATA_8: u8 = 114;
const SECOND_STRING_DATA_8: u8 = 115;
const STRING_DATA: u8 = 119;
const PLOT_NAME: u8 = 121;
const SOURCE_LOCATION_PAYLOAD: u8 = 122;
const FRAME_NAME: u8 = 125;
const FRAME_IMAGE_DATA: u8 = 126;
const SYMBOL_CODE: u8 = 129;
const SOURCE_CODE: u8 = 130;

// `enum ServerQuery`.
const QUERY_STRING: u8 = 1;
const QUERY_SOURCE_LOCATION: u8 = 3;
const QUERY_PLOT_NAME: u8 = 4;
const QUERY_FRAME_NAME: u8 = 5;

const PROTOCOL_VERSION: u32 = 82;
const WELCOME_MESSAGE_SIZE: usize = 1170;
const ON_DEMAND_PAYLOAD_SIZE: usize = 16;
const TARGET_FRAME_SIZE: usize = 256 * 1024;
const LZ4_WINDOW: usize = 64 * 1024;
/// How long a capture asked to stop waits for the answers to its queries.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a capture saw, by name.
#[derive(Debug, Default, Clone)]
pub struct Session {
    /// The program name from the welcome message.
    pub program: String,
    /// CPU zones begun, by source-location name.
    pub zones: BTreeMap<String, u64>,
    /// GPU zones begun, by name (allocated source locations).
    pub gpu_zones: BTreeMap<String, u64>,
    /// GPU timestamps received (`GpuTime` items).
    pub gpu_times: u64,
    /// GPU contexts announced.
    pub gpu_contexts: u64,
    /// Frame marks of the default (unnamed) frame set: the application's
    /// main frame mark.
    pub frame_marks: u64,
    /// Frame marks of named (secondary) frame sets, by name.
    pub named_frame_marks: BTreeMap<String, u64>,
    /// Plot values, by plot name.
    pub plots: BTreeMap<String, u64>,
    /// Queries sent that were never answered.
    pub unanswered: usize,
}

/// A connection to a Tracy client, read on a thread of its own.
pub struct Capture {
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<io::Result<Session>>>,
}

impl Capture {
    /// Connects to the client at `addr` (retrying until `timeout`), shakes
    /// hands and starts reading.
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<Capture> {
        let deadline = Instant::now() + timeout;
        let mut stream = loop {
            match TcpStream::connect(addr) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.write_all(b"TracyPrf")?;
        stream.write_all(&PROTOCOL_VERSION.to_le_bytes())?;
        let mut status = [0u8; 1];
        stream.read_exact(&mut status)?;
        if status[0] != 1 {
            return Err(io::Error::other(format!(
                "Tracy handshake refused (status {}: 2 is a protocol mismatch, 3 not available)",
                status[0]
            )));
        }
        let mut welcome = vec![0u8; WELCOME_MESSAGE_SIZE];
        stream.read_exact(&mut welcome)?;
        // timerMul .. samplingPeriod (8 x 8), flags, cpuArch,
        // cpuManufacturer[12], cpuId (4), then programName[64].
        let name = &welcome[8 * 8 + 2 + 12 + 4..][..64];
        let program =
            String::from_utf8_lossy(name.split(|&b| b == 0).next().unwrap_or(&[])).into_owned();
        let on_demand = welcome[8 * 8] & 1 != 0;
        if on_demand {
            let mut payload = [0u8; ON_DEMAND_PAYLOAD_SIZE];
            stream.read_exact(&mut payload)?;
        }
        stream.set_read_timeout(Some(Duration::from_millis(50)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let reader = std::thread::Builder::new()
            .name("tracy capture".into())
            .spawn(move || Reader::new(stream, program).run(&flag))?;
        Ok(Capture {
            stop,
            reader: Some(reader),
        })
    }

    /// Stops reading once every query has been answered (at most a few
    /// seconds later), closes the connection and returns what was seen.
    pub fn finish(mut self) -> io::Result<Session> {
        self.stop.store(true, Ordering::Release);
        let reader = self.reader.take().expect("finished once");
        reader
            .join()
            .map_err(|_| io::Error::other("the capture thread panicked"))?
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The reading side: decompression, item parsing, queries.
struct Reader {
    stream: TcpStream,
    session: Session,
    /// Bytes received and not yet parsed into frames.
    inbox: Vec<u8>,
    /// The decompressed stream's last `LZ4_WINDOW` bytes (the next block's dictionary).
    history: Vec<u8>,
    frame: Vec<u8>,
    /// Zones begun per source-location pointer, until its name is known.
    zone_counts: HashMap<u64, u64>,
    /// GPU zones begun per source-location pointer, until its name is known.
    gpu_zone_counts: HashMap<u64, u64>,
    /// Source location pointer -> name pointer.
    srcloc_names: HashMap<u64, u64>,
    plot_counts: HashMap<u64, u64>,
    /// Named frame marks per name pointer, until the name is known.
    frame_counts: HashMap<u64, u64>,
    strings: HashMap<u64, String>,
    plot_names: HashMap<u64, String>,
    frame_names: HashMap<u64, String>,
    asked: HashSet<(u8, u64)>,
    /// Source locations asked for, oldest first: their answers come in order.
    srcloc_order: VecDeque<u64>,
    answered: usize,
}

impl Reader {
    fn new(stream: TcpStream, program: String) -> Reader {
        Reader {
            stream,
            session: Session {
                program,
                ..Session::default()
            },
            inbox: Vec::new(),
            history: Vec::with_capacity(LZ4_WINDOW * 2),
            frame: vec![0u8; TARGET_FRAME_SIZE],
            zone_counts: HashMap::new(),
            gpu_zone_counts: HashMap::new(),
            srcloc_names: HashMap::new(),
            plot_counts: HashMap::new(),
            frame_counts: HashMap::new(),
            strings: HashMap::new(),
            plot_names: HashMap::new(),
            frame_names: HashMap::new(),
            asked: HashSet::new(),
            srcloc_order: VecDeque::new(),
            answered: 0,
        }
    }

    fn run(mut self, stop: &AtomicBool) -> io::Result<Session> {
        let mut buf = vec![0u8; 1 << 16];
        let mut stopping_since: Option<Instant> = None;
        let mut quiet_since: Option<Instant> = None;
        loop {
            if stop.load(Ordering::Acquire) {
                let since = *stopping_since.get_or_insert_with(Instant::now);
                let quiet = *quiet_since.get_or_insert_with(Instant::now);
                // Stop once every query is answered and nothing came for a
                // while, or after `STOP_GRACE` whatever the state.
                let settled = self.asked.len() == self.answered
                    && quiet.elapsed() > Duration::from_millis(200);
                if settled || since.elapsed() > STOP_GRACE {
                    break;
                }
            }
            match self.stream.read(&mut buf) {
                Ok(0) => break, // the client went away
                Ok(n) => {
                    self.inbox.extend_from_slice(&buf[..n]);
                    self.drain_frames()?;
                    quiet_since = None;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.session.unanswered = self.asked.len() - self.answered;
        for (counts, gpu) in [(&self.zone_counts, false), (&self.gpu_zone_counts, true)] {
            for (ptr, n) in counts {
                let name = self
                    .srcloc_names
                    .get(ptr)
                    .and_then(|p| self.strings.get(p))
                    .cloned()
                    .unwrap_or_else(|| format!("<unnamed source location {ptr:#x}>"));
                let zones = if gpu {
                    &mut self.session.gpu_zones
                } else {
                    &mut self.session.zones
                };
                *zones.entry(name).or_default() += n;
            }
        }
        for (ptr, n) in &self.plot_counts {
            let name = self
                .plot_names
                .get(ptr)
                .cloned()
                .unwrap_or_else(|| format!("<unnamed plot {ptr:#x}>"));
            *self.session.plots.entry(name).or_default() += n;
        }
        for (ptr, n) in &self.frame_counts {
            let name = self
                .frame_names
                .get(ptr)
                .cloned()
                .unwrap_or_else(|| format!("<unnamed frame set {ptr:#x}>"));
            *self.session.named_frame_marks.entry(name).or_default() += n;
        }
        Ok(self.session)
    }

    /// Decompresses and parses every complete frame in the inbox.
    fn drain_frames(&mut self) -> io::Result<()> {
        let mut at = 0;
        while self.inbox.len() - at >= 4 {
            let size = u32::from_le_bytes(self.inbox[at..at + 4].try_into().expect("4 bytes"));
            let size = size as usize;
            if self.inbox.len() - at - 4 < size {
                break;
            }
            let block = &self.inbox[at + 4..at + 4 + size];
            let n =
                lz4_flex::block::decompress_into_with_dict(block, &mut self.frame, &self.history)
                    .map_err(|e| io::Error::other(format!("LZ4 frame: {e}")))?;
            at += 4 + size;
            self.history.extend_from_slice(&self.frame[..n]);
            if self.history.len() > LZ4_WINDOW {
                self.history.drain(..self.history.len() - LZ4_WINDOW);
            }
            let frame = std::mem::take(&mut self.frame);
            let parsed = self.parse(&frame[..n]);
            self.frame = frame;
            parsed?;
        }
        self.inbox.drain(..at);
        Ok(())
    }

    /// Parses the queue items of one decompressed frame.
    fn parse(&mut self, mut data: &[u8]) -> io::Result<()> {
        let u64_at = |d: &[u8], at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
        while let Some(&kind) = data.first() {
            let Some(&fixed) = QUEUE_DATA_SIZE.get(kind as usize) else {
                return Err(io::Error::other(format!(
                    "unknown queue type {kind}: the stream is out of step"
                )));
            };
            let fixed = fixed as usize;
            let need = |d: &[u8], n: usize| {
                if d.len() < n {
                    Err(io::Error::other(format!(
                        "queue item {kind} cut short ({} of {n} bytes)",
                        d.len()
                    )))
                } else {
                    Ok(())
                }
            };
            need(data, fixed)?;
            // The variable part after the fixed one, if any.
            let extra = match kind {
                SINGLE_STRING_DATA | SECOND_STRING_DATA => {
                    need(data, fixed + 2)?;
                    2 + u16::from_le_bytes([data[fixed], data[fixed + 1]]) as usize + 256
                }
                SINGLE_STRING_DATA_8 | SECOND_STRING_DATA_8 => {
                    need(data, fixed + 1)?;
                    1 + data[fixed] as usize
                }
                FRAME_IMAGE_DATA | SYMBOL_CODE | SOURCE_CODE => {
                    need(data, fixed + 4)?;
                    4 + u32::from_le_bytes(data[fixed..fixed + 4].try_into().unwrap()) as usize
                }
                k if k >= STRING_DATA => {
                    need(data, fixed + 2)?;
                    2 + u16::from_le_bytes([data[fixed], data[fixed + 1]]) as usize
                }
                _ => 0,
            };
            need(data, fixed + extra)?;
            let item = &data[..fixed + extra];
            match kind {
                ZONE_BEGIN | ZONE_BEGIN_CALLSTACK => self.zone(u64_at(item, 1 + 8))?,
                ZONE_BEGIN_32 | ZONE_BEGIN_CALLSTACK_32 => self.zone(u64_at(item, 1 + 4))?,
                ZONE_BEGIN_16 | ZONE_BEGIN_CALLSTACK_16 => self.zone(u64_at(item, 1 + 2))?,
                // cpuTime i64, thread u32, queryId u16, context u8, srcloc.
                GPU_ZONE_BEGIN
                | GPU_ZONE_BEGIN_CALLSTACK
                | GPU_ZONE_BEGIN_SERIAL
                | GPU_ZONE_BEGIN_CALLSTACK_SERIAL => {
                    let srcloc = u64_at(item, 1 + 8 + 4 + 2 + 1);
                    *self.gpu_zone_counts.entry(srcloc).or_default() += 1;
                    if !self.srcloc_names.contains_key(&srcloc) {
                        self.query(QUERY_SOURCE_LOCATION, srcloc)?;
                    }
                }
                ZONE_BEGIN_ALLOC_SRC_LOC | ZONE_BEGIN_ALLOC_SRC_LOC_CALLSTACK => {
                    // Named by the payload that came just before.
                }
                GPU_ZONE_BEGIN_ALLOC_SRC_LOC
                | GPU_ZONE_BEGIN_ALLOC_SRC_LOC_CALLSTACK
                | GPU_ZONE_BEGIN_ALLOC_SRC_LOC_SERIAL
                | GPU_ZONE_BEGIN_ALLOC_SRC_LOC_CALLSTACK_SERIAL => {}
                SOURCE_LOCATION_PAYLOAD => {
                    // color u32, line u32, function\0, file\0, name (the rest).
                    let payload = &item[fixed + 2..];
                    let mut parts = payload.get(8..).unwrap_or(&[]).splitn(3, |&b| b == 0);
                    let function = parts.next().unwrap_or(&[]);
                    let _file = parts.next();
                    let name = parts.next().filter(|n| !n.is_empty()).unwrap_or(function);
                    let name = String::from_utf8_lossy(name).into_owned();
                    // The next item is the zone it names: a GPU zone when it
                    // is one of the GPU kinds, else a CPU zone.
                    let next = data.get(fixed + extra).copied();
                    let gpu = matches!(
                        next,
                        Some(
                            GPU_ZONE_BEGIN_ALLOC_SRC_LOC
                                | GPU_ZONE_BEGIN_ALLOC_SRC_LOC_CALLSTACK
                                | GPU_ZONE_BEGIN_ALLOC_SRC_LOC_SERIAL
                                | GPU_ZONE_BEGIN_ALLOC_SRC_LOC_CALLSTACK_SERIAL
                        )
                    );
                    let counts = if gpu {
                        &mut self.session.gpu_zones
                    } else {
                        &mut self.session.zones
                    };
                    *counts.entry(name).or_default() += 1;
                }
                PLOT_DATA_INT..=PLOT_DATA_DOUBLE => {
                    let name = u64_at(item, 1);
                    *self.plot_counts.entry(name).or_default() += 1;
                    if !self.plot_names.contains_key(&name) {
                        self.query(QUERY_PLOT_NAME, name)?;
                    }
                }
                // The default frame set has no name (a null pointer); a
                // secondary one is named by a pointer the profiler asks about.
                FRAME_MARK_MSG => match u64_at(item, 1 + 8) {
                    0 => self.session.frame_marks += 1,
                    name => {
                        *self.frame_counts.entry(name).or_default() += 1;
                        if !self.frame_names.contains_key(&name) {
                            self.query(QUERY_FRAME_NAME, name)?;
                        }
                    }
                },
                GPU_TIME => self.session.gpu_times += 1,
                GPU_NEW_CONTEXT => self.session.gpu_contexts += 1,
                SOURCE_LOCATION => {
                    // name, function, file (pointers), line, b, g, r. The
                    // query's pointer is not repeated: answers come in the
                    // order asked.
                    let (name, function) = (u64_at(item, 1), u64_at(item, 9));
                    let named = if name != 0 { name } else { function };
                    let srcloc = self.next_answer(QUERY_SOURCE_LOCATION);
                    if let Some(srcloc) = srcloc {
                        self.srcloc_names.insert(srcloc, named);
                    }
                    if !self.strings.contains_key(&named) {
                        self.query(QUERY_STRING, named)?;
                    }
                }
                STRING_DATA | PLOT_NAME | FRAME_NAME => {
                    let ptr = u64_at(item, 1);
                    let text = String::from_utf8_lossy(&item[fixed + 2..]).into_owned();
                    let (query, map) = match kind {
                        STRING_DATA => (QUERY_STRING, &mut self.strings),
                        PLOT_NAME => (QUERY_PLOT_NAME, &mut self.plot_names),
                        _ => (QUERY_FRAME_NAME, &mut self.frame_names),
                    };
                    map.insert(ptr, text);
                    if self.asked.contains(&(query, ptr)) {
                        self.answered += 1;
                    }
                }
                _ => {}
            }
            data = &data[fixed + extra..];
        }
        Ok(())
    }

    fn zone(&mut self, srcloc: u64) -> io::Result<()> {
        *self.zone_counts.entry(srcloc).or_default() += 1;
        if !self.srcloc_names.contains_key(&srcloc) {
            self.query(QUERY_SOURCE_LOCATION, srcloc)?;
        }
        Ok(())
    }

    /// Sends a query once per (kind, pointer).
    fn query(&mut self, kind: u8, ptr: u64) -> io::Result<()> {
        if !self.asked.insert((kind, ptr)) {
            return Ok(());
        }
        if kind == QUERY_SOURCE_LOCATION {
            self.srcloc_order.push_back(ptr);
        }
        let mut packet = [0u8; 13];
        packet[0] = kind;
        packet[1..9].copy_from_slice(&ptr.to_le_bytes());
        self.stream.write_all(&packet)
    }

    /// The pointer of the oldest unanswered query of `kind` (source
    /// locations are answered in order, without their pointer).
    fn next_answer(&mut self, kind: u8) -> Option<u64> {
        debug_assert_eq!(kind, QUERY_SOURCE_LOCATION);
        let ptr = self.srcloc_order.pop_front()?;
        self.answered += 1;
        Some(ptr)
    }
}
