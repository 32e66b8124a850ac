//! `dcache`: look inside and use a cache file or device from a shell, and judge the cache on
//! a trace of requests.

mod replay;
mod trace;

use clap::{Parser, Subcommand, ValueEnum};
use dcache::IoMode;
use dcache::{Admission, Cache, CacheOptions, Fetched};
use dcache::{Error, ErrorKind, Remedy};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "dcache",
    version,
    about = "Inspect, check and use a dcache file or block device"
)]
struct Cli {
    /// I/O mode: auto (O_DIRECT where possible), direct (required) or buffered.
    #[arg(long, value_enum, default_value_t = Mode::Auto, global = true)]
    io_mode: Mode,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum AdmissionArg {
    All,
    Filtered,
}

impl From<AdmissionArg> for Admission {
    fn from(a: AdmissionArg) -> Admission {
        match a {
            AdmissionArg::All => Admission::All,
            AdmissionArg::Filtered => Admission::Filtered,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Auto,
    Direct,
    Buffered,
}

#[derive(Subcommand)]
enum Command {
    /// Format version, geometry, I/O mode, entries, fill, and how the last user closed it.
    Info { path: PathBuf },
    /// The cache's metrics as Prometheus text (the default) or JSON. While a process holds
    /// the cache (its lock refuses a second open), what that process last wrote to its
    /// metrics textfile (--textfile); otherwise the cache is opened read-only and its sizes
    /// and the recovery of that open are printed (its counters start at 0 with the open).
    Stats {
        path: PathBuf,
        /// Prometheus text exposition format (the default).
        #[arg(long, conflicts_with = "json")]
        prometheus: bool,
        /// JSON with the fields of the C dcache_stats.
        #[arg(long)]
        json: bool,
        /// The metrics textfile the process holding the cache writes (its
        /// metrics_textfile option): read when the cache is in use.
        #[arg(long)]
        textfile: Option<PathBuf>,
    },
    /// Verify every entry's checksums; exits 1 if any entry is damaged.
    Check { path: PathBuf },
    /// Write the value stored under KEY to stdout; exits 3 if it is not there.
    Get { path: PathBuf, key: String },
    /// Store stdin under KEY.
    Put {
        path: PathBuf,
        key: String,
        /// Lifetime in seconds (0 = the cache's default).
        #[arg(long, default_value_t = 0)]
        ttl: u64,
    },
    /// Delete KEY; exits 3 if it was not there.
    Delete { path: PathBuf, key: String },
    /// Create a cache. Refuses a path holding other data unless --force.
    Format {
        path: PathBuf,
        /// Bytes, with an optional K, M, G or T suffix (powers of 1024). Default: the device's size.
        #[arg(long, value_parser = parse_size)]
        capacity: Option<u64>,
        /// Destroy whatever the path holds, a cache included.
        #[arg(long)]
        force: bool,
        /// Alignment in bytes (a power of two of at least 512); default: ask the device.
        #[arg(long)]
        alignment: Option<usize>,
    },
    /// Play a trace of requests through a new cache of --capacity bytes: a get per request,
    /// a put on a miss; prints the miss ratios and the bytes written to the device.
    Replay {
        /// libCacheSim's oracleGeneral binary trace, or a `time,id,size` CSV (`.csv`).
        trace: PathBuf,
        /// The cache's size in bytes, with an optional K, M, G or T suffix.
        #[arg(long, value_parser = parse_size)]
        capacity: u64,
        /// The trace's format; default: from its extension.
        #[arg(long, value_enum)]
        format: Option<trace::TraceFormat>,
        /// Where the cache file goes (it must not exist; it is removed at the end).
        /// Default: a new file in the current directory.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// all: store every miss; filtered: the cache may decline a put (a key is stored
        /// the second time it misses; see the README's "Admission").
        #[arg(long, value_enum, default_value_t = AdmissionArg::All)]
        admission: AdmissionArg,
        /// Bytes per second the cache may write (with --admission filtered), with an
        /// optional K, M, G or T suffix; 0 = no limit.
        #[arg(long, value_parser = parse_size, default_value = "0")]
        write_budget: u64,
        /// Requests per second: the replay is paced to this rate (0 = as fast as it goes),
        /// so that a write budget acts against wall-clock time as in production.
        #[arg(long, default_value_t = 0)]
        rate: u64,
    },
    /// Write a synthetic trace of one of the shapes the cache policy is judged on.
    GenTrace {
        #[arg(value_enum)]
        shape: trace::Shape,
        /// Where the trace goes.
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value_t = 400_000)]
        requests: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The format to write: oracleGeneral (with next-access times) or CSV.
        #[arg(long, value_enum, default_value_t = trace::TraceFormat::Oracle)]
        format: trace::TraceFormat,
        /// Print the trace's summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, shift) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 10),
        Some('M') => (&s[..s.len() - 1], 20),
        Some('G') => (&s[..s.len() - 1], 30),
        Some('T') => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("not a size: {s}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("too large: {s}"))
}

fn io_mode(m: Mode) -> IoMode {
    match m {
        Mode::Auto => IoMode::Auto,
        Mode::Direct => IoMode::Direct,
        Mode::Buffered => IoMode::Buffered,
    }
}

fn open(path: &Path, mode: Mode, read_only: bool) -> Result<Cache, Error> {
    let opts = CacheOptions::new()
        .io_mode(io_mode(mode))
        .read_only(read_only);
    Cache::open(path, &opts)
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

fn stats(path: &Path, mode: Mode, json: bool, textfile: Option<&Path>) -> Result<ExitCode, Error> {
    let c = match open(path, mode, true) {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::Locked => {
            return stats_of_running(path, json, textfile, e)
        }
        Err(e) => return Err(e),
    };
    let s = c.stats();
    print!("{}", if json { s.to_json() } else { s.to_prometheus() });
    Ok(ExitCode::SUCCESS)
}

/// `dcache stats` of a cache another process holds: the textfile it writes.
fn stats_of_running(
    path: &Path,
    json: bool,
    textfile: Option<&Path>,
    locked: Error,
) -> Result<ExitCode, Error> {
    let Some(textfile) = textfile else {
        return Err(Error::new(
            ErrorKind::Locked,
            format!(
                "{locked}; a process holds {}: pass --textfile FILE, the metrics textfile it \
                 writes (its metrics_textfile option), to see its metrics",
                path.display()
            ),
        ));
    };
    if json {
        return Err(Error::invalid(
            "a running process's metrics textfile holds Prometheus text: use --prometheus",
        ));
    }
    let read = |e| Error::os(format!("reading {}", textfile.display()), e);
    let text = std::fs::read_to_string(textfile).map_err(read)?;
    let age = std::fs::metadata(textfile)
        .and_then(|m| m.modified())
        .map_err(read)?
        .elapsed()
        .unwrap_or_default();
    eprintln!(
        "{} is in use by another process; its metrics as written to {} {:.1} s ago",
        path.display(),
        textfile.display(),
        age.as_secs_f64()
    );
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn info(path: &Path, mode: Mode) -> Result<ExitCode, Error> {
    let c = open(path, mode, true)?;
    let g = c.layout();
    let s = c.stats();
    let r = c.recovery();
    println!("path:            {}", path.display());
    println!("format version:  {}", g.format_version);
    println!(
        "capacity:        {} ({} bytes)",
        human(g.capacity),
        g.capacity
    );
    println!("alignment:       {} bytes (unit {})", g.alignment, g.unit);
    println!(
        "regions:         {} x {}",
        g.region_count,
        human(g.region_size)
    );
    println!(
        "I/O mode:        {}",
        if c.is_direct_io() {
            "direct (O_DIRECT)"
        } else {
            "buffered (page cache)"
        }
    );
    println!("entries:         {}", s.entries);
    println!(
        "fill:            {} of {} ({:.1}%)",
        human(s.used_bytes),
        human(s.capacity),
        100.0 * s.used_bytes as f64 / s.capacity as f64
    );
    println!("max value size:  {}", human(c.max_value_size()));
    println!(
        "eviction:        new entries on probation; those read there move to the main ring, \
         which writes again what was read"
    );
    println!(
        "promoted:        {} entries, {} (counted since this open)",
        s.promoted,
        human(s.promoted_bytes)
    );
    println!(
        "reinserted:      {} entries, {} (counted since this open)",
        s.reinserted,
        human(s.reinserted_bytes)
    );
    println!(
        "ghost:           {} hits, {} of memory",
        s.ghost_hits,
        human(s.ghost_bytes)
    );
    if r.regions_lost > 0 {
        println!(
            "lost at open:    {} regions could not be read (I/O errors)",
            r.regions_lost
        );
    }
    println!(
        "last shutdown:   {}",
        if r.was_clean {
            "clean"
        } else {
            "dirty (crash or still open): index rebuilt from the log"
        }
    );
    println!(
        "recovery:        {} entries from {} read in {:.1} ms ({} regions read entry by entry, {} torn entries dropped)",
        r.entries,
        human(r.bytes_read),
        r.micros as f64 / 1000.0,
        r.regions_scanned,
        r.entries_dropped
    );
    Ok(ExitCode::SUCCESS)
}

fn check(path: &Path, mode: Mode) -> Result<ExitCode, Error> {
    let c = open(path, mode, true)?;
    let bar = ProgressBar::new(c.stats().entries);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} entries {elapsed} (eta {eta})").unwrap(),
    );
    let report = c.verify_all(|done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    let dropped = c.recovery().entries_dropped;
    println!(
        "{} entries, {} verified; {} damaged; {} torn entries dropped at open",
        report.entries,
        human(report.bytes),
        report.damaged,
        dropped
    );
    Ok(if report.damaged == 0 && dropped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_replay(
    trace: &Path,
    limits: replay::Limits,
    format: Option<trace::TraceFormat>,
    cache: Option<PathBuf>,
    json: bool,
    mode: Mode,
) -> Result<ExitCode, Error> {
    let cache = cache
        .unwrap_or_else(|| PathBuf::from(format!("dcache-replay-{}.dcache", std::process::id())));
    let report = replay::replay(&replay::ReplayOptions {
        trace,
        format: format.unwrap_or_else(|| trace::TraceFormat::of_path(trace)),
        cache: &cache,
        limits,
        io_mode: io_mode(mode),
        progress: !json,
    })?;
    if json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.to_text());
    }
    Ok(if report.wrong_values == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn run_gen_trace(
    shape: trace::Shape,
    output: &Path,
    requests: u64,
    seed: u64,
    format: trace::TraceFormat,
    json: bool,
) -> Result<ExitCode, Error> {
    let trace = trace::generate(shape, requests, seed);
    trace::write_trace(output, format, &trace)
        .map_err(|e| Error::os(format!("writing {}", output.display()), e))?;
    let s = trace::summarize(&trace);
    if json {
        println!(
            "{{\"requests\": {}, \"objects\": {}, \"footprint_bytes\": {}, \"requested_bytes\": {}}}",
            s.requests, s.objects, s.footprint_bytes, s.requested_bytes
        );
    } else {
        println!(
            "{}: {} requests for {} objects, footprint {}, {} requested",
            output.display(),
            s.requests,
            s.objects,
            human(s.footprint_bytes),
            human(s.requested_bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    let mode = cli.io_mode;
    match cli.command {
        Command::Replay {
            trace,
            capacity,
            format,
            cache,
            json,
            admission,
            write_budget,
            rate,
        } => run_replay(
            &trace,
            replay::Limits {
                capacity,
                admission: admission.into(),
                write_budget,
                rate,
            },
            format,
            cache,
            json,
            mode,
        ),
        Command::GenTrace {
            shape,
            output,
            requests,
            seed,
            format,
            json,
        } => run_gen_trace(shape, &output, requests, seed, format, json),
        Command::Info { path } => info(&path, mode),
        Command::Stats {
            path,
            prometheus: _,
            json,
            textfile,
        } => stats(&path, mode, json, textfile.as_deref()),
        Command::Check { path } => check(&path, mode),
        Command::Get { path, key } => {
            let c = open(&path, mode, true)?;
            let size = c.value_size(key.as_bytes())?;
            let mut buf = vec![0u8; size as usize];
            match c.get(key.as_bytes(), &mut buf)? {
                Fetched::Copied(n) => std::io::stdout()
                    .write_all(&buf[..n])
                    .map_err(|e| Error::os("writing stdout", e))?,
                Fetched::TooSmall(_) => {
                    return Err(Error::new(
                        ErrorKind::Io,
                        "the value changed while it was read",
                    ))
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Put { path, key, ttl } => {
            let c = open(&path, mode, false)?;
            let mut value = Vec::new();
            std::io::stdin()
                .read_to_end(&mut value)
                .map_err(|e| Error::os("reading stdin", e))?;
            c.put(key.as_bytes(), &value, ttl)?;
            c.close()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Delete { path, key } => {
            let c = open(&path, mode, false)?;
            c.delete(key.as_bytes())?;
            c.close()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Format {
            path,
            capacity,
            force,
            alignment,
        } => {
            let mut opts = CacheOptions::new()
                .io_mode(io_mode(mode))
                .create(!force)
                .format(force)
                .capacity(capacity.unwrap_or(0));
            if let Some(bytes) = alignment {
                opts = opts.alignment(bytes);
            }
            let c = Cache::open(&path, &opts)?;
            if !c.recovery().formatted {
                eprintln!(
                    "{} already holds a dcache; it was left as it is (--force reformats it)",
                    path.display()
                );
                return Ok(ExitCode::from(1));
            }
            let g = c.layout();
            c.close()?;
            println!(
                "formatted {}: {} in {} regions of {}",
                path.display(),
                human(g.capacity),
                g.region_count,
                human(g.region_size)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What to type for the remedy of an error.
fn remedy_text(remedy: Remedy) -> &'static str {
    match remedy {
        Remedy::Create => "`dcache format PATH --capacity SIZE` creates a cache there",
        Remedy::Format => {
            "`dcache format --force PATH` formats it as a cache, destroying what it holds"
        }
        Remedy::AllowBuffered => "`--io-mode auto` falls back to buffered I/O",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            eprintln!("dcache: not found");
            ExitCode::from(3)
        }
        Err(e) => {
            match e.remedy().map(remedy_text) {
                Some(remedy) => eprintln!("dcache: {e}\n{remedy}"),
                None => eprintln!("dcache: {e}"),
            }
            ExitCode::from(1)
        }
    }
}
