-- Schema version 2: rollups. Raw samples older than the raw retention are folded into
-- one-minute rollups, those into one-hour rollups, and those are dropped at the end of theirs.
-- Each sample lives in exactly one place, so summing sum and count over raw rows and rollups
-- of a time range gives exact means.
CREATE TABLE metric_rollups (
    series_id INTEGER NOT NULL REFERENCES metric_series(id) ON DELETE CASCADE,
    step_ms   INTEGER NOT NULL,   -- 60000 or 3600000
    ts_ms     INTEGER NOT NULL,   -- start of the step
    min       REAL    NOT NULL,
    max       REAL    NOT NULL,
    sum       REAL    NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (series_id, step_ms, ts_ms)
) STRICT, WITHOUT ROWID;
