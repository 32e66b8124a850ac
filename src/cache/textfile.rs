//! The metrics textfile: a thread that writes the cache's Prometheus text to a file every
//! few seconds, for a process that serves no HTTP (node_exporter's textfile collector reads
//! such files). Each write goes to a temporary file beside it, which is then renamed over
//! it, so that a reader sees a whole snapshot or the one before, never a part.

use super::engine::Engine;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The writer thread of a cache's metrics textfile; the cache owns it.
pub(crate) struct MetricsTextfile {
    /// Dropping it (or sending) ends the thread after one last write.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsTextfile {
    /// Writes the text once now (so that a bad path fails the open), then starts the thread.
    pub fn start(engine: Arc<Engine>, path: &Path, interval: Duration) -> Result<MetricsTextfile> {
        let path = path.to_path_buf();
        write_atomically(&path, &engine.stats().to_prometheus())?;
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name("dcache-metrics".into())
            .spawn(move || {
                let mut failing = false;
                loop {
                    let last = !matches!(
                        stopped.recv_timeout(interval),
                        Err(RecvTimeoutError::Timeout)
                    );
                    match write_atomically(&path, &engine.stats().to_prometheus()) {
                        Ok(()) => failing = false,
                        // Once per run of failures: the file system may come back.
                        Err(e) if !failing => {
                            failing = true;
                            crate::log::warn(&format!("the metrics textfile: {e}"));
                        }
                        Err(_) => {}
                    }
                    if last {
                        return;
                    }
                }
            })
            .map_err(|e| Error::os("starting the metrics textfile thread", e))?;
        Ok(MetricsTextfile {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Writes the file one last time and ends the thread.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsTextfile {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `text` into `path`, by a temporary file in the same directory renamed over it. The
/// temporary's name does not end in `.prom`, so the textfile collector never reads it.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::os(format!("writing {}", path.display()), e)
    })
}
