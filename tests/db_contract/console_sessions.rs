use wharf::db::console_sessions::ConsoleSessionRow;
use wharf::db::Db;

use crate::engines::R;

fn row(account: &str, csrf: &str, expires_at: i64) -> ConsoleSessionRow {
    ConsoleSessionRow { account: account.into(), csrf: csrf.into(), created_at: 1_000, expires_at }
}

pub async fn console_sessions_expire_and_end(db: Db) {
    db.write(|tx| -> R<()> {
        tx.create_console_session("h-alice", &row("alice", "c1", 10_000))?;
        tx.create_console_session("h-old", &row("bob", "c2", 2_000))?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(db.read(|tx| tx.console_session("h-alice", 5_000)).await.unwrap(), Some(row("alice", "c1", 10_000)));
    assert_eq!(db.read(|tx| tx.console_session("h-missing", 5_000)).await.unwrap(), None);
    // Expired at its expiry instant, even before any sweep.
    assert_eq!(db.read(|tx| tx.console_session("h-old", 2_000)).await.unwrap(), None);
    assert!(db.read(|tx| tx.console_session("h-old", 1_999)).await.unwrap().is_some());
    // The same key twice is refused: a session id is never reused.
    assert!(db.write(|tx| tx.create_console_session("h-alice", &row("mallory", "x", 9_000))).await.is_err());
    // Ending one session sweeps the expired ones and leaves the others.
    db.write(|tx| tx.delete_console_session("h-missing", 5_000)).await.unwrap();
    assert_eq!(db.read(|tx| tx.console_session("h-old", 1_999)).await.unwrap(), None);
    assert!(db.read(|tx| tx.console_session("h-alice", 5_000)).await.unwrap().is_some());
    db.write(|tx| tx.delete_console_session("h-alice", 5_000)).await.unwrap();
    assert_eq!(db.read(|tx| tx.console_session("h-alice", 5_000)).await.unwrap(), None);
}
