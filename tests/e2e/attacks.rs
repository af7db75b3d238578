//! A student with a script: attacks on the room through the real binary, each
//! from its own loopback address (127.0.0.2 the attacker, 127.0.0.10 and up
//! honest users), so that the per-address rules can be seen. Counts and
//! connection states only: how fast things happen is the benchmark's job.

use std::io::{ErrorKind, Write};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;

use crate::harness::{Conn, Log, PATIENCE, Server};

const ATTACKER: &str = "127.0.0.2";

/// Reads lines until `marker`, returning how many lines before it start with
/// `prefix`.
fn count_before(conn: &mut Conn, prefix: &str, marker: &str) -> usize {
    let mut count = 0;
    loop {
        let line = conn.read_line();
        if line == marker {
            return count;
        }
        count += usize::from(line.starts_with(prefix));
    }
}

/// A log nobody reads never stops the room: after thousands of logged
/// connections have filled the pipe, joins are still answered, a line still
/// relayed and `/who` still answered.
#[test]
fn unread_log_never_stops_the_room() {
    // Room for every connection below: a server whose log blocks keeps its
    // readers (and their places) stuck, and new connections would wait.
    let server = Server::start_with_log(&["--max-clients", "5000"], Log::Unread);
    // Each connection logs two lines or more; a pipe holds 64 KiB.
    for _ in 0..2000 {
        drop(server.connect_from(ATTACKER));
    }
    let mut alice = server.join_from("127.0.0.10", "alice");
    let mut bob = server.join_from("127.0.0.11", "bob");
    alice.expect("* bob joined");
    alice.send("still here");
    bob.expect("alice: still here");
    bob.send("/who");
    bob.expect("* online (2): alice, bob");
}

/// A closed log is never a panic: joins, chat and leaves go on.
#[test]
fn closed_log_never_stops_the_room() {
    let server = Server::start_with_log(&[], Log::Closed);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    bob.send("can you hear me?");
    alice.expect("bob: can you hear me?");
    bob.send("/quit");
    alice.expect("* bob left");
    let _carol = server.join("carol");
    alice.expect("* carol joined");
}

/// Ten connections from one address each send a burst of a hundred 1 KiB
/// lines: users who keep reading get every line, in order, and are never
/// cut off.
#[test]
fn readers_who_keep_reading_survive_any_permitted_burst() {
    let server = Server::start(&["--max-line-rate", "1000"]);
    let readers: Vec<Conn> =
        (0..2).map(|i| server.join_from(&format!("127.0.0.1{i}"), &format!("reader{i}"))).collect();
    let mut attackers: Vec<Conn> =
        (0..10).map(|i| server.join_from(ATTACKER, &format!("bot{i}"))).collect();
    let total = 10 * 100;
    let readers: Vec<_> = readers
        .into_iter()
        .map(|mut reader| {
            thread::spawn(move || {
                let mut seen = 0;
                while seen < total {
                    let line = reader.read_line();
                    assert!(!line.contains("left"), "a reader saw {line:?}");
                    seen += usize::from(line.starts_with("bot"));
                }
                reader.send("/who");
                reader.skip_to("* online (12)");
                reader // kept open until every reader is done: both count
            })
        })
        .collect();
    let text = "x".repeat(1000);
    let burst: String = (0..100).map(|i| format!("{i} {text}\n")).collect();
    for attacker in &mut attackers {
        attacker.send_raw(burst.as_bytes());
        // The attackers read too (and throw away): this test is about the
        // burst, not about connections that stop reading.
        let mut drain = attacker.stream.try_clone().unwrap();
        thread::spawn(move || std::io::copy(&mut drain, &mut std::io::sink()));
    }
    let _done: Vec<Conn> = readers
        .into_iter()
        .map(|r| r.join().expect("a reader got every line and stayed"))
        .collect();
}

