-- Core registry metadata. The object store holds bytes only; these tables
-- say what exists. Times are unix milliseconds.

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- A blob whose bytes are in place at its content address.
CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Which repositories may serve a blob (pushed, mounted or referenced there).
CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    digest        TEXT NOT NULL REFERENCES blobs(digest),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
) WITHOUT ROWID;
CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest);

-- Manifests are kept as the exact bytes pushed, so digests are stable.
CREATE TABLE manifests (
    repository_id  INTEGER NOT NULL REFERENCES repositories(id),
    digest         TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT,
    subject_digest TEXT,
    annotations    TEXT,
    size           INTEGER NOT NULL,
    content        BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
) WITHOUT ROWID;
CREATE INDEX manifests_by_subject ON manifests(repository_id, subject_digest)
    WHERE subject_digest IS NOT NULL;

-- What a manifest points to: blobs (config, layers) and child manifests.
CREATE TABLE manifest_references (
    repository_id   INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    target_digest   TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (repository_id, manifest_digest, target_digest),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX manifest_references_by_target ON manifest_references(target_digest);

CREATE TABLE tags (
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    name          TEXT NOT NULL,
    digest        TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest)
) WITHOUT ROWID;
CREATE INDEX tags_by_digest ON tags(repository_id, digest);

-- In-progress blob uploads. The bytes live in the object store as parts;
-- the hasher state is saved here after every chunk, so any instance can
-- continue an upload after a restart.
CREATE TABLE uploads (
    id            TEXT PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    size          INTEGER NOT NULL,
    hasher_state  BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE upload_parts (
    upload_id  TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    object_key TEXT NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (upload_id, seq)
) WITHOUT ROWID;
