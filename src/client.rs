//! The client: a person's way into the room (report §3.2, §4.2, §5, §6).
//!
//! The report's client asks for the server's host and port, connects, then
//! asks for a name (§6); its window shows the messages of the others and has
//! a field to type one's own (§3.2, §4.2); on an error it shows the error and
//! closes the connection (§5). Here the terminal is the window.
//!
//! Three kinds of thread, as in *The Go Programming Language*'s `netcat`:
//! - the **main thread** ([`run`]) asks the questions, then runs the chat: it
//!   alone writes to the socket, and prints what arrives;
//! - the **keyboard** thread (`terminal.rs`) reads (and draws) what is typed;
//! - a **listener** per connection ([`run_listener`]) reads the socket.
//!
//! The keyboard and the listener hand what they read to the main thread over
//! one channel, as [`Input`]s, so the main thread waits in one place for
//! whichever comes first: a line typed or a line from the room, the two
//! things the report's window has to handle (§4.2).
//!
//! Who ends whom: the main thread decides, and returning from [`run`] ends
//! the process, keyboard thread and all. Every way it ends is an [`End`].
//! Beyond the report (`reconnect.rs`): lines typed before the server is
//! ready wait and go out in order, and a lost connection is made again.
//!
//! Not here: the line editor (`terminal.rs`), the words (`protocol.rs`).

