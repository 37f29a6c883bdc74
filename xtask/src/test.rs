//! `cargo xtask test`: host tests, module build, then every guest scenario,
//! each in a fresh guest, reported as KTAP and judged by
//! `userspace_tests::judge` (exit status, subtests, clean dmesg).

use crate::paths::Ctx;
use crate::qemu::{self, RunOpts};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use userspace_tests::ktap::{self, KtapWriter};
use userspace_tests::{discover, judge, Scenario, Verdict};

/// A harness self-test: a fixture that breaks one guarantee on purpose, run
/// through the same harness; it passes only if the harness reports the
/// fixture `not ok`, quoting the kernel's report.
struct SelfTest {
    name: &'static str,
    script: &'static str,
    /// A verdict reason must start with this ...
    report: &'static str,
    /// ... and contain this (`""`: anything), to count as the fixture's.
    mentions: &'static str,
    /// Only the debug kernel has the checker (KASAN, lockdep, kmemleak).
    debug_only: bool,
    description: &'static str,
}

const SELFTESTS: &[SelfTest] = &[
    SelfTest {
        name: "harness-catches-warn",
        script: "userspace-tests/fixtures/warn-fixture.sh",
        report: "dmesg: WARNING:",
        mentions: "hotup_warn_fixture",
        debug_only: false,
        description: "the dmesg check can fail: a module that WARNs is reported not ok, WARN quoted",
    },
    SelfTest {
        name: "harness-catches-lost-write",
        script: "userspace-tests/fixtures/lost-write-fixture.sh",
        report: "subtest",
        mentions: "every fio pass verified",
        debug_only: false,
        description: "fio's passes see a lost write: live-classic with children that drop writes after an upgrade is reported not ok",
    },
    SelfTest {
        name: "harness-catches-double-completion",
        script: "userspace-tests/fixtures/nvme-double-completion-fixture.sh",
        report: "subtest",
        mentions: "no stray completion",
        debug_only: false,
        description: "a completion reaped twice is seen: nvme-live-classic with new children that take the controller's completion queue over one entry early (inject_cq_rewind=1) is reported not ok",
    },
    SelfTest {
        name: "harness-catches-partial-adopt",
        script: "userspace-tests/fixtures/nvme-partial-adopt-fixture.sh",
        report: "subtest",
        mentions: "recovers",
        debug_only: false,
        description: "a multi-device adopt that fails half-way must give back what it took: nvme-multi with children that keep the refused switch's first device taken (inject_keep_epoch=1) is reported not ok, the old version's recovery refused as stale",
    },
    SelfTest {
        name: "harness-catches-kasan",
        script: "userspace-tests/fixtures/kasan-fixture.sh",
        report: "dmesg: BUG: KASAN: slab-use-after-free",
        mentions: "",
        debug_only: true,
        description: "KASAN is live: a module's use-after-free is reported not ok, report quoted",
    },
    SelfTest {
        name: "harness-catches-lockdep",
        script: "userspace-tests/fixtures/lockdep-fixture.sh",
        report: "dmesg: WARNING: possible circular locking dependency detected",
        mentions: "",
        debug_only: true,
        description: "lockdep is live: an AB-BA lock order is reported not ok, report quoted",
    },
    SelfTest {
        name: "harness-catches-missing-barrier",
        script: "userspace-tests/fixtures/no-barrier-fixture.sh",
        report: "dmesg: BUG:",
        mentions: "",
        debug_only: true,
        description: "the barrier scenario with the parent's barrier off (inject_no_barrier=1) is reported not ok: KASAN or a fault in freed child code",
    },
    SelfTest {
        name: "harness-catches-blackout-alloc",
        script: "userspace-tests/fixtures/blackout-alloc-fixture.sh",
        report: "dmesg: WARNING: possible circular locking dependency detected",
        mentions: "",
        debug_only: true,
        description: "the gate's lockdep map is live: a GFP_KERNEL allocation while the gate is closed (inject_blackout_alloc=1) is reported not ok",
    },
    SelfTest {
        name: "harness-catches-kmemleak",
        script: "userspace-tests/fixtures/kmemleak-fixture.sh",
        report: "dmesg: kmemleak: ",
        mentions: "suspected memory leak",
        debug_only: true,
        description: "kmemleak is live: a module's leak is reported not ok, report quoted",
    },
];
/// The user's commands (qemu up, upgrade-child x3, qemu down) run from the host.
const CLI: &str = "upgrade-child-cli";

