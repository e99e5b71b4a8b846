-- PostgreSQL twin of migrations/0005_account_lifecycle.sql.

ALTER TABLE accounts ADD COLUMN disabled_at BIGINT;
ALTER TABLE accounts ADD COLUMN secret_changed_at BIGINT;
