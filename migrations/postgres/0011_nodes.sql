-- Nothing node-local (issue 13): registry-token signing keys shared by every
-- node (as in the SQLite migration 0011).
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    secret     BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
