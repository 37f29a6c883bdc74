// SPDX-License-Identifier: GPL-2.0

//! `/dev/hotup-ctl`: read it for the parent's status (one `key=value` line);
//! write a command to it to control the parent. Commands need CAP_SYS_ADMIN
//! (EPERM otherwise):
//!
//! - `export-schema N`: the next detach asks the child for device-state
//!   schema N (1 for a downgrade to v1; 0, the default, for the child's own);
//!   EPROTO if the active child cannot write it (older than its own, and
//!   it does not export older schemas). A standby switch without one
//!   exports the newest schema both children read.
//! - `discard-stash`: forget every saved state and free the preserved data,
//!   so the next child starts with an empty (zeroed) device. Only with no
//!   child attached (EBUSY otherwise).
//!
//! - `switch`: switch from the active child to the standby (`standby.rs`);
//!   returns once the standby is active (0) or the switch was rolled back
//!   or called off (the errno says why; the old child is active again).
//!   ENOENT without a standby. Options: `noprepare` skips the prepare step
//!   (the trial export and the standby's probe before anything freezes);
//!   `timeout_ms=N` bounds this switch's drain instead of the parameter
//!   `switch_timeout_ms`.
//! - `abort`: call off a switch that is still draining (ENOENT if none).
//!
//! A command that is not understood fails with EINVAL, one longer than
//! [`MAX_COMMAND`] bytes with EINVAL before anything is copied.

use super::hub::Hub;
use super::status::status_line;
use kernel::{
    fs::{File, Kiocb},
    iov::{IovIterDest, IovIterSource},
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// The control device.
pub(crate) struct Ctl;

/// The longest command accepted, in bytes.
const MAX_COMMAND: usize = 128;

fn parse_command(hub: ArcBorrow<'_, Hub>, text: &[u8]) -> Result {
    let text = core::str::from_utf8(text).map_err(|_| EINVAL)?.trim();
    let (cmd, arg) = text
        .split_once([' ', '='])
        .map_or((text, ""), |(c, a)| (c, a.trim()));
    match cmd {
        "export-schema" => {
            let schema: u32 = arg.parse().map_err(|_| EINVAL)?;
            hub.set_export_schema(schema)?;
            crate::hotup_event!("control export_schema={}", schema);
            Ok(())
        }
        "discard-stash" if arg.is_empty() => Hub::discard_stash(hub),
        "switch" => {
            let (mut prepare, mut timeout_ms) = (true, None);
            for word in arg.split_whitespace() {
                match word.split_once('=') {
                    None if word == "noprepare" => prepare = false,
                    Some(("timeout_ms", v)) => {
                        timeout_ms = Some(v.parse::<u32>().map_err(|_| EINVAL)?.max(1))
                    }
                    _ => return Err(EINVAL),
                }
            }
            Hub::switch_to_standby(hub, prepare, timeout_ms)
        }
        "abort" if arg.is_empty() => hub.abort_switch(),
        _ => Err(EINVAL),
    }
}

/// What an open control file holds: the hub (ENODEV while the parent is
/// loading or unloading).
pub(crate) fn open_hub() -> Result<Arc<Hub>> {
    super::services::current().ok_or(ENODEV)
}

#[vtable]
impl MiscDevice for Ctl {
    type Ptr = Arc<Hub>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Hub>> {
        open_hub()
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let mut data = KVec::from_elem(0u8, super::status::LINE_MAX, GFP_KERNEL)?;
        let len = {
            let mut buf = kernel::str::Formatter::new(&mut data);
            status_line(&kiocb.file(), &mut buf).map_err(|_| ENOSPC)?;
            buf.bytes_written()
        };
        iov.simple_read_from_buffer(kiocb.ki_pos_mut(), data.get(..len).unwrap_or_default())
    }

    fn write_iter(kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        if !super::blk::capable_sys_admin() {
            return Err(EPERM);
        }
        if iov.len() > MAX_COMMAND {
            return Err(EINVAL);
        }
        let mut cmd = [0u8; MAX_COMMAND];
        let len = iov.copy_from_iter(&mut cmd);
        parse_command(kiocb.file(), cmd.get(..len).unwrap_or_default())?;
        Ok(len)
    }
}
