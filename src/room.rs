//! The room and its broker: the one thread that owns who is online and
//! decides who gets which line. The report says only that the server
//! "manages the communication" among the clients (§3.1) and that everyone
//! shares one chatroom (§2); this file is how this server does it.
//!
//! Everything that touches the room arrives as an [`Event`] on one channel:
//! a connection that arrived, a line a reader read, a reader or writer that
//! ended, a teacher's command. The broker handles them one at a time, so
//! the order it hears them in is the order everyone sees them in, and the
//! room needs no lock.
//!
//! Why not the common way, the clients' sockets in a list behind a lock,
//! each reader writing every line to each socket in turn while holding it:
//! one client that stops reading blocks that write, the lock stays held,
//! and the whole room freezes. Here the broker never writes to a socket: it
//! puts lines into each user's outbox, and each user's writer sends them
//! (`outbox.rs`).
//!
//! Not here: reading lines (`server.rs`), the words (`protocol.rs`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::time::{Duration, Instant};

use crate::limits::{Cost, Limits};
use crate::names;
use crate::outbox::{self, Outbox};
use crate::output;
use crate::protocol::{self, Command, Leave, Line};

// Beyond the report: what the teacher's console commands do to the room, in
// a file beside this one (a child module: it sees the room's own fields).
#[path = "teacher.rs"]
mod teacher;

/// Everything the broker hears, from every reader, every writer and the
/// console, on one channel.
pub enum Event {
    /// A new connection, from its reader: the broker gives it an outbox and
    /// a writer, and asks for a name. The writer holds `alive` and drops it
    /// when it ends, which tells the reader the connection is over.
    Arrived { id: u64, peer: SocketAddr, socket: Arc<TcpStream>, alive: Sender<()> },
    /// A line the connection's reader read and cleaned: a name, until one
    /// is taken; then a chat line or a command.
    Said { id: u64, line: Line },
    /// The connection's reader or writer ended, and why.
    Ended { id: u64, why: Leave },
    /// Beyond the report, the teacher's console: `/say TEXT`.
    Announce(String),
    /// `/who` on the console: each user with their number and address.
    ListUsers,
    /// `/kick NAME [REASON]`, or `/kick NUMBER [REASON]`.
    Kick { name: String, reason: String },
    /// `/ban ADDRESS [MINUTES]`: everyone there removed, and kept out.
    Ban { ip: IpAddr, minutes: u64 },
    /// `/quit` on the console, or Ctrl-C there.
    Shutdown,
}

/// One connection, as the broker holds it.
struct Member {
    /// `None` while the connection is still choosing a name; then the name
    /// as they typed it, shown on every line they send.
    name: Option<String>,
    peer: SocketAddr,
    /// Their lines to come. Dropping it lets their writer finish and close.
    outbox: Outbox,
    /// Lines for them from this round, not yet in the outbox (see
    /// [`Room::end_round`]).
    pending: Vec<Arc<str>>,
}

/// How the room was asked to run (`chatroom server --help`).
pub struct Settings {
    /// How long a new connection has to choose a name.
    pub name_timeout: Duration,
    /// How many public lines a newcomer is shown after the welcome.
    pub history: usize,
    /// Lines per second each address may send (flood control); 0: no limit.
    pub rate: u32,
}

/// The room: every connection, named or not. Owned by the broker alone.
pub struct Room {
    members: HashMap<u64, Member>,
    /// Name key (`names::key`) to id: finds `/msg` targets and
    /// keeps names unique. Every id in it is a key of `members`.
    by_name: HashMap<String, u64>,
    /// The same ids by their names in lower case: `/who`'s order. (The
    /// folded form also folds look-alikes, `1` with `l`: no order to read.)
    in_order: BTreeMap<String, u64>,
    /// Connections still choosing a name, with their deadlines, oldest first.
    choosing: VecDeque<(Instant, u64)>,
    /// Beyond the report: the last public lines, for newcomers.
    history: VecDeque<Arc<str>>,
    /// Folded names removed with `/kick`, kept out until the instant given.
    removed: HashMap<String, Instant>,
    /// Connection limits: `/ban` adds to them.
    limits: Arc<Limits>,
    settings: Settings,
    /// Given to each writer, to tell the broker when it ends.
    events: SyncSender<Event>,
    /// Each writer holds a clone; see [`run_broker`].
    done: Sender<()>,
}

