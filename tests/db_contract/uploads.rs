use wharf::db::uploads::UploadPart;
use wharf::db::Db;
use wharf::domain::UploadId;

use crate::engines::R;
use crate::manifests::repo;

fn part(key: &str, size: u64) -> UploadPart {
    UploadPart { object_key: key.into(), size }
}

pub async fn session_parts_and_conditional_append(db: Db) {
    let r = repo(&db, "a").await;
    let id = UploadId::new();
    let i = id.clone();
    let (created, won, stale, won2, parts, exists) = db
        .write(move |tx| -> R<_> {
            tx.create_upload(&i, r, b"h0")?;
            let created = tx.upload(&i)?;
            let won = tx.append_upload_part(&i, 0, &part("p1", 5), b"h1")?;
            // Another request already appended from size 0: this one lost.
            let stale = tx.append_upload_part(&i, 0, &part("p-lost", 3), b"hx")?;
            let won2 = tx.append_upload_part(&i, 5, &part("p2", 7), b"h2")?;
            Ok((created, won, stale, won2, tx.upload_parts(&i)?, tx.upload_exists(&i)?))
        })
        .await
        .unwrap();
    let created = created.expect("created");
    assert_eq!((created.id.clone(), created.repository, created.size, created.hasher_state.clone()), (id.clone(), r, 0, b"h0".to_vec()));
    assert!(created.created_at > 0);
    assert!(won && !stale && won2);
    assert_eq!(parts, [part("p1", 5), part("p2", 7)]);
    assert!(exists);
    let i = id.clone();
    let now = db.read(move |tx| tx.upload(&i)).await.unwrap().expect("upload");
    assert_eq!((now.size, now.hasher_state), (12, b"h2".to_vec()));
    let (i, unknown) = (id.clone(), UploadId::new());
    let (deleted, again, parts, gone, none) = db
        .write(move |tx| -> R<_> {
            Ok((tx.delete_upload(&i)?, tx.delete_upload(&i)?, tx.upload_parts(&i)?, tx.upload_exists(&i)?, tx.upload(&unknown)?))
        })
        .await
        .unwrap();
    assert!(deleted && !again && !gone);
    assert!(parts.is_empty(), "parts go with their session");
    assert!(none.is_none());
}

/// Concurrent PATCHes, each appending from the size it read before: one
/// wins per offset, and the parts, in sequence order, start exactly where
/// the one before ended.
pub async fn concurrent_appends_keep_one_gap_free_part_sequence(db: Db) {
    let r = repo(&db, "a").await;
    let id = UploadId::new();
    let i = id.clone();
    db.write(move |tx| tx.create_upload(&i, r, b"")).await.unwrap();
    let mut won = 0;
    for _round in 0..4 {
        let tasks: Vec<_> = (0..8u64)
            .map(|n| {
                let (db, i) = (db.clone(), id.clone());
                tokio::spawn(async move {
                    let i2 = i.clone();
                    let at = db.read(move |tx| tx.upload(&i2)).await?.expect("upload").size;
                    db.write(move |tx| tx.append_upload_part(&i, at, &part(&format!("{at}-{n}"), 1 + n), b"s")).await
                })
            })
            .collect();
        for t in tasks {
            if t.await.unwrap().unwrap() {
                won += 1;
            }
        }
    }
    let i = id.clone();
    let (upload, parts) = db.read(move |tx| -> R<_> { Ok((tx.upload(&i)?.expect("upload"), tx.upload_parts(&i)?)) }).await.unwrap();
    assert!(won >= 4, "each round has a winner");
    assert_eq!(parts.len(), won);
    let mut offset = 0;
    for p in &parts {
        let at: u64 = p.object_key.split('-').next().and_then(|s| s.parse().ok()).expect("offset in key");
        assert_eq!(at, offset, "part {} does not start where the one before ended: {parts:?}", p.object_key);
        offset += p.size;
    }
    assert_eq!(offset, upload.size);
}
