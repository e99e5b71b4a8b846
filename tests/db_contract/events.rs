use wharf::db::events::{DeliveryFilter, DeliveryState};
use wharf::db::{now_ms, Db};
use wharf::domain::{AuditAction, AuditEntry};

use crate::engines::{actor, R};

/// Outbox rows joined with their audit rows, per-endpoint cursors, and
/// deliveries through pending, failed, dead and replayed.
pub async fn outbox_cursors_and_deliveries(db: Db) {
    let a = actor("alice");
    let ids = db
        .write(move |tx| -> R<Vec<i64>> {
            let mut ids = Vec::new();
            for (repo, action) in [("r1", AuditAction::ManifestPush), ("r2", AuditAction::Promotion), ("r1", AuditAction::TagDelete)] {
                let id = tx.append_audit(&AuditEntry::new(&a, action).repository(repo).reference("v1"))?;
                tx.enqueue_event(id, action.as_str(), repo)?;
                ids.push(id);
            }
            // An audited change that is no event has no outbox row.
            tx.append_audit(&AuditEntry::new(&a, AuditAction::AccountCreate))?;
            Ok(ids)
        })
        .await
        .unwrap();
    let (ids2, now) = (ids.clone(), now_ms());
    db.write(move |tx| -> R<()> {
        assert_eq!(tx.outbox_head()?, ids2[2]);
        let events = tx.outbox_after(0, 10)?;
        assert_eq!(events.iter().map(|e| e.audit.record.id).collect::<Vec<_>>(), ids2);
        assert_eq!(events[1].event_type, "promotion");
        assert_eq!(events[1].audit.record.repository.as_deref(), Some("r2"));
        assert_eq!(tx.outbox_after(ids2[0], 1)?.len(), 1);
        let one = tx.outbox_event(ids2[1])?.expect("event");
        assert_eq!(one, events[1]);
        assert_eq!(tx.outbox_id(&one.audit.hash)?, Some(ids2[1]));
        assert_eq!(tx.outbox_id("nope")?, None);
        assert_eq!(tx.outbox_event(ids2[2] + 1)?, None);

        assert_eq!(tx.event_cursor("hook")?, None);
        tx.set_event_cursor("hook", 2)?;
        tx.set_event_cursor("hook", ids2[2])?;
        assert_eq!(tx.event_cursor("hook")?, Some(ids2[2]));
        for (id, repo) in ids2.iter().zip(["r1", "r2", "r1"]) {
            tx.add_delivery("hook", *id, repo, now)?;
            tx.add_delivery("hook", *id, repo, now)?; // once per pair
        }
        tx.add_delivery("other", ids2[0], "r1", now)?;
        Ok(())
    })
    .await
    .unwrap();
    let pending = db.read(|tx| tx.pending_deliveries("hook", 10)).await.unwrap();
    assert_eq!(pending.iter().map(|d| d.audit_id).collect::<Vec<_>>(), ids);
    assert!(pending.iter().all(|d| d.state == DeliveryState::Pending && d.attempts == 0 && d.next_attempt_at == now));
    assert_eq!(pending[1].event_type, "promotion");
    assert_eq!(db.read(|tx| tx.pending_delivery_count()).await.unwrap(), 4);

    // A failure then dead; a delivery.
    let (mut failed, mut delivered) = (pending[0].clone(), pending[1].clone());
    failed.attempts = 2;
    failed.state = DeliveryState::Dead;
    failed.last_error = Some("HTTP 500".into());
    failed.updated_at = now + 5;
    delivered.state = DeliveryState::Delivered;
    delivered.attempts = 1;
    let (f, d) = (failed.clone(), delivered.clone());
    db.write(move |tx| -> R<()> {
        assert!(tx.update_delivery(&f)?);
        assert!(tx.update_delivery(&d)?);
        let mut missing = d.clone();
        missing.endpoint = "nobody".into();
        assert!(!tx.update_delivery(&missing)?);
        Ok(())
    })
    .await
    .unwrap();
    let dead =
        db.read(|tx| tx.list_deliveries(&DeliveryFilter { state: Some(DeliveryState::Dead), ..Default::default() }, 10)).await.unwrap();
    assert_eq!(dead, vec![failed.clone()]);
    let all = db.read(|tx| tx.list_deliveries(&DeliveryFilter::default(), 10)).await.unwrap();
    assert_eq!(all.len(), 4);
    let hook = DeliveryFilter { endpoint: Some("hook".into()), after_id: Some(ids[0]), state: None };
    let page = db.read(move |tx| tx.list_deliveries(&hook, 1)).await.unwrap();
    assert_eq!(page.iter().map(|d| d.audit_id).collect::<Vec<_>>(), [ids[1]]);
    assert_eq!(db.read(|tx| tx.pending_delivery_count()).await.unwrap(), 2);

    // Replay puts dead and delivered ones back to pending with no attempts.
    let (from, to) = (ids[0], ids[1]);
    let n = db.write(move |tx| tx.replay_deliveries("hook", from, to, now + 10)).await.unwrap();
    assert_eq!(n, 2);
    let pending = db.read(|tx| tx.pending_deliveries("hook", 10)).await.unwrap();
    assert_eq!(pending.len(), 3);
    assert!(pending[..2].iter().all(|d| d.attempts == 0 && d.last_error.is_none() && d.next_attempt_at == now + 10));
}
