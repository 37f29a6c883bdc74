//! The arithmetic of `cargo xtask bench`: reading the files the guest's
//! `bench/bench.sh` wrote (fio JSON, hotupctl JSON lines, fio latency logs)
//! and turning them into ratios. Every ratio is paired: hotup against a
//! peer in the same round of the same guest boot, so drift between rounds
//! cancels; the spread across rounds is reported with the median.

use crate::report::{parse_fio_json, worst_latency_us, LogSample};
use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// One fio run's figures: IOPS (read + write, all jobs) and the p99
/// completion latency in µs (of the direction that did I/O; the larger if
/// both did).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FioFigures {
    pub iops: f64,
    pub p99_us: f64,
    /// fio's error count over the jobs.
    pub errors: u64,
    /// I/Os completed (read + write, all jobs).
    pub ios: u64,
}

/// [`FioFigures`] of a fio JSON output (`--group_reporting` or not).
pub fn fio_figures(text: &str) -> Result<FioFigures> {
    let v = parse_fio_json(text)?;
    let jobs = v["jobs"].as_array().context("fio JSON has no jobs")?;
    let mut f = FioFigures {
        iops: 0.0,
        p99_us: 0.0,
        errors: 0,
        ios: 0,
    };
    for j in jobs {
        f.errors += j["error"].as_u64().unwrap_or(0);
        for dir in ["read", "write"] {
            let d = &j[dir];
            let ios = d["total_ios"].as_u64().unwrap_or(0);
            if ios == 0 {
                continue;
            }
            f.ios += ios;
            f.iops += d["iops"].as_f64().unwrap_or(0.0);
            let p99 = d["clat_ns"]["percentile"]["99.000000"]
                .as_f64()
                .unwrap_or(0.0)
                / 1000.0;
            f.p99_us = f.p99_us.max(p99);
        }
    }
    Ok(f)
}

/// A median with the spread around it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

/// Median (the mean of the two middle values for an even count), min and
/// max; `None` for no values.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

/// One measured run of the overhead part: configuration, peer, round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverheadRun {
    pub config: String,
    pub peer: String,
    pub round: u32,
    pub fio: FioFigures,
}

/// Parses an overhead file name, `overhead-CONFIG-PEER-rN.json`, into
/// (config, peer, round).
pub fn overhead_name(name: &str) -> Option<(String, String, u32)> {
    run_name("overhead-", name)
}

/// Parses a measured run's file name, `PREFIXCONFIG-PEER-rN.json`, into
/// (config, peer, round).
pub fn run_name(prefix: &str, name: &str) -> Option<(String, String, u32)> {
    let stem = name.strip_prefix(prefix)?.strip_suffix(".json")?;
    let (rest, round) = stem.rsplit_once("-r")?;
    let (config, peer) = rest.rsplit_once('-')?;
    Some((config.to_owned(), peer.to_owned(), round.parse().ok()?))
}

/// The overhead of one configuration: per peer the median IOPS and p99,
/// and hotup's paired ratios against each other peer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverheadRow {
    pub config: String,
    /// Peer -> median IOPS over the rounds.
    pub iops: BTreeMap<String, f64>,
    /// Peer -> median p99 (µs) over the rounds.
    pub p99_us: BTreeMap<String, f64>,
    /// IOPS hotup / mono, per round.
    pub iops_hotup_over_mono: Option<Spread>,
    /// IOPS hotup / brd, per round.
    pub iops_hotup_over_brd: Option<Spread>,
    /// p99 hotup / mono, per round.
    pub p99_hotup_over_mono: Option<Spread>,
    /// p99 hotup / brd, per round.
    pub p99_hotup_over_brd: Option<Spread>,
    /// Where the CPU went in a profiled run of hotup (`--profile`).
    pub hotup_profile: Option<CpuProfile>,
}

/// Ratios `a/b` of `metric`, paired by round (rounds where both ran).
pub fn paired_ratios(
    runs: &[OverheadRun],
    config: &str,
    a: &str,
    b: &str,
    metric: impl Fn(&FioFigures) -> f64,
) -> Option<Spread> {
    let of = |peer: &str| -> BTreeMap<u32, f64> {
        runs.iter()
            .filter(|r| r.config == config && r.peer == peer)
            .map(|r| (r.round, metric(&r.fio)))
            .collect()
    };
    paired(&of(a), &of(b))
}

