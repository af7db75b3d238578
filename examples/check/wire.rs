//! The wire (README: "Lines"): how lines end, how long they may be (in
//! bytes, before the name too), and how a line is cleaned before anyone
//! sees it.

use crate::peer::GREETING;
use crate::rules::{Ctx, Miss, Rule, holds};

pub const RULES: &[Rule] = &[
    Rule {
        name: "\\r\\n ends a line too",
        rule: "| line ends | \"\\n\"; a \"\\r\" before it is dropped |",
        check: crlf,
    },
    Rule {
        name: "1024 bytes pass, 1025 are refused",
        rule: "at most 1024 bytes (without the \"\\r\\n\"); a longer line is not relayed, the sender gets \"! line too long (at most 1024 bytes); it was not sent\" and stays connected",
        check: limit,
    },
    Rule {
        name: "a line too long before the name is refused too",
        rule: "\"! line too long (at most 1024 bytes); it was not sent\" | a line over 1024 bytes, before or after the name",
        check: limit_before_name,
    },
    Rule {
        name: "bytes that are not UTF-8 become U+FFFD",
        rule: "| bad bytes | invalid UTF-8 becomes U+FFFD (\"�\"), never a disconnect |",
        check: utf8,
    },
    Rule {
        name: "control characters are removed",
        rule: "control characters (U+0000–U+001F, U+007F–U+009F) ... are removed from lines, \"/msg\" text and names ... a tab becomes a space",
        check: controls,
    },
    Rule {
        name: "line and paragraph separators are removed",
        rule: "are removed from lines, \"/msg\" text and names, and so are U+2028 and U+2029",
        check: separators,
    },
    Rule {
        name: "invisible characters are removed",
        rule: "Unicode's \"Default_Ignorable_Code_Point\" characters (\"src/text/invisible.txt\", \"text::is_invisible\") are removed from lines, \"/msg\" text and names",
        check: invisible,
    },
    Rule {
        name: "empty lines are ignored",
        rule: "| empty lines | once joined, a line that is empty once cleaned is ignored: nothing is sent, to anyone |",
        check: empty,
    },
    Rule {
        name: "indentation is kept, the end trimmed",
        rule: "the end of a line is trimmed, its start is kept (indentation)",
        check: indent,
    },
    Rule {
        name: "a run of spaces is cut to 8",
        rule: "after a line's first character that is not a space, a run of more than 8 spaces becomes 8",
        check: gaps,
    },
];

fn crlf(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say_raw("già fatto\r\n".as_bytes())?;
    Ok(bob.want("alice: già fatto")?)
}

/// Counted in bytes: 512 `é` (1,024 bytes) pass, 513 do not, as 1,024 and
/// 1,025 `x` do and do not. A refused line is never relayed (bob's next
/// line is alice's next), and alice stays.
fn limit(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    let too_long = "! line too long (at most 1024 bytes); it was not sent";
    for (fits, over) in [("x".repeat(1024), "y".repeat(1025)), ("é".repeat(512), "è".repeat(513))]
    {
        alice.say(&fits)?;
        bob.want(&format!("alice: {fits}"))?;
        alice.say(&over)?;
        alice.say("after")?;
        bob.want("alice: after").map_err(|f| {
            let chars = over.chars().count();
            let sent = format!("alice> {chars} characters, {} bytes; then: after", over.len());
            let expected = "alice: after (the line before it, too long, not relayed)";
            crate::peer::Failure { sent, expected: expected.into(), ..f }
        })?;
        alice.want(too_long)?;
    }
    Ok(())
}

fn limit_before_name(ctx: &mut Ctx) -> Result<(), Miss> {
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    conn.say(&"a".repeat(1025))?;
    conn.want("! line too long (at most 1024 bytes); it was not sent")?;
    conn.label = "alice".into();
    conn.say("alice")?;
    Ok(conn.want("* welcome alice; online (1): alice (type /help for commands)")?)
}

fn utf8(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say_raw(b"caf\xe9 ok\n")?;
    Ok(bob.want("alice: caf\u{FFFD} ok")?)
}

fn controls(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say_raw(b"\x1b[2Jred\x07\ttab\x7f \xc2\x9bcsi\x00\r\n")?;
    bob.want("alice: [2Jred tab csi")?;
    // Names are cleaned too: the escape is dropped and the rest checked.
    let mut conn = ctx.connect()?;
    conn.want(GREETING)?;
    conn.say_raw(b"car\x1bol\r\n")?;
    conn.want_prefix("* welcome carol;")?;
    Ok(bob.want("* carol joined")?)
}

/// U+2028 and U+2029 end a line for some readers (Python's `splitlines`):
/// left in, a line could show a forged one.
fn separators(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say("hi\u{2028}* bob left\u{2029}!")?;
    bob.want("alice: hi* bob left!")?;
    alice.say("/msg bob a\u{2028}b")?;
    Ok(bob.want("alice (private): ab")?)
}

fn invisible(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say("look: invoice\u{202E}fdp.exe and z\u{200B}e\u{2066}r\u{FEFF}o")?;
    bob.want("alice: look: invoicefdp.exe and zero")?;
    let tags: String =
        "secret".chars().filter_map(|c| char::from_u32(0xE0000 + c as u32)).collect();
    alice.say(&format!("a\u{00AD}b\u{034F}c\u{180E}d\u{FE0F}e\u{2061}f{tags}g"))?;
    bob.want("alice: abcdefg")?;
    alice.say("/msg bob \u{200F}psst\u{2069}")?;
    Ok(bob.want("alice (private): psst")?)
}

fn empty(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say_raw(b"\n   \n\t\r\nreal\n")?;
    Ok(bob.want("alice: real")?)
}

fn indent(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    alice.say("    if x:  ")?;
    Ok(bob.want("alice:     if x:")?)
}

/// A line padded to wrap onto a row of its own could pass for the server's
/// on `nc`: after its first word, no run of spaces is longer than 8. Its
/// indentation, even of 12, stays whole.
fn gaps(ctx: &mut Ctx) -> Result<(), Miss> {
    let [mut alice, mut bob] = ctx.join_all(["alice", "bob"])?;
    let (indent, gap) = (" ".repeat(12), " ".repeat(8));
    alice.say(&format!("{indent}hi{}* bob left", " ".repeat(70)))?;
    let line = bob.line()?;
    let expected = format!("alice: {indent}hi{gap}* bob left");
    let sent = "alice> 12 spaces, hi, 70 spaces, * bob left";
    Ok(holds(line == expected, sent, &expected, &line)?)
}
