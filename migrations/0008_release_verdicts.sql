-- Signed promotions: the signature gate's verdict on a release (who signed
-- the digest, with which key, verified when), kept next to the release.
-- Append-only like `releases`: a rollback writes the restored verdict again
-- for its own release instead of re-verifying.
CREATE TABLE release_verdicts (
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    stage         TEXT NOT NULL,
    sequence      INTEGER NOT NULL,
    -- JSON: verified_at, signers [{key, fingerprint, algorithm, subject, signature_manifest}], sboms, reused_from_sequence.
    verdict       TEXT NOT NULL,
    PRIMARY KEY (repository_id, stage, sequence)
) WITHOUT ROWID;
