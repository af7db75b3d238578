//! The teacher's view: the room on the server's console, the transcript, the
//! address to give out, names kept for the server, and the console's line
//! editor in a real terminal.

use std::time::{Duration, Instant};

use crate::harness::{Client, Conn, PATIENCE, Server, chatroom, room_line};

/// The console shows the room as it happens (`HH:MM ` and the line as users
/// see it): joins, public lines, the teacher's `/say`, leaves. Private
/// messages never appear; the technical lines stay on stderr.
#[test]
fn the_console_shows_the_room_but_not_private_messages() {
    let mut server = Server::start(&[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    server.expect_room("* alice joined");
    server.expect_room("* bob joined");
    alice.send("/msg bob a secret");
    bob.expect("alice (private): a secret");
    alice.send("hello class");
    bob.expect("alice: hello class");
    let line = server.expect_room("alice: hello class");
    assert!(room_line(&line).is_some(), "HH:MM first: {line:?}");
    server.console("/say quiz at ten");
    server.expect_room("* [server] quiz at ten");
    server.expect_stdout("* said to 2 user(s)");
    bob.send("/quit");
    server.expect_room("* bob left");
    server.expect_log("joined as alice");
    server.expect_log("bob left");
    // Nothing private was shown: the console's next line is the answer to
    // this /who, and nothing between mentioned the secret.
    server.console("/who");
    server.expect_stdout("* online (1): alice");
    assert!(!server.stdout_so_far().contains("secret"));
}

/// `--transcript FILE` appends every public line, join, leave, kick and `/say`,
/// one a line with date and time, written as they happen; private messages
/// are not in it.
#[test]
fn the_transcript_keeps_what_the_room_saw() {
    let path = std::env::temp_dir().join(format!("transcript-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut server = Server::start(&["--transcript", path.to_str().unwrap()]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    alice.send("/msg bob a secret");
    bob.expect("alice (private): a secret");
    alice.send("good morning");
    bob.expect("alice: good morning");
    server.console("/say quiz at ten");
    server.expect_stdout("* said to 2 user(s)");
    server.console("/kick bob enough");
    server.expect_stdout("* removed bob");
    let expected = [
        "* alice joined",
        "* bob joined",
        "alice: good morning",
        "* [server] quiz at ten",
        "* bob left (removed by the server)",
    ];
    // Written as it happens, by a thread of its own: wait for the last line.
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() >= expected.len() || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_file(&path);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{text}");
    for (line, wanted) in lines.iter().zip(expected) {
        // `YYYY-MM-DD HH:MM:SS ` then the line.
        let (date, rest) = line.split_at(20);
        assert_eq!(rest, wanted);
        let shape = date.bytes().all(|b| b.is_ascii_digit() || b"-: ".contains(&b));
        assert!(shape && &date[4..5] == "-" && &date[13..14] == ":", "{line:?}");
    }
    assert!(!text.contains("secret"));
}

/// A transcript that cannot be written (a full disk) is said once on the
/// console, and the room goes on.
#[test]
fn a_failing_transcript_is_reported_once() {
    let mut server = Server::start(&["--transcript", "/dev/full"]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    server.expect_stdout_prefix("! cannot write the transcript /dev/full: ");
    for i in 0..5 {
        alice.send(&format!("line {i}"));
        bob.expect(&format!("alice: line {i}"));
    }
    server.console("/who");
    // The next line that is not the room's is the answer: no second error.
    server.expect_stdout("* online (2): alice, bob");
}

/// A transcript that cannot be opened is an error at start, exit 1.
#[test]
fn a_transcript_that_cannot_be_opened_is_an_error() {
    let output = chatroom()
        .args(["server", "--port", "0", "--transcript", "/no/such/dir/t.txt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: cannot open the transcript /no/such/dir/t.txt: "),
        "{stderr}"
    );
}

/// Listening on every interface, the server says how students reach it:
/// this machine's addresses (from `hostname -I`), or where to find them.
#[test]
fn the_server_says_where_students_join() {
    let server = Server::start(&["--host", "0.0.0.0"]);
    let port = server.addr.port();
    let line = server.expect_stdout_prefix("students join with");
    assert!(line.ends_with(&format!(" {port}")), "{line}");
    // On the loopback address alone, nothing to say.
    let mut local = Server::start(&[]);
    local.console("/who");
    local.expect_stdout("* online (0): ");
}

/// In a terminal the console is the client's line editor: what the room
/// shows is printed above the command being typed, which stays whole;
/// Ctrl-C clears a half-typed command, then shuts the server down, and the
/// terminal is restored.
#[test]
fn the_console_in_a_terminal_keeps_the_command_whole() {
    let mut console = Client::server_in_terminal(&["--port", "0"]);
    console.expect_output("listening on 127.0.0.1:");
    let port = console.expect_output("\r\n");
    console.type_text("/say hel");
    console.expect_output("> /say hel");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut bob = Conn::connect(addr);
    bob.expect_greeting();
    bob.send("bob");
    bob.expect_prefix("* welcome bob;");
    console.expect_output(" * bob joined\r\n\r\x1b[K> /say hel");
    console.type_text("lo\r");
    bob.expect("* [server] hello");
    // Ctrl-C on a half-typed command clears it, and stops nothing; on an
    // empty line it stops the server.
    console.type_text("/say half");
    console.expect_output("> /say half");
    console.type_text("\x03");
    console.expect_output("\r\x1b[K> ");
    console.type_text("/say still here\r");
    bob.expect("* [server] still here");
    console.type_text("\x03");
    bob.expect("* server is shutting down");
    let (code, _) = console.wait_exit();
    assert_eq!(code, Some(0));
    console.assert_terminal_restored("");
}

/// A server that cannot start after taking the terminal (here: a transcript
/// it cannot open) says why, exits 1, and leaves the terminal as it was.
#[test]
fn a_server_that_cannot_start_puts_the_terminal_back() {
    let log = "/nonexistent/chatroom.log";
    let mut console = Client::server_in_terminal(&["--port", "0", "--transcript", log]);
    console.expect_output(&format!("error: cannot open the transcript {log}: "));
    let (code, _) = console.wait_exit();
    assert_eq!(code, Some(1));
    console.assert_terminal_restored("");
}
