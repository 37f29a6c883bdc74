//! `cargo xtask bench`: what the parent costs on every I/O and what an
//! upgrade costs, side by side with the drivers a user would otherwise run,
//! in one guest boot (`userspace-tests/bench/bench.sh`). The arithmetic is
//! `userspace_tests::bench` (host-tested); this file plans the run, follows
//! it, prints the table and draws the plots. Targets are reported, never
//! enforced: absolute figures under TCG only indicate, and the machine is
//! shared; only the guest script's own checks (fio errors, failed upgrades,
//! dmesg) can fail the command.

use crate::paths::{Ctx, Profile};
use crate::qemu::{self, RunOpts};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use userspace_tests::bench::{
    blackout_cells, blackout_ratio, cpu_profile, driver_sample, fio_figures, module_cpu,
    overhead_name, overhead_rows, parse_upgrades, peer_rows, run_name, BlackoutCell, ModuleCpu,
    OverheadRow, OverheadRun, PeerRow, Spread,
};
use userspace_tests::report::parse_fio_log;
use userspace_tests::{dmesg_problems, judge};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Steady-state IOPS and p99: hotup vs hotup_mono vs brd.
    Overhead,
    /// Blackout against device size (16 MiB, 256 MiB, 1 GiB).
    Size,
    /// Blackout and latency hit against iodepth and the child's latency.
    Load,
    /// QEMU's NVMe controller under hotup (parent + hotup_nvme) against the
    /// kernel's own nvme driver: IOPS, p99 and CPU per I/O.
    Peer,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Overhead => "overhead",
            Part::Size => "size",
            Part::Load => "load",
            Part::Peer => "peer",
        }
    }
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// A short run that exercises every part (one round, fewer points and
    /// upgrades): for CI, so the command cannot rot; its figures mean little.
    #[arg(long)]
    quick: bool,
    /// Run only these parts (repeatable); default all.
    #[arg(long, value_enum)]
    only: Vec<Part>,
    /// Rounds of the overhead part (each runs every peer once per
    /// configuration).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: Option<u32>,
    /// Upgrades per mode per point of the size and load parts.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50))]
    upgrades: Option<u32>,
    /// Skip the perf profile of hotup that follows the overhead rounds
    /// (where the CPU goes: the parent's share of it).
    #[arg(long)]
    no_profile: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Analyse the last run again (its files in target/hotup/runs/bench)
    /// and redraw the plots, without booting a guest.
    #[arg(long, conflicts_with_all = ["quick", "only", "rounds", "upgrades", "no_profile"])]
    again: bool,
}

/// What one run measures, from the arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub parts: Vec<Part>,
    pub rounds: u32,
    pub runtime_s: u32,
    pub configs: Vec<String>,
    pub sizes_mib: Vec<u32>,
    pub depths: Vec<u32>,
    pub latencies_us: Vec<u32>,
    pub upgrades: u32,
    /// Profile hotup on every overhead configuration (perf, after the rounds).
    #[serde(default)]
    pub profile: bool,
    /// Configurations of the peer part (one job: QD1 and QD32).
    #[serde(default)]
    pub peer_configs: Vec<String>,
}

const CONFIGS: [&str; 8] = [
    "randread-qd1-j1",
    "randwrite-qd1-j1",
    "randread-qd32-j1",
    "randwrite-qd32-j1",
    "randread-qd1-j2",
    "randwrite-qd1-j2",
    "randread-qd32-j2",
    "randwrite-qd32-j2",
];

impl Plan {
    pub fn of(
        quick: bool,
        only: &[Part],
        rounds: Option<u32>,
        upgrades: Option<u32>,
        profile: bool,
    ) -> Plan {
        let mut parts: Vec<Part> = if only.is_empty() {
            vec![Part::Overhead, Part::Size, Part::Load, Part::Peer]
        } else {
            only.to_vec()
        };
        parts.sort();
        parts.dedup();
        Plan {
            parts,
            rounds: rounds.unwrap_or(if quick { 1 } else { 3 }),
            runtime_s: if quick { 2 } else { 4 },
            configs: if quick {
                CONFIGS[..4].iter().map(|s| s.to_string()).collect()
            } else {
                CONFIGS.iter().map(|s| s.to_string()).collect()
            },
            sizes_mib: if quick {
                vec![16, 256]
            } else {
                vec![16, 256, 1024]
            },
            depths: if quick { vec![1, 32] } else { vec![1, 32, 128] },
            latencies_us: vec![100, 5000],
            upgrades: upgrades.unwrap_or(if quick { 1 } else { 4 }),
            profile,
            peer_configs: CONFIGS[..4].iter().map(|s| s.to_string()).collect(),
        }
    }

    fn has(&self, p: Part) -> bool {
        self.parts.contains(&p)
    }

    /// Progress steps of the guest script (its `bench: i/N` lines).
    pub fn steps(&self) -> u32 {
        let mut n = 0;
        if self.has(Part::Overhead) {
            n += self.rounds * self.configs.len() as u32 * 3;
            if self.profile {
                n += self.configs.len() as u32;
            }
        }
        if self.has(Part::Size) {
            n += self.sizes_mib.len() as u32;
        }
        if self.has(Part::Load) {
            n += self.latencies_us.len() as u32 * self.depths.len() as u32 * 2;
        }
        if self.has(Part::Peer) {
            // Two drivers per round, each configuration measured and
            // (with the profile) once more under perf.
            n += self.rounds * self.peer_configs.len() as u32 * 2 * (1 + u32::from(self.profile));
        }
        n
    }

