//! `cargo xtask upgrade-child`: an upgrade of the running child by
//! `hotupctl`, standby by default or classic, in the long-lived guest
//! (default) or on this machine (`--target local`).

use crate::guest::Guest;
use crate::paths::Ctx;
use crate::progress::run_quiet;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use userspace_tests::report::{upgrade_outcome, UpgradeOutcome};

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The guest started by `cargo xtask qemu up`.
    Guest,
    /// This machine (a real host with the modules built for its kernel); needs root.
    Local,
}

#[derive(clap::Args)]
pub struct UpgradeArgs {
    /// The child to upgrade to: `v1`, `v2` (built from child_driver/), or a
    /// path to a child module (`.ko`).
    #[arg(long)]
    to: String,
    /// Module parameters for the new child (repeatable), e.g. `--param latency_us=50`.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Where to upgrade.
    #[arg(long, value_enum, default_value_t = Target::Guest)]
    target: Target,
    /// How: `standby` loads the new child next to the old one and switches
    /// (its load is outside the blackout); `classic` unloads the old one and
    /// loads the new one; `auto` is standby where it can be (not when the
    /// new child has the active one's module name) and says so.
    #[arg(long, value_enum, default_value_t = SwapMode::Auto)]
    mode: SwapMode,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// The module to load and the device-state schema it reads.
pub struct ChildModule {
    pub path: PathBuf,
    pub name: String,
    pub schema: u32,
}

/// Resolves `v2` or a `.ko` path to a module, building the children if needed.
pub fn resolve(ctx: &Ctx, to: &str) -> Result<ChildModule> {
    let version = to.strip_prefix('v').and_then(|v| v.parse::<u32>().ok());
    let path = match version {
        Some(v) => {
            crate::modules::build_all(ctx)?;
            ctx.module_dir().join(format!("hotup_child_v{v}.ko"))
        }
        None => {
            let dest = ctx.module_dir();
            std::fs::create_dir_all(&dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            crate::modules::build_hotupctl(ctx, &dest)?;
            PathBuf::from(to).canonicalize().with_context(|| {
                format!("module {to} not found; give `v1`, `v2` or the path of a child .ko")
            })?
        }
    };
    if !path.exists() {
        bail!(
            "no child module {} (this checkout builds v1 and v2; run `cargo xtask build`)",
            path.display()
        );
    }
    let name = run_quiet(Command::new("modinfo").args(["-F", "name"]).arg(&path))
        .with_context(|| format!("reading the module name of {}", path.display()))?
        .trim()
        .to_owned();
    let Some(schema) = name
        .strip_prefix("hotup_child_v")
        .and_then(|v| v.parse().ok())
    else {
        bail!(
            "{} is module '{name}', not a hotup child (hotup_child_vN)",
            path.display()
        );
    };
    Ok(ChildModule { path, name, schema })
}

/// How children are swapped (`hotupctl upgrade --mode`).
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum SwapMode {
    /// Standby where possible, else classic (hotupctl says why).
    Auto,
    /// The new child is loaded as the standby, then `switch`.
    Standby,
    /// The old child is unloaded, then the new one loaded.
    Classic,
}

impl SwapMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SwapMode::Auto => "auto",
            SwapMode::Standby => "standby",
            SwapMode::Classic => "classic",
        }
    }
}

/// The guest-side (or local) sequence of one classic upgrade. It prints
/// `FROM <module>`, `AT <guest ms since the epoch>` just before it starts,
/// `OUT <error>` lines, `RC <status>`, then the kernel log lines logged
/// meanwhile.
pub fn script(ctx: &Ctx, m: &ChildModule, params: &[String], mode: SwapMode) -> String {
    let params: Vec<String> = params
        .iter()
        .map(|p| format!("'{}'", p.replace('\'', "")))
        .collect();
    // hotupctl's JSON gives the start of the switch (`started_ms`).
    format!(
        "mark=$(dmesg | wc -l)\n\
         echo \"FROM $(tr ' ' '\\n' < /dev/hotup-ctl | sed -n 's/^child=//p' | grep -v '^-$')\"\n\
         '{mods}/hotupctl' upgrade '{ko}' --mode {mode} --schema {schema} --json {params} > /tmp/upgrade.out 2>&1\n\
         rc=$?\n\
         sed -n 's/^ *\"started_ms\": \\([0-9]*\\).*/AT \\1/p' /tmp/upgrade.out\n\
         grep '^hotupctl:' /tmp/upgrade.out | sed 's/^/OUT /'\n\
         echo \"RC $rc\"\n\
         dmesg | tail -n +$((mark + 1))\n",
        mods = ctx.module_dir().display(),
        ko = m.path.display(),
        mode = mode.as_str(),
        schema = m.schema,
        params = params
            .iter()
            .map(|p| format!("--param {p}"))
            .collect::<Vec<_>>()
            .join(" "),
)
}

