// SPDX-License-Identifier: GPL-2.0

//! The child driver, shared by every version; `super::CHILD_VERSION` says which.

use kernel::prelude::*;

/// The loaded child.
pub(crate) struct Child;

impl kernel::Module for Child {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("load version={}\n", super::CHILD_VERSION);
        Ok(Child)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        pr_info!("unload version={}\n", super::CHILD_VERSION);
    }
}
