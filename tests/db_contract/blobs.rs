use wharf::db::Db;

use crate::engines::{digest, name, R};

pub async fn blob_rows_and_links(db: Db) {
    let (d, other) = (digest(), digest());
    let (a, b) = db.write(|tx| -> R<_> { Ok((tx.ensure_repository(&name("a"))?, tx.ensure_repository(&name("b"))?)) }).await.unwrap();
    let (d2, o2) = (d.clone(), other.clone());
    let seen = db
        .write(move |tx| -> R<_> {
            let before = tx.blob_size(&d2)?;
            tx.insert_blob(&d2, 42)?;
            // Idempotent: the first size stays.
            tx.insert_blob(&d2, 7)?;
            let linked_before = tx.linked_blob_size(a, &d2)?;
            tx.link_blob(a, &d2)?;
            tx.link_blob(a, &d2)?;
            tx.link_blob(b, &d2)?;
            Ok((before, tx.blob_size(&d2)?, linked_before, tx.linked_blob_size(a, &d2)?, tx.blob_size(&o2)?))
        })
        .await
        .unwrap();
    assert_eq!(seen, (None, Some(42), None, Some(42), None));
    let d3 = d.clone();
    let linking = db.read(move |tx| tx.repositories_linking(&d3)).await.unwrap();
    assert_eq!(linking, [a, b]);
    let d4 = d.clone();
    let after = db
        .write(move |tx| -> R<_> {
            let first = tx.unlink_blob(a, &d4)?;
            let second = tx.unlink_blob(a, &d4)?;
            Ok((
                first,
                second,
                tx.linked_blob_size(a, &d4)?,
                tx.linked_blob_size(b, &d4)?,
                tx.blob_size(&d4)?,
                tx.repositories_linking(&d4)?,
            ))
        })
        .await
        .unwrap();
    // Unlinking leaves the bytes' row (GC's business) and the other repository's link.
    assert_eq!(after, (true, false, None, Some(42), Some(42), vec![b]));
    // A link must name a known blob: the bytes come first, then the metadata.
    let o3 = other.clone();
    assert!(db.write(move |tx| tx.link_blob(a, &o3)).await.is_err());
}
