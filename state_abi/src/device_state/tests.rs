// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the device-state schema and its evolution.

use super::super::blob::{reseal, BLOB_HEADER_LEN, SECTION_MANDATORY};
use super::*;

fn v2() -> DeviceStateV2 {
    DeviceStateV2 {
        capacity_bytes: 16 << 20,
        block_size: 4096,
        nr_queues: 2,
        data_handle: MemHandle(0x1234),
        data_len: 16 << 20,
        reads: 1,
        writes: 2,
        flushes: 3,
        discards: 4,
        write_zeroes: 5,
        bytes_read: 6,
        bytes_written: 7,
        adopt_count: 8,
        reserved: 0,
    }
}

fn queues() -> QueueStats {
    QueueStats::from_slice(&[
        QueueStat {
            submitted: 10,
            completed: 9,
            max_inflight: 3,
        },
        QueueStat {
            submitted: 20,
            completed: 20,
            max_inflight: 5,
        },
    ])
    .unwrap()
}

fn write(state: &DeviceStateV2, q: Option<&QueueStats>, schema: u32) -> Vec<u8> {
    let mut buf = [0u8; MAX_BLOB_LEN];
    let n = write_state(&mut buf, 2, state, q, schema).unwrap();
    buf[..n].to_vec()
}

/// A blob with DEVS v1 plus arbitrary extra sections.
fn with_extra(extra: &[(u32, u16, bool, &[u8])]) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    downgrade_v2_to_v1(&v2()).encode(&mut w).unwrap();
    for &(t, v, m, p) in extra {
        w.section(t, v, m, p).unwrap();
    }
    let n = w.finish().unwrap();
    buf[..n].to_vec()
}

#[test]
fn sizes() {
    assert_eq!(
        MAX_BLOB_LEN,
        32 + 16 + 96 + 16 + 8 + 64 * 24 + 16 + 80 + 16 + 8 + 64 * 16
    );
    let full = QueueStats::zeroed(MAX_QUEUES).unwrap();
    let s = DeviceStateV2 {
        nr_queues: MAX_QUEUES as u32,
        ..v2()
    };
    // The largest blob without handed-over requests: the full state and
    // the controller section.
    let ctrl = Some(&crate::ControllerState::FRESH);
    let mut files = crate::FileStates::new();
    for f in 1..=crate::controller::MAX_FILES as u64 {
        files.set(f, f).unwrap();
    }
    let files = Some(&files);
    let mut buf = [0u8; MAX_BLOB_LEN];
    assert_eq!(
        crate::write_state_full(&mut buf, 2, &s, Some(&full), 2, [], ctrl, files),
        Ok(MAX_BLOB_LEN)
    );
    let mut small = [0u8; MAX_BLOB_LEN - 1];
    assert_eq!(
        crate::write_state_full(&mut small, 2, &s, Some(&full), 2, [], ctrl, files),
        Err(BlobError::BufferTooSmall)
    );
    assert_eq!(write(&v2(), None, 1).len(), 32 + 16 + DEVS_V1_LEN);
}

#[test]
fn round_trip_v2() {
    let b = write(&v2(), Some(&queues()), 2);
    let (s, q, ver) = read_state(&b, 2).unwrap();
    assert_eq!((s, q, ver), (v2(), Some(queues()), 2));
    assert_eq!(BlobReader::parse(&b).unwrap().producer_child_version(), 2);
    let b = write(&v2(), None, 2);
    assert_eq!(read_state(&b, 2).unwrap(), (v2(), None, 2));
}

#[test]
fn round_trip_v1() {
    let b = write(&v2(), Some(&queues()), 1);
    let r = BlobReader::parse(&b).unwrap();
    assert_eq!(r.section_count(), 1, "schema 1 writes no QSTA");
    let devs = r.find(TAG_DEVICE_STATE).unwrap();
    assert_eq!((devs.version, devs.mandatory), (1, true));
    assert_eq!(
        DeviceStateV1::decode(devs.payload).unwrap(),
        downgrade_v2_to_v1(&v2())
    );
    // A v1 reader gets the v1 fields (as a V2 with new fields zero).
    let (s, q, ver) = read_state(&b, 1).unwrap();
    assert_eq!(ver, 1);
    assert_eq!(q, None);
    assert_eq!(downgrade_v2_to_v1(&s), downgrade_v2_to_v1(&v2()));
}

