//! The real proxy binary, a real origin and a real HTTP client (reqwest), for the tests.

#![allow(dead_code)] // each test binary uses its own part of this

pub use dcache_pingora::origin::size_of;
use dcache_pingora::origin::{body_for, Origin};
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The proxy binary, running on a cache file, until dropped (killed).
pub struct Proxy {
    child: Child,
    pub addr: SocketAddr,
    cache: PathBuf,
    origin: SocketAddr,
    log: PathBuf,
    /// Where it serves its metrics (`GET /metrics`).
    pub metrics: SocketAddr,
    /// The metrics textfile it writes every 50 ms.
    pub textfile: PathBuf,
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

impl Proxy {
    /// Starts the proxy on `cache` (created if absent) in front of `origin`, and waits until it
    /// takes connections.
    pub fn start(cache: &Path, origin: SocketAddr) -> Proxy {
        Proxy::start_on(free_port(), cache, origin)
    }

    /// As [`Proxy::start`], listening on `addr`.
    pub fn start_on(addr: SocketAddr, cache: &Path, origin: SocketAddr) -> Proxy {
        let log = cache.with_extension(format!("{}.log", addr.port()));
        let (metrics, textfile) = (free_port(), cache.with_extension("prom"));
        let child = Command::new(env!("CARGO_BIN_EXE_dcache-proxy"))
            .args([
                "--listen",
                &addr.to_string(),
                "--origin",
                &origin.to_string(),
            ])
            .arg("--cache")
            .arg(cache)
            .args(["--capacity", "256M", "--threads", "2"])
            .args([
                "--metrics",
                &metrics.to_string(),
                "--metrics-interval-ms",
                "50",
            ])
            .arg("--metrics-textfile")
            .arg(&textfile)
            .env(
                "RUST_LOG",
                std::env::var("PROXY_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting dcache-proxy");
        let mut proxy = Proxy {
            child,
            addr,
            cache: cache.to_path_buf(),
            origin,
            log,
            metrics,
            textfile,
        };
        proxy.wait_ready();
        proxy
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(self.addr).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("dcache-proxy exited ({status}): {}", self.log_text());
            }
            assert!(Instant::now() < deadline, "dcache-proxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no flush, no close.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and the exit status: the proxy drains and closes its cache.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "dcache-proxy did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Another proxy on the same address, cache file and origin (the address is part of
    /// the cache key, through the Host header).
    pub fn restart(self, kill: bool) -> Proxy {
        let (addr, cache, origin) = (self.addr, self.cache.clone(), self.origin);
        if kill {
            self.kill9();
        } else {
            let status = self.stop();
            assert!(status.success(), "dcache-proxy exited with {status}");
        }
        Proxy::start_on(addr, &cache, origin)
    }

    pub fn url(&self, target: &str) -> String {
        format!("http://{}{target}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An origin, a proxy in front of it on a new cache file, and a client.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub origin: Origin,
    pub proxy: Option<Proxy>,
    pub client: Client,
}

impl Bench {
    pub fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let origin = Origin::start("127.0.0.1:0").unwrap();
        let proxy = Proxy::start(&dir.path().join("proxy.dcache"), origin.addr());
        Bench {
            dir,
            origin,
            proxy: Some(proxy),
            client: client(),
        }
    }

    pub fn proxy(&self) -> &Proxy {
        self.proxy.as_ref().unwrap()
    }

    pub fn restart(&mut self, kill: bool) {
        let proxy = self.proxy.take().unwrap();
        self.proxy = Some(proxy.restart(kill));
    }

    /// GET (or `method`) `target` through the proxy with `headers`.
    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Fetched {
        fetch(&self.client, self.proxy(), method, target, headers)
    }

    pub fn get(&self, target: &str) -> Fetched {
        self.request("GET", target, &[])
    }
}

pub fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A response read whole.
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    pub cache_status: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Checks the body byte for byte against what the origin sent for `target` at the
    /// generation the response's headers name (a range against that range of it), and
    /// returns that generation.
    pub fn check(&self, target: &str) -> u64 {
        let gen: u64 = self
            .header("x-origin-gen")
            .unwrap_or_else(|| panic!("{target}: no x-origin-gen in {:?}", self.headers))
            .parse()
            .unwrap();
        let size = size_of(target);
        let full = body_for(target, gen, size);
        let expected = match self.status {
            StatusCode::OK => &full[..],
            StatusCode::PARTIAL_CONTENT => {
                let range = self
                    .header("content-range")
                    .expect("a 206 without Content-Range");
                let (first, last, total) = parse_content_range(range);
                assert_eq!(total, size as u64, "{target}: Content-Range {range}");
                &full[first as usize..=last as usize]
            }
            other => panic!("{target}: status {other}"),
        };
        assert_eq!(
            self.body.len(),
            expected.len(),
            "{target}: body length (gen {gen})"
        );
        if self.body != expected {
            let at = self
                .body
                .iter()
                .zip(expected)
                .position(|(a, b)| a != b)
                .unwrap();
            panic!(
                "{target}: WRONG BYTES from offset {at} (gen {gen}, {})",
                self.cache_status
            );
        }
        gen
    }
}

pub fn parse_content_range(value: &str) -> (u64, u64, u64) {
    let rest = value.strip_prefix("bytes ").expect("bytes unit");
    let (span, total) = rest.split_once('/').unwrap();
    let (first, last) = span.split_once('-').unwrap();
    (
        first.parse().unwrap(),
        last.parse().unwrap(),
        total.parse().unwrap(),
    )
}

pub fn fetch(
    client: &Client,
    proxy: &Proxy,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Fetched {
    try_fetch(client, proxy, method, target, headers)
        .unwrap_or_else(|e| panic!("{method} {target}: {e}\n{}", proxy.log_text()))
}

pub fn try_fetch(
    client: &Client,
    proxy: &Proxy,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> reqwest::Result<Fetched> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, proxy.url(target));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response: Response = request.send()?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes()?.to_vec();
    let cache_status = headers
        .get(dcache_pingora::CACHE_STATUS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok(Fetched {
        status,
        cache_status,
        headers,
        body,
    })
}
