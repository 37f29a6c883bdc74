//! The `upgrade-child-cli` scenario: the user's own commands, run as a user
//! would: `cargo xtask qemu up`; the README's manual sequence as written (a
//! fio started by `qemu exec` in the background, `upgrade-child --to v2`
//! while it runs: the guest runs commands concurrently, and the upgrade is
//! not of an idle device); the lost-write-detecting fio workload (hotup.sh
//! `fio_live`) started with `qemu exec`, `upgrade-child --to v1`, `--to v2`
//! (standby, the default) and `--to v1 --mode classic`, each while fio is
//! writing (checked before each); the workload stopped after its current
//! verifying pass; `qemu down`. Each command's exit status and output are
//! checked.

use crate::guest::Guest;
use crate::paths::Ctx;
use anyhow::{Context, Result};
use std::process::Command;
use std::time::{Duration, Instant};
use userspace_tests::{GuestOutcome, KtapWriter};

const MIB: u32 = 64;

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

/// The README's "Upgrading by hand", as written: fio by `qemu exec` in the
/// background, then `upgrade-child --to v2` while it runs.
fn readme_sequence(k: &mut KtapWriter, lib: &str) -> Result<()> {
    const FIO: [&str; 13] = [
        "qemu",
        "exec",
        "--",
        "fio",
        "--name=x",
        "--filename=/dev/hotupblk0",
        "--rw=randrw",
        "--direct=1",
        "--ioengine=libaio",
        "--iodepth=16",
        "--size=64M",
        "--time_based",
        "--runtime=60",
    ];
    let fio = std::thread::spawn(|| xtask(&FIO));
    // A second `qemu exec` while the first runs: it returns once the
    // device has completed 500 more requests, i.e. fio is running.
    let (rc, out) = xtask(&["qemu", "exec", &format!("{lib}; wait_completions 500 60")])?;
    k.check(
        "README: a second qemu exec runs while the first one's fio does",
        rc == 0,
        || format!("exit {rc}: {}", out.trim()),
    );
    let (rc, out) = xtask(&["upgrade-child", "--to", "v2"])?;
    let summary = out
        .lines()
        .find(|l| l.starts_with("upgrade "))
        .unwrap_or("")
        .to_owned();
    k.diag(&summary);
    k.check("README: upgrade-child --to v2 exits 0", rc == 0, || {
        format!("exit {rc}: {}", out.trim())
    });
    k.check(
        "README: it was a standby switch (the default)",
        summary.contains("(v2): ok, standby"),
        || format!("got '{summary}'"),
    );
    k.check(
        "README: the device was under load, not idle",
        !summary.contains("the device was idle"),
        || format!("got '{summary}'"),
    );
    let fio = fio
        .join()
        .map_err(|_| anyhow::anyhow!("the fio thread panicked"))??;
    k.check(
        "README: the fio of qemu exec ends with status 0",
        fio.0 == 0,
        || format!("exit {}: {}", fio.0, fio.1.lines().last().unwrap_or("")),
    );
    Ok(())
}

