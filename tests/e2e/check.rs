//! The checker (`examples/check`) against our own server: every rule of the
//! README's wire protocol holds, the optional ones too. The protocol's rules
//! are written once, in the checker; the other modules pin what is
//! particular to this server (its options, its console, its limits).

use std::process::Output;

use crate::harness::{Server, example};

fn check(args: &[&str]) -> Output {
    example("check").args(args).output().expect("run the checker")
}

/// Every rule holds for `chatroom server`, and every optional feature is
/// there.
#[test]
fn every_rule_holds_for_chatroom() {
    let server = format!("{} server --port 0", assert_cmd::cargo::cargo_bin("chatroom").display());
    let output = check(&["--server", &server]);
    let card = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{card}");
    assert!(card.contains("\n28 of 28 rules hold\n"), "{card}");
    assert_eq!(card.lines().filter(|l| l.starts_with("  yes ")).count(), 4, "{card}");
}

/// `--addr`: a server already running, shared by the rules. Each rule finds
/// the room empty; someone else in it is said first, and fails the rules
/// that count who is online.
#[test]
fn a_running_server_is_checked_by_address() {
    let server = Server::start(&[]);
    let addr = server.addr.to_string();
    let output = check(&["--addr", &addr, "--only", "handshake"]);
    let card = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{card}");
    assert!(card.contains("\n8 of 8 rules hold\n"), "{card}");
    assert!(!card.contains("not empty"), "{card}");

    let _zed = server.join("zed");
    let output = check(&["--addr", &addr, "--only", "handshake"]);
    let card = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{card}");
    let note = "(the room is not empty and quiet: rules that count who is online will fail)";
    assert!(card.contains(&format!("\n{note}\n")), "{card}");
    assert!(card.contains("  FAIL  a name is welcomed with who is online\n"), "{card}");
}

/// One common way to write the report's server (`examples/report_server.py`),
/// graded as the README shows: it
/// breaks rules, and each FAIL says what was sent, expected and got.
#[test]
fn the_report_design_fails_with_what_was_sent_expected_and_got() {
    let server = "python3 examples/report_server.py {port}";
    // A generous wait: on a loaded machine a slow answer must not pass for
    // none (the one rule that waits in vain then takes 10 s).
    let output = check(&["--server", server, "--only", "handshake,wire", "--wait", "10"]);
    let card = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{card}");
    assert!(card.contains("\n6 of 15 rules hold\n"), "{card}");
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
/// have ended, with its status, not to be slow to accept connections.
#[test]
fn a_server_that_ends_at_once_is_said_to() {
    let output = check(&["--server", "false {port}"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let why = "ended at once (exit status: 1); run it by hand to see why";
    assert_eq!(stderr, format!("error: the server (false {{port}}) {why}\n"));
}

/// `--addr` on a server used before, whose history newcomers are shown:
/// those old lines do not make the room look busy, and the history rule
/// finds its own line among them.
#[test]
fn a_used_server_with_history_is_checked_by_address() {
    let server = Server::start(&[]);
    let mut al = server.join("al");
    al.send("said long before");
    al.send("/quit");
    al.expect("* bye al, see you soon");
    let output = check(&["--addr", &server.addr.to_string(), "--only", "optional"]);
    let card = String::from_utf8_lossy(&output.stdout);
    assert!(!card.contains("not empty"), "{card}");
    assert!(card.contains("\n  yes   history: newcomers see what was said\n"), "{card}");
}

/// A server that never greets is said to, once, before the rules that all
/// fail for it; a failure with nothing sent yet says so.
#[test]
fn a_server_that_never_greets_is_said_to() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    // Accepts (the kernel's queue does) and says nothing.
    let output = check(&["--addr", &addr, "--only", "handshake", "--wait", "0.2"]);
    let card = String::from_utf8_lossy(&output.stdout);
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
    let server = "python3 tests/e2e/readme_server.py {port}";
    // The optional features it lacks would each wait the whole 10 s.
    let counted = "handshake,room,wire,robustness";
    let output = check(&["--server", server, "--only", counted, "--wait", "10"]);
    let card = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{card}");
    assert!(card.contains("\n28 of 28 rules hold\n"), "{card}");
}

/// The report's server with flood control added (`--paced`: 100 lines at
/// once, then 20 a second per address) still holds its lock while it writes:
/// the stall rule fails it, quoting the rule. (Our server passes it in
/// `every_rule_holds_for_chatroom`.)
#[test]
fn a_paced_lock_and_sendall_server_fails_the_stall_rule() {
    let server = "python3 examples/report_server.py --paced {port}";
    let output = check(&["--server", server, "--only", "robustness", "--wait", "5"]);
    let card = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{card}");
    let fail = [
        "  FAIL  one who stops reading stalls nobody",
        "        sent:     alice> still here?",
        "        expected: a line starting \"alice: still here?\"",
        "        got:      nothing within 5 s (on bob's connection)",
        "        rule:     a user who stops reading delays nobody else",
    ];
    assert!(card.contains(&fail.join("\n")), "{card}");
}

/// `--class FILE --json FILE`: three students, one table. A server that does
/// not start is a row with its reason, not the end of the run; the JSON
/// holds the same figures.
#[test]
fn a_class_is_graded_at_once_in_one_table_and_json() {
    let dir = std::env::temp_dir().join(format!("chatroom-class-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (class, json) = (dir.join("servers.txt"), dir.join("grades.json"));
    let chatroom = assert_cmd::cargo::cargo_bin("chatroom");
    let servers = format!(
        "# name, then the command\nana {} server --port 0\n\nbruno python3 examples/report_server.py {{port}}\ncarla ./no-such-server {{port}}\n",
        chatroom.display()
    );
    std::fs::write(&class, servers).unwrap();
    let (class_arg, json_arg) = (class.to_str().unwrap(), json.to_str().unwrap());
    let only = ["--only", "handshake,wire", "--wait", "10", "--limit", "120"];
    let output = check(&[&["--class", class_arg, "--json", json_arg], &only[..]].concat());
    let table = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{table}");
    let rows: Vec<&str> = table.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["student", "handshake", "wire", "total"],
        "{table}"
    );
    assert_eq!(
        rows[1].split_whitespace().collect::<Vec<_>>(),
        ["ana", "8/8", "7/7", "15/15"],
        "{table}"
    );
    assert_eq!(
        rows[2].split_whitespace().collect::<Vec<_>>(),
        ["bruno", "3/8", "3/7", "6/15"],
        "{table}"
    );
    assert!(
        rows[3].starts_with(
            "carla    not graded: cannot start the server (./no-such-server {port}): "
        ),
        "{table}"
    );
    assert_eq!(rows.len(), 4, "{table}");

    // Read back by Python's json module: valid JSON, the same figures.
    let read = "import json, sys\nfor s in json.load(open(sys.argv[1]))['students']:\n    print(s['name'], s['held'], s['of'], s['groups'].get('handshake', {}).get('held'), s['error'] is None)";
    let figures =
        std::process::Command::new("python3").args(["-c", read, json_arg]).output().unwrap();
    let figures = String::from_utf8_lossy(&figures.stdout);
    assert_eq!(figures, "ana 15 15 8 True\nbruno 6 15 3 True\ncarla 0 15 None False\n");
    let _ = std::fs::remove_dir_all(&dir);
}
