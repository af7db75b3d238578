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
//!   alone writes to the socket, and prints what arrives;
//! - the **keyboard** thread ([`start_keyboard`]) reads what is typed (and,
//!   in the line editor, draws it);
//! - a **listener** per connection ([`listen`]) reads the socket.
//!
//! The keyboard and the listener hand what they read to the main thread over
//! one channel, as [`Input`]s, so the main thread waits in one place for
//! whichever comes first: a line typed or a line from the room, the two
//! things the report's window, an input field and a list of messages (§4.2),
//! has to handle.
//!
//! Who ends whom: the main thread decides, and ending `run` ends the process,
//! keyboard thread and all. `/quit` or Ctrl-D (and Ctrl-C in the line editor;
//! elsewhere Ctrl-C simply ends the process): it says `/quit`, waits for the
//! server to close, and returns. The server shutting down or removing the
//! user: it returns. The connection lost without a word: it connects again,
//! and only after enough tries ends with the error, as the report's client
//! does at once (§5).

use std::io::{self, BufReader, IsTerminal, Read, Write};
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
    /// The connection, while there is one. The main thread writes to it, the
    /// listener reads it: both work on a shared `&TcpStream`, as in the server.
    socket: Option<Arc<TcpStream>>,
    /// Connections made so far; the last one's number is the current one's.
    connections: u64,
    retries: u32,
}

