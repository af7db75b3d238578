//! The client: a person's way into the room (report §3.2, §4.2, §5, §6).
//!
//! The report's client asks for the server's host and port, connects, then
//! asks for a name (§6); its window shows the messages of the others and has
//! a field to type one's own (§3.2, §4.2); on an error it shows the error and
//! closes the connection (§5). Here the terminal is the window. This file has
//! two parts: the report's client first ([`run`] and what it calls, in §6's
//! order), then, after the marked line, what a class needs on top: coming
//! back after a lost connection, and a line editor.
//!
//! Three kinds of thread:
//! - the **main thread** ([`run`]) asks the questions, then runs the chat: it
//!   alone writes to the socket and decides what is printed;
//! - the **keyboard** thread ([`start_keyboard`]) reads what is typed;
//! - a **listener** per connection ([`listen`]) reads the socket.
//!
//! The keyboard and the listener hand what they read to the main thread over
//! one channel, as [`Input`]s, so the main thread waits in one place for
//! whichever comes first: a line typed or a line from the room, like the
//! report's window, which waits for a key or a message.
//!
//! Who ends whom: the main thread decides, and ending `run` ends the process,
//! keyboard thread and all. `/quit`, Ctrl-D or Ctrl-C: it says `/quit`, waits
//! for the server to close, and returns. The server shutting down or removing
//! the user: it returns. The connection lost without a word: it connects
//! again, or, after enough tries, ends with the error (report §5).

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::{self, Line, MAX_LINE_BYTES, MAX_SERVER_LINE_BYTES};

/// What the command line already said; the rest is asked for (report §6).
pub struct Config {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub name: Option<String>,
    /// How many times to connect again after the connection is lost.
    pub retries: u32,
}

/// The answers an empty reply to the prompts takes: the report's own.
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 1918;

/// What the main thread waits for, from the keyboard and from the listener.
pub enum Input {
    /// A line typed (Enter).
    Typed(String),
    /// The keyboard is done: end of input, Ctrl-D on an empty line, Ctrl-C.
    KeyboardEnd,
    /// A line from the server, heard on connection number `.0`.
    Heard(u64, String),
    /// Connection number `.0` has ended; why.
    Lost(u64, String),
}

/// Why the client stops before the chat ends by itself.
enum Stop {
    /// The user left (Ctrl-D at a prompt, say), or the server shut down:
    /// exit 0.
    Leave,
    /// Something failed: `error: ...`, exit 1.
    Fail(String),
}

/// The client, as the main thread holds it.
struct Client {
    inbox: Receiver<Input>,
    /// Given to each new listener.
    inputs: Sender<Input>,
    screen: Arc<Screen>,
    host: String,
    port: u16,
    /// The connection, while there is one.
    link: Option<Link>,
    /// Connections made so far: the next one's number.
    links_made: u64,
    /// Lines typed while there was no connection to send them on.
    typed_ahead: Vec<String>,
    retries: u32,
}

/// One connection to the server. Numbered, so that what the listener of an
/// old connection still says is told apart from the current one's.
struct Link {
    number: u64,
    /// The main thread writes to it, the listener reads it: both work on a
    /// shared `&TcpStream`, as in the server.
    socket: Arc<TcpStream>,
}

/// Runs the client until the user leaves (`Ok`) or something fails (`Err`,
/// the message for `error: ...`).
pub fn run(config: Config) -> Result<(), String> {
    let (inputs, inbox) = mpsc::channel();
    // Beyond the report: in a terminal, a line editor (see `start_keyboard`).
    let screen = start_keyboard(inputs.clone(), "");
    let _restore = RestoreTerminal; // on every way out of `run`
    let mut client = Client {
        inbox,
        inputs,
        screen,
        host: String::new(),
        port: 0,
        link: None,
        links_made: 0,
        typed_ahead: Vec::new(),
        retries: config.retries,
    };
    let session = client
        .connect_first(&config)
        .and_then(|()| client.choose_name(config.name))
        .and_then(|name| client.chat(name));
    match session {
        Ok(()) | Err(Stop::Leave) => Ok(()),
        Err(Stop::Fail(why)) => Err(why),
    }
}