/// Ten users, each from their own address, send a hundred private 1 KiB
/// lines to one user, who reads them all and is not cut off.
#[test]
fn a_victim_of_private_floods_who_reads_is_not_cut_off() {
    let server = Server::start(&["--max-line-rate", "1000"]);
    let mut victim = server.join_from("127.0.0.10", "victim");
    let mut senders: Vec<Conn> = (0..10)
        .map(|i| server.join_from(&format!("127.0.0.{}", 30 + i), &format!("s{i}")))
        .collect();
    let text = "p".repeat(1000);
    let flood: String = (0..100).map(|i| format!("/msg victim {i} {text}\n")).collect();
    for sender in &mut senders {
        sender.send_raw(flood.as_bytes());
    }
    let mut private = 0;
    while private < 10 * 100 {
        let line = victim.read_line();
        private += usize::from(line.contains(" (private): "));
    }
    victim.send("/who");
    victim.skip_to("* online (11)");
}

/// Many users who stopped reading, while others chat at the permitted pace:
/// the server's memory stays within the README's bound.
#[test]
fn users_who_stopped_reading_cost_bounded_memory() {
    let server = Server::start(&[]);
    let mut stalled = Vec::new();
    for i in 0..100 {
        stalled.push(server.join_from(&format!("127.0.0.{}", 20 + i % 4), &format!("idle{i}")));
    }
    let mut chatters: Vec<Conn> =
        (0..3).map(|i| server.join_from(&format!("127.0.0.1{i}"), &format!("chat{i}"))).collect();
    let text = "c".repeat(1000);
    let lines: String = (0..60).map(|i| format!("{i} {text}\n")).collect();
    for chatter in &mut chatters {
        chatter.send_raw(lines.as_bytes());
    }
    // chat0 reads everything the others sent: the room kept going.
    let mut heard = 0;
    while heard < 2 * 60 {
        heard += usize::from(chatters[0].read_line().starts_with("chat"));
    }
    let peak = server.peak_rss_kib();
    assert!(peak < 64 * 1024, "server peak RSS {peak} KiB");
}

/// With flood control off nothing paces the room, and only the outbox bound
/// holds memory: 20 users who stopped reading (with small receive buffers)
/// while one user sends 80 MB that another reads, 100 KB at a time (a reader
/// slower than the sender would be cut off too: nothing paces the sender).
/// A server that kept every line for them would pass 64 MiB; this one lets
/// them go ("too slow").
#[test]
fn users_who_stopped_reading_are_let_go_before_memory_grows() {
    let server = Server::start(&["--max-line-rate", "0"]);
    let mut stalled = Vec::new();
    for i in 0..20 {
        let mut idle = Conn::connect_with("127.0.0.20", server.addr, Some(4096));
        idle.expect_greeting();
        idle.send(&format!("idle{i}"));
        idle.expect_prefix(&format!("* welcome idle{i};"));
        stalled.push(idle);
    }
    let [mut reader, mut sender] = [("127.0.0.10", "reader"), ("127.0.0.11", "sender")]
        .map(|(source, name)| server.join_from(source, name));
    let lines: String = (0..100).map(|i| format!("{i} {}\n", "m".repeat(995))).collect();
    // Rounds of 100 KB until all twenty are let go: before 64 MiB are sent.
    let (mut rounds, mut let_go) = (0, 0);
    while let_go < 20 {
        assert!(rounds < 640, "after {rounds} rounds, only {let_go} of 20 let go");
        sender.send_raw(lines.as_bytes());
        rounds += 1;
        let mut heard = 0;
        while heard < 100 {
            let line = reader.read_line();
            heard += usize::from(line.starts_with("sender: "));
            let_go += usize::from(line.ends_with(" left (too slow: stopped reading)"));
        }
    }
    let peak = server.peak_rss_kib();
    assert!(peak < 64 * 1024, "server peak RSS {peak} KiB");
}

/// `--max-per-address`: one address cannot hold more connections than that,
/// while another address still gets in.
#[test]
fn one_address_cannot_take_every_place() {
    let server = Server::start(&["--max-per-address", "3"]);
    let _held: Vec<Conn> = (0..3)
        .map(|_| {
            let mut conn = server.connect_from(ATTACKER);
            conn.expect_greeting();
            conn
        })
        .collect();
    let mut fourth = server.connect_from(ATTACKER);
    fourth.expect("! too many connections from your address (limit 3); try again later");
    fourth.expect_closed();
    let _alice = server.join_from("127.0.0.10", "alice");
}

