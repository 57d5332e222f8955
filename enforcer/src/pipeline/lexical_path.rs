//! Lexical clean-up of an absolute path as a user wrote it (the signal tier's path syscalls,
//! `FILE_PATH_DOTS`): empty and `.` components go, `..` removes the component before it (never
//! above `/`). Symbolic links are not followed: `/a/link/..` becomes `/a`, where the kernel
//! goes to the parent of the link's target.

/// The cleaned form of `path`, when it is absolute and not clean already.
pub fn clean(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let mut parts: Vec<&str> = Vec::new();
    let mut changed = false;
    let mut comps = rest.split('/').peekable();
    while let Some(comp) = comps.next() {
        match comp {
            // A trailing slash alone (`/etc/`) is an empty last component, not a change.
            "" if comps.peek().is_none() => {}
            "" | "." => changed = true,
            ".." => {
                parts.pop();
                changed = true;
            }
            _ => parts.push(comp),
        }
    }
    changed.then(|| format!("/{}", parts.join("/")))
}

/// Whether `path` has a `.` or `..` component.
pub fn has_dot_component(path: &str) -> bool {
    path.split('/').any(|c| c == "." || c == "..")
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn dots_and_empty_components_are_resolved_lexically() {
        assert_eq!(
            clean("/tmp/../etc/cron.d/x").as_deref(),
            Some("/etc/cron.d/x")
        );
        assert_eq!(clean("/etc/./shadow").as_deref(), Some("/etc/shadow"));
        assert_eq!(clean("/etc//cron.d/x").as_deref(), Some("/etc/cron.d/x"));
        assert_eq!(clean("/../../etc/shadow").as_deref(), Some("/etc/shadow"));
        assert_eq!(clean("/etc/cron.d/..").as_deref(), Some("/etc"));
        assert_eq!(clean("/a/b/../../..").as_deref(), Some("/"));
        assert_eq!(
            clean("/etc/..hidden/x"),
            None,
            "a name that starts with dots"
        );
        assert_eq!(clean("/etc/shadow"), None);
        assert_eq!(clean("/etc/"), None, "a trailing slash alone");
        assert_eq!(clean("relative/../x"), None, "not absolute");
    }
}
