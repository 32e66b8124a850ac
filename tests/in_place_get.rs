//! Gets of values of 64 KiB and more land in the caller's buffer in place when it is aligned
//! and large enough, and go through the bounce buffer otherwise: both give the same bytes,
//! from memory and from the device, and a damaged value leaves no byte in the buffer.

mod common;
use common::{create, reopen, scratch, value_for};
use dcache::ErrorKind;
use dcache::{Cache, Fetched};

/// `len` bytes at a 4096-aligned address, or at an odd one (which no device takes direct).
struct Buffer {
    store: Vec<u8>,
    start: usize,
    len: usize,
}

impl Buffer {
    fn new(len: usize, aligned: bool, fill: u8) -> Buffer {
        let store = vec![fill; len + 8192];
        let base = store.as_ptr() as usize;
        let mut start = base.next_multiple_of(4096) - base;
        if !aligned {
            start += 1;
        }
        Buffer { store, start, len }
    }

    fn bytes(&mut self) -> &mut [u8] {
        &mut self.store[self.start..self.start + self.len]
    }
}

const VALUE_LENS: [usize; 8] = [
    65535,
    65536,
    65537,
    65536 + 511,
    65536 + 512,
    131072 + 100,
    1 << 20,
    (3 << 20) + 5,
];
const KEY_LENS: [usize; 4] = [1, 100, 470, 4096];

/// A key of `key_len` bytes, distinct for each value length (even at one byte).
fn key_of(key_len: usize, value_len: usize) -> Vec<u8> {
    let i = VALUE_LENS.iter().position(|&v| v == value_len).unwrap();
    let mut k = vec![b'a' + i as u8];
    k.resize(key_len, b'x');
    k
}

/// Every way of getting each value gives exactly its bytes.
fn check_all(c: &Cache) {
    for &kl in &KEY_LENS {
        for &vl in &VALUE_LENS {
            let key = key_of(kl, vl);
            let want = value_for(&key, 1, vl);
            // Exactly the value's length, a unit more, and far more; aligned or not.
            for extra in [0usize, 512, 1 << 20] {
                for aligned in [true, false] {
                    let mut b = Buffer::new(vl + extra, aligned, 0xa5);
                    match c.get(&key, b.bytes()).unwrap() {
                        Fetched::Copied(n) => assert_eq!(n, vl),
                        other => panic!("{other:?}"),
                    }
                    let got = b.bytes();
                    assert!(
                        got[..vl] == want[..],
                        "key {kl} value {vl} aligned {aligned}"
                    );
                    assert!(
                        got[vl..].iter().all(|&x| x == 0xa5),
                        "bytes past the value were written (key {kl}, value {vl})"
                    );
                }
            }
            let mut small = Buffer::new(vl - 1, true, 0xa5);
            assert_eq!(
                c.get(&key, small.bytes()).unwrap(),
                Fetched::TooSmall(vl as u64)
            );
            assert!(
                small.bytes().iter().all(|&x| x == 0xa5),
                "too small: touched"
            );
        }
    }
}

#[test]
fn in_place_and_bounced_gets_agree_in_memory_and_on_the_device() {
    let dir = scratch();
    let path = dir.path().join("c");
    {
        let c = create(&path, 256 << 20);
        for &kl in &KEY_LENS {
            for &vl in &VALUE_LENS {
                let key = key_of(kl, vl);
                c.put(&key, &value_for(&key, 1, vl), 0).unwrap();
            }
        }
        check_all(&c); // from the region buffer
        c.flush().unwrap();
        check_all(&c);
    }
    check_all(&reopen(&path)); // from the device only
}

#[test]
fn a_buffer_far_too_small_costs_a_header_read() {
    let dir = scratch();
    let path = dir.path().join("c");
    let (key, vl) = (b"big".to_vec(), (3 << 20) + 5);
    {
        let c = create(&path, 256 << 20);
        c.put(&key, &value_for(&key, 1, vl), 0).unwrap();
    }
    let c = reopen(&path); // from the device
    for len in [0usize, 100, 1 << 20] {
        let before = c.stats().bytes_read;
        let mut b = Buffer::new(len, true, 0xa5);
        assert_eq!(
            c.get(&key, b.bytes()).unwrap(),
            Fetched::TooSmall(vl as u64)
        );
        assert!(b.bytes().iter().all(|&x| x == 0xa5));
        let read = c.stats().bytes_read - before;
        assert!(
            read <= 4096,
            "{read} bytes read to say a {len}-byte buffer is too small"
        );
    }
}

#[test]
fn a_damaged_value_leaves_nothing_in_the_buffer() {
    let dir = scratch();
    let path = dir.path().join("c");
    let (key, vl) = (b"damaged".to_vec(), 200_000usize);
    let want = value_for(&key, 1, vl);
    create(&path, 64 << 20).put(&key, &want, 0).unwrap();
    // Flip one byte in the value's last unit, which the get reads into its bounce buffer
    // and copies to the caller's before the checksums are checked.
    let mut image = std::fs::read(&path).unwrap();
    let at = image
        .windows(12)
        .position(|w| w == &want[..12])
        .expect("the value is in the file");
    image[at + vl - 3] ^= 0x40;
    std::fs::write(&path, &image).unwrap();

    let c = reopen(&path);
    let mut b = Buffer::new(vl + 4096, true, 0xa5);
    let err = c.get(&key, b.bytes()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let got = b.bytes();
    assert!(
        got[..vl].iter().all(|&x| x == 0),
        "unverified bytes left in the buffer"
    );
    assert!(got[vl..].iter().all(|&x| x == 0xa5));
    assert_eq!(c.stats().checksum_failures, 1);
}
