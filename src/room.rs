//! The room and its broker: the one thread that owns who is online and
//! decides who gets which line. The report says only that the server
//! "manages the communication" among the clients (§3.1) and that everyone
//! shares one chatroom (§2); this file is how this server does it.
//!
//! Everything that touches the room arrives as an [`Event`] on one channel:
//! a connection that arrived, a line a reader read, a connection that
//! ended, a command typed on the teacher's console. The broker handles them
//! one at a time, so the order it hears them in is the order everyone sees
//! them in, and the room needs no lock.
//!
//! Why not the common way, the clients' sockets in a list behind a lock,
//! each reader writing every line to each socket in turn while holding it:
//! one client that stops reading blocks that write, the lock stays held,
//! and the whole room freezes. Here the broker never writes to a socket: it
//! puts lines into each user's outbox, and each user's writer sends them
//! (`outbox.rs`).
//!
//! Not here: reading lines (`server.rs`), the words (`protocol.rs`). Beyond
//! the report, each in a file of its own: what a newcomer goes through
//! before joining (`room/joining.rs`: the name's rules and deadline, the
//! history) and the teacher's commands (`room/teacher.rs`).

mod joining;
mod teacher;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use crate::limits::Limits;
use crate::names;
use crate::outbox::Outbox;
use crate::output;
use crate::protocol::{self, Command, Leave, Line};

use joining::Joining;
pub use teacher::Order;

/// Everything the broker hears, from every reader, every writer and the
/// console, on one channel.
pub enum Event {
    /// A new connection, from its reader, with the outbox of its writer: the
    /// broker asks it for a name.
    Arrived { id: u64, peer: SocketAddr, outbox: Outbox },
    /// A line the connection's reader read and cleaned: a name, until one
    /// is taken; then a chat line or a command.
    Said { id: u64, line: Line },
    /// The connection's reader or writer ended, and why.
    Ended { id: u64, why: Leave },
    /// Beyond the report: a command typed on the teacher's console.
    Console(Order),
    /// Beyond the report: the answer to a telnet command (`telnet.rs`).
    Telnet { id: u64, answer: [u8; 3] },
}

/// One connection, as the broker holds it.
struct Member {
    /// `None` while the connection is still choosing a name; then the name
    /// as they typed it, shown on every line they send.
    name: Option<String>,
    peer: SocketAddr,
    /// Their lines to come. Dropping it lets their writer finish and close.
    outbox: Outbox,
    /// Lines for them from this round, not yet in the outbox.
    pending: Vec<Arc<[u8]>>,
}

/// The room: every connection, named or not. Owned by the broker alone.
pub struct Room {
    members: HashMap<u64, Member>,
    /// Each name's key (`names::check`: names that read alike have one) to
    /// its owner: keeps names unique, and finds `/msg`'s target.
    by_key: HashMap<String, u64>,
    /// The same owners, in `/who`'s order (`names::sort_key`).
    by_order: BTreeMap<String, u64>,
    /// The members with lines in `pending`, each once: the end of a round
    /// visits only them.
    due: Vec<u64>,
    /// Beyond the report: name deadlines and rules, and the history.
    joining: Joining,
    /// Beyond the report: flood control, and the teacher's bans.
    limits: Arc<Limits>,
}

/// The most events the broker handles in one round besides the first: then
/// each user's lines go to their outbox together (`end_round`), waking each
/// writer once for many lines. Bounded, so that the first event's lines
/// never wait long.
const ROUND_EVENTS: usize = 128;

/// The broker: handles every event, a round at a time, until the console's
/// `/quit`, then returns.
pub fn run_broker(received: Receiver<Event>, mut room: Room) {
    loop {
        // `Err`: a name deadline came first (beyond the report). The channel
        // never closes: the accept loop holds a sender for the life of the process.
        let first = received.recv_timeout(room.joining.time_to_next_deadline()).ok();
        // This event, then those already waiting (at most ROUND_EVENTS).
        for event in first.into_iter().chain(received.try_iter().take(ROUND_EVENTS)) {
            if room.handle(event).is_break() {
                return;
            }
        }
        room.end_round();
    }
}

