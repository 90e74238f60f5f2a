-- Schema version 1. Times are integer milliseconds since the Unix epoch (UTC):
-- in sqlite3, datetime(ts_ms / 1000, 'unixepoch') shows them.

-- One row per launcher run. stopped_ms and exit_reason stay NULL while it runs;
-- last_seen_ms is refreshed every second, so a stale value means the launcher is gone.
CREATE TABLE launcher_sessions (
    id           INTEGER PRIMARY KEY,
    pid          INTEGER NOT NULL,
    host         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    config_path  TEXT,
    started_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    stopped_ms   INTEGER,
    exit_reason  TEXT,
    status       TEXT
) STRICT;

-- The agent registry: what the config says, environment values redacted.
CREATE TABLE agents (
    name                 TEXT    PRIMARY KEY,
    description          TEXT    NOT NULL DEFAULT '',
    kind                 TEXT    NOT NULL DEFAULT 'process',
    command              TEXT    NOT NULL,              -- JSON array: program and arguments
    capabilities         TEXT    NOT NULL DEFAULT '[]', -- JSON array of strings
    config               TEXT    NOT NULL DEFAULT '{}', -- JSON: the agent's config table
    enabled              INTEGER NOT NULL DEFAULT 1,
    desired_state        TEXT    NOT NULL DEFAULT 'running'
                         CHECK (desired_state IN ('running', 'stopped', 'removed')),
    heartbeat_timeout_ms INTEGER,                       -- NULL: not expected to heartbeat
    position             INTEGER NOT NULL DEFAULT 0,    -- place in the start plan
    updated_ms           INTEGER NOT NULL
) STRICT;

-- Current state of each agent, kept up to date by the launcher.
CREATE TABLE agent_state (
    agent             TEXT    PRIMARY KEY REFERENCES agents(name) ON DELETE CASCADE,
    session_id        INTEGER REFERENCES launcher_sessions(id),
    state             TEXT    NOT NULL
                      CHECK (state IN ('starting', 'running', 'stopping', 'stopped', 'exited', 'backoff', 'fatal')),
    health            TEXT    NOT NULL CHECK (health IN ('healthy', 'unhealthy', 'unknown')),
    ready             INTEGER NOT NULL DEFAULT 0,
    pid               INTEGER,
    pgid              INTEGER,
    pid_start_ticks   INTEGER,
    started_ms        INTEGER,
    exited_ms         INTEGER,
    exit_code         INTEGER,
    exit_signal       INTEGER,
    restarts          INTEGER NOT NULL DEFAULT 0,
    last_heartbeat_ms INTEGER,
    heartbeats        INTEGER NOT NULL DEFAULT 0,
    status_text       TEXT,
    task              TEXT,
    model             TEXT,
    tokens_in         INTEGER,
    tokens_out        INTEGER,
    cost              REAL,
    last_error        TEXT,
    notify_errors     INTEGER NOT NULL DEFAULT 0,
    updated_ms        INTEGER NOT NULL
) STRICT;

-- One row per (scope, metric). scope is an agent name, '@host' or '@launcher'.
-- last_ms/last_value hold the newest sample so "current values" need no scan.
CREATE TABLE metric_series (
    id         INTEGER PRIMARY KEY,
    scope      TEXT    NOT NULL,
    metric     TEXT    NOT NULL,
    last_ms    INTEGER,
    last_value REAL,
    UNIQUE (scope, metric)
) STRICT;

-- Raw samples. The primary key serves "series of metric M of agent A since T".
CREATE TABLE metric_samples (
    series_id INTEGER NOT NULL REFERENCES metric_series(id) ON DELETE CASCADE,
    ts_ms     INTEGER NOT NULL,
    value     REAL    NOT NULL,
    PRIMARY KEY (series_id, ts_ms)
) STRICT, WITHOUT ROWID;

-- The samples with readable names: SELECT * FROM metrics WHERE agent = 'worker'.
CREATE VIEW metrics AS
    SELECT s.scope AS agent, s.metric, m.ts_ms, m.value
    FROM metric_samples m JOIN metric_series s ON s.id = m.series_id;

-- Every state change and notable fact. agent is NULL for the launcher's own events.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    ts_ms      INTEGER NOT NULL,
    session_id INTEGER,
    agent      TEXT,
    kind       TEXT    NOT NULL,
    severity   TEXT    NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    message    TEXT    NOT NULL
) STRICT;
CREATE INDEX events_by_agent ON events(agent, id);
CREATE INDEX events_by_time ON events(ts_ms);
CREATE INDEX events_by_severity ON events(severity, id);

-- Captured stdout/stderr, a bounded ring per agent (newest lines kept).
CREATE TABLE log_lines (
    id     INTEGER PRIMARY KEY,
    agent  TEXT    NOT NULL,
    stream TEXT    NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    ts_ms  INTEGER NOT NULL,
    line   TEXT    NOT NULL
) STRICT;
CREATE INDEX log_lines_by_agent ON log_lines(agent, id);
