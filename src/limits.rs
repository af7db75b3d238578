//! Limits: who may connect, and how fast each address may send (beyond the
//! report, which sets none: a server without them takes every connection and
//! relays as fast as anyone sends, as `examples/report_server.py` does, so
//! one student with a script can fill the server or flood the room).
//!
//! Limits are per IP address, not per connection: otherwise one student
//! opens a hundred connections and gets a hundred allowances. Each address
//! has a token bucket that all its connections draw on, and the whole room
//! has one more. A reader that must wait waits before reading on, so the
//! sender's own TCP connection fills and holds it back: nothing is lost,
//! nobody is cut off, and everyone else's lines flow as before.
//!
//! Shared fairly ([`fair_take`]): once a bucket is spent, each of those who
//! draw on it waits only for an equal share of its rate, so a flood from
//! some addresses, or from some connections of a shared lab machine, never
//! holds up the others.
//!
//! Not here: the name deadline (the room's), the outbox bound (`outbox.rs`).

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::outbox::STALL;

// The arithmetic of an allowance, in a file of its own (a child module).
mod bucket;
use crate::protocol::{self, Line, MAX_LINE_BYTES};
use bucket::TokenBucket;

/// How many lines one address may send at once before flood control slows it
/// to `--max-line-rate`: a pasted block of this many lines goes through
/// unhurried. Every line costs one (a name tried and a leave too: they put
/// lines on screens as well), and so does every KiB read.
pub const FLOOD_BURST: u32 = 100;

/// The room's allowance is counted in KiB put on screens, this many for
/// each line a second of `--max-line-rate`: 32 KiB a second at the default
/// rate, after a burst of 160 KiB, however many addresses send. Every user
/// receives every public line, so this is what each user's link must carry:
/// a reader on a 40 KB/s link keeps up. It also bounds the text the server
/// holds for slow readers ([`STALL`]).
pub const ROOM_KIB_PER_LINE: f64 = 1.6;

/// What a line puts on screens besides its text, at most: a name of 24
/// four-byte letters, `: ` and `\n`. A join or leave notice counts as this.
pub const LINE_OVERHEAD_BYTES: usize = 100;

/// What something costs: `lines` of its address's allowance (a line, or a
/// KiB read) and `kib` of the room's (what it puts on screens).
#[derive(Clone, Copy)]
pub struct Cost {
    pub lines: f64,
    pub kib: f64,
}

impl Cost {
    /// A line whose text is `bytes` long, for everyone, at `lines` of the
    /// address's allowance.
    fn line(lines: f64, bytes: usize) -> Cost {
        Cost { lines, kib: (bytes + LINE_OVERHEAD_BYTES) as f64 / 1024.0 }
    }

    /// What a line a reader read costs its sender: a line of allowance, and
    /// what it puts on screens. Cleaning can make a line longer than the
    /// `raw` bytes read (a byte that is not UTF-8 becomes three, U+FFFD):
    /// what it grew by costs as much as bytes read.
    pub fn of(line: &Line, raw: usize) -> Cost {
        let (bytes, grown) = match line {
            Line::Text(text) => (text.len(), text.len().saturating_sub(raw)),
            Line::TooLong => (0, 0),
        };
        Cost::line(1.0 + grown as f64 / MAX_LINE_BYTES as f64, bytes)
    }
}

/// Connection limits and flood control, shared by the accept loop and every
/// reader (each holds an `Arc`). The lock is held only to count, never
/// across a read, a write or a sleep.
pub struct Limits {
    max_clients: usize,
    max_per_address: usize,
    /// Lines per second per address; 0: flood control off.
    rate: u32,
    counts: Mutex<Counts>,
    /// Woken when the last connection closes ([`Limits::wait_for_all_to_close`]).
    all_closed: Condvar,
}

struct Counts {
    /// Connections open now, named or not.
    open: usize,
    /// Addresses with a connection open now: the room's rate is shared among
    /// them.
    addresses_open: usize,
    /// The whole room's allowance.
    room: TokenBucket,
    /// Addresses with connections open, or whose allowance is not yet full
    /// again: forgetting those would hand out a fresh burst on reconnecting.
    addresses: HashMap<IpAddr, Address>,
    /// How many addresses `addresses` may hold before the forgettable ones
    /// are forgotten: twice as many as were left last time, so that each
    /// connection's share of the work stays small however many come.
    forget_at: usize,
    /// Addresses kept out by `/ban`, until the instant given.
    banned: HashMap<IpAddr, Instant>,
    /// Each open connection's shares, by its id: of its address's
    /// allowance, and of the room's.
    shares: HashMap<u64, [TokenBucket; 2]>,
    /// Connections waiting to pay their arrival, by id, with their
    /// address: a `/ban` shuts them down, which ends their wait.
    arriving: HashMap<u64, (IpAddr, Arc<TcpStream>)>,
}

