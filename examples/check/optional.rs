//! Optional features (README: the lines marked "optional", and those that
//! need the server's own options or its console): reported as present or
//! not, never counted. Where the checker cannot set what a feature needs (a
//! short name deadline, a low `--max-clients`) or reach it (the console of
//! a server it did not start), the card says "not tested here" and why.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::ChildStdin;
use std::time::{Duration, Instant};

use crate::peer::{Failure, GREETING, Peer};
use crate::rules::{Ctx, Miss, Rule, holds};

pub const RULES: &[Rule] = &[
    Rule {
        name: "history: newcomers see what was said",
        rule: "optionally, first, up to \"--history\" lines \"* [earlier] LINE\" (the last public lines, oldest first)",
        check: history,
    },
    Rule {
        name: "flood control: a flood is slowed",
        rule: "| pace (optional) | per address, 100 lines at once then \"--max-line-rate\" a second (default 20)",
        check: flood,
    },
    Rule {
        name: "limits per address",
        rule: "\"! too many connections from your address (limit N); try again later\" | instead of the greeting, when N are open from that address; then a close (optional: limits)",
        check: per_address,
    },
    Rule {
        name: "a full server says so",
        rule: "\"! server full (limit N); try again later\" | instead of the greeting, when N connections are open; then a close (optional: limits)",
        check: server_full,
    },
    Rule {
        name: "the name deadline is said, then kept",
        rule: "| too slow | (nothing within the deadline, 30 s by default) | \"! no name within 30 s; closing the connection\", then closes |",
        check: deadline,
    },
    Rule {
        name: "the console: /say reaches everyone",
        rule: "\"* [server] TEXT\" | the teacher's \"/say TEXT\" on the console (optional: console)",
        check: say,
    },
    Rule {
        name: "the console: /kick removes a user",
        rule: "\"! you were removed by the server: REASON\" | to NAME, on the console's \"/kick NAME [REASON]\" ... \"* NAME left (removed by the server)\" | to everyone else, after a \"/kick\" or a \"/ban\"",
        check: kick,
    },
    Rule {
        name: "the console: /ban keeps an address out",
        rule: "\"! your address is banned by the server; try again later\" | instead of the greeting, to an address the console's \"/ban\" keeps out; then a close (optional: console)",
        check: ban,
    },
    Rule {
        name: "the console: /quit says the server is shutting down",
        rule: "\"* server is shutting down\" | to everyone, before the server stops (on the console's \"/quit\"); then a close",
        check: shutdown,
    },
];

fn history(ctx: &mut Ctx) -> Result<(), Miss> {
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
    Ok(bob.want_prefix("* welcome bob; ").map(drop)?)
}

/// 150 lines at once: all arrive, in order, but not at once (more than a
/// second from sending them to the last one's arrival: a checker slow to
/// read can only make that longer).
fn flood(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut bot, mut bob] = ctx.join_all(["bot", "bob"])?;
    let lines: String = (0..150).map(|i| format!("spam {i}\n")).collect();
    let sent_at = Instant::now();
    bot.say_raw(lines.as_bytes())?;
    for i in 0..150 {
        bob.want(&format!("bot: spam {i}"))?;
    }
    let took = sent_at.elapsed();
    let sent = "bot> spam 0 .. spam 149, at once";
    let expected = "the last line over a second after they were sent";
    Ok(holds(took > Duration::from_secs(1), sent, expected, &format!("all within {took:?}"))?)
}

/// Connections from one address (127.0.0.2) until one is refused: some
/// limit must hold before a hundred.
fn per_address(ctx: &mut Ctx) -> Result<(), Miss> {
    ctx.spread_for("this rule connects from an address of its own (127.0.0.2)")?;
    let sent = "a hundred connections from 127.0.0.2";
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
    Ok(holds(oldest.starts_with("! "), sent, expected, "all one hundred greeted and held")?)
}

