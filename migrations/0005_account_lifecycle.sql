-- Account lifecycle: a disabled account cannot log in and its tokens are
-- refused; bearer tokens issued before the last password change or robot
-- token rotation are refused too.

ALTER TABLE accounts ADD COLUMN disabled_at INTEGER;
ALTER TABLE accounts ADD COLUMN secret_changed_at INTEGER;
