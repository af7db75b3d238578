//! The client's way out, and back (beyond the report, whose client shows
//! the error and closes the connection, §5): `/quit` that waits for the
//! server's goodbye, and a lost connection made again, with the name
//! rejoined and the lines typed meanwhile kept to be sent.
//!
//! A part of `client.rs` (its child module, so it sees the client's own
//! fields), kept apart because the report's client has none of it.
//!
//! Not here: connecting and choosing a name, which it reuses (`client.rs`).

use std::ops::ControlFlow::{Break, Continue};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::{Client, End, Input, Step};
use crate::protocol::{self, Command};
use crate::terminal::Typed;
use crate::text;

/// How many typed lines may wait to be sent while there is no connection;
/// more are refused, each said to be.
const MAX_WAITING: usize = 100;

/// After `/quit`, how long to wait for the server to say goodbye and close.
/// Ours does so at once; this only keeps a broken server from holding the
/// client open.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// The longest pause between two tries to reconnect: the pauses grow 1, 2,
/// 4 s, then stay at this, so that a class waits at most this long once
/// the server is back. With the default 17 tries, about 75 s in all: long
/// enough for a server to be restarted, short enough that a class is not
/// left waiting on one that will not come back.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

impl Client {
    /// Says `/quit`, then shows the server's last lines (its `* bye`) until
    /// it closes the connection.
    pub(super) fn quit(&mut self) -> End {
        self.send("/quit");
        let deadline = Instant::now() + QUIT_WAIT;
        loop {
            match self.inbox.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Input::Heard(n, line)) if n == self.connections => self.screen.print(&line),
                Ok(Input::Lost(n, _)) if n == self.connections => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        End::Left
    }

    /// The connection has ended. A shutdown or a removal, said by the server
    /// in `last`, ends the client; anything else is a lost connection, and
    /// the client connects again and rejoins. Returns the name rejoined with.
    pub(super) fn reconnect(&mut self, last: &str, why: String, name: &str) -> Step<String> {
        if last == protocol::shutting_down().trim_end() {
            return Break(End::ServerStopped);
        }
        if let Some(reason) = last.strip_prefix(protocol::REMOVED) {
            return Break(End::Removed(reason.to_string()));
        }
        self.connect_again(why)?;
        let name = self.choose_name(Some(name.to_string()))?;
        self.screen.print("* connected again");
        Continue(name)
    }

    /// The connection was lost (`why`): connects again, with growing pauses
    /// between tries; an error once `--retries` tries have failed.
    pub(super) fn connect_again(&mut self, mut why: String) -> Step<()> {
        self.socket = None;
        let mut pause = Duration::from_secs(1);
        for attempt in 1..=self.retries {
            let (tries, seconds) = (self.retries, pause.as_secs());
            let state = if attempt == 1 { "connection lost" } else { "still not connected" };
            self.screen.print(&format!(
                "! {state} ({why}); trying again in {seconds} s ({attempt} of {tries})"
            ));
            self.wait(pause)?;
            pause = (pause * 2).min(MAX_RETRY_PAUSE);
            match self.connect(self.host.clone(), self.port) {
                Ok(_greeting) => return Continue(()),
                Err(e) => why = e.words(),
            }
        }
        let (host, port) = (&self.host, self.port);
        Break(End::Failed(format!("connection to {host}:{port} lost: {why}")))
    }

    /// Waits `pause` while disconnected. A line typed meanwhile waits to be
    /// sent, and the screen says so; `/quit`, Ctrl-D or Ctrl-C leaves now.
    fn wait(&mut self, pause: Duration) -> Step<()> {
        let until = Instant::now() + pause;
        loop {
            match self.inbox.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Input::Keyboard(Typed::Line(line))) => {
                    if protocol::parse_command(&text::sanitize(&line)) == Some(Command::Quit) {
                        return Break(End::Left);
                    }
                    self.hold(Typed::Line(line));
                    let count = self.waiting.len();
                    self.screen.print(&format!("* not connected: {count} line(s) wait to be sent"));
                }
                Ok(Input::Keyboard(_)) => return Break(End::Left),
                Ok(_) => {} // a listener of a connection given up
                Err(RecvTimeoutError::Timeout) => return Continue(()),
                Err(RecvTimeoutError::Disconnected) => return Break(End::Left),
            }
        }
    }

    /// Keeps a typed line until it can be sent, or says it cannot be.
    pub(super) fn hold(&mut self, typed: Typed) {
        if self.waiting.len() < MAX_WAITING {
            self.waiting.push_back(typed);
        } else {
            self.screen.print(&format!("! not sent: already {MAX_WAITING} lines wait to be sent"));
        }
    }
}
