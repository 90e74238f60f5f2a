-- Schema version 10: tasks the agents report. An agent says what it works on with X_TASK=text;
-- a different text ends the previous task and begins a new one, X_TASK_DONE=ok|failed or an
-- empty X_TASK ends the current one, and so does the end of its process. An agent has at most
-- one open task (outcome NULL); the next launcher marks those of a dead one 'lost'.
CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  INTEGER REFERENCES launcher_sessions(id),
    agent       TEXT    NOT NULL,
    run_id      INTEGER,            -- the run (runs.id) of the process that reported it
    text        TEXT    NOT NULL,
    ts_ms       INTEGER NOT NULL,   -- when it began
    ended_ms    INTEGER,
    outcome     TEXT
                CHECK (outcome IN ('ok', 'failed', 'ended', 'interrupted', 'lost')),
    duration_ms INTEGER,            -- ended_ms - ts_ms
    tokens_in   INTEGER,            -- reported while it ran (the growth of the running totals)
    tokens_out  INTEGER,
    cost        REAL
) STRICT;
CREATE INDEX tasks_by_agent ON tasks (agent, id);
CREATE INDEX tasks_open ON tasks (agent) WHERE outcome IS NULL;