/// The most events the broker handles in one round besides the first: then
/// each user's lines go to their outbox (`end_round`), waking each writer
/// once for many lines. Bounded, so that the first event's lines never wait
/// long: 128 events are enough to batch a busy room, and quick to handle.
const ROUND_EVENTS: usize = 128;

/// The broker: handles every event until the console's `/quit`, then
/// returns, dropping the room and its `done` sender: once every writer has
/// ended too, `server::run` hears `done` close, every last line out.
pub fn run_broker(inbox: Receiver<Event>, mut room: Room) {
    loop {
        let wait = room.next_deadline().map(|at| at.saturating_duration_since(Instant::now()));
        // `None`: a name deadline passed. (The channel cannot close: the
        // room itself holds a sender.)
        let first = inbox.recv_timeout(wait.unwrap_or(Duration::MAX)).ok();
        let mut flow = first.map_or(ControlFlow::Continue(()), |event| room.handle(event));
        let mut more = inbox.try_iter().take(ROUND_EVENTS);
        while flow.is_continue() {
            let Some(event) = more.next() else { break };
            flow = room.handle(event);
        }
        room.close_late_names(Instant::now());
        room.end_round();
        if flow.is_break() {
            return;
        }
    }
}

impl Room {
    /// An empty room.
    pub fn new(
        settings: Settings,
        limits: Arc<Limits>,
        events: SyncSender<Event>,
        done: Sender<()>,
    ) -> Room {
        let (members, by_name, in_order, choosing, history, removed) = Default::default();
        Room {
            members,
            by_name,
            in_order,
            choosing,
            history,
            removed,
            limits,
            settings,
            events,
            done,
        }
    }

