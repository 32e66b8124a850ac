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
