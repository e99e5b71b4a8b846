//! Durable events: delivers the outbox (`db::events`) to the configured
//! webhook endpoints.
//!
//! Layering: called by `jobs` (which schedules [`Dispatcher::run`]); calls
//! `db`, `config` and `domain` only. Everything it knows lives in the
//! database (outbox, per-endpoint cursor, delivery state), so a restart, or
//! another node taking over, resumes where delivery stopped: nothing is
//! held in memory only. Delivery is at least once (a crash after the POST
//! and before its row is updated sends it again); receivers deduplicate by
//! the event id, the audit entry's hash.
//!
//! Order: per endpoint and repository, an event is sent only once every
//! earlier one is delivered or dead, so a receiver sees a repository's
//! history in order. Repositories do not wait for each other.

pub mod payload;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};

use crate::config::events::{EndpointConfig, EventsConfig};
use crate::db::events::{Delivery, DeliveryState};
use crate::db::{now_ms, Db, DbError};

/// New outbox rows looked at per endpoint per pass.
const SCAN_BATCH: u32 = 500;
/// Pending deliveries looked at per endpoint per pass.
const PENDING_BATCH: u32 = 1000;
/// Requests in flight per endpoint (each to a different repository).
const PARALLEL: usize = 8;
/// Last error text kept per delivery.
const MAX_ERROR: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("webhook HTTP client: {0}")]
    Client(reqwest::Error),
}

#[derive(Clone)]
pub struct Dispatcher {
    db: Db,
    config: Arc<EventsConfig>,
    client: reqwest::Client,
}

impl Dispatcher {
    /// `None` when no endpoint is configured.
    pub fn new(db: Db, config: &EventsConfig) -> Result<Option<Self>, EventsError> {
        if config.endpoints.is_empty() {
            return Ok(None);
        }
        // No redirects: a webhook answers where it was configured.
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(EventsError::Client)?;
        Ok(Some(Self { db, config: Arc::new(config.clone()), client }))
    }

    pub fn poll_interval(&self) -> Duration {
        self.config.poll_interval
    }

    /// Delivers what is due, pass after pass while passes make progress;
    /// returns when nothing more is due now. One call is one scheduled run
    /// (wrap it like any `jobs` schedule, e.g. under a cluster lease).
    pub async fn run(&self) -> Result<(), EventsError> {
        loop {
            let mut progress = false;
            for endpoint in &self.config.endpoints {
                progress |= self.pass(endpoint).await?;
            }
            let backlog = self.db.read(|tx| tx.pending_delivery_count()).await?;
            metrics::gauge!("wharf_events_backlog").set(backlog as f64);
            if !progress {
                return Ok(());
            }
        }
    }

    /// One pass over one endpoint: turns new outbox rows into deliveries,
    /// then attempts the due head of each repository's queue. True if any
    /// delivery changed state.
    async fn pass(&self, endpoint: &EndpointConfig) -> Result<bool, EventsError> {
        let name = endpoint.name.clone();
        // Most polls find nothing new: look before taking the writer.
        let nothing_new = self
            .db
            .read(move |tx| -> Result<bool, DbError> {
                Ok(match tx.event_cursor(&name)? {
                    Some(cursor) => tx.outbox_after(cursor, 1)?.is_empty(),
                    None => false,
                })
            })
            .await?;
        // A full batch scanned leaves more to scan: that is progress too.
        let more = !nothing_new && self.scan(endpoint).await?;
        let name = endpoint.name.clone();
        let pending = self.db.read(move |tx| tx.pending_deliveries(&name, PENDING_BATCH)).await?;
        let now = now_ms();
        let mut seen = HashSet::new();
        // The oldest pending delivery of each repository, if due.
        let due: Vec<Delivery> =
            pending.into_iter().filter(|d| seen.insert(d.repository.clone())).filter(|d| d.next_attempt_at <= now).collect();
        let changed = stream::iter(due).map(|d| self.attempt(endpoint, d)).buffer_unordered(PARALLEL).collect::<Vec<_>>().await;
        Ok(more || changed.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().any(|delivered| delivered))
    }

