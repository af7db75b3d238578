//! The client's questions (report §6: the host, the port, then a name), and
//! what it does with a wrong answer: a host that cannot be found or a port
//! that is not one is explained and asked again; a refused name is shown,
//! and asked again if somebody is there to answer.
//!
//! A part of `client.rs` (its child module, so it sees the client's own
//! fields): the report's client asks these questions too, but how they are
//! asked again is beyond it.
//!
//! Not here: what is done with the answers (`client.rs`).

use std::io::{self, IsTerminal};
use std::net::ToSocketAddrs;
use std::ops::ControlFlow::{Break, Continue};

use super::{Client, Config, Exit, Input, Step};
use crate::protocol;
use crate::terminal::Typed;
use crate::text;

/// An empty reply to a prompt takes these: what the report types (§6).
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 1918;

impl Client {
    /// Asks for the host (`host:port` answers both), then the port, unless
    /// the command line gave them, or gave the name: then it says all, and
    /// what it leaves out is the default (`printf 'hi\n' | chatroom client
    /// --name x` sends `hi`). A host that cannot be found is said at once,
    /// and asked again; given on the command line, it is an error.
    pub(super) fn ask_address(&mut self, config: &Config) -> Step<(String, u16)> {
        loop {
            let answer = match &config.host {
                Some(host) => host.clone(),
                None if config.name.is_some() => DEFAULT_HOST.to_string(),
                None => self.ask(&format!("Server host [{DEFAULT_HOST}]: "), DEFAULT_HOST)?,
            };
            let (host, port_in_host) = split_host_port(&answer);
            match ((host.as_str(), DEFAULT_PORT).to_socket_addrs(), config.port.or(port_in_host)) {
                (Ok(_), Some(port)) => return Continue((host, port)),
                (Ok(_), None) if config.name.is_some() => return Continue((host, DEFAULT_PORT)),
                (Ok(_), None) => return Continue((host, self.ask_port()?)),
                (Err(e), _) if config.host.is_some() => {
                    return Break(Exit::Failed(format!("cannot find the host {host}: {e}")));
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

    /// A name was refused with `line`: shown, and asked again; but a name
    /// not typed just now (`--name`, a rejoin) with no terminal to ask at is
    /// an error: what follows on a pipe is chat, not names.
    pub(super) fn refused(&mut self, name: &str, line: &str, typed_now: bool) -> Step<()> {
        if !typed_now && !io::stdin().is_terminal() {
            let why = line.strip_prefix(protocol::ERROR).unwrap_or(line);
            return Break(Exit::Failed(format!("name {name} refused: {why}")));
        }
        self.screen.print(line);
        Continue(())
    }

    /// Asks `prompt`; the answer, cleaned and trimmed, or `default` for none
    /// (a line typed ahead answers at once; Ctrl-D, Ctrl-C or the input's
    /// end leave). A name deadline passing meanwhile ends the connection
    /// quietly: `choose_name` makes a new one.
    pub(super) fn ask(&mut self, prompt: &str, default: &str) -> Step<String> {
        self.screen.prompt(prompt);
        loop {
            let typed = match self.waiting.pop_front() {
                Some(typed) => typed,
                None => match self.inputs.recv() {
                    Ok(Input::Keyboard(typed)) => typed,
                    Ok(Input::Heard(line)) if line.starts_with(protocol::NAME_DEADLINE) => continue,
                    Ok(Input::Heard(line)) => {
                        self.screen.print(&line);
                        continue;
                    }
                    Ok(Input::Lost { .. }) => {
                        self.socket = None;
                        continue;
                    }
                    Err(_) => Typed::EndOfInput,
                },
            };
            let Typed::Text(answer) = typed else {
                self.screen.print("");
                return Break(Exit::Left);
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