/// Ratios `a/b` of per-round values, paired by round (rounds in both).
pub fn paired(a: &BTreeMap<u32, f64>, b: &BTreeMap<u32, f64>) -> Option<Spread> {
    let ratios: Vec<f64> = a
        .iter()
        .filter_map(|(round, x)| b.get(round).filter(|y| **y > 0.0).map(|y| x / y))
        .collect();
    spread(&ratios)
}

/// The overhead table: one row per configuration, in first-seen order.
pub fn overhead_rows(runs: &[OverheadRun]) -> Vec<OverheadRow> {
    let mut configs: Vec<&str> = Vec::new();
    for r in runs {
        if !configs.contains(&r.config.as_str()) {
            configs.push(&r.config);
        }
    }
    configs
        .into_iter()
        .map(|c| {
            let per_peer = |f: &dyn Fn(&FioFigures) -> f64| -> BTreeMap<String, f64> {
                let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                for r in runs.iter().filter(|r| r.config == c) {
                    by.entry(r.peer.clone()).or_default().push(f(&r.fio));
                }
                by.into_iter()
                    .filter_map(|(p, v)| spread(&v).map(|s| (p, s.median)))
                    .collect()
            };
            OverheadRow {
                config: c.to_owned(),
                iops: per_peer(&|f| f.iops),
                p99_us: per_peer(&|f| f.p99_us),
                iops_hotup_over_mono: paired_ratios(runs, c, "hotup", "mono", |f| f.iops),
                iops_hotup_over_brd: paired_ratios(runs, c, "hotup", "brd", |f| f.iops),
                p99_hotup_over_mono: paired_ratios(runs, c, "hotup", "mono", |f| f.p99_us),
                p99_hotup_over_brd: paired_ratios(runs, c, "hotup", "brd", |f| f.p99_us),
                hotup_profile: None,
            }
        })
        .collect()
}

/// Where the CPU went while fio ran on hotup: a system-wide `cpu-clock`
/// profile of the guest (`perf report --stdio --no-children --sort sym`).
/// Under TCG there is no hardware PMU, so a timer samples every CPU; the
/// shares are of samples, not of cycles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuProfile {
    /// Samples in the parent's own code (symbols of the `parent` crate,
    /// including the `kernel` crate's generics instantiated for it), % of all.
    pub parent_pct: f64,
    /// Samples in the idle loop, % of all.
    pub idle_pct: f64,
    /// Samples in module code perf could not name (the child's), % of all.
    pub unnamed_module_pct: f64,
}

impl CpuProfile {
    /// The parent's share of the busy (non-idle) CPU time, in %: the most
    /// that removing the parent could win when the run is CPU-bound.
    pub fn parent_share_of_busy(&self) -> Option<f64> {
        let busy = 100.0 - self.idle_pct;
        (busy > 0.0).then(|| 100.0 * self.parent_pct / busy)
    }
}

/// Symbols the idle loop is sampled in (the halt instruction resolves to
/// the start of `.cpuidle.text` on kernels whose perf map lacks it).
const IDLE_SYMBOLS: [&str; 7] = [
    "__cpuidle_text_start",
    "default_idle",
    "pv_native_safe_halt",
    "native_safe_halt",
    "acpi_idle_do_entry",
    "cpu_idle_poll",
    "mwait_idle_with_hints",
];

/// Whether a Rust v0 mangled symbol belongs to the crate `parent`: its
/// path has a crate root `C<disambiguator>_6parent` (`Cs..._6parent`).
fn in_parent_crate(sym: &str) -> bool {
    sym.starts_with("_R")
        && sym.match_indices("_6parent").any(|(i, _)| {
            let before = &sym[..i];
            before
                .rfind("Cs")
                .is_some_and(|c| before[c + 2..].chars().all(|ch| ch.is_ascii_alphanumeric()))
        })
}