#[derive(clap::Args)]
pub struct TestArgs {
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Run only these scenarios (repeatable; `fault-*` matches by prefix);
    /// skips the host tests.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Skip the host tests (`cargo test --workspace`).
    #[arg(long)]
    no_host: bool,
    /// Stream each guest's console while it runs.
    #[arg(long, short)]
    verbose: bool,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Fault injection: give every child loaded by an upgrade these module
    /// parameters (e.g. `inject_lost_writes=64`), to see a scenario's checks
    /// go red. Such a run is expected to fail.
    #[arg(long, value_name = "PARAM=VALUE")]
    inject: Vec<String>,
    /// Every scenario on this kernel only. Without it (and without
    /// `--scenario`), `test` on the release kernel is the CI tier: the
    /// release suite minus the fault matrix, then the sanitizer self-tests
    /// and the fault matrix on the debug kernel.
    #[arg(long, conflicts_with = "scenarios")]
    all: bool,
    /// The long tier, run before an issue is resolved (about 2.5 h here):
    /// every scenario on the release kernel, every scenario on the debug
    /// kernel, a 50-upgrade soak and the short benchmark, each a `cargo
    /// xtask` run of its own; fails if any does.
    #[arg(long, conflicts_with_all = ["list", "scenarios", "inject", "all"])]
    full: bool,
}

/// The fault matrix's cases the CI tier runs on the debug kernel, under
/// its checkers (on the release kernel only in `--all`/`--full`): the
/// barrier, handover, interrupt-completion, park-deadline and teardown
/// races, where KASAN and lockdep see what a passing run cannot. The rest
/// of the matrix (`bad-child`, `fault-refusals`, `fault-storm`: refusals and
/// rollbacks, each 6x longer under the checkers) runs on the release kernel
/// in CI and on the debug kernel in `--full`, so CI fits its hour.
const FAULT_MATRIX: &[&str] = &[
    "fault-barrier",
    "fault-handover-blob",
    "fault-irq-completion",
    "fault-park-deadlines",
    "fault-teardown",
];

/// What the CI tier runs on the debug kernel: the proofs that its checkers
/// are live, then [`FAULT_MATRIX`].
const DEBUG_PROOFS: &[&str] = &[
    "harness-catches-kasan",
    "harness-catches-lockdep",
    "harness-catches-kmemleak",
    "harness-catches-blackout-alloc",
];

/// A scenario pattern (`fault-*` matches by prefix) against a name.
fn matches(want: &str, name: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == want,
    }
}

/// Runs `cargo xtask ARGV` as a process of its own (another kernel's
/// tier); whether it passed.
fn run_tier(what: &str, argv: &[&str]) -> Result<bool> {
    let exe = std::env::current_exe().context("cannot find the running xtask binary")?;
    eprintln!("== {what}: cargo xtask {}", argv.join(" "));
    let t = Instant::now();
    let status = Command::new(&exe)
        .args(argv)
        .status()
        .with_context(|| format!("cannot run `cargo xtask {}`", argv.join(" ")))?;
    eprintln!(
        "== {what}: {} in {:.0} s",
        if status.success() { "passed" } else { "FAILED" },
        t.elapsed().as_secs_f64()
    );
    Ok(status.success())
}

/// `test --full`: the tiers one after another, each as its own `cargo
/// xtask` process (the debug tier needs the other kernel); all run even
/// when one fails, and the summary names those that did.
fn run_full(args: &TestArgs) -> Result<bool> {
    let mut release = vec!["test", "--all"];
    if args.no_host {
        release.push("--no-host");
    }
    let tiers: [(&str, Vec<&str>); 4] = [
        ("release kernel, every scenario", release),
        (
            "debug kernel, every scenario",
            vec!["--debug", "test", "--no-host"],
        ),
        ("soak, 50 upgrades", vec!["soak", "--upgrades", "50"]),
        ("benchmark, short", vec!["bench", "--quick"]),
    ];
    let mut failed = Vec::new();
    let started = Instant::now();
    for (i, (what, argv)) in tiers.iter().enumerate() {
        let label = format!("test --full [{}/{}]: {what}", i + 1, tiers.len());
        if !run_tier(&label, argv)? {
            failed.push(*what);
        }
    }
    eprintln!(
        "== test --full: {} of {} tiers passed in {:.0} s{}",
        tiers.len() - failed.len(),
        tiers.len(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!("; failed: {}", failed.join(", "))
        }
    );
    Ok(failed.is_empty())
}

#[derive(Serialize)]
struct ScenarioResult {
    name: String,
    ok: bool,
    reasons: Vec<String>,
    wall_s: f64,
    run_dir: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<Verdict>,
}

