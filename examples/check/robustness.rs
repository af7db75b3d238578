//! Robustness (README: "One who stops reading", "A session, step by
//! step"): a user who stops reading delays nobody, a reset connection is a
//! leave, and twenty users at once lose nothing. Every user a rule does
//! not mean to stop reads as lines come, and none is sent more than the
//! README's minimum at once: a server with the smallest queue the README
//! allows passes.

use std::net::Ipv4Addr;
use std::thread;
use std::time::Instant;

use crate::peer::{Failure, Peer};
use crate::rules::{Ctx, Miss, Rule, holds, welcome};
use crate::support::loopback;

pub const RULES: &[Rule] = &[
    Rule {
        name: "one who stops reading stalls nobody",
        rule: "A user who stops reading delays nobody else ... once cut off, everyone else gets \"* NAME left (too slow: stopped reading)\". But it may cut a user off only once more than 100 lines, or more than 64 KiB of lines, wait for them beyond what their connection holds, or once a line has waited for them for more than 5 s.",
        check: stall,
    },
    Rule {
        name: "a reset connection leaves cleanly",
        rule: "| end | (the connection ends or is reset, without \"/quit\") | everyone else gets \"* alice left\"",
        check: reset,
    },
    Rule {
        name: "many clients at once lose nothing",
        rule: "everyone else gets \"alice: TEXT\" ... Everyone gets the room's lines in one order, and each sender's in the order sent.",
        check: many,
    },
];

/// A user who stops reading, whose connection holds only about 100 KB on
/// both sides (a 4 KiB receive buffer and small TCP segments: see
/// `loopback::connect_with`), while six others, each from its own address,
/// send 50 lines of 1,000 bytes at once: 300 KB, within any address's burst
/// of 100 lines (a room-wide allowance may pace them: chatroom's lets
/// 160 KiB through at once, then 32 KiB a second). Once it is over (or
/// --wait later), alice and bob join, and read all along: the flood is not
/// for them, so a server may hold as little for them as the README allows.
/// alice speaks, and bob must hear her; then again, since a server that
/// sends in the speaker's thread is stuck only after its first line. About
/// 1 s, and --wait more for a server that paces the flood, or freezes.
fn stall(ctx: &mut Ctx) -> Result<(), Miss> {
    ctx.spread_for("this rule floods from six addresses of its own (127.0.0.10 and up)")?;
    let sleeper = loopback::connect_with(Ipv4Addr::new(127, 0, 0, 9), ctx.addr, Some(4096));
    let sleeper = sleeper.and_then(|s| Peer::with(s, ctx.wait, ctx.sent.clone()));
    let mut sleeper = sleeper.map_err(|e| Failure {
        sent: String::new(),
        expected: format!("to connect to {}", ctx.addr),
        got: e.to_string(),
    })?;
    welcome(&mut sleeper, "sleeper")?;
    let flood: String = (0..50).map(|i| format!("{i} {}\n", "x".repeat(995))).collect();
    // All join first, then flood: a server that freezes must not keep the
    // last flooders out.
    let (mut flooders, mut flooders_hear) = (Vec::new(), Vec::new());
    for i in 0..6 {
        // Each reads what it is sent (kept, to see how sleeper leaves).
        let flooder = ctx.join(&format!("flood{i}"))?;
        let (flooder, heard) = ctx.listen(flooder)?;
        flooders.push(flooder);
        flooders_hear.push(heard);
    }
    for mut flooder in flooders {
        // Each on a thread of its own, for as long as the server takes its
        // lines.
        let flood = flood.clone();
        thread::spawn(move || flooder.say_raw(flood.as_bytes()).map(|()| flooder));
    }
    // Sleeper's leave, if the server cuts them off, must be the README's line.
    let flooded = "flood0..flood5> 50 lines of 1,000 bytes each, at once";
    let cut = "* sleeper left (too slow: stopped reading)";
    let told_right = |line: &str, to: &str| {
        let got = format!("{line} (to {to})");
        holds(!line.starts_with("* sleeper left") || line == cut, flooded, cut, &got)
    };
    // alice and bob come once the flood is over (flood0 has heard every
    // other flooder's last line), or after --wait: a server that paces it
    // is still sending it, and one that froze never will.
    let deadline = Instant::now() + ctx.wait;
    let mut last_lines: Vec<String> =
        (1..6).map(|k| format!("flood{k}: 49 {}", "x".repeat(995))).collect();
    while !last_lines.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(line) = flooders_hear[0].next(left) else { break };
        told_right(&line, "flood0")?;
        last_lines.retain(|last| *last != line);
    }
    // What fails from here on fails for sleeper, unless a reader was cut off.
    let after = |expected: String| {
        move |f: Failure| {
            let why = if f.got.starts_with("nothing within") {
                ": everyone waits for sleeper, who stopped reading"
            } else if f.got.starts_with("the connection closed") {
                ": cut off, though reading (a server holds at least 100 lines or 64 KiB first)"
            } else {
                return f; // it says what went wrong already
            };
            let expected = format!("{expected} (sleeper stopped reading; nobody waits for them)");
            Failure { expected, got: format!("{}{why}", f.got), ..f }
        }
    };
    // Not `join_all`: a flood still coming may reach alice before bob's join.
    let alice = ctx.join("alice").map_err(after("alice welcomed".into()))?;
    let bob = ctx.join("bob").map_err(after("bob welcomed".into()))?;
    let (mut alice, _alice_hears) = ctx.listen(alice)?;
    let (_bob, bob_hears) = ctx.listen(bob)?;
    let kept = |line: &str| {
        let got = format!("{line} (on bob's connection)");
        let why = "alice, who reads, to stay (a server holds at least 100 lines or 64 KiB first)";
        holds(!line.starts_with("* alice left"), "alice> still here?", why, &got)
    };
    for said in ["still here?", "anyone?"] {
        alice.say(said)?;
        let line = format!("alice: {said}");
        bob_hears.until(&line, ctx.wait, kept).map_err(after(line.clone()))?;
    }
    for (i, heard) in flooders_hear.iter().enumerate() {
        heard.so_far().iter().try_for_each(|line| told_right(line, &format!("flood{i}")))?;
    }
    Ok(())
}

