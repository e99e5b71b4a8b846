//! Inspection and replay of webhook deliveries (durable events; the
//! dispatcher itself is `crate::events`).

use crate::db::events::OutboxEvent;
pub use crate::db::events::{Delivery, DeliveryFilter, DeliveryState};
use crate::db::now_ms;
use crate::registry::{Registry, RegistryError};

/// Events one replay may cover: a larger range is refused, not cut.
pub const MAX_REPLAY: i64 = 10_000;

/// Which events to send again: one by its id, or a range of audit ids.
#[derive(Debug, Clone)]
pub enum ReplayTarget {
    Event(String),
    Range { from: i64, to: i64 },
}

impl Registry {
    /// Deliveries matching `filter`, oldest event first.
    pub async fn event_deliveries(&self, filter: DeliveryFilter, n: u32) -> Result<Vec<Delivery>, RegistryError> {
        self.db.read(move |tx| Ok(tx.list_deliveries(&filter, n)?)).await
    }

    /// Puts the events of `target` back in `endpoint`'s queue, delivered and
    /// dead ones included, with fresh attempts; events the endpoint had no
    /// delivery for (sent before it was added) get one if it takes their
    /// type and repository. Returns how many deliveries are now pending.
    pub async fn replay_events(&self, endpoint: &str, target: ReplayTarget) -> Result<u64, RegistryError> {
        let configured = &self.maintenance.events.endpoints;
        let Some(e) = configured.iter().find(|e| e.name == endpoint).cloned() else {
            let names: Vec<&str> = configured.iter().map(|e| e.name.as_str()).collect();
            return Err(RegistryError::BadRequest(format!("no webhook endpoint {endpoint:?}; configured: [{}]", names.join(", "))));
        };
        if let ReplayTarget::Range { from, to } = target {
            if from < 1 || to < from || to - from >= MAX_REPLAY {
                return Err(RegistryError::BadRequest(format!("need 1 <= from <= to with at most {MAX_REPLAY} events")));
            }
        }
        self.db
            .write(move |tx| -> Result<u64, RegistryError> {
                let (from, to) = match target {
                    ReplayTarget::Range { from, to } => (from, to),
                    ReplayTarget::Event(id) => match tx.outbox_id(&id)? {
                        Some(audit_id) => (audit_id, audit_id),
                        None => return Err(RegistryError::BadRequest(format!("no event with id {id:?}"))),
                    },
                };
                let now = now_ms();
                let events: Vec<OutboxEvent> = tx.outbox_after(from - 1, MAX_REPLAY as u32)?;
                for ev in events.iter().take_while(|ev| ev.audit.record.id <= to) {
                    let repository = ev.audit.record.repository.as_deref().unwrap_or_default();
                    if e.wants(&ev.event_type, repository) {
                        tx.add_delivery(&e.name, ev.audit.record.id, repository, now)?;
                    }
                }
                Ok(tx.replay_deliveries(&e.name, from, to, now)?)
            })
            .await
    }
}