    /// A rough duration under TCG on 2 cores, in seconds, for the banner.
    pub fn estimate_s(&self) -> u32 {
        let mut s = 90; // boot, module loads
        if self.has(Part::Overhead) {
            // fio's start under TCG, ramp and run, per measured run; prefill.
            s += self.rounds * self.configs.len() as u32 * 3 * (self.runtime_s + 3) + 30;
            if self.profile {
                // perf's start and its report, per configuration.
                s += self.configs.len() as u32 * (self.runtime_s + 12);
            }
        }
        // An upgrade with its spacing: about 2.5 s.
        let per_point = 2 * self.upgrades * 5 / 2 + 10;
        if self.has(Part::Size) {
            s += self.sizes_mib.len() as u32 * per_point;
        }
        if self.has(Part::Load) {
            let points = self.latencies_us.len() as u32 * self.depths.len() as u32;
            s += points * (per_point + self.runtime_s + 5);
        }
        if self.has(Part::Peer) {
            // Per driver and round a rebind (a controller bring-up) and
            // its runs; the profiles as in the overhead part.
            let per_config = self.runtime_s + 3 + u32::from(self.profile) * (self.runtime_s + 12);
            let per_driver = 8 + self.peer_configs.len() as u32 * per_config;
            s += 2 * self.rounds * per_driver;
        }
        s
    }

    fn env(&self, brd: &Path) -> Vec<(&'static str, String)> {
        let join = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
        vec![
            (
                "HOTUP_BENCH_PARTS",
                self.parts
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ("HOTUP_BENCH_ROUNDS", self.rounds.to_string()),
            ("HOTUP_BENCH_RUNTIME", self.runtime_s.to_string()),
            ("HOTUP_BENCH_CONFIGS", self.configs.join(" ")),
            ("HOTUP_BENCH_PEER_CONFIGS", self.peer_configs.join(" ")),
            ("HOTUP_BENCH_SIZES", join(&self.sizes_mib)),
            ("HOTUP_BENCH_DEPTHS", join(&self.depths)),
            ("HOTUP_BENCH_LATENCIES", join(&self.latencies_us)),
            ("HOTUP_BENCH_UPGRADES", self.upgrades.to_string()),
            ("HOTUP_BENCH_PROFILE", u8::from(self.profile).to_string()),
            ("HOTUP_BENCH_STEPS", self.steps().to_string()),
            ("HOTUP_BRD", brd.display().to_string()),
        ]
    }
}

/// Blackouts of one device size.
#[derive(Debug, Clone, Serialize)]
pub struct SizePoint {
    pub size_mib: u32,
    pub cells: Vec<BlackoutCell>,
}

/// Blackouts and latency hit of one (child latency, iodepth) point.
#[derive(Debug, Clone, Serialize)]
pub struct LoadPoint {
    pub latency_us: u32,
    pub iodepth: u32,
    /// p99 of the same workload with no upgrade (µs).
    pub baseline_p99_us: Option<f64>,
    pub cells: Vec<BlackoutCell>,
}

/// A target of the issue, and where the run stands against it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub plan: Plan,
    pub overhead: Vec<OverheadRow>,
    pub size: Vec<SizePoint>,
    /// Per mode: median blackout of the largest device over the smallest.
    pub size_ratio: BTreeMap<String, f64>,
    pub load: Vec<LoadPoint>,
    /// hotup against the kernel's nvme driver on QEMU's controller.
    pub peer: Vec<PeerRow>,
    pub targets: Vec<Target>,
    pub fio_errors: u64,
    pub failed_upgrades: usize,
    pub dmesg_problems: Vec<String>,
    pub subtests_failed: Vec<String>,
    pub wall_s: f64,
    pub ok: bool,
}

fn read(dir: &Path, name: &str) -> Result<String> {
    std::fs::read_to_string(dir.join(name))
        .with_context(|| format!("reading {}", dir.join(name).display()))
}

