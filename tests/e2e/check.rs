//! The checker (`examples/check`) against our own server: every rule of the
//! README's wire protocol holds, the optional ones too. The protocol's rules
//! are written once, in the checker; the other modules pin what is
//! particular to this server (its options, its console, its limits).
//!
//! Then against `tests/e2e/readme_server.py`, a server written from the
//! README alone, and its variants (its switches): each other reading the
//! README allows passes, and each slip a student makes fails with a FAIL
//! that names it.

use std::process::{Command, Output, Stdio};

use crate::harness::{Server, example};

fn check(args: &[&str]) -> Output {
    example("check").args(args).output().expect("run the checker")
}

/// The card (stdout) of a check that must end with `status`.
fn card_of(args: &[&str], status: i32) -> String {
    let output = check(args);
    let card = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(status), "{card}{stderr}");
    card
}

/// `tests/e2e/readme_server.py` with these switches, as `--server` takes it.
fn readme_server(switches: &str) -> String {
    format!("python3 tests/e2e/readme_server.py {switches} {{port}}")
}

/// Every rule holds for `chatroom server`, and every optional feature is
/// there, given the options those need (a short name deadline, a low limit).
#[test]
fn every_rule_holds_for_chatroom() {
    let chatroom = assert_cmd::cargo::cargo_bin("chatroom");
    let server =
        format!("{} server --port 0 --max-clients 25 --name-timeout 2", chatroom.display());
    let card = card_of(&["--server", &server], 0);
    assert!(card.ends_with("\n33 of 33 rules hold\n"), "{card}");
    assert_eq!(card.lines().filter(|l| l.starts_with("  yes ")).count(), 9, "{card}");
}

/// Every rule's `rule:` line (`check --rules`) quotes the README: the
/// README decides every case the checker grades.
#[test]
fn every_rule_quotes_the_readme() {
    let readme = std::fs::read_to_string("README.md").expect("the README");
    // As the rules write it: a backtick as `"`, and any run of spaces and
    // line ends as one space.
    let readme = readme.replace('`', "\"").split_whitespace().collect::<Vec<_>>().join(" ");
    let rules = card_of(&["--rules"], 0);
    assert_eq!(rules.lines().count(), 33 + 9, "{rules}");
    for line in rules.lines() {
        let rule = line.rsplit('\t').next().unwrap();
        for quote in rule.split(" ... ") {
            assert!(readme.contains(quote), "not in the README: {quote:?}\n(from {line})");
        }
    }
}

/// `--addr`: a server already running, shared by the rules. Each rule finds
/// the room empty; someone else in it is said first, and fails the rules
/// that count who is online.
#[test]
fn a_running_server_is_checked_by_address() {
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    let card_alone = card_of(&["--addr", &addr, "--only", "handshake"], 0);
    assert!(card_alone.contains("\n9 of 9 rules hold\n"), "{card_alone}");
    assert!(!card_alone.contains("not empty"), "{card_alone}");

    let _zed = server.join("zed");
    let card = card_of(&["--addr", &addr, "--rule", "welcomed"], 1);
    let note = "(the room is not empty and quiet: rules that count who is online will fail)";
    assert!(card.contains(&format!("\n{note}\n")), "{card}");
    assert!(card.contains("  FAIL  a name is welcomed with who is online, sorted\n"), "{card}");
}

/// One common way to write the report's server (`examples/report_server.py`),
/// graded as the README shows: it breaks rules, and each FAIL says what was
/// sent, expected and got.
#[test]
fn the_report_design_fails_with_what_was_sent_expected_and_got() {
    let server = "python3 examples/report_server.py {port}";
    // A generous wait: on a loaded machine a slow answer must not pass for
    // none (the one rule that waits in vain then takes 10 s).
    let card = card_of(&["--server", server, "--only", "handshake,wire", "--wait", "10"], 1);
    assert!(card.contains("\n6 of 19 rules hold\n"), "{card}");
    let fail = [
        "  FAIL  control characters are removed",
        "        sent:     alice> \\u{1b}[2Jred\\u{7}\\u{9}tab\\u{7f} \\u{9b}csi\\u{0}\\u{d}",
        "        expected: alice: [2Jred tab csi",
        "        got:      alice: \\u{1b}[2Jred\\u{7}\\u{9}tab\\u{7f} \\u{9b}csi\\u{0} (on bob's connection)",
    ];
    assert!(card.contains(&fail.join("\n")), "{card}");
}

