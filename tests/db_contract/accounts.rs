use wharf::db::Db;
use wharf::domain::{AccountKind::Robot, AccountKind::User, Role, Stage};

use crate::engines::R;

pub async fn accounts_and_grants(db: Db) {
    let (alice, ci, taken) = db
        .write(|tx| -> R<_> {
            assert_eq!(tx.account_count()?, 0);
            let alice = tx.insert_account("alice", User, "hash-a", true, None)?.expect("new");
            let ci = tx.insert_account("ci", Robot, "hash-ci", false, Some(4_000_000_000_000))?.expect("new");
            // Names are unique across kinds.
            let taken = tx.insert_account("alice", Robot, "other", false, None)?;
            Ok((alice, ci, taken))
        })
        .await
        .unwrap();
    assert_ne!(alice, ci);
    assert_eq!(taken, None);
    let (count, a, missing, users, robots) = db
        .read(|tx| -> R<_> {
            Ok((
                tx.account_count()?,
                tx.account_by_name("alice")?,
                tx.account_by_name("zed")?,
                tx.list_accounts(User)?,
                tx.list_accounts(Robot)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(count, 2);
    let a = a.expect("alice");
    assert_eq!(
        (a.id, a.kind.as_str(), a.secret_hash.as_str(), a.admin, a.expires_at, a.disabled_at, a.secret_changed_at),
        (alice, "user", "hash-a", true, None, None, None)
    );
    assert!(a.created_at > 0);
    assert!(missing.is_none());
    assert_eq!(users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["alice"]);
    assert_eq!((robots[0].name.as_str(), robots[0].expires_at, robots[0].admin), ("ci", Some(4_000_000_000_000), false));

    // Secrets and disabling match on name and kind.
    let (changed, wrong_kind, disabled, first_at, again_at, enabled) = db
        .write(|tx| -> R<_> {
            let changed = tx.set_account_secret("alice", User, "hash-a2")?;
            let wrong_kind = tx.set_account_secret("alice", Robot, "x")? || tx.set_account_disabled("nobody", User, true)?;
            let disabled = tx.set_account_disabled("ci", Robot, true)?;
            let first_at = tx.account_by_name("ci")?.and_then(|a| a.disabled_at);
            tx.set_account_disabled("ci", Robot, true)?;
            let again_at = tx.account_by_name("ci")?.and_then(|a| a.disabled_at);
            tx.set_account_disabled("ci", Robot, false)?;
            Ok((changed, wrong_kind, disabled, first_at, again_at, tx.account_by_name("ci")?.and_then(|a| a.disabled_at)))
        })
        .await
        .unwrap();
    assert!(changed && !wrong_kind && disabled);
    assert!(first_at.is_some());
    assert_eq!(again_at, first_at, "disabling again keeps the first time");
    assert_eq!(enabled, None);
    let a = db.read(|tx| tx.account_by_name("alice")).await.unwrap().expect("alice");
    assert_eq!(a.secret_hash, "hash-a2");
    assert!(a.secret_changed_at.is_some());

    // Grants.
    let (g1, g2, of_alice, all, by_id, none) = db
        .write(move |tx| -> R<_> {
            let g1 = tx.insert_grant(alice, "team/*", Role::Developer, &[])?;
            let g2 = tx.insert_grant(ci, "**", Role::Releaser, &[Stage::parse("prod").expect("stage")])?;
            Ok((g1, g2, tx.grants_of(alice)?, tx.all_grants()?, tx.grant_by_id(g2)?, tx.grant_by_id(g2 + 100)?))
        })
        .await
        .unwrap();
    assert_eq!(
        of_alice.iter().map(|g| (g.id, g.account.as_str(), g.repository_glob.as_str(), g.role.as_str())).collect::<Vec<_>>(),
        [(g1, "alice", "team/*", "developer")]
    );
    assert_eq!(all.iter().map(|g| g.id).collect::<Vec<_>>(), [g1, g2]);
    let g = by_id.expect("grant");
    assert_eq!((g.account.as_str(), g.stages.iter().map(Stage::as_str).collect::<Vec<_>>()), ("ci", vec!["prod"]));
    assert!(g.created_at > 0 && none.is_none());
    let (gone, again, acct_gone, wrong_kind, grants_left, count) = db
        .write(move |tx| -> R<_> {
            let gone = tx.delete_grant(g1)?;
            let again = tx.delete_grant(g1)?;
            let wrong_kind = tx.delete_account("ci", User)?;
            let acct_gone = tx.delete_account("ci", Robot)?;
            Ok((gone, again, acct_gone, wrong_kind, tx.all_grants()?, tx.account_count()?))
        })
        .await
        .unwrap();
    assert!(gone && !again && acct_gone && !wrong_kind);
    assert!(grants_left.is_empty(), "an account's grants go with it");
    assert_eq!(count, 1);
}
