//! Roles and what they allow: a pure function of an account's grants, the
//! action and the repository. Kept free of I/O so every role × action pair
//! is unit-tested here and black-box tested over HTTP.

use crate::domain::RepoGlob;

pub use crate::domain::Role;

/// Something a request wants to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
    Promote(String),
    Rollback(String),
    /// Read the audit log (global).
    ReadAudit,
    /// Manage accounts, grants and maintenance jobs (global).
    Admin,
}

impl Action {
    /// The scope word a registry token uses for this action, if any.
    pub fn scope_word(&self) -> Option<&'static str> {
        match self {
            Action::Pull => Some("pull"),
            Action::Push => Some("push"),
            Action::Delete => Some("delete"),
            _ => None,
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Action::Promote(s) => format!("promote into {s}"),
            Action::Rollback(s) => format!("roll back {s}"),
            Action::ReadAudit => "read the audit log".into(),
            Action::Admin => "administer".into(),
            other => other.scope_word().unwrap_or("?").to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub glob: RepoGlob,
    pub role: Role,
    /// Stages a releaser may promote into and roll back.
    pub stages: Vec<String>,
}

impl Grant {
    pub fn new(glob: RepoGlob, role: Role, stages: Vec<String>) -> Self {
        Self { glob, role, stages }
    }
    fn covers_everything(&self) -> bool {
        self.glob.as_str() == "**"
    }
}

/// An account's permissions.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// Everything, everywhere (the account's admin flag, or auth disabled).
    pub superuser: bool,
    pub grants: Vec<Grant>,
}

impl Permissions {
    pub fn superuser() -> Self {
        Self { superuser: true, grants: vec![] }
    }

    /// `first_stage` is the first configured stage, which developers may promote into.
    pub fn allows(&self, action: &Action, repo: Option<&str>, first_stage: &str) -> bool {
        if self.superuser {
            return true;
        }
        self.grants.iter().any(|g| grant_allows(g, action, repo, first_stage))
    }
}

fn grant_allows(g: &Grant, action: &Action, repo: Option<&str>, first_stage: &str) -> bool {
    // Global actions need a grant on every repository.
    match action {
        Action::Admin => return g.role == Role::Admin && g.covers_everything(),
        Action::ReadAudit => return matches!(g.role, Role::Auditor | Role::Admin) && g.covers_everything(),
        _ => {}
    }
    let Some(repo) = repo else { return false };
    if !g.glob.is_match(repo) {
        return false;
    }
    match (g.role, action) {
        (Role::Admin, _) => true,
        (_, Action::Pull) => true,
        (Role::Developer | Role::Releaser, Action::Push | Action::Delete) => true,
        (Role::Developer | Role::Releaser, Action::Promote(s)) if s == first_stage => true,
        (Role::Releaser, Action::Promote(s) | Action::Rollback(s)) => g.stages.iter().any(|x| x == s),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms(glob: &str, role: Role, stages: &[&str]) -> Permissions {
        Permissions {
            superuser: false,
            grants: vec![Grant::new(RepoGlob::parse(glob).unwrap(), role, stages.iter().map(|s| s.to_string()).collect())],
        }
    }

    fn actions() -> Vec<Action> {
        vec![
            Action::Pull,
            Action::Push,
            Action::Delete,
            Action::Promote("test".into()),
            Action::Promote("preprod".into()),
            Action::Promote("prod".into()),
            Action::Rollback("test".into()),
            Action::Rollback("prod".into()),
            Action::ReadAudit,
            Action::Admin,
        ]
    }

    fn allowed(p: &Permissions, repo: &str) -> Vec<bool> {
        actions().iter().map(|a| p.allows(a, Some(repo), "test")).collect()
    }

    #[test]
    fn role_matrix() {
        let (t, f) = (true, false);
        //                                   pull push del  p:test p:pre p:prod rb:test rb:prod audit admin
        assert_eq!(allowed(&perms("**", Role::Reader, &[]), "a/b"), [t, f, f, f, f, f, f, f, f, f]);
        assert_eq!(allowed(&perms("**", Role::Developer, &[]), "a/b"), [t, t, t, t, f, f, f, f, f, f]);
        assert_eq!(allowed(&perms("**", Role::Releaser, &["prod"]), "a/b"), [t, t, t, t, f, t, f, t, f, f]);
        assert_eq!(allowed(&perms("**", Role::Auditor, &[]), "a/b"), [t, f, f, f, f, f, f, f, t, f]);
        assert_eq!(allowed(&perms("**", Role::Admin, &[]), "a/b"), [t; 10]);
        assert_eq!(allowed(&Permissions::superuser(), "a/b"), [t; 10]);
        assert_eq!(allowed(&Permissions::default(), "a/b"), [f; 10]);
    }

    #[test]
    fn globs_scope_grants() {
        let p = perms("team-a/*", Role::Developer, &[]);
        assert!(p.allows(&Action::Push, Some("team-a/app"), "test"));
        assert!(!p.allows(&Action::Push, Some("team-a/app/sub"), "test"));
        assert!(!p.allows(&Action::Pull, Some("team-b/app"), "test"));
        let deep = perms("team-a/**", Role::Reader, &[]);
        assert!(deep.allows(&Action::Pull, Some("team-a/app/sub"), "test"));
        // A scoped admin or auditor grant does not give global powers.
        assert!(!perms("team-a/**", Role::Admin, &[]).allows(&Action::Admin, None, "test"));
        assert!(!perms("team-a/**", Role::Auditor, &[]).allows(&Action::ReadAudit, None, "test"));
    }

    #[test]
    fn invalid_globs_are_refused() {
        assert!(RepoGlob::parse("").is_err());
        assert!(RepoGlob::parse("a/[").is_err());
    }
}
