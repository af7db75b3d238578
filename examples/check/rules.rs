//! The rules: every line of the README's wire protocol, as a check over real
//! sockets. Each rule gets a `Ctx` (a room to itself: a fresh server, or an
//! empty one) and returns `Ok` if it holds, or the `Failure` that shows why
//! not. Grouped as the README's protocol is; `Optional` ones are features a
//! server may lack without failing.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ChildStdin;
use std::thread;
use std::time::{Duration, Instant};

use crate::peer::{Failure, GREETING, Peer, Sent};
use crate::support::loopback;

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
}

pub struct Rule {
    pub group: Group,
    pub name: &'static str,
    /// The README's rule it applies, quoted in a FAIL.
    pub rule: &'static str,
    pub check: fn(&mut Ctx) -> Result<(), Failure>,
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
    sent: Sent,
    /// Connections held by threads that may outlive the rule.
    on_threads: Vec<std::net::TcpStream>,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        for stream in &self.on_threads {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Ctx {
    pub fn new(addr: SocketAddr, wait: Duration, spread: bool, console: Option<ChildStdin>) -> Ctx {
        Ctx {
            addr,
            wait,
            spread,
            console,
            next_source: 10,
            sent: Sent::default(),
            on_threads: Vec::new(),
        }
    }

    /// A new connection, from the next loopback address if spread.
    pub fn connect(&mut self) -> Result<Peer, Failure> {
        let source = self.spread.then(|| Ipv4Addr::new(127, 0, 0, self.next_source));
        self.next_source = self.next_source.wrapping_add(1).max(10);
        self.open(source, None)
    }

    fn open(&mut self, source: Option<Ipv4Addr>, buffer: Option<i32>) -> Result<Peer, Failure> {
        let sent = self.sent.clone();
        let mut peer =
            Peer::open(self.addr, source, buffer, self.wait, sent).map_err(|e| Failure {
                sent: String::new(),
                expected: format!("to connect to {}", self.addr),
                got: e.to_string(),
            })?;
        peer.skip_earlier = true;
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
}

/// The greeting, the name, and the server's answer: any `* ` line means the
/// name was taken (the welcome's exact words are a rule of their own).
fn welcome(peer: &mut Peer, name: &str) -> Result<(), Failure> {
    peer.want(GREETING)?;
    peer.label = name.to_string();
    peer.say(name)?;
    peer.want_prefix("* ").map(drop)
}

/// A refusal of a name: the README fixes only its shape, `! <why>; try
/// again` (the name itself is wrong) or `! <why>; try another` (it is taken,
/// or kept); the reason is the server's own.
fn refused(sent: &Sent, peer: &mut Peer, ending: &str) -> Result<(), Failure> {
    let line = peer.line()?;
    let why = line.strip_prefix("! ").and_then(|l| l.strip_suffix(&format!("; {ending}")));
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let got = format!("{line} (on {}'s connection)", peer.label);
    holds(why.is_some_and(|why| !why.trim().is_empty()), &sent, &format!("! <why>; {ending}"), &got)
}

/// A check of what came, for rules that compare more than one line.
fn holds(ok: bool, sent: &str, expected: &str, got: &str) -> Result<(), Failure> {
    if ok {
        return Ok(());
    }
    Err(Failure { sent: sent.into(), expected: expected.into(), got: got.into() })
}

pub const RULES: &[Rule] = &[
    Rule {
        group: Group::Handshake,
        name: "the greeting asks for a name",
        rule: "the first line on every connection is \"* welcome to chatroom, please enter your name\"",
        check: greeting,
    },
    Rule {
        group: Group::Handshake,
        name: "a name is welcomed with who is online",
        rule: "a name accepted is answered \"* welcome NAME; online (N): NAMES (type /help for commands)\", NAMES sorted by their folded form and joined by \", \"",
        check: welcomed,
    },
    Rule {
        group: Group::Handshake,
        name: "everyone else hears who joined",
        rule: "when NAME joins, everyone else gets \"* NAME joined\"",
        check: joined,
    },
    Rule {
        group: Group::Handshake,
        name: "a bad name is refused, and asked again",
        rule: "a name is 1 to 24 characters: letters, digits, _ and -, at least one letter; any other is refused with \"! <why>; try again\", and the next line is another try",
        check: bad_names,
    },
    Rule {
        group: Group::Handshake,
        name: "a taken name is refused, ignoring case",
        rule: "a name online already, compared by folded form (to_uppercase, then to_lowercase), is refused with \"! <why>; try another\"",
        check: taken,
    },
    Rule {
        group: Group::Handshake,
        name: "names that read alike are one name",
        rule: "a name online already, compared by folded form (to_uppercase, then to_lowercase), is refused with \"! <why>; try another\"",
        check: alike,
    },
    Rule {
        group: Group::Handshake,
        name: "blank names and the server's are refused",
        rule: "a name is cleaned first (invisible characters removed), then needs a letter (\"! <why>; try again\"); server, chatroom, console, system, admin, with any digits, _ or -, are kept: \"! <why>; try another\"",
        check: blank,
    },
    Rule {
        group: Group::Handshake,
        name: "a name takes combining accents",
        rule: "a combining accent may follow a letter, nowhere else: \"! <why>; try again\"",
        check: accents,
    },
    Rule {
        group: Group::Room,
        name: "a line reaches everyone else as NAME: TEXT",
        rule: "a line TEXT from NAME reaches everyone else as \"NAME: TEXT\"",
        check: chat,
    },
    Rule {
        group: Group::Room,
        name: "a line is not echoed to its sender",
        rule: "a line is not sent back to its sender",
        check: no_echo,
    },
    Rule {
        group: Group::Room,
        name: "everyone sees lines in one order",
        rule: "everyone gets the room's lines in one order, each sender's in the order sent",
        check: one_order,
    },
    Rule {
        group: Group::Room,
        name: "/who lists everyone, sorted",
        rule: "/who is answered \"* online (N): NAMES\", NAMES sorted by their folded form and joined by \", \"",
        check: who,
    },
    Rule {
        group: Group::Room,
        name: "/msg reaches its target alone, confirmed",
        rule: "/msg NAME TEXT (NAME in any case): NAME alone gets \"SENDER (private): TEXT\", the sender \"to NAME (private): TEXT\" with NAME as its owner wrote it",
        check: msg,
    },
    Rule {
        group: Group::Room,
        name: "/msg errors: no such user, no text",
        rule: "/msg to a name not online is answered \"! no user named NAME\"; /msg without NAME or TEXT \"! usage: /msg NAME TEXT\"",
        check: msg_errors,
    },
    Rule {
        group: Group::Room,
        name: "/help lists the commands",
        rule: "/help is answered with one or more \"* \" lines, in the server's own words, naming /msg, /who, /help and /quit",
        check: help,
    },
    Rule {
        group: Group::Room,
        name: "an unknown command is refused",
        rule: "any other /WORD is answered \"! unknown command /WORD (type /help for the list)\"",
        check: unknown,
    },
    Rule {
        group: Group::Room,
        name: "/quit says bye, closes, and is heard",
        rule: "/quit is answered \"* bye NAME, see you soon\" and a close; everyone else gets \"* NAME left\"; the name is free again",
        check: quit,
    },
    Rule {
        group: Group::Room,
        name: "closing without /quit is a leave too",
        rule: "a connection that ends without /quit is a leave: everyone else gets \"* NAME left\"",
        check: end_leave,
    },
    Rule {
        group: Group::Wire,
        name: "\\r\\n ends a line too",
        rule: "a line ends in \\n; a \\r before it is dropped",
        check: crlf,
    },
    Rule {
        group: Group::Wire,
        name: "1024 bytes pass, 1025 are refused",
        rule: "a line of up to 1024 bytes is relayed; a longer one is not, its sender gets \"! line too long (at most 1024 bytes); it was not sent\" and stays",
        check: limit,
    },
    Rule {
        group: Group::Wire,
        name: "bytes that are not UTF-8 become U+FFFD",
        rule: "bytes that are not UTF-8 become U+FFFD, never a disconnect",
        check: utf8,
    },
    Rule {
        group: Group::Wire,
        name: "control characters are removed",
        rule: "control characters (U+0000-U+001F, U+007F-U+009F) are removed from lines and names; a tab becomes a space",
        check: controls,
    },
    Rule {
        group: Group::Wire,
        name: "invisible characters are removed",
        rule: "Unicode's default-ignorable characters are removed from lines and /msg text",
        check: invisible,
    },
    Rule {
        group: Group::Wire,
        name: "empty lines are ignored",
        rule: "a line that is empty once cleaned is ignored",
        check: empty,
    },
    Rule {
        group: Group::Wire,
        name: "indentation is kept, the end trimmed",
        rule: "the end of a line is trimmed, its start kept",
        check: indent,
    },
    Rule {
        group: Group::Robustness,
        name: "one who stops reading stalls nobody",
        rule: "a user who stops reading delays nobody else (a 4 KiB receive window, 300 KB sent at once from six addresses, each within its burst; 1 s later a line that must arrive within --wait: about 3 s)",
        check: stall,
    },
    Rule {
        group: Group::Robustness,
        name: "a reset connection leaves cleanly",
        rule: "a connection reset is a leave (\"* NAME left\"), and the room goes on",
        check: reset,
    },
    Rule {
        group: Group::Robustness,
        name: "many clients at once lose nothing",
        rule: "twenty users sending ten lines each at once: each gets the other 190, each sender's in its order",
        check: many,
    },
    Rule {
        group: Group::Optional,
        name: "history: newcomers see what was said",
        rule: "before the welcome, a newcomer may get earlier public lines as \"* [earlier] LINE\"",
        check: history,
    },
    Rule {
        group: Group::Optional,
        name: "flood control: a flood is slowed",
        rule: "150 lines at once from one address are all relayed, in order, over more than a second",
        check: flood,
    },
    Rule {
        group: Group::Optional,
        name: "limits per address",
        rule: "a hundred connections from one address that choose no name: one is refused with \"! too many connections from your address (limit N); try again later\", or the oldest is closed with a \"! \" line",
        check: per_address,
    },
    Rule {
        group: Group::Optional,
        name: "the console: /say reaches everyone",
        rule: "/say TEXT on the server's stdin reaches everyone as \"* [server] TEXT\"",
        check: console,
    },
];

// ---------------------------------------------------------------------------
// The greeting and the name handshake
// ---------------------------------------------------------------------------

fn greeting(ctx: &mut Ctx) -> Result<(), Failure> {
    ctx.connect()?.want(GREETING)
}

fn welcomed(ctx: &mut Ctx) -> Result<(), Failure> {
    let mut alice = ctx.connect()?;
    alice.want(GREETING)?;
    alice.label = "alice".into();
    alice.say("alice")?;
    alice.want("* welcome alice; online (1): alice (type /help for commands)")?;
    let mut bob = ctx.connect()?;
    bob.want(GREETING)?;
    bob.label = "bob".into();
    bob.say("bob")?;
    bob.want("* welcome bob; online (2): alice, bob (type /help for commands)")
}

fn joined(ctx: &mut Ctx) -> Result<(), Failure> {
    let mut alice = ctx.join("alice")?;
    let _bob = ctx.join("bob")?;
    alice.want("* bob joined")
}

fn bad_names(ctx: &mut Ctx) -> Result<(), Failure> {
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    for name in [&"a".repeat(25), "two words", "   ", "bob:", "42"] {
        conn.say(name)?;
        refused(&ctx.sent, &mut conn, "try again")?;
    }
    let name = "é".repeat(24);
    conn.say(&name)?;
    conn.want(&format!("* welcome {name}; online (1): {name} (type /help for commands)"))
}

fn taken(ctx: &mut Ctx) -> Result<(), Failure> {
    let _alice = ctx.join("alice")?;
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    conn.say("ALICE")?;
    refused(&ctx.sent, &mut conn, "try another")?;
    conn.say("Alice_2")?;
    conn.want_prefix("* welcome Alice_2; online (2): alice, Alice_2").map(drop)
}

fn alike(ctx: &mut Ctx) -> Result<(), Failure> {
    let _ones = [ctx.join("Straße")?, ctx.join("Ivan")?, ctx.join("office")?];
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    for name in ["STRASSE", "ıvan", "oﬃce"] {
        conn.say(name)?;
        refused(&ctx.sent, &mut conn, "try another")?;
    }
    Ok(())
}

fn blank(ctx: &mut Ctx) -> Result<(), Failure> {
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    conn.say("\u{115F}\u{1160}\u{3164}\u{FFA0}")?;
    refused(&ctx.sent, &mut conn, "try again")?;
    for name in ["server", "Server_1", "admin"] {
        conn.say(name)?;
        refused(&ctx.sent, &mut conn, "try another")?;
    }
    Ok(())
}

fn accents(ctx: &mut Ctx) -> Result<(), Failure> {
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    conn.say("\u{301}eva")?;
    refused(&ctx.sent, &mut conn, "try again")?;
    conn.say("Jose\u{301}")?;
    conn.want_prefix("* welcome Jose\u{301};").map(drop)
}

// ---------------------------------------------------------------------------
// The room
// ---------------------------------------------------------------------------

fn chat(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob, mut carol] = ctx.join_all(["alice", "bob", "carol"])?;
    alice.say("hello, room")?;
    bob.want("alice: hello, room")?;
    carol.want("alice: hello, room")
}

fn no_echo(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say("hello")?;
    bob.want("alice: hello")?;
    // alice's next line is bob's answer, not her own line back.
    bob.say("hi alice")?;
    alice.want("bob: hi alice")
}

fn one_order(ctx: &mut Ctx) -> Result<(), Failure> {
    let [alice, bob, mut carol, mut dave] = ctx.join_all(["alice", "bob", "carol", "dave"])?;
    // Each sender gives its peer back, to be closed only once all is read.
    let send = |mut peer: Peer, tag: &'static str| {
        thread::spawn(move || {
            (0..50).try_for_each(|i| peer.say(&format!("{tag}{i}"))).map(|()| peer)
        })
    };
    let (a, b) = (send(alice, "a"), send(bob, "b"));
    let carol_saw: Vec<String> = (0..100).map(|_| carol.line()).collect::<Result<_, _>>()?;
    let dave_saw: Vec<String> = (0..100).map(|_| dave.line()).collect::<Result<_, _>>()?;
    let _senders = [a.join(), b.join()];
    let sent = "alice> a0 .. a49 and bob> b0 .. b49, at once";
    holds(carol_saw == dave_saw, sent, "carol and dave see the same order", "two orders")?;
    let from_alice: Vec<&String> = carol_saw.iter().filter(|l| l.starts_with("alice: ")).collect();
    let in_order = (0..50).map(|i| format!("alice: a{i}")).eq(from_alice.into_iter().cloned());
    holds(in_order, sent, "alice's 50 lines, in her order", "another order, or lines missing")
}

fn who(ctx: &mut Ctx) -> Result<(), Failure> {
    let _c = ctx.join("carol")?;
    let _a = ctx.join("Alice")?;
    let mut bob = ctx.join("bob")?;
    bob.say("/who")?;
    bob.want("* online (3): Alice, bob, carol")
}

fn msg(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob, mut carol] = ctx.join_all(["alice", "bob", "carol"])?;
    alice.say("/msg BOB meet me at 5")?;
    bob.want("alice (private): meet me at 5")?;
    alice.want("to bob (private): meet me at 5")?;
    // carol's next line is alice's public one: the private one never came.
    alice.say("public now")?;
    carol.want("alice: public now")
}