/// Runs the scenario; the outcome is judged like a guest scenario's.
/// `inject` (fault-injection parameters, `k=v ...`) goes to every upgrade.
pub fn run(ctx: &Ctx, inject: &str) -> Result<GuestOutcome> {
    let g = Guest::of(ctx);
    let mut k = KtapWriter::new();
    if g.running() {
        k.check("no other guest is running", false, || {
            "a guest from `qemu up` is running; stop it first".into()
        });
        return Ok(GuestOutcome {
            exit_status: Some(1),
            ktap: k.finish(),
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
        let lib = format!(
            ". \"{}/userspace-tests/guest/hotup.sh\"",
            ctx.repo.display()
        );
        readme_sequence(&mut k, &lib)?;
        let prefill = format!("{lib}; mkdir -p $HOTUP_OUT/cli; HOTUP_OUT=$HOTUP_OUT/cli fio_prefill {MIB} > /dev/null");
        let (rc, out) = xtask(&["qemu", "exec", &prefill])?;
        k.check(
            "prefill the device with verify headers (qemu exec)",
            rc == 0,
            || format!("exit {rc}: {}", out.trim()),
        );
        // The workload runs until told to stop; fio.rc appears when it has.
        let start = format!(
            "{lib}; export HOTUP_OUT=$HOTUP_OUT/cli; \
             ( fio_live {MIB}; wait $FIO; echo $? > $HOTUP_OUT/fio.rc.tmp; wait $FIO_LOAD; \
               mv $HOTUP_OUT/fio.rc.tmp $HOTUP_OUT/fio.rc ) > /dev/null 2>&1 &"
        );
        let (rc, out) = xtask(&["qemu", "exec", &start])?;
        k.check(
            "lost-write-detecting fio started in the guest (qemu exec)",
            rc == 0,
            || format!("exit {rc}: {}", out.trim()),
        );
        let params: Vec<String> = inject
            .split_whitespace()
            .flat_map(|p| ["--param".to_owned(), p.to_owned()])
            .collect();
        for (to, mode) in [("v1", "standby"), ("v2", "standby"), ("v1", "classic")] {
            // Under load means fio is writing now: its writer is alive and
            // the device completes requests.
            let writing = format!(
                "{lib}; test ! -e $HOTUP_OUT/cli/fio.rc.tmp -a ! -e $HOTUP_OUT/cli/fio.rc && wait_writes 200 60"
            );
            let (rc, _) = xtask(&["qemu", "exec", &writing])?;
            k.check(
                &format!("fio is writing before upgrade-child --to {to}"),
                rc == 0,
                || "fio has stopped or the device makes no progress".into(),
            );
            let mut args = vec!["upgrade-child", "--to", to];
            if mode == "classic" {
                args.extend(["--mode", "classic"]);
            }
            args.extend(params.iter().map(String::as_str));
            let (rc, out) = xtask(&args)?;
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
                &format!("upgrade-child --to {to} prints its summary ({mode})"),
                summary.contains(&format!("(v{}): ok, {mode}", &to[1..])),
                || format!("got '{summary}'"),
            );
        }
        let (rc, _) = xtask(&["qemu", "exec", "touch $HOTUP_OUT/cli/fio-live.stop"])?;
        k.check("asked fio to stop after its current pass", rc == 0, || {
            format!("exit {rc}")
        });
        let rc_file = g.dir.join("cli/fio.rc");
        // A pass of 64 MiB takes well under a minute here; a stuck device
        // would be caught by the guest's hung-task detector first.
        let deadline = Instant::now() + Duration::from_secs(300);
        while !rc_file.exists() && Instant::now() < deadline && g.running() {
            std::thread::sleep(Duration::from_millis(200));
        }
        let fio_rc = std::fs::read_to_string(&rc_file).unwrap_or_default();
        k.check(
            "every fio pass verified (no I/O error, no lost or stale write)",
            fio_rc.trim() == "0",
            || {
                format!(
                    "fio.rc = '{}'; see {}",
                    fio_rc.trim(),
                    g.dir.join("cli/fio-live.log").display()
                )
            },
        );
        let (_, totals) = xtask(&[
            "qemu",
            "exec",
            &format!("{lib}; HOTUP_OUT=$HOTUP_OUT/cli fio_live_totals"),
        ])?;
        let t: Vec<u64> = totals
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        k.diag(&format!(
            "fio: {} passes, {} blocks written, {} verified, {} errors",
            t.first().unwrap_or(&0),
            t.get(1).unwrap_or(&0),
            t.get(2).unwrap_or(&0),
            t.get(3).unwrap_or(&0)
        ));
        k.check(
            "verify reads happened while the upgrades ran",
            t.get(2).is_some_and(|v| *v > 0),
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
    Ok(GuestOutcome {
        exit_status: Some(i32::from(k.failed())),
        timed_out: false,
        ktap: k.finish(),
        dmesg: std::fs::read_to_string(g.dir.join("dmesg.txt")).unwrap_or_default(),
    })
}
