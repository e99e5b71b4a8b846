use wharf::db::signing_keys::SigningKeyRow;
use wharf::db::Db;

use crate::engines::R;

fn key(kid: &str, secret: &[u8], created_at: i64) -> SigningKeyRow {
    SigningKeyRow { kid: kid.into(), secret: secret.to_vec(), created_at }
}

/// Keys come back oldest first with their secret bytes intact (any byte,
/// NUL included); a second key with the same kid changes nothing; deleting
/// says whether there was one.
pub async fn signing_keys_add_list_and_delete(db: Db) {
    let secret_b: Vec<u8> = (0..=255u8).collect();
    let (listed, dup, gone, again) = db
        .write(move |tx| -> R<_> {
            assert!(tx.signing_keys()?.is_empty());
            assert!(tx.add_signing_key(&key("b", &secret_b, 20))?);
            assert!(tx.add_signing_key(&key("a", b"\0first", 10))?);
            assert!(tx.add_signing_key(&key("c", b"third", 20))?);
            let dup = tx.add_signing_key(&key("a", b"other", 99))?;
            let listed = tx.signing_keys()?;
            let gone = tx.delete_signing_key("a")?;
            let again = tx.delete_signing_key("a")?;
            Ok((listed, dup, gone, again))
        })
        .await
        .expect("write");
    assert_eq!(listed.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(listed[0].secret, b"\0first");
    assert_eq!(listed[1].secret, (0..=255u8).collect::<Vec<u8>>());
    assert_eq!(listed[0].created_at, 10);
    assert!(!dup, "a kid that exists is not replaced");
    assert!(gone && !again);
    let left = db.read(|tx| -> R<_> { tx.signing_keys() }).await.expect("read");
    assert_eq!(left.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    assert!(!format!("{:?}", left[1]).contains("third") && !format!("{:?}", left[1]).contains("116"), "Debug hides the secret");
}

/// "Create the first key if there is none", from many tasks at once, leaves
/// exactly one key: the check and the insert are one serialized write.
pub async fn concurrent_first_key_creation_makes_one(db: Db) {
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |tx| -> R<_> {
                    if tx.signing_keys()?.is_empty() {
                        tx.add_signing_key(&key(&format!("k{n}"), b"secret", n))?;
                    }
                    tx.signing_keys()
                })
                .await
            })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        let keys = t.await.expect("task").expect("write");
        assert_eq!(keys.len(), 1, "{keys:?}");
        seen.push(keys[0].kid.clone());
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "every task saw the same single key");
}
