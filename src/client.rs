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
//! the process, keyboard thread and all. Every way it ends is an [`Exit`].
//!
//! Not here: the line editor (`terminal.rs`), the words (`protocol.rs`);
//! beyond the report, in files of their own: the prompts
//! (`client/prompts.rs`), and waiting for a server that is not there yet or
//! was lost, with the lines typed meanwhile (`client/reconnect.rs`).

mod prompts;
mod reconnect;

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::ops::ControlFlow::{self, Break, Continue};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::Duration;

use crate::protocol::{self, Command, Line, MAX_SERVER_LINE_BYTES};
use crate::terminal::{self, Screen, Typed};
use crate::text;

/// What the command line already said; the rest is asked for (report §6).
pub struct Config {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub name: Option<String>,
    /// How many times to connect again after the connection is lost.
    pub retries: u32,
}

/// What the main thread waits for, from the keyboard and from the listener.
enum Input {
    Keyboard(Typed),
    /// A line from the server.
    Heard(String),
    /// The connection has ended: the last line heard on it (which may say
    /// why: a kick, a shutdown), and what ended it.
    Lost {
        last: String,
        why: String,
    },
}

/// Every way the client ends.
enum Exit {
    /// The user left: `/quit`, Ctrl-D, Ctrl-C, or the end of piped input.
    Left,
    /// The server said it is shutting down.
    ServerStopped,
    /// The teacher removed us, for this reason.
    Removed(String),
    /// Something failed: `error: ...`.
    Failed(String),
}

/// Going on with a value, or ending.
type Step<T> = ControlFlow<Exit, T>;

/// The client, as the main thread holds it.
struct Client {
    /// What the keyboard and the listener hand over, in the order it came.
    inputs: Receiver<Input>,
    /// Given to each new listener.
    to_main: SyncSender<Input>,
    screen: Arc<Screen>,
    host: String,
    port: u16,
    /// The connection, while its listener runs: written here, read there.
    socket: Option<Arc<TcpStream>>,
    /// Beyond the report: what was typed before it was asked for (it may
    /// answer a prompt), in order; and the chat lines typed while there was
    /// no connection, sent first once joined (`reconnect.rs`).
    waiting: VecDeque<Typed>,
    unsent: VecDeque<String>,
    retries: u32,
}

/// Runs the client until it ends; `Err` with why if that is an error.
pub fn run(config: Config) -> Result<(), String> {
    let (to_main, inputs) = mpsc::sync_channel(INPUT_QUEUE);
    let mut client = Client::new(inputs, to_main, config.retries); // and its keyboard thread
    let exit = match client.connect_first(&config) {
        Continue(()) => match client.choose_name(config.name) {
            Continue(name) => client.chat(name),
            Break(exit) => exit,
        },
        Break(exit) => exit,
    };
    client.outcome(exit)
}

impl Client {
    /// Report §6: asks for the server's host and port, and connects; a
    /// server not there yet is waited for (`wait_for_server`).
    fn connect_first(&mut self, config: &Config) -> Step<()> {
        (self.host, self.port) = self.ask_address(config)?;
        match self.connect()? {
            Ok(greeting) => self.screen.print(&greeting),
            Err(why) => self.wait_for_server(why)?,
        }
        Continue(())
    }

    /// Connects to the server, starts the connection's listener, and waits
    /// for the server's first line: its greeting, or why it cannot take us.
    fn connect(&mut self) -> Step<Result<String, String>> {
        let socket = match open_socket(&self.host, self.port) {
            Ok(socket) => Arc::new(socket),
            Err(why) => return Continue(Err(why)),
        };
        let (reading, to_main) = (Arc::clone(&socket), self.to_main.clone());
        // Spawn: the listener of this connection. It ends with the connection.
        let work = move || run_listener(&reading, &to_main);
        if let Err(e) = thread::Builder::new().name("listener".into()).spawn(work) {
            return Continue(Err(e.to_string()));
        }
        self.socket = Some(socket);
        self.greeting() // beyond the report: a time limit, and refusals
    }

    /// Report §6: "once connected it asks for a name". Sends names until
    /// the server welcomes one, and returns it.
    fn choose_name(&mut self, mut name: Option<String>) -> Step<String> {
        loop {
            let typed_now = name.is_none();
            let attempt = match name.take() {
                Some(name) => name,
                None => self.ask("Name: ", "")?,
            };
            // Beyond the report: a connection closed meanwhile is made again.
            if self.socket.is_none() {
                self.reconnect()?;
            }
            self.send(&attempt);
            match self.answer_to_name()? {
                Answer::Welcome => return Continue(attempt),
                Answer::Refused(line) => self.refused(&attempt, &line, typed_now)?,
                Answer::Gone => name = Some(attempt), // sent again on a new connection
            }
        }
    }

