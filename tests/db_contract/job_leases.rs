use wharf::db::job_leases::JobLease;
use wharf::db::Db;

use crate::engines::R;

const T0: i64 = 1_000_000;
const TTL: i64 = 30_000;

async fn take(db: &Db, job: &'static str, holder: &'static str, now: i64) -> bool {
    db.write(move |tx| -> R<_> { tx.take_job_lease(job, holder, now, now + TTL) }).await.expect("take")
}

async fn lease(db: &Db, job: &'static str) -> Option<JobLease> {
    db.read(move |tx| -> R<_> { tx.job_lease(job) }).await.expect("read")
}

/// A free lease is taken; another holder is refused until it expires; the
/// holder renews it (keeping when it was taken); only the holder releases
/// it; an expired lease goes to whoever asks next; jobs are independent.
pub async fn take_renew_expire_and_release(db: Db) {
    assert_eq!(lease(&db, "gc").await, None);
    assert!(take(&db, "gc", "node-a", T0).await, "a free lease is taken");
    assert!(!take(&db, "gc", "node-b", T0 + 1).await, "a live lease is not taken by another node");
    assert!(take(&db, "retention", "node-b", T0 + 1).await, "each job has its own lease");
    assert!(take(&db, "gc", "node-a", T0 + 10_000).await, "the holder renews");
    assert_eq!(
        lease(&db, "gc").await,
        Some(JobLease { job: "gc".into(), holder: "node-a".into(), taken_at: T0, expires_at: T0 + 10_000 + TTL })
    );
    // Past the first expiry but within the renewed one: still node-a's.
    assert!(!take(&db, "gc", "node-b", T0 + TTL + 1).await, "a renewed lease lasts from its renewal");
    let refused = db.write(|tx| -> R<_> { tx.release_job_lease("gc", "node-b") }).await.expect("release");
    assert!(!refused, "a node releases only its own lease");
    assert_eq!(lease(&db, "gc").await.map(|l| l.holder), Some("node-a".into()));
    // Expired: the next asker gets it, with its own taken_at.
    let after = T0 + 10_000 + TTL;
    assert!(take(&db, "gc", "node-b", after).await, "an expired lease goes to the next asker");
    assert_eq!(
        lease(&db, "gc").await,
        Some(JobLease { job: "gc".into(), holder: "node-b".into(), taken_at: after, expires_at: after + TTL })
    );
    assert!(!take(&db, "gc", "node-a", after + 1).await, "the old holder lost it");
    let released = db.write(|tx| -> R<_> { tx.release_job_lease("gc", "node-b") }).await.expect("release");
    assert!(released);
    assert_eq!(lease(&db, "gc").await, None);
    assert!(take(&db, "gc", "node-a", after + 2).await, "a released lease is free at once");
    assert_eq!(lease(&db, "retention").await.map(|l| l.holder), Some("node-b".into()));
}

/// Many nodes asking for one free lease at once: exactly one wins, and the
/// row names it.
pub async fn concurrent_takers_have_one_winner(db: Db) {
    const HOLDERS: [&str; 16] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11", "n12", "n13", "n14", "n15"];
    for round in 0..5i64 {
        let now = T0 + round * (TTL + 1);
        let tasks: Vec<_> = HOLDERS
            .iter()
            .map(|&holder| {
                let db = db.clone();
                tokio::spawn(async move { (holder, take(&db, "events", holder, now).await) })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (holder, won) = t.await.expect("task");
            if won {
                winners.push(holder);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(lease(&db, "events").await.map(|l| l.holder), Some(winners[0].to_owned()));
    }
}
