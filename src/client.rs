//! The client: a person's way into the room (report §3.2, §4.2, §5, §6).
//!
//! The report's client asks for the server's host and port, connects, asks
//! for a name, then shows a window with the messages that arrive and a field
//! to type into. Here the terminal is the window: lines that arrive are
//! printed, lines typed are sent.
//!
//! Two threads, as in the Go book's `netcat`:
//! - the **main thread** prompts, connects, does the name handshake, then
//!   copies the keyboard to the socket ([`run`]);
//! - the **printer** copies the socket to the screen ([`print_incoming`]).
//!
//! Who ends whom: `/quit` or end of input (Ctrl-D) on the keyboard makes the
//! main thread send `/quit` and wait for the printer, which ends when the
//! server closes the connection. The server going away ends the printer
//! first; the main thread is then stuck in a read of the keyboard that
//! nothing can interrupt, so the printer ends the whole process itself:
//! exit 1 with the error (report §5: "shows the error and closes the
//! connection"), or exit 0 if the server said it was shutting down.
//!
//! NOTE: no terminal tricks (raw mode, keeping the line being typed apart
//! from incoming lines): the standard library has no raw mode. Incoming text
//! can land in the middle of what you are typing; what you typed is still
//! sent whole.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::protocol::{self, Command, Line, MAX_LINE_BYTES, MAX_SERVER_LINE_BYTES};

/// What the command line already said; the rest is asked for (report §6).
pub struct Config {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub name: Option<String>,
}

/// The answers an empty reply to the prompts takes: the report's own.
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 1918;

/// How long to try to reach the server. A host on the LAN that is switched
/// off never answers at all, and the operating system's own limit is minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// After `/quit`, how long to wait for the server to say goodbye and close.
/// Ours does so at once; this only keeps a broken server from holding the
/// client open.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// Runs the client until the user leaves (`Ok`) or something fails (`Err`,
/// the message for `error: ...`).
pub fn run(config: Config) -> Result<(), String> {
    let stdin = io::stdin();
    let mut keyboard = stdin.lock();
    let mut buf = Vec::new();

    let host = match config.host {
        Some(host) => host,
        None => match ask(
            &mut keyboard,
            &mut buf,
            &format!("Server host [{DEFAULT_HOST}]: "),
        )? {
            Some(answer) if !answer.is_empty() => answer,
            Some(_) => DEFAULT_HOST.to_string(),
            None => return Ok(()), // Ctrl-D at a prompt: the user changed their mind
        },
    };
    let port = match config.port {
        Some(port) => port,
        None => loop {
            let Some(answer) = ask(&mut keyboard, &mut buf, &format!("Port [{DEFAULT_PORT}]: "))?
            else {
                return Ok(());
            };
            if answer.is_empty() {
                break DEFAULT_PORT;
            }
            match answer.parse::<u16>() {
                Ok(port) if port > 0 => break port,
                _ => say(&format!(
                    "! not a port number: {answer} (use a number from 1 to 65535)"
                )),
            }
        },
    };

    // Connect before asking for a name, in the report's order: a server that
    // is down or full says so before the user types anything more.
    let socket = connect(&host, port)?;
    // A second handle on the same connection, for reading: the printer takes
    // it, the main thread keeps `socket` for writing.
    let reading = socket
        .try_clone()
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let mut server = BufReader::new(reading);
    let lost = |e: String| format!("connection to {host}:{port} lost: {e}");

    // The server speaks first: a greeting, or `! server full`.
    let greeting = receive(&mut server).map_err(lost)?;
    if let Some(why) = greeting.strip_prefix(protocol::ERROR) {
        return Err(format!("server refused the connection: {why}"));
    }
    say(&greeting);

    // The name handshake: send a name, and read the one line that answers
    // it: `* ` means joined, `! ` says why not, and we ask again.
    let mut name = config.name;
    loop {
        let attempt = match name.take() {
            Some(name) => name,
            None => match ask(&mut keyboard, &mut buf, "Name: ")? {
                Some(answer) => answer,
                None => return Ok(()),
            },
        };
        send(&socket, &attempt).map_err(|e| lost(e.to_string()))?;
        let answer = receive(&mut server).map_err(lost)?;
        if let Some(why) = answer.strip_prefix(protocol::ERROR)
            && answer.starts_with(protocol::NAME_DEADLINE)
        {
            // Too late: the server has closed; asking again would be a lie.
            return Err(format!("server closed the connection: {why}"));
        }
        say(&answer);
        if !answer.starts_with(protocol::ERROR) {
            break;
        }
    }

    // In the room. `quitting` is set by the main thread before it says
    // `/quit`, so that the printer knows the connection's end is expected.
    let quitting = Arc::new(AtomicBool::new(false));
    let printer_quitting = Arc::clone(&quitting);
    let server_name = format!("{host}:{port}");
    // Spawn: the printer. Joined below after `/quit`; if the server goes
    // away first, it ends the process itself.
    let printer = thread::Builder::new()
        .name("printer".into())
        .spawn(move || print_incoming(server, &printer_quitting, &server_name))
        .map_err(|e| format!("cannot start the printer thread: {e}"))?;

    loop {
        let line = match protocol::read_line_limited(&mut keyboard, MAX_LINE_BYTES, &mut buf) {
            Ok(Some(Line::Text(line))) => line,
            Ok(Some(Line::TooLong)) => {
                // The server would refuse it with the same words; say them
                // here and spare the network the kilobytes.
                say(protocol::line_too_long().trim_end());
                continue;
            }
            // End of input (Ctrl-D), or a keyboard that cannot be read: leave
            // as `/quit` would.
            Ok(None) | Err(_) => "/quit".to_string(),
        };
        // Understood exactly as the server will understand it.
        let is_quit = matches!(
            protocol::parse_command(&protocol::sanitize(&line)),
            Some(Command::Quit)
        );
        if is_quit {
            quitting.store(true, Ordering::SeqCst);
        }
        if let Err(e) = send(&socket, &line) {
            // The printer sees the same broken connection and ends the
            // process with the error; if it has not yet, say it here.
            return Err(lost(e.to_string()));
        }
        if is_quit {
            break;
        }
    }
    // Wait for the server's `* bye` and its closing of the connection, but not
    // for ever. Failing to set the timeout only means waiting on the server.
    let _ = socket.set_read_timeout(Some(QUIT_WAIT));
    let _ = printer.join();
    Ok(())
}

