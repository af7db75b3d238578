//! The server: accepts connections and runs the one shared room (report §3.1,
//! §4.1, §5).
//!
//! The report's server listens on a TCP socket and starts a thread for each
//! client. This one does the same, and adds what a room shared by a whole
//! class needs: one order of messages for everyone, and no way for one client
//! to stall or exhaust the others.
//!
//! Six kinds of thread:
//! - the **accept loop** (the main thread, [`run`]): takes each new connection
//!   and hands it to the starter;
//! - the **starter** ([`run_starter`]): starts a reader for each connection;
//! - the **console** ([`run_console`]): reads the teacher's commands from the
//!   server's stdin and turns them into events too;
//! - one **reader** per connection ([`read_connection`]): asks for a name, then
//!   turns every line the client sends into an [`Event`] for the broker;
//! - one **writer** per connection ([`write_outbox`]): the only code that
//!   writes to that socket, fed by the connection's **outbox**;
//! - one **broker** ([`run_broker`]): owns the room (who is online, and each
//!   one's outbox), hears every event on one channel, and decides who gets what.
//!
//! A message travels: client → reader → `Event` → broker → each outbox →
//! each writer → each client.
//!
//! NOTE: two threads per connection is the report's own design and easy to
//! follow, but each delivered line wakes a writer thread, and each user costs
//! two thread stacks. Measured here (README, "Performance"), a few thousand
//! users is its comfortable limit on two cores. Serving more would take a
//! few threads watching many nonblocking sockets, which needs `epoll` or
//! similar from outside the standard library: an exercise.
//!
//! Not here: how lines are read, cleaned and worded (see `protocol.rs`).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufReader, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::{self, Command, ConsoleCommand, Line, MAX_LINE_BYTES, TokenBucket};

/// How the server was asked to run (`chatroom server --help`).
pub struct Config {
    pub host: String,
    pub port: u16,
    /// Connections held at once, named or not; one more gets `! server full`.
    pub max_clients: usize,
    /// How long a new connection has to send an acceptable name.
    pub name_timeout: Duration,
    /// Lines per second each user may send (flood control); 0: no limit.
    pub max_line_rate: u32,
}

/// How many lines a user may send at once before flood control slows them
/// to `--max-line-rate`: a pasted block of this many lines goes through
/// unhurried. At the default rate of 20 lines/s, a bot running flat out adds
/// 20 lines/s to each screen, readable, and (at ~60 bytes a line) about
/// 1 KiB/s to each outbox, far below OUTBOX_BYTES for anyone still reading.
const FLOOD_BURST: u32 = 100;

/// After `/quit` on the console, how long the server waits for the writers
/// to deliver everyone's last lines before it exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long the accept loop rests after `accept` fails. The usual cause is
/// running out of file descriptors, and then `accept` fails again at once
/// until some connection closes: without a pause the loop would spin a core
/// at 100% doing nothing. A tenth of a second is short enough that nobody
/// notices the wait once descriptors are free again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The stack of each reader and writer thread. Their deepest call is a
/// `format!` or a log line, a few KiB at most; 64 KiB leaves a wide margin.
/// The default (2 MiB) would be reserved, not used, but naming a small size
/// says how little a connection needs and keeps address space for thousands
/// of connections on small machines.
const CONNECTION_STACK_BYTES: usize = 64 * 1024;

/// The read buffer of each connection. One line is at most
/// [`MAX_LINE_BYTES`], so a buffer of that size reads a typical line in one
/// system call; the 8 KiB default would only multiply idle memory by eight.
const READ_BUFFER_BYTES: usize = MAX_LINE_BYTES;

/// How many events may wait for the broker. When it is full, readers wait
/// before reading more, so TCP itself slows the senders down. Bounded so that
/// a burst from many clients cannot grow the server's memory without limit.
const EVENT_QUEUE: usize = 4096;

/// The most events the broker handles in one round before it sends out what
/// the round produced. Under load, events queue up while the broker works;
/// taking several per round means each writer is woken once for all of
/// them. Bounded so that the first event of a round never waits long for
/// its lines to leave: 64 broadcasts to 1,000 users take about a millisecond.
const ROUND_EVENTS: usize = 64;

