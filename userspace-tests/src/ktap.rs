//! A small KTAP parser (Documentation/dev-tools/ktap.rst), enough for the
//! results the guest scenarios print: a version line, `ok`/`not ok` lines with
//! optional `# DIRECTIVE reason`, `#` diagnostics, and a plan `1..N` placed
//! before or after the results. Other lines (console noise) are ignored.
//!
//! Also the host's KTAP writer ([`KtapWriter`], [`result_line`]): xtask's
//! own results (`cargo xtask test`, the `upgrade-child-cli` scenario). The
//! guest scenarios write theirs with `guest/lib.sh` (`pass`, `fail`).

use serde::Serialize;
use std::fmt::Display;

/// The first line of a KTAP stream.
pub const VERSION_LINE: &str = "KTAP version 1";

/// A result line: `ok N DESC`, or `not ok N DESC # REASON` (no `#` part
/// without a reason).
pub fn result_line(n: impl Display, description: &str, ok: bool, reason: Option<&str>) -> String {
    match (ok, reason) {
        (true, _) => format!("ok {n} {description}"),
        (false, Some(r)) => format!("not ok {n} {description} # {r}"),
        (false, None) => format!("not ok {n} {description}"),
    }
}

/// The plan line, `1..N`.
pub fn plan_line(n: impl Display) -> String {
    format!("1..{n}")
}

/// A diagnostic line: `# TEXT`.
pub fn diag_line(text: &str) -> String {
    format!("# {text}")
}

/// A KTAP stream built in memory: the version line, then results numbered
/// in order and diagnostics, then (at [`KtapWriter::finish`]) the plan.
#[derive(Debug, Clone)]
pub struct KtapWriter {
    lines: Vec<String>,
    n: usize,
    failed: bool,
}

impl Default for KtapWriter {
    fn default() -> Self {
        KtapWriter {
            lines: vec![VERSION_LINE.to_owned()],
            n: 0,
            failed: false,
        }
    }
}

impl KtapWriter {
    /// A stream with its version line.
    pub fn new() -> KtapWriter {
        KtapWriter::default()
    }

    /// Records the next result: `ok`, or `not ok` with `why()`; returns `ok`.
    pub fn check(&mut self, description: &str, ok: bool, why: impl FnOnce() -> String) -> bool {
        self.n += 1;
        self.failed |= !ok;
        let reason = (!ok).then(why);
        self.lines
            .push(result_line(self.n, description, ok, reason.as_deref()));
        ok
    }

    /// A diagnostic line per line of `text`.
    pub fn diag(&mut self, text: &str) {
        self.lines.extend(text.lines().map(diag_line));
    }

    /// Whether a result was `not ok`.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The stream with its plan, lines joined by newlines (no final one).
    pub fn finish(mut self) -> String {
        self.lines.push(plan_line(self.n));
        self.lines.join("\n")
    }
}

/// One `ok`/`not ok` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KtapResult {
    /// Test number as printed.
    pub number: u32,
    /// Whether the line said `ok`.
    pub ok: bool,
    /// Description after the number, without the directive.
    pub description: String,
    /// Directive keyword (`SKIP`, `XFAIL`, `TIMEOUT`, `ERROR`, `TODO`), if any.
    pub directive: Option<String>,
    /// Text after the directive (or after `#` when there is no directive keyword).
    pub reason: Option<String>,
    /// `#` diagnostic lines printed before this result (since the previous one).
    pub diagnostics: Vec<String>,
}

impl KtapResult {
    /// A result counts as passed only when it is `ok` and not skipped: a
    /// skipped test must never be counted as passing.
    pub fn passed(&self) -> bool {
        self.ok && self.directive.as_deref() != Some("SKIP")
    }
}

/// A parsed KTAP stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KtapReport {
    /// Whether a `KTAP version 1` (or `TAP version 13/14`) line was seen.
    pub has_version: bool,
    /// The plan's N, if a plan line was seen.
    pub plan: Option<u32>,
    /// Results in order.
    pub results: Vec<KtapResult>,
}

impl KtapReport {
    /// Problems with the report as a whole: missing version, missing plan, a
    /// plan that does not match the number of results, or no results at all.
    pub fn structural_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.has_version {
            p.push("no 'KTAP version 1' line".to_owned());
        }
        match self.plan {
            None => p.push("no plan line (1..N): the scenario did not finish".to_owned()),
            Some(n) if n as usize != self.results.len() => p.push(format!(
                "plan says {n} tests but {} results were printed",
                self.results.len()
            )),
            _ => {}
        }
        if self.results.is_empty() {
            p.push("no test results".to_owned());
        }
        p
    }
}