/// Reads what the guest wrote into `dir` (the run's `bench/` folder).
pub fn analyse(dir: &Path, plan: &Plan) -> Result<(BenchReport, u64)> {
    let mut fio_errors = 0;
    let mut runs = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in &names {
        if let Some((config, peer, round)) = overhead_name(n) {
            let fio = fio_figures(&read(dir, n)?).with_context(|| format!("parsing {n}"))?;
            fio_errors += fio.errors;
            runs.push(OverheadRun {
                config,
                peer,
                round,
                fio,
            });
        }
    }
    let mut size = Vec::new();
    if plan.has(Part::Size) {
        for &s in &plan.sizes_mib {
            let name = format!("size-{s}.jsonl");
            let ups = parse_upgrades(&read(dir, &name).unwrap_or_default())
                .with_context(|| format!("parsing {name}"))?;
            if let Ok(t) = read(dir, &format!("size-{s}-fio.json")) {
                fio_errors += fio_figures(&t).map_or(1, |f| f.errors);
            }
            size.push(SizePoint {
                size_mib: s,
                cells: blackout_cells(&ups, None),
            });
        }
    }
    let mut size_ratio = BTreeMap::new();
    if let (Some(first), Some(last)) = (size.first(), size.last()) {
        if size.len() > 1 {
            for mode in ["standby", "classic"] {
                if let Some(r) = blackout_ratio(&last.cells, &first.cells, mode) {
                    size_ratio.insert(mode.to_owned(), r);
                }
            }
        }
    }
    let mut load = Vec::new();
    if plan.has(Part::Load) {
        for &l in &plan.latencies_us {
            for &q in &plan.depths {
                let c = format!("load-l{l}-q{q}");
                let base = read(dir, &format!("{c}-base.json"))
                    .ok()
                    .and_then(|t| fio_figures(&t).ok());
                if let Some(b) = base {
                    fio_errors += b.errors;
                }
                if let Ok(t) = read(dir, &format!("{c}.json")) {
                    fio_errors += fio_figures(&t).map_or(1, |f| f.errors);
                }
                let ups = parse_upgrades(&read(dir, &format!("{c}.jsonl")).unwrap_or_default())
                    .with_context(|| format!("parsing {c}.jsonl"))?;
                let mut lat = Vec::new();
                for n in names
                    .iter()
                    .filter(|n| n.starts_with(&format!("{c}_lat.")) && n.ends_with(".log"))
                {
                    lat.extend(parse_fio_log(&read(dir, n)?));
                }
                lat.sort_by_key(|s| s.t_ms);
                let p99 = base.map(|b| b.p99_us);
                load.push(LoadPoint {
                    latency_us: l,
                    iodepth: q,
                    baseline_p99_us: p99,
                    cells: blackout_cells(&ups, p99.map(|p| (lat.as_slice(), p))),
                });
            }
        }
    }
    let mut peer_runs = Vec::new();
    let mut profiled = Vec::new();
    for n in &names {
        if let Some((config, drv, round)) = run_name("peer-profile-", n) {
            profiled.push((config, drv, round));
        } else if let Some((config, peer, round)) = run_name("peer-", n) {
            let fio = fio_figures(&read(dir, n)?).with_context(|| format!("parsing {n}"))?;
            fio_errors += fio.errors;
            peer_runs.push(OverheadRun {
                config,
                peer,
                round,
                fio,
            });
        }
    }
    let mut peer = peer_rows(&peer_runs);
    for (config, drv, round) in profiled {
        let stem = format!("peer-profile-{config}-{drv}-r{round}");
        let fio = fio_figures(&read(dir, &format!("{stem}.json"))?)
            .with_context(|| format!("parsing {stem}.json"))?;
        fio_errors += fio.errors;
        let Some(row) = peer.iter_mut().find(|r| r.config == config) else {
            continue;
        };
        if let Some(p) = read(dir, &format!("{stem}.txt"))
            .ok()
            .and_then(|t| module_cpu(&t, fio.ios, |m, s| driver_sample(&drv, m, s)))
        {
            row.profiles.entry(drv).or_default().insert(round, p);
        }
    }
    let mut overhead = overhead_rows(&runs);
    for row in &mut overhead {
        if let Ok(t) = read(dir, &format!("profile-{}-fio.json", row.config)) {
            fio_errors += fio_figures(&t).map_or(1, |f| f.errors);
        }
        row.hotup_profile = read(dir, &format!("profile-{}.txt", row.config))
            .ok()
            .and_then(|t| cpu_profile(&t));
    }
    let failed_upgrades = size
        .iter()
        .flat_map(|p| &p.cells)
        .chain(load.iter().flat_map(|p| &p.cells))
        .map(|c| c.failed)
        .sum();
    let mut targets = targets(&overhead, &size_ratio, &load);
    targets.extend(peer_targets(&peer));
    Ok((
        BenchReport {
            plan: plan.clone(),
            overhead,
            size,
            size_ratio,
            load,
            peer,
            targets,
            fio_errors,
            failed_upgrades,
            dmesg_problems: vec![],
            subtests_failed: vec![],
            wall_s: 0.0,
            ok: false,
        },
        fio_errors,
    ))
}

/// The issue's targets against the run.
pub fn targets(
    overhead: &[OverheadRow],
    size_ratio: &BTreeMap<String, f64>,
    load: &[LoadPoint],
) -> Vec<Target> {
    let mut t = Vec::new();
    let worst = |f: fn(&OverheadRow) -> Option<Spread>, max: bool| {
        overhead
            .iter()
            .filter_map(|r| f(r).map(|s| (r.config.clone(), s.median)))
            .reduce(|a, b| if (b.1 < a.1) ^ max { b } else { a })
    };
    if let Some((c, v)) = worst(|r| r.iops_hotup_over_mono, false) {
        t.push(Target {
            what: "IOPS hotup/mono, worst configuration (median of rounds)".into(),
            target: ">= 0.98".into(),
            measured: format!("{v:.3} ({c})"),
            met: Some(v >= 0.98),
        });
    }
    if let Some((c, v)) = worst(|r| r.p99_hotup_over_mono, true) {
        t.push(Target {
            what: "p99 hotup/mono, worst configuration (median of rounds)".into(),
            target: "<= 1.05".into(),
            measured: format!("{v:.3} ({c})"),
            met: Some(v <= 1.05),
        });
    }
    if let Some((c, v)) = overhead
        .iter()
        .filter_map(|r| {
            r.hotup_profile
                .and_then(|p| p.parent_share_of_busy())
                .map(|v| (r.config.clone(), v))
        })
        .reduce(|a, b| if b.1 > a.1 { b } else { a })
    {
        t.push(Target {
            what:
                "CPU in the parent's code / busy CPU (perf profile of hotup), worst configuration"
                    .into(),
            target: "<= 2% (what IOPS hotup/mono >= 0.98 allows when CPU-bound)".into(),
            measured: format!("{v:.2}% ({c})"),
            met: Some(v <= 2.0),
        });
    }
    for (mode, r) in size_ratio {
        t.push(Target {
            what: format!("blackout largest/smallest device, {mode}"),
            target: "<= 1.2".into(),
            measured: format!("{r:.2}"),
            met: Some(*r <= 1.2),
        });
    }
    let hits: Vec<(String, f64)> = load
        .iter()
        .flat_map(|p| {
            p.cells
                .iter()
                .filter(|c| c.mode == "standby")
                .filter_map(move |c| {
                    c.latency_hit.map(|h| {
                        (
                            format!("latency_us={} iodepth={}", p.latency_us, p.iodepth),
                            h.median,
                        )
                    })
                })
        })
        .collect();
    if let Some((w, v)) = hits
        .into_iter()
        .reduce(|a, b| if b.1 > a.1 { b } else { a })
    {
        t.push(Target {
            what: "worst latency around a standby switch / baseline p99, worst point (median of upgrades)".into(),
            target: "<= 3".into(),
            measured: format!("{v:.2} ({w})"),
            met: Some(v <= 3.0),
        });
    }
    t
}

