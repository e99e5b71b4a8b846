use wharf::db::audit::{AuditFilter, StoredAudit};
use wharf::db::Db;
use wharf::domain::{Actor, AuditAction, AuditEntry, GENESIS_HASH};

use crate::engines::{actor, R};

fn entry(actor: &Actor, action: AuditAction, repository: Option<&str>, n: u64) -> AuditEntry {
    AuditEntry::new(actor, action).repository(repository).reference("v1").details(serde_json::json!({ "n": n }))
}

/// Recomputes the chain from the genesis hash; the rows must be every row, oldest first.
fn assert_chain(rows: &[StoredAudit]) {
    let mut previous = GENESIS_HASH.to_owned();
    for (n, row) in rows.iter().enumerate() {
        assert_eq!(row.record.id, n as i64 + 1, "ids are 1.. without gaps");
        assert_eq!(row.hash, row.record.chain_hash(&previous), "row {} does not chain to the one before", row.record.id);
        previous = row.hash.clone();
    }
}

async fn all_rows(db: &Db) -> Vec<StoredAudit> {
    let mut rows = Vec::new();
    loop {
        let after = rows.last().map(|r: &StoredAudit| r.record.id).unwrap_or(0);
        let batch = db.read(move |tx| tx.audit_batch_after(after, 7)).await.unwrap();
        if batch.is_empty() {
            return rows;
        }
        rows.extend(batch);
    }
}

pub async fn append_chains_and_filters(db: Db) {
    let (alice, bob) = (actor("alice"), actor("bob"));
    let before = db.read(|tx| tx.latest_audit_details(AuditAction::Promotion)).await.unwrap();
    assert_eq!(before, None);
    let ids = db
        .write(move |tx| -> R<Vec<i64>> {
            Ok(vec![
                tx.append_audit(&entry(&alice, AuditAction::ManifestPush, Some("a"), 1))?,
                tx.append_audit(&entry(&bob, AuditAction::Promotion, Some("a"), 2))?,
                tx.append_audit(&entry(&alice, AuditAction::Promotion, Some("b"), 3))?,
                tx.append_audit(&entry(&bob, AuditAction::PolicyChange, None, 4).digest("sha256:x"))?,
            ])
        })
        .await
        .unwrap();
    assert_eq!(ids, [1, 2, 3, 4]);
    let rows = all_rows(&db).await;
    assert_chain(&rows);
    let last = &rows[3].record;
    assert_eq!((last.actor.as_str(), last.source.as_str(), last.action.as_str()), ("bob", "127.0.0.1", AuditAction::PolicyChange.as_str()));
    assert_eq!((last.repository.as_deref(), last.reference.as_deref(), last.digest.as_deref()), (None, Some("v1"), Some("sha256:x")));
    assert_eq!(last.details, serde_json::json!({ "n": 4 }));
    let list = |f: AuditFilter, limit: u32| {
        let db = db.clone();
        async move { db.read(move |tx| tx.list_audit(&f, limit)).await.unwrap().iter().map(|r| r.record.id).collect::<Vec<_>>() }
    };
    assert_eq!(list(AuditFilter::default(), 10).await, [4, 3, 2, 1], "newest first");
    assert_eq!(list(AuditFilter::default(), 2).await, [4, 3]);
    assert_eq!(
        list(AuditFilter { repository: Some(wharf::domain::RepoName::parse("a").expect("name")), ..Default::default() }, 10).await,
        [2, 1]
    );
    assert_eq!(list(AuditFilter { action: Some(wharf::domain::AuditAction::Promotion), ..Default::default() }, 10).await, [3, 2]);
    assert_eq!(list(AuditFilter { actor: Some("alice".into()), ..Default::default() }, 10).await, [3, 1]);
    assert_eq!(list(AuditFilter { before_id: Some(3), ..Default::default() }, 10).await, [2, 1]);
    let t = rows[1].record.created_at;
    assert_eq!(list(AuditFilter { since: Some(t + 60_000), ..Default::default() }, 10).await, Vec::<i64>::new());
    assert_eq!(list(AuditFilter { until: Some(t - 60_000), ..Default::default() }, 10).await, Vec::<i64>::new());
    assert_eq!(list(AuditFilter { since: Some(t - 60_000), until: Some(t + 60_000), ..Default::default() }, 10).await, [4, 3, 2, 1]);
    let latest = db.read(|tx| tx.latest_audit_details(AuditAction::Promotion)).await.unwrap();
    assert_eq!(latest, Some(serde_json::json!({ "n": 3 })));
}

/// Appends from many tasks at once still form one chain that verifies.
pub async fn concurrent_appends_form_one_verifiable_chain(db: Db) {
    let tasks: Vec<_> = (0..32u64)
        .map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |tx| {
                    let who = actor(&format!("user{n}"));
                    tx.append_audit(&entry(&who, AuditAction::TagMove, Some("a"), n))
                })
                .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap());
    }
    ids.sort();
    assert_eq!(ids, (1..=32).collect::<Vec<i64>>());
    let rows = all_rows(&db).await;
    assert_eq!(rows.len(), 32);
    assert_chain(&rows);
}
