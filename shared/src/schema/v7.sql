-- Schema version 7: the last result of each agent's readiness and liveness probe, one row per
-- agent and probe, replaced as results come (routine commits: at most a second behind).
CREATE TABLE probes (
    agent                 TEXT    NOT NULL,
    probe                 TEXT    NOT NULL CHECK (probe IN ('readiness', 'liveness')),
    kind                  TEXT    NOT NULL,   -- exec, http or tcp
    target                TEXT    NOT NULL,   -- the command line, URL or host:port
    state                 TEXT    NOT NULL,   -- unknown, passing or failing (after the thresholds)
    last_ok               INTEGER,            -- the last result: 1 success, 0 failure, NULL none yet
    last_ms               INTEGER,            -- when the last check ended
    latency_ms            REAL,               -- how long the last check took
    consecutive_successes INTEGER NOT NULL DEFAULT 0,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    message               TEXT,               -- why the last check failed, or what it saw
    PRIMARY KEY (agent, probe)
) STRICT, WITHOUT ROWID;
