//! loadtest: how fast and how lean a chat server is, measured over loopback.
//!
//! Run from the repository root:
//!
//! ```sh
//! cargo run --release --example loadtest                      # chatroom, default scenarios
//! cargo run --release --example loadtest -- --server chatroom \
//!     --server 'python3 examples/report_server.py 0'          # side by side, one run
//! cargo run --release --example loadtest -- idle 5000 --json out.json
//! ```
//!
//! Each `--server CMD` is started afresh for every scenario (`chatroom` means
//! this repository's release binary; any other command must print
//! `listening on IP:PORT` as its first stdout line) and killed after it.
//! `--addr HOST:PORT` measures a server that is already running instead (no
//! CPU or memory figures then: they are read from the server's /proc entry).
//!
//! Scenarios (defaults: `fanout 100x100 fanout 1000x10 latency 100 10 idle 1000`):
//! - `fanout NxM`: N clients join, then each sends M lines as fast as it can;
//!   every line must reach the N-1 others. Deliveries/s, lost, out of order,
//!   latency, dropped clients, server CPU and peak memory.
//! - `latency N R`: N clients each send R lines/s for 5 s; latency.
//! - `idle N`: N clients join one after another and stay idle; time until
//!   every join notice is delivered, server memory and threads while idle,
//!   then the time one line takes to reach all N.
//! - `join N`: a class starting together (issue 28): N connections opened
//!   at once, not one after another, each sending its name as soon as it is
//!   connected; the time until every client is greeted, then welcomed ("all
//!   joined"), then told of every later join; then the time one line takes
//!   to reach all N. The server's CPU up to then (before anyone leaves),
//!   its busiest thread by name with that thread's CPU (the CPU of each
//!   kind of thread goes to stderr), and its peak memory. The server runs
//!   with the issue's flags: `--max-clients 20000 --max-per-address 100000
//!   --max-line-rate 0 --history 0`.
//! - `join-spread N`: the same, each client from its own loopback address
//!   (127.0.1.1 to 127.0.1.250, then 127.0.2.1 and so on), as a class of
//!   machines. Linux only.
//! - `attack N S`: N honest users, each from its own loopback address
//!   (127.0.0.10 and up), chat at 2 lines/s each for S seconds and read
//!   everything, while one attacker address (127.0.0.2) does all it can at
//!   once: bursts of 1 KiB lines from ten connections, private floods at one
//!   honest user, join-and-quit churn, endless bytes without a newline
//!   before and after a name, and a taken name sent again and again without
//!   reading. The server runs with its default limits (flood control on).
//!   The attacker also holds connections that never choose a name,
//!   reopened as soon as they are closed, and a student on its address (a
//!   lab machine everyone logs in to) tries to join every half second. And
//!   twelve more
//!   addresses (127.0.2.1 to .12) send, as fast as flood control lets them,
//!   1 KiB lines that are not UTF-8 (each byte becomes three: the most bytes
//!   on screens a line can buy), while one more user reads at 40 KB/s, a
//!   slow link. Honest users' losses, disconnections and latency, with the
//!   server's CPU and memory; the note says whether the slow reader was cut
//!   off or missed a line, and how many of the student's tries were
//!   greeted and welcomed. Linux only (it binds source addresses).
//! - `attack-close R S`: connect-and-close (issue 30). Scripts on sixteen
//!   addresses (127.0.3.1 to .16) connect and close at once, keeping no
//!   socket open, each R times a second (0: as fast as it can), and one on
//!   the attacker's address 150 times a second (what the README promises a
//!   shared machine survives). After 3 s, for S seconds, a newcomer from a
//!   fresh address each time (127.0.0.10 and up) and a student on the
//!   attacker's address each try to join every half second. `p50 ms`,
//!   `p99 ms` and `max ms` are the time a join took (connecting to the
//!   welcome, both kinds together); the note says how many of each kind's
//!   tries were greeted and joined, the first refusal, and how many
//!   connections the scripts made. The server keeps its default limits, as
//!   in `attack`. Linux only.
//! - `attack-after N S`: a debt after a flood (issue 30). A student on the
//!   attacker's address, N more users there (at most 63: an address has 64
//!   places) and a watcher on its own address join, all reading. The N
//!   flood: together they send, each its part at once, as many 1 KiB lines
//!   as the address's allowance lets through in S seconds at the default
//!   flood control (100, then 20 a second), then fall silent and stay. The
//!   student types a line a second from the start of the flood until 30 s
//!   after it is over (its last line has reached the watcher). The figures
//!   are the delays of the lines typed after the flood, as the watcher sees
//!   them: `lost` those still missing 60 s after the typing stopped, p50,
//!   p99, max; the note says how many came within 5 s, the delays of the
//!   lines typed during the flood, and how long the flood took. Linux only.
//! - `attack-nonreaders N S`: N users (25 from each of 127.0.4.1 on; at
//!   most 998, the server having 1,000 places) join and never read again,
//!   while one honest sender floods 1 KiB lines as fast as flood control
//!   lets it and a watcher on its own address reads everything, for S
//!   seconds. Sampled every second: the server's memory (VmRSS) and the
//!   bytes in the kernel's send queues of its sockets (`tx_queue` in
//!   /proc/net/tcp, summed). `sendq MiB` is that sum's peak, `dropped` the
//!   sender and watcher cut off; the note says how many non-readers were
//!   let go as too slow, when the first and the last were (seconds from the
//!   start of the flood), and how many flood lines the watcher got. Linux
//!   only.
//!
//! Every line carries its send time, so latency is measured end to end, from
//! the sending client's `write` to the receiving client's `read`. Std only,
//! like the server: `idle` and `join` poll nonblocking sockets from a few
//! threads (std has no `epoll`), so that thousands of idle clients need no
//! thread each.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// Only the parts of `examples/support/` this crate uses in full: any other
// would be dead code here.
#[path = "support"]
mod support {
    pub mod launch;
    pub mod loopback;
    pub mod procfs;
    pub mod slow;
}

use support::launch::Launched;
use support::slow::{self, SlowLink};
use support::{loopback, procfs};

/// How long a client waits with no line arriving before it gives up on the
/// lines still missing (they count as lost).
const STALL_LIMIT: Duration = Duration::from_secs(10);

/// The stack of each benchmark thread: they parse lines and count, nothing deep.
const THREAD_STACK: usize = 128 * 1024;

/// Threads that poll the idle scenario's nonblocking sockets. Each uses at
/// most half a core (see `poll_shard`), so together at most one of this
/// machine's two, and the server keeps the other.
const POLLERS: usize = 2;

/// Padding that brings a benchmark line to about 40 bytes, a typical chat line.
const PADDING: &str = "lorem ipsum";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[derive(Clone, Debug)]
enum Scenario {
    Fanout { clients: usize, lines: usize },
    Latency { clients: usize, rate: u32 },
    Idle { clients: usize },
    Join { clients: usize, spread: bool },
    Attack { honest: usize, seconds: u64 },
    AttackClose { rate: usize, seconds: u64 },
    AttackAfter { flooders: usize, seconds: u64 },
    AttackNonreaders { clients: usize, seconds: u64 },
}

impl Scenario {
    fn label(&self) -> String {
        match self {
            Scenario::Fanout { clients, lines } => format!("fanout {clients}x{lines}"),
            Scenario::Latency { clients, rate } => format!("latency {clients} {rate}"),
            Scenario::Idle { clients } => format!("idle {clients}"),
            Scenario::Join { clients, spread: false } => format!("join {clients}"),
            Scenario::Join { clients, spread: true } => format!("join-spread {clients}"),
            Scenario::Attack { honest, seconds } => format!("attack {honest} {seconds}"),
            Scenario::AttackClose { rate, seconds } => format!("attack-close {rate} {seconds}"),
            Scenario::AttackAfter { flooders, seconds } => {
                format!("attack-after {flooders} {seconds}")
            }
            Scenario::AttackNonreaders { clients, seconds } => {
                format!("attack-nonreaders {clients} {seconds}")
            }
        }
    }
}

#[derive(Clone)]
enum Target {
    /// A command to start afresh for every scenario.
    Command(String),
    /// A server already running.
    Addr(String),
}

/// Whether `cmd` is this project's server: `chatroom`, or the path of a
/// binary whose name starts so (another build of it, `/tmp/chatroom-before`).
fn is_chatroom(cmd: &str) -> bool {
    let name = cmd.rsplit('/').next().unwrap_or(cmd);
    cmd == "chatroom" || (!cmd.contains(' ') && name.starts_with("chatroom"))
}

impl Target {
    fn label(&self) -> String {
        match self {
            Target::Command(cmd) if cmd == "chatroom" => "chatroom".into(),
            // The script or program's file name: `report_server.py`, `python3`...
            Target::Command(cmd) => {
                let words: Vec<&str> = cmd.split_whitespace().collect();
                let word = words.iter().find(|w| w.ends_with(".py")).or(words.first());
                let word = word.copied().unwrap_or("?");
                word.rsplit('/').next().unwrap_or(word).into()
            }
            Target::Addr(addr) => addr.clone(),
        }
    }
}

