//! The greeting and the name handshake (README: "A session, step by step",
//! "Names"): what a connection is told first, which names are refused and
//! how, and the welcome that lists who is online.

use crate::peer::{GREETING, Peer};
use crate::rules::{Ctx, Miss, Rule, refused};

pub const RULES: &[Rule] = &[
    Rule {
        name: "the greeting asks for a name",
        rule: "\"* welcome to chatroom, please enter your name\" | first, on every connection",
        check: greeting,
    },
    Rule {
        name: "a name is welcomed with who is online, sorted",
        rule: "\"* welcome alice; online (N): NAMES (type /help for commands)\", NAMES being everyone online, alice included ... they are sorted by \"to_uppercase()\" then \"to_lowercase()\" of each (by code point), each written as its owner chose it, joined by \", \"",
        check: welcomed,
    },
    Rule {
        name: "everyone else hears who joined",
        rule: "everyone else gets \"* alice joined\"",
        check: joined,
    },
    Rule {
        name: "a bad name is refused, and asked again",
        rule: "\"! <why>; try again\" | a name refused for itself: too long, a character not allowed, no letter ... a refusal (*shape*, below), then waits for another name on the same connection",
        check: bad_names,
    },
    Rule {
        name: "a taken name is refused, ignoring case",
        rule: "\"! <why>; try another\" | a name refused because it is taken (by folded form) ... no two users online have the same folded form",
        check: taken,
    },
    Rule {
        name: "names that read alike are one name",
        rule: "\"to_uppercase()\" then \"to_lowercase()\" of the whole name: \"Alice\", \"ALICE\"; \"Straße\", \"STRASSE\"; \"ıvan\", \"Ivan\"; \"oﬃce\", \"office\" each fold to one form",
        check: alike,
    },
    Rule {
        name: "blank names and the server's are refused",
        rule: "Until a name is accepted, each line, cleaned and trimmed at both ends, is a name asked for ... \"server\", \"chatroom\", \"console\", \"system\", \"admin\", compared by the name's letters alone, folded: \"Server_1\", \"ADMIN\", \"con-sole\" are refused too",
        check: blank,
    },
    Rule {
        name: "a name takes combining accents",
        rule: "combining marks right after a letter or another mark",
        check: accents,
    },
    Rule {
        name: "a name is checked in the README's order",
        rule: "A name is checked in this order: no letter, kept for the server, too long, a character not allowed; so \"server\" with 30 digits after it is kept, not too long.",
        check: name_order,
    },
];

fn greeting(ctx: &mut Ctx) -> Result<(), Miss> {
    Ok(ctx.connect()?.want(GREETING)?)
}

/// Three join, none in sorted order: each welcome lists everyone so far,
/// sorted by folded form (`alice` before `Bob`, which code points would
/// put first).
fn welcomed(ctx: &mut Ctx) -> Result<(), Miss> {
    let mut joined: Vec<Peer> = Vec::new();
    for (name, online) in [
        ("carol", "online (1): carol"),
        ("Bob", "online (2): Bob, carol"),
        ("alice", "online (3): alice, Bob, carol"),
    ] {
        let mut peer = ctx.connect()?;
        peer.want(GREETING)?;
        peer.label = name.into();
        peer.say(name)?;
        peer.want(&format!("* welcome {name}; {online} (type /help for commands)"))?;
        joined.push(peer);
    }
    Ok(())
}

fn joined(ctx: &mut Ctx) -> Result<(), Miss> {
    let mut alice = ctx.join("alice")?;
    let _bob = ctx.join("bob")?;
    Ok(alice.want("* bob joined")?)
}

fn bad_names(ctx: &mut Ctx) -> Result<(), Miss> {
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    for name in [&"a".repeat(25), "two words", "   ", "bob:", "42"] {
        conn.say(name)?;
        refused(&mut conn, "try again")?;
    }
    let name = "é".repeat(24);
    conn.say(&name)?;
    Ok(conn.want(&format!("* welcome {name}; online (1): {name} (type /help for commands)"))?)
}

fn taken(ctx: &mut Ctx) -> Result<(), Miss> {
    let _alice = ctx.join("alice")?;
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    conn.say("ALICE")?;
    refused(&mut conn, "try another")?;
    conn.say("Alice_2")?;
    Ok(conn.want_prefix("* welcome Alice_2; online (2): alice, Alice_2").map(drop)?)
}

fn alike(ctx: &mut Ctx) -> Result<(), Miss> {
    let _ones = [ctx.join("Straße")?, ctx.join("Ivan")?, ctx.join("office")?];
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    for name in ["STRASSE", "ıvan", "oﬃce"] {
        conn.say(name)?;
        refused(&mut conn, "try another")?;
    }
    Ok(())
}

fn blank(ctx: &mut Ctx) -> Result<(), Miss> {
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    conn.say("\u{115F}\u{1160}\u{3164}\u{FFA0}")?;
    refused(&mut conn, "try again")?;
    for name in ["server", "Server_1", "admin"] {
        conn.say(name)?;
        refused(&mut conn, "try another")?;
    }
    Ok(())
}

fn accents(ctx: &mut Ctx) -> Result<(), Miss> {
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    conn.say("\u{301}eva")?;
    refused(&mut conn, "try again")?;
    conn.say("Jose\u{301}")?;
    Ok(conn.want_prefix("* welcome Jose\u{301};").map(drop)?)
}

/// Names wrong in two ways at once, each refused for the check that comes
/// first: kept (`; try another`) before too long or a character not
/// allowed (`; try again`).
fn name_order(ctx: &mut Ctx) -> Result<(), Miss> {
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    for name in [format!("server{}", "1".repeat(30)), "admin!".into(), "CON-SOLE:".into()] {
        conn.say(&name)?;
        refused(&mut conn, "try another")?;
    }
    Ok(())
}
