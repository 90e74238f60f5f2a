-- Schema version 5: an agent's processes that left its process group (setsid, setpgid), as the
-- launcher last saw them, with their start times so that a reused PID is never mistaken for
-- one. A launcher that dies without stopping leaves its session open; the next one reads these
-- rows and stops the processes (see docs/operations.md). Rows go when their session ends.
CREATE TABLE agent_escapees (
    session_id  INTEGER NOT NULL,
    agent       TEXT    NOT NULL,
    pid         INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,   -- /proc/PID/stat field 22
    PRIMARY KEY (session_id, agent, pid)
) STRICT, WITHOUT ROWID;