/// The peer targets: IOPS hotup/kernel at least 0.95 by median at every
/// point; and, as the tie-breaker when TCG's spread between rounds is wider
/// than that, the CPU hotup's parent and child spend per I/O (perf) at most
/// 1/0.95 of what the kernel driver spends.
pub fn peer_targets(peer: &[PeerRow]) -> Vec<Target> {
    let mut t = Vec::new();
    if let Some((c, s)) = peer
        .iter()
        .filter_map(|r| r.iops_hotup_over_nvme.map(|s| (r.config.clone(), s)))
        .reduce(|a, b| if b.1.median < a.1.median { b } else { a })
    {
        t.push(Target {
            what: "IOPS hotup/kernel nvme on QEMU's controller, worst configuration (median of rounds)".into(),
            target: ">= 0.95".into(),
            measured: format!(
                "{:.3} ({c}; rounds {:.3}-{:.3}{})",
                s.median,
                s.min,
                s.max,
                if s.max - s.min > 0.05 {
                    ": spread wider than the margin, the CPU per I/O decides"
                } else {
                    ""
                }
            ),
            met: Some(s.median >= 0.95),
        });
    }
    if let Some((c, s)) = peer
        .iter()
        .filter_map(|r| {
            r.cpu_ratio(ModuleCpu::driver_per_kio)
                .map(|s| (r.config.clone(), s))
        })
        .reduce(|a, b| if b.1.median > a.1.median { b } else { a })
    {
        t.push(Target {
            what: "driver CPU per I/O hotup (parent + child) / kernel nvme (perf), worst configuration (median of rounds)".into(),
            target: "<= 1.053".into(),
            measured: format!("{:.3} ({c}; rounds {:.3}-{:.3})", s.median, s.min, s.max),
            met: Some(s.median <= 1.0 / 0.95),
        });
    }
    t
}

fn fmt_spread(s: Option<Spread>) -> String {
    s.map_or("-".into(), |s| {
        format!("{:.3} [{:.3}-{:.3}]", s.median, s.min, s.max)
    })
}

fn ms(s: Option<Spread>) -> String {
    s.map_or("-".into(), |s| format!("{:.2}", s.median))
}

pub fn print_report(r: &BenchReport) {
    if !r.overhead.is_empty() {
        println!(
            "\n== Steady-state overhead ({} round(s), {} s each; ratios paired per round: median [min-max]) ==",
            r.plan.rounds, r.plan.runtime_s
        );
        println!(
            "{:<18} {:>10} {:>10} {:>10} {:>24} {:>24} {:>9} {:>9} {:>9} {:>24} {:>10}",
            "config",
            "hotup IOPS",
            "mono IOPS",
            "brd IOPS",
            "IOPS hotup/mono",
            "IOPS hotup/brd",
            "hotup p99",
            "mono p99",
            "brd p99",
            "p99 hotup/mono",
            "parent CPU"
        );
        for o in &r.overhead {
            let g = |m: &BTreeMap<String, f64>, k: &str| {
                m.get(k).map_or("-".into(), |v| format!("{v:.0}"))
            };
            println!(
                "{:<18} {:>10} {:>10} {:>10} {:>24} {:>24} {:>9} {:>9} {:>9} {:>24} {:>10}",
                o.config,
                g(&o.iops, "hotup"),
                g(&o.iops, "mono"),
                g(&o.iops, "brd"),
                fmt_spread(o.iops_hotup_over_mono),
                fmt_spread(o.iops_hotup_over_brd),
                g(&o.p99_us, "hotup"),
                g(&o.p99_us, "mono"),
                g(&o.p99_us, "brd"),
                fmt_spread(o.p99_hotup_over_mono),
                o.hotup_profile
                    .and_then(|p| p.parent_share_of_busy())
                    .map_or("-".into(), |v| format!("{v:.2}%")),
            );
        }
        println!(
            "(p99 in µs; parent CPU: samples in the parent's code / busy samples, in a perf profile of hotup)"
        );
    }
    let cell_line = |label: String, c: &BlackoutCell| {
        println!(
            "{:<28} {:<8} {:>3} {:>9} {:>9} {:>8} {:>8} {:>9} {:>8} {:>12}",
            label,
            c.mode,
            c.upgrades,
            ms(c.blackout_ms),
            c.blackout_ms
                .map_or("-".into(), |s| format!("{:.2}", s.max)),
            format!("{:.2}", c.drain_ms),
            format!("{:.2}", c.export_ms),
            format!("{:.2}", c.load_ms),
            format!("{:.2}", c.adopt_ms),
            c.latency_hit
                .map_or("-".into(), |h| format!("{:.1} [{:.1}]", h.median, h.max)),
        );
    };
    let header = || {
        println!(
            "{:<28} {:<8} {:>3} {:>9} {:>9} {:>8} {:>8} {:>9} {:>8} {:>12}",
            "point",
            "mode",
            "n",
            "median ms",
            "max ms",
            "drain",
            "export",
            "no child",
            "adopt",
            "lat hit [max]"
        );
    };
    if !r.size.is_empty() {
        println!("\n== Blackout against device size (4k random writes, QD32; parts are medians in ms) ==");
        header();
        for p in &r.size {
            for c in &p.cells {
                cell_line(format!("{} MiB", p.size_mib), c);
            }
        }
        for (mode, v) in &r.size_ratio {
            println!("blackout(largest)/blackout(smallest), {mode}: {v:.2}");
        }
    }
    if !r.load.is_empty() {
        println!("\n== Blackout against load (4k random writes; latency hit = worst I/O latency in the second from the upgrade / baseline p99) ==");
        header();
        for p in &r.load {
            for c in &p.cells {
                cell_line(
                    format!(
                        "lat {} us, QD{} (p99 {})",
                        p.latency_us,
                        p.iodepth,
                        p.baseline_p99_us
                            .map_or("-".into(), |v| format!("{v:.0} us"))
                    ),
                    c,
                );
            }
        }
    }
    if !r.peer.is_empty() {
        print_peer(r);
    }
    if !r.targets.is_empty() {
        println!("\n== Targets (reported, not enforced) ==");
        for t in &r.targets {
            println!(
                "{:<4} {:<90} target {:<8} measured {}",
                match t.met {
                    Some(true) => "met",
                    Some(false) => "MISS",
                    None => "?",
                },
                t.what,
                t.target,
                t.measured
            );
        }
    }
    println!(
        "\nfio errors: {}, failed upgrades: {}, dmesg findings: {}, failed checks: {}",
        r.fio_errors,
        r.failed_upgrades,
        r.dmesg_problems.len(),
        r.subtests_failed.len()
    );
    for p in &r.dmesg_problems {
        println!("  dmesg: {p}");
    }
    for s in &r.subtests_failed {
        println!("  failed check: {s}");
    }
    println!(
        "result: {} ({:.0} s)",
        if r.ok { "PASS" } else { "FAIL" },
        r.wall_s
    );
}