fn reset(ctx: &mut Ctx) -> Result<(), Miss> {
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
    Ok(bob.want("carol: still here")?)
}

/// Twenty clients send four lines each, all at once: each gets the other
/// 76 lines, each sender's in its order. 76 stays under the 100 lines a
/// server may hold before it cuts off a user: one whose writers are slow
/// to start still passes.
fn many(ctx: &mut Ctx) -> Result<(), Miss> {
    const USERS: usize = 20;
    const LINES: usize = 4;
    let names: Vec<String> = (0..USERS).map(|i| format!("c{i}")).collect();
    let mut peers: Vec<Peer> = Vec::new();
    for name in &names {
        let peer = ctx.join(name)?;
        for earlier in &mut peers {
            earlier.want(&format!("* {name} joined"))?;
        }
        peers.push(peer);
    }
    let sent = "c0..c19> 0..3, all at once";
    for peer in &mut peers {
        let lines: String = (0..LINES).map(|i| format!("{i}\n")).collect();
        peer.say_raw(lines.as_bytes())?;
    }
    let readers: Vec<_> = peers
        .into_iter()
        .map(|mut peer| {
            thread::spawn(move || {
                let mut next = [0; USERS];
                for _ in 0..(USERS - 1) * LINES {
                    let line = peer.line()?;
                    let from = line.split_once(": ").and_then(|(sender, _)| {
                        sender.strip_prefix('c').and_then(|s| s.parse::<usize>().ok())
                    });
                    let Some(from) = from.filter(|&from| from < USERS) else {
                        return holds(false, sent, "a line from c0..c19", &line);
                    };
                    let expected = format!("c{from}: {}", next[from]);
                    holds(line == expected, sent, &expected, &line)?;
                    next[from] += 1;
                }
                Ok(())
            })
        })
        .collect();
    for reader in readers {
        let panicked = || holds(false, sent, "each reader to finish", "it panicked");
        reader.join().unwrap_or_else(|_| panicked())?;
    }
    Ok(())
}
