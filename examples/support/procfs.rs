//! What Linux's /proc says about a running server: the benchmark's figures,
//! and the tests' bounds on its memory and CPU.

use std::fs;

/// A `Vm...:` (KiB) or `Threads:` field of /proc/PID/status.
pub fn status(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status.lines().find_map(|l| l.strip_prefix(field))?;
    value.split_whitespace().next()?.parse().ok()
}

/// User plus system CPU time so far, in clock ticks, from /proc/PID/stat.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(command name)`, which may itself hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}
