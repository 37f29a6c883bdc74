// SPDX-License-Identifier: GPL-2.0

//! hotup parent: owns the block device and the parking lot; children attach to it.

use kernel::prelude::*;

mod event;

module! {
    type: HotupParent,
    name: "hotup_parent",
    authors: ["hotup developers"],
    description: "hotup parent: stable device owner for hot-upgradable child drivers",
    license: "GPL",
}

struct HotupParent;

impl kernel::Module for HotupParent {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        hotup_event!("load");
        Ok(HotupParent)
    }
}

impl Drop for HotupParent {
    fn drop(&mut self) {
        hotup_event!("unload");
    }
}
