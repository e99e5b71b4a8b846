-- PostgreSQL twin of migrations/0006_layer_index.sql.

CREATE TABLE layer_index (
    digest      TEXT PRIMARY KEY,
    entry_count BIGINT NOT NULL,
    total_size  BIGINT NOT NULL,
    entries     BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