/// One address's connections share one flood allowance: five connections
/// that each send sixty lines get about one burst (100 lines, joins
/// included) through at once, not five.
#[test]
fn connections_from_one_address_share_one_allowance() {
    let server = Server::start(&["--max-line-rate", "1"]);
    let mut watcher = server.join_from("127.0.0.10", "watcher");
    let mut speaker = server.join_from("127.0.0.11", "speaker");
    let started = Instant::now(); // the allowance grows by a line a second from here
    let mut bots: Vec<Conn> =
        (0..5).map(|i| server.join_from(ATTACKER, &format!("bot{i}"))).collect();
    let lines: String = (0..60).map(|i| format!("spam {i}\n")).collect();
    for bot in &mut bots {
        bot.send_raw(lines.as_bytes());
    }
    // Once the flood is under way, a line from elsewhere marks the moment.
    let mut through = 0;
    while through < 50 {
        through += usize::from(watcher.read_line().starts_with("bot"));
    }
    speaker.send("marker");
    through += count_before(&mut watcher, "bot", "speaker: marker");
    // One burst, and a line for each second a slow machine took meanwhile.
    let allowed = 100 + started.elapsed().as_secs() as usize;
    assert!(through <= allowed, "{through} of 300 lines passed at once (allowed {allowed})");
}

/// Joining and leaving cost allowance too: a loop of joins and quits from
/// one address puts about one burst of notices on screens, not all of them.
#[test]
fn churn_cannot_flood_the_room_with_notices() {
    let server = Server::start(&["--max-line-rate", "1"]);
    let mut watcher = server.join_from("127.0.0.10", "watcher");
    let mut speaker = server.join_from("127.0.0.11", "speaker");
    let churners: Vec<Conn> = (0..60)
        .map(|i| {
            let mut conn = server.connect_from(ATTACKER);
            conn.send_raw(format!("churn{i}\n/quit\n").as_bytes());
            conn
        })
        .collect();
    // Once the churn is under way, a line from elsewhere marks the moment.
    let mut notices = 0;
    while notices < 20 {
        notices += usize::from(watcher.read_line().starts_with("* churn"));
    }
    speaker.send("marker");
    notices += count_before(&mut watcher, "* churn", "speaker: marker");
    assert!(notices <= 70, "{notices} of 120 join and leave notices passed");
    drop(churners);
}

/// Writes `chunk` over and over until a write has waited half a second, or
/// `limit` bytes are written; returns how many were. (Stopping early only
/// makes the count smaller: a slow machine cannot fail a test that checks
/// the count is small.)
fn write_until_held_back(conn: &mut Conn, chunk: &[u8], limit: usize) -> usize {
    conn.stream.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut written = 0;
    while written < limit {
        match conn.stream.write(chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break, // held back (timed out), or closed
        }
    }
    written
}

/// Every byte read counts against the sender's allowance, before the name
/// and after it, in a line that never ends: the server soon stops reading
/// such a sender, whose writes then wait, instead of reading gigabytes.
#[test]
fn bytes_count_against_the_allowance() {
    let server = Server::start(&[]);
    let mut before_name = server.connect_from(ATTACKER);
    let mut after_name = server.join_from("127.0.0.3", "endless");
    let chunk = vec![b'z'; 64 * 1024];
    let limit = 200 << 20;
    for conn in [&mut before_name, &mut after_name] {
        let written = write_until_held_back(conn, &chunk, limit);
        assert!(written < limit / 4, "the server read {written} bytes");
    }
    let [mut alice, mut bob] =
        [server.join_from("127.0.0.10", "alice"), server.join_from("127.0.0.11", "bob")];
    alice.expect("* bob joined");
    bob.send("unaffected");
    alice.expect("bob: unaffected");
}

/// A connection that keeps sending a taken name without reading the
/// refusals is cut off like any other that stopped reading.
#[test]
fn refused_names_unread_end_the_connection() {
    let server = Server::start(&["--max-line-rate", "0"]);
    // A long name makes long refusals: fewer are needed to fill the buffers.
    let name = "abcdefghijklmnopqrstuvwx";
    let _taken = server.join_from("127.0.0.10", name);
    let mut pest = Conn::connect_with(ATTACKER, server.addr, Some(4096));
    pest.stream.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let names = format!("{name}\n").repeat(10_000);
    // Until the server closes the connection: then a write fails with a
    // reset or a broken pipe (a write that merely waits is not the end).
    let deadline = Instant::now() + 6 * PATIENCE;
    let closed = loop {
        match pest.stream.write_all(names.as_bytes()) {
            Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break true;
            }
            _ if Instant::now() > deadline => break false,
            _ => {}
        }
    };
    assert!(closed, "still open after a minute of unread refusals");
    server.expect_log("stopped reading before choosing a name");
}