fn usage() -> String {
    "usage: loadtest [fanout NxM | latency N R | idle N | join N | join-spread N | attack N S | attack-close R S | attack-after N S | attack-nonreaders N S]... [--server CMD]... [--addr HOST:PORT] [--json FILE]".into()
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut scenarios = Vec::new();
    let mut targets = Vec::new();
    let mut json = None;
    let mut i = 0;
    let next = |i: &mut usize| -> Result<String, String> {
        *i += 1;
        args.get(*i).cloned().ok_or_else(usage)
    };
    let number = |s: &str| s.parse::<usize>().map_err(|_| format!("not a number: {s}"));
    while i < args.len() {
        match args[i].as_str() {
            "--server" => targets.push(Target::Command(next(&mut i)?)),
            "--addr" => targets.push(Target::Addr(next(&mut i)?)),
            "--json" => json = Some(next(&mut i)?),
            "fanout" => {
                let spec = next(&mut i)?;
                let (n, m) = spec.split_once('x').ok_or_else(usage)?;
                scenarios.push(Scenario::Fanout { clients: number(n)?, lines: number(m)? });
            }
            // Those that take two numbers (see the top of this file).
            word @ ("latency" | "attack" | "attack-close" | "attack-after"
            | "attack-nonreaders") => {
                let (n, m) = (number(&next(&mut i)?)?, number(&next(&mut i)?)?);
                let seconds = m as u64;
                scenarios.push(match word {
                    "latency" => Scenario::Latency { clients: n, rate: m as u32 },
                    "attack" => Scenario::Attack { honest: n, seconds },
                    "attack-close" => Scenario::AttackClose { rate: n, seconds },
                    "attack-after" => Scenario::AttackAfter { flooders: n, seconds },
                    _ => Scenario::AttackNonreaders { clients: n, seconds },
                });
            }
            "idle" => scenarios.push(Scenario::Idle { clients: number(&next(&mut i)?)? }),
            "join" | "join-spread" => {
                let spread = args[i] == "join-spread";
                scenarios.push(Scenario::Join { clients: number(&next(&mut i)?)?, spread });
            }
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
        i += 1;
    }
    if scenarios.is_empty() {
        scenarios = vec![
            Scenario::Fanout { clients: 100, lines: 100 },
            Scenario::Fanout { clients: 1000, lines: 10 },
            Scenario::Latency { clients: 100, rate: 10 },
            Scenario::Idle { clients: 1000 },
        ];
    }
    if targets.is_empty() {
        targets.push(Target::Command("chatroom".into()));
    }
    if targets.iter().any(|t| matches!(t, Target::Command(c) if c == "chatroom")) {
        build_chatroom()?;
    }

    let mut rows = Vec::new();
    for scenario in &scenarios {
        for target in &targets {
            eprintln!("== {} on {}", scenario.label(), target.label());
            let server = ServerUnderTest::start(target, scenario)?;
            let result = match scenario {
                Scenario::Fanout { clients, lines } => fanout(&server, *clients, *lines),
                Scenario::Latency { clients, rate } => latency(&server, *clients, *rate),
                Scenario::Idle { clients } => idle(&server, *clients),
                Scenario::Join { clients, spread } => join_at_once(&server, *clients, *spread),
                Scenario::Attack { honest, seconds } => attack(&server, *honest, *seconds),
                Scenario::AttackClose { rate, seconds } => attack_close(&server, *rate, *seconds),
                Scenario::AttackAfter { flooders, seconds } => {
                    attack_after(&server, *flooders, *seconds)
                }
                Scenario::AttackNonreaders { clients, seconds } => {
                    attack_nonreaders(&server, *clients, *seconds)
                }
            };
            // A server that fails a scenario still gets its row, with the
            // figures measured up to the failure and the reason.
            let mut metrics = match result {
                Ok(metrics) => metrics,
                Err(failure) => {
                    let (mut partial, why) = *failure;
                    eprintln!("  failed: {why}");
                    partial.note = Some(why);
                    partial
                }
            };
            // Unless the scenario read it at its end, before its clients left.
            metrics.cpu_seconds = metrics.cpu_seconds.or_else(|| server.cpu_seconds());
            metrics.peak_rss_kib = server.status_kib("VmHWM:");
            rows.push((scenario.label(), target.label(), metrics));
        }
    }
    print_table(&rows);
    if let Some(path) = json {
        std::fs::write(&path, to_json(&rows)).map_err(|e| format!("cannot write {path}: {e}"))?;
        eprintln!("wrote {path}");
    }
    Ok(())
}

/// Builds the release binary, so the benchmark never measures a stale one.
fn build_chatroom() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", "chatroom"])
        .status()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !status.success() {
        return Err("cargo build --release failed".into());
    }
    Ok(())
}

/// The server being measured; killed when dropped.
struct ServerUnderTest {
    launched: Option<Launched>,
    addr: SocketAddr,
    /// VmRSS right after start, before any client.
    start_rss_kib: Option<u64>,
}

impl ServerUnderTest {
    fn start(target: &Target, scenario: &Scenario) -> Result<ServerUnderTest, String> {
        let mut command = match target {
            Target::Addr(addr) => {
                let addr = addr.parse().map_err(|_| format!("not HOST:PORT: {addr}"))?;
                return Ok(ServerUnderTest { launched: None, addr, start_rss_kib: None });
            }
            // `chatroom`, or another build of it named `chatroom...` (a
            // path): started with the same flags, to compare two versions.
            Target::Command(cmd) if is_chatroom(cmd) => {
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                // target/release/examples/loadtest -> target/release/chatroom
                let built = exe.parent().and_then(|p| p.parent()).map(|p| p.join("chatroom"));
                let bin = match cmd.as_str() {
                    "chatroom" => built.ok_or("cannot locate target/release/chatroom")?,
                    path => path.into(),
                };
                let mut c = Command::new(bin);
                c.args(["server", "--port", "0"]);
                // No limits, except under attack: the other scenarios
                // measure the server, not the limits. `join` takes issue
                // 28's flags, so that its figures compare with the issue's.
                match scenario {
                    Scenario::Attack { .. }
                    | Scenario::AttackClose { .. }
                    | Scenario::AttackAfter { .. }
                    | Scenario::AttackNonreaders { .. } => {}
                    Scenario::Join { .. } => {
                        c.args(["--max-clients", "20000", "--max-per-address", "100000"]);
                        c.args(["--max-line-rate", "0", "--history", "0"]);
                    }
                    _ => {
                        c.args(["--max-clients", "100000", "--max-per-address", "100000"]);
                        c.args(["--max-line-rate", "0"]);
                    }
                }
                c
            }
            Target::Command(cmd) => {
                let mut words = cmd.split_whitespace();
                let mut c = Command::new(words.next().ok_or("empty --server command")?);
                c.args(words);
                c
            }
        };
        command.stdin(Stdio::null()).stderr(Stdio::null());
        let mut launched =
            Launched::start(&mut command).map_err(|e| format!("cannot start the server: {e}"))?;
        // Its stdout closed after the first line: the benchmark reads none of it.
        let (addr, _) =
            launched.listening(Duration::from_secs(10)).map_err(|e| format!("the server {e}"))?;
        let mut server = ServerUnderTest { launched: Some(launched), addr, start_rss_kib: None };
        server.start_rss_kib = server.status_kib("VmRSS:");
        Ok(server)
    }

    fn pid(&self) -> Option<u32> {
        self.launched.as_ref().map(|server| server.0.id())
    }

    /// A `Vm...:` or `Threads:` field of /proc/PID/status.
    fn status_kib(&self, field: &str) -> Option<u64> {
        procfs::status(self.pid()?, field)
    }

    /// User plus system CPU time so far.
    fn cpu_seconds(&self) -> Option<f64> {
        // Linux reports clock ticks, 100 per second on every common build.
        Some(procfs::cpu_ticks(self.pid()?)? as f64 / 100.0)
    }

    /// The bytes in the kernel's send queues of the server's connections
    /// (written by the server, not yet taken by their clients): the sum of
    /// `tx_queue` over the lines of /proc/net/tcp and tcp6 whose local end
    /// is the server's address. Listening sockets are left out: for them
    /// the field is the length of the queue of waiting connections.
    fn send_queue_bytes(&self) -> Option<u64> {
        // /proc writes an IPv4 address as one hex number in the machine's
        // byte order; an IPv4-mapped one in tcp6 ends the same way.
        let local = match self.addr {
            SocketAddr::V4(v4) => {
                format!("{:08X}:{:04X}", u32::from_ne_bytes(v4.ip().octets()), v4.port())
            }
            SocketAddr::V6(v6) => format!(":{:04X}", v6.port()),
        };
        let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|table| fs::read_to_string(table).ok())
            .collect();
        let queued = |line: &str| {
            // `sl local remote st tx_queue:rx_queue ...`, the queues in hex.
            let fields: Vec<&str> = line.split_whitespace().collect();
            let ours = fields.get(1).is_some_and(|f| f.ends_with(&local));
            let listening = fields.get(3) == Some(&"0A");
            let tx = fields.get(4).and_then(|q| q.split(':').next());
            let tx = tx.and_then(|hex| u64::from_str_radix(hex, 16).ok());
            if ours && !listening { tx.unwrap_or(0) } else { 0 }
        };
        let lines = tables.iter().flat_map(|table| table.lines().skip(1));
        (!tables.is_empty()).then(|| lines.map(queued).sum())
    }

    /// Each running thread's name and CPU seconds so far (none for a server
    /// given by `--addr`). From /proc/PID/task/TID/schedstat, the
    /// scheduler's nanoseconds on a CPU: a thread's `stat` counts clock
    /// ticks that caught it running, and missed most of a join storm here
    /// (5,000 writers, each running a few microseconds at a time, showed 0
    /// ticks between them, and all threads' ticks added up to half the
    /// process's).
    fn thread_cpu_seconds(&self) -> Vec<(String, f64)> {
        let Some(tasks) = self.pid().and_then(|pid| fs::read_dir(format!("/proc/{pid}/task")).ok())
        else {
            return Vec::new();
        };
        (tasks.flatten())
            .filter_map(|task| {
                let name = fs::read_to_string(task.path().join("comm")).ok()?;
                let schedstat = fs::read_to_string(task.path().join("schedstat")).ok()?;
                let nanos: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
                Some((name.trim_end().to_string(), nanos as f64 / 1e9))
            })
            .collect()
    }
}

