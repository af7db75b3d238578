//! What every rule shares: its groups (as the README's protocol is
//! grouped), its outcome, and its room (`Ctx`: a fresh server, or an empty
//! one, and the connections made to it). The rules themselves live in a
//! file per group (handshake.rs, room.rs, wire.rs, robustness.rs,
//! optional.rs), each rule a function next to the README sentence it
//! applies.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ChildStdin;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use crate::peer::{Failure, GREETING, Peer, Sent};
use crate::{handshake, optional, robustness, room, wire};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Group {
    Handshake,
    Room,
    Wire,
    Robustness,
    Optional,
}

impl Group {
    pub const ALL: [Group; 5] =
        [Group::Handshake, Group::Room, Group::Wire, Group::Robustness, Group::Optional];

    pub fn name(self) -> &'static str {
        match self {
            Group::Handshake => "handshake",
            Group::Room => "room",
            Group::Wire => "wire",
            Group::Robustness => "robustness",
            Group::Optional => "optional",
        }
    }

    pub fn rules(self) -> &'static [Rule] {
        match self {
            Group::Handshake => handshake::RULES,
            Group::Room => room::RULES,
            Group::Wire => wire::RULES,
            Group::Robustness => robustness::RULES,
            Group::Optional => optional::RULES,
        }
    }
}

pub struct Rule {
    pub name: &'static str,
    /// The README's words it applies, quoted in a FAIL: `"` where the README
    /// has a backtick, and ` ... ` between two quotes.
    pub rule: &'static str,
    pub check: fn(&mut Ctx) -> Result<(), Miss>,
}

/// Why a rule did not pass.
pub enum Miss {
    /// It does not hold: what was sent, what was expected, what came.
    Fail(Failure),
    /// The checker cannot judge it from where it stands, and says why: a
    /// PASS would claim what nobody saw.
    Untested(String),
}

impl From<Failure> for Miss {
    fn from(failure: Failure) -> Miss {
        Miss::Fail(failure)
    }
}

