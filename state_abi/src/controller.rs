// SPDX-License-Identifier: GPL-2.0

//! The controller section (`NVMC`, optional, version 1): what an
//! NVMe-style child keeps about its controller beyond the block device, so
//! that `nvme smart-log` counters never go back and a feature set before an
//! upgrade reads back after it.
//!
//! Optional: a reader that does not know it skips it, and its controller
//! then starts from [`ControllerState::FRESH`] (the counters restart, as
//! after a power cycle); the device's data is unaffected.
//!
//! Payload (little endian, [`NVMC_V1_LEN`] bytes): `bytes_read`,
//! `bytes_written`, `host_reads`, `host_writes`, `admin_cmds`,
//! `power_cycles`, `power_on_ns`, `unsafe_shutdowns` (u64 each), then
//! `volatile_wc`, `temp_threshold`, `queues`, `reserved` (u32 each).

use super::blob::{tag, BlobError, BlobWriter, LeReader, SECTION_HEADER_LEN};
pub use super::files::{
    FileState, FileStates, FILE_SECTION_MAX_LEN, FILE_V1, MAX_FILES, TAG_FILES,
};

/// Tag of the controller section, `"NVMC"` (optional).
pub const TAG_CONTROLLER: u32 = tag(b"NVMC");
/// Version of the controller section this crate reads and writes.
pub const NVMC_V1: u16 = 1;
/// Payload length of `NVMC` v1.
pub const NVMC_V1_LEN: usize = 8 * 8 + 4 * 4;
/// The section with its header, as it sits in a blob.
pub const NVMC_SECTION_LEN: usize = SECTION_HEADER_LEN + NVMC_V1_LEN;

/// Default composite temperature threshold, in kelvin (70 C).
pub const DEFAULT_TEMP_THRESHOLD: u32 = 343;

/// The controller's counters and feature values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerState {
    /// Bytes read by host commands (block reads and read passthrough).
    pub bytes_read: u64,
    /// Bytes written by host commands.
    pub bytes_written: u64,
    /// Read commands completed.
    pub host_reads: u64,
    /// Write commands completed.
    pub host_writes: u64,
    /// Admin commands completed.
    pub admin_cmds: u64,
    /// Times the controller started without a state to adopt.
    pub power_cycles: u64,
    /// Time the controller has been running, over every child.
    pub power_on_ns: u64,
    /// Starts that found no clean handover (always 0 here: a child that
    /// cannot export leaves the last good state, which counts).
    pub unsafe_shutdowns: u64,
    /// Feature 0x06, volatile write cache: 0 or 1.
    pub volatile_wc: u32,
    /// Feature 0x04, composite temperature over-threshold, in kelvin
    /// (at most 0xffff).
    pub temp_threshold: u32,
    /// Feature 0x07, number of queues: NSQA in bits 0..16, NCQA in bits
    /// 16..32 (both 0's based).
    pub queues: u32,
    /// Zero.
    pub reserved: u32,
}

impl ControllerState {
    /// A controller that was just powered on for the first time.
    pub const FRESH: ControllerState = ControllerState {
        bytes_read: 0,
        bytes_written: 0,
        host_reads: 0,
        host_writes: 0,
        admin_cmds: 0,
        power_cycles: 1,
        power_on_ns: 0,
        unsafe_shutdowns: 0,
        volatile_wc: 1,
        temp_threshold: DEFAULT_TEMP_THRESHOLD,
        queues: 0,
        reserved: 0,
    };

    /// Checks the invariants documented on the fields.
    pub fn validate(&self) -> Result<(), BlobError> {
        if self.volatile_wc > 1 {
            return Err(BlobError::InvalidField("volatile_wc"));
        }
        if self.temp_threshold > 0xffff {
            return Err(BlobError::InvalidField("temp_threshold"));
        }
        if self.reserved != 0 {
            return Err(BlobError::ReservedNotZero);
        }
        Ok(())
    }

