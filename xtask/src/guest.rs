//! The long-lived guest: `cargo xtask qemu up | down | status`, and running
//! commands in it (used by `upgrade-child` and `demo`).
//!
//! One guest per checkout, in `target/hotup/guest/` (its shared folder, see
//! qemu/agent.sh for the command protocol): `qemu.pid`, `console.log`,
//! `dmesg.txt` after `down`, `cmd/` for commands.

use crate::kernel::{self, KernelBuild};
use crate::paths::Ctx;
use crate::qemu;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long the guest may take to boot and load the modules.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// Poll interval for files the guest writes into the shared folder.
const POLL: Duration = Duration::from_millis(50);

pub struct Guest {
    pub dir: PathBuf,
}

impl Guest {
    pub fn of(ctx: &Ctx) -> Self {
        Guest {
            dir: ctx.out().join("guest"),
        }
    }

    fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir.join("qemu.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains("qemu-system")
            .then_some(pid)
    }

    pub fn running(&self) -> bool {
        self.pid().is_some()
    }

    /// Runs `script` in the guest and returns its exit status and output.
    pub fn exec(&self, script: &str, timeout: Duration) -> Result<(i32, String)> {
        if !self.running() {
            bail!("no guest is running: start one with `cargo xtask qemu up`");
        }
        let cmd = self.dir.join("cmd");
        let id = format!("{}-{}", std::process::id(), unique_suffix());
        let tmp = cmd.join(format!("{id}.tmp"));
        std::fs::write(&tmp, script).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, cmd.join(format!("{id}.req")))
            .context("submitting the command to the guest")?;
        let rc_file = cmd.join(format!("{id}.rc"));
        let started = Instant::now();
        loop {
            if let Ok(rc) = std::fs::read_to_string(&rc_file) {
                let out =
                    std::fs::read_to_string(cmd.join(format!("{id}.out"))).unwrap_or_default();
                for f in ["rc", "out", "sh"] {
                    let _ = std::fs::remove_file(cmd.join(format!("{id}.{f}")));
                }
                let rc = rc
                    .trim()
                    .parse()
                    .with_context(|| format!("guest wrote a bad exit status '{}'", rc.trim()))?;
                return Ok((rc, out));
            }
            if !self.running() {
                bail!(
                    "the guest stopped while running a command; see {}",
                    self.dir.join("console.log").display()
                );
            }
            if started.elapsed() > timeout {
                bail!(
                    "the guest did not finish the command within {timeout:?}; see {}",
                    self.dir.join("console.log").display()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Distinct per command of this process (a counter; the pid tells processes apart).
fn unique_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// `qemu up`: boots the guest in the background; returns once the parent and
/// hotup_child_v1 are loaded.
pub fn up(ctx: &Ctx) -> Result<()> {
    let g = Guest::of(ctx);
    if let Some(pid) = g.pid() {
        bail!("a guest is already running for this checkout (QEMU pid {pid}); use it, or stop it with `cargo xtask qemu down`");
    }
    let k = kernel::ensure(ctx, false)?;
    crate::modules::build_with(ctx, &k)?;
    start(ctx, &k, &g)
}

fn start(ctx: &Ctx, k: &KernelBuild, g: &Guest) -> Result<()> {
    let accel = qemu::accel(ctx, k)?;
    qemu::prepare_dir(ctx, &g.dir, "guest", &ctx.repo.join("qemu/agent.sh"))?;
    std::fs::create_dir_all(g.dir.join("cmd"))?;
    let console =
        std::fs::File::create(g.dir.join("console.log")).context("creating console.log")?;
    let mut cmd = qemu::qemu_command(
        ctx,
        k,
        &g.dir,
        accel,
        qemu::GUEST_MEM,
        qemu::RootCache::None,
    );
    cmd.stdout(Stdio::from(console.try_clone()?))
        .stderr(Stdio::from(console))
        .process_group(0);
    let mut child = cmd
        .spawn()
        .context("starting qemu-system-x86_64 (run `cargo xtask setup`)")?;
    std::fs::write(g.dir.join("qemu.pid"), child.id().to_string())?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} guest: {msg} [{elapsed}]")
            .expect("static template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message(format!(
        "booting ({accel}) and loading hotup_parent + hotup_child_v1"
    ));
    let started = Instant::now();
    let ready = g.dir.join("ready");
    loop {
        if let Ok(r) = std::fs::read_to_string(&ready) {
            bar.finish_and_clear();
            if !r.starts_with("ready") {
                bail!("the guest booted but loading the modules failed:\n{r}");
            }
            eprintln!(
                "guest up in {:.1?} (QEMU pid {}, {accel}): {}; console: {}",
                started.elapsed(),
                child.id(),
                r.trim(),
                g.dir.join("console.log").display()
            );
            return Ok(());
        }
        let exited = child.try_wait().context("checking on QEMU")?;
        if exited.is_some() || started.elapsed() > BOOT_TIMEOUT {
            bar.finish_and_clear();
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(g.dir.join("qemu.pid"));
            let console = std::fs::read_to_string(g.dir.join("console.log")).unwrap_or_default();
            let tail: Vec<_> = console
                .lines()
                .rev()
                .take(25)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let why = match exited {
                Some(status) => format!("QEMU exited ({status})"),
                None => format!("the guest did not come up within {BOOT_TIMEOUT:?}"),
            };
            bail!("{why}; last console lines:\n{}", tail.join("\n"));
        }
        std::thread::sleep(POLL * 4);
    }
}

/// Asks the agent to shut the guest down; kills QEMU if it does not stop in time.
fn stop(g: &Guest, grace: Duration) -> Result<()> {
    let Some(pid) = g.pid() else { return Ok(()) };
    std::fs::write(g.dir.join("shutdown"), "")?;
    let started = Instant::now();
    while g.running() && started.elapsed() < grace {
        std::thread::sleep(POLL * 2);
    }
    if g.running() {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    let _ = std::fs::remove_file(g.dir.join("qemu.pid"));
    Ok(())
}

/// `qemu down`.
pub fn down(ctx: &Ctx) -> Result<()> {
    let g = Guest::of(ctx);
    if !g.running() {
        bail!("no guest is running for this checkout (start one with `cargo xtask qemu up`)");
    }
    stop(&g, Duration::from_secs(60))?;
    eprintln!(
        "guest stopped; console: {}, dmesg: {}",
        g.dir.join("console.log").display(),
        g.dir.join("dmesg.txt").display()
    );
    Ok(())
}

/// `qemu status`.
pub fn status(ctx: &Ctx) -> Result<()> {
    let g = Guest::of(ctx);
    match g.pid() {
        None => println!("no guest running"),
        Some(pid) => {
            let (rc, out) = g.exec("cat /dev/hotup-ctl", Duration::from_secs(30))?;
            println!("guest running (QEMU pid {pid}, folder {})", g.dir.display());
            if rc == 0 {
                println!("hotup: {}", out.trim());
            } else {
                println!("hotup: control node not readable: {}", out.trim());
            }
        }
    }
    Ok(())
}
