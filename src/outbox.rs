//! One user's outbox and writer: every line for a client goes into its
//! outbox, and its writer thread, the only thread that writes to that
//! socket, sends it on (apart from the one refusal line the accept loop
//! writes to a connection it turns away). Beyond the report, which does not
//! say how a line reaches the others (`examples/report_server.py`, one
//! common way, writes to every client in turn from the speaker's thread).
//!
//! Why: if the broker wrote to sockets itself, one client that stops
//! reading would block that write, and with it the whole room. The broker
//! only ever *tries* to put a line in an outbox; a full one, or one whose
//! oldest line has waited [`STALL`], means that user stopped reading or
//! cannot keep up, and they are let go (`room.rs`), never waited for.
//!
//! Not here: who gets which line (the room).

use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::Leave;

/// How long a write may wait for the client to take a byte, and (with flood
/// control on) how long a
/// line may wait in an outbox, before the client counts as having stopped
/// reading (its machine slept, its program hung), or as reading too slowly
/// to keep up with what flood control lets through (a link slower than the
/// README's 40 KB/s). A reader who keeps up is seconds behind at most, so
/// no line is held longer than this, whoever asks for what, and the room's
/// memory is bounded by what it may send in this time.
pub const STALL: Duration = Duration::from_secs(10);

/// How many lines may wait in one user's outbox before that user counts as
/// having stopped reading: what bounds an outbox when nothing else does,
/// with flood control off (`--max-line-rate 0`). With it on, [`STALL`]
/// bounds it in bytes: what the room's allowance lets through in that time
/// (`limits::ROOM_KIB_PER_LINE`). A line for many users is stored once,
/// each outbox holding a pointer to it.
const OUTBOX_LINES: usize = 4096;

/// The stack of each reader and writer thread. Their deepest call is a
/// `format!` or a log line, a few KiB at most; 64 KiB leaves a wide margin,
/// and naming it says how little a connection needs (the default is 2 MiB).
pub const CONNECTION_STACK_BYTES: usize = 64 * 1024;

/// Lines that travel to a writer together: one round's, for one user.
pub type Batch = Vec<Arc<str>>;

/// What a writer has still to send, as the broker and the writer see it.
#[derive(Default)]
struct Queued {
    /// Lines sent and not yet taken by the writer: the broker adds, the
    /// writer subtracts.
    lines: usize,
    /// When the oldest line the writer is sending was queued; `None` while
    /// it waits for lines.
    since: Option<Instant>,
}

/// The sending end of one user's outbox, held by the broker alone. Dropping
/// it closes the outbox: the writer sends what is queued and closes the
/// connection.
///
/// Not a `sync_channel` bounded in lines: std's keeps a slot for every line
/// it may hold from the start, 4,096 of them for every user, idle or not.
/// This channel grows as lines come, and `queued` counts them.
pub struct Outbox {
    /// Each batch with the instant it was queued.
    batches: Sender<(Instant, Batch)>,
    /// Locked only to count, never across a write.
    queued: Arc<Mutex<Queued>>,
    /// How long a line may wait: [`STALL`] with flood control on. Off,
    /// nothing bounds how fast lines come, and a reader slower than the
    /// room is not let go for that alone: [`OUTBOX_LINES`] bounds it.
    max_wait: Option<Duration>,
}

/// Why a batch was refused: the outbox is full, or its oldest line has
/// waited longer than [`STALL`]: its user stopped reading, or cannot keep up.
pub struct Full;

impl Outbox {
    /// Queues a batch, or refuses it at once: never waits. A batch for a
    /// writer that has ended is dropped: its end is already on its way to
    /// the broker as an event.
    pub fn send(&self, batch: Batch) -> Result<(), Full> {
        let mut queued = lock(&self.queued);
        let late =
            queued.since.zip(self.max_wait).is_some_and(|(since, max)| since.elapsed() > max);
        if late || queued.lines + batch.len() > OUTBOX_LINES {
            return Err(Full);
        }
        queued.lines += batch.len();
        drop(queued);
        let _ = self.batches.send((Instant::now(), batch));
        Ok(())
    }
}

