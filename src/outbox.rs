//! One user's outbox and writer: every line for a client goes into its
//! outbox, and its writer thread, the only thread that writes to that
//! socket, sends it on (apart from the one refusal line the accept loop
//! writes to a connection it turns away). Beyond the report, whose server
//! writes to every client in turn from the thread of whoever spoke.
//!
//! Why: if the broker wrote to sockets itself, one client that stops
//! reading would block that write, and with it the whole room. The broker
//! only ever *tries* to put a line in an outbox; a full one means that user
//! stopped reading, and they are let go (`room.rs`), never waited for.
//!
//! Not here: who gets which line (the room).

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use crate::limits::{FLOOD_BURST, ROOM_SHARE};
use crate::protocol::Leave;

/// How long a write may wait for the client to take a byte before the client
/// counts as having stopped reading (its machine slept, its program hung).
pub const STALL: Duration = Duration::from_secs(10);

/// The fewest lines an outbox holds, and all it holds with flood control
/// off (`--max-line-rate 0`), when nothing bounds what the room sends: a
/// room of a hundred bursting at once must not cut off those who read.
const MIN_OUTBOX_LINES: usize = 4096;

/// How many lines may wait in one user's outbox before that user counts as
/// having stopped reading.
///
/// A user who keeps reading empties their outbox as fast as lines come; one
/// who stopped never does. Every line the room sends costs someone a line of
/// flood control's allowance, so an outbox never gets more lines than the
/// whole room may send in [`STALL`] (3,000 at the default rate), plus a
/// newcomer's welcome and history: only a user who took nothing for about
/// that long can fill it, however many people burst at once. The longest
/// line is about 3 KB (1 KiB of text whose every byte became a three-byte
/// U+FFFD, and a name); a line for many users is stored once, each outbox
/// holding a pointer to it.
pub fn outbox_lines(rate: u32, history: usize) -> usize {
    let allowed = ROOM_SHARE * (FLOOD_BURST + rate * STALL.as_secs() as u32);
    let lines = if rate == 0 { 0 } else { allowed as usize + history + 1 };
    lines.max(MIN_OUTBOX_LINES)
}

/// The stack of each reader and writer thread. Their deepest call is a
/// `format!` or a log line, a few KiB at most; 64 KiB leaves a wide margin,
/// and naming it says how little a connection needs (the default is 2 MiB).
pub const CONNECTION_STACK_BYTES: usize = 64 * 1024;

/// How many bytes of queued lines a writer gathers into one write, at most
/// (a batch more, if one is larger): many lines in one system call, without
/// holding a copy of a whole full outbox.
const WRITE_BYTES: usize = 64 * 1024;

/// Lines that travel to a writer together: one round's, for one user.
pub type Batch = Vec<Arc<str>>;

/// The sending end of one user's outbox, held by the broker alone. Dropping
/// it closes the outbox: the writer sends what is queued and closes the
/// connection.
///
/// Not a `sync_channel` bounded in lines: std's keeps a slot for every line
/// it may hold from the start, 3,000 of them for every user, idle or not.
/// This channel grows as lines come, and `queued` counts them.
pub struct Outbox {
    batches: Sender<Batch>,
    /// Lines sent and not yet taken by the writer: the broker adds, the
    /// writer subtracts. Locked only to count, never across a write.
    queued: Arc<Mutex<usize>>,
    limit: usize,
}

/// Why a batch was refused: the outbox is full, its user stopped reading.
pub struct Full;

impl Outbox {
    /// Queues a batch, or refuses it at once: never waits. A batch for a
    /// writer that has ended is dropped: its end is already on its way to
    /// the broker as an event.
    pub fn send(&self, batch: Batch) -> Result<(), Full> {
        let mut queued = count(&self.queued);
        if *queued + batch.len() > self.limit {
            return Err(Full);
        }
        *queued += batch.len();
        drop(queued);
        let _ = self.batches.send(batch);
        Ok(())
    }
}

/// The count of lines queued, locked.
fn count(queued: &Mutex<usize>) -> MutexGuard<'_, usize> {
    // A panic while counting cannot leave the count half changed.
    queued.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Creates a connection's outbox and starts its writer thread, which calls
/// `ended` with why the user must leave if a write fails.
pub fn start_writer(
    id: u64,
    socket: Arc<TcpStream>,
    limit: usize,
    ended: impl FnOnce(Leave) + Send + 'static,
) -> Result<Outbox, String> {
    // Small chat lines must leave at once, not wait for Nagle's algorithm to
    // gather more (up to 40 ms with delayed ACKs): each batch is one write.
    let setup = socket.set_nodelay(true).and(socket.set_write_timeout(Some(STALL)));
    setup.map_err(|e| e.to_string())?;
    let (batches, arriving) = mpsc::channel();
    let queued = Arc::new(Mutex::new(0));
    let outbox = Outbox { batches, queued: Arc::clone(&queued), limit };
    // Spawn: the writer of this connection. It ends when the outbox closes
    // or a write fails; it is not joined, and cleans up after itself.
    let work = move || {
        // The broker hears why before the reader sees the socket close.
        if let Some(why) = run_writer(&socket, &arriving, &queued) {
            ended(why);
        }
        let _ = socket.shutdown(Shutdown::Both);
    };
    let builder = thread::Builder::new().name(format!("writer-{id}"));
    builder.stack_size(CONNECTION_STACK_BYTES).spawn(work).map_err(|e| e.to_string())?;
    Ok(outbox)
}

/// The writer: sends each batch from the outbox to the client, what was
/// queued meanwhile in the same write (one system call, and with
/// `TCP_NODELAY` one packet). Ends when the outbox closes, `None`; or when a
/// write fails, with why the user must leave. Either way it then shuts the
/// socket down, which also ends the connection's reader.
fn run_writer(
    socket: &TcpStream,
    arriving: &Receiver<Batch>,
    queued: &Mutex<usize>,
) -> Option<Leave> {
    let mut socket = socket;
    let mut why = None;
    for batch in arriving {
        let (mut text, mut lines) = (batch.concat(), batch.len());
        // What else is queued, up to a write's worth: the text is a copy
        // for this user alone, and a writer stuck on a client that stopped
        // reading holds it until it gives up.
        while text.len() < WRITE_BYTES {
            let Ok(more) = arriving.try_recv() else { break };
            text.push_str(&more.concat());
            lines += more.len();
        }
        *count(queued) -= lines;
        if let Err(e) = socket.write_all(text.as_bytes()) {
            why = Some(if is_timeout(&e) { Leave::TooSlow } else { Leave::Lost });
            break;
        }
    }
    why
}

/// A timed-out read or write: `WouldBlock` on Unix, `TimedOut` on Windows.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
