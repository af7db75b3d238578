//! Fair shares, through the real binary: the room's allowance shared among
//! addresses, an address's among its connections, and the server's memory
//! bounded whoever asks for what. Attackers bind 127.0.0.2 to .9 and
//! 127.0.2.x; honest users 127.0.0.10 and up; a shared lab machine, where
//! honest users and a script are one address, is 127.0.0.6.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Conn, NOT_UTF8, Server, SlowLink, flood_lines};

/// Twelve addresses send at the permitted rate lines of 1,018 bytes that
/// are not UTF-8 (each byte becomes a three-byte U+FFFD: the most bytes on
/// screens a line of allowance can buy), while one user reads at 40 KB/s
/// through small buffers, as on a slow link: it is never cut off, misses
/// none of any sender's lines, and keeps up: when it asks for `/who`, few
/// lines are still queued ahead of the answer.
#[test]
fn a_reader_on_a_slow_link_keeps_up_with_every_address_flooding() {
    let server = Server::start(&[]);
    let mut slow = Conn::connect_with("127.0.0.10", server.addr, Some(64 * 1024));
    slow.expect_greeting();
    slow.send("slow");
    slow.expect_prefix("* welcome slow;");
    let flooders: Vec<Conn> =
        (1..=12).map(|i| server.join_from(&format!("127.0.2.{i}"), &format!("flood{i}"))).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = flooders
        .into_iter()
        .map(|flooder| {
            let stop = Arc::clone(&stop);
            // The flooders read what the room sends them: they are not slow.
            let mut drain = flooder.stream.try_clone().unwrap();
            thread::spawn(move || std::io::copy(&mut drain, &mut std::io::sink()));
            thread::spawn(move || {
                flood_lines(&flooder.stream, NOT_UTF8, &stop).expect("a flooder was cut off");
                flooder
            })
        })
        .collect();
    // Each flooder's numbers, as the slow reader sees them: consecutive.
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut check = |line: &str| {
        assert!(!line.contains(" left"), "the slow reader saw {line:?}");
        let Some((name, rest)) = line.split_once(": ") else { return false };
        let Some(n) = rest.split(' ').next().and_then(|n| n.parse::<u64>().ok()) else {
            return false;
        };
        let expected = next.entry(name.to_string()).or_insert(0);
        assert_eq!(n, *expected, "{name}'s line {expected} never reached the slow reader");
        *expected += 1;
        true
    };
    let (flooding, mut link) = (Instant::now(), SlowLink::new());
    let cut_off = |e| panic!("the slow reader was cut off: {e}");
    link.read(&slow.stream, |line| {
        line.map(&mut check);
        flooding.elapsed() > Duration::from_secs(15) // past the 10 s a line may wait
    })
    .unwrap_or_else(cut_off);
    slow.send("/who");
    let mut queued = 0;
    link.read(&slow.stream, |line| {
        let line = line.unwrap_or_default();
        queued += usize::from(check(line));
        line.starts_with("* online (")
    })
    .unwrap_or_else(cut_off);
    stop.store(true, Ordering::Relaxed);
    let _flooders: Vec<Conn> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    let heard: u64 = next.values().sum();
    assert!(heard >= 12 * 10, "only {heard} flood lines reached the slow reader");
    assert!(queued <= 150, "{queued} flood lines were queued ahead of the slow reader's /who");
}

