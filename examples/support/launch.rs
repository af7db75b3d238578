//! Starting a server under test, for the tests, the checker and the
//! benchmark alike: it says where it listens on its first stdout line, and
//! it must not outlive whoever started it.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A server process, killed and waited for when dropped, even in a panic.
pub struct Launched(pub Child);

impl Launched {
    /// Starts `command` with its stdout piped (stdin and stderr as the
    /// command sets them).
    pub fn start(command: &mut Command) -> io::Result<Launched> {
        command.stdout(Stdio::piped()).spawn().map(Launched)
    }

    /// Reads the first stdout line, `listening on IP:PORT`, waiting at most
    /// `wait`: the address, and the rest of stdout for the caller to read,
    /// drain or close. An error says what the server did instead.
    pub fn listening(
        &mut self,
        wait: Duration,
    ) -> Result<(SocketAddr, BufReader<ChildStdout>), String> {
        let mut stdout = BufReader::new(self.0.stdout.take().ok_or("stdout was not piped")?);
        // On a thread, so that a server that never prints cannot hang its
        // user; killing the server ends the thread.
        let (tx, first) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = tx.send((line, stdout));
        });
        let expected = "did not print 'listening on IP:PORT' first";
        let (line, rest) =
            first.recv_timeout(wait).map_err(|_| format!("{expected} (nothing in {wait:?})"))?;
        let addr = line.trim_end().strip_prefix("listening on ").and_then(|a| a.parse().ok());
        Ok((addr.ok_or(format!("{expected} (got {line:?})"))?, rest))
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
