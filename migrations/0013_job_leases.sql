-- Scheduled jobs run on one node at a time (issues 13.3, 15.4): a node runs
-- GC, retention, a backup or the webhook dispatcher only while it holds the
-- job's lease. A lease whose holder died expires on its own (`expires_at`,
-- Unix ms); its holder renews it while a long run goes on. Transient: `wharf
-- db migrate` does not copy it.
CREATE TABLE job_leases (
    job        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    taken_at   INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