fn print_peer(r: &BenchReport) {
    println!(
        "\n== QEMU's NVMe controller: hotup (parent + hotup_nvme_v1) against the kernel's nvme driver ({} round(s), {} s each, alternating; ratios paired per round: median [min-max]) ==",
        r.plan.rounds, r.plan.runtime_s
    );
    println!(
        "{:<18} {:>10} {:>10} {:>24} {:>9} {:>9} {:>24} {:>14} {:>14} {:>13} {:>13} {:>24}",
        "config",
        "hotup IOPS",
        "nvme IOPS",
        "IOPS hotup/nvme",
        "hotup p99",
        "nvme p99",
        "p99 hotup/nvme",
        "hotup busy/kIO",
        "nvme busy/kIO",
        "hotup drv/kIO",
        "nvme drv/kIO",
        "drv CPU/IO hotup/nvme"
    );
    let g = |m: &BTreeMap<String, f64>, k: &str| m.get(k).map_or("-".into(), |v| format!("{v:.0}"));
    for p in &r.peer {
        let prof = |d: &str, f: fn(&ModuleCpu) -> Option<f64>| {
            p.per_kio(d, f).map_or("-".into(), |v| format!("{v:.1}"))
        };
        println!(
            "{:<18} {:>10} {:>10} {:>24} {:>9} {:>9} {:>24} {:>14} {:>14} {:>13} {:>13} {:>24}",
            p.config,
            g(&p.iops, "hotup"),
            g(&p.iops, "nvme"),
            fmt_spread(p.iops_hotup_over_nvme),
            g(&p.p99_us, "hotup"),
            g(&p.p99_us, "nvme"),
            fmt_spread(p.p99_hotup_over_nvme),
            prof("hotup", ModuleCpu::busy_per_kio),
            prof("nvme", ModuleCpu::busy_per_kio),
            prof("hotup", ModuleCpu::driver_per_kio),
            prof("nvme", ModuleCpu::driver_per_kio),
            fmt_spread(p.cpu_ratio(ModuleCpu::driver_per_kio)),
        );
    }
    println!("(p99 in µs; busy/kIO: non-idle perf samples of the whole guest per 1000 I/Os, cpu-clock at 2 kHz; drv/kIO: samples in the driver's own code, hotup_parent + hotup_nvme_v1 + the Rust MMIO helpers they call (rust_helper_*), or nvme + nvme_core; medians over the rounds, ratios paired per round)");
}

pub fn run(ctx: &Ctx, args: &BenchArgs) -> Result<bool> {
    if ctx.profile == Profile::Debug {
        bail!("`cargo xtask bench` measures the release kernel (the debug kernel has no brd and its checkers dominate every figure): drop --debug");
    }
    let out = ctx.out().join("bench");
    if args.again {
        let last: serde_json::Value = serde_json::from_str(&read(&out, "bench.json")?)
            .context("the last bench.json is not JSON: run `cargo xtask bench` again")?;
        let plan: Plan = serde_json::from_value(last["plan"].clone())
            .context("the last bench.json has no plan: run `cargo xtask bench` again")?;
        let run_dir = ctx.out().join("runs/bench/bench");
        let (mut report, _) = analyse(&run_dir, &plan)?;
        report.dmesg_problems =
            serde_json::from_value(last["dmesg_problems"].clone()).unwrap_or_default();
        report.subtests_failed =
            serde_json::from_value(last["subtests_failed"].clone()).unwrap_or_default();
        report.wall_s = last["wall_s"].as_f64().unwrap_or(0.0);
        report.ok = last["ok"].as_bool().unwrap_or(false);
        return finish(&report, &out, args.json, &[], &run_dir);
    }
    let plan = Plan::of(
        args.quick,
        &args.only,
        args.rounds,
        args.upgrades,
        !args.no_profile,
    );
    let k = crate::kernel::ensure(ctx, false)?;
    crate::modules::build_with(ctx, &k)?;
    let est = plan.estimate_s();
    eprintln!(
        "bench: {} ({} steps); about {} min on this machine",
        plan.parts
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", "),
        plan.steps(),
        est.div_ceil(60)
    );
    let name = "bench";
    let started = Instant::now();
    let r = qemu::run_following(
        ctx,
        &k,
        &RunOpts {
            root_cache: crate::qemu::RootCache::for_script(),
            name,
            script: &ctx.repo.join("userspace-tests/bench/bench.sh"),
            timeout: Duration::from_secs(u64::from(est) * 3 + 300),
            stream: false,
            env: plan.env(&k.brd_ko()),
            // The 1 GiB device of the size part, with room to spare.
            mem: Some("3G"),
            // The peer part's controller (the other parts ignore it).
            nvme: u32::from(plan.has(Part::Peer)),
            nvme_iops: 0,
        },
        "bench",
        plan.steps(),
    );
    let r = r?;
    let verdict = judge(&r.outcome);
    let (mut report, fio_errors) = analyse(&r.run_dir.join("bench"), &plan)?;
    report.dmesg_problems = dmesg_problems(&r.outcome.dmesg);
    report.subtests_failed = verdict
        .subtests
        .results
        .iter()
        .filter(|s| !s.ok)
        .map(|s| s.description.clone())
        .collect();
    report.wall_s = started.elapsed().as_secs_f64();
    report.ok = verdict.ok && fio_errors == 0 && report.failed_upgrades == 0;
    finish(&report, &out, args.json, &verdict.reasons, &r.run_dir)
}