/// Runs the client until the user leaves (`Ok`) or something fails (`Err`).
pub fn run(config: Config) -> Result<(), String> {
    let (inputs, inbox) = mpsc::channel();
    // Beyond the report: in a terminal, a line editor (see `start_keyboard`).
    let screen = start_keyboard(inputs.clone(), "");
    let (host, port, socket, connections, retries) = (String::new(), 0, None, 0, config.retries);
    let mut client = Client { inbox, inputs, screen, host, port, socket, connections, retries };
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
                Err(Stop::Fail(why)) if config.host.is_none() || config.port.is_none() => {
                    let hint = "is the server running? is the port right?";
                    self.screen.print(&format!("! {why} ({hint})"));
                }
                done => return done,
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
                None => self.ask("Name: ", "")?,
            };
            if self.socket.is_none() {
                self.connect(self.host.clone(), self.port)?;
            }
            self.send(&attempt);
            // The one line that answers a name: `* ` welcomes, `! ` says why
            // not. The deadline's `! `, or no answer at all, means the
            // connection has ended: the name goes again, on a new one.
            match self.next_from_server()? {
                Some(line) if line.starts_with(protocol::NOTICE) => {
                    self.screen.print(&line);
                    return Ok(attempt);
                }
                Some(line) if !line.starts_with(protocol::NAME_DEADLINE) => {
                    self.screen.print(&line)
                }
                _ => {
                    self.socket = None;
                    name = Some(attempt);
                }
            }
        }
    }

    /// Report §4.2: shows what arrives and sends what is typed, until the
    /// user leaves.
    fn chat(&mut self, mut name: String) -> Result<(), Stop> {
        self.screen.chat_prompt();
        // The server's last line says why it closed the connection, if it did.
        let mut last = String::new();
        loop {
            match self.next() {
                Input::Typed(line) => {
                    if self.say(&name, &line) {
                        return self.quit();
                    }
                }
                Input::KeyboardEnd => return self.quit(),
                Input::Heard(_, line) => {
                    self.screen.print(&line);
                    last = line;
                }
                Input::Lost(_, why) => {
                    name = self.lost(&last, why, name)?;
                    self.screen.chat_prompt();
                }
            }
        }
    }

    /// Sends a typed line, and shows a chat line as the others will see it
    /// (the server never echoes it). `/quit` is left to `quit`: `true`.
    fn say(&mut self, name: &str, line: &str) -> bool {
        let command = protocol::parse_command(&protocol::sanitize(line));
        match &command {
            Some(protocol::Command::Quit) => return true,
            Some(protocol::Command::Say(text)) => {
                self.screen.print(protocol::chat(name, text).trim_end());
            }
            _ => {}
        }
        if command.is_some() {
            self.send(line);
        }
        false
    }

    /// Connects to `host:port`: starts the connection's listener and reads
    /// the server's first line, its greeting (or why it cannot take us).
    fn connect(&mut self, host: String, port: u16) -> Result<(), Stop> {
        let fail = |why: String| Stop::Fail(format!("cannot connect to {host}:{port}: {why}"));
        let socket = Arc::new(open_socket(&host, port).map_err(fail)?);
        self.connections += 1;
        let (number, reading, inputs) =
            (self.connections, Arc::clone(&socket), self.inputs.clone());
        // Spawn: the listener of this connection. It ends with the connection.
        let work = move || listen(number, &reading, &inputs);
        let name = format!("listener-{number}");
        thread::Builder::new().name(name).spawn(work).map_err(|e| fail(e.to_string()))?;
        (self.socket, self.host, self.port) = (Some(socket), host, port);
        match self.next_from_server()? {
            Some(greeting) if !greeting.starts_with(protocol::ERROR) => {
                self.screen.print(&greeting);
                Ok(())
            }
            // An error line: `! why`.
            Some(why) => Err(Stop::Fail(format!("server refused the connection: {}", &why[2..]))),
            None => Err(Stop::Fail("the server closed the connection".into())),
        }
    }

    /// Sends one line, adding its `\n`, in one write. A failed write needs
    /// nothing here: the listener sees the same broken connection.
    fn send(&self, line: &str) {
        if let Some(socket) = &self.socket {
            let _ = (&**socket).write_all(format!("{line}\n").as_bytes());
        }
    }

    /// The next line from the server; `None` if the connection ends first.
    fn next_from_server(&mut self) -> Result<Option<String>, Stop> {
        loop {
            match self.next() {
                Input::Heard(_, line) => return Ok(Some(line)),
                Input::Lost(..) => return Ok(None),
                Input::KeyboardEnd => return Err(Stop::Leave),
                Input::Typed(_) => self.screen.print("! not sent: not connected yet"),
            }
        }
    }

    /// The next input, passing over what the listeners of connections
    /// already given up still say.
    fn next(&mut self) -> Input {
        loop {
            // The channel cannot close: `self.inputs` is one of its senders.
            match self.inbox.recv().unwrap_or(Input::KeyboardEnd) {
                Input::Heard(n, _) | Input::Lost(n, _) if n != self.connections => {}
                input => return input,
            }
        }
    }
}

/// The listener of one connection: hands every line from the server to the
/// main thread, then says how the connection ended.
fn listen(number: u64, socket: &TcpStream, inputs: &Sender<Input>) {
    let (mut from, mut buf) = (BufReader::new(socket), Vec::new());
    let why = loop {
        let heard = match protocol::read_line_limited(&mut from, MAX_SERVER_LINE_BYTES, &mut buf) {
            // Cleaned of control characters, in case the server is not ours.
            Ok(Some(Line::Text(line))) => protocol::sanitize(&line),
            Ok(Some(Line::TooLong)) => "! (a line from the server was too long to show)".into(),
            Ok(None) => break "the server closed the connection".to_string(),
            Err(e) => break e.to_string(),
        };
        if inputs.send(Input::Heard(number, heard)).is_err() {
            return; // the main thread has ended
        }
    };
    let _ = inputs.send(Input::Lost(number, why));
}

/// How long to try to reach the server. A host on the LAN that is switched
/// off never answers at all, and the operating system's own limit is minutes.
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

