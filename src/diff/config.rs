//! Two image configurations (image-spec `config.md`) compared field by field.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// One changed field: what it was and what it is (`null` = not set).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigChange {
    pub field: &'static str,
    pub from: Value,
    pub to: Value,
}

/// Fields of `config` compared as whole values.
const PLAIN: &[&str] = &["Cmd", "Entrypoint", "User", "WorkingDir", "StopSignal", "Healthcheck"];
/// Fields of `config` that are sets (`{"80/tcp": {}}`): compared as sorted key lists.
const SETS: &[&str] = &["ExposedPorts", "Volumes"];

fn field<'a>(config: &'a Value, name: &str) -> &'a Value {
    config.get("config").and_then(|c| c.get(name)).unwrap_or(&Value::Null)
}

/// `["A=1", "B"]` as `{"A": "1", "B": ""}`.
fn env_map(config: &Value) -> BTreeMap<String, String> {
    field(config, "Env")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.to_owned(), String::new()),
        })
        .collect()
}

fn string_map(value: &Value) -> BTreeMap<String, Value> {
    value.as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

/// Only the names whose value differs, on each side (`null` = absent).
fn changed_names(from: &BTreeMap<String, Value>, to: &BTreeMap<String, Value>) -> Option<(Value, Value)> {
    let (mut a, mut b) = (Map::new(), Map::new());
    for name in from.keys().chain(to.keys()) {
        let (x, y) = (from.get(name), to.get(name));
        if x != y {
            a.insert(name.clone(), x.cloned().unwrap_or(Value::Null));
            b.insert(name.clone(), y.cloned().unwrap_or(Value::Null));
        }
    }
    (!a.is_empty()).then_some((Value::Object(a), Value::Object(b)))
}

fn set_keys(value: &Value) -> Value {
    match value.as_object() {
        Some(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            json!(keys)
        }
        None => Value::Null,
    }
}

/// The `created_by` line of each history entry (image order).
fn history_lines(config: &Value) -> Vec<Value> {
    config
        .get("history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|h| h.get("created_by").cloned().unwrap_or(Value::Null))
        .collect()
}

/// The history line that created each layer: history entries marked
/// `empty_layer` made no layer. `None` where the history is shorter.
pub fn layer_history(config: &Value) -> Vec<Option<String>> {
    config
        .get("history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|h| h.get("empty_layer").and_then(Value::as_bool) != Some(true))
        .map(|h| h.get("created_by").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Every field that differs between two configurations.
pub fn diff_configs(from: &Value, to: &Value) -> Vec<ConfigChange> {
    let mut changes = Vec::new();
    for key in ["os", "architecture"] {
        let (a, b) = (from.get(key).unwrap_or(&Value::Null), to.get(key).unwrap_or(&Value::Null));
        if a != b {
            changes.push(ConfigChange { field: key, from: a.clone(), to: b.clone() });
        }
    }
    let as_values = |m: BTreeMap<String, String>| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    if let Some((a, b)) = changed_names(&as_values(env_map(from)), &as_values(env_map(to))) {
        changes.push(ConfigChange { field: "Env", from: a, to: b });
    }
    for &name in PLAIN {
        let (a, b) = (field(from, name), field(to, name));
        if a != b {
            changes.push(ConfigChange { field: name, from: a.clone(), to: b.clone() });
        }
    }
    for &name in SETS {
        let (a, b) = (set_keys(field(from, name)), set_keys(field(to, name)));
        if a != b {
            changes.push(ConfigChange { field: name, from: a, to: b });
        }
    }
    if let Some((a, b)) = changed_names(&string_map(field(from, "Labels")), &string_map(field(to, "Labels"))) {
        changes.push(ConfigChange { field: "Labels", from: a, to: b });
    }
    let (a, b) = (history_lines(from), history_lines(to));
    if a != b {
        changes.push(ConfigChange { field: "history", from: json!(a), to: json!(b) });
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_only_what_changed() {
        let from = json!({"os": "linux", "config": {"Env": ["PATH=/bin", "A=1"], "User": "root", "ExposedPorts": {"80/tcp": {}},
            "Labels": {"keep": "1", "v": "1"}}, "history": [{"created_by": "ADD x"}, {"created_by": "ENV A=1", "empty_layer": true}]});
        let to = json!({"os": "linux", "config": {"Env": ["PATH=/bin", "B=2"], "User": "app", "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
            "Labels": {"keep": "1", "v": "2"}}, "history": [{"created_by": "ADD x"}, {"created_by": "ENV A=1", "empty_layer": true}]});
        let changes = diff_configs(&from, &to);
        let fields: Vec<&str> = changes.iter().map(|c| c.field).collect();
        assert_eq!(fields, ["Env", "User", "ExposedPorts", "Labels"]);
        assert_eq!(changes[0].from, json!({"A": "1", "B": null}));
        assert_eq!(changes[0].to, json!({"A": null, "B": "2"}));
        assert_eq!(changes[2].to, json!(["443/tcp", "80/tcp"]));
        assert_eq!(changes[3].from, json!({"v": "1"}));
        assert_eq!(layer_history(&from), [Some("ADD x".to_string())]);
        assert!(diff_configs(&from, &from).is_empty());
    }
}
