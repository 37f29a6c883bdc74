// SPDX-License-Identifier: GPL-2.0
/*
 * The parent's entry points for children, implemented in Rust (parent.rs,
 * `#[no_mangle] extern "C"`); the layouts are state_abi's ChildRegistration
 * and ParentServices. Only the export needs C.
 */
#include <linux/export.h>

struct hotup_child_registration;
struct hotup_parent_services;

int hotup_register_child(const struct hotup_child_registration *reg,
			 const struct hotup_parent_services **services);
int hotup_unregister_child(const struct hotup_child_registration *reg);

EXPORT_SYMBOL_GPL(hotup_register_child);
EXPORT_SYMBOL_GPL(hotup_unregister_child);