/// Parses a `perf report --stdio --no-children --sort sym` text into a
/// [`CpuProfile`]; `None` if it holds no sample line.
pub fn cpu_profile(text: &str) -> Option<CpuProfile> {
    let mut p = CpuProfile {
        parent_pct: 0.0,
        idle_pct: 0.0,
        unnamed_module_pct: 0.0,
    };
    let mut lines = 0;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(pct) = words
            .next()
            .and_then(|w| w.strip_suffix('%'))
            .and_then(|w| w.parse::<f64>().ok())
        else {
            continue;
        };
        let (Some(kind), Some(sym)) = (words.next(), words.next()) else {
            continue;
        };
        lines += 1;
        if kind != "[k]" {
            continue;
        }
        if in_parent_crate(sym) {
            p.parent_pct += pct;
        } else if IDLE_SYMBOLS.contains(&sym) {
            p.idle_pct += pct;
        } else if sym.starts_with("0x") {
            p.unnamed_module_pct += pct;
        }
    }
    (lines > 0).then_some(p)
}

/// The peer comparison of one configuration: QEMU's NVMe controller under
/// hotup (`hotup`: parent + `hotup_nvme`) and under the kernel's own driver
/// (`nvme`), in alternating rounds of one boot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerRow {
    pub config: String,
    /// Driver -> median IOPS over the rounds.
    pub iops: BTreeMap<String, f64>,
    /// Driver -> median p99 (µs) over the rounds.
    pub p99_us: BTreeMap<String, f64>,
    /// IOPS hotup / nvme, paired by round.
    pub iops_hotup_over_nvme: Option<Spread>,
    /// p99 hotup / nvme, paired by round.
    pub p99_hotup_over_nvme: Option<Spread>,
    /// Driver -> round -> where the CPU went in that round's profiled run.
    pub profiles: BTreeMap<String, BTreeMap<u32, ModuleCpu>>,
}

impl PeerRow {
    /// Driver -> median over the rounds of `f` of its profiles.
    pub fn per_kio(&self, driver: &str, f: fn(&ModuleCpu) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.profiles.get(driver)?.values().filter_map(f).collect();
        spread(&v).map(|s| s.median)
    }

    /// `f` of hotup's profile over the kernel driver's, paired by round.
    pub fn cpu_ratio(&self, f: fn(&ModuleCpu) -> Option<f64>) -> Option<Spread> {
        let of = |d: &str| -> BTreeMap<u32, f64> {
            self.profiles
                .get(d)
                .map(|m| {
                    m.iter()
                        .filter_map(|(r, p)| f(p).map(|v| (*r, v)))
                        .collect()
                })
                .unwrap_or_default()
        };
        paired(&of("hotup"), &of("nvme"))
    }
}

/// The peer table from the runs (`peer-CONFIG-DRIVER-rN.json`), one row
/// per configuration in first-seen order; profiles are added by the caller.
pub fn peer_rows(runs: &[OverheadRun]) -> Vec<PeerRow> {
    overhead_rows(runs)
        .into_iter()
        .map(|o| PeerRow {
            iops_hotup_over_nvme: paired_ratios(runs, &o.config, "hotup", "nvme", |f| f.iops),
            p99_hotup_over_nvme: paired_ratios(runs, &o.config, "hotup", "nvme", |f| f.p99_us),
            config: o.config,
            iops: o.iops,
            p99_us: o.p99_us,
            profiles: BTreeMap::new(),
        })
        .collect()
}

/// Whether a sample (module, symbol) is the driver's own CPU: hotup's
/// modules and the kernel's Rust helpers they call out of line (the MMIO
/// accessors: `rust_helper_writel` is where TCG charges a doorbell write),
/// or the kernel driver's `nvme` and `nvme_core` (its accessors are inline).
pub fn driver_sample(driver: &str, module: &str, sym: &str) -> bool {
    match driver {
        "hotup" => {
            module.starts_with("hotup_")
                || (module == "kernel.kallsyms" && sym.starts_with("rust_helper_"))
        }
        _ => module == "nvme" || module == "nvme_core",
    }
}

/// Samples of a system-wide `cpu-clock` profile by module
/// (`perf report --stdio --no-children -n --sort dso,sym`), with the I/O
/// count of the fio run it profiled: CPU per I/O, whole system and in the
/// driver's own modules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleCpu {
    pub samples: u64,
    pub idle: u64,
    /// Samples in the driver's code ([`driver_sample`]).
    pub driver: u64,
    /// Module -> samples, for every module that had any.
    pub by_module: BTreeMap<String, u64>,
    /// I/Os fio completed in the profiled run.
    pub ios: u64,
}

