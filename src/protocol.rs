//! The wire: how a line is read, understood and worded. Both programs use it,
//! so the two sides cannot drift apart.
//!
//! The report's server and client exchange messages over TCP sockets (§3.1,
//! §3.2) without saying how. Here each message is one line of UTF-8 text
//! ending in `\n` (a `\r` before it is dropped, so telnet and `nc -C` work;
//! bytes that are not UTF-8 become U+FFFD). The server's lines start with
//! `* ` (a notice), `! ` (an error), or are chat: `NAME: TEXT`,
//! `NAME (private): TEXT` and, to the sender of a `/msg`,
//! `to NAME (private): TEXT`. Every one is built by a function below, so the
//! server's whole vocabulary can be read here at a glance.
//!
//! Not here: threads, sockets, the room; cleaning text (`text.rs`) and
//! checking names (`names.rs`). Everything is pure (or reads any `BufRead`),
//! so the tests at the bottom check each rule on plain strings.

use std::io::{self, BufRead, Read};

use crate::names::{MAX_NAME_CHARS, NameError};

/// The longest line a user may send, in bytes, not counting the `\n` (or
/// `\r\n`) that ends it. A chat line is a sentence, not a file: 1 KiB is
/// generous for typing and small enough that the server's memory per
/// connection stays tiny whatever a client sends.
pub const MAX_LINE_BYTES: usize = 1024;

/// The prefix of a notice: something the server says, not a user.
pub const NOTICE: &str = "* ";
/// The prefix of an error: something went wrong with what *you* sent.
pub const ERROR: &str = "! ";

/// What [`read_line_limited`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, decoded (invalid UTF-8 replaced by U+FFFD), without its
    /// `\n` or `\r\n`. Not yet cleaned: see `text::sanitize`.
    Text(String),
    /// A line longer than the limit. Its bytes were read and thrown away up to
    /// and including its `\n`, so the next call starts on the next line.
    TooLong,
}

/// Reads one line of at most `limit` bytes from `reader`.
///
/// Returns `Ok(None)` at end of input. A last line with no `\n` before the end
/// of input is still returned: nothing the user typed is lost.
///
/// Why not `BufRead::read_line` alone: it keeps reading until it finds a
/// `\n`, so a client that sends 50 MB without one makes the server hold
/// 50 MB. Here `take` stops the reading after `limit + 1` bytes (the `+ 1` is
/// room for a `\r` before the `\n`), and `skip_until` reads the rest of an
/// overlong line without keeping it.
///
/// `buf` is scratch space passed in by the caller so that one allocation serves
/// a whole connection.
pub fn read_line_limited<R: BufRead>(
    reader: &mut R,
    limit: usize,
    buf: &mut Vec<u8>,
) -> io::Result<Option<Line>> {
    buf.clear();
    if reader.by_ref().take(limit as u64 + 1).read_until(b'\n', buf)? == 0 {
        return Ok(None); // the end of input
    }
    let mut too_long = false;
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > limit {
        // Stopped by `take`: what may follow is only the `\n` (1 byte) or
        // the end of input (0); anything more makes the line too long.
        too_long = reader.skip_until(b'\n')? > 1;
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    if too_long || buf.len() > limit {
        return Ok(Some(Line::TooLong));
    }
    Ok(Some(Line::Text(String::from_utf8_lossy(buf).into_owned())))
}
/// What a joined user's line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// A plain line, for everyone else in the room.
    Chat(String),
    /// `/who`: list the users online.
    Who,
    /// `/msg NAME TEXT`: say TEXT to NAME alone.
    Msg { to: String, text: String },
    /// `/quit`: leave.
    Quit,
    /// `/help`: list the commands.
    Help,
    /// A line that earns only an error reply (unknown command, missing
    /// argument, line too long); the connection stays open. The `String` is
    /// the whole `! ` line to send back.
    Refused(String),
}

/// Splits a command line into its first word and the (trimmed) rest.
pub fn split_word(line: &str) -> (&str, &str) {
    match line.split_once(' ') {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    }
}

