//! The harness every scenario shares: start the real `chatroom` binary, talk
//! to it over real sockets, and clean up whatever happens.
//!
//! Tests synchronise on what the program says: every wait is "read the line I
//! expect, or fail after `PATIENCE`", never a sleep. `PATIENCE` is long so
//! that a slow, loaded machine does not fail a test; a correct program answers
//! in milliseconds, so the only cost of a long patience is in a failing run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// Only the parts of `examples/support/` this crate uses in full: any other
// would be dead code here.
#[path = "../../examples/support"]
mod support {
    pub mod launch;
    pub mod loopback;
    pub mod peer;
    pub mod procfs;
    pub mod slow;
}

use support::launch::Launched;
use support::peer::{Failure, GREETING, Sent};
pub use support::slow::{NOT_UTF8, SlowLink, flood_lines};

/// How long any single expected thing may take to happen.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The `chatroom` binary Cargo built for these tests.
pub fn chatroom() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("chatroom"))
}

/// What happens to the server's stderr (its log).
pub enum Log {
    /// Read by the harness, line by line (`expect_log`).
    Read,
    /// A pipe nobody reads: it fills up, and stays full.
    Unread,
    /// A pipe whose reading end is closed: every write to it fails.
    Closed,
}

/// A running `chatroom server`, killed and waited for when dropped, even
/// when the test panics.
pub struct Server {
    launched: Launched,
    pub addr: SocketAddr,
    /// Everything the server wrote to stderr so far (its log).
    log: Arc<Mutex<String>>,
    log_lines: Receiver<String>,
    /// The server's stdout after its first line (the console's answers).
    out_lines: Receiver<String>,
    /// All of it so far.
    out: Arc<Mutex<String>>,
    stdin: Option<ChildStdin>,
    /// Held open and never read, for `Log::Unread`.
    _unread_log: Option<std::process::ChildStderr>,
}

