-- Backups taken while the server serves (`wharf backup create`).

-- A backup under way holds a fence: while one has not expired, garbage
-- collection takes no blob, so every blob the backup's metadata snapshot
-- references stays in the store until it is copied. A fence left by a
-- backup that died expires on its own.
CREATE TABLE backup_fences (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Backups that finished: when, where, and what they copied.
CREATE TABLE backup_runs (
    id            TEXT PRIMARY KEY,
    finished_at   INTEGER NOT NULL,
    destination   TEXT NOT NULL,
    blobs         INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    blobs_copied  INTEGER NOT NULL,
    bytes_copied  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX backup_runs_by_time ON backup_runs(finished_at);
