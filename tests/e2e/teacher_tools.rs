//! The teacher's tools against a script: numbers and addresses, removals
//! that stick, bans, a readable console, rows that cannot pass for the
//! server's.

use std::collections::BTreeSet;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Client, Conn, Server};

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
    server.expect_stdout("*        2  127.0.0.10       bob");
    server.expect_stdout(&format!("*        3  127.0.0.11       {JOSE}"));
    server.expect_stdout("*        1  127.0.0.12       名前");
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
    server.expect_stdout("*        2  127.0.0.10       bob");
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
        server.expect_stdout("! usage: /ban ADDRESS|NUMBER [MINUTES, 1 to 10080: a week]");
    }
    server.console("/ban 127.0.0.2 5");
    let removed = "removed 2 user(s) (bot1, bot2), and 1 without a name";
    server.expect_stdout(&format!("* banned 127.0.0.2 for 5 min: {removed}"));
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
    server.expect_stdout("* banned 127.0.0.3 for 60 min: removed 0 user(s) ()");
    server.console("/who");
    server.expect_stdout("* online (2): alice, carol");
}

/// A teacher can aim and undo (issue 29): `/ban NUMBER` bans the address of
/// the user `/who` numbers so; `/bans` lists the bans and `/unban` lifts one;
/// the console's `/msg` reaches one student alone; commands are known in any
/// case, on the console and for users.
#[test]
fn a_teacher_can_aim_and_undo() {
    let mut server = Server::start(&[]);
    let mut alice = server.join_from("127.0.0.10", "alice");
    let mut bot = server.join_from(ATTACKER, "bot");
    alice.expect("* bot joined");
    server.console("/WHO");
    server.expect_stdout("* online (2): alice, bot");
    server.expect_stdout("*        1  127.0.0.10       alice");
    server.expect_stdout("*        2  127.0.0.2        bot");
    server.console("/Msg alice see me after class");
    server.expect_stdout("to alice (private): see me after class");
    alice.expect("* [server] (private): see me after class");
    server.console("/ban 2 30");
    server.expect_stdout("* banned 127.0.0.2 for 30 min: removed 1 user(s) (bot)");
    bot.expect("! you were removed by the server: your address is banned");
    alice.expect("* bot left (removed by the server)");
    server.console("/bans");
    server.expect_stdout("* banned (1): 127.0.0.2 (30 min left)");
    server.console("/unban 127.0.0.2");
    server.expect_stdout("* 127.0.0.2 may come in again");
    server.console("/unban 127.0.0.2");
    server.expect_stdout("! 127.0.0.2 is not banned");
    server.console("/bans");
    server.expect_stdout("* banned (0): ");
    let _back = server.join_from(ATTACKER, "bot");
    alice.expect("* bot joined");
    alice.send("/WHO");
    alice.expect("* online (2): alice, bot");
}

/// `/ban` closes every connection from the address at once, named or not,
/// and says how many (issue 30); on a listener for IPv6 and IPv4 alike
/// (`--host ::`), where an IPv4 client's address reads `::ffff:127.0.0.2`,
/// the address is compared in its IPv4 form.
#[test]
fn a_ban_closes_every_connection_from_the_address_on_a_dual_stack_listener() {
    let mut server = Server::start(&["--host", "::"]);
    server.expect_stdout_prefix("students join with");
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    let mut alice = Conn::connect_with("127.0.0.10", v4, None);
    alice.expect_greeting();
    alice.send("alice");
    alice.expect_prefix("* welcome alice;");
    let mut bots: Vec<Conn> = (0..10)
        .map(|i| {
            let mut bot = Conn::connect_with(ATTACKER, v4, None);
            bot.expect_greeting();
            bot.send(&format!("bot{i}"));
            bot.expect_prefix(&format!("* welcome bot{i};"));
            alice.expect(&format!("* bot{i} joined"));
            bot
        })
        .collect();
    for _ in 0..8 {
        let mut waiting = Conn::connect_with(ATTACKER, v4, None);
        waiting.expect_greeting();
        bots.push(waiting);
    }
    server.console("/who");
    server.expect_stdout_prefix("* online (11): ");
    server.expect_stdout("*        1  127.0.0.10       alice");
    for i in 0..10 {
        server.expect_stdout(&format!("*  {:>7}  127.0.0.2        bot{i}", i + 2));
    }
    server.console("/ban 127.0.0.2");
    let named = (0..10).map(|i| format!("bot{i}")).collect::<Vec<_>>().join(", ");
    let removed = format!("removed 10 user(s) ({named}), and 8 without a name");
    server.expect_stdout(&format!("* banned 127.0.0.2 for 60 min: {removed}"));
    for mut bot in bots {
        let mut line = bot.read_line();
        while line.ends_with(" left (removed by the server)") || line.ends_with(" joined") {
            line = bot.read_line();
        }
        assert_eq!(line, "! you were removed by the server: your address is banned");
        bot.expect_closed();
    }
}

