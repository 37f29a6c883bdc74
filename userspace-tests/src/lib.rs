//! hotup's guest scenarios and the host-side harness that judges them.
//!
//! A scenario is a shell script in `scenarios/` that runs inside a fresh QEMU
//! guest. It reports KTAP (`ok N desc` / `not ok N desc # reason`) through the
//! helpers in `guest/lib.sh`. The host then decides the scenario's verdict from
//! three independent sources, so none of them can hide a failure:
//!
//! 1. the guest script's exit status (and whether the guest finished at all),
//! 2. its KTAP subtests,
//! 3. the guest's dmesg, which must be free of `BUG:`, `WARNING:`, `Oops`,
//!    `Call Trace`, lockdep and KASAN reports.

pub mod bench;
pub mod dmesg;
pub mod ktap;
pub mod report;
pub mod scenario;

pub use dmesg::{dmesg_problems, strip_timestamp};
pub use ktap::{parse_ktap, KtapReport, KtapResult, KtapWriter};
pub use scenario::{discover, judge, GuestOutcome, Scenario, Verdict};
