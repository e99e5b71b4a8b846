use std::fmt;
use std::str::FromStr;

use digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest as _, Sha256, Sha512};

use super::InvalidInput;

/// The digest algorithms the OCI image spec registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A content digest `<algorithm>:<lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    // Stored whole so it can be used as a key without re-formatting.
    text: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let invalid =
            || InvalidInput::Digest(if s.len() > 140 { format!("{}…", &s[..s.floor_char_boundary(140)]) } else { s.to_owned() });
        let (algo, hex) = s.split_once(':').ok_or_else(invalid)?;
        let algo = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(invalid()),
        };
        let hex_ok = hex.len() == algo.hex_len() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return Err(invalid());
        }
        Ok(Self { text: s.to_owned() })
    }

    /// The digest of `bytes` under `algo`.
    pub fn of(algo: Algorithm, bytes: &[u8]) -> Self {
        let mut h = DigestHasher::new(algo);
        h.update(bytes);
        h.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        if self.text.starts_with("sha512:") {
            Algorithm::Sha512
        } else {
            Algorithm::Sha256
        }
    }
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm().as_str().len() + 1..]
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Digest {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An incremental hasher for either algorithm whose state can be saved
/// between requests, so a chunked upload can resume on any instance.
#[derive(Clone)]
pub enum DigestHasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl DigestHasher {
    pub fn new(algo: Algorithm) -> Self {
        match algo {
            Algorithm::Sha256 => Self::Sha256(Sha256::new()),
            Algorithm::Sha512 => Self::Sha512(Sha512::new()),
        }
    }
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Sha256(_) => Algorithm::Sha256,
            Self::Sha512(_) => Algorithm::Sha512,
        }
    }
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }
    pub fn finish(self) -> Digest {
        let (algo, hex) = match self {
            Self::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Self::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { text: format!("{}:{}", algo.as_str(), hex) }
    }
    /// Serialized state: the algorithm name, a NUL, then the hasher state.
    pub fn save(&self) -> Vec<u8> {
        let mut out = self.algorithm().as_str().as_bytes().to_vec();
        out.push(0);
        match self {
            Self::Sha256(h) => out.extend_from_slice(&h.serialize()),
            Self::Sha512(h) => out.extend_from_slice(&h.serialize()),
        }
        out
    }
    /// Restores a state written by [`DigestHasher::save`]; `None` if corrupt.
    pub fn restore(saved: &[u8]) -> Option<Self> {
        let nul = saved.iter().position(|b| *b == 0)?;
        let state = &saved[nul + 1..];
        match &saved[..nul] {
            b"sha256" => {
                let s = SerializedState::<Sha256>::try_from(state).ok()?;
                Sha256::deserialize(&s).ok().map(Self::Sha256)
            }
            b"sha512" => {
                let s = SerializedState::<Sha512>::try_from(state).ok()?;
                Sha512::deserialize(&s).ok().map(Self::Sha512)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_known_algorithms_with_exact_hex() {
        assert!(Digest::parse(&format!("sha256:{}", "0".repeat(64))).is_ok());
        assert!(Digest::parse(&format!("sha512:{}", "f".repeat(128))).is_ok());
        for bad in [
            "sha256:",
            "sha256:xyz",
            "md5:abc",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}", "0".repeat(63)),
            &format!("sha512:{}", "0".repeat(64)),
            "nocolon",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hasher_state_survives_save_and_restore() {
        for algo in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut h = DigestHasher::new(algo);
            h.update(b"hello ");
            let mut resumed = DigestHasher::restore(&h.save()).expect("restore");
            resumed.update(b"world");
            assert_eq!(resumed.finish(), Digest::of(algo, b"hello world"));
        }
        assert!(DigestHasher::restore(b"sha256\0short").is_none());
    }

    #[test]
    fn known_vector() {
        assert_eq!(Digest::of(Algorithm::Sha256, b"").as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
