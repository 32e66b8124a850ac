//! Read-modify-write edge cases against a real O_DIRECT file in the work tree (not /tmp,
//! which may be tmpfs, where O_DIRECT proves nothing about alignment).

use super::*;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

pub(crate) fn scratch_dir() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-scratch");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn open_new(dir: &tempfile::TempDir, alignment: Option<usize>) -> (DirectFile, PathBuf) {
    let path = dir.path().join("f");
    let opts = OpenOptions {
        create: true,
        truncate: true,
        alignment,
        io_mode: IoMode::Direct,
        ..Default::default()
    };
    (DirectFile::open(&path, &opts).unwrap(), path)
}

/// Checks the file's bytes and size with ordinary buffered reads.
fn assert_matches(path: &PathBuf, mirror: &[u8]) {
    let on_disk = std::fs::read(path).unwrap();
    assert_eq!(on_disk.len(), mirror.len(), "size");
    assert!(on_disk == mirror, "content differs");
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn apply(mirror: &mut Vec<u8>, data: &[u8], offset: usize) {
    if mirror.len() < offset + data.len() {
        mirror.resize(offset + data.len(), 0);
    }
    mirror[offset..offset + data.len()].copy_from_slice(data);
}

#[test]
fn direct_io_is_in_effect_on_the_work_tree() {
    let dir = scratch_dir();
    let (f, _) = open_new(&dir, None);
    assert!(f.is_direct());
    assert!(f.alignment().offset >= 512 && f.alignment().offset.is_power_of_two());
}

#[test]
fn edge_cases_of_read_modify_write() {
    for alignment in [None, Some(4096)] {
        let dir = scratch_dir();
        let (f, path) = open_new(&dir, alignment);
        let a = f.alignment().offset;
        let mut mirror = Vec::new();
        let cases: Vec<(usize, usize)> = vec![
            (0, 1),             // offset 0, one byte
            (a - 1, 1),         // last byte of a block
            (a - 1, 2),         // straddles a block boundary
            (3, 10 * a + 7),    // spans many blocks, unaligned at both ends
            (5 * a, 0),         // zero length
            (40 * a + 3, 100),  // past the end of the file: a hole, then data
            (2 * a, a),         // aligned, inside
            (1, (1 << 20) + 3), // large and unaligned: the chunked path
        ];
        for (i, &(offset, len)) in cases.iter().enumerate() {
            let data = pattern(len, i as u8);
            f.pwrite(&data, offset as u64).unwrap();
            apply(&mut mirror, &data, offset);
            assert_matches(&path, &mirror);
            assert_eq!(f.size(), mirror.len() as u64);
            let mut back = vec![0u8; len];
            assert_eq!(f.pread(&mut back, offset as u64).unwrap(), len);
            assert_eq!(back, data);
        }
    }
}

/// A large transfer whose memory and offset line up after some point, ending with less than
/// a block: the sub-block tail must go through the bounce buffer (this once looped forever).
#[test]
fn large_transfers_with_a_sub_block_tail_finish() {
    let dir = scratch_dir();
    let (f, path) = open_new(&dir, None);
    let mut buf = AlignedBuf::new((1 << 20) + 4096, 4096).unwrap();
    let data = pattern((1 << 20) + 1, 5);
    buf.as_mut_slice()[..data.len()].copy_from_slice(&data);
    f.pwrite(&buf.as_slice()[..data.len()], 0).unwrap(); // aligned memory and offset
    let mut mirror = data.clone();
    let shifted = pattern(256 << 10, 6);
    buf.as_mut_slice()[1..1 + shifted.len()].copy_from_slice(&shifted);
    f.pwrite(&buf.as_slice()[1..1 + shifted.len()], 1).unwrap(); // aligned after the head block
    apply(&mut mirror, &shifted, 1);
    assert_matches(&path, &mirror);
    let mut back = AlignedBuf::new((1 << 20) + 4096, 4096).unwrap();
    assert_eq!(
        f.pread(&mut back.as_mut_slice()[..mirror.len()], 0)
            .unwrap(),
        mirror.len()
    );
    assert!(back.as_slice()[..mirror.len()] == mirror[..]);
    assert_eq!(
        f.pread(&mut back.as_mut_slice()[1..1 + (256 << 10)], 1)
            .unwrap(),
        256 << 10
    );
    assert!(back.as_slice()[1..1 + (256 << 10)] == mirror[1..1 + (256 << 10)]);
    // Zero-length transfers do nothing, whatever the offset.
    f.pwrite(&[], u64::MAX).unwrap();
    assert_eq!(f.pread(&mut [], u64::MAX).unwrap(), 0);
}

#[test]
fn reads_are_short_only_at_end_of_file() {
    let dir = scratch_dir();
    let (f, _) = open_new(&dir, None);
    let data = pattern(10_000, 9);
    f.pwrite(&data, 0).unwrap();
    let mut buf = vec![0u8; 5000];
    assert_eq!(f.pread(&mut buf, 8000).unwrap(), 2000);
    assert_eq!(&buf[..2000], &data[8000..]);
    assert_eq!(f.pread(&mut buf, 10_000).unwrap(), 0);
    assert_eq!(f.pread(&mut buf, 1 << 30).unwrap(), 0);
    let mut big = vec![0u8; 3 << 20];
    assert_eq!(f.pread(&mut big, 1).unwrap(), 9999);
}

#[test]
fn vectored_reads_fill_parts_in_order() {
    let dir = scratch_dir();
    let (f, _) = open_new(&dir, None);
    let data = pattern(300_000, 5);
    f.pwrite(&data, 0).unwrap();
    let a = f.alignment().offset;
    // Aligned parts (one preadv), then parts no device takes direct (read one by one), then
    // parts running past the end of the file.
    for (offset, lens, skew) in [
        (a, [a, 64 * a, a], 0usize),
        (a, [a, 64 * a, a], 1),
        (7, [100, 5000, 3], 0),
        (300_000 / a * a - a, [a, 8 * a, a], 0),
    ] {
        let mut bufs: Vec<AlignedBuf> = lens
            .iter()
            .map(|&n| AlignedBuf::new(n + a, 4096).unwrap())
            .collect();
        let mut parts: Vec<&mut [u8]> = bufs
            .iter_mut()
            .zip(lens)
            .map(|(b, n)| &mut b.as_mut_slice()[skew..skew + n])
            .collect();
        let total: usize = lens.iter().sum();
        let want = &data[offset.min(data.len())..(offset + total).min(data.len())];
        assert_eq!(
            f.pread_vectored(&mut parts, offset as u64).unwrap(),
            want.len()
        );
        let got: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        assert!(
            got[..want.len()] == *want,
            "offset {offset} lens {lens:?} skew {skew}"
        );
    }
}

#[test]
fn aligned_buffers_go_direct_and_match() {
    let dir = scratch_dir();
    let (f, path) = open_new(&dir, None);
    let mut buf = AlignedBuf::new(1 << 20, 4096).unwrap();
    buf.as_mut_slice().copy_from_slice(&pattern(1 << 20, 3));
    f.pwrite(buf.as_slice(), 1 << 20).unwrap();
    let mut back = AlignedBuf::new(1 << 20, 4096).unwrap();
    assert_eq!(f.pread(back.as_mut_slice(), 1 << 20).unwrap(), 1 << 20);
    assert!(back.as_slice() == buf.as_slice());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 << 20);
}