impl Server {
    /// Starts `chatroom server --port 0 ARGS...` and reads its address from
    /// the first stdout line, `listening on IP:PORT`.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_log(args, Log::Read)
    }

    /// Starts `chatroom server --port 0 ARGS...` with its log (stderr) in
    /// the given state.
    pub fn start_with_log(args: &[&str], log: Log) -> Server {
        let mut command = chatroom();
        command.args(["server", "--port", "0"]).args(args);
        command.stdin(Stdio::piped()).stderr(Stdio::piped());
        Server::spawn_with_log(command, log)
    }

    /// Starts a prepared server command (for `ulimit` wrappers and the like).
    pub fn spawn(command: Command) -> Server {
        Server::spawn_with_log(command, Log::Read)
    }

    fn spawn_with_log(mut command: Command, log_mode: Log) -> Server {
        let mut launched = Launched::start(&mut command).expect("start chatroom server");
        let stderr = launched.0.stderr.take().expect("stderr is piped");
        let stdin = launched.0.stdin.take();
        let log = Arc::new(Mutex::new(String::new()));
        let (log_tx, log_lines) = mpsc::channel();
        let log_copy = Arc::clone(&log);
        let mut unread_log = None;
        match log_mode {
            // Drain stderr on a thread so the server never blocks on a full
            // pipe, keeping a copy of each line for the tests that read it.
            Log::Read => {
                thread::spawn(move || {
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        log_copy.lock().unwrap().push_str(&format!("{line}\n"));
                        let _ = log_tx.send(line);
                    }
                });
            }
            Log::Unread => unread_log = Some(stderr),
            Log::Closed => drop(stderr),
        }
        let (addr, stdout) = launched
            .listening(PATIENCE)
            .unwrap_or_else(|e| panic!("the server {e}; its log:\n{}", log.lock().unwrap()));
        let (out_tx, out_lines) = mpsc::channel();
        let out = Arc::new(Mutex::new(String::new()));
        let out_copy = Arc::clone(&out);
        // Keep draining stdout: the console answers there.
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                out_copy.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = out_tx.send(line);
            }
        });
        Server { launched, addr, log, log_lines, out_lines, out, stdin, _unread_log: unread_log }
    }

    /// Connects a raw TCP client.
    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr)
    }

    /// Connects a raw TCP client from another loopback address (`127.0.0.2`
    /// plays an attacker, `127.0.0.10` and up honest users).
    pub fn connect_from(&self, source: &str) -> Conn {
        Conn::connect_with(source, self.addr, None)
    }

    /// Connects and joins as `name`, checking the greeting and the welcome.
    pub fn join(&self, name: &str) -> Conn {
        self.welcome(self.connect(), name)
    }

    /// Connects from `source` and joins as `name`.
    pub fn join_from(&self, source: &str, name: &str) -> Conn {
        self.welcome(self.connect_from(source), name)
    }

    fn welcome(&self, mut conn: Conn, name: &str) -> Conn {
        conn.expect_greeting();
        conn.send(name);
        let mut welcome = conn.read_line();
        while welcome.starts_with("* [earlier] ") {
            welcome = conn.read_line(); // the history comes before the welcome
        }
        assert!(
            welcome.starts_with(&format!("* welcome {name}; online (")),
            "welcome for {name}, got {welcome:?}"
        );
        conn
    }

    /// Joins every name in turn, each earlier user reading the `* NAME
    /// joined` of each later one, so all start with nothing left unread.
    pub fn join_all<const N: usize>(&self, names: [&str; N]) -> [Conn; N] {
        let mut joined: Vec<Conn> = Vec::with_capacity(N);
        for name in names {
            let conn = self.join(name);
            for earlier in &mut joined {
                earlier.expect(&format!("* {name} joined"));
            }
            joined.push(conn);
        }
        joined.try_into().unwrap_or_else(|_| unreachable!("one connection per name"))
    }

    /// Waits until the server logs a line containing `text`; returns it.
    pub fn expect_log(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log_lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => {
                    panic!("server never logged {text:?}; its log:\n{}", self.log.lock().unwrap())
                }
            }
        }
    }

    /// Types a line on the server's console (its stdin).
    pub fn console(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("console still open");
        stdin.write_all(format!("{line}\n").as_bytes()).expect("type on the console");
        stdin.flush().unwrap();
    }

    /// Closes the server's stdin, as a server started without a terminal.
    pub fn close_console(&mut self) {
        self.stdin = None;
    }

    /// The console's next stdout line that is not the room's (those start
    /// with the time, `HH:MM `).
    fn console_line(&self, expected: &str) -> String {
        loop {
            match self.out_lines.recv_timeout(PATIENCE) {
                Ok(line) if room_line(&line).is_some() => {}
                Ok(line) => return line,
                Err(_) => panic!("the console never printed {expected:?}"),
            }
        }
    }

    /// Reads the console's next stdout line (the room's aside) and checks it
    /// is `expected`.
    pub fn expect_stdout(&self, expected: &str) {
        assert_eq!(self.console_line(expected), expected);
    }

    /// Reads the console's next stdout line (the room's aside) and checks its
    /// start; returns it.
    pub fn expect_stdout_prefix(&self, prefix: &str) -> String {
        let line = self.console_line(prefix);
        assert!(line.starts_with(prefix), "expected {prefix:?}..., got {line:?}");
        line
    }

    /// Reads stdout until the room shows `expected` (as `HH:MM expected`);
    /// returns the whole line. Lines the room showed before are passed over.
    pub fn expect_room(&self, expected: &str) -> String {
        loop {
            match self.out_lines.recv_timeout(PATIENCE) {
                Ok(line) if room_line(&line) == Some(expected) => return line,
                Ok(_) => {}
                Err(_) => panic!("the console never showed {expected:?}"),
            }
        }
    }

    /// Everything the server printed on stdout after its first line, so far.
    pub fn stdout_so_far(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// CPU time (user + system) the server has used so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        support::procfs::cpu_ticks(self.launched.0.id()).expect("read /proc/PID/stat")
    }

    /// The server's peak resident memory, in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> u64 {
        support::procfs::status(self.launched.0.id(), "VmHWM:").expect("VmHWM in /proc")
    }

    /// `None` while the server runs; its exit status once it has ended.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.launched.0.try_wait().expect("query the server process")
    }

    /// Waits for the server to exit by itself, up to `PATIENCE`.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_exit(&mut self.launched.0)
    }

    /// Kills the server now, as `kill -9` would.
    pub fn kill(&mut self) {
        let _ = self.launched.0.kill();
        let _ = self.launched.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the server logged: the why of a failure
        // that shows only on a loaded machine.
        if thread::panicking() {
            eprintln!(
                "--- the server's log ---\n{}",
                self.log.lock().unwrap_or_else(|e| e.into_inner())
            );
        }
    }
}

