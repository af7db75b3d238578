//! One raw connection to a chat server, as `nc` would make it, with every
//! wait bounded. The checker's rules use it (each step returns a `Result`,
//! a `Failure` saying what was sent, expected and got), and so does the
//! tests' harness (the same steps, which panic with that message instead).

use std::fmt;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::loopback;

/// A rule that did not hold: what was sent last, what was expected, and what
/// came instead (or that nothing came in time).
#[derive(Debug)]
pub struct Failure {
    pub sent: String,
    pub expected: String,
    pub got: String,
}

impl fmt::Display for Failure {
    /// Each part escaped (a server's escape sequences must not reach this
    /// terminal) and cut to a line's width.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let show = |text: &str| {
            // Controls and everything beyond ASCII written as escapes: some
            // letters look like nothing (a Hangul filler), some like others.
            let hides = |c: char| c.is_control() || !c.is_ascii();
            let escaped: String = (text.chars())
                .map(|c| if hides(c) { c.escape_unicode().to_string() } else { c.to_string() })
                .collect();
            match escaped.char_indices().nth(100) {
                Some((at, _)) => format!("{}... ({} bytes)", &escaped[..at], text.len()),
                None => escaped,
            }
        };
        let sent = if self.sent.is_empty() {
            "(nothing yet: just connected)".into()
        } else {
            show(&self.sent)
        };
        let (expected, got) = (show(&self.expected), show(&self.got));
        write!(f, "sent:     {sent}\nexpected: {expected}\ngot:      {got}")
    }
}

/// What the peers of one rule (or one test) sent last, shown in a failure.
pub type Sent = Arc<Mutex<String>>;

/// A connection to the server.
pub struct Peer {
    pub stream: TcpStream,
    pub reader: BufReader<TcpStream>,
    /// Who this is in a failure's `sent:` line: the name it joined with.
    pub label: String,
    sent: Sent,
    wait: Duration,
    /// Pass over `* [earlier] ...` lines (a server's history for newcomers):
    /// the checker's rules ask for live lines; the tests want every line.
    pub skip_earlier: bool,
    /// Pass over `LABEL: ...` lines, this peer's own chat sent back to it
    /// (an echo): the checker judges an echo in one rule, and its other
    /// rules look past it.
    pub skip_own: bool,
}

impl Peer {
    /// Wraps a connected stream; reads wait at most `wait`.
    pub fn with(stream: TcpStream, wait: Duration, sent: Sent) -> io::Result<Peer> {
        stream.set_read_timeout(Some(wait))?;
        let reader = BufReader::new(stream.try_clone()?);
        let label = "client".into();
        Ok(Peer { stream, reader, label, sent, wait, skip_earlier: false, skip_own: false })
    }

    /// Connects to `addr`, from the loopback address `source` if given (the
    /// server then sees another machine), with at most `receive_buffer`
    /// bytes held for it unread if given.
    pub fn open(
        addr: SocketAddr,
        source: Option<Ipv4Addr>,
        receive_buffer: Option<i32>,
        wait: Duration,
        sent: Sent,
    ) -> io::Result<Peer> {
        let stream = match (source, receive_buffer) {
            (None, None) => TcpStream::connect_timeout(&addr, wait)?,
            (source, buffer) => {
                let source = source.unwrap_or(Ipv4Addr::LOCALHOST);
                loopback::connect_with(source, addr, buffer)?
            }
        };
        Peer::with(stream, wait, sent)
    }

    /// Sends `line` and its `\n`.
    pub fn say(&mut self, line: &str) -> Result<(), Failure> {
        self.say_raw(format!("{line}\n").as_bytes())
    }

    /// Sends bytes as they are (remembered, for a failure's `sent:`).
    pub fn say_raw(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let text = String::from_utf8_lossy(bytes);
        let shown = format!("{}> {}", self.label, text.strip_suffix('\n').unwrap_or(&text));
        *self.sent.lock().unwrap_or_else(|e| e.into_inner()) = shown;
        self.stream.write_all(bytes).map_err(|e| self.failure("to send", &e.to_string()))
    }

    /// The next line, without its `\n`; a failure if none comes in time.
    pub fn line(&mut self) -> Result<String, Failure> {
        self.line_or("a line")
    }

    fn line_or(&mut self, expected: &str) -> Result<String, Failure> {
        loop {
            let line = self.one_line(expected)?;
            let own = line.strip_prefix(self.label.as_str()).is_some_and(|l| l.starts_with(": "));
            if !(self.skip_earlier && line.starts_with("* [earlier] ") || self.skip_own && own) {
                return Ok(line);
            }
        }
    }

    fn one_line(&mut self, expected: &str) -> Result<String, Failure> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err(self.failure(expected, "the connection closed")),
            Ok(_) if !line.ends_with('\n') => {
                Err(self.failure(expected, &format!("{line:?} (no newline)")))
            }
            Ok(_) => {
                line.pop();
                Ok(line)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let seconds = self.wait.as_secs_f64();
                Err(self.failure(expected, &format!("nothing within {seconds} s")))
            }
            Err(e) => Err(self.failure(expected, &e.to_string())),
        }
    }

    /// The next line, which must be exactly `expected`.
    pub fn want(&mut self, expected: &str) -> Result<(), Failure> {
        let line = self.line_or(expected)?;
        if line == expected { Ok(()) } else { Err(self.failure(expected, &line)) }
    }

    /// The next line, which must start with `prefix`; returns it.
    pub fn want_prefix(&mut self, prefix: &str) -> Result<String, Failure> {
        let line = self.line_or(&format!("{prefix}..."))?;
        if line.starts_with(prefix) { Ok(line) } else { Err(self.failure(prefix, &line)) }
    }

    /// Reads lines until one starts with `prefix`; returns it.
    pub fn find(&mut self, prefix: &str) -> Result<String, Failure> {
        loop {
            let line = self.line_or(&format!("a line starting {prefix:?}"))?;
            if line.starts_with(prefix) {
                return Ok(line);
            }
        }
    }

    /// The server must close the connection (an end, or a reset) before
    /// sending anything more.
    pub fn want_closed(&mut self) -> Result<(), Failure> {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) if rest.is_empty() => Ok(()),
            Ok(_) => Err(self.failure("the connection closed", &String::from_utf8_lossy(&rest))),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
            Err(e) => Err(self.failure("the connection closed", &e.to_string())),
        }
    }

    /// A failure on this connection: what was sent last, `expected`, and
    /// `got` (said to be on this peer's connection).
    pub fn failure(&self, expected: &str, got: &str) -> Failure {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let got = format!("{got} (on {}'s connection)", self.label);
        Failure { sent, expected: expected.to_string(), got }
    }
}

/// The server's first line on every connection.
pub const GREETING: &str = "* welcome to chatroom, please enter your name";