    /// Report §4.2: prints each line from the room, and sends each line
    /// typed, until the user leaves or the connection is lost for good.
    fn chat(&mut self, mut name: String) -> Exit {
        self.screen.chat_prompt();
        loop {
            match self.next_input() {
                Input::Heard(line) => self.screen.print(&line),
                Input::Keyboard(Typed::Text(line)) => {
                    if self.say(&name, &line).is_break() {
                        return self.quit(); // `/quit`
                    }
                }
                Input::Keyboard(_) => return self.quit(), // Ctrl-D, Ctrl-C, the input's end
                Input::Lost { last, why } => match self.rejoin(&last, why, &name) {
                    Continue(rejoined) => name = rejoined,
                    Break(exit) => return exit,
                },
            }
        }
    }

    /// Sends a typed line, and shows a chat line as the others will see it,
    /// cleaned (the server never echoes it back). `Break` for `/quit`.
    fn say(&mut self, name: &str, line: &str) -> ControlFlow<()> {
        match protocol::parse_command(&text::clean(line)) {
            Some(Command::Quit) => return Break(()),
            Some(Command::Chat(said)) => self.screen.print(protocol::chat(name, &said).trim_end()),
            Some(_) => {}
            None => return Continue(()), // an empty line says nothing
        }
        self.send(line);
        Continue(())
    }

