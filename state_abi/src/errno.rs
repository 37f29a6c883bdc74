// SPDX-License-Identifier: GPL-2.0

//! The few Linux errno values this crate reports, as positive numbers.
//!
//! Functions of the ABI return them negated (`-EINVAL`), as the kernel does.

/// No such file or directory: a required section is missing.
pub const ENOENT: i32 = 2;
/// I/O error.
pub const EIO: i32 = 5;
/// Invalid argument: a malformed blob or field.
pub const EINVAL: i32 = 22;
/// No space left on device: the output buffer is too small.
pub const ENOSPC: i32 = 28;
/// Protocol error: a version or mandatory section this side does not know.
pub const EPROTO: i32 = 71;
/// Not a data message: the checksum does not match.
pub const EBADMSG: i32 = 74;
/// Operation not supported.
pub const EOPNOTSUPP: i32 = 95;
/// Operation canceled: the operator aborted a standby switch.
pub const ECANCELED: i32 = 125;
/// Operation already in progress (a controller enabled already).
pub const EALREADY: i32 = 114;
