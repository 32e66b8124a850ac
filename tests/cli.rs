//! The `dcache` command-line tool, run as a user runs it.

mod common;
use std::io::Write;
use std::process::{Command, Stdio};

fn dcache(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcache"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn format_put_get_delete_info_check() {
    let dir = common::scratch();
    let path = dir.path().join("c.dcache");
    let p = path.to_str().unwrap();

    assert_eq!(dcache(&["format", p, "--capacity", "32M"], b"").0, 0);
    let (code, _, err) = dcache(&["format", p, "--capacity", "32M"], b"");
    assert_eq!(code, 1, "a second format without --force is refused");
    assert!(err.contains("already holds a dcache"), "{err}");

    let value: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(dcache(&["put", p, "some/key"], &value).0, 0);
    let (code, out, _) = dcache(&["get", p, "some/key"], b"");
    assert_eq!(code, 0);
    assert!(out == value);
    assert_eq!(dcache(&["get", p, "missing"], b"").0, 3);

    let (code, out, _) = dcache(&["info", p], b"");
    let info = String::from_utf8(out).unwrap();
    assert_eq!(code, 0);
    assert!(info.contains("entries:         1"), "{info}");
    assert!(info.contains("last shutdown:   clean"), "{info}");
    assert!(info.contains("direct (O_DIRECT)"), "{info}");

    let (code, out, _) = dcache(&["check", p], b"");
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));

    assert_eq!(dcache(&["delete", p, "some/key"], b"").0, 0);
    assert_eq!(dcache(&["delete", p, "some/key"], b"").0, 3);
}

#[test]
fn check_fails_on_a_damaged_entry_and_format_refuses_foreign_data() {
    let dir = common::scratch();
    let path = dir.path().join("c.dcache");
    let p = path.to_str().unwrap();
    assert_eq!(dcache(&["format", p, "--capacity", "32M"], b"").0, 0);
    assert_eq!(dcache(&["put", p, "k"], &[0x55u8; 50_000]).0, 0);
    // The first region starts right after the two 4 KiB superblocks; damage the value.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, b"\xAA", 8192 + 20_000).unwrap();
    drop(f);
    let (code, out, _) = dcache(&["check", p], b"");
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out));
    assert!(String::from_utf8_lossy(&out).contains("1 damaged"));

    let foreign = dir.path().join("foreign");
    std::fs::write(&foreign, vec![0xEEu8; 16 << 20]).unwrap();
    let (code, _, err) = dcache(
        &["format", foreign.to_str().unwrap(), "--capacity", "16M"],
        b"",
    );
    assert_eq!(code, 1);
    assert!(err.contains("not a dcache"), "{err}");
    assert!(std::fs::read(&foreign).unwrap().iter().all(|&b| b == 0xEE));
    assert_eq!(
        dcache(&["format", foreign.to_str().unwrap(), "--force"], b"").0,
        0
    );
}

#[test]
fn errors_say_what_to_type_in_the_shell_not_in_c() {
    let dir = common::scratch();
    let foreign = dir.path().join("foreign");
    std::fs::write(&foreign, vec![0xEEu8; 16 << 20]).unwrap();
    let (code, _, err) = dcache(&["put", foreign.to_str().unwrap(), "k"], b"v");
    assert_eq!(code, 1);
    assert!(err.contains("holds data that is not a dcache"), "{err}");
    assert!(err.contains("`dcache format --force PATH`"), "{err}");
    assert!(
        !err.contains("DCACHE_"),
        "no C name reaches the shell: {err}"
    );
    assert!(std::fs::read(&foreign).unwrap().iter().all(|&b| b == 0xEE));

    let missing = dir.path().join("missing");
    let (code, _, err) = dcache(&["get", missing.to_str().unwrap(), "k"], b"");
    assert_eq!(code, 1);
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(
        err.contains("`dcache format PATH --capacity SIZE`"),
        "{err}"
    );
    assert!(
        !err.contains("DCACHE_"),
        "no C name reaches the shell: {err}"
    );
}

/// `dcache stats`: the metrics of a cache nobody holds (a read-only open), and of one a
/// process holds, from the textfile that process writes; the lock refuses the open then.
#[test]
fn stats_prints_metrics_from_the_cache_or_the_holder_s_textfile() {
    let dir = common::scratch();
    let path = dir.path().join("c.dcache");
    let textfile = dir.path().join("dcache.prom");
    let (p, t) = (path.to_str().unwrap(), textfile.to_str().unwrap());
    assert_eq!(dcache(&["format", p, "--capacity", "32M"], b"").0, 0);
    assert_eq!(dcache(&["put", p, "k"], b"value").0, 0);

    let (code, out, err) = dcache(&["stats", p], b"");
    assert_eq!(code, 0, "{err}");
    let text = String::from_utf8(out).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let entries = scrape
        .samples
        .iter()
        .find(|s| s.metric == "dcache_entries")
        .unwrap();
    assert_eq!(entries.value, prometheus_parse::Value::Gauge(1.0));
    assert!(text.contains("\ndcache_recovery_was_clean 1\n"), "{text}");
    let (code, out, _) = dcache(&["stats", p, "--json"], b"");
    assert_eq!(code, 0);
    assert!(String::from_utf8(out).unwrap().contains("\"entries\":1,"));

    // A process holds the cache and writes its textfile.
    let opts = dcache::CacheOptions::new()
        .metrics_textfile(&textfile)
        .metrics_interval(std::time::Duration::from_millis(20));
    let cache = dcache::Cache::open(&path, &opts).unwrap();
    cache.put(b"k2", b"v2", 0).unwrap();
    cache.flush().unwrap();
    let (code, _, err) = dcache(&["stats", p], b"");
    assert_eq!(code, 1);
    assert!(err.contains("--textfile"), "{err}");
    let want = cache.stats().to_prometheus();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (code, out, err) = dcache(&["stats", p, "--textfile", t], b"");
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("in use by another process"), "{err}");
        if String::from_utf8(out).unwrap() == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the textfile never caught up"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, _, err) = dcache(&["stats", p, "--textfile", t, "--json"], b"");
    assert_eq!(code, 1);
    assert!(err.contains("--prometheus"), "{err}");
    drop(cache);
}
