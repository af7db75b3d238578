//! A reader on a slow link, for the benchmark's attack and the tests of
//! fair shares: it takes what a poor school wifi would, 40 KB/s.

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;
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