/// Understands one sanitised line from a joined user. `None` for an empty
/// line, which is ignored (pressing Enter on nothing sends nothing).
pub fn parse_command(line: &str) -> Option<Command> {
    if line.is_empty() {
        return None;
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Some(Command::Chat(line.to_string()));
    };
    let (word, args) = split_word(rest);
    Some(match word.to_lowercase().as_str() {
        "who" => Command::Who,
        "quit" => Command::Quit,
        "help" => Command::Help,
        "msg" => match args.split_once(' ') {
            Some((to, text)) if !text.trim().is_empty() => {
                Command::Msg { to: to.to_string(), text: text.trim().to_string() }
            }
            _ => Command::Refused(error("usage: /msg NAME TEXT")),
        },
        _ => Command::Refused(error(&format!("unknown command /{word} (type /help for the list)"))),
    })
}

// ---------------------------------------------------------------------------
// Every line the server sends is built by one of these functions, so the whole
// vocabulary of the server can be read here at a glance. Each returns the
// complete line, `\n` included, ready to be written.
// ---------------------------------------------------------------------------

/// `* TEXT`: the server speaking.
pub fn notice(text: &str) -> String {
    format!("{NOTICE}{text}\n")
}

/// `! TEXT`: what you sent was refused.
pub fn error(text: &str) -> String {
    format!("{ERROR}{text}\n")
}

/// `NAME: TEXT`: a chat line, as every other user sees it.
pub fn chat(from: &str, text: &str) -> String {
    format!("{from}: {text}\n")
}

/// `NAME (private): TEXT`: a `/msg`, as its one recipient sees it.
pub fn private(from: &str, text: &str) -> String {
    format!("{from} (private): {text}\n")
}

/// The first line on every connection: it asks for a name (report §6: once
/// connected, the user is asked for a name).
pub const GREETING: &str = "* welcome to chatroom, please enter your name\n";

/// The most names one line lists. Past it the line ends in `, and N more`:
/// nobody reads a thousand names, and it keeps every line the server sends
/// under [`MAX_SERVER_LINE_BYTES`].
pub const MAX_LISTED_NAMES: usize = 1000;

/// The longest line the client accepts from a server. Our longest line is a
/// full `/who`: [`MAX_LISTED_NAMES`] names of up to 24 four-byte characters
/// plus `, ` each, under 100 KiB.
pub const MAX_SERVER_LINE_BYTES: usize = 128 * 1024;

/// `online (N): a, b, c`, the list of users in `/who` and in the welcome.
/// `names` must be sorted; at most `limit` of them are written out.
fn online_list<'a>(names: impl ExactSizeIterator<Item = &'a str>, limit: usize) -> String {
    let (total, listed): (usize, Vec<&str>) = (names.len(), names.take(limit).collect());
    let more = total - listed.len();
    let more = if more > 0 { format!(", and {more} more") } else { String::new() };
    format!("online ({total}): {}{more}", listed.join(", "))
}

/// `* online (N): a, b, c`, the answer to `/who`. `names` must be sorted.
pub fn online<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    notice(&online_list(names, MAX_LISTED_NAMES))
}

/// How many names the welcome lists: a newcomer wants a glance at who is
/// there, and `/who` gives the whole list.
pub const WELCOME_LISTED_NAMES: usize = 30;

/// `to NAME (private): TEXT`: a `/msg`, as its sender sees it confirmed.
pub fn private_sent(to: &str, text: &str) -> String {
    format!("to {to} (private): {text}\n")
}

/// How a line of the history begins.
pub const EARLIER: &str = "* [earlier] ";

/// `* [earlier] LINE`: a public line said before a newcomer joined, sent
/// to them just before the welcome and marked, so nobody takes it for a
/// live one.
pub fn earlier(line: &str) -> String {
    let line = line.trim_end();
    format!("{EARLIER}{}\n", line.strip_prefix(NOTICE).unwrap_or(line))
}

/// `* welcome NAME; online (N): ...`, the newcomer's proof that the name was
/// accepted. The client waits for a `* ` line after sending a name: this one.
pub fn welcome<'a>(name: &str, names: impl ExactSizeIterator<Item = &'a str>) -> String {
    notice(&format!(
        "welcome {name}; {} (type /help for commands)",
        online_list(names, WELCOME_LISTED_NAMES)
    ))
}

/// `* NAME joined`, to everyone else.
pub fn joined(name: &str) -> String {
    notice(&format!("{name} joined"))
}

