//! The Agentvisor shared-state store: one SQLite file in WAL mode, written only by the
//! launcher (through the `writer` module) and read by any number of dashboards (through
//! [`reader`]).
//!
//! This is the only crate that speaks SQL. The schema is documented in `docs/schema.md`.
//! Everything that writes (the writer, its checkpointer, retention, schema migrations) is
//! behind the `writer` feature, which only the launcher and tools that build databases
//! enable: a dashboard built without it has no code that could change the file.

#[cfg(feature = "writer")]
mod checkpointer;
pub mod completion;
#[cfg(feature = "writer")]
mod db_files;
pub mod error;
pub mod exit_code;
pub mod filesystem;
pub mod model;
pub mod paths;
pub mod probes;
pub mod reader;
#[cfg(feature = "writer")]
pub mod retention;
mod rows;
pub mod runs;
pub mod schema;
pub mod status_table;
pub mod tasks;
pub mod time;
#[cfg(feature = "writer")]
pub mod writer;

pub use error::{Result, StoreError};
pub use reader::{EventFilter, LogFilter, Reader};
#[cfg(feature = "writer")]
pub use retention::RetentionConfig;
pub use schema::SCHEMA_VERSION;
#[cfg(feature = "writer")]
pub use writer::{
    FlushError, NewEvent, NewLogLine, NewRun, NewSession, RunEnd, Sample, Store, WriteOp, WriterConfig,
    WriterHandle,
};
#[cfg(feature = "writer")]
pub use writer::{NewTask, TaskEnd};