#[test]
fn migration_v1_to_v2() {
    let b = write(&v2(), None, 1);
    let (s, q, ver) = read_state(&b, 2).unwrap();
    assert_eq!(ver, 1);
    assert_eq!(q, None);
    let expect = DeviceStateV2 {
        bytes_read: 0,
        bytes_written: 0,
        adopt_count: 0,
        ..v2()
    };
    assert_eq!(s, expect);
    assert_eq!(migrate_v1_to_v2(&downgrade_v2_to_v1(&v2())), expect);
}

#[test]
fn downgrade_v2_to_v1_keeps_common_fields() {
    let d = downgrade_v2_to_v1(&v2());
    assert_eq!(d.capacity_bytes, v2().capacity_bytes);
    assert_eq!(d.block_size, 4096);
    assert_eq!(d.nr_queues, 2);
    assert_eq!(d.data_handle, MemHandle(0x1234));
    assert_eq!(
        (d.reads, d.writes, d.flushes, d.discards, d.write_zeroes),
        (1, 2, 3, 4, 5)
    );
}

#[test]
fn v1_reader_skips_qsta_and_unknown_optional() {
    // A v2 blob read by a v1 reader: DEVS v2 is mandatory and too new.
    let b = write(&v2(), Some(&queues()), 2);
    assert_eq!(
        read_state(&b, 1),
        Err(BlobError::UnsupportedSectionVersion {
            tag: TAG_DEVICE_STATE,
            version: 2
        })
    );
    // DEVS v1 + optional QSTA + unknown optional: a v1 reader skips both.
    let mut qsta = [0u8; 8 + 24];
    qsta[0] = 1;
    let b = with_extra(&[
        (TAG_QUEUE_STATS, 1, false, &qsta),
        (tag(b"FUTR"), 7, false, b"zz"),
    ]);
    let (s, q, ver) = read_state(&b, 1).unwrap();
    assert_eq!((ver, q), (1, None));
    assert_eq!(downgrade_v2_to_v1(&s), downgrade_v2_to_v1(&v2()));
    // A v2 reader decodes QSTA and still skips the unknown one.
    let (_, q, _) = read_state(&b, 2).unwrap();
    assert_eq!(q.unwrap().len(), 1);
    // An optional QSTA of a newer version is skipped.
    let b = with_extra(&[(TAG_QUEUE_STATS, 2, false, b"new format")]);
    assert_eq!(read_state(&b, 2).unwrap().1, None);
}

#[test]
fn refuses_unknown_mandatory() {
    let b = with_extra(&[(tag(b"FUTR"), 1, true, b"must not lose")]);
    assert_eq!(
        read_state(&b, 2),
        Err(BlobError::UnknownMandatorySection { tag: tag(b"FUTR") })
    );
    // QSTA mandatory: unknown to a v1 reader, known to a v2 reader.
    let qsta = [0u8; 8];
    let b = with_extra(&[(TAG_QUEUE_STATS, 1, true, &qsta)]);
    assert_eq!(
        read_state(&b, 1),
        Err(BlobError::UnknownMandatorySection {
            tag: TAG_QUEUE_STATS
        })
    );
    assert!(read_state(&b, 2).is_ok());
    let b = with_extra(&[(TAG_QUEUE_STATS, 2, true, &qsta)]);
    assert_eq!(
        read_state(&b, 2),
        Err(BlobError::UnsupportedSectionVersion {
            tag: TAG_QUEUE_STATS,
            version: 2
        })
    );
}

#[test]
fn refuses_newer_devs() {
    let mut buf = [0u8; 256];
    let mut w = BlobWriter::new(&mut buf, 3).unwrap();
    w.section(TAG_DEVICE_STATE, 3, true, &[0; 128]).unwrap();
    let n = w.finish().unwrap();
    for max in [1, 2] {
        assert_eq!(
            read_state(&buf[..n], max),
            Err(BlobError::UnsupportedSectionVersion {
                tag: TAG_DEVICE_STATE,
                version: 3
            })
        );
    }
    // Optional (mis-flagged) DEVS of an unknown version: still refused.
    for version in [0, 3] {
        let mut w = BlobWriter::new(&mut buf, 3).unwrap();
        w.section(TAG_DEVICE_STATE, version, false, &[0; 72])
            .unwrap();
        let n = w.finish().unwrap();
        assert_eq!(
            read_state(&buf[..n], 2),
            Err(BlobError::UnsupportedSectionVersion {
                tag: TAG_DEVICE_STATE,
                version
            })
        );
    }
}

#[test]
fn err_missing_section() {
    let mut buf = [0u8; 64];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    w.section(tag(b"OTHR"), 1, false, b"").unwrap();
    let n = w.finish().unwrap();
    assert_eq!(
        read_state(&buf[..n], 2),
        Err(BlobError::MissingSection {
            tag: TAG_DEVICE_STATE
        })
    );
}

