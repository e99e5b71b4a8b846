-- Scheduled jobs run on one node at a time (issues 13.3, 15.4); the same
-- table as SQLite's 0013_job_leases.sql.
CREATE TABLE job_leases (
    job        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    taken_at   BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
