// SPDX-License-Identifier: GPL-2.0

//! The parent's observable transitions: one dmesg line per event, in the
//! stable form `hotup: <event> key=value ...` that tests and tools parse.

use kernel::print::{call_printk, format_strings};

/// Prints one `hotup: ...` line at KERN_INFO.
pub(crate) fn emit(args: core::fmt::Arguments<'_>) {
    // SAFETY: `format_strings::INFO` is one of the fixed format strings
    // `call_printk` requires, and the prefix is a NUL-terminated literal.
    unsafe { call_printk(&format_strings::INFO, b"hotup\0", args) };
}

/// `hotup_event!("attach gen={} ...", gen)`: logs a `hotup: ` event line.
#[macro_export]
macro_rules! hotup_event {
    ($($arg:tt)+) => {
        $crate::event::emit(::core::format_args!("{}\n", ::core::format_args!($($arg)+)))
    };
}
