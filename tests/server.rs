//! The server's contract, pinned over real TCP connections to the real binary.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use assert_cmd::Command;
use common::{Conn, Server};
use predicates::prelude::*;

/// The first stdout line is exactly `listening on IP:PORT`, with the real port.
#[test]
fn first_line_names_the_real_address() {
    let server = Server::start(&[]);
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    assert_ne!(server.addr.port(), 0);
}

/// A port already in use: one `error: cannot listen on ADDR: REASON` line, exit 1.
#[test]
fn busy_port_is_an_error_with_exit_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    Command::cargo_bin("chatroom")
        .unwrap()
        .args(["server", "--port", &port.to_string()])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with(format!("error: cannot listen on 127.0.0.1:{port}: ")));
}

/// On connect the server greets and asks for a name; the newcomer's welcome
/// lists who is online and everyone else hears `* NAME joined`.
#[test]
fn join_is_welcomed_and_announced() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.connect();
    bob.expect_greeting();
    bob.send("bob");
    bob.expect("* welcome bob; online (2): alice, bob (type /help for commands)");
    alice.expect("* bob joined");
    server.expect_log("joined as bob");
}

/// Bad names get `! why` and the same connection may try again.
#[test]
fn invalid_names_are_refused_and_asked_again() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    conn.expect_greeting();
    conn.send(&"a".repeat(25));
    conn.expect("! a name has at most 24 characters; try again");
    conn.send("two words");
    conn.expect("! a name may hold only letters, digits, _ and -, not ' '; try again");
    conn.send("   ");
    conn.expect("! a name needs at least one letter; try again");
    conn.send("bob:");
    conn.expect("! a name may hold only letters, digits, _ and -, not ':'; try again");
    let name24 = "é".repeat(24);
    conn.send(&name24);
    conn.expect(&format!("* welcome {name24}; online (1): {name24} (type /help for commands)"));
}

/// Names are unique case-insensitively; a taken one can be replaced.
#[test]
fn taken_name_is_refused_case_insensitively() {
    let server = Server::start(&[]);
    let _alice = server.join("alice");
    let mut conn = server.connect();
    conn.expect_greeting();
    conn.send("ALICE");
    conn.expect("! the name ALICE is taken; try another");
    conn.send("Alice_2");
    conn.expect_prefix("* welcome Alice_2; online (2): alice, Alice_2");
}

/// A line reaches every other user as `NAME: TEXT`, and is not echoed to
/// its sender (the sender's next line is the answer to its `/who`). Its
/// leading spaces are kept (pasted code keeps its indentation), its trailing
/// ones trimmed. (Until issue 11, both ends were trimmed.)
#[test]
fn chat_line_reaches_everyone_else_without_echo() {
    let server = Server::start(&[]);
    let [mut alice, mut bob, mut carol] = server.join_all(["alice", "bob", "carol"]);
    alice.send("  hello, room  ");
    bob.expect("alice:   hello, room");
    carol.expect("alice:   hello, room");
    alice.send("/who");
    alice.expect("* online (3): alice, bob, carol");
}

/// One broker, one order: two users receiving lines from two senders at once
/// see them in exactly the same order.
#[test]
fn everyone_sees_the_same_order() {
    // Flood control off: this test is about order, not pace.
    let server = Server::start(&["--max-line-rate", "0"]);
    let [alice, bob, mut carol, mut dave] = server.join_all(["alice", "bob", "carol", "dave"]);
    let n = 200;
    let send_all = |mut conn: Conn, tag: &'static str| {
        thread::spawn(move || {
            for i in 0..n {
                conn.send(&format!("{tag}{i}"));
            }
            conn
        })
    };
    let a = send_all(alice, "a");
    let b = send_all(bob, "b");
    let carol_saw: Vec<String> = (0..2 * n).map(|_| carol.read_line()).collect();
    let dave_saw: Vec<String> = (0..2 * n).map(|_| dave.read_line()).collect();
    a.join().unwrap();
    b.join().unwrap();
    assert_eq!(carol_saw, dave_saw);
    // Each sender's own lines keep their order, and none is missing.
    let from_alice: Vec<String> =
        carol_saw.iter().filter(|l| l.starts_with("alice: ")).cloned().collect();
    let expected: Vec<String> = (0..n).map(|i| format!("alice: a{i}")).collect();
    assert_eq!(from_alice, expected);
}

/// `/who` lists everyone online, sorted case-insensitively.
#[test]
fn who_lists_users_sorted() {
    let server = Server::start(&[]);
    let _c = server.join("carol");
    let _a = server.join("Alice");
    let mut b = server.join("bob");
    b.send("/who");
    b.expect("* online (3): Alice, bob, carol");
}

/// `/msg NAME TEXT` reaches NAME alone as `FROM (private): TEXT`.
#[test]
fn private_message_reaches_only_its_target() {
    let server = Server::start(&[]);
    let [mut alice, mut bob, mut carol] = server.join_all(["alice", "bob", "carol"]);
    alice.send("/msg BOB meet me at 5");
    bob.expect("alice (private): meet me at 5");
    // carol's next line is alice's public one: the private one never came.
    alice.send("public now");
    carol.expect("alice: public now");
    bob.expect("alice: public now");
}