    /// Appends this state as an optional `NVMC` v1 section.
    pub fn encode(&self, w: &mut BlobWriter<'_>) -> Result<(), BlobError> {
        self.validate()?;
        let mut s = w.begin_section(TAG_CONTROLLER, NVMC_V1, false)?;
        for v in [
            self.bytes_read,
            self.bytes_written,
            self.host_reads,
            self.host_writes,
            self.admin_cmds,
            self.power_cycles,
            self.power_on_ns,
            self.unsafe_shutdowns,
        ] {
            s.put_u64(v)?;
        }
        for v in [
            self.volatile_wc,
            self.temp_threshold,
            self.queues,
            self.reserved,
        ] {
            s.put_u32(v)?;
        }
        s.end()
    }

    /// Decodes and validates an `NVMC` v1 payload (exactly
    /// [`NVMC_V1_LEN`] bytes).
    pub fn decode(payload: &[u8]) -> Result<Self, BlobError> {
        let mut r = LeReader::new(payload);
        let s = ControllerState {
            bytes_read: r.u64()?,
            bytes_written: r.u64()?,
            host_reads: r.u64()?,
            host_writes: r.u64()?,
            admin_cmds: r.u64()?,
            power_cycles: r.u64()?,
            power_on_ns: r.u64()?,
            unsafe_shutdowns: r.u64()?,
            volatile_wc: r.u32()?,
            temp_threshold: r.u32()?,
            queues: r.u32()?,
            reserved: r.u32()?,
        };
        r.finish()?;
        s.validate()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobReader;
    use crate::device_state::{DeviceStateV2, SCHEMA_V1, SCHEMA_V2};
    use crate::handover::HeldRequest;
    use crate::state::{read_state_held, read_state_into, write_state_full, StateOut};

    fn read_state_full(blob: &[u8], max: u32) -> Result<(StateOut, usize), BlobError> {
        let mut out = StateOut::EMPTY;
        let held = read_state_into(blob, max, &mut out)?;
        Ok((out, held.len()))
    }
    use crate::MemHandle;

    fn dev() -> DeviceStateV2 {
        DeviceStateV2 {
            capacity_bytes: 1 << 20,
            block_size: 512,
            nr_queues: 2,
            data_handle: MemHandle(0x100),
            data_len: 1 << 20,
            ..Default::default()
        }
    }

    fn ctrl() -> ControllerState {
        ControllerState {
            bytes_read: 4096 * 3,
            bytes_written: 512,
            host_reads: 3,
            host_writes: 1,
            admin_cmds: 17,
            power_on_ns: 123_456,
            temp_threshold: 0x150,
            volatile_wc: 0,
            queues: 0x0003_0003,
            ..ControllerState::FRESH
        }
    }

    #[test]
    fn round_trips_in_every_schema_with_and_without_held() {
        for schema in [SCHEMA_V1, SCHEMA_V2] {
            for n in [0usize, 3] {
                let held = (1..n as u32 + 1).map(u64::from).map(|i| HeldRequest {
                    cookie: i << 32 | i,
                    remaining_ns: 10,
                    status: 0,
                });
                let mut buf = vec![0u8; crate::max_blob_len_with_held(n)];
                let mut files = FileStates::new();
                files.set(0xffff_8880_0000_1000, 7).unwrap();
                let ctrl = Some(&ctrl());
                let len =
                    write_state_full(&mut buf, 2, &dev(), None, schema, held, ctrl, Some(&files))
                        .unwrap();
                let (f, held) = read_state_full(&buf[..len], SCHEMA_V2).unwrap();
                assert_eq!(f.dev, dev());
                assert_eq!(held, n);
                assert_eq!(f.ctrl.as_ref(), ctrl);
                assert_eq!(f.files.get(0xffff_8880_0000_1000), Some(7));
            }
        }
    }

    #[test]
    fn is_optional_for_a_reader_that_does_not_know_it() {
        let mut buf = vec![0u8; crate::MAX_BLOB_LEN];
        let len = write_state_full(
            &mut buf,
            2,
            &dev(),
            None,
            SCHEMA_V2,
            [],
            Some(&ctrl()),
            None,
        )
        .unwrap();
        let r = BlobReader::parse(&buf[..len]).unwrap();
        let s = r.find(TAG_CONTROLLER).unwrap();
        assert!(!s.mandatory);
        assert_eq!(s.payload.len(), NVMC_V1_LEN);
        // An ABI 1.1 reader (state and held requests only) skips it.
        let (d, _, _, _) = read_state_held(&buf[..len], SCHEMA_V2).unwrap();
        assert_eq!(d, dev());
    }

    #[test]
    fn absent_section_reads_as_none() {
        let mut buf = vec![0u8; crate::MAX_BLOB_LEN];
        let len = write_state_full(&mut buf, 1, &dev(), None, SCHEMA_V1, [], None, None).unwrap();
        let (f, _) = read_state_full(&buf[..len], SCHEMA_V2).unwrap();
        assert_eq!((f.ctrl, f.files), (None, FileStates::new()));
    }

    #[test]
    fn refuses_bad_fields_and_lengths() {
        let mut bad = ctrl();
        bad.volatile_wc = 2;
        let mut buf = vec![0u8; crate::MAX_BLOB_LEN];
        assert_eq!(
            write_state_full(&mut buf, 2, &dev(), None, SCHEMA_V2, [], Some(&bad), None),
            Err(BlobError::InvalidField("volatile_wc"))
        );
        let mut payload = [0u8; NVMC_V1_LEN];
        assert_eq!(
            ControllerState::decode(&payload).map(|c| c.power_cycles),
            Ok(0)
        );
        payload[NVMC_V1_LEN - 1] = 1;
        assert_eq!(
            ControllerState::decode(&payload),
            Err(BlobError::ReservedNotZero)
        );
        assert!(ControllerState::decode(&payload[..NVMC_V1_LEN - 4]).is_err());
        let mut longer = [0u8; NVMC_V1_LEN + 8];
        longer[..NVMC_V1_LEN].copy_from_slice(&[0; NVMC_V1_LEN]);
        assert!(ControllerState::decode(&longer).is_err());
    }

    #[test]
    fn file_states_set_remove_and_refuse_bad_payloads() {
        let mut f = FileStates::new();
        assert_eq!(f.set(0, 1), Err(BlobError::InvalidField("file")));
        for i in 1..=MAX_FILES as u64 {
            f.set(i, i * 10).unwrap();
        }
        assert_eq!(f.set(1000, 1), Err(BlobError::InvalidField("files")));
        f.set(5, 55).unwrap();
        assert_eq!(f.get(5), Some(55));
        assert!(f.remove(5));
        assert!(!f.remove(5));
        assert_eq!(
            (f.len(), f.get(5), f.get(64)),
            (MAX_FILES - 1, None, Some(640))
        );
        // The largest section fits the budget, and round-trips.
        f.set(1000, 1).unwrap();
        let mut buf = vec![0u8; crate::MAX_BLOB_LEN];
        let ctrl = Some(&ControllerState::FRESH);
        let len =
            write_state_full(&mut buf, 2, &dev(), None, SCHEMA_V2, [], ctrl, Some(&f)).unwrap();
        assert_eq!(read_state_full(&buf[..len], SCHEMA_V2).unwrap().0.files, f);
        // Duplicates, zero ids, too many, reserved bits: refused.
        let entry = |file: u64| [file.to_le_bytes(), 1u64.to_le_bytes()].concat();
        let payload = |n: u32, r: u32, es: &[Vec<u8>]| {
            let mut p = [n.to_le_bytes(), r.to_le_bytes()].concat();
            es.iter().for_each(|e| p.extend_from_slice(e));
            p
        };
        assert!(FileStates::decode(&payload(1, 0, &[entry(9)])).is_ok());
        assert!(FileStates::decode(&payload(2, 0, &[entry(9), entry(9)])).is_err());
        assert!(FileStates::decode(&payload(1, 0, &[entry(0)])).is_err());
        assert!(FileStates::decode(&payload(1, 1, &[entry(9)])).is_err());
        assert!(FileStates::decode(&payload(65, 0, &[])).is_err());
        assert!(FileStates::decode(&payload(2, 0, &[entry(9)])).is_err());
    }
}