/// Every number on the command line has a range; outside it is a usage
/// error (exit 2) that names the range, never a panic later.
#[test]
fn numbers_out_of_range_are_usage_errors() {
    let run = |args: &[&str]| {
        Command::cargo_bin("chatroom").unwrap().args(args).timeout(Duration::from_secs(10)).assert()
    };
    run(&["server", "--name-timeout", "18446744073709551615"])
        .code(2)
        .stderr(predicate::str::starts_with(
            "error: invalid --name-timeout '18446744073709551615': expected a whole number of seconds from 1 to 3600",
        ));
    for (flag, value, range) in [
        ("--port", "70000", "from 0 to 65535"),
        ("--max-clients", "0", "from 1 to 100000"),
        ("--max-per-address", "0", "from 1 to 100000"),
        ("--max-line-rate", "1001", "from 0 to 1000"),
    ] {
        run(&["server", flag, value]).code(2).stderr(predicate::str::contains(range));
    }
    run(&["client", "--port", "0"]).code(2).stderr(predicate::str::contains("from 1 to 65535"));
}

/// A name that reads like one online is taken, whatever letters spell it:
/// Latin alpha, a script l, a Roman numeral fifty, capitals.
#[test]
fn a_look_alike_of_a_name_online_is_taken() {
    let server = Server::start(&[]);
    let _alice = server.join_from("127.0.0.10", "alice");
    let mut mallory = server.connect_from(ATTACKER);
    mallory.expect_greeting();
    for look_alike in ["ɑlice", "aℓice", "aⅼice", "ALICE"] {
        mallory.send(look_alike);
        mallory.expect(&format!("! the name {look_alike} is taken; try another"));
    }
}

/// The server's names cannot be borrowed in another script or style: Lisu,
/// Cherokee, double-struck and script letters all read as `server`.
#[test]
fn look_alikes_of_the_servers_name_are_kept() {
    let server = Server::start(&[]);
    let mut mallory = server.connect_from(ATTACKER);
    mallory.expect_greeting();
    for look_alike in ["ꓢꓰꓣꓦꓰꓣ", "ᏚᎬᎡᏙᎬᎡ", "𝕊𝔼ℝ𝕍𝔼ℝ", "𝓈ℯ𝓇𝓋ℯ𝓇"]
    {
        mallory.send(look_alike);
        mallory.expect("! that name is kept for the server; try another");
    }
}

/// Padding with wide blanks is cut like padding with spaces: 30 ideographic
/// spaces (U+3000, two columns each) reach the others as 8 plain spaces.
#[test]
fn padding_with_any_blank_is_cut_to_eight_spaces() {
    let server = Server::start(&[]);
    let mut al = server.join_from("127.0.0.10", "al");
    let mut mallory = server.join_from(ATTACKER, "mallory");
    al.expect("* mallory joined");
    mallory.send(&format!("hi{}* [server] the test is cancelled", "\u{3000}".repeat(30)));
    al.expect(&format!("mallory: hi{}* [server] the test is cancelled", " ".repeat(8)));
}