impl Client {
    /// Asks for the host (`host:port` answers both), then the port. A host
    /// that cannot be found is said at once, and asked again.
    fn ask_address(&mut self, config: &Config) -> Result<(String, u16), Stop> {
        loop {
            let answer = match &config.host {
                Some(host) => host.clone(),
                None => self.ask(&format!("Server host [{DEFAULT_HOST}]: "), DEFAULT_HOST)?,
            };
            let (host, port_in_host) = protocol::split_host_port(&answer);
            match ((host.as_str(), DEFAULT_PORT).to_socket_addrs(), config.port.or(port_in_host)) {
                (Ok(_), Some(port)) => return Ok((host, port)),
                (Ok(_), None) => return Ok((host, self.ask_port()?)),
                (Err(e), _) if config.host.is_some() => {
                    return Err(Stop::Fail(format!("cannot find the host {host}: {e}")));
                }
                (Err(e), _) => {
                    self.screen.print(&format!("! cannot find the host {host}: {e}; try again"))
                }
            }
        }
    }

    fn ask_port(&mut self) -> Result<u16, Stop> {
        loop {
            let answer =
                self.ask(&format!("Port [{DEFAULT_PORT}]: "), &DEFAULT_PORT.to_string())?;
            match answer.parse::<u16>() {
                Ok(port) if port > 0 => return Ok(port),
                _ => self.screen.print(&format!(
                    "! not a port number: {answer} (use a number from 1 to 65535)"
                )),
            }
        }
    }

