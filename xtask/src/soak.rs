//! `cargo xtask soak`: many classic upgrades back to back under the
//! lost-write-detecting fio workload, driven inside one guest
//! (`userspace-tests/soak/soak.sh`) so an upgrade costs what the kernel
//! costs, not the host's command channel. Prints progress while it runs and
//! a report: the blackout distribution, fio's passes, errors and verify
//! failures, and dmesg findings; `target/hotup/soak/report.json`.

use crate::paths::Ctx;
use crate::qemu::{self, RunOpts};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};
use userspace_tests::report::{
    blackout_stats, parse_fio_json, soak_blackouts, stats_of, BlackoutStats,
};
use userspace_tests::{dmesg_problems, judge};

#[derive(clap::Args)]
pub struct SoakArgs {
    /// Consecutive upgrades (v1->v2->v1...; every 10th by rmmod + insmod).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    upgrades: u32,
    /// Size of the device in MiB (each fio pass writes and verifies all of it).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    mib: u32,
    /// Fault injection into every upgraded child (e.g. inject_lost_writes=64):
    /// the soak must then fail.
    #[arg(long, value_name = "PARAM=VALUE")]
    inject: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct SoakReport {
    kernel: &'static str,
    upgrades_requested: u32,
    upgrades_done: usize,
    /// Upgrades during which the disk completed writes (the rest fell in a
    /// pass's verify phase); from the guest's `soak: done` line.
    upgrades_under_writes: Option<u64>,
    blackout: Option<BlackoutStats>,
    fio_passes: u64,
    blocks_written: u64,
    blocks_verified: u64,
    io_errors: u64,
    /// Passes that failed (fio's verification sees a lost or stale write).
    verify_failures: u64,
    /// Passes with no result (cut short, e.g. by the time limit).
    passes_incomplete: u64,
    dmesg_problems: Vec<String>,
    subtests_failed: Vec<String>,
    wall_s: f64,
    ok: bool,
}

/// Sums the writer's pass JSONs: (passes, written, verified, errors, failed
/// passes, passes without a result).
fn fio_totals(dir: &Path) -> (u64, u64, u64, u64, u64, u64) {
    let mut t = (0, 0, 0, 0, 0, 0);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return t;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("fio-pass-") && name.ends_with(".json")) {
            continue;
        }
        let Ok(v) = std::fs::read_to_string(e.path())
            .map_err(anyhow::Error::from)
            .and_then(|s| parse_fio_json(&s))
        else {
            // Cut short (killed at the time limit): no JSON.
            t.5 += 1;
            continue;
        };
        for j in v["jobs"].as_array().into_iter().flatten() {
            t.0 += 1;
            t.1 += j["write"]["total_ios"].as_u64().unwrap_or(0);
            t.2 += j["read"]["total_ios"].as_u64().unwrap_or(0);
            let err = j["error"].as_u64().unwrap_or(0);
            t.3 += err;
            t.4 += u64::from(err != 0);
        }
    }
    t
}