/// Why a user leaves the room. The reader and the writer of a connection
/// say what they saw; the broker alone takes the user out.
#[derive(Debug, PartialEq, Eq)]
pub enum Leave {
    /// They typed `/quit`.
    Quit,
    /// Their connection ended without a word (closed, reset, broken); or,
    /// before a name was chosen, the server closed it (`room.rs`).
    Lost,
    /// They stopped reading: their outbox filled, or a write waited too long.
    TooSlow,
    /// The teacher removed them with `/kick`, for this reason.
    Removed(String),
    /// The server is shutting down: everyone leaves at once.
    Shutdown,
}

/// What everyone else is told when `name` leaves: `* NAME left`, and why
/// when the server ended it. Nothing at a shutdown, which everyone hears.
pub fn left(name: &str, why: &Leave) -> Option<String> {
    match why {
        Leave::Quit | Leave::Lost => Some(notice(&format!("{name} left"))),
        Leave::TooSlow => Some(notice(&format!("{name} left (too slow: stopped reading)"))),
        Leave::Removed(_) => Some(notice(&format!("{name} left (removed by the server)"))),
        Leave::Shutdown => None,
    }
}

/// The lines that answer `/help`.
pub const HELP: &str = include_str!("protocol/help.txt");

/// The answer to `/quit`, just before the server closes the connection.
pub fn bye(name: &str) -> String {
    notice(&format!("bye {name}, see you soon"))
}

/// The `! ` answer to a `/msg` for a user who is not online.
pub fn no_such_user(name: &str) -> String {
    error(&format!("no user named {name}"))
}

/// The only line sent before closing a connection over `--max-clients`.
pub fn server_full(max: usize) -> String {
    error(&format!("server full (limit {max}); try again later"))
}

/// The only line sent before closing a connection over `--max-per-address`.
pub fn too_many_from_address(max: usize) -> String {
    error(&format!("too many connections from your address (limit {max}); try again later"))
}

/// The `! ` answer to a refused name.
pub fn name_refused(why: &NameError) -> String {
    let mixed = "a name may not mix scripts, except Latin with Chinese, Japanese or Korean";
    let why = match why {
        NameError::Empty => "a name needs at least one letter".to_string(),
        NameError::Reserved => return error("that name is kept for the server; try another"),
        NameError::TooLong => format!("a name has at most {MAX_NAME_CHARS} characters"),
        NameError::MixedScripts => mixed.to_string(),
        NameError::BadChar(c) => {
            format!("a name may hold only letters, digits, _ and -, not {c:?}")
        }
    };
    error(&format!("{why}; try again"))
}

/// The `! ` answer to a name someone online already has.
pub fn name_taken(name: &str) -> String {
    error(&format!("the name {name} is taken; try another"))
}

/// The `! ` answer to a name removed with `/kick` a short while ago.
pub fn name_removed(name: &str) -> String {
    error(&format!("the name {name} was removed by the server a short while ago; try another"))
}

/// The only line sent before closing a connection from a banned address.
pub const BANNED: &str = "! your address is banned by the server; try again later\n";

/// How the server's last line to a connection that chose no name begins
/// (in time, or before too many others from its address); the client
/// recognises it, and sends the name again on a new connection.
pub const NAME_DEADLINE: &str = "! no name ";

/// The last line to a connection that chose no name in time.
pub fn name_deadline(seconds: u64) -> String {
    format!("{NAME_DEADLINE}within {seconds} s; closing the connection\n")
}

/// The last line to a connection still choosing a name when too many from
/// its address are: the oldest makes way for the newest. It starts like the
/// deadline's, and our client takes it the same way.
pub const NAME_CROWDED: &str =
    "! no name yet, and newer connections from your address wait to choose one; closing this one\n";

/// The `! ` answer, instead of a long one (`/who` of a big room), to a user
/// who has not yet waited off the last.
pub const ASKED_TOO_OFTEN: &str =
    "! that answer is long, and you asked again too soon; try again in a moment\n";

/// The `! ` answer to a line over [`MAX_LINE_BYTES`].
pub fn line_too_long() -> String {
    error(&format!("line too long (at most {MAX_LINE_BYTES} bytes); it was not sent"))
}

/// Everyone's last line when the teacher stops the server. The client knows
/// it, and ends quietly (exit 0) instead of reporting a lost connection.
pub const SHUTTING_DOWN: &str = "* server is shutting down\n";

/// `* [server] TEXT`: the teacher speaking from the server's console.
pub fn from_server(text: &str) -> String {
    notice(&format!("[server] {text}"))
}

