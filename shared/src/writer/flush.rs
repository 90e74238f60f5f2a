//! How a caller waiting on a flush is told how the commit went.

use crossbeam_channel::Sender;

/// Why [`WriterHandle::flush`](super::handle::WriterHandle::flush) could not confirm that what
/// was queued before it is committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    /// The writer thread has stopped.
    #[error("the store's writer has stopped")]
    WriterGone,
    /// The transaction failed; its critical operations are kept and retried.
    #[error("{0}")]
    Storage(String),
}

/// Where the writer tells a caller of
/// [`WriterHandle::flush`](super::handle::WriterHandle::flush) how the commit of what it waited
/// for went.
pub(super) type FlushReply = Sender<std::result::Result<(), FlushError>>;