/// Runs the soak; returns whether it passed.
pub fn run(ctx: &Ctx, args: &SoakArgs) -> Result<bool> {
    let k = crate::kernel::ensure(ctx, false)?;
    crate::modules::build_with(ctx, &k)?;
    let debug = ctx.profile == crate::paths::Profile::Debug;
    // Generous: an upgrade and the 200 requests after it take 0.2-0.7 s
    // under TCG with the release kernel (the loop is one process in the
    // guest), several times that with the debug kernel; plus boot, prefill
    // and the last pass. A stuck upgrade is caught sooner by the guest's own
    // 120 s wait.
    let per = if debug { 20 } else { 5 };
    let timeout = Duration::from_secs(600 + u64::from(args.upgrades) * per);
    eprintln!(
        "soak: {} upgrades under fio on a {} MiB device, {} kernel; allowing up to {} min",
        args.upgrades,
        args.mib,
        ctx.profile.name(),
        timeout.as_secs() / 60
    );
    let mut env = vec![
        ("HOTUP_SOAK_UPGRADES", args.upgrades.to_string()),
        ("HOTUP_SOAK_MIB", args.mib.to_string()),
    ];
    if !args.inject.is_empty() {
        env.push(("HOTUP_INJECT", args.inject.join(" ")));
    }
    let name = "soak";
    let started = Instant::now();
    let r = qemu::run_following(
        ctx,
        &k,
        &RunOpts {
            root_cache: crate::qemu::RootCache::for_script(),
            name,
            script: &ctx.repo.join("userspace-tests/soak/soak.sh"),
            timeout,
            stream: false,
            env,
            mem: None,
            nvme: 0,
            nvme_iops: 0,
        },
        "soak",
        args.upgrades,
    );
    let r = r?;
    let verdict = judge(&r.outcome);
    // Every upgrade's blackout from the soak's own log: a long run wraps
    // the kernel's ring buffer (dmesg.txt keeps its end only).
    let blackout = std::fs::read_to_string(r.run_dir.join("soak.log"))
        .ok()
        .and_then(|l| stats_of(soak_blackouts(&l)))
        .or_else(|| blackout_stats(&r.outcome.dmesg));
    let (passes, written, verified, errors, failed_passes, incomplete) = fio_totals(&r.run_dir);
    // And the console besides dmesg: every warning-or-worse line of the
    // whole run reaches it (loglevel=5), even one the ring buffer lost.
    let mut problems = dmesg_problems(&r.outcome.dmesg);
    let console = std::fs::read_to_string(r.run_dir.join("console.log")).unwrap_or_default();
    for p in dmesg_problems(&console) {
        if !problems.contains(&p) {
            problems.push(p);
        }
    }
    let problems_empty = problems.is_empty();
    let report = SoakReport {
        kernel: ctx.profile.name(),
        upgrades_requested: args.upgrades,
        upgrades_done: blackout.map_or(0, |b| b.upgrades),
        upgrades_under_writes: std::fs::read_to_string(r.run_dir.join("console.log"))
            .ok()
            .and_then(|c| under_writes(&c)),
        blackout,
        fio_passes: passes,
        blocks_written: written,
        blocks_verified: verified,
        io_errors: errors,
        verify_failures: failed_passes,
        passes_incomplete: incomplete,
        dmesg_problems: problems,
        subtests_failed: verdict
            .subtests
            .results
            .iter()
            .filter(|s| !s.ok)
            .map(|s| s.description.clone())
            .collect(),
        wall_s: started.elapsed().as_secs_f64(),
        ok: verdict.ok && problems_empty,
    };
    let out = ctx.out().join("soak");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )
    .with_context(|| format!("writing {}", out.join("report.json").display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report, &verdict.reasons);
        println!(
            "files: {} and {}",
            out.join("report.json").display(),
            r.run_dir.display()
        );
    }
    Ok(report.ok)
}

/// `K` from the guest's `soak: done upgrades=N under_writes=K` line.
fn under_writes(console: &str) -> Option<u64> {
    console
        .lines()
        .filter_map(|l| l.split("soak: done ").nth(1))
        .find_map(|rest| state_abi::lines::Fields::new(rest.trim()).num("under_writes"))
}

fn print(r: &SoakReport, reasons: &[String]) {
    println!(
        "hotup soak ({} kernel): {} of {} upgrades in {:.0} s",
        r.kernel, r.upgrades_done, r.upgrades_requested, r.wall_s
    );
    if let Some(k) = r.upgrades_under_writes {
        println!("upgrades while fio wrote: {k} (the others fell in a verify phase)");
    }
    if let Some(b) = r.blackout {
        let ms = |n: u64| n as f64 / 1e6;
        println!(
            "blackout: min {:.3} ms, median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            ms(b.min_ns),
            ms(b.median_ns),
            ms(b.p99_ns),
            ms(b.max_ns)
        );
    }
    println!(
        "fio: {} passes ({} cut short), {} blocks written, {} verified; I/O errors {}, failed passes (lost or stale writes) {}",
        r.fio_passes, r.passes_incomplete, r.blocks_written, r.blocks_verified, r.io_errors, r.verify_failures
    );
    println!(
        "dmesg: {}",
        if r.dmesg_problems.is_empty() {
            "clean".to_owned()
        } else {
            r.dmesg_problems.join(" | ")
        }
    );
    for s in &r.subtests_failed {
        println!("failed check: {s}");
    }
    if !r.ok {
        for why in reasons {
            println!("# {why}");
        }
    }
    println!("result: {}", if r.ok { "PASS" } else { "FAIL" });
}

#[cfg(test)]
mod tests {
    #[test]
    fn under_writes_from_console() {
        let c = "boot\nsoak: 3/3 v2 one-process blackout_ns=1\r\nsoak: done upgrades=3 under_writes=2\r\n";
        assert_eq!(super::under_writes(c), Some(2));
        assert_eq!(super::under_writes("soak: 1/1 v2\n"), None);
    }
}
