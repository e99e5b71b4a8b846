//! The SQLite schema: every migration in order, applied at start-up.
//! Files are never edited once landed; a change is a new file.

use rusqlite_migration::{Migrations, M};

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../../migrations/0001_core.sql")),
        M::up(include_str!("../../../migrations/0002_governance.sql")),
        M::up(include_str!("../../../migrations/0003_access_control.sql")),
        M::up(include_str!("../../../migrations/0004_gc.sql")),
        M::up(include_str!("../../../migrations/0005_account_lifecycle.sql")),
        M::up(include_str!("../../../migrations/0006_layer_index.sql")),
        M::up(include_str!("../../../migrations/0007_release_diff.sql")),
        M::up(include_str!("../../../migrations/0008_release_verdicts.sql")),
        M::up(include_str!("../../../migrations/0009_backup.sql")),
        M::up(include_str!("../../../migrations/0010_events.sql")),
        M::up(include_str!("../../../migrations/0011_nodes.sql")),
        M::up(include_str!("../../../migrations/0012_console_sessions.sql")),
        M::up(include_str!("../../../migrations/0013_job_leases.sql")),
        M::up(include_str!("../../../migrations/0014_login_failures.sql")),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().expect("valid migrations");
    }
}
