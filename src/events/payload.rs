//! The bodies webhooks receive: CloudEvents 1.0 in structured JSON mode, or
//! distribution's notification envelope for listeners written for it.

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::config::events::EventFormat;
use crate::db::events::OutboxEvent;

/// distribution's media type for its envelope.
pub const DISTRIBUTION_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";
pub const CLOUDEVENTS_MEDIA_TYPE: &str = "application/cloudevents+json";

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The body and its content type.
pub fn body(event: &OutboxEvent, format: EventFormat, source: &str) -> (Vec<u8>, &'static str) {
    let r = &event.audit.record;
    let value = match format {
        EventFormat::Cloudevents => {
            // The subject names what changed: repository:tag, repository@digest or the digest alone (GC).
            let subject = match (&r.repository, &r.reference, &r.digest) {
                (Some(repo), Some(reference), _) => Some(format!("{repo}:{reference}")),
                (Some(repo), None, Some(digest)) => Some(format!("{repo}@{digest}")),
                (Some(repo), None, None) => Some(repo.clone()),
                (None, _, digest) => digest.clone(),
            };
            json!({
                "specversion": "1.0",
                "id": event.audit.hash,
                "source": source,
                "type": event.event_type,
                "subject": subject,
                "time": time(r.created_at),
                "datacontenttype": "application/json",
                "data": {
                    "action": r.action,
                    "repository": r.repository,
                    "reference": r.reference,
                    "digest": r.digest,
                    "actor": r.actor,
                    "details": r.details,
                    "audit_id": r.id,
                },
            })
        }
        EventFormat::Distribution => {
            let action = if event.event_type == "dev.wharf.delete" { "delete" } else { "push" };
            let mut target = json!({ "repository": r.repository, "digest": r.digest });
            if let Some(tag) = &r.reference {
                target["tag"] = Value::from(tag.as_str());
            }
            // A push's audit row records the manifest's media type and size.
            for (from, to) in [("media_type", "mediaType"), ("size", "size")] {
                if let Some(v) = r.details.get(from) {
                    target[to] = v.clone();
                }
            }
            json!({ "events": [{
                "id": event.audit.hash,
                "timestamp": time(r.created_at),
                "action": action,
                "target": target,
                "actor": { "name": r.actor },
                "source": { "instanceID": source },
            }]})
        }
    };
    let media_type = match format {
        EventFormat::Cloudevents => CLOUDEVENTS_MEDIA_TYPE,
        EventFormat::Distribution => DISTRIBUTION_MEDIA_TYPE,
    };
    (value.to_string().into_bytes(), media_type)
}

/// `sha256=<hex>` of HMAC-SHA256 over the raw body.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
