//! The media types Wharf understands: the manifest formats it stores and
//! serves, and the layer formats whose bytes live elsewhere.

use std::fmt;
use std::str::FromStr;

/// A manifest format Wharf accepts: OCI and Docker schema 2, each as a
/// single image or as an index of images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerManifestList,
}

impl MediaType {
    pub const ALL: [MediaType; 4] = [Self::OciManifest, Self::OciIndex, Self::DockerManifest, Self::DockerManifestList];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OciManifest => "application/vnd.oci.image.manifest.v1+json",
            Self::OciIndex => "application/vnd.oci.image.index.v1+json",
            Self::DockerManifest => "application/vnd.docker.distribution.manifest.v2+json",
            Self::DockerManifestList => "application/vnd.docker.distribution.manifest.list.v2+json",
        }
    }

    /// A single image (config and layers), as opposed to an index.
    pub fn is_image(self) -> bool {
        matches!(self, Self::OciManifest | Self::DockerManifest)
    }

    /// An index of other manifests (a multi-platform image).
    pub fn is_index(self) -> bool {
        matches!(self, Self::OciIndex | Self::DockerManifestList)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A media type that is not a manifest format Wharf accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported manifest media type {0}")]
pub struct UnsupportedMediaType(pub String);

impl FromStr for MediaType {
    type Err = UnsupportedMediaType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| UnsupportedMediaType(s.to_owned()))
    }
}

/// Layers a registry is not expected to hold: their bytes live elsewhere
/// (OCI non-distributable layers, Docker foreign layers).
const FOREIGN_LAYERS: [&str; 4] = [
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Whether a layer of this media type is one whose bytes live elsewhere.
pub fn is_foreign_layer(media_type: &str) -> bool {
    FOREIGN_LAYERS.contains(&media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_round_trip_and_classify() {
        for m in MediaType::ALL {
            assert_eq!(m.to_string().parse::<MediaType>(), Ok(m));
            assert_ne!(m.is_image(), m.is_index());
        }
        assert!(MediaType::DockerManifest.is_image());
        assert!(MediaType::OciIndex.is_index());
        assert!("text/plain".parse::<MediaType>().is_err());
        // Parameters are the caller's to strip; the type itself must match exactly.
        assert!("application/vnd.oci.image.manifest.v1+json; charset=utf-8".parse::<MediaType>().is_err());
    }

    #[test]
    fn foreign_layers_are_recognised() {
        assert!(is_foreign_layer("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"));
        assert!(!is_foreign_layer("application/vnd.oci.image.layer.v1.tar+gzip"));
    }
}
