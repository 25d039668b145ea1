//! The `_file` form of the secret keys (`store_file`, `mail.smtp.password_file`,
//! `identity_providers[].client_secret_file`): the secret is read from a file, as Kubernetes
//! and Docker mount their secrets, at start and again on every reload.

use std::path::Path;

use super::Problem;

/// Fills `value` (the key `key`) from `file` (the key `<key>_file`) when that is set: one of
/// the two, never both; the file's text without one trailing line break, never empty. The
/// problem names the `_file` key and the path, never the secret.
pub(super) fn resolve(
    value: &mut Option<String>,
    file: Option<&Path>,
    key: &str,
) -> Option<Problem> {
    let path = file?;
    let problem = |message: String| {
        Some(Problem {
            key: format!("{key}_file"),
            message,
        })
    };
    if value.is_some() {
        return problem(format!("set `{key}` or `{key}_file`, not both"));
    }
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(&text);
            if secret.is_empty() {
                return problem(format!("`{}` is empty", path.display()));
            }
            *value = Some(secret.to_string());
            None
        }
        Err(e) => problem(format!("cannot read `{}`: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_comes_from_its_file_without_the_trailing_line_break() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("secret");
        for (text, want) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("a\nb", "a\nb"),
        ] {
            std::fs::write(&path, text).expect("write");
            let mut value = None;
            assert!(resolve(&mut value, Some(&path), "x.password").is_none());
            assert_eq!(value.as_deref(), Some(want));
        }
        // Without a `_file` key the value stays as written.
        let mut value = Some("inline".to_string());
        assert!(resolve(&mut value, None, "x.password").is_none());
        assert_eq!(value.as_deref(), Some("inline"));
    }

    #[test]
    fn bad_files_are_named_by_their_key_and_path_never_their_secret() {
        let dir = tempfile::tempdir().expect("tmp");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let missing = dir.path().join("missing");
        let mut value = None;
        let p = resolve(&mut value, Some(&empty), "store").expect("empty refused");
        assert_eq!(p.key, "store_file");
        assert!(p.message.contains("is empty"), "{}", p.message);
        let p = resolve(&mut value, Some(&missing), "store").expect("missing refused");
        assert!(
            p.message.contains("cannot read") && p.message.contains("missing"),
            "{}",
            p.message
        );
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "hunter2").expect("write");
        let mut both = Some("inline".to_string());
        let p = resolve(&mut both, Some(&secret), "store").expect("both refused");
        assert!(p.message.contains("not both") && !p.message.contains("hunter2"));
    }
}