/// The text of a line the console shows from the room, `HH:MM TEXT`.
pub fn room_line(line: &str) -> Option<&str> {
    let (clock, text) = line.split_at_checked(6)?;
    let digits = clock.bytes().enumerate().all(|(i, b)| match i {
        2 => b == b':',
        5 => b == b' ',
        _ => b.is_ascii_digit(),
    });
    if digits { Some(text) } else { None }
}

/// A connection from `source` that nobody will read from or write to (a
/// script's connect-and-close), or why none was made.
pub fn connect_quietly(source: std::net::Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    support::loopback::connect_with(source, addr, None)
}

/// The example `name` (`examples/`), which `cargo test` builds next to the
/// binary: the checker, the benchmark.
pub fn example(name: &str) -> Command {
    let bin = assert_cmd::cargo::cargo_bin("chatroom");
    let dir = bin.parent().expect("target dir").join("examples");
    let exe = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(exe.exists(), "{} is built by cargo test", exe.display());
    Command::new(exe)
}

/// Waits for a child to exit, up to `PATIENCE`; panics if it does not.
pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("query the child process") {
            return status;
        }
        assert!(Instant::now() < deadline, "the process did not exit in time");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The next connection to `listener` (a fake server's), within `PATIENCE`;
/// panics if none comes.
pub fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).expect("a non-blocking listener");
    let deadline = Instant::now() + PATIENCE;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("a blocking socket");
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept failed: {e}"),
        }
        assert!(Instant::now() < deadline, "nobody connected in time");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A raw TCP connection to the server, like `nc` would make: the checker's
/// own (`examples/support/peer.rs`), whose steps panic here with its message.
pub use support::peer::Peer as Conn;

/// The peer's steps for tests: `name` is `step`, whose failure (what was
/// sent, expected and got) is a panic.
macro_rules! panicking {
    ($($name:ident($($arg:ident: $type:ty),*) -> $out:ty = $step:ident;)*) => {$(
        pub fn $name(&mut self, $($arg: $type),*) -> $out {
            self.$step($($arg),*).unwrap_or_else(|f: Failure| panic!("{f}"))
        }
    )*};
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        Conn::open(addr, None, None, PATIENCE, Sent::default()).expect("connect to the server")
    }

    /// Connects from `source`, with at most about `receive_buffer` bytes
    /// held by the kernel for it unread.
    pub fn connect_with(source: &str, addr: SocketAddr, receive_buffer: Option<i32>) -> Conn {
        let source = source.parse().expect("an IPv4 address");
        Conn::open(addr, Some(source), receive_buffer, PATIENCE, Sent::default())
            .expect("connect to the server")
    }

    /// A connection made elsewhere (a fake server's, say).
    pub fn from_stream(stream: TcpStream) -> Conn {
        Conn::with(stream, PATIENCE, Sent::default()).expect("a connected socket")
    }

    panicking! {
        send(line: &str) -> () = say;
        send_raw(bytes: &[u8]) -> () = say_raw;
        read_line() -> String = line;
        expect(expected: &str) -> () = want;
        expect_prefix(prefix: &str) -> String = want_prefix;
        skip_to(prefix: &str) -> String = find;
        expect_closed() -> () = want_closed;
    }

    pub fn expect_greeting(&mut self) {
        self.expect(GREETING);
    }
}

/// A running `chatroom client`, its stdin ours to type into and its stdout
/// collected; killed and waited for when dropped.
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Receiver<Vec<u8>>,
    /// What was printed on stdout after what `expect_output` consumed.
    seen: String,
    /// Everything printed on stdout so far.
    pub all: String,
    /// All of stderr, sent once the client has closed it (at exit).
    stderr: Receiver<String>,
    /// Held open and never read, for `start_unread`.
    _unread: Option<ChildStdout>,
}

impl Client {
    /// Starts `chatroom client ARGS...`.
    pub fn start(args: &[&str]) -> Client {
        let mut command = chatroom();
        command.arg("client").args(args);
        Client::spawn(command)
    }

    /// Starts `chatroom client ARGS...` with its stdout a pipe nobody
    /// reads: once the pipe is full, every print blocks.
    pub fn start_unread(args: &[&str]) -> Client {
        let mut command = chatroom();
        command.arg("client").args(args);
        Client::spawn_with(command, false)
    }

    /// Starts `chatroom client ARGS...` in a real pseudo-terminal, through
    /// util-linux's `script`, with `TERM=term`: what we type reaches it as
    /// keys, and `seen` is what its screen was sent, escape codes and all.
    /// The terminal's settings (`stty -g`) are printed before and after, as
    /// `settings: ...` lines, so that a test can compare them.
    pub fn in_terminal(args: &[&str], term: &str) -> Client {
        Client::command_in_terminal("client", args, &[("TERM", term)])
    }

