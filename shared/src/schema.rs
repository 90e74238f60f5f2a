//! The schema, as an ordered list of migrations tracked in `PRAGMA user_version`.
//! Only the writer migrates (the migrations are behind the `writer` feature); readers only
//! check the version. `docs/schema.md` documents every table for people who query the file
//! with `sqlite3`.

use crate::error::{AtPath, Result, StoreError};
use rusqlite::Connection;
use std::path::Path;

/// `PRAGMA application_id` of an Agentvisor database ("AGVS"), so that neither binary mistakes
/// somebody else's SQLite file for its own.
pub const APPLICATION_ID: i64 = 0x4147_5653;

/// Migrations, in order; migration `i` brings the schema from version `i` to `i + 1`.
#[cfg(feature = "writer")]
const MIGRATIONS: &[&str] = &[
    include_str!("schema/v1.sql"),
    include_str!("schema/v2.sql"),
    include_str!("schema/v3.sql"),
    include_str!("schema/v4.sql"),
    include_str!("schema/v5.sql"),
    include_str!("schema/v6.sql"),
    include_str!("schema/v7.sql"),
    include_str!("schema/v8.sql"),
    include_str!("schema/v9.sql"),
    include_str!("schema/v10.sql"),
];

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 10;
// A build that can migrate brings a database to exactly the version its readers expect.
#[cfg(feature = "writer")]
const _: () = assert!(MIGRATIONS.len() as i64 == SCHEMA_VERSION);

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

pub(crate) fn application_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA application_id", [], |r| r.get(0))
}

/// Refuses databases written by a newer Agentvisor or by another program. It only reads, so
/// the writer calls it before anything that writes (`journal_mode`, `auto_vacuum`, migrations):
/// somebody else's file is left exactly as it was.
pub(crate) fn check_compatible(conn: &Connection, path: &Path) -> Result<i64> {
    let version = user_version(conn).at(path)?;
    let app = application_id(conn).at(path)?;
    let foreign = |why: String| Err(StoreError::Foreign { path: path.to_owned(), why });
    if app != 0 && app != APPLICATION_ID {
        return foreign(format!("application_id {app:#x}, not Agentvisor's {APPLICATION_ID:#x}"));
    }
    if version < 0 {
        return foreign(format!("user_version {version}, which no Agentvisor schema has"));
    }
    if version > 0 && app != APPLICATION_ID {
        return foreign(format!("user_version {version} without Agentvisor's application_id"));
    }
    if version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table'", [], |r| r.get(0))
            .at(path)?;
        if tables > 0 {
            return foreign(format!("{tables} tables but no Agentvisor schema version"));
        }
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew { path: path.to_owned(), found: version, known: SCHEMA_VERSION });
    }
    Ok(version)
}

/// Brings the database to [`SCHEMA_VERSION`] in one IMMEDIATE transaction, so a crash half-way
/// leaves the old version intact and two launchers can never migrate at once.
#[cfg(feature = "writer")]
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let current = check_compatible(conn, path)?;
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).at(path)?;
    // Re-read inside the lock: another writer may have migrated between the check and here.
    let current = user_version(&tx).at(path)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).at(path)?;
        tx.pragma_update(None, "user_version", i as i64 + 1).at(path)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID).at(path)?;
    tx.commit().at(path)?;
    Ok(())
}

/// How far `metric_series.last_ms` may lag the series' newest sample: a value that does not
/// change is written again only this often.
pub const NEWEST_REFRESH_MS: i64 = 60_000;

/// The step of the one-minute rollups in `metric_rollups`.
pub const MINUTE_MS: i64 = 60_000;

/// The step of the one-hour rollups in `metric_rollups`.
pub const HOUR_MS: i64 = 3_600_000;

/// The span of one `block` of `metric_samples`; a minute is a whole number of blocks.
pub const SAMPLE_BLOCK_MS: i64 = 10_000;

/// The `block` column of a raw sample taken at `ts_ms`, which clusters `metric_samples`
/// (integer division, as SQLite's `ts_ms / 10000`).
pub fn sample_block(ts_ms: i64) -> i64 {
    ts_ms / SAMPLE_BLOCK_MS
}
