//! The teacher's tools against a script: numbers and addresses, removals
//! that stick, bans, a readable console, rows that cannot pass for the
//! server's.

use std::collections::BTreeSet;

use crate::harness::Server;

const ATTACKER: &str = "127.0.0.2";

/// The name `José` typed as `e` then a combining acute accent (U+0301), as
/// some keyboards send it: hard to type on the teacher's keyboard.
const JOSE: &str = "Jose\u{301}";

/// Console `/who` lists each user with the number `/kick` takes and their
/// address, in `/who`'s order (not the numbers' order); `/kick NUMBER
/// REASON` removes that user, whose name may be hard to type.
#[test]
fn console_who_numbers_users_and_kick_takes_the_number() {
    let mut server = Server::start(&[]);
    // Connection numbers 1, 2, 3 in this order; `/who` sorts by name.
    let mut namae = server.join_from("127.0.0.12", "名前");
    let mut bob = server.join_from("127.0.0.10", "bob");
    namae.expect("* bob joined");
    let mut jose = server.join_from("127.0.0.11", JOSE);
    namae.expect(&format!("* {JOSE} joined"));
    bob.expect(&format!("* {JOSE} joined"));
    server.console("/who");
    server.expect_stdout(&format!("* online (3): bob, {JOSE}, 名前"));
    server.expect_stdout("*        2  bob  127.0.0.10");
    server.expect_stdout(&format!("*        3  {JOSE}  127.0.0.11"));
    server.expect_stdout("*        1  名前  127.0.0.12");
    server.console("/kick 3 spamming the room");
    server.expect_stdout(&format!("* removed {JOSE}"));
    jose.expect("! you were removed by the server: spamming the room");
    jose.expect_closed();
    bob.expect(&format!("* {JOSE} left (removed by the server)"));
    namae.expect(&format!("* {JOSE} left (removed by the server)"));
    server.console("/kick 1");
    server.expect_stdout("* removed 名前");
    namae.expect("! you were removed by the server: no reason given");
    namae.expect_closed();
    bob.expect("* 名前 left (removed by the server)");
    // A number nobody has (any more) is not a user.
    server.console("/kick 3");
    server.expect_stdout("! no user named 3");
    server.console("/who");
    server.expect_stdout("* online (1): bob");
    server.expect_stdout("*        2  bob  127.0.0.10");
    bob.send("/who");
    bob.expect("* online (1): bob");
}

/// A name removed with `/kick` is kept out: coming back under it, in any
/// case and from another address, is refused with the reason; another name
/// is accepted on the same connection.
#[test]
fn a_kicked_name_is_kept_out_in_any_case_from_any_address() {
    let mut server = Server::start(&[]);
    let mut jose = server.join_from(ATTACKER, JOSE);
    let mut alice = server.join_from("127.0.0.10", "alice");
    jose.expect("* alice joined");
    server.console("/kick 1 flooding");
    server.expect_stdout(&format!("* removed {JOSE}"));
    jose.expect("! you were removed by the server: flooding");
    jose.expect_closed();
    alice.expect(&format!("* {JOSE} left (removed by the server)"));
    let upper = "JOSE\u{301}";
    let mut kept = Vec::new();
    for (source, name) in [(ATTACKER, JOSE), ("127.0.0.3", upper), ("127.0.0.4", "jose\u{301}")] {
        let mut again = server.connect_from(source);
        again.expect_greeting();
        again.send(name);
        again.expect(&format!(
            "! the name {name} was removed by the server a short while ago; try another"
        ));
        // Still connected, still choosing: another name goes in.
        let other = format!("jose{}", &source[source.len() - 1..]);
        again.send(&other);
        again.expect_prefix(&format!("* welcome {other}; online ("));
        alice.expect(&format!("* {other} joined"));
        kept.push(again);
    }
    // Nobody else got the kept name meanwhile.
    alice.send("/who");
    alice.expect("* online (4): alice, jose2, jose3, jose4");
}

/// `/ban ADDRESS MINUTES`: everyone from there is removed (named or still
/// choosing a name) and told why, the others see them leave, and a new
/// connection from there is refused and closed while other addresses join
/// as before. Bad usage is answered with the usage.
#[test]
fn console_ban_removes_an_address_and_keeps_it_out() {
    let mut server = Server::start(&[]);
    let mut alice = server.join_from("127.0.0.10", "alice");
    let mut bot1 = server.join_from(ATTACKER, "bot1");
    alice.expect("* bot1 joined");
    let mut bot2 = server.join_from(ATTACKER, "bot2");
    alice.expect("* bot2 joined");
    bot1.expect("* bot2 joined");
    let mut nameless = server.connect_from(ATTACKER);
    nameless.expect_greeting();
    for usage in ["/ban nonsense", "/ban 127.0.0.2 0", "/ban 127.0.0.2 10081", "/ban"] {
        server.console(usage);
        server.expect_stdout("! usage: /ban ADDRESS [MINUTES, at most a week]");
    }
    server.console("/ban 127.0.0.2 5");
    server.expect_stdout("* banned 127.0.0.2 for 5 min");
    for conn in [&mut bot1, &mut bot2, &mut nameless] {
        // Those removed first are seen leaving by those removed after.
        let mut line = conn.read_line();
        while line.ends_with(" left (removed by the server)") {
            line = conn.read_line();
        }
        assert_eq!(line, "! you were removed by the server: your address is banned");
        conn.expect_closed();
    }
    // The order among those removed together is the server's to choose.
    let left: BTreeSet<String> = (0..2).map(|_| alice.read_line()).collect();
    let expected = ["* bot1 left (removed by the server)", "* bot2 left (removed by the server)"];
    assert_eq!(left, expected.map(String::from).into());
    let mut again = server.connect_from(ATTACKER);
    again.expect("! your address is banned by the server; try again later");
    again.expect_closed();
    let _carol = server.join_from("127.0.0.10", "carol");
    alice.expect("* carol joined");
    // Without MINUTES: an hour.
    server.console("/ban 127.0.0.3");
    server.expect_stdout("* banned 127.0.0.3 for 60 min");
    server.console("/who");
    server.expect_stdout("* online (2): alice, carol");
}
