//! Durable events: `event_outbox` (one row per audited change that is an
//! event, written in the audit row's transaction), `event_cursors` and
//! `event_deliveries` (the state of each event at each webhook endpoint).

use super::DbError;
use crate::domain::StoredAudit;

/// An outbox event with the audit row it announces (its id is the row's hash).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub event_type: String,
    pub audit: StoredAudit,
}

/// Where one event stands at one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Given up after the endpoint's attempt limit; replay puts it back.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead].into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub endpoint: String,
    pub audit_id: i64,
    /// '' for an event of no repository.
    pub repository: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub updated_at: i64,
    /// The event id: its audit entry's hash.
    pub event_id: String,
    pub event_type: String,
}

/// Which deliveries a listing asks for; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub endpoint: Option<String>,
    pub state: Option<DeliveryState>,
    /// Only events with an audit id greater than this (paging, oldest first).
    pub after_id: Option<i64>,
}

pub trait Events {
    /// Adds audit row `audit_id` to the outbox (inside its transaction).
    fn enqueue_event(&self, audit_id: i64, event_type: &str, repository: &str) -> Result<(), DbError>;
    /// Outbox events with audit id > `after`, oldest first.
    fn outbox_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxEvent>, DbError>;
    fn outbox_event(&self, audit_id: i64) -> Result<Option<OutboxEvent>, DbError>;
    /// The last outbox id turned into deliveries for `endpoint`; `None`
    /// for an endpoint never seen.
    fn event_cursor(&self, endpoint: &str) -> Result<Option<i64>, DbError>;
    /// The newest outbox id (0: empty).
    fn outbox_head(&self) -> Result<i64, DbError>;
    /// The audit id of the outbox event with this id (hash).
    fn outbox_id(&self, event_id: &str) -> Result<Option<i64>, DbError>;
    fn set_event_cursor(&self, endpoint: &str, after_id: i64) -> Result<(), DbError>;
    /// A pending delivery due now; nothing if the pair already has one.
    fn add_delivery(&self, endpoint: &str, audit_id: i64, repository: &str, now: i64) -> Result<(), DbError>;
    /// Pending deliveries of `endpoint`, oldest event first.
    fn pending_deliveries(&self, endpoint: &str, limit: u32) -> Result<Vec<Delivery>, DbError>;
    /// Records an attempt's outcome; false if there is no such delivery.
    fn update_delivery(&self, d: &Delivery) -> Result<bool, DbError>;
    /// Matching deliveries, oldest event first.
    fn list_deliveries(&self, filter: &DeliveryFilter, limit: u32) -> Result<Vec<Delivery>, DbError>;
    /// Puts the deliveries of `endpoint` for events `from..=to` back to
    /// pending with no attempts, due at `now`; returns how many.
    fn replay_deliveries(&self, endpoint: &str, from: i64, to: i64, now: i64) -> Result<u64, DbError>;
    /// Deliveries not yet delivered nor dead, over all endpoints.
    fn pending_delivery_count(&self) -> Result<i64, DbError>;
}
