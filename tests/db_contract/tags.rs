use std::collections::HashSet;

use wharf::db::tags::TagRow;
use wharf::db::Db;
use wharf::domain::Digest;

use crate::engines::{digest, tag, R};
use crate::manifests::{manifest, repo};

/// Stores `n` manifests in the repository and returns their digests.
async fn manifests(db: &Db, r: wharf::db::RepoId, n: usize) -> Vec<Digest> {
    let ds: Vec<Digest> = (0..n).map(|_| digest()).collect();
    let d2 = ds.clone();
    db.write(move |tx| -> R<()> {
        for d in &d2 {
            tx.insert_manifest(r, &manifest(d, None, d.as_str().as_bytes()), &[], "a")?;
        }
        Ok(())
    })
    .await
    .unwrap();
    ds
}

pub async fn set_move_list_and_delete(db: Db) {
    let r = repo(&db, "a").await;
    let ds = manifests(&db, r, 2).await;
    let (m1, m2) = (ds[0].clone(), ds[1].clone());
    let (a, b) = (m1.clone(), m2.clone());
    let moves = db
        .write(move |tx| -> R<_> {
            let created = tx.set_tag(r, &tag("v1"), &a)?;
            let same = tx.set_tag(r, &tag("v1"), &a)?;
            let moved = tx.set_tag(r, &tag("v1"), &b)?;
            tx.set_tag(r, &tag("latest"), &b)?;
            tx.set_tag(r, &tag("old"), &a)?;
            Ok((created, same, moved, tx.tag_target(r, &tag("v1"))?, tx.tag_target(r, &tag("nope"))?))
        })
        .await
        .unwrap();
    assert_eq!(moves, (None, None, Some(m1.clone()), Some(m2.clone()), None));
    let b2 = m2.clone();
    let (list, page, at_b, all) = db
        .read(move |tx| -> R<_> {
            Ok((tx.list_tags(r, None, 10)?, tx.list_tags(r, Some("latest"), 1)?, tx.tags_pointing_at(r, &b2)?, tx.all_tags(r)?))
        })
        .await
        .unwrap();
    let names = |v: &[wharf::domain::Tag]| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(names(&list), ["latest", "old", "v1"]);
    assert_eq!(names(&page), ["old"]);
    assert_eq!(names(&at_b), ["latest", "v1"]);
    assert_eq!(
        all.iter().map(|t: &TagRow| (t.name.to_string(), t.digest.clone())).collect::<Vec<_>>(),
        [("latest".to_string(), m2.clone()), ("old".to_string(), m1.clone()), ("v1".to_string(), m2.clone())]
    );
    assert!(all.iter().all(|t| t.updated_at > 0));
    let b3 = m2.clone();
    let (deleted, again, swept, left) = db
        .write(move |tx| -> R<_> {
            let deleted = tx.delete_tag(r, &tag("old"))?;
            let again = tx.delete_tag(r, &tag("old"))?;
            let swept = tx.delete_tags_pointing_at(r, &b3)?;
            Ok((deleted, again, swept, tx.list_tags(r, None, 10)?))
        })
        .await
        .unwrap();
    assert!(deleted && !again);
    let mut swept = names(&swept);
    swept.sort();
    assert_eq!(swept, ["latest", "v1"]);
    assert!(left.is_empty());
    // A tag must point at a manifest of its repository.
    let stranger = digest();
    assert!(db.write(move |tx| tx.set_tag(r, &tag("x"), &stranger)).await.is_err());
}

pub async fn history_is_newest_first_and_pages(db: Db) {
    let r = repo(&db, "a").await;
    let ds = manifests(&db, r, 2).await;
    let d2 = ds.clone();
    db.write(move |tx| -> R<()> {
        tx.record_tag_change(r, &tag("v1"), Some(&d2[0]), "alice")?;
        tx.record_tag_change(r, &tag("other"), Some(&d2[0]), "alice")?;
        tx.record_tag_change(r, &tag("v1"), Some(&d2[1]), "bob")?;
        tx.record_tag_change(r, &tag("v1"), None, "carol")?;
        Ok(())
    })
    .await
    .unwrap();
    let all = db.read(move |tx| tx.tag_history(r, &tag("v1"), None, 10)).await.unwrap();
    let seen: Vec<_> = all.iter().map(|e| (e.digest.clone(), e.actor.as_str())).collect();
    assert_eq!(seen, [(None, "carol"), (Some(ds[1].clone()), "bob"), (Some(ds[0].clone()), "alice")]);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id && w[0].created_at >= w[1].created_at));
    let before = all[0].id;
    let page = db.read(move |tx| tx.tag_history(r, &tag("v1"), Some(before), 1)).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].actor, "bob");
}

/// Many tasks move one tag; each learns the target it replaced. Every
/// digest but the last set is replaced exactly once, and none twice.
pub async fn concurrent_moves_return_each_previous_target_once(db: Db) {
    let r = repo(&db, "a").await;
    let ds = manifests(&db, r, 24).await;
    let tasks: Vec<_> = ds
        .iter()
        .cloned()
        .map(|d| {
            let db = db.clone();
            tokio::spawn(async move { db.write(move |tx| tx.set_tag(r, &tag("moving"), &d)).await })
        })
        .collect();
    let mut previous = Vec::new();
    for t in tasks {
        if let Some(p) = t.await.unwrap().unwrap() {
            previous.push(p);
        }
    }
    let last = db.read(move |tx| tx.tag_target(r, &tag("moving"))).await.unwrap().expect("tag set");
    let unique: HashSet<_> = previous.iter().cloned().collect();
    assert_eq!(unique.len(), previous.len(), "a previous target was returned twice");
    assert_eq!(previous.len(), ds.len() - 1);
    assert!(!unique.contains(&last));
    assert_eq!(unique.len() + 1, ds.iter().collect::<HashSet<_>>().len());
}
