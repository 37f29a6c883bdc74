//! Scenario discovery and the verdict on one guest run.

use crate::{dmesg_problems, parse_ktap, KtapReport};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A guest scenario: a shell script in `userspace-tests/scenarios/`.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// File stem, e.g. `smoke`.
    pub name: String,
    /// The script on the host (the guest sees the same path).
    pub path: PathBuf,
    /// From the script's `# description:` header line.
    pub description: String,
    /// From `# timeout: SECONDS` (default 300).
    pub timeout_s: u64,
    /// From `# nvme: N` (default 0): QEMU NVMe controllers the guest gets,
    /// each over its own image, with QEMU's `pci_nvme_*` trace events
    /// logged to `nvme-trace.log` in the run folder.
    pub nvme: u32,
    /// From `# nvme-iops: N` (default 0, unthrottled): a QEMU throttle
    /// group on each controller's drive, N I/Os per second in all, so the
    /// controller holds commands (its latency grows with the depth).
    pub nvme_iops: u32,
}

/// Reads the header of one scenario script.
pub fn load(path: &Path) -> Result<Scenario> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading scenario {}", path.display()))?;
    let header = |key: &str| {
        text.lines()
            .take_while(|l| l.starts_with('#'))
            .find_map(|l| l.strip_prefix("# ")?.strip_prefix(key)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("scenario file name {} is not UTF-8", path.display()))?
        .to_owned();
    // A numeric header, `default` when absent; `what` names its unit.
    let number = |key: &str, default: u64, what: &str| -> Result<u64> {
        header(key).map_or(Ok(default), |v| {
            v.parse().with_context(|| {
                format!(
                    "{}: '# {key}: {v}' is not a number of {what}",
                    path.display()
                )
            })
        })
    };
    let timeout_s = number("timeout", 300, "seconds")?;
    let nvme = u32::try_from(number("nvme", 0, "controllers")?)
        .with_context(|| format!("{}: '# nvme:' is out of range", path.display()))?;
    let nvme_iops = u32::try_from(number("nvme-iops", 0, "I/Os per second")?)
        .with_context(|| format!("{}: '# nvme-iops:' is out of range", path.display()))?;
    Ok(Scenario {
        nvme,
        nvme_iops,
        description: header("description").unwrap_or_else(|| name.clone()),
        name,
        path: path.to_owned(),
        timeout_s,
    })
}

/// Every `*.sh` in `dir`, sorted by name.
pub fn discover(dir: &Path) -> Result<Vec<Scenario>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing scenarios in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

/// What came back from one guest run.
#[derive(Debug, Clone, Default)]
pub struct GuestOutcome {
    /// The script's exit status, if the guest got as far as reporting it.
    pub exit_status: Option<i32>,
    /// The guest was killed at the timeout.
    pub timed_out: bool,
    /// KTAP the script wrote.
    pub ktap: String,
    /// The guest's dmesg (or, if the guest died before saving it, its console).
    pub dmesg: String,
}

/// The harness's judgement of one scenario run.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Passed on every count.
    pub ok: bool,
    /// Why not, one line per reason (empty when ok).
    pub reasons: Vec<String>,
    /// The scenario's own subtests.
    pub subtests: KtapReport,
    /// Problem lines found in dmesg.
    pub dmesg_problems: Vec<String>,
}

/// Judges a guest run: exit status, subtests and dmesg must all be clean.
pub fn judge(outcome: &GuestOutcome) -> Verdict {
    let subtests = parse_ktap(&outcome.ktap);
    let problems = dmesg_problems(&outcome.dmesg);
    let mut reasons = Vec::new();
    if outcome.timed_out {
        reasons.push("TIMEOUT: guest killed at the time limit".to_owned());
    }
    match outcome.exit_status {
        Some(0) => {}
        Some(s) => reasons.push(format!("script exited with status {s}")),
        None if !outcome.timed_out => {
            reasons.push("guest ended without reporting an exit status".to_owned())
        }
        None => {}
    }
    for r in subtests.results.iter().filter(|r| !r.passed()) {
        let why = r.reason.as_deref().unwrap_or("failed");
        let kind = r.directive.as_deref().unwrap_or("not ok");
        reasons.push(format!(
            "subtest {} '{}' {kind}: {why}",
            r.number, r.description
        ));
    }
    reasons.extend(subtests.structural_problems());
    // Quote the first problem line in the reason itself; the rest stay in the list.
    if let Some(first) = problems.first() {
        let more = if problems.len() > 1 {
            format!(" (+{} more)", problems.len() - 1)
        } else {
            String::new()
        };
        reasons.push(format!("dmesg: {first}{more}"));
    }
    Verdict {
        ok: reasons.is_empty(),
        reasons,
        subtests,
        dmesg_problems: problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ktap: &str, dmesg: &str, status: Option<i32>) -> GuestOutcome {
        GuestOutcome {
            exit_status: status,
            timed_out: false,
            ktap: ktap.into(),
            dmesg: dmesg.into(),
        }
    }

    const GOOD: &str = "KTAP version 1\nok 1 a\n1..1\n";

    #[test]
    fn all_clean_is_ok() {
        let v = judge(&outcome(GOOD, "[ 1.0] hotup: attach\n", Some(0)));
        assert!(v.ok, "{:?}", v.reasons);
    }

    #[test]
    fn each_source_can_fail_the_scenario() {
        assert!(!judge(&outcome(GOOD, "", Some(1))).ok);
        assert!(!judge(&outcome(GOOD, "", None)).ok);
        assert!(
            !judge(&outcome(
                "KTAP version 1\nnot ok 1 a # boom\n1..1\n",
                "",
                Some(0)
            ))
            .ok
        );
        assert!(
            !judge(&outcome(
                "KTAP version 1\nok 1 a # SKIP x\n1..1\n",
                "",
                Some(0)
            ))
            .ok
        );
        assert!(!judge(&outcome("KTAP version 1\nok 1 a\n", "", Some(0))).ok);
        let mut t = outcome(GOOD, "", None);
        t.timed_out = true;
        assert!(judge(&t).reasons[0].starts_with("TIMEOUT"));
    }

    /// A dmesg recorded from a real guest run of the `hotup_warn_fixture`
    /// module (userspace-tests/fixtures): the verdict must be `not ok` and
    /// quote the WARN line.
    #[test]
    fn recorded_warn_fixture_dmesg_is_not_ok_and_quoted() {
        let dmesg = include_str!("../fixtures/warn-fixture.dmesg");
        let v = judge(&outcome(GOOD, dmesg, Some(0)));
        assert!(!v.ok);
        let reason = v
            .reasons
            .iter()
            .find(|r| r.starts_with("dmesg: "))
            .expect("a dmesg reason");
        assert!(
            reason.starts_with("dmesg: WARNING: hotup_warn_fixture.rs:"),
            "{reason}"
        );
        assert!(reason.contains("hotup_warn_fixture"), "{reason}");
    }

    #[test]
    fn discovers_the_shipped_scenarios() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let s = discover(&dir).unwrap();
        assert!(s.iter().any(|s| s.name == "smoke"));
        assert!(s
            .iter()
            .all(|s| s.timeout_s > 0 && !s.description.is_empty()));
    }
}