struct Address {
    open: usize,
    /// The allowance its connections draw on.
    bucket: TokenBucket,
}

/// One connection's permission to be open, given back when dropped. Its
/// reader holds it (in a [`Paced`], which pays with it for what is read),
/// so the place is freed however the reader ends (a panic too).
pub struct Permit {
    limits: Arc<Limits>,
    ip: IpAddr,
    id: u64,
}

impl Limits {
    /// Limits with nobody connected yet.
    pub fn new(max_clients: usize, max_per_address: usize, rate: u32) -> Limits {
        let (kib, burst) = (f64::from(rate) * ROOM_KIB_PER_LINE, f64::from(FLOOD_BURST));
        // Half of each burst is the group's own; the other half is its
        // members' shares ([`fair_take`]).
        let room = TokenBucket::new(kib, burst / 2.0 * ROOM_KIB_PER_LINE, Instant::now());
        let (addresses, banned, shares, arriving) = Default::default();
        let (open, addresses_open, forget_at) = (0, 0, 64);
        let counts =
            Counts { open, addresses_open, room, addresses, forget_at, banned, shares, arriving };
        let (counts, all_closed) = (Mutex::new(counts), Condvar::new());
        Limits { max_clients, max_per_address, rate, counts, all_closed }
    }

    /// The counts, locked.
    fn lock(&self) -> MutexGuard<'_, Counts> {
        // A panic while the lock was held cannot leave the counts half
        // changed (each change is one statement), so a poisoned lock is
        // still good to use.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection, number `id`, from `ip`, or says why it
    /// cannot stay: the `! ` line to send it before closing. `self:
    /// &Arc<Self>`: the permit gets a clone of the `Arc` itself.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, id: u64) -> Result<Permit, String> {
        let mut counts = self.lock();
        let now = Instant::now();
        if counts.addresses.len() >= counts.forget_at {
            counts.addresses.retain(|_, a| a.open > 0 || !a.bucket.is_full(now));
            counts.forget_at = 2 * counts.addresses.len().max(32);
        }
        if counts.banned.get(&ip).is_some_and(|until| *until > now) {
            return Err(protocol::BANNED.into());
        }
        if counts.open >= self.max_clients {
            return Err(protocol::server_full(self.max_clients));
        }
        let bucket = TokenBucket::new(f64::from(self.rate), f64::from(FLOOD_BURST) / 2.0, now);
        let address = counts.addresses.entry(ip).or_insert(Address { open: 0, bucket });
        if address.open >= self.max_per_address {
            return Err(protocol::too_many_from_address(self.max_per_address));
        }
        address.open += 1;
        counts.addresses_open += usize::from(address.open == 1);
        counts.open += 1;
        counts.shares.insert(id, [TokenBucket::empty(now), TokenBucket::empty(now)]);
        Ok(Permit { limits: Arc::clone(self), ip, id })
    }

    /// Takes `cost` for connection `id` from `ip`: from the address's
    /// allowance and the room's, each shared fairly ([`fair_take`]).
    /// Returns how long its reader must wait before handing the line on;
    /// what the broker charges (a notice) is waited off with the next line.
    fn charge(&self, id: u64, ip: IpAddr, cost: Cost) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut counts = self.lock();
        let Counts { room, addresses, shares, addresses_open, .. } = &mut *counts;
        let (Some(address), Some([of_address, of_room])) =
            (addresses.get_mut(&ip), shares.get_mut(&id))
        else {
            return Duration::ZERO;
        };
        let own = fair_take(&mut address.bucket, of_address, address.open, cost.lines, now);
        // The room's share of an address, shared again among its connections.
        let members = *addresses_open * address.open;
        own.max(fair_take(room, of_room, members, cost.kib, now))
    }

    /// Charges a newcomer's arrival, a line, to `ip`'s allowance (not to
    /// its share: that starts empty), and notes its `socket` as waiting to
    /// pay it; returns how long to wait. Not to the room's: nothing of it
    /// reaches anyone's screen before it has a name ([`Limits::charge_notices`]).
    fn charge_arrival(&self, id: u64, ip: IpAddr, socket: &Arc<TcpStream>) -> Duration {
        let (now, mut counts) = (Instant::now(), self.lock());
        let Counts { addresses, arriving, .. } = &mut *counts;
        let Some(address) = addresses.get_mut(&ip).filter(|_| self.rate > 0) else {
            return Duration::ZERO;
        };
        arriving.insert(id, (ip, Arc::clone(socket)));
        address.bucket.take_within_burst(1.0, now)
    }

    /// Charges connection `id` from `ip` for the two notices everyone is
    /// sent about it, its join now and its leave later, as for two lines.
    /// The broker calls it when a name is taken, and cannot wait: the
    /// connection waits it off with its next line.
    pub fn charge_notices(&self, id: u64, ip: IpAddr) {
        self.charge(id, ip, Cost::line(2.0, LINE_OVERHEAD_BYTES));
    }

    /// Decides whether a private answer of `bytes` (a `/who`, `/help`, an
    /// error) for a connection from `ip` is sent, and charges it to its
    /// address's allowance and the room's, a line a KiB: a `/who` of a full
    /// room is 100 KB, and asking for it again and again must cost what
    /// sending it does. `Err` for a long one while either allowance is
    /// spent: an answer is never queued while the last is not paid for, so
    /// what the server holds for anyone stays within the room's allowance.
    pub fn charge_answer(&self, ip: IpAddr, bytes: usize) -> Result<(), ()> {
        let Some(mut counts) = (self.rate > 0).then(|| self.lock()) else { return Ok(()) };
        let (now, kib) = (Instant::now(), bytes as f64 / 1024.0);
        let Counts { room, addresses, .. } = &mut *counts;
        let Some(address) = addresses.get_mut(&ip) else { return Err(()) };
        if bytes > MAX_LINE_BYTES && (room.refill(now) < 0.0 || address.bucket.refill(now) < 0.0) {
            return Err(());
        }
        room.take(kib, now);
        address.bucket.take(kib, now);
        Ok(())
    }

    /// How many connections from one address may be choosing a name at
    /// once; a new one past that closes the oldest (`room/joining.rs`).
    /// Connections with no name are not in `/who` and cannot be kicked:
    /// without this, a script reopening them as the deadline closes them
    /// keeps every place of a shared lab machine busy. An eighth of the
    /// places, 8 of the default 64, lets that many students start at once;
    /// our client, whose connection was closed this way, makes a new one
    /// when the name is typed.
    pub fn choosing_per_address(&self) -> usize {
        (self.max_per_address / 8).max(8)
    }

    /// Keeps `ip` out until `until` (`/ban`), and closes its connections
    /// still waiting to pay their arrival; returns how many.
    pub fn ban(&self, ip: IpAddr, until: Instant) -> usize {
        let mut counts = self.lock();
        counts.banned.insert(ip, until);
        let waiting: Vec<_> = counts.arriving.values().filter(|(from, _)| *from == ip).collect();
        // Shutting a socket down ends its wait (`Paced::wait`).
        waiting.iter().for_each(|(_, socket)| drop(socket.shutdown(std::net::Shutdown::Both)));
        waiting.len()
    }

    /// Lets `ip` in again (`/unban`); `false` if it was not kept out.
    pub fn unban(&self, ip: IpAddr) -> bool {
        self.lock().banned.remove(&ip).is_some()
    }

    /// The addresses kept out now, each with how long it stays out.
    pub fn bans(&self) -> Vec<(IpAddr, Duration)> {
        let (now, mut counts) = (Instant::now(), self.lock());
        counts.banned.retain(|_, until| *until > now);
        let left = |(ip, until): (&IpAddr, &Instant)| (*ip, until.duration_since(now));
        counts.banned.iter().map(left).collect()
    }

    /// Whether `ip` is kept out now.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.lock().banned.get(&ip).is_some_and(|until| *until > Instant::now())
    }

    /// Waits until every connection has closed, at most `grace`.
    pub fn wait_for_all_to_close(&self, grace: Duration) {
        let counts = self.lock();
        let _ = self.all_closed.wait_timeout_while(counts, grace, |counts| counts.open > 0);
    }
}

