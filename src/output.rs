//! The server's three outputs, none of which ever makes the room wait: the
//! log (stderr: connections, errors), the console (stdout: the room as the
//! teacher sees it, and the console's answers) and the transcript
//! (`--transcript FILE`). Beyond the report, whose server shows its errors
//! on its terminal (§5): a plain `print` there stops while the terminal is
//! paused.
//!
//! Why: `eprintln!` blocks when stderr is a pipe nobody reads or a terminal
//! paused with Ctrl-S, and panics when a write fails (a closed pipe). Called
//! from the broker, either would stop the room. Here a line goes into a
//! bounded channel and a thread of the output's own writes it; when the
//! channel is full the line is dropped and counted, and the count is written
//! once the output flows again.
//!
//! Not here: what the lines say (their callers and `protocol.rs`).

use std::fs::OpenOptions;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::terminal::{self, Screen};

/// How many lines may wait for an output's thread before new ones are
/// dropped.
const QUEUE_LINES: usize = 1024;

/// What an output's thread is handed.
enum Entry {
    Line(String),
    /// Written once every line before it is: the thread drops the sender,
    /// which wakes whoever waits on its receiver ([`flush`]).
    Flush(Sender<()>),
}

/// One output: a bounded channel to its thread, and how many lines it has
/// had to drop since it last wrote.
struct Output {
    entries: SyncSender<Entry>,
    /// Shared with the output's thread without a lock: an atomic counter
    /// (`std::sync::atomic`, the Book's chapter 16), whose every change is
    /// whole. `Relaxed`: the count orders nothing else.
    dropped: Arc<AtomicUsize>,
}

/// The outputs, set once by [`start_outputs`] and only read after that, which is
/// what a `OnceLock` allows without a lock. `static`: global, like stdout
/// and stderr themselves; every thread logs, and passing a handle to each
/// would say nothing more.
static LOG: OnceLock<Output> = OnceLock::new();
static CONSOLE: OnceLock<Output> = OnceLock::new();
static TRANSCRIPT: OnceLock<Output> = OnceLock::new();
/// This machine's offset from UTC, in seconds, for the console's clock.
static UTC_OFFSET: OnceLock<i64> = OnceLock::new();

