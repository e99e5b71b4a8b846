use std::collections::BTreeSet;

use wharf::db::releases::{NewRelease, ReleaseKey};
use wharf::db::Db;
use wharf::domain::{Digest, ReleaseReason, Stage};

use crate::engines::{digest, R};
use crate::manifests::repo;

fn stage(s: &str) -> Stage {
    Stage::parse(s).expect("stage")
}

fn promote<'a>(stage: &'a Stage, digest: &'a Digest, actor: &'a str) -> NewRelease<'a> {
    NewRelease {
        stage,
        digest,
        version: Some("1.0"),
        note: None,
        actor,
        reason: ReleaseReason::Promote,
        rolled_back_from: None,
        restored_sequence: None,
    }
}

pub async fn append_current_get_and_list(db: Db) {
    let r = repo(&db, "a").await;
    let other = repo(&db, "b").await;
    let (a, b): (Digest, Digest) = (digest(), digest());
    let (a2, b2) = (a.clone(), b.clone());
    let (r1, r2, r3, p1) = db
        .write(move |tx| -> R<_> {
            let (test, prod) = (stage("test"), stage("prod"));
            let r1 = tx.append_release(r, promote(&test, &a2, "alice"))?;
            let r2 = tx.append_release(r, promote(&test, &b2, "bob"))?;
            let r3 = tx.append_release(
                r,
                NewRelease {
                    stage: &test,
                    digest: &a2,
                    version: None,
                    note: Some("bad build"),
                    actor: "carol",
                    reason: ReleaseReason::Rollback,
                    rolled_back_from: Some(2),
                    restored_sequence: Some(1),
                },
            )?;
            let p1 = tx.append_release(r, promote(&prod, &a2, "dave"))?;
            Ok((r1, r2, r3, p1))
        })
        .await
        .unwrap();
    assert_eq!((r1.sequence, r2.sequence, r3.sequence, p1.sequence), (1, 2, 3, 1), "one sequence per stage");
    assert_eq!(
        (r3.reason.as_str(), r3.rolled_back_from, r3.restored_sequence, r3.note.as_deref()),
        ("rollback", Some(2), Some(1), Some("bad build"))
    );
    assert_eq!((r1.version.as_deref(), r1.actor.as_str(), r1.digest.as_str()), (Some("1.0"), "alice", a.as_str()));
    let (r1c, r3c) = (r1.clone(), r3.clone());
    let (a3, b3) = (a.clone(), b.clone());
    let got = db
        .read(move |tx| -> R<_> {
            let t = stage("test");
            assert_eq!(tx.current_release(r, &t)?, Some(r3c.clone()));
            assert_eq!(tx.current_release(r, &stage("preprod"))?, None);
            assert_eq!(tx.current_release(other, &t)?, None);
            assert_eq!(tx.release(r, &t, 1)?, Some(r1c.clone()));
            assert_eq!(tx.release(r, &t, 9)?, None);
            assert_eq!(tx.first_release_of(r, &t, &a3)?.map(|x| x.sequence), Some(1));
            assert_eq!(tx.first_release_of(r, &t, &b3)?.map(|x| x.sequence), Some(2));
            assert_eq!(tx.first_release_of(r, &stage("prod"), &b3)?, None);
            let seqs = |v: Vec<wharf::db::releases::ReleaseRow>| v.iter().map(|x| x.sequence).collect::<Vec<_>>();
            assert_eq!(seqs(tx.list_releases(r, &t, None, 10)?), [3, 2, 1]);
            assert_eq!(seqs(tx.list_releases(r, &t, Some(3), 1)?), [2]);
            assert_eq!(seqs(tx.list_releases(r, &t, Some(1), 10)?), Vec::<i64>::new());
            tx.all_releases(r)
        })
        .await
        .unwrap();
    let got: BTreeSet<_> = got.into_iter().map(|k: ReleaseKey| (k.stage.to_string(), k.sequence, k.digest)).collect();
    let want: BTreeSet<_> =
        [("test".to_string(), 1, a.clone()), ("test".to_string(), 2, b), ("test".to_string(), 3, a.clone()), ("prod".to_string(), 1, a)]
            .into_iter()
            .collect();
    assert_eq!(got, want);
}

/// Promotions racing into one stage get 1..=n, each once.
pub async fn concurrent_promotions_get_distinct_gap_free_sequences(db: Db) {
    let r = repo(&db, "a").await;
    let n = 24;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (db, d) = (db.clone(), digest());
            tokio::spawn(async move { db.write(move |tx| tx.append_release(r, promote(&stage("prod"), &d, "ci"))).await })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for t in tasks {
        assert!(seqs.insert(t.await.unwrap().unwrap().sequence), "a sequence number was handed out twice");
    }
    assert_eq!(seqs, (1..=n as i64).collect());
    let current = db.read(move |tx| tx.current_release(r, &stage("prod"))).await.unwrap().expect("current");
    assert_eq!(current.sequence, n as i64);
}
