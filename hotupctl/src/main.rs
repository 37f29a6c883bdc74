//! `hotupctl`: the operator's tool for a host running the hotup parent.
//!
//! ```text
//! hotupctl status [--json]
//! hotupctl upgrade FILE.ko [--mode auto|standby|classic] [--param KEY=VALUE]... [--schema N] [--keep-old] [--json]
//! hotupctl switch [--json]
//! hotupctl abort
//! hotupctl discard-stash
//! ```
//!
//! `upgrade` checks the file first (a kernel module, built for this kernel),
//! then, in standby mode (the default where both children support it),
//! loads it next to the active child, where it registers as the standby,
//! and asks the parent to switch: the module load happens before anything
//! is frozen. Classic mode unloads the active child and loads the new one,
//! as `rmmod` + `insmod` by hand do.

mod ops;

use hotupctl::{event, kmsg, module, status, swap};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hotupctl",
    version,
    about = "Control hotup: status, upgrades (standby or classic), switch, abort"
)]
struct Cli {
    /// The parent's control node.
    #[arg(
        long,
        global = true,
        default_value = "/dev/hotup-ctl",
        value_name = "PATH"
    )]
    ctl: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The parent's state: active, standby and retired children, I/O, upgrades.
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Upgrade to the child module FILE.ko.
    Upgrade(UpgradeArgs),
    /// Switch from the active child to the loaded standby.
    Switch {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Call off a standby switch that is still draining.
    Abort,
    /// Forget every saved state and free the preserved data (no child may be
    /// attached): the next child starts with an empty device.
    DiscardStash,
    /// Check that hotup can build and load its modules on the running
    /// kernel (Rust support, its Rust build metadata, the exact rustc,
    /// symbol versions, module signing) and whether it is running; each
    /// failed check says what to do. Exit status 1 if any check failed.
    Doctor {
        /// The kernel build directory (default /lib/modules/$(uname -r)/build).
        #[arg(long, value_name = "DIR")]
        kdir: Option<PathBuf>,
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// How `upgrade` swaps children.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Mode {
    /// Standby where the new child can be one, else classic (and says so).
    Auto,
    /// Load next to the active child, then switch; fail if that is impossible.
    Standby,
    /// Unload the active child, then load the new one.
    Classic,
}

#[derive(clap::Args)]
pub struct UpgradeArgs {
    /// The new child's module file.
    file: PathBuf,
    /// How to swap the children.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    mode: Mode,
    /// A module parameter for the new child (repeatable), e.g. latency_us=2000.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    params: Vec<String>,
    /// Device-state schema the old child exports (e.g. 1 when going back to
    /// a v1 child); default: the old child's own.
    #[arg(long)]
    schema: Option<u32>,
    /// Leave the retired old child loaded after a standby switch (default:
    /// unload it).
    #[arg(long)]
    keep_old: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Accepts `KEY=VALUE` with a non-empty key of word characters.
fn parse_param(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _))
            if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Ok(s.to_owned())
        }
        _ => Err(format!("{s:?} is not KEY=VALUE (e.g. latency_us=2000)")),
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("hotupctl: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.cmd {
        Cmd::Status { json } => ops::status(&cli.ctl, *json),
        Cmd::Upgrade(a) => ops::upgrade(&cli.ctl, a),
        Cmd::Switch { json } => ops::switch(&cli.ctl, *json),
        Cmd::Abort => ops::simple(&cli.ctl, "abort"),
        Cmd::DiscardStash => ops::simple(&cli.ctl, "discard-stash"),
        Cmd::Doctor { kdir, json } => doctor(&cli.ctl, kdir.as_deref(), *json),
    }
}

/// `doctor`: gathers the facts, prints the checks, fails if one failed.
fn doctor(ctl: &std::path::Path, kdir: Option<&std::path::Path>, json: bool) -> Result<()> {
    use hotupctl::doctor;
    let facts = doctor::Facts::gather(kdir, ctl)?;
    let checks = doctor::checks(&facts);
    let ok = doctor::all_ok(&checks);
    if json {
        let v = serde_json::json!({
            "release": facts.release,
            "kdir": facts.kdir,
            "ok": ok,
            "checks": checks,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).context("encoding the checks as JSON")?
        );
    } else {
        print!("{}", doctor::render(&facts.release, &checks));
    }
    if !ok {
        anyhow::bail!("hotup cannot work on this kernel yet (see the failed checks above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn upgrade_arguments() {
        let c = Cli::try_parse_from([
            "hotupctl",
            "upgrade",
            "v2.ko",
            "--mode",
            "classic",
            "--param",
            "latency_us=5",
            "--schema",
            "1",
        ])
        .unwrap();
        let Cmd::Upgrade(a) = c.cmd else {
            panic!("not upgrade")
        };
        assert_eq!(a.mode, Mode::Classic);
        assert_eq!(a.params, ["latency_us=5"]);
        assert_eq!(a.schema, Some(1));
        assert!(!a.keep_old && !a.json);
        let c = Cli::try_parse_from(["hotupctl", "upgrade", "v2.ko"]).unwrap();
        let Cmd::Upgrade(a) = c.cmd else {
            panic!("not upgrade")
        };
        assert_eq!(a.mode, Mode::Auto);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(Cli::try_parse_from(["hotupctl", "upgrade", "v2.ko", "--param", "=3"]).is_err());
        assert!(
            Cli::try_parse_from(["hotupctl", "upgrade", "v2.ko", "--param", "novalue"]).is_err()
        );
        assert!(Cli::try_parse_from(["hotupctl", "upgrade", "v2.ko", "--mode", "fast"]).is_err());
        assert!(Cli::try_parse_from(["hotupctl", "upgrade"]).is_err());
        assert!(Cli::try_parse_from(["hotupctl", "frobnicate"]).is_err());
    }

    #[test]
    fn global_ctl_path() {
        let c = Cli::try_parse_from(["hotupctl", "status", "--ctl", "/tmp/x", "--json"]).unwrap();
        assert_eq!(c.ctl, PathBuf::from("/tmp/x"));
    }
}