impl ModuleCpu {
    /// Busy (non-idle) samples per thousand I/Os.
    pub fn busy_per_kio(&self) -> Option<f64> {
        (self.ios > 0).then(|| 1000.0 * (self.samples - self.idle) as f64 / self.ios as f64)
    }
    /// Samples in the driver's modules per thousand I/Os.
    pub fn driver_per_kio(&self) -> Option<f64> {
        (self.ios > 0).then(|| 1000.0 * self.driver as f64 / self.ios as f64)
    }
}

/// Parses a by-module perf report; `driver` says which (module, symbol)
/// samples are the driver's. `None` if it holds no sample line.
pub fn module_cpu(text: &str, ios: u64, driver: impl Fn(&str, &str) -> bool) -> Option<ModuleCpu> {
    let mut p = ModuleCpu {
        samples: 0,
        idle: 0,
        driver: 0,
        by_module: BTreeMap::new(),
        ios,
    };
    let mut lines = 0;
    for line in text.lines() {
        let mut w = line.split_whitespace();
        if w.next().and_then(|x| x.strip_suffix('%')).is_none() {
            continue;
        }
        let (Some(n), Some(dso), Some(_kind), Some(sym)) = (
            w.next().and_then(|x| x.parse::<u64>().ok()),
            w.next(),
            w.next(),
            w.next(),
        ) else {
            continue;
        };
        lines += 1;
        p.samples += n;
        if IDLE_SYMBOLS.contains(&sym) {
            p.idle += n;
        }
        if let Some(m) = dso.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            if m != "kernel.kallsyms" && m != "unknown" {
                *p.by_module.entry(m.to_owned()).or_default() += n;
            }
            if driver(m, sym) {
                p.driver += n;
            }
        }
    }
    (lines > 0).then_some(p)
}

/// One upgrade as hotupctl reported it (`hotupctl upgrade --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upgrade {
    pub ok: bool,
    /// `standby-handover`, `standby-drain` or `classic`.
    pub mode: String,
    pub blackout_ms: f64,
    pub drain_ms: f64,
    pub export_ms: f64,
    /// No child loaded (classic: the module unload and load).
    pub load_ms: f64,
    pub adopt_ms: f64,
    pub started_ms: u64,
}

impl Upgrade {
    /// `standby` or `classic`.
    pub fn kind(&self) -> &'static str {
        if self.mode.starts_with("standby") {
            "standby"
        } else {
            "classic"
        }
    }
}

/// The upgrades of a JSON-lines file of hotupctl reports.
pub fn parse_upgrades(text: &str) -> Result<Vec<Upgrade>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l)
                .with_context(|| format!("line {} is not a hotupctl JSON report", i + 1))?;
            let ms = |k: &str| v[k].as_f64().unwrap_or(0.0) / 1e6;
            Ok(Upgrade {
                ok: v["ok"].as_bool().unwrap_or(false),
                mode: v["mode"].as_str().unwrap_or("").to_owned(),
                blackout_ms: ms("blackout_ns"),
                drain_ms: ms("drain_ns"),
                export_ms: ms("export_ns"),
                load_ms: ms("load_ns"),
                adopt_ms: ms("adopt_ns"),
                started_ms: v["started_ms"].as_u64().unwrap_or(0),
            })
        })
        .collect()
}

/// The blackouts of one cell (size, or depth and latency) and mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlackoutCell {
    /// `standby` or `classic`.
    pub mode: String,
    pub upgrades: usize,
    pub failed: usize,
    pub blackout_ms: Option<Spread>,
    /// Medians of the parts (ms): drain, export, no child, adopt.
    pub drain_ms: f64,
    pub export_ms: f64,
    pub load_ms: f64,
    pub adopt_ms: f64,
    /// Worst I/O latency in the second from each upgrade's start over the
    /// baseline p99 of the same workload (load part only).
    pub latency_hit: Option<Spread>,
}

