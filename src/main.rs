//! chatroom: a client-server chat for a classroom, after a student's report
//! (report §1: a client-server chat over sockets; §2 and §7: several users
//! talk to one another in real time, in one shared chatroom). The report's
//! two programs, `chat_server.py` and `chat_client.py` (§6), are here one
//! program with two subcommands, `chatroom server` and `chatroom client`.
//!
//! The files, in the order a chat line travels through them; the first
//! five are the first reading, lesson 1 (the README says which parts):
//! - `main.rs`: this file, which hands over to one of the two programs;
//! - `client.rs`: connects, then sends what is typed and prints what
//!   arrives (report §3.2, §4.2, §5, §6);
//! - `server.rs`: the accept loop and a reader thread per client (report
//!   §3.1, §4.1, §5);
//! - `room.rs`: the broker, the one thread that owns the room and decides who
//!   gets which line (how this server "manages the communication", §3.1);
//! - `outbox.rs`: each client's outbox and writer thread;
//! - `protocol.rs`: the wire: reading a line, commands, the words of every
//!   line, used by both programs (after the first reading: the files above
//!   call it by names that say what they do).
//!
//! Beyond the report, one concern a file (the README's lessons 2 to 6):
//! `client/prompts.rs` (the questions) and `client/reconnect.rs` (a server
//! not there yet or lost, `/quit`, the lines typed meanwhile);
//! `room/joining.rs` (a newcomer's name, deadline and history);
//! `limits.rs` and `limits/bucket.rs` (connections and flood control per
//! address); `text.rs`, `names.rs` (with the Unicode data in `text/` and
//! `names/`) and `telnet.rs` (what a line and a name may hold);
//! `console.rs` (the teacher's commands), `room/teacher.rs` (what they do
//! to the room) and `output.rs` (the log, the console's output, the
//! transcript); `terminal.rs` (the keyboard and the line editor),
//! `cli.rs` (flags and `--help`) and `kernel.rs` (the two socket settings
//! std has no call for).

mod cli;
mod client;
mod console;
mod kernel;
mod limits;
mod names;
mod outbox;
mod output;
mod protocol;
mod room;
mod server;
mod telnet;
mod terminal;
mod text;

use std::io::Write;
use std::process::ExitCode;

/// Runs the program the command line asks for. Exit codes: 0 success, 1 a
/// runtime error, 2 a usage error.
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match cli::parse(&args) {
        Ok(cli::Mode::Server(config)) => server::run(config),
        Ok(cli::Mode::Client(config)) => client::run(config),
        Ok(cli::Mode::Info(text)) => {
            // Not `println!`, which panics if stdout is closed (`| head`).
            let _ = writeln!(std::io::stdout(), "{text}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            complain(&format!("{why}\n(try 'chatroom --help')"));
            return ExitCode::from(2);
        }
    };
    // Either program may have taken the terminal for the line editor; both
    // end here, and a panic passes through `terminal`'s own hook.
    terminal::restore();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            complain(&why);
            ExitCode::FAILURE
        }
    }
}

/// `error: WHY` on stderr. Not `eprintln!`, which panics if the write fails
/// (a closed pipe): then there is nobody to tell, and the exit code says it.
fn complain(why: &str) {
    let _ = writeln!(std::io::stderr(), "error: {why}");
}
