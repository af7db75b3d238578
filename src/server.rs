//! The server: it listens on a TCP socket and, once it accepts a connection,
//! starts a separate thread to handle that client (report §3.1, §4.1); an
//! error is printed and the server keeps listening (§5).
//!
//! The kinds of thread, each named where it is spawned:
//! - the **main thread** ([`run`]) starts the others, then waits for the
//!   broker to end;
//! - the **accept loop** ([`accept_loop`]) takes each connection and hands
//!   it to the **starter** ([`start_readers`]), which starts its **reader**
//!   ([`run_reader`]): the report's thread per client, which turns every
//!   line the client sends into an event for the broker;
//! - the **broker** (`room.rs`) owns the room and decides who gets what; it
//!   gives each connection a **writer** (`outbox.rs`), the thread that sends
//!   that client its lines;
//! - beyond the report, the teacher's **console** (`console.rs`) and the
//!   **outputs** (`output.rs`), which write the log, the console's output
//!   and the transcript so that nobody else ever waits on them.
//!
//! A line travels: client → reader → [`Event`] → broker (which gathers each
//! user's lines for a round) → outbox → writer → every other client.
//!
//! Not here: what the broker does with a line (`room.rs`), how a line is read
//! and worded (`protocol.rs`), the limits (`limits.rs`).

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread;
use std::time::Duration;

use crate::console;
use crate::limits::{Cost, Limits, PacedSocket, Permit};
use crate::outbox::CONNECTION_STACK_BYTES;
use crate::output::{self, log};
use crate::protocol::{self, Leave, Line, MAX_LINE_BYTES};
use crate::room::{self, Event, Room, Settings};
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

/// After `/quit` on the console, how long the server waits for the writers
/// to deliver everyone's last lines before it exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Runs the server until the console's `/quit`: listens (report §3.1),
/// starts the accept loop, the starter and the broker, and waits for the
/// broker to end. `Err` if it cannot start.
pub fn run(config: Config) -> Result<(), String> {
    let addr = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // The events channel: every reader and the console hold a sender
    // (`events`, cloned), and so does the room, to give each writer a way to
    // say it ended; the broker holds the receiver (`inbox`).
    let (events, inbox) = mpsc::sync_channel(EVENT_QUEUE);
    // Beyond the report: the teacher's console, and the outputs it shows.
    console::start_console(events.clone(), config.transcript.as_deref())?;
    // The first line on stdout, pinned: scripts and tests read the real port
    // from it when the server is started with `--port 0`.
    output::console(format!("listening on {local}"));
    if local.ip().is_unspecified() {
        output::console(console::where_to_join(local.port()));
    }
    let (clients, per_address) = (config.max_clients, config.max_per_address);
    let limits = Arc::new(Limits::new(clients, per_address, config.room.rate));
    // The arrivals channel: the accept loop sends each connection it admits,
    // the starter receives them. Spawn: both, for the life of the process.
    let (arrivals, arrived) = mpsc::channel();
    let (reader_events, accept_limits) = (events.clone(), Arc::clone(&limits));
    let accept = move || accept_loop(&listener, &accept_limits, &arrivals);
    thread::Builder::new().name("accept".into()).spawn(accept).map_err(|e| e.to_string())?;
    let starter = move || start_readers(arrived, &reader_events);
    thread::Builder::new().name("starter".into()).spawn(starter).map_err(|e| e.to_string())?;
    // `done`: each writer holds a clone, the broker the original. The
    // receiver hears the channel close once all of them are gone.
    let (done, all_done) = mpsc::channel::<()>();
    let room = Room::new(config.room, limits, events, done);
    // Spawn: the broker. This thread waits for it to end (the console's
    // `/quit`): it has then said goodbye to everyone and closed every outbox.
    let broker =
        thread::Builder::new().name("broker".into()).spawn(move || room::run_broker(inbox, room));
    let _ = broker.map_err(|e| e.to_string())?.join();
    let _ = all_done.recv_timeout(SHUTDOWN_GRACE);
    log("stopped".into());
    output::flush();
    Ok(())
}

/// How long the accept loop rests after `accept` fails. The usual cause is
/// running out of file descriptors, and then `accept` fails again at once
/// until some connection closes: without a pause the loop would spin a core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A connection accepted and admitted, on its way to its reader thread.
struct Connection {
    id: u64,
    socket: TcpStream,
    peer: SocketAddr,
    permit: Permit,
}