/// The figures of one scenario on one server; `None` where not measured.
#[derive(Default, Debug)]
struct Metrics {
    deliveries_per_sec: Option<f64>,
    lost: Option<u64>,
    out_of_order: Option<u64>,
    dropped: Option<u64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    cpu_seconds: Option<f64>,
    peak_rss_kib: Option<u64>,
    idle_rss_kib: Option<u64>,
    idle_kib_per_client: Option<f64>,
    idle_threads: Option<u64>,
    joins_seconds: Option<f64>,
    /// `join`: every connection greeted, then every client welcomed.
    greeted_seconds: Option<f64>,
    all_joined_seconds: Option<f64>,
    one_line_ms: Option<f64>,
    busiest_thread: Option<String>,
    busiest_thread_cpu: Option<f64>,
    /// `attack-nonreaders`: the most the kernel held at once in the send
    /// queues of the server's connections.
    peak_send_queue_kib: Option<u64>,
    /// Why the scenario could not finish, if it could not.
    note: Option<String>,
}

/// A scenario's outcome: its figures, or those measured before it failed
/// together with why it failed.
type Outcome = Result<Metrics, Box<(Metrics, String)>>;

/// Fails a scenario that measured nothing yet.
fn failed(why: String) -> Box<(Metrics, String)> {
    Box::new((Metrics::default(), why))
}

/// A benchmark client, joined with a blocking socket.
struct Client {
    stream: TcpStream,
}

/// Connects and joins as `name`: greeting, name, welcome.
fn join(addr: SocketAddr, name: &str) -> Result<Client, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    handshake(stream, name)
}

/// Connects from the loopback address `source` and joins as `name`.
fn join_from(source: Ipv4Addr, addr: SocketAddr, name: &str) -> Result<Client, String> {
    let stream = loopback::connect_with(source, addr, None).map_err(|e| format!("connect: {e}"))?;
    handshake(stream, name)
}

fn handshake(mut stream: TcpStream, name: &str) -> Result<Client, String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(STALL_LIMIT)).map_err(|e| e.to_string())?;
    stream.write_all(format!("{name}\n").as_bytes()).map_err(|e| format!("send name: {e}"))?;
    // Read exactly two lines (greeting, welcome) byte by byte, so that no
    // later line is swallowed into a buffer that is then thrown away.
    let mut newlines = 0;
    let mut byte = [0u8; 1];
    while newlines < 2 {
        match stream.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => newlines += 1,
            Ok(1) => {}
            Ok(_) => return Err(format!("{name}: server closed during the handshake")),
            Err(e) => return Err(format!("{name}: handshake: {e}")),
        }
    }
    Ok(Client { stream })
}

fn join_all(addr: SocketAddr, clients: usize) -> Result<Vec<Client>, String> {
    let mut joined = Vec::with_capacity(clients);
    for i in 0..clients {
        joined.push(join(addr, &format!("c{i}"))?);
        if (i + 1) % 1000 == 0 {
            eprintln!("  {} joined", i + 1);
        }
    }
    Ok(joined)
}

/// A data line as sent: `SEQ NANOS PADDING`, NANOS being the send time since
/// `epoch`. The server relays it as `cI: SEQ NANOS PADDING`.
fn data_line(seq: usize, epoch: Instant) -> String {
    format!("{seq} {} {PADDING}\n", epoch.elapsed().as_nanos())
}

/// What one receiving client saw.
#[derive(Default)]
struct Received {
    lines: u64,
    out_of_order: u64,
    dropped: bool,
    latencies_us: Vec<u32>,
    last_at: Option<Instant>,
}

/// Reads relayed data lines until `expected` have come, the server closes,
/// or no data line arrives for `STALL_LIMIT` (other lines, an attack's say,
/// do not count). `senders` is the number of clients (for per-sender order
/// tracking).
fn receive(mut stream: TcpStream, senders: usize, expected: u64, epoch: Instant) -> Received {
    let mut got = Received::default();
    let mut last_line = Instant::now();
    let mut next_seq = vec![0usize; senders];
    let mut buf = vec![0u8; 64 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    while got.lines < expected && last_line.elapsed() < STALL_LIMIT {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => {
                got.dropped = true;
                break;
            }
            Ok(n) => n,
        };
        let now = Instant::now();
        let now_ns = now.duration_since(epoch).as_nanos();
        partial.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(end) = partial[start..].iter().position(|&b| b == b'\n') {
            let line = &partial[start..start + end];
            start += end + 1;
            let Some((sender, seq, sent_ns)) = data_fields(line) else {
                continue;
            };
            got.lines += 1;
            if sender < senders {
                if seq != next_seq[sender] {
                    got.out_of_order += 1;
                }
                next_seq[sender] = seq + 1;
            }
            got.latencies_us.push(micros(now_ns.saturating_sub(sent_ns)));
            got.last_at = Some(now);
            last_line = now;
        }
        partial.drain(..start);
    }
    got
}

