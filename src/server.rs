//! The server: accepts connections and runs the one shared room (report §3.1,
//! §4.1, §5).
//!
//! The report's server listens on a TCP socket and, once it accepts a
//! connection, starts a separate thread to handle that client (§3.1, §4.1);
//! it prints errors on its terminal and keeps listening (§5). How a line then
//! reaches the other clients, the report does not say. This file has two
//! parts:
//!
//! 1. **The report's design, and how this server carries it out**, read
//!    first: the accept loop and a reader thread per client (the report's),
//!    then the room, its broker and a writer per client (this project's way
//!    of "managing the communication" among the clients, §3.1).
//! 2. **Beyond the report**, after the marked line: what a room shared by a
//!    whole class needs on top. Each part says what it adds and why.
//!
//! The kinds of thread, each named where it is spawned:
//! - the **accept loop** (the main thread, [`run`]) takes each connection;
//! - the **starter** ([`run_starter`]) starts a reader for each one;
//! - one **reader** per connection ([`run_reader`]), the report's thread per
//!   client: it asks for a name, then turns every line into an [`Event`];
//! - one **broker** ([`run_broker`]) owns the room: it hears every event on
//!   one channel and decides who gets what;
//! - one **writer** per connection ([`run_writer`]): once the connection is
//!   admitted, the only code that writes to its socket, fed by its **outbox**
//!   (an mpsc channel of lines, made with the writer in [`start_writer`]);
//! - beyond the report: the **console** ([`run_console`]), the teacher's
//!   commands, typed into the client's **keyboard** thread; three **sinks**
//!   ([`Sink`]), which write the log, the console's output and the
//!   transcript, so that nobody else ever waits on a terminal or a disk.
//!
//! A line travels: client → reader → `Event` → broker → each outbox → each
//! writer → each client.
//!
//! Why a broker: a common way to write the report's server keeps every
//! client's socket in one list behind a lock, and the thread of whoever
//! speaks writes the line to each socket in turn, holding the lock. One
//! client that stops reading then blocks that write, the lock stays held,
//! and the whole room freezes. Here one thread owns the room and never
//! writes to a socket; each client's own writer does. (A list of outboxes
//! under a lock, locked only to queue lines, would not freeze either; the
//! broker still says more simply who decides: one thread takes every join,
//! line, kick and leave in one order, with no lock to hold or to forget.)
//!
//! Not here: how lines are read, cleaned and worded (`protocol.rs`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::OpenOptions;
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::client::{self, Input, Screen};
use crate::protocol::{self, Command, ConsoleCommand, Line, MAX_LINE_BYTES, TokenBucket};

/// How the server was asked to run (`chatroom server --help`).
pub struct Config {
    pub host: String,
    pub port: u16,
    /// Connections held at once, named or not; one more gets `! server full`.
    pub max_clients: usize,
    /// Connections held at once from one IP address.
    pub max_per_address: usize,
    /// How long a new connection has to send an acceptable name.
    pub name_timeout: Duration,
    /// Lines per second each address may send (flood control); 0: no limit.
    pub max_line_rate: u32,
    /// How many public lines a newcomer is shown after the welcome.
    pub history: usize,
    /// The file the transcript is appended to, if any (`--log`).
    pub transcript: Option<String>,
}

// ---------------------------------------------------------------------------
// The accept loop: a thread for each client (report §3.1, §4.1, §5)
// ---------------------------------------------------------------------------

/// How long the accept loop rests after `accept` fails. The usual cause is
/// running out of file descriptors, and then `accept` fails again at once
/// until some connection closes: without a pause the loop would spin a core.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Listens, starts the room, and runs the accept loop (report §3.1: the
/// server "listens for connection requests on a TCP socket"). Returns only
/// if the server cannot start.
pub fn run(config: Config) -> Result<(), String> {
    let addr = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let (limits, arrivals) = start(&config, &listener)?;
    let mut next_id = 0;
    loop {
        // One connection's trouble never ends this loop (report §5: errors
        // are printed and the server keeps listening).
        let (socket, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                log(format!("accept failed: {e}; pausing"));
                thread::sleep(ACCEPT_ERROR_PAUSE);
                continue;
            }
        };
        // Beyond the report: `--max-clients` and `--max-per-address`.
        let Some(place) = limits.admit(&socket, peer) else {
            continue;
        };
        next_id += 1;
        // To the starter, which starts this client's thread.
        if arrivals.send(Connection { id: next_id, socket, peer, place }).is_err() {
            return Err("the starter thread has ended".into());
        }
    }
}

/// How many events may wait for the broker. A reader that finds the queue
/// full waits before reading more, so TCP itself slows the senders down;
/// bounded so that a burst from many clients cannot grow memory without end.
const EVENT_QUEUE: usize = 4096;

/// What the accept loop needs running first: the console and the outputs
/// (beyond the report), the `listening on` line, then the threads that live
/// as long as the server: the broker, the console and the starter. Returns
/// the limits and the starter's channel.
///
/// Why a starter thread, not the accept loop, starts each reader: starting
/// a thread takes about 40 µs, far longer under load, and while the accept
/// loop is busy new connections wait in the kernel's queue, which std makes
/// 128 long. When a whole class connects at once that queue overflows, and
/// each connection that does not fit is retried only a second later (5,000
/// joins took 25 s instead of 7.5 s). In the starter's channel they wait.
fn start(
    config: &Config,
    listener: &TcpListener,
) -> Result<(Arc<Limits>, Sender<Connection>), String> {
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let (keys, typed) = mpsc::channel();
    let screen = client::start_keyboard(keys, "> ");
    start_sinks(&screen, config.transcript.as_deref())?;
    // The first line on stdout, pinned: scripts and tests read the real port
    // from it when the server is started with `--port 0`.
    say(format!("listening on {local}"));
    if local.ip().is_unspecified() {
        say(where_to_join(local.port()));
    }
    // The events channel: each reader holds a clone of `events`, the broker
    // holds `inbox`.
    let (events, inbox) = mpsc::sync_channel::<Event>(EVENT_QUEUE);
    let history = config.history;
    // Spawn: the broker. It runs as long as the process.
    spawn("broker", None, move || run_broker(inbox, history))?;
    let limits = Arc::new(Limits::new(config));
    let (console_events, console_limits) = (events.clone(), Arc::clone(&limits));
    let editing = screen.editing();
    // Spawn: the console. It ends the process on `/quit`, or ends alone at
    // the end of stdin, leaving the server running.
    let console = move || run_console(console_events, &console_limits, typed, editing);
    spawn("console", None, console)?;
    // The arrivals channel: the accept loop sends each new connection, the
    // starter receives it. Spawn: the starter, for as long as the accept
    // loop holds `arrivals`.
    let (arrivals, arrived) = mpsc::channel();
    let starter_limits = Arc::clone(&limits);
    spawn("starter", None, move || run_starter(arrived, events, starter_limits))?;
    Ok((limits, arrivals))
}

