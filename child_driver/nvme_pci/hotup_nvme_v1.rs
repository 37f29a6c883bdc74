// SPDX-License-Identifier: GPL-2.0

//! hotup_nvme, version 1: the crate root. The driver (`ctrl.rs`, behind
//! `edge.rs`) is shared by every version; this file names the module and
//! its version.

/// This build's child version.
const CHILD_VERSION: u32 = 1;
/// This module's name, as registered with the parent.
const MODULE_NAME: &str = "hotup_nvme_v1";

#[allow(unused_attributes)]
#[path = "../../state_abi/src/lib.rs"]
mod state_abi;

mod admin;
mod ctrl;
mod drives;
mod edge;
mod hwio;
// The RAM child's model answers every command it decodes; this driver
// passes most to the controller and uses only part of the table.
#[allow(dead_code)]
#[path = "../passthru.rs"]
mod passthru;

use kernel::prelude::*;

module! {
    type: edge::Child,
    name: "hotup_nvme_v1",
    authors: ["hotup developers"],
    description: "hotup child v1: driver of QEMU's NVMe controller (1b36:0010), hardware owned by hotup_parent",
    license: "GPL",
    params: {
        inject_adopt_error: u32 {
            default: 0,
            description: "Test only: a mask of devices (bit N: the parent's device N; 1: device 0, all there is in most tests) whose handed-over state this child refuses (EINVAL), as a child that cannot read it would: one refusal fails the whole adopt",
        },
        inject_keep_epoch: u32 {
            default: 0,
            description: "Test only: 1 makes an adopt that one device refused leave the devices it took as taken (their epoch advanced, not given back): the state it refused, offered again to the old version, is then refused as stale",
        },
        inject_cq_rewind: u32 {
            default: 0,
            description: "Test only: 1 adopts the I/O completion queue one entry before the head handed over, reaping an entry twice",
        },
        inject_lost_completion: u32 {
            default: 0,
            description: "Test only: N drops the Nth I/O completion this module reaps (its command stays outstanding): the parent must report it stuck",
        },
        inject_admin_timeout: u32 {
            default: 0,
            description: "Test only: N gives up on the Nth admin command this module sends right after its doorbell, as if the controller answered later than the bound: its late completion must be consumed before another command uses the data page",
        },
    },
}

/// `inject_adopt_error`: the devices whose state to refuse (a mask).
fn inject_adopt_error() -> u32 {
    *module_parameters::inject_adopt_error.value()
}

/// Whether the fault injection `inject_keep_epoch` is on.
fn inject_keep_epoch() -> bool {
    *module_parameters::inject_keep_epoch.value() != 0
}

/// Whether the fault injection `inject_cq_rewind` is on.
fn inject_cq_rewind() -> bool {
    *module_parameters::inject_cq_rewind.value() != 0
}

/// `inject_lost_completion`: which completion to lose (0: none).
fn inject_lost_completion() -> u32 {
    *module_parameters::inject_lost_completion.value()
}

/// `inject_admin_timeout`: which admin command to give up on (0: none).
fn inject_admin_timeout() -> u32 {
    *module_parameters::inject_admin_timeout.value()
}
