//! check: grades a chat server against chatroom's wire protocol (README, "The
//! wire protocol") over real sockets, and prints a report card: a line per
//! rule, PASS or FAIL (with what was sent, expected and got), then a score.
//! Std only, like the rest. Run it from the repository:
//!
//! ```sh
//! cargo run --example check -- --server 'python3 my_server.py {port}'
//! cargo run --example check -- --server 'target/release/chatroom server --port 0'
//! cargo run --example check -- --addr 192.168.1.20:1918
//! ```

mod class;
mod rules;

// Only the parts of `examples/support/` this crate uses in full: any other
// would be dead code here.
#[path = "../support"]
mod support {
    pub mod launch;
    pub mod loopback;
    pub mod peer;
}

use std::io::BufRead;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rules::{Ctx, Group, RULES};
use support::launch::Launched;
use support::peer::{self, Peer};

const USAGE: &str = "\
Usage: check (--server 'CMD' | --addr HOST:PORT) [--only GROUP,...] [--wait SECS]
       check --class FILE [--json FILE] [--limit SECS] [--only GROUP,...] [--wait SECS]

Checks a chat server against chatroom's wire protocol and prints a report
card: PASS or FAIL for each rule, then how many hold. Exit 0 if all hold.
Where the README fixes a line's words, they must match; where it gives only
a shape (a name's refusal, the lines of /help), any line of that shape
passes. A FAIL shows what was sent, expected and got, and the rule applied.

  --server 'CMD'   start the server with CMD, afresh for every rule; {port}
                   in CMD becomes a free port, and without it CMD must print
                   'listening on IP:PORT' first (as chatroom server --port 0)
  --addr HOST:PORT check a server already running, with nobody else in it
  --only GROUPS    check only these groups, by name, comma-separated:
                   handshake, room, wire, robustness, optional
  --wait SECS      how long to wait for each line [default: 2]

A class, graded at once:

  --class FILE     check every server listed in FILE, one a line: NAME CMD
                   (CMD as for --server; lines starting with # are skipped),
                   and print one table: student, score per group, total. A
                   server that does not start, or hangs, is a row with the
                   reason, and the next one is checked
  --json FILE      also write the table's figures to FILE, as JSON
  --limit SECS     the most one server's check may take [default: 300]

The groups follow the README's protocol: the greeting and the name handshake,
the room and its commands, the wire (line ends, limits, cleaning), and
robustness (a client that stops reading, a reset, many clients at once).
Optional features (history, flood control, limits per address, the teacher's
console) are reported as present or not, never counted as failures.";

/// Where the server under test is.
enum Target {
    /// A command to start afresh for every rule.
    Command(String),
    /// A server already running.
    Addr(SocketAddr),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "-h" || a == "--help") {
        match class::run(&args) {
            None => {}
            Some(Ok(all)) => return if all { ExitCode::SUCCESS } else { ExitCode::FAILURE },
            Some(Err(why)) => {
                eprintln!("error: {why}\n(try 'check --help')");
                return ExitCode::from(2);
            }
        }
    }
    let parsed = parse(&args);
    let (target, groups, wait) = match parsed {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("error: {why}\n(try 'check --help')");
            return ExitCode::from(2);
        }
    };
    match check(&target, &groups, wait) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(why) => {
            eprintln!("error: {why}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<Option<(Target, Vec<Group>, Duration)>, String> {
    let (mut target, mut groups, mut wait) = (None, Group::ALL.to_vec(), Duration::from_secs(2));
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--server" => target = Some(Target::Command(value()?)),
            "--addr" => {
                let addr = value()?;
                let parsed = addr.parse().map_err(|_| format!("not HOST:PORT: {addr}"))?;
                target = Some(Target::Addr(parsed));
            }
            "--only" => {
                let names = value()?;
                let pick = |name: &str| Group::ALL.into_iter().find(|g| g.name() == name);
                groups = names
                    .split(',')
                    .map(|n| pick(n).ok_or(format!("no group {n}")))
                    .collect::<Result<_, _>>()?;
            }
            "--wait" => {
                let seconds = value()?;
                let seconds: f64 =
                    seconds.parse().map_err(|_| format!("not seconds: {seconds}"))?;
                wait = Duration::from_secs_f64(seconds.clamp(0.1, 60.0));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let target = target.ok_or("--server CMD or --addr HOST:PORT is needed")?;
    Ok(Some((target, groups, wait)))
}

/// Runs the rules of `groups`; prints the report card. `Ok(true)` if every
/// rule that counts holds.
fn check(target: &Target, groups: &[Group], wait: Duration) -> Result<bool, String> {
    let label = match target {
        Target::Command(cmd) => cmd.clone(),
        Target::Addr(addr) => addr.to_string(),
    };
    println!("chatroom protocol check: {label}");
    // A first server, to fail early and clearly if there is none; rules
    // that count who is online need an empty room.
    let first = Server::start(target, wait)?;
    let greets = Peer::open(first.addr, None, None, wait, Default::default())
        .map_err(|e| e.to_string())
        .and_then(|mut peer| peer.want(peer::GREETING).map_err(|failure| failure.got));
    if let Err(got) = greets {
        println!("(no greeting on connecting, got {got}: every rule starts with it, and fails)");
    }
    let mut crowded = !first.settle();
    if crowded {
        println!("(the room is not empty and quiet: rules that count who is online will fail)");
    }
    let (mut held, mut counted) = (0, 0);
    for group in groups {
        println!(
            "\n{}{}",
            group.name(),
            if *group == Group::Optional { " (not counted)" } else { "" }
        );
        for rule in RULES.iter().filter(|rule| rule.group == *group) {
            let mut server = Server::start(target, wait)?;
            if !crowded {
                crowded = !server.settle();
            }
            let console = server.launched.as_mut().and_then(|server| server.0.stdin.take());
            let spread = server.addr.ip().is_loopback() && cfg!(target_os = "linux");
            let mut ctx = Ctx::new(server.addr, wait, spread, console);
            let outcome = (rule.check)(&mut ctx);
            drop(ctx);
            let (mark, counts) = match (&outcome, rule.group) {
                (Ok(()), Group::Optional) => ("yes ", false),
                (Err(_), Group::Optional) => ("no  ", false),
                (Ok(()), _) => ("PASS", true),
                (Err(_), _) => ("FAIL", true),
            };
            println!("  {mark}  {}", rule.name);
            if let (Err(failure), true) = (&outcome, counts) {
                for line in failure.to_string().lines() {
                    println!("        {line}");
                }
                println!("        rule:     {}", rule.rule);
            }
            counted += usize::from(counts);
            held += usize::from(counts && outcome.is_ok());
        }
    }
    println!("\n{held} of {counted} rules hold");
    Ok(held == counted)
}

/// The server under test, for one rule: started afresh (and killed when
/// dropped), or the one already running.
struct Server {
    launched: Option<Launched>,
    addr: SocketAddr,
}

impl Server {
    fn start(target: &Target, wait: Duration) -> Result<Server, String> {
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
        // {port}: a port that was free a moment ago.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let words: Vec<String> =
            cmd.split_whitespace().map(|w| w.replace("{port}", &port.to_string())).collect();
        let (program, args) = words.split_first().ok_or("an empty --server command")?;
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::piped()).stderr(Stdio::null());
        let mut launched = Launched::start(&mut command)
            .map_err(|e| format!("cannot start the server ({cmd}): {e}"))?;
        let given = cmd.contains("{port}");
        let (addr, stdout) = if given {
            let stdout = launched.0.stdout.take().ok_or("no stdout")?;
            (([127, 0, 0, 1], port).into(), std::io::BufReader::new(stdout))
        } else {
            let started = launched.listening(Duration::from_secs(10));
            started
                .map_err(|e| format!("the server ({cmd}) {e}; or put {{port}} in the command"))?
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
                let why = format!("ended at once ({status}); run it by hand to see why");
                return Err(format!("the server ({cmd}) {why}"));
            }
            if Instant::now() > deadline {
                return Err(format!("the server ({cmd}) did not accept connections within 10 s"));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// A server shared by every rule (`--addr`): wait until the last rule's
    /// users have left and its lines stopped coming, so that the next rule
    /// finds the room empty and quiet. `false` if it stays otherwise.
    fn settle(&self) -> bool {
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
