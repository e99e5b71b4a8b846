//! Scheduled maintenance: retention and garbage collection at the intervals
//! the configuration sets. The tasks live on the server's runtime and end
//! with it; a run cut short is finished by the next one.

use std::time::Duration;

use crate::domain::Actor;
use crate::registry::Registry;

pub fn start(registry: &Registry) {
    let m = registry.maintenance();
    if let Some(every) = m.retention.schedule {
        let registry = registry.clone();
        every_interval(every, "retention", move || {
            let registry = registry.clone();
            async move { registry.run_retention(&Actor::system(), false).await.map(drop) }
        });
    }
    if let Some(every) = m.gc.schedule {
        let registry = registry.clone();
        every_interval(every, "gc", move || {
            let registry = registry.clone();
            async move { registry.run_gc(&Actor::system(), false).await.map(drop) }
        });
    }
}

fn every_interval<F, Fut>(every: Duration, name: &'static str, job: F)
where
    F: Fn() -> Fut + 'static,
    Fut: std::future::Future<Output = Result<(), crate::registry::RegistryError>> + 'static,
{
    tracing::info!(job = name, every = %humantime::format_duration(every), "scheduled");
    actix_web::rt::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = job().await {
                tracing::error!(job = name, error = %e, "scheduled run failed; the next run retries");
            }
        }
    });
}
