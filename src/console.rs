//! The teacher's console: the server's own terminal, where the teacher types
//! `/say`, `/who`, `/kick`, `/ban` and `/quit` (beyond the report, which
//! describes no console: its server shows its errors there, §5).
//!
//! The console holds no state of its own: its commands reach the broker as
//! events, like everything else that touches the room, and the broker
//! prints the answers. In a terminal it uses the same line editor as the
//! client (`terminal.rs`), so nothing that arrives cuts the command being
//! typed. Without a terminal (stdin at its end: `nohup`, a service, a test)
//! the console is off and the server simply runs.
//!
//! Not here: what the commands do (`room.rs`), the outputs (`output.rs`).

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

use crate::output;
use crate::protocol::{self, error, notice};
use crate::room::{Event, Order};
use crate::terminal::{self, Screen, Typed};
use crate::text;

/// The longest `/ban`, in minutes: a week.
const MAX_BAN_MINUTES: u64 = 7 * 24 * 60;

/// How many typed lines may wait for the console thread: a teacher types
/// far slower than it reads.
const TYPED_QUEUE: usize = 16;

/// Starts the keyboard, the outputs that print above it, and the console
/// thread, which sends the teacher's commands to the broker as `events`;
/// then says where the server listens (`local`), and how to join it.
pub fn start(
    events: SyncSender<Event>,
    transcript: Option<&str>,
    local: SocketAddr,
) -> Result<(), String> {
    let background = terminal::in_background();
    let (keys, typed) = mpsc::sync_channel(TYPED_QUEUE);
    let hand_to = move |typed| keys.send(typed).is_ok();
    let screen = if background { Screen::plain() } else { terminal::start_keyboard(hand_to, "> ") };
    output::start_outputs(&screen, transcript)?;
    // The first line on stdout, pinned: scripts and tests read the real port
    // from it when the server is started with `--port 0`.
    output::print(format!("listening on {local}"));
    if local.ip().is_unspecified() {
        output::print(where_to_join(local.port()));
    }
    if background {
        output::log("the console is off: the server was started in the background".into());
        return Ok(());
    }
    let editing = screen.editing();
    // Spawn: the console, for as long as there is a keyboard.
    let work = move || run_console(&events, typed, editing);
    thread::Builder::new().name("console".into()).spawn(work).map_err(|e| e.to_string())?;
    Ok(())
}

/// The console thread: each typed line becomes an event for the broker, or
/// is answered here (`/help`, a mistake). Ctrl-C on an empty line stops the
/// server as `/quit` does (on a half-typed one it clears it); Ctrl-D in the
/// editor only says how to stop it: a stray key must not end a class.
fn run_console(events: &SyncSender<Event>, typed: Receiver<Typed>, editing: bool) {
    for input in typed {
        let parsed = match input {
            Typed::Text(line) => parse_console(text::sanitize(&line).trim()),
            Typed::Interrupt => Ok(Some(Order::Quit)),
            Typed::EndOfInput if editing => Err(notice("the server goes on; /quit stops it")),
            Typed::EndOfInput => return, // no terminal: the console is off
        };
        match parsed {
            Ok(Some(order)) => {
                if events.send(Event::Console(order)).is_err() {
                    return; // the broker has stopped
                }
            }
            Ok(None) => {} // an empty line
            Err(answer) => output::print(answer),
        }
    }
}

