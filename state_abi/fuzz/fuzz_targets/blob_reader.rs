// SPDX-License-Identifier: GPL-2.0

//! Feeds arbitrary bytes to every reader entry point of `state_abi`: as
//! they are, and re-sealed (header length and checksum fixed up) so that
//! mutations get past the checksum into section and payload validation.

#![no_main]

use libfuzzer_sys::fuzz_target;
use state_abi::blob::reseal;
use state_abi::{
    read_state, read_state_held, read_state_into, BlobError, BlobReader, StateOut, MAX_FILES,
    TAG_DEVICE_STATE, TAG_QUEUE_STATS,
};

fn exercise(data: &[u8]) {
    if let Ok(r) = BlobReader::parse(data) {
        let mut n = 0u32;
        for s in r.sections() {
            n += 1;
            assert_eq!(r.find(s.tag), Some(s));
            let mut lr = s.reader();
            while lr.u64().is_ok() {}
            while lr.u8().is_ok() {}
        }
        assert_eq!(n, r.section_count());
        let _ = r.check_known(&[(TAG_DEVICE_STATE, 2), (TAG_QUEUE_STATS, 1)]);
        let _ = r.check_known(&[(TAG_DEVICE_STATE, 1)]);
        let _ = r.check_known(&[]);
    }
    for max in 0..=3 {
        if let Ok((state, queues, version)) = read_state(data, max) {
            assert!(version == 1 || version == 2);
            assert!(state.validate().is_ok());
            if let Some(q) = queues {
                assert!(q.len() <= state.nr_queues as usize);
            }
        }
        if let Ok((state, _, _, held)) = read_state_held(data, max) {
            assert!(state.validate().is_ok());
            let n = held.len();
            let mut seen = 0;
            for h in held {
                seen += 1;
                assert!(h.cookie != 0 && h.status <= 0);
            }
            assert_eq!(seen, n);
        }
        let mut f = StateOut::EMPTY;
        if read_state_into(data, max, &mut f).is_ok() {
            assert!(f.dev.validate().is_ok());
            if let Some(c) = f.ctrl {
                assert!(c.validate().is_ok());
            }
            assert!(f.files.len() <= MAX_FILES);
            assert!(f.files.as_slice().iter().all(|e| e.file != 0));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if data.len() >= 32 && data.len() <= 1 << 16 {
        let mut fixed = data.to_vec();
        let len = fixed.len() as u32;
        fixed[16..20].copy_from_slice(&len.to_le_bytes());
        reseal(&mut fixed).unwrap();
        // Resealed, the header's length and checksum claims hold.
        let r = BlobReader::parse(&fixed);
        assert!(!matches!(
            r,
            Err(BlobError::Truncated
                | BlobError::LengthMismatch
                | BlobError::ChecksumMismatch { .. })
        ));
        exercise(&fixed);
    }
});
