//! Finding kernel problem reports in a guest's dmesg.

use regex::Regex;
use std::sync::OnceLock;

/// Patterns that mean the kernel reported a problem. Each is matched against a
/// dmesg line with its `[ 1.234567]` timestamp removed.
const PROBLEM_PATTERNS: &[&str] = &[
    r"^BUG:",                     // BUG(), sleeping in atomic, KASAN ("BUG: KASAN: ...")
    r"^WARNING:",                 // WARN_ON and lockdep ("WARNING: possible circular locking ...")
    r"^Oops",                     // "Oops: 0000 [#1]"
    r"^Call Trace:",              // any backtrace
    r"^Kernel panic",             // panics
    r"^general protection fault", // GPF
    r"^INFO: task .* blocked for more than", // hung task detector
    r"^watchdog: BUG: soft lockup", // soft lockup detector
    r"^INFO: (possible|inconsistent) .*lock", // older lockdep headers
    r"KASAN",                     // any KASAN report line
    r"^UBSAN:",                   // undefined behaviour sanitizer
    r"^rust_kernel: panicked",    // a Rust panic inside the kernel
    r"^kmemleak: [0-9]+ new suspected memory leak", // after the guest's final scan
    r"^rcu: INFO: .*detected stall", // RCU stall detector
    r"^BUG: workqueue lockup",    // workqueue watchdog
];

fn problem_regexes() -> &'static [Regex] {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    RES.get_or_init(|| {
        PROBLEM_PATTERNS
            .iter()
            .map(|p| Regex::new(p).expect("built-in dmesg pattern is a valid regex"))
            .collect()
    })
}

/// Removes a leading printk timestamp (`[   12.345678] `, or a /dev/kmsg
/// record header) from a dmesg line: [`state_abi::lines::LogLine`]'s text.
pub fn strip_timestamp(line: &str) -> &str {
    state_abi::lines::LogLine::parse(line).text
}

/// Returns every dmesg line that reports a kernel problem, timestamps removed,
/// in order of appearance.
pub fn dmesg_problems(dmesg: &str) -> Vec<String> {
    let res = problem_regexes();
    dmesg
        .lines()
        .map(strip_timestamp)
        .filter(|l| res.iter().any(|r| r.is_match(l)))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_printk_timestamps() {
        assert_eq!(
            strip_timestamp("[    1.234567] hotup: attach"),
            "hotup: attach"
        );
        assert_eq!(strip_timestamp("hotup: attach"), "hotup: attach");
        assert_eq!(strip_timestamp("[abc] x"), "[abc] x");
    }

    #[test]
    fn a_kmsg_record_header_is_a_prefix_too() {
        assert_eq!(strip_timestamp("4,812,5000,-;WARNING: x"), "WARNING: x");
        assert_eq!(dmesg_problems("4,812,5000,-;WARNING: x\n").len(), 1);
    }

    #[test]
    fn clean_dmesg_has_no_problems() {
        let d = "[    0.000000] Linux version 7.2.12\n[    3.1] hotup: attach gen=1\n";
        assert!(dmesg_problems(d).is_empty());
    }

    #[test]
    fn finds_warn_bug_oops_lockdep_kasan() {
        let d = "\
[    5.0] WARNING: CPU: 0 PID: 80 at lib/x.rs:10 init+0x1/0x2 [m]
[    5.1] BUG: sleeping function called from invalid context
[    5.2] Oops: general protection fault, probably for non-canonical address
[    5.3] WARNING: possible circular locking dependency detected
[    5.4] BUG: KASAN: slab-use-after-free in foo
[    5.5] Call Trace:
[    5.6] rust_kernel: panicked at x.rs:1:1
[    5.7] kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)
[    5.8] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
";
        let p = dmesg_problems(d);
        assert_eq!(p.len(), 9, "{p:?}");
        assert!(p[0].starts_with("WARNING: CPU: 0"));
    }

    #[test]
    fn ordinary_lines_mentioning_warnings_are_not_problems() {
        let d = "[ 1.0] hotup: park reason=no-child warnings=0\n[ 1.1] random: crng init done\n";
        assert!(dmesg_problems(d).is_empty());
    }
}
