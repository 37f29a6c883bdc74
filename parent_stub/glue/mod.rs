// SPDX-License-Identifier: GPL-2.0

//! The glue: the only code of the parent that touches `kernel::bindings`
//! and the C side of the kernel, each facility wrapped once in a safe type
//! that the layers above use. Not for direct use elsewhere: a missing
//! abstraction is added here. `hotup_mono` builds `blk.rs` and `glue.c` too.
//!
//! - `blk.rs`: the gendisk, started requests, queue limits, NOIO, the gate's
//!   lockdep map (`glue.c` has the C halves of the last two).
//! - `misc.rs`: the character devices, with an owner.
//! - `pci.rs`: the PCI functions (QEMU's NVMe controllers) the parent owns.
//! - `sysfs.rs`: the disk's attribute group (`status::KEYS`).
//! - `sync.rs`: a counting wake-up (`struct completion`).
//! - `event.rs`: the `hotup: ...` log line.
//! - `exports.c`: the entry points' `EXPORT_SYMBOL_GPL`.

pub(crate) mod blk;
pub(crate) mod disks;
pub(crate) mod event;
pub(crate) mod misc;
pub(crate) mod pci;
pub(crate) mod sync;
pub(crate) mod sysfs;