/// The printer: every line from the server, cleaned, to the screen.
fn print_incoming(mut server: BufReader<TcpStream>, quitting: &AtomicBool, server_name: &str) {
    // The teacher stopping the server is an ending, not an error.
    let shutting_down = protocol::shutting_down();
    let mut told_shutdown = false;
    loop {
        match receive(&mut server) {
            Ok(line) => {
                told_shutdown = line == shutting_down.trim_end();
                say(&line);
            }
            Err(_) if quitting.load(Ordering::SeqCst) => return,
            // As below, the main thread cannot be woken: end here, exit 0.
            Err(_) if told_shutdown => process::exit(0),
            Err(e) => {
                eprintln!("error: connection to {server_name} lost: {e}");
                // The main thread is blocked reading the keyboard and cannot
                // be woken: end the process from here (exit 1: report §5).
                process::exit(1);
            }
        }
    }
}

/// Reads one line from the server, cleaned of control characters in case the
/// server is not ours. End of input is an error here: the server never ends
/// a connection the client still wants without saying so.
fn receive(server: &mut impl BufRead) -> Result<String, String> {
    let mut buf = Vec::new();
    match protocol::read_line_limited(server, MAX_SERVER_LINE_BYTES, &mut buf) {
        Ok(Some(Line::Text(line))) => Ok(protocol::sanitize(&line)),
        Ok(Some(Line::TooLong)) => Ok("! (a line from the server was too long to show)".into()),
        Ok(None) => Err("the server closed the connection".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sends one line, adding its `\n`, in one write: with `TCP_NODELAY` set,
/// a line written in two pieces could leave as two packets, and a server
/// reading them would still see one line, but pay for two reads.
fn send(socket: &TcpStream, line: &str) -> io::Result<()> {
    let mut socket = socket;
    socket.write_all(format!("{line}\n").as_bytes())
}

/// Prints one line with one write, so that lines never tear into each other.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    // Nothing sensible to do if the terminal itself is gone.
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

/// Prints `prompt` and reads the answer, trimmed and cleaned. `None` at end
/// of input.
fn ask(
    keyboard: &mut impl BufRead,
    buf: &mut Vec<u8>,
    prompt: &str,
) -> Result<Option<String>, String> {
    loop {
        let mut out = io::stdout().lock();
        let _ = out.write_all(prompt.as_bytes());
        let _ = out.flush();
        drop(out); // release stdout before blocking on the keyboard
        match protocol::read_line_limited(keyboard, MAX_LINE_BYTES, buf) {
            Ok(Some(Line::Text(answer))) => return Ok(Some(protocol::sanitize(&answer))),
            Ok(Some(Line::TooLong)) => say("! that is far too long; try again"),
            Ok(None) => {
                say(""); // end the prompt's line
                return Ok(None);
            }
            Err(e) => return Err(format!("cannot read the keyboard: {e}")),
        }
    }
}

/// Connects to the first address of `host` that answers.
fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let fail = |why: String| format!("cannot connect to {host}:{port}: {why}");
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?;
    let mut last_error = String::from("the name has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // Typed lines are sent one at a time and should leave at once.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(fail(last_error))
}
