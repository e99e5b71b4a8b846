//! Every object key Wharf writes, in one place.
//!
//! ```text
//! <prefix>/
//!   blobs/<algorithm>/<first 2 hex>/<hex>   content-addressed, written once, immutable
//!   uploads/<upload id>/<part id>           parts of an in-progress upload (S3)
//!   uploads/<upload id>/data                an in-progress upload (filesystem)
//! ```
//! On the filesystem an upload grows `data` in place and is renamed to its
//! address once verified, so a blob file is whole or absent.
//! The prefix is the S3 `prefix` setting (empty on the filesystem, whose root
//! is `storage.path`).

use object_store::path::Path;

use crate::domain::Digest;

pub fn blob(digest: &Digest) -> Path {
    let hex = digest.hex();
    Path::from_iter(["blobs", digest.algorithm().as_str(), &hex[..2], hex])
}

pub fn upload_part(upload_id: &str, part_id: &str) -> Path {
    Path::from_iter(["uploads", upload_id, part_id])
}

/// The single file an upload grows on the filesystem.
pub fn upload_data(upload_id: &str) -> Path {
    Path::from_iter(["uploads", upload_id, "data"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_fan_out_by_hex_prefix() {
        let d = Digest::parse(&format!("sha256:ab{}", "0".repeat(62))).unwrap();
        assert_eq!(blob(&d).as_ref(), format!("blobs/sha256/ab/ab{}", "0".repeat(62)));
    }
}
