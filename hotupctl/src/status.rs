//! The parent's status line (`/dev/hotup-ctl`): `key=value` pairs.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The parent's status, as read from its control node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status(pub BTreeMap<String, String>);

impl Status {
    /// Parses one status line.
    pub fn parse(line: &str) -> Status {
        Status(
            state_abi::lines::Fields::new(line)
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// Reads the status from the control node `ctl`.
    pub fn read(ctl: &Path) -> Result<Status> {
        if !ctl.exists() {
            bail!(
                "no hotup parent is loaded ({} does not exist): load it first, e.g. `insmod hotup_parent.ko`",
                ctl.display()
            );
        }
        let line = std::fs::read_to_string(ctl)
            .with_context(|| format!("reading the parent's status from {}", ctl.display()))?;
        if state_abi::lines::status(&line).is_none() {
            bail!(
                "{} did not return a hotup status line: {line:?}",
                ctl.display()
            );
        }
        Ok(Status::parse(&line))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn num(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }

    /// A module name field (`child`, `standby`), `None` for `-`.
    pub fn module(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| state_abi::lines::is_module(v))
    }

    /// Human-readable summary, a few lines.
    pub fn human(&self) -> String {
        let g = |k: &str| self.get(k).unwrap_or("?");
        let mut out = format!(
            "hotup parent: {} (generation {})\n  active child: {}{}\n  standby child: {}{}\n  retired children loaded: {}\n",
            g("state"),
            g("generation"),
            self.module("child").unwrap_or("none"),
            self.module("child").map_or(String::new(), |_| format!(" (version {})", g("child_version"))),
            self.module("standby").unwrap_or("none"),
            self.module("standby").map_or(String::new(), |_| format!(" (version {})", g("standby_version"))),
            g("retired"),
        );
        out += &format!(
            "  I/O: {} in flight, {} parked, {} completed, {} failed\n",
            g("inflight"),
            g("parked"),
            g("completed"),
            g("failed")
        );
        if let Some(n) = self.num("stuck").filter(|n| *n > 0) {
            out += &format!(
                "  STUCK: {n} request(s) held by the child longer than {} ms (dmesg: reason=stuck-request)\n",
                g("stuck_ms")
            );
        }
        let ms = |k: &str| {
            self.num(k)
                .map_or("?".to_owned(), |n| format!("{:.3} ms", n as f64 / 1e6))
        };
        out += &format!(
            "  upgrades: {} (standby switches {}, rollbacks {}); last blackout {}\n",
            g("upgrades"),
            g("switches"),
            g("rollbacks"),
            ms("last_blackout_ns")
        );
        out += &format!(
            "  device: {} disk(s), the first {} bytes, {} queues x {} tags; stash {} ({} bytes), last good state {} bytes",
            g("disks"),
            g("capacity_bytes"),
            g("nr_queues"),
            g("queue_depth"),
            g("stash"),
            g("stash_bytes"),
            g("last_good_bytes")
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "state=active generation=2 child=hotup_child_v2 child_version=2 parked=0 inflight=64 upgrades=1 last_blackout_ns=8072698 completed=4975 failed=0 stash=empty stash_bytes=0 last_good_bytes=120 capacity_bytes=33554432 nr_queues=2 queue_depth=64 standby=- standby_version=0 retired=1 switches=1 rollbacks=0\n";

    #[test]
    fn parses_and_reads_modules() {
        let s = Status::parse(LINE);
        assert_eq!(s.get("state"), Some("active"));
        assert_eq!(s.module("child"), Some("hotup_child_v2"));
        assert_eq!(s.module("standby"), None);
        assert_eq!(s.num("inflight"), Some(64));
    }

    #[test]
    fn human_summary() {
        let h = Status::parse(LINE).human();
        assert!(
            h.contains("active child: hotup_child_v2 (version 2)"),
            "{h}"
        );
        assert!(h.contains("standby child: none"), "{h}");
        assert!(h.contains("last blackout 8.073 ms"), "{h}");
    }

    #[test]
    fn a_node_without_a_status_line_is_refused() {
        let p = std::env::temp_dir().join(format!("hotupctl-status-{}", std::process::id()));
        std::fs::write(&p, "not=status\n").unwrap();
        let e = Status::read(&p).unwrap_err();
        std::fs::write(&p, LINE).unwrap();
        let s = Status::read(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert!(
            e.to_string().contains("did not return a hotup status line"),
            "{e}"
        );
        assert_eq!(s, Status::parse(LINE));
    }

    #[test]
    fn missing_node_says_what_to_do() {
        let e = Status::read(Path::new("/nonexistent/hotup-ctl")).unwrap_err();
        assert!(e.to_string().contains("insmod hotup_parent.ko"), "{e}");
    }
}
