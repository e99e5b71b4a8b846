//! `wharf events list | replay`: webhook deliveries on a running server
//! (`/api/v1/events/...`, admin only).

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{table, text};
use super::error::CliError;
use super::remote::{ClientArgs, Remote};

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Deliveries, oldest event first: pending ones, delivered ones and dead letters.
    List {
        /// Only this endpoint's deliveries.
        #[arg(long)]
        endpoint: Option<String>,
        /// pending, delivered or dead (dead letters).
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Send events to an endpoint again: one by id, or a range of audit ids.
    Replay {
        endpoint: String,
        /// An event id (the hash of its audit entry).
        #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present_all = ["from", "to"])]
        event: Option<String>,
        #[arg(long, requires = "to")]
        from: Option<i64>,
        #[arg(long, requires = "from")]
        to: Option<i64>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub fn run(command: EventsCommand) -> Result<(), CliError> {
    match command {
        EventsCommand::List { endpoint, state, limit, client } => {
            let remote = Remote::connect(&client)?;
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("n", &limit.to_string());
            if let Some(e) = &endpoint {
                query.append_pair("endpoint", e);
            }
            if let Some(s) = &state {
                query.append_pair("state", s);
            }
            let v = remote.request(reqwest::Method::GET, &format!("/api/v1/events/deliveries?{}", query.finish()), None)?;
            if remote.json {
                println!("{v}");
                return Ok(());
            }
            let rows = v["deliveries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d: &Value| {
                    ["audit_id", "event_type", "repository", "endpoint", "state", "attempts", "last_error", "event_id"]
                        .iter()
                        .map(|k| text(&d[*k]))
                        .collect()
                })
                .collect();
            table(&["AUDIT ID", "TYPE", "REPOSITORY", "ENDPOINT", "STATE", "ATTEMPTS", "LAST ERROR", "EVENT ID"], rows);
            Ok(())
        }
        EventsCommand::Replay { endpoint, event, from, to, client } => {
            let remote = Remote::connect(&client)?;
            let body = match event {
                Some(id) => json!({"endpoint": endpoint, "event": id}),
                None => json!({"endpoint": endpoint, "from": from, "to": to}),
            };
            let v = remote.request(reqwest::Method::POST, "/api/v1/events/replay", Some(body))?;
            if remote.json {
                println!("{v}");
            } else {
                println!("{} deliveries to {endpoint} are pending again", text(&v["replayed"]));
            }
            Ok(())
        }
    }
}