/// `* [server] (private): TEXT`: the teacher speaking to one user alone.
pub fn from_server_privately(text: &str) -> String {
    notice(&format!("[server] (private): {text}"))
}

/// How the line to a user removed with `/kick` begins; the client knows it,
/// and does not reconnect.
pub const REMOVED: &str = "! you were removed by the server: ";

/// What a user removed with `/kick` is told before the connection closes.
pub fn removed(reason: &str) -> String {
    format!("{REMOVED}{reason}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::NameError;

    /// Runs `read_line_limited` over all of `input`, collecting every result.
    fn lines(input: &[u8], limit: usize) -> Vec<Line> {
        let mut reader = io::BufReader::with_capacity(7, input); // tiny: forces many fills
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(line) = read_line_limited(&mut reader, limit, &mut buf).unwrap() {
            out.push(line);
        }
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(s.to_string())
    }

    #[test]
    fn lines_are_split_on_newline() {
        assert_eq!(lines(b"a\nbc\n", 10), vec![text("a"), text("bc")]);
    }

    #[test]
    fn carriage_return_before_newline_is_dropped() {
        assert_eq!(lines(b"hi\r\nyo\r\n", 10), vec![text("hi"), text("yo")]);
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        assert_eq!(lines(b"a\nlast", 10), vec![text("a"), text("last")]);
    }

    #[test]
    fn empty_input_is_end_of_input() {
        assert_eq!(lines(b"", 10), vec![]);
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        let line = "x".repeat(MAX_LINE_BYTES);
        let input = format!("{line}\n");
        assert_eq!(lines(input.as_bytes(), MAX_LINE_BYTES), vec![text(&line)]);
    }

    #[test]
    fn line_of_the_limit_with_crlf_is_accepted() {
        let line = "x".repeat(MAX_LINE_BYTES);
        let input = format!("{line}\r\n");
        assert_eq!(lines(input.as_bytes(), MAX_LINE_BYTES), vec![text(&line)]);
    }

    #[test]
    fn line_one_byte_over_the_limit_is_too_long() {
        let input = format!("{}\nnext\n", "x".repeat(MAX_LINE_BYTES + 1));
        assert_eq!(lines(input.as_bytes(), MAX_LINE_BYTES), vec![Line::TooLong, text("next")]);
    }

    #[test]
    fn only_a_crlf_may_follow_the_limit() {
        // At the limit, then: `\r\n`; one byte too many; a `\r` and more;
        // a `\r` at the end of input.
        let got = lines(b"abc\r\nabcd\nabc\rx\nabc\r", 3);
        assert_eq!(got, vec![text("abc"), Line::TooLong, Line::TooLong, text("abc")]);
    }

    #[test]
    fn huge_line_is_too_long_and_the_next_line_survives() {
        let input = [vec![b'y'; 1_000_000], b"\nok\n".to_vec()].concat();
        assert_eq!(lines(&input, MAX_LINE_BYTES), vec![Line::TooLong, text("ok")]);
    }

    #[test]
    fn huge_line_keeps_at_most_limit_plus_one_bytes() {
        let input = vec![b'z'; 100_000];
        let mut reader = io::BufReader::with_capacity(64, &input[..]);
        let mut buf = Vec::new();
        let got = read_line_limited(&mut reader, 10, &mut buf).unwrap();
        assert_eq!(got, Some(Line::TooLong));
        assert!(buf.len() <= 11, "kept {} bytes", buf.len());
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        assert_eq!(lines(b"a\xffb\n", 10), vec![text("a\u{FFFD}b")]);
    }

    #[test]
    fn multibyte_text_is_decoded() {
        assert_eq!(lines("ciao è già\n".as_bytes(), 100), vec![text("ciao è già")]);
    }

    #[test]
    fn empty_line_is_ignored() {
        assert_eq!(parse_command(""), None);
    }

    #[test]
    fn plain_line_is_said() {
        assert_eq!(parse_command("hi all"), Some(Command::Chat("hi all".into())));
    }

    #[test]
    fn simple_commands_are_recognised() {
        assert_eq!(parse_command("/who"), Some(Command::Who));
        assert_eq!(parse_command("/quit"), Some(Command::Quit));
        assert_eq!(parse_command("/help"), Some(Command::Help));
    }

    #[test]
    fn msg_splits_name_and_text() {
        assert_eq!(
            parse_command("/msg bob  see you at 5"),
            Some(Command::Msg { to: "bob".into(), text: "see you at 5".into() })
        );
    }

    #[test]
    fn msg_without_text_is_a_usage_error() {
        let usage = Some(Command::Refused("! usage: /msg NAME TEXT\n".into()));
        assert_eq!(parse_command("/msg bob"), usage);
        assert_eq!(parse_command("/msg"), usage);
    }

    #[test]
    fn unknown_command_is_refused_by_name() {
        assert_eq!(
            parse_command("/dance now"),
            Some(Command::Refused("! unknown command /dance (type /help for the list)\n".into()))
        );
    }

    #[test]
    fn server_lines_have_their_pinned_shapes() {
        assert_eq!(notice("hi"), "* hi\n");
        assert_eq!(error("no"), "! no\n");
        assert_eq!(chat("alice", "hi"), "alice: hi\n");
        assert_eq!(private("alice", "hi"), "alice (private): hi\n");
        assert_eq!(online(["a", "b", "c"].into_iter()), "* online (3): a, b, c\n");
        assert_eq!(name_deadline(30), "! no name within 30 s; closing the connection\n");
    }

    #[test]
    fn history_and_confirmation_lines_have_their_pinned_shapes() {
        assert_eq!(earlier("alice: hi\n"), "* [earlier] alice: hi\n");
        assert_eq!(earlier("* [server] quiz\n"), "* [earlier] [server] quiz\n");
        assert_eq!(private_sent("bob", "psst"), "to bob (private): psst\n");
    }

    #[test]
    fn long_lists_end_in_and_n_more() {
        let names: Vec<String> = (0..MAX_LISTED_NAMES + 2).map(|i| format!("u{i}")).collect();
        let line = online(names.iter().map(String::as_str));
        assert!(line.starts_with("* online (1002): u0, u1, "));
        assert!(line.ends_with(", and 2 more\n"));
    }

    #[test]
    fn welcome_names_the_newcomer_and_lists_who_is_online() {
        assert_eq!(
            welcome("bo", ["al", "bo"].into_iter()),
            "* welcome bo; online (2): al, bo (type /help for commands)\n"
        );
    }

    #[test]
    fn help_lines_are_all_notices() {
        let help = HELP;
        assert!(help.lines().count() >= 5);
        assert!(help.lines().all(|l| l.starts_with(NOTICE)));
    }

    /// Every line the server can send, with its placeholders, is word for
    /// word in the README's protocol section: the two cannot drift apart.
    #[test]
    fn every_line_the_server_sends_is_in_the_readme() {
        let readme = include_str!("../README.md");
        let n = |line: String| line.replace("(7)", "(N)").replace(" 7)", " N)");
        let refused = |line: &str| match parse_command(line) {
            Some(Command::Refused(answer)) => answer,
            other => panic!("{other:?}"),
        };
        let name_errors = [
            NameError::TooLong,
            NameError::BadChar('C'),
            NameError::Empty,
            NameError::MixedScripts,
        ];
        let mut lines = vec![
            GREETING.into(),
            name_deadline(30),
            NAME_CROWDED.into(),
            ASKED_TOO_OFTEN.into(),
            welcome("alice", ["NAMES"].into_iter()).replace("(1)", "(N)"),
            earlier("LINE"),
            joined("NAME"),
            chat("NAME", "TEXT"),
            private("NAME", "TEXT"),
            private_sent("NAME", "TEXT"),
            online(["NAMES"].into_iter()).replace("(1)", "(N)"),
            no_such_user("NAME"),
            refused("/msg"),
            refused("/WORD"),
            line_too_long(),
            bye("NAME"),
            n(server_full(7)),
            n(too_many_from_address(7)),
            from_server("TEXT"),
            from_server_privately("TEXT"),
            removed("REASON"),
            SHUTTING_DOWN.into(),
            BANNED.into(),
            name_taken("NAME"),
            name_removed("NAME"),
            name_refused(&NameError::Reserved),
        ];
        lines.extend(name_errors.iter().map(name_refused));
        let leaves = [Leave::Quit, Leave::TooSlow, Leave::Removed("R".into())];
        lines.extend(leaves.iter().filter_map(|why| left("NAME", why)));
        lines.extend(HELP.lines().map(|line| format!("{line}\n")));
        for line in lines {
            assert!(readme.contains(line.trim_end()), "not in the README: {line:?}");
        }
    }
}
