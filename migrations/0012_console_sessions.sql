-- Web console logins (src/console): kept in the database so any node serves
-- any session. Stored under the SHA-256 of the cookie value, never the value.
CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