/// A server that is not running is a clear error, exit 1.
#[test]
fn a_server_that_is_not_there_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = check(&["--addr", &format!("127.0.0.1:{port}")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!("error: cannot connect to 127.0.0.1:{port}: ")),
        "{stderr}"
    );
    assert!(stderr.trim_end().ends_with("(is the server running?)"), "{stderr}");
}

/// A server command that ends at once (a typo, a missing file) is said to
/// have ended, with its status and its last lines on stderr. The command
/// is run by the shell, as typed: `;` and `>&2` mean what they mean there.
#[test]
fn a_server_that_ends_at_once_says_why() {
    let server = "echo starting >&2; echo 'no such file: srv.py' >&2; exit 3; {port}";
    let output = check(&["--server", server]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let why = "ended at once (exit status: 3), saying on stderr: starting | no such file: srv.py";
    assert_eq!(stderr, format!("error: the server ({server}) {why}\n"));
}

/// `--addr` on a server used before, whose history newcomers are shown:
/// those old lines do not make the room look busy, and the history rule
/// finds its own line among them. What needs the console is "not tested
/// here", with the reason.
#[test]
fn a_used_server_with_history_is_checked_by_address() {
    let server = Server::start(&[]);
    let mut al = server.join("al");
    al.send("said long before");
    al.send("/quit");
    al.expect("* bye al, see you soon");
    let rules = ["--rule", "history", "--rule", "/say"];
    let card = card_of(&[&["--addr", &server.addr.to_string()][..], &rules].concat(), 0);
    assert!(!card.contains("not empty"), "{card}");
    assert!(card.contains("\n  yes   history: newcomers see what was said\n"), "{card}");
    let console = [
        "  ----  the console: /say reaches everyone",
        "        not tested here, because the console is the server's stdin: only a server \
         the checker starts (--server) has one it can type in",
    ];
    assert!(card.contains(&console.join("\n")), "{card}");
    assert!(card.ends_with("\n0 of 0 rules hold\n"), "{card}");
}

/// A server that never greets is said to, once, before the rules that all
/// fail for it; a failure with nothing sent yet says so.
#[test]
fn a_server_that_never_greets_is_said_to() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    // Accepts (the kernel's queue does) and says nothing.
    let card = card_of(&["--addr", &addr, "--rule", "greeting", "--wait", "0.2"], 1);
    let note = "(no greeting on connecting, got nothing within 0.2 s (on client's connection): \
                every rule starts with it, and fails)";
    assert!(card.contains(&format!("\n{note}\n")), "{card}");
    assert!(card.contains("\n        sent:     (nothing yet: just connected)\n"), "{card}");
    drop(silent);
}

/// A server written from the README's protocol alone (`tests/e2e/readme_server.py`),
/// which words its name refusals and its `/help` its own way, as the README
/// allows: every rule holds. The checker demands what the README says, no
/// more.
#[test]
fn a_server_that_differs_only_where_the_readme_allows_passes() {
    // The optional features it lacks would each wait the whole 10 s.
    let counted = "handshake,room,wire,robustness";
    let card = card_of(&["--server", &readme_server(""), "--only", counted, "--wait", "10"], 0);
    assert!(card.ends_with("\n33 of 33 rules hold\n"), "{card}");
}

/// Other readings the README allows pass: a queue of 64 KiB per user (the
/// least it asks for), and `/msg NAME` looked up before its text is.
#[test]
fn a_64_kib_queue_and_msg_looked_up_first_pass() {
    let only = ["--only", "room,robustness", "--wait", "10"];
    let card = card_of(&[&["--server", &readme_server("--queue-kib 64")][..], &only].concat(), 0);
    assert!(card.ends_with("\n14 of 14 rules hold\n"), "{card}");
    let card = card_of(&["--server", &readme_server("--lookup-first"), "--rule", "/msg"], 0);
    assert!(card.ends_with("\n3 of 3 rules hold\n"), "{card}");
}

