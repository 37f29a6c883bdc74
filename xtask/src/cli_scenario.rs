//! The `upgrade-child-cli` scenario: the user's own commands, run as a user
//! would: `cargo xtask qemu up`, a verifying fio started in the guest with
//! `qemu exec`, `upgrade-child --to v2`, `--to v1`, `--to v2` while it runs,
//! then `qemu down`. Each command's exit status and output are checked.

use crate::guest::Guest;
use crate::paths::Ctx;
use anyhow::{Context, Result};
use std::process::Command;
use std::time::{Duration, Instant};
use userspace_tests::GuestOutcome;

const MIB: u32 = 64;
const RUNTIME_S: u64 = 40;

struct Ktap {
    lines: Vec<String>,
    n: usize,
}

impl Ktap {
    fn check(&mut self, desc: &str, ok: bool, why: impl FnOnce() -> String) -> bool {
        self.n += 1;
        self.lines.push(if ok {
            format!("ok {} {desc}", self.n)
        } else {
            format!("not ok {} {desc} # {}", self.n, why())
        });
        ok
    }
    fn diag(&mut self, d: &str) {
        for l in d.lines() {
            self.lines.push(format!("# {l}"));
        }
    }
}

fn xtask(args: &[&str]) -> Result<(i32, String)> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let out = Command::new(exe)
        .args(args)
        .output()
        .with_context(|| format!("running cargo xtask {}", args.join(" ")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code().unwrap_or(-1), text))
}

/// Runs the scenario; the outcome is judged like a guest scenario's.
pub fn run(ctx: &Ctx) -> Result<GuestOutcome> {
    let g = Guest::of(ctx);
    let mut k = Ktap {
        lines: vec!["KTAP version 1".into()],
        n: 0,
    };
    if g.running() {
        k.check("no other guest is running", false, || {
            "a guest from `qemu up` is running; stop it first".into()
        });
        k.lines.push(format!("1..{}", k.n));
        return Ok(GuestOutcome {
            exit_status: Some(1),
            ktap: k.lines.join("\n"),
            ..Default::default()
        });
    }
    let (rc, out) = xtask(&["qemu", "up"])?;
    if k.check("cargo xtask qemu up", rc == 0, || {
        format!("exit {rc}: {}", out.trim())
    }) {
        let (rc, _) = xtask(&["qemu", "up"])?;
        k.check("a second qemu up is refused", rc != 0, || {
            "it succeeded".into()
        });
        let start = format!(
            ". \"{repo}/userspace-tests/guest/hotup.sh\"; D=$HOTUP_OUT/cli; mkdir -p $D; \
             HOTUP_OUT=$D fio_prefill {MIB} > /dev/null && \
             ( HOTUP_OUT=$D fio_live {MIB} {RUNTIME_S}; wait $FIO; echo $? > $D/fio.rc ) > /dev/null 2>&1 &",
            repo = ctx.repo.display()
        );
        let (rc, out) = xtask(&["qemu", "exec", &start])?;
        k.check(
            "fio with verification started in the guest (qemu exec)",
            rc == 0,
            || format!("exit {rc}: {}", out.trim()),
        );
        for to in ["v2", "v1", "v2"] {
            let (rc, out) = xtask(&["upgrade-child", "--to", to])?;
            let summary = out
                .lines()
                .find(|l| l.starts_with("upgrade "))
                .unwrap_or("")
                .to_owned();
            k.diag(&summary);
            k.check(&format!("upgrade-child --to {to} exits 0"), rc == 0, || {
                format!("exit {rc}: {}", out.trim())
            });
            k.check(
                &format!("upgrade-child --to {to} prints its summary"),
                summary.contains(&format!("(v{}): ok, blackout", &to[1..])),
                || format!("got '{summary}'"),
            );
        }
        let rc_file = g.dir.join("cli/fio.rc");
        let deadline = Instant::now() + Duration::from_secs(RUNTIME_S + 120);
        while !rc_file.exists() && Instant::now() < deadline && g.running() {
            std::thread::sleep(Duration::from_millis(200));
        }
        let fio_rc = std::fs::read_to_string(&rc_file).unwrap_or_default();
        k.check(
            "fio exited 0 (no I/O error, no verify failure)",
            fio_rc.trim() == "0",
            || format!("fio.rc = '{}'", fio_rc.trim()),
        );
        let live = std::fs::read_to_string(g.dir.join("cli/fio-live.json")).unwrap_or_default();
        let verified = userspace_tests::report::parse_fio_json(&live)
            .ok()
            .and_then(|v| {
                v["jobs"]
                    .as_array()?
                    .iter()
                    .find(|j| j["jobname"] == "verify")?["read"]["total_ios"]
                    .as_u64()
            })
            .unwrap_or(0);
        k.diag(&format!("{verified} blocks verified while running"));
        k.check(
            "verify reads happened while the upgrades ran",
            verified > 0,
            || "none".into(),
        );
        let readback = format!(
            ". \"{}/userspace-tests/guest/hotup.sh\"; HOTUP_OUT=$HOTUP_OUT/cli fio_readback {MIB}",
            ctx.repo.display()
        );
        let (rc, out) = xtask(&["qemu", "exec", &readback])?;
        k.check("read-back verifies the whole region", rc == 0, || {
            format!("exit {rc}: {}", out.lines().last().unwrap_or(""))
        });
    }
    let (rc, out) = xtask(&["qemu", "down"])?;
    k.check("cargo xtask qemu down", rc == 0, || {
        format!("exit {rc}: {}", out.trim())
    });
    let (rc, _) = xtask(&["qemu", "status"])?;
    k.check("qemu status works with no guest", rc == 0, || {
        format!("exit {rc}")
    });
    k.lines.push(format!("1..{}", k.n));
    let failed = k.lines.iter().any(|l| l.starts_with("not ok"));
    Ok(GuestOutcome {
        exit_status: Some(i32::from(failed)),
        timed_out: false,
        ktap: k.lines.join("\n"),
        dmesg: std::fs::read_to_string(g.dir.join("dmesg.txt")).unwrap_or_default(),
    })
}
