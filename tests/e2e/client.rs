//! The client's contract, pinned by driving the real `chatroom client` through
//! its stdin and stdout against the real server (or a fake one, where the
//! test needs a server that misbehaves).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use crate::harness::{Client, Conn, PATIENCE, Server, accept};

/// The report's §6 flow: host, port (a bad one is explained and asked again),
/// name (a refused one too), then chat both ways and `/quit` with exit 0.
#[test]
fn prompts_then_chats_then_quits() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut client = Client::start(&[]);
    client.expect_output("Server host [127.0.0.1]: ");
    client.type_text("\n"); // the default
    client.expect_output("Port [1918]: ");
    client.type_text("http\n");
    // From a pipe, which echoes nothing, the answer is shown after its
    // question: the next line starts a row of its own.
    client.expect_output("http\n! not a port number: http (use a number from 1 to 65535)\n");
    client.expect_output("Port [1918]: ");
    client.type_text(&format!("{}\n", server.addr.port()));
    client.expect_output("* welcome to chatroom, please enter your name\n");
    client.expect_output("Name: ");
    client.type_text("Bob\n");
    client.expect_output("! the name Bob is taken; try another\n");
    client.expect_output("Name: ");
    client.type_text("alice\n");
    client.expect_output("* welcome alice; online (2): alice, bob (type /help for commands)\n");
    bob.expect("* alice joined");

    client.type_text("hello bob\n");
    bob.expect("alice: hello bob");
    bob.send("hi alice");
    client.expect_output("bob: hi alice\n");

    client.type_text("/quit\n");
    client.expect_output("* bye alice, see you soon\n");
    let (code, stderr) = client.wait_exit();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
    bob.expect("* alice left");
}

/// Flags skip their prompts; end of input (Ctrl-D) leaves cleanly, exit 0.
#[test]
fn flags_skip_prompts_and_ctrl_d_leaves() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let port = server.addr.port().to_string();
    let mut client = Client::start(&["--host", "127.0.0.1", "--port", &port, "--name", "zoe"]);
    client.expect_output("* welcome to chatroom, please enter your name\n* welcome zoe;");
    bob.expect("* zoe joined");
    client.close_stdin();
    let (code, stderr) = client.wait_exit();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    bob.expect("* zoe left");
    assert!(!client.all.contains("Server host"), "no prompt when flags answer");
}

/// In a terminal, a `--name` the server refuses is explained, then asked for.
#[test]
fn refused_flag_name_falls_back_to_the_prompt() {
    let server = Server::start(&[]);
    let port = server.addr.port().to_string();
    let args = ["--port", &port, "--host", "127.0.0.1", "--name", "a b"];
    let mut client = Client::in_terminal(&args, "dumb");
    client.expect_output("! a name may hold only letters, digits, _ and -, not ' '; try again\r\n");
    client.expect_output("Name: ");
    client.type_text("ab\n");
    client.expect_output("* welcome ab;");
}

/// From a pipe, a `--name` the server refuses is an error (exit 1): nobody
/// is there to ask, and the lines piped after it are chat, never a name.
#[test]
fn a_refused_name_from_a_pipe_is_an_error() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let port = server.addr.port().to_string();
    let mut client = Client::start(&["--host", "127.0.0.1", "--port", &port, "--name", "Bob"]);
    client.type_text("hi\n");
    let (code, stderr) = client.wait_exit();
    assert_eq!(code, Some(1), "output: {}", client.all);
    assert_eq!(stderr, "error: name Bob refused: the name Bob is taken; try another\n");
    assert!(!client.all.contains("Name: "), "asked for a name: {}", client.all);
    // `hi` was sent neither as a name nor as a line: bob is alone.
    bob.send("/who");
    bob.expect("* online (1): bob");
}