    /// `chatroom server ARGS...` in a pseudo-terminal, as `in_terminal`:
    /// the teacher's console.
    pub fn server_in_terminal(args: &[&str]) -> Client {
        Client::command_in_terminal("server", args, &[("TERM", "xterm")])
    }

    fn command_in_terminal(subcommand: &str, args: &[&str], env: &[(&str, &str)]) -> Client {
        let binary = assert_cmd::cargo::cargo_bin("chatroom");
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let script = format!(
            "echo settings: $(stty -g); '{}' {subcommand} {}; code=$?; echo settings: $(stty -g); exit $code",
            binary.display(),
            quoted.join(" ")
        );
        let mut command = Command::new("script");
        command.args(["-qefc", &script, "/dev/null"]);
        command.envs(env.iter().copied());
        Client::spawn(command)
    }

    /// Starts a prepared command (a shell in a terminal, say) as a client:
    /// its stdin ours, its stdout collected.
    pub fn spawn(command: Command) -> Client {
        Client::spawn_with(command, true)
    }

    fn spawn_with(mut command: Command, read_stdout: bool) -> Client {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chatroom client");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let (tx, output) = mpsc::channel();
        let mut unread = None;
        if !read_stdout {
            unread = Some(stdout);
        } else {
            // Prompts have no newline, so collect raw bytes, not lines.
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stdout.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            });
        }
        let (stderr_tx, stderr) = mpsc::channel();
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            let _ = stderr_tx.send(text);
        });
        let stdin = child.stdin.take();
        let (seen, all) = (String::new(), String::new());
        Client { child, stdin, output, seen, all, stderr, _unread: unread }
    }

    /// Starts a client that joins `server` as `name` (all by flags), and
    /// waits for its welcome.
    pub fn join(server: &Server, name: &str) -> Client {
        Client::join_with(server, name, &[])
    }

    /// `join`, with more arguments.
    pub fn join_with(server: &Server, name: &str, more: &[&str]) -> Client {
        let port = server.addr.port().to_string();
        let mut args = vec!["--host", "127.0.0.1", "--port", &port, "--name", name];
        args.extend(more);
        let mut client = Client::start(&args);
        client.expect_output(&format!("* welcome {name};"));
        client
    }

    /// Types `text` (include the `\n`).
    pub fn type_text(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(text.as_bytes()).expect("type into the client");
        stdin.flush().unwrap();
    }

    /// Closes stdin: Ctrl-D.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits until stdout, after what earlier calls consumed, contains
    /// `text`; consumes up to the end of it, and returns what came before.
    pub fn expect_output(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(at) = self.seen.find(text) {
                let before = self.seen[..at].to_string();
                self.seen.drain(..at + text.len());
                return before;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.take(&bytes),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    panic!("client never printed {text:?}; unread output: {:?}", self.seen)
                }
            }
        }
    }

    /// Checks the terminal's settings as printed before and after the
    /// program (see `in_terminal`): the same twice if it put them back.
    /// `context` says which case failed, in a test of several.
    pub fn assert_terminal_restored(&self, context: &str) {
        let settings: Vec<&str> = self
            .all
            .lines()
            .filter_map(|l| Some(l[l.find("settings: ")? + 10..].trim_end()))
            .collect();
        assert_eq!(settings.len(), 2, "{context}: {:?}", self.all);
        assert_eq!(settings[0], settings[1], "{context}: the terminal was not restored");
    }

    fn take(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        self.seen.push_str(&text);
        self.all.push_str(&text);
    }

    /// `None` while the client runs; its exit status once it has ended.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("query the client process")
    }

    /// The client's peak resident memory, in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> u64 {
        support::procfs::status(self.child.id(), "VmHWM:").expect("VmHWM in /proc")
    }

    /// Waits for the client to exit; returns its exit code and stderr. All
    /// it printed is in `all` then.
    pub fn wait_exit(&mut self) -> (Option<i32>, String) {
        let status = wait_exit(&mut self.child);
        while let Ok(bytes) = self.output.recv_timeout(PATIENCE) {
            self.take(&bytes);
        }
        let stderr =
            self.stderr.recv_timeout(PATIENCE).expect("the client's stderr closes when it exits");
        (status.code(), stderr)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