/// Understands one cleaned line typed on the console: the order it gives
/// the broker, or `Err` with the answer to print here; `None` for an empty
/// line. Commands are known whatever their case (`/WHO`).
fn parse_console(line: &str) -> Result<Option<Order>, String> {
    let (word, args) = protocol::split_word(line);
    let (first, rest) = protocol::split_word(args);
    let order = match word.to_lowercase().as_str() {
        "" => return Ok(None),
        "/say" if !args.is_empty() => Order::Say(args.to_string()),
        "/msg" if !rest.is_empty() => Order::Msg { to: first.into(), text: rest.into() },
        "/who" => Order::Who,
        "/kick" if !args.is_empty() => {
            let reason = if rest.is_empty() { "no reason given" } else { rest };
            Order::Kick { who: first.to_string(), reason: reason.to_string() }
        }
        "/ban" => {
            let minutes = if rest.is_empty() { Ok(60) } else { rest.parse() };
            let aimed = first.parse::<u64>().is_ok() || first.parse::<IpAddr>().is_ok();
            match minutes {
                Ok(minutes @ 1..=MAX_BAN_MINUTES) if aimed => {
                    Order::Ban { who: first.into(), minutes }
                }
                _ => return Err(error("usage: /ban ADDRESS|NUMBER [MINUTES, 1 to 10080: a week]")),
            }
        }
        "/unban" => match first.parse() {
            Ok(ip) => Order::Unban(ip),
            Err(_) => return Err(error("usage: /unban ADDRESS")),
        },
        "/bans" => Order::Bans,
        "/quit" => Order::Quit,
        "/help" => return Err(CONSOLE_HELP.into()),
        "/say" => return Err(error("usage: /say TEXT")),
        "/msg" => return Err(error("usage: /msg NAME TEXT")),
        "/kick" => return Err(error("usage: /kick NAME [REASON]")),
        _ if !word.starts_with('/') => return Err(error(NOT_A_COMMAND)),
        _ => {
            return Err(error(&format!(
                "unknown console command {word} (type /help for the list)"
            )));
        }
    };
    Ok(Some(order))
}

/// The answer to a line typed at the console that is not a command: the
/// console is not a chat window, and a line is never sent by mistake.
const NOT_A_COMMAND: &str = "that is not a command: /say TEXT tells everyone (/help lists them)";

/// The lines that answer `/help` on the server's console.
const CONSOLE_HELP: &str = include_str!("console/help.txt");

/// How students reach a server listening on every interface: this machine's
/// addresses, as `hostname -I` lists them (Linux), or where to find them.
pub fn where_to_join(port: u16) -> String {
    let text = terminal::output_of("hostname", &["-I"]).unwrap_or_default();
    let join = "students join with: chatroom client --host";
    let ipv4 = text.split_whitespace().filter(|address| !address.contains(':'));
    let lines: Vec<String> =
        ipv4.map(|address| format!("{join} {address} --port {port}")).collect();
    if lines.is_empty() {
        let find = "'ip addr' on Linux, 'ifconfig' on macOS, 'ipconfig' on Windows";
        return format!("students join with this machine's address ({find}) and port {port}");
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_commands_are_recognised() {
        assert!(matches!(parse_console("/say hi all"), Ok(Some(Order::Say(t))) if t == "hi all"));
        assert!(matches!(parse_console("/who"), Ok(Some(Order::Who))));
        assert!(matches!(parse_console("/quit"), Ok(Some(Order::Quit))));
        assert_eq!(parse_console("/help").err(), Some(CONSOLE_HELP.into()));
        assert!(matches!(parse_console(""), Ok(None)));
    }

    #[test]
    fn kick_takes_a_name_and_an_optional_reason() {
        let kick = |line: &str| match parse_console(line) {
            Ok(Some(Order::Kick { who, reason })) => (who, reason),
            _ => panic!("not a kick: {line}"),
        };
        assert_eq!(kick("/kick bob spamming the room"), ("bob".into(), "spamming the room".into()));
        assert_eq!(kick("/kick bob"), ("bob".into(), "no reason given".into()));
    }

    #[test]
    fn console_errors_are_refused_lines() {
        let refused = |text: &str| Some(text.to_string());
        assert_eq!(parse_console("/kick").err(), refused("! usage: /kick NAME [REASON]\n"));
        assert_eq!(parse_console("/say").err(), refused("! usage: /say TEXT\n"));
        assert_eq!(
            parse_console("/hello").err(),
            refused("! unknown console command /hello (type /help for the list)\n")
        );
        assert_eq!(
            parse_console("hello all").err(),
            refused("! that is not a command: /say TEXT tells everyone (/help lists them)\n")
        );
    }
}
