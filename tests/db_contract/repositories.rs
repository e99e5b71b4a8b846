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

pub async fn counts_tags_and_manifests_of_the_named_repositories(db: Db) {
    use crate::engines::{digest, tag};
    use crate::manifests::manifest;
    use wharf::db::repositories::RepositoryCounts;
    db.write(|tx| -> R<()> {
        let busy = tx.ensure_repository(&name("team/busy"))?;
        tx.ensure_repository(&name("team/empty"))?;
        let other = tx.ensure_repository(&name("other"))?;
        let (a, b, c) = (digest(), digest(), digest());
        for d in [&a, &b, &c] {
            tx.insert_manifest(busy, &manifest(d, None, d.as_str().as_bytes()), &[], "t")?;
        }
        tx.insert_manifest(other, &manifest(&a, None, a.as_str().as_bytes()), &[], "t")?;
        for (t, d) in [("v1", &a), ("v2", &b), ("latest", &b)] {
            tx.set_tag(busy, &tag(t), d)?;
        }
        Ok(())
    })
    .await
    .unwrap();
    let asked = vec![name("team/empty"), name("nowhere"), name("team/busy")];
    let counts = db.read(move |tx| tx.repository_counts(&asked)).await.unwrap();
    let expected = [
        RepositoryCounts { name: name("team/busy"), tags: 3, manifests: 3 },
        RepositoryCounts { name: name("team/empty"), tags: 0, manifests: 0 },
    ];
    assert_eq!(counts, expected, "in name order, the missing name left out, other repositories not counted");
    assert!(db.read(|tx| tx.repository_counts(&[])).await.unwrap().is_empty());
}
