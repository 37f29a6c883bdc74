// SPDX-License-Identifier: GPL-2.0

//! Property tests of the blob codec and the device-state schema.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use state_abi::blob::{compute_crc, reseal};
use state_abi::device_state::downgrade_v2_to_v1;
use state_abi::*;

/// A section as generated: (version, mandatory, payload), keyed by tag.
type Sections = std::collections::BTreeMap<[u8; 4], (u16, bool, Vec<u8>)>;

fn printable() -> impl Strategy<Value = u8> {
    0x20u8..=0x7E
}

fn tag_bytes() -> impl Strategy<Value = [u8; 4]> {
    [printable(), printable(), printable(), printable()]
}

fn sections(max: usize) -> impl Strategy<Value = Sections> {
    btree_map(
        tag_bytes(),
        (any::<u16>(), any::<bool>(), vec(any::<u8>(), 0..70)),
        0..max,
    )
}

fn write_sections(producer: u32, secs: &Sections) -> Vec<u8> {
    let mut buf = vec![0u8; 32 + secs.len() * (16 + 80)];
    let mut w = BlobWriter::new(&mut buf, producer).unwrap();
    for (t, (v, m, p)) in secs {
        w.section(tag(t), *v, *m, p).unwrap();
    }
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

fn state() -> impl Strategy<Value = DeviceStateV2> {
    (
        (
            9u32..=12,
            1u64..1 << 20,
            1u32..=MAX_QUEUES as u32,
            any::<u64>(),
            0u64..1 << 20,
        ),
        [any::<u64>(); 7],
        any::<u32>(),
    )
        .prop_map(
            |((shift, blocks, nr_queues, handle, extra), c, adopt_count)| {
                let block_size = 1u32 << shift;
                let capacity_bytes = blocks * u64::from(block_size);
                DeviceStateV2 {
                    capacity_bytes,
                    block_size,
                    nr_queues,
                    data_handle: MemHandle(handle),
                    data_len: capacity_bytes + extra,
                    reads: c[0],
                    writes: c[1],
                    flushes: c[2],
                    discards: c[3],
                    write_zeroes: c[4],
                    bytes_read: c[5],
                    bytes_written: c[6],
                    adopt_count,
                    reserved: 0,
                }
            },
        )
}

fn state_and_queues() -> impl Strategy<Value = (DeviceStateV2, Option<QueueStats>)> {
    state().prop_flat_map(|s| {
        let n = s.nr_queues as usize;
        let q = proptest::option::of(vec(any::<(u64, u64, u64)>(), 0..=n).prop_map(|v| {
            let stats: Vec<QueueStat> = v
                .into_iter()
                .map(|(submitted, completed, max_inflight)| QueueStat {
                    submitted,
                    completed,
                    max_inflight,
                })
                .collect();
            QueueStats::from_slice(&stats).unwrap()
        }));
        (Just(s), q)
    })
}

/// Runs every reader entry point on `b`; must never panic.
fn exercise(b: &[u8]) {
    if let Ok(r) = BlobReader::parse(b) {
        let n = r.sections().count();
        assert_eq!(n, r.section_count() as usize);
        for s in r.sections() {
            assert_eq!(r.find(s.tag), Some(s));
            let mut lr = s.reader();
            while lr.u8().is_ok() {}
        }
        let _ = r.check_known(&[(TAG_DEVICE_STATE, 2), (TAG_QUEUE_STATS, 1)]);
        let _ = r.check_known(&[]);
    }
    for max in 0..=3 {
        let _ = read_state(b, max);
    }
}

/// Makes a blob header claim `b`'s length and re-seals it, so that random
/// contents get past the length and checksum checks.
fn fix_up(b: &mut [u8]) {
    if b.len() >= 32 {
        let len = b.len() as u32;
        b[16..20].copy_from_slice(&len.to_le_bytes());
        reseal(b).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_sections_round_trip(producer in any::<u32>(), secs in sections(12)) {
        let b = write_sections(producer, &secs);
        let r = BlobReader::parse(&b).unwrap();
        prop_assert_eq!(r.producer_child_version(), producer);
        prop_assert_eq!(r.section_count() as usize, secs.len());
        let got: Vec<_> = r.sections().collect();
        prop_assert_eq!(got.len(), secs.len());
        for (s, (t, (v, m, p))) in got.iter().zip(secs.iter()) {
            prop_assert_eq!(s.tag, tag(t));
            prop_assert_eq!(s.version, *v);
            prop_assert_eq!(s.mandatory, *m);
            prop_assert_eq!(s.payload, &p[..]);
            prop_assert_eq!(r.find(tag(t)), Some(*s));
        }
        // Knowing every tag at its version accepts; knowing none refuses
        // exactly when some section is mandatory.
        let known: Vec<(u32, u16)> = secs.iter().map(|(t, (v, _, _))| (tag(t), *v)).collect();
        prop_assert_eq!(r.check_known(&known), Ok(()));
        let any_mandatory = secs.values().any(|(_, m, _)| *m);
        prop_assert_eq!(r.check_known(&[]).is_err(), any_mandatory);
        // Total length is header + aligned sections.
        let expect: usize = 32 + secs.values().map(|(_, _, p)| 16 + p.len().div_ceil(8) * 8).sum::<usize>();
        prop_assert_eq!(b.len(), expect);
    }

    #[test]
    fn single_bit_flip_is_detected(secs in sections(6), bit in any::<prop::sample::Index>()) {
        let mut b = write_sections(3, &secs);
        let i = bit.index(b.len() * 8);
        b[i / 8] ^= 1 << (i % 8);
        prop_assert!(BlobReader::parse(&b).is_err());
        exercise(&b);
    }

    #[test]
    fn truncation_is_detected(secs in sections(6), cut in any::<prop::sample::Index>()) {
        let b = write_sections(3, &secs);
        let n = cut.index(b.len());
        prop_assert!(BlobReader::parse(&b[..n]).is_err());
        exercise(&b[..n]);
    }

    #[test]
    fn random_bytes_never_panic(b in vec(any::<u8>(), 0..512)) {
        exercise(&b);
    }

    #[test]
    fn random_bytes_with_valid_header_never_panic(
        body in vec(any::<u8>(), 0..512),
        count in 0u32..8,
    ) {
        let mut b = Vec::with_capacity(32 + body.len());
        b.extend_from_slice(b"HUPB");
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&32u16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&body);
        fix_up(&mut b);
        prop_assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), compute_crc(&b));
        exercise(&b);
    }

    #[test]
    fn mutated_and_resealed_blobs_never_panic(
        (s, q) in state_and_queues(),
        schema in 1u32..=2,
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut buf = [0u8; MAX_BLOB_LEN];
        let n = write_state(&mut buf, 2, &s, q.as_ref(), schema).unwrap();
        let mut b = buf[..n].to_vec();
        for (i, v) in &edits {
            let i = i.index(b.len());
            b[i] = *v;
        }
        fix_up(&mut b);
        exercise(&b);
    }

    #[test]
    fn mutated_section_lengths_never_panic(
        secs in sections(6),
        which in any::<prop::sample::Index>(),
        len in prop_oneof![0u32..200, any::<u32>()],
    ) {
        let mut b = write_sections(1, &secs);
        // Walk to a random section header and corrupt its payload length.
        let mut off = 32;
        let mut headers = vec![];
        while off + 16 <= b.len() {
            headers.push(off);
            let l = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
            off += 16 + l.div_ceil(8) * 8;
        }
        if !headers.is_empty() {
            let h = headers[which.index(headers.len())];
            b[h + 8..h + 12].copy_from_slice(&len.to_le_bytes());
            fix_up(&mut b);
            exercise(&b);
        }
    }

    #[test]
    fn state_round_trip_v2((s, q) in state_and_queues()) {
        let mut buf = [0u8; MAX_BLOB_LEN];
        let n = write_state(&mut buf, 2, &s, q.as_ref(), 2).unwrap();
        prop_assert!(n <= MAX_BLOB_LEN);
        let (got, got_q, ver) = read_state(&buf[..n], 2).unwrap();
        prop_assert_eq!(got, s);
        prop_assert_eq!(got_q, q);
        prop_assert_eq!(ver, 2);
        // A v1 reader refuses the v2 blob (DEVS v2 is mandatory).
        let refused = matches!(
            read_state(&buf[..n], 1),
            Err(BlobError::UnsupportedSectionVersion { version: 2, .. })
        );
        prop_assert!(refused);
    }

    #[test]
    fn state_round_trip_v1_downgrade((s, q) in state_and_queues()) {
        let mut buf = [0u8; MAX_BLOB_LEN];
        let n = write_state(&mut buf, 2, &s, q.as_ref(), 1).unwrap();
        for max in [1, 2] {
            let (got, got_q, ver) = read_state(&buf[..n], max).unwrap();
            prop_assert_eq!(ver, 1);
            prop_assert_eq!(got_q, None);
            prop_assert_eq!(downgrade_v2_to_v1(&got), downgrade_v2_to_v1(&s));
            prop_assert_eq!((got.bytes_read, got.bytes_written, got.adopt_count), (0, 0, 0));
        }
    }

    #[test]
    fn small_buffers_fail_cleanly((s, q) in state_and_queues(), cap in 0usize..MAX_BLOB_LEN) {
        let mut buf = vec![0u8; cap];
        match write_state(&mut buf, 2, &s, q.as_ref(), 2) {
            Ok(n) => prop_assert_eq!(read_state(&buf[..n], 2).unwrap().0, s),
            Err(e) => prop_assert_eq!(e, BlobError::BufferTooSmall),
        }
    }
}