/// Whether `line` is `before` N `after`, N a number.
fn shaped(line: &str, before: &str, after: &str) -> bool {
    let n = line.strip_prefix(before).and_then(|rest| rest.strip_suffix(after));
    n.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Connections from addresses of their own, a few each, until one is
/// refused as the server is full: a server started with a limit under 100.
fn server_full(ctx: &mut Ctx) -> Result<(), Miss> {
    ctx.spread_for(
        "this rule connects from addresses of its own, so that no limit per address comes first",
    )?;
    let mut held: Vec<Peer> = Vec::new();
    while held.len() < 100 {
        let mut conn = ctx.connect()?;
        let first = conn.line()?;
        if first.starts_with("! server full") {
            let expected = "! server full (limit N); try again later";
            let sent = format!("{} connections held, one more", held.len());
            holds(
                shaped(&first, "! server full (limit ", "); try again later"),
                &sent,
                expected,
                &first,
            )?;
            return Ok(conn.want_closed()?);
        }
        held.push(conn);
    }
    Err(Miss::Untested(
        "100 connections were all greeted: start the server with a lower limit to test it \
         (chatroom: --max-clients 25)"
            .into(),
    ))
}

/// A connection that sends no name: the deadline's line, then a close. A
/// server's deadline longer than the checker waits is not tested.
fn deadline(ctx: &mut Ctx) -> Result<(), Miss> {
    const WAIT: Duration = Duration::from_secs(4);
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    conn.stream.set_read_timeout(Some(WAIT)).map_err(|e| conn.failure("a line", &e.to_string()))?;
    let expected = "! no name within SECONDS s; closing the connection";
    let line = match conn.line() {
        Ok(line) => line,
        Err(f) if f.got.starts_with("nothing within") => {
            return Err(Miss::Untested(format!(
                "no line within {} s: start the server with a shorter deadline to test it \
                 (chatroom: --name-timeout 2)",
                WAIT.as_secs()
            )));
        }
        Err(f) => return Err(f.into()),
    };
    let sent = "(no name)";
    holds(shaped(&line, "! no name within ", " s; closing the connection"), sent, expected, &line)?;
    Ok(conn.want_closed()?)
}

/// The server's console (its stdin): the checker holds it only for a server
/// it started.
fn console(ctx: &mut Ctx) -> Result<&mut ChildStdin, Miss> {
    ctx.console.as_mut().ok_or_else(|| {
        Miss::Untested(
            "the console is the server's stdin: only a server the checker starts (--server) has \
             one it can type in"
                .into(),
        )
    })
}

/// Types `command` on the console.
fn type_in(ctx: &mut Ctx, command: &str) -> Result<(), Miss> {
    let sent = format!("console> {command}");
    *ctx.sent.lock().unwrap_or_else(|e| e.into_inner()) = sent.clone();
    let stdin = console(ctx)?;
    writeln!(stdin, "{command}").and_then(|()| stdin.flush()).map_err(|e| {
        let expected = "the server to read its stdin".into();
        Miss::Fail(Failure { sent, expected, got: e.to_string() })
    })
}

fn say(ctx: &mut Ctx) -> Result<(), Miss> {
    console(ctx)?;
    let mut alice = ctx.join("alice")?;
    type_in(ctx, "/say from the console")?;
    Ok(alice.want("* [server] from the console")?)
}

fn kick(ctx: &mut Ctx) -> Result<(), Miss> {
    console(ctx)?;
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    type_in(ctx, "/kick alice too loud")?;
    alice.want("! you were removed by the server: too loud")?;
    alice.want_closed()?;
    Ok(bob.want("* alice left (removed by the server)")?)
}

fn ban(ctx: &mut Ctx) -> Result<(), Miss> {
    console(ctx)?;
    ctx.spread_for("this rule bans an address of its own (127.0.0.3)")?;
    let banned = Ipv4Addr::new(127, 0, 0, 3);
    let mut bob = ctx.join("bob")?;
    let mut alice = ctx.open(Some(banned), None)?;
    crate::rules::welcome(&mut alice, "alice")?;
    bob.want("* alice joined")?;
    type_in(ctx, &format!("/ban {banned}"))?;
    bob.want("* alice left (removed by the server)")?;
    let mut again = ctx.open(Some(banned), None)?;
    again.want("! your address is banned by the server; try again later")?;
    Ok(again.want_closed()?)
}

fn shutdown(ctx: &mut Ctx) -> Result<(), Miss> {
    console(ctx)?;
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    type_in(ctx, "/quit")?;
    for peer in [&mut alice, &mut bob] {
        peer.want("* server is shutting down")?;
        peer.want_closed()?;
    }
    Ok(())
}