/// How many bytes may wait in one user's outbox before the user counts as
/// *slow* and is disconnected.
///
/// A reader that is merely busy drains its outbox every time its writer gets
/// the CPU; one that stopped reading never does. The kernel already buffers
/// up to a few MiB per socket before a write blocks, so this queue only fills
/// once that is full too. 256 KiB is about 6,000 ordinary chat lines, more
/// than any burst a person or the benchmark produces, and it is the bound:
/// the server's memory for queued lines is at most `max_clients` times this
/// (256 MiB at the default 1,000, reached only if every user stops reading
/// while being sent private messages; a broadcast line is stored once,
/// however many outboxes hold it).
const OUTBOX_BYTES: usize = 256 * 1024;

/// What one queued line costs against [`OUTBOX_BYTES`] besides its text: the
/// pointer to the shared line and the channel's slot for it. Counting it
/// keeps the bound honest for floods of tiny lines.
const QUEUED_LINE_OVERHEAD: usize = 32;

/// The most lines one batch of the writer gathers into a single `write`.
/// Linux accepts up to 1024 pieces in one vectored write; fewer keeps the
/// writer's list of pieces small.
const WRITE_BATCH_LINES: usize = 256;

/// How long a write may block before the connection is given up. A client
/// that has not taken a single byte for this long has stopped reading (its
/// machine slept, its program hung). Without this, a writer that is still
/// flushing to such a client after it left would wait forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the broker hears. Readers send these over one channel, so the
/// broker sees the events of all connections in one order, and that order is
/// the order in which everyone sees the messages.
enum Event {
    /// A connection sent a valid name and asks to join. `reply` gets `true`
    /// if it joined, `false` if the name is taken (the broker has already
    /// told the user why, through `outbox`).
    Join {
        id: u64,
        name: String,
        peer: SocketAddr,
        outbox: Outbox,
        socket: Arc<TcpStream>,
        reply: Sender<bool>,
    },
    /// A joined user's line, already understood.
    Command { id: u64, command: Command },
    /// A joined user's connection ended without `/quit` (end of input, reset,
    /// error). `Command::Quit` is the polite way out.
    Leave { id: u64 },
    /// `/say`, `/who` or `/kick` from the console; `reply` gets the line to
    /// print there.
    Console {
        command: ConsoleCommand,
        reply: Sender<String>,
    },
    /// `/quit` from the console: say goodbye to everyone, let them all go,
    /// and stop. `done` gets a weak handle on every user's socket, so that
    /// the console can wait for each to be closed.
    Shutdown { done: Sender<Vec<Weak<TcpStream>>> },
}

/// The sending end of one user's outbox: the queue of lines waiting for that
/// user's writer. Lines travel in batches (`Vec`s): the broker sends each
/// user at most one batch per round (see `run_broker`), so a busy room wakes
/// each writer once for many lines instead of once per line.
///
/// Lifecycle: created by the reader when the connection starts. The reader
/// uses it during the name handshake, hands a clone to the broker when the
/// user joins, and drops its own; from then on the broker holds the only one.
/// When the broker drops it (the user left, or was cut off), the writer
/// finishes what is queued and closes the connection.
///
/// Why not `mpsc::sync_channel(n)`: it bounds *lines*, not bytes, and it
/// allocates all `n` slots up front for every connection, idle or not. An
/// unbounded channel plus a byte counter bounds the memory that matters and
/// costs nothing while the outbox is empty.
#[derive(Clone)]
struct Outbox {
    lines: Sender<Vec<Arc<str>>>,
    /// Bytes queued and not yet written, counted with [`queued_cost`]. The
    /// sender adds, the writer subtracts after each write.
    queued: Arc<AtomicUsize>,
}

/// Why a line could not be queued.
enum Refused {
    /// More than [`OUTBOX_BYTES`] waiting: the user stopped reading.
    Full,
    /// The writer has ended (the connection broke); the reader will report it.
    Closed,
}

fn queued_cost(line: &str) -> usize {
    line.len() + QUEUED_LINE_OVERHEAD
}

