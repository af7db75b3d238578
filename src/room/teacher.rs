//! What the teacher's console commands do to the room: `/say`, `/who`,
//! `/kick`, `/ban` and `/quit` (beyond the report, which describes no
//! console). Part of `room.rs` (its child module, so it sees the room's own
//! fields), kept apart because the report's design has none of it.
//!
//! Not here: reading the commands (`console.rs`).

use std::net::IpAddr;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use super::Room;
use crate::names;
use crate::output;
use crate::protocol::{self, Leave};

/// A command typed on the teacher's console, for the broker to carry out.
pub enum Order {
    /// `/say TEXT`: a notice to everyone.
    Say(String),
    /// `/who`: each user with their number and address.
    Who,
    /// `/kick NAME [REASON]`, or `/kick NUMBER [REASON]`.
    Kick { who: String, reason: String },
    /// `/ban ADDRESS [MINUTES]`: everyone there removed, and kept out.
    Ban { ip: IpAddr, minutes: u64 },
    /// `/quit` on the console, or Ctrl-C there: the server stops.
    Quit,
}

/// How long `/kick` keeps the name out: long enough that a script cannot
/// come straight back under it, short enough that a mistake mends itself.
const REMOVAL_KEEPS_NAME: Duration = Duration::from_secs(10 * 60);

/// After `/quit`, how long the server waits for the writers to deliver
/// everyone's last lines before it exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

impl Room {
    /// Carries out a teacher's order; `Break` once the server is stopping.
    pub(super) fn obey(&mut self, order: Order) -> ControlFlow<()> {
        match order {
            Order::Say(text) => self.announce(&text),
            Order::Who => output::print(self.list_users()),
            Order::Kick { who, reason } => self.kick(&who, reason),
            Order::Ban { ip, minutes } => self.ban(ip, minutes),
            Order::Quit => {
                self.shut_down();
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// `/say TEXT`: a notice to everyone.
    fn announce(&mut self, text: &str) {
        let line = protocol::from_server(text);
        self.remember(&line);
        self.broadcast(line, None);
        output::print(protocol::notice(&format!("said to {} user(s)", self.by_key.len())));
    }

    /// `/who` on the console: the users in `/who`'s order, each with the
    /// number `/kick` takes (a name may be hard to type) and their address,
    /// in columns (the name last: its width varies).
    fn list_users(&self) -> String {
        let mut list = protocol::online(self.names());
        for (&id, member) in self.by_order.values().filter_map(|id| self.members.get_key_value(id))
        {
            let name = member.name.as_deref().unwrap_or_default();
            let ip = member.peer.ip();
            list.push_str(&protocol::notice(&format!("  {id:>6}  {ip:<15}  {name}")));
        }
        list
    }

    /// `/kick NAME [REASON]` or `/kick NUMBER [REASON]`: the user is told
    /// why, and removed; their name is kept out for [`REMOVAL_KEEPS_NAME`].
    fn kick(&mut self, who: &str, reason: String) {
        let number = who.parse::<u64>().ok().filter(|id| self.name_of(*id).is_some());
        let Some(id) = number.or_else(|| self.by_key.get(&names::key(who)).copied()) else {
            return output::print(protocol::no_such_user(who));
        };
        let name = self.name_of(id).unwrap_or(who).to_string();
        self.joining.removed.insert(names::key(&name), Instant::now() + REMOVAL_KEEPS_NAME);
        self.post(id, protocol::removed(&reason));
        self.leave(id, Leave::Removed(reason));
        output::print(protocol::notice(&format!("removed {name}")));
    }

    /// `/ban ADDRESS [MINUTES]`: everyone from `ip` is removed, and the
    /// address kept out that long (on a shared machine, that is everyone
    /// on it).
    fn ban(&mut self, ip: IpAddr, minutes: u64) {
        self.limits.ban(ip, Instant::now() + Duration::from_secs(minutes * 60));
        let there: Vec<u64> =
            self.members.iter().filter(|(_, m)| m.peer.ip() == ip).map(|(&id, _)| id).collect();
        for id in there {
            self.post(id, protocol::removed("your address is banned"));
            self.leave(id, Leave::Removed("banned".into()));
        }
        output::print(protocol::notice(&format!("banned {ip} for {minutes} min")));
    }

    /// Says goodbye to everyone, lets every connection go with its last
    /// lines, and waits (a little) for them to be delivered.
    fn shut_down(&mut self) {
        output::log("shutting down".into());
        self.broadcast(protocol::SHUTTING_DOWN.into(), None);
        let ids: Vec<u64> = self.members.keys().copied().collect();
        ids.into_iter().for_each(|id| self.leave(id, Leave::Shutdown));
        self.limits.wait_for_all_to_close(SHUTDOWN_GRACE);
    }
}
