//! A small HTTP/1.1 origin for the proxy's tests and benchmark, whose every body can be
//! checked byte for byte by a client that knows only the URL and the response's headers.
//!
//! `GET /any/path?size=N[&cc=CACHE-CONTROL][&etag=1][&trickle_ms=M]` answers `N` bytes made
//! from the request target and the target's *generation* (in `x-origin-gen`), which
//! [`Origin::bump`] advances: a body served with another generation's headers is caught.
//! With `etag=1` it sends an ETag and answers a matching `If-None-Match` with 304; with
//! `trickle_ms` it sends the body in 16 KiB pieces that far apart.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The body the origin serves for `target` at generation `gen`.
pub fn body_for(target: &str, gen: u64, size: usize) -> Vec<u8> {
    // FNV-1a over the target and generation seeds an xorshift stream.
    let mut state = 0xcbf2_9ce4_8422_2325u64;
    for byte in target.bytes().chain(gen.to_le_bytes()) {
        state = (state ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    state |= 1;
    let mut body = Vec::with_capacity(size + 8);
    while body.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        body.extend_from_slice(&state.to_le_bytes());
    }
    body.truncate(size);
    body
}

/// The body size a target asks for (its `size` parameter; 0 without one).
pub fn size_of(target: &str) -> usize {
    query(target, "size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// How many times the origin answered a target.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Full responses (200, or for a HEAD its headers).
    pub full: u64,
    /// 304 Not Modified answers to a matching If-None-Match.
    pub not_modified: u64,
}

#[derive(Default)]
struct Targets {
    generation: HashMap<String, u64>,
    served: HashMap<String, Served>,
}

/// An origin listening on 127.0.0.1, a thread per connection, until dropped.
pub struct Origin {
    addr: SocketAddr,
    targets: Arc<Mutex<Targets>>,
    stop: Arc<AtomicBool>,
}

impl Origin {
    /// Starts an origin on `addr` (port 0: any free port).
    pub fn start(addr: &str) -> std::io::Result<Origin> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let targets = Arc::new(Mutex::new(Targets::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopping) = (targets.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let targets = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &targets);
                });
            }
        });
        Ok(Origin {
            addr,
            targets,
            stop,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Advances `target`'s generation: later responses carry other bytes.
    pub fn bump(&self, target: &str) {
        *self
            .targets
            .lock()
            .unwrap()
            .generation
            .entry(target.to_string())
            .or_default() += 1;
    }

    /// How often `target` was answered.
    pub fn served(&self, target: &str) -> Served {
        let targets = self.targets.lock().unwrap();
        targets.served.get(target).copied().unwrap_or_default()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

struct Request {
    method: String,
    target: String,
    if_none_match: Option<String>,
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(std::io::Error::other("bad request line"));
    };
    let mut request = Request {
        method: method.to_string(),
        target: target.to_string(),
        if_none_match: None,
    };
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            return Ok(Some(request));
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("if-none-match") {
                request.if_none_match = Some(value.trim().to_string());
            }
        }
    }
}

fn query<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// `%XX` escapes decoded (enough for a Cache-Control value in a query).
fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve(stream: TcpStream, targets: &Mutex<Targets>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    while let Some(request) = read_request(&mut reader)? {
        let target = request.target.as_str();
        let size: usize = query(target, "size")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let etag_wanted = query(target, "etag") == Some("1");
        let trickle = query(target, "trickle_ms").and_then(|s| s.parse().ok());
        let gen = {
            let targets = targets.lock().unwrap();
            targets.generation.get(target).copied().unwrap_or(0)
        };
        let etag = format!("\"g{gen}\"");
        let not_modified = etag_wanted && request.if_none_match.as_deref() == Some(&etag);
        {
            let mut targets = targets.lock().unwrap();
            let served = targets.served.entry(target.to_string()).or_default();
            match not_modified {
                true => served.not_modified += 1,
                false => served.full += 1,
            }
        }
        let mut head = String::new();
        head.push_str(match not_modified {
            true => "HTTP/1.1 304 Not Modified\r\n",
            false => "HTTP/1.1 200 OK\r\n",
        });
        head.push_str(&format!("x-origin-gen: {gen}\r\n"));
        if let Some(cc) = query(target, "cc") {
            head.push_str(&format!("cache-control: {}\r\n", unescape(cc)));
        }
        if etag_wanted {
            head.push_str(&format!("etag: {etag}\r\n"));
        }
        if !not_modified {
            head.push_str(&format!(
                "content-length: {size}\r\ncontent-type: application/octet-stream\r\n"
            ));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if not_modified || request.method == "HEAD" {
            continue;
        }
        let body = body_for(target, gen, size);
        match trickle {
            None => out.write_all(&body)?,
            Some(ms) => {
                for piece in body.chunks(16 << 10) {
                    out.write_all(piece)?;
                    out.flush()?;
                    std::thread::sleep(Duration::from_millis(ms));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_differ_by_target_and_generation() {
        let a = body_for("/a?size=100", 0, 100);
        assert_eq!(a.len(), 100);
        assert_eq!(a, body_for("/a?size=100", 0, 100));
        assert_ne!(a, body_for("/a?size=100", 1, 100));
        assert_ne!(a, body_for("/b?size=100", 0, 100));
        assert_eq!(&body_for("/a?size=100", 0, 1000)[..100], &a[..]);
    }

    #[test]
    fn queries_and_escapes() {
        let target = "/x?size=5&cc=max-age%3D60%2C%20public&etag=1";
        assert_eq!(query(target, "size"), Some("5"));
        assert_eq!(unescape(query(target, "cc").unwrap()), "max-age=60, public");
        assert_eq!(query(target, "trickle_ms"), None);
    }
}
