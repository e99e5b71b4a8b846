//! Which audited changes are events (issue 15, durable events), and their
//! CloudEvents `type`. Account changes and access refusals are audited but
//! are no events: webhooks announce what happened to content.

use serde_json::Value;

use super::AuditAction;

/// Every event type, as webhook endpoints name them in `types`.
pub const EVENT_TYPES: [&str; 8] = [
    "dev.wharf.push",
    "dev.wharf.tag",
    "dev.wharf.delete",
    "dev.wharf.promotion",
    "dev.wharf.rollback",
    "dev.wharf.gate_refusal",
    "dev.wharf.retention",
    "dev.wharf.gc",
];

/// The event type of an audited change, `None` when it is no event.
/// Retention deletions are told apart by the `by` their audit row records.
pub fn event_type(action: AuditAction, details: &Value) -> Option<&'static str> {
    use AuditAction::*;
    let by_retention = details.get("by").and_then(Value::as_str) == Some("retention");
    Some(match action {
        ManifestPush => "dev.wharf.push",
        TagCreate | TagMove => "dev.wharf.tag",
        ManifestDelete | TagDelete if by_retention => "dev.wharf.retention",
        ManifestDelete | TagDelete | BlobDelete => "dev.wharf.delete",
        Promotion => "dev.wharf.promotion",
        Rollback => "dev.wharf.rollback",
        PromotionDenied | RollbackDenied => "dev.wharf.gate_refusal",
        // A CD system hears of each run once, with what it freed, and of each blob.
        BlobCollect | GcRun => "dev.wharf.gc",
        // A run's own row is bookkeeping: what it deleted is announced
        // already, one event per blob (`dev.wharf.gc`) or tag and manifest
        // (`dev.wharf.retention`), and a run that deleted nothing changed no
        // content.
        AccessDenied | PolicyChange | AccountCreate | AccountDelete | AccountUpdate | GrantCreate | GrantDelete | UploadExpire
        | RetentionRun => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_changes_are_events_and_account_changes_are_not() {
        assert_eq!(event_type(AuditAction::ManifestPush, &json!({})), Some("dev.wharf.push"));
        assert_eq!(event_type(AuditAction::TagDelete, &json!({"by": "retention"})), Some("dev.wharf.retention"));
        assert_eq!(event_type(AuditAction::TagDelete, &json!({})), Some("dev.wharf.delete"));
        assert_eq!(event_type(AuditAction::AccountCreate, &json!({})), None);
        assert_eq!(event_type(AuditAction::GcRun, &json!({"holder": "a"})), Some("dev.wharf.gc"));
        assert_eq!(event_type(AuditAction::RetentionRun, &json!({"holder": "a"})), None);
        for a in AuditAction::ALL {
            if let Some(t) = event_type(a, &json!({})) {
                assert!(EVENT_TYPES.contains(&t), "{t}");
            }
        }
    }
}