/// A port nothing listens on (it did a moment ago).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A client started before its server waits for it, saying so once and how
/// to leave; lines typed meanwhile wait, and go out once, in order, after
/// the welcome (issue 29).
#[test]
fn a_client_started_before_its_server_waits_for_it() {
    let port = closed_port().to_string();
    let mut early = Client::start(&["--host", "127.0.0.1", "--port", &port, "--name", "early"]);
    early.expect_output(&format!(
        "! no server at 127.0.0.1:{port} yet; trying every few seconds (Ctrl-C leaves)\n"
    ));
    early.type_text("first\n");
    early.expect_output("* not connected: 1 line(s) wait to be sent\n");
    early.type_text("second\n");
    early.expect_output("* not connected: 2 line(s) wait to be sent\n");
    // And one without --name: what it typed is chat, never taken for the
    // name, which is asked when the server greets.
    let mut asked = Client::start(&["--host", "127.0.0.1", "--port", &port]);
    asked.expect_output("trying every few seconds (Ctrl-C leaves)\n");
    asked.type_text("hello before\n");
    asked.expect_output("* not connected: 1 line(s) wait to be sent\n");
    let server = Server::start(&["--port", &port]);
    asked.expect_output("Name: ");
    asked.type_text("asked\n");
    asked.expect_output("* welcome asked;");
    early.expect_output("* welcome to chatroom, please enter your name\n* welcome early;");
    server.expect_room("early: first");
    server.expect_room("early: second");
    early.type_text("third\n");
    server.expect_room("early: third");
    asked.type_text("later\n");
    server.expect_room("asked: later");
    let room = server.stdout_so_far();
    assert_eq!(room.matches("asked: hello before").count(), 1, "{room}");
    assert!(room.find("asked: hello before") < room.find("asked: later"), "{room}");
    assert_eq!(room.matches("early: first").count(), 1, "{room}");
    assert_eq!(room.matches("early: second").count(), 1, "{room}");
    assert!(!early.all.contains("trying again"), "{}", early.all);
}

/// Input that ends while the client waits for its server ends the client:
/// exit 0 if nothing typed was lost, 1 with how many lines if some were.
#[test]
fn input_that_ends_while_waiting_ends_the_client() {
    let port = closed_port();
    let address = format!("127.0.0.1:{port}");
    let mut quiet = Client::start(&["--host", &address]);
    quiet.close_stdin();
    let (code, stderr) = quiet.wait_exit();
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    let waiting =
        format!("! no server at {address} yet; trying every few seconds (Ctrl-C leaves)\n");
    assert_eq!(quiet.all, waiting);

    let mut typed = Client::start(&["--host", &address, "--name", "x"]);
    typed.type_text("hi\n");
    typed.close_stdin();
    let (code, stderr) = typed.wait_exit();
    assert_eq!((code, stderr.as_str()), (Some(1), "error: left with 1 typed line(s) not sent\n"));
}

/// The server going away while the user types nothing: `error: ...` on
/// stderr and exit 1 at once (report §5).
#[test]
fn server_gone_ends_the_client_with_exit_1() {
    let mut server = Server::start(&[]);
    let port = server.addr.port().to_string();
    // No retries: since issue 11 a lost connection is retried first.
    let mut client =
        Client::start(&["--host", "127.0.0.1", "--port", &port, "--name", "al", "--retries", "0"]);
    client.expect_output("* welcome al;");
    server.kill();
    let (code, stderr) = client.wait_exit();
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with(&format!("error: connection to 127.0.0.1:{port} lost: ")),
        "stderr: {stderr}"
    );
}

/// A full server is tried again, like one not there yet, and joined once a
/// place is free (issue 30).
#[test]
fn a_full_server_is_tried_again_until_a_place_is_free() {
    let server = Server::start(&["--max-clients", "1"]);
    let only = server.join("only");
    let port = server.addr.port().to_string();
    let mut client = Client::start(&["--host", "127.0.0.1", "--port", &port, "--name", "next"]);
    client.expect_output(
        "! server refused the connection: server full (limit 1); try again later; \
         trying every few seconds (Ctrl-C leaves)\n",
    );
    drop(only);
    client.expect_output("* welcome to chatroom, please enter your name\n* welcome next;");
}

/// A server that is not ours cannot put escape sequences on the screen: the
/// client removes control characters again before printing.
#[test]
fn client_cleans_what_a_foreign_server_sends() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut client = Client::start(&["--host", "127.0.0.1", "--port", &port, "--name", "al"]);
    let mut socket = accept(&listener);
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.write_all(b"* hi\n").unwrap();
    let mut from_client = BufReader::new(socket.try_clone().unwrap());
    let mut name = String::new();
    from_client.read_line(&mut name).unwrap();
    assert_eq!(name, "al\n");
    socket.write_all(b"* welcome al\nevil\x1b[2J\x1b]0;title\x07 text\n").unwrap();
    client.expect_output("* welcome al\nevil[2J]0;title text\n");
}

/// The client removes them too, whatever the server sends.
#[test]
fn client_removes_invisible_characters() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut client = Client::start(&["--host", "127.0.0.1", "--port", &port, "--name", "al"]);
    let mut fake = Conn::from_stream(accept(&listener));
    fake.send("* hi");
    fake.expect("al");
    fake.send("* welcome al");
    fake.send("x: a\u{202E}b\u{200D}c");
    client.expect_output("* welcome al\nx: abc\n");
}

