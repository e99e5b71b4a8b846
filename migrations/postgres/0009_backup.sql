-- Backups taken while the server serves (`wharf backup create`); the same
-- tables as SQLite's 0009_backup.sql.

-- A backup under way holds a fence: while one has not expired, garbage
-- collection takes no blob, so every blob the backup's metadata snapshot
-- references stays in the store until it is copied. A fence left by a
-- backup that died expires on its own.
CREATE TABLE backup_fences (
    id         TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Backups that finished: when, where, and what they copied.
CREATE TABLE backup_runs (
    id            TEXT PRIMARY KEY,
    finished_at   BIGINT NOT NULL,
    destination   TEXT NOT NULL,
    blobs         BIGINT NOT NULL,
    bytes         BIGINT NOT NULL,
    blobs_copied  BIGINT NOT NULL,
    bytes_copied  BIGINT NOT NULL
);
CREATE INDEX backup_runs_by_time ON backup_runs(finished_at);
