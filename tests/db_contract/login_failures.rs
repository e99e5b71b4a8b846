use wharf::db::login_failures::LoginFailureRow;
use wharf::db::Db;

use crate::engines::R;

const KEYS: [&str; 3] = ["acct:alice@10.0.0.1", "ip:10.0.0.1", "acct:alice"];
const CAP: u64 = 1_000;

async fn counts(db: &Db, since: i64) -> Vec<(String, u32)> {
    let mut rows: Vec<LoginFailureRow> = db.read(move |tx| tx.login_failures(&KEYS, since)).await.unwrap();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows.into_iter().map(|r| (r.key, r.failures)).collect()
}

/// Failures from many tasks at once (nodes, on PostgreSQL) are each counted.
pub async fn concurrent_failures_are_each_counted(db: Db) {
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.write(|tx| -> R<Vec<u32>> { tx.record_login_failure(&KEYS, 5_000, 0, CAP) }).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap()[0]);
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=40).collect::<Vec<u32>>(), "each failure saw its own count");
    let expected: Vec<(String, u32)> = {
        let mut v: Vec<(String, u32)> = KEYS.iter().map(|k| ((*k).to_owned(), 40)).collect();
        v.sort();
        v
    };
    assert_eq!(counts(&db, 0).await, expected);
    // The read returns only the keys asked for.
    let other = db.read(|tx| tx.login_failures(&["acct:bob"], 0)).await.unwrap();
    assert!(other.is_empty(), "{other:?}");
}

/// A counter counts within its window; past it, it is not read and the next
/// failure starts it again at 1 from that moment.
pub async fn a_window_expires_and_starts_again(db: Db) {
    for now in [1_000, 2_000] {
        db.write(move |tx| tx.record_login_failure(&KEYS[..1], now, 0, CAP)).await.unwrap();
    }
    let row = db.read(|tx| tx.login_failures(&KEYS[..1], 500)).await.unwrap();
    assert_eq!(row, vec![LoginFailureRow { key: KEYS[0].into(), failures: 2, window_start: 1_000 }]);
    // Window of 60 s: at 61_000 the counter that began at 1_000 has expired.
    assert!(db.read(|tx| tx.login_failures(&KEYS[..1], 1_000)).await.unwrap().is_empty());
    let after = db.write(|tx| tx.record_login_failure(&KEYS[..1], 61_000, 1_000, CAP)).await.unwrap();
    assert_eq!(after, vec![1]);
    let row = db.read(|tx| tx.login_failures(&KEYS[..1], 1_000)).await.unwrap();
    assert_eq!(row, vec![LoginFailureRow { key: KEYS[0].into(), failures: 1, window_start: 61_000 }]);
}

/// A good login clears exact keys; an admin's unlock every key of the
/// account (prefix), and nothing of other accounts.
pub async fn clearing_by_key_and_by_account(db: Db) {
    let bob = ["acct:bob@10.0.0.1", "ip:10.0.0.1", "acct:bob"];
    let alice_elsewhere = ["acct:alice@10.0.0.2", "ip:10.0.0.2", "acct:alice"];
    // An account whose name has LIKE wildcards in it is not matched by pattern.
    let wild = ["acct:a_ice@10.0.0.3"];
    db.write(move |tx| -> R<()> {
        tx.record_login_failure(&KEYS, 1_000, 0, CAP)?;
        tx.record_login_failure(&bob, 1_000, 0, CAP)?;
        tx.record_login_failure(&alice_elsewhere, 1_000, 0, CAP)?;
        tx.record_login_failure(&wild, 1_000, 0, CAP)?;
        Ok(())
    })
    .await
    .unwrap();
    db.write(|tx| tx.clear_login_failures(&[KEYS[0]], None)).await.unwrap();
    assert_eq!(counts(&db, 0).await, vec![("acct:alice".into(), 2), ("ip:10.0.0.1".into(), 2)]);
    db.write(|tx| tx.clear_login_failures(&["acct:alice"], Some("acct:alice@"))).await.unwrap();
    assert_eq!(counts(&db, 0).await, vec![("ip:10.0.0.1".into(), 2)], "the address keeps its count");
    assert!(db.read(move |tx| tx.login_failures(&alice_elsewhere[..1], 0)).await.unwrap().is_empty());
    assert_eq!(db.read(move |tx| tx.login_failures(&bob, 0)).await.unwrap().len(), 3, "bob is untouched");
    assert_eq!(db.read(move |tx| tx.login_failures(&wild, 0)).await.unwrap().len(), 1, "a_ice is untouched");
}

/// A flood of distinct names: expired counters are pruned and the table
/// stays under its cap, dropping the oldest first.
pub async fn the_table_is_pruned_and_capped(db: Db) {
    let cap = 50u64;
    db.write(move |tx| -> R<()> {
        // Expired by the time the flood comes.
        tx.record_login_failure(&["acct:old@1.1.1.1"], 1_000, 0, cap)?;
        for i in 0..200i64 {
            let key = format!("acct:name{i}@2.2.2.2");
            tx.record_login_failure(&[key.as_str()], 100_000 + i, 50_000, cap)?;
        }
        Ok(())
    })
    .await
    .unwrap();
    assert!(db.read(|tx| tx.login_failures(&["acct:old@1.1.1.1"], 0)).await.unwrap().is_empty(), "the expired row is gone");
    let all: Vec<String> = (0..200).map(|i| format!("acct:name{i}@2.2.2.2")).collect();
    let kept = db
        .read(move |tx| -> R<Vec<LoginFailureRow>> {
            let keys: Vec<&str> = all.iter().map(String::as_str).collect();
            tx.login_failures(&keys, 0)
        })
        .await
        .unwrap();
    assert!(kept.len() as u64 <= cap && kept.len() as u64 >= cap * 9 / 10, "{} rows kept", kept.len());
    assert!(kept.iter().any(|r| r.key == "acct:name199@2.2.2.2"), "the newest is kept");
    assert!(!kept.iter().any(|r| r.key == "acct:name0@2.2.2.2"), "the oldest is dropped");
}
