-- Access control: users and robot accounts, and the grants that bind them
-- to repository globs with a role.

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('user', 'robot')),
    -- users: an argon2 PHC string; robots: sha256 hex of the token.
    secret_hash TEXT NOT NULL,
    admin       INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER,
    created_at  INTEGER NOT NULL
);

CREATE TABLE grants (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    repository_glob TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('reader', 'developer', 'releaser', 'auditor', 'admin')),
    -- releaser: JSON array of the stages it may promote into and roll back.
    stages          TEXT NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL
);
CREATE INDEX grants_by_account ON grants(account_id);
