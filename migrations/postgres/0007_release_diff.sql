-- PostgreSQL twin of migrations/0007_release_diff.sql.

DELETE FROM layer_index;

CREATE TABLE release_diff (
    repository_id BIGINT NOT NULL REFERENCES repositories(id),
    stage         TEXT NOT NULL,
    sequence      BIGINT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'unavailable')),
    from_digest   TEXT,
    summary       TEXT,
    reason        TEXT,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (repository_id, stage, sequence)
);
CREATE INDEX release_diff_pending ON release_diff(state) WHERE state = 'pending';
