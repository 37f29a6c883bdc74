// SPDX-License-Identifier: GPL-2.0

//! hotup child driver, version 2 (crate root; the driver is `child.rs`).

use kernel::prelude::*;

module! {
    type: child::Child,
    name: "hotup_child_v2",
    authors: ["hotup developers"],
    description: "hotup child driver v2: NVMe-style RAM-backed block driver",
    license: "GPL",
}

/// This build's child version.
const CHILD_VERSION: u32 = 2;

#[path = "child.rs"]
mod child;
