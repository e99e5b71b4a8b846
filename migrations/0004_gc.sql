-- Online garbage collection of blobs, safe while clients push.

-- An upload holds a claim on a digest while it places the blob's bytes;
-- GC never takes a claimed digest. A claim left by a crash goes stale.
CREATE TABLE blob_claims (
    claim_id   TEXT PRIMARY KEY,
    digest     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX blob_claims_by_digest ON blob_claims(digest);

-- Blobs GC has unlisted and whose bytes it is deleting. An upload of the
-- same digest waits until its row is gone; rows left by a crash are
-- finished by the next run.
CREATE TABLE gc_pending (
    digest     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
