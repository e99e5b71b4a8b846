-- Signed promotions: the signature gate's verdict on a release (as in the
-- SQLite migration 0008).
CREATE TABLE release_verdicts (
    repository_id BIGINT NOT NULL REFERENCES repositories(id),
    stage         TEXT NOT NULL,
    sequence      BIGINT NOT NULL,
    verdict       TEXT NOT NULL,
    PRIMARY KEY (repository_id, stage, sequence)
);
