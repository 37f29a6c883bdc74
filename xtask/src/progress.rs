//! Running long external steps with visible progress and a log file.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Describes a command for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, failing with its stderr when it exits non-zero.
pub fn run_quiet(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("starting `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with its output going to `log`, showing a spinner with the
/// elapsed time and the latest output line. On failure the error names the
/// log and quotes its last lines.
pub fn run_logged(what: &str, cmd: &mut Command, log: &Path) -> Result<()> {
    let started = Instant::now();
    let mut file =
        std::fs::File::create(log).with_context(|| format!("creating log {}", log.display()))?;
    writeln!(file, "$ {}", describe(cmd))?;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{}`", describe(cmd)))?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx2 = tx.clone();
    let t1 = std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let t2 = std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(l);
        }
    });
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
            .expect("static template"),
    );
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut lines = 0u64;
    let mut tail: Vec<String> = Vec::new();
    for l in rx {
        lines += 1;
        writeln!(file, "{l}")?;
        bar.set_message(format!("{lines} lines | {}", l.trim()));
        tail.push(l);
        if tail.len() > 25 {
            tail.remove(0);
        }
    }
    let _ = (t1.join(), t2.join());
    let status = child.wait().context("waiting for the build")?;
    bar.finish_and_clear();
    if !status.success() {
        bail!(
            "{what} failed ({status}) after {:.0?}; full log: {}\nlast lines:\n{}",
            started.elapsed(),
            log.display(),
            tail.join("\n")
        );
    }
    eprintln!(
        "{what}: done in {:.1?} (log: {})",
        started.elapsed(),
        log.display()
    );
    Ok(())
}

/// Prints a guest's `PREFIX: i/N ...` progress lines (and `not ok` lines)
/// as they appear in its console, with the time elapsed and an estimate of
/// the time left, until `done`.
pub fn follow(console: std::path::PathBuf, prefix: &str, total: u32, done: Arc<AtomicBool>) {
    use std::io::{Seek, SeekFrom};
    use std::sync::atomic::Ordering;
    let started = Instant::now();
    let mut pos = 0u64;
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(500));
        let Ok(mut f) = std::fs::File::open(&console) else {
            continue;
        };
        if f.seek(SeekFrom::Start(pos)).is_err() {
            continue;
        }
        let mut r = BufReader::new(f);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            if !line.ends_with('\n') {
                break;
            }
            pos += line.len() as u64;
            if let Some(rest) = line
                .trim_end()
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix(": "))
                .filter(|r| !r.starts_with("done"))
            {
                let i: u32 = rest
                    .split('/')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let el = started.elapsed().as_secs_f64();
                let eta = if i > 0 {
                    el / f64::from(i) * f64::from(total.saturating_sub(i))
                } else {
                    0.0
                };
                eprintln!("{prefix}: {rest}  [{el:.0} s elapsed, about {eta:.0} s to go]");
            } else if userspace_tests::ktap::is_not_ok(&line) {
                eprint!("{prefix}: {line}");
            }
            line.clear();
        }
    }
}
