-- Image diff, continued.
--
-- Indexes stored before this migration lack the parsed package databases
-- (`/var/lib/dpkg/status`, `/lib/apk/db/installed`) a package diff reads;
-- they are dropped and recomputed the next time a diff needs them.
DELETE FROM layer_index;

-- The summary of each promotion's diff against the release it replaced,
-- computed in the background after the promotion commits (so a promotion
-- never waits on indexing a large layer). Apart from `releases` and the
-- audit chain, which never change after the fact. `state`: pending (being
-- computed), ready (`summary` is the JSON summary) or unavailable (`reason`
-- says why: first release of the stage, a layer refused, out of time...).
CREATE TABLE release_diff (
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    stage         TEXT NOT NULL,
    sequence      INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'unavailable')),
    from_digest   TEXT,
    summary       TEXT,
    reason        TEXT,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, stage, sequence)
) WITHOUT ROWID;
CREATE INDEX release_diff_pending ON release_diff(state) WHERE state = 'pending';
