//! What a person types reaches the room, whatever the timing; the client's
//! memory and hints (issue 18: no typed line is ever lost, no server can
//! make the client hold unbounded memory, and the console cannot end a class
//! by accident).

use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::harness::{Client, Conn, Server, accept};

/// The welcome of a stand-in server, as ours says it.
const GREETING: &str = "* welcome to chatroom, please enter your name";

/// Lines piped in all at once, before the server has even greeted, all
/// reach the room in order, run after run: `printf 'hello\nsecond\n/quit\n'
/// | chatroom client --name pipey` (with the test server's port), 20 times,
/// each exits 0. A name on the command line says all: no host is asked
/// for (were it, `hello` would be taken for one), 127.0.0.1 is taken.
#[test]
fn piped_lines_all_arrive_run_after_run() {
    let server = Server::start(&[]);
    let mut watcher = server.join("watcher");
    let port = server.addr.port().to_string();
    for run in 1..=20 {
        let mut client = Client::start(&["--port", &port, "--name", "pipey"]);
        client.type_text("hello\nsecond\n/quit\n");
        client.close_stdin();
        for expected in ["* pipey joined", "pipey: hello", "pipey: second", "* pipey left"] {
            watcher.expect(expected);
        }
        let (code, stderr) = client.wait_exit();
        assert_eq!(code, Some(0), "run {run}: stderr: {stderr}; output: {}", client.all);
    }
}

/// A line typed while the server is away waits, is said to wait, and is
/// delivered once the client is back (`* connected again`).
#[test]
fn a_line_typed_during_an_outage_is_delivered_after_reconnection() {
    let mut server = Server::start(&[]);
    let port = server.addr.port();
    let mut al =
        Client::start(&["--host", "127.0.0.1", "--port", &port.to_string(), "--name", "al"]);
    al.expect_output("* welcome al;");
    server.kill();
    al.expect_output("! connection lost (");
    al.type_text("during outage\n");
    al.expect_output("* not connected: 1 line(s) wait to be sent\n");
    // A new server, reached on the old port through a relay the test holds:
    // al's retry is accepted only once bob is in the room, so bob is sure to
    // be there when the waiting line goes out.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let again = Server::start(&[]);
    let mut bob = again.join("bob");
    relay(accept(&listener), TcpStream::connect(again.addr).unwrap());
    bob.expect("* al joined");
    al.expect_output("* connected again\n");
    bob.expect("al: during outage");
}

/// Copies bytes both ways between two sockets, until either closes.
fn relay(a: TcpStream, b: TcpStream) {
    for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
        thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Both);
        });
    }
}

/// `/quit` typed while the server is away ends the client at once (not
/// after the retries), exit 0.
#[test]
fn quit_during_an_outage_ends_the_client_at_once() {
    let mut server = Server::start(&[]);
    let mut al = Client::join(&server, "al");
    server.kill();
    al.expect_output("! connection lost (");
    al.type_text("/quit\n");
    let (code, stderr) = al.wait_exit();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
}

/// A stand-in server that greets, reads the name `x` and welcomes it.
fn standin_with_x(unread: bool) -> (Client, Conn) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let args = ["--host", "127.0.0.1", "--port", &port, "--name", "x"];
    let client = if unread { Client::start_unread(&args) } else { Client::start(&args) };
    let mut fake = Conn::from_stream(accept(&listener));
    fake.send(GREETING);
    fake.expect("x");
    fake.send("* welcome x; online (1): x (type /help for commands)");
    (client, fake)
}

