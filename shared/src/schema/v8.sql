-- Schema version 8: the `[[alert]]` rules firing now, one row per rule and agent. The launcher
-- replaces the rows whenever the set (or a value) changes, clears them when it starts and when
-- its session ends: rows only ever describe what a running launcher evaluates.
CREATE TABLE alerts (
    rule       TEXT    NOT NULL,
    agent      TEXT    NOT NULL,
    severity   TEXT    NOT NULL,   -- info, warning, error, critical
    since_ms   INTEGER NOT NULL,   -- when it began to fire
    value      REAL,               -- what the rule compared; NULL when nothing was there
    message    TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (rule, agent)
) STRICT, WITHOUT ROWID;
