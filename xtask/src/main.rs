//! `cargo xtask`: hotup's single entry point.

mod bench;
mod cli_scenario;
mod demo;
mod fuzz;
mod guest;
mod kernel;
mod modules;
mod paths;
mod progress;
mod qemu;
mod setup;
mod soak;
mod test;
mod upgrade;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// hotup: hot-upgrade a Linux block driver (a Rust child module) under a tiny
/// parent module, while user space keeps doing I/O on the same open device.
///
/// Every subcommand installs and builds what it needs by itself (as root), so
/// on a fresh Debian machine `cargo xtask test` or `cargo xtask demo` alone is
/// enough. Caches live in $HOTUP_CACHE (default ~/.cache/hotup).
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    propagate_version = true
)]
struct Cli {
    /// Use the debug guest kernel (KASAN, lockdep, kmemleak, UBSAN, KFENCE;
    /// clang-built, cached separately) and modules built for it.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install every prerequisite (apt packages, QEMU, rust-src, bindgen,
    /// kernel source). Idempotent; needs root when something is missing, and
    /// otherwise prints the exact commands to run.
    Setup,
    /// Configure (tinyconfig + qemu/kernel.config) and build the guest kernel.
    /// Cached by kernel version, fragment and rustc version: a rerun does nothing.
    Kernel {
        /// Rebuild even if the cache says the build is up to date.
        #[arg(long)]
        force: bool,
    },
    /// Build the kernel modules through the top-level Makefile
    /// (`make KDIR=<guest kernel build>`), and the test fixtures.
    Build,
    /// Boot the guest kernel under QEMU.
    Qemu {
        #[command(subcommand)]
        cmd: QemuCmd,
    },
    /// Host tests, module build, then every guest scenario (KTAP results).
    Test(test::TestArgs),
    /// The main job: fio with data verification on /dev/hotupblk0 in a guest
    /// while the child is upgraded N times; prints a report and writes
    /// target/hotup/demo/ (report.json, timeline.svg, fio logs, dmesg).
    Demo(demo::DemoArgs),
    /// Upgrade the running child in place by hotupctl (a standby switch by
    /// default, or classic rmmod/insmod) and print what happened: mode,
    /// blackout, parked, drained and handed-over I/O.
    UpgradeChild(upgrade::UpgradeArgs),
    /// Fuzz the state blob reader (cargo-fuzz, libFuzzer); fails on any crash.
    Fuzz(fuzz::FuzzArgs),
    /// Many upgrades back to back under a lost-write-detecting fio, inside
    /// one guest; reports the blackout distribution, errors, lost writes and
    /// dmesg findings (`--debug` for the debug kernel).
    Soak(soak::SoakArgs),
    /// What the parent costs per I/O and what an upgrade costs: hotup
    /// against hotup_mono (the same driver, no parent) and brd in one guest,
    /// blackout against device size and load; prints a table, writes
    /// target/hotup/bench/ (bench.json, overhead.svg, size.svg, load.svg).
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum QemuCmd {
    /// Run a shell script inside a fresh guest; exit with the script's status.
    ///
    /// The guest sees the host's root file system read-only (so host tools and
    /// this checkout are at their usual paths), with tmpfs on /tmp. Built
    /// modules are in $HOTUP_MODULES (target/hotup/modules of this checkout).
    /// $HOTUP_OUT is a writable folder shared with the host
    /// (target/hotup/runs/<name>/), which also receives console.log and
    /// dmesg.txt.
    Run {
        /// The script to run (executed with /bin/sh in the guest).
        #[arg(long)]
        script: PathBuf,
        /// Kill the guest after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Do not stream the guest console (it is still saved).
        #[arg(long)]
        quiet: bool,
    },
    /// Boot a long-lived guest in the background with hotup_parent and
    /// hotup_child_v1 loaded; returns once /dev/hotupblk0 is ready.
    Up,
    /// Stop the long-lived guest; its console and dmesg stay in target/hotup/guest/.
    Down,
    /// Say whether a long-lived guest is running, with hotup's status line.
    Status,
    /// Run a shell command in the long-lived guest; print its output and
    /// exit with its status. The guest's writable shared folder is $HOTUP_OUT.
    Exec {
        /// The command (run with /bin/sh -c in the guest).
        #[arg(required = true, trailing_var_arg = true)]
        command: Vec<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let profile = if cli.debug {
        paths::Profile::Debug
    } else {
        paths::Profile::Release
    };
    let ctx = paths::Ctx::discover(profile)?;
    match cli.cmd {
        Cmd::Setup => setup::ensure(&ctx),
        Cmd::Kernel { force } => kernel::ensure(&ctx, force).map(|_| ()),
        Cmd::Build => modules::build_all(&ctx).map(|_| ()),
        Cmd::Qemu {
            cmd:
                QemuCmd::Run {
                    script,
                    timeout,
                    quiet,
                },
        } => {
            let status = qemu::run_script_cmd(&ctx, &script, timeout, !quiet)?;
            std::process::exit(status);
        }
        Cmd::Qemu { cmd: QemuCmd::Up } => guest::up(&ctx),
        Cmd::Qemu { cmd: QemuCmd::Down } => guest::down(&ctx),
        Cmd::Qemu {
            cmd: QemuCmd::Status,
        } => guest::status(&ctx),
        Cmd::Qemu {
            cmd: QemuCmd::Exec { command, timeout },
        } => {
            let (rc, out) = guest::Guest::of(&ctx)
                .exec(&command.join(" "), std::time::Duration::from_secs(timeout))?;
            print!("{out}");
            std::process::exit(rc);
        }
        Cmd::Demo(args) => {
            if !demo::run(&ctx, &args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::UpgradeChild(args) => {
            if !upgrade::run(&ctx, &args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Fuzz(args) => fuzz::run(&ctx, &args),
        Cmd::Soak(args) => {
            if !soak::run(&ctx, &args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Bench(args) => {
            if !bench::run(&ctx, &args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Test(args) => {
            let ok = test::run(&ctx, &args)?;
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