use std::collections::VecDeque;
use std::io::{self, BufReader, IsTerminal, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::ops::ControlFlow::{self, Break, Continue};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::Duration;

use crate::protocol::{self, Command, Line, MAX_SERVER_LINE_BYTES};
use crate::terminal::{self, Screen, Typed};
use crate::text;

// Beyond the report: leaving, and coming back (a file beside this one).
#[path = "reconnect.rs"]
mod reconnect;

/// What the command line already said; the rest is asked for (report §6).
pub struct Config {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub name: Option<String>,
    /// How many times to connect again after the connection is lost.
    pub retries: u32,
}

/// An empty reply to a prompt takes these: what the report types (§6).
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 1918;

/// What the main thread waits for, from the keyboard and from the listener.
enum Input {
    Keyboard(Typed),
    /// A line from the server, heard on connection number `.0`.
    Heard(u64, String),
    /// Connection number `.0` has ended; why.
    Lost(u64, String),
}

impl From<Typed> for Input {
    fn from(typed: Typed) -> Input {
        Input::Keyboard(typed)
    }
}

/// Every way the client ends. Only `Removed` and `Failed` are errors (exit 1).
enum End {
    /// The user left: `/quit`, Ctrl-D, Ctrl-C.
    Left,
    /// The server said it is shutting down.
    ServerStopped,
    /// The teacher removed us, for this reason.
    Removed(String),
    /// Something failed: `error: ...`.
    Failed(String),
}

/// Going on with a value, or ending.
type Step<T> = ControlFlow<End, T>;

/// How many inputs may wait for the main thread: a listener that finds the
/// channel full (a paused screen) waits before reading on, so the server sees
/// a reader who stopped, and memory stays under 64 × 128 KiB, 8 MiB.
const INPUT_QUEUE: usize = 64;

/// The client, as the main thread holds it.
struct Client {
    inbox: Receiver<Input>,
    /// Given to each new listener.
    inputs: SyncSender<Input>,
    screen: Arc<Screen>,
    host: String,
    port: u16,
    /// The connection, if any: written here, read by its listener (`&TcpStream`).
    socket: Option<Arc<TcpStream>>,
    /// Connections made so far; the last one's number is the current one's.
    connections: u64,
    /// Lines typed while there was nobody to send them to, in order.
    waiting: VecDeque<Typed>,
    retries: u32,
}

/// Runs the client until it ends; `Err` with why if that is an error.
pub fn run(config: Config) -> Result<(), String> {
    let (inputs, inbox) = mpsc::sync_channel(INPUT_QUEUE);
    let screen = terminal::start_keyboard(inputs.clone(), "");
    let (host, port, socket, waiting) = (String::new(), 0, None, VecDeque::new());
    let mut client = Client {
        inbox,
        inputs,
        screen,
        host,
        port,
        socket,
        connections: 0,
        waiting,
        retries: config.retries,
    };
    let joined = match client.connect_first(&config) {
        Continue(()) => client.choose_name(config.name),
        Break(end) => Break(end),
    };
    let end = match joined {
        Continue(name) => client.chat(name),
        Break(end) => end,
    };
    match end {
        End::Left | End::ServerStopped => Ok(()),
        End::Removed(reason) => Err(format!("removed by the server: {reason}")),
        End::Failed(why) => Err(why),
    }
}

impl Client {
    /// Report §6: asks for the server's host and port, and connects. A wrong
    /// answer from the keyboard is explained and asked again; with flags, it
    /// is an error.
    fn connect_first(&mut self, config: &Config) -> Step<()> {
        loop {
            let (host, port) = self.ask_address(config)?;
            match self.connect(host, port) {
                Ok(greeting) => {
                    self.screen.print(&greeting);
                    return Continue(());
                }
                Err(why) if config.host.is_some() && config.port.is_some() => {
                    return Break(End::Failed(why.words()));
                }
                Err(NoConnection::Unreachable(why)) => self
                    .screen
                    .print(&format!("! {why} (is the server running? is the port right?)")),
                Err(refused) => self.screen.print(&format!("! {}", refused.words())),
            }
        }
    }

    /// Report §6: "once connected it asks for a name". Sends names until the
    /// server welcomes one, and returns it; a name sent late, or with the
    /// server gone, goes again on a new connection (`connect_again`).
    fn choose_name(&mut self, mut name: Option<String>) -> Step<String> {
        loop {
            let given = name.is_some(); // not typed just now: `--name`, a rejoin, a retry
            let attempt = match name.take() {
                // Cleaned as the server cleans it: the name the others see.
                Some(name) => text::sanitize(&name).trim().to_string(),
                None => self.ask("Name: ", "")?,
            };
            if self.socket.is_none() {
                if let Err(why) = self.connect(self.host.clone(), self.port) {
                    self.connect_again(why.words())?;
                }
            }
            self.send(&attempt);
            // `* ` welcomes (after the history, `* [earlier] ` lines), `! `
            // says why not; the deadline's `! `, or no answer at all, means
            // the connection has ended.
            let answer = loop {
                match self.line_from_server()? {
                    Some(line) if line.starts_with(protocol::EARLIER) => self.screen.print(&line),
                    answer => break answer,
                }
            };
            match answer {
                Some(line) if line.starts_with(protocol::NOTICE) => {
                    self.screen.print(&line);
                    return Continue(attempt);
                }
                Some(line) if !line.starts_with(protocol::NAME_DEADLINE) => {
                    // No terminal, nobody to ask: stdin holds chat, not names.
                    if given && !io::stdin().is_terminal() {
                        let why = line.strip_prefix(protocol::ERROR).unwrap_or(&line);
                        return Break(End::Failed(format!("name {attempt} refused: {why}")));
                    }
                    self.screen.print(&line)
                }
                _ => {
                    self.socket = None;
                    name = Some(attempt);
                }
            }
        }
    }

    /// Report §4.2: shows what arrives, sends what is typed (typed-ahead first).
    fn chat(&mut self, mut name: String) -> End {
        self.screen.chat_prompt();
        // The server's last line says why it closed the connection, if it did.
        let mut last = String::new();
        loop {
            let typed = match self.waiting.pop_front() {
                Some(typed) => typed,
                None => match self.next() {
                    Input::Keyboard(typed) => typed,
                    Input::Heard(_, line) => {
                        self.screen.print(&line);
                        last = line;
                        continue;
                    }
                    Input::Lost(_, why) => match self.reconnect(&last, why, &name) {
                        Continue(rejoined) => {
                            name = rejoined;
                            self.screen.chat_prompt();
                            continue;
                        }
                        Break(end) => return end,
                    },
                },
            };
            let Typed::Line(line) = typed else { return self.quit() }; // Ctrl-D, Ctrl-C
            if self.send_typed(&name, &line).is_break() {
                return self.quit(); // `/quit`
            }
        }
    }

    /// Sends a typed line, and shows a chat line cleaned as the others will
    /// see it (the server never echoes it). `Break` for `/quit`: `quit`'s.
    fn send_typed(&mut self, name: &str, line: &str) -> ControlFlow<()> {
        match protocol::parse_command(&text::cut_gaps(&text::sanitize(line))) {
            Some(Command::Quit) => return Break(()),
            Some(Command::Chat(text)) => self.screen.print(protocol::chat(name, &text).trim_end()),
            Some(_) => {}
            None => return Continue(()), // an empty line says nothing
        }
        self.send(line);
        Continue(())
    }

    /// Connects to `host:port`, starts its listener and reads the server's
    /// first line: its greeting (returned), or why it cannot take us.
    fn connect(&mut self, host: String, port: u16) -> Result<String, NoConnection> {
        let cannot_connect = |why: String| {
            NoConnection::Unreachable(format!("cannot connect to {host}:{port}: {why}"))
        };
        let socket = Arc::new(open_socket(&host, port).map_err(cannot_connect)?);
        self.connections += 1;
        let (number, reading, inputs) =
            (self.connections, Arc::clone(&socket), self.inputs.clone());
        // Spawn: the listener of this connection. It ends with the connection.
        let work = move || run_listener(number, &reading, &inputs);
        let builder = thread::Builder::new().name(format!("listener-{number}"));
        builder.spawn(work).map_err(|e| cannot_connect(e.to_string()))?;
        (self.socket, self.host, self.port) = (Some(socket), host, port);
        match self.line_from_server() {
            Continue(Some(line)) => match line.strip_prefix(protocol::ERROR) {
                None => Ok(line),
                Some(why) => {
                    Err(NoConnection::Refused(format!("server refused the connection: {why}")))
                }
            },
            _ => Err(NoConnection::Refused("the server closed the connection".into())),
        }
    }

    /// Sends one line and its `\n` in one write; if it fails, the listener
    /// sees the same broken connection.
    fn send(&self, line: &str) {
        if let Some(socket) = &self.socket {
            let _ = socket.as_ref().write_all(format!("{line}\n").as_bytes());
        }
    }

    /// The next line from the server; `None` if the connection ends first.
    /// Lines typed meanwhile wait their turn.
    fn line_from_server(&mut self) -> Step<Option<String>> {
        loop {
            match self.next() {
                Input::Heard(_, line) => return Continue(Some(line)),
                Input::Lost(..) => return Continue(None),
                Input::Keyboard(Typed::Interrupt) => return Break(End::Left),
                Input::Keyboard(typed) => self.hold(typed),
            }
        }
    }

    /// The next input, passing over what the listeners of connections
    /// already given up still say.
    fn next(&mut self) -> Input {
        loop {
            // The channel cannot close: `self.inputs` is one of its senders.
            match self.inbox.recv().unwrap_or(Input::Keyboard(Typed::End)) {
                Input::Heard(n, _) | Input::Lost(n, _) if n != self.connections => {}
                input => return input,
            }
        }
    }
}

/// Why a connection could not be made, in words to show.
enum NoConnection {
    /// Nothing answered: `cannot connect to HOST:PORT: why`.
    Unreachable(String),
    /// The server answered with a `! ` line and closed, or closed at once.
    Refused(String),
}

impl NoConnection {
    /// What to show: the words it holds.
    fn words(self) -> String {
        match self {
            NoConnection::Unreachable(why) | NoConnection::Refused(why) => why,
        }
    }
}

/// The listener of one connection: hands every line from the server to the
/// main thread, then says how the connection ended.
fn run_listener(number: u64, socket: &TcpStream, inputs: &SyncSender<Input>) {
    let (mut from, mut buf) = (BufReader::new(socket), Vec::new());
    let why = loop {
        // Cleaned of control characters again, in case the server is not ours.
        let heard = match protocol::read_line_limited(&mut from, MAX_SERVER_LINE_BYTES, &mut buf) {
            Ok(Some(Line::Text(line))) => text::sanitize(&line),
            Ok(Some(Line::TooLong)) => {
                buf.truncate(MAX_SERVER_LINE_BYTES); // it holds one byte more
                let (start, kib) = (String::from_utf8_lossy(&buf), MAX_SERVER_LINE_BYTES / 1024);
                text::sanitize(&format!("{start} [cut: the line was longer than {kib} KiB]"))
            }
            Ok(None) => break "the server closed the connection".to_string(),
            Err(e) => break e.to_string(),
        };
        if inputs.send(Input::Heard(number, heard)).is_err() {
            return; // the main thread has ended
        }
    };
    let _ = inputs.send(Input::Lost(number, why));
}

/// How long to try to reach the server: a host switched off never answers,
/// and the operating system's own limit is minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the first address of `host` that answers.
fn open_socket(host: &str, port: u16) -> Result<TcpStream, String> {
    let mut why = String::from("the name has no address");
    for addr in (host, port).to_socket_addrs().map_err(|e| e.to_string())? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // Typed lines are sent one at a time and should leave at once.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => why = e.to_string(),
        }
    }
    Err(why)
}

