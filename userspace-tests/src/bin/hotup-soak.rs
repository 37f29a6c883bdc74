//! `hotup-soak`: the soak's upgrade loop (run by `soak/soak.sh` once fio is
//! running), in one process so an upgrade costs what the kernel costs:
//! under TCG every process start in the guest costs about a second, which a
//! shell loop paid several times per upgrade.
//!
//! ```text
//! hotup-soak --modules DIR --upgrades N --fio-pid PID [--time-scale S] [PARAM=VALUE...]
//! ```
//!
//! N classic upgrades v1->v2->v1... (the device-state schema follows the
//! version); every 10th by the `rmmod` and `insmod` commands, the others by
//! hotupctl's classic swap ([`hotupctl::swap::NewChild`]). After each it
//! waits for 200 more completed requests (the parent's `completed`), so the
//! next upgrade meets I/O in flight. An upgrade is "under writes" when the
//! disk completed writes from just before it started to just after it
//! ended (fio's passes alternate a write phase and a verify phase).
//! PARAM=VALUE go to every new child (fault injection).
//!
//! Prints `soak: I/N vTO MODE blackout_ns=B upgrade_ms=U wait_ms=W` per
//! upgrade, then `soak: done upgrades=I under_writes=K`; on a failure
//! `soak: failed upgrade I: WHY` (or `soak: failed to start: WHY`) and
//! exits 1.

use anyhow::{bail, Context, Result};
use clap::Parser;
use hotupctl::kmsg::Kmsg;
use hotupctl::status::Status;
use hotupctl::swap::{ctl_write, NewChild};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "the soak's upgrade loop: N classic upgrades under fio, in one process")]
struct Cli {
    /// The parent's control node.
    #[arg(long, default_value = "/dev/hotup-ctl")]
    ctl: PathBuf,
    /// The parent's block device (its write count says "under writes").
    #[arg(long, default_value = "/dev/hotupblk0")]
    dev: PathBuf,
    /// Where hotup_child_v1.ko and hotup_child_v2.ko are.
    #[arg(long)]
    modules: PathBuf,
    /// Consecutive upgrades.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    upgrades: u32,
    /// The fio writer's pid: the soak stops when it does (a failed pass).
    #[arg(long)]
    fio_pid: i32,
    /// Multiplies the timeouts (5 on the debug kernel).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Module parameters for every new child (fault injection).
    #[arg(value_name = "PARAM=VALUE")]
    params: Vec<String>,
}

/// Requests that must complete after an upgrade before the next one.
const REQUESTS_BETWEEN: u64 = 200;
/// How long they may take (times the time scale).
const WAIT_LIMIT: Duration = Duration::from_secs(120);
/// Poll interval of that condition wait.
const POLL: Duration = Duration::from_millis(10);

struct Soak {
    cli: Cli,
    /// `/sys/block/DISK/stat`.
    disk_stat: PathBuf,
    kmsg: Kmsg,
}

/// One upgrade's progress line's figures.
struct Done {
    blackout_ns: Option<u64>,
    upgrade: Duration,
    wait: Duration,
    under_writes: bool,
}

impl Soak {
    fn new(cli: Cli) -> Result<Soak> {
        let disk = cli
            .dev
            .file_name()
            .with_context(|| format!("{} is not a device path", cli.dev.display()))?;
        let disk_stat = Path::new("/sys/block").join(disk).join("stat");
        // The kernel log from here on: the `hotup: resume` line of each
        // upgrade. Kmsg reads nothing where it cannot open the log; the
        // blackouts are the soak's report, so say so here.
        std::fs::File::open("/dev/kmsg").context(
            "opening /dev/kmsg (the blackout of each upgrade is read there): run the soak as root",
        )?;
        let kmsg = Kmsg::at_end();
        let s = Soak {
            cli,
            disk_stat,
            kmsg,
        };
        s.writes()?;
        s.completed()?;
        Ok(s)
    }

    /// Completed writes of the disk (field 5 of /sys/block/DISK/stat).
    fn writes(&self) -> Result<u64> {
        let stat = std::fs::read_to_string(&self.disk_stat).with_context(|| {
            format!(
                "reading {} (is the parent loaded?)",
                self.disk_stat.display()
            )
        })?;
        stat.split_whitespace()
            .nth(4)
            .and_then(|w| w.parse().ok())
            .with_context(|| {
                format!(
                    "{} has no write count (field 5): {stat:?}",
                    self.disk_stat.display()
                )
            })
    }

