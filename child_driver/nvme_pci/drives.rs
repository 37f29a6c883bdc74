// SPDX-License-Identifier: GPL-2.0

//! Every controller the parent owns, driven by this one child: a [`Dev`]
//! per device index, allocated at load (nothing is allocated in the
//! blackout), and the child's operations fanned out to them. An adopt is
//! all or nothing: every bound device adopts its queues (or is brought
//! up), or the devices that did are given back as they were and the adopt
//! fails, so the parent rolls the switch back for all of them.

use super::ctrl::{Dev, SCHEMA};
use super::hwio::SERVICES;
use crate::state_abi::{BlobWriter, CallDesc, ChildStats, IoDesc, IoSegment};
use core::sync::atomic::{AtomicU32, Ordering::*};
use kernel::prelude::*;

/// Most devices one child drives (the parent's `hw::MAX_HW`).
const MAX_DEVS: usize = 8;

/// The controllers, by the parent's device index.
pub(crate) struct Drives {
    devs: KVec<Pin<KBox<Dev>>>,
    /// A bit per device this child adopted (or brought up): the ones it
    /// exports, quiesces and resumes.
    adopted: AtomicU32,
}

impl Drives {
    /// A driver for every device index (allocates: call before registering).
    pub(crate) fn new() -> Result<Self> {
        let mut devs = KVec::with_capacity(MAX_DEVS, GFP_KERNEL)?;
        for i in 0..MAX_DEVS as u32 {
            devs.push(Dev::new(i)?, GFP_KERNEL)?;
        }
        Ok(Self {
            devs,
            adopted: AtomicU32::new(0),
        })
    }

    /// The driver of device `i`.
    fn dev(&self, i: u32) -> Option<&Dev> {
        self.devs.get(i as usize).map(|d| &**d)
    }

    /// The drivers of the devices this child adopted.
    fn adopted(&self) -> impl Iterator<Item = &Dev> {
        let mask = self.adopted.load(Acquire);
        self.devs
            .iter()
            .map(|d| &**d)
            .filter(move |d| mask & (1 << d.index) != 0)
    }

    /// The devices the parent has bound and live now.
    fn bound(&self) -> impl Iterator<Item = &Dev> {
        let count = SERVICES.get().map_or(0, |s| s.hw_count);
        self.devs
            .iter()
            .map(|d| &**d)
            .filter(move |d| d.index < count && SERVICES.hw_info(d.index).is_ok())
    }

    /// `adopt`: every bound device whose queues `blob` describes takes
    /// them, all or nothing: one refusal gives the others back and fails
    /// the adopt (the parent rolls the switch back for all of them). A
    /// device with no state (every device of a fresh start, or one bound
    /// since the blob was written) is brought up on its own: one that
    /// fails is left out (logged), not the others with it.
    pub(crate) fn adopt(&self, blob: Option<&[u8]>) -> Result {
        if let Some(b) = blob {
            if !self.devs.iter().any(|d| d.has_state(b)) {
                pr_err!("refuse blob: no queue section (not an NVMe child's state)\n");
                return Err(EINVAL);
            }
        }
        let mut done = 0u32;
        for d in self.bound().filter(|d| blob.is_some_and(|b| d.has_state(b))) {
            if let Err(e) = d.adopt(blob) {
                for o in self.devs.iter().filter(|o| done & (1 << o.index) != 0) {
                    o.unadopt();
                }
                pr_err!(
                    "adopt refused by device {} ({}): no device is taken (the switch rolls back for all {})\n",
                    d.index,
                    e.to_errno(),
                    done.count_ones() + 1
                );
                return Err(e);
            }
            done |= 1 << d.index;
        }
        let with_state = done;
        for d in self.bound().filter(|d| with_state & (1 << d.index) == 0) {
            match d.adopt(None) {
                Ok(()) => done |= 1 << d.index,
                Err(e) => pr_err!(
                    "device {} not brought up ({}): left out, the others go on\n",
                    d.index,
                    e.to_errno()
                ),
            }
        }
        if done == 0 {
            pr_err!("no NVMe controller came up (the parent needs nvme_pci=1 and a bound controller)\n");
            return Err(ENODEV);
        }
        self.adopted.store(done, Release);
        for d in self.adopted() {
            d.go();
        }
        Ok(())
    }

    /// `export_state`: a section per adopted device.
    pub(crate) fn export(&self, buf: &mut [u8], schema: u32) -> Result<usize> {
        let schema = schema & !crate::state_abi::EXPORT_TRIAL_HANDOVER;
        if schema > SCHEMA {
            return Err(Error::from_errno(-crate::state_abi::errno::EPROTO));
        }
        let mut w = BlobWriter::new(buf, crate::CHILD_VERSION).map_err(|_| ENOSPC)?;
        for d in self.adopted() {
            d.export(&mut w)?;
        }
        w.finish().map_err(|_| ENOSPC)
    }

    /// `quiesce`: nothing is in flight; no device takes more.
    pub(crate) fn quiesce(&self) {
        self.adopted().for_each(Dev::quiesce);
    }

    /// `abort`: every device takes I/O again.
    pub(crate) fn abort(&self) {
        self.adopted().for_each(Dev::abort);
    }

    /// `submit`, on the device of the request's disk.
    pub(crate) fn submit(&self, io: &IoDesc, segs: &[IoSegment]) -> i32 {
        let disk = if SERVICES.has_disks() { io.disk } else { 0 };
        match self.dev(disk) {
            Some(d) => d.submit(io, segs),
            None => ENODEV.to_errno(),
        }
    }

    /// `irq`: vector `vector` of device `dev` fired.
    pub(crate) fn irq(&self, dev: u32, vector: u32) -> bool {
        self.dev(dev).is_some_and(|d| d.irq(vector))
    }

    /// `ioctl`, on the controller of the node's disk.
    pub(crate) fn ioctl(&self, call: &mut CallDesc) -> i64 {
        let covers = call.size as usize >= core::mem::offset_of!(CallDesc, disk) + 4;
        let disk = if covers { call.disk } else { 0 };
        match self.dev(disk) {
            Some(d) => d.ioctl(call),
            None => i64::from(ENODEV.to_errno()),
        }
    }

    /// `stats`: the sums over every device.
    pub(crate) fn stats(&self) -> ChildStats {
        let mut t = ChildStats::default();
        for s in self.devs.iter().map(|d| d.stats()) {
            for (sum, v) in [
                (&mut t.submitted, s.submitted),
                (&mut t.completed, s.completed),
                (&mut t.inflight, s.inflight),
                (&mut t.reads, s.reads),
                (&mut t.writes, s.writes),
                (&mut t.flushes, s.flushes),
                (&mut t.bytes_read, s.bytes_read),
                (&mut t.bytes_written, s.bytes_written),
                (&mut t.errors, s.errors),
            ] {
                *sum = sum.wrapping_add(v);
            }
        }
        t
    }

    /// Interrupts and stray completions, over every device.
    pub(crate) fn irq_counts(&self) -> (u64, u64) {
        self.devs
            .iter()
            .map(|d| d.irq_counts())
            .fold((0u64, 0u64), |(a, b), (c, d)| {
                (a.wrapping_add(c), b.wrapping_add(d))
            })
    }
}
