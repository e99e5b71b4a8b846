use rusqlite::{params, OptionalExtension, Row};

use super::audit::from_row as audit_from_row;
use super::SqliteTx;
use crate::db::events::{Delivery, DeliveryFilter, DeliveryState, OutboxEvent};
use crate::db::{DbError, Events};

const EVENT_COLUMNS: &str =
    "a.id, a.created_at, a.actor, a.source, a.action, a.repository, a.reference, a.digest, a.details, a.hash, o.type";
const DELIVERY_COLUMNS: &str =
    "d.endpoint, d.audit_id, d.repository, d.state, d.attempts, d.next_attempt_at, d.last_error, d.updated_at, a.hash, o.type";
/// Deliveries with their event's id and type.
const DELIVERIES: &str = "event_deliveries d JOIN event_outbox o ON o.audit_id = d.audit_id JOIN audit_log a ON a.id = d.audit_id";

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<OutboxEvent> {
    Ok(OutboxEvent { audit: audit_from_row(r)?, event_type: r.get(10)? })
}

fn delivery_from_row(r: &Row<'_>) -> rusqlite::Result<(Delivery, String)> {
    let state: String = r.get(3)?;
    Ok((
        Delivery {
            endpoint: r.get(0)?,
            audit_id: r.get(1)?,
            repository: r.get(2)?,
            state: DeliveryState::Pending,
            attempts: r.get(4)?,
            next_attempt_at: r.get(5)?,
            last_error: r.get(6)?,
            updated_at: r.get(7)?,
            event_id: r.get(8)?,
            event_type: r.get(9)?,
        },
        state,
    ))
}

fn with_state((mut d, state): (Delivery, String)) -> Result<Delivery, DbError> {
    d.state = DeliveryState::parse(&state).ok_or(DbError::Corrupt("event_deliveries.state"))?;
    Ok(d)
}

impl Events for SqliteTx<'_> {
    fn enqueue_event(&self, audit_id: i64, event_type: &str, repository: &str) -> Result<(), DbError> {
        self.conn
            .prepare_cached("INSERT INTO event_outbox (audit_id, type, repository) VALUES (?1, ?2, ?3)")?
            .execute(params![audit_id, event_type, repository])?;
        Ok(())
    }

    fn outbox_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxEvent>, DbError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM event_outbox o JOIN audit_log a ON a.id = o.audit_id WHERE o.audit_id > ?1 ORDER BY o.audit_id LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![after, limit], event_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn outbox_event(&self, audit_id: i64) -> Result<Option<OutboxEvent>, DbError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM event_outbox o JOIN audit_log a ON a.id = o.audit_id WHERE o.audit_id = ?1");
        Ok(self.conn.prepare_cached(&sql)?.query_row([audit_id], event_from_row).optional()?)
    }

    fn event_cursor(&self, endpoint: &str) -> Result<Option<i64>, DbError> {
        Ok(self
            .conn
            .prepare_cached("SELECT after_id FROM event_cursors WHERE endpoint = ?1")?
            .query_row([endpoint], |r| r.get(0))
            .optional()?)
    }

    fn outbox_head(&self) -> Result<i64, DbError> {
        Ok(self.conn.prepare_cached("SELECT COALESCE(MAX(audit_id), 0) FROM event_outbox")?.query_row([], |r| r.get(0))?)
    }

    fn outbox_id(&self, event_id: &str) -> Result<Option<i64>, DbError> {
        Ok(self
            .conn
            .prepare_cached("SELECT o.audit_id FROM event_outbox o JOIN audit_log a ON a.id = o.audit_id WHERE a.hash = ?1")?
            .query_row([event_id], |r| r.get(0))
            .optional()?)
    }

    fn set_event_cursor(&self, endpoint: &str, after_id: i64) -> Result<(), DbError> {
        self.conn.prepare_cached("INSERT INTO event_cursors (endpoint, after_id) VALUES (?1, ?2) ON CONFLICT (endpoint) DO UPDATE SET after_id = excluded.after_id")?.execute(params![endpoint, after_id],
        )?;
        Ok(())
    }

    fn add_delivery(&self, endpoint: &str, audit_id: i64, repository: &str, now: i64) -> Result<(), DbError> {
        self.conn
            .prepare_cached(
                "INSERT INTO event_deliveries (endpoint, audit_id, repository, state, attempts, next_attempt_at, last_error, updated_at)
             VALUES (?1, ?2, ?3, 'pending', 0, ?4, NULL, ?4) ON CONFLICT (endpoint, audit_id) DO NOTHING",
            )?
            .execute(params![endpoint, audit_id, repository, now])?;
        Ok(())
    }

    fn pending_deliveries(&self, endpoint: &str, limit: u32) -> Result<Vec<Delivery>, DbError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM {DELIVERIES} WHERE d.endpoint = ?1 AND d.state = 'pending' ORDER BY d.audit_id LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![endpoint, limit], delivery_from_row)?;
        rows.map(|r| with_state(r?)).collect()
    }

    fn update_delivery(&self, d: &Delivery) -> Result<bool, DbError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE event_deliveries SET state = ?3, attempts = ?4, next_attempt_at = ?5, last_error = ?6, updated_at = ?7
             WHERE endpoint = ?1 AND audit_id = ?2",
            )?
            .execute(params![d.endpoint, d.audit_id, d.state.as_str(), d.attempts, d.next_attempt_at, d.last_error, d.updated_at])?;
        Ok(n == 1)
    }

    fn list_deliveries(&self, f: &DeliveryFilter, limit: u32) -> Result<Vec<Delivery>, DbError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM {DELIVERIES}
             WHERE (?1 IS NULL OR d.endpoint = ?1) AND (?2 IS NULL OR d.state = ?2) AND (?3 IS NULL OR d.audit_id > ?3)
             ORDER BY d.audit_id, d.endpoint LIMIT ?4"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![f.endpoint, f.state.map(DeliveryState::as_str), f.after_id, limit], delivery_from_row)?;
        rows.map(|r| with_state(r?)).collect()
    }

    fn replay_deliveries(&self, endpoint: &str, from: i64, to: i64, now: i64) -> Result<u64, DbError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE event_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?4, last_error = NULL, updated_at = ?4
             WHERE endpoint = ?1 AND audit_id >= ?2 AND audit_id <= ?3",
            )?
            .execute(params![endpoint, from, to, now])?;
        Ok(n as u64)
    }

    fn pending_delivery_count(&self) -> Result<i64, DbError> {
        Ok(self.conn.prepare_cached("SELECT COUNT(*) FROM event_deliveries WHERE state = 'pending'")?.query_row([], |r| r.get(0))?)
    }
}