/// Dimmed log lines in the editor end with this: the log lines on a
/// teacher's terminal are told apart by it.
const LOG_END: &str = "\x1b[0m";

/// On the teacher's terminal the log is paced: a storm of 120 log lines
/// shows 10, then, with the first line after its 5 s window, how many more
/// there were. With the log a pipe (`2> FILE`), every line is kept.
#[test]
fn the_log_on_the_teachers_terminal_is_paced_and_a_piped_log_is_whole() {
    let mut console = Client::server_in_terminal(&["--port", "0"]);
    console.expect_output("listening on 127.0.0.1:");
    let port = console.expect_output("\r\n");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    // Past the first window, so that the storm starts a window of its own
    // (a sleep to create the condition: only its lower bound matters).
    thread::sleep(Duration::from_millis(5500));
    let storm: Vec<Conn> = (0..60).map(|_| Conn::connect(addr)).collect();
    drop(storm); // each: `IP:PORT connected`, then `IP:PORT closed`
    for _ in 0..10 {
        let line = console.expect_output(LOG_END);
        assert!(line.contains("\x1b[2m127.0.0.1:"), "a log line: {line:?}");
        assert!(line.ends_with(" connected") || line.contains(" closed"), "{line:?}");
    }
    // The window began before its tenth line was shown: let it pass.
    thread::sleep(Duration::from_millis(5500));
    let late = Conn::connect(addr);
    let late_addr = late.stream.local_addr().unwrap();
    let between = console.expect_output("\x1b[2m(");
    assert!(!between.contains("\x1b[2m"), "an 11th log line in the window: {between:?}");
    let held = console.expect_output(&format!(
        " more log lines in the last 5 s; 2> FILE keeps them all){LOG_END}"
    ));
    let held: usize = held.parse().unwrap_or_else(|_| panic!("a count: {held:?}"));
    assert!(held >= 100, "only {held} log lines held back");
    console.expect_output(&format!("\x1b[2m{late_addr} connected{LOG_END}"));
    drop(late);

    // A pipe: every line, none held back.
    let server = Server::start(&[]);
    let storm: Vec<Conn> = (0..60).map(|_| server.connect()).collect();
    // Each connection's two lines: `connected`, then `closed` (with the
    // error, if it was reset).
    let mut waiting: BTreeSet<(String, &str)> = BTreeSet::new();
    for conn in &storm {
        let addr = conn.stream.local_addr().unwrap().to_string();
        waiting.insert((addr.clone(), "connected"));
        waiting.insert((addr, "closed"));
    }
    drop(storm);
    while !waiting.is_empty() {
        let line = server.expect_log("");
        let (addr, what) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let what = match what {
            "connected" => "connected",
            closed if closed.starts_with("closed") => "closed",
            _ => panic!("an unexpected log line: {line:?}"),
        };
        waiting.remove(&(addr.to_string(), what));
    }
}

/// The width `stty` gives the terminals below.
const WIDTH: usize = 40;

/// `chatroom SUBCOMMAND ARGS...` in a pseudo-terminal `WIDTH` columns wide
/// (`script`'s own has no size: the program would take 80).
fn in_a_narrow_terminal(subcommand: &str, args: &[&str]) -> Client {
    let binary = assert_cmd::cargo::cargo_bin("chatroom");
    let script = format!(
        "stty cols {WIDTH} rows 24 && exec '{}' {subcommand} {}",
        binary.display(),
        args.join(" ")
    );
    let mut command = Command::new("script");
    command.args(["-qefc", &script, "/dev/null"]).env("TERM", "xterm");
    Client::spawn(command)
}

