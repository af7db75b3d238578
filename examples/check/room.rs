//! The room and its commands (README: "A session, step by step", "Every
//! line a server sends"): lines to everyone else, in one order, never back
//! to their sender; `/who`, `/msg`, `/help`, `/quit`, and leaving.

use std::thread;

use crate::peer::{Failure, Peer};
use crate::rules::{Ctx, Miss, Rule, holds};

pub const RULES: &[Rule] = &[
    Rule {
        name: "a line reaches everyone else as NAME: TEXT",
        rule: "| chat | \"TEXT\" | everyone else gets \"alice: TEXT\"",
        check: chat,
    },
    Rule {
        name: "a line is not echoed to its sender",
        rule: "everyone else gets \"alice: TEXT\"; alice gets nothing back",
        check: no_echo,
    },
    Rule {
        name: "everyone sees lines in one order",
        rule: "Everyone gets the room's lines in one order, and each sender's in the order sent.",
        check: one_order,
    },
    Rule {
        name: "/who lists everyone, sorted",
        rule: "| who | \"/who\" | \"* online (N): NAMES\" | ... they are sorted by \"to_uppercase()\" then \"to_lowercase()\" of each (by code point)",
        check: who,
    },
    Rule {
        name: "/msg reaches its target alone, confirmed",
        rule: "NAME (matched by folded form) alone gets \"alice (private): TEXT\"; alice gets \"to NAME (private): TEXT\", with NAME as its owner chose it",
        check: msg,
    },
    Rule {
        name: "/msg TEXT is trimmed",
        rule: "\"/msg NAME TEXT\" splits at the first space after NAME; TEXT is trimmed.",
        check: msg_trimmed,
    },
    Rule {
        name: "/msg errors: no such user, no text",
        rule: "\"! no user named NAME\" | \"/msg\" to a name nobody online has (NAME as typed) ... \"! usage: /msg NAME TEXT\" | \"/msg\" without a NAME or without TEXT ... \"/msg NAME\" without TEXT to a name nobody online has may get either line",
        check: msg_errors,
    },
    Rule {
        name: "/help lists the commands",
        rule: "\"* \" lines naming \"/msg\", \"/who\", \"/help\" and \"/quit\" | the answer to \"/help\" | *shape*",
        check: help,
    },
    Rule {
        name: "an unknown command is refused",
        rule: "\"! unknown command /WORD (type /help for the list)\" | any other line starting with \"/\"; WORD is what follows \"/\" up to the first space",
        check: unknown,
    },
    Rule {
        name: "/quit says bye, closes, and is heard",
        rule: "| leave | \"/quit\" | \"* bye alice, see you soon\", then closes; everyone else gets \"* alice left\"",
        check: quit,
    },
    Rule {
        name: "closing without /quit is a leave too",
        rule: "| end | (the connection ends or is reset, without \"/quit\") | everyone else gets \"* alice left\"",
        check: end_leave,
    },
];

fn chat(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob, mut carol] = ctx.join_all(["alice", "bob", "carol"])?;
    alice.say("hello, room")?;
    bob.want("alice: hello, room")?;
    Ok(carol.want("alice: hello, room")?)
}

/// alice speaks, then bob: alice's next line must be bob's, not her own.
/// An echo is this rule's FAIL alone: the other rules pass over it.
fn no_echo(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.skip_own = false;
    alice.say("hello")?;
    bob.want("alice: hello")?;
    bob.say("hi alice")?;
    let line = alice.line()?;
    if line == "alice: hello" {
        return Err(Miss::Fail(Failure {
            sent: "alice> hello".into(),
            expected: "nothing back to alice: her line is for everyone else".into(),
            got: "alice: hello (on alice's connection): the sender got its own line back".into(),
        }));
    }
    holds(line == "bob: hi alice", "bob> hi alice", "bob: hi alice", &line)?;
    Ok(())
}

