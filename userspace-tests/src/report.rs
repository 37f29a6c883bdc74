//! Parsing what hotup and fio report: the parent's `hotup: <event> k=v ...`
//! dmesg lines into upgrade outcomes, and fio's JSON and latency logs into
//! the demo's summary figures.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use state_abi::lines::Fields;

/// One `hotup: <event> key=value ...` line: its timestamp (`time_s`, in
/// seconds), `name`, `fields` and `text` (from `hotup:` on).
pub use state_abi::lines::Event;

/// Parses one dmesg line; `None` unless it is a parent event line.
pub fn parse_event(line: &str) -> Option<Event<'_>> {
    Event::parse(line)
}

/// Every parent event in a dmesg text, in order.
pub fn events(dmesg: &str) -> Vec<Event<'_>> {
    dmesg.lines().filter_map(parse_event).collect()
}

/// The result of one upgrade (classic or standby), as the parent logged it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UpgradeOutcome {
    /// The child that left (module name).
    pub from: String,
    /// Its version, if known.
    pub from_version: Option<i64>,
    /// The child that should have arrived.
    pub to: String,
    /// Its version, if it attached or said it.
    pub to_version: Option<i64>,
    /// Adopted and resumed.
    pub ok: bool,
    /// How: `classic`, `standby-handover` or `standby-drain` (the resume
    /// line's `mode`; `classic` for parents that do not log it).
    pub mode: String,
    /// Requests the old child handed over to the new one (standby).
    pub handed_over_ios: Option<i64>,
    /// Parked time of the switch, as the parent measured it.
    pub blackout_ns: Option<i64>,
    /// Where the blackout went (absent from parents that do not log it).
    #[serde(flatten)]
    pub phases: BlackoutPhases,
    /// Requests that waited in the parking lot.
    pub parked_ios: Option<i64>,
    /// Requests in flight that the detach waited for.
    pub drained_ios: Option<i64>,
    /// A handover: completions the old child had under way at its freeze
    /// (they ended on their own; neither handed over nor waited for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completing_ios: Option<i64>,
    /// Generation after the upgrade.
    pub generation: Option<i64>,
    /// Bytes of state handed over.
    pub blob_bytes: Option<i64>,
    /// Why it failed, from dmesg (refusal, rollback, child's reason).
    pub error: Option<String>,
    /// Guest time (s) when the switch began (the park or switch line).
    pub start_s: Option<f64>,
}

impl UpgradeOutcome {
    /// Whether the device was idle: nothing parked, drained, handed over or
    /// being completed when the upgrade ran.
    pub fn idle(&self) -> bool {
        self.parked_ios == Some(0)
            && self.drained_ios == Some(0)
            && self.handed_over_ios.unwrap_or(0) == 0
            && self.completing_ios.unwrap_or(0) == 0
    }
}

/// The parts of one blackout, as the parent's resume line gives them; they
/// add up to `blackout_ns`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct BlackoutPhases {
    /// Waiting for the I/O the old child had in flight.
    pub drain_ns: Option<i64>,
    /// Of `drain_ns`, the old child's freeze (a standby handover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze_ns: Option<i64>,
    /// The old child's quiesce and state export.
    pub export_ns: Option<i64>,
    /// No child loaded: the old module's unload and the new one's load.
    pub load_ns: Option<i64>,
    /// The new child's adopt of the state.
    pub adopt_ns: Option<i64>,
}

impl BlackoutPhases {
    /// `drain 0.1 ms, export 0.2 ms, load 150.0 ms, adopt 0.1 ms`, or `None`
    /// when the parent did not log the phases.
    pub fn describe(&self) -> Option<String> {
        let ms = |v: Option<i64>| v.map(|n| n as f64 / 1e6);
        Some(format!(
            "drain {:.3} ms, export {:.3} ms, load {:.3} ms, adopt {:.3} ms",
            ms(self.drain_ns)?,
            ms(self.export_ns)?,
            ms(self.load_ns)?,
            ms(self.adopt_ns)?
        ))
    }
}