// Beyond the first reading: the prompts.

impl Client {
    /// Asks for the host (`host:port` answers both), then the port. A host
    /// that cannot be found is said at once, and asked again.
    fn ask_address(&mut self, config: &Config) -> Step<(String, u16)> {
        loop {
            let answer = match &config.host {
                Some(host) => host.clone(),
                None => self.ask(&format!("Server host [{DEFAULT_HOST}]: "), DEFAULT_HOST)?,
            };
            let (host, port_in_host) = split_host_port(&answer);
            match ((host.as_str(), DEFAULT_PORT).to_socket_addrs(), config.port.or(port_in_host)) {
                (Ok(_), Some(port)) => return Continue((host, port)),
                (Ok(_), None) => return Continue((host, self.ask_port()?)),
                (Err(e), _) if config.host.is_some() => {
                    return Break(End::Failed(format!("cannot find the host {host}: {e}")));
                }
                (Err(e), _) => {
                    self.screen.print(&format!("! cannot find the host {host}: {e}; try again"))
                }
            }
        }
    }

    /// Asks for the port until the answer is one.
    fn ask_port(&mut self) -> Step<u16> {
        loop {
            let answer =
                self.ask(&format!("Port [{DEFAULT_PORT}]: "), &DEFAULT_PORT.to_string())?;
            match answer.parse::<u16>() {
                Ok(port) if port > 0 => return Continue(port),
                _ => self.screen.print(&format!(
                    "! not a port number: {answer} (use a number from 1 to 65535)"
                )),
            }
        }
    }

