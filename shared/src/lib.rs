//! The Agentvisor shared-state store: one SQLite file in WAL mode, written only by the
//! launcher (through [`writer`]) and read by any number of dashboards (through [`reader`]).
//!
//! This is the only crate that speaks SQL. The schema is documented in `docs/schema.md`.

mod checkpointer;
mod db_files;
pub mod error;
pub mod filesystem;
pub mod model;
pub mod paths;
pub mod reader;
pub mod retention;
pub mod schema;
pub mod time;
pub mod writer;

pub use error::{Result, StoreError};
pub use reader::{EventFilter, Reader};
pub use retention::RetentionConfig;
pub use schema::SCHEMA_VERSION;
pub use writer::{
    FlushError, NewEvent, NewLogLine, NewSession, Sample, Store, WriteOp, WriterConfig, WriterHandle,
};
