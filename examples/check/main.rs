//! check: grades a chat server against chatroom's wire protocol (README, "The
//! wire protocol") over real sockets, and prints a report card: a line per
//! rule, PASS or FAIL (with what was sent, expected and got), or "not tested
//! here" (and why), then a score. Std only, like the rest. Run it from the
//! repository:
//!
//! ```sh
//! cargo run --example check -- --server 'python3 my_server.py {port}'
//! cargo run --example check -- --server 'target/release/chatroom server --port 0'
//! cargo run --example check -- --addr 192.168.1.20:1918
//! ```
//!
//! The files, in the order a reader meets them:
//! - main.rs: the command line, and the report card;
//! - server.rs: the server under test, started afresh for each rule;
//! - rules.rs: what every rule shares (its room, `Ctx`; its outcome);
//! - handshake.rs, room.rs, wire.rs, robustness.rs, optional.rs: the
//!   rules, a file per group of the README's protocol, each rule a
//!   function next to the README's words it applies;
//! - class.rs: a whole class graded at once, one table.

mod class;
mod handshake;
mod optional;
mod robustness;
mod room;
mod rules;
mod server;
mod wire;

// Only the parts of `examples/support/` this crate uses in full: any other
// would be dead code here.
#[path = "../support"]
mod support {
    pub mod launch;
    pub mod loopback;
    pub mod peer;
}

use std::process::ExitCode;
use std::time::Duration;

use rules::{Ctx, Group, Miss, Rule};
use server::{Server, Target};
use support::peer::{self, Peer};

const USAGE: &str = "\
Usage: check (--server 'CMD' | --addr HOST:PORT) [--only GROUP,...] [--rule WORDS]...
             [--wait SECS]
       check --class FILE [--json FILE] [--limit SECS] [--only GROUP,...] [--wait SECS]
       check --rules

Checks a chat server against chatroom's wire protocol and prints a report
card: PASS or FAIL for each rule, then how many hold. Exit 0 only if every
rule that counts was tested and holds.
Where the README fixes a line's words, they must match; where it gives only
a shape (a name's refusal, the lines of /help), any line of that shape
passes. A FAIL shows what was sent, expected and got, and the rule applied.
A rule the checker cannot judge from where it stands (--addr on another
machine) is 'not tested here', with the reason, and is not a PASS.

  --server 'CMD'   start the server with sh -c 'CMD', afresh for every rule,
                   so CMD is read as at a shell prompt (quotes, cd DIR &&
                   ...); {port} in CMD becomes a free port, and without it
                   CMD must print 'listening on IP:PORT' first (as chatroom
                   server --port 0)
  --addr HOST:PORT check a server already running, with nobody else in it
  --only GROUPS    check only these groups, by name, comma-separated:
                   handshake, room, wire, robustness, optional
  --rule WORDS     check only the rules whose name holds WORDS (again for
                   more: --rule history --rule '/msg')
  --wait SECS      how long to wait for each line [default: 2]
  --rules          list every rule, with the README's words it applies

A class, graded at once:

  --class FILE     check every server listed in FILE, one a line: NAME CMD
                   (CMD as for --server; lines starting with # are skipped),
                   and print one table: student, score per group, total,
                   first problem. A server that does not start, or hangs,
                   is a row with the reason, and the next one is checked
  --json FILE      also write the table's figures to FILE, as JSON
  --limit SECS     the most one server's check may take [default: 300]

The groups follow the README's protocol: the greeting and the name handshake,
the room and its commands, the wire (line ends, limits, cleaning), and
robustness (a client that stops reading, a reset, many clients at once).
Optional features (history, flood control, limits, the name deadline, the
teacher's console) are reported as present or not, never counted as
failures; those that need the server's own options are tested only if it
was started with them (chatroom: --max-clients 25 --name-timeout 2).";

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
    if args.iter().any(|a| a == "--rules") {
        for group in Group::ALL {
            for rule in group.rules() {
                println!("{}\t{}\t{}", group.name(), rule.name, rule.rule);
            }
        }
        return ExitCode::SUCCESS;
    }
    let options = match parse(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("error: {why}\n(try 'check --help')");
            return ExitCode::from(2);
        }
    };
    match check(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(why) => {
            eprintln!("error: {why}");
            ExitCode::FAILURE
        }
    }
}

/// What to check, and how: the command line, read.
struct Options {
    target: Target,
    groups: Vec<Group>,
    /// Only the rules whose name holds one of these, if any.
    names: Vec<String>,
    wait: Duration,
}

impl Options {
    fn picks(&self, rule: &Rule) -> bool {
        self.names.is_empty() || self.names.iter().any(|words| rule.name.contains(words.as_str()))
    }
}

fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let (mut target, mut groups, mut wait) = (None, Group::ALL.to_vec(), Duration::from_secs(2));
    let mut names = Vec::new();
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
            "--rule" => names.push(value()?),
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
    let options = Options { target, groups, names, wait };
    let picked = options.groups.iter().flat_map(|g| g.rules()).any(|r| options.picks(r));
    if !picked {
        return Err(format!("no rule in these groups is named {}", options.names.join(" or ")));
    }
    Ok(Some(options))
}

/// Runs the rules picked; prints the report card. `Ok(true)` if every rule
/// that counts was tested and holds.
fn check(options: &Options) -> Result<bool, String> {
    let (target, wait) = (&options.target, options.wait);
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
    let (mut held, mut counted, mut untested) = (0, 0, 0);
    for group in &options.groups {
        let rules: Vec<&Rule> = group.rules().iter().filter(|r| options.picks(r)).collect();
        if rules.is_empty() {
            continue;
        }
        let optional = *group == Group::Optional;
        println!("\n{}{}", group.name(), if optional { " (not counted)" } else { "" });
        for rule in rules {
            let mut server = Server::start(target, wait)?;
            if !crowded {
                crowded = !server.settle();
            }
            let console = server.launched.as_mut().and_then(|server| server.0.stdin.take());
            let mut ctx = Ctx::new(server.addr, wait, console);
            let outcome = (rule.check)(&mut ctx);
            drop(ctx);
            let mark = match (&outcome, optional) {
                (Ok(()), false) => "PASS",
                (Ok(()), true) => "yes ",
                (Err(Miss::Fail(_)), false) => "FAIL",
                (Err(Miss::Fail(_)), true) => "no  ",
                (Err(Miss::Untested(_)), _) => "----",
            };
            println!("  {mark}  {}", rule.name);
            match &outcome {
                Err(Miss::Fail(failure)) if !optional => {
                    for line in failure.to_string().lines() {
                        println!("        {line}");
                    }
                    println!("        rule:     {}", rule.rule);
                }
                Err(Miss::Untested(why)) => println!("        not tested here, because {why}"),
                _ => {}
            }
            if !optional {
                let tested = !matches!(outcome, Err(Miss::Untested(_)));
                counted += usize::from(tested);
                untested += usize::from(!tested);
                held += usize::from(outcome.is_ok());
            }
        }
    }
    match untested {
        0 => println!("\n{held} of {counted} rules hold"),
        n => println!("\n{held} of {counted} rules hold; {n} not tested here"),
    }
    Ok(held == counted && untested == 0)
}
