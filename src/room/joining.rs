//! What a newcomer goes through between arriving and joining, beyond the
//! report (whose server takes any first line as a name): a name the rules
//! allow (`names.rs`) that nobody online has, chosen within a deadline, and
//! then the last public lines said before they came (the history).
//!
//! Part of `room.rs` (its child module, so it sees the room's own fields),
//! kept apart because the report's design has none of it.
//!
//! Not here: what a name may be (`names.rs`), the words (`protocol.rs`).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Room, Settings};
use crate::names;
use crate::output;
use crate::protocol::{self, Leave};

/// The room's state for newcomers.
pub struct Joining {
    name_timeout: Duration,
    /// Each connection's deadline to choose a name by, oldest first. One
    /// that has chosen stays until its deadline comes, and is then passed
    /// over: taking it out at once would mean a search.
    deadlines: VecDeque<(Instant, u64)>,
    /// How many connections from each address are choosing a name now.
    choosing: HashMap<IpAddr, usize>,
    /// Keys of names removed with `/kick`, kept out until the instant given.
    pub removed: HashMap<String, Instant>,
    /// The last public lines, for newcomers, at most `history_size`.
    history: VecDeque<Arc<[u8]>>,
    history_size: usize,
}

impl Joining {
    /// No newcomers yet, and nothing said.
    pub fn new(settings: &Settings) -> Joining {
        let (deadlines, choosing, removed, history) = Default::default();
        let (name_timeout, history_size) = (settings.name_timeout, settings.history);
        Joining { name_timeout, deadlines, choosing, removed, history, history_size }
    }

    /// How long until the next name deadline; a long time if there is none.
    pub fn time_to_next_deadline(&self) -> Duration {
        let next = self.deadlines.front().map(|&(at, _)| at);
        next.map_or(Duration::MAX, |at| at.saturating_duration_since(Instant::now()))
    }

    /// One connection from `ip` no longer chooses a name: it chose one, or
    /// left.
    pub fn stopped_choosing(&mut self, ip: IpAddr) {
        if let Some(count) = self.choosing.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.choosing.remove(&ip);
            }
        }
    }
}

impl Room {
    /// Gives connection `id` from `peer` its deadline to choose a name by.
    /// If as many from its address are choosing a name as may be
    /// (`Limits::choosing_per_address`), the oldest of them is closed first;
    /// one from an address banned as it arrived is closed at once.
    pub(super) fn start_choosing(&mut self, id: u64, peer: SocketAddr) {
        let ip = peer.ip();
        let choosing = self.joining.choosing.entry(ip).or_default();
        *choosing += 1;
        if self.limits.is_banned(ip) {
            self.post(id, protocol::BANNED);
            return self.leave(id, Leave::Removed("banned".into()));
        }
        if *choosing > self.limits.choosing_per_address() {
            let oldest = self.joining.deadlines.iter().map(|&(_, id)| id).find(|id| {
                self.members.get(id).is_some_and(|m| m.name.is_none() && m.peer.ip() == ip)
            });
            if let Some(oldest) = oldest {
                let newer = "newer connections from its address wait to choose a name";
                output::log(format!("{} closed: {newer}", self.members[&oldest].peer));
                self.post(oldest, protocol::NAME_CROWDED);
                self.leave(oldest, Leave::Lost);
            }
        }
        self.joining.deadlines.push_back((Instant::now() + self.joining.name_timeout, id));
    }

    /// Closes every connection whose time to choose a name is up. (A plain
    /// read timeout would restart with every byte: a client sending one
    /// byte every 29 seconds would hold its place for ever.)
    pub(super) fn close_late_names(&mut self) {
        let now = Instant::now();
        while let Some(&(at, id)) = self.joining.deadlines.front() {
            if at > now {
                return;
            }
            self.joining.deadlines.pop_front();
            let Some(member) = self.members.get(&id).filter(|m| m.name.is_none()) else {
                continue; // named, or gone
            };
            let seconds = self.joining.name_timeout.as_secs();
            output::log(format!("{} closed: no name within {seconds}s", member.peer));
            self.post(id, protocol::name_deadline(seconds));
            self.leave(id, Leave::Lost);
        }
    }

    /// Whether `name` may join: its key (`names::check`), if the rules allow
    /// it, nobody online reads the same, and the teacher has not removed it
    /// lately; or the `! ` line saying why not.
    pub(super) fn check_name(&mut self, name: &str) -> Result<String, String> {
        let key = names::check(name).map_err(|why| protocol::name_refused(&why))?;
        if self.by_key.contains_key(&key) {
            return Err(protocol::name_taken(name));
        }
        let now = Instant::now();
        self.joining.removed.retain(|_, until| *until > now);
        if self.joining.removed.contains_key(&key) {
            return Err(protocol::name_removed(name));
        }
        Ok(key)
    }

    /// Connection `id` has chosen its name: it no longer counts as choosing
    /// one, pays for its join and leave notices, and is sent what was said
    /// before it came (before its welcome).
    pub(super) fn joined(&mut self, id: u64) {
        let Some(member) = self.members.get(&id) else { return };
        self.joining.stopped_choosing(member.peer.ip());
        self.limits.charge_notices(id, member.peer.ip());
        for line in self.joining.history.clone() {
            if let Some(member) = self.members.get_mut(&id) {
                super::queue(&mut self.due, id, member, line);
            }
        }
    }

    /// Keeps a public line for newcomers (`--history`): at most that many
    /// lines, each at most about 3 KB, stored once.
    pub(super) fn remember(&mut self, line: &str) {
        let history = &mut self.joining.history;
        history.push_back(Arc::from(protocol::earlier(line).into_bytes()));
        if history.len() > self.joining.history_size {
            history.pop_front();
        }
    }
}