/// A relayed data line, `cI: SEQ NANOS ...`: I, SEQ and NANOS; `None` for
/// anything else (a notice, an attack's say).
fn data_fields(line: &[u8]) -> Option<(usize, usize, u128)> {
    let text = String::from_utf8_lossy(line.strip_prefix(b"c")?);
    let (sender, body) = text.split_once(": ")?;
    let mut fields = body.split(' ');
    Some((sender.parse().ok()?, fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

/// Nanoseconds as whole microseconds, the unit latencies are kept in.
fn micros(nanos: u128) -> u32 {
    (nanos / 1000).min(u32::MAX as u128) as u32
}

/// Sleeps until `at`, if it is still to come.
fn sleep_until(at: Instant) {
    if let Some(wait) = at.checked_duration_since(Instant::now()) {
        thread::sleep(wait);
    }
}

fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[at] as f64 / 1000.0)
}

/// Adds up what every receiver saw.
fn summarize(all: Vec<Received>, expected_each: u64, start: Instant) -> Metrics {
    let mut latencies = Vec::new();
    let (mut lines, mut lost, mut ooo, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    let mut last = start;
    for r in all {
        lines += r.lines;
        lost += expected_each.saturating_sub(r.lines);
        ooo += r.out_of_order;
        dropped += u64::from(r.dropped);
        if let Some(at) = r.last_at {
            last = last.max(at);
        }
        latencies.extend(r.latencies_us);
    }
    latencies.sort_unstable();
    let mut m = spread(&latencies);
    let secs = last.duration_since(start).as_secs_f64();
    m.deliveries_per_sec = (secs > 0.0).then(|| lines as f64 / secs);
    m.lost = Some(lost);
    m.out_of_order = Some(ooo);
    m.dropped = Some(dropped);
    m
}

/// Figures with the p50, p99 and max of `sorted`, latencies or delays in
/// microseconds, sorted.
fn spread(sorted: &[u32]) -> Metrics {
    Metrics {
        p50_ms: percentile(sorted, 0.50),
        p99_ms: percentile(sorted, 0.99),
        max_ms: percentile(sorted, 1.0),
        ..Metrics::default()
    }
}

fn spawn<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<thread::JoinHandle<T>, String> {
    thread::Builder::new()
        .name(name)
        .stack_size(THREAD_STACK)
        .spawn(f)
        .map_err(|e| format!("cannot start a thread: {e}"))
}

/// `fanout NxM`: everyone sends M lines at once; everyone must get all others'.
fn fanout(server: &ServerUnderTest, clients: usize, lines: usize) -> Outcome {
    let joined = join_all(server.addr, clients).map_err(failed)?;
    eprintln!("  {clients} joined; sending");
    let epoch = Instant::now();
    let expected = ((clients - 1) * lines) as u64;
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut handles = Vec::new();
    for (i, client) in joined.into_iter().enumerate() {
        let barrier = Arc::clone(&barrier);
        handles.push(
            spawn(format!("c{i}"), move || {
                let mut writer = client.stream.try_clone().expect("clone a socket");
                barrier.wait();
                // Send on a helper thread so that this one reads at once: a
                // client that only reads after sending would itself be a slow
                // reader while its sends are blocked.
                let sender = thread::Builder::new()
                    .stack_size(THREAD_STACK)
                    .spawn(move || {
                        for seq in 0..lines {
                            if writer.write_all(data_line(seq, epoch).as_bytes()).is_err() {
                                break;
                            }
                        }
                    })
                    .expect("start a sender thread");
                let got = receive(client.stream, clients, expected, epoch);
                let _ = sender.join();
                got
            })
            .map_err(failed)?,
        );
    }
    barrier.wait();
    let start = Instant::now();
    let all: Vec<Received> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    Ok(summarize(all, expected, start))
}

/// `latency N R`: steady traffic, R lines/s from each of N clients, for 5 s.
fn latency(server: &ServerUnderTest, clients: usize, rate: u32) -> Outcome {
    let joined = join_all(server.addr, clients).map_err(failed)?;
    steady(joined, rate, 5)
}

/// Every client in `joined` sends `rate` lines a second for `seconds` and
/// reads everyone else's.
fn steady(joined: Vec<Client>, rate: u32, seconds: u32) -> Outcome {
    let clients = joined.len();
    eprintln!("  {clients} joined; sending {rate} lines/s each for {seconds} s");
    let epoch = Instant::now();
    let rounds = (rate * seconds) as usize;
    let expected = ((clients - 1) * rounds) as u64;
    let mut writers = Vec::new();
    let mut handles = Vec::new();
    for (i, client) in joined.into_iter().enumerate() {
        let writer = client.stream.try_clone().map_err(|e| failed(e.to_string()))?;
        // A server that stops reading must not hold the pacer for ever.
        writer.set_write_timeout(Some(STALL_LIMIT)).map_err(|e| failed(e.to_string()))?;
        writers.push(writer);
        handles.push(
            spawn(format!("c{i}"), move || receive(client.stream, clients, expected, epoch))
                .map_err(failed)?,
        );
    }
    // One pacer sends every line at its planned time; client k's lines are
    // spread evenly inside each round so the load is smooth.
    let start = Instant::now();
    let round = Duration::from_secs(1) / rate;
    for seq in 0..rounds {
        for (k, writer) in writers.iter_mut().enumerate() {
            sleep_until(start + round * seq as u32 + round * k as u32 / clients as u32);
            // A failed send is a dropped client; its receiver reports it.
            let _ = writer.write_all(data_line(seq, epoch).as_bytes());
        }
    }
    let all: Vec<Received> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    Ok(summarize(all, expected, start))
}

/// The attacker's one address.
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// `attack N S`: N honest users chat while one address attacks (see the
/// top of this file). The attack threads stop when the honest traffic ends.
fn attack(server: &ServerUnderTest, honest: usize, seconds: u64) -> Outcome {
    let joined: Vec<Client> = (0..honest)
        .map(|i| join_from(Ipv4Addr::new(127, 0, 0, 10 + i as u8), server.addr, &format!("c{i}")))
        .collect::<Result<_, _>>()
        .map_err(failed)?;
    let slow = loopback::connect_with(Ipv4Addr::new(127, 0, 0, 9), server.addr, Some(64 * 1024))
        .map_err(|e| failed(format!("connect: {e}")))?;
    let slow = handshake(slow, "slow").map_err(failed)?;
    let stop = Arc::new(AtomicBool::new(false));
    let line = format!("{}\n", "x".repeat(1000));
    let private = format!("/msg c0 {}\n", "p".repeat(1000));
    let endless = "z".repeat(64 * 1024);
    // (kind, connections, name to join with or "", what to send again and again)
    let attacks: [(&str, usize, &str, String); 7] = [
        ("burst", 10, "bot", line.repeat(100)),
        ("private", 5, "pm", private.repeat(100)),
        ("churn", 1, "", String::new()),
        ("endless-before-name", 5, "", endless.clone()),
        ("endless-after-name", 5, "zz", endless),
        ("taken-name", 5, "", "c1\n".repeat(1000)),
        ("unnamed", 10, "", String::new()),
    ];
    let mut workers = Vec::new();
    for (kind, count, name, payload) in attacks {
        for k in 0..count {
            let (stop, payload) = (Arc::clone(&stop), payload.clone());
            let name = if name.is_empty() { String::new() } else { format!("{name}{k}") };
            let addr = server.addr;
            let work = move || attack_worker(addr, kind, &name, payload.as_bytes(), &stop);
            workers.push(spawn(format!("{kind}{k}"), work).map_err(failed)?);
        }
    }
    for i in 1..=12 {
        let (addr, stop) = (server.addr, Arc::clone(&stop));
        let flooder = join_from(Ipv4Addr::new(127, 0, 2, i), addr, &format!("fl{i}"));
        let flooder = flooder.map_err(failed)?;
        let work = move || drop(flood(flooder, slow::NOT_UTF8, &stop));
        workers.push(spawn(format!("fl{i}"), work).map_err(failed)?);
    }
    let (addr, stop_slow) = (server.addr, Arc::clone(&stop));
    let slow = spawn("slow".into(), move || read_slowly(slow, &stop_slow)).map_err(failed)?;
    let stop_student = Arc::clone(&stop);
    let student = move || tries_to_join(addr, |_| ATTACKER, "student", &stop_student);
    let student = spawn("student".into(), student).map_err(failed)?;
    let outcome = steady(joined, 2, seconds as u32);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    let note = format!(
        "slow reader: {}; a student on the attacker's address: {}",
        slow.join().unwrap_or_else(|_| "failed".into()),
        student.join().map_or_else(|_| "failed".into(), |tries| tries.to_string())
    );
    match outcome {
        Ok(metrics) => Ok(Metrics { note: Some(note), ..metrics }),
        Err(failure) => Err(Box::new((failure.0, format!("{}; {note}", failure.1)))),
    }
}

/// A joined connection floods lines of `filler` (`slow::flood_lines`)
/// until `stop`, reading and dropping all it is sent (one that stopped
/// reading would be let go as too slow); then it hangs up, as a script
/// that is stopped does. `Err` if the server closed it first.
fn flood(flooder: Client, filler: u8, stop: &AtomicBool) -> Result<(), String> {
    drain(&flooder.stream)?;
    let flooded = slow::flood_lines(&flooder.stream, filler, stop);
    // Both ways: the draining thread's read ends, and so does the
    // connection, even with lines of ours still queued in the kernel.
    let _ = flooder.stream.shutdown(Shutdown::Both);
    flooded.map_err(|e| format!("a flooder was cut off: {e}"))
}

/// Reads and drops all that `stream` is sent, on a thread of its own, until
/// the connection ends: a user who reads, and says nothing.
fn drain(stream: &TcpStream) -> Result<(), String> {
    let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
    // No timeout: a quiet room is no reason to stop reading.
    reader.set_read_timeout(None).map_err(|e| e.to_string())?;
    spawn("drain".into(), move || drop(std::io::copy(&mut reader, &mut std::io::sink())))?;
    Ok(())
}

/// The slow reader: reads at 40 KB/s until `stop`; says whether it was cut
/// off, how many flood lines it got and how many it missed (a gap in a
/// flooder's numbers).
fn read_slowly(slow: Client, stop: &AtomicBool) -> String {
    let (mut next, mut got, mut missed) = (BTreeMap::new(), 0u64, 0u64);
    let read = SlowLink::new().read(&slow.stream, |line| {
        let number = line
            .and_then(|line| line.split_once(": "))
            .and_then(|(name, rest)| Some((name, rest.split(' ').next()?.parse::<u64>().ok()?)));
        if let Some((name, seq)) = number {
            let expected: &mut u64 = next.entry(name.to_string()).or_default();
            missed += seq.saturating_sub(*expected);
            (*expected, got) = (seq + 1, got + 1);
        }
        stop.load(Ordering::Relaxed)
    });
    match read {
        Ok(()) => format!("stayed, {got} flood lines, {missed} missed"),
        Err(_) => format!("cut off after {got} lines"),
    }
}

/// What the tries to join of `tries_to_join` came to.
#[derive(Default)]
struct Tries {
    tries: u32,
    greeted: u32,
    joined: u32,
    /// How long each join took, from connecting to the welcome.
    join_us: Vec<u32>,
    /// Tries answered with a `! ` line instead of the greeting, and the
    /// first such line.
    refused: u32,
    refusal: Option<String>,
}

impl fmt::Display for Tries {
    /// `J of T tries joined (G greeted)`, how long the joins took, and the
    /// refusals.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} of {} tries joined ({} greeted)", self.joined, self.tries, self.greeted)?;
        let mut took = self.join_us.clone();
        took.sort_unstable();
        if let (Some(p50), Some(max)) = (percentile(&took, 0.5), percentile(&took, 1.0)) {
            write!(f, " in p50 {p50:.1} ms, max {max:.1} ms")?;
        }
        match &self.refusal {
            Some(line) => write!(f, ", {} refused (first: {line})", self.refused),
            None => Ok(()),
        }
    }
}

/// Tries to join every half second until `stop`, try K from the address
/// `source(K)` as `{name}K`, and leaves at once when welcomed. The name
/// goes before the greeting, as in `join`; a try waits at most
/// `STALL_LIMIT` for each answer.
fn tries_to_join(
    addr: SocketAddr,
    source: fn(u32) -> Ipv4Addr,
    name: &str,
    stop: &AtomicBool,
) -> Tries {
    let mut tried = Tries::default();
    while !stop.load(Ordering::Relaxed) {
        let (started, k) = (Instant::now(), tried.tries);
        tried.tries += 1;
        if let Ok(mut stream) = loopback::connect_with(source(k), addr, None) {
            let _ = stream.set_read_timeout(Some(STALL_LIMIT));
            let _ = stream.write_all(format!("{name}{k}\n/quit\n").as_bytes());
            let mut lines = BufReader::new(stream).lines().map_while(Result::ok);
            let first = lines.next().unwrap_or_default();
            tried.greeted += u32::from(first.as_bytes() == GREETING);
            if first.starts_with("! ") {
                tried.refused += 1;
                tried.refusal.get_or_insert(first);
            }
            if lines.next().is_some_and(|line| line.starts_with("* welcome ")) {
                tried.joined += 1;
                tried.join_us.push(micros(started.elapsed().as_nanos()));
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
    tried
}

/// One attacking connection: connects from the attacker's address (again
/// whenever the server closes it), joins as `name` unless it is empty, then
/// sends `payload` over and over without reading, until `stop`. `churn`
/// instead joins and quits in a loop, each time as someone new.
fn attack_worker(addr: SocketAddr, kind: &str, name: &str, payload: &[u8], stop: &AtomicBool) {
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let Ok(mut stream) = loopback::connect_with(ATTACKER, addr, None) else {
            thread::sleep(Duration::from_millis(50)); // refused: the address is full
            continue;
        };
        let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
        if kind == "unnamed" {
            // Hold the connection, nameless, until the server closes it.
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 256];
            while !stop.load(Ordering::Relaxed) {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break;
                    }
                    _ => {}
                }
            }
            continue;
        }
        if kind == "churn" {
            let _ = stream.write_all(format!("x{round}\n/quit\n").as_bytes());
            continue;
        }
        if !name.is_empty() && stream.write_all(format!("{name}\n").as_bytes()).is_err() {
            continue;
        }
        while !stop.load(Ordering::Relaxed) {
            match stream.write(payload) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break, // closed by the server: connect again
            }
        }
    }
}