impl Room {
    /// Acts on one event; `Break` once the server is shutting down.
    fn handle(&mut self, event: Event) -> ControlFlow<()> {
        match event {
            // Report §6: once connected, the client asks for a name; here
            // the server's greeting asks, and the client shows it.
            Event::Arrived { id, peer, outbox } => {
                self.members.insert(id, Member { name: None, peer, outbox, pending: Vec::new() });
                self.post(id, protocol::GREETING);
                self.start_choosing(id, peer); // beyond the report: a deadline
            }
            Event::Said { id, line: Line::TooLong } => self.post(id, protocol::line_too_long()),
            Event::Said { id, line: Line::Text(said) } => match self.members.get(&id) {
                Some(member) if member.name.is_none() => self.try_name(id, said),
                Some(_) => self.command(id, protocol::parse_command(&said)),
                None => {} // gone already: the line came after a kick, say
            },
            Event::Ended { id, why } => self.leave(id, why),
            Event::Console(order) => return self.obey(order),
            Event::Telnet { id, answer } => self.post(id, answer),
        }
        ControlFlow::Continue(())
    }

    /// A line from a connection still choosing its name: the name, if the
    /// rules allow it (`check_name`); otherwise the `! ` line saying why not.
    fn try_name(&mut self, id: u64, said: String) {
        let name = said.trim().to_string();
        let key = match self.check_name(&name) {
            Ok(key) => key,
            Err(refusal) => return self.post(id, refusal),
        };
        let Some(member) = self.members.get_mut(&id) else { return };
        member.name = Some(name.clone());
        output::log(format!("{} joined as {name}", member.peer));
        self.by_key.insert(key, id);
        self.by_order.insert(names::sort_key(&name), id);
        self.joined(id); // beyond the report: the deadline off, notices paid, history
        // The welcome ends the handshake: the client takes it as the sign
        // that the name was accepted.
        self.post(id, protocol::welcome(&name, self.names()));
        self.broadcast(protocol::joined(&name), Some(id));
    }

    /// A joined user's line: a chat line goes to everyone else (report §2:
    /// "several users talk to one another in one shared chatroom"), a
    /// command is answered. An empty line says nothing.
    fn command(&mut self, id: u64, command: Option<Command>) {
        let Some(name) = self.name_of(id).map(str::to_string) else { return };
        match command {
            None => {}
            Some(Command::Chat(said)) => {
                let line = protocol::chat(&name, &said);
                self.remember(&line); // beyond the report: the history
                self.broadcast(line, Some(id));
            }
            Some(Command::Msg { to, text }) => self.private(id, &name, &to, &text),
            Some(Command::Who) => self.answer(id, protocol::online(self.names())),
            Some(Command::Help) => self.answer(id, protocol::HELP.into()),
            Some(Command::Refused(line)) => self.answer(id, line),
            Some(Command::Quit) => {
                self.post(id, protocol::bye(&name));
                self.leave(id, Leave::Quit);
            }
        }
    }

    /// Takes a connection out of the room and, if it had joined, tells
    /// everyone else. Its last lines go to its outbox, which is then
    /// dropped: the writer sends them and closes the connection.
    fn leave(&mut self, id: u64, why: Leave) {
        let Some(mut member) = self.members.remove(&id) else {
            return; // already gone: the reader's end after a kick, say
        };
        let _ = member.outbox.try_send(std::mem::take(&mut member.pending));
        let Some(name) = member.name else {
            return self.joining.stopped_choosing(member.peer.ip());
        };
        self.by_key.remove(&names::key(&name));
        self.by_order.remove(&names::sort_key(&name));
        if let Some(left) = protocol::left(&name, &why) {
            output::log(format!("{} {}", member.peer, left.trim_start_matches("* ").trim_end()));
            self.broadcast(left, None);
        }
    }

