//! Telnet's own commands, taken out of what a client sends, and answered
//! (beyond the report, whose clients are its own program). `telnet` mixes
//! commands into the text it sends: each starts with the byte IAC (255).
//! Ctrl-C in telnet sends "interrupt" and then asks, with "do timing mark",
//! to be told when the server has read everything before it, and shows
//! nothing until it is told (RFC 854, RFC 860). Other options it may offer
//! or ask for are refused, as RFC 854 lets a server do. Nothing of a
//! command reaches the room; a byte 255 that starts no command (from `nc`,
//! say) stays text, and becomes U+FFFD like any byte that is not UTF-8.
//!
//! Not here: reading lines (`protocol.rs`), flood control (`limits.rs`),
//! which counts the bytes before they are taken out here.

use std::io::{self, Read};
use std::sync::mpsc::SyncSender;

use crate::room::Event;

const IAC: u8 = 255;
const SB: u8 = 250; // the start of a subnegotiation, which IAC SE ends
const SE: u8 = 240;
const WILL: u8 = 251;
const WONT: u8 = 252;
const DO: u8 = 253;
const DONT: u8 = 254;
const TIMING_MARK: u8 = 6;

/// Where in a command the bytes read so far have stopped.
#[derive(Clone, Copy)]
enum State {
    Text,
    /// After IAC.
    Command,
    /// After IAC and WILL, WONT, DO or DONT: the option comes next.
    Option(u8),
    /// Inside a subnegotiation, and just after an IAC there.
    Sub,
    SubCommand,
}

/// A reader that takes telnet's commands out of what `input` gives, and
/// asks the broker to send connection `id` the answers.
pub struct Telnet<'a, R> {
    input: R,
    state: State,
    id: u64,
    events: &'a SyncSender<Event>,
}

impl<'a, R: Read> Telnet<'a, R> {
    /// Reads `input`, for connection `id`, answering through `events`.
    pub fn new(input: R, id: u64, events: &'a SyncSender<Event>) -> Self {
        Telnet { input, state: State::Text, id, events }
    }

    /// Takes the commands out of `bytes`, in place; returns how many bytes
    /// of text are left at its start.
    fn strip(&mut self, bytes: &mut [u8]) -> usize {
        let mut kept = 0;
        for at in 0..bytes.len() {
            let byte = bytes[at];
            let mut keep = |b: u8| (bytes[kept], kept) = (b, kept + 1);
            self.state = match (self.state, byte) {
                (State::Text, IAC) => State::Command,
                (State::Command, SB) => State::Sub,
                (State::Command, WILL..=DONT) => State::Option(byte),
                (State::Command, IAC) => {
                    keep(IAC); // IAC IAC: the byte 255 itself, as text
                    State::Text
                }
                (State::Command, SE..) => State::Text, // a command of two bytes
                (State::Option(verb), option) => {
                    self.answer(verb, option);
                    State::Text
                }
                (State::Sub, IAC) => State::SubCommand,
                (State::SubCommand, SE) => State::Text,
                (State::Sub | State::SubCommand, _) => State::Sub,
                (State::Command, _) => {
                    keep(IAC); // not a command: the 255 and this byte are text
                    keep(byte);
                    State::Text
                }
                (State::Text, _) => {
                    keep(byte);
                    State::Text
                }
            };
        }
        kept
    }

    /// Answers `verb option`: the timing mark is agreed to (everything
    /// before it has been read), any other option refused; a refusal
    /// (`WONT`, `DONT`) needs no answer.
    fn answer(&self, verb: u8, option: u8) {
        let answer = match (verb, option) {
            (DO, TIMING_MARK) => WILL,
            (DO, _) => WONT,
            (WILL, _) => DONT,
            _ => return,
        };
        let _ = self.events.send(Event::Telnet { id: self.id, answer: [IAC, answer, option] });
    }
}

impl<R: Read> Read for Telnet<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.input.read(buf)?;
            let kept = self.strip(&mut buf[..n]);
            // Zero would mean the end of input: read on if all were commands.
            if kept > 0 || n == 0 {
                return Ok(kept);
            }
        }
    }
}
