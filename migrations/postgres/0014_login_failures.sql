-- Failed-login counters (as in the SQLite migration 0014).
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);