    /// Asks `prompt` and waits for the answer, trimmed and cleaned, or
    /// `default` for none. The end of the keyboard (Ctrl-D) means the user
    /// changed their mind. Meanwhile the server may speak: the name deadline
    /// passing ends the connection quietly (`choose_name` makes a new one).
    fn ask(&mut self, prompt: &str, default: &str) -> Result<String, Stop> {
        self.screen.prompt(prompt);
        loop {
            match self.next() {
                Input::Typed(answer) => {
                    self.screen.answered(prompt, &answer);
                    let answer = protocol::sanitize(&answer).trim().to_string();
                    return Ok(if answer.is_empty() { default.into() } else { answer });
                }
                Input::KeyboardEnd => {
                    self.screen.print("");
                    return Err(Stop::Leave);
                }
                Input::Heard(_, line) if line.starts_with(protocol::NAME_DEADLINE) => {}
                Input::Heard(_, line) => self.screen.print(&line),
                Input::Lost(..) => self.socket = None,
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
    /// Says `/quit`, then shows the server's last lines (its `* bye`) until
    /// it closes the connection.
    fn quit(&mut self) -> Result<(), Stop> {
        self.send("/quit");
        let deadline = Instant::now() + QUIT_WAIT;
        let left = || deadline.saturating_duration_since(Instant::now());
        while let Ok(input) = self.inbox.recv_timeout(left()) {
            match input {
                Input::Heard(n, line) if n == self.connections => self.screen.print(&line),
                Input::Lost(n, _) if n == self.connections => break,
                _ => {}
            }
        }
        Ok(())
    }

    /// The connection has ended. A shutdown or a removal, said by the server
    /// in `last`, ends the client; anything else is a lost connection, and
    /// the client connects again and rejoins. Returns the name rejoined with.
    fn lost(&mut self, last: &str, mut why: String, name: String) -> Result<String, Stop> {
        if last == protocol::shutting_down().trim_end() {
            return Err(Stop::Leave);
        }
        if let Some(reason) = last.strip_prefix(protocol::REMOVED) {
            return Err(Stop::Fail(format!("removed by the server: {reason}")));
        }
        self.socket = None;
        let mut pause = Duration::from_secs(1);
        for attempt in 1..=self.retries {
            let (tries, seconds) = (self.retries, pause.as_secs());
            self.screen.print(&format!(
                "! connection lost ({why}); trying again in {seconds} s ({attempt} of {tries})"
            ));
            self.wait(pause)?;
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
            let again = self.connect(self.host.clone(), self.port);
            match again.and_then(|()| self.choose_name(Some(name.clone()))) {
                Ok(name) => {
                    self.screen.print("* connected again");
                    return Ok(name);
                }
                Err(Stop::Fail(e)) => why = e,
                Err(Stop::Leave) => return Err(Stop::Leave),
            }
        }
        let (host, port) = (&self.host, self.port);
        Err(Stop::Fail(format!("connection to {host}:{port} lost: {why}")))
    }

    /// Waits `pause` while disconnected; Ctrl-D or Ctrl-C leaves.
    fn wait(&mut self, pause: Duration) -> Result<(), Stop> {
        let until = Instant::now() + pause;
        loop {
            match self.inbox.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Input::Typed(_)) => self.screen.print("! not sent: not connected"),
                Ok(Input::KeyboardEnd) | Err(RecvTimeoutError::Disconnected) => {
                    return Err(Stop::Leave);
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return Ok(()),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The keyboard, and a line editor for terminals
// ---------------------------------------------------------------------------

/// Starts the keyboard thread; returns the screen to print on.
///
/// In a terminal on Unix (not `TERM=dumb`) the thread runs a small line
/// editor: the line being typed stays whole on the last row, and what
/// arrives is printed above it. Anywhere else (stdin piped, Windows, no
/// `stty`) it reads plain lines, and what arrives is printed as it comes.
pub fn start_keyboard(inputs: Sender<Input>, prompt: &str) -> Arc<Screen> {
    let editor = if enter_raw_mode() { Some(Mutex::new(Editor::new(prompt))) } else { None };
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
        screen.print(&format!("! cannot read the keyboard: {e}"));
    }
    screen
}

/// Plain lines from stdin, for when there is no terminal to edit in.
fn read_lines(screen: &Screen, inputs: &Sender<Input>) {
    let mut keyboard = io::stdin().lock();
    let mut buf = Vec::new();
    loop {
        let input = match protocol::read_line_limited(&mut keyboard, MAX_LINE_BYTES, &mut buf) {
            Ok(Some(Line::Text(line))) => Input::Typed(line),
            Ok(Some(Line::TooLong)) => {
                // The server would refuse it with the same words.
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

/// Keys from the terminal into the editor, each finished line to the main
/// thread. A key can arrive in pieces (a UTF-8 character, an escape
/// sequence): what is not whole yet waits for the next read.
fn edit_lines(screen: &Screen, inputs: &Sender<Input>) {
    let mut keyboard = io::stdin().lock();
    let (mut bytes, mut chunk) = (Vec::new(), [0u8; 256]);
    loop {
        let n = keyboard.read(&mut chunk).unwrap_or(0);
        bytes.extend_from_slice(&chunk[..n]);
        let mut used = 0;
        while let Some(len) = key_length(&bytes[used..]) {
            let input = screen.key(&bytes[used..used + len]);
            used += len;
            let Some(input) = input else {
                continue; // a key that only changed the line
            };
            let end = matches!(input, Input::KeyboardEnd);
            if inputs.send(input).is_err() || end {
                return;
            }
        }
        bytes.drain(..used);
        if n == 0 {
            let _ = inputs.send(Input::KeyboardEnd);
            return;
        }
    }
}

/// How many bytes the key at the start of `bytes` takes; `None` if they are
/// only its beginning. An escape sequence (arrows, function keys) is `ESC [`
/// up to a final byte from `@` to `~`, or `ESC O` and one byte; UTF-8 says
/// its length in its first byte.
fn key_length(bytes: &[u8]) -> Option<usize> {
    let len = match *bytes.first()? {
        0x1b => match *bytes.get(1)? {
            b'[' => bytes[2..].iter().position(|b| (0x40..=0x7e).contains(b))? + 3,
            b'O' => 3,
            _ => 2,
        },
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    };
    if bytes.len() >= len { Some(len) } else { None }
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
            Some(editor) => write_out(&format!("\r\x1b[K{line}\n{}", lock(editor).draw())),
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

    /// Whether the line editor runs (a terminal), or plain lines are read.
    pub fn editing(&self) -> bool {
        self.editor.is_some()
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

    /// One key for the editor, which draws the result.
    fn key(&self, key: &[u8]) -> Option<Input> {
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

/// The line being typed. Typing adds at its end, and Backspace, Ctrl-W and
/// Ctrl-U remove from there: the cursor stays at the end (moving it, and
/// calling back earlier lines with Up, are left as exercises).
struct Editor {
    prompt: String,
    line: String,
    /// The terminal's width in columns (`stty size`), asked again after each
    /// line so that a resized window is followed.
    width: usize,
}

impl Editor {
    fn new(prompt: &str) -> Editor {
        let (prompt, line, width) = (prompt.to_string(), String::new(), terminal_width());
        Editor { prompt, line, width }
    }

    /// Applies one key; returns what it hands to the main thread, if
    /// anything. Escape sequences and other control keys do nothing: they
    /// never reach the room.
    fn key(&mut self, key: &[u8]) -> Option<Input> {
        match key {
            b"\r" | b"\n" => {
                self.width = terminal_width();
                return Some(Input::Typed(std::mem::take(&mut self.line)));
            }
            b"\x03" => return Some(Input::KeyboardEnd), // Ctrl-C
            b"\x04" if self.line.is_empty() => return Some(Input::KeyboardEnd), // Ctrl-D
            b"\x7f" | b"\x08" => drop(self.line.pop()), // Backspace: a character, not a byte
            b"\x15" => self.line.clear(),               // Ctrl-U
            b"\x17" => {
                // Ctrl-W: the spaces before the cursor, then the word.
                let kept = self.line.trim_end().trim_end_matches(|c| c != ' ').len();
                self.line.truncate(kept);
            }
            b"\t" => self.line.push(' '),
            [first, ..] if *first < 0x20 || *first == 0x7f => {}
            _ => match std::str::from_utf8(key) {
                Ok(text) if self.line.len() + text.len() <= MAX_LINE_BYTES => {
                    self.line.push_str(text)
                }
                Ok(_) => write_out("\x07"), // the bell: the line is full
                Err(_) => {}
            },
        }
        None
    }

    /// The escape codes that draw the prompt and the line on the last row:
    /// clear the row, write. A line wider than the row shows its end.
    fn draw(&self) -> String {
        let room = self.width.saturating_sub(columns(&self.prompt) + 1).max(8);
        let mut start = self.line.len();
        for (at, _) in self.line.char_indices().rev() {
            if columns(&self.line[at..]) > room {
                break;
            }
            start = at;
        }
        format!("\r\x1b[K{}{}", self.prompt, &self.line[start..])
    }
}

/// How many columns `text` may take on a terminal, at most: East Asian
/// characters and emoji take two, so every character beyond ASCII counts as
/// two. The line then never wraps (it may scroll a little early); Unicode's
/// real width tables are far larger than this project.
fn columns(text: &str) -> usize {
    text.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
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
    if stty(&["-icanon", "-echo", "-isig", "-ixon", "-iexten", "min", "1", "time", "0"]).is_none() {
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

/// Runs `stty ARGS` on our terminal; its output, or `None` if it failed.
fn stty(args: &[&str]) -> Option<String> {
    output_of("stty", args)
}

/// Runs a program as a shell user would (`stty` here; `date` and `hostname`
/// for the server), with our stdin, which `stty` works on; its output, or
/// `None` if it failed.
pub fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::inherit()).stderr(Stdio::null());
    let output = command.output().ok().filter(|out| out.status.success())?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The terminal's width in columns, or 80 if `stty size` cannot tell.
fn terminal_width() -> usize {
    let size = stty(&["size"]).unwrap_or_default();
    let columns = size.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    columns.filter(|&c| c > 0).unwrap_or(80)
}
