-- Schema version 4: raw samples clustered by ten-second block, then series. Keyed by minute
-- first (version 3), each commit's samples went between the rows that the same minute already
-- held for each series, so every commit rewrote every page of the current minute: late in a
-- minute, thousands of pages per commit with a thousand agents. Keyed by ten-second block,
-- a commit writes into the newest block or two, a few hundred pages at most. "Metric M of
-- agent A since T" is one index range per block; retention still folds whole minutes (six
-- blocks) from the front of the table.
CREATE TABLE metric_samples_v4 (
    block     INTEGER NOT NULL,   -- ts_ms / 10000
    series_id INTEGER NOT NULL,
    ts_ms     INTEGER NOT NULL,
    value     REAL    NOT NULL,
    PRIMARY KEY (block, series_id, ts_ms)
) STRICT, WITHOUT ROWID;

INSERT INTO metric_samples_v4 (block, series_id, ts_ms, value)
    SELECT ts_ms / 10000, series_id, ts_ms, value FROM metric_samples ORDER BY ts_ms / 10000, series_id, ts_ms;

DROP VIEW metrics;
DROP TABLE metric_samples;
ALTER TABLE metric_samples_v4 RENAME TO metric_samples;

-- The samples with readable names: SELECT * FROM metrics WHERE agent = 'worker'.
CREATE VIEW metrics AS
    SELECT s.scope AS agent, s.metric, m.ts_ms, m.value
    FROM metric_samples m JOIN metric_series s ON s.id = m.series_id;