/// A server that sends endless 200 KiB lines to a client that cannot print
/// them (its stdout a full pipe) cannot make it hold more than 32 MiB.
#[test]
fn the_client_memory_is_bounded_whatever_the_server_sends() {
    let (mut client, fake) = standin_with_x(true);
    let mut line = vec![b'y'; 200 * 1024];
    line.push(b'\n');
    // Until the client stops reading (the writes time out), or 300 MB.
    let mut socket = &fake.stream;
    socket.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut sent = 0;
    while sent < 300_000_000 {
        match socket.write_all(&line) {
            Ok(()) => sent += line.len(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("the client stopped reading with {e} after {sent} bytes"),
        }
    }
    assert_eq!(client.try_wait(), None, "the client is still running");
    let peak = client.peak_rss_kib();
    assert!(peak < 32 * 1024, "peak RSS {peak} KiB after {sent} bytes sent");
}

/// A line from the server over 128 KiB is shown as its first 128 KiB and a
/// mark that says it was cut; the next line is whole.
#[test]
fn a_long_server_line_is_cut_with_a_mark() {
    let (mut client, mut fake) = standin_with_x(false);
    client.expect_output("* welcome x; online (1): x (type /help for commands)\n");
    fake.send(&"y".repeat(200 * 1024));
    fake.send("after");
    let shown = client.expect_output(" [cut: the line was longer than 128 KiB]\n");
    assert!(shown.bytes().all(|b| b == b'y'), "only the line's own bytes");
    assert_eq!(shown.len(), 128 * 1024, "its first 128 KiB");
    client.expect_output("after\n");
}

/// From a pipe, each answer is written after its question, and what the
/// client then waits for takes one line: a full server, by its own reason.
#[test]
fn a_piped_answer_and_the_wait_each_take_a_line() {
    let server = Server::start(&["--max-clients", "1"]);
    let _only = server.join("only");
    let mut client = Client::start(&[]);
    client.expect_output("Server host [127.0.0.1]: ");
    let full = format!("127.0.0.1:{}", server.addr.port());
    client.type_text(&format!("{full}\n"));
    assert_eq!(
        client.expect_output("(Ctrl-C leaves)\n"),
        format!(
            "{full}\n! server refused the connection: server full (limit 1); try again later; \
             trying every few seconds "
        )
    );
}

/// A `--name` with an invisible or a control character in it: the client
/// shows its own line with the cleaned name, the one the others see.
#[test]
fn own_line_shows_the_cleaned_name() {
    for (given, cleaned) in [("al\u{200B}ice", "alice"), ("bob\x07", "bob")] {
        let server = Server::start(&[]);
        let mut watcher = server.join("watcher");
        let port = server.addr.port().to_string();
        let args = ["--host", "127.0.0.1", "--port", &port, "--name", given];
        let mut client = Client::start(&args);
        client.expect_output(&format!("* welcome {cleaned};"));
        watcher.expect(&format!("* {cleaned} joined"));
        client.type_text("hi\n");
        watcher.expect(&format!("{cleaned}: hi"));
        client.expect_output(&format!("(type /help for commands)\n{cleaned}: hi\n"));
    }
}

/// In a terminal, a line typed before the welcome reaches the room; a line
/// typed past 1,024 bytes is said to be full, once.
#[test]
fn type_ahead_in_a_terminal_and_the_full_line_note() {
    let server = Server::start(&[]);
    let mut watcher = server.join("watcher");
    let port = server.addr.port().to_string();
    let args = ["--host", "127.0.0.1", "--port", &port, "--name", "fasty"];
    let mut fasty = Client::in_terminal(&args, "xterm");
    fasty.type_text("quick line\r");
    watcher.expect("* fasty joined");
    watcher.expect("fasty: quick line");
    fasty.expect_output("fasty: quick line\r\n");
    fasty.type_text(&"x".repeat(1030));
    fasty.type_text("\r");
    let full = "x".repeat(1024);
    watcher.expect(&format!("fasty: {full}"));
    // The own line is wrapped to the terminal's width: its start will do.
    let before = fasty.expect_output("fasty: xxxxxxxx");
    let note = "! the line is full (1024 bytes): the rest was not added";
    assert_eq!(before.matches(note).count(), 1, "{before:?}");
}

/// Ctrl-D on the console's empty line does not stop the server: it says how
/// to, and the room goes on; `/quit` stops it, exit 0.
#[test]
fn ctrl_d_on_the_console_does_not_stop_the_server() {
    let mut console = Client::server_in_terminal(&["--port", "0"]);
    console.expect_output("listening on 127.0.0.1:");
    let port = console.expect_output("\r\n");
    console.type_text("\x04");
    console.expect_output("* the server goes on; /quit stops it\r\n");
    let mut bob = Conn::connect(format!("127.0.0.1:{port}").parse().unwrap());
    bob.expect_greeting();
    let name = "bobbybobbybobbybobbybobb"; // 24 letters: `/who` is 89 columns
    bob.send(name);
    bob.expect_prefix(&format!("* welcome {name};"));
    console.expect_output(&format!("* {name} joined\r\n"));
    // Each line of the console's `/who` starts a row of its own, unwrapped.
    console.type_text("/who\r");
    let who = format!("* online (1): {name}\r\n*        1  127.0.0.1        {name}\r\n");
    console.expect_output(&who);
    console.type_text("/quit\r");
    bob.expect("* server is shutting down");
    let (code, _) = console.wait_exit();
    assert_eq!(code, Some(0), "{}", console.all);
    console.assert_terminal_restored("");
}

/// Kills a process by its id when dropped: a server the test started in
/// the background of a shell, which the shell does not end.
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", &self.0]).status();
    }
}