/// Writes bench.json and the plots into `out`, prints the report (or its
/// JSON); returns whether the run passed.
fn finish(
    report: &BenchReport,
    out: &Path,
    as_json: bool,
    reasons: &[String],
    run_dir: &Path,
) -> Result<bool> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join("bench.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let plots = plots(report, out)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print_report(report);
        for r in reasons {
            println!("  {r}");
        }
        println!(
            "files: {}, {} and the guest's files in {}",
            json.display(),
            plots.join(", "),
            run_dir.display()
        );
    }
    Ok(report.ok)
}

/// Draws the plots into `out`; returns their paths.
fn plots(r: &BenchReport, out: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    if !r.overhead.is_empty() {
        let p = out.join("overhead.svg");
        plot_overhead(r, &p)?;
        files.push(p.display().to_string());
    }
    if !r.peer.is_empty() {
        let p = out.join("peer.svg");
        plot_peer(r, &p)?;
        files.push(p.display().to_string());
    }
    if !r.size.is_empty() {
        let p = out.join("size.svg");
        let series: Vec<Series> = ["standby", "classic"]
            .iter()
            .map(|m| {
                (
                    m.to_string(),
                    *m == "standby",
                    r.size
                        .iter()
                        .filter_map(|pt| {
                            pt.cells
                                .iter()
                                .find(|c| c.mode == *m)
                                .and_then(|c| c.blackout_ms)
                                .map(|s| (f64::from(pt.size_mib), s.median))
                        })
                        .collect(),
                )
            })
            .collect();
        plot_lines(
            &p,
            "Median blackout against device size (4k random writes, QD32)",
            "device size (MiB, log scale)",
            &series,
        )?;
        files.push(p.display().to_string());
    }
    if !r.load.is_empty() {
        let p = out.join("load.svg");
        let mut series = Vec::new();
        for m in ["standby", "classic"] {
            for &l in &r.plan.latencies_us {
                series.push((
                    format!("{m}, child latency {l} us"),
                    m == "standby",
                    r.load
                        .iter()
                        .filter(|pt| pt.latency_us == l)
                        .filter_map(|pt| {
                            pt.cells
                                .iter()
                                .find(|c| c.mode == m)
                                .and_then(|c| c.blackout_ms)
                                .map(|s| (f64::from(pt.iodepth), s.median))
                        })
                        .collect(),
                ));
            }
        }
        plot_lines(
            &p,
            "Median blackout against iodepth (4k random writes)",
            "iodepth (log scale)",
            &series,
        )?;
        files.push(p.display().to_string());
    }
    Ok(files)
}

fn draw_err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a plot: {e}")
}

/// IOPS ratios per configuration as bars (median) with whiskers (min-max
/// across rounds): hotup/mono and hotup/brd, and the 0.98 target line; the
/// profile's answer (the parent's share of the busy CPU) up each first bar.
fn plot_overhead(r: &BenchReport, path: &Path) -> Result<()> {
    let rows = &r.overhead;
    plot_bars(
        path,
        "IOPS of hotup relative to its peers (bars: median of paired rounds; whiskers: min-max)",
        &rows.iter().map(|o| o.config.clone()).collect::<Vec<_>>(),
        &[
            (
                "hotup / hotup_mono (the parent's cost)".into(),
                rows.iter().map(|o| o.iops_hotup_over_mono).collect(),
            ),
            (
                "hotup / brd".into(),
                rows.iter().map(|o| o.iops_hotup_over_brd).collect(),
            ),
        ],
        (0.98, "target hotup/mono >= 0.98"),
        &rows
            .iter()
            .map(|o| {
                o.hotup_profile
                    .and_then(|p| p.parent_share_of_busy())
                    .map(|v| format!("parent: {v:.1}% of CPU"))
            })
            .collect::<Vec<_>>(),
    )
}

/// The peer table as bars: IOPS hotup/kernel nvme per configuration
/// (median, whiskers min-max across rounds), the 0.95 target, and the busy
/// CPU per I/O ratio of the profiled runs up each bar.
fn plot_peer(r: &BenchReport, path: &Path) -> Result<()> {
    let rows = &r.peer;
    plot_bars(
        path,
        "QEMU's NVMe controller: IOPS of hotup relative to the kernel's nvme driver (bars: median of paired rounds; whiskers: min-max)",
        &rows.iter().map(|o| o.config.clone()).collect::<Vec<_>>(),
        &[(
            "hotup (parent + hotup_nvme) / kernel nvme".into(),
            rows.iter().map(|o| o.iops_hotup_over_nvme).collect(),
        )],
        (0.95, "target hotup/nvme >= 0.95"),
        &rows
            .iter()
            .map(|o| {
                o.cpu_ratio(ModuleCpu::driver_per_kio)
                    .map(|v| format!("driver CPU per I/O hotup/nvme: {:.2}", v.median))
            })
            .collect::<Vec<_>>(),
    )
}