#[test]
fn err_unsupported_schema() {
    let mut buf = [0u8; MAX_BLOB_LEN];
    for schema in [0, 3, u32::MAX] {
        assert_eq!(
            write_state(&mut buf, 1, &v2(), None, schema),
            Err(BlobError::UnsupportedSchema { schema })
        );
    }
    let b = write(&v2(), None, 2);
    for schema in [0, 3] {
        assert_eq!(
            read_state(&b, schema),
            Err(BlobError::UnsupportedSchema { schema })
        );
    }
}

#[test]
fn err_payload_lengths() {
    // DEVS v1 with a v2-sized payload and vice versa.
    let b = write(&v2(), None, 2);
    let devs = BlobReader::parse(&b)
        .unwrap()
        .find(TAG_DEVICE_STATE)
        .unwrap();
    assert_eq!(
        DeviceStateV1::decode(devs.payload),
        Err(BlobError::PayloadTooLong)
    );
    assert_eq!(
        DeviceStateV2::decode(&devs.payload[..72]),
        Err(BlobError::PayloadTooShort)
    );
    assert_eq!(
        DeviceStateV2::decode(&devs.payload[..95]),
        Err(BlobError::PayloadTooShort)
    );
    let mut longer = devs.payload.to_vec();
    longer.extend_from_slice(&[0; 8]);
    assert_eq!(
        DeviceStateV2::decode(&longer),
        Err(BlobError::PayloadTooLong)
    );
    // Through read_state: a v1 section with 80 bytes.
    let mut buf = [0u8; 256];
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    let mut p = [0u8; 80];
    p[..72].copy_from_slice(&b[48..48 + 72]);
    w.section(TAG_DEVICE_STATE, 1, true, &p).unwrap();
    let n = w.finish().unwrap();
    assert_eq!(read_state(&buf[..n], 2), Err(BlobError::PayloadTooLong));
    // QSTA whose count does not match its length.
    let mut q = [0u8; 8 + 24];
    q[0] = 2;
    assert_eq!(QueueStats::decode(&q), Err(BlobError::PayloadTooShort));
    q[0] = 0;
    assert_eq!(QueueStats::decode(&q), Err(BlobError::PayloadTooLong));
    assert_eq!(QueueStats::decode(&[0; 4]), Err(BlobError::PayloadTooShort));
    q[4] = 1;
    assert_eq!(QueueStats::decode(&q), Err(BlobError::ReservedNotZero));
}