/// How long the scripts of `attack-close` run before anyone tries to join:
/// long enough for each script's address to spend its allowance and, in a
/// server that kept the places of connections already closed, for those
/// to fill every place (as in the test `connect_and_close_cannot_keep_anyone_out`).
const SCRIPTS_WARM_UP: Duration = Duration::from_secs(3);

/// The first honest address, as in `attack`: a newcomer's first try in
/// `attack-close` (each try then from the next one), a watcher's elsewhere.
const HONEST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);

/// `attack-close R S`: scripts connect and close again and again while a
/// newcomer and a student try to join (see the top of this file).
fn attack_close(server: &ServerUnderTest, rate: usize, seconds: u64) -> Outcome {
    let (addr, stop) = (server.addr, Arc::new(AtomicBool::new(false)));
    let pace = |rate: usize| (rate > 0).then(|| Duration::from_secs(1) / rate as u32);
    let mut scripts = Vec::new();
    for i in 1..=17 {
        // The README's promise for a shared machine is 150 a second.
        let (source, pace) = match i {
            17 => (ATTACKER, pace(150)),
            i => (Ipv4Addr::new(127, 0, 3, i), pace(rate)),
        };
        let stop = Arc::clone(&stop);
        let script = move || connect_and_close(addr, source, pace, &stop);
        scripts.push(spawn(format!("script{i}"), script).map_err(failed)?);
    }
    let started = Instant::now();
    thread::sleep(SCRIPTS_WARM_UP);
    let stop_tries = Arc::new(AtomicBool::new(false));
    let (stop_new, stop_student) = (Arc::clone(&stop_tries), Arc::clone(&stop_tries));
    let fresh = |k| Ipv4Addr::from(u32::from(HONEST) + k);
    let newcomer = move || tries_to_join(addr, fresh, "new", &stop_new);
    let newcomer = spawn("newcomer".into(), newcomer).map_err(failed)?;
    let student = move || tries_to_join(addr, |_| ATTACKER, "student", &stop_student);
    let student = spawn("student".into(), student).map_err(failed)?;
    thread::sleep(Duration::from_secs(seconds));
    stop_tries.store(true, Ordering::Relaxed);
    let (newcomer, student) = (newcomer.join(), student.join());
    stop.store(true, Ordering::Relaxed);
    let (mut made, mut errors) = (0, 0);
    for script in scripts {
        let (m, e) = script.join().unwrap_or_default();
        (made, errors) = (made + m, errors + e);
    }
    let scripts_ran = started.elapsed().as_secs_f64();
    let (Ok(newcomer), Ok(student)) = (newcomer, student) else {
        return Err(failed("a thread trying to join panicked".into()));
    };
    let mut took: Vec<u32> = newcomer.join_us.iter().chain(&student.join_us).copied().collect();
    took.sort_unstable();
    let note = format!(
        "newcomers from fresh addresses: {newcomer}; a student on the attacker's address: \
         {student}; the scripts connected and closed {made} times ({:.0}/s), {errors} \
         connects failed",
        made as f64 / scripts_ran
    );
    Ok(Metrics { note: Some(note), ..spread(&took) })
}

/// A script that connects from `source` and closes at once, again and
/// again until `stop`: as fast as it can, or one every `pace`. Returns how
/// many connections it made, and how many connects failed (the kernel out
/// of ports for `source`, say).
fn connect_and_close(
    addr: SocketAddr,
    source: Ipv4Addr,
    pace: Option<Duration>,
    stop: &AtomicBool,
) -> (u64, u64) {
    let (start, mut made, mut errors) = (Instant::now(), 0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        // Dropped at once: nothing kept open, nothing sent.
        match loopback::connect_with(source, addr, None) {
            Ok(_) => made += 1,
            Err(_) => {
                errors += 1;
                thread::sleep(Duration::from_millis(1)); // not a spin
            }
        }
        if let Some(pace) = pace {
            sleep_until(start + pace * (made + errors) as u32);
        }
    }
    (made, errors)
}

/// An address's allowance with the server's default flood control (the
/// README): a burst of 100 lines, then 20 a second.
const ADDRESS_BURST: usize = 100;
const ADDRESS_RATE: usize = 20;

/// How long the student of `attack-after` types on once the flood is over.
const AFTER_FLOOD: Duration = Duration::from_secs(30);

/// How much longer than planned `attack-after` waits for the flood to be
/// over, and how long for the student's last lines once the typing stops.
const AFTER_PATIENCE: Duration = Duration::from_secs(60);

/// What the watcher of `attack-after` has seen so far.
#[derive(Default)]
struct Watched {
    /// The student's lines.
    typed: AtomicU64,
    /// The flooders' lines.
    flood_lines: AtomicU64,
}

/// `attack-after N S`: a student on the attacker's address types on after
/// a flood from there (see the top of this file).
fn attack_after(server: &ServerUnderTest, flooders: usize, seconds: u64) -> Outcome {
    let addr = server.addr;
    if !(1..64).contains(&flooders) {
        return Err(failed("attack-after takes 1 to 63 flooders (64 places an address)".into()));
    }
    let watcher = join_from(HONEST, addr, "watcher").map_err(failed)?;
    // Named `c0`, so that its lines read as data lines (`data_fields`).
    let student = join_from(ATTACKER, addr, "c0").map_err(failed)?;
    let mut others = Vec::new();
    for i in 0..flooders {
        others.push(join_from(ATTACKER, addr, &format!("f{i}")).map_err(failed)?);
    }
    for client in others.iter().chain([&student]) {
        drain(&client.stream).map_err(failed)?;
    }
    // The joins spent the address's allowance: let it grow back, so that
    // the flood starts from a full one.
    thread::sleep(Duration::from_secs((ADDRESS_BURST / ADDRESS_RATE) as u64));
    // What the allowance lets through in S seconds, shared among the
    // flooders: each writes its part at once, and the server takes it at
    // its pace. Flooding on for S seconds instead would leave the
    // flooders' kernel buffers full of lines that the server would go on
    // taking long after (a few hundred a flooder).
    let each = (ADDRESS_BURST + ADDRESS_RATE * seconds as usize).div_ceil(flooders);
    let payload: String = (0..each).map(|n| format!("{n} {}\n", "x".repeat(1000))).collect();
    let (epoch, watched) = (Instant::now(), Arc::new(Watched::default()));
    let (stop_typing, stop_watching) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (seen, stop) = (Arc::clone(&watched), Arc::clone(&stop_watching));
    let watcher = spawn("watcher".into(), move || watch_after(&watcher, epoch, &seen, &stop));
    let watcher = watcher.map_err(failed)?;
    let stop = Arc::clone(&stop_typing);
    let typing = spawn("c0".into(), move || type_every_second(&student.stream, epoch, &stop));
    let typing = typing.map_err(failed)?;
    for flooder in &others {
        let (mut stream, payload) =
            (flooder.stream.try_clone().map_err(|e| failed(e.to_string()))?, payload.clone());
        spawn("flooder".into(), move || drop(stream.write_all(payload.as_bytes())))
            .map_err(failed)?;
    }
    let total = (each * flooders) as u64;
    eprintln!("  {flooders} flooding {total} lines from the attacker's address");
    let flooded = || watched.flood_lines.load(Ordering::Relaxed) >= total;
    let over = wait_until(Duration::from_secs(seconds) + AFTER_PATIENCE, flooded);
    let flood_over = Instant::now();
    let flood_took = flood_over.duration_since(epoch).as_secs_f64();
    eprintln!(
        "  the flood over after {flood_took:.1} s; typing on for {} s",
        AFTER_FLOOD.as_secs()
    );
    thread::sleep(AFTER_FLOOD);
    stop_typing.store(true, Ordering::Relaxed);
    let typed = typing.join().unwrap_or(0);
    wait_until(AFTER_PATIENCE, || watched.typed.load(Ordering::Relaxed) >= typed as u64);
    stop_watching.store(true, Ordering::Relaxed);
    let (delays, watched) = watcher.join().map_err(|_| failed("the watcher panicked".into()))?;
    // Line K was typed K seconds after `epoch`: from the first whole second
    // after the flood was over on, they are after it.
    let first_after = flood_took.ceil() as usize;
    let (after, during): (Vec<_>, Vec<_>) =
        delays.into_iter().partition(|&(seq, _)| seq >= first_after);
    let sorted = |lines: Vec<(usize, u32)>| {
        let mut delays: Vec<u32> = lines.into_iter().map(|(_, us)| us).collect();
        delays.sort_unstable();
        delays
    };
    let (after, during) = (sorted(after), sorted(during));
    let typed_after = typed.saturating_sub(first_after);
    let within = after.iter().filter(|&&us| us <= 5_000_000).count();
    let secs = |v: Option<f64>| v.map_or("-".into(), |ms| format!("{:.1} s", ms / 1000.0));
    let mut note = format!(
        "{within} of {typed_after} lines typed after the flood came within 5 s; the {} typed \
         during it: p50 {}, max {}; the flood ({total} lines) took {flood_took:.1} s",
        first_after.min(typed),
        secs(percentile(&during, 0.5)),
        secs(percentile(&during, 1.0)),
    );
    if !over {
        note += " (not all its lines came)";
    }
    if let Err(why) = &watched {
        note += &format!("; the watcher: {why}");
    }
    drop(others); // silent, but there, to the end
    Ok(Metrics {
        lost: Some(typed_after.saturating_sub(after.len()) as u64),
        dropped: Some(u64::from(watched.is_err())),
        note: Some(note),
        ..spread(&after)
    })
}