/// The report's server with flood control added (`--paced`: 100 lines at
/// once, then 20 a second per address) still holds its lock while it writes:
/// the stall rule fails it, quoting the rule. (Our server passes it in
/// `every_rule_holds_for_chatroom`.)
#[test]
fn a_paced_lock_and_sendall_server_fails_the_stall_rule() {
    let server = "python3 examples/report_server.py --paced {port}";
    let card = card_of(&["--server", server, "--only", "robustness", "--wait", "5"], 1);
    let fail = [
        "  FAIL  one who stops reading stalls nobody",
        "        sent:     alice> alice",
        "        expected: alice welcomed (sleeper stopped reading; nobody waits for them)",
        "        got:      nothing within 5 s (on alice's connection): everyone waits for sleeper, \
         who stopped reading",
        "        rule:     A user who stops reading delays nobody else",
    ];
    assert!(card.contains(&fail.join("\n")), "{card}");
}

/// The README's server, but writing to every client under its lock with a
/// blocking send (and paced): it fails the stall rule, and nothing else. On
/// an address that is not loopback (`0.0.0.0`, this machine by another
/// name) the checker cannot flood from several addresses: the rule is not
/// tested there, and says why, instead of passing.
#[test]
fn a_lock_and_blocking_send_fails_the_stall_rule_and_is_untested_from_afar() {
    let card_here = card_of(&["--server", &readme_server("--blocking"), "--only", "robustness"], 1);
    assert!(card_here.contains("\n  FAIL  one who stops reading stalls nobody\n"), "{card_here}");
    assert!(card_here.ends_with("\n2 of 3 rules hold\n"), "{card_here}");

    let mut command = Command::new("python3");
    command.args(["tests/e2e/readme_server.py", "--blocking", "0"]);
    command.stdin(Stdio::piped()).stderr(Stdio::piped());
    let server = Server::spawn(command);
    let afar = format!("0.0.0.0:{}", server.addr.port());
    let card = card_of(&["--addr", &afar, "--only", "robustness"], 1);
    let untested = [
        "  ----  one who stops reading stalls nobody".to_string(),
        format!(
            "        not tested here, because this rule floods from six addresses of its own \
             (127.0.0.10 and up), and 0.0.0.0 is not a loopback address: the server may be on \
             another machine, and every connection comes from this one's address (a server on \
             this machine is checked at 127.0.0.1:{})",
            server.addr.port()
        ),
    ];
    assert!(card.contains(&untested.join("\n")), "{card}");
    assert!(card.ends_with("\n2 of 2 rules hold; 1 not tested here\n"), "{card}");
}

/// A server that sends a line back to its sender fails one rule for it,
/// named so; the rules that would otherwise trip over the echo (a refused
/// line's answer, a reset) pass, and its history is still found.
#[test]
fn an_echo_is_one_fail_named_as_such() {
    let server = readme_server("--echo --history 5");
    let card = card_of(&["--server", &server, "--only", "room,wire,robustness"], 1);
    let fail = [
        "  FAIL  a line is not echoed to its sender",
        "        sent:     alice> hello",
        "        expected: nothing back to alice: her line is for everyone else",
        "        got:      alice: hello (on alice's connection): the sender got its own line back",
    ];
    assert!(card.contains(&fail.join("\n")), "{card}");
    assert!(card.ends_with("\n23 of 24 rules hold\n"), "{card}");
    let card = card_of(&["--server", &server, "--rule", "history"], 0);
    assert!(card.contains("\n  yes   history: newcomers see what was said\n"), "{card}");
}

/// Names compared as typed: `ALICE` is let in beside `alice`, and the FAIL
/// names the rule.
#[test]
fn names_compared_as_typed_fail_the_taken_rule() {
    let card = card_of(&["--server", &readme_server("--case-names"), "--only", "handshake"], 1);
    let fail = [
        "  FAIL  a taken name is refused, ignoring case",
        "        sent:     client> ALICE",
        "        expected: ! <why>; try another",
        "        got:      * welcome ALICE; online (2): alice, ALICE (type /help for commands) \
         (on client's connection)",
        "        rule:     \"! <why>; try another\" | a name refused because it is taken",
    ];
    assert!(card.contains(&fail.join("\n")), "{card}");
}