impl Client {
    /// Report §6: asks for the server's host and port, and connects. A wrong
    /// answer from the keyboard is explained and the host asked again; with
    /// flags, it is an error (exit 1).
    fn connect_first(&mut self, config: &Config) -> Result<(), Stop> {
        loop {
            let (host, port) = self.ask_address(config)?;
            match self.connect(host, port) {
                Ok(()) => return Ok(()),
                Err(Stop::Fail(why)) if config.host.is_none() || config.port.is_none() => {
                    let hint = "is the server running? is the port right?";
                    self.screen.print(&format!("! {why} ({hint})"));
                }
                Err(stop) => return Err(stop),
            }
        }
    }

    /// Report §6: "once connected it asks for a name". Sends names until the
    /// server welcomes one, and returns it. A name typed after the server's
    /// deadline has passed is sent again on a new connection: a slow typist
    /// is never turned away.
    fn choose_name(&mut self, mut name: Option<String>) -> Result<String, Stop> {
        loop {
            let attempt = match name.take() {
                Some(name) => name,
                None => self.ask("Name: ")?,
            };
            if self.link.is_none() {
                self.connect(self.host.clone(), self.port)?;
            }
            self.send(&attempt);
            // The one line that answers a name: `* ` welcomes, `! ` says why
            // not; the deadline's `! ` (or no answer at all) means the
            // connection has ended, and the name goes again on a new one.
            match self.next_from_server() {
                Some(line) if line.starts_with(protocol::NOTICE) => {
                    self.screen.print(&line);
                    return Ok(attempt);
                }
                Some(line) if !line.starts_with(protocol::NAME_DEADLINE) => {
                    self.screen.print(&line)
                }
                _ => {
                    self.link = None;
                    name = Some(attempt);
                }
            }
        }
    }

    /// Report §4.2: shows what arrives and sends what is typed, until the
    /// user leaves.
    fn chat(&mut self, mut name: String) -> Result<(), Stop> {
        self.screen.chat_prompt();
        for line in std::mem::take(&mut self.typed_ahead) {
            self.say(&name, &line);
        }
        // The server's last line: says why it closed the connection, if it did.
        let mut last = String::new();
        loop {
            match self.inbox.recv() {
                Ok(Input::Typed(line)) => {
                    if self.say(&name, &line) {
                        return self.quit();
                    }
                }
                Ok(Input::KeyboardEnd) | Err(_) => {
                    self.send("/quit");
                    return self.quit();
                }
                Ok(Input::Heard(number, line)) if self.is_current(number) => {
                    self.screen.print(&line);
                    last = line;
                }
                Ok(Input::Lost(number, why)) if self.is_current(number) => {
                    name = self.lost(&last, why, name)?;
                    self.screen.chat_prompt();
                }
                Ok(_) => {} // from a connection already given up
            }
        }
    }

    /// Sends a typed line, and shows a chat line as the others will see it
    /// (the server never echoes it). Returns whether it was `/quit`.
    fn say(&mut self, name: &str, line: &str) -> bool {
        let command = protocol::parse_command(&protocol::sanitize(line));
        if command.is_some() {
            self.send(line);
        }
        match command {
            Some(protocol::Command::Say(text)) => {
                self.screen.print(protocol::chat(name, &text).trim_end());
                false
            }
            Some(protocol::Command::Quit) => true,
            _ => false,
        }
    }

