// SPDX-License-Identifier: GPL-2.0

//! hotup_mono: the child driver (`child.rs`, the newest version) built as a
//! plain blk-mq driver with no parent (`mono.rs`; Kbuild sets the
//! `hotup_mono` cfg). The baseline `cargo xtask bench` measures the parent's
//! cost against: same driver code, no gate, no cookie table, no vtable. Not
//! upgradable. Its disk is `/dev/hotupmono0`.

/// The driver version it is built from.
const CHILD_VERSION: u32 = 2;

#[allow(unused_attributes)]
#[path = "../state_abi/src/lib.rs"]
mod state_abi;

// The parent's one raw layer over the block layer (gendisk, requests),
// shared rather than copied; mono uses the disk and request parts of it.
#[allow(dead_code)]
#[path = "../parent_stub/glue/blk.rs"]
mod blk;

#[macro_use]
#[path = "child.rs"]
mod child;

hotup_child_module!(
    child::Mono,
    "hotup_mono",
    "hotup_mono: the hotup child driver as a plain blk-mq driver, with no parent (a benchmark baseline)",
    {
        capacity_mib: u64 {
            default: 256,
            description: "Size of /dev/hotupmono0 in MiB",
        },
        nr_queues: u32 {
            default: 0,
            description: "Hardware queues (0: one per possible CPU, at most 64)",
        },
        queue_depth: u32 {
            default: 64,
            description: "Tags per hardware queue",
        },
    }
);

/// The disk's ioctls (`blk.rs`): this baseline has no controller node and
/// answers none of them.
///
/// # Safety
///
/// None needed: nothing is dereferenced. (`unsafe` to match the parent's
/// hook, whose `data` is dereferenced.)
pub(crate) unsafe fn disk_ioctl(
    _data: *mut kernel::ffi::c_void,
    _disk: u32,
    _write: bool,
    _cmd: u32,
    _arg: u64,
) -> kernel::ffi::c_int {
    kernel::error::code::ENOTTY.to_errno()
}
