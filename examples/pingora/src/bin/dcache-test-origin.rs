//! The test origin as a process, for the benchmark and for trying the proxy by hand, and its
//! checker.
//!
//! `dcache-test-origin [ADDR]` serves `/any/path?size=N[&cc=...][&etag=1][&trickle_ms=M]`
//! (see `dcache_pingora::origin`) on ADDR (default 127.0.0.1:8000).
//!
//! `dcache-test-origin check ADDR < TARGETS` GETs each target (one per line) from ADDR, a proxy
//! in front of such an origin, and checks every body byte for byte against the generation its
//! headers name; it prints the count checked and exits non-zero at the first wrong byte.

use dcache_pingora::origin::{body_for, size_of, Origin};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") if args.len() == 2 => check(&args[1]),
        Some("check") => {
            eprintln!("usage: dcache-test-origin check ADDR < TARGETS");
            ExitCode::from(2)
        }
        listen => serve(listen.unwrap_or("127.0.0.1:8000")),
    }
}

fn serve(listen: &str) -> ExitCode {
    let origin = match Origin::start(listen) {
        Ok(origin) => origin,
        Err(e) => {
            eprintln!("dcache-test-origin: {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("dcache-test-origin: listening on {}", origin.addr());
    loop {
        std::thread::park();
    }
}

fn check(addr: &str) -> ExitCode {
    let mut checked = 0u64;
    let mut conn = None;
    for target in std::io::stdin().lock().lines() {
        let target = target.expect("reading targets");
        if target.is_empty() {
            continue;
        }
        let stream = match conn.take() {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(addr).expect("connecting");
                stream.set_nodelay(true).expect("TCP_NODELAY");
                BufReader::new(stream)
            }
        };
        match fetch_and_check(stream, addr, &target) {
            Ok(stream) => {
                conn = Some(stream);
                checked += 1;
            }
            Err(e) => {
                eprintln!("dcache-test-origin check: {target}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{checked} bodies checked, every byte as the origin sent it");
    ExitCode::SUCCESS
}

type Conn = BufReader<TcpStream>;

fn fetch_and_check(mut conn: Conn, addr: &str, target: &str) -> Result<Conn, String> {
    // One write: a request in pieces waits on Nagle's algorithm and the delayed ACK.
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    conn.get_mut()
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let (mut status, mut length, mut gen) = (String::new(), None, None);
    conn.read_line(&mut status).map_err(|e| e.to_string())?;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).map_err(|e| e.to_string())?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse::<usize>().ok(),
                "x-origin-gen" => gen = value.trim().parse::<u64>().ok(),
                _ => {}
            }
        }
    }
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("status {}", status.trim_end()));
    }
    let (Some(length), Some(gen)) = (length, gen) else {
        return Err("no Content-Length or x-origin-gen".into());
    };
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).map_err(|e| e.to_string())?;
    if body != body_for(target, gen, size_of(target)) {
        return Err(format!("WRONG BYTES ({length} bytes, generation {gen})"));
    }
    Ok(conn)
}