/// Builds the outcome of one upgrade from the dmesg lines logged during it
/// and the exit status of the sequence.
pub fn upgrade_outcome(from: &str, to: &str, exit: i32, dmesg: &str) -> UpgradeOutcome {
    let evs = events(dmesg);
    let find = |n: &str| evs.iter().rev().find(|e| e.name == n);
    let park = find("park").or_else(|| find("switch"));
    let detach = find("detach");
    let switch = find("switch");
    let resume = find("resume").filter(|e| e.get("child") == Some(to));
    let adopt = find("adopt").filter(|e| e.get("child") == Some(to));
    let mut error = None;
    if let Some(e) = evs
        .iter()
        .rev()
        .find(|e| e.name == "rollback" || e.name == "refuse")
    {
        error = Some(e.text.to_owned());
    }
    // The child's own reason (e.g. "hotup_child_v2: adopt refused: checksum mismatch").
    if let Some(l) = dmesg.lines().find(|l| l.contains(": adopt refused:")) {
        let reason = l.find(to).map_or(l, |i| &l[i..]);
        error = Some(match error {
            Some(e) => format!("{e}; {reason}"),
            None => reason.to_owned(),
        });
    }
    let ok = exit == 0 && resume.is_some();
    if !ok && error.is_none() {
        error = Some(format!("the upgrade sequence exited with status {exit} and the parent logged no resume of {to}"));
    }
    UpgradeOutcome {
        from: from.to_owned(),
        from_version: detach
            .and_then(|e| e.num("version"))
            .or_else(|| switch.and_then(|e| e.num("from_version"))),
        to: to.to_owned(),
        to_version: resume.or(adopt).and_then(|e| e.num("version")),
        ok,
        mode: resume
            .and_then(|e| e.get("mode"))
            .unwrap_or("classic")
            .to_owned(),
        handed_over_ios: resume.and_then(|e| e.num("handed_over")),
        blackout_ns: resume.and_then(|e| e.num("blackout_ns")),
        phases: BlackoutPhases {
            drain_ns: resume.and_then(|e| e.num("drain_ns")),
            freeze_ns: resume.and_then(|e| e.num("freeze_ns")),
            export_ns: resume.and_then(|e| e.num("export_ns")),
            load_ns: resume.and_then(|e| e.num("load_ns")),
            adopt_ns: resume.and_then(|e| e.num("adopt_ns")),
        },
        parked_ios: resume.and_then(|e| e.num("parked")),
        completing_ios: resume.and_then(|e| e.num("completing")),
        drained_ios: resume
            .and_then(|e| e.num("drained"))
            .or_else(|| detach.and_then(|e| e.num("drained"))),
        generation: resume.and_then(|e| e.num("gen")),
        blob_bytes: adopt.and_then(|e| e.num("blob_bytes")),
        error,
        start_s: park.and_then(|e| e.time_s),
    }
}

/// The distribution of the upgrades' blackouts, in ns.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct BlackoutStats {
    /// Upgrades counted (`resume` lines with a blackout, i.e. not the first
    /// attach).
    pub upgrades: usize,
    pub min_ns: u64,
    pub median_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// Blackout statistics over every `hotup: resume` line of `dmesg` that ended
/// a park (blackout > 0); `None` if there is none. Percentiles are nearest
/// rank.
pub fn blackout_stats(dmesg: &str) -> Option<BlackoutStats> {
    stats_of(
        events(dmesg)
            .iter()
            .filter(|e| e.name == "resume")
            .filter_map(|e| e.num::<i64>("blackout_ns"))
            .filter(|n| *n > 0)
            .map(|n| n as u64)
            .collect(),
    )
}