    /// One line for every joined user but `except`. It is made once and
    /// shared: each holds a pointer to it (an `Arc`), not a copy. Beyond the
    /// report, the teacher's console and the transcript show it too.
    fn broadcast(&mut self, line: String, except: Option<u64>) {
        output::room(&line);
        let line: Arc<[u8]> = Arc::from(line.into_bytes());
        for (&id, member) in &mut self.members {
            if member.name.is_some() && Some(id) != except {
                queue(&mut self.due, id, member, Arc::clone(&line));
            }
        }
    }

    /// The end of a round: each member with lines waiting gets them in one
    /// batch. One whose outbox is full has stopped reading, and leaves;
    /// leaving tells the others, who are due again: hence the loop.
    fn end_round(&mut self) {
        self.close_late_names(); // beyond the report: the name deadline
        while let Some(id) = self.due.pop() {
            let Some(member) = self.members.get_mut(&id) else { continue }; // left
            if member.outbox.try_send(std::mem::take(&mut member.pending)).is_err() {
                let named = if member.name.is_some() { "" } else { " before choosing a name" };
                output::log(format!("{} stopped reading{named}", member.peer));
                self.leave(id, Leave::TooSlow);
            }
        }
    }
}

// Beyond the first reading: the room's smaller parts.

/// How the room was asked to run (`chatroom server --help`).
pub struct Settings {
    /// How long a new connection has to choose a name.
    pub name_timeout: Duration,
    /// How many public lines a newcomer is shown before the welcome.
    pub history: usize,
    /// Lines per second each address may send (flood control); 0: no limit.
    pub rate: u32,
}

/// Adds `line` to `member`'s lines for this round; a member whose list was
/// empty becomes due, once.
fn queue(due: &mut Vec<u64>, id: u64, member: &mut Member, line: Arc<[u8]>) {
    if member.pending.is_empty() {
        due.push(id);
    }
    member.pending.push(line);
}

impl Room {
    /// An empty room.
    pub fn new(settings: Settings, limits: Arc<Limits>) -> Room {
        let (members, by_key, by_order, due) = Default::default();
        Room { members, by_key, by_order, due, joining: Joining::new(&settings), limits }
    }

    /// The name of connection `id`, if it has chosen one.
    fn name_of(&self, id: u64) -> Option<&str> {
        self.members.get(&id)?.name.as_deref()
    }

    /// The names online, in `/who`'s order. (Every id in `by_order` is a
    /// key of `members`, with a name: they change together.)
    fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.by_order.values().map(|id| self.name_of(*id).unwrap_or_default())
    }

    /// One line (or a telnet answer) for one connection, in this round.
    fn post(&mut self, id: u64, line: impl Into<Vec<u8>>) {
        if let Some(member) = self.members.get_mut(&id) {
            queue(&mut self.due, id, member, Arc::from(line.into()));
        }
    }

    /// A private answer (`/who`, `/help`, an error) for connection `id`,
    /// paid for by its address's allowance (`Limits::charge_answer` decides
    /// whether it is sent, or a short refusal instead).
    fn answer(&mut self, id: u64, line: String) {
        let Some(member) = self.members.get(&id) else { return };
        let line = match self.limits.charge_answer(member.peer.ip(), line.len()) {
            Ok(()) => line,
            Err(()) => protocol::ASKED_TOO_OFTEN.into(),
        };
        self.post(id, line);
    }

    /// `/msg TO TEXT` from `name`: to its target alone, and confirmed to its
    /// sender; `TO` is found by its key, so `BOB` finds `bob`.
    fn private(&mut self, id: u64, name: &str, to: &str, text: &str) {
        let Some(&to_id) = self.by_key.get(&names::key(to)) else {
            return self.answer(id, protocol::no_such_user(to));
        };
        let to_name = self.name_of(to_id).unwrap_or(to).to_string();
        self.post(to_id, protocol::private(name, text));
        self.post(id, protocol::private_sent(&to_name, text));
    }
}
