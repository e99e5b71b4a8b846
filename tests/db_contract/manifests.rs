use wharf::db::manifests::{Manifest, ManifestFacts, ManifestHead, ManifestRefs, RefKind};
use wharf::db::{Db, RepoId};
use wharf::domain::Digest;

use crate::engines::{digest, name, R};

pub fn manifest(digest: &Digest, subject: Option<&Digest>, content: &[u8]) -> Manifest {
    Manifest {
        digest: digest.clone(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        artifact_type: subject.map(|_| "application/vnd.example.sig".into()),
        subject: subject.cloned(),
        annotations: subject.map(|_| r#"{"k":"v"}"#.into()),
        content: content.to_vec(),
    }
}

pub async fn repo(db: &Db, n: &str) -> RepoId {
    let n = name(n);
    db.write(move |tx| tx.ensure_repository(&n)).await.unwrap()
}

pub async fn insert_get_head_and_delete(db: Db) {
    let r = repo(&db, "a").await;
    let other = repo(&db, "b").await;
    let (m, layer) = (digest(), digest());
    let row = manifest(&m, None, b"{\"schemaVersion\":2}");
    let (row2, m2, l2) = (row.clone(), m.clone(), layer.clone());
    let (first, again, got, head, by, elsewhere) = db
        .write(move |tx| -> R<_> {
            tx.insert_blob(&l2, 10)?;
            let first = tx.insert_manifest(r, &row2, &[(l2.clone(), RefKind::Blob)], "alice")?;
            let again = tx.insert_manifest(r, &row2, &[], "bob")?;
            Ok((first, again, tx.manifest(r, &m2)?, tx.manifest_head(r, &m2)?, tx.manifest_pushed_by(r, &m2)?, tx.manifest(other, &m2)?))
        })
        .await
        .unwrap();
    assert!(first && !again);
    assert_eq!(got, Some(row.clone()));
    assert_eq!(head, Some(ManifestHead { media_type: row.media_type.clone(), size: row.content.len() as u64 }));
    assert_eq!(by.as_deref(), Some("alice"), "the first pusher is kept");
    assert_eq!(elsewhere, None, "manifests are per repository");
    let m3 = m.clone();
    let (deleted, deleted_again, refs, gone) = db
        .write(move |tx| -> R<_> {
            Ok((tx.delete_manifest(r, &m3)?, tx.delete_manifest(r, &m3)?, tx.manifest_references(r, &m3)?, tx.manifest_head(r, &m3)?))
        })
        .await
        .unwrap();
    assert!(deleted && !deleted_again);
    assert_eq!(refs, ManifestRefs::default(), "references go with the manifest");
    assert_eq!(gone, None);
}

pub async fn references_children_and_facts(db: Db) {
    let r = repo(&db, "a").await;
    let (index, child, config, layer) = (digest(), digest(), digest(), digest());
    let (i2, c2, cf, ly) = (index.clone(), child.clone(), config.clone(), layer.clone());
    let (refs, child_refs, children, mut facts) = db
        .write(move |tx| -> R<_> {
            tx.insert_manifest(r, &manifest(&c2, None, b"child"), &[(cf.clone(), RefKind::Blob), (ly.clone(), RefKind::Blob)], "a")?;
            tx.insert_manifest(r, &manifest(&i2, None, b"index"), &[(c2.clone(), RefKind::Manifest)], "a")?;
            Ok((tx.manifest_references(r, &i2)?, tx.manifest_references(r, &c2)?, tx.manifest_children(r)?, tx.manifest_facts(r)?))
        })
        .await
        .unwrap();
    assert_eq!(refs, ManifestRefs { children: vec![child.clone()], blobs: vec![] });
    let mut blobs = vec![config, layer];
    blobs.sort();
    assert_eq!(child_refs, ManifestRefs { children: vec![], blobs });
    assert_eq!(children, [(index.clone(), child.clone())]);
    facts.sort_by(|a, b| a.digest.cmp(&b.digest));
    let mut want = [index, child];
    want.sort();
    assert_eq!(facts.iter().map(|f: &ManifestFacts| f.digest.clone()).collect::<Vec<_>>(), want);
    assert!(facts.iter().all(|f| f.subject.is_none() && f.created_at > 0));
}

pub async fn referrers_by_subject(db: Db) {
    let r = repo(&db, "a").await;
    let other = repo(&db, "b").await;
    let (subject, unrelated) = (digest(), digest());
    let sigs: Vec<Digest> = (0..3).map(|_| digest()).collect();
    let (s2, sg) = (subject.clone(), sigs.clone());
    db.write(move |tx| -> R<()> {
        tx.insert_manifest(r, &manifest(&s2, None, b"subject"), &[], "a")?;
        for (n, s) in sg.iter().enumerate() {
            tx.insert_manifest(r, &manifest(s, Some(&s2), format!("sig{n}").as_bytes()), &[], "a")?;
        }
        Ok(())
    })
    .await
    .unwrap();
    let (s3, u3) = (subject.clone(), unrelated.clone());
    let (all, two, digests, none, elsewhere, facts) = db
        .read(move |tx| -> R<_> {
            Ok((
                tx.referrers(r, &s3, 10)?,
                tx.referrers(r, &s3, 2)?,
                tx.referrer_digests(r, &s3)?,
                tx.referrers(r, &u3, 10)?,
                tx.referrer_digests(other, &s3)?,
                tx.manifest_facts(r)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(two.len(), 2, "limit");
    assert!(all.iter().all(|x| x.artifact_type.as_deref() == Some("application/vnd.example.sig")
        && x.annotations.as_deref() == Some(r#"{"k":"v"}"#)
        && x.size == 4));
    let mut want = sigs.clone();
    want.sort();
    assert_eq!(digests, want, "digest order");
    let mut listed: Vec<_> = all.iter().map(|x| x.digest.clone()).collect();
    listed.sort();
    assert_eq!(listed, want);
    assert!(none.is_empty() && elsewhere.is_empty());
    assert_eq!(facts.iter().filter(|f| f.subject.as_ref() == Some(&subject)).count(), 3);
}