fn all_scenarios(ctx: &Ctx) -> Result<Vec<Scenario>> {
    let mut s = discover(&ctx.repo.join("userspace-tests/scenarios"))?;
    s.push(Scenario {
        name: CLI.to_owned(),
        path: ctx.repo.join("xtask/src/cli_scenario.rs"),
        description:
            "qemu up; the README's manual sequence (fio by qemu exec, upgrade-child --to v2 while it runs); upgrade-child --to v1, v2 (standby) and v1 --mode classic under a verifying fio; qemu down"
                .to_owned(),
        timeout_s: 600,
        nvme: 0,
        nvme_iops: 0,
    });
    for t in SELFTESTS {
        if t.debug_only && ctx.profile != crate::paths::Profile::Debug {
            continue;
        }
        // The fixture's own headers say how many NVMe controllers it needs.
        let path = ctx.repo.join(t.script);
        let fixture = userspace_tests::scenario::load(&path)
            .with_context(|| format!("reading self-test fixture {}", path.display()))?;
        s.push(Scenario {
            name: t.name.to_owned(),
            path,
            description: t.description.to_owned(),
            timeout_s: 600,
            nvme: fixture.nvme,
            nvme_iops: fixture.nvme_iops,
        });
    }
    Ok(s)
}

/// Runs the tests; returns whether everything passed.
pub fn run(ctx: &Ctx, args: &TestArgs) -> Result<bool> {
    if args.full {
        anyhow::ensure!(
            ctx.profile == crate::paths::Profile::Release,
            "`test --full` runs the debug tier itself: drop --debug"
        );
        return run_full(args);
    }
    let mut scenarios = all_scenarios(ctx)?;
    if args.list {
        for s in &scenarios {
            println!("{:<24} {}", s.name, s.description);
        }
        return Ok(true);
    }
    // The CI tier: the fault matrix goes to the debug kernel.
    let ci_tier = ctx.profile == crate::paths::Profile::Release
        && args.scenarios.is_empty()
        && !args.all
        && args.inject.is_empty();
    if ci_tier {
        scenarios.retain(|s| !FAULT_MATRIX.iter().any(|w| matches(w, &s.name)));
    }
    if !args.scenarios.is_empty() {
        for want in &args.scenarios {
            if !scenarios.iter().any(|s| matches(want, &s.name)) {
                let names: Vec<_> = scenarios.iter().map(|s| s.name.as_str()).collect();
                anyhow::bail!("no scenario named '{want}'; known: {}", names.join(", "));
            }
        }
        scenarios.retain(|s| args.scenarios.iter().any(|w| matches(w, &s.name)));
    }
    // The debug kernel runs 3-6x slower under TCG (KASAN, lockdep).
    if ctx.profile == crate::paths::Profile::Debug {
        for s in &mut scenarios {
            s.timeout_s *= 5;
        }
    }
    let started = Instant::now();
    let mut host_ok = true;
    if args.scenarios.is_empty() && !args.no_host {
        eprintln!("== host tests: cargo test --workspace");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&ctx.repo)
            .args(["test", "--workspace", "--quiet"])
            .status()
            .context("running cargo test --workspace")?;
        host_ok = status.success();
    }
    let k = crate::kernel::ensure(ctx, false)?;
    crate::modules::build_with(ctx, &k)?;
    let inject = args.inject.join(" ");
    if !inject.is_empty() {
        eprintln!(
            "fault injection into every upgraded child: {inject} (the scenarios should fail)"
        );
    }

    println!("{}", ktap::VERSION_LINE);
    let with_host = args.scenarios.is_empty() && !args.no_host;
    println!(
        "{}",
        ktap::plan_line(scenarios.len() + usize::from(with_host))
    );
    let mut n = 0;
    let mut results = Vec::new();
    if with_host {
        n += 1;
        report(
            n,
            "host-tests",
            host_ok,
            &["cargo test --workspace failed (see its output above)".to_owned()],
        );
        results.push(ScenarioResult {
            name: "host-tests".into(),
            ok: host_ok,
            reasons: if host_ok {
                vec![]
            } else {
                vec!["cargo test --workspace failed".into()]
            },
            wall_s: 0.0,
            run_dir: ctx.repo.clone(),
            verdict: None,
        });
    }
    for s in &scenarios {
        n += 1;
        eprintln!("# running {} ({})", s.name, s.description);
        let r = if s.name == CLI {
            let started = std::time::Instant::now();
            // A failure to run the user's commands at all is this
            // scenario's failure, not the end of the whole run.
            let outcome = crate::cli_scenario::run(ctx, &inject).unwrap_or_else(|e| {
                let mut k = KtapWriter::new();
                k.check("run the user's commands", false, || format!("{e:#}"));
                userspace_tests::GuestOutcome {
                    exit_status: Some(1),
                    ktap: k.finish(),
                    ..Default::default()
                }
            });
            qemu::RunResult {
                outcome,
                run_dir: ctx.out().join("guest"),
                console_tail: vec![],
                wall: started.elapsed(),
            }
        } else {
            qemu::run(
                ctx,
                &k,
                &RunOpts {
                    root_cache: crate::qemu::RootCache::for_script(),
                    name: &s.name,
                    script: &s.path,
                    timeout: Duration::from_secs(s.timeout_s),
                    stream: args.verbose,
                    env: if inject.is_empty() {
                        vec![]
                    } else {
                        vec![("HOTUP_INJECT", inject.clone())]
                    },
                    mem: None,
                    nvme: s.nvme,
                    nvme_iops: s.nvme_iops,
                },
            )?
        };
        let verdict = judge(&r.outcome);
        let selftest = SELFTESTS.iter().find(|t| t.name == s.name);
        let (ok, reasons) = match selftest {
            Some(t) => selftest_verdict(t, &verdict, &r.outcome.dmesg),
            None => (verdict.ok, verdict.reasons.clone()),
        };
        for sub in &verdict.subtests.results {
            println!(
                "  {}",
                ktap::result_line(sub.number, &sub.description, sub.ok, None)
            );
        }
        if !ok && !r.console_tail.is_empty() && selftest.is_none() {
            println!(
                "# last console lines of {} ({}):",
                s.name,
                r.run_dir.join("console.log").display()
            );
            for l in r.console_tail.iter().rev().take(12).rev() {
                println!("#   {l}");
            }
        }
        report(n, &s.name, ok, &reasons);
        println!(
            "# {} took {:.1} s; files in {}",
            s.name,
            r.wall.as_secs_f64(),
            r.run_dir.display()
        );
        results.push(ScenarioResult {
            name: s.name.clone(),
            ok,
            reasons,
            wall_s: r.wall.as_secs_f64(),
            run_dir: r.run_dir,
            verdict: Some(verdict),
        });
    }
    let passed = results.iter().filter(|r| r.ok).count();
    let failed = results.len() - passed;
    println!("# total wall time {:.1} s", started.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !ci_tier {
        return Ok(failed == 0);
    }
    let mut argv = vec!["--debug", "test", "--no-host"];
    for s in DEBUG_PROOFS.iter().chain(FAULT_MATRIX) {
        argv.extend(["--scenario", s]);
    }
    let debug_ok = run_tier(
        "debug kernel: the checkers' self-tests and the fault matrix's races",
        &argv,
    )?;
    Ok(failed == 0 && debug_ok)
}

