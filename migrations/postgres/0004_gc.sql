-- PostgreSQL twin of migrations/0004_gc.sql.

CREATE TABLE blob_claims (
    claim_id   TEXT PRIMARY KEY,
    digest     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX blob_claims_by_digest ON blob_claims(digest);

CREATE TABLE gc_pending (
    digest     TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
