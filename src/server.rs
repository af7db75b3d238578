//! The server: it listens on a TCP socket and, once it accepts a connection,
//! starts a separate thread to handle that client (report §3.1, §4.1); an
//! error is printed and the server keeps listening (§5).
//!
//! The kinds of thread, each named where it is spawned:
//! - the **main thread** ([`run`]) starts the others, then waits for the
//!   broker to end;
//! - the **accept loop** ([`accept_loop`]) takes each connection and starts
//!   its **reader** ([`run_reader`]): the report's thread per client, which
//!   turns every line the client sends into an event for the broker;
//! - each reader starts its connection's **writer** (`outbox.rs`), the only
//!   thread that writes to that client;
//! - the **broker** (`room.rs`) owns the room and decides who gets which
//!   line, putting it in each one's outbox;
//! - beyond the report, the teacher's **console** (`console.rs`) and the
//!   **outputs** (`output.rs`), which write the log, the room as the teacher
//!   sees it and the transcript, so that nobody else ever waits on them.
//!
//! A line travels: client → reader → [`Event`] → broker → outbox → writer →
//! every other client.
//!
//! Not here: what the broker does with a line (`room.rs`), how a line is read
//! and worded (`protocol.rs`), flood control (`limits.rs`).

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender};
use std::thread;
use std::time::Duration;

use crate::console;
use crate::kernel;
use crate::limits::{Cost, Limits, Paced, Permit};
use crate::outbox;
use crate::output::{self, log};
use crate::protocol::{self, Leave, Line, MAX_LINE_BYTES};
use crate::room::{self, Event, Room, Settings};
use crate::telnet::Telnet;
use crate::text;

/// How the server was asked to run (`chatroom server --help`).
pub struct Config {
    pub host: String,
    pub port: u16,
    /// Connections held at once, named or not; one more gets `! server full`.
    pub max_clients: usize,
    /// Connections held at once from one IP address.
    pub max_per_address: usize,
    /// How the room runs: the name deadline, the history, flood control.
    pub room: Settings,
    /// The file the transcript is appended to, if any (`--transcript`).
    pub transcript: Option<String>,
}

/// How many events may wait for the broker. A reader that finds the queue
/// full waits before reading more, so TCP itself slows the senders down;
/// bounded, so that a burst from many clients cannot grow memory without end.
const EVENT_QUEUE: usize = 4096;

/// Runs the server until the console's `/quit`: listens (report §3.1),
/// starts the accept loop and the broker, and waits for the broker to end.
/// `Err` if it cannot start.
pub fn run(config: Config) -> Result<(), String> {
    let addr = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    kernel::widen_backlog(&listener); // beyond the report: a whole class at once
    // The events channel: every reader, writer and the console send on it
    // (each with a clone of `events`), and the broker alone receives.
    let (events, received) = mpsc::sync_channel(EVENT_QUEUE);
    // Beyond the report: the teacher's console, and the outputs it shows.
    console::start(events.clone(), config.transcript.as_deref(), local)?;
    let limits =
        Arc::new(Limits::new(config.max_clients, config.max_per_address, config.room.rate));
    let accept_limits = Arc::clone(&limits);
    spawn("accept", move || accept_loop(&listener, &accept_limits, &events))?;
    let room = Room::new(config.room, limits);
    // This thread waits for the broker, which ends after the console's
    // `/quit` once everyone has been told and their last lines are out.
    let broker = spawn("broker", move || room::run_broker(received, room))?;
    let _ = broker.join();
    log("stopped".into());
    output::flush();
    Ok(())
}

/// A connection accepted and admitted, on its way to its reader thread.
struct Connection {
    id: u64,
    socket: TcpStream,
    peer: SocketAddr,
    permit: Permit,
}