/// What is queued, locked.
fn lock(queued: &Mutex<Queued>) -> MutexGuard<'_, Queued> {
    // A panic while counting cannot leave the count half changed.
    queued.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Creates a connection's outbox and starts its writer thread, which calls
/// `ended` with why the user must leave if a write fails or a line waited
/// too long.
pub fn start_writer(
    id: u64,
    socket: Arc<TcpStream>,
    max_wait: Option<Duration>,
    ended: impl FnOnce(Leave) + Send + 'static,
) -> Result<Outbox, String> {
    // Small chat lines must leave at once, not wait for Nagle's algorithm to
    // gather more (up to 40 ms with delayed ACKs): each batch is one write.
    let setup = socket.set_nodelay(true).and(socket.set_write_timeout(Some(STALL)));
    setup.map_err(|e| e.to_string())?;
    let (batches, arriving) = mpsc::channel();
    let queued = Arc::new(Mutex::new(Queued::default()));
    let outbox = Outbox { batches, queued: Arc::clone(&queued), max_wait };
    // Spawn: the writer of this connection. It ends when the outbox closes
    // or a write fails; it is not joined, and cleans up after itself.
    let work = move || {
        // The broker hears why before the reader sees the socket close.
        if let Some(why) = run_writer(&socket, &arriving, &queued, max_wait) {
            ended(why);
        }
        let _ = socket.shutdown(Shutdown::Both);
    };
    let builder = thread::Builder::new().name(format!("writer-{id}"));
    builder.stack_size(CONNECTION_STACK_BYTES).spawn(work).map_err(|e| e.to_string())?;
    Ok(outbox)
}

/// The writer: sends each batch from the outbox to the client, with what
/// was queued meanwhile, in one system call (and with `TCP_NODELAY` one
/// packet). Ends when the outbox closes, `None`; or with why the user must
/// leave: a write failed, or the next batch waited longer than `max_wait`
/// (then it and the rest are dropped, not sent hours late). Either way
/// `start_writer` then shuts the socket down, which ends the reader too.
fn run_writer(
    socket: &TcpStream,
    arriving: &Receiver<(Instant, Batch)>,
    queued: &Mutex<Queued>,
    max_wait: Option<Duration>,
) -> Option<Leave> {
    for (since, mut lines) in arriving {
        lines.extend(arriving.try_iter().flat_map(|(_, more)| more));
        if max_wait.is_some_and(|max| since.elapsed() > max) {
            return Some(Leave::TooSlow);
        }
        let mut queue = lock(queued);
        (queue.lines, queue.since) = (queue.lines - lines.len(), Some(since));
        drop(queue);
        if let Err(e) = write_lines(socket, &lines) {
            return Some(if is_timeout(&e) { Leave::TooSlow } else { Leave::Lost });
        }
        lock(queued).since = None;
    }
    None
}

/// Up to this many bytes of lines, a writer copies them into one buffer
/// and writes it: cheaper than the kernel gathering many short pieces.
const COPY_BYTES: usize = 16 * 1024;

/// Writes `lines` in as few system calls as the socket takes. Beyond
/// [`COPY_BYTES`], straight from where each is stored: a line for many
/// users is not copied for each, even by a writer stuck on a client that
/// reads slowly.
fn write_lines(mut socket: &TcpStream, lines: &[Arc<str>]) -> io::Result<()> {
    if lines.iter().map(|line| line.len()).sum::<usize>() <= COPY_BYTES {
        return socket.write_all(lines.concat().as_bytes());
    }
    let mut slices: Vec<IoSlice> = lines.iter().map(|line| IoSlice::new(line.as_bytes())).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match socket.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A timed-out read or write: `WouldBlock` on Unix, `TimedOut` on Windows.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
