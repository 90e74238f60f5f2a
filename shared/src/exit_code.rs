//! Exit codes that mean the same in both binaries.

/// Exit code of both binaries for a command line that cannot be carried out as written (an
/// unknown option, a missing or unknown agent name): `EX_USAGE` of BSD's sysexits.h, clear of
/// the codes that mean something else (`status`'s 0-3 for monitoring, the launcher's 2 for a
/// bad config, `ctl`'s 3 for no launcher). The whole table is in docs/operations.md.
pub const EXIT_USAGE: u8 = 64;