    /// Acts on one event; `Break` once the server is shutting down.
    fn handle(&mut self, event: Event) -> ControlFlow<()> {
        match event {
            Event::Arrived { id, peer, socket, alive } => self.arrive(id, peer, socket, alive),
            Event::Said { id, line: Line::TooLong } => self.post(id, protocol::line_too_long()),
            Event::Said { id, line: Line::Text(text) } => match self.name_of(id) {
                None => self.try_name(id, text),
                Some(_) => self.command(id, protocol::parse_command(&text)),
            },
            Event::Ended { id, why } => self.leave(id, why),
            Event::Announce(text) => self.announce(&text),
            Event::ListUsers => output::console(self.list_users()),
            Event::Kick { name, reason } => self.kick(&name, reason),
            Event::Ban { ip, minutes } => self.ban(ip, minutes),
            Event::Shutdown => {
                self.shut_down();
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// A new connection: its outbox and writer, the greeting, and a deadline
    /// to choose a name by (report §6: once connected, the client asks for a
    /// name; here the server's greeting asks, and the client shows it).
    fn arrive(&mut self, id: u64, peer: SocketAddr, socket: Arc<TcpStream>, alive: Sender<()>) {
        let (events, done) = (self.events.clone(), self.done.clone());
        // Held by the writer, with `done` and `alive`, all dropped when it
        // ends; called when it ends with why the user must leave.
        let ended = move |why| {
            let _ = events.send(Event::Ended { id, why });
            drop((done, alive));
        };
        let max_wait = (self.settings.rate > 0).then_some(outbox::STALL);
        let outbox = match outbox::start_writer(id, socket, max_wait, ended) {
            Ok(outbox) => outbox,
            Err(e) => return output::log(format!("{peer} dropped: {e}")),
        };
        self.make_way(peer.ip());
        let member = Member { name: None, peer, outbox, pending: Vec::new() };
        self.members.insert(id, member);
        self.choosing.push_back((Instant::now() + self.settings.name_timeout, id));
        self.post(id, protocol::greeting());
    }

    /// The name of connection `id`, if it has chosen one.
    fn name_of(&self, id: u64) -> Option<&str> {
        self.members.get(&id)?.name.as_deref()
    }

    /// A line from a connection still choosing its name: the name, if it is
    /// a valid one nobody online has; otherwise the `! ` line saying why not.
    fn try_name(&mut self, id: u64, text: String) {
        let name = text.trim().to_string();
        let folded = names::key(&name);
        if let Err(why) = names::check(&name) {
            self.post(id, protocol::name_refused(&why));
        } else if self.by_name.contains_key(&folded) {
            self.post(id, protocol::name_taken(&name));
        } else if self.removed.get(&folded).is_some_and(|&until| until > Instant::now()) {
            self.post(id, protocol::name_removed(&name));
        } else if let Some(member) = self.members.get_mut(&id) {
            output::log(format!("{} joined as {name}", member.peer));
            member.name = Some(name.clone());
            self.by_name.insert(folded, id);
            self.in_order.insert(names::sort_key(&name), id);
            self.choosing.retain(|&(_, waiting)| waiting != id);
            // The history first, then the welcome: the client takes the
            // welcome as the sign that the name was accepted, and sends the
            // lines typed meanwhile after it, below the history.
            let mut lines: Vec<Arc<str>> = self.history.iter().cloned().collect();
            lines.push(Arc::from(protocol::welcome(&name, self.names())));
            if let Some(member) = self.members.get_mut(&id) {
                member.pending.extend(lines);
            }
            self.broadcast(protocol::joined(&name), Some(id));
        }
    }

    /// The names online, in `/who`'s order. (Every id in `in_order` is a key
    /// of `members`, with a name: they change together.)
    fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.in_order.values().map(|id| self.name_of(*id).unwrap_or_default())
    }

    /// A joined user's line: a chat line goes to everyone else (report §2:
    /// "several users talk to one another in one shared chatroom"), a
    /// command is answered. An empty line says nothing.
    fn command(&mut self, id: u64, command: Option<Command>) {
        let Some(name) = self.name_of(id).map(str::to_string) else { return };
        match command {
            None => {}
            Some(Command::Chat(text)) => {
                let line = protocol::chat(&name, &text);
                self.remember(&line);
                self.broadcast(line, Some(id));
            }
            Some(Command::Msg { to, text }) => match self.by_name.get(&names::key(&to)) {
                Some(&to_id) => {
                    let to_name = self.name_of(to_id).unwrap_or(&to).to_string();
                    self.post(to_id, protocol::private(&name, &text));
                    self.post(id, protocol::private_sent(&to_name, &text));
                }
                None => self.answer(id, protocol::no_such_user(&to)),
            },
            Some(Command::Who) => self.answer(id, protocol::online(self.names())),
            Some(Command::Help) => self.answer(id, protocol::help()),
            Some(Command::Refused(line)) => self.answer(id, line),
            Some(Command::Quit) => {
                self.post(id, protocol::bye(&name));
                self.leave(id, Leave::Quit);
            }
        }
    }

    /// Takes a connection out of the room and, if it had joined, tells
    /// everyone else. Its last lines go to its outbox (unless it is too slow
    /// to take them), which is then dropped: the writer sends what is queued
    /// and closes the connection.
    fn leave(&mut self, id: u64, why: Leave) {
        let Some(mut member) = self.members.remove(&id) else {
            return; // already gone: the reader's end after a kick, say
        };
        // `std::mem::take`: the lines, leaving an empty list in their place.
        let _ = member.outbox.send(std::mem::take(&mut member.pending));
        let Some(name) = member.name else { return };
        self.by_name.remove(&names::key(&name));
        self.in_order.remove(&names::sort_key(&name));
        if let Some(left) = protocol::left(&name, &why) {
            output::log(format!("{} {}", member.peer, left.trim_start_matches("* ").trim_end()));
            self.broadcast(left, None);
        }
    }

    /// One line for one connection, in this round.
    fn post(&mut self, id: u64, line: String) {
        if let Some(member) = self.members.get_mut(&id) {
            member.pending.push(Arc::from(line));
        }
    }

    /// A private answer (`/who`, `/help`, an error) for connection `id`,
    /// which costs its address flood control's allowance by its size, a
    /// line a KiB: a `/who` of a full room is 100 KB, and asking for it
    /// again and again must not cost less than sending that much. A long
    /// answer for one who has not yet waited off the last is a short refusal
    /// instead: requests already read cannot pile answers up in memory
    /// faster than they are paid for.
    fn answer(&mut self, id: u64, mut line: String) {
        let Some(member) = self.members.get(&id) else { return };
        if line.len() > protocol::MAX_LINE_BYTES && self.limits.owes(id) {
            line = protocol::asked_too_often();
        }
        let kib = line.len() as f64 / 1024.0;
        let _ = self.limits.charge(id, member.peer.ip(), Cost { lines: kib, kib });
        self.post(id, line);
    }

    /// One line for every joined user but `except`. It is made once and
    /// shared: each holds a pointer to it (an `Arc`), not a copy. Beyond the
    /// report, the teacher's console and the transcript show it too.
    fn broadcast(&mut self, line: String, except: Option<u64>) {
        output::room(&line);
        let line: Arc<str> = Arc::from(line);
        for (&id, member) in &mut self.members {
            if member.name.is_some() && Some(id) != except {
                member.pending.push(Arc::clone(&line));
            }
        }
    }

    /// The end of a round: each member's lines go to their outbox. Anyone
    /// whose outbox is full has stopped reading and leaves, which tells the
    /// others: hence the loop.
    fn end_round(&mut self) {
        loop {
            let mut too_slow = Vec::new();
            for (&id, member) in self.members.iter_mut() {
                let batch = std::mem::take(&mut member.pending);
                if !batch.is_empty() && member.outbox.send(batch).is_err() {
                    let when = if member.name.is_some() { "" } else { " before choosing a name" };
                    output::log(format!("{} stopped reading{when}", member.peer));
                    too_slow.push(id);
                }
            }
            if too_slow.is_empty() {
                return;
            }
            for id in too_slow {
                self.leave(id, Leave::TooSlow);
            }
        }
    }
}

// Beyond the first reading: names being chosen, the history, shutting down.

impl Room {
    /// Before a new connection from `ip`: if as many from there as may be
    /// are choosing a name (`Limits::choosing_per_address`), the oldest of
    /// them is closed.
    fn make_way(&mut self, ip: IpAddr) {
        let here = |id: &u64| self.members.get(id).is_some_and(|m| m.peer.ip() == ip);
        let choosing_here: Vec<u64> =
            self.choosing.iter().map(|&(_, id)| id).filter(here).collect();
        if choosing_here.len() >= self.limits.choosing_per_address() {
            // Never empty here: `choosing_per_address` is at least 1.
            let oldest = choosing_here[0];
            let newer = "newer connections from its address wait to choose a name";
            output::log(format!("{} closed: {newer}", self.members[&oldest].peer));
            self.post(oldest, protocol::name_crowded());
            self.leave(oldest, Leave::Lost);
        }
    }

    /// When the oldest connection still choosing a name must have one.
    fn next_deadline(&self) -> Option<Instant> {
        self.choosing.front().map(|&(at, _)| at)
    }

    /// Closes every connection whose time to choose a name is up. (A plain
    /// read timeout would restart with every byte: a client sending one
    /// byte every 29 seconds would hold its place for ever.)
    fn close_late_names(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.choosing.front() {
            if at > now {
                return;
            }
            self.choosing.pop_front();
            let seconds = self.settings.name_timeout.as_secs();
            if let Some(member) = self.members.get(&id) {
                output::log(format!("{} closed: no name within {seconds}s", member.peer));
            }
            self.post(id, protocol::name_deadline(seconds));
            self.leave(id, Leave::Lost);
        }
    }

    /// Keeps a public line for newcomers (`--history`): at most that many
    /// lines, each at most about 3 KB, stored once.
    fn remember(&mut self, line: &str) {
        self.history.push_back(Arc::from(protocol::earlier(line)));
        if self.history.len() > self.settings.history {
            self.history.pop_front();
        }
    }

    /// Says goodbye to everyone and lets every connection go: each writer
    /// delivers the last lines and closes.
    fn shut_down(&mut self) {
        output::log("shutting down".into());
        self.broadcast(protocol::shutting_down(), None);
        let ids: Vec<u64> = self.members.keys().copied().collect();
        ids.into_iter().for_each(|id| self.leave(id, Leave::Shutdown));
    }
}