/// The blackouts of the soak's own log (`soak: I/N ... blackout_ns=B ...`
/// per upgrade), which, unlike the kernel's ring buffer, holds every
/// upgrade of a long run.
pub fn soak_blackouts(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.trim().strip_prefix("soak: "))
        .filter(|l| {
            l.split('/')
                .next()
                .is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .filter_map(|l| Fields::new(l).num("blackout_ns"))
        .collect()
}

/// [`BlackoutStats`] of `b` (ns); `None` if empty. Percentiles are nearest
/// rank.
pub fn stats_of(mut b: Vec<u64>) -> Option<BlackoutStats> {
    b.sort_unstable();
    let rank = |p: f64| -> u64 {
        let i = ((p * b.len() as f64).ceil() as usize).clamp(1, b.len()) - 1;
        b[i]
    };
    Some(BlackoutStats {
        upgrades: b.len(),
        min_ns: *b.first()?,
        median_ns: rank(0.5),
        p99_ns: rank(0.99),
        max_ns: *b.last()?,
    })
}

/// When fio's jobs ran, as ms since the Unix epoch: from the end of the run
/// (`timestamp_ms`, written when fio finished) back by the longest job's
/// `job_runtime`. `None` if the JSON lacks either.
/// The window covering several fio runs (e.g. the writer's passes and the
/// reader): from the earliest start to the latest end.
pub fn fio_window_all_ms(runs: &[Value]) -> Option<(u64, u64)> {
    runs.iter()
        .filter_map(fio_window_ms)
        .reduce(|(s0, e0), (s1, e1)| (s0.min(s1), e0.max(e1)))
}

pub fn fio_window_ms(v: &Value) -> Option<(u64, u64)> {
    let end = v["timestamp_ms"].as_u64()?;
    let runtime = v["jobs"]
        .as_array()?
        .iter()
        .filter_map(|j| j["job_runtime"].as_u64())
        .max()?;
    Some((end.saturating_sub(runtime), end))
}

/// fio's figures for the demo report.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FioSummary {
    /// Sum of the jobs' `error` fields (and of `total_err` where present).
    pub errors: u64,
    /// "pass" when no job failed and blocks were verified, else "fail".
    pub verify: String,
    /// Blocks read back and checked: verify reads while running plus the
    /// 4 KiB chunks of the read-back pass.
    pub verified_blocks: u64,
    /// Of those, the verify reads of the live run (seed and sequence number
    /// checked: what can see a lost write).
    pub verified_live_blocks: u64,
    /// Read IOPS over all jobs of the live run.
    pub read_iops: f64,
    /// Write IOPS over all jobs of the live run.
    pub write_iops: f64,
    /// Read bandwidth, KiB/s.
    pub read_bw_kib: u64,
    /// Write bandwidth, KiB/s.
    pub write_bw_kib: u64,
    /// Completion latency percentiles (worst over jobs and directions), µs.
    pub lat_p50_us: f64,
    /// p99, µs.
    pub lat_p99_us: f64,
    /// p99.9, µs.
    pub lat_p999_us: f64,
    /// Maximum completion latency, µs.
    pub lat_max_us: f64,
}

/// Parses fio JSON output, skipping any notice lines fio prints before it.
pub fn parse_fio_json(text: &str) -> Result<Value> {
    let start = text.find('{').context("fio output has no JSON object")?;
    serde_json::from_str(&text[start..]).context("fio output is not valid JSON")
}

fn jobs(v: &Value) -> Result<&Vec<Value>> {
    v.get("jobs")
        .and_then(Value::as_array)
        .context("fio JSON has no 'jobs' array")
}

fn f(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

/// Jobs whose reads are verify reads: the writer's passes (`pass`, each
/// block's seed and sequence number checked) and the older `verify` job.
const VERIFYING_JOBS: &[&str] = &["pass", "verify"];

/// Summarises the live run (the fio runs in `live`: the writer's passes and
/// the reader, or one run with `verify` and `load` jobs) and the read-back
/// pass (`readback` job, 64 KiB reads with a verify header every 4 KiB).
pub fn fio_summary(live: &[Value], readback: &Value) -> Result<FioSummary> {
    let mut s = FioSummary::default();
    let mut live_jobs = Vec::new();
    for v in live {
        live_jobs.extend(jobs(v)?.iter());
    }
    let rb_jobs = jobs(readback)?;
    if live_jobs.is_empty() || rb_jobs.is_empty() {
        bail!("fio JSON has no jobs");
    }
    for j in live_jobs.iter().copied().chain(rb_jobs) {
        s.errors += j.get("error").and_then(Value::as_u64).unwrap_or(0);
        s.errors += j.get("total_err").and_then(Value::as_u64).unwrap_or(0);
    }
    // Rates per job name over the name's whole runtime (the writer's passes
    // run one after another: their I/Os over their summed runtime), then
    // summed over names, which ran side by side. Never fio's per-direction
    // `iops`: for verify reads it is computed over their own few ms.
    let mut by_name: std::collections::BTreeMap<&str, [f64; 5]> = Default::default();
    for j in &live_jobs {
        let name = j.get("jobname").and_then(Value::as_str).unwrap_or("");
        let e = by_name.entry(name).or_default();
        e[0] += f(j, &["job_runtime"]) / 1000.0;
        e[1] += f(j, &["read", "total_ios"]);
        e[2] += f(j, &["write", "total_ios"]);
        e[3] += f(j, &["read", "io_bytes"]);
        e[4] += f(j, &["write", "io_bytes"]);
    }
    for [secs, r, w, rb, wb] in by_name.values().copied() {
        if secs > 0.0 {
            s.read_iops += r / secs;
            s.write_iops += w / secs;
            s.read_bw_kib += (rb / 1024.0 / secs) as u64;
            s.write_bw_kib += (wb / 1024.0 / secs) as u64;
        }
    }
    for j in live_jobs {
        for d in ["read", "write"] {
            if f(j, &[d, "total_ios"]) == 0.0 {
                continue;
            }
            let pct = |p: &str| f(j, &[d, "clat_ns", "percentile", p]) / 1000.0;
            s.lat_p50_us = s.lat_p50_us.max(pct("50.000000"));
            s.lat_p99_us = s.lat_p99_us.max(pct("99.000000"));
            s.lat_p999_us = s.lat_p999_us.max(pct("99.900000"));
            s.lat_max_us = s.lat_max_us.max(f(j, &[d, "lat_ns", "max"]) / 1000.0);
        }
        if j.get("jobname")
            .and_then(Value::as_str)
            .is_some_and(|n| VERIFYING_JOBS.contains(&n))
        {
            s.verified_live_blocks += f(j, &["read", "total_ios"]) as u64;
        }
    }
    s.verified_blocks = s.verified_live_blocks;
    for j in rb_jobs {
        let bytes = f(j, &["read", "io_bytes"]) as u64;
        s.verified_blocks += bytes / 4096;
    }
    s.verify = if s.errors == 0 && s.verified_blocks > 0 {
        "pass"
    } else {
        "fail"
    }
    .to_owned();
    Ok(s)
}

/// One sample of a fio log (`write_lat_log`/`write_iops_log` with
/// `log_unix_epoch=1`): time in ms since the epoch and the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogSample {
    /// Milliseconds since the Unix epoch.
    pub t_ms: u64,
    /// Latency in ns (lat logs) or IOPS (iops logs).
    pub value: u64,
    /// 0 read, 1 write.
    pub dir: u8,
}

