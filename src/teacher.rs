//! What the teacher's console commands do to the room: `/say`, `/who`,
//! `/kick` and `/ban` (beyond the report, which describes no console).
//! Part of `room.rs` (its child module, so it sees the room's own fields),
//! kept apart because the report's design has none of it.
//!
//! Not here: reading the commands (`console.rs`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::Room;
use crate::names;
use crate::output;
use crate::protocol::{self, Leave};

/// How long `/kick` keeps the name out: long enough that a script cannot
/// come straight back under it, short enough that a mistake mends itself.
const REMOVAL_KEEPS_NAME: Duration = Duration::from_secs(10 * 60);

impl Room {
    /// `/say TEXT` on the console: a notice to everyone.
    pub(super) fn announce(&mut self, text: &str) {
        let line = protocol::from_server(text);
        self.remember(&line);
        self.broadcast(line, None);
        output::console(protocol::notice(&format!("said to {} user(s)", self.by_name.len())));
    }

    /// `/who` on the console: the users in `/who`'s order, each with the
    /// number `/kick` takes (a name may be hard to type) and their address,
    /// in columns (the name last: its width varies).
    pub(super) fn list_users(&self) -> String {
        let mut list = protocol::online(self.names());
        for (&id, member) in self.in_order.values().filter_map(|id| self.members.get_key_value(id))
        {
            let name = member.name.as_deref().unwrap_or_default();
            let ip = member.peer.ip();
            list.push_str(&protocol::notice(&format!("  {id:>6}  {ip:<15}  {name}")));
        }
        list
    }

    /// `/kick NAME [REASON]` or `/kick NUMBER [REASON]`: the user is told
    /// why, and removed; their name is kept out for [`REMOVAL_KEEPS_NAME`].
    pub(super) fn kick(&mut self, name: &str, reason: String) {
        let number = name.parse::<u64>().ok().filter(|id| self.name_of(*id).is_some());
        let Some(id) = number.or_else(|| self.by_name.get(&names::key(name)).copied()) else {
            return output::console(protocol::no_such_user(name));
        };
        let name = self.name_of(id).unwrap_or(name).to_string();
        self.removed.insert(names::key(&name), Instant::now() + REMOVAL_KEEPS_NAME);
        self.post(id, protocol::removed(&reason));
        self.leave(id, Leave::Removed(reason));
        output::console(protocol::notice(&format!("removed {name}")));
    }

    /// `/ban ADDRESS [MINUTES]`: everyone from `ip` is removed, and the
    /// address kept out that long (on a shared machine, that is everyone
    /// on it).
    pub(super) fn ban(&mut self, ip: IpAddr, minutes: u64) {
        self.limits.ban(ip, Instant::now() + Duration::from_secs(minutes * 60));
        let there: Vec<u64> =
            self.members.iter().filter(|(_, m)| m.peer.ip() == ip).map(|(&id, _)| id).collect();
        for id in there {
            self.post(id, protocol::removed("your address is banned"));
            self.leave(id, Leave::Removed("banned".into()));
        }
        output::console(protocol::notice(&format!("banned {ip} for {minutes} min")));
    }
}