/// The watcher of `attack-after`: reads until `stop`, counting the
/// flooders' lines and the student's; returns each of those lines'
/// number and delay, and whether it was cut off.
fn watch_after(
    watcher: &Client,
    epoch: Instant,
    watched: &Watched,
    stop: &AtomicBool,
) -> (Vec<(usize, u32)>, Result<(), String>) {
    let mut delays = Vec::new();
    let read = watch(&watcher.stream, stop, |line, at| {
        if let Some((0, seq, sent_ns)) = data_fields(line) {
            delays.push((seq, micros(at.duration_since(epoch).as_nanos().saturating_sub(sent_ns))));
            watched.typed.fetch_add(1, Ordering::Relaxed);
        } else if line.starts_with(b"f") {
            watched.flood_lines.fetch_add(1, Ordering::Relaxed);
        }
    });
    (delays, read)
}

/// Types a data line (`data_line`) a second on `stream`, the first at
/// `epoch`, until `stop` or a failed write; returns how many it typed.
fn type_every_second(mut stream: &TcpStream, epoch: Instant, stop: &AtomicBool) -> usize {
    let mut typed = 0;
    while !stop.load(Ordering::Relaxed) {
        if stream.write_all(data_line(typed, epoch).as_bytes()).is_err() {
            break;
        }
        typed += 1;
        sleep_until(epoch + Duration::from_secs(typed as u64));
    }
    typed
}