/// An `INFL` v1 payload with these raw entries (cookie, remaining_ns,
/// status), as a child would write it, unchecked.
fn infl_payload(entries: &[(u64, u64, i32)]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    for (c, r, s) in entries {
        p.extend_from_slice(&c.to_le_bytes());
        p.extend_from_slice(&r.to_le_bytes());
        p.extend_from_slice(&s.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every entry of an `INFL` payload the decoder accepts is bounded:
    /// a non-zero cookie, a status 0 or negative, and device time left
    /// within MAX_REMAINING_NS (so a child's `now + remaining` cannot
    /// overflow, and no entry holds the queue for longer than any device
    /// would); and it accepts exactly those payloads.
    #[test]
    fn handed_over_entries_are_bounded(
        entries in vec((any::<u64>(), prop_oneof![
            0u64..=MAX_REMAINING_NS,
            MAX_REMAINING_NS..=u64::MAX,
            Just(u64::MAX),
        ], any::<i32>()), 0..40),
    ) {
        let p = infl_payload(&entries);
        let valid = entries
            .iter()
            .all(|(c, r, s)| *c != 0 && *s <= 0 && *r <= MAX_REMAINING_NS);
        match decode_held(&p) {
            Ok(it) => {
                prop_assert!(valid, "accepted an out-of-bounds entry");
                let got: Vec<_> = it.map(|h| (h.cookie, h.remaining_ns, h.status)).collect();
                prop_assert_eq!(got, entries);
            }
            Err(_) => prop_assert!(!valid, "refused a valid payload"),
        }
    }

    /// Through a whole blob: a blob whose `INFL` section holds an entry
    /// beyond the bound is refused by the reader the parent uses
    /// (`held_in_blob`) and by the children's (`read_state_held`).
    #[test]
    fn a_blob_with_an_unbounded_entry_is_refused(
        dev in state(),
        remaining in (MAX_REMAINING_NS + 1)..=u64::MAX,
        cookie in 1u64..,
    ) {
        let mut buf = vec![0u8; max_blob_len_with_held(1)];
        let h = [HeldRequest { cookie, remaining_ns: remaining, status: 0 }];
        let n = write_state_held(&mut buf, 2, &dev, None, 2, h).unwrap();
        let r = BlobReader::parse(&buf[..n]).unwrap();
        prop_assert!(held_in_blob(&r).is_err());
        prop_assert!(read_state_held(&buf[..n], 2).is_err());
    }
}
