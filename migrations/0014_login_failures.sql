-- Failed-login counters (src/auth/limiter.rs): in the database so that every
-- node counts the same failures and a restart forgets none. `key` names what
-- is counted (an account from one address, an address, an account);
-- `window_start` (ms) is when its count began. Expired rows are pruned.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);