/// Waits until `done`, at most `limit`; says whether it came.
fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Reads `stream` line by line until `stop`, handing each line, without
/// its newline, to `seen` with when it was read. `Err` if the connection
/// ends first.
fn watch(
    stream: &TcpStream,
    stop: &AtomicBool,
    mut seen: impl FnMut(&[u8], Instant),
) -> Result<(), String> {
    stream.set_read_timeout(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
    let (mut reader, mut line) = (BufReader::with_capacity(64 * 1024, stream), Vec::new());
    while !stop.load(Ordering::Relaxed) {
        // A timeout keeps what was read of the line so far in `line`.
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return Err("closed by the server".into()),
            Ok(_) if line.ends_with(b"\n") => {
                seen(&line[..line.len() - 1], Instant::now());
                line.clear();
            }
            Ok(_) => {} // the end, mid-line: the next read says so
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Non-readers of `attack-nonreaders` on each address: well within
/// `--max-per-address`, and few enough that their joins fit in the
/// address's burst.
const NONREADERS_PER_ADDRESS: usize = 25;

/// The notice everyone gets when a user who stopped reading is let go.
const LET_GO: &[u8] = b" left (too slow: stopped reading)";

/// `attack-nonreaders N S`: N users who never read while one sender
/// floods (see the top of this file).
fn attack_nonreaders(server: &ServerUnderTest, clients: usize, seconds: u64) -> Outcome {
    let addr = server.addr;
    let watcher = join_from(HONEST, addr, "watcher").map_err(failed)?;
    let sender = join_from(Ipv4Addr::new(127, 0, 0, 11), addr, "sender").map_err(failed)?;
    let mut nonreaders = Vec::with_capacity(clients);
    for i in 0..clients {
        let block = u8::try_from(1 + i / NONREADERS_PER_ADDRESS).ok().filter(|&b| b < 255);
        let block = block.ok_or_else(|| failed("too many non-readers for 127.0.4.x".into()))?;
        let source = Ipv4Addr::new(127, 0, 4, block);
        nonreaders.push(join_from(source, addr, &format!("n{i}")).map_err(failed)?);
    }
    eprintln!("  {clients} joined and stopped reading; flooding for {seconds} s");
    let (stop, let_go) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (stop_watching, counted) = (Arc::clone(&stop), Arc::clone(&let_go));
    let watching = move || {
        let (mut times, mut flood_lines) = (Vec::new(), 0u64);
        let read = watch(&watcher.stream, &stop_watching, |line, at| {
            if line.starts_with(b"* n") && line.ends_with(LET_GO) {
                times.push(at);
                counted.fetch_add(1, Ordering::Relaxed);
            }
            flood_lines += u64::from(line.starts_with(b"sender: "));
        });
        (times, flood_lines, read)
    };
    let watching = spawn("watcher".into(), watching).map_err(failed)?;
    let (start, stop_flood) = (Instant::now(), Arc::clone(&stop));
    let flooding = spawn("sender".into(), move || flood(sender, b'x', &stop_flood));
    let flooding = flooding.map_err(failed)?;
    let mut m = Metrics::default();
    for second in 1..=seconds {
        sleep_until(start + Duration::from_secs(second));
        let queued = server.send_queue_bytes();
        let peak = m.peak_send_queue_kib.max(queued.map(|bytes| bytes / 1024));
        m.peak_send_queue_kib = peak;
        let rss = server.status_kib("VmRSS:").map_or("-".into(), |k| format!("{}", k / 1024));
        let queued = queued.map_or("-".into(), |b| format!("{}", b >> 20));
        let gone = let_go.load(Ordering::Relaxed);
        eprintln!("  {second} s: {rss} MiB, {queued} MiB in send queues, {gone} let go");
    }
    stop.store(true, Ordering::Relaxed);
    let flooded = flooding.join().unwrap_or_else(|_| Err("panicked".into()));
    let (times, flood_lines, read) =
        watching.join().map_err(|_| failed("the watcher panicked".into()))?;
    let since =
        |at: Option<&Instant>| at.map(|at| at.saturating_duration_since(start).as_secs_f64());
    let mut note = format!("let go: {} of {clients} non-readers", times.len());
    if let (Some(first), Some(last)) = (since(times.first()), since(times.last())) {
        note += &format!(", the first {first:.1} s and the last {last:.1} s into the flood");
    }
    note += &format!("; the watcher got {flood_lines} flood lines");
    for (who, result) in [("the sender", &flooded), ("the watcher", &read)] {
        if let Err(why) = result {
            note += &format!("; {who}: {why}");
        }
    }
    m.dropped = Some(u64::from(flooded.is_err()) + u64::from(read.is_err()));
    m.note = Some(note);
    drop(nonreaders);
    Ok(m)
}

/// One client as the pollers see it.
struct Polled {
    /// Its number: it joins as `c{id}`.
    id: usize,
    stream: TcpStream,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// `NAME\n`, to send as soon as the connection is made (`join`);
    /// `None` once sent, or from the start where the name went out with the
    /// connection (`idle`).
    name: Option<Vec<u8>>,
    /// Nothing more to read: the broadcast line of the last phase arrived,
    /// or the connection failed.
    done: bool,
}

/// Lines of one kind received by all clients together, and when the last
/// of them was read.
#[derive(Default)]
struct Tally {
    count: AtomicU64,
    /// Nanoseconds since `Shards::epoch`.
    last_ns: AtomicU64,
}

/// What the pollers share: each poller owns one shard of clients, and
/// takes newly connected ones from its `incoming` list (a separate lock,
/// so that connecting never waits for a poller's pass over its shard).
/// Counting lines over all clients, rather than per client, keeps the
/// scenarios correct whatever order the server puts the joins in.
struct Shards {
    incoming: Vec<Mutex<Vec<Polled>>>,
    stop: AtomicBool,
    epoch: Instant,
    greetings: Tally,
    /// `* welcome NAME; ...`, each client's proof that it joined.
    welcomes: Tally,
    /// `* ... joined` notices.
    joins: Tally,
    /// Copies of the one broadcast line.
    hellos: Tally,
    /// Connections closed, refused or broken before their last line.
    failed: AtomicU64,
    /// Why the first of them failed.
    first_failure: Mutex<Option<String>>,
}

impl Shards {
    fn count(&self, tally: &Tally, lines: u64) {
        if lines > 0 {
            tally.count.fetch_add(lines, Ordering::Relaxed);
            let at = self.epoch.elapsed().as_nanos() as u64;
            tally.last_ns.fetch_max(at, Ordering::Relaxed);
        }
    }

    fn fail(&self, client: &mut Polled, why: String) {
        client.done = true;
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_failure.lock().unwrap().get_or_insert(format!("c{}: {why}", client.id));
    }
}

/// The threads that poll the clients' nonblocking sockets, and what they
/// share; stopped when dropped.
struct Pollers {
    shards: Arc<Shards>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Pollers {
    fn start() -> Result<Pollers, String> {
        let shards = Arc::new(Shards {
            incoming: (0..POLLERS).map(|_| Mutex::new(Vec::new())).collect(),
            stop: AtomicBool::new(false),
            epoch: Instant::now(),
            greetings: Tally::default(),
            welcomes: Tally::default(),
            joins: Tally::default(),
            hellos: Tally::default(),
            failed: AtomicU64::new(0),
            first_failure: Mutex::new(None),
        });
        let mut pollers = Pollers { shards, threads: Vec::new() };
        for k in 0..POLLERS {
            let shards = Arc::clone(&pollers.shards);
            // On an error, dropping `pollers` stops those already started.
            pollers.threads.push(spawn(format!("poller{k}"), move || poll_shard(&shards, k))?);
        }
        Ok(pollers)
    }

    /// Hands a connected client to its poller (by its number, in turn).
    fn add(&self, client: Polled) {
        self.shards.incoming[client.id % POLLERS].lock().unwrap().push(client);
    }
}

impl Drop for Pollers {
    fn drop(&mut self) {
        self.shards.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The line client 0 sends to everyone in the last phase.
const HELLO: &[u8] = b"hello, everyone";

/// The server's first line on every connection (README, protocol).
const GREETING: &[u8] = b"* welcome to chatroom, please enter your name";

/// Lines of each kind in one read, counted locally so that the shared
/// tallies are touched once a read, not once a line (12.5 million join
/// notices in `idle 5000`).
#[derive(Default)]
struct Seen {
    greetings: u64,
    welcomes: u64,
    joins: u64,
    hellos: u64,
}

/// Reads whatever every client in `shard` has, counting greetings,
/// welcomes, join notices and copies of the broadcast line; first sends a
/// client's name, once its connection is made.
fn poll_shard(shards: &Shards, shard: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut clients: Vec<Polled> = Vec::new();
    while !shards.stop.load(Ordering::Relaxed) {
        let pass = Instant::now();
        clients.append(&mut shards.incoming[shard].lock().unwrap());
        for client in clients.iter_mut().filter(|c| !c.done) {
            if let Some(name) = &client.name {
                // WouldBlock while the connection is under way: next pass.
                // Then a few bytes into an empty send buffer go whole.
                match client.stream.write(name) {
                    Ok(n) if n == name.len() => client.name = None,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    Ok(_) => shards.fail(client, "could not send its name at once".into()),
                    Err(e) => shards.fail(client, format!("connect or send the name: {e}")),
                }
            }
            while !client.done {
                let n = match client.stream.read(&mut buf) {
                    Ok(0) => {
                        shards.fail(client, "closed by the server".into());
                        break;
                    }
                    Ok(n) => n,
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) =>
                    {
                        break; // nothing more for now
                    }
                    Err(e) => {
                        shards.fail(client, e.to_string());
                        break;
                    }
                };
                // Out of the client while its lines are seen, which may
                // mark it done.
                let mut partial = std::mem::take(&mut client.partial);
                partial.extend_from_slice(&buf[..n]);
                let mut seen = Seen::default();
                let mut start = 0;
                while let Some(end) = partial[start..].iter().position(|&b| b == b'\n') {
                    see_line(shards, client, &partial[start..start + end], &mut seen);
                    start += end + 1;
                }
                partial.drain(..start);
                client.partial = partial;
                shards.count(&shards.greetings, seen.greetings);
                shards.count(&shards.welcomes, seen.welcomes);
                shards.count(&shards.joins, seen.joins);
                shards.count(&shards.hellos, seen.hellos);
            }
        }
        // Rest as long as the pass took (at least 0.2 ms): a poller then
        // uses at most half a core, and the server under test keeps the
        // rest. A pass reads everything that arrived meanwhile, so resting
        // delays what is counted by at most one pass.
        thread::sleep(pass.elapsed().max(Duration::from_micros(200)));
    }
}

/// Counts one line from the server to a polled client; the broadcast line
/// is its last, a refusal its end.
fn see_line(shards: &Shards, client: &mut Polled, line: &[u8], seen: &mut Seen) {
    if line == GREETING {
        seen.greetings += 1;
    } else if line.starts_with(b"* welcome ") {
        seen.welcomes += 1;
    } else if line.ends_with(b" joined") {
        seen.joins += 1;
    } else if line.ends_with(HELLO) {
        seen.hellos += 1;
        // Its last line: later passes skip this client.
        client.done = true;
    } else if line.starts_with(b"! ") {
        // Refused (a full server, a taken name): it will not join.
        shards.fail(client, String::from_utf8_lossy(line).into_owned());
    }
}

/// Waits until `tally` counts `target` lines (`what`, for messages), a
/// connection fails, or `limit` passes; then returns when the last of those
/// lines was read.
fn wait_count(
    shards: &Shards,
    tally: &Tally,
    target: u64,
    what: &str,
    limit: Duration,
) -> Result<Instant, String> {
    let started = Instant::now();
    let mut told = started;
    while tally.count.load(Ordering::Relaxed) < target {
        let count = tally.count.load(Ordering::Relaxed);
        let failed = shards.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = shards.first_failure.lock().unwrap().clone().unwrap_or_default();
            return Err(format!(
                "{failed} connections failed ({first}); {count} of {target} {what}"
            ));
        }
        if started.elapsed() > limit {
            return Err(format!("only {count} of {target} {what} within {} s", limit.as_secs()));
        }
        // A slow server is still a measurement: say it is going on.
        if told.elapsed() > Duration::from_secs(10) {
            eprintln!("  {count} of {target} {what} so far");
            told = Instant::now();
        }
        thread::sleep(Duration::from_millis(1));
    }
    let last = tally.last_ns.load(Ordering::Relaxed);
    Ok(shards.epoch + Duration::from_nanos(last))
}

/// Client 0 (`sender`) sends one line; the time until the other `others`
/// clients all have it, in milliseconds.
fn one_line_to_all(shards: &Shards, mut sender: &TcpStream, others: u64) -> Result<f64, String> {
    let sent_at = Instant::now();
    sender.write_all(&[HELLO, b"\n"].concat()).map_err(|e| format!("send the line: {e}"))?;
    let last = wait_count(shards, &shards.hellos, others, "copies of the line", ONE_LINE_LIMIT)?;
    Ok(last.duration_since(sent_at).as_secs_f64() * 1000.0)
}

/// How long one line to everyone may take.
const ONE_LINE_LIMIT: Duration = Duration::from_secs(30);

/// How long each phase of `join` may take: the slowest build measured took
/// 240 s to welcome 5,000 users (issue 28).
const JOIN_LIMIT: Duration = Duration::from_secs(600);

/// `idle N`: many quiet users. Memory per user, and one line to all.
fn idle(server: &ServerUnderTest, clients: usize) -> Outcome {
    let pollers = Pollers::start().map_err(failed)?;
    let shards = &pollers.shards;
    let mut m = Metrics::default();
    let result = (|| {
        // Join one after another without waiting for each welcome: the
        // pollers read the answers. Every join is told to everyone already
        // there: N(N-1)/2 notices in all.
        let start = Instant::now();
        let mut sender = None;
        for i in 0..clients {
            let stream =
                TcpStream::connect(server.addr).map_err(|e| format!("connect {i}: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            (&stream)
                .write_all(format!("c{i}\n").as_bytes())
                .map_err(|e| format!("send name {i}: {e}"))?;
            if i == 0 {
                sender = Some(stream.try_clone().map_err(|e| e.to_string())?);
            }
            stream.set_nonblocking(true).map_err(|e| e.to_string())?;
            pollers.add(Polled { id: i, stream, partial: Vec::new(), name: None, done: false });
            if (i + 1) % 1000 == 0 {
                eprintln!("  {} connected", i + 1);
            }
        }
        eprintln!(
            "  {clients} connected in {:.2} s; waiting for the join notices",
            start.elapsed().as_secs_f64()
        );
        let notices = (clients * (clients - 1) / 2) as u64;
        let last = wait_count(shards, &shards.joins, notices, "join notices", NOTICES_LIMIT)?;
        m.joins_seconds = Some(last.duration_since(start).as_secs_f64());
        eprintln!("  all joined and told in {:.2} s; idling", m.joins_seconds.unwrap_or(0.0));

        // Idle: let the server settle, then read its memory and threads.
        thread::sleep(Duration::from_secs(1));
        m.idle_rss_kib = server.status_kib("VmRSS:");
        m.idle_threads = server.status_kib("Threads:");
        if let (Some(idle), Some(base)) = (m.idle_rss_kib, server.start_rss_kib) {
            m.idle_kib_per_client = Some(idle.saturating_sub(base) as f64 / clients as f64);
        }

        // One line from client 0 must reach the other N-1.
        let sender = sender.ok_or("no clients")?;
        m.one_line_ms = Some(one_line_to_all(shards, &sender, (clients - 1) as u64)?);
        Ok(())
    })();
    m.dropped = Some(shards.failed.load(Ordering::Relaxed));
    match result {
        Ok(()) => Ok(m),
        Err(why) => Err(Box::new((m, why))),
    }
}

/// How long the join notices of `idle` may take to arrive.
const NOTICES_LIMIT: Duration = Duration::from_secs(120);

/// The source address of client `i` in `join-spread`: 250 to each of
/// 127.0.1.x, 127.0.2.x and so on (the last byte 1 to 250, clear of .0 and
/// .255), one machine each.
fn spread_address(i: usize) -> Result<Ipv4Addr, String> {
    let block = u8::try_from(1 + i / 250).ok().filter(|&b| b < 255);
    let block = block.ok_or("join-spread takes at most 63,500 clients")?;
    Ok(Ipv4Addr::new(127, 0, block, 1 + (i % 250) as u8))
}

/// `join N`, `join-spread N`: a class starting together. Every connection
/// is opened at once (nonblocking, from one thread, none waiting for the
/// last), from 127.0.0.1, or with `spread` each from its own address.
///
/// Each sends its name as soon as its connection is made, before the
/// greeting, as issue 28's load generator did. Waiting for the greeting
/// first can wait for ever: past the server's listen queue (128, std's),
/// the kernel answers with a SYN cookie, the connection is made on the
/// client's side only, and the server learns of it from the client's first
/// bytes, which a client waiting to be greeted never sends (seen here: up
/// to 12% of the clients of `join 1000`, half of `join 3000`).
fn join_at_once(server: &ServerUnderTest, clients: usize, spread: bool) -> Outcome {
    let pollers = Pollers::start().map_err(failed)?;
    let shards = &pollers.shards;
    let mut m = Metrics::default();
    let result = (|| {
        let start = Instant::now();
        let since = |at: Instant| at.duration_since(start).as_secs_f64();
        let mut sender = None;
        for i in 0..clients {
            let source = if spread { Some(spread_address(i)?) } else { None };
            let stream = loopback::open(source, server.addr, &[], true)
                .map_err(|e| format!("connect {i}: {e}"))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            if i == 0 {
                sender = Some(stream.try_clone().map_err(|e| e.to_string())?);
            }
            let name = Some(format!("c{i}\n").into_bytes());
            pollers.add(Polled { id: i, stream, partial: Vec::new(), name, done: false });
        }
        eprintln!("  {clients} connections opened in {:.2} s", start.elapsed().as_secs_f64());
        let n = clients as u64;
        let greeted = wait_count(shards, &shards.greetings, n, "greetings", JOIN_LIMIT)?;
        m.greeted_seconds = Some(since(greeted));
        let welcomed = wait_count(shards, &shards.welcomes, n, "welcomes", JOIN_LIMIT)?;
        m.all_joined_seconds = Some(since(welcomed));
        eprintln!(
            "  all greeted in {:.2} s, all joined in {:.2} s; waiting for the join notices",
            since(greeted),
            since(welcomed)
        );
        // Each newcomer is told to everyone welcomed before it: N(N-1)/2
        // notices, whatever the order.
        let notices = n * (n - 1) / 2;
        let told = wait_count(shards, &shards.joins, notices, "join notices", JOIN_LIMIT)?;
        m.joins_seconds = Some(since(told));
        // Let the server settle, so the line is not measured behind the
        // last of the join storm.
        thread::sleep(Duration::from_secs(1));
        let sender = sender.ok_or("no clients")?;
        m.one_line_ms = Some(one_line_to_all(shards, &sender, n - 1)?);
        // The server's CPU before anyone leaves: N leaving at once is a
        // storm of its own (each is told to all), not what this measures.
        m.cpu_seconds = server.cpu_seconds();
        busiest_thread(server, &mut m);
        Ok(())
    })();
    m.dropped = Some(shards.failed.load(Ordering::Relaxed));
    match result {
        Ok(()) => Ok(m),
        Err(why) => Err(Box::new((m, why))),
    }
}

/// Fills in the server's busiest thread, and prints the CPU of each kind
/// of thread (a name without its number: `reader-12` is a `reader`). Read
/// while every client is still connected: a thread that has ended is no
/// longer listed.
fn busiest_thread(server: &ServerUnderTest, m: &mut Metrics) {
    let threads = server.thread_cpu_seconds();
    if let Some((name, cpu)) = threads.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        (m.busiest_thread, m.busiest_thread_cpu) = (Some(name.clone()), Some(*cpu));
    }
    let mut kinds: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for (name, cpu) in &threads {
        let kind = name.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('-');
        let (count, total) = kinds.entry(kind).or_default();
        (*count, *total) = (*count + 1, *total + cpu);
    }
    let kinds: Vec<String> =
        (kinds.iter()).map(|(kind, (count, cpu))| format!("{kind} x{count} {cpu:.2}")).collect();
    if !kinds.is_empty() {
        eprintln!("  server CPU s by thread: {}", kinds.join(", "));
    }
}

fn fmt_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The table's columns: a heading and how to show a row's figure.
/// A column of the table: its heading, and how to show a row's figure.
type Column = (&'static str, fn(&Metrics) -> String);

fn columns() -> Vec<Column> {
    vec![
        ("deliv/s", |m| fmt_opt(m.deliveries_per_sec.map(|v| format!("{v:.0}")))),
        ("lost", |m| fmt_opt(m.lost)),
        ("ooo", |m| fmt_opt(m.out_of_order)),
        ("dropped", |m| fmt_opt(m.dropped)),
        ("p50 ms", |m| fmt_opt(m.p50_ms.map(|v| format!("{v:.3}")))),
        ("p99 ms", |m| fmt_opt(m.p99_ms.map(|v| format!("{v:.3}")))),
        ("max ms", |m| fmt_opt(m.max_ms.map(|v| format!("{v:.3}")))),
        ("cpu s", |m| fmt_opt(m.cpu_seconds.map(|v| format!("{v:.2}")))),
        ("busiest thread", |m| match (&m.busiest_thread, m.busiest_thread_cpu) {
            (Some(name), Some(cpu)) => format!("{name} {cpu:.2}"),
            _ => "-".into(),
        }),
        ("peak MiB", |m| fmt_opt(m.peak_rss_kib.map(|v| format!("{:.1}", v as f64 / 1024.0)))),
        ("sendq MiB", |m| {
            fmt_opt(m.peak_send_queue_kib.map(|v| format!("{:.1}", v as f64 / 1024.0)))
        }),
        ("idle KiB/cl", |m| fmt_opt(m.idle_kib_per_client.map(|v| format!("{v:.1}")))),
        ("threads", |m| fmt_opt(m.idle_threads)),
        ("greeted s", |m| fmt_opt(m.greeted_seconds.map(|v| format!("{v:.2}")))),
        ("all joined s", |m| fmt_opt(m.all_joined_seconds.map(|v| format!("{v:.2}")))),
        ("joins s", |m| fmt_opt(m.joins_seconds.map(|v| format!("{v:.2}")))),
        ("1 line ms", |m| fmt_opt(m.one_line_ms.map(|v| format!("{v:.1}")))),
        ("note", |m| m.note.clone().unwrap_or_default()),
    ]
}

fn print_table(rows: &[(String, String, Metrics)]) {
    let cols = columns();
    let mut table: Vec<Vec<String>> = vec![
        ["scenario", "server"]
            .iter()
            .map(|s| s.to_string())
            .chain(cols.iter().map(|(h, _)| h.to_string()))
            .collect(),
    ];
    for (scenario, server, m) in rows {
        let mut row = vec![scenario.clone(), server.clone()];
        row.extend(cols.iter().map(|(_, f)| f(m)));
        table.push(row);
    }
    let widths: Vec<usize> =
        (0..table[0].len()).map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    for row in &table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c < 2 || c + 1 == row.len() {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            } else {
                let _ = write!(line, "{cell:>w$}  ", w = widths[c]);
            }
        }
        println!("{}", line.trim_end());
    }
}

fn to_json(rows: &[(String, String, Metrics)]) -> String {
    let num = |v: Option<f64>| v.map_or("null".into(), |v| format!("{v}"));
    let int = |v: Option<u64>| v.map_or("null".into(), |v| v.to_string());
    let mut out = String::from("[\n");
    for (i, (scenario, server, m)) in rows.iter().enumerate() {
        let mut fields = BTreeMap::new();
        fields.insert("deliveries_per_sec", num(m.deliveries_per_sec));
        fields.insert("lost", int(m.lost));
        fields.insert("out_of_order", int(m.out_of_order));
        fields.insert("dropped", int(m.dropped));
        fields.insert("p50_ms", num(m.p50_ms));
        fields.insert("p99_ms", num(m.p99_ms));
        fields.insert("max_ms", num(m.max_ms));
        fields.insert("cpu_seconds", num(m.cpu_seconds));
        fields.insert("peak_rss_kib", int(m.peak_rss_kib));
        fields.insert("peak_send_queue_kib", int(m.peak_send_queue_kib));
        fields.insert("idle_rss_kib", int(m.idle_rss_kib));
        fields.insert("idle_kib_per_client", num(m.idle_kib_per_client));
        fields.insert("idle_threads", int(m.idle_threads));
        fields.insert("joins_seconds", num(m.joins_seconds));
        fields.insert("one_line_ms", num(m.one_line_ms));
        fields.insert("greeted_seconds", num(m.greeted_seconds));
        fields.insert("all_joined_seconds", num(m.all_joined_seconds));
        fields.insert(
            "busiest_thread",
            m.busiest_thread.as_ref().map_or("null".into(), |n| format!("{n:?}")),
        );
        fields.insert("busiest_thread_cpu_seconds", num(m.busiest_thread_cpu));
        fields.insert("note", m.note.as_ref().map_or("null".into(), |n| format!("{n:?}")));
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        let _ = writeln!(
            out,
            "  {{\"scenario\": {scenario:?}, \"server\": {server:?}, {}}}{}",
            body.join(", "),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    out.push_str("]\n");
    out
}
