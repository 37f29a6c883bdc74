//! `cargo xtask fuzz`: the state blob reader under libFuzzer (cargo-fuzz).
//!
//! The toolchain is stable rustc; cargo-fuzz needs `-Z` flags, which
//! `RUSTC_BOOTSTRAP=1` allows on stable. The corpus starts from the seeds in
//! `state_abi/fuzz/seeds` (valid v1 and v2 blobs).

use crate::paths::Ctx;
use crate::progress::{describe, run_logged};
use anyhow::{bail, Context, Result};
use std::process::Command;

const TARGET: &str = "blob_reader";

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Stop after this many executions instead (for long runs).
    #[arg(long)]
    runs: Option<u64>,
}

fn cargo_fuzz_installed() -> bool {
    Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn run(ctx: &Ctx, args: &FuzzArgs) -> Result<()> {
    let out = ctx.out().join("fuzz");
    std::fs::create_dir_all(&out)?;
    if !cargo_fuzz_installed() {
        run_logged(
            "fuzz: cargo install cargo-fuzz (about 1 min)",
            Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]),
            &out.join("install.log"),
        )?;
    }
    let fuzz_dir = ctx.repo.join("state_abi/fuzz");
    let corpus = out.join("corpus");
    std::fs::create_dir_all(&corpus)?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", TARGET])
        .arg(&corpus)
        .arg(fuzz_dir.join("seeds"))
        .arg("--")
        .arg(format!("-artifact_prefix={}/", out.display()))
        .arg("-max_len=4096")
        .arg("-print_final_stats=1");
    match args.runs {
        Some(n) => cmd.arg(format!("-runs={n}")),
        None => cmd.arg(format!("-max_total_time={}", args.seconds)),
    };
    let log = out.join("fuzz.log");
    let result = run_logged(&format!("fuzz: {TARGET}"), &mut cmd, &log);
    let text =
        std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
    let stat = |key: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(key)
                .map(|v| v.trim().trim_start_matches(':').trim().to_owned())
        })
    };
    let execs = stat("stat::number_of_executed_units").unwrap_or_else(|| "?".into());
    let rate = stat("stat::average_exec_per_sec").unwrap_or_else(|| "?".into());
    if let Err(e) = result {
        let crash = text
            .lines()
            .find(|l| l.contains("Test unit written to"))
            .unwrap_or("no artifact line");
        bail!(
            "the fuzzer found a failure after {execs} executions: {crash}\n\
             reproduce with: cd {} && RUSTC_BOOTSTRAP=1 cargo fuzz run {TARGET} <artifact>\n{e:#}",
            fuzz_dir.display()
        );
    }
    println!(
        "fuzz {TARGET}: {execs} executions, {rate} exec/s, 0 crashes (`{}`)",
        describe(&cmd)
    );
    Ok(())
}
