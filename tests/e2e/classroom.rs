//! A real classroom: the teacher's console, flood control, and faults (a
//! killed server, no file descriptors left).

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Client, Conn, PATIENCE, Server};

/// `/say TEXT` on the console reaches every user as `* [server] TEXT`.
#[test]
fn console_say_reaches_everyone() {
    let mut server = Server::start(&[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    server.console("/say quiz in five minutes");
    server.expect_stdout("* said to 2 user(s)");
    alice.expect("* [server] quiz in five minutes");
    bob.expect("* [server] quiz in five minutes");
}

/// `/who` on the console prints the users' `/who` line on stdout.
#[test]
fn console_who_lists_users() {
    let mut server = Server::start(&[]);
    let _b = server.join("bob");
    let _a = server.join("Alice");
    server.console("/who");
    server.expect_stdout("* online (2): Alice, bob");
}

/// `/kick NAME REASON`: NAME is told why and disconnected; the others hear
/// `* NAME left (removed by the server)`; the name is kept out for a while.
/// An unknown NAME is reported.
#[test]
fn console_kick_removes_a_user() {
    let mut server = Server::start(&[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    server.console("/kick BOB spamming the room");
    server.expect_stdout("* removed bob"); // the name as they typed it
    bob.expect("! you were removed by the server: spamming the room");
    bob.expect_closed();
    alice.expect("* bob left (removed by the server)");
    server.console("/kick zed");
    server.expect_stdout("! no user named zed");
    // Gone from the room, and the name kept out for a while: a script
    // cannot come straight back under it.
    let mut again = server.connect();
    again.expect_greeting();
    again.send("bob");
    again.expect("! the name bob was removed by the server a short while ago; try another");
    again.send("bob2");
    again.expect_prefix("* welcome bob2;");
}

/// `/help` and unknown commands answer on the console; nothing crashes.
#[test]
fn console_help_and_errors() {
    let mut server = Server::start(&[]);
    server.console("/help");
    server.expect_stdout("* console commands:");
    for _ in 0..10 {
        let _ = server.expect_stdout_prefix("*   /");
    }
    server.console("hello?");
    server.expect_stdout("! that is not a command: /say TEXT tells everyone (/help lists them)");
    server.console("/hello");
    server.expect_stdout("! unknown console command /hello (type /help for the list)");
    server.console("/kick");
    server.expect_stdout("! usage: /kick NAME [REASON]");
    server.console("/who");
    server.expect_stdout("* online (0): ");
}

/// `/quit` on the console: everyone is told, every connection closes, the
/// server exits 0, and real clients show the notice and exit 0 too.
#[test]
fn console_quit_shuts_down_gracefully() {
    let mut server = Server::start(&[]);
    let mut raw = server.join("raw");
    let mut clients: Vec<Client> =
        ["ann", "ben"].iter().map(|name| Client::join(&server, name)).collect();
    raw.expect("* ann joined");
    raw.expect("* ben joined");
    server.console("/quit");
    raw.expect("* server is shutting down");
    raw.expect_closed();
    for client in &mut clients {
        client.expect_output("* server is shutting down\n");
        let (code, stderr) = client.wait_exit();
        assert_eq!(code, Some(0), "stderr: {stderr}");
        assert_eq!(stderr, "");
    }
    assert_eq!(server.wait_exit().code(), Some(0));
}

/// End of stdin turns the console off and leaves the server serving.
#[test]
fn closed_console_leaves_the_server_running() {
    let mut server = Server::start(&[]);
    server.close_console();
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    bob.send("still serving");
    alice.expect("bob: still serving");
    assert!(server.try_wait().is_none(), "the server must keep running");
}

/// A flooder is slowed down, not dropped and not silenced: all its lines
/// arrive, in order, spread over time, while another user's line still gets
/// through in the middle of the flood.
#[test]
fn flooder_is_throttled_without_losing_a_line() {
    let rate = 100; // lines per second; bursts of 100 pass at once
    let server = Server::start(&["--max-line-rate", &rate.to_string()]);
    let [mut flooder, mut bob, mut carol] = server.join_all(["bot", "bob", "carol"]);
    let total = 400;
    let flood: String = (0..total).map(|i| format!("spam {i}\n")).collect();
    let start = Instant::now();
    flooder.send_raw(flood.as_bytes());
    // The burst arrives at once; the rest is held back by the reader.
    for i in 0..150 {
        carol.expect(&format!("bot: spam {i}"));
    }
    bob.send("a human speaks");
    let mut next = 150;
    let mut human_seen_at = None;
    while next < total {
        let line = carol.read_line();
        if line == "bob: a human speaks" {
            human_seen_at = Some(next);
            continue;
        }
        assert_eq!(line, format!("bot: spam {next}"));
        next += 1;
    }
    let took = start.elapsed();
    let seen_at = human_seen_at.expect("bob's line arrived during the flood");
    assert!(seen_at < total - 50, "bob's line waited behind the flood (at {seen_at})");
    // 300 lines past the burst at 100 lines/s: at least about 3 s. A slower
    // machine only makes it longer, so this bound cannot fail spuriously.
    assert!(took >= Duration::from_millis(2500), "not throttled: {took:?}");
    // The flooder was never cut off.
    flooder.send("/who");
    flooder.skip_to("* online (3): bob, bot, carol");
}

/// `--max-line-rate 0` turns flood control off.
#[test]
fn rate_zero_means_no_limit() {
    let server = Server::start(&["--max-line-rate", "0"]);
    let [mut flooder, mut bob] = server.join_all(["bot", "bob"]);
    let flood: String = (0..1000).map(|i| format!("spam {i}\n")).collect();
    flooder.send_raw(flood.as_bytes());
    flooder.send("/who");
    // The /who answer comes after all 1000 lines were relayed, without waits.
    flooder.expect("* online (2): bob, bot");
    for i in 0..1000 {
        bob.expect(&format!("bot: spam {i}"));
    }
}

/// The server killed while two clients sit idle: both print `error: ...` and
/// exit 1, with nothing typed. (`--retries 0`: since issue 11 a lost
/// connection is retried first.)
#[test]
fn killed_server_ends_both_clients_with_an_error() {
    let mut server = Server::start(&[]);
    let mut clients: Vec<Client> = ["ann", "ben"]
        .iter()
        .map(|name| Client::join_with(&server, name, &["--retries", "0"]))
        .collect();
    server.kill();
    for client in &mut clients {
        let (code, stderr) = client.wait_exit();
        assert_eq!(code, Some(1));
        assert!(stderr.starts_with("error: connection to 127.0.0.1:"), "{stderr}");
    }
}

/// Out of file descriptors: a server limited to 64 and sent 100 connections
/// keeps running without spinning a core, and serves new users normally once
/// the connections close.
#[test]
fn running_out_of_file_descriptors_is_survived() {
    let binary = assert_cmd::cargo::cargo_bin("chatroom");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" server --port 0"#)
        .arg(&binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server = Server::spawn(command);
    // From twenty addresses: from one, all but the newest few would be
    // closed as they arrive (they choose no name), and descriptors freed.
    let conns: Vec<Conn> =
        (0..100).map(|i| server.connect_from(&format!("127.0.0.{}", 10 + i % 20))).collect();
    server.expect_log("accept failed");
    // While out of descriptors, the accept loop pauses between tries: over
    // a second it may use a little CPU, never a whole core.
    let before = server.cpu_ticks();
    thread::sleep(Duration::from_secs(1));
    let used = server.cpu_ticks() - before;
    assert!(used < 50, "the server used {used} ticks of CPU in 1 s");
    drop(conns);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    bob.send("we are back");
    alice.expect("bob: we are back");
}

/// A kicked flooder that keeps sending is really disconnected: the server
/// stops reading it and closes the socket, so the flood ends in an error.
#[test]
fn kicked_flooder_is_disconnected_even_while_it_sends() {
    use std::io::Write;
    let mut server = Server::start(&["--max-line-rate", "50"]);
    let [mut bot, mut alice] = server.join_all(["bot", "alice"]);
    let mut flood = bot.stream.try_clone().unwrap();
    let (ended_tx, ended) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let line = "spam spam spam spam spam spam spam spam spam spam\n".repeat(100);
        // Ends when a write fails: the server closed the connection.
        while flood.write_all(line.as_bytes()).is_ok() {}
        let _ = ended_tx.send(());
    });
    alice.expect("bot: spam spam spam spam spam spam spam spam spam spam");
    server.console("/kick bot flooding");
    server.expect_stdout("* removed bot");
    bot.skip_to("! you were removed by the server: flooding");
    alice.skip_to("* bot left (removed by the server)");
    // The flood ends once the server closes the connection; if the server
    // kept reading it, it would run on until the server is killed.
    assert!(
        ended.recv_timeout(PATIENCE).is_ok(),
        "the flood ran on: the server kept reading a kicked user"
    );
}
