// SPDX-License-Identifier: GPL-2.0

//! Writes the fuzz seed corpus (`fuzz/seeds/`). Run on purpose:
//! `cargo test -p state_abi --test seeds -- --ignored`.

use state_abi::*;

fn state() -> DeviceStateV2 {
    DeviceStateV2 {
        capacity_bytes: 16 << 20,
        block_size: 4096,
        nr_queues: 2,
        data_handle: MemHandle(1),
        data_len: 16 << 20,
        reads: 10,
        writes: 20,
        flushes: 3,
        discards: 2,
        write_zeroes: 1,
        bytes_read: 40960,
        bytes_written: 81920,
        adopt_count: 1,
        reserved: 0,
    }
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![];
    let q = QueueStats::from_slice(&[
        QueueStat {
            submitted: 15,
            completed: 15,
            max_inflight: 4,
        },
        QueueStat {
            submitted: 21,
            completed: 21,
            max_inflight: 7,
        },
    ])
    .unwrap();
    for (name, queues, schema) in [
        ("v1.blob", None, 1),
        ("v2.blob", Some(&q), 2),
        ("v2-noqsta.blob", None, 2),
    ] {
        let mut buf = [0u8; MAX_BLOB_LEN];
        let n = write_state(&mut buf, schema, &state(), queues, schema).unwrap();
        out.push((name, buf[..n].to_vec()));
    }
    // DEVS v1 plus an unknown optional section, and an empty blob.
    let mut buf = [0u8; 512];
    let mut w = BlobWriter::new(&mut buf, 3).unwrap();
    device_state::downgrade_v2_to_v1(&state())
        .encode(&mut w)
        .unwrap();
    w.section(tag(b"FUTR"), 7, false, b"future optional data")
        .unwrap();
    let n = w.finish().unwrap();
    out.push(("v1-unknown-optional.blob", buf[..n].to_vec()));
    let mut buf = [0u8; 32];
    let n = BlobWriter::new(&mut buf, 1).unwrap().finish().unwrap();
    out.push(("empty.blob", buf[..n].to_vec()));
    out
}

#[test]
fn seeds_are_valid() {
    for (name, b) in seeds() {
        BlobReader::parse(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
#[ignore = "writes files into fuzz/seeds/"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, b) in seeds() {
        std::fs::write(dir.join(name), b).unwrap();
    }
}