fn msg_errors(ctx: &mut Ctx) -> Result<(), Failure> {
    let mut alice = ctx.join("alice")?;
    alice.say("/msg zed hello")?;
    alice.want("! no user named zed")?;
    for line in ["/msg zed", "/msg"] {
        alice.say(line)?;
        alice.want("! usage: /msg NAME TEXT")?;
    }
    Ok(())
}

fn help(ctx: &mut Ctx) -> Result<(), Failure> {
    let mut alice = ctx.join("alice")?;
    alice.say("/help")?;
    // Its end is where the answer to a /who sent next begins.
    alice.say("/who")?;
    let (sent, expected) =
        ("alice> /help, then /who", "\"* \" lines naming /msg, /who, /help and /quit");
    let mut lines = Vec::new();
    loop {
        let failed = |f: Failure| Failure { sent: sent.into(), expected: expected.into(), ..f };
        let line = alice.want_prefix("* ").map_err(failed)?;
        if line == "* online (1): alice" {
            break;
        }
        lines.push(line);
    }
    let names = |c: &&str| lines.iter().any(|l| l.contains(*c));
    let missing: Vec<&str> =
        ["/msg", "/who", "/help", "/quit"].into_iter().filter(|c| !names(c)).collect();
    holds(
        !lines.is_empty() && missing.is_empty(),
        sent,
        expected,
        &format!("{} lines, without {}", lines.len(), missing.join(", ")),
    )
}

