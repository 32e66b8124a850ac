//! Opening a cache: create or refuse, lock, recognise our superblock (or refuse the data as
//! not ours, untouched), format when told to, and mark the cache in use.

use super::append::LogStart;
use super::device::Device;
use super::engine::{Engine, Settings};
use super::format::{Geometry, RingPosition, SlotContent, Superblock, MIN_CAPACITY};
use super::index::Index;
use super::recovery::{self, RecoveryReport};
use super::rings::Rings;
use super::{now_secs, CacheOptions, DEFAULT_MAX_VALUE};
use crate::dio::{sys, AlignedBuf, DirectFile, OpenOptions};
use crate::error::{Error, ErrorKind, Remedy, Result};
use std::path::Path;
use std::sync::Arc;

/// Where a second superblock copy may start: at `meta_size`, a power of two in this range.
const SLOT_OFFSETS: [u64; 5] = [4096, 8192, 16384, 32768, 65536];

/// What the start of a file or device holds.
enum Found {
    Cache(Superblock),
    OtherVersion(u32),
    Damaged,
    Foreign,
}

fn read_superblock(dev: &DirectFile) -> Result<Found> {
    let probe_len = 2 * SLOT_OFFSETS[SLOT_OFFSETS.len() - 1] as usize;
    let mut buf = AlignedBuf::new(probe_len, 4096)?;
    let mut unreadable = None;
    let got = match dev.pread(buf.as_mut_slice(), 0) {
        Err(e) if e.kind() == ErrorKind::Io => {
            let got = read_around_errors(dev, buf.as_mut_slice(), &e)?;
            unreadable = Some(e);
            got
        }
        other => other?,
    };
    let b = &buf.as_slice()[..got];
    let device_size = dev.size();
    let mut candidates = vec![Superblock::decode(b, device_size)];
    for off in SLOT_OFFSETS {
        if (off as usize) < b.len() {
            match Superblock::decode(&b[off as usize..], device_size) {
                // A second copy is only where its own geometry puts it.
                SlotContent::Valid(sb) if sb.geometry.meta_size as u64 != off => {}
                other => candidates.push(other),
            }
        }
    }
    let best = candidates
        .iter()
        .filter_map(|c| match c {
            SlotContent::Valid(sb) => Some(sb),
            _ => None,
        })
        .max_by_key(|sb| sb.generation);
    if let Some(sb) = best {
        return Ok(Found::Cache(sb.clone()));
    }
    if let Some(e) = unreadable {
        return Err(no_superblock(dev, &e));
    }
    if let Some(v) = candidates.iter().find_map(|c| {
        if let SlotContent::OtherVersion(v) = c {
            Some(*v)
        } else {
            None
        }
    }) {
        return Ok(Found::OtherVersion(v));
    }
    if candidates.iter().any(|c| matches!(c, SlotContent::Damaged)) {
        return Ok(Found::Damaged);
    }
    Ok(Found::Foreign)
}

/// Reads the start of `dev` into `buf` a block at a time after `e` failed the whole read,
/// leaving zeros where a block cannot be read: one superblock copy may still read where the
/// other does not. Fails only when no block reads.
fn no_superblock(dev: &DirectFile, e: &Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!(
            "neither superblock copy of {} can be read: {}",
            dev.path().display(),
            e.message()
        ),
    )
}

fn read_around_errors(dev: &DirectFile, buf: &mut [u8], e: &Error) -> Result<usize> {
    let block = SLOT_OFFSETS[0] as usize;
    let mut got = 0;
    let mut readable = false;
    for (i, chunk) in buf.chunks_mut(block).enumerate() {
        match dev.pread(chunk, (i * block) as u64) {
            Ok(n) => {
                readable = true;
                got = i * block + n;
                if n < chunk.len() {
                    break;
                }
            }
            Err(_) => {
                chunk.fill(0);
                got = (i + 1) * block;
            }
        }
    }
    if !readable {
        return Err(no_superblock(dev, e));
    }
    crate::log::warn(&format!(
        "part of the start of {} cannot be read ({}); looking for a superblock copy that can",
        dev.path().display(),
        e.message()
    ));
    Ok(got.min(buf.len()))
}

fn is_empty(dev: &DirectFile) -> Result<bool> {
    if dev.is_block_device() {
        return Ok(false);
    }
    if dev.size() == 0 {
        return Ok(true);
    }
    sys::has_no_data(dev.fd())
        .map_err(|e| Error::os(format!("lseek(SEEK_DATA) {}", dev.path().display()), e))
}

