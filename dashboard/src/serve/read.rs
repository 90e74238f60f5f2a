//! The exporter's reads: a pool of read-only [`Reader`]s, so concurrent requests each read on
//! their own connection instead of queueing on one, and the event counters kept between scrapes.

use agentvisor_shared::model::{Severity, Snapshot};
use agentvisor_shared::reader::Detail;
use agentvisor_shared::runs::SpendWindows;
use agentvisor_shared::{Reader, StoreError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a request waits for a free reader (all busy) or for a database to open.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens [`Reader`]s for r2d2. Each reader is one read-only connection (plus the one
/// `data_version` keeps): a [`Reader`] serves one thread at a time, so the pool hands whole
/// readers out, one per request in flight.
struct Readers {
    path: PathBuf,
}

/// A pooled reader and the inode of the file it opened: a launcher that starts on a removed
/// (or moved) database makes a new file, which the old reader would never see.
pub struct Pooled {
    reader: Reader,
    inode: Option<u64>,
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

impl r2d2::ManageConnection for Readers {
    type Connection = Pooled;
    type Error = StoreError;

    fn connect(&self) -> Result<Pooled, StoreError> {
        let inode = inode(&self.path);
        Ok(Pooled { reader: Reader::open_with_pool_size(&self.path, 1)?, inode })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), StoreError> {
        conn.reader.data_version().map(|_| ())
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        inode(&self.path) != conn.inode
    }
}

/// What one scrape read.
pub struct Read {
    pub snapshot: Snapshot,
    /// Events counted per severity, in [`Severity::ALL`] order.
    pub events: [u64; 4],
    /// Time spent reading, for `agentvisor_exporter_read_duration_seconds`.
    pub took: Duration,
}

/// Events counted so far: every event present at the first scrape, then each new one once.
/// Counting only ids above the last seen keeps a scrape cheap on a table of a million events,
/// and the counters monotonic while retention deletes old rows.
#[derive(Default)]
struct Tally {
    after_id: i64,
    counts: [u64; 4],
}

pub struct Source {
    path: PathBuf,
    pool: r2d2::Pool<Readers>,
    tally: Mutex<Tally>,
}

impl Source {
    pub fn new(path: &Path, readers: u32) -> Source {
        let pool = r2d2::Pool::builder()
            .max_size(readers.max(1))
            .min_idle(Some(0))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            // The database may not exist yet when the exporter starts: it is opened on demand.
            .build_unchecked(Readers { path: path.to_owned() });
        Source { path: path.to_owned(), pool, tally: Mutex::default() }
    }

    /// Reads a snapshot whose agents carry `detail` and brings the event counters up to date.
    /// Blocking: call it off the async runtime's threads.
    pub fn read(&self, detail: Detail) -> Result<Read, String> {
        let started = Instant::now();
        // Said at once rather than after r2d2's retries until the checkout timeout.
        if !self.path.exists() {
            return Err(StoreError::NotFound { path: self.path.clone() }.to_string());
        }
        let pooled = self.pool.get().map_err(|e| e.to_string())?;
        let snapshot = pooled.reader.snapshot_with(detail).map_err(|e| e.to_string())?;
        let events = self.count_events(&pooled.reader).map_err(|e| e.to_string())?;
        Ok(Read { snapshot, events, took: started.elapsed() })
    }

    /// Tokens and cost today (from `day_start_ms`) and in the last hour, as `status` reads them.
    pub fn spend(&self, day_start_ms: i64, now_ms: i64) -> Result<SpendWindows, String> {
        let pooled = self.pool.get().map_err(|e| e.to_string())?;
        pooled.reader.spend(day_start_ms, now_ms).map_err(|e| e.to_string())
    }

    fn count_events(&self, reader: &Reader) -> agentvisor_shared::Result<[u64; 4]> {
        // Held while reading, so that two concurrent scrapes cannot count the same rows twice.
        let mut tally = self.tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mut counts, mut max_id) = reader.event_counts_after(tally.after_id)?;
        if max_id < tally.after_id {
            // Fewer ids than before: a new database, whose events are counted from scratch (a
            // counter reset, which Prometheus' rate() and increase() understand).
            *tally = Tally::default();
            (counts, max_id) = reader.event_counts_after(0)?;
        }
        add(&mut tally, &counts, max_id);
        Ok(tally.counts)
    }
}

fn add(tally: &mut Tally, counts: &[(Severity, i64)], max_id: i64) {
    for (severity, n) in counts {
        if let Some(i) = Severity::ALL.iter().position(|s| s == severity) {
            tally.counts[i] += u64::try_from(*n).unwrap_or(0);
        }
    }
    tally.after_id = max_id;
}