#[test]
fn neighbouring_writers_lose_nothing() {
    let dir = scratch_dir();
    let (f, path) = open_new(&dir, None);
    let f = std::sync::Arc::new(f);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || {
                for i in (t..2000).step_by(4) {
                    f.pwrite(&[i as u8 ^ 0x5a; 100], i as u64 * 100).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 200_000);
    for i in 0..2000 {
        assert!(
            bytes[i * 100..i * 100 + 100]
                .iter()
                .all(|&b| b == i as u8 ^ 0x5a),
            "record {i}"
        );
    }
}

#[test]
fn random_writes_match_a_mirror() {
    let dir = scratch_dir();
    let path = dir.path().join("f");
    let opts = OpenOptions {
        create: true,
        min_io_size: 300,
        ..Default::default()
    };
    let f = DirectFile::open(&path, &opts).unwrap();
    let mut mirror = Vec::new();
    let mut seed = 0x1234_5678_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..400 {
        let offset = (next() % 300_000) as usize;
        let len = (next() % 20_000) as usize;
        let data = pattern(len, i as u8);
        f.pwrite(&data, offset as u64).unwrap();
        apply(&mut mirror, &data, offset);
    }
    assert_matches(&path, &mirror);
    let raw = std::fs::File::open(&path).unwrap();
    let mut check = vec![0u8; 1000];
    raw.read_exact_at(&mut check, 1234).unwrap();
    assert_eq!(&check[..], &mirror[1234..2234]);
}

#[test]
fn whole_files_round_trip_atomically() {
    let dir = scratch_dir();
    let path = dir.path().join("object");
    for len in [0usize, 1, 4097, 3 << 20] {
        let data = pattern(len, len as u8);
        write_all(&path, &data, &OpenOptions::default()).unwrap();
        let (buf, got) = read_all(&path, &OpenOptions::default()).unwrap();
        assert_eq!(got, len);
        assert!(buf.as_slice()[..got] == data[..]);
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
}

#[test]
fn bad_arguments_are_refused() {
    let dir = scratch_dir();
    let (f, _) = open_new(&dir, None);
    let err = f.pwrite(&[1], u64::MAX).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
    let opts = OpenOptions {
        alignment: Some(1000),
        ..Default::default()
    };
    assert_eq!(
        DirectFile::open(&dir.path().join("x"), &opts)
            .err()
            .unwrap()
            .kind(),
        crate::ErrorKind::InvalidArgument
    );
    let missing = DirectFile::open(&dir.path().join("missing"), &OpenOptions::default())
        .err()
        .unwrap();
    assert_eq!(missing.kind(), crate::ErrorKind::Io);
    assert!(
        missing.message().contains("missing"),
        "{}",
        missing.message()
    );
}

/// An injected fault fails exactly the operations it names, on the bytes it names, of the
/// file it was set on, through a descriptor opened before it was set; clearing it ends it.
#[test]
fn injected_faults_fail_only_what_they_name() {
    use super::fault::{self, Fault, Op};
    let dir = scratch_dir();
    let (f, path) = open_new(&dir, None);
    let (other, _) = {
        let p = dir.path().join("other");
        let o = OpenOptions {
            create: true,
            io_mode: IoMode::Direct,
            ..Default::default()
        };
        (DirectFile::open(&p, &o).unwrap(), p)
    };
    let data = pattern(64 << 10, 7);
    f.pwrite(&data, 0).unwrap();
    other.pwrite(&data, 0).unwrap();
    fault::set(
        &path,
        vec![
            Fault::unreadable(8192..12288),
            Fault::unwritable(32768..36864, libc::EROFS),
            Fault {
                op: Op::Sync,
                bytes: 0..0,
                errno: libc::EIO,
            },
        ],
    )
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let err = f.pread(&mut buf, 8192).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Io, "{err}");
    assert_eq!(
        f.pread(&mut buf, 12288).unwrap(),
        4096,
        "the next block reads"
    );
    assert_eq!(buf[..], data[12288..16384]);
    let mut whole = vec![0u8; 64 << 10];
    assert!(
        f.pread(&mut whole, 0).is_err(),
        "a read across the range fails whole"
    );
    assert!(
        f.pwrite(&data[..100], 32800).is_err(),
        "a write into the range"
    );
    f.pwrite(&data[..4096], 0).unwrap();
    assert!(f.sync().is_err());
    assert_eq!(
        other.pread(&mut whole, 0).unwrap(),
        64 << 10,
        "another file reads"
    );
    other.sync().unwrap();
    fault::clear(&path).unwrap();
    f.pread(&mut buf, 8192).unwrap();
    f.sync().unwrap();
}
