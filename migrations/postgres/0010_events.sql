-- Durable events (issue 15), as in the SQLite migration 0010: the outbox,
-- written in the same transaction as the audit row it announces, and the delivery state of each event to each
-- configured webhook endpoint, so a restart resumes where delivery stopped.
CREATE TABLE event_outbox (
    audit_id   BIGINT PRIMARY KEY REFERENCES audit_log(id),
    -- CloudEvents type, e.g. dev.wharf.promotion.
    type       TEXT NOT NULL,
    -- '' for events of no repository (GC): one delivery order for them.
    repository TEXT NOT NULL
);

-- Per endpoint: the last outbox event already turned into deliveries.
CREATE TABLE event_cursors (
    endpoint TEXT PRIMARY KEY,
    after_id BIGINT NOT NULL
);

CREATE TABLE event_deliveries (
    endpoint        TEXT NOT NULL,
    audit_id        BIGINT NOT NULL REFERENCES event_outbox(audit_id),
    repository      TEXT NOT NULL,
    -- pending, delivered or dead.
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (endpoint, audit_id)
);
CREATE INDEX event_deliveries_by_state ON event_deliveries(endpoint, state, audit_id);