impl Outbox {
    /// Counts `line` against the outbox's bound, or refuses it, never waiting.
    ///
    /// This is the heart of "one slow client never stalls the room": every
    /// line for a user is admitted here first, so the worst a stalled user can
    /// cause is their own disconnection. A blocking send (a `sync_channel`
    /// that waits when full) would make the broker, and with it everyone,
    /// wait for the slowest reader.
    fn reserve(&self, line: &str) -> Result<(), Refused> {
        let cost = queued_cost(line);
        if self.queued.load(Ordering::Relaxed) + cost > OUTBOX_BYTES {
            return Err(Refused::Full);
        }
        self.queued.fetch_add(cost, Ordering::Relaxed);
        Ok(())
    }

    /// Hands lines already reserved to the writer.
    fn send(&self, batch: Vec<Arc<str>>) -> Result<(), Refused> {
        self.lines.send(batch).map_err(|_| Refused::Closed)
    }

    /// Reserves and sends one line only this user sees (the handshake's).
    fn send_own(&self, line: String) -> Result<(), Refused> {
        self.reserve(&line)?;
        self.send(vec![Arc::from(line)])
    }
}

/// Binds, prints `listening on IP:PORT`, starts the broker and runs the accept
/// loop (report §3.1). Returns only if the server cannot start.
pub fn run(config: Config) -> Result<(), String> {
    let addr = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    // The first line on stdout, pinned: scripts and tests read the real port
    // from it when started with `--port 0`.
    println!("listening on {local}");

    // The events channel. Every reader holds a clone of `events`; the broker
    // holds `inbox`. Bounded (see EVENT_QUEUE): a reader that finds it full
    // waits, which is fine, because the broker never waits on a reader.
    let (events, inbox) = mpsc::sync_channel::<Event>(EVENT_QUEUE);
    // Spawn: the broker. Its JoinHandle is not kept: the broker runs as long
    // as the process.
    thread::Builder::new()
        .name("broker".into())
        .spawn(move || run_broker(inbox))
        .map_err(|e| format!("cannot start the broker thread: {e}"))?;
    // Spawn: the console. Not joined: it ends the process on `/quit`, or
    // ends alone at the end of stdin, leaving the server running.
    let console_events = events.clone();
    thread::Builder::new()
        .name("console".into())
        .spawn(move || run_console(console_events))
        .map_err(|e| format!("cannot start the console thread: {e}"))?;

    // The arrivals channel: the accept loop sends each new connection, the
    // starter (below) receives it and starts its reader.
    let (arrivals, arrived) = mpsc::channel();
    let (name_timeout, rate) = (config.name_timeout, config.max_line_rate);
    // Spawn: the starter. It runs as long as the accept loop holds `arrivals`.
    thread::Builder::new()
        .name("starter".into())
        .spawn(move || run_starter(arrived, events, name_timeout, rate))
        .map_err(|e| format!("cannot start the starter thread: {e}"))?;

    // Connections open now, named or not. The accept loop adds one; each
    // reader subtracts its own when it ends (see ConnectionSlot).
    let open = Arc::new(AtomicUsize::new(0));
    // Each connection gets a number of its own, and events carry it rather
    // than the user's name: a name is free again once its owner leaves, and
    // a late event from the old connection must not be taken for the new
    // owner's.
    let mut next_id: u64 = 0;
    loop {
        // One connection's trouble never ends this loop (report §5): log it,
        // pause if it was `accept` itself, carry on.
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("accept failed: {e}; pausing");
                thread::sleep(ACCEPT_ERROR_PAUSE);
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= config.max_clients {
            eprintln!("{peer} refused: server full");
            // The socket is new, so its send buffer is empty and this short
            // write cannot block the accept loop.
            let _ = (&stream).write_all(protocol::server_full(config.max_clients).as_bytes());
            continue; // dropping `stream` closes it
        }
        next_id += 1;
        let slot = ConnectionSlot::take(&open);
        // Hand the connection to the starter and accept the next one at once.
        if arrivals.send((stream, peer, next_id, slot)).is_err() {
            return Err("the starter thread has ended".into());
        }
    }
}

