//! Limits: who may connect, and how fast each address may send (beyond the
//! report: its server takes every connection and relays as fast as anyone
//! types, so one student with a script can fill the server or flood the room).
//!
//! Limits are per IP address, not per connection: otherwise one student
//! opens a hundred connections and gets a hundred allowances. Each address
//! has a token bucket that all its connections draw on, and the whole room
//! has one more. A reader that finds its bucket empty waits before reading
//! on, so the sender's own TCP connection fills and holds it back: nothing
//! is lost, nobody is cut off, and everyone else's lines flow as before.
//!
//! Not here: the name deadline (the room's), the outbox bound (`outbox.rs`).

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::protocol::{self, MAX_LINE_BYTES};

/// How many lines one address may send at once before flood control slows it
/// to `--max-line-rate`: a pasted block of this many lines goes through
/// unhurried. Every line costs one (a name tried and a leave too: they put
/// lines on screens as well), and so does every KiB read.
pub const FLOOD_BURST: u32 = 100;

/// The whole room may carry this many addresses' worth of lines: bursts of
/// 1,000 and 200 lines a second at the default rate. It bounds what every
/// outbox may have to hold (`outbox::outbox_lines`), however many addresses
/// send.
pub const ROOM_SHARE: u32 = 10;

/// Connection limits and flood control, shared by the accept loop and every
/// reader (each holds an `Arc`). The lock is held only to count, never
/// across a read, a write or a sleep.
pub struct Limits {
    max_clients: usize,
    max_per_address: usize,
    /// Lines per second per address; 0: flood control off.
    rate: u32,
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
    /// Addresses kept out by `/ban`, until the instant given.
    banned: HashMap<IpAddr, Instant>,
}

struct Address {
    open: usize,
    bucket: TokenBucket,
}

/// One connection's permission to be open, given back when dropped. Its
/// reader holds it, so the place is freed however the reader ends (a panic
/// too); it is also how the reader pays for what it reads ([`Permit::pace`]).
pub struct Permit {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Limits {
    pub fn new(max_clients: usize, max_per_address: usize, rate: u32) -> Limits {
        let room = TokenBucket::new(rate * ROOM_SHARE, FLOOD_BURST * ROOM_SHARE, Instant::now());
        let counts = Counts { open: 0, room, addresses: HashMap::new(), banned: HashMap::new() };
        let counts = Mutex::new(counts);
        Limits { max_clients, max_per_address, rate, counts }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // A panic while the lock was held cannot leave the counts half
        // changed (each change is one statement), so a poisoned lock is
        // still good to use.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection from `ip`, or says why it cannot stay: the
    /// `! ` line to send it before closing. `self: &Arc<Self>`: the permit
    /// gets a clone of the `Arc` itself.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, String> {
        let mut counts = self.lock();
        let now = Instant::now();
        counts.addresses.retain(|_, a| a.open > 0 || !a.bucket.is_full(now));
        counts.banned.retain(|_, until| *until > now);
        if counts.banned.contains_key(&ip) {
            return Err(protocol::banned());
        }
        if counts.open >= self.max_clients {
            return Err(protocol::server_full(self.max_clients));
        }
        let bucket = TokenBucket::new(self.rate, FLOOD_BURST, now);
        let address = counts.addresses.entry(ip).or_insert(Address { open: 0, bucket });
        if address.open >= self.max_per_address {
            return Err(protocol::too_many_from_address(self.max_per_address));
        }
        address.open += 1;
        counts.open += 1;
        Ok(Permit { limits: Arc::clone(self), ip })
    }
}

impl Limits {
    /// Takes `lines` worth of allowance from `ip` without waiting: the
    /// broker's way to charge for what it sends on someone's behalf. The
    /// address's readers wait the debt off before their next line.
    pub fn charge(&self, ip: IpAddr, lines: f64) {
        if let Some(address) = self.lock().addresses.get_mut(&ip) {
            address.bucket.take(lines, Instant::now());
        }
    }