fn one_order(ctx: &mut Ctx) -> Result<(), Miss> {
    let [alice, bob, mut carol, mut dave] = ctx.join_all(["alice", "bob", "carol", "dave"])?;
    // 80 lines in all: fewer than the 100 a server may hold for a reader.
    const EACH: usize = 40;
    // Each sender gives its peer back, to be closed only once all is read.
    let send = |mut peer: Peer, tag: &'static str| {
        thread::spawn(move || {
            (0..EACH).try_for_each(|i| peer.say(&format!("{tag}{i}"))).map(|()| peer)
        })
    };
    let (a, b) = (send(alice, "a"), send(bob, "b"));
    let carol_saw: Vec<String> = (0..2 * EACH).map(|_| carol.line()).collect::<Result<_, _>>()?;
    let dave_saw: Vec<String> = (0..2 * EACH).map(|_| dave.line()).collect::<Result<_, _>>()?;
    let _senders = [a.join(), b.join()];
    let sent = "alice> a0 .. a39 and bob> b0 .. b39, at once";
    holds(carol_saw == dave_saw, sent, "carol and dave see the same order", "two orders")?;
    let from_alice: Vec<&String> = carol_saw.iter().filter(|l| l.starts_with("alice: ")).collect();
    let in_order = (0..EACH).map(|i| format!("alice: a{i}")).eq(from_alice.into_iter().cloned());
    holds(in_order, sent, "alice's 40 lines, in her order", "another order, or lines missing")?;
    Ok(())
}

/// Sorted by folded form: `alice` before `Bob`, which code points would
/// put first.
fn who(ctx: &mut Ctx) -> Result<(), Miss> {
    let _c = ctx.join("carol")?;
    let _b = ctx.join("Bob")?;
    let mut alice = ctx.join("alice")?;
    alice.say("/who")?;
    Ok(alice.want("* online (3): alice, Bob, carol")?)
}

fn msg(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob, mut carol] = ctx.join_all(["alice", "bob", "carol"])?;
    alice.say("/msg BOB meet me at 5")?;
    bob.want("alice (private): meet me at 5")?;
    alice.want("to bob (private): meet me at 5")?;
    // carol's next line is alice's public one: the private one never came.
    alice.say("public now")?;
    Ok(carol.want("alice: public now")?)
}

fn msg_trimmed(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say("/msg bob    at the door  ")?;
    bob.want("alice (private): at the door")?;
    Ok(alice.want("to bob (private): at the door")?)
}

/// `/msg zed` (nobody, no text) may get either error: the README lets a
/// server check the usage or look the name up first.
fn msg_errors(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, _bob] = ctx.join_all(["alice", "bob"])?;
    alice.say("/msg zed hello")?;
    alice.want("! no user named zed")?;
    for line in ["/msg bob", "/msg"] {
        alice.say(line)?;
        alice.want("! usage: /msg NAME TEXT")?;
    }
    alice.say("/msg zed")?;
    let either = ["! usage: /msg NAME TEXT", "! no user named zed"];
    let line = alice.line()?;
    let expected = "! usage: /msg NAME TEXT, or ! no user named zed";
    Ok(holds(either.contains(&line.as_str()), "alice> /msg zed", expected, &line)?)
}

fn help(ctx: &mut Ctx) -> Result<(), Miss> {
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
    let got = format!("{} lines, without {}", lines.len(), missing.join(", "));
    Ok(holds(!lines.is_empty() && missing.is_empty(), sent, expected, &got)?)
}

fn unknown(ctx: &mut Ctx) -> Result<(), Miss> {
    let mut alice = ctx.join("alice")?;
    alice.say("/dance now")?;
    Ok(alice.want("! unknown command /dance (type /help for the list)")?)
}

fn quit(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say("/quit")?;
    alice.want("* bye alice, see you soon")?;
    alice.want_closed()?;
    bob.want("* alice left")?;
    Ok(ctx.join("alice").map(drop)?) // the name is free again
}

fn end_leave(ctx: &mut Ctx) -> Result<(), Miss> {
    let [alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    let _ = alice.stream.shutdown(std::net::Shutdown::Write);
    Ok(bob.want("* alice left")?)
}