/// Bars of ratios (one series per colour, median with a min-max whisker)
/// per configuration, a horizontal target line, and a note written up the
/// first bar of each configuration.
fn plot_bars(
    path: &Path,
    caption: &str,
    configs: &[String],
    series: &[(String, Vec<Option<Spread>>)],
    target: (f64, &str),
    notes: &[Option<String>],
) -> Result<()> {
    use plotters::prelude::*;
    let n = configs.len() as f64;
    let top = series
        .iter()
        .flat_map(|s| s.1.iter().flatten())
        .map(|s| s.max)
        .fold(1.1, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(70)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(configs.len() + 1)
        .x_label_formatter(&|x| {
            // Ticks at the integers, under each configuration's bars.
            if x.fract().abs() > 1e-6 || *x < 0.0 {
                return String::new();
            }
            configs.get(x.round() as usize).cloned().unwrap_or_default()
        })
        .y_desc("IOPS ratio")
        .draw()
        .map_err(draw_err)?;
    let colors = [BLUE, RGBColor(230, 120, 0)];
    let width = 0.7 / series.len().max(1) as f64;
    for (k, (label, values)) in series.iter().enumerate() {
        let bars: Vec<(f64, Spread)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i as f64 - 0.35 + width * k as f64, s)))
            .collect();
        let c = colors[k % colors.len()];
        chart
            .draw_series(bars.iter().map(|(x, s)| {
                Rectangle::new(
                    [(*x, 0.0), (*x + width * 0.85, s.median)],
                    c.mix(0.6).filled(),
                )
            }))
            .map_err(draw_err)?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
        chart
            .draw_series(bars.iter().map(|(x, s)| {
                let mid = *x + width * 0.425;
                PathElement::new(vec![(mid, s.min), (mid, s.max)], BLACK.stroke_width(2))
            }))
            .map_err(draw_err)?;
    }
    let vertical = ("sans-serif", 13)
        .into_font()
        .transform(FontTransform::Rotate270)
        .color(&BLACK);
    chart
        .draw_series(notes.iter().enumerate().filter_map(|(i, note)| {
            Some(Text::new(
                note.clone()?,
                (i as f64 - 0.28, top * 0.02),
                vertical.clone(),
            ))
        }))
        .map_err(draw_err)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, target.0), (n - 0.5, target.0)],
            RED.stroke_width(1),
        )))
        .map_err(draw_err)?
        .label(target.1)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

/// One line of a plot: its legend, whether it is a standby series (green
/// shades) or a classic one (red shades, as in the demo's timeline), and
/// its points.
type Series = (String, bool, Vec<(f64, f64)>);