    /// Connects to `host:port`: starts the connection's listener and reads
    /// the server's first line, its greeting (or `! server full`).
    fn connect(&mut self, host: String, port: u16) -> Result<(), Stop> {
        let fail = |why: String| Stop::Fail(format!("cannot connect to {host}:{port}: {why}"));
        let stream = open_socket(&host, port).map_err(fail)?;
        self.links_made += 1;
        let number = self.links_made;
        let socket = Arc::new(stream);
        let (reading, inputs) = (Arc::clone(&socket), self.inputs.clone());
        // Spawn: the listener of this connection. It ends with the connection.
        thread::Builder::new()
            .name(format!("listener-{number}"))
            .spawn(move || listen(number, &reading, &inputs))
            .map_err(|e| fail(e.to_string()))?;
        self.link = Some(Link { number, socket });
        (self.host, self.port) = (host, port);
        match self.next_from_server() {
            Some(line) if line.starts_with(protocol::ERROR) => {
                let why = &line[protocol::ERROR.len()..];
                Err(Stop::Fail(format!("server refused the connection: {why}")))
            }
            Some(greeting) => {
                self.screen.print(&greeting);
                Ok(())
            }
            None => Err(Stop::Fail(format!(
                "cannot connect to {}:{}: no greeting",
                self.host, self.port
            ))),
        }
    }

    /// Sends one line, adding its `\n`, in one write. A failed write needs
    /// nothing here: the listener sees the same broken connection.
    fn send(&self, line: &str) {
        if let Some(link) = &self.link {
            let _ = (&*link.socket).write_all(format!("{line}\n").as_bytes());
        }
    }

