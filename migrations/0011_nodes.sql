-- Nothing node-local (issue 13): the registry-token signing keys live here,
-- so every node signs and verifies with the same keys. Several at once: the
-- newest signs, every one still listed verifies, so a rotation does not
-- invalidate tokens in flight. `kid` goes in each token's header.
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