/// No row of `screen` starts with `* bob left`: rows end at `\n`, and a
/// row's start is also where `\r` (and the editor's `\x1b[K`, clearing the
/// row) put the cursor.
fn assert_never_at_a_row_start(screen: &str, context: &str) {
    for row in screen.split(['\n', '\r']) {
        let shown = row.trim_start_matches("\x1b[K");
        assert!(!shown.starts_with("* bob left"), "{context}: a row starts {shown:?}: {screen:?}");
    }
}

/// A line padded with spaces so that `* bob left` would start a row of its
/// own shows it on an indented row instead, on a user's terminal: nothing a
/// user sends can pass for the server's notice.
#[test]
fn padded_lines_cannot_start_a_row_on_a_users_terminal() {
    let server = Server::start(&[]);
    let mut bob = server.join_from("127.0.0.10", "bob");
    let port = server.addr.port().to_string();
    let mut al =
        in_a_narrow_terminal("client", &["--host", "127.0.0.1", "--port", &port, "--name", "al"]);
    al.expect_output("* welcome al;");
    bob.expect("* al joined");
    // `bob: ` and the spaces fill the row exactly; the row breaks at the
    // last space, which goes.
    let spaces = " ".repeat(WIDTH - "bob: ".len());
    bob.send(&format!("{spaces}* bob left"));
    let screen = al.expect_output(&format!("bob: {}\r\n  * bob left", &spaces[1..]));
    assert_never_at_a_row_start(&screen, "before");
    // Longer padding: wherever the row breaks, not at the notice's start.
    bob.send(&format!("{spaces}{spaces} * bob left"));
    bob.send("done");
    let screen = al.expect_output("bob: done");
    assert_never_at_a_row_start(&screen, "longer");
}

/// The same on the teacher's console, where a line is shown after its time
/// (`HH:MM bob: ...`): the padded notice lands on an indented row.
#[test]
fn padded_lines_cannot_start_a_row_on_the_teachers_console() {
    let mut console = in_a_narrow_terminal("server", &["--port", "0"]);
    console.expect_output("listening on 127.0.0.1:");
    let port = console.expect_output("\r\n");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut bob = Conn::connect(addr);
    bob.expect_greeting();
    bob.send("bob");
    bob.expect_prefix("* welcome bob;");
    console.expect_output(" * bob joined\r\n");
    // `HH:MM bob: ` and the spaces fill the row exactly; the row breaks at
    // the last space, which goes.
    let spaces = " ".repeat(WIDTH - "HH:MM bob: ".len());
    bob.send(&format!("{spaces}* bob left"));
    let screen = console.expect_output(&format!(" bob: {}\r\n  * bob left", &spaces[1..]));
    assert_never_at_a_row_start(&screen, "console");
    bob.send("done");
    let screen = console.expect_output(" bob: done");
    assert_never_at_a_row_start(&screen, "console, after");
}

/// Private answers cost their asker's address by their size (a line a
/// KiB), and a long one is sent only while that allowance is not in debt
/// (issue 30): of 60 `/who`s of over 4 KiB sent at once, no more are
/// answered than the allowance pays for, the rest are refused, and a user
/// at another address still gets a line through at once.
#[test]
fn private_answers_cost_their_asker_by_their_size() {
    let server = Server::start(&[]); // 50 lines for the address, 20 a second
    // 55 names of 23 characters, 83 bytes each, from ten addresses.
    let crowd: Vec<Conn> = (0..55)
        .map(|i| {
            let name = format!("{}{i:03}", "𠀀".repeat(20));
            server.join_from(&format!("127.0.0.{}", 30 + i % 10), &name)
        })
        .collect();
    let mut bob = server.join_from("127.0.0.10", "bob");
    let started = Instant::now(); // the asker's allowance regrows from here
    let mut asker = server.join_from(ATTACKER, "asker");
    bob.expect("* asker joined");
    asker.send("/who");
    let answer = asker.expect_prefix("* online (57): asker, bob, 𠀀");
    let size = (answer.len() + 1) as f64 / 1024.0; // in lines; the `\n` counts
    assert!(size > 4.0, "a /who of {size} KiB");
    asker.send_raw("/who\n".repeat(60).as_bytes());
    let refusal = "! that answer is long, and you asked again too soon; try again in a moment";
    let (mut answered, mut refused) = (1, 0);
    for _ in 0..60 {
        let line = asker.read_line();
        assert!(line == answer || line == refusal, "{line:?}");
        (answered, refused) =
            (answered + usize::from(line == answer), refused + usize::from(line == refusal));
    }
    bob.send("marker");
    asker.expect("bob: marker");
    // Each answer is sent only while the address's allowance (50 lines,
    // then 20 a second) is not in debt: at most one more than it paid for.
    let allowed = ((50.0 + 20.0 * started.elapsed().as_secs_f64()) / size).ceil() as usize + 1;
    assert!(answered <= allowed, "{answered} of 61 answered (allowed {allowed})");
    assert!(refused > 0, "none of 60 refused");
    drop(crowd);
}

