//! `--class FILE`: a whole class graded at once. Each student's server is
//! checked by this same program run again (`--server CMD`) as a child with a
//! time limit, so that a server that does not start, or hangs, or a rule
//! that panics, is one row of the table with its reason, never the end of
//! the run. One table (student, score per group, total, and the first
//! problem: a row always has a reason), and with `--json FILE` the same
//! figures for a spreadsheet.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::rules::Group;

/// One student's row.
struct Row {
    name: String,
    command: String,
    /// Per group: (held, checked); optional: (present, checked).
    groups: Vec<(Group, usize, usize)>,
    /// Why there is no score: the server did not start, or hung.
    error: Option<String>,
    /// The card's first FAIL (its rule, and what came), or its note that
    /// the server does not greet.
    first_problem: Option<String>,
}

impl Row {
    fn total(&self) -> (usize, usize) {
        let counted = self.groups.iter().filter(|(g, ..)| *g != Group::Optional);
        counted.fold((0, 0), |(h, c), (_, held, of)| (h + held, c + of))
    }
}

/// Reads the class file: one student a line, `NAME CMD` (CMD as for
/// `--server`); empty lines and lines starting with `#` are skipped.
fn read_class(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut students = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, command)) = line.split_once(char::is_whitespace) else {
            return Err(format!("{path}:{}: expected NAME CMD, got {line:?}", number + 1));
        };
        students.push((name.to_string(), command.trim().to_string()));
    }
    if students.is_empty() {
        return Err(format!("{path}: no students (one a line: NAME CMD)"));
    }
    Ok(students)
}

/// `--class FILE [--json FILE] [--limit SECS]`, with `--only` and `--wait`
/// passed on to each student's check. `None` if `args` do not ask for a
/// class; else whether every server held every rule, or why it could not
/// run.
pub fn run(args: &[String]) -> Option<Result<bool, String>> {
    if !args.iter().any(|a| a == "--class") {
        return None;
    }
    let (mut class, mut json, mut limit) = (None, None, Duration::from_secs(300));
    let (mut passed_on, mut groups) = (Vec::new(), Group::ALL.to_vec());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let Some(value) = args.next().cloned() else {
            return Some(Err(format!("{arg} needs a value")));
        };
        match arg.as_str() {
            "--class" => class = Some(value),
            "--json" => json = Some(value),
            "--limit" => match value.parse::<u64>() {
                Ok(seconds) if seconds > 0 => limit = Duration::from_secs(seconds),
                _ => return Some(Err(format!("not whole seconds: {value}"))),
            },
            "--only" | "--wait" => {
                if arg == "--only" {
                    let pick = |n: &str| Group::ALL.into_iter().find(|g| g.name() == n);
                    let picked: Option<Vec<Group>> = value.split(',').map(pick).collect();
                    let Some(picked) = picked else {
                        return Some(Err(format!("no such group in {value}")));
                    };
                    groups = picked;
                }
                passed_on.extend([arg.clone(), value]);
            }
            other => return Some(Err(format!("{other} cannot be used with --class"))),
        }
    }
    let students = match read_class(class.as_deref().unwrap_or_default()) {
        Ok(students) => students,
        Err(why) => return Some(Err(why)),
    };
    Some(grade(&students, &groups, &passed_on, limit, json.as_deref()))
}

/// Grades every student in turn; prints the table (and writes the JSON).
/// `Ok(true)` if every server held every rule.
fn grade(
    students: &[(String, String)],
    groups: &[Group],
    passed_on: &[String],
    limit: Duration,
    json: Option<&str>,
) -> Result<bool, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut rows = Vec::new();
    for (name, command) in students {
        eprintln!("checking {name}: {command}");
        let mut child = Command::new(&me);
        child.args(["--server", command]).args(passed_on);
        let (card, error) = run_limited(child, limit);
        rows.push(score(name, command, groups, &card, error));
    }
    print!("{}", table(&rows, groups));
    if let Some(path) = json {
        std::fs::write(path, to_json(&rows, groups))
            .map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(rows.iter().all(|r| r.error.is_none() && r.total().0 == r.total().1))
}