/// A connection accepted and admitted, on its way to its reader thread.
struct Connection {
    /// Events carry this number rather than the user's name: a name is free
    /// again once its owner leaves, and a late event from the old connection
    /// must not be taken for the new owner's.
    id: u64,
    socket: TcpStream,
    peer: SocketAddr,
    /// Its place among the connections allowed; given back when dropped.
    place: Place,
}

/// The stack of each reader and writer thread. Their deepest call is a
/// `format!` or a log line, a few KiB at most; 64 KiB leaves a wide margin,
/// and naming it says how little a connection needs (the default is 2 MiB).
const CONNECTION_STACK_BYTES: usize = 64 * 1024;

/// The starter: starts a separate thread for each client (report §3.1,
/// §4.1), handed over by the accept loop (why: see `start`).
fn run_starter(arrived: Receiver<Connection>, events: SyncSender<Event>, limits: Arc<Limits>) {
    for connection in arrived {
        let (name, peer) = (format!("reader-{}", connection.id), connection.peer);
        let (events, limits) = (events.clone(), Arc::clone(&limits));
        // Spawn: a reader, one per connection.
        let work = move || run_reader(connection, events, limits);
        if let Err(e) = spawn(&name, Some(CONNECTION_STACK_BYTES), work) {
            // The connection was moved into `work` and dropped with it: closed.
            log(format!("{peer} dropped: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------
// The reader: the report's thread for each client
// ---------------------------------------------------------------------------

/// The size of each connection's read buffer: one line is at most
/// [`MAX_LINE_BYTES`], so a typical line takes one system call.
const READ_BUFFER_BYTES: usize = MAX_LINE_BYTES;

/// The reader of one connection. It writes nothing to the socket itself:
/// everything for this client goes through its outbox to its writer, so that
/// only one thread ever writes to a socket (two could mix their bytes up).
struct Reader {
    id: u64,
    peer: SocketAddr,
    socket: Arc<TcpStream>,
    input: BufReader<SocketReader>,
    /// Scratch space for `read_line_limited`, reused for every line.
    buf: Vec<u8>,
    /// How to reach the broker, and the limits this connection lives by.
    events: SyncSender<Event>,
    limits: Arc<Limits>,
}

/// A reader thread: one connection, from its first byte to its last.
fn run_reader(connection: Connection, events: SyncSender<Event>, limits: Arc<Limits>) {
    let Connection { id, socket, peer, place } = connection;
    log(format!("{peer} connected"));
    // One socket, three threads: std implements `Read` and `Write` for a
    // shared `&TcpStream` too, so the reader, the writer and the broker each
    // hold an `Arc` of the one socket (`try_clone` would cost one more file
    // descriptor per connection). It closes when the last one lets go.
    let socket = Arc::new(socket);
    let ended = match start_writer(id, &socket, peer, limits.outbox_bytes) {
        Err(e) => e,
        Ok(outbox) => {
            let source = SocketReader::new(&socket, peer.ip(), &limits);
            let input = BufReader::with_capacity(READ_BUFFER_BYTES, source);
            let buf = Vec::new();
            let mut reader = Reader { id, peer, socket, input, buf, events, limits };
            let queue = Arc::clone(&outbox.queue);
            match reader.choose_name(outbox) {
                Handshake::Ended(why) => why,
                Handshake::Joined => reader.relay_lines(&queue),
            }
        }
    };
    log(format!("{peer} {ended}"));
    // Free the place, then say so: whoever reads the log line can count on
    // the place being free.
    drop(place);
    log(format!("{peer} closed"));
}

impl Reader {
    /// The chat: each line the user sends becomes an event for the broker,
    /// until the connection ends. Returns why it ended, for the log.
    fn relay_lines(&mut self, queue: &Queue) -> String {
        self.input.get_mut().end_deadline(); // chat users may sit silent for hours
        let ended = loop {
            let command = match self.next_line() {
                Ok(Some(Line::Text(text))) => protocol::parse_command(&protocol::sanitize(&text)),
                Ok(Some(Line::TooLong)) => Some(Command::Refused(protocol::line_too_long())),
                Ok(None) => break "left".to_string(),
                Err(e) => break format!("read error: {e}"),
            };
            let Some(command) = command else {
                continue; // an empty line says nothing
            };
            let quit = command == Command::Quit;
            // Beyond the report: a line's allowance (one more for `/quit`).
            self.pace(if quit { 2.0 } else { 1.0 });
            if queue.ended.load(Ordering::SeqCst) {
                break "was disconnected".to_string(); // see `Queue::ended`
            }
            let event = Event::Command { id: self.id, command };
            if self.events.send(event).is_err() || quit {
                return "quit".into(); // the broker has taken the user out
            }
        };
        self.pace(1.0); // the leave notice costs a line too
        let why = if queue.stalled.load(Ordering::SeqCst) { Some(TOO_SLOW) } else { None };
        let _ = self.events.send(Event::Leave { id: self.id, why });
        ended
    }

    fn next_line(&mut self) -> io::Result<Option<Line>> {
        protocol::read_line_limited(&mut self.input, MAX_LINE_BYTES, &mut self.buf)
    }
}

/// How the name handshake ended.
enum Handshake {
    /// The broker took the name: the user is in the room.
    Joined,
    /// The connection ended first; why, for the log.
    Ended(String),
}

impl Reader {
    /// The handshake (report §6: once connected, the client is asked for a
    /// name): the greeting, then names until the broker accepts one. Until
    /// then, nothing this connection sends reaches anyone else.
    ///
    /// Takes the outbox: when the user joins, the broker gets a clone, and
    /// this one is dropped on return, leaving the broker the only sender (so
    /// that the writer ends once the broker lets the user go).
    fn choose_name(&mut self, outbox: Outbox) -> Handshake {
        let mut answer = protocol::greeting();
        loop {
            // A client that sends names without reading the refusals fills
            // its outbox like any other that stopped reading.
            if outbox.send_line(answer).is_err() {
                let _ = self.socket.shutdown(Shutdown::Both); // wakes the writer
                return Handshake::Ended("stopped reading before choosing a name".into());
            }
            let line = self.next_line();
            if let Ok(Some(_)) = line {
                self.pace(1.0); // beyond the report: a name tried costs a line
            }
            answer = match line {
                Ok(Some(Line::Text(text))) => match self.ask_to_join(&text, &outbox) {
                    Ok(()) => return Handshake::Joined,
                    Err(refusal) => refusal,
                },
                Ok(Some(Line::TooLong)) => protocol::line_too_long(),
                Ok(None) => return Handshake::Ended("left before choosing a name".into()),
                Err(e) if is_timeout(&e) => return self.name_too_late(&outbox),
                Err(e) => return Handshake::Ended(format!("error: {e}")),
            };
        }
    }

    /// Checks a name and asks the broker to let the user in with it. `Err` is
    /// the `! ` line that says why not.
    fn ask_to_join(&mut self, text: &str, outbox: &Outbox) -> Result<(), String> {
        let name = protocol::sanitize(text).trim().to_string();
        protocol::validate_name(&name).map_err(|why| protocol::name_refused(&why))?;
        self.pace(1.0); // beyond the report: the join notice costs a line
        // Only the broker knows who is online, so only it can say whether the
        // name is free. It answers at once.
        let (reply, answer) = mpsc::channel();
        let join = Event::Join {
            id: self.id,
            name,
            peer: self.peer,
            outbox: outbox.clone(),
            socket: Arc::clone(&self.socket),
            reply,
        };
        if self.events.send(join).is_err() {
            return Err(protocol::shutting_down()); // the broker has stopped
        }
        answer.recv().unwrap_or_else(|_| Err(protocol::shutting_down()))
    }
}

// ---------------------------------------------------------------------------
// The room and its broker
// ---------------------------------------------------------------------------

/// Everything the broker hears. Readers and the console send these over one
/// channel, so the broker sees the events of all connections in one order,
/// and that order is the order in which everyone sees the messages.
enum Event {
    /// A name to join with; `reply` gets `Ok`, or the `! ` line saying why not.
    Join {
        id: u64,
        name: String,
        peer: SocketAddr,
        outbox: Outbox,
        socket: Arc<TcpStream>,
        reply: Sender<Result<(), String>>,
    },
    /// A joined user's line, already understood.
    Command { id: u64, command: Command },
    /// A joined user's connection ended without `/quit` (`why`, if the
    /// server ended it).
    Leave { id: u64, why: Option<&'static str> },
    /// Beyond the report: a command from the console.
    Console(ConsoleCommand),
    /// Beyond the report: the console's `/quit`.
    Shutdown,
}

/// One user in the room, as the broker holds them.
struct User {
    /// As typed at the handshake; shown on every line they send.
    name: String,
    /// Their lines to come. Dropping it lets the writer finish and close.
    outbox: Outbox,
    /// The connection, kept only to cut off a user who stopped reading: their
    /// writer may be blocked in a write that nothing else would interrupt.
    socket: Arc<TcpStream>,
    /// Lines for this user from the current round, not yet in the outbox.
    pending: Vec<Arc<str>>,
}

/// The room: who is online. Owned by the broker thread alone, it needs no
/// lock (the module's doc says what it replaces: a list behind a lock).
#[derive(Default)]
struct Room {
    users: HashMap<u64, User>,
    /// Folded name (`protocol::fold_name`) to id: finds `/msg` targets, keeps
    /// names unique and, sorted, gives `/who` its order. Changes with `users`.
    by_name: BTreeMap<String, u64>,
    /// Beyond the report: `--history` lines, and the offset from UTC.
    history: VecDeque<Arc<str>>,
    history_lines: usize,
    utc_offset: i64,
}

/// The broker: the one thread that owns the room (report §3.1: the server
/// "manages the communication" among the clients). Runs until the console's
/// `/quit`; otherwise for ever, as the starter always holds a sender. It
/// works in rounds, a speed-up (see [`ROUND_EVENTS`]).
fn run_broker(inbox: Receiver<Event>, history_lines: usize) {
    let mut room = Room { history_lines, utc_offset: utc_offset(), ..Room::default() };
    while let Ok(event) = inbox.recv() {
        let mut open = room.handle(event);
        for event in inbox.try_iter().take(ROUND_EVENTS) {
            open = open && room.handle(event);
        }
        room.end_round();
        if !open {
            return; // shut down: the readers' next sends fail, and they end
        }
    }
}

impl Room {
    /// Acts on one event. `false` once the server is shutting down.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Join { id, name, peer, outbox, socket, reply } => {
                // The reader waits for this answer; if it is gone already,
                // there is nobody to tell.
                let _ = reply.send(self.join(id, name, peer, outbox, socket));
            }
            Event::Command { id, command } => self.command(id, command),
            Event::Leave { id, why } => self.leave(id, why),
            Event::Console(command) => self.console(command),
            Event::Shutdown => {
                self.shut_down();
                return false;
            }
        }
        true
    }

    fn join(
        &mut self,
        id: u64,
        name: String,
        peer: SocketAddr,
        outbox: Outbox,
        socket: Arc<TcpStream>,
    ) -> Result<(), String> {
        let folded = protocol::fold_name(&name);
        if self.by_name.contains_key(&folded) {
            return Err(protocol::name_taken(&name));
        }
        log(format!("{peer} joined as {name}"));
        self.by_name.insert(folded, id);
        let joined = protocol::joined(&name);
        let pending = Vec::new();
        let user = User { name, outbox, socket, pending };
        self.users.insert(id, user);
        // The welcome is the newcomer's first line after the name: the
        // client takes it as the sign that the name was accepted.
        let welcome = protocol::welcome(&self.users[&id].name, self.names());
        self.send(id, welcome);
        if let Some(user) = self.users.get_mut(&id) {
            user.pending.extend(self.history.iter().cloned());
        }
        self.broadcast(joined, Some(id));
        Ok(())
    }

    /// The names online, sorted case-insensitively. (Every id in `by_name`
    /// is a key of `users`: they change together, so the indexing holds.)
    fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.by_name.values().map(|id| self.users[id].name.as_str())
    }

    /// A line from a user: a chat line goes to everyone else (report §2:
    /// "several users talk to one another in one shared chatroom").
    fn command(&mut self, id: u64, command: Command) {
        // A line from a user who was already cut off: ignore it.
        let Some(user) = self.users.get(&id) else {
            return;
        };
        match command {
            Command::Say(text) => {
                let line = protocol::chat(&user.name, &text);
                self.remember(&line);
                self.broadcast(line, Some(id));
            }
            other => self.other_command(id, other),
        }
    }

    /// Takes a user out of the room and tells everyone else. Their last
    /// lines (a `* bye`, say) go to their outbox, which is then dropped: the
    /// writer sends what is queued and closes the connection.
    fn leave(&mut self, id: u64, why: Option<&str>) {
        let Some(mut user) = self.users.remove(&id) else {
            return; // already gone: a leave after a kick, say
        };
        // `std::mem::take`: the list, leaving an empty one in its place.
        let _ = user.outbox.send(std::mem::take(&mut user.pending));
        self.by_name.remove(&protocol::fold_name(&user.name));
        let left = protocol::left(&user.name, why);
        log(left.trim_start_matches(protocol::NOTICE).trim_end().to_string());
        self.broadcast(left, None);
        if why == Some(TOO_SLOW) {
            // Wakes their writer if it is blocked in a write, and their
            // reader too; both then end on their own.
            let _ = user.socket.shutdown(Shutdown::Both);
        }
    }

    /// One line for one user.
    fn send(&mut self, id: u64, line: String) {
        if let Some(user) = self.users.get_mut(&id) {
            user.pending.push(Arc::from(line));
        }
    }

    /// One line for everyone but `except`. It is made once and shared: each
    /// user holds a pointer to it (an `Arc`), not a copy. Beyond the report,
    /// the teacher's console and the transcript show it too (`show`).
    fn broadcast(&mut self, line: String, except: Option<u64>) {
        self.show(&line);
        let line: Arc<str> = Arc::from(line);
        for (&id, user) in &mut self.users {
            if Some(id) != except {
                user.pending.push(Arc::clone(&line));
            }
        }
    }

    /// The end of a round: each user's lines go to their outbox, in one
    /// batch. Anyone whose outbox is full is cut off, which tells the others,
    /// hence the loop.
    fn end_round(&mut self) {
        loop {
            let mut too_slow = Vec::new();
            for (&id, user) in self.users.iter_mut().filter(|(_, user)| !user.pending.is_empty()) {
                if user.outbox.send(std::mem::take(&mut user.pending)).is_err() {
                    too_slow.push(id);
                }
            }
            if too_slow.is_empty() {
                return;
            }
            for id in too_slow {
                self.leave(id, Some(TOO_SLOW));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------

/// How long a write may wait for the client to take a byte before the client
/// counts as having stopped reading (its machine slept, its program hung).
const STALL: Duration = Duration::from_secs(10);

/// Creates a connection's outbox and starts its writer thread.
fn start_writer(
    id: u64,
    socket: &Arc<TcpStream>,
    peer: SocketAddr,
    limit: usize,
) -> Result<Outbox, String> {
    // Small chat lines must leave at once, not wait for Nagle's algorithm to
    // gather more (up to 40 ms with delayed ACKs): each batch is one write.
    let setup = socket.set_nodelay(true).and(socket.set_write_timeout(Some(STALL)));
    setup.map_err(|e| e.to_string())?;
    let (batches, queued) = mpsc::channel();
    let queue = Arc::new(Queue::default());
    let outbox = Outbox { batches, queue: Arc::clone(&queue), limit };
    let socket = Arc::clone(socket);
    // Spawn: the writer of this connection. It ends when every Outbox sender
    // is gone, or a write fails; it is not joined, and cleans up after itself.
    let work = move || run_writer(&socket, peer, &queued, &queue);
    spawn(&format!("writer-{id}"), Some(CONNECTION_STACK_BYTES), work)?;
    Ok(outbox)
}

/// The writer: the only code that writes to one connection's socket. Ends
/// when the outbox closes (the broker let the user go) or a write fails;
/// either way it then shuts the socket down, which also wakes the reader.
fn run_writer(socket: &TcpStream, peer: SocketAddr, queued: &Receiver<Batch>, queue: &Queue) {
    let mut socket = socket;
    for batch in queued {
        // One write for the whole batch: one system call, and with
        // TCP_NODELAY one packet, for all the lines of a round.
        let text = batch.concat();
        queue.bytes.fetch_sub(text.len(), Ordering::Relaxed);
        if let Err(e) = socket.write_all(text.as_bytes()) {
            if is_timeout(&e) {
                log(format!("{peer} stopped reading: nothing taken for {}s", STALL.as_secs()));
                queue.stalled.store(true, Ordering::SeqCst);
            }
            break;
        }
    }
    queue.ended.store(true, Ordering::SeqCst);
    let _ = socket.shutdown(Shutdown::Both);
}

// ===========================================================================
// Beyond the report. Everything above is the report's design; everything
// below is what a room shared by a whole class needs on top of it.
// ===========================================================================

// ---------------------------------------------------------------------------
// Slow readers: an outbox bounded in bytes
// ---------------------------------------------------------------------------

/// What a user is told has happened to someone cut off for not reading.
const TOO_SLOW: &str = "too slow: stopped reading";

/// The sending end of one user's outbox: the lines waiting for that user's
/// writer.
///
/// Lifecycle: made by the reader with the writer. The reader uses it for the
/// handshake, hands a clone to the broker when the user joins and drops its
/// own; from then on the broker holds the only one. When the broker drops it
/// (the user left, or was cut off), the writer sends what is queued and
/// closes the connection.
///
/// Never waited on: a line is refused when `limit` bytes already wait. A
/// blocking queue (`sync_channel`) would make the broker, and with it
/// everyone, wait for the slowest reader. `limit` is [`Limits::outbox_bytes`].
#[derive(Clone)]
struct Outbox {
    batches: Sender<Batch>,
    queue: Arc<Queue>,
    limit: usize,
}

/// What the outbox's two ends share. Atomics (`std::sync::atomic`, which
/// the Book names in chapter 16 beside `Mutex`): a number and two flags that
/// several threads read and change without a lock, each change whole. The
/// `Ordering` is `SeqCst` for the flags (the plain, strictest one) and
/// `Relaxed` for the count, which only needs to be right, not ordered with
/// anything else.
#[derive(Default)]
struct Queue {
    /// Bytes sent and not yet taken by the writer. The sender adds, the
    /// writer subtracts as it takes each line.
    bytes: AtomicUsize,
    /// Set by the writer when it ends: the connection is over, and the reader
    /// must stop too.
    ended: AtomicBool,
    /// Set by the writer when it gave up on a client that took no byte for
    /// [`STALL`].
    stalled: AtomicBool,
}

/// Why a line was refused: `limit` bytes already wait, the user stopped
/// reading.
struct Full;

impl Outbox {
    /// Queues `lines`, or refuses them at once: never waits. Lines for a
    /// writer that has ended (the connection broke) are simply dropped: that
    /// user's reader sees the broken connection too, and leaves.
    fn send(&self, lines: Batch) -> Result<(), Full> {
        let bytes: usize = lines.iter().map(|line| line.len()).sum();
        if self.queue.bytes.load(Ordering::Relaxed) + bytes > self.limit {
            return Err(Full);
        }
        self.queue.bytes.fetch_add(bytes, Ordering::Relaxed);
        let _ = self.batches.send(lines);
        Ok(())
    }

    /// Queues one line (the handshake's).
    fn send_line(&self, line: String) -> Result<(), Full> {
        self.send(vec![Arc::from(line)])
    }
}

/// Lines that travel to a writer together.
type Batch = Vec<Arc<str>>;

impl Room {
    /// The commands a user may type besides chat: `/msg`, `/who`, `/help`,
    /// `/quit`, and the `! ` answer to a line that is refused.
    fn other_command(&mut self, id: u64, command: Command) {
        let name = self.users[&id].name.clone(); // `command` checked it is online
        match command {
            Command::Msg { to, text } => match self.by_name.get(&protocol::fold_name(&to)) {
                Some(&to_id) => {
                    let sent = protocol::private_sent(&self.users[&to_id].name, &text);
                    self.send(to_id, protocol::private(&name, &text));
                    self.send(id, sent);
                }
                None => self.send(id, protocol::no_such_user(&to)),
            },
            Command::Who => self.send(id, protocol::online(self.names())),
            Command::Help => self.send(id, protocol::help()),
            Command::Refused(line) => self.send(id, line),
            Command::Quit => {
                self.send(id, protocol::bye(&name));
                self.leave(id, None);
            }
            Command::Say(_) => {} // handled by `command`
        }
    }

    /// Keeps a public line for newcomers (`--history`): memory for at most
    /// `history_lines` lines, each at most about 3 KB.
    fn remember(&mut self, line: &str) {
        self.history.push_back(Arc::from(protocol::earlier(line)));
        if self.history.len() > self.history_lines {
            self.history.pop_front();
        }
    }
}

// ---------------------------------------------------------------------------
// The name deadline, and every byte counted
// ---------------------------------------------------------------------------

/// The socket as the reader reads it: reads fail with `TimedOut` once the
/// name deadline has passed, and every byte read counts against the sender's
/// flood allowance (a KiB costs as much as a line), whether it arrives before
/// or after the name, in a line or in one that never ends.
///
/// Why not a plain read timeout for the deadline: it restarts with every
/// byte, so a client sending one byte every 29 seconds would hold its place
/// for ever without choosing a name.
struct SocketReader {
    socket: Arc<TcpStream>,
    ip: IpAddr,
    limits: Arc<Limits>,
    deadline: Option<Instant>,
}

impl SocketReader {
    fn new(socket: &Arc<TcpStream>, ip: IpAddr, limits: &Arc<Limits>) -> SocketReader {
        SocketReader {
            socket: Arc::clone(socket),
            ip,
            limits: Arc::clone(limits),
            deadline: Some(Instant::now() + limits.name_timeout),
        }
    }

    /// The name is chosen: no deadline from here on.
    fn end_deadline(&mut self) {
        self.deadline = None;
        let _ = self.socket.set_read_timeout(None);
    }
}

impl Read for SocketReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.socket.set_read_timeout(Some(left))?;
        }
        let n = (&*self.socket).read(buf)?;
        self.limits.pace(self.ip, n as f64 / MAX_LINE_BYTES as f64);
        Ok(n)
    }
}

impl Reader {
    /// The name deadline has passed: say so, and end the connection (the
    /// writer sends the line, then closes when the outbox is dropped).
    fn name_too_late(&self, outbox: &Outbox) -> Handshake {
        let seconds = self.limits.name_timeout.as_secs();
        let _ = outbox.send_line(protocol::name_deadline(seconds));
        Handshake::Ended(format!("closed: no name within {seconds}s"))
    }
}

fn is_timeout(e: &io::Error) -> bool {
    // A timeout is `WouldBlock` on Unix and `TimedOut` on Windows.
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

// ---------------------------------------------------------------------------
// Flood control and connection limits, per address
// ---------------------------------------------------------------------------

/// How many lines one address may send at once before flood control slows it
/// to `--max-line-rate`: a pasted block of this many lines goes through
/// unhurried. A name tried, a join and a leave cost a line each (they too
/// put lines on screens or work on the broker), and so does every KiB read.
const FLOOD_BURST: u32 = 100;

/// The whole room may carry this many addresses' worth of lines: bursts of
/// 1,000 and 200 lines a second at the default rate. It bounds what every
/// outbox may have to hold (see `outbox_bytes`), however many addresses send.
const ROOM_SHARE: u32 = 10;

/// The most bytes one line's worth of allowance can put in another user's
/// outbox: a 1 KiB line costs two (one for the line, one for the KiB) and
/// arrives as at most 3,171 bytes with its sender's name, when every byte
/// of it was not UTF-8 and became U+FFFD, three bytes.
const BYTES_PER_LINE_ALLOWED: usize = 1600;

/// The floor for an outbox, and its size with flood control off: about 230
/// of the longest chat lines, thousands of ordinary ones.
const MIN_OUTBOX_BYTES: usize = 256 * 1024;

/// Connection limits and flood control, shared by every reader and the accept
/// loop. The lock is held only to count, never across a read, a write or a
/// sleep.
///
/// Limits are per IP address, not per connection: otherwise one student with
/// a script opens a hundred connections and gets a hundred allowances. Each
/// address has a token bucket (see `protocol::TokenBucket`) that all its
/// connections draw on; a reader that finds it empty waits before reading
/// on, so the sender's own TCP connection fills and holds it back. Nothing
/// is lost, nobody is cut off, and everyone else's lines flow as before.
struct Limits {
    /// How long a new connection has to choose a name.
    name_timeout: Duration,
    max_clients: usize,
    max_per_address: usize,
    /// Lines per second per address; 0: flood control off.
    rate: u32,
    /// The bound of every outbox (see `outbox_bytes`).
    outbox_bytes: usize,
    counts: Mutex<Counts>,
}

struct Counts {
    /// Connections open now, named or not.
    open: usize,
    /// The whole room's allowance.
    room: TokenBucket,
    /// Addresses with connections open, or whose allowance is not yet full
    /// again: forgetting those would hand out a fresh burst on reconnecting.
    addresses: HashMap<IpAddr, Address>,
}

struct Address {
    open: usize,
    bucket: TokenBucket,
}

/// One connection's place in the counts, given back when dropped. The reader
/// holds it, so the place is freed however the reader ends (a panic too).
struct Place {
    limits: Arc<Limits>,
    ip: IpAddr,
}

/// How many bytes may wait in one user's outbox before the user counts as
/// having stopped reading and is cut off.
///
/// A user who keeps reading empties their outbox as fast as lines come; one
/// who stopped never does. The bound holds everything flood control lets the
/// whole room send during [`STALL`] (at the default rate 3,000 lines, at most
/// 4.8 MB): only a user who took nothing for that long can fill it, however
/// many people burst at once. With flood control off nothing bounds what the
/// room sends, and it is the floor, `MIN_OUTBOX_BYTES`.
fn outbox_bytes(rate: u32) -> usize {
    let lines = ROOM_SHARE * (FLOOD_BURST + rate * STALL.as_secs() as u32);
    let bytes = if rate == 0 { 0 } else { lines as usize * BYTES_PER_LINE_ALLOWED };
    bytes.max(MIN_OUTBOX_BYTES)
}

impl Limits {
    fn new(config: &Config) -> Limits {
        let rate = config.max_line_rate;
        let room = TokenBucket::new(rate * ROOM_SHARE, FLOOD_BURST * ROOM_SHARE, Instant::now());
        Limits {
            name_timeout: config.name_timeout,
            max_clients: config.max_clients,
            max_per_address: config.max_per_address,
            rate,
            outbox_bytes: outbox_bytes(rate),
            counts: Mutex::new(Counts { open: 0, room, addresses: HashMap::new() }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // A panic while the lock was held cannot leave the counts half
        // changed (each change is one statement), so a poisoned lock is
        // still good to use.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection from `peer`, or tells it why it cannot stay
    /// (and it closes when the caller drops it). `self: &Arc<Self>`: the
    /// method needs the `Arc` itself, to give the new place a clone of it.
    fn admit(self: &Arc<Self>, socket: &TcpStream, peer: SocketAddr) -> Option<Place> {
        let mut counts = self.lock();
        let now = Instant::now();
        counts.addresses.retain(|_, a| a.open > 0 || !a.bucket.is_full(now));
        let refusal = if counts.open >= self.max_clients {
            protocol::server_full(self.max_clients)
        } else {
            let bucket = TokenBucket::new(self.rate, FLOOD_BURST, now);
            let address = counts.addresses.entry(peer.ip()).or_insert(Address { open: 0, bucket });
            if address.open < self.max_per_address {
                address.open += 1;
                counts.open += 1;
                return Some(Place { limits: Arc::clone(self), ip: peer.ip() });
            }
            protocol::too_many_from_address(self.max_per_address)
        };
        drop(counts);
        log(format!("{peer} refused: {}", refusal.trim_end()));
        // A new socket's send buffer is empty: this short write cannot block
        // the accept loop.
        let _ = (&*socket).write_all(refusal.as_bytes());
        None
    }

    /// Takes `lines` worth of allowance from `ip`, then from the whole room,
    /// waiting as long as each asks. The room is asked only once the address
    /// has paid, so a flooding address cannot run up the room's debt for
    /// everyone else.
    fn pace(&self, ip: IpAddr, lines: f64) {
        if self.rate == 0 {
            return;
        }
        let wait = match self.lock().addresses.get_mut(&ip) {
            Some(address) => address.bucket.take(lines, Instant::now()),
            None => Duration::ZERO,
        };
        thread::sleep(wait);
        let wait = self.lock().room.take(lines, Instant::now());
        thread::sleep(wait);
    }
}

impl Reader {
    /// Takes `lines` worth of this connection's allowance (see `Limits::pace`).
    fn pace(&self, lines: f64) {
        self.limits.pace(self.peer.ip(), lines);
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.open -= 1;
        if let Some(address) = counts.addresses.get_mut(&self.ip) {
            address.open -= 1;
        }
    }
}

// ---------------------------------------------------------------------------
// The teacher's console, and shutting down
// ---------------------------------------------------------------------------

/// After `/quit` on the console, how long the server waits for the writers
/// to deliver everyone's last lines before it exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The console: the teacher's commands, typed on the server's stdin, read by
/// the client's keyboard thread (and its line editor, in a terminal).
///
/// It holds no state of its own: `/say`, `/who` and `/kick` go to the broker
/// as events, like everything else that touches the room, and the broker's
/// answer is printed on stdout. In a terminal, Ctrl-C or Ctrl-D shuts the
/// server down as `/quit` does. Without one (stdin at its end: a test,
/// `nohup`, a service), this thread ends and the server goes on.
fn run_console(events: SyncSender<Event>, limits: &Limits, typed: Receiver<Input>, editing: bool) {
    for input in typed {
        let command = match input {
            Input::Typed(line) => protocol::parse_console(protocol::sanitize(&line).trim()),
            _ if editing => shut_down(&events, limits),
            _ => return,
        };
        let Some(command) = command else {
            continue; // an empty line
        };
        if command == ConsoleCommand::Quit {
            shut_down(&events, limits);
        }
        if events.send(Event::Console(command)).is_err() {
            return;
        }
    }
}

impl Room {
    /// The teacher's commands; the answer is printed on the console.
    fn console(&mut self, command: ConsoleCommand) {
        let answer = match command {
            ConsoleCommand::Say(text) => {
                let line = protocol::from_server(&text);
                self.remember(&line);
                self.broadcast(line, None);
                protocol::notice(&format!("said to {} user(s)", self.users.len()))
            }
            ConsoleCommand::Who => protocol::online(self.names()),
            ConsoleCommand::Kick { name, reason } => {
                match self.by_name.get(&protocol::fold_name(&name)) {
                    None => protocol::no_such_user(&name),
                    Some(&id) => {
                        // Their name as they typed it (in `users`, as every id in
                        // `by_name` is).
                        let name = self.users[&id].name.clone();
                        self.send(id, protocol::removed(&reason));
                        self.leave(id, Some("removed by the server"));
                        protocol::notice(&format!("removed {name}"))
                    }
                }
            }
            ConsoleCommand::Help => protocol::console_help(),
            ConsoleCommand::Refused(error) => error,
            ConsoleCommand::Quit => return, // the console thread's own: `shut_down`
        };
        say(answer);
    }

    /// Says goodbye to everyone and lets them all go: each outbox closes with
    /// its user, and each writer then delivers the last lines and closes.
    fn shut_down(&mut self) {
        self.broadcast(protocol::shutting_down(), None);
        for (_, mut user) in self.users.drain() {
            let _ = user.outbox.send(std::mem::take(&mut user.pending));
        }
        self.by_name.clear();
    }
}

/// `/quit` on the console: the broker says goodbye to everyone and lets them
/// go; then wait (at most SHUTDOWN_GRACE) until every connection is closed,
/// and exit 0. A connection still choosing a name is not in the room, so
/// nobody tells it: it holds the wait to the end, and closes with the
/// process. (`-> !`: it never returns, the process ends in it.)
fn shut_down(events: &SyncSender<Event>, limits: &Limits) -> ! {
    log("shutting down".into());
    let _ = events.send(Event::Shutdown);
    // A connection's place is freed once its reader has ended, which is after
    // its writer closed it. Polling is fine here: it happens once.
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while limits.lock().open > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    log("stopped".into());
    flush_sinks();
    client::restore_terminal();
    std::process::exit(0);
}

// ---------------------------------------------------------------------------
// The log and the console's output: lines that never make anyone wait
// ---------------------------------------------------------------------------

/// How many lines may wait for a sink's thread before new ones are dropped.
const SINK_QUEUE: usize = 1024;

/// An output that never makes its callers wait: the log (stderr), the
/// console's output (stdout) and the transcript (`--log`).
///
/// Why: `eprintln!` blocks when stderr is a pipe nobody reads or a terminal
/// paused with Ctrl-S, and panics when stderr is closed. Called from the
/// broker, either would stop the room. Here a line goes into a bounded
/// channel and a thread of the sink's own writes it out; when the channel is
/// full the line is dropped and counted, and the count is written once the
/// output flows again.
struct Sink {
    lines: SyncSender<String>,
    dropped: Arc<AtomicUsize>,
    /// Lines handed over and not yet written (for `flush_sinks`).
    pending: Arc<AtomicUsize>,
}

/// The sinks, set once by `start_sinks`. Globals, like stdout and stderr
/// themselves: every thread logs, and passing a handle to each would say
/// nothing more. A `OnceLock` is a global that is set once, at run time,
/// and only read after that: no lock is needed to read it.
static LOG: OnceLock<Sink> = OnceLock::new();
static CONSOLE: OnceLock<Sink> = OnceLock::new();
static TRANSCRIPT: OnceLock<Sink> = OnceLock::new();

impl Sink {
    /// Starts a sink whose thread hands each line to `show`.
    fn start(name: &str, mut show: impl FnMut(&str) + Send + 'static) -> Sink {
        let (lines, queued) = mpsc::sync_channel::<String>(SINK_QUEUE);
        let (dropped, pending) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let sink = Sink { lines, dropped: Arc::clone(&dropped), pending: Arc::clone(&pending) };
        // Spawn: the sink's thread, for the life of the process. If it cannot
        // start, lines simply pile up to SINK_QUEUE and are then dropped.
        let _ = spawn(name, None, move || {
            for line in queued {
                let missed = dropped.swap(0, Ordering::Relaxed);
                if missed > 0 {
                    show(&format!("({missed} lines dropped: the output was not being read)"));
                }
                show(&line);
                pending.fetch_sub(1, Ordering::SeqCst);
            }
        });
        sink
    }

    fn write(&self, line: String) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.lines.try_send(line).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the sinks. In the console's line editor, the console's output and
/// a log bound for the same terminal are printed above the command being
/// typed (the log dimmed: it is for when something goes wrong); otherwise
/// they go to stdout and stderr as they are. A write that fails (a closed
/// stderr) is not an error: there is nowhere left to report it.
fn start_sinks(screen: &Arc<Screen>, transcript: Option<&str>) -> Result<(), String> {
    let (console, log) = (Arc::clone(screen), Arc::clone(screen));
    let console_out = move |line: &str| console.print(line.trim_end_matches('\n'));
    let _ = CONSOLE.set(Sink::start("console-out", console_out));
    let log_here = screen.editing() && io::stderr().is_terminal();
    let _ = LOG.set(Sink::start("log", move |line| match log_here {
        true => log.print(&format!("\x1b[2m{line}\x1b[0m")),
        false => drop(io::stderr().write_all(format!("{line}\n").as_bytes())),
    }));
    let Some(path) = transcript else { return Ok(()) };
    let file = OpenOptions::new().create(true).append(true).open(path);
    let mut file = file.map_err(|e| format!("cannot open the transcript {path}: {e}"))?;
    let (path, mut reported) = (path.to_string(), false);
    // Each line in one write, unbuffered: it is on disk as soon as written.
    let _ = TRANSCRIPT.set(Sink::start("transcript", move |line| {
        match file.write_all(format!("{line}\n").as_bytes()) {
            Err(e) if !reported => {
                say(format!("! cannot write the transcript {path}: {e}; the room goes on"));
                reported = true;
            }
            _ => {}
        }
    }));
    Ok(())
}

/// A line for the log (stderr): connections, joins, errors.
fn log(line: String) {
    if let Some(sink) = LOG.get() {
        sink.write(line);
    }
}

/// A line for the console (stdout).
fn say(line: String) {
    if let Some(sink) = CONSOLE.get() {
        sink.write(line);
    }
}

/// Waits (briefly) until every sink has written what it holds, before the
/// process exits.
fn flush_sinks() {
    let deadline = Instant::now() + Duration::from_secs(1);
    let busy =
        |sink: &OnceLock<Sink>| sink.get().is_some_and(|s| s.pending.load(Ordering::SeqCst) > 0);
    while [&LOG, &CONSOLE, &TRANSCRIPT].into_iter().any(busy) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// The room as the teacher sees it, and where students find it
// ---------------------------------------------------------------------------

impl Room {
    /// Shows a public line (chat, a join, a leave, a `/say`) on the console,
    /// as `HH:MM line`, and in the transcript, as `YYYY-MM-DD HH:MM:SS line`.
    /// Private messages never come here.
    fn show(&self, line: &str) {
        let since_1970 = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let now = since_1970.as_secs() as i64 + self.utc_offset;
        let line = line.trim_end();
        say(format!("{} {line}", protocol::clock(now)));
        if let Some(transcript) = TRANSCRIPT.get() {
            transcript.write(format!("{} {line}", protocol::date_time(now)));
        }
    }
}

/// This machine's offset from UTC in seconds, from `date +%z` (`+0100`): std
/// knows no time zones. 0 (UTC) where `date` cannot tell, on Windows say.
fn utc_offset() -> i64 {
    let text = client::output_of("date", &["+%z"]).unwrap_or_default();
    // `+HHMM` or `-HHMM`; what does not parse counts as 0.
    let number = |at: usize| text.get(at..at + 2).and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
    let sign = if text.starts_with('-') { -1 } else { 1 };
    sign * (number(1) * 3600 + number(3) * 60)
}

/// How students reach a server listening on every interface: this machine's
/// addresses, as `hostname -I` lists them (Linux, with no network traffic),
/// or where to find them.
fn where_to_join(port: u16) -> String {
    let text = client::output_of("hostname", &["-I"]).unwrap_or_default();
    let join = "students join with: chatroom client --host";
    let ipv4 = text.split_whitespace().filter(|address| !address.contains(':'));
    let lines: Vec<String> =
        ipv4.map(|address| format!("{join} {address} --port {port}")).collect();
    if lines.is_empty() {
        let find = "'ip addr' on Linux, 'ifconfig' on macOS, 'ipconfig' on Windows";
        return format!("students join with this machine's address ({find}) and port {port}");
    }
    lines.join("\n")
}

// ---------------------------------------------------------------------------
// The broker's rounds, and starting threads
// ---------------------------------------------------------------------------

/// The most events the broker handles in one round besides the first.
///
/// A round: an event, then those that arrived meanwhile, then each user's
/// lines go to their outbox together (`Room::end_round`). Sending each line
/// on its own would wake a writer thread for every line; rounds made
/// `fanout 100x100` 5.2 times faster, `fanout 1000x10` 53 times. Bounded so
/// that the first event of a round never waits long for its lines to leave:
/// 64 broadcasts to 1,000 users take about a millisecond.
const ROUND_EVENTS: usize = 64;

/// Starts a named thread (the names show in debuggers and `top -H`), with a
/// small stack if `stack` says so.
fn spawn(
    name: &str,
    stack: Option<usize>,
    work: impl FnOnce() + Send + 'static,
) -> Result<(), String> {
    let mut builder = thread::Builder::new().name(name.into());
    if let Some(bytes) = stack {
        builder = builder.stack_size(bytes);
    }
    match builder.spawn(work) {
        Ok(_) => Ok(()), // not joined: each thread ends on its own
        Err(e) => Err(format!("cannot start the {name} thread: {e}")),
    }
}