/// `/msg` errors: unknown user, missing text.
#[test]
fn private_message_errors() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    alice.send("/msg zed hello");
    alice.expect("! no user named zed");
    alice.send("/msg zed");
    alice.expect("! usage: /msg NAME TEXT");
    alice.send("/msg");
    alice.expect("! usage: /msg NAME TEXT");
}

/// `/help` answers with notices; an unknown `/word` with an error.
#[test]
fn help_and_unknown_commands() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    alice.send("/help");
    alice.expect("* commands:");
    for _ in 0..5 {
        alice.expect_prefix("*   ");
    }
    alice.send("/dance now");
    alice.expect("! unknown command /dance (type /help for the list)");
}

/// `/quit` says bye, closes, and everyone else hears `* NAME left`.
#[test]
fn quit_says_bye_and_closes() {
    let server = Server::start(&[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    alice.send("/quit");
    alice.expect("* bye alice, see you soon");
    alice.expect_closed();
    bob.expect("* alice left");
    server.expect_log("alice left");
    // The name is free again.
    let _alice2 = server.join("alice");
}

/// Leaving without `/quit` (end of input) also gives `* NAME left`.
#[test]
fn end_of_input_is_a_leave() {
    let server = Server::start(&[]);
    let alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.stream.shutdown(Shutdown::Write).unwrap();
    bob.expect("* alice left");
}

/// A reset (the client vanished with data unread) is a leave, and the server
/// goes on serving.
#[test]
fn reset_is_a_leave_and_the_server_goes_on() {
    let server = Server::start(&[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    bob.send("unread by alice");
    // Half a line, then the socket closes with unread data: the kernel sends
    // a reset instead of a normal close.
    alice.send_raw(b"half a li");
    // Wait until bob's line sits unread in alice's socket (peek does not
    // consume it), then close: with unread data, the kernel resets.
    let mut byte = [0u8; 1];
    alice.stream.peek(&mut byte).unwrap();
    drop(alice);
    bob.expect("* alice left");
    let mut carol = server.join("carol");
    carol.send("still here");
    bob.expect("* carol joined");
    bob.expect("carol: still here");
}

/// Control characters never reach another user's terminal; a tab becomes a
/// space; `\r\n` works; bytes that are not UTF-8 become U+FFFD.
#[test]
fn text_is_cleaned_before_it_is_relayed() {
    let server = Server::start(&[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    alice.send_raw(b"\x1b[2Jred\x07\ttab\x7f \xc2\x9bcsi\x00\r\n");
    bob.expect("alice: [2Jred tab csi");
    alice.send_raw(b"caf\xe9 ok\n");
    bob.expect("alice: caf\u{FFFD} ok");
    alice.send_raw("già fatto\r\n".as_bytes());
    bob.expect("alice: già fatto");
    // Names are cleaned too: the escape is dropped and the rest checked.
    let mut conn = server.connect();
    conn.expect_greeting();
    conn.send_raw(b"car\x1bol\r\n");
    conn.expect_prefix("* welcome carol;");
    bob.expect("* carol joined");
}

/// A line of 1024 bytes is relayed; 1025 earns `! line too long` and the
/// connection stays open.
#[test]
fn line_limit_is_1024_bytes() {
    let server = Server::start(&[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    let ok = "x".repeat(1024);
    alice.send(&ok);
    bob.expect(&format!("alice: {ok}"));
    alice.send(&"y".repeat(1025));
    alice.expect("! line too long (at most 1024 bytes); it was not sent");
    alice.send("after");
    bob.expect("alice: after");
}

/// Empty lines are ignored: nothing is relayed for them.
#[test]
fn empty_lines_are_ignored() {
    let server = Server::start(&[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    alice.send_raw(b"\n   \n\t\r\nreal\n");
    bob.expect("alice: real");
}

/// 50 MB without a newline is refused as too long, and the server's memory
/// stays small while it reads them.
#[test]
fn fifty_megabytes_without_newline_keep_memory_small() {
    // Flood control off: every byte counts against the sender's allowance,
    // so at the default rate these 50 MB would take 40 minutes to be read.
    // This test is about memory; `bytes_count_against_the_allowance` pins
    // the pace.
    let server = Server::start(&["--max-line-rate", "0"]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    let chunk = vec![b'z'; 1 << 20];
    for _ in 0..50 {
        alice.send_raw(&chunk);
    }
    alice.send_raw(b"\nstill talking\n");
    alice.expect("! line too long (at most 1024 bytes); it was not sent");
    bob.expect("alice: still talking");
    let peak = server.peak_rss_kib();
    assert!(peak < 20 * 1024, "server peak RSS {peak} KiB after 50 MB");
}

/// Over `--max-clients` connections: `! server full`, then close. A place
/// freed is a place taken again.
#[test]
fn full_server_refuses_then_accepts_again() {
    let server = Server::start(&["--max-clients", "2"]);
    let mut alice = server.join("alice");
    let mut waiting = server.connect(); // unnamed, but holds a place
    waiting.expect_greeting();
    let mut third = server.connect();
    third.expect("! server full (limit 2); try again later");
    third.expect_closed();
    alice.send("/quit");
    alice.expect("* bye alice, see you soon");
    server.expect_log("closed");
    let mut fourth = server.connect();
    fourth.expect_greeting();
}

/// A connection that never names itself is closed at the name deadline and
/// its place is freed.
#[test]
fn no_name_in_time_is_closed() {
    let server = Server::start(&["--name-timeout", "1", "--max-clients", "1"]);
    let mut silent = server.connect();
    silent.expect_greeting();
    // Sending part of a name does not extend the deadline.
    silent.send_raw(b"ali");
    silent.expect("! no name within 1 s; closing the connection");
    silent.expect_closed();
    server.expect_log("no name within 1s");
    server.expect_log("closed");
    let mut next = server.connect();
    next.expect_greeting();
}

/// A user who stops reading is cut off once their queue is full; the others
/// get every line, in order, and `* NAME left (...)`.
#[test]
fn slow_reader_is_dropped_and_nobody_waits() {
    // Flood control off, so that bob can fill the stalled user's queue fast.
    let server = Server::start(&["--max-line-rate", "0"]);
    let _stalled = server.join("stalled"); // never reads again
    let [mut bob, mut carol] = server.join_all(["bob", "carol"]);
    // bob floods from a thread until carol has seen the cut-off.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flood = Arc::clone(&stop);
    let mut flood = bob.stream.try_clone().unwrap();
    let flooder = thread::spawn(move || {
        let text = "f".repeat(1000);
        let mut sent = 0u64;
        // Bounded: 200 MB is far more than the kernel and the outbox hold.
        while !stop_flood.load(Ordering::SeqCst) && sent < 200_000 {
            if flood.write_all(format!("{sent} {text}\n").as_bytes()).is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let mut next = 0u64;
    loop {
        let line = carol.read_line();
        if line == "* stalled left (too slow: stopped reading)" {
            break;
        }
        assert!(
            line.starts_with(&format!("bob: {next} ")),
            "line {next} from bob, got {:.40}",
            line
        );
        next += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let sent = flooder.join().unwrap();
    // Everything bob sent still reaches carol, in order, after the cut-off.
    for i in next..sent {
        assert!(carol.read_line().starts_with(&format!("bob: {i} ")));
    }
    bob.send("/who");
    bob.skip_to("* online");
}

/// `--help`, `--version` and usage errors (exit 2).
#[test]
fn command_line_help_version_and_usage_errors() {
    let run = |args: &[&str]| Command::cargo_bin("chatroom").unwrap().args(args).assert();
    run(&["--help"]).code(0).stdout(predicate::str::contains("chatroom server"));
    run(&["server", "--help"]).code(0).stdout(predicate::str::contains("--max-clients N"));
    run(&["client", "--help"]).code(0).stdout(predicate::str::contains("--name NAME"));
    run(&["--version"]).code(0).stdout(format!("chatroom {}\n", env!("CARGO_PKG_VERSION")));
    run(&[]).code(2).stderr(predicate::str::starts_with("error: "));
    run(&["serve"])
        .code(2)
        .stderr(predicate::str::starts_with("error: unknown subcommand 'serve'"));
    run(&["server", "--port", "http"]).code(2).stderr(predicate::str::starts_with(
        "error: invalid --port 'http': expected a port number",
    ));
    run(&["server", "--bogus"])
        .code(2)
        .stderr(predicate::str::starts_with("error: unknown option '--bogus'"));
    run(&["client", "--port"])
        .code(2)
        .stderr(predicate::str::starts_with("error: --port needs a value"));
}

/// A newcomer is sent the last `--history` public lines (chat and the
/// console's `/say`) right after the welcome, each marked `* [earlier] `.
#[test]
fn late_joiners_see_what_was_said() {
    let mut server = Server::start(&["--history", "2"]);
    let mut alice = server.join("alice");
    alice.send("one");
    alice.send("two");
    // Her `/who` is answered once her lines are through the broker.
    alice.send("/who");
    alice.expect("* online (1): alice");
    server.console("/say three");
    alice.skip_to("* [server] three");
    let mut bob = server.join("bob");
    bob.expect("* [earlier] alice: two");
    bob.expect("* [earlier] [server] three");
    alice.send("four");
    bob.expect("alice: four");
}

/// `--history 0`: nothing said before is sent.
#[test]
fn history_can_be_off() {
    let server = Server::start(&["--history", "0"]);
    let mut alice = server.join("alice");
    alice.send("before");
    alice.send("/who");
    alice.expect("* online (1): alice");
    let mut bob = server.join("bob");
    alice.send("after");
    bob.expect("alice: after");
}

/// A name may carry combining accents after a letter, as some keyboards
/// type `é`: `e` then U+0301.
#[test]
fn names_take_combining_accents() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    conn.expect_greeting();
    conn.send("\u{301}eva");
    conn.expect("! a name may hold only letters, digits, _ and -, not '\\u{301}'; try again");
    conn.send("Jose\u{301}");
    conn.expect_prefix("* welcome Jose\u{301};");
}