/// Lines of median blackout (ms) against a log-scale x, one per series,
/// each point labelled with its value.
fn plot_lines(path: &Path, title: &str, x_desc: &str, series: &[Series]) -> Result<()> {
    use plotters::prelude::*;
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .collect();
    let (x0, x1) = (
        xs.iter().cloned().fold(f64::INFINITY, f64::min).max(1.0),
        xs.iter().cloned().fold(1.0, f64::max),
    );
    let y1 = ys.iter().cloned().fold(1.0, f64::max) * 2.5;
    let root = SVGBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 / 2.0..x1 * 2.0).log_scale(), (0.1f64..y1).log_scale())
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("median blackout (ms, log scale)")
        .draw()
        .map_err(draw_err)?;
    let greens = [RGBColor(0, 150, 0), RGBColor(0, 90, 60)];
    let reds = [RGBColor(210, 0, 0), RGBColor(230, 120, 0)];
    let (mut g, mut r) = (0, 0);
    for (label, standby, pts) in series {
        let c = if *standby {
            g += 1;
            greens[(g - 1) % greens.len()]
        } else {
            r += 1;
            reds[(r - 1) % reds.len()]
        };
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(draw_err)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, c.filled())))
            .map_err(draw_err)?;
        chart
            .draw_series(pts.iter().map(|p| {
                Text::new(
                    format!("{:.2} ms", p.1),
                    *p,
                    ("sans-serif", 13).into_font().color(&c),
                )
            }))
            .map_err(draw_err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::MiddleRight)
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_quick_and_full() {
        let q = Plan::of(true, &[], None, None, true);
        assert_eq!((q.rounds, q.upgrades, q.configs.len()), (1, 1, 4));
        // Overhead (3 peers + a profile), size, load, peer (2 drivers, + a
        // profile of each).
        assert_eq!(q.steps(), 4 * 3 + 4 + 2 + 2 * 2 * 2 + 2 * 4 * 2);
        let unprofiled = Plan::of(true, &[], None, None, false);
        assert_eq!(unprofiled.steps(), 4 * 3 + 2 + 2 * 2 * 2 + 4 * 2);
        let peer = Plan::of(false, &[Part::Peer], Some(5), None, false);
        assert_eq!(peer.steps(), 5 * 4 * 2);
        assert!(peer.env(Path::new("/k/brd.ko")).contains(&(
            "HOTUP_BENCH_PEER_CONFIGS",
            "randread-qd1-j1 randwrite-qd1-j1 randread-qd32-j1 randwrite-qd32-j1".into()
        )));
        assert!(unprofiled.estimate_s() < q.estimate_s());
        let f = Plan::of(false, &[Part::Size], None, Some(3), true);
        assert_eq!(f.parts, vec![Part::Size]);
        assert_eq!((f.steps(), f.upgrades), (3, 3));
        let env = f.env(Path::new("/k/brd.ko"));
        assert!(env.contains(&("HOTUP_BENCH_PARTS", "size".into())));
        assert!(env.contains(&("HOTUP_BENCH_SIZES", "16 256 1024".into())));
        assert!(env.contains(&("HOTUP_BENCH_PROFILE", "1".into())));
        assert!(f.estimate_s() > 90);
    }

    /// A recorded guest folder: two rounds of one configuration, a size
    /// pair and a load point with a latency log.
    #[test]
    fn analyse_a_recorded_run() {
        let dir = std::env::temp_dir().join(format!("hotup-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fio = |iops: f64, p99: u64| {
            format!(
                r#"{{"jobs":[{{"error":0,"read":{{"total_ios":9,"iops":{iops},"clat_ns":{{"percentile":{{"99.000000":{p99}}}}}}},"write":{{"total_ios":0,"iops":0}}}}]}}"#
            )
        };
        for (peer, iops) in [("hotup", 990.0), ("mono", 1000.0), ("brd", 2000.0)] {
            for r in 1..=2 {
                std::fs::write(
                    dir.join(format!("overhead-randread-qd1-j1-{peer}-r{r}.json")),
                    fio(iops * f64::from(r), 100_000),
                )
                .unwrap();
            }
        }
        let up = |mode: &str, ms: u64, at: u64| {
            format!(
                r#"{{"ok":true,"mode":"{mode}","blackout_ns":{},"drain_ns":0,"export_ns":0,"load_ns":0,"adopt_ns":0,"started_ms":{at}}}"#,
                ms * 1_000_000
            )
        };
        std::fs::write(
            dir.join("size-16.jsonl"),
            format!(
                "{}\n{}\n",
                up("standby-handover", 2, 1),
                up("classic", 80, 2)
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("size-1024.jsonl"),
            format!(
                "{}\n{}\n",
                up("standby-handover", 3, 1),
                up("classic", 80, 2)
            ),
        )
        .unwrap();
        std::fs::write(dir.join("load-l100-q1-base.json"), fio(500.0, 200_000)).unwrap();
        std::fs::write(
            dir.join("load-l100-q1.jsonl"),
            format!("{}\n", up("standby-handover", 2, 5000)),
        )
        .unwrap();
        std::fs::write(
            dir.join("load-l100-q1_lat.1.log"),
            "5100, 600000, 1, 4096, 0\n9000, 9000000, 1, 4096, 0\n",
        )
        .unwrap();
        let plan = Plan {
            parts: vec![Part::Overhead, Part::Size, Part::Load],
            rounds: 2,
            runtime_s: 1,
            configs: vec!["randread-qd1-j1".into()],
            sizes_mib: vec![16, 1024],
            depths: vec![1],
            latencies_us: vec![100],
            upgrades: 1,
            profile: true,
            peer_configs: vec!["randread-qd1-j1".into()],
        };
        // The peer part: hotup at 0.9 and 1.0 of the kernel driver in two
        // rounds; profiled, hotup spends 1.2x the busy CPU per I/O.
        for (drv, r, iops) in [
            ("hotup", 1, 900.0),
            ("nvme", 1, 1000.0),
            ("hotup", 2, 1000.0),
            ("nvme", 2, 1000.0),
        ] {
            std::fs::write(
                dir.join(format!("peer-randread-qd1-j1-{drv}-r{r}.json")),
                fio(iops, 50_000),
            )
            .unwrap();
        }
        for (drv, module, busy) in [("hotup", "hotup_nvme_v1", 600), ("nvme", "nvme", 500)] {
            std::fs::write(
                dir.join(format!("peer-profile-randread-qd1-j1-{drv}-r1.json")),
                fio(1000.0, 50_000),
            )
            .unwrap();
            std::fs::write(
                dir.join(format!("peer-profile-randread-qd1-j1-{drv}-r1.txt")),
                format!("    50.00%  1000  [kernel.kallsyms]  [k] pv_native_safe_halt\n    10.00%  100  [{module}]  [k] f\n    40.00%  {}  [kernel.kallsyms]  [k] memcpy\n", busy - 100),
            )
            .unwrap();
        }
        // The profile of hotup: 1.5% of the samples in the parent's code
        // out of 75% busy is 2% of the busy CPU (the target's edge).
        std::fs::write(
            dir.join("profile-randread-qd1-j1.txt"),
            "    25.00%  [k] __cpuidle_text_start\n     1.50%  [k] _RNvMs_NtCsTyXwRcVFiE_6parent3hubNtB4_3Hub6submit\n    73.50%  [k] memcpy\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("profile-randread-qd1-j1-fio.json"),
            fio(900.0, 100_000),
        )
        .unwrap();
        let (r, errors) = analyse(&dir, &plan).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(errors, 0);
        let o = &r.overhead[0];
        assert!((o.iops_hotup_over_mono.unwrap().median - 0.99).abs() < 1e-9);
        let share = o.hotup_profile.unwrap().parent_share_of_busy().unwrap();
        assert!((share - 2.0).abs() < 1e-9);
        assert_eq!(r.size_ratio["standby"], 1.5);
        assert_eq!(r.size_ratio["classic"], 1.0);
        let hit = r.load[0].cells[0].latency_hit.unwrap();
        assert!((hit.median - 3.0).abs() < 1e-9);
        let misses: Vec<&str> = r
            .targets
            .iter()
            .filter(|t| t.met == Some(false))
            .map(|t| t.what.as_str())
            .collect();
        let p = &r.peer[0];
        assert!((p.iops_hotup_over_nvme.unwrap().median - 0.95).abs() < 1e-9);
        assert_eq!(p.profiles["hotup"][&1].driver, 100);
        assert_eq!(p.profiles["nvme"][&1].by_module["nvme"], 100);
        // fio's 9 I/Os per run: 600 busy samples / 9 I/Os against 500 / 9;
        // 100 driver samples each.
        let busy = p.cpu_ratio(ModuleCpu::busy_per_kio).unwrap();
        assert!((busy.median - 1.2).abs() < 1e-9);
        let drv = p.cpu_ratio(ModuleCpu::driver_per_kio).unwrap();
        assert!((drv.median - 1.0).abs() < 1e-9);
        assert_eq!(misses, vec!["blackout largest/smallest device, standby"]);
        assert_eq!(r.targets.len(), 8);
    }
}