/// Started in the background of a terminal (`chatroom server &`, job
/// control on), the server is not stopped: it listens, logs that its
/// console is off, and takes a join.
#[test]
fn a_server_started_in_the_background_runs_with_the_console_off() {
    let binary = assert_cmd::cargo::cargo_bin("chatroom");
    // The pid first, from the process that then becomes the server: its
    // lines cannot come before it.
    let server = "sh -c 'echo pid: $$; exec \"$0\" server --port 0'";
    let shell = format!("set -m; {server} '{}' & wait", binary.display());
    let mut command = Command::new("script");
    command.args(["-qefc", &shell, "/dev/null"]).env("SHELL", "/bin/bash");
    let mut terminal = Client::spawn(command);
    terminal.expect_output("pid: ");
    let _server = KillOnDrop(terminal.expect_output("\r\n"));
    terminal.expect_output("listening on 127.0.0.1:");
    let port = terminal.expect_output("\r\n");
    let mut bob = Conn::connect(format!("127.0.0.1:{port}").parse().unwrap());
    bob.expect_greeting();
    bob.send("bob");
    bob.expect_prefix("* welcome bob;");
    terminal.expect_output(" joined as bob\r\n");
    let log = "the console is off: the server was started in the background\r\n";
    assert!(terminal.all.contains(log), "{:?}", terminal.all);
    assert!(!terminal.all.contains("Stopped"), "{:?}", terminal.all);
}

/// After a lost connection the pauses between tries grow 1, 2, 4 s, then
/// stay at 5 s (17 tries in all). Takes about 12 s.
#[test]
fn reconnect_pauses_grow_to_five_seconds() {
    let mut server = Server::start(&[]);
    let port = server.addr.port();
    let mut al = Client::join(&server, "al");
    al.expect_output("(type /help for commands)\n");
    server.kill();
    let refused = format!("no server at 127.0.0.1:{port} yet");
    let expected = [
        ("the server closed the connection", 1, 1),
        (refused.as_str(), 2, 2),
        (refused.as_str(), 4, 3),
        (refused.as_str(), 5, 4),
        (refused.as_str(), 5, 5),
    ];
    for (why, seconds, attempt) in expected {
        let state = if attempt == 1 { "connection lost" } else { "still not connected" };
        let line = format!("! {state} ({why}); trying again in {seconds} s ({attempt} of 17)\n");
        assert_eq!(al.expect_output(&line), "", "nothing before try {attempt}");
    }
}
