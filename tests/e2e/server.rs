//! The server's contract, pinned over real TCP connections to the real binary:
//! what is particular to this server (its first line, its options and their
//! limits, its deadlines, its memory). The wire protocol itself, the same for
//! any server, is checked by the checker's rules (`examples/check/rules.rs`,
//! run by the `check` module).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use assert_cmd::Command;
use predicates::prelude::*;

use crate::harness::{Client, Conn, Server};

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

/// A connection that sends nothing at all is closed at the name deadline,
/// and its place is freed.
#[test]
fn silent_connection_is_closed_at_the_deadline() {
    let server = Server::start(&["--name-timeout", "1", "--max-clients", "1"]);
    let mut silent = server.connect();
    silent.expect_greeting();
    silent.expect("! no name within 1 s; closing the connection");
    silent.expect_closed();
    // "closed: no name ..." comes first; "closed" alone once the place is free.
    server.expect_log("no name within 1s");
    server.expect_log("closed");
    let _alice = server.join("alice");
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
    run(&["client", "extra"])
        .code(2)
        .stderr(predicate::str::starts_with("error: unexpected word 'extra'"));
    run(&["client", "--port"])
        .code(2)
        .stderr(predicate::str::starts_with("error: --port needs a value"));
}

/// A newcomer is sent the last `--history` public lines (chat and the
/// console's `/say`), each marked `* [earlier] `, then the welcome.
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
    let mut bob = server.connect();
    bob.expect_greeting();
    bob.send("bob");
    bob.expect("* [earlier] alice: two");
    bob.expect("* [earlier] [server] three");
    bob.expect("* welcome bob; online (2): alice, bob (type /help for commands)");
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

/// The bytes a raw connection gets up to and including `end`; a failure if
/// they do not come in time (the connection's read timeout).
fn read_through(conn: &mut Conn, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    while !got.ends_with(end) {
        let mut byte = [0];
        match conn.reader.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            other => panic!("expected {end:?}, got {got:?} then {other:?}"),
        }
    }
    got
}

/// Telnet's commands never reach the room (issue 29): Ctrl-C in telnet
/// (interrupt, then "do timing mark") is answered as RFC 860 asks, the user
/// stays, and their next line is a command again; options offered or asked
/// for are refused; a byte 255 that starts no command stays text (U+FFFD).
#[test]
fn telnet_commands_are_answered_and_never_reach_the_room() {
    let server = Server::start(&[]);
    let [mut bob, mut tom] = server.join_all(["bob", "tom"]);
    tom.send_raw(b"\xff\xfb\x1f\xff\xfd\x01"); // WILL window size, DO echo
    assert_eq!(read_through(&mut tom, b"\xff\xfc\x01"), b"\xff\xfe\x1f\xff\xfc\x01");
    tom.send_raw(b"\xff\xf4\xff\xfd\x06"); // Ctrl-C: interrupt, DO timing mark
    assert_eq!(read_through(&mut tom, b"\xff\xfb\x06"), b"\xff\xfb\x06"); // WILL
    tom.send_raw(b"/who\r\n");
    assert_eq!(read_through(&mut tom, b"\n"), b"* online (2): bob, tom\n");
    tom.send_raw(b"a\xffb \xff\xff\xff\xf1c\r\n"); // 255 as text, twice; a no-op command
    bob.expect("tom: a\u{FFFD}b \u{FFFD}c");
}

/// The real `telnet`, where it is installed: Ctrl-C there leaves its user
/// in the room, seeing it, and their next line is a command.
#[test]
fn ctrl_c_in_the_real_telnet_leaves_its_user_in_the_room() {
    if std::process::Command::new("telnet").arg("-?").output().is_err() {
        eprintln!("telnet is not installed: its bytes are tested on their own above");
        return;
    }
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut command = std::process::Command::new("script");
    let telnet = format!("telnet 127.0.0.1 {}", server.addr.port());
    command.args(["-qefc", &telnet, "/dev/null"]);
    let mut tom = Client::spawn(command);
    tom.expect_output("please enter your name");
    tom.type_text("tom\r");
    bob.expect("* tom joined");
    tom.type_text("hal\x03");
    tom.type_text("/who\r");
    tom.expect_output("* online (2): bob, tom");
    tom.type_text("hello\r");
    bob.expect("tom: hello");
}