/// The starter: starts a reader thread for each connection the accept loop
/// hands it.
///
/// Why not start the reader in the accept loop: starting a thread takes
/// about 40 µs here, far longer under load, and while the accept loop is
/// busy, new connections wait in the kernel's queue, which std makes 128
/// long. When a whole class connects at once that queue overflows, and each
/// connection that does not fit is retried by the client's kernel only a
/// second later. Here they wait in a channel instead, which holds them all
/// (at most `--max-clients`: the accept loop counted them).
fn run_starter(
    arrived: Receiver<(TcpStream, SocketAddr, u64, ConnectionSlot)>,
    events: SyncSender<Event>,
    name_timeout: Duration,
    rate: u32,
) {
    for (stream, peer, id, slot) in arrived {
        let events = events.clone();
        // Spawn: a reader, one per connection.
        let spawned = thread::Builder::new()
            .name(format!("reader-{id}"))
            .stack_size(CONNECTION_STACK_BYTES)
            .spawn(move || {
                if let Err(e) = read_connection(id, stream, peer, events, name_timeout, rate) {
                    eprintln!("{peer} error: {e}");
                }
                // Free the place first, then say so: whoever reads this line
                // in the log can count on the place being free.
                drop(slot);
                eprintln!("{peer} closed");
            });
        if let Err(e) = spawned {
            // Out of threads or memory: this connection is dropped (its
            // socket and slot were moved into the closure and are freed).
            eprintln!("{peer} dropped: cannot start a thread: {e}");
        }
    }
}