/// A place is held only by a connection that is open (issue 30): scripts
/// that connect and close 150 times a second, from sixteen addresses, never
/// keep a newcomer from a fresh address out, and one more on a shared
/// machine does not keep that machine's students out.
#[test]
fn connect_and_close_cannot_keep_anyone_out() {
    let server = Server::start(&[]); // 1,000 places, 64 an address
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scripts: Vec<_> = (0..17)
        .map(|i| {
            let (stop, addr) = (std::sync::Arc::clone(&stop), server.addr);
            let source: std::net::Ipv4Addr = format!("127.0.3.{}", i + 1).parse().unwrap();
            let source = if i == 16 { "127.0.0.6".parse().unwrap() } else { source };
            thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    drop(crate::harness::connect_quietly(source, addr));
                    thread::sleep(Duration::from_micros(6_667)); // 150 a second
                }
            })
        })
        .collect();
    // Long enough for every script's address to spend its allowance, and
    // (before issue 30) for connections waiting to pay it to fill the places.
    thread::sleep(Duration::from_secs(3));
    for round in 0..10 {
        let address = if round % 2 == 0 { "127.0.0.10" } else { "127.0.0.6" };
        let mut student = server.join_from(address, &format!("student{round}"));
        student.send("/quit");
        student.expect(&format!("* bye student{round}, see you soon"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    scripts.into_iter().for_each(|script| script.join().unwrap());
}

/// A debt ends when the flood does (issue 30): a shared machine with 200
/// connections floods, a line each, spending its address's allowance; a
/// student there then sends four lines, more than their share (a
/// two-hundredth) holds. Once the allowance has grown back (within 2.5 s),
/// all are in the room, before a line sent 3 s later from elsewhere.
/// (Before issue 30 the third waited for the student's own share to
/// refill: 5 s here, whatever the address's allowance held by then.)
#[test]
fn a_debt_ends_when_the_flood_does() {
    let server = Server::start(&["--max-per-address", "250", "--max-line-rate", "40"]);
    let mut watcher = server.join_from("127.0.0.10", "watcher");
    let mut bob = server.join_from("127.0.0.11", "bob");
    let mut student = server.join_from(ATTACKER, "student");
    let mut bots: Vec<Conn> =
        (0..200).map(|i| server.join_from(ATTACKER, &format!("bot{i}"))).collect();
    bots.iter_mut().for_each(|bot| bot.send("spam"));
    // The flood has spent the allowance once its last line is in the room.
    let mut spam = 0;
    while spam < 200 {
        spam += usize::from(watcher.read_line().ends_with(": spam"));
    }
    (0..4).for_each(|i| student.send(&format!("line {i}")));
    thread::sleep(Duration::from_secs(3)); // the allowance grows back, under test
    bob.send("marker");
    let typed = count_before(&mut watcher, "student: ", "bob: marker");
    assert_eq!(typed, 4, "the student's lines in the room before the marker");
}

/// The room's allowance is what the room delivers (issue 30): with twelve
/// addresses flooding 1 KiB lines, a reader receives no more than 160 KiB
/// at once and 32 KiB a second after, give or take 10 %. (Never more: a
/// slow machine can only make it less.)
#[test]
fn the_room_delivers_no_more_than_its_allowance() {
    let server = Server::start(&[]);
    let mut reader = server.join_from("127.0.0.10", "reader");
    let flooders: Vec<Conn> = (0..12)
        .map(|i| server.join_from(&format!("127.0.2.{}", i + 1), &format!("flood{i}")))
        .collect();
    // Quiet first, so that every share of the allowance is full.
    thread::sleep(Duration::from_secs(5));
    let started = Instant::now();
    for flooder in &flooders {
        let (mut writer, mut drain) =
            (flooder.stream.try_clone().unwrap(), flooder.stream.try_clone().unwrap());
        thread::spawn(move || std::io::copy(&mut drain, &mut std::io::sink()));
        thread::spawn(move || {
            writer.write_all(format!("{}\n", "x".repeat(1000)).repeat(400).as_bytes())
        });
    }
    let mut bytes = 0usize;
    while started.elapsed() < Duration::from_secs(6) {
        bytes += reader.read_line().len() + 1;
        let allowed = 1.1 * (160.0 + 32.0 * started.elapsed().as_secs_f64()) * 1024.0;
        assert!((bytes as f64) < allowed, "{bytes} bytes after {:?}", started.elapsed());
    }
    drop(flooders);
}

/// Connections that take a little now and then but never keep up are cut
/// off once a line has waited 10 s for them, counted from when it was
/// queued, not from the last bytes the kernel took (issue 30): three of
/// them, each reading at most 8 KiB every 2 s after a burst of 150 KiB
/// (more than the kernel and 10 s of that pace hold), all leave as too
/// slow, though the room is quiet after the burst (only private lines to
/// the watcher, one every 2 s, which also count the time). b417fdd kept
/// them: its 10 s restarted with every write the kernel took.
#[test]
fn readers_who_take_a_little_now_and_then_are_cut_off_in_time() {
    let server = Server::start(&["--max-line-rate", "1000"]);
    let mut watcher = server.join_from("127.0.0.10", "watcher");
    let mut sender = server.join_from("127.0.0.11", "sender");
    watcher.expect("* sender joined");
    let mut nibblers: Vec<Conn> = (0..3)
        .map(|i| {
            let mut conn = Conn::connect_with(ATTACKER, server.addr, Some(4096));
            conn.expect_greeting();
            conn.send(&format!("nibbler{i}"));
            conn.expect_prefix(&format!("* welcome nibbler{i};"));
            watcher.expect(&format!("* nibbler{i} joined"));
            conn.stream.set_nonblocking(true).unwrap();
            conn
        })
        .collect();
    sender.send_raw(format!("{}\n", "x".repeat(1000)).repeat(150).as_bytes());
    for _ in 0..150 {
        watcher.expect(&format!("sender: {}", "x".repeat(1000)));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let pace = thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            for nibbler in &mut nibblers {
                let _ = std::io::Read::read(&mut nibbler.stream, &mut [0; 8192]);
            }
            sender.send("/msg watcher tick");
            thread::sleep(Duration::from_secs(2)); // the pace of the nibbling, under test
        }
    });
    let (mut left, mut ticks) = (std::collections::BTreeSet::new(), 0);
    while left.len() < 3 {
        let line = watcher.read_line();
        ticks += usize::from(line == "sender (private): tick");
        assert!(ticks < 15, "30 s after the burst, only {left:?} let go");
        if let Some(name) = line.strip_suffix(" left (too slow: stopped reading)") {
            left.insert(name.trim_start_matches("* ").to_string());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    pace.join().unwrap();
    assert_eq!(left, ["nibbler0", "nibbler1", "nibbler2"].map(String::from).into());
}

/// What the kernel holds unsent for users who stopped reading is bounded
/// too (issue 30): 20 of them, with the kernel's usual receive buffers,
/// while 2 MB go by at the highest rate. The server's send queue for each
/// (`tx_queue` in Linux's `/proc/net/tcp`) never passes 128 KiB (twice the
/// 32 KiB asked, the kernel's own doubling, and one 64 KiB packet being
/// filled), where the kernel alone would let it grow to megabytes.
#[cfg(target_os = "linux")]
#[test]
fn the_kernel_holds_little_for_users_who_stopped_reading() {
    let server = Server::start(&["--max-line-rate", "1000"]);
    let _stalled: Vec<Conn> =
        (0..20).map(|i| server.join_from("127.0.0.20", &format!("idle{i}"))).collect();
    let [mut reader, mut sender] = [("127.0.0.10", "reader"), ("127.0.0.11", "sender")]
        .map(|(source, name)| server.join_from(source, name));
    let lines: String = (0..100).map(|i| format!("{i} {}\n", "m".repeat(995))).collect();
    let (mut most, mut seen) = (0, 0);
    for _ in 0..20 {
        sender.send_raw(lines.as_bytes());
        let mut heard = 0;
        while heard < 100 {
            heard += usize::from(reader.read_line().starts_with("sender: "));
        }
        let queues = send_queues(server.addr.port());
        seen = seen.max(queues.len());
        most = most.max(queues.into_iter().max().unwrap_or(0));
    }
    assert!(seen >= 22, "the server's sockets in /proc/net/tcp: {seen}");
    assert!(most <= 128 * 1024, "a send queue of {most} bytes");
}

/// The bytes in the kernel's send queue of each of the server's sockets
/// (local port `port`), from `/proc/net/tcp` and `tcp6`.
#[cfg(target_os = "linux")]
fn send_queues(port: u16) -> Vec<u64> {
    let tables = ["/proc/net/tcp", "/proc/net/tcp6"].map(std::fs::read_to_string);
    let rows = tables.iter().flatten().flat_map(|table| table.lines().skip(1));
    let field = |row: &str, n: usize| row.split_whitespace().nth(n).unwrap_or("").to_string();
    rows.filter(|row| field(row, 1).rsplit(':').next() == Some(&format!("{port:04X}")))
        .filter_map(|row| u64::from_str_radix(field(row, 4).split(':').next()?, 16).ok())
        .collect()
}
