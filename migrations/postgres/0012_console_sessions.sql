-- Web console logins (as in the SQLite migration 0012).
CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
