-- Schema version 3: raw samples clustered by minute, then series. Keyed by series first, every
-- second's samples went to as many B-tree pages as there are series (the newest page of each),
-- and each of those pages was written to the WAL and back to the database at every commit:
-- with a thousand agents, thousands of page writes a second, growing as the table filled.
-- Keyed by minute first, a second's samples land in the current minute's pages only, and
-- retention folds and deletes whole minutes from the front of the table. "Metric M of agent A
-- since T" is one index range per minute.
--
-- No foreign key to metric_series: series are never deleted, and checking the parent of every
-- inserted sample would cost a lookup each.
CREATE TABLE metric_samples_v3 (
    minute    INTEGER NOT NULL,   -- ts_ms / 60000
    series_id INTEGER NOT NULL,
    ts_ms     INTEGER NOT NULL,
    value     REAL    NOT NULL,
    PRIMARY KEY (minute, series_id, ts_ms)
) STRICT, WITHOUT ROWID;

INSERT INTO metric_samples_v3 (minute, series_id, ts_ms, value)
    SELECT ts_ms / 60000, series_id, ts_ms, value FROM metric_samples;

DROP VIEW metrics;
DROP TABLE metric_samples;
ALTER TABLE metric_samples_v3 RENAME TO metric_samples;

-- The samples with readable names: SELECT * FROM metrics WHERE agent = 'worker'.
CREATE VIEW metrics AS
    SELECT s.scope AS agent, s.metric, m.ts_ms, m.value
    FROM metric_samples m JOIN metric_series s ON s.id = m.series_id;