/// Too slow to choose a name: the server's deadline passes while the name is
/// typed, and the name is sent on a new connection. (Until issue 11, the
/// client ended with `error: server closed the connection: no name ...`.)
#[test]
fn a_slow_name_is_sent_on_a_new_connection() {
    let server = Server::start(&["--name-timeout", "1"]);
    let port = server.addr.port().to_string();
    let mut client = Client::start(&["--host", "127.0.0.1", "--port", &port]);
    client.expect_output("Name: ");
    server.expect_log("no name within 1s");
    client.type_text("late\n");
    client.expect_output("* welcome late;");
    server.expect_log("joined as late");
}

/// A typed line over 1024 bytes is refused by the client itself, with the
/// server's words, and never sent; `/quit` with words after it still quits.
#[test]
fn long_typed_line_is_refused_and_quit_takes_arguments() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut client = Client::join(&server, "al");
    bob.expect("* al joined");
    client.type_text(&format!("{}\n", "x".repeat(2000)));
    client.expect_output("! line too long (at most 1024 bytes); it was not sent\n");
    client.type_text("short\n");
    // bob's next line is the short one: the long one never left.
    bob.expect("al: short");
    client.type_text("/quit see you\n");
    client.expect_output("* bye al, see you soon\n");
    let (code, stderr) = client.wait_exit();
    assert_eq!(code, Some(0), "stderr: {stderr}");
}

/// The server killed and started again on the same port: the client says the
/// connection was lost, tries again with growing pauses, rejoins with the
/// same name and says it is back; typing works again.
#[test]
fn a_lost_connection_comes_back() {
    let mut server = Server::start(&[]);
    let port = server.addr.port().to_string();
    let mut al = Client::start(&["--host", "127.0.0.1", "--port", &port, "--name", "al"]);
    al.expect_output("* welcome al;");
    server.kill();
    al.expect_output(
        "! connection lost (the server closed the connection); trying again in 1 s (1 of 17)\n",
    );
    let again = Server::start(&["--port", &port]);
    let mut bob = again.join("bob");
    // The client sends the name itself: the greeting's "please enter your
    // name" is not shown again.
    let retrying = al.expect_output("* welcome al;");
    assert!(!retrying.contains("please enter"), "greeting shown again: {retrying:?}");
    al.expect_output("* connected again\n");
    // al may have come back before bob joined, or after: ask who is here.
    bob.send("/who");
    bob.skip_to("* online (2): al, bob");
    al.type_text("back!\n");
    bob.expect("al: back!");
}

/// Back after a lost connection, but someone has taken the name meanwhile:
/// in a terminal, the client asks for another.
#[test]
fn a_name_taken_meanwhile_is_asked_for_again() {
    let mut server = Server::start(&[]);
    let port = server.addr.port().to_string();
    let args = ["--host", "127.0.0.1", "--port", &port, "--name", "al"];
    let mut al = Client::in_terminal(&args, "dumb");
    al.expect_output("* welcome al;");
    server.kill();
    // A stand-in on the same port, where someone has taken the name: the
    // test, not the client's timer, decides what the client finds there.
    let listener = TcpListener::bind(("127.0.0.1", server.addr.port())).unwrap();
    let mut standin = Conn::from_stream(accept(&listener));
    standin.send("* welcome to chatroom, please enter your name");
    standin.expect("al");
    standin.send("! the name al is taken; try another");
    al.expect_output("! the name al is taken; try another\r\n");
    al.expect_output("Name: ");
    al.type_text("al2\n");
    standin.expect("al2");
    standin.send("* welcome al2; online (2): AL, al2 (type /help for commands)");
    al.expect_output("* welcome al2;");
    al.expect_output("* connected again\r\n");
}

/// The server lost while the user is at the name prompt: the typed name is
/// sent once the client has connected again, with the same pauses and
/// tries as after a lost chat.
#[test]
fn a_server_lost_at_the_name_prompt_is_tried_again() {
    let mut server = Server::start(&[]);
    let port = server.addr.port().to_string();
    let mut al = Client::start(&["--host", "127.0.0.1", "--port", &port]);
    al.expect_output("Name: ");
    server.kill();
    al.type_text("al\n");
    al.expect_output(&format!(
        "! connection lost (no server at 127.0.0.1:{port} yet); trying again in 1 s (1 of 17)\n"
    ));
    let again = Server::start(&["--port", &port]);
    al.expect_output("* welcome al;");
    let mut bob = again.join("bob");
    al.type_text("back\n");
    bob.expect("al: back");
}

/// A `/kick` is not a lost connection: the client shows the server's words
/// and ends (exit 1), without trying again.
#[test]
fn a_kick_ends_the_client_without_retrying() {
    let mut server = Server::start(&[]);
    let mut al = Client::join(&server, "al");
    server.console("/kick al enough for today");
    al.expect_output("! you were removed by the server: enough for today\n");
    let (code, stderr) = al.wait_exit();
    assert_eq!(code, Some(1));
    assert_eq!(stderr, "error: removed by the server: enough for today\n");
    assert!(!al.all.contains("connection lost"), "{}", al.all);
}

