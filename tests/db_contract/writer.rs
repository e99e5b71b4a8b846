use wharf::db::{Db, DbError};

use crate::engines::name;

/// An error or a panic inside a write rolls back that write only; the
/// writer keeps serving the next ones.
pub async fn a_failed_or_panicking_write_rolls_back_and_the_writer_goes_on(db: Db) {
    let failed = db
        .write(|tx| -> Result<(), DbError> {
            tx.ensure_repository(&name("rolled-back"))?;
            Err(DbError::Corrupt("on purpose"))
        })
        .await;
    assert!(matches!(failed, Err(DbError::Corrupt("on purpose"))));
    let panicked = db
        .write(|tx| -> Result<(), DbError> {
            tx.ensure_repository(&name("panicked"))?;
            panic!("a bug in a use-case");
        })
        .await;
    assert!(matches!(panicked, Err(DbError::Panicked(ref m)) if m.contains("a bug in a use-case")), "{panicked:?}");
    let read_panic = db.read(|_| -> Result<(), DbError> { panic!("a bug in a read") }).await;
    assert!(matches!(read_panic, Err(DbError::Panicked(_))));
    let ok = db.write(|tx| tx.ensure_repository(&name("after"))).await;
    assert!(ok.is_ok());
    let names = db.read(|tx| tx.list_repositories(None, 10)).await.unwrap();
    assert_eq!(names.iter().map(|n| n.to_string()).collect::<Vec<_>>(), ["after"]);
}
