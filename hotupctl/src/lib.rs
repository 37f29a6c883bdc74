//! hotupctl's parts that other programs share: the parent's status line and
//! log lines, module files, and the classic swap ([`swap::NewChild`]), which
//! the soak (`userspace-tests`' `hotup-soak`) runs in a loop. The command
//! line and what each command does are the `hotupctl` binary's.

pub mod doctor;
pub mod event;
pub mod kmsg;
pub mod module;
pub mod status;
pub mod swap;