/// Takes `tokens` from `group`, a bucket several draw on (an address's
/// connections, or the room's addresses), for one of its `members`, whose
/// `share` it is. The burst is split in two: half is the group's, free to
/// whoever comes first, and half is shared out, each member's share
/// holding its equal part. While the group has tokens nobody waits, and
/// what a member owed ends with the flood. Once it is spent, each member
/// waits only for its own share, which fills with an equal part of the
/// group's rate: a member that floods waits long, one that sends now and
/// then has tokens of its own and waits not at all, and all of them
/// together get no more than the group's own burst and rate.
fn fair_take(
    group: &mut TokenBucket,
    share: &mut TokenBucket,
    members: usize,
    tokens: f64,
    now: Instant,
) -> Duration {
    let members = members.max(1) as f64;
    (share.per_second, share.burst) = (group.per_second / members, group.burst / members);
    share.refill(now);
    let group_wait = group.take_within_burst(tokens, now);
    if group_wait.is_zero() {
        share.tokens = share.tokens.max(0.0);
        return Duration::ZERO;
    }
    // Never longer than the group takes to refill: by then either the
    // flood is over, and what the member owed with it, or it waits again.
    share.take(tokens, now).min(group_wait)
}

impl Permit {
    /// How long a line may wait for this connection's user before they count
    /// as too slow (`outbox.rs`): with flood control on, [`STALL`]; off, as
    /// long as their outbox has room.
    pub fn max_wait(&self) -> Option<Duration> {
        (self.limits.rate > 0).then_some(STALL)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.open -= 1;
        if counts.open == 0 {
            self.limits.all_closed.notify_all();
        }
        counts.shares.remove(&self.id);
        if let Some(address) = counts.addresses.get_mut(&self.ip) {
            address.open -= 1;
            counts.addresses_open -= usize::from(address.open == 0);
        }
    }
}

