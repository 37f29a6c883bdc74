// SPDX-License-Identifier: GPL-2.0

//! Fault injection (tests only, all off by default): the module
//! parameters that break a guarantee on purpose, so a test can show it is
//! caught.

use super::*;

impl Faults {
    /// A made-up request to hand over when a forging child holds none:
    /// its cookie names a slot beyond any parent's table.
    pub(super) const MADE_UP: HeldRequest = HeldRequest {
        cookie: u32::MAX as u64,
        remaining_ns: 0,
        status: 0,
    };

    /// Whether the export forges a handed-over entry (5, 6).
    pub(super) fn forges_held(&self) -> bool {
        matches!(self.export_fault, 5 | 6)
    }

    /// Fault injection on the `i`th request handed over: the first names a
    /// request the parent has no such cookie for (5), or is due far beyond
    /// any device's latency (6). The parent must refuse the blob.
    pub(super) fn forge_held(&self, i: usize, mut h: HeldRequest) -> HeldRequest {
        match (i, self.export_fault) {
            (0, 5) => h.cookie ^= 1 << 40,
            (0, 6) => h.remaining_ns = u64::MAX / 2,
            _ => {}
        }
        h
    }

    /// Fault injection on an exported blob of `len` bytes in `buf` that
    /// hands over `n_held` requests: the blob's new length.
    pub(super) fn mangle_export(&self, buf: &mut [u8], mut len: usize, n_held: usize) -> usize {
        match self.export_fault {
            2 => {
                len = len.saturating_sub(8);
                pr_warn!("export: truncating the blob on purpose (inject_export_fault=2)\n");
            }
            3 => {
                len = add_unknown_mandatory_section(buf, len);
                pr_warn!("export: adding an unknown mandatory section on purpose (inject_export_fault=3)\n");
            }
            4 => {
                if let Some(b) = buf.get_mut(len / 2) {
                    *b ^= 0x5a;
                }
                pr_warn!("export: corrupting the blob on purpose (inject_export_fault=4)\n");
            }
            5 | 6 if n_held > 0 => {
                let what = match self.export_fault {
                    5 => "unknown cookie",
                    _ => "remaining_ns beyond any device",
                };
                pr_warn!(
                    "export: a forged handed-over entry on purpose (inject_export_fault={}): {}\n",
                    self.export_fault,
                    what
                );
            }
            _ => {}
        }
        len
    }
}

impl Faults {
    /// The fault-injection module parameters (all off by default).
    pub(super) fn from_params() -> Self {
        let p = |v: &u32| *v;
        Faults {
            // corrupt_export=1 is the older spelling of inject_export_fault=4.
            export_fault: match p(crate::module_parameters::inject_export_fault.value()) {
                0 if p(crate::module_parameters::corrupt_export.value()) != 0 => 4,
                f => f,
            },
            submit_delay: Delta::from_micros(i64::from(p(
                crate::module_parameters::inject_submit_delay_us.value(),
            ))),
            complete_delay: Delta::from_micros(i64::from(
                p(crate::module_parameters::inject_complete_delay_us.value()).min(1_000_000),
            )),
            adopt_error: p(crate::module_parameters::inject_adopt_error.value()) != 0,
            faulting_copies: p(crate::module_parameters::inject_faulting_copies.value()) != 0,
            call_delay: Delta::from_micros(i64::from(
                p(crate::module_parameters::inject_call_delay_us.value()).min(1_000_000),
            )),
            lost_writes: core::sync::atomic::AtomicU32::new(0),
            lost_writes_after_adopt: p(crate::module_parameters::inject_lost_writes.value()),
        }
    }
}

impl Faults {
    /// Whether to acknowledge this write without storing it (fault injection).
    pub(super) fn lose_this_write(&self) -> bool {
        use core::sync::atomic::Ordering::Relaxed;
        self.lost_writes
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// A state was adopted: the next `inject_lost_writes` writes are lost.
    pub(super) fn arm_lost_writes(&self) {
        if self.lost_writes_after_adopt > 0 {
            self.lost_writes.store(
                self.lost_writes_after_adopt,
                core::sync::atomic::Ordering::Relaxed,
            );
            pr_warn!(
                "adopt: the next {} writes will be acknowledged and not stored (inject_lost_writes)\n",
                self.lost_writes_after_adopt
            );
        }
    }
}

/// Fault injection: appends an empty section with an unknown tag (`XUNK`)
/// marked mandatory to the blob `buf[..len]` and re-seals it, so its
/// checksum holds and only a reader's section check can refuse it. Returns
/// the new length (the old one if it does not fit).
pub(super) fn add_unknown_mandatory_section(buf: &mut [u8], len: usize) -> usize {
    fn bump(buf: &mut [u8], at: usize, by: u32) -> Option<()> {
        let f = buf.get_mut(at..at + 4)?;
        let v = u32::from_le_bytes([f[0], f[1], f[2], f[3]]).checked_add(by)?;
        f.copy_from_slice(&v.to_le_bytes());
        Some(())
    }
    let mut sec = [0u8; 16];
    sec[..4].copy_from_slice(&crate::state_abi::tag(b"XUNK").to_le_bytes());
    sec[4..6].copy_from_slice(&1u16.to_le_bytes());
    sec[6..8].copy_from_slice(&crate::state_abi::SECTION_MANDATORY.to_le_bytes());
    let new_len = len + sec.len();
    let done = buf
        .get_mut(len..new_len)
        .map(|d| d.copy_from_slice(&sec))
        .and_then(|()| bump(buf, 12, 1))
        .and_then(|()| bump(buf, 16, sec.len() as u32))
        .and_then(|()| crate::state_abi::reseal(buf.get_mut(..new_len)?).ok());
    if done.is_some() {
        new_len
    } else {
        len
    }
}