/// Runs the upgrade through `exec` and reads its outcome, and the guest
/// time (ms since the epoch) at which the sequence began.
pub fn perform(
    ctx: &Ctx,
    m: &ChildModule,
    params: &[String],
    mode: SwapMode,
    exec: impl Fn(&str) -> Result<(i32, String)>,
) -> Result<(UpgradeOutcome, u64)> {
    let (_, out) = exec(&script(ctx, m, params, mode))?;
    // No child loaded (a previous upgrade was refused): this attaches one.
    let from = out
        .lines()
        .find_map(|l| l.strip_prefix("FROM "))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .unwrap_or("(none)")
        .to_owned();
    let at_ms = out
        .lines()
        .find_map(|l| l.strip_prefix("AT "))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let rc: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("RC "))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or(1);
    let insmod_out: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("OUT ")).collect();
    let mut outcome = upgrade_outcome(&from, &m.name, rc, &out);
    if !outcome.ok && !insmod_out.is_empty() {
        let e = outcome.error.take().unwrap_or_default();
        outcome.error = Some(format!("{}; {e}", insmod_out.join(" ")));
    }
    Ok((outcome, at_ms))
}

/// Checks that the module was built for the kernel that will load it.
fn check_vermagic(ko: &Path, running: &str) -> Result<()> {
    let vermagic = run_quiet(Command::new("modinfo").args(["-F", "vermagic"]).arg(ko))?;
    let built_for = vermagic.split_whitespace().next().unwrap_or("");
    if built_for != running.trim() {
        bail!(
            "{} was built for kernel {built_for} but the target runs {}; rebuild it against that kernel (`cargo xtask build` for the guest)",
            ko.display(),
            running.trim()
        );
    }
    Ok(())
}

/// Human-readable one-upgrade summary.
pub fn summary_line(o: &UpgradeOutcome) -> String {
    let opt = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
    if o.ok {
        format!(
            "upgrade {} (v{}) -> {} (v{}): ok, {}, blackout {:.3} ms{}, parked {} I/Os, drained {} in flight, handed over {}, generation {}",
            o.from,
            opt(o.from_version),
            o.to,
            opt(o.to_version),
            o.mode,
            o.blackout_ns.unwrap_or(0) as f64 / 1e6,
            o.phases
                .describe()
                .map_or(String::new(), |p| format!(" ({p})")),
            opt(o.parked_ios),
            opt(o.drained_ios),
            opt(o.handed_over_ios),
            opt(o.generation)
        ) + if o.idle() {
            "; the device was idle (nothing parked, drained or handed over): start a workload first to see an upgrade under load"
        } else {
            ""
        }
    } else {
        format!(
            "upgrade {} -> {}: FAILED: {}",
            o.from,
            o.to,
            o.error.as_deref().unwrap_or("unknown")
        )
    }
}

pub fn run(ctx: &Ctx, args: &UpgradeArgs) -> Result<bool> {
    let m = resolve(ctx, &args.to)?;
    let (outcome, _) = match args.target {
        Target::Guest => {
            let g = Guest::of(ctx);
            if !g.running() {
                bail!("no guest is running: start one with `cargo xtask qemu up` (or use --target local on a host with hotup loaded)");
            }
            let (_, kernel) = g.exec("uname -r", Duration::from_secs(30))?;
            check_vermagic(&m.path, &kernel)?;
            eprintln!(
                "upgrade-child: upgrade to {} by hotupctl --mode {}",
                m.name,
                args.mode.as_str()
            );
            perform(ctx, &m, &args.params, args.mode, |s| {
                g.exec(s, Duration::from_secs(120))
            })?
        }
        Target::Local => {
            if run_quiet(Command::new("id").arg("-u"))?.trim() != "0" {
                bail!("--target local loads and unloads kernel modules: run it as root");
            }
            if !Path::new("/dev/hotup-ctl").exists() {
                bail!("hotup_parent is not loaded on this machine: insmod hotup_parent.ko and a child first");
            }
            check_vermagic(&m.path, &run_quiet(Command::new("uname").arg("-r"))?)?;
            eprintln!(
                "upgrade-child: upgrade to {} by hotupctl --mode {}",
                m.name,
                args.mode.as_str()
            );
            perform(ctx, &m, &args.params, args.mode, |s| {
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(s)
                    .output()
                    .context("running the upgrade sequence")?;
                Ok((
                    out.status.code().unwrap_or(1),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                ))
            })?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        println!("{}", summary_line(&outcome));
        if !outcome.ok {
            println!(
                "the device is parked: I/O waits, nothing is lost. Load a child that can adopt the stashed state \
                 (the one that was running, e.g. `cargo xtask upgrade-child --to {}` after fixing the problem).",
                outcome.from.trim_start_matches("hotup_child_")
            );
        }
    }
    Ok(outcome.ok)
}
