//! One user's outbox and writer: every line for a client goes into its
//! outbox, and its writer thread, the only thread that writes to that
//! socket, sends it on (apart from the one refusal line the accept loop
//! writes to a connection it turns away). The report does not say how a
//! line reaches the others; `examples/report_server.py`, one common way,
//! writes to every client in turn from the speaker's thread.
//!
//! Why a writer per client: if the broker wrote to sockets itself, one
//! client that stops reading would block that write, and with it the whole
//! room. The broker only ever *tries* to put lines in an outbox, and a
//! user is let go, never waited for, as soon as either end sees they have
//! stopped reading: the broker, when their outbox is full (`room.rs`), or
//! their writer, when a line has waited too long for them ([`STALL`]).
//!
//! Not here: who gets which line (the room).

use std::io::{self, BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use crate::kernel;
use crate::protocol::Leave;

/// How many batches may wait in one outbox; one more means its user has
/// stopped reading. A batch is all the lines one round of the broker has
/// for that user, so this is at least as many lines, and usually far more.
/// Why not more: std's bounded channel sets aside a slot for each batch it
/// may hold as soon as it is made, for every user, idle or not.
const OUTBOX_BATCHES: usize = 128;

/// With flood control on, how long a line may wait for its user, counted
/// from when the broker queued it, before that user counts as having
/// stopped reading (their machine slept, their program hung) or as reading
/// too slowly to keep up. A reader who keeps up is seconds behind at most.
/// Without flood control nothing bounds how fast lines come, and only a
/// write that makes no progress for this long cuts a user off.
pub const STALL: Duration = Duration::from_secs(10);

/// The stack of each reader and writer thread. Their deepest call is a
/// `format!` or a log line, a few KiB at most; 64 KiB leaves a wide margin,
/// and naming it says how little a connection needs (the default is 2 MiB).
const CONNECTION_STACK_BYTES: usize = 64 * 1024;

/// Starts a thread of one connection's, called `name`, with a small stack.
pub fn spawn_for_connection(name: String, work: impl FnOnce() + Send + 'static) -> io::Result<()> {
    let builder = thread::Builder::new().name(name).stack_size(CONNECTION_STACK_BYTES);
    builder.spawn(work).map(drop)
}

/// Lines that travel to a writer together, and when the broker queued them.
type Batch = (Instant, Vec<Arc<[u8]>>);

/// The sending end of one user's outbox, held by the broker alone. Dropping
/// it closes the outbox: the writer sends what is queued and closes the
/// connection.
pub struct Outbox(SyncSender<Batch>);

/// The outbox was full: its user has stopped reading.
pub struct Full;

impl Outbox {
    /// Queues `lines` for the writer, or says at once that the outbox is
    /// full (std's `try_send`): the broker never waits for a client.
    pub fn try_send(&self, lines: Vec<Arc<[u8]>>) -> Result<(), Full> {
        match self.0.try_send((Instant::now(), lines)) {
            Err(TrySendError::Full(_)) => Err(Full),
            // `Disconnected`: the writer has ended, and said so already.
            _ => Ok(()),
        }
    }
}

/// Starts connection `id`'s writer thread; returns its outbox, and a
/// channel on which nothing is ever sent: the writer holds its sender, so
/// it closes when the writer ends, which wakes whoever waits on it (the
/// reader, `limits.rs`). If a write fails, or with `max_wait` a line waited
/// longer than that, the writer calls `ended` with why the user must leave.
pub fn start_writer(
    id: u64,
    socket: Arc<TcpStream>,
    max_wait: Option<Duration>,
    ended: impl FnOnce(Leave) + Send + 'static,
) -> io::Result<(Outbox, Receiver<()>)> {
    socket.set_nodelay(true)?; // small lines leave at once, not held back for more (Nagle)
    kernel::size_send_buffer(&socket, max_wait); // with a deadline, lines wait in the outbox
    socket.set_write_timeout(Some(STALL))?;
    let (outbox, batches) = mpsc::sync_channel(OUTBOX_BATCHES);
    let (writer_alive, writer_gone) = mpsc::channel::<()>();
    // Spawn: the writer of this connection. It ends when the outbox closes
    // or a write fails; nobody waits for it.
    spawn_for_connection(format!("writer-{id}"), move || {
        if let Some(why) = run_writer(&socket, &batches, max_wait) {
            ended(why); // the broker hears why before the reader sees the close
        }
        let _ = socket.shutdown(Shutdown::Both); // which ends the reader too
        drop(writer_alive);
    })?;
    Ok((Outbox(outbox), writer_gone))
}

/// The writer: sends each batch from the outbox to the client, with the
/// batches queued meanwhile, in as few writes as it can. Ends when the
/// outbox closes (`None`), or with why the user must leave.
fn run_writer(
    socket: &TcpStream,
    batches: &Receiver<Batch>,
    max_wait: Option<Duration>,
) -> Option<Leave> {
    for (queued, mut lines) in batches {
        lines.extend(batches.try_iter().flat_map(|(_, more)| more));
        let deadline = max_wait.map(|wait| queued + wait);
        if let Err(e) = write_lines(socket, &lines, deadline) {
            let timed_out = matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut);
            return Some(if timed_out { Leave::TooSlow } else { Leave::Lost });
        }
    }
    None
}

// Beyond the first reading: how a batch is written.

/// How many bytes of lines a writer gathers into one write: one system call
/// for many short lines. A line for many users is stored once; a writer
/// copies at most this much of it at a time.
const WRITE_BYTES: usize = 16 * 1024;

/// Writes `lines`, gathered into writes of [`WRITE_BYTES`], each of which may
/// wait only `until` a deadline, if there is one.
fn write_lines(socket: &TcpStream, lines: &[Arc<[u8]>], until: Option<Instant>) -> io::Result<()> {
    // No bigger than the lines: thousands of writers may be writing at once.
    let bytes = lines.iter().map(|line| line.len()).sum::<usize>().min(WRITE_BYTES);
    let mut out = BufWriter::with_capacity(bytes, Timed { socket, deadline: until });
    lines.iter().try_for_each(|line| out.write_all(line))?;
    out.flush()
}

/// The socket as a writer writes it: with a deadline, each write may wait
/// only for what is left until then. A line's wait counts from when it was
/// queued, not from the last byte the client took: a client that takes a
/// byte now and then cannot hold its lines for ever.
struct Timed<'a> {
    socket: &'a TcpStream,
    deadline: Option<Instant>,
}

impl Write for Timed<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.socket.set_write_timeout(Some(left))?;
        }
        (&mut &*self.socket).write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
