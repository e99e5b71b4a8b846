-- Image diff: the file index of each layer blob, computed the first time a
-- diff needs it and kept, keyed by digest (a layer's bytes never change).
-- `entries` is the zstd-compressed JSON array of the layer's tar entries
-- (path, type, mode, uid, gid, size, content sha256, link target): one row
-- per layer keeps a 100k-entry layer to one read and a few MB.
CREATE TABLE layer_index (
    digest      TEXT PRIMARY KEY,
    entry_count INTEGER NOT NULL,
    total_size  INTEGER NOT NULL,
    entries     BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
