use wharf::db::Db;

use crate::engines::{digest, R};
use crate::manifests::repo;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// A live fence stops every way GC takes a blob; released or expired, it does not.
pub async fn a_backup_fence_stops_every_take(db: Db) {
    let r = repo(&db, "a").await;
    let (loose, stray) = (digest(), digest());
    let l = loose.clone();
    db.write(move |tx| -> R<()> {
        tx.insert_blob(&l, 3)?;
        tx.link_blob(r, &l)?;
        tx.take_backup_fence("b1", now() + 60_000)?;
        tx.take_backup_fence("old", now() - 1)?;
        Ok(())
    })
    .await
    .unwrap();
    let far = now() + 3_600_000;
    let (l, s) = (loose.clone(), stray.clone());
    let fenced = db
        .write(move |tx| -> R<_> {
            Ok((tx.backup_fence_active(now())?, tx.gc_candidates("", far, far, 10)?, tx.gc_take(&l, far, far)?, tx.take_stray(&s, 1, far)?))
        })
        .await
        .unwrap();
    assert!(fenced.0, "the fence is live");
    assert!(fenced.1.is_empty() && fenced.2.is_none() && !fenced.3, "GC took something under a fence: {fenced:?}");
    let l = loose.clone();
    let released = db
        .write(move |tx| -> R<_> {
            tx.release_backup_fence("b1")?;
            Ok((tx.backup_fence_active(now())?, tx.gc_candidates("", far, far, 10)?.len(), tx.gc_take(&l, far, far)?))
        })
        .await
        .unwrap();
    assert_eq!(released, (false, 1, Some(3)), "an expired fence holds nothing");
}

/// The snapshot holds exactly what the view read in the same snapshot, and
/// the run is recorded.
pub async fn snapshot_matches_its_view(db: Db) {
    let r = repo(&db, "a").await;
    let first = digest();
    let f = first.clone();
    db.write(move |tx| -> R<()> {
        tx.insert_blob(&f, 5)?;
        tx.link_blob(r, &f)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.db");
    let seen = db.snapshot_into(file.clone(), |tx| -> R<_> { tx.all_blobs("", 100) }).await.unwrap();
    assert_eq!(seen, [(first.clone(), 5)]);
    // Written after the snapshot: not in it.
    let later = digest();
    db.write(move |tx| tx.insert_blob(&later, 7)).await.unwrap();
    let copy = Db::open_existing(&file, 1).unwrap();
    let (blobs, problems) = (copy.read(|tx| tx.all_blobs("", 100)).await.unwrap(), copy.integrity_problems().await.unwrap());
    assert_eq!(blobs, seen);
    assert!(problems.is_empty(), "{problems:?}");

    let run = wharf::db::backup::BackupRun {
        id: "s1".into(),
        finished_at: 1234,
        destination: "/b".into(),
        blobs: 1,
        bytes: 5,
        blobs_copied: 1,
        bytes_copied: 5,
    };
    let last = db
        .write(move |tx| -> R<_> {
            let before = tx.last_backup_at()?;
            tx.record_backup(&run)?;
            Ok((before, tx.last_backup_at()?))
        })
        .await
        .unwrap();
    assert_eq!(last, (None, Some(1234)));
}

/// A running backup renews its fence by taking it again with a later expiry:
/// the second take extends the first, it does not fail on the existing id.
pub async fn a_fence_is_renewed_by_taking_it_again(db: Db) {
    let active_until = db
        .write(move |tx| -> R<(bool, bool)> {
            tx.take_backup_fence("renewed", now() + 1_000)?;
            tx.take_backup_fence("renewed", now() + 600_000)?;
            Ok((tx.backup_fence_active(now() + 300_000)?, tx.backup_fence_active(now() + 900_000)?))
        })
        .await
        .expect("renew");
    assert_eq!(active_until, (true, false), "the renewed fence holds until its new expiry, and no longer");
}
