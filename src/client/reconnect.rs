//! The client's way out, and back (beyond the report, whose client shows
//! the error and closes the connection, §5): `/quit` that waits for the
//! server's goodbye; a server that is not there yet waited for; a lost
//! connection made again, with the name rejoined; and the lines typed
//! meanwhile kept, to be sent once there is someone to send them to.
//!
//! A part of `client.rs` (its child module, so it sees the client's own
//! fields), kept apart because the report's client has none of it.
//!
//! Not here: connecting and choosing a name, which it reuses (`client.rs`).

use std::ops::ControlFlow::{Break, Continue};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::{Client, Exit, Input, Step};
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

/// The longest pause between two tries to connect: the pauses grow 1, 2,
/// 4 s, then stay at this, so that a class waits at most this long once
/// the server is (back) up. After a lost connection, the default 17 tries
/// take about 75 s in all: long enough for a server to be restarted, short
/// enough that a class is not left waiting on one that will not come back.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

impl Client {
    /// Says `/quit`, then shows the server's last lines (its `* bye`) until
    /// it closes the connection. What was typed after is dropped: the user
    /// chose to leave before it.
    pub(super) fn quit(&mut self) -> Exit {
        self.send("/quit");
        self.waiting.clear();
        self.unsent.clear();
        let deadline = Instant::now() + QUIT_WAIT;
        while self.socket.is_some() {
            match self.inputs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Input::Heard(line)) => self.screen.print(&line),
                Ok(Input::Lost { .. }) => self.socket = None,
                Ok(Input::Keyboard(_)) => {}
                Err(_) => break,
            }
        }
        Exit::Left
    }

    /// The connection has ended. A shutdown or a removal, said by the server
    /// in `last`, ends the client; anything else is a lost connection, and
    /// the client connects again and rejoins. Returns the name rejoined with.
    pub(super) fn rejoin(&mut self, last: &str, why: String, name: &str) -> Step<String> {
        self.socket = None; // its listener has ended
        if last == protocol::SHUTTING_DOWN.trim_end() {
            return Break(Exit::ServerStopped);
        }
        if let Some(reason) = last.strip_prefix(protocol::REMOVED) {
            return Break(Exit::Removed(reason.to_string()));
        }
        self.connect_again(why)?;
        let name = self.choose_name(Some(name.to_string()))?;
        self.screen.print("* connected again");
        self.screen.chat_prompt();
        Continue(name)
    }

    /// Connects again at once, quietly (a name went too late, or the server
    /// was lost at the name prompt); if that fails, as after a lost chat.
    pub(super) fn reconnect(&mut self) -> Step<()> {
        match self.connect()? {
            Ok(_greeting) => Continue(()),
            Err(why) => self.connect_again(why),
        }
    }

    /// The connection was lost (`why`): connects again, with growing pauses
    /// between tries, each said; an error once `--retries` tries have failed.
    pub(super) fn connect_again(&mut self, why: String) -> Step<()> {
        self.retry(Some(self.retries), why)
    }

    /// No server took the first connection (`why`): says so once, then
    /// tries again every few seconds, until one greets or the user leaves.
    pub(super) fn wait_for_server(&mut self, why: String) -> Step<()> {
        self.screen.print(&format!("! {why}; trying every few seconds (Ctrl-C leaves)"));
        self.retry(None, why)
    }

    /// Tries to connect, with pauses growing to [`MAX_RETRY_PAUSE`], at most
    /// `tries` times (or until the user leaves); the first connection's
    /// greeting is shown, a new one's is not (it was seen before).
    fn retry(&mut self, tries: Option<u32>, mut why: String) -> Step<()> {
        let (mut pause, mut attempt) = (Duration::from_secs(1), 1);
        loop {
            self.hang_up();
            if let Some(tries) = tries {
                let (host, port) = (&self.host, self.port);
                if attempt > tries {
                    return Break(Exit::Failed(format!("connection to {host}:{port} lost: {why}")));
                }
                let state = if attempt == 1 { "connection lost" } else { "still not connected" };
                let seconds = pause.as_secs();
                let again = format!("trying again in {seconds} s ({attempt} of {tries})");
                self.screen.print(&format!("! {state} ({why}); {again}"));
            }
            self.wait(pause)?;
            (pause, attempt) = ((pause * 2).min(MAX_RETRY_PAUSE), attempt + 1);
            match self.connect()? {
                Ok(greeting) => {
                    if tries.is_none() {
                        self.screen.print(&greeting);
                    }
                    return Continue(());
                }
                Err(failed) => why = failed,
            }
        }
    }

    /// Waits `pause` while not connected. A line typed meanwhile is chat, to
    /// be sent once joined (never taken for a name), and the screen says so;
    /// `/quit`, Ctrl-D, Ctrl-C or the end of the input leaves now (so do they
    /// if typed already, and held).
    fn wait(&mut self, pause: Duration) -> Step<()> {
        if self.waiting.iter().any(|typed| !matches!(typed, Typed::Text(_))) {
            return Break(Exit::Left);
        }
        let until = Instant::now() + pause;
        loop {
            match self.inputs.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Input::Keyboard(Typed::Text(line))) => {
                    if protocol::parse_command(&text::clean(&line)) == Some(Command::Quit) {
                        return Break(Exit::Left);
                    }
                    if self.unsent.len() == MAX_WAITING {
                        let full =
                            format!("! not sent: already {MAX_WAITING} lines wait to be sent");
                        self.screen.print(&full);
                        continue;
                    }
                    self.unsent.push_back(line);
                    let count = self.unsent.len();
                    self.screen.print(&format!("* not connected: {count} line(s) wait to be sent"));
                }
                Ok(Input::Keyboard(_)) => return Break(Exit::Left),
                Ok(_) => {} // a listener of a connection given up
                Err(RecvTimeoutError::Timeout) => return Continue(()),
                Err(RecvTimeoutError::Disconnected) => return Break(Exit::Left),
            }
        }
    }

    /// Keeps what was typed until it can be sent, or says it cannot be (a
    /// way out is always kept).
    pub(super) fn hold(&mut self, typed: Typed) {
        if self.waiting.len() < MAX_WAITING || !matches!(typed, Typed::Text(_)) {
            self.waiting.push_back(typed);
        } else {
            self.screen.print(&format!("! not sent: already {MAX_WAITING} lines wait to be sent"));
        }
    }
}