/// The accept loop (report §3.1): takes each connection and starts a
/// separate thread to handle it, its reader. One connection's trouble never
/// ends this loop (report §5: errors are printed and the server keeps
/// listening).
fn accept_loop(listener: &TcpListener, limits: &Arc<Limits>, events: &SyncSender<Event>) {
    for id in 1.. {
        let (mut socket, peer) = match listener.accept() {
            // An IPv4 client of a listener on `::` shows as `::ffff:a.b.c.d`:
            // one address, one form, for the limits and for `/ban`.
            Ok((socket, peer)) => (socket, SocketAddr::new(peer.ip().to_canonical(), peer.port())),
            Err(e) => {
                log(format!("accept failed: {e}; pausing"));
                thread::sleep(ACCEPT_ERROR_PAUSE);
                continue;
            }
        };
        // Beyond the report: `--max-clients`, `--max-per-address`, `/ban`.
        let permit = match limits.admit(peer.ip(), id) {
            Ok(permit) => permit,
            Err(refusal) => {
                log(format!("{peer} refused: {}", refusal.trim_end()));
                // A new socket's send buffer is empty: this short write
                // cannot block the loop. The socket closes when dropped.
                let _ = socket.write_all(refusal.as_bytes());
                continue;
            }
        };
        // Spawn: the reader of this connection. It ends when the connection
        // does; if it cannot start, the connection, moved into it, closes.
        let (connection, events) = (Connection { id, socket, peer, permit }, events.clone());
        let work = move || run_reader(connection, &events);
        if let Err(e) = outbox::spawn_for_connection(format!("reader-{id}"), work) {
            log(format!("{peer} dropped: cannot start its thread: {e}"));
        }
    }
}

/// The size of each connection's read buffer: one line is at most
/// [`MAX_LINE_BYTES`], so a typical line takes one system call.
const READ_BUFFER_BYTES: usize = MAX_LINE_BYTES;

/// A reader thread: one connection, from its first byte to its last. It
/// starts the connection's writer, tells the broker the connection arrived,
/// then hands it every line, cleaned, until the connection ends. It never
/// writes to the socket: the writer does, so two threads never mix bytes.
fn run_reader(connection: Connection, events: &SyncSender<Event>) {
    let Connection { id, socket, peer, permit } = connection;
    log(format!("{peer} connected"));
    let socket = Arc::new(socket); // read here, written by the writer
    let (to_broker, max_wait) = (events.clone(), permit.max_wait());
    let ended = move |why| drop(to_broker.send(Event::Ended { id, why }));
    let (outbox, writer_gone) = match outbox::start_writer(id, Arc::clone(&socket), max_wait, ended)
    {
        Ok(started) => started,
        Err(e) => return log(format!("{peer} dropped: cannot start its writer: {e}")),
    };
    // Beyond the report: the socket read through flood control, once the
    // arrival is paid for (`limits.rs`), and telnet's commands taken out.
    let Ok(paced) = Paced::arrive(socket, permit, writer_gone) else {
        return log(format!("{peer} closed before it was greeted"));
    };
    let _ = events.send(Event::Arrived { id, peer, outbox });
    let mut input = BufReader::with_capacity(READ_BUFFER_BYTES, Telnet::new(&paced, id, events));
    let mut buf = Vec::new();
    let why = loop {
        let line = match protocol::read_line_limited(&mut input, MAX_LINE_BYTES, &mut buf) {
            Ok(Some(Line::Text(said))) => Line::Text(text::clean(&said)),
            Ok(Some(Line::TooLong)) => Line::TooLong,
            Ok(None) => break "closed".to_string(),
            Err(e) => break format!("closed: {e}"),
        };
        if paced.pay(Cost::of(&line, buf.len())).is_err() {
            break "closed".to_string(); // while it waited for its allowance
        }
        if events.send(Event::Said { id, line }).is_err() {
            break "closed: the server is stopping".to_string();
        }
    };
    let _ = events.send(Event::Ended { id, why: Leave::Lost });
    // The place is freed as `paced` goes, with the permit; then the log says
    // so, and whoever reads it can count on the place being free.
    drop(input);
    drop(paced);
    log(format!("{peer} {why}"));
}

// Beyond the first reading: naming threads, and a pause.

/// Starts a thread called `name`: a name shows in `top -H` and in a panic,
/// and failing to start is an error, not a panic.
fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<thread::JoinHandle<T>, String> {
    thread::Builder::new().name(name.into()).spawn(work).map_err(|e| e.to_string())
}

/// How long the accept loop rests after `accept` fails. The usual cause is
/// running out of file descriptors, and then `accept` fails again at once
/// until some connection closes: without a pause the loop would spin a core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