    /// Waits for the next line of the current connection; `None` if it ends
    /// first. Lines typed meanwhile are kept for later.
    fn next_from_server(&mut self) -> Option<String> {
        loop {
            match self.inbox.recv() {
                Ok(Input::Typed(line)) => self.typed_ahead.push(line),
                Ok(Input::Heard(number, line)) if self.is_current(number) => return Some(line),
                Ok(Input::Lost(number, _)) if self.is_current(number) => return None,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    fn is_current(&self, number: u64) -> bool {
        self.link.as_ref().is_some_and(|link| link.number == number)
    }
}

/// The listener of one connection: hands every line from the server to the
/// main thread, then says how the connection ended.
fn listen(number: u64, socket: &TcpStream, inputs: &Sender<Input>) {
    let mut server = BufReader::new(socket);
    loop {
        match receive(&mut server) {
            Ok(line) => {
                if inputs.send(Input::Heard(number, line)).is_err() {
                    return; // the main thread has ended
                }
            }
            Err(why) => {
                let _ = inputs.send(Input::Lost(number, why));
                return;
            }
        }
    }
}

/// Reads one line from the server, cleaned of control characters in case the
/// server is not ours.
fn receive(server: &mut impl BufRead) -> Result<String, String> {
    let mut buf = Vec::new();
    match protocol::read_line_limited(server, MAX_SERVER_LINE_BYTES, &mut buf) {
        Ok(Some(Line::Text(line))) => Ok(protocol::sanitize(&line)),
        Ok(Some(Line::TooLong)) => Ok("! (a line from the server was too long to show)".into()),
        Ok(None) => Err("the server closed the connection".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// How long to try to reach the server. A host on the LAN that is switched
/// off never answers at all, and the operating system's own limit is minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the first address of `host` that answers.
fn open_socket(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs = (host, port).to_socket_addrs().map_err(|e| e.to_string())?;
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
    Err(last_error)
}

impl Client {
    /// Asks for the host (`host:port` answers both), then the port. A host
    /// that cannot be found is said at once, and asked again.
    fn ask_address(&mut self, config: &Config) -> Result<(String, u16), Stop> {
        loop {
            let answer = match &config.host {
                Some(host) => host.clone(),
                None => self.ask_or(&format!("Server host [{DEFAULT_HOST}]: "), DEFAULT_HOST)?,
            };
            let (host, port_in_host) = protocol::split_host_port(&answer);
            if let Err(e) = (host.as_str(), DEFAULT_PORT).to_socket_addrs() {
                let why = format!("cannot find the host {host}: {e}");
                if config.host.is_some() {
                    return Err(Stop::Fail(why));
                }
                self.screen.print(&format!("! {why}; try again"));
                continue;
            }
            let port = match config.port.or(port_in_host) {
                Some(port) => port,
                None => self.ask_port()?,
            };
            return Ok((host, port));
        }
    }

    fn ask_port(&mut self) -> Result<u16, Stop> {
        loop {
            let answer = self.ask_or(&format!("Port [{DEFAULT_PORT}]: "), "")?;
            if answer.is_empty() {
                return Ok(DEFAULT_PORT);
            }
            match answer.parse::<u16>() {
                Ok(port) if port > 0 => return Ok(port),
                _ => self.screen.print(&format!(
                    "! not a port number: {answer} (use a number from 1 to 65535)"
                )),
            }
        }
    }

    /// Asks `prompt` and returns the answer, trimmed, or `default` for none.
    fn ask_or(&mut self, prompt: &str, default: &str) -> Result<String, Stop> {
        let answer = self.ask(prompt)?;
        Ok(if answer.is_empty() {
            default.into()
        } else {
            answer
        })
    }

    /// Asks `prompt` and waits for the answer, trimmed and cleaned. The end
    /// of the keyboard (Ctrl-D) means the user changed their mind. Meanwhile
    /// the server may speak: a deadline passing ends the connection quietly
    /// (`choose_name` makes a new one).
    fn ask(&mut self, prompt: &str) -> Result<String, Stop> {
        self.screen.prompt(prompt);
        loop {
            match self.inbox.recv() {
                Ok(Input::Typed(answer)) => {
                    self.screen.answered(prompt, &answer);
                    return Ok(protocol::sanitize(&answer).trim().to_string());
                }
                Ok(Input::KeyboardEnd) | Err(_) => {
                    self.screen.print("");
                    return Err(Stop::Leave);
                }
                Ok(Input::Heard(number, line)) if self.is_current(number) => {
                    if !line.starts_with(protocol::NAME_DEADLINE) {
                        self.screen.print(&line);
                    }
                }
                Ok(Input::Lost(number, _)) if self.is_current(number) => self.link = None,
                Ok(_) => {}
            }
        }
    }
}

// ===========================================================================
// Beyond the report. Everything above is the report's client; everything
// below is what a class needs on top of it.
// ===========================================================================

// ---------------------------------------------------------------------------
// Leaving, and coming back after a lost connection
// ---------------------------------------------------------------------------

/// After `/quit`, how long to wait for the server to say goodbye and close.
/// Ours does so at once; this only keeps a broken server from holding the
/// client open.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// The longest pause between two tries to reconnect: the pauses grow 1, 2,
/// 4, 8 s, then stay at this. With the default 8 tries, about 75 s in all:
/// long enough for a server to be restarted, short enough that a class is
/// not left waiting on one that will not come back.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(15);

impl Client {
    /// After `/quit`: shows the server's last lines (its `* bye`) until it
    /// closes the connection.
    fn quit(&mut self) -> Result<(), Stop> {
        let deadline = Instant::now() + QUIT_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(Input::Heard(number, line)) if self.is_current(number) => {
                    self.screen.print(&line)
                }
                Ok(Input::Lost(number, _)) if self.is_current(number) => return Ok(()),
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
        }
    }

    /// The connection has ended. A shutdown or a removal, said by the server
    /// in `last`, ends the client; anything else is a lost connection, and
    /// the client connects again and rejoins. Returns the name rejoined with.
    fn lost(&mut self, last: &str, why: String, name: String) -> Result<String, Stop> {
        if last == protocol::shutting_down().trim_end() {
            return Err(Stop::Leave);
        }
        if let Some(reason) = last.strip_prefix(protocol::REMOVED) {
            return Err(Stop::Fail(format!("removed by the server: {reason}")));
        }
        self.link = None;
        let mut why = why;
        let mut pause = Duration::from_secs(1);
        for attempt in 1..=self.retries {
            let (tries, seconds) = (self.retries, pause.as_secs());
            self.screen.print(&format!(
                "! connection lost ({why}); trying again in {seconds} s ({attempt} of {tries})"
            ));
            self.wait(pause)?;
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
            let rejoined = self
                .connect(self.host.clone(), self.port)
                .and_then(|()| self.choose_name(Some(name.clone())));
            match rejoined {
                Ok(name) => {
                    self.screen.print("* connected again");
                    for line in std::mem::take(&mut self.typed_ahead) {
                        self.say(&name, &line);
                    }
                    return Ok(name);
                }
                Err(Stop::Fail(e)) => why = e,
                Err(Stop::Leave) => return Err(Stop::Leave),
            }
        }
        let (host, port) = (&self.host, self.port);
        Err(Stop::Fail(format!(
            "connection to {host}:{port} lost: {why}"
        )))
    }

    /// Waits `pause` while disconnected: Ctrl-D or Ctrl-C leaves, and lines
    /// typed are kept, to be sent once connected again.
    fn wait(&mut self, pause: Duration) -> Result<(), Stop> {
        let until = Instant::now() + pause;
        loop {
            match self
                .inbox
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(Input::Typed(line)) => self.typed_ahead.push(line),
                Ok(Input::KeyboardEnd) => return Err(Stop::Leave),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => return Err(Stop::Leave),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The keyboard, and a line editor for terminals
// ---------------------------------------------------------------------------

/// Starts the keyboard thread; returns the screen to print on.
///
/// In a terminal on Unix (and not `TERM=dumb`) the thread runs a line
/// editor: the line being typed stays whole on the last row, and lines that
/// arrive are printed above it. Anywhere else (stdin piped, Windows, no
/// `stty`) it reads plain lines, and whatever arrives is printed as it comes.
pub fn start_keyboard(inputs: Sender<Input>, prompt: &str) -> Arc<Screen> {
    let editor = if enter_raw_mode() {
        Some(Mutex::new(Editor::new(prompt)))
    } else {
        None
    };
    // For the test that a panic restores the terminal too; debug builds only.
    #[cfg(debug_assertions)]
    if std::env::var_os("CHATROOM_TEST_PANIC").is_some_and(|v| !v.is_empty()) {
        panic!("CHATROOM_TEST_PANIC is set");
    }
    let screen = Arc::new(Screen { editor });
    let keyboard = Arc::clone(&screen);
    // Spawn: the keyboard thread, for the life of the process. Blocked in a
    // read of the keyboard, it cannot be stopped; it need not be.
    let work = move || match keyboard.editor {
        Some(_) => edit_lines(&keyboard, &inputs),
        None => read_lines(&keyboard, &inputs),
    };
    if let Err(e) = thread::Builder::new().name("keyboard".into()).spawn(work) {
        // Without it nothing can be typed; the session shows as much.
        screen.print(&format!("! cannot read the keyboard: {e}"));
    }
    screen
}

/// Plain lines from stdin, for when there is no terminal to edit in.
fn read_lines(screen: &Screen, inputs: &Sender<Input>) {
    let stdin = io::stdin();
    let mut keyboard = stdin.lock();
    let mut buf = Vec::new();
    loop {
        let input = match protocol::read_line_limited(&mut keyboard, MAX_LINE_BYTES, &mut buf) {
            Ok(Some(Line::Text(line))) => Input::Typed(line),
            Ok(Some(Line::TooLong)) => {
                // The server would refuse it with the same words; say them
                // here and spare the network the kilobytes.
                screen.print(protocol::line_too_long().trim_end());
                continue;
            }
            Ok(None) | Err(_) => Input::KeyboardEnd,
        };
        let end = matches!(input, Input::KeyboardEnd);
        if inputs.send(input).is_err() || end {
            return;
        }
    }
}

/// Keys, one by one, into the editor; each finished line to the main thread.
fn edit_lines(screen: &Screen, inputs: &Sender<Input>) {
    let stdin = io::stdin();
    let mut keyboard = stdin.lock();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        let n = keyboard.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            let _ = inputs.send(Input::KeyboardEnd);
            return;
        }
        bytes.extend_from_slice(&chunk[..n]);
        // A key may arrive in pieces (a UTF-8 character, an escape
        // sequence): what is not whole yet waits for the next read.
        let mut used = 0;
        while let Some((key, len)) = decode_key(&bytes[used..]) {
            used += len;
            let Some(input) = screen.key(key) else {
                continue;
            };
            let end = matches!(input, Input::KeyboardEnd);
            if inputs.send(input).is_err() || end {
                return;
            }
        }
        bytes.drain(..used);
    }
}

/// The terminal, shared by the keyboard thread, which draws the line being
/// typed, and whoever prints what arrives. The lock is held only to draw.
pub struct Screen {
    /// `None` when reading plain lines: printing is plain too.
    editor: Option<Mutex<Editor>>,
}

impl Screen {
    /// Prints a line: above the line being typed, which is drawn again.
    pub fn print(&self, line: &str) {
        match &self.editor {
            None => write_out(&format!("{line}\n")),
            Some(editor) => {
                let editor = lock(editor);
                write_out(&format!("\r\x1b[K{line}\n{}", editor.draw()));
            }
        }
    }

    /// Shows `prompt` before what is typed next.
    pub fn prompt(&self, prompt: &str) {
        match &self.editor {
            None => write_out(prompt),
            Some(editor) => {
                let mut editor = lock(editor);
                editor.prompt = prompt.to_string();
                write_out(&editor.draw());
            }
        }
    }

    /// In the editor, the prompt for chat lines; plain lines need none.
    fn chat_prompt(&self) {
        if self.editor.is_some() {
            self.prompt("> ");
        }
    }

    /// A prompt was answered: the editor keeps the question and the answer
    /// on screen (a plain terminal has echoed them already).
    fn answered(&self, prompt: &str, answer: &str) {
        if self.editor.is_some() {
            self.prompt("");
            self.print(&format!("{prompt}{answer}"));
        }
    }

    fn key(&self, key: Key) -> Option<Input> {
        let mut editor = lock(self.editor.as_ref()?);
        let input = editor.key(key);
        write_out(&editor.draw());
        input
    }
}

fn lock(editor: &Mutex<Editor>) -> MutexGuard<'_, Editor> {
    // A panic while drawing leaves nothing half done that matters: the next
    // draw starts from scratch.
    editor.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes to the terminal, in one write so that lines never tear. Nothing
/// sensible is left to do if the terminal itself is gone.
fn write_out(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A key, as the editor understands it.
enum Key {
    Char(char),
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    Up,
    Down,
    /// Ctrl-U: clear what is before the cursor.
    ClearToStart,
    /// Ctrl-W: remove the word before the cursor.
    RemoveWord,
    /// Ctrl-D: leave on an empty line, else remove the character under the cursor.
    EndOfInput,
    /// Ctrl-C: leave.
    Interrupt,
    /// Anything else (other control keys, unknown escape sequences): ignored,
    /// never sent to the room.
    Other,
}

/// The first key in `bytes` and how many bytes it takes; `None` if the bytes
/// so far are only the start of one.
fn decode_key(bytes: &[u8]) -> Option<(Key, usize)> {
    let first = *bytes.first()?;
    let key = match first {
        0x1b => return decode_escape(bytes),
        0x03 => Key::Interrupt,
        0x04 => Key::EndOfInput,
        b'\r' | b'\n' => Key::Enter,
        0x7f | 0x08 => Key::Backspace,
        0x15 => Key::ClearToStart,
        0x17 => Key::RemoveWord,
        0x01 => Key::Home,
        0x05 => Key::End,
        b'\t' => Key::Char(' '),
        0x00..=0x1f => Key::Other,
        _ => {
            // UTF-8: the first byte says how many follow.
            let len = match first {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => 1,
            };
            let piece = bytes.get(..len)?;
            return Some(match std::str::from_utf8(piece) {
                Ok(text) => (text.chars().next().map_or(Key::Other, Key::Char), len),
                Err(_) => (Key::Other, 1),
            });
        }
    };
    Some((key, 1))
}

/// An escape sequence: `ESC [ ... final` (CSI) or `ESC O x` (SS3), as sent by
/// the arrow keys, Home, End and Delete. Others are read whole and ignored.
fn decode_escape(bytes: &[u8]) -> Option<(Key, usize)> {
    match *bytes.get(1)? {
        b'[' => {
            // Parameters and intermediates, then one final byte.
            let end = bytes[2..].iter().position(|b| (0x40..=0x7e).contains(b))? + 2;
            let key = match (&bytes[2..end], bytes[end]) {
                (_, b'A') => Key::Up,
                (_, b'B') => Key::Down,
                (_, b'C') => Key::Right,
                (_, b'D') => Key::Left,
                (_, b'H') | (b"1" | b"7", b'~') => Key::Home,
                (_, b'F') | (b"4" | b"8", b'~') => Key::End,
                (b"3", b'~') => Key::Delete,
                _ => Key::Other,
            };
            Some((key, end + 1))
        }
        b'O' => {
            let key = match *bytes.get(2)? {
                b'A' => Key::Up,
                b'B' => Key::Down,
                b'C' => Key::Right,
                b'D' => Key::Left,
                b'H' => Key::Home,
                b'F' => Key::End,
                _ => Key::Other,
            };
            Some((key, 3))
        }
        _ => Some((Key::Other, 2)), // Alt with a key
    }
}

/// The line being typed, and the lines typed before it.
struct Editor {
    prompt: String,
    line: Vec<char>,
    /// Where the next character goes: an index into `line`.
    cursor: usize,
    /// Lines entered so far (Up and Down walk through them), and where the
    /// walk is: `history.len()` is the new line.
    history: Vec<String>,
    browsing: usize,
    /// The terminal's width in columns (`stty size`), asked again after each
    /// line so that a resized window is followed.
    width: usize,
}

/// How many lines Up can bring back.
const HISTORY_LINES: usize = 100;

impl Editor {
    fn new(prompt: &str) -> Editor {
        Editor {
            prompt: prompt.to_string(),
            line: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            browsing: 0,
            width: terminal_width(),
        }
    }

    /// Applies one key; returns what it hands to the main thread, if
    /// anything.
    fn key(&mut self, key: Key) -> Option<Input> {
        match key {
            Key::Char(c) => {
                let bytes: usize = self.line.iter().map(|c| c.len_utf8()).sum();
                if bytes + c.len_utf8() > MAX_LINE_BYTES {
                    write_out("\x07"); // the bell: the line is full
                } else {
                    self.line.insert(self.cursor, c);
                    self.cursor += 1;
                }
            }
            Key::Enter => return Some(Input::Typed(self.enter())),
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.line.remove(self.cursor);
            }
            Key::Delete | Key::EndOfInput if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
            }
            Key::EndOfInput if self.line.is_empty() => return Some(Input::KeyboardEnd),
            Key::Interrupt => return Some(Input::KeyboardEnd),
            Key::Left => self.cursor = self.cursor.saturating_sub(1),
            Key::Right => self.cursor = (self.cursor + 1).min(self.line.len()),
            Key::Home => self.cursor = 0,
            Key::End => self.cursor = self.line.len(),
            Key::ClearToStart => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
            }
            Key::RemoveWord => {
                let mut start = self.cursor;
                while start > 0 && self.line[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && self.line[start - 1] != ' ' {
                    start -= 1;
                }
                self.line.drain(start..self.cursor);
                self.cursor = start;
            }
            Key::Up if self.browsing > 0 => self.recall(self.browsing - 1),
            Key::Down if self.browsing < self.history.len() => self.recall(self.browsing + 1),
            _ => {}
        }
        None
    }

    /// Enter: the line is done; keep it for Up, and start a new one.
    fn enter(&mut self) -> String {
        let line: String = self.line.drain(..).collect();
        self.cursor = 0;
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY_LINES {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        self.browsing = self.history.len();
        self.width = terminal_width();
        line
    }

    /// Up or Down: shows history line `at` (or the new, empty line).
    fn recall(&mut self, at: usize) {
        self.browsing = at;
        let line = self.history.get(at).map_or("", String::as_str);
        self.line = line.chars().collect();
        self.cursor = self.line.len();
    }

    /// The escape codes that draw the prompt and the line on the last row.
    /// A line longer than the row shows the part around the cursor.
    fn draw(&self) -> String {
        let room = self
            .width
            .saturating_sub(columns(self.prompt.chars()) + 1)
            .max(8);
        // Back from the cursor as far as fits, then forward as far as fits.
        let mut start = self.cursor;
        while start > 0 && columns(self.line[start - 1..self.cursor].iter().copied()) <= room {
            start -= 1;
        }
        let mut end = self.cursor;
        while end < self.line.len() && columns(self.line[start..=end].iter().copied()) <= room {
            end += 1;
        }
        let shown: String = self.line[start..end].iter().collect();
        let before = self.line[start..self.cursor].iter().copied();
        let at = columns(self.prompt.chars()) + columns(before);
        // Clear the row, write it, then move the cursor `at` columns right
        // of the row's start (a move of 0 would move one).
        let right = if at > 0 {
            format!("\x1b[{at}C")
        } else {
            String::new()
        };
        format!("\r\x1b[K{}{shown}\r{right}", self.prompt)
    }
}

/// How many columns `chars` take on a terminal: two for the wide characters
/// of East Asian scripts and emoji, none for combining marks, one for the
/// rest. (Unicode's width tables are large; these ranges cover what a class
/// types.)
fn columns(chars: impl Iterator<Item = char>) -> usize {
    chars
        .map(|c| match c {
            c if protocol::is_combining_mark(c) => 0,
            '\u{1100}'..='\u{115F}'
            | '\u{2E80}'..='\u{A4CF}'
            | '\u{AC00}'..='\u{D7A3}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{FE30}'..='\u{FE4F}'
            | '\u{FF00}'..='\u{FF60}'
            | '\u{FFE0}'..='\u{FFE6}'
            | '\u{1F300}'..='\u{1F64F}'
            | '\u{1F900}'..='\u{1F9FF}'
            | '\u{20000}'..='\u{3FFFD}' => 2,
            _ => 1,
        })
        .sum()
}

/// The terminal's settings before the editor changed them, put back on every
/// way out.
static SAVED_TERMINAL: OnceLock<String> = OnceLock::new();

/// Takes the terminal out of line mode, if there is one: the editor then gets
/// each key as it is pressed, unechoed, Ctrl-C and Ctrl-S included. Std has
/// no call for this, so it runs `stty` with the terminal as its stdin, as a
/// shell user would. `false` where the editor cannot run.
fn enter_raw_mode() -> bool {
    let terminal = io::stdin().is_terminal() && io::stdout().is_terminal();
    let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
    if !cfg!(unix) || !terminal || dumb {
        return false;
    }
    let Some(saved) = stty(&["-g"]) else {
        return false;
    };
    // No line editing by the terminal, no echo, Ctrl-C and Ctrl-S as plain
    // keys; output is left alone, so `\n` still starts a new line.
    if stty(&[
        "-icanon", "-echo", "-isig", "-ixon", "-iexten", "min", "1", "time", "0",
    ])
    .is_none()
    {
        return false;
    }
    let _ = SAVED_TERMINAL.set(saved.trim().to_string());
    // A panic must not leave the terminal raw either.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        report(info);
    }));
    true
}

/// Puts back the terminal's settings, if the editor changed them.
pub fn restore_terminal() {
    if let Some(saved) = SAVED_TERMINAL.get() {
        write_out("\r\x1b[K"); // the line being typed goes with the editor
        let _ = stty(&[saved]);
    }
}

/// Restores the terminal when dropped: `run` holds one.
struct RestoreTerminal;

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Runs `stty ARGS` on our terminal; its output, or `None` if it failed.
fn stty(args: &[&str]) -> Option<String> {
    let output = Command::new("stty")
        .args(args)
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The terminal's width in columns, or 80 if `stty size` cannot tell.
fn terminal_width() -> usize {
    let size = stty(&["size"]).unwrap_or_default();
    let columns = size.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    columns.filter(|&c| c > 0).unwrap_or(80)
}