fn effective_max_value(geometry: &Geometry, asked: u64) -> Result<u64> {
    let fits = geometry.max_value_capacity();
    match asked {
        0 => Ok(DEFAULT_MAX_VALUE.min(fits)),
        n if n <= fits => Ok(n),
        n => Err(Error::invalid(format!(
            "max_value_size {n} is more than one region of this cache holds ({fits} bytes)"
        ))),
    }
}

pub(crate) fn open(path: &Path, opts: &CacheOptions) -> Result<Engine> {
    if opts.capacity != 0 && opts.capacity < MIN_CAPACITY {
        return Err(Error::invalid(format!(
            "capacity {} is below the minimum of {MIN_CAPACITY} bytes",
            opts.capacity
        )));
    }
    if opts.read_only && (opts.create || opts.format) {
        return Err(Error::invalid("a read-only open cannot create or format"));
    }
    let exists = match std::fs::metadata(path) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::os(format!("stat {}", path.display()), e)),
    };
    if !exists && !opts.create {
        return Err(Error::new(
            ErrorKind::Io,
            format!("{}: No such file or directory", path.display()),
        )
        .with_remedy(Remedy::Create));
    }
    if !exists && opts.capacity == 0 {
        return Err(Error::invalid(format!(
            "{}: a new cache needs a capacity",
            path.display()
        )));
    }
    let file_opts = OpenOptions {
        io_mode: opts.io_mode,
        create_new: !exists,
        read_only: opts.read_only,
        alignment: opts.alignment,
        mode: 0o600,
        ..OpenOptions::default()
    };
    let dev = DirectFile::open(path, &file_opts)?;
    let result = open_device(dev, opts, !exists);
    if result.is_err() && !exists {
        crate::dio::file::remove_quietly(path);
    }
    result
}

fn open_device(dev: DirectFile, opts: &CacheOptions, created: bool) -> Result<Engine> {
    let path = dev.path().display().to_string();
    let locked = sys::try_flock(dev.fd(), !opts.read_only)
        .map_err(|e| Error::os(format!("flock {path}"), e))?;
    if !locked {
        return Err(Error::new(
            ErrorKind::Locked,
            format!("{path} is open in another handle or process"),
        ));
    }
    if created {
        return format(dev, opts);
    }
    match read_superblock(&dev)? {
        _ if opts.format => format(dev, opts),
        Found::Cache(sb) => load(dev, sb, opts),
        Found::OtherVersion(v) => Err(Error::new(
            ErrorKind::Incompatible,
            format!(
                "{path} holds a dcache of format version {v}; this library reads version {} \
                 (formatting it makes a new, empty cache of this version)",
                super::FORMAT_VERSION
            ),
        )
        .with_remedy(Remedy::Format)),
        Found::Damaged => Err(Error::new(
            ErrorKind::NotACache,
            format!("{path} holds a dcache whose superblocks are both damaged"),
        )
        .with_remedy(Remedy::Format)),
        Found::Foreign if opts.create && is_empty(&dev)? => format(dev, opts),
        Found::Foreign => Err(Error::new(
            ErrorKind::NotACache,
            format!("{path} holds data that is not a dcache; it was left untouched"),
        )
        .with_remedy(Remedy::Format)),
    }
}

fn capacity_for_format(dev: &DirectFile, opts: &CacheOptions) -> Result<u64> {
    let size = dev.size();
    let path = dev.path().display();
    match (dev.is_block_device(), opts.capacity) {
        (true, 0) => Ok(size),
        (true, c) if c <= size => Ok(c),
        (true, c) => Err(Error::new(
            ErrorKind::NoSpace,
            format!("{path} holds {size} bytes, not the {c} asked"),
        )),
        (false, 0) if size == 0 => Err(Error::invalid(format!(
            "{path}: a new cache needs a capacity"
        ))),
        (false, 0) => Ok(size),
        (false, c) => Ok(c),
    }
}

fn settings(geometry: &Geometry, opts: &CacheOptions) -> Result<Settings> {
    Ok(Settings {
        read_only: opts.read_only,
        sync_writes: opts.sync_writes,
        default_ttl_secs: opts.default_ttl_secs,
        max_value_size: effective_max_value(geometry, opts.max_value_size)?,
        admission: opts.admission,
        write_budget: opts.write_budget,
    })
}

/// The device and an empty index for the cache `sb` describes.
fn device_and_index(file: DirectFile, sb: &Superblock) -> (Arc<Device>, Arc<Index>) {
    let g = sb.geometry;
    let device = Device::new(file, g, sb.cache_id, Default::default());
    (Arc::new(device), Arc::new(Index::new(g.unit)))
}