#[test]
fn err_invalid_fields() {
    let cases: [(DeviceStateV2, &str); 12] = [
        (
            DeviceStateV2 {
                capacity_bytes: 0,
                ..v2()
            },
            "capacity_bytes",
        ),
        (
            DeviceStateV2 {
                capacity_bytes: 4096 + 512,
                ..v2()
            },
            "capacity_bytes",
        ),
        (
            DeviceStateV2 {
                block_size: 0,
                ..v2()
            },
            "block_size",
        ),
        (
            DeviceStateV2 {
                block_size: 256,
                ..v2()
            },
            "block_size",
        ),
        (
            DeviceStateV2 {
                block_size: 8192,
                ..v2()
            },
            "block_size",
        ),
        (
            DeviceStateV2 {
                block_size: 1000,
                ..v2()
            },
            "block_size",
        ),
        (
            DeviceStateV2 {
                block_size: 3 << 10,
                ..v2()
            },
            "block_size",
        ),
        (
            DeviceStateV2 {
                nr_queues: 0,
                ..v2()
            },
            "nr_queues",
        ),
        (
            DeviceStateV2 {
                nr_queues: 65,
                ..v2()
            },
            "nr_queues",
        ),
        (
            DeviceStateV2 {
                nr_queues: u32::MAX,
                ..v2()
            },
            "nr_queues",
        ),
        (
            DeviceStateV2 {
                data_len: (16 << 20) - 1,
                ..v2()
            },
            "data_len",
        ),
        (
            DeviceStateV2 {
                data_len: 0,
                ..v2()
            },
            "data_len",
        ),
    ];
    let mut buf = [0u8; MAX_BLOB_LEN];
    for (s, field) in cases {
        assert_eq!(s.validate(), Err(BlobError::InvalidField(field)), "{s:?}");
        for schema in [1, 2] {
            assert_eq!(
                write_state(&mut buf, 1, &s, None, schema),
                Err(BlobError::InvalidField(field))
            );
        }
        // Hand-encode the invalid state (bypassing validation) and read it.
        let mut w = BlobWriter::new(&mut buf, 1).unwrap();
        let mut sw = w.begin_section(TAG_DEVICE_STATE, 1, true).unwrap();
        sw.put_u64(s.capacity_bytes).unwrap();
        sw.put_u32(s.block_size).unwrap();
        sw.put_u32(s.nr_queues).unwrap();
        for v in [s.data_handle.0, s.data_len, 0, 0, 0, 0, 0] {
            sw.put_u64(v).unwrap();
        }
        sw.end().unwrap();
        let n = w.finish().unwrap();
        assert_eq!(
            read_state(&buf[..n], 2),
            Err(BlobError::InvalidField(field))
        );
    }
    // Valid edge values.
    for s in [
        DeviceStateV2 {
            block_size: 512,
            capacity_bytes: 512,
            data_len: 512,
            nr_queues: 1,
            ..v2()
        },
        DeviceStateV2 {
            nr_queues: 64,
            data_len: u64::MAX,
            ..v2()
        },
    ] {
        let b = write(&s, None, 2);
        assert_eq!(read_state(&b, 2).unwrap().0, s);
    }
    // Reserved in DEVS v2.
    let s = DeviceStateV2 {
        reserved: 1,
        ..v2()
    };
    assert_eq!(s.validate(), Err(BlobError::ReservedNotZero));
    // Queue counts: more than nr_queues, more than MAX_QUEUES.
    let three = QueueStats::zeroed(3).unwrap();
    assert_eq!(
        write_state(&mut buf, 1, &v2(), Some(&three), 2),
        Err(BlobError::InvalidField("queue_stats.count"))
    );
    let mut q = [0u8; 8];
    q[0] = 65;
    assert_eq!(
        QueueStats::decode(&q),
        Err(BlobError::InvalidField("queue_stats.count"))
    );
    // A QSTA with more queues than DEVS says, hand-written.
    let three_payload = {
        let mut p = vec![0u8; 8 + 3 * 24];
        p[0] = 3;
        p
    };
    let mut w = BlobWriter::new(&mut buf, 1).unwrap();
    v2().encode(&mut w).unwrap();
    w.section(TAG_QUEUE_STATS, 1, false, &three_payload)
        .unwrap();
    let n = w.finish().unwrap();
    assert_eq!(
        read_state(&buf[..n], 2),
        Err(BlobError::InvalidField("queue_stats.count"))
    );
}

#[test]
fn queue_stats_container() {
    let mut q = QueueStats::new();
    assert!(q.is_empty());
    assert_eq!(QueueStats::default(), q);
    for i in 0..MAX_QUEUES as u64 {
        q.push(QueueStat {
            submitted: i,
            completed: i,
            max_inflight: 1,
        })
        .unwrap();
    }
    assert_eq!(q.len(), MAX_QUEUES);
    assert_eq!(
        q.push(QueueStat::ZERO),
        Err(BlobError::InvalidField("queue_stats.count"))
    );
    q.as_mut_slice()[3].max_inflight = 9;
    assert_eq!(q.as_slice()[3].max_inflight, 9);
    assert!(QueueStats::zeroed(MAX_QUEUES + 1).is_none());
    assert!(QueueStats::from_slice(&[QueueStat::ZERO; MAX_QUEUES + 1]).is_err());
}

#[test]
fn devs_is_mandatory_and_header_is_sane() {
    let b = write(&v2(), Some(&queues()), 2);
    let r = BlobReader::parse(&b).unwrap();
    let secs: Vec<_> = r.sections().collect();
    assert_eq!(secs.len(), 2);
    assert_eq!(
        (secs[0].tag, secs[0].version, secs[0].mandatory),
        (TAG_DEVICE_STATE, 2, true)
    );
    assert_eq!(
        (secs[1].tag, secs[1].version, secs[1].mandatory),
        (TAG_QUEUE_STATS, 1, false)
    );
    assert_eq!(secs[0].payload.len(), DEVS_V2_LEN);
    assert_eq!(secs[1].payload.len(), 8 + 2 * 24);
    // Flags word of the DEVS section header.
    let flags = u16::from_le_bytes([b[BLOB_HEADER_LEN + 6], b[BLOB_HEADER_LEN + 7]]);
    assert_eq!(flags, SECTION_MANDATORY);
}

#[test]
fn mark_devs_optional_still_reads() {
    // A DEVS not flagged mandatory is still the device state.
    let mut b = write(&v2(), None, 2);
    b[BLOB_HEADER_LEN + 6] = 0;
    reseal(&mut b).unwrap();
    assert_eq!(read_state(&b, 2).unwrap().0, v2());
}
