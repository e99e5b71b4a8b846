//! Puts the git commit into `wharf --version` (`0.1.0 (commit 1a2b3c4)`).
//! Outside a git checkout (a source tarball, e.g. a Debian package build)
//! the commit is "unknown", unless WHARF_GIT_COMMIT names it.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=WHARF_GIT_COMMIT");
    let commit = std::env::var("WHARF_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it names
    // (a commit). In a worktree HEAD is in the worktree's git dir and branches
    // in the common one. Only existing paths: a missing one reruns every build.
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        let mut watch = vec![PathBuf::from(&git_dir).join("HEAD")];
        if let (Some(common), Some(branch)) = (git(&["rev-parse", "--git-common-dir"]), git(&["symbolic-ref", "-q", "HEAD"])) {
            watch.push(PathBuf::from(&common).join(branch));
            watch.push(PathBuf::from(&common).join("packed-refs"));
        }
        for path in watch.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-env=WHARF_VERSION={} (commit {commit})", env!("CARGO_PKG_VERSION"));
    // The commit alone, for the `wharf_build_info` metric.
    println!("cargo:rustc-env=WHARF_COMMIT={commit}");
}