    /// The parent's `completed` requests.
    fn completed(&self) -> Result<u64> {
        Status::read(&self.cli.ctl)?
            .num("completed")
            .with_context(|| {
                format!(
                    "the parent's status ({}) has no completed= count: is it hotup's parent?",
                    self.cli.ctl.display()
                )
            })
    }

    fn fio_running(&self) -> bool {
        // SAFETY: kill with signal 0 sends nothing; it only checks that the
        // process exists.
        unsafe { libc::kill(self.cli.fio_pid, 0) == 0 }
    }

    /// The blackout of the last `hotup: resume` line logged since the last
    /// call.
    fn last_blackout(&mut self) -> Option<u64> {
        self.kmsg
            .events()
            .iter()
            .rev()
            .find(|e| e.name == "resume")
            .and_then(|e| e.num("blackout_ns"))
    }

    /// One classic upgrade to `hotup_child_vTO.ko`, by the commands or by
    /// the one-process swap, then the wait for I/O after it.
    fn upgrade(&mut self, to: u32, commands: bool) -> Result<Done> {
        if !self.fio_running() {
            bail!("the fio writer stopped (a failed pass?): see fio-live.log");
        }
        let ko = self.cli.modules.join(format!("hotup_child_v{to}.ko"));
        let ctl = &self.cli.ctl;
        let w0 = self.writes()?;
        let t0 = Instant::now();
        let from = Status::read(ctl)?.module("child").map(str::to_owned);
        ctl_write(ctl, &format!("export-schema {to}")).map_err(|e| {
            anyhow::anyhow!(
                "writing export-schema {to} to {} failed: {}",
                ctl.display(),
                e.desc()
            )
        })?;
        if commands {
            if let Some(from) = &from {
                run(Command::new("rmmod").arg(from))?;
            }
            run(Command::new("insmod").arg(&ko).args(&self.cli.params))?;
        } else {
            NewChild::open(&ko, &self.cli.params)?
                .swap(from.as_deref())
                .with_context(|| format!("v{to} (one-process)"))?;
        }
        let upgrade = t0.elapsed();
        let under_writes = self.writes()? > w0;
        let t1 = Instant::now();
        let want = self.completed()? + REQUESTS_BETWEEN;
        let limit = WAIT_LIMIT.mul_f64(self.cli.time_scale);
        while self.completed()? < want {
            if t1.elapsed() > limit {
                bail!(
                    "fewer than {REQUESTS_BETWEEN} requests completed in {} s after it (I/O stuck: see the parent's status and dmesg)",
                    limit.as_secs()
                );
            }
            std::thread::sleep(POLL);
        }
        Ok(Done {
            blackout_ns: self.last_blackout(),
            upgrade,
            wait: t1.elapsed(),
            under_writes,
        })
    }
}

/// Runs a command (its output goes to the soak's); fails unless it exits 0.
fn run(cmd: &mut Command) -> Result<()> {
    let what = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("running {what} (is kmod installed?)"))?;
    if !status.success() {
        bail!("{what} failed ({status}): see its message above and dmesg");
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let n = cli.upgrades;
    let mut soak = match Soak::new(cli) {
        Ok(s) => s,
        Err(e) => {
            println!("soak: failed to start: {e:#}");
            std::process::exit(1);
        }
    };
    let (mut to, mut under) = (2, 0);
    for i in 1..=n {
        let commands = i % 10 == 0;
        match soak.upgrade(to, commands) {
            Ok(d) => {
                under += u32::from(d.under_writes);
                println!(
                    "soak: {i}/{n} v{to} {} blackout_ns={} upgrade_ms={} wait_ms={}",
                    if commands { "commands" } else { "one-process" },
                    d.blackout_ns.map_or("?".to_owned(), |b| b.to_string()),
                    d.upgrade.as_millis(),
                    d.wait.as_millis()
                );
            }
            Err(e) => {
                println!("soak: failed upgrade {i}: {e:#}");
                std::process::exit(1);
            }
        }
        to = 3 - to;
    }
    println!("soak: done upgrades={n} under_writes={under}");
}