    /// Turns the outbox rows after the endpoint's cursor into its
    /// deliveries; true if it scanned a full batch.
    async fn scan(&self, endpoint: &EndpointConfig) -> Result<bool, EventsError> {
        let e = endpoint.clone();
        self.db
            .write(move |tx| -> Result<bool, DbError> {
                // A new endpoint gets the events after it was added, not the
                // whole history (replay sends older ones on request).
                let cursor = match tx.event_cursor(&e.name)? {
                    Some(cursor) => cursor,
                    None => {
                        let head = tx.outbox_head()?;
                        tx.set_event_cursor(&e.name, head)?;
                        head
                    }
                };
                let events = tx.outbox_after(cursor, SCAN_BATCH)?;
                let now = now_ms();
                for event in &events {
                    let repository = event.audit.record.repository.as_deref().unwrap_or_default();
                    if e.wants(&event.event_type, repository) {
                        tx.add_delivery(&e.name, event.audit.record.id, repository, now)?;
                    }
                }
                if let Some(last) = events.last() {
                    tx.set_event_cursor(&e.name, last.audit.record.id)?;
                }
                Ok(events.len() == SCAN_BATCH as usize)
            })
            .await
            .map_err(EventsError::from)
    }

    /// Sends one delivery and records the outcome; true if it left the
    /// pending state (delivered or dead).
    async fn attempt(&self, endpoint: &EndpointConfig, mut d: Delivery) -> Result<bool, EventsError> {
        let id = d.audit_id;
        let Some(event) = self.db.read(move |tx| tx.outbox_event(id)).await? else {
            return Ok(false);
        };
        let (body, media_type) = payload::body(&event, endpoint.format, &self.config.source);
        let mut req = self
            .client
            .post(&endpoint.url)
            .timeout(endpoint.timeout)
            .header("Content-Type", media_type)
            .header("Wharf-Event-Id", &event.audit.hash)
            .header("Wharf-Timestamp", (now_ms() / 1000).to_string());
        if let Some(secret) = &endpoint.secret {
            req = req.header("Wharf-Signature", payload::signature(secret.expose(), &body));
        }
        let outcome = match req.body(body).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(e) => Err(e.to_string()),
        };
        d.attempts += 1;
        d.updated_at = now_ms();
        let labels = [("endpoint", endpoint.name.clone())];
        match outcome {
            Ok(()) => {
                d.state = DeliveryState::Delivered;
                d.last_error = None;
                metrics::counter!("wharf_events_delivered_total", &labels).increment(1);
            }
            Err(error) => {
                metrics::counter!("wharf_events_failed_total", &labels).increment(1);
                if d.attempts >= i64::from(endpoint.max_attempts) {
                    d.state = DeliveryState::Dead;
                    metrics::counter!("wharf_events_dead_lettered_total", &labels).increment(1);
                    tracing::warn!(endpoint = endpoint.name, event = event.audit.hash, attempts = d.attempts, error, "event dead-lettered");
                } else {
                    d.next_attempt_at = d.updated_at + backoff(endpoint, d.attempts).as_millis() as i64;
                    tracing::info!(
                        endpoint = endpoint.name,
                        event = event.audit.hash,
                        attempts = d.attempts,
                        error,
                        "event delivery failed; retrying"
                    );
                }
                d.last_error = Some(error.chars().take(MAX_ERROR).collect());
            }
        }
        let left_pending = d.state != DeliveryState::Pending;
        self.db.write(move |tx| tx.update_delivery(&d)).await?;
        Ok(left_pending)
    }
}

/// The wait after the `attempts`-th failure: backoff doubled per earlier
/// failure, capped at max_backoff.
fn backoff(endpoint: &EndpointConfig, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX).min(20);
    endpoint.backoff.saturating_mul(1 << doublings).min(endpoint.max_backoff)
}
