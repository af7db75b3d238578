//! The server under test, for one rule: started afresh with `sh -c CMD`
//! (and killed, with whatever it started, when dropped), or the one already
//! running at `--addr`. A server that does not start is said to, with its
//! last lines on stderr.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::peer::{self, Peer};
use crate::support::launch::Launched;

/// Where the server under test is.
pub enum Target {
    /// A command to start afresh for every rule.
    Command(String),
    /// A server already running.
    Addr(SocketAddr),
}

/// How many of its last stderr lines a server that did not start shows.
const LAST_LINES: usize = 3;

pub struct Server {
    pub launched: Option<Launched>,
    pub addr: SocketAddr,
}

impl Drop for Server {
    /// `sh -c` may leave the server as its child (`cd dir && python3 ...`):
    /// that child, and any it started, are killed first, then the shell
    /// (by `Launched`). Not a process group of their own: Ctrl-C on the
    /// checker must still reach them.
    fn drop(&mut self) {
        let Some(launched) = &self.launched else { return };
        let pids: Vec<String> = descendants(launched.0.id()).iter().map(u32::to_string).collect();
        if !pids.is_empty() {
            let kill = Command::new("kill").arg("-KILL").args(&pids).stderr(Stdio::null()).status();
            drop(kill);
        }
    }
}

/// `{port}`: a port free a moment ago, picked at random below the range
/// the kernel hands out itself (32768 and up on Linux). A port the kernel
/// chose for us (binding port 0) could be chosen again, the moment it is
/// let go, for another checker run at once, whose server would then be
/// the one this run finds there (the server started here, slower to start,
/// failing to bind); or taken by any program's connection meanwhile.
fn free_port() -> Result<u16, String> {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(std::process::id());
    (0..1000u64)
        .map(|k| 20_000 + (random.wrapping_add(k * 7919) % 12_000) as u16)
        .find(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
        .ok_or_else(|| "no free port from 20000 to 31999 on 127.0.0.1".to_string())
}

/// The processes `pid` started, and theirs, as Linux's /proc lists them
/// (none elsewhere).
fn descendants(pid: u32) -> Vec<u32> {
    let (mut all, mut next) = (Vec::new(), vec![pid]);
    while let Some(parent) = next.pop() {
        let path = format!("/proc/{parent}/task/{parent}/children");
        let children = std::fs::read_to_string(path).unwrap_or_default();
        let children: Vec<u32> =
            children.split_whitespace().filter_map(|c| c.parse().ok()).collect();
        next.extend(&children);
        all.extend(children);
    }
    all
}

impl Server {
    pub fn start(target: &Target, wait: Duration) -> Result<Server, String> {
        let cmd = match target {
            Target::Addr(addr) => {
                let server = Server { launched: None, addr: *addr };
                TcpStream::connect_timeout(addr, Duration::from_secs(5)).map_err(|e| {
                    format!("cannot connect to {addr}: {e} (is the server running?)")
                })?;
                return Ok(server);
            }
            Target::Command(cmd) => cmd,
        };
        let port = free_port()?;
        // Through the shell, as typed: quotes, `cd dir && ...`, a path with
        // a space all mean what they mean at a prompt.
        let mut command = Command::new("sh");
        command.arg("-c").arg(cmd.replace("{port}", &port.to_string()));
        command.stdin(Stdio::piped()).stderr(Stdio::piped());
        let mut launched = Launched::start(&mut command)
            .map_err(|e| format!("cannot start the server ({cmd}): {e}"))?;
        let last = last_lines(launched.0.stderr.take());
        let said = || match last.lock().unwrap_or_else(|e| e.into_inner()).make_contiguous() {
            [] => String::new(),
            lines => format!(", saying on stderr: {}", lines.join(" | ")),
        };
        let given = cmd.contains("{port}");
        let (addr, stdout) = if given {
            let stdout = launched.0.stdout.take().ok_or("no stdout")?;
            (([127, 0, 0, 1], port).into(), BufReader::new(stdout))
        } else {
            let started = launched.listening(Duration::from_secs(10));
            started.map_err(|e| {
                format!("the server ({cmd}) {e}{}; or put {{port}} in the command", said())
            })?
        };
        // Keep its stdout drained.
        thread::spawn(move || stdout.lines().map_while(Result::ok).for_each(drop));
        let mut server = Server { launched: Some(launched), addr };
        // Given its port, it says nothing: wait until it accepts connections,
        // or ends (a typo in the command, a missing file: the usual mistakes).
        let deadline = Instant::now() + Duration::from_secs(10);
        while given && TcpStream::connect_timeout(&server.addr, wait).is_err() {
            let child = server.launched.as_mut().map(|launched| &mut launched.0);
            if let Some(Ok(Some(status))) = child.map(|child| child.try_wait()) {
                // Its stderr's last lines, once the pipe has closed.
                let closed = Instant::now() + Duration::from_millis(500);
                while Arc::strong_count(&last) > 1 && Instant::now() < closed {
                    thread::sleep(Duration::from_millis(10));
                }
                return Err(format!("the server ({cmd}) ended at once ({status}){}", said()));
            }
            if Instant::now() > deadline {
                let why = format!("did not accept connections within 10 s{}", said());
                return Err(format!("the server ({cmd}) {why}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// A server shared by every rule (`--addr`): wait until the last rule's
    /// users have left and its lines stopped coming, so that the next rule
    /// finds the room empty and quiet. `false` if it stays otherwise.
    pub fn settle(&self) -> bool {
        if self.launched.is_some() {
            return true;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            // A probe that hears nothing for half a second after its welcome
            // finds the room quiet (no earlier rule's lines still arriving).
            let quiet = Duration::from_millis(500);
            let probe = Peer::open(self.addr, None, None, quiet, Default::default());
            let empty = probe.and_then(|mut p| {
                p.skip_earlier = true; // history for newcomers: old lines, not live ones
                let joined =
                    p.want(peer::GREETING).and_then(|()| p.say("checker")).and_then(|()| p.line());
                let alone = joined.map(|line| line.starts_with("* welcome checker; online (1)"));
                let still = p.line().is_err();
                // It leaves (an end of input), and waits until the server has
                // closed: its leave is done before the next rule joins.
                let _ = p.stream.shutdown(std::net::Shutdown::Write);
                let _ = p.want_closed();
                alone.map(|alone| alone && still).map_err(|f| std::io::Error::other(f.to_string()))
            });
            if empty.unwrap_or(false) {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

/// Reads `stderr` on a thread until it closes, keeping its last
/// `LAST_LINES` lines (controls escaped: they go to a terminal); the thread
/// drops its handle to them when it ends.
fn last_lines(stderr: Option<impl Read + Send + 'static>) -> Arc<Mutex<VecDeque<String>>> {
    let last = Arc::new(Mutex::new(VecDeque::new()));
    let kept = Arc::clone(&last);
    if let Some(stderr) = stderr {
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let shown = |c: char| match c.is_control() {
                    true => c.escape_default().to_string(),
                    false => c.to_string(),
                };
                let line: String = line.chars().map(shown).collect();
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == LAST_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
    }
    last
}