/// Per mode (standby, classic), the blackout cell of `ups`; with latency
/// samples and a baseline p99 (µs), the latency hit too.
pub fn blackout_cells(ups: &[Upgrade], lat: Option<(&[LogSample], f64)>) -> Vec<BlackoutCell> {
    ["standby", "classic"]
        .iter()
        .filter_map(|kind| {
            let all: Vec<&Upgrade> = ups.iter().filter(|u| u.kind() == *kind).collect();
            if all.is_empty() {
                return None;
            }
            let ok: Vec<&Upgrade> = all.iter().copied().filter(|u| u.ok).collect();
            let med = |f: fn(&Upgrade) -> f64| {
                spread(&ok.iter().map(|u| f(u)).collect::<Vec<_>>()).map_or(0.0, |s| s.median)
            };
            let latency_hit = lat.and_then(|(samples, p99_us)| {
                (p99_us > 0.0).then_some(())?;
                let hits: Vec<f64> = ok
                    .iter()
                    .filter_map(|u| worst_latency_us(samples, u.started_ms, 1000))
                    .map(|w| w / p99_us)
                    .collect();
                spread(&hits)
            });
            Some(BlackoutCell {
                mode: (*kind).to_owned(),
                upgrades: all.len(),
                failed: all.len() - ok.len(),
                blackout_ms: spread(&ok.iter().map(|u| u.blackout_ms).collect::<Vec<_>>()),
                drain_ms: med(|u| u.drain_ms),
                export_ms: med(|u| u.export_ms),
                load_ms: med(|u| u.load_ms),
                adopt_ms: med(|u| u.adopt_ms),
                latency_hit,
            })
        })
        .collect()
}