/// Runs one check in a process group of its own, killed whole (the checker
/// and the server it started) if it takes longer than `limit`. Its card
/// (stdout), and the reason if it made none.
fn run_limited(mut command: Command, limit: Duration) -> (String, Option<String>) {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let spawned =
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn();
    let mut child = match spawned {
        Ok(child) => Limited(child),
        Err(e) => return (String::new(), Some(format!("cannot run the checker: {e}"))),
    };
    let pipe = |mut from: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = from.read_to_string(&mut text);
            text
        })
    };
    let out = pipe(Box::new(child.0.stdout.take().expect("piped")));
    let err = pipe(Box::new(child.0.stderr.take().expect("piped")));
    let deadline = Instant::now() + limit;
    let mut hung = false;
    while matches!(child.0.try_wait(), Ok(None)) {
        if Instant::now() > deadline {
            hung = true;
            drop(child);
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let (card, errors) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    let error = if hung {
        Some(format!("no card within {} s: the server hangs, or is very slow", limit.as_secs()))
    } else if !card.contains(" rules hold") {
        let why = errors.lines().find(|l| l.starts_with("error: ")).unwrap_or("no card");
        Some(why.trim_start_matches("error: ").to_string())
    } else {
        None
    };
    (card, error)
}

/// A checker run as a child: killed with its whole process group, and
/// waited for, when dropped.
struct Limited(Child);

impl Drop for Limited {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            #[cfg(unix)]
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0.id())])
                .stderr(Stdio::null())
                .status();
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A row from a card: each rule line counted under the group it follows
/// (one not tested here is not counted), and the first problem it shows.
fn score(name: &str, command: &str, groups: &[Group], card: &str, error: Option<String>) -> Row {
    let mut counts: Vec<(Group, usize, usize)> =
        groups.iter().map(|g| (*g, 0, g.rules().len())).collect();
    let (mut current, mut first_problem, mut failed) = (None, None, None);
    for line in card.lines() {
        let entry = counts.iter_mut().find(|(g, ..)| Some(*g) == current);
        if let Some(group) = Group::ALL.into_iter().find(|g| line.starts_with(g.name())) {
            current = Some(group);
        } else if line.starts_with("  PASS  ") || line.starts_with("  yes   ") {
            entry.into_iter().for_each(|(_, held, _)| *held += 1);
        } else if line.starts_with("  ----  ") {
            entry.into_iter().for_each(|(_, _, of)| *of -= 1);
        } else if let Some(got) = line.strip_prefix("(no greeting on connecting, got ") {
            let got = got.strip_suffix(": every rule starts with it, and fails)").unwrap_or(got);
            first_problem = first_problem.or(Some(format!("no greeting: got {got}")));
        } else if let Some(rule) = line.strip_prefix("  FAIL  ") {
            failed = failed.or(Some(rule));
        } else if let (Some(rule), Some(got)) = (failed, line.strip_prefix("        got:      ")) {
            first_problem = first_problem.or(Some(format!("{rule}: got {got}")));
        }
    }
    let first_problem = first_problem.or(error.clone());
    Row {
        name: name.to_string(),
        command: command.to_string(),
        groups: counts,
        error,
        first_problem,
    }
}

fn table(rows: &[Row], groups: &[Group]) -> String {
    let width = rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(0).max(7);
    let mut out = format!("\n{:width$}", "student");
    for group in groups {
        out.push_str(&format!("  {:>10}", group.name()));
    }
    out.push_str("       total  first problem\n");
    for row in rows {
        out.push_str(&format!("{:width$}", row.name));
        if let Some(why) = &row.error {
            out.push_str(&format!("  not graded: {why}\n"));
            continue;
        }
        for (_, held, of) in &row.groups {
            out.push_str(&format!("  {:>10}", format!("{held}/{of}")));
        }
        let (held, of) = row.total();
        let problem = row.first_problem.as_deref().map_or("-".into(), |p| shorten(p, 60));
        out.push_str(&format!("  {:>10}  {problem}\n", format!("{held}/{of}")));
    }
    if groups.contains(&Group::Optional) {
        out.push_str("\n(optional: features present, never counted in the total)\n");
    }
    out
}

/// `text` cut to `most` characters, with `...` if cut: the table's last
/// column, kept to a line (the JSON has it whole).
fn shorten(text: &str, most: usize) -> String {
    match text.char_indices().nth(most) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// The rows as JSON: `{"students": [{"name", "command", "error", "groups":
/// {GROUP: {"held", "of"}}, "held", "of", "first_problem"}]}`.
fn to_json(rows: &[Row], groups: &[Group]) -> String {
    let text = |s: &str| {
        let mut quoted = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => quoted.push_str("\\\""),
                '\\' => quoted.push_str("\\\\"),
                c if (c as u32) < 0x20 => quoted.push_str(&format!("\\u{:04x}", c as u32)),
                c => quoted.push(c),
            }
        }
        quoted + "\""
    };
    let students: Vec<String> = rows
        .iter()
        .map(|row| {
            let scores: Vec<String> = (row.groups.iter())
                .filter(|_| row.error.is_none())
                .map(|(g, held, of)| format!("{}: {{\"held\": {held}, \"of\": {of}}}", text(g.name())))
                .collect();
            let (held, of) = row.total();
            let (held, of) = if row.error.is_some() { (0, of) } else { (held, of) };
            let error = row.error.as_deref().map_or("null".to_string(), text);
            let first = row.first_problem.as_deref().map_or("null".to_string(), text);
            format!(
                "    {{\"name\": {}, \"command\": {}, \"error\": {error}, \"groups\": {{{}}}, \"held\": {held}, \"of\": {of}, \"first_problem\": {first}}}",
                text(&row.name),
                text(&row.command),
                scores.join(", ")
            )
        })
        .collect();
    let names: Vec<String> = groups.iter().map(|g| text(g.name())).collect();
    format!(
        "{{\n  \"groups\": [{}],\n  \"students\": [\n{}\n  ]\n}}\n",
        names.join(", "),
        students.join(",\n")
    )
}