impl Output {
    /// Starts an output whose thread hands each line to `show`.
    fn spawn(name: &str, mut show: impl FnMut(&str) + Send + 'static) -> Output {
        let (entries, queued) = mpsc::sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicUsize::new(0));
        let missed = Arc::clone(&dropped);
        // Spawn: the output's thread, for the life of the process. If it
        // cannot start, lines pile up to QUEUE_LINES and are then dropped.
        let work = move || {
            for entry in queued {
                let line = match entry {
                    Entry::Line(line) => line,
                    Entry::Flush(done) => {
                        drop(done); // wakes `flush`: every line before it is out
                        continue;
                    }
                };
                let missed = missed.swap(0, Ordering::Relaxed);
                if missed > 0 {
                    show(&format!("({missed} lines dropped: the output was not being read)"));
                }
                show(&line);
            }
        };
        let _ = thread::Builder::new().name(name.into()).spawn(work);
        Output { entries, dropped }
    }

    /// Hands `line` to the output's thread; dropped and counted if its
    /// queue is full.
    fn write(&self, line: String) {
        if self.entries.try_send(Entry::Line(line)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the outputs. In the console's line editor, the console's output
/// and a log bound for the same terminal are printed above the command being
/// typed (the log dimmed: it is for when something goes wrong); otherwise
/// they go to stdout and stderr as they are. A failed write is not an error:
/// there is nowhere left to report it.
pub fn start_outputs(screen: &Arc<Screen>, transcript: Option<&str>) -> Result<(), String> {
    let _ = UTC_OFFSET.set(utc_offset());
    let (out, log) = (Arc::clone(screen), Arc::clone(screen));
    let _ = CONSOLE
        .set(Output::spawn("console-out", move |line| out.print(line.trim_end_matches('\n'))));
    let on_terminal = io::stderr().is_terminal();
    let log_here = screen.editing() && on_terminal;
    let mut pacer = Pacer { since: Instant::now(), shown: 0, held: 0 };
    let _ = LOG.set(Output::spawn("log", move |line| {
        let lines = if on_terminal { pacer.pass(line) } else { vec![line.to_string()] };
        for line in lines {
            match log_here {
                true => log.print(&format!("\x1b[2m{line}\x1b[0m")),
                false => drop(io::stderr().write_all(format!("{line}\n").as_bytes())),
            }
        }
    }));
    let Some(path) = transcript else { return Ok(()) };
    let file = OpenOptions::new().create(true).append(true).open(path);
    let mut file = file.map_err(|e| format!("cannot open the transcript {path}: {e}"))?;
    let (path, mut reported) = (path.to_string(), false);
    // Each line in one unbuffered write: in the operating system's hands at
    // once (its page cache), not held back in ours.
    let _ = TRANSCRIPT.set(Output::spawn("transcript", move |line| {
        if let (Err(e), false) = (file.write_all(format!("{line}\n").as_bytes()), reported) {
            print(format!("! cannot write the transcript {path}: {e}; the room goes on"));
            reported = true;
        }
    }));
    Ok(())
}

/// On the teacher's terminal the log shows at most this many lines in each
/// [`LOG_WINDOW`]; the rest are counted, and the count shown with the first
/// line after it. A storm of connections then cannot scroll the room off
/// the screen. Sent to a file (`2> FILE`), the log keeps every line.
const LOG_LINES_PER_WINDOW: usize = 10;
const LOG_WINDOW: Duration = Duration::from_secs(5);

/// How many log lines the current window has shown, and held back.
struct Pacer {
    since: Instant,
    shown: usize,
    held: usize,
}

impl Pacer {
    /// What to print for `line`: the count of lines held back, if a window
    /// has ended; then `line`, unless its window is full.
    fn pass(&mut self, line: &str) -> Vec<String> {
        let mut lines = Vec::new();
        if self.since.elapsed() >= LOG_WINDOW {
            if self.held > 0 {
                let (held, secs) = (self.held, LOG_WINDOW.as_secs());
                lines.push(format!(
                    "({held} more log lines in the last {secs} s; 2> FILE keeps them all)"
                ));
            }
            (self.since, self.shown, self.held) = (Instant::now(), 0, 0);
        }
        if self.shown < LOG_LINES_PER_WINDOW {
            self.shown += 1;
            lines.push(line.to_string());
        } else {
            self.held += 1;
        }
        lines
    }
}

/// A line for the log (stderr): connections, joins, errors.
pub fn log(line: String) {
    if let Some(output) = LOG.get() {
        output.write(line);
    }
}

/// A line for the server's stdout: the console's answers, the room.
pub fn print(line: String) {
    if let Some(output) = CONSOLE.get() {
        output.write(line);
    }
}

/// A public line (chat, a join, a leave, a `/say`) as the room saw it: on
/// the console as `HH:MM line`, in the transcript as `YYYY-MM-DD HH:MM:SS
/// line`. Private messages never come here.
pub fn room(line: &str) {
    let since_1970 = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let now = since_1970.as_secs() as i64 + UTC_OFFSET.get().copied().unwrap_or(0);
    let line = line.trim_end();
    print(format!("{} {line}", clock(now)));
    if let Some(transcript) = TRANSCRIPT.get() {
        transcript.write(format!("{} {line}", date_time(now)));
    }
}

/// How long [`flush`] waits for the outputs, at most: a terminal paused for
/// good must not keep the server from exiting.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// Waits until each output has written every line it holds, before the
/// process exits.
pub fn flush() {
    let deadline = Instant::now() + FLUSH_WAIT;
    for output in [&LOG, &CONSOLE, &TRANSCRIPT].into_iter().filter_map(OnceLock::get) {
        let (done, written) = mpsc::channel();
        if output.entries.try_send(Entry::Flush(done)).is_ok() {
            // Ends when the thread drops `done`: every line before it is out.
            let _ = written.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        }
    }
}

/// This machine's offset from UTC in seconds, from `date +%z` (`+0100`): std
/// knows no time zones. 0 (UTC) where `date` cannot tell, on Windows say.
fn utc_offset() -> i64 {
    let text = terminal::output_of("date", &["+%z"]).unwrap_or_default();
    let number = |at: usize| text.get(at..at + 2).and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
    let sign = if text.starts_with('-') { -1 } else { 1 };
    sign * (number(1) * 3600 + number(3) * 60)
}

/// `HH:MM` of a time in seconds since 1970 (local time: the offset from UTC
/// already added), as the console shows the room.
fn clock(seconds: i64) -> String {
    let day = seconds.rem_euclid(86_400);
    format!("{:02}:{:02}", day / 3600, day % 3600 / 60)
}

/// `YYYY-MM-DD HH:MM:SS` of a time in seconds since 1970, as the transcript
/// dates its lines. The date is Howard Hinnant's `civil_from_days`: days
/// since 1970 to a year, month and day, in the Gregorian calendar.
fn date_time(seconds: i64) -> String {
    let (days, time) = (seconds.div_euclid(86_400) + 719_468, seconds.rem_euclid(86_400));
    let (era, day_of_era) = (days.div_euclid(146_097), days.rem_euclid(146_097));
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March is 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (time / 3600, time % 3600 / 60, time % 60);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_a_clock_and_a_date() {
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(86_400 + 3661), "01:01");
        assert_eq!(date_time(0), "1970-01-01 00:00:00");
        assert_eq!(date_time(1_000_000_000), "2001-09-09 01:46:40");
        assert_eq!(date_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(date_time(1_798_761_599), "2026-12-31 23:59:59");
        assert_eq!(date_time(-1), "1969-12-31 23:59:59");
    }
}
