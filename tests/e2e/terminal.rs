//! The client's line editor, in a real pseudo-terminal: `chatroom client` runs
//! under util-linux's `script`, its keys are typed as a terminal sends them,
//! and what its screen is sent is read back, escape codes and all.

use crate::harness::{Client, Conn, Server};

const ENTER: &str = "\r";
const BACKSPACE: &str = "\x7f";
const LEFT: &str = "\x1b[D";
const HOME: &str = "\x1b[H";
const END: &str = "\x1b[F";
const UP: &str = "\x1b[A";
const DOWN: &str = "\x1b[B";
const F5: &str = "\x1b[15~";

/// A server with `bob` in it (raw), and `al` joined from a client in a
/// terminal with `TERM=term`.
fn al_in_a_terminal(term: &str, more: &[&str]) -> (Server, Conn, Client) {
    let server = Server::start(&[]);
    let bob = server.join("bob");
    let port = server.addr.port().to_string();
    let mut args = vec!["--host", "127.0.0.1", "--port", &port, "--name", "al"];
    args.extend(more);
    let mut al = Client::in_terminal(&args, term);
    al.expect_output("* welcome al;");
    (server, bob, al)
}

/// What is typed stays whole on the last row while lines arrive: each
/// arriving line is printed above it, and the typed line drawn again.
#[test]
fn the_line_being_typed_stays_whole_while_lines_arrive() {
    let (_server, mut bob, mut al) = al_in_a_terminal("xterm", &[]);
    bob.expect("* al joined");
    al.type_text("I think the answer");
    al.expect_output("> I think the answer");
    bob.send("tick 1");
    al.expect_output("\r\x1b[Kbob: tick 1\r\n\r\x1b[K> I think the answer");
    bob.send("tick 2");
    al.expect_output("\r\x1b[Kbob: tick 2\r\n\r\x1b[K> I think the answer");
    al.type_text(&format!(" is 42{ENTER}"));
    bob.expect("al: I think the answer is 42");
    // Shown as the room sees it, drawn by the client (the server never
    // echoes), then the line being typed again, empty.
    al.expect_output("al: I think the answer is 42\r\n\r\x1b[K> ");
}

/// Backspace removes one character (not one byte), Ctrl-W a word, Ctrl-U
/// the whole line. Arrow keys and every other escape sequence are read and
/// dropped: none ever reaches the room.
#[test]
fn editing_keys_edit_and_escapes_never_reach_the_room() {
    let (_server, mut bob, mut al) = al_in_a_terminal("xterm", &[]);
    bob.expect("* al joined");
    al.type_text(&format!("héllo wörld{BACKSPACE}{BACKSPACE}{BACKSPACE}"));
    al.type_text(&format!("\x17there{LEFT}{UP}{HOME}!{END}{DOWN}{F5}\x1bOD{ENTER}"));
    bob.expect("al: héllo there!");
    al.type_text(&format!("scratch\x15second{ENTER}"));
    bob.expect("al: second");
}

/// A typed line never grows past the 1,024-byte limit: further keys are not
/// taken, and a note says so.
#[test]
fn a_typed_line_stops_at_the_limit() {
    let (_server, mut bob, mut al) = al_in_a_terminal("xterm", &[]);
    bob.expect("* al joined");
    al.type_text(&"é".repeat(600));
    al.expect_output("! the line is full (1024 bytes): the rest was not added");
    al.type_text(ENTER);
    bob.expect(&format!("al: {}", "é".repeat(512)));
}

/// The terminal is put back as it was on every way out: `/quit`, Ctrl-D,
/// Ctrl-C, the server lost, a kick, a shutdown.
#[test]
fn the_terminal_is_restored_on_every_way_out() {
    let ways: [(&str, &str); 6] = [
        ("/quit", "/quit\r"),
        ("Ctrl-D", "\x04"),
        ("Ctrl-C", "\x03"),
        ("server lost", ""),
        ("kicked", ""),
        ("shut down", ""),
    ];
    for (way, keys) in ways {
        let mut server = Server::start(&[]);
        let port = server.addr.port().to_string();
        let args = ["--host", "127.0.0.1", "--port", &port, "--name", "al", "--retries", "0"];
        let mut al = Client::in_terminal(&args, "xterm");
        al.expect_output("* welcome al;");
        match way {
            "server lost" => server.kill(),
            "kicked" => server.console("/kick al enough"),
            "shut down" => server.console("/quit"),
            _ => al.type_text(keys),
        }
        let _ = al.wait_exit();
        al.assert_terminal_restored(way);
    }
}

/// With `TERM=dumb` there is no editor: the terminal echoes, lines are read
/// whole, and nothing is drawn with escape codes.
#[test]
fn a_dumb_terminal_gets_plain_lines() {
    let (_server, mut bob, mut al) = al_in_a_terminal("dumb", &[]);
    bob.expect("* al joined");
    bob.send("hi al");
    al.expect_output("bob: hi al\r\n");
    al.type_text("hello\n");
    bob.expect("al: hello");
    al.type_text("/quit\n");
    al.expect_output("* bye al, see you soon");
    let _ = al.wait_exit();
    assert!(!al.all.contains("\x1b[K"), "escape codes: {:?}", al.all);
}