fn format(file: DirectFile, opts: &CacheOptions) -> Result<Engine> {
    if opts.read_only {
        return Err(Error::new(
            ErrorKind::ReadOnly,
            "cannot format a cache opened read-only",
        ));
    }
    let capacity = capacity_for_format(&file, opts)?;
    let alignment = file.alignment().offset as u32;
    let geometry = Geometry::plan(capacity, alignment).ok_or_else(|| {
        Error::invalid(format!(
            "capacity {capacity} is below the minimum of {MIN_CAPACITY} bytes"
        ))
    })?;
    let settings = settings(&geometry, opts)?;
    file.allocate(capacity)?;
    let mut sb = Superblock {
        generation: 0,
        cache_id: sys::random_u64(),
        geometry,
        created_secs: now_secs(),
        clean: false,
        positions: [RingPosition::NONE; 2],
        next_entry_seq: 1,
        next_lap: 1,
    };
    let (device, index) = device_and_index(file, &sb);
    // Both copies, so that no copy of an older cache stays behind to be mistaken for ours.
    device.write_superblock(&mut sb)?;
    device.write_superblock(&mut sb)?;
    let n = geometry.region_count;
    let start = LogStart {
        active: [None, None],
        laps: vec![0; n as usize],
        rings: Rings::new(n, Default::default(), [false, false]),
        has_entries: vec![false; n as usize],
        next_entry_seq: 1,
        next_lap: 1,
    };
    let report = RecoveryReport {
        formatted: true,
        ..Default::default()
    };
    Engine::assemble(device, index, start, sb, settings, report)
}

/// Refuses options that contradict the cache the device holds.
fn check_compatible(file: &DirectFile, g: &Geometry, opts: &CacheOptions) -> Result<()> {
    let path = file.path().display().to_string();
    if opts.capacity != 0 && opts.capacity != g.capacity {
        return Err(Error::new(
            ErrorKind::Incompatible,
            format!(
                "{path} holds a cache of {} bytes; the options ask {}",
                g.capacity, opts.capacity
            ),
        ));
    }
    if let Some(a) = opts.alignment {
        if a as u32 != g.alignment {
            return Err(Error::new(
                ErrorKind::Incompatible,
                format!(
                    "{path} was formatted with alignment {}; the options ask {a}",
                    g.alignment
                ),
            ));
        }
    }
    if file.is_direct() && file.alignment().offset as u32 > g.unit {
        return Err(Error::new(
            ErrorKind::Incompatible,
            format!(
                "{path} now needs alignment {} for direct I/O; the cache was formatted with {}",
                file.alignment().offset,
                g.unit
            ),
        ));
    }
    Ok(())
}

fn load(file: DirectFile, sb: Superblock, opts: &CacheOptions) -> Result<Engine> {
    check_compatible(&file, &sb.geometry, opts)?;
    let settings = settings(&sb.geometry, opts)?;
    let (device, index) = device_and_index(file, &sb);
    let (start, report) = recovery::recover(&device, &index, &sb, opts.read_only)?;
    let engine = Engine::assemble(device, index, start, sb, settings, report)?;
    if !opts.read_only {
        engine.mark_in_use()?;
    }
    Ok(engine)
}

#[cfg(test)]
mod tests {
    use super::super::format::{FORMAT_VERSION, SUPERBLOCK_LEN};
    use super::super::testing::{self, MIB};
    use super::*;
    use crate::cache::Cache;

    #[test]
    fn a_cache_of_the_previous_format_is_refused_until_formatted() {
        let dir = testing::scratch();
        let (path, c) = testing::create(dir.path(), "c", 8 * MIB);
        c.put(b"k", b"v", 0).unwrap();
        c.close().unwrap();
        let meta = c.layout().superblock_size as u64;
        drop(c);
        // Both superblock copies say version 1, as a cache made before the two rings.
        for at in [0, meta] {
            testing::damage(&path, at + 8, &1u32.to_le_bytes());
        }
        let err = Cache::open(&path, &CacheOptions::default()).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::Incompatible);
        assert!(err.to_string().contains("version 1"), "{err}");
        assert_eq!(err.remedy(), Some(Remedy::Format));
        let before = std::fs::read(&path).unwrap();
        assert!(Cache::open(
            &path,
            &CacheOptions {
                create: true,
                ..Default::default()
            }
        )
        .is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before, "refused untouched");
        let c = Cache::open(
            &path,
            &CacheOptions {
                format: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(c.recovery().formatted);
        assert!(!c.contains(b"k"));
        assert!(SUPERBLOCK_LEN <= meta as usize && FORMAT_VERSION == 2);
    }
}