    /// Keeps `ip` out until `until` (`/ban`).
    pub fn ban(&self, ip: IpAddr, until: Instant) {
        self.lock().banned.insert(ip, until);
    }
}

impl Permit {
    /// Takes `lines` worth of allowance from this address, then from the
    /// whole room, waiting as long as each asks, or until `hangup` says the
    /// connection is over: then `Err`. The room is asked only once the
    /// address has paid, so a flooding address cannot run up the room's
    /// debt for everyone else.
    pub fn pace(&self, lines: f64, hangup: &Receiver<()>) -> Result<(), Hungup> {
        if self.limits.rate == 0 {
            return Ok(());
        }
        let wait = match self.limits.lock().addresses.get_mut(&self.ip) {
            Some(address) => address.bucket.take(lines, Instant::now()),
            None => Duration::ZERO,
        };
        wait_unless_hung_up(hangup, wait)?;
        let wait = self.limits.lock().room.take(lines, Instant::now());
        wait_unless_hung_up(hangup, wait)
    }
}

/// The connection is over: its writer has ended, and closed it.
pub struct Hungup;

/// Waits `wait`, unless `hangup` closes first. Nothing is ever sent on it:
/// its sender is held by the connection's writer, and dropped when the
/// writer ends, which wakes this wait at once.
fn wait_unless_hung_up(hangup: &Receiver<()>, wait: Duration) -> Result<(), Hungup> {
    match hangup.recv_timeout(wait) {
        Err(RecvTimeoutError::Disconnected) => Err(Hungup),
        _ => Ok(()),
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.open -= 1;
        if let Some(address) = counts.addresses.get_mut(&self.ip) {
            address.open -= 1;
        }
    }
}

/// The socket as a reader reads it: every byte read counts against the
/// sender's allowance (a KiB costs as much as a line), in a line or in one
/// that never ends, so endless bytes are paced like endless lines. Once the
/// connection is over (`hangup`), it reads as ended: a flooder's reader
/// stops at once, and does not read on what it can no longer send.
pub struct PacedSocket {
    pub socket: Arc<TcpStream>,
    pub permit: Permit,
    pub hangup: Receiver<()>,
}

impl PacedSocket {
    /// Pays for `lines` (see [`Permit::pace`]).
    pub fn pace(&self, lines: f64) -> Result<(), Hungup> {
        self.permit.pace(lines, &self.hangup)
    }
}

impl Read for PacedSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Err(TryRecvError::Disconnected) = self.hangup.try_recv() {
            return Ok(0);
        }
        let n = (&*self.socket).read(buf)?;
        match self.pace(n as f64 / MAX_LINE_BYTES as f64) {
            Ok(()) => Ok(n),
            Err(Hungup) => Ok(0),
        }
    }
}

/// A token bucket: the pace a user may send at (flood control).
///
/// It holds up to `burst` tokens and gains `per_second` of them each second;
/// every line takes one. A person typing never empties it, a pasted block of
/// up to `burst` lines goes through at once, and a program sending in a loop
/// is held to `per_second` lines a second. Pure arithmetic on the instants
/// it is given, so it is tested without waiting.
struct TokenBucket {
    per_second: f64,
    burst: f64,
    /// Below zero when lines were let through on credit: the debt is the wait.
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    fn new(per_second: u32, burst: u32, now: Instant) -> TokenBucket {
        let (per_second, burst) = (f64::from(per_second), f64::from(burst));
        TokenBucket { per_second, burst, tokens: burst, last: now }
    }

    /// Takes `tokens` (one per line, a fraction for part of a line's worth);
    /// returns how long to wait before going on (zero while tokens remain).
    fn take(&mut self, tokens: f64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= tokens;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }

    /// Whether the bucket has refilled completely by `now`: such a bucket
    /// behaves exactly like a new one, so it can be forgotten.
    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_lets_a_burst_through_at_once() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(20, 100, t0);
        for _ in 0..100 {
            assert_eq!(bucket.take(1.0, t0), Duration::ZERO);
        }
        // The 101st line, at the same instant, waits one token's time: 1/20 s.
        assert_eq!(bucket.take(1.0, t0), Duration::from_millis(50));
    }

    #[test]
    fn bucket_holds_a_flood_to_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(20, 100, t0);
        for _ in 0..100 {
            bucket.take(1.0, t0);
        }
        // A sender that waits as told gets exactly 20 lines a second.
        let mut now = t0;
        for _ in 0..40 {
            now += bucket.take(1.0, now);
        }
        let waited = now - t0;
        assert!(
            waited >= Duration::from_millis(1999) && waited <= Duration::from_millis(2001),
            "{waited:?}"
        );
    }

    #[test]
    fn bucket_refills_with_time_but_not_past_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(20, 100, t0);
        for _ in 0..100 {
            bucket.take(1.0, t0);
        }
        // An hour later it holds 100 tokens again, not 72,000.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..100 {
            assert_eq!(bucket.take(1.0, later), Duration::ZERO);
        }
        assert!(bucket.take(1.0, later) > Duration::ZERO);
    }
}