fn unknown(ctx: &mut Ctx) -> Result<(), Failure> {
    let mut alice = ctx.join("alice")?;
    alice.say("/dance now")?;
    alice.want("! unknown command /dance (type /help for the list)")
}

fn quit(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say("/quit")?;
    alice.want("* bye alice, see you soon")?;
    alice.want_closed()?;
    bob.want("* alice left")?;
    ctx.join("alice").map(drop) // the name is free again
}

fn end_leave(ctx: &mut Ctx) -> Result<(), Failure> {
    let [alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    let _ = alice.stream.shutdown(std::net::Shutdown::Write);
    bob.want("* alice left")
}

// ---------------------------------------------------------------------------
// The wire
// ---------------------------------------------------------------------------

fn crlf(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say_raw("già fatto\r\n".as_bytes())?;
    bob.want("alice: già fatto")
}

fn limit(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    let ok = "x".repeat(1024);
    alice.say(&ok)?;
    bob.want(&format!("alice: {ok}"))?;
    alice.say(&"y".repeat(1025))?;
    alice.want("! line too long (at most 1024 bytes); it was not sent")?;
    alice.say("after")?;
    bob.want("alice: after")
}

fn utf8(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say_raw(b"caf\xe9 ok\n")?;
    bob.want("alice: caf\u{FFFD} ok")
}

fn controls(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say_raw(b"\x1b[2Jred\x07\ttab\x7f \xc2\x9bcsi\x00\r\n")?;
    bob.want("alice: [2Jred tab csi")?;
    // Names are cleaned too: the escape is dropped and the rest checked.
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    conn.say_raw(b"car\x1bol\r\n")?;
    conn.want_prefix("* welcome carol;")?;
    bob.want("* carol joined")
}

fn invisible(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say("look: invoice\u{202E}fdp.exe and z\u{200B}e\u{2066}r\u{FEFF}o")?;
    bob.want("alice: look: invoicefdp.exe and zero")?;
    let tags: String =
        "secret".chars().filter_map(|c| char::from_u32(0xE0000 + c as u32)).collect();
    alice.say(&format!("a\u{00AD}b\u{034F}c\u{180E}d\u{FE0F}e\u{2061}f{tags}g"))?;
    bob.want("alice: abcdefg")?;
    alice.say("/msg bob \u{200F}psst\u{2069}")?;
    bob.want("alice (private): psst")
}

fn empty(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say_raw(b"\n   \n\t\r\nreal\n")?;
    bob.want("alice: real")
}

fn indent(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say("    if x:  ")?;
    bob.want("alice:     if x:")
}

// ---------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------

/// A user who stops reading, whose connection holds only about 100 KB on
/// both sides (a 4 KiB receive buffer and small TCP segments: see
/// `loopback::connect_with`), while six others, each from its own address,
/// send 50 lines of 1,000 bytes at once: 300 KB, within any address's burst
/// of 100 lines (a room-wide allowance may pace them: this server's lets
/// 160 KiB through at once, then 32 KiB a second). A second later alice
/// speaks, and bob must hear her. About 3 s.
fn stall(ctx: &mut Ctx) -> Result<(), Failure> {
    let sleeper = match ctx.spread {
        true => loopback::connect_with(Ipv4Addr::new(127, 0, 0, 9), ctx.addr, Some(4096)),
        false => std::net::TcpStream::connect_timeout(&ctx.addr, ctx.wait),
    };
    let sleeper = sleeper.and_then(|s| Peer::with(s, ctx.wait, ctx.sent.clone()));
    let mut sleeper = sleeper.map_err(|e| Failure {
        sent: String::new(),
        expected: format!("to connect to {}", ctx.addr),
        got: e.to_string(),
    })?;
    welcome(&mut sleeper, "sleeper")?;
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    let flood: String = (0..50).map(|i| format!("{i} {}\n", "x".repeat(995))).collect();
    // From one address (not spread) the flood must stay within its burst.
    let mut flooders = Vec::new();
    for i in 0..if ctx.spread { 6 } else { 1 } {
        flooders.push(ctx.join(&format!("flood{i}"))?);
    }
    for mut flooder in flooders {
        // It reads what it is sent (and throws it away), and sends on a
        // thread of its own, for as long as the server takes its lines.
        if let Ok(mut drain) = flooder.stream.try_clone() {
            ctx.on_threads.extend(drain.try_clone());
            thread::spawn(move || std::io::copy(&mut drain, &mut std::io::sink()));
        }
        let flood = flood.clone();
        thread::spawn(move || flooder.say_raw(flood.as_bytes()).map(|()| flooder));
    }
    thread::sleep(Duration::from_secs(1));
    alice.say("still here?")?;
    bob.find("alice: still here?").map(drop)
}

fn reset(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    bob.say("unread by alice")?;
    alice.say_raw(b"half a li")?;
    // Once bob's line sits unread in alice's socket, closing it sends a reset.
    let _ = alice.stream.peek(&mut [0u8; 1]);
    drop(alice);
    bob.want("* alice left")?;
    let mut carol = ctx.join("carol")?;
    carol.say("still here")?;
    bob.want("* carol joined")?;
    bob.want("carol: still here")
}

/// Twenty clients send ten lines each, all at once: each gets the other
/// 190 lines, each sender's in its order.
fn many(ctx: &mut Ctx) -> Result<(), Failure> {
    let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let mut peers = Vec::new();
    for name in &names {
        peers.push(ctx.join(name)?);
    }
    for peer in &mut peers {
        let lines: String = (0..10).map(|i| format!("{i}\n")).collect();
        peer.say_raw(lines.as_bytes())?;
    }
    let readers: Vec<_> = peers
        .into_iter()
        .map(|mut peer| {
            thread::spawn(move || {
                let mut next = [0; 20];
                let mut heard = 0;
                while heard < 190 {
                    let line = peer.line()?;
                    let Some((sender, seq)) = line.split_once(": ") else { continue };
                    let Some(sender) =
                        sender.strip_prefix('c').and_then(|s| s.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    let expected = format!("c{sender}: {}", next[sender.min(19)]);
                    holds(line == expected, "c0..c19> 0..9, all at once", &expected, &line)?;
                    next[sender.min(19)] = seq.parse::<usize>().unwrap_or(0) + 1;
                    heard += 1;
                }
                Ok(())
            })
        })
        .collect();
    for reader in readers {
        let panicked = || holds(false, "c0..c19> 0..9", "each reader to finish", "it panicked");
        reader.join().unwrap_or_else(|_| panicked())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Optional features
// ---------------------------------------------------------------------------

fn history(ctx: &mut Ctx) -> Result<(), Failure> {
    let mut alice = ctx.join("alice")?;
    alice.say("said before")?;
    alice.say("/who")?;
    alice.want("* online (1): alice")?;
    let mut bob = ctx.connect()?;
    bob.skip_earlier = false;
    bob.want(GREETING)?;
    bob.label = "bob".into();
    bob.say("bob")?;
    // Older lines may come before it, on a server already used (`--addr`).
    bob.find("* [earlier] alice: said before")?;
    bob.want_prefix("* welcome bob; ").map(drop)
}

/// 150 lines at once: all arrive, in order, but not at once (more than a
/// second from sending them to the last one's arrival: a checker slow to
/// read can only make that longer).
fn flood(ctx: &mut Ctx) -> Result<(), Failure> {
    let [mut bot, mut bob] = ctx.join_all(["bot", "bob"])?;
    let lines: String = (0..150).map(|i| format!("spam {i}\n")).collect();
    let sent_at = Instant::now();
    bot.say_raw(lines.as_bytes())?;
    for i in 0..150 {
        bob.want(&format!("bot: spam {i}"))?;
    }
    let took = sent_at.elapsed();
    let sent = "bot> spam 0 .. spam 149, at once";
    holds(
        took > Duration::from_secs(1),
        sent,
        "the last line over a second after they were sent",
        &format!("all within {took:?}"),
    )
}

/// Connections from one address (127.0.0.2) until one is refused: some
/// limit must hold before a hundred.
fn per_address(ctx: &mut Ctx) -> Result<(), Failure> {
    let sent = "a hundred connections from 127.0.0.2";
    holds(ctx.spread, sent, "a server on this machine (Linux), to test", "another machine")?;
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut conn = ctx.open(Some(Ipv4Addr::new(127, 0, 0, 2)), None)?;
        let first = conn.line()?;
        if first.starts_with("! too many connections from your address") {
            return Ok(());
        }
        held.push(conn);
    }
    // All greeted: then the oldest must have been let go to make room.
    let oldest = held[0].line().unwrap_or_default();
    let expected = "! too many connections ..., or a \"! \" line closing the oldest";
    holds(oldest.starts_with("! "), sent, expected, "all one hundred greeted and held")
}

fn console(ctx: &mut Ctx) -> Result<(), Failure> {
    let mut alice = ctx.join("alice")?;
    let sent = "/say from the console (on the server's stdin)";
    let Some(stdin) = ctx.console.as_mut() else {
        return holds(false, sent, "a server the checker started (--server)", "--addr");
    };
    let _ = writeln!(stdin, "/say from the console").and_then(|()| stdin.flush());
    alice.want("* [server] from the console")
}
