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
const SE: u8 = 240; // the first of the two-byte commands (240 to 250)
const WILL: u8 = 251;
const WONT: u8 = 252;
const DO: u8 = 253;
const DONT: u8 = 254;
const TIMING_MARK: u8 = 6;

/// A reader that takes telnet's commands out of what `input` gives, and
/// asks the broker to send connection `id` the answers.
pub struct Telnet<'a, R> {
    input: R,
    /// Where the bytes read so far stopped: in text (0), just after IAC, or
    /// after IAC and WILL, WONT, DO or DONT (that byte), before the option.
    after: u8,
    id: u64,
    events: &'a SyncSender<Event>,
}

impl<'a, R: Read> Telnet<'a, R> {
    /// Reads `input`, for connection `id`, answering through `events`.
    pub fn new(input: R, id: u64, events: &'a SyncSender<Event>) -> Self {
        Telnet { input, after: 0, id, events }
    }

    /// Takes the commands out of `bytes`, in place; returns how many bytes
    /// of text are left at its start. (A subnegotiation is never begun:
    /// every option it could be about is refused.)
    fn strip(&mut self, bytes: &mut [u8]) -> usize {
        let mut kept = 0;
        for at in 0..bytes.len() {
            let byte = bytes[at];
            // Keeps `b` as text; what follows is text again (0).
            let mut text = |b: u8| {
                (bytes[kept], kept) = (b, kept + 1);
                0
            };
            self.after = match (self.after, byte) {
                (0, IAC) => IAC,
                (0, _) => text(byte),
                (IAC, WILL..=DONT) => byte,
                (IAC, IAC) => text(IAC), // IAC IAC: the byte 255 itself
                (IAC, SE..) => 0,        // a command of two bytes
                (IAC, _) => {
                    text(IAC); // no command: the 255 and this byte are text
                    text(byte)
                }
                (verb, option) => {
                    self.answer(verb, option);
                    0
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