/// A log line on the teacher's console is dimmed with escape codes, which
/// take no room on the screen: a line that fits its row is not wrapped, and
/// no wrap ever cuts a code in two (that would print a stray `[0m` and
/// leave the rest of the screen dim).
#[test]
fn dimmed_log_lines_are_wrapped_by_what_they_show() {
    let mut console = in_a_narrow_terminal("server", &["--port", "0"]);
    console.expect_output("listening on 127.0.0.1:");
    let port = console.expect_output("\r\n");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut user = Conn::connect_with("127.0.0.10", addr, None);
    // `IP:PORT joined as NAME`, 35 columns: counted with its 4-byte codes,
    // the closing code would be cut after its ESC.
    let logged = format!("{} joined as ", user.stream.local_addr().unwrap());
    let name = "a".repeat(35 - logged.len());
    user.expect_greeting();
    user.send(&name);
    user.expect_prefix(&format!("* welcome {name};"));
    let before = console.expect_output(&format!("\x1b[2m{logged}{name}"));
    let after = console.expect_output("\r\n");
    assert_eq!(after, LOG_END, "the log line's end, cut: {after:?}");
    assert!(!before.contains("\x1b\r"), "a code cut by a wrap: {before:?}");
}

/// Names that cannot be told apart are one name, a lone combining mark is
/// no name, a Latin name with a Cyrillic letter in it is refused, and the
/// server's names cannot be borrowed in fullwidth letters.
#[test]
fn names_that_look_alike_are_refused() {
    let server = Server::start(&[]);
    let _alice = server.join("alice");
    let mut mallory = server.connect();
    mallory.expect_greeting();
    mallory.send("aIice");
    mallory.expect("! the name aIice is taken; try another");
    mallory.send("\u{0430}lice");
    mallory.expect(
        "! a name may not mix scripts, except Latin with Chinese, Japanese or Korean; try again",
    );
    mallory.send("\u{0345}");
    mallory.expect("! a name needs at least one letter; try again");
    mallory.send("ｓｅｒｖｅｒ");
    mallory.expect("! that name is kept for the server; try another");
    mallory.send("mallory");
    mallory.expect_prefix("* welcome mallory;");
}

/// For `nc` and `telnet`, which wrap nothing themselves, the server cuts a
/// long run of spaces inside a line to eight: padding cannot push the rest
/// of a line onto a row of its own. Indentation is kept whole.
#[test]
fn the_server_cuts_long_gaps_inside_a_line() {
    let server = Server::start(&[]);
    let [mut al, mut bob] = server.join_all(["al", "bob"]);
    bob.send(&format!("hi{}* [server] the test is cancelled", " ".repeat(70)));
    al.expect(&format!("bob: hi{}* [server] the test is cancelled", " ".repeat(8)));
    bob.send(&format!("{}return x", " ".repeat(16)));
    al.expect(&format!("bob: {}return x", " ".repeat(16)));
}

/// `/kick NAME` removes the one whose name is NAME (in any case); a name
/// that only looks the same is not taken for it, and the console says whose
/// it is (issue 30).
#[test]
fn kick_removes_the_name_typed_and_names_a_look_alike() {
    let mut server = Server::start(&[]);
    let mut alice = server.join_from("127.0.0.10", "ɑlice"); // a Latin alpha
    server.console("/kick alice");
    server.expect_stdout(
        "! no user named alice, but ɑlice (number 1) reads the same: use the number",
    );
    server.console("/kick 1 impostor");
    server.expect_stdout("* removed ɑlice");
    alice.expect("! you were removed by the server: impostor");
    let mut bob = server.join_from("127.0.0.11", "bob");
    server.console("/kick BOB");
    server.expect_stdout("* removed bob");
    bob.expect("! you were removed by the server: no reason given");
}
