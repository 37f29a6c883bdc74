// SPDX-License-Identifier: GPL-2.0

//! The parent's status: one table of keys ([`KEYS`]) that both views read,
//! the control node's `key=value` line ([`status_line`]) and sysfs, one
//! file per key plus `status`, the whole line (`glue/sysfs.rs`). The values
//! come from one snapshot: the gate's, the parking lot's and the regions'
//! own counts, and a copy of the figures the switches keep, taken one lock
//! at a time; the line is written with no lock held.

use super::board::Figures;
use super::edge::name_str;
use super::hub::Hub;
use super::inflight::Totals;
use super::state_abi::NAME_LEN;
use core::fmt::{self, Display, Write};
use kernel::{prelude::*, str::Formatter};

/// What the keys read: a snapshot of the counts, and the figures.
pub(crate) struct View<'a> {
    hub: &'a Hub,
    f: Figures,
    t: Totals,
    mode: &'static str,
    /// Parked now, ever, timed out, at the last release.
    parked: [u64; 4],
    /// Calls parked now, at the last release, ever; drained by the last
    /// switch; timed out.
    calls: [u64; 5],
    regions: (usize, u64),
    /// Disk 0's size in bytes (its namespace's, on a hardware parent) and
    /// how many disks there are.
    disks: (u64, u64),
}

/// A value of the status line.
pub(crate) enum Val<'a> {
    N(u64),
    S(&'a str),
}

impl Display for Val<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::N(n) => n.fmt(f),
            Val::S(s) => s.fmt(f),
        }
    }
}

/// A name, or `-` for none.
fn name(n: &[u8; NAME_LEN]) -> Val<'_> {
    Val::S(match name_str(n) {
        "" => "-",
        s => s,
    })
}

/// One key of the status line and of sysfs.
pub(crate) struct Key {
    pub(crate) name: &'static CStr,
    get: for<'a, 'b> fn(&'b View<'a>) -> Val<'b>,
}

macro_rules! keys {
    ($($name:literal => |$v:ident| $e:expr,)+) => {
        /// The status keys, in the order of the line. Tools parse the line
        /// by key (`state_abi`'s host parser): add keys, never rename one.
        pub(crate) const KEYS: [Key; [$($name),+].len()] = [
            $(Key { name: $name, get: |$v| $e },)+
        ];
    };
}

keys! {
    c"state" => |v| Val::S(v.mode),
    c"generation" => |v| Val::N(v.f.generation),
    c"child" => |v| name(&v.f.child),
    c"child_version" => |v| Val::N(v.f.child_version.into()),
    c"child_schema" => |v| Val::N(v.f.child_schema.into()),
    c"parked" => |v| Val::N(v.parked[0]),
    c"inflight" => |v| Val::N(v.t.inflight),
    c"upgrades" => |v| Val::N(v.f.upgrades),
    c"last_blackout_ns" => |v| Val::N(v.f.last_blackout_ns),
    c"last_drained" => |v| Val::N(v.f.drained_last),
    c"last_parked" => |v| Val::N(v.parked[3]),
    c"completed" => |v| Val::N(v.t.completed),
    c"failed" => |v| Val::N(v.t.failed),
    c"parked_total" => |v| Val::N(v.parked[1]),
    c"park_timeouts" => |v| Val::N(v.parked[2]),
    c"stash_bytes" => |v| Val::N(v.f.stash_bytes as u64),
    c"stash" => |v| Val::S(v.f.stash_state),
    c"last_good_bytes" => |v| Val::N(v.f.last_good_bytes as u64),
    c"export_schema" => |v| Val::N(v.f.export_schema.into()),
    c"regions" => |v| Val::N(v.regions.0 as u64),
    c"region_bytes" => |v| Val::N(v.regions.1),
    c"capacity_bytes" => |v| Val::N(v.disks.0),
    c"disks" => |v| Val::N(v.disks.1),
    c"nr_queues" => |v| Val::N(v.hub.geo.nr_queues.into()),
    c"queue_depth" => |v| Val::N(v.hub.geo.queue_depth.into()),
    c"standby" => |v| name(&v.f.standby),
    c"standby_version" => |v| Val::N(v.f.standby_version.into()),
    c"retired" => |v| Val::N(v.f.retired as u64),
    c"switches" => |v| Val::N(v.f.switches),
    c"rollbacks" => |v| Val::N(v.f.rollbacks),
    c"last_handed_over" => |v| Val::N(v.f.handed_over_last),
    c"switch_timeout_ms" => |v| Val::N(v.hub.switch_timeout_ms.into()),
    c"parked_calls" => |v| Val::N(v.calls[0]),
    c"last_parked_calls" => |v| Val::N(v.calls[1]),
    c"last_drained_calls" => |v| Val::N(v.calls[3]),
    c"parked_calls_total" => |v| Val::N(v.calls[2]),
    c"call_timeouts" => |v| Val::N(v.calls[4]),
    c"stuck" => |v| Val::N(v.hub.stuck_now.load(core::sync::atomic::Ordering::Relaxed).into()),
    c"stuck_total" => |v| Val::N(v.hub.stuck_total.load(core::sync::atomic::Ordering::Relaxed)),
    c"stuck_ms" => |v| Val::N(v.hub.stuck_ms.into()),
}