/// One `ok`/`not ok` line (a top-level one: no timestamp, no indent),
/// without diagnostics; `None` for any other line.
pub fn parse_result(line: &str) -> Option<KtapResult> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = line.strip_prefix("ok ") {
        (true, r)
    } else {
        return None;
    };
    let (num, rest) = match rest.split_once(' ') {
        Some((n, r)) => (n, r),
        None => (rest, ""),
    };
    let number: u32 = num.parse().ok()?;
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (desc, directive, reason) = match rest
        .split_once(" # ")
        .or_else(|| rest.strip_prefix("# ").map(|r| ("", r)))
    {
        Some((d, dir)) => {
            let dir = dir.trim();
            let (word, why) = dir.split_once(' ').unwrap_or((dir, ""));
            let known = ["SKIP", "XFAIL", "TIMEOUT", "ERROR", "TODO"];
            if known.contains(&word.to_ascii_uppercase().as_str()) {
                let why = why.trim();
                (
                    d,
                    Some(word.to_ascii_uppercase()),
                    (!why.is_empty()).then(|| why.to_owned()),
                )
            } else {
                (d, None, (!dir.is_empty()).then(|| dir.to_owned()))
            }
        }
        None => (rest, None, None),
    };
    Some(KtapResult {
        number,
        ok,
        description: desc.trim().to_owned(),
        directive,
        reason,
        diagnostics: Vec::new(),
    })
}

/// Whether a console line is a top-level `not ok` result (a printk
/// timestamp before it is allowed).
pub fn is_not_ok(line: &str) -> bool {
    parse_result(crate::dmesg::strip_timestamp(line.trim_end())).is_some_and(|r| !r.ok)
}

/// Parses the top level of a KTAP stream (indented subtest lines are ignored).
pub fn parse_ktap(text: &str) -> KtapReport {
    let mut report = KtapReport::default();
    let mut diags = Vec::new();
    for raw in text.lines() {
        let line = crate::dmesg::strip_timestamp(raw.trim_end());
        if raw.starts_with(' ') || raw.starts_with('\t') {
            continue; // subtest of a nested report
        }
        if line.starts_with("KTAP version") || line.starts_with("TAP version") {
            report.has_version = true;
        } else if let Some(n) = line.strip_prefix("1..") {
            report.plan = n.trim().parse().ok();
        } else if let Some(mut result) = parse_result(line) {
            result.diagnostics = std::mem::take(&mut diags);
            report.results.push(result);
        } else if let Some(d) = line.strip_prefix('#') {
            diags.push(d.trim().to_owned());
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results_directives_and_plan() {
        let r = parse_ktap(
            "KTAP version 1\n# loading\nok 1 parent loads\nnot ok 2 child attaches # dmesg lacks attach\nok 3 fio # SKIP no fio\n1..3\n",
        );
        assert!(r.has_version);
        assert_eq!(r.plan, Some(3));
        assert_eq!(r.results.len(), 3);
        assert_eq!(r.results[0].diagnostics, vec!["loading"]);
        assert!(r.results[0].passed());
        assert!(!r.results[1].ok);
        assert_eq!(r.results[1].reason.as_deref(), Some("dmesg lacks attach"));
        assert_eq!(r.results[2].directive.as_deref(), Some("SKIP"));
        assert!(!r.results[2].passed(), "a skip is never a pass");
        assert!(r.structural_problems().is_empty());
    }

    #[test]
    fn missing_plan_and_mismatch_are_structural_problems() {
        let r = parse_ktap("KTAP version 1\nok 1 a\n");
        assert_eq!(r.structural_problems().len(), 1);
        let r = parse_ktap("KTAP version 1\nok 1 a\n1..2\n");
        assert!(r.structural_problems()[0].contains("plan says 2"));
        assert_eq!(parse_ktap("noise\n").structural_problems().len(), 3);
    }

    #[test]
    fn what_the_writer_writes_parses_back() {
        let mut k = KtapWriter::new();
        assert!(k.check("first", true, || unreachable!()));
        k.diag("two\nlines");
        assert!(!k.failed());
        assert!(!k.check("second", false, || "exit 1: boom".into()));
        assert!(k.failed());
        let text = k.finish();
        assert_eq!(
            text,
            "KTAP version 1\nok 1 first\n# two\n# lines\nnot ok 2 second # exit 1: boom\n1..2"
        );
        let r = parse_ktap(&text);
        assert!(r.structural_problems().is_empty());
        assert_eq!(r.results[1].diagnostics, vec!["two", "lines"]);
        assert_eq!(r.results[1].reason.as_deref(), Some("exit 1: boom"));
        assert_eq!(result_line(3, "x", false, None), "not ok 3 x");
        assert_eq!(plan_line(0), "1..0");
        assert!(is_not_ok("not ok 2 second # exit 1: boom\r\n"));
        assert!(!is_not_ok("ok 1 first\n") && !is_not_ok("# not ok here"));
    }

    #[test]
    fn ignores_console_noise_and_timestamps() {
        let r = parse_ktap(
            "[ 1.0] hotup: attach\nKTAP version 1\n[ 2.0] ok 1 x\n  ok 1 nested\n1..1\n",
        );
        assert_eq!(r.results.len(), 1);
        assert_eq!(r.results[0].description, "x");
    }
}