/// The socket as a reader reads it: every byte read counts against the
/// sender's allowance (a KiB costs as much as a line), in a line or in one
/// that never ends, so endless bytes are paced like endless lines. Once the
/// connection is over (its writer has ended), it reads as ended: a
/// flooder's reader stops at once, and does not read on what it can no
/// longer send.
pub struct Paced {
    socket: Arc<TcpStream>,
    permit: Permit,
    /// Closes when the connection's writer ends (`outbox::start_writer`),
    /// which wakes a wait at once.
    writer_gone: Receiver<()>,
}

/// The connection is over: its client or its writer has closed it.
pub struct Over;

impl Paced {
    /// The socket, read through flood control with `permit`'s allowance
    /// until `writer_gone` closes, once its arrival, a line, is paid for
    /// from its address's allowance (not from its share, empty yet), so
    /// that connections opened in a loop come no faster than the allowance,
    /// and a newcomer waits a few seconds at most, only if its own address
    /// has spent its allowance. `Err` if the client closes meanwhile, or a
    /// `/ban` ends it.
    pub fn arrive(
        socket: Arc<TcpStream>,
        permit: Permit,
        writer_gone: Receiver<()>,
    ) -> Result<Paced, Over> {
        let paced = Paced { socket, permit, writer_gone };
        let Permit { limits, ip, id } = &paced.permit;
        let paid = paced.wait(limits.charge_arrival(*id, *ip, &paced.socket));
        limits.lock().arriving.remove(id);
        paid.map(|()| paced)
    }

    /// Takes `cost` from the sender's allowance, and waits as long as it
    /// asks before the line is handed on; `Err` if the connection ends
    /// meanwhile (then the line is dropped with it).
    pub fn pay(&self, cost: Cost) -> Result<(), Over> {
        let Permit { limits, ip, id } = &self.permit;
        self.wait(limits.charge(*id, *ip, cost))
    }

    /// Waits `time`, or less if the connection ends meanwhile: then `Err`.
    /// The wait is a peek at the socket, which takes nothing but wakes when
    /// the client closes the connection or the writer shuts it down; if
    /// bytes wait to be read, for the rest of the time on the writer's end.
    fn wait(&self, time: Duration) -> Result<(), Over> {
        if time.is_zero() {
            return Ok(());
        }
        let until = Instant::now() + time;
        let _ = self.socket.set_read_timeout(Some(time));
        let peeked = self.socket.peek(&mut [0]);
        let _ = self.socket.set_read_timeout(None);
        if let Ok(0) = peeked {
            return Err(Over);
        }
        match self.writer_gone.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Disconnected) => Err(Over),
            _ => Ok(()),
        }
    }
}

/// Read through a shared reference: the reader reads through it, and pays
/// with it for each line too.
impl Read for &Paced {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Err(TryRecvError::Disconnected) = self.writer_gone.try_recv() {
            return Ok(0);
        }
        let n = self.socket.as_ref().read(buf)?;
        match self.pay(Cost { lines: n as f64 / MAX_LINE_BYTES as f64, kib: 0.0 }) {
            Ok(()) => Ok(n),
            Err(Over) => Ok(0),
        }
    }
}
