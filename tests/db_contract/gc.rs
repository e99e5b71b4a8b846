use wharf::db::manifests::RefKind;
use wharf::db::uploads::UploadPart;
use wharf::db::Db;
use wharf::domain::{Digest, UploadId};

use crate::engines::{digest, R};
use crate::manifests::{manifest, repo};

/// Far enough ahead that every row counts as older than the cutoff.
fn later() -> i64 {
    chrono_now() + 3_600_000
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
}

pub async fn claims_candidates_take_and_finish(db: Db) {
    let r = repo(&db, "a").await;
    let (kept, loose, claimed) = (digest(), digest(), digest());
    let (k, l, c) = (kept.clone(), loose.clone(), claimed.clone());
    db.write(move |tx| -> R<()> {
        for d in [&k, &l, &c] {
            tx.insert_blob(d, 3)?;
            tx.link_blob(r, d)?;
        }
        tx.insert_manifest(r, &manifest(&digest(), None, b"m"), &[(k.clone(), RefKind::Blob)], "a")?;
        assert!(tx.claim_blob("claim-1", &c)?);
        Ok(())
    })
    .await
    .unwrap();
    let sorted = |mut v: Vec<Digest>| {
        v.sort();
        v
    };
    // Referenced blobs never; claimed ones while the claim is live; young ones never.
    let (young, live, stale_claims, paged) = db
        .read(move |tx| -> R<_> {
            Ok((
                tx.gc_candidates("", 0, 0, 10)?,
                tx.gc_candidates("", later(), 0, 10)?,
                tx.gc_candidates("", later(), later(), 10)?,
                tx.gc_candidates("", later(), later(), 1)?,
            ))
        })
        .await
        .unwrap();
    assert!(young.is_empty());
    assert_eq!(live, [(loose.clone(), 3)]);
    assert_eq!(stale_claims.iter().map(|c| c.0.clone()).collect::<Vec<_>>(), sorted(vec![loose.clone(), claimed.clone()]));
    assert_eq!(paged.len(), 1);
    let first = paged[0].0.to_string();
    let rest = db.read(move |tx| tx.gc_candidates(&first, later(), later(), 10)).await.unwrap();
    assert_eq!(rest.len(), 1, "keyset paging continues after `after`");

    let (l, k, c) = (loose.clone(), kept.clone(), claimed.clone());
    let (took_kept, took_claimed, took, took_again, pending, is_pending, can_claim, linked) = db
        .write(move |tx| -> R<_> {
            let took_kept = tx.gc_take(&k, later(), 0)?;
            let took_claimed = tx.gc_take(&c, later(), 0)?;
            let took = tx.gc_take(&l, later(), 0)?;
            let took_again = tx.gc_take(&l, later(), 0)?;
            Ok((
                took_kept,
                took_claimed,
                took,
                took_again,
                tx.gc_pending(10)?,
                tx.gc_is_pending(&l)?,
                tx.claim_blob("claim-2", &l)?,
                tx.linked_blob_size(r, &l)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!((took_kept, took_claimed, took, took_again), (None, None, Some(3), None));
    assert_eq!(pending, [(loose.clone(), 3)]);
    assert!(is_pending && !can_claim, "an upload waits while the bytes are being deleted");
    assert_eq!(linked, None, "taken blobs are unlisted everywhere");
    let l = loose.clone();
    let (after_finish, claim_now, blob_row) = db
        .write(move |tx| -> R<_> {
            tx.gc_finish(&l)?;
            Ok((tx.gc_pending(10)?, tx.claim_blob("claim-3", &l)?, tx.blob_size(&l)?))
        })
        .await
        .unwrap();
    assert!(after_finish.is_empty() && claim_now && blob_row.is_none());

    // touch_blob restarts the grace period; claims can be released or expire.
    let c = claimed.clone();
    let (young_again, released, dropped) = db
        .write(move |tx| -> R<_> {
            tx.release_claim("claim-1")?;
            tx.touch_blob(&c)?;
            let young_again = tx.gc_candidates("", chrono_now() - 60_000, 0, 10)?;
            let released = tx.gc_candidates("", later(), 0, 10)?;
            let dropped = tx.drop_stale_claims(later())?;
            Ok((young_again, released, dropped))
        })
        .await
        .unwrap();
    assert!(young_again.is_empty());
    assert_eq!(released, [(claimed.clone(), 3)]);
    assert_eq!(dropped, 1, "claim-1 was released and claim-2 refused; claim-3 is older than the cutoff");
}

pub async fn stale_uploads_and_strays(db: Db) {
    let r = repo(&db, "a").await;
    let id = UploadId::new();
    let i = id.clone();
    let (stale, fresh) = db
        .write(move |tx| -> R<_> {
            tx.create_upload(&i, r, b"")?;
            tx.append_upload_part(&i, 0, &UploadPart { object_key: "k1".into(), size: 1 }, b"")?;
            tx.append_upload_part(&i, 1, &UploadPart { object_key: "k2".into(), size: 1 }, b"")?;
            Ok((tx.stale_uploads(later(), 10)?, tx.stale_uploads(0, 10)?))
        })
        .await
        .unwrap();
    assert_eq!(stale, [(id.clone(), vec!["k1".to_string(), "k2".to_string()])]);
    assert!(fresh.is_empty());
    let i = id.clone();
    let (kept, deleted, exists) = db
        .write(move |tx| -> R<_> { Ok((tx.delete_stale_upload(&i, 0)?, tx.delete_stale_upload(&i, later())?, tx.upload_exists(&i)?)) })
        .await
        .unwrap();
    assert!(!kept && deleted && !exists, "only a session idle since before the cutoff goes");

    let (known, stray, claimed) = (digest(), digest(), digest());
    let (k, s, c) = (known.clone(), stray.clone(), claimed.clone());
    let seen = db
        .write(move |tx| -> R<_> {
            tx.insert_blob(&k, 1)?;
            tx.claim_blob("c", &c)?;
            let before = (tx.stray_is_known(&k, 0)?, tx.stray_is_known(&s, 0)?, tx.stray_is_known(&c, 0)?, tx.stray_is_known(&c, later())?);
            let took = (tx.take_stray(&k, 1, 0)?, tx.take_stray(&c, 1, 0)?, tx.take_stray(&s, 9, 0)?, tx.take_stray(&s, 9, 0)?);
            Ok((before, took, tx.stray_is_known(&s, 0)?, tx.gc_pending(10)?))
        })
        .await
        .unwrap();
    assert_eq!(seen.0, (true, false, true, false));
    assert_eq!(seen.1, (false, false, true, false), "known bytes are never taken; a stray once");
    assert!(seen.2, "a stray being deleted is known");
    assert_eq!(seen.3, [(stray, 9)]);
}

pub async fn layer_index_stores_once(db: Db) {
    let (a, b) = (digest(), digest());
    let (a2, b2) = (a.clone(), b.clone());
    let got = db
        .write(move |tx| -> R<_> {
            assert_eq!(tx.layer_index_count()?, 0);
            tx.insert_layer_index(&a2, 2, 10, b"first")?;
            tx.insert_layer_index(&a2, 2, 10, b"second")?;
            Ok((tx.layer_index(&a2)?, tx.layer_index(&b2)?, tx.layer_index_count()?))
        })
        .await
        .unwrap();
    assert_eq!(got, (Some(b"first".to_vec()), None, 1));
}

/// Release diff summaries: recorded, replaced in place (pending → ready),
/// listed for the sequences asked, and the pending ones found again.
pub async fn release_diffs_upsert_and_list(db: Db) {
    use wharf::db::layer_index::{ReleaseDiffRow, ReleaseDiffState};
    use wharf::domain::Stage;
    let r = repo(&db, "diffs").await;
    let row = |sequence, state, summary: Option<&str>| ReleaseDiffRow {
        sequence,
        state,
        from_digest: Some(wharf::domain::Digest::parse(&("sha256:".to_owned() + &"a".repeat(64))).unwrap()),
        summary: summary.map(str::to_owned),
        reason: None,
        updated_at: sequence,
    };
    let got = db
        .write(move |tx| -> R<_> {
            let (test, prod) = (Stage::parse("test").unwrap(), Stage::parse("prod").unwrap());
            tx.set_release_diff(r, &test, &row(2, ReleaseDiffState::Pending, None))?;
            tx.set_release_diff(r, &test, &row(3, ReleaseDiffState::Pending, None))?;
            tx.set_release_diff(r, &prod, &row(2, ReleaseDiffState::Unavailable, None))?;
            let pending =
                tx.pending_release_diffs()?.into_iter().map(|p| (p.repo.to_string(), p.stage.to_string(), p.sequence)).collect::<Vec<_>>();
            tx.set_release_diff(r, &test, &row(2, ReleaseDiffState::Ready, Some("{}")))?;
            let listed = tx.release_diffs(r, &test, &[1, 2, 3])?;
            Ok((pending, listed, tx.pending_release_diffs()?.len()))
        })
        .await
        .unwrap();
    assert_eq!(got.0, [("diffs".to_owned(), "test".to_owned(), 2), ("diffs".to_owned(), "test".to_owned(), 3)]);
    assert_eq!(got.1, [row(2, ReleaseDiffState::Ready, Some("{}")), row(3, ReleaseDiffState::Pending, None)]);
    assert_eq!(got.2, 1);
}

/// GC taking a blob and a manifest PUT that references it, at the same
/// time: either the PUT sees the blob and GC leaves it, or GC takes it and
/// the PUT finds it gone. Never both, never a manifest on missing bytes.
pub async fn take_against_manifest_put_has_one_winner(db: Db) {
    let r = repo(&db, "a").await;
    let (mut puts, mut takes) = (0, 0);
    for _ in 0..24 {
        let blob = digest();
        let b = blob.clone();
        db.write(move |tx| -> R<()> {
            tx.insert_blob(&b, 5)?;
            tx.link_blob(r, &b)
        })
        .await
        .unwrap();
        let (pdb, b, m) = (db.clone(), blob.clone(), digest());
        let put = tokio::spawn(async move {
            pdb.write(move |tx| -> R<bool> {
                // What a manifest PUT checks before it records references.
                if tx.linked_blob_size(r, &b)?.is_none() {
                    return Ok(false);
                }
                tx.insert_manifest(r, &manifest(&m, None, m.as_str().as_bytes()), &[(b.clone(), RefKind::Blob)], "a")
            })
            .await
        });
        let (gdb, b) = (db.clone(), blob.clone());
        let take = tokio::spawn(async move { gdb.write(move |tx| tx.gc_take(&b, later(), 0)).await });
        let (put, take) = (put.await.unwrap().unwrap(), take.await.unwrap().unwrap());
        assert!(put != take.is_some(), "exactly one wins: put={put} take={take:?}");
        let b = blob.clone();
        let size = db.read(move |tx| tx.blob_size(&b)).await.unwrap();
        if put {
            puts += 1;
            assert_eq!(size, Some(5), "a manifest was stored on a blob GC took");
        } else {
            takes += 1;
            assert_eq!(size, None);
        }
    }
    assert_eq!(puts + takes, 24);
}