/// Your own lines are shown as the room sees them, and a `/msg` is confirmed
/// by the server (so `nc` users see it too).
#[test]
fn own_lines_are_shown_and_private_messages_confirmed() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut al = Client::join(&server, "al");
    bob.expect("* al joined");
    al.type_text("hello\n");
    bob.expect("al: hello");
    bob.send("hi");
    // One line, then the next: no blank line between.
    al.expect_output("al: hello\nbob: hi\n");
    // A long gap is cut on both sides alike (a screen's width of spaces
    // could push the rest onto a row of its own).
    al.type_text(&format!("a{}b\n", " ".repeat(30)));
    let cut = format!("al: a{}b", " ".repeat(8));
    bob.expect(&cut);
    al.expect_output(&format!("{cut}\n"));
    al.type_text("/msg BOB psst\n");
    bob.expect("al (private): psst");
    al.expect_output("to bob (private): psst\n");
    al.type_text("/msg zed psst\n");
    al.expect_output("! no user named zed\n");
}

/// `host:port` at the host prompt answers both questions.
#[test]
fn host_and_port_in_one_answer() {
    let server = Server::start(&[]);
    let mut client = Client::start(&[]);
    client.expect_output("Server host [127.0.0.1]: ");
    client.type_text(&format!("127.0.0.1:{}\n", server.addr.port()));
    client.expect_output("* welcome to chatroom, please enter your name\n");
    client.expect_output("Name: ");
    assert!(!client.all.contains("Port ["), "{}", client.all);
}

/// From the keyboard, a host that cannot be found, or a port that is not
/// one, is explained and asked again at once.
#[test]
fn wrong_answers_at_the_prompts_are_asked_again() {
    let server = Server::start(&[]);
    let mut client = Client::start(&[]);
    client.expect_output("Server host [127.0.0.1]: ");
    client.type_text("no-such-host.invalid\n");
    client.expect_output("! cannot find the host no-such-host.invalid: ");
    client.expect_output("Server host [127.0.0.1]: ");
    client.type_text("\n");
    client.expect_output("Port [1918]: ");
    client.type_text("eighty\n");
    client.expect_output("! not a port number: eighty (use a number from 1 to 65535)\n");
    client.expect_output("Port [1918]: ");
    client.type_text(&format!("{}\n", server.addr.port()));
    client.expect_output("* welcome to chatroom, please enter your name\n");
}

/// Something that accepts but never greets (not a chatroom server): after
/// 10 s the client says so, and tries again as for a server not there yet
/// (issue 30); Ctrl-C (here: the input's end) then leaves, exit 0.
#[test]
fn a_server_that_never_greets_is_said_to_and_tried_again() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut client = Client::start(&["--host", "127.0.0.1", "--port", &port.to_string()]);
    let _first = accept(&silent);
    client.expect_output(&format!(
        "! 127.0.0.1:{port} does not greet; is it a chatroom server?; trying every few seconds \
         (Ctrl-C leaves)\n"
    ));
    client.close_stdin();
    let (code, stderr) = client.wait_exit();
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
}

/// Ctrl-C leaves the same way wherever the client is (issue 29): waiting
/// for a server not there yet, before a silent server's greeting, at the
/// name prompt, each with exit 0 and nothing on stderr; Ctrl-D at the name
/// prompt too. (In the chat, `the_terminal_is_restored_on_every_way_out`
/// covers both keys.)
#[test]
fn ctrl_c_and_ctrl_d_leave_from_anywhere() {
    let no_server = closed_port().to_string();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port().to_string();
    let server = Server::start(&[]);
    let port = server.addr.port().to_string();
    let cases = [
        (no_server.as_str(), "(Ctrl-C leaves)", "\x03"),
        (silent_port.as_str(), "", "\x03"),
        (port.as_str(), "Name: ", "\x03"),
        (port.as_str(), "Name: ", "\x04"),
    ];
    for (port, shown, key) in cases {
        let mut client = Client::in_terminal(&["--host", "127.0.0.1", "--port", port], "xterm");
        if shown.is_empty() {
            let _accepted = accept(&silent);
        } else {
            client.expect_output(shown);
        }
        client.type_text(key);
        let (code, stderr) = client.wait_exit();
        assert_eq!((code, stderr.as_str()), (Some(0), ""), "{port} {shown:?} {key:?}");
        client.assert_terminal_restored(&format!("{port} {key:?}"));
    }
}
