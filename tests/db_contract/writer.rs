use wharf::db::{Db, DbError, Tx};

use crate::engines::{digest, name};

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

/// Writes queued together (both engines commit them as one group, each in
/// a savepoint) keep their own fate: the failing, panicking and refused
/// ones (a statement the database rejects, which on PostgreSQL aborts the
/// transaction until its savepoint is rolled back) leave nothing behind and
/// get their own error, the others all commit, whether they wait for the
/// disk or defer their sync (every fifth write, mixed into the same groups).
pub async fn queued_writes_fail_or_commit_each_on_its_own(db: Db) {
    // Hold the writer busy so the writes below queue up behind it.
    let blocker = {
        let db = db.clone();
        tokio::spawn(async move {
            db.write(|tx| -> Result<(), DbError> {
                std::thread::sleep(std::time::Duration::from_millis(300));
                tx.ensure_repository(&name("blocker"))?;
                Ok(())
            })
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let work = move |tx: &dyn Tx| -> Result<(), DbError> {
                    match i % 4 {
                        0 => {
                            tx.ensure_repository(&name(&format!("failed-{i:02}")))?;
                            Err(DbError::Corrupt("on purpose"))
                        }
                        1 => {
                            tx.ensure_repository(&name(&format!("panicked-{i:02}")))?;
                            panic!("a bug in write {i}");
                        }
                        2 => {
                            tx.ensure_repository(&name(&format!("kept-{i:02}")))?;
                            Ok(())
                        }
                        _ => {
                            // A link to a blob that has no row: a foreign key violation.
                            let repo = tx.ensure_repository(&name(&format!("refused-{i:02}")))?;
                            tx.link_blob(repo, &digest())
                        }
                    }
                };
                if i % 5 == 1 {
                    db.write_deferred(work).await
                } else {
                    db.write(work).await
                }
            })
        })
        .collect();
    blocker.await.unwrap().unwrap();
    for (i, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        match i % 4 {
            0 => assert!(matches!(result, Err(DbError::Corrupt("on purpose"))), "write {i}: {result:?}"),
            1 => assert!(matches!(result, Err(DbError::Panicked(ref m)) if m.contains(&format!("write {i}"))), "write {i}: {result:?}"),
            2 => assert!(result.is_ok(), "write {i}: {result:?}"),
            _ => assert!(matches!(result, Err(DbError::Sqlite(_) | DbError::Postgres(_))), "write {i}: {result:?}"),
        }
    }
    let names = db.read(|tx| tx.list_repositories(None, 100)).await.unwrap();
    let mut expected: Vec<String> = (0..64).filter(|i| i % 4 == 2).map(|i| format!("kept-{i:02}")).collect();
    expected.insert(0, "blocker".to_owned());
    assert_eq!(names.iter().map(|n| n.to_string()).collect::<Vec<_>>(), expected);
}