/// Parses a fio log file (`time, value, direction, bs, offset[, prio]`).
pub fn parse_fio_log(text: &str) -> Vec<LogSample> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split(',').map(str::trim);
            Some(LogSample {
                t_ms: it.next()?.parse().ok()?,
                value: it.next()?.parse().ok()?,
                dir: it.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// The worst latency (µs) of any sample within `[from_ms, from_ms + window_ms)`.
pub fn worst_latency_us(samples: &[LogSample], from_ms: u64, window_ms: u64) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s.t_ms >= from_ms && s.t_ms < from_ms + window_ms)
        .map(|s| s.value as f64 / 1000.0)
        .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DMESG: &str = "\
[   20.100000] hotup: control export_schema=2
[   20.200000] hotup: park gen=1 child=hotup_child_v1 version=1 reason=detach inflight=5
[   20.210000] hotup_child_v1: export version=1 schema=1 blob_bytes=120 handle=0x100
[   20.220000] hotup: detach gen=1 child=hotup_child_v1 version=1 drained=5 blob_bytes=120 schema=2 blob=ok
[   20.230000] hotup_child_v1: unload version=1
[   20.300000] hotup_child_v2: adopt version=2 from_version=1 schema=1 migrated=yes blob_bytes=120
[   20.300100] hotup: adopt gen=2 child=hotup_child_v2 version=2 from=hotup_child_v1 from_version=1 blob_bytes=120
[   20.300200] hotup: attach gen=2 child=hotup_child_v2 version=2 abi=1.0 adopted=yes
[   20.300300] hotup: resume gen=2 child=hotup_child_v2 version=2 parked=64 drained=5 blackout_ns=100300000 drain_ns=10000000 export_ns=10000000 load_ns=80000000 adopt_ns=300000
";

    #[test]
    fn parses_event_lines() {
        let e = parse_event("[   20.220000] hotup: detach gen=1 child=hotup_child_v1 drained=5 blob=checksum mismatch").unwrap();
        assert_eq!(e.name, "detach");
        assert_eq!(e.time_s, Some(20.22));
        assert_eq!(e.num("drained"), Some(5));
        assert_eq!(e.get("blob"), Some("checksum mismatch"));
        let e = parse_event(r#"hotup: refuse child=x reason=busy active=a hint="rmmod a first""#)
            .unwrap();
        assert_eq!(e.get("hint"), Some("rmmod a first"));
        assert!(parse_event("[ 1.0] hotup_child_v1: load version=1").is_none());
    }

    #[test]
    fn standby_switch_outcome() {
        let d = "[ 5.0] hotup: switch gen=1 from=hotup_child_v1 from_version=1 to=hotup_child_v2 to_version=2 mode=handover inflight=4 timeout_ms=5000\n\
                 [ 5.1] hotup: resume gen=2 child=hotup_child_v2 version=2 parked=9 drained=0 blackout_ns=9000000 drain_ns=100 export_ns=200 load_ns=0 adopt_ns=300 mode=standby-handover handed_over=4\n";
        let o = upgrade_outcome("hotup_child_v1", "hotup_child_v2", 0, d);
        assert!(o.ok);
        assert_eq!(o.mode, "standby-handover");
        assert_eq!((o.from_version, o.to_version), (Some(1), Some(2)));
        assert_eq!(
            (o.handed_over_ios, o.drained_ios, o.parked_ios),
            (Some(4), Some(0), Some(9))
        );
        assert_eq!(o.start_s, Some(5.0));
        assert_eq!(o.phases.load_ns, Some(0));
    }

    #[test]
    fn successful_upgrade_outcome() {
        let o = upgrade_outcome("hotup_child_v1", "hotup_child_v2", 0, DMESG);
        assert!(o.ok, "{o:?}");
        assert_eq!(o.from_version, Some(1));
        assert_eq!(o.to_version, Some(2));
        assert_eq!(o.blackout_ns, Some(100_300_000));
        let p = &o.phases;
        assert_eq!(
            (p.drain_ns, p.export_ns, p.load_ns, p.adopt_ns),
            (
                Some(10_000_000),
                Some(10_000_000),
                Some(80_000_000),
                Some(300_000)
            )
        );
        assert_eq!(
            p.describe().as_deref(),
            Some("drain 10.000 ms, export 10.000 ms, load 80.000 ms, adopt 0.300 ms")
        );
        assert_eq!(o.parked_ios, Some(64));
        assert_eq!(o.drained_ios, Some(5));
        assert_eq!(o.generation, Some(2));
        assert_eq!(o.start_s, Some(20.2));
        assert!(o.error.is_none());
    }

    #[test]
    fn refused_adopt_outcome_carries_the_reasons() {
        let d = "\
[ 5.0] hotup: park gen=3 child=hotup_child_v1 version=1 reason=detach inflight=0
[ 5.1] hotup: detach gen=3 child=hotup_child_v1 version=1 drained=0 blob_bytes=120 schema=2 blob=checksum mismatch
[ 5.2] hotup_child_v2: adopt refused: checksum mismatch (this is v2, reading schema <= 2)
[ 5.3] hotup: rollback child=hotup_child_v2 version=2 err=-74 state=parked parked=3 blob=kept hint=\"load a child that can adopt the stashed state, e.g. hotup_child_v1\"
";
        let o = upgrade_outcome("hotup_child_v1", "hotup_child_v2", 1, d);
        assert!(!o.ok);
        let e = o.error.unwrap();
        assert!(
            e.contains("rollback") && e.contains("state=parked") && e.contains("checksum mismatch"),
            "{e}"
        );
    }

    #[test]
    fn exit_zero_without_resume_is_not_ok() {
        let o = upgrade_outcome("hotup_child_v1", "hotup_child_v2", 0, "");
        assert!(!o.ok);
        assert!(o.error.unwrap().contains("no resume"));
    }

    #[test]
    fn fio_logs_and_worst_latency() {
        let s = parse_fio_log("1700000000000, 1500, 0, 4096, 0\n1700000000400, 250000, 1, 65536, 0\nbad\n1700000001500, 900, 0, 4096, 0\n");
        assert_eq!(s.len(), 3);
        assert_eq!(worst_latency_us(&s, 1_700_000_000_000, 1000), Some(250.0));
        assert_eq!(worst_latency_us(&s, 1_800_000_000_000, 1000), None);
    }

    /// Recorded output of a real guest run (the demo's live and read-back jobs).
    #[test]
    fn fio_summary_from_recorded_json() {
        let live = parse_fio_json(include_str!("../fixtures/fio-live.json")).unwrap();
        let rb = parse_fio_json(include_str!("../fixtures/fio-readback.json")).unwrap();
        let s = fio_summary(std::slice::from_ref(&live), &rb).unwrap();
        assert_eq!(s.errors, 0);
        assert_eq!(s.verify, "pass");
        assert!(s.verified_blocks > 16384, "{s:?}");
        assert!(s.read_iops > 0.0 && s.write_iops > 0.0);
        // Rates are I/Os over job runtime, never fio's per-direction verify-read figure.
        let live_jobs = live["jobs"].as_array().unwrap();
        let expect: f64 = live_jobs
            .iter()
            .map(|j| {
                j["read"]["total_ios"].as_f64().unwrap()
                    / (j["job_runtime"].as_f64().unwrap() / 1000.0)
            })
            .sum();
        assert!(
            (s.read_iops - expect).abs() < 1e-6,
            "{} vs {expect}",
            s.read_iops
        );
        assert!(
            s.lat_p50_us > 0.0 && s.lat_p50_us <= s.lat_p99_us && s.lat_p99_us <= s.lat_p999_us
        );
        assert!(s.lat_p999_us <= s.lat_max_us);
    }

    #[test]
    fn fio_window_from_json() {
        let v = parse_fio_json(
            r#"{"timestamp_ms":100000,"jobs":[{"job_runtime":60000},{"job_runtime":60006}]}"#,
        )
        .unwrap();
        assert_eq!(fio_window_ms(&v), Some((39994, 100000)));
        assert_eq!(
            fio_window_ms(&parse_fio_json(r#"{"jobs":[]}"#).unwrap()),
            None
        );
    }

    #[test]
    fn blackout_distribution_from_resume_lines() {
        let mut d = String::from("[ 1.0] hotup: resume gen=1 child=hotup_child_v1 version=1 parked=0 drained=0 blackout_ns=0\n");
        for i in 1..=100u64 {
            d.push_str(&format!(
                "[ 2.0] hotup: resume gen={} child=hotup_child_v2 version=2 parked=3 drained=1 blackout_ns={}\n",
                i + 1,
                i * 1000
            ));
        }
        let s = blackout_stats(&d).unwrap();
        assert_eq!(s.upgrades, 100);
        assert_eq!(
            (s.min_ns, s.median_ns, s.p99_ns, s.max_ns),
            (1000, 50_000, 99_000, 100_000)
        );
        assert_eq!(blackout_stats("[ 1.0] hotup: load capacity_mib=16\n"), None);
    }

    #[test]
    fn soak_log_blackouts() {
        let log = "soak: 1/3 v2 one-process blackout_ns=300 upgrade_ms=5 wait_ms=1\r\n\
                   soak: failed upgrade 2: x\n\
                   soak: 2/3 v1 commands blackout_ns=100 upgrade_ms=5 wait_ms=1\n\
                   soak: 3/3 v2 one-process blackout_ns=200\n\
                   soak: done upgrades=3 under_writes=2\n";
        assert_eq!(soak_blackouts(log), vec![300, 100, 200]);
        let s = stats_of(soak_blackouts(log)).unwrap();
        assert_eq!(
            (s.upgrades, s.min_ns, s.median_ns, s.max_ns),
            (3, 100, 200, 300)
        );
    }

    #[test]
    fn passes_count_as_one_writer_over_their_summed_runtime() {
        let pass = |ms: u64, w: u64, err: u64, end: u64| {
            serde_json::json!({"timestamp_ms": end, "jobs":[{"jobname":"pass","error":err,"job_runtime":ms,
                "read":{"total_ios":w,"io_bytes":w*4096},"write":{"total_ios":w,"io_bytes":w*4096}}]})
        };
        let rb =
            serde_json::json!({"jobs":[{"jobname":"readback","error":0,"read":{"io_bytes":4096}}]});
        let live = [pass(2000, 1000, 0, 10_000), pass(3000, 1000, 0, 14_000)];
        let s = fio_summary(&live, &rb).unwrap();
        // 2000 writes over 5 s, not 500 + 333 summed.
        assert!((s.write_iops - 400.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s.verified_blocks, 2001);
        assert_eq!(s.verify, "pass");
        assert_eq!(fio_window_all_ms(&live), Some((8_000, 14_000)));
        // A pass that saw a lost write fails the whole run.
        let bad = [pass(2000, 1000, 0, 10_000), pass(3000, 900, 84, 14_000)];
        let s = fio_summary(&bad, &rb).unwrap();
        assert_eq!(s.errors, 84);
        assert_eq!(s.verify, "fail");
    }

    #[test]
    fn fio_errors_fail_verification() {
        let live = parse_fio_json(r#"fio: note
{"jobs":[{"jobname":"verify","error":84,"job_runtime":1000,"read":{"total_ios":10,"iops":1.0},"write":{"total_ios":10,"iops":1.0}}]}"#).unwrap();
        let rb =
            serde_json::json!({"jobs":[{"jobname":"readback","error":0,"read":{"io_bytes":4096}}]});
        let s = fio_summary(&[live], &rb).unwrap();
        assert_eq!(s.errors, 84);
        assert_eq!(s.verify, "fail");
    }
}
