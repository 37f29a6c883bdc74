// SPDX-License-Identifier: GPL-2.0

//! hotup child driver, version 2: the crate root. The driver is `child.rs`,
//! shared by every version; this file only names the module and its version.

/// This build's child version.
const CHILD_VERSION: u32 = 2;
/// This module's name, as registered with the parent.
const MODULE_NAME: &str = "hotup_child_v2";

#[allow(unused_attributes)]
#[path = "../state_abi/src/lib.rs"]
mod state_abi;

#[macro_use]
#[path = "child.rs"]
mod child;

hotup_child_module!(
    child::Child,
    "hotup_child_v2",
    "hotup child driver v2: NVMe-style RAM-backed block driver"
);
