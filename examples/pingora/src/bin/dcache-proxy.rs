//! A caching HTTP proxy on Pingora, with its cache on a dcache file or block device.

use clap::{Parser, ValueEnum};
use dcache::{CacheOptions, IoMode};
use dcache_pingora::{CachingProxy, DiskStorage, MetricsService, StorageOptions};
use pingora_cache::eviction::simple_lru;
use pingora_cache::MemCache;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{RunArgs, Server};
use pingora_core::services::listening::Service;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "A caching HTTP proxy on Pingora, its cache on dcache")]
struct Args {
    /// Where the proxy listens.
    #[arg(long, default_value = "127.0.0.1:6188")]
    listen: String,
    /// The origin's address.
    #[arg(long)]
    origin: SocketAddr,
    /// The cache file or block device (created if absent).
    #[arg(long, default_value = "proxy.dcache")]
    cache: PathBuf,
    /// The cache's size when it is created (K, M, G suffixes).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    capacity: u64,
    /// How the cache does I/O.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    io_mode: Mode,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Where responses are cached: dcache, or Pingora's in-memory MemCache (a reference).
    #[arg(long, value_enum, default_value_t = StorageKind::Dcache)]
    storage: StorageKind,
    /// With `--storage memory`: the bytes of bodies it keeps before evicting (K, M, G).
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    memory_limit: u64,
    /// Serve the cache's metrics in Prometheus text at http://ADDR/metrics (dcache storage).
    #[arg(long)]
    metrics: Option<String>,
    /// Also write them to this file every few seconds (node_exporter's textfile collector).
    #[arg(long)]
    metrics_textfile: Option<PathBuf>,
    /// How often the metrics textfile is written, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    metrics_interval_ms: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Auto,
    Direct,
    Buffered,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StorageKind {
    Dcache,
    Memory,
}

fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.to_ascii_uppercase().chars().last() {
        Some('K') => (&text[..text.len() - 1], 10),
        Some('M') => (&text[..text.len() - 1], 20),
        Some('G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("not a size: {text}"))?;
    n.checked_shl(shift)
        .filter(|v| v >> shift == n)
        .ok_or_else(|| format!("too large: {text}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Pingora logs through `log`: warnings and errors by default, more with RUST_LOG.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let conf = ServerConf {
        threads: args.threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut disk = None;
    let proxy = match args.storage {
        StorageKind::Dcache => {
            let io_mode = match args.io_mode {
                Mode::Auto => IoMode::Auto,
                Mode::Direct => IoMode::Direct,
                Mode::Buffered => IoMode::Buffered,
            };
            let mut options = CacheOptions::new()
                .create(true)
                .capacity(args.capacity)
                .io_mode(io_mode);
            if let Some(textfile) = &args.metrics_textfile {
                options = options
                    .metrics_textfile(textfile)
                    .metrics_interval(Duration::from_millis(args.metrics_interval_ms));
            }
            let storage = match DiskStorage::open(&args.cache, &options, StorageOptions::default())
            {
                Ok(storage) => &*Box::leak(Box::new(storage)),
                Err(e) => {
                    eprintln!("dcache-proxy: {}: {e}", args.cache.display());
                    return ExitCode::FAILURE;
                }
            };
            let cache = storage.cache();
            eprintln!(
                "dcache-proxy: cache {} ({} bytes, {})",
                args.cache.display(),
                cache.layout().capacity,
                if cache.is_direct_io() {
                    "O_DIRECT"
                } else {
                    "buffered"
                }
            );
            disk = Some(storage);
            CachingProxy::new(args.origin, storage, None, storage.max_body_size())
        }
        StorageKind::Memory => {
            let storage = Box::leak(Box::new(MemCache::new()));
            let lru = Box::leak(Box::new(simple_lru::Manager::new(
                args.memory_limit as usize,
            )));
            CachingProxy::new(args.origin, storage, Some(lru), args.memory_limit as usize)
        }
    };
    let mut service = pingora_proxy::http_proxy_service(&server.configuration, proxy);
    service.add_tcp(&args.listen);
    server.add_service(service);
    match (&args.metrics, disk) {
        (Some(addr), Some(storage)) => {
            let mut metrics =
                Service::new("dcache metrics".to_string(), MetricsService::new(storage));
            metrics.add_tcp(addr);
            server.add_service(metrics);
            eprintln!("dcache-proxy: metrics at http://{addr}/metrics");
        }
        (Some(_), None) => {
            eprintln!("dcache-proxy: --metrics needs --storage dcache");
            return ExitCode::FAILURE;
        }
        (None, _) => {}
    }
    eprintln!(
        "dcache-proxy: listening on {}, origin {}",
        args.listen, args.origin
    );
    server.run(RunArgs::default());

    if let Some(storage) = disk {
        if let Err(e) = storage.close() {
            eprintln!("dcache-proxy: closing the cache: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("dcache-proxy: cache closed");
    }
    ExitCode::SUCCESS
}
