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
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use std::time::Duration;

use crate::protocol::Leave;

/// How long a write may wait for the client to take a byte before the client
/// counts as having stopped reading (its machine slept, its program hung).
pub const STALL: Duration = Duration::from_secs(10);

/// How many rounds' lines may wait in one user's outbox before that user
/// counts as having stopped reading.
///
/// The broker hands each user their lines once a round (`room.rs`), as one
/// batch: a user who keeps reading has their writer take each batch as it
/// comes, so batches pile up only behind a client that stopped reading and
/// whose kernel buffers are already full. Small, because the channel keeps
/// a slot for each (32 bytes) from the start: a kilobyte a user, idle or not.
/// A batch holds at most one round's lines, a few hundred at the most; a
/// line for many users is stored once, each batch holding a pointer to it.
pub const OUTBOX_BATCHES: usize = 32;

/// The stack of each reader and writer thread. Their deepest call is a
/// `format!` or a log line, a few KiB at most; 64 KiB leaves a wide margin,
/// and naming it says how little a connection needs (the default is 2 MiB).
pub const CONNECTION_STACK_BYTES: usize = 64 * 1024;

/// Lines that travel to a writer together: one round's, for one user.
pub type Batch = Vec<Arc<str>>;

/// The sending end of one user's outbox, held by the broker alone. Dropping
/// it closes the outbox: the writer sends what is queued and closes the
/// connection.
pub struct Outbox(SyncSender<Batch>);

/// Why a batch was refused: the outbox is full, its user stopped reading.
pub struct Full;

impl Outbox {
    /// Queues a batch, or refuses it at once: never waits. A batch for a
    /// writer that has ended is dropped: its end is already on its way to
    /// the broker as an event.
    pub fn send(&self, batch: Batch) -> Result<(), Full> {
        match self.0.try_send(batch) {
            Err(TrySendError::Full(_)) => Err(Full),
            _ => Ok(()),
        }
    }
}

/// Creates a connection's outbox and starts its writer thread, which calls
/// `ended` with why the user must leave if a write fails.
pub fn start_writer(
    id: u64,
    socket: Arc<TcpStream>,
    ended: impl FnOnce(Leave) + Send + 'static,
) -> Result<Outbox, String> {
    // Small chat lines must leave at once, not wait for Nagle's algorithm to
    // gather more (up to 40 ms with delayed ACKs): each batch is one write.
    let setup = socket.set_nodelay(true).and(socket.set_write_timeout(Some(STALL)));
    setup.map_err(|e| e.to_string())?;
    let (batches, queued) = mpsc::sync_channel(OUTBOX_BATCHES);
    // Spawn: the writer of this connection. It ends when the outbox closes
    // or a write fails; it is not joined, and cleans up after itself.
    let work = move || {
        if let Some(why) = run_writer(&socket, &queued) {
            ended(why);
        }
    };
    let builder = thread::Builder::new().name(format!("writer-{id}"));
    builder.stack_size(CONNECTION_STACK_BYTES).spawn(work).map_err(|e| e.to_string())?;
    Ok(Outbox(batches))
}

/// The writer: sends each batch from the outbox to the client, everything
/// queued meanwhile in the same write (one system call, and with
/// `TCP_NODELAY` one packet). Ends when the outbox closes, `None`; or when a
/// write fails, with why the user must leave. Either way it then shuts the
/// socket down, which also ends the connection's reader.
fn run_writer(socket: &TcpStream, queued: &Receiver<Batch>) -> Option<Leave> {
    let mut socket = socket;
    let mut why = None;
    for batch in queued {
        let mut text = batch.concat();
        queued.try_iter().for_each(|more| text.push_str(&more.concat()));
        if let Err(e) = socket.write_all(text.as_bytes()) {
            why = Some(if is_timeout(&e) { Leave::TooSlow } else { Leave::Lost });
            break;
        }
    }
    let _ = socket.shutdown(Shutdown::Both);
    why
}

/// A timed-out read or write: `WouldBlock` on Unix, `TimedOut` on Windows.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