fn report(n: usize, name: &str, ok: bool, reasons: &[String]) {
    for l in report_lines(n, name, ok, reasons) {
        println!("{l}");
    }
}

/// A scenario's result line; when not ok, its first reason there and the
/// others as diagnostics.
fn report_lines(n: usize, name: &str, ok: bool, reasons: &[String]) -> Vec<String> {
    let first = reasons.first().map(String::as_str).unwrap_or("failed");
    let mut out = vec![ktap::result_line(n, name, ok, Some(first))];
    if !ok {
        out.extend(reasons.iter().skip(1).map(|r| ktap::diag_line(r)));
    }
    out
}

/// A self-test passes when the harness failed its fixture for the right
/// reason: the verdict is `not ok` and quotes the kernel's report.
fn selftest_verdict(t: &SelfTest, v: &Verdict, dmesg: &str) -> (bool, Vec<String>) {
    // The verdict quotes the first problem line; the fixture's own may come
    // later, so every problem line of dmesg is a candidate too.
    let problems: Vec<String> = userspace_tests::dmesg_problems(dmesg)
        .into_iter()
        .map(|l| format!("dmesg: {l}"))
        .collect();
    let quoted = v
        .reasons
        .iter()
        .chain(problems.iter())
        .find(|r| r.starts_with(t.report) && r.contains(t.mentions));
    match (v.ok, quoted) {
        (false, Some(q)) => {
            println!("# harness reported the fixture not ok, as it must: {q}");
            (true, vec![])
        }
        (true, _) => (
            false,
            vec![format!(
                "harness reported the {} fixture ok: that check is broken",
                t.name
            )],
        ),
        (false, None) => (
            false,
            vec![format!(
                "harness failed the fixture without quoting '{}': {:?}",
                t.report, v.reasons
            )],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_results_are_ktap() {
        let why = ["boom".to_owned(), "dmesg: BUG: x".to_owned()];
        assert_eq!(report_lines(1, "smoke", true, &why), ["ok 1 smoke"]);
        assert_eq!(
            report_lines(2, "guards", false, &why),
            ["not ok 2 guards # boom", "# dmesg: BUG: x"]
        );
        assert_eq!(
            report_lines(3, "persist", false, &[]),
            ["not ok 3 persist # failed"]
        );
        let r = userspace_tests::parse_ktap(&report_lines(2, "guards", false, &why).join("\n"));
        assert_eq!(r.results[0].reason.as_deref(), Some("boom"));
    }
}
