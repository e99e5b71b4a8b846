use wharf::db::releases::NewRelease;
use wharf::db::Db;
use wharf::domain::{Digest, ReleaseReason, Stage};

use crate::engines::{digest, R};
use crate::manifests::repo;

fn release<'a>(stage: &'a Stage, digest: &'a Digest) -> NewRelease<'a> {
    NewRelease {
        stage,
        digest,
        version: None,
        note: None,
        actor: "alice",
        reason: ReleaseReason::Promote,
        rolled_back_from: None,
        restored_sequence: None,
    }
}

/// A verdict is stored once per release, read back as given, and
/// `current_verdicts` lists only those of each stage's newest release.
pub async fn verdicts_are_recorded_and_current(db: Db) {
    let r = repo(&db, "signed").await;
    let other = repo(&db, "signed-too").await;
    let (a, b) = (digest(), digest());
    let prod = Stage::parse("prod").expect("stage");
    let (first, again, missing, current) = db
        .write(move |tx| -> R<_> {
            let r1 = tx.append_release(r, release(&prod, &a))?;
            tx.record_verdict(r, &prod, r1.sequence, r#"{"v":1}"#)?;
            let r2 = tx.append_release(r, release(&prod, &b))?;
            tx.record_verdict(r, &prod, r2.sequence, r#"{"v":2}"#)?;
            // A newer release without a verdict hides nothing of other repositories.
            let o1 = tx.append_release(other, release(&prod, &a))?;
            tx.record_verdict(other, &prod, o1.sequence, r#"{"v":3}"#)?;
            tx.append_release(other, release(&prod, &b))?;
            let first = tx.verdict(r, &prod, r1.sequence)?;
            let missing = tx.verdict(r, &prod, 99)?;
            let mut current = tx.current_verdicts()?;
            current.sort();
            Ok((first, r1.sequence, missing, current))
        })
        .await
        .unwrap();
    // In its own transaction: a failed statement aborts a PostgreSQL transaction.
    let prod = Stage::parse("prod").expect("stage");
    let again = db.write(move |tx| tx.record_verdict(r, &prod, again, r#"{"v":9}"#)).await.is_err();
    assert_eq!(first.as_deref(), Some(r#"{"v":1}"#));
    assert!(again, "a release's verdict is written once");
    assert_eq!(missing, None);
    assert_eq!(current, vec![r#"{"v":2}"#.to_owned()], "only current releases, and only those with a verdict");
}