/// A script on 16 addresses x 62 connections, each with a long name, asks
/// for `/who` (an answer of about 85 KB, for the asker alone) again and
/// again while reading 1 KiB a second: with flood control at its highest,
/// what the server holds stays within the README's figures for that rate:
/// 16 MB of text and one answer, and 16 KiB for each writer's copy, 32 MiB
/// in all, where answering every asker once would take 84 MB (b417fdd grew
/// by 51 MiB). And the room goes on.
#[test]
fn private_answers_cannot_make_the_server_hoard_memory() {
    let server = Server::start(&["--max-line-rate", "1000", "--max-clients", "1000"]);
    let mut askers = Vec::new();
    for address in 2..=17 {
        for k in 0..62 {
            let name = format!("{}{address:02}{k:02}", "𠀀".repeat(20));
            let mut conn =
                Conn::connect_with(&format!("127.0.0.{address}"), server.addr, Some(4096));
            conn.expect_greeting();
            conn.send(&name);
            conn.stream.set_nonblocking(true).unwrap();
            askers.push(conn);
        }
    }
    let [mut alice, mut bob] =
        [server.join_from("127.0.0.10", "alice"), server.join_from("127.0.0.11", "bob")];
    let before = server.peak_rss_kib();
    let started = Instant::now();
    let (who, mut chunk) = ("/who\n".repeat(20), [0u8; 1024]);
    while started.elapsed() < Duration::from_secs(10) {
        for asker in &mut askers {
            let _ = asker.stream.write(who.as_bytes()); // as much as the server takes
            let _ = asker.stream.read(&mut chunk); // 1 KiB a second, each
        }
        thread::sleep(Duration::from_secs(1));
    }
    let grown = server.peak_rss_kib() - before;
    assert!(grown < 32 * 1024, "the server's memory grew by {grown} KiB");
    alice.skip_to("* bob joined");
    bob.send("still here");
    alice.skip_to("bob: still here");
}

/// The most connections one address may have choosing a name at once, at
/// the default `--max-per-address` (the README's figure).
const CHOOSING_PER_ADDRESS: usize = 8;

/// On a shared machine, connections that never choose a name cannot keep
/// an honest student out: past the few an address may have choosing a name
/// at once, each new one closes the oldest, with a line that says why.
#[test]
fn unnamed_connections_cannot_keep_a_shared_machine_out() {
    let server = Server::start(&[]);
    let mut unnamed: Vec<Conn> = (0..64)
        .map(|_| {
            let mut conn = server.connect_from("127.0.0.6");
            conn.expect_greeting();
            conn
        })
        .collect();
    let (oldest, newest) = unnamed.split_at_mut(64 - CHOOSING_PER_ADDRESS);
    for conn in oldest {
        conn.expect(
            "! no name yet, and newer connections from your address wait to choose one; \
             closing this one",
        );
        conn.expect_closed();
    }
    let mut student = server.join_from("127.0.0.6", "student");
    // The newest may still choose a name (the student's arrival closed one).
    let last = newest.last_mut().unwrap();
    last.send("latecomer");
    last.expect_prefix("* welcome latecomer;");
    student.expect("* latecomer joined");
}

/// On a shared machine where 40 connections flood at whatever rate they
/// can, a student there who sends a line now and then gets it through at
/// once: only a few flood lines reach another user between the two.
#[test]
fn a_flood_on_a_shared_machine_does_not_hold_up_its_other_users() {
    let server = Server::start(&[]);
    let mut watcher = server.join_from("127.0.0.10", "watcher");
    let mut student = server.join_from("127.0.0.6", "student");
    let flooders: Vec<Conn> =
        (0..40).map(|i| server.join_from("127.0.0.6", &format!("bot{i}"))).collect();
    let lines: String = (0..2000).map(|i| format!("spam {i}\n")).collect();
    for flooder in &flooders {
        let (mut writer, mut drain) =
            (flooder.stream.try_clone().unwrap(), flooder.stream.try_clone().unwrap());
        let lines = lines.clone();
        thread::spawn(move || writer.write_all(lines.as_bytes()));
        thread::spawn(move || std::io::copy(&mut drain, &mut std::io::sink()));
    }
    // Well into the flood (past the address's burst), then a line now and
    // then: every few seconds.
    skip_spam(&mut watcher, 200);
    for round in 0..2 {
        student.send(&format!("now and then {round}"));
        let mut before = 0;
        loop {
            let line = watcher.read_line();
            if line == format!("student: now and then {round}") {
                break;
            }
            before += usize::from(line.contains(": spam "));
        }
        assert!(before <= 10, "{before} flood lines went before the student's line {round}");
        skip_spam(&mut watcher, 60);
    }
    drop(flooders);
}

/// Reads lines until `count` flood lines have passed.
fn skip_spam(conn: &mut Conn, count: usize) {
    let mut spam = 0;
    while spam < count {
        spam += usize::from(conn.read_line().contains(": spam "));
    }
}