/// One place in the `--max-clients` count, given back when dropped. The
/// reader's thread holds it, so the place is freed however the reader ends
/// (even by a panic, which unwinds and drops it).
struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionSlot {
    fn take(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        ConnectionSlot(Arc::clone(open))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The reader: one connection from its first byte to its last (report §3.1:
/// "a separate thread to handle that client").
///
/// It writes nothing itself: everything for this client goes through the
/// outbox to the writer, so there is only ever one writer per socket (two
/// writers could interleave their bytes mid-line).
fn read_connection(
    id: u64,
    stream: TcpStream,
    peer: SocketAddr,
    events: SyncSender<Event>,
    name_timeout: Duration,
    max_line_rate: u32,
) -> io::Result<()> {
    eprintln!("{peer} connected");
    // Small chat lines must leave at once, not wait for Nagle's algorithm to
    // gather more (that wait is up to 40 ms with delayed ACKs). The writer
    // does its own gathering, see write_outbox.
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    // One socket, shared: reading, writing and shutting down all work on
    // `&TcpStream`, so the reader, the writer and the broker each hold an
    // `Arc` of it instead of duplicating the file descriptor. It closes when
    // the last of the three lets go.
    let socket = Arc::new(stream);

    let (lines, outbox_lines) = mpsc::channel::<Vec<Arc<str>>>();
    let outbox = Outbox {
        lines,
        queued: Arc::new(AtomicUsize::new(0)),
    };
    let queued = Arc::clone(&outbox.queued);
    let writer_socket = Arc::clone(&socket);
    // Set by the writer when it ends: the connection is over, and the reader
    // must stop too. (Its shutdown alone is not enough: Linux still lets the
    // reader read whatever the client keeps sending after it.)
    let closed = Arc::new(AtomicBool::new(false));
    let writer_closed = Arc::clone(&closed);
    // Spawn: the writer of this connection. It ends when every Outbox sender
    // is gone; not joined, it cleans up after itself.
    thread::Builder::new()
        .name(format!("writer-{id}"))
        .stack_size(CONNECTION_STACK_BYTES)
        .spawn(move || {
            write_outbox(&writer_socket, outbox_lines, &queued);
            writer_closed.store(true, Ordering::SeqCst);
        })?;

    let mut input = BufReader::with_capacity(
        READ_BUFFER_BYTES,
        DeadlineReader {
            socket: Arc::clone(&socket),
            deadline: Some(Instant::now() + name_timeout),
        },
    );
    let mut buf = Vec::new(); // grows to the longest line read, at most MAX_LINE_BYTES + 1

    // The handshake: the greeting, then names until one is accepted. Until it
    // is, nothing this connection sends reaches anyone else.
    if outbox.send_own(protocol::greeting()).is_err() {
        return Ok(());
    }
    loop {
        let refusal = match protocol::read_line_limited(&mut input, MAX_LINE_BYTES, &mut buf) {
            Ok(None) => {
                eprintln!("{peer} left before choosing a name");
                return Ok(());
            }
            Err(e) if is_timeout(&e) => {
                eprintln!("{peer} closed: no name within {}s", name_timeout.as_secs());
                // Say why before closing: the writer sends it, then closes
                // when `outbox` is dropped on return.
                let _ = outbox.send_own(protocol::name_deadline(name_timeout.as_secs()));
                return Ok(());
            }
            Err(e) => return Err(e),
            Ok(Some(Line::TooLong)) => protocol::line_too_long(),
            Ok(Some(Line::Text(text))) => {
                let name = protocol::sanitize(&text);
                match protocol::validate_name(&name) {
                    Err(why) => protocol::name_refused(&why),
                    Ok(()) => {
                        // Only the broker knows who is online, so only it can
                        // say whether the name is free. It answers at once.
                        let (reply, answer) = mpsc::channel();
                        let join = Event::Join {
                            id,
                            name,
                            peer,
                            outbox: outbox.clone(),
                            socket: Arc::clone(&socket),
                            reply,
                        };
                        if events.send(join).is_err() {
                            return Ok(()); // the broker is gone: shutting down
                        }
                        match answer.recv() {
                            Ok(true) => break,
                            // Taken: the broker has said so; ask again.
                            Ok(false) => continue,
                            Err(_) => return Ok(()),
                        }
                    }
                }
            }
        };
        // A client that keeps sending bad names without reading the answers
        // fills its outbox; it is not worth waiting for.
        if outbox.send_own(refusal).is_err() {
            return Ok(());
        }
    }
    // Joined. The broker now holds this user's outbox; dropping ours leaves it
    // the only sender, so that when the broker lets the user go, the writer
    // sees the outbox close and ends the connection.
    drop(outbox);
    // Chat users may sit silent for hours: no deadline from here on.
    input.get_mut().deadline = None;
    socket.set_read_timeout(None)?;

    // Flood control: every line takes a token, and when none is left the
    // reader waits before reading on. Nothing is lost and nobody is cut off:
    // the flooder's own TCP connection fills up and slows the flooder down,
    // while everyone else's lines flow as before.
    let mut bucket =
        (max_line_rate > 0).then(|| TokenBucket::new(max_line_rate, FLOOD_BURST, Instant::now()));
    loop {
        if let Some(bucket) = &mut bucket {
            thread::sleep(bucket.take(Instant::now()));
        }
        if closed.load(Ordering::SeqCst) {
            // The writer has ended: removed by the broker (a kick, a slow
            // reader) or a failed write. Leave, in case the broker does not
            // know yet; it ignores a leave for someone already gone.
            let _ = events.send(Event::Leave { id });
            return Ok(());
        }
        let event = match protocol::read_line_limited(&mut input, MAX_LINE_BYTES, &mut buf) {
            Ok(Some(Line::TooLong)) => Event::Command {
                id,
                command: Command::Refused(protocol::line_too_long()),
            },
            Ok(Some(Line::Text(text))) => match protocol::parse_command(&protocol::sanitize(&text))
            {
                None => continue, // an empty line says nothing
                Some(command) => Event::Command { id, command },
            },
            Ok(None) => Event::Leave { id },
            Err(e) => {
                eprintln!("{peer} read error: {e}");
                Event::Leave { id }
            }
        };
        let last = matches!(
            event,
            Event::Leave { .. }
                | Event::Command {
                    command: Command::Quit,
                    ..
                }
        );
        if events.send(event).is_err() || last {
            return Ok(());
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    // A read timeout is `WouldBlock` on Unix and `TimedOut` on Windows.
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A socket whose reads fail with `TimedOut` once `deadline` has passed.
///
/// Why not a plain read timeout: it restarts with every byte, so a client
/// sending one byte every 29 seconds would never meet a 30-second timeout and
/// would hold its connection slot forever without ever choosing a name.
struct DeadlineReader {
    socket: Arc<TcpStream>,
    deadline: Option<Instant>,
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.socket.set_read_timeout(Some(left))?;
        }
        (&*self.socket).read(buf)
    }
}

/// The writer: the only code that writes to one connection's socket.
///
/// It waits for one batch, then takes every other batch already queued (up
/// to [`WRITE_BATCH_LINES`] lines) and writes them all with one vectored
/// write. Lines queued together leave together in one packet, and a lone
/// line leaves at once. One `write` per line would cost a system call and a packet per line
/// (on loopback the packet rate, not bandwidth, is the limit); Nagle's
/// algorithm would gather lines too, but by holding a lone one back for up
/// to 40 ms. Batching here gets the gathering without the wait.
///
/// Ends when the outbox closes (the broker let the user go) or a write fails;
/// either way it then shuts the socket down, which also wakes the reader.
fn write_outbox(socket: &TcpStream, lines: Receiver<Vec<Arc<str>>>, queued: &AtomicUsize) {
    while let Ok(mut batch) = lines.recv() {
        while batch.len() < WRITE_BATCH_LINES {
            match lines.try_recv() {
                Ok(more) => batch.extend(more),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let written = write_lines(socket, &batch);
        let cost: usize = batch.iter().map(|line| queued_cost(line)).sum();
        queued.fetch_sub(cost, Ordering::Relaxed);
        if written.is_err() {
            break; // the reader sees the shutdown below and reports the leave
        }
    }
    let _ = socket.shutdown(Shutdown::Both);
}

/// Writes all of `batch` with as few system calls as the socket allows.
/// `writev` gathers the lines straight from their shared buffers: nothing is
/// copied into a batch buffer first.
fn write_lines(mut socket: &TcpStream, batch: &[Arc<str>]) -> io::Result<()> {
    let mut slices: Vec<IoSlice> = batch.iter().map(|l| IoSlice::new(l.as_bytes())).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match socket.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
    /// Lines for this user gathered during the broker's current round, sent
    /// to the outbox as one batch when the round ends.
    pending: Vec<Arc<str>>,
}

/// The room: who is online. Owned by the broker thread alone, so it needs no
/// lock (and not `Mutex<Vec<TcpStream>>`: a lock held while writing to one
/// stalled socket would freeze every other client).
#[derive(Default)]
struct Room {
    users: HashMap<u64, User>,
    /// Folded name (see `protocol::fold_name`) to id: finds `/msg` targets,
    /// keeps names unique, and, being sorted, gives `/who` its order.
    by_name: BTreeMap<String, u64>,
    /// Users with `pending` lines in this round.
    dirty: Vec<u64>,
    /// Users whose outbox was full during a delivery; cut off once the
    /// delivery is done (removing them mid-loop would disturb the loop).
    too_slow: Vec<u64>,
}

/// The broker: the one thread that owns the room (report §3.1: the server
/// "manages the communication" among clients). Runs until the console's
/// `/quit`; otherwise for ever, as the accept loop always holds a sender.
fn run_broker(inbox: Receiver<Event>) {
    let mut room = Room::default();
    // A round: wait for one event, then take whatever else is already waiting
    // (up to ROUND_EVENTS), then send every user their lines as one batch.
    // When the room is quiet a round is one event, and nothing waits.
    while let Ok(first) = inbox.recv() {
        let more = inbox.try_iter().take(ROUND_EVENTS - 1);
        let mut open = true;
        for event in std::iter::once(first).chain(more) {
            open = room.handle(event);
            if !open {
                break;
            }
        }
        room.cut_off_slow_users();
        room.flush();
        if !open {
            // Shut down: dropping `inbox` makes every reader's next send fail,
            // and each reader then ends its connection.
            return;
        }
    }
}

impl Room {
    /// Acts on one event. `false` once the server is shutting down.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Join {
                id,
                name,
                peer,
                outbox,
                socket,
                reply,
            } => {
                let joined = self.join(id, name, outbox, socket, peer);
                // The reader waits for this answer; if it is gone already,
                // there is nobody to tell.
                let _ = reply.send(joined);
            }
            Event::Command { id, command } => self.command(id, command),
            Event::Leave { id } => {
                self.leave(id, None);
            }
            Event::Console { command, reply } => {
                let _ = reply.send(self.console(command));
            }
            Event::Shutdown { done } => {
                self.broadcast(protocol::shutting_down(), None);
                let ids: Vec<u64> = self.users.keys().copied().collect();
                let mut sockets = Vec::new();
                for id in ids {
                    if let Some(mut user) = self.users.remove(&id) {
                        // Last lines to the writer; the outbox closes with
                        // `user`, and the writer then closes the connection.
                        let _ = user.outbox.send(std::mem::take(&mut user.pending));
                        sockets.push(Arc::downgrade(&user.socket));
                    }
                }
                self.by_name.clear();
                let _ = done.send(sockets);
                return false;
            }
        }
        true
    }

    /// The teacher's `/say`, `/who` and `/kick`; returns what the console
    /// prints.
    fn console(&mut self, command: ConsoleCommand) -> String {
        match command {
            ConsoleCommand::Say(text) => {
                self.broadcast(protocol::from_server(&text), None);
                protocol::notice(&format!("said to {} user(s)", self.users.len()))
            }
            ConsoleCommand::Who => protocol::online(self.names()),
            ConsoleCommand::Kick { name, reason } => {
                let Some(&id) = self.by_name.get(&protocol::fold_name(&name)) else {
                    return protocol::no_such_user(&name);
                };
                self.send(id, protocol::removed(&reason));
                self.leave(id, Some("removed by the server"));
                protocol::notice(&format!("removed {name}"))
            }
            // Answered by the console thread itself; never sent here.
            ConsoleCommand::Quit | ConsoleCommand::Help | ConsoleCommand::Refused(_) => {
                String::new()
            }
        }
    }

    fn join(
        &mut self,
        id: u64,
        name: String,
        outbox: Outbox,
        socket: Arc<TcpStream>,
        peer: SocketAddr,
    ) -> bool {
        let folded = protocol::fold_name(&name);
        if self.by_name.contains_key(&folded) {
            let _ = outbox.send_own(protocol::name_taken(&name));
            return false;
        }
        eprintln!("{peer} joined as {name}");
        // `by_name` and `users` always change together, in `join` and
        // `leave`: every id in one is a key of the other, so the indexing
        // below and in `names` cannot fail.
        self.by_name.insert(folded, id);
        let joined = protocol::joined(&name);
        let user = User {
            name,
            outbox,
            socket,
            pending: Vec::new(),
        };
        self.users.insert(id, user);
        let welcome = protocol::welcome(&self.users[&id].name, self.names());
        // The welcome is the newcomer's first line after the name: the
        // client takes it as the sign that the name was accepted.
        self.send(id, welcome);
        self.broadcast(joined, Some(id));
        true
    }

    /// The names online, sorted case-insensitively.
    fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.by_name.values().map(|id| self.users[id].name.as_str())
    }

    fn command(&mut self, id: u64, command: Command) {
        // A command from a reader whose user was already cut off: ignore it.
        let Some(user) = self.users.get(&id) else {
            return;
        };
        match command {
            Command::Say(text) => {
                let line = protocol::chat(&user.name, &text);
                self.broadcast(line, Some(id));
            }
            Command::Who => self.send(id, protocol::online(self.names())),
            Command::Msg { to, text } => {
                let line = match self.by_name.get(&protocol::fold_name(&to)) {
                    Some(&to_id) => {
                        self.send(to_id, protocol::private(&user.name, &text));
                        return;
                    }
                    None => protocol::no_such_user(&to),
                };
                self.send(id, line);
            }
            Command::Help => self.send(id, protocol::help()),
            Command::Refused(line) => self.send(id, line),
            Command::Quit => {
                let bye = protocol::bye(&user.name);
                self.send(id, bye);
                self.leave(id, None);
            }
        }
    }

    /// Takes a user out of the room and tells everyone else. Their last
    /// lines (a `* bye`, say) go to the writer now; dropping the outbox (with
    /// the returned `User`) then lets the writer finish and close.
    fn leave(&mut self, id: u64, why: Option<&str>) -> Option<User> {
        let mut user = self.users.remove(&id)?;
        let _ = user.outbox.send(std::mem::take(&mut user.pending));
        self.by_name.remove(&protocol::fold_name(&user.name));
        match why {
            Some(why) => eprintln!("{} left ({why})", user.name),
            None => eprintln!("{} left", user.name),
        }
        self.broadcast(protocol::left(&user.name, why), None);
        Some(user)
    }

    /// Queues one line for one user.
    fn send(&mut self, id: u64, line: String) {
        if let Some(user) = self.users.get_mut(&id) {
            queue_line(
                id,
                user,
                &Arc::from(line),
                &mut self.dirty,
                &mut self.too_slow,
            );
        }
    }

    /// Queues one line for everyone but `except`. The line is built once and
    /// shared: each outbox holds a pointer to it, not a copy.
    fn broadcast(&mut self, line: String, except: Option<u64>) {
        let line: Arc<str> = Arc::from(line);
        for (&id, user) in &mut self.users {
            if Some(id) != except {
                queue_line(id, user, &line, &mut self.dirty, &mut self.too_slow);
            }
        }
    }

    /// The end of a round: every user with lines gets them as one batch.
    fn flush(&mut self) {
        for id in self.dirty.drain(..) {
            if let Some(user) = self.users.get_mut(&id) {
                // `Closed` needs nothing: that user's reader will send a Leave.
                let _ = user.outbox.send(std::mem::take(&mut user.pending));
            }
        }
    }

    /// Disconnects every user whose outbox overflowed. Telling the others
    /// may overflow more outboxes, hence the loop until none is left.
    fn cut_off_slow_users(&mut self) {
        while let Some(id) = self.too_slow.pop() {
            if let Some(user) = self.leave(id, Some("too slow: stopped reading")) {
                // Wakes their writer if it is blocked in a write, and their
                // reader too; both then end on their own.
                let _ = user.socket.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Adds `line` to a user's batch for this round, or marks them too slow if
/// their outbox is full. (A free function, not a `Room` method, so that
/// `broadcast` can call it while it walks the users.)
fn queue_line(
    id: u64,
    user: &mut User,
    line: &Arc<str>,
    dirty: &mut Vec<u64>,
    too_slow: &mut Vec<u64>,
) {
    match user.outbox.reserve(line) {
        Ok(()) => {
            if user.pending.is_empty() {
                dirty.push(id);
            }
            user.pending.push(Arc::clone(line));
        }
        Err(_) => too_slow.push(id),
    }
}

/// The console: the teacher's commands, typed on the server's stdin.
///
/// It holds no state of its own: `/say`, `/who` and `/kick` go to the broker
/// as events, like everything else that touches the room, and the broker's
/// answer is printed on stdout. End of stdin (a server started with no
/// terminal: a test, `nohup`, a service) ends this thread and nothing else.
fn run_console(events: SyncSender<Event>) {
    let stdin = io::stdin();
    let mut keyboard = stdin.lock();
    let mut buf = Vec::new();
    let print = |text: &str| {
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    loop {
        let line = match protocol::read_line_limited(&mut keyboard, MAX_LINE_BYTES, &mut buf) {
            Ok(Some(Line::Text(line))) => protocol::sanitize(&line),
            Ok(Some(Line::TooLong)) => {
                print(&protocol::line_too_long());
                continue;
            }
            Ok(None) | Err(_) => return, // no console; the server goes on
        };
        let Some(command) = protocol::parse_console(&line) else {
            continue;
        };
        match command {
            ConsoleCommand::Help => print(&protocol::console_help()),
            ConsoleCommand::Refused(error) => print(&error),
            ConsoleCommand::Quit => shut_down(&events),
            command => {
                let (reply, answer) = mpsc::channel();
                if events.send(Event::Console { command, reply }).is_err() {
                    return;
                }
                if let Ok(text) = answer.recv() {
                    print(&text);
                }
            }
        }
    }
}

/// `/quit` on the console: the broker says goodbye to everyone and lets them
/// go; then wait (at most SHUTDOWN_GRACE) until every writer has delivered
/// its last lines and every connection is closed, and exit 0.
fn shut_down(events: &SyncSender<Event>) {
    eprintln!("shutting down");
    let (done, sockets) = mpsc::channel();
    let sockets = match events.send(Event::Shutdown { done }) {
        Ok(()) => sockets.recv().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    // A connection is closed once its reader and writer have both let go of
    // it (the broker already has). Polling is fine here: it happens once.
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while sockets.iter().any(|s| s.strong_count() > 0) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    eprintln!("stopped");
    std::process::exit(0);
}
