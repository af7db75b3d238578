//! The terminal: the keyboard thread, and a small line editor that keeps the
//! line being typed whole while other lines arrive above it (beyond the
//! report, whose window had a separate input field, §4.2). Used by the
//! client and by the server's console alike.
//!
//! Std has no terminal API: raw mode is `stty`, run as a shell user would,
//! so the editor runs on Unix terminals only; elsewhere (a pipe, Windows,
//! `TERM=dumb`) the keyboard thread reads plain lines and printing is plain.
//!
//! Not here: what a typed line means (the client and the console decide).

use std::io::{self, IsTerminal, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;

use crate::protocol::{self, Line, MAX_LINE_BYTES};

/// What the keyboard thread hands on.
pub enum Typed {
    /// A line of text, finished with Enter.
    Text(String),
    /// Ctrl-C in the line editor, on an empty line (on a half-typed one it
    /// clears the line, as in a shell: a stray key ends nothing).
    Interrupt,
    /// The end of input: Ctrl-D on an empty line, or a pipe's end.
    EndOfInput,
}

/// Starts the keyboard thread, which gives what is typed to `hand_to` (that
/// says `false` once nobody takes it); returns the screen to print on.
///
/// In a terminal on Unix (not `TERM=dumb`) the thread runs a small line
/// editor: the line being typed stays whole on the last row, and what
/// arrives is printed above it. Anywhere else (stdin piped, Windows, no
/// `stty`) it reads plain lines, and what arrives is printed as it comes.
pub fn start_keyboard(
    hand_to: impl Fn(Typed) -> bool + Send + 'static,
    prompt: &str,
) -> Arc<Screen> {
    let editor = if enter_raw_mode() { Some(Mutex::new(Editor::new(prompt))) } else { None };
    let screen = Arc::new(Screen { editor });
    let keyboard = Arc::clone(&screen);
    // Spawn: the keyboard thread, for the life of the process. Blocked in a
    // read of the keyboard, it cannot be stopped; it need not be.
    let work = move || match keyboard.editor {
        Some(_) => edit_lines(&keyboard, &hand_to),
        None => read_lines(&keyboard, &hand_to),
    };
    if let Err(e) = thread::Builder::new().name("keyboard".into()).spawn(work) {
        screen.print(&format!("! cannot read the keyboard: {e}"));
    }
    screen
}

/// Plain lines from stdin, for when there is no terminal to edit in.
fn read_lines(screen: &Screen, hand_to: &impl Fn(Typed) -> bool) {
    let mut keyboard = io::stdin().lock();
    let mut buf = Vec::new();
    loop {
        let input = match protocol::read_line_limited(&mut keyboard, MAX_LINE_BYTES, &mut buf) {
            Ok(Some(Line::Text(line))) => Typed::Text(line),
            Ok(Some(Line::TooLong)) => {
                // The server would refuse it with the same words.
                screen.print(protocol::line_too_long().trim_end());
                continue;
            }
            Ok(None) | Err(_) => Typed::EndOfInput,
        };
        let end = matches!(input, Typed::EndOfInput);
        if !hand_to(input) || end {
            return;
        }
    }
}

/// Keys from the terminal into the editor, each finished line to the main
/// thread. A key can arrive in pieces (a UTF-8 character, an escape
/// sequence): what is not whole yet waits for the next read.
fn edit_lines(screen: &Screen, hand_to: &impl Fn(Typed) -> bool) {
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
            // Ctrl-D does not end this thread: the console goes on after it.
            if !hand_to(input) {
                return;
            }
        }
        bytes.drain(..used);
        if n == 0 {
            hand_to(Typed::EndOfInput);
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
    /// A screen with no line editor: lines are printed as they come.
    pub fn plain() -> Arc<Screen> {
        Arc::new(Screen { editor: None })
    }

    /// Prints a line: above the line being typed, which is drawn again.
    pub fn print(&self, line: &str) {
        match &self.editor {
            None => write_out(&format!("{line}\n")),
            Some(editor) => {
                let editor = lock(editor);
                write_out(&format!("\r\x1b[K{}\n{}", wrap(line, editor.width), editor.draw()))
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

    /// Whether the line editor runs (a terminal), or plain lines are read.
    pub fn editing(&self) -> bool {
        self.editor.is_some()
    }

    /// In the editor, the prompt for chat lines; plain lines need none.
    pub fn chat_prompt(&self) {
        if self.editor.is_some() {
            self.prompt("> ");
        }
    }

    /// A prompt was answered: the editor keeps the question and the answer
    /// on screen. A plain terminal has echoed the answer already; a pipe
    /// echoes nothing, so the answer is written after the question, which
    /// the next line would otherwise follow on the same row.
    pub fn answered(&self, prompt: &str, answer: &str) {
        if self.editor.is_some() {
            self.prompt("");
            self.print(&format!("{prompt}{answer}"));
        } else if !io::stdin().is_terminal() {
            write_out(&format!("{answer}\n"));
        }
    }

    /// One key for the editor, which draws the result.
    fn key(&self, key: &[u8]) -> Option<Typed> {
        let mut editor = lock(self.editor.as_ref()?);
        let input = editor.key(key);
        write_out(&editor.draw());
        input
    }
}

/// The editor, locked.
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
    /// Whether the last key did not fit: the line holds [`MAX_LINE_BYTES`].
    full: bool,
    /// The terminal's width in columns (`stty size`), asked again after each
    /// line so that a resized window is followed.
    width: usize,
}

impl Editor {
    /// An empty line after `prompt`.
    fn new(prompt: &str) -> Editor {
        let (prompt, line, width) = (prompt.to_string(), String::new(), terminal_width());
        Editor { prompt, line, full: false, width }
    }

    /// Applies one key; returns what it hands to the main thread, if
    /// anything. Escape sequences and other control keys do nothing: they
    /// never reach the room.
    fn key(&mut self, key: &[u8]) -> Option<Typed> {
        if key.first().is_some_and(|&b| b < 0x20 || b == 0x7f) {
            self.full = false; // Enter or an erasing key: there is room again
        }
        match key {
            b"\r" | b"\n" => {
                self.width = terminal_width();
                return Some(Typed::Text(std::mem::take(&mut self.line)));
            }
            b"\x03" if !self.line.is_empty() => self.line.clear(), // Ctrl-C
            b"\x03" => return Some(Typed::Interrupt),
            b"\x04" if self.line.is_empty() => return Some(Typed::EndOfInput), // Ctrl-D
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
                Ok(_) if !self.full => {
                    // The bell, and once, above the line, what happened.
                    self.full = true;
                    let note = format!(
                        "the line is full ({MAX_LINE_BYTES} bytes): the rest was not added"
                    );
                    write_out(&format!("\x07\r\x1b[K! {note}\n"));
                }
                Ok(_) => write_out("\x07"),
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
/// two. A line measured so never wraps by itself (it may break a little
/// early); Unicode's real width tables are far larger than this project.
fn columns(text: &str) -> usize {
    text.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

/// `line` cut into rows of at most `width` columns, each row after the first
/// indented. Only a line's first row starts at column 0, so nothing someone
/// sends can start a row of its own there and pass for the server's
/// (`* bob left`), however many spaces it is padded with. A word that does
/// not fit on the row, but would on the next, starts the next. Our own
/// escape codes (the log's dimming: `ESC [`, then up to a byte from `@` to
/// `~`) take no columns, so no row breaks inside one; our own `\n` (the
/// console's `/who` is a line per user) starts a line of its own.
fn wrap(line: &str, width: usize) -> String {
    let (width, mut rows, mut used, mut in_code) = (width.max(8), String::new(), 0, false);
    for (at, c) in line.char_indices() {
        let code = in_code || c == '\x1b';
        in_code = c == '\x1b' || (in_code && (c == '[' || !('@'..='~').contains(&c)));
        let wide = if code { 0 } else { columns(c.encode_utf8(&mut [0; 4])) };
        let word = || columns(line[at + 1..].split([' ', '\n']).next().unwrap_or_default());
        if c == ' ' && used > 2 && used + 1 + word() > width && 2 + word() <= width {
            (rows, used) = (rows + "\n  ", 2); // instead of the space
            continue;
        }
        if used + wide > width {
            (rows, used) = (rows + "\n  ", 2);
        }
        rows.push(c);
        used = if c == '\n' { 0 } else { used + wide };
    }
    rows
}

/// The terminal's settings before the editor changed them, put back however
/// the program ends on its own (an error and a panic too; a `kill` from
/// outside leaves the terminal raw, and `stty sane` mends it).
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
    let Some(saved) = output_of("stty", &["-g"]) else { return false };
    // No line editing by the terminal, no echo, Ctrl-C and Ctrl-S as plain
    // keys; output is left alone, so `\n` still starts a new line.
    let raw = ["-icanon", "-echo", "-isig", "-ixon", "-iexten", "min", "1", "time", "0"];
    if output_of("stty", &raw).is_none() {
        return false;
    }
    let _ = SAVED_TERMINAL.set(saved.trim().to_string());
    // A panic must not leave the terminal raw either.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        report(info);
    }));
    true
}

/// Whether this process was started in the background of its terminal
/// (`chatroom server &`): reading the keyboard or changing the terminal's
/// settings would then stop it (`Stopped (tty input)`, `(tty output)`). On
/// Linux, from `/proc/self/stat`: our process group is not the terminal's
/// foreground group. Elsewhere it cannot tell, and says no.
pub fn in_background() -> bool {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 5 and 8 of proc(5): the process group, and the terminal's.
    let (group, foreground) = (fields.get(2), fields.get(5));
    io::stdin().is_terminal() && group.is_some() && group != foreground
}

/// Puts back the terminal's settings, if the editor changed them.
pub fn restore() {
    if let Some(saved) = SAVED_TERMINAL.get() {
        write_out("\r\x1b[K"); // the line being typed goes with the editor
        let _ = output_of("stty", &[saved]);
    }
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
    let size = output_of("stty", &["size"]).unwrap_or_default();
    let columns = size.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    columns.filter(|&c| c > 0).unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_row_of_a_wrapped_line_starts_at_column_0() {
        let padded = format!("bob: hi{}* bob left", " ".repeat(13));
        assert_eq!(wrap(&padded, 20), "bob: hi            \n  * bob left");
        assert_eq!(wrap("日本語です", 8), "日本語で\n  す");
        // Words stay whole; a word wider than a row is cut where it must be.
        assert_eq!(wrap("al: one two three", 10), "al: one\n  two\n  three");
        assert_eq!(wrap("al: abcdefghijk", 10), "al: abcdef\n  ghijk");
        // Our own lines (the console's `/who`) each start at column 0.
        assert_eq!(wrap("* online (2)\n*   1  al", 14), "* online (2)\n*   1  al");
        assert_eq!(wrap("\x1b[2mabcdefgh\x1b[0m", 8), "\x1b[2mabcdefgh\x1b[0m");
    }
}