/// One rule's room: the server's address, and its console if the checker
/// started it. Connections left to threads are closed when it is dropped.
pub struct Ctx {
    pub addr: SocketAddr,
    pub wait: Duration,
    /// Each client connects from its own loopback address (127.0.0.10 and
    /// up), as from its own machine: a server on this machine, on Linux.
    pub spread: bool,
    pub console: Option<ChildStdin>,
    next_source: u8,
    pub sent: Sent,
    /// Connections held by threads that may outlive the rule.
    on_threads: Vec<TcpStream>,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        for stream in &self.on_threads {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Ctx {
    pub fn new(addr: SocketAddr, wait: Duration, console: Option<ChildStdin>) -> Ctx {
        Ctx {
            addr,
            wait,
            spread: addr.ip().is_loopback() && cfg!(target_os = "linux"),
            console,
            next_source: 10,
            sent: Sent::default(),
            on_threads: Vec::new(),
        }
    }

    /// `Ok` if connections can come from addresses of their own; else why
    /// `what` cannot be tested here.
    pub fn spread_for(&self, what: &str) -> Result<(), Miss> {
        if self.spread {
            return Ok(());
        }
        let why = if cfg!(target_os = "linux") {
            format!(
                "{} is not a loopback address: the server may be on another machine, and every \
                 connection comes from this one's address (a server on this machine is checked \
                 at 127.0.0.1:{})",
                self.addr.ip(),
                self.addr.port()
            )
        } else {
            "connecting from 127.0.0.x, as from other machines, works on Linux only".into()
        };
        Err(Miss::Untested(format!("{what}, and {why}")))
    }

    /// Closes `stream` when the rule ends: a thread reads it.
    pub fn on_thread(&mut self, stream: &TcpStream) {
        self.on_threads.extend(stream.try_clone());
    }

    /// A new connection, from the next loopback address if spread.
    pub fn connect(&mut self) -> Result<Peer, Failure> {
        let source = self.spread.then(|| Ipv4Addr::new(127, 0, 0, self.next_source));
        self.next_source = self.next_source.wrapping_add(1).max(10);
        self.open(source, None)
    }

    /// A new connection from `source` (loopback), holding at most about
    /// `buffer` bytes unread if given.
    pub fn open(&mut self, source: Option<Ipv4Addr>, buffer: Option<i32>) -> Result<Peer, Failure> {
        let sent = self.sent.clone();
        let mut peer =
            Peer::open(self.addr, source, buffer, self.wait, sent).map_err(|e| Failure {
                sent: String::new(),
                expected: format!("to connect to {}", self.addr),
                got: e.to_string(),
            })?;
        // Old lines (a server's history) and a peer's own lines sent back
        // (an echo) are judged by a rule each, and passed over elsewhere:
        // one slip, one FAIL.
        peer.skip_earlier = true;
        peer.skip_own = true;
        Ok(peer)
    }

    /// Connects and joins as `name`: the greeting, the name, the welcome.
    pub fn join(&mut self, name: &str) -> Result<Peer, Failure> {
        let mut peer = self.connect()?;
        welcome(&mut peer, name)?;
        Ok(peer)
    }

    /// Joins every name in turn; each earlier user reads each later one's
    /// `* NAME joined`, so that all start with nothing unread.
    pub fn join_all<const N: usize>(&mut self, names: [&str; N]) -> Result<[Peer; N], Failure> {
        let mut joined: Vec<Peer> = Vec::new();
        for name in names {
            let peer = self.join(name)?;
            for earlier in &mut joined {
                earlier.want(&format!("* {name} joined"))?;
            }
            joined.push(peer);
        }
        Ok(joined.try_into().unwrap_or_else(|_| unreachable!("one peer per name")))
    }

    /// Reads `peer`'s lines on a thread of its own, as they come (a user who
    /// reads, even while a rule waits), until its connection ends. Returns
    /// the same user for sending, and what they hear.
    pub fn listen(&mut self, mut peer: Peer) -> Result<(Peer, Heard), Failure> {
        let failed = |e: std::io::Error| Failure {
            sent: String::new(),
            expected: format!("to read {}'s connection on a thread", peer.label),
            got: e.to_string(),
        };
        let stream = peer.stream.try_clone().map_err(failed)?;
        self.on_thread(&stream);
        let mut mouth = Peer::with(stream, self.wait, self.sent.clone()).map_err(failed)?;
        // Reads block until a line or the end, which Ctx's drop brings (a
        // socket's timeout is shared by its clones: set after `with`).
        mouth.stream.set_read_timeout(None).map_err(failed)?;
        mouth.label = peer.label.clone();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            while let Ok(line) = peer.line() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let heard = Heard { lines, label: mouth.label.clone(), sent: self.sent.clone() };
        Ok((mouth, heard))
    }
}

/// What a user read by `Ctx::listen` hears.
pub struct Heard {
    lines: Receiver<String>,
    label: String,
    sent: Sent,
}

impl Heard {
    /// The next line heard within `wait`; `None` if none comes in time, or
    /// the connection ends.
    pub fn next(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// Every line heard so far, not waiting for more.
    pub fn so_far(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Lines heard until one is `wanted`, within `wait`; each line on the
    /// way is handed to `check` first, which may fail the rule.
    pub fn until(
        &self,
        wanted: &str,
        wait: Duration,
        mut check: impl FnMut(&str) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = match self.lines.recv_timeout(left) {
                Ok(line) if line == wanted => return Ok(()),
                Ok(line) => {
                    check(&line)?;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    format!("nothing within {} s", wait.as_secs_f64())
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => "the connection closed".into(),
            };
            let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let got = format!("{got} (on {}'s connection)", self.label);
            return Err(Failure { sent, expected: wanted.into(), got });
        }
    }
}

/// The greeting, the name, and the server's answer: any `* ` line means the
/// name was taken (the welcome's exact words are a rule of their own).
pub fn welcome(peer: &mut Peer, name: &str) -> Result<(), Failure> {
    peer.want(GREETING)?;
    peer.label = name.to_string();
    peer.say(name)?;
    peer.want_prefix("* ").map(drop)
}

/// A refusal of a name: the README fixes only its shape, `! <why>; try
/// again` (the name itself is wrong) or `! <why>; try another` (it is taken,
/// or kept); the reason is the server's own.
pub fn refused(peer: &mut Peer, ending: &str) -> Result<(), Failure> {
    let line = peer.line()?;
    let why = line.strip_prefix("! ").and_then(|l| l.strip_suffix(&format!("; {ending}")));
    if why.is_some_and(|why| !why.trim().is_empty()) {
        return Ok(());
    }
    Err(peer.failure(&format!("! <why>; {ending}"), &line))
}

/// A check of what came, for rules that compare more than one line.
pub fn holds(ok: bool, sent: &str, expected: &str, got: &str) -> Result<(), Failure> {
    if ok {
        return Ok(());
    }
    Err(Failure { sent: sent.into(), expected: expected.into(), got: got.into() })
}