    /// Sends one line and its `\n` in one write; if it fails, the listener
    /// sees the same broken connection.
    fn send(&self, line: &str) {
        if let Some(socket) = &self.socket {
            let _ = socket.as_ref().write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// The listener of one connection: hands every line from the server to the
/// main thread, then says how the connection ended.
fn run_listener(socket: &TcpStream, to_main: &SyncSender<Input>) {
    let (mut from, mut buf, mut last) = (BufReader::new(socket), Vec::new(), String::new());
    let why = loop {
        // Cleaned of control characters again, in case the server is not ours.
        let heard = match protocol::read_line_limited(&mut from, MAX_SERVER_LINE_BYTES, &mut buf) {
            Ok(Some(Line::Text(line))) => text::sanitize(&line),
            Ok(Some(Line::TooLong)) => cut_short(&mut buf),
            Ok(None) => break "the server closed the connection".to_string(),
            Err(e) => break e.to_string(),
        };
        last.clone_from(&heard);
        if to_main.send(Input::Heard(heard)).is_err() {
            return; // the main thread has ended
        }
    };
    let _ = to_main.send(Input::Lost { last, why });
}

// Beyond the first reading: the connection's smaller parts.

/// How many inputs may wait for the main thread: a listener that finds the
/// channel full (a paused screen) waits before reading on, so the server sees
/// a reader who stopped, and memory stays under 64 × 128 KiB, 8 MiB.
const INPUT_QUEUE: usize = 64;

/// How long to try to reach the server, and then to wait for its greeting
/// or its answer to a name: a host switched off never answers, and the
/// operating system's own limit is minutes.
const SERVER_WAIT: Duration = Duration::from_secs(10);

/// What the server answered to a name.
enum Answer {
    /// `* welcome ...`: the name is ours.
    Welcome,
    /// A `! ` line: the name was refused, and another may be tried.
    Refused(String),
    /// The connection ended: the name came too late, say.
    Gone,
}

impl Client {
    /// A client with nothing typed and no connection yet; starts the
    /// keyboard thread, which hands each line typed (and Ctrl-C, Ctrl-D) to
    /// the main thread as an `Input::Keyboard`.
    fn new(inputs: Receiver<Input>, to_main: SyncSender<Input>, retries: u32) -> Client {
        let keys = to_main.clone();
        let screen = terminal::start_keyboard(move |t| keys.send(Input::Keyboard(t)).is_ok(), "");
        let (host, port, socket, waiting, unsent) = Default::default();
        Client { inputs, to_main, screen, host, port, socket, waiting, unsent, retries }
    }

    /// The server's first line, its greeting; or why there is none: a `! `
    /// refusal (`! server full`), the connection closed, or nothing within
    /// [`SERVER_WAIT`] (then the connection is closed here).
    fn greeting(&mut self) -> Step<Result<String, String>> {
        let (host, port) = (&self.host, self.port);
        let silent = format!("{host}:{port} does not greet; is it a chatroom server?");
        Continue(match self.line_from_server()? {
            Some(line) => match line.strip_prefix(protocol::ERROR) {
                None => Ok(line),
                Some(why) => Err(format!("server refused the connection: {why}")),
            },
            None if self.socket.is_some() => Err(silent),
            None => Err("the server closed the connection".into()),
        })
    }

    /// What the server answers to a name just sent: first the history,
    /// `* [earlier]` lines, shown; then `* ` welcomes, `! ` refuses. The
    /// deadline's `! `, or no answer at all, means the connection is gone.
    fn answer_to_name(&mut self) -> Step<Answer> {
        loop {
            let line = match self.line_from_server()? {
                Some(line) if !line.starts_with(protocol::NAME_DEADLINE) => line,
                _ => {
                    self.hang_up();
                    return Continue(Answer::Gone);
                }
            };
            if !line.starts_with(protocol::NOTICE) {
                return Continue(Answer::Refused(line));
            }
            self.screen.print(&line);
            if !line.starts_with(protocol::EARLIER) {
                return Continue(Answer::Welcome);
            }
        }
    }

    /// The next line from the server, within [`SERVER_WAIT`]; `None` if the
    /// connection ends first or nothing comes. Lines typed meanwhile wait
    /// their turn; Ctrl-C leaves at once.
    fn line_from_server(&mut self) -> Step<Option<String>> {
        if self.socket.is_none() {
            return Continue(None);
        }
        let deadline = std::time::Instant::now() + SERVER_WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.inputs.recv_timeout(left) {
                Ok(Input::Heard(line)) => return Continue(Some(line)),
                Ok(Input::Keyboard(Typed::Interrupt)) => return Break(Exit::Left),
                Ok(Input::Keyboard(typed)) => self.hold(typed),
                Ok(Input::Lost { .. }) => {
                    self.socket = None;
                    return Continue(None);
                }
                Err(_) => return Continue(None), // nothing in time: the socket stays, to say so
            }
        }
    }

    /// Closes the connection, if there is one, and waits for its listener
    /// to say it ended, so that nothing from it comes later, taken for the
    /// next connection's. What is typed meanwhile waits.
    fn hang_up(&mut self) {
        let Some(socket) = self.socket.take() else { return };
        let _ = socket.shutdown(std::net::Shutdown::Both); // wakes the listener
        loop {
            match self.inputs.recv() {
                Ok(Input::Keyboard(typed)) => self.hold(typed),
                Ok(Input::Heard(_)) => {}
                Ok(Input::Lost { .. }) | Err(_) => return,
            }
        }
    }

    /// The next input: the chat lines typed with no connection first, then
    /// what was typed and held, in order.
    fn next_input(&mut self) -> Input {
        if let Some(line) = self.unsent.pop_front() {
            return Input::Keyboard(Typed::Text(line));
        }
        if let Some(typed) = self.waiting.pop_front() {
            return Input::Keyboard(typed);
        }
        // The channel cannot close: `self.to_main` is one of its senders.
        self.inputs.recv().unwrap_or(Input::Keyboard(Typed::EndOfInput))
    }

    /// How the client's end is reported: `Err` for an error, and for lines
    /// typed that were never sent.
    fn outcome(&self, exit: Exit) -> Result<(), String> {
        let held = self.waiting.iter().filter(|typed| matches!(typed, Typed::Text(_))).count();
        let unsent = self.unsent.len() + held;
        match exit {
            Exit::Left if unsent > 0 => Err(format!("left with {unsent} typed line(s) not sent")),
            Exit::Left | Exit::ServerStopped => Ok(()),
            Exit::Removed(reason) => Err(format!("removed by the server: {reason}")),
            Exit::Failed(why) => Err(why),
        }
    }
}

/// What the listener passes on of a line longer than it takes: its start,
/// marked as cut.
fn cut_short(buf: &mut Vec<u8>) -> String {
    buf.truncate(MAX_SERVER_LINE_BYTES); // it holds one byte more
    let (start, kib) = (String::from_utf8_lossy(buf), MAX_SERVER_LINE_BYTES / 1024);
    text::sanitize(&format!("{start} [cut: the line was longer than {kib} KiB]"))
}

/// Connects to the first address of `host` that answers, within
/// [`SERVER_WAIT`]; or why not.
fn open_socket(host: &str, port: u16) -> Result<TcpStream, String> {
    let cannot = |why: &dyn std::fmt::Display| format!("cannot connect to {host}:{port}: {why}");
    let mut why = String::from("the name has no address");
    for addr in (host, port).to_socket_addrs().map_err(|e| cannot(&e))? {
        match TcpStream::connect_timeout(&addr, SERVER_WAIT) {
            Ok(stream) => {
                // Typed lines are sent one at a time and should leave at once.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                why = format!("no server at {host}:{port} yet");
            }
            Err(e) => why = cannot(&e),
        }
    }
    Err(why)
}
