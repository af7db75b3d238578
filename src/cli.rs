//! The command line: the two subcommands, their flags and `--help` (beyond
//! the report, whose programs are started without any and ask, §6).
//! Parsed by hand: two subcommands with a handful of flags do not need a
//! library, and this file is all there is to it.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::room::Settings;
use crate::text;
use crate::{client, server};

/// `chatroom server --help`: prose, kept as a text file beside this one.
const SERVER_USAGE: &str = include_str!("cli/server.txt");

/// `chatroom client --help`.
const CLIENT_USAGE: &str = include_str!("cli/client.txt");

/// What the command line asks for.
pub enum Mode {
    Server(server::Config),
    Client(client::Config),
    /// Print this and exit 0: `--help` and `--version`.
    Info(String),
}

/// Reads the command line; `Err` is a usage error (exit 2).
pub fn parse(args: &[String]) -> Result<Mode, String> {
    let Some(first) = args.first() else {
        return Err("a subcommand is needed: server or client".into());
    };
    match first.as_str() {
        // Help and version answer before anything else is checked.
        "-h" | "--help" | "help" => Ok(Mode::Info(format!(
            "chatroom: a chat for a classroom. Start one server, then a client per person.\n\n{SERVER_USAGE}\n{}",
            CLIENT_USAGE.trim_end()
        ))),
        "-V" | "--version" => Ok(Mode::Info(format!("chatroom {}", env!("CARGO_PKG_VERSION")))),
        "server" => parse_server(&args[1..]),
        "client" => parse_client(&args[1..]),
        other => Err(format!("unknown subcommand '{other}': use server or client")),
    }
}

// Every number on the command line has a range, checked here, so that the
// rest of the program never meets an absurd value (a name deadline of 584
// billion years overflows the clock). The casts after each check are safe:
// the range fits the type.

/// `chatroom server`'s flags, each in its range, or its defaults.
fn parse_server(args: &[String]) -> Result<Mode, String> {
    let known = "--host --port --max-clients --max-per-address --name-timeout --max-line-rate \
                 --history --transcript";
    let Some(mut flags) = Flags::parse(args, known)? else {
        return Ok(Mode::Info(SERVER_USAGE.trim_end().into()));
    };
    let (whole, seconds) = ("a whole number", "a whole number of seconds");
    let per_second = "a whole number of lines per second";
    Ok(Mode::Server(server::Config {
        host: flags.take("--host").unwrap_or_else(|| "127.0.0.1".into()),
        port: flags.number("--port", "a port number", 0..=65535)?.unwrap_or(1918) as u16,
        max_clients: flags.number("--max-clients", whole, 1..=100_000)?.unwrap_or(1000) as usize,
        max_per_address: flags.number("--max-per-address", whole, 1..=100_000)?.unwrap_or(64)
            as usize,
        room: Settings {
            name_timeout: Duration::from_secs(
                flags.number("--name-timeout", seconds, 1..=3600)?.unwrap_or(30),
            ),
            history: flags.number("--history", whole, 0..=100)?.unwrap_or(20) as usize,
            rate: flags.number("--max-line-rate", per_second, 0..=1000)?.unwrap_or(20) as u32,
        },
        transcript: flags.take("--transcript"),
    }))
}

/// `chatroom client`'s flags; what they leave out is asked for.
fn parse_client(args: &[String]) -> Result<Mode, String> {
    let known = "--host --port --name --retries";
    let Some(mut flags) = Flags::parse(args, known)? else {
        return Ok(Mode::Info(CLIENT_USAGE.trim_end().into()));
    };
    Ok(Mode::Client(client::Config {
        host: flags.take("--host"),
        port: flags.number("--port", "a port number", 1..=65535)?.map(|port| port as u16),
        // Cleaned as a typed answer is: the name the others will see.
        name: flags.take("--name").map(|name| text::sanitize(&name).trim().to_string()),
        retries: flags.number("--retries", "a whole number", 0..=100)?.unwrap_or(17) as u32,
    }))
}

/// The `--flag VALUE` (or `--flag=VALUE`) pairs after a subcommand.
struct Flags(Vec<(String, String)>);

impl Flags {
    /// Reads `args` as flags from `known`, the flag names separated by spaces;
    /// `None` if they ask for help.
    fn parse(args: &[String], known: &str) -> Result<Option<Flags>, String> {
        let mut pairs = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(None);
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            if !known.split(' ').any(|known| known == flag) {
                let what = if arg.starts_with('-') { "unknown option" } else { "unexpected word" };
                return Err(format!("{what} '{arg}'"));
            }
            let missing = || format!("{flag} needs a value");
            let value = inline.or_else(|| args.next().cloned()).ok_or_else(missing)?;
            pairs.push((flag.to_string(), value));
        }
        Ok(Some(Flags(pairs)))
    }

    /// The last value given for `flag`, if any: a flag given twice takes its
    /// last value, as in most command-line tools, so a wrapper script's
    /// default can be overridden by adding the flag again.
    fn take(&mut self, flag: &str) -> Option<String> {
        let at = self.0.iter().rposition(|(f, _)| f == flag)?;
        Some(self.0.remove(at).1)
    }

    /// The value of `flag` as a number within `range`, if the flag is given;
    /// outside the range, a usage error that names it.
    fn number(
        &mut self,
        flag: &str,
        what: &str,
        range: RangeInclusive<u64>,
    ) -> Result<Option<u64>, String> {
        let Some(text) = self.take(flag) else {
            return Ok(None);
        };
        let (low, high) = (range.start(), range.end());
        match text.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(format!("invalid {flag} '{text}': expected {what} from {low} to {high}")),
        }
    }
}
