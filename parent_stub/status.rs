// SPDX-License-Identifier: GPL-2.0

//! The status snapshot the views read (`/dev/hotup-ctl`, sysfs): figures
//! the switches keep, plus the gate's, the parking lot's and the regions'
//! own counts, taken one lock at a time.

use super::edge::name_str;
use super::hub::Hub;
use super::state_abi::NAME_LEN;
use core::fmt::Write;

/// One consistent-enough snapshot of the parent.
pub(crate) struct Status {
    pub(crate) mode: &'static str,
    pub(crate) generation: u64,
    pub(crate) child: [u8; NAME_LEN],
    pub(crate) child_version: u32,
    pub(crate) parked: u64,
    pub(crate) inflight: u64,
    pub(crate) upgrades: u64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) parked_total: u64,
    pub(crate) park_timeouts: u64,
    pub(crate) last_blackout_ns: u64,
    pub(crate) drained_last: u64,
    pub(crate) parked_last: u64,
    pub(crate) stash_bytes: usize,
    pub(crate) stash_state: &'static str,
    pub(crate) last_good_bytes: usize,
    pub(crate) export_schema: u32,
    pub(crate) regions: usize,
    pub(crate) region_bytes: u64,
    pub(crate) handed_over_last: u64,
    pub(crate) standby: [u8; NAME_LEN],
    pub(crate) standby_version: u32,
    pub(crate) retired: usize,
    pub(crate) switches: u64,
    pub(crate) rollbacks: u64,
    /// Syscalls parked now, before the last release, and ever.
    pub(crate) calls_parked: u64,
    pub(crate) calls_parked_last: u64,
    pub(crate) calls_parked_total: u64,
    /// Syscalls drained by the last switch.
    pub(crate) calls_drained_last: u64,
    pub(crate) call_timeouts: u64,
}

impl Status {
    /// The attached child's name, or `-` when none is attached.
    pub(crate) fn child_name(&self) -> &str {
        match name_str(&self.child) {
            "" => "-",
            name => name,
        }
    }

    /// The standby child's name, or `-` when there is none.
    pub(crate) fn standby_name(&self) -> &str {
        match name_str(&self.standby) {
            "" => "-",
            name => name,
        }
    }
}

impl Hub {
    pub(crate) fn status(&self) -> Status {
        let t = self.io.totals();
        // One lock hold: the parked figures agree with each other.
        let (parked, parked_total, park_timeouts, parked_last, calls) = {
            let p = self.park.lock();
            (
                p.ring.len() as u64,
                p.parked_total,
                p.timeouts,
                p.parked_last,
                (
                    p.calls_waiting,
                    p.calls_parked_last,
                    p.calls_parked_total,
                    p.calls_drained_last,
                    p.call_timeouts,
                ),
            )
        };
        let (regions, region_bytes) = self.regions.lock().usage();
        let f = self.figures.lock();
        Status {
            mode: self.io.mode().as_str(),
            generation: f.generation,
            child: f.child,
            child_version: f.child_version,
            parked,
            inflight: t.inflight,
            upgrades: f.upgrades,
            completed: t.completed,
            failed: t.failed,
            parked_total,
            park_timeouts,
            last_blackout_ns: f.last_blackout_ns,
            drained_last: f.drained_last,
            parked_last,
            stash_bytes: f.stash_bytes,
            stash_state: f.stash_state,
            last_good_bytes: f.last_good_bytes,
            export_schema: f.export_schema,
            regions,
            region_bytes,
            handed_over_last: f.handed_over_last,
            standby: f.standby,
            standby_version: f.standby_version,
            retired: f.retired,
            switches: f.switches,
            rollbacks: f.rollbacks,
            calls_parked: calls.0,
            calls_parked_last: calls.1,
            calls_parked_total: calls.2,
            calls_drained_last: calls.3,
            call_timeouts: calls.4,
        }
    }
}

/// The status line the control node reads back (and sysfs `status`).
pub(crate) fn status_line(hub: &Hub, out: &mut impl Write) -> core::fmt::Result {
    let s = hub.status();
    writeln!(
        out,
        "state={} generation={} child={} child_version={} parked={} inflight={} upgrades={} \
         last_blackout_ns={} last_drained={} last_parked={} completed={} failed={} parked_total={} \
         park_timeouts={} stash_bytes={} stash={} last_good_bytes={} export_schema={} regions={} \
         region_bytes={} capacity_bytes={} nr_queues={} queue_depth={} standby={} \
         standby_version={} retired={} switches={} rollbacks={} last_handed_over={} \
         switch_timeout_ms={} parked_calls={} last_parked_calls={} last_drained_calls={} \
         parked_calls_total={} call_timeouts={}",
        s.mode,
        s.generation,
        s.child_name(),
        s.child_version,
        s.parked,
        s.inflight,
        s.upgrades,
        s.last_blackout_ns,
        s.drained_last,
        s.parked_last,
        s.completed,
        s.failed,
        s.parked_total,
        s.park_timeouts,
        s.stash_bytes,
        s.stash_state,
        s.last_good_bytes,
        s.export_schema,
        s.regions,
        s.region_bytes,
        hub.geo.capacity_bytes,
        hub.geo.nr_queues,
        hub.geo.queue_depth,
        s.standby_name(),
        s.standby_version,
        s.retired,
        s.switches,
        s.rollbacks,
        s.handed_over_last,
        hub.switch_timeout_ms,
        s.calls_parked,
        s.calls_parked_last,
        s.calls_drained_last,
        s.calls_parked_total,
        s.call_timeouts,
    )
}
