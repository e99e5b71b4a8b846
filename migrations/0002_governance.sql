-- Version governance: releases per stage, tag history, the audit chain.

-- Who pushed a manifest, for the separation-of-duties gate.
ALTER TABLE manifests ADD COLUMN pushed_by TEXT;

-- Append-only: the current release of a stage is its highest sequence.
CREATE TABLE releases (
    repository_id    INTEGER NOT NULL REFERENCES repositories(id),
    stage            TEXT NOT NULL,
    sequence         INTEGER NOT NULL,
    digest           TEXT NOT NULL,
    version          TEXT,
    note             TEXT,
    actor            TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    reason           TEXT NOT NULL CHECK (reason IN ('promote', 'rollback')),
    -- For a rollback: the sequence that was current before it, and the one it restores.
    rolled_back_from INTEGER,
    restored_sequence INTEGER,
    PRIMARY KEY (repository_id, stage, sequence)
) WITHOUT ROWID;
CREATE INDEX releases_by_digest ON releases(repository_id, digest);

-- Every digest a tag pointed to (digest NULL: the tag was deleted).
CREATE TABLE tag_history (
    id            INTEGER PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    tag           TEXT NOT NULL,
    digest        TEXT,
    actor         TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX tag_history_by_tag ON tag_history(repository_id, tag, id);

-- Tamper-evident log: hash = sha256(previous hash || canonical row).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    created_at  INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    source      TEXT NOT NULL,
    action      TEXT NOT NULL,
    repository  TEXT,
    reference   TEXT,
    digest      TEXT,
    details     TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_log_by_repository ON audit_log(repository, id);
CREATE INDEX audit_log_by_action ON audit_log(action, id);
