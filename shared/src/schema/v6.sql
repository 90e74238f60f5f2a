-- Schema version 6: run records. A run is one process start of an agent (a scheduled run, a
-- manual run, or a long-running agent's start) or one invocation of a hook, from start to end,
-- with its outcome, what it reported and the range of its captured output. A run with a NULL
-- outcome is still going; the next launcher marks those of a dead one 'lost'.
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a dashboard may hold one
    session_id   INTEGER REFERENCES launcher_sessions(id),
    agent        TEXT    NOT NULL,   -- the agent's name, or the hook's for trigger 'hook'
    trigger      TEXT    NOT NULL
                 CHECK (trigger IN ('schedule', 'catch_up', 'manual', 'hook', 'start')),
    attempt      INTEGER NOT NULL DEFAULT 0,  -- 0, then 1, 2, ... for retries of a failed run
    user         TEXT,               -- who asked for a 'manual' run
    subject      TEXT,               -- for a 'hook' run: the agent its event was about
    detail       TEXT,               -- what started it, in words (a hook's event)
    due_ms       INTEGER,            -- when it was due (scheduled and catch-up runs)
    ts_ms        INTEGER NOT NULL,   -- when it started (when it was skipped, for 'skipped')
    ended_ms     INTEGER,
    outcome      TEXT
                 CHECK (outcome IN ('succeeded', 'failed', 'timed_out', 'skipped', 'stopped', 'lost')),
    exit_code    INTEGER,
    exit_signal  INTEGER,
    duration_ms  INTEGER,            -- ended_ms - ts_ms
    pid          INTEGER,
    tokens_in    INTEGER,            -- reported during the run
    tokens_out   INTEGER,
    cost         REAL,
    log_first_id INTEGER,            -- log_lines ids of its captured output (inclusive)
    log_last_id  INTEGER,
    message      TEXT                -- why it ended so, or why it was skipped
) STRICT;
CREATE INDEX runs_by_agent ON runs (agent, id);
CREATE INDEX runs_open ON runs (id) WHERE outcome IS NULL;

-- When a scheduled agent's next run is due; NULL for an agent without a schedule or with its
-- schedule paused.
ALTER TABLE agent_state ADD COLUMN next_run_ms INTEGER;

-- A scheduled agent between runs is in a state of its own, 'scheduled'. SQLite cannot alter a
-- CHECK constraint; a change that only admits more values leaves every stored row valid, so the
-- table's definition is edited in place, as SQLite documents for such changes ("Making Other
-- Kinds Of Table Schema Changes"), rather than copied to a new table. It comes after the ALTER
-- above, which works from the stored text's old length; RESET reloads the schema at once.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, '''backoff'', ''fatal'')', '''backoff'', ''fatal'', ''scheduled'')')
 WHERE type = 'table' AND name = 'agent_state';
PRAGMA writable_schema = RESET;
