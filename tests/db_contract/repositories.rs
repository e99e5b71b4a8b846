use wharf::db::Db;

use crate::engines::{name, R};

pub async fn ensure_creates_once_and_finds_by_name(db: Db) {
    let (a, again, found, missing) = db
        .write(|tx| -> R<_> {
            let a = tx.ensure_repository(&name("team/app"))?;
            Ok((a, tx.ensure_repository(&name("team/app"))?, tx.repository_id(&name("team/app"))?, tx.repository_id(&name("other"))?))
        })
        .await
        .unwrap();
    assert_eq!(again, a);
    assert_eq!(found, Some(a));
    assert_eq!(missing, None);
    let b = db.write(|tx| tx.ensure_repository(&name("team/other"))).await.unwrap();
    assert_ne!(a, b);
    // Visible to readers once committed.
    assert_eq!(db.read(|tx| tx.repository_id(&name("team/app"))).await.unwrap(), Some(a));
}

pub async fn list_pages_in_name_order(db: Db) {
    db.write(|tx| -> R<()> {
        for n in ["c", "a/b", "b", "a"] {
            tx.ensure_repository(&name(n))?;
        }
        Ok(())
    })
    .await
    .unwrap();
    let names = |v: Vec<wharf::domain::RepoName>| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let all = db.read(|tx| tx.list_repositories(None, 10)).await.unwrap();
    assert_eq!(names(all), ["a", "a/b", "b", "c"]);
    let page = db.read(|tx| tx.list_repositories(Some("a/b"), 1)).await.unwrap();
    assert_eq!(names(page), ["b"]);
    // `last` need not be a repository that exists, or a valid name.
    let page = db.read(|tx| tx.list_repositories(Some("B!"), 10)).await.unwrap();
    assert_eq!(names(page), ["a", "a/b", "b", "c"]);
    assert!(db.read(|tx| tx.list_repositories(Some("c"), 10)).await.unwrap().is_empty());
}

pub async fn concurrent_creation_makes_one_row(db: Db) {
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.write(|tx| tx.ensure_repository(&name("race"))).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(db.read(|tx| tx.list_repositories(None, 10)).await.unwrap().len(), 1);
}