/// The longest value: a `u64`, or a name (`NAME_LEN` with its NUL), or
/// one of the parent's own words (the stash's state, the mode).
const VALUE_MAX: usize = if NAME_LEN > 20 { NAME_LEN } else { 20 };

/// The longest status line: every key, `=`, its longest value and a
/// separator, then the newline.
pub(crate) const LINE_MAX: usize = {
    let mut n = 1;
    let mut i = 0;
    while i < KEYS.len() {
        n += KEYS[i].name.to_bytes().len() + 2 + VALUE_MAX;
        i += 1;
    }
    n
};

/// Whether two key names are the same bytes.
const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// Every key names a sysfs file of its own beside `status`: a repeated
// name would make adding the disk fail at load.
const _: () = {
    let mut i = 0;
    while i < KEYS.len() {
        let a = KEYS[i].name.to_bytes();
        assert!(!same(a, b"status"), "a status key is named `status`");
        let mut j = i + 1;
        while j < KEYS.len() {
            assert!(!same(a, KEYS[j].name.to_bytes()), "a status key repeats");
            j += 1;
        }
        i += 1;
    }
};

impl Hub {
    /// Runs `f` on a snapshot of the status.
    fn with_view<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> R {
        let t = self.io.totals();
        // One lock hold: the parked figures agree with each other.
        let (parked, calls) = {
            let p = self.park.lock();
            (
                [
                    p.ring.len() as u64,
                    p.parked_total,
                    p.timeouts,
                    p.parked_last,
                ],
                [
                    p.calls_waiting,
                    p.calls_parked_last,
                    p.calls_parked_total,
                    p.calls_drained_last,
                    p.call_timeouts,
                ],
            )
        };
        let regions = self.regions.lock().usage();
        let disks = (
            super::hw::geometry(0).map_or(self.geo.capacity_bytes, |(shift, n)| n << shift),
            self.disk_count(),
        );
        let mode = self.io.mode().as_str();
        // A copy: the line is written with no lock held.
        let figures = *self.figures.lock();
        f(&View {
            hub: self,
            f: figures,
            t,
            mode,
            parked,
            calls,
            regions,
            disks,
        })
    }
}

/// The status line the control node reads back (and sysfs `status`).
pub(crate) fn status_line(hub: &Hub, out: &mut Formatter<'_>) -> fmt::Result {
    hub.with_view(|v| {
        for (i, k) in KEYS.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let key = k.name.to_str().unwrap_or("?");
            write!(out, "{sep}{key}={}", (k.get)(v))?;
        }
        writeln!(out)
    })
}

/// The sysfs file `name`: one key's value, or `status`, the whole line.
pub(crate) fn show(hub: &Hub, name: &[u8], out: &mut Formatter<'_>) -> Result {
    if name == b"status" {
        return status_line(hub, out).map_err(|_| ENOSPC);
    }
    let key = KEYS
        .iter()
        .find(|k| k.name.to_bytes() == name)
        .ok_or(ENOENT)?;
    hub.with_view(|v| writeln!(out, "{}", (key.get)(v)))
        .map_err(|_| ENOSPC)
}