    /// Asks `prompt`; the answer, trimmed and cleaned, or `default` for none
    /// (a line typed ahead answers at once; Ctrl-D: the user changed their
    /// mind). A name deadline passing meanwhile ends the connection quietly:
    /// `choose_name` makes a new one.
    fn ask(&mut self, prompt: &str, default: &str) -> Step<String> {
        self.screen.prompt(prompt);
        loop {
            let typed = match self.waiting.pop_front() {
                Some(typed) => typed,
                None => match self.next() {
                    Input::Keyboard(typed) => typed,
                    Input::Heard(_, line) if line.starts_with(protocol::NAME_DEADLINE) => continue,
                    Input::Heard(_, line) => {
                        self.screen.print(&line);
                        continue;
                    }
                    Input::Lost(..) => {
                        self.socket = None;
                        continue;
                    }
                },
            };
            let Typed::Line(answer) = typed else {
                self.screen.print("");
                return Break(End::Left);
            };
            self.screen.answered(prompt, &answer);
            let answer = text::sanitize(&answer).trim().to_string();
            return Continue(if answer.is_empty() { default.into() } else { answer });
        }
    }
}

/// Splits an answer to the host prompt that carries a port too: `host:1918`.
/// An IPv6 address (more than one colon) is a host alone.
fn split_host_port(answer: &str) -> (String, Option<u16>) {
    match answer.split_once(':') {
        Some((host, port)) if !port.contains(':') => match port.parse() {
            Ok(port) => (host.to_string(), Some(port)),
            Err(_) => (answer.to_string(), None),
        },
        _ => (answer.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_answers_may_carry_a_port() {
        let split = |answer: &str| split_host_port(answer);
        assert_eq!(split("127.0.0.1:1918"), ("127.0.0.1".into(), Some(1918)));
        assert_eq!(split("example.org"), ("example.org".into(), None));
        assert_eq!(split("::1"), ("::1".into(), None));
        assert_eq!(split("host:http"), ("host:http".into(), None));
    }
}