/// The accept loop (report §3.1): takes each connection and hands it to the
/// starter, which starts a thread to handle it. One connection's trouble
/// never ends this loop (report §5: errors are printed and the server keeps
/// listening).
fn accept_loop(listener: &TcpListener, limits: &Arc<Limits>, arrivals: &Sender<Connection>) {
    let mut next_id = 0;
    loop {
        let (mut socket, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                log(format!("accept failed: {e}; pausing"));
                thread::sleep(ACCEPT_ERROR_PAUSE);
                continue;
            }
        };
        // Beyond the report: `--max-clients` and `--max-per-address`.
        next_id += 1;
        let permit = match limits.admit(peer.ip(), next_id) {
            Ok(permit) => permit,
            Err(refusal) => {
                log(format!("{peer} refused: {}", refusal.trim_end()));
                // A new socket's send buffer is empty: this short write
                // cannot block the loop. The socket closes when dropped.
                let _ = socket.write_all(refusal.as_bytes());
                continue;
            }
        };
        // The starter lives as long as the process: this send cannot fail.
        let _ = arrivals.send(Connection { id: next_id, socket, peer, permit });
    }
}

/// The starter: a separate thread to handle each client (report §3.1,
/// §4.1), its reader. Beyond the report, a thread of its own: starting a
/// thread takes a while, and while the accept loop is busy, new
/// connections wait in the kernel's queue, which std makes 128 long. When a
/// whole class connects at once it overflows, and each connection that does
/// not fit is tried again only a second later; in this channel they wait.
fn start_readers(arrived: Receiver<Connection>, events: &SyncSender<Event>) {
    for Connection { id, socket, peer, permit } in arrived {
        let events = events.clone();
        // Spawn: the reader of this connection. It ends when the connection
        // does.
        let work = move || run_reader(id, socket, peer, permit, &events);
        let builder = thread::Builder::new().name(format!("reader-{id}"));
        if let Err(e) = builder.stack_size(CONNECTION_STACK_BYTES).spawn(work) {
            // The connection was moved into `work` and dropped with it: closed.
            log(format!("{peer} dropped: cannot start its thread: {e}"));
        }
    }
}

/// The size of each connection's read buffer: one line is at most
/// [`MAX_LINE_BYTES`], so a typical line takes one system call.
const READ_BUFFER_BYTES: usize = MAX_LINE_BYTES;

/// A reader thread: one connection, from its first byte to its last. It
/// tells the broker the connection arrived, then hands it every line,
/// cleaned, until the connection ends. It never writes to the socket: the
/// connection's writer does, so that two threads never mix their bytes.
fn run_reader(
    id: u64,
    socket: TcpStream,
    peer: SocketAddr,
    permit: Permit,
    events: &SyncSender<Event>,
) {
    log(format!("{peer} connected"));
    // One socket, two threads: std implements `Read` and `Write` for a
    // shared `&TcpStream` too, so the reader and the writer each hold an
    // `Arc` of it. It closes when both have let go.
    let socket = Arc::new(socket);
    // Nothing is ever sent on this channel: the writer holds `writer_alive`
    // and drops it when it ends; the reader's socket (`PacedSocket`) then
    // hears `writer_ended` close, and reads as ended.
    let (writer_alive, writer_ended) = mpsc::channel();
    // Beyond the report: the socket as read through flood control
    // (`limits.rs`): a read waits as long as the sender's allowance asks.
    let paced = PacedSocket { socket: Arc::clone(&socket), permit, writer_ended };
    // Beyond the report: arriving costs a line, for the join notice to come.
    paced.pay_arrival();
    let _ = events.send(Event::Arrived { id, peer, socket, alive: writer_alive });
    let mut input = BufReader::with_capacity(READ_BUFFER_BYTES, paced);
    let mut buf = Vec::new();
    let ended = loop {
        let line = match protocol::read_line_limited(&mut input, MAX_LINE_BYTES, &mut buf) {
            Ok(Some(Line::Text(text))) => Line::Text(text::cut_gaps(&text::sanitize(&text))),
            Ok(Some(Line::TooLong)) => Line::TooLong,
            Ok(None) => break "closed".to_string(),
            Err(e) => break format!("closed: {e}"),
        };
        // Beyond the report: each line costs a line of allowance, and what
        // cleaning added (a byte that is not UTF-8 becomes three, U+FFFD)
        // costs as much as bytes read: a line by what others receive. Paid
        // after it is handed on, before the next is read: a name is taken
        // at once, even on a machine where others flood.
        let (bytes, grown) = match &line {
            Line::Text(text) => (text.len(), text.len().saturating_sub(buf.len())),
            Line::TooLong => (0, 0),
        };
        if events.send(Event::Said { id, line }).is_err() {
            break "closed: the server is stopping".to_string();
        }
        let cost = Cost::line(1.0 + grown as f64 / MAX_LINE_BYTES as f64, bytes);
        if input.get_ref().pace(cost).is_err() {
            break "closed".to_string();
        }
    };
    let _ = input.get_ref().pace(Cost::line(1.0, 0)); // the leave notice costs a line too
    let _ = events.send(Event::Ended { id, why: Leave::Lost });
    // Free the place (the permit goes with `input`), then say so: whoever
    // reads the log line can count on the place being free.
    drop(input);
    log(format!("{peer} {ended}"));
}