/// `median(a) / median(b)` of the blackouts of one mode in two cells, e.g.
/// the largest device over the smallest.
pub fn blackout_ratio(a: &[BlackoutCell], b: &[BlackoutCell], mode: &str) -> Option<f64> {
    let m = |c: &[BlackoutCell]| {
        c.iter()
            .find(|x| x.mode == mode)
            .and_then(|x| x.blackout_ms)
            .map(|s| s.median)
    };
    let (x, y) = (m(a)?, m(b)?);
    (y > 0.0).then(|| x / y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fio_json(iops_r: f64, iops_w: f64, p99_ns: u64) -> String {
        format!(
            r#"fio: terminating on signal 2
{{"jobs":[{{"jobname":"x","error":0,
 "read":{{"total_ios":{},"iops":{iops_r},"clat_ns":{{"percentile":{{"99.000000":{p99_ns}}}}}}},
 "write":{{"total_ios":{},"iops":{iops_w},"clat_ns":{{"percentile":{{"99.000000":{}}}}}}}}}]}}"#,
            if iops_r > 0.0 { 10 } else { 0 },
            if iops_w > 0.0 { 10 } else { 0 },
            p99_ns / 2
        )
    }

    #[test]
    fn fio_figures_sum_directions_and_take_the_worse_p99() {
        let f = fio_figures(&fio_json(1000.0, 0.0, 50_000)).unwrap();
        assert_eq!((f.iops, f.p99_us, f.errors), (1000.0, 50.0, 0));
        let f = fio_figures(&fio_json(1000.0, 500.0, 50_000)).unwrap();
        assert_eq!((f.iops, f.p99_us), (1500.0, 50.0));
        assert!(fio_figures("no json").is_err());
    }

    #[test]
    fn spread_median_min_max() {
        assert_eq!(spread(&[]), None);
        let s = spread(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(spread(&[1.0, 4.0]).unwrap().median, 2.5);
        assert_eq!(spread(&[f64::NAN, 1.0]).unwrap().n, 1);
    }

    #[test]
    fn overhead_file_names() {
        assert_eq!(
            overhead_name("overhead-randread-qd32-j2-mono-r3.json"),
            Some(("randread-qd32-j2".into(), "mono".into(), 3))
        );
        assert_eq!(overhead_name("size-16.jsonl"), None);
        assert_eq!(overhead_name("overhead-x-hotup-rX.json"), None);
    }

    fn run(config: &str, peer: &str, round: u32, iops: f64, p99: f64) -> OverheadRun {
        OverheadRun {
            config: config.into(),
            peer: peer.into(),
            round,
            fio: FioFigures {
                iops,
                p99_us: p99,
                errors: 0,
                ios: 0,
            },
        }
    }

    #[test]
    fn ratios_are_paired_by_round() {
        // Round 2 ran everything twice as fast: the paired ratio does not
        // care, an unpaired one (median over median) would.
        let runs = vec![
            run("c", "hotup", 1, 98.0, 10.0),
            run("c", "mono", 1, 100.0, 10.0),
            run("c", "brd", 1, 200.0, 5.0),
            run("c", "hotup", 2, 196.0, 5.5),
            run("c", "mono", 2, 200.0, 5.0),
            run("c", "brd", 2, 400.0, 2.5),
            // A round mono missed: not paired.
            run("c", "hotup", 3, 50.0, 1.0),
        ];
        let rows = overhead_rows(&runs);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        let m = r.iops_hotup_over_mono.unwrap();
        assert_eq!(m.n, 2);
        assert!((m.median - 0.98).abs() < 1e-9 && (m.min - 0.98).abs() < 1e-9);
        let b = r.iops_hotup_over_brd.unwrap();
        assert!((b.median - 0.49).abs() < 1e-9);
        let p = r.p99_hotup_over_mono.unwrap();
        assert!((p.min - 1.0).abs() < 1e-9 && (p.max - 1.1).abs() < 1e-9);
        assert_eq!(r.iops["mono"], 150.0);
        assert_eq!(r.iops["hotup"], 98.0);
    }

    const UPS: &str = r#"{"ok":true,"mode":"standby-handover","blackout_ns":2000000,"drain_ns":500000,"export_ns":100000,"load_ns":0,"adopt_ns":900000,"started_ms":10000}
{"ok":true,"mode":"classic","blackout_ns":80000000,"drain_ns":1000000,"export_ns":200000,"load_ns":75000000,"adopt_ns":1000000,"started_ms":12000}

{"ok":true,"mode":"standby-handover","blackout_ns":4000000,"drain_ns":500000,"export_ns":100000,"load_ns":0,"adopt_ns":900000,"started_ms":14000}
{"ok":false,"mode":"classic","error":"x","started_ms":16000}
"#;

    #[test]
    fn upgrades_and_cells() {
        let ups = parse_upgrades(UPS).unwrap();
        assert_eq!(ups.len(), 4);
        assert_eq!(ups[0].kind(), "standby");
        assert_eq!(ups[1].load_ms, 75.0);
        let lat = vec![
            LogSample {
                t_ms: 10_100,
                value: 3_000_000,
                dir: 1,
            },
            LogSample {
                t_ms: 11_500,
                value: 9_000_000,
                dir: 1,
            },
            LogSample {
                t_ms: 12_500,
                value: 90_000_000,
                dir: 1,
            },
            LogSample {
                t_ms: 14_999,
                value: 1_000_000,
                dir: 1,
            },
        ];
        let cells = blackout_cells(&ups, Some((&lat, 1000.0)));
        assert_eq!(cells.len(), 2);
        let s = &cells[0];
        assert_eq!((s.mode.as_str(), s.upgrades, s.failed), ("standby", 2, 0));
        assert_eq!(s.blackout_ms.unwrap().median, 3.0);
        assert_eq!(s.adopt_ms, 0.9);
        // Worst in [10000, 11000) is 3 ms, in [14000, 15000) 1 ms; p99 1 ms.
        let h = s.latency_hit.unwrap();
        assert_eq!((h.min, h.max), (1.0, 3.0));
        let c = &cells[1];
        assert_eq!((c.upgrades, c.failed), (2, 1));
        assert_eq!(c.latency_hit.unwrap().median, 90.0);
        let half: Vec<BlackoutCell> = blackout_cells(&ups[..1], None);
        assert_eq!(blackout_ratio(&cells, &half, "standby"), Some(1.5));
        assert_eq!(blackout_ratio(&cells, &half, "classic"), None);
        assert!(parse_upgrades("{not json").is_err());
    }

    #[test]
    fn peer_rows_and_module_cpu() {
        let runs = vec![
            run("randread-qd1-j1", "hotup", 1, 950.0, 10.0),
            run("randread-qd1-j1", "nvme", 1, 1000.0, 8.0),
            run("randread-qd1-j1", "hotup", 2, 1100.0, 10.0),
            run("randread-qd1-j1", "nvme", 2, 1000.0, 10.0),
        ];
        let rows = peer_rows(&runs);
        let i = rows[0].iops_hotup_over_nvme.unwrap();
        assert!((i.median - 1.025).abs() < 1e-9 && i.min == 0.95 && i.max == 1.1);
        assert_eq!(
            run_name("peer-", "peer-randread-qd1-j1-nvme-r2.json"),
            Some(("randread-qd1-j1".into(), "nvme".into(), 2))
        );
        let report = "# Samples: 10K of event 'cpu-clock'\n\
            #\n\
                50.00%          5000  [kernel.kallsyms]  [k] pv_native_safe_halt\n\
                10.00%          1000  [nvme]             [k] nvme_queue_rq\n\
                 5.00%           500  [nvme_core]        [k] nvme_setup_cmd\n\
                 2.00%           200  [brd]              [k] brd_submit_bio\n\
                33.00%          3300  [kernel.kallsyms]  [k] memcpy\n";
        let m = module_cpu(report, 5000, |m, s| driver_sample("nvme", m, s)).unwrap();
        let h = module_cpu(
            "  5.00%  500  [kernel.kallsyms]  [k] rust_helper_writel\n  1.00%  100  [hotup_parent]  [k] f\n  1.00%  100  [kernel.kallsyms]  [k] memcpy\n",
            1000,
            |m, s| driver_sample("hotup", m, s),
        )
        .unwrap();
        assert_eq!((h.driver, h.samples), (600, 700));
        assert_eq!((m.samples, m.idle, m.driver), (10_000, 5000, 1500));
        assert_eq!(m.by_module["brd"], 200);
        assert_eq!(m.busy_per_kio(), Some(1000.0));
        assert_eq!(m.driver_per_kio(), Some(300.0));
        assert!(module_cpu("# nothing\n", 1, |_, _| true).is_none());
        let mut row = rows[0].clone();
        let mut h = m.clone();
        h.ios = 4000;
        let mut h2 = m.clone();
        h2.ios = 2500;
        row.profiles
            .insert("nvme".into(), [(1, m.clone()), (2, m)].into());
        row.profiles
            .insert("hotup".into(), [(1, h), (2, h2)].into());
        let r = row.cpu_ratio(ModuleCpu::busy_per_kio).unwrap();
        assert_eq!((r.min, r.max, r.median), (1.25, 2.0, 1.625));
        assert_eq!(row.per_kio("nvme", ModuleCpu::driver_per_kio), Some(300.0));
    }

    #[test]
    fn cpu_profile_counts_the_parent_crate_idle_and_unnamed_module_code() {
        // Lines as perf 6.1 prints them for a guest profile (trimmed).
        let text = "# Samples: 18K of event 'cpu-clock'\n\
#\n\
# Overhead  Symbol\n\
    13.57%  [k] __cpuidle_text_start\n\
     8.43%  [k] finish_task_switch.isra.0\n\
     2.58%  [.] __GI___libc_read\n\
     0.46%  [k] _RNvMs_NtCsTyXwRcVFiE_6parent3hubNtB4_3Hub6submit\n\
     0.17%  [k] _RNvMNtNtNtCs1EKtwoKEMO2_6kernel5block2mq10operationsINtB2_16OperationsVTableNtCsTyXwRcVFiE_6parent8HotupBlkE17queue_rq_callbackB1e_\n\
     0.07%  [k] _RNvXNtCs1EKtwoKEMO2_6kernel4timeNtB2_9MonotonicNtB2_11ClockSource9ktime_get\n\
     0.05%  [k] _RNvMs0_NtCs1EKtwoKEMO2_6kernel4task4Task6parent\n\
     0.40%  [k] 0x00000000000147a4\n\
     0.10%  [.] _RNvCsAbc_6parent4main\n";
        let p = cpu_profile(text).unwrap();
        assert!((p.parent_pct - 0.63).abs() < 1e-9, "{p:?}");
        assert!((p.idle_pct - 13.57).abs() < 1e-9);
        assert!((p.unnamed_module_pct - 0.40).abs() < 1e-9);
        let share = p.parent_share_of_busy().unwrap();
        assert!((share - 100.0 * 0.63 / 86.43).abs() < 1e-9);
        assert_eq!(cpu_profile("# nothing sampled\n"), None);
        let idle = cpu_profile("100.00%  [k] default_idle\n").unwrap();
        assert_eq!(idle.parent_share_of_busy(), None);
    }
}
