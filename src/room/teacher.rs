//! What the teacher's console commands do to the room: `/say`, `/msg`,
//! `/who`, `/kick`, `/ban`, `/unban`, `/bans` and `/quit` (beyond the
//! report, which describes no console). Part of `room.rs` (its child
//! module, so it sees the room's own fields), kept apart because the
//! report's design has none of it.
//!
//! Not here: reading the commands (`console.rs`).

use std::net::IpAddr;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use super::Room;
use crate::names;
use crate::output;
use crate::protocol::{self, Leave, error, notice};

/// A command typed on the teacher's console, for the broker to carry out.
pub enum Order {
    /// `/say TEXT`: a notice to everyone.
    Say(String),
    /// `/msg NAME TEXT`: a notice to one user alone.
    Msg { to: String, text: String },
    /// `/who`: each user with their number and address.
    Who,
    /// `/kick NAME [REASON]`, or `/kick NUMBER [REASON]`.
    Kick { who: String, reason: String },
    /// `/ban ADDRESS [MINUTES]`, or `/ban NUMBER [MINUTES]` (a connection's
    /// number, as `/who` shows it): everyone there removed, and kept out.
    Ban { who: String, minutes: u64 },
    /// `/unban ADDRESS`: let in again.
    Unban(IpAddr),
    /// `/bans`: the addresses kept out.
    Bans,
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
            Order::Msg { to, text } => self.tell(&to, &text),
            Order::Who => output::print(self.list_users()),
            Order::Kick { who, reason } => self.kick(&who, reason),
            Order::Ban { who, minutes } => self.ban(&who, minutes),
            Order::Unban(ip) => output::print(match self.limits.unban(ip.to_canonical()) {
                true => notice(&format!("{ip} may come in again")),
                false => error(&format!("{ip} is not banned")),
            }),
            Order::Bans => output::print(self.list_bans()),
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
        output::print(notice(&format!("said to {} user(s)", self.by_key.len())));
    }

    /// `/msg NAME TEXT` on the console: to that user alone.
    fn tell(&mut self, to: &str, text: &str) {
        let Some(id) = self.find(to) else { return };
        self.post(id, protocol::from_server_privately(text));
        output::print(protocol::private_sent(to, text));
    }

    /// The user `/kick` or `/msg` means by `who`: the number `/who` shows,
    /// or that name, exactly or in another case (`BOB` for `bob`). A name
    /// that only looks the same (`ɑlice` for `alice`) is not taken for it:
    /// the console says whose it is, and how to aim at them.
    fn find(&self, who: &str) -> Option<u64> {
        if let Some(id) = who.parse().ok().filter(|id| self.name_of(*id).is_some()) {
            return Some(id);
        }
        let found = self.by_key.get(&names::key(who)).copied();
        match found.map(|id| (id, self.name_of(id).unwrap_or_default())) {
            Some((id, name)) if names::sort_key(name) == names::sort_key(who) => return Some(id),
            Some((id, name)) => output::print(error(&format!(
                "no user named {who}, but {name} (number {id}) reads the same: use the number"
            ))),
            None => output::print(protocol::no_such_user(who)),
        }
        None
    }

    /// `/who` on the console: the users in `/who`'s order, each with the
    /// number `/kick` and `/ban` take (a name may be hard to type) and their
    /// address, in columns (the name last: its width varies).
    fn list_users(&self) -> String {
        let mut list = protocol::online(self.names());
        for (&id, member) in self.by_order.values().filter_map(|id| self.members.get_key_value(id))
        {
            let name = member.name.as_deref().unwrap_or_default();
            let ip = member.peer.ip();
            list.push_str(&notice(&format!("  {id:>6}  {ip:<15}  {name}")));
        }
        list
    }

    /// `/kick NAME [REASON]` or `/kick NUMBER [REASON]`: the user is told
    /// why, and removed; their name is kept out for [`REMOVAL_KEEPS_NAME`].
    fn kick(&mut self, who: &str, reason: String) {
        let Some(id) = self.find(who) else { return };
        let name = self.name_of(id).unwrap_or(who).to_string();
        self.joining.removed.insert(names::key(&name), Instant::now() + REMOVAL_KEEPS_NAME);
        self.post(id, protocol::removed(&reason));
        self.leave(id, Leave::Removed(reason));
        output::print(notice(&format!("removed {name}")));
    }

    /// `/ban ADDRESS [MINUTES]` or `/ban NUMBER [MINUTES]`: every
    /// connection from that address is closed, named or not, and the
    /// address kept out that long. On a shared machine that is everyone on
    /// it: the console says whom it removed.
    fn ban(&mut self, who: &str, minutes: u64) {
        let member = who.parse().ok().and_then(|id| self.members.get(&id));
        let ip = match (member, who.parse::<IpAddr>()) {
            (Some(member), _) => member.peer.ip(),
            (None, Ok(ip)) => ip.to_canonical(),
            (None, Err(_)) => {
                return output::print(error(&format!("no connection numbered {who}")));
            }
        };
        let waiting = self.limits.ban(ip, Instant::now() + Duration::from_secs(minutes * 60));
        let there: Vec<u64> =
            self.members.iter().filter(|(_, m)| m.peer.ip() == ip).map(|(&id, _)| id).collect();
        let mut named = Vec::new();
        for &id in &there {
            named.extend(self.name_of(id).map(str::to_string));
            self.post(id, protocol::removed("your address is banned"));
            self.leave(id, Leave::Removed("banned".into()));
        }
        named.sort();
        let others = there.len() - named.len() + waiting;
        let also = if others > 0 { format!(", and {others} without a name") } else { "".into() };
        let removed = format!("removed {} user(s) ({}){also}", named.len(), named.join(", "));
        output::print(notice(&format!("banned {ip} for {minutes} min: {removed}")));
    }

    /// `/bans`: the addresses kept out, each with the minutes left.
    fn list_bans(&self) -> String {
        let bans = self.limits.bans();
        let each = bans
            .iter()
            .map(|(ip, left)| format!("{ip} ({} min left)", left.as_secs().div_ceil(60)));
        notice(&format!("banned ({}): {}", bans.len(), each.collect::<Vec<_>>().join(", ")))
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
