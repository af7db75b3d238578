//! A reader on a slow link, for the benchmark's attack and the tests of
//! fair shares: it takes what a poor school wifi would, 40 KB/s; and floods
//! of 1 KiB lines, the costliest of which it must keep up with.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The slowest link the README promises keeps up with the room at the
/// default flood control.
pub const BYTES_PER_SECOND: f64 = 40_000.0;

/// How much it has read since it started, and the start of a line whose
/// end has not been read yet.
pub struct SlowLink {
    start: Instant,
    taken: usize,
    partial: Vec<u8>,
}

impl SlowLink {
    pub fn new() -> SlowLink {
        SlowLink { start: Instant::now(), taken: 0, partial: Vec::new() }
    }

    /// Reads whole lines from `stream`, at most [`BYTES_PER_SECOND`] counted
    /// from the start, handing each to `seen` until it says to stop; `seen`
    /// is asked with `None` too whenever nothing came for 200 ms. `Err` if
    /// the connection ends first.
    pub fn read(
        &mut self,
        mut stream: &TcpStream,
        mut seen: impl FnMut(Option<&str>) -> bool,
    ) -> io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut chunk = [0u8; 4096];
        loop {
            while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                if seen(Some(String::from_utf8_lossy(&line).trim_end())) {
                    return Ok(());
                }
            }
            let allowed = self.start.elapsed().as_secs_f64() * BYTES_PER_SECOND;
            if (self.taken + chunk.len()) as f64 > allowed {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            match stream.read(&mut chunk) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.taken += n;
                    self.partial.extend_from_slice(&chunk[..n]);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if seen(None) {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A byte that is never UTF-8: a line of them is the costliest flood, each
/// becoming a three-byte U+FFFD, the most bytes on screens a line can buy.
pub const NOT_UTF8: u8 = 0xFF;

/// Sends lines of `N ` and 1,018 bytes of `filler`, N counting up, as fast
/// as the server reads them, until `stop`; `Err` if the connection fails.
/// A write held back past its timeout may have sent part of a line: it is
/// finished, so that the numbers stay whole, unless `stop` comes first (the
/// server, reading at its pace, may take long to take the rest).
pub fn flood_lines(mut stream: &TcpStream, filler: u8, stop: &AtomicBool) -> io::Result<()> {
    stream.set_write_timeout(Some(Duration::from_millis(200)))?;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut line = format!("{n} ").into_bytes();
        line.extend_from_slice(&[filler; 1018]);
        line.push(b'\n');
        let mut at = 0;
        while at < line.len() && !stop.load(Ordering::Relaxed) {
            match stream.write(&line[at..]) {
                Ok(k) => at += k,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e),
            }
        }
        n += 1;
    }
    Ok(())
}