/// Two slips on the line limit, each named by the limit's rule: closing
/// the connection after an over-long line, and counting the limit in
/// characters (513 `è` are 1,026 bytes, and pass for 513).
#[test]
fn slips_on_the_line_limit_are_named() {
    let rule = "        rule:     at most 1024 bytes (without the \"\\r\\n\"); a longer line is \
                not relayed, the sender gets \"! line too long (at most 1024 bytes); it was not \
                sent\" and stays connected";
    let card = card_of(&["--server", &readme_server("--drop-long"), "--rule", "1024 bytes"], 1);
    let dropped = [
        "  FAIL  1024 bytes pass, 1025 are refused",
        "        sent:     alice> 1025 characters, 1025 bytes; then: after",
        "        expected: alice: after (the line before it, too long, not relayed)",
        "        got:      * alice left (on bob's connection)",
        rule,
    ];
    assert!(card.contains(&dropped.join("\n")), "{card}");
    let card = card_of(&["--server", &readme_server("--chars"), "--rule", "1024 bytes"], 1);
    let counted = [
        "  FAIL  1024 bytes pass, 1025 are refused",
        "        sent:     alice> 513 characters, 1026 bytes; then: after",
        "        expected: alice: after (the line before it, too long, not relayed)",
        "        got:      alice: \\u{e8}\\u{e8}",
    ];
    assert!(card.contains(&counted.join("\n")), "{card}");
}

/// `--class FILE --json FILE`: four students, one table. Every row has a
/// reason: a score and its first problem, or why there is none (a server
/// that does not start shows its last lines on stderr); the JSON holds the
/// same figures. Each command is run by the shell (`cd DIR && ...`).
#[test]
fn a_class_is_graded_at_once_in_one_table_and_json() {
    let dir = std::env::temp_dir().join(format!("chatroom-class-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (class, json) = (dir.join("servers.txt"), dir.join("grades.json"));
    let chatroom = assert_cmd::cargo::cargo_bin("chatroom");
    let servers = format!(
        "# name, then the command\nana {} server --port 0\n\nbruno python3 examples/report_server.py {{port}}\ncarla echo 'cannot open server.py' >&2; exit 2; {{port}}\ndora cd tests/e2e && python3 readme_server.py --own-greeting {{port}}\n",
        chatroom.display()
    );
    std::fs::write(&class, servers).unwrap();
    let (class_arg, json_arg) = (class.to_str().unwrap(), json.to_str().unwrap());
    let only = ["--only", "handshake,wire", "--wait", "10", "--limit", "120"];
    let table = card_of(&[&["--class", class_arg, "--json", json_arg], &only[..]].concat(), 1);
    let rows: Vec<&str> = table.lines().filter(|l| !l.is_empty()).collect();
    let words = |row: &str| row.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        words(rows[0]),
        ["student", "handshake", "wire", "total", "first", "problem"],
        "{table}"
    );
    assert_eq!(words(rows[1]), ["ana", "9/9", "10/10", "19/19", "-"], "{table}");
    assert!(
        rows[2].ends_with(
            "3/9        3/10        6/19  a bad name is refused, and asked again: got * welcome \
             aaaaaa..."
        ),
        "{table}"
    );
    let carla = "carla    not graded: the server (echo 'cannot open server.py' >&2; exit 2; {port}) \
                 ended at once (exit status: 2), saying on stderr: cannot open server.py";
    assert_eq!(rows[3], carla, "{table}");
    assert!(
        rows[4].ends_with("0/9        0/10        0/19  no greeting: got * hello! what is your name? (on client's co..."),
        "{table}"
    );
    assert_eq!(rows.len(), 5, "{table}");

    // Read back by Python's json module: valid JSON, the same figures.
    let read = "import json, sys\nfor s in json.load(open(sys.argv[1]))['students']:\n    print(s['name'], s['held'], s['of'], s['groups'].get('handshake', {}).get('held'), s['error'] is None, (s['first_problem'] or '-')[:20])";
    let figures = Command::new("python3").args(["-c", read, json_arg]).output().unwrap();
    let figures = String::from_utf8_lossy(&figures.stdout);
    assert_eq!(
        figures,
        "ana 19 19 9 True -\nbruno 6 19 3 True a bad name is refuse\ncarla 0 19 None False the server (echo 'ca\ndora 0 19 0 True no greeting: got * h\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
