//! The words of frontdoor's mail: minijinja templates, built in, each overridable by a file of
//! the same name in `mail.templates_dir`. A template renders the whole message: a first line
//! `Subject: …`, a blank line, then the body (plain text).
//!
//! A file in the directory is checked when the configuration is loaded (and reloaded): it must
//! parse and render, with sample values, to a message with a subject. At send time the file is
//! read again, so an edit takes effect with the next reload's check and the next message.

use std::path::Path;

/// A message frontdoor sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTemplate {
    /// The emailed one-time sign-in code (`org`, `name`, `code`, `minutes`).
    OneTimeCode,
    /// The link of "forgot password" (`org`, `name`, `email`, `link`, `minutes`).
    PasswordReset,
    /// An invitation (`org`, `email`, `inviter`, `link`, `days`).
    Invitation,
}

impl MailTemplate {
    /// Every template, for the load-time check.
    pub const ALL: [MailTemplate; 3] = [
        MailTemplate::OneTimeCode,
        MailTemplate::PasswordReset,
        MailTemplate::Invitation,
    ];

    /// The file name that overrides it in `mail.templates_dir`.
    pub fn file_name(self) -> &'static str {
        match self {
            MailTemplate::OneTimeCode => "one_time_code.txt",
            MailTemplate::PasswordReset => "password_reset.txt",
            MailTemplate::Invitation => "invitation.txt",
        }
    }

    /// The built-in text.
    pub fn builtin(self) -> &'static str {
        match self {
            MailTemplate::OneTimeCode => include_str!("../config/templates/one_time_code.txt"),
            MailTemplate::PasswordReset => include_str!("../config/templates/password_reset.txt"),
            MailTemplate::Invitation => include_str!("../config/templates/invitation.txt"),
        }
    }

    /// Values of the template's every variable, for the load-time check.
    fn sample(self) -> serde_json::Value {
        let mut values = serde_json::json!({
            "org": "Example", "name": "Ann", "email": "ann@example.com", "minutes": 30,
            "inviter": "Root", "days": 7,
        });
        match self {
            MailTemplate::OneTimeCode => values["code"] = "123456".into(),
            MailTemplate::PasswordReset | MailTemplate::Invitation => {
                values["link"] = "https://sso.example.com/x".into()
            }
        }
        values
    }
}

/// A template that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The override file could not be read.
    #[error("cannot read {file}: {error}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        error: std::io::Error,
    },
    /// It does not parse or render.
    #[error("{file}: {error}")]
    Syntax {
        /// The file (or `built-in …`).
        file: String,
        /// minijinja's words.
        error: String,
    },
    /// The rendered message has no `Subject:` first line.
    #[error("{0}: the first line must be `Subject: …`, then a blank line, then the body")]
    NoSubject(String),
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The body.
    pub body: String,
}

/// The text of `template`: the file in `dir` when there is one, else the built-in one; and
/// the name to report errors under.
fn source(dir: Option<&Path>, template: MailTemplate) -> Result<(String, String), TemplateError> {
    if let Some(dir) = dir {
        let path = dir.join(template.file_name());
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok((text, path.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(TemplateError::Read {
                    file: path.display().to_string(),
                    error,
                });
            }
        }
    }
    Ok((
        template.builtin().to_string(),
        format!("built-in {}", template.file_name()),
    ))
}

/// Renders `template` (from `dir` when it overrides it) with `values`.
pub fn render(
    dir: Option<&Path>,
    template: MailTemplate,
    values: &serde_json::Value,
) -> Result<Rendered, TemplateError> {
    let (text, file) = source(dir, template)?;
    render_text(&text, &file, values)
}

fn render_text(
    text: &str,
    file: &str,
    values: &serde_json::Value,
) -> Result<Rendered, TemplateError> {
    let syntax = |e: minijinja::Error| TemplateError::Syntax {
        file: file.to_string(),
        error: e.to_string(),
    };
    let mut env = minijinja::Environment::new();
    // A name without `.html`: minijinja escapes nothing, and a `&` in a link stays one.
    env.add_template("message", text).map_err(syntax)?;
    let rendered = env
        .get_template("message")
        .and_then(|t| t.render(values))
        .map_err(syntax)?;
    let (first, rest) = rendered.split_once('\n').unwrap_or((&rendered, ""));
    let subject = first
        .strip_prefix("Subject:")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TemplateError::NoSubject(file.to_string()))?;
    Ok(Rendered {
        subject: subject.to_string(),
        body: rest.trim_start_matches(['\r', '\n']).to_string(),
    })
}

/// Checks every override in `dir`: each file present must render its sample to a message.
pub fn check_dir(dir: &Path) -> Vec<TemplateError> {
    MailTemplate::ALL
        .into_iter()
        .filter_map(|t| render(Some(dir), t, &t.sample()).err())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_render_with_a_subject() {
        for t in MailTemplate::ALL {
            let m = render(None, t, &t.sample()).expect("built-in renders");
            assert!(m.subject.contains("Example"), "{t:?}: {}", m.subject);
            assert!(m.body.starts_with("Hello"), "{t:?}: {}", m.body);
            assert!(!m.body.contains("{{"), "{t:?}: {}", m.body);
        }
        let m = render(
            None,
            MailTemplate::PasswordReset,
            &serde_json::json!({"org": "O", "name": "N", "email": "e", "minutes": 1,
                "link": "https://x/_frontdoor/password/reset?token=a&b=<c>"}),
        )
        .expect("renders");
        assert!(
            m.body.contains("token=a&b=<c>"),
            "plain text is not escaped: {}",
            m.body
        );
    }

    #[test]
    fn a_file_in_the_directory_overrides_and_is_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(check_dir(dir.path()).is_empty(), "no file: the built-ins");
        let file = dir.path().join("password_reset.txt");
        std::fs::write(&file, "Subject: Reset at {{ org }}\n\nGo to {{ link }}\n").expect("write");
        assert!(check_dir(dir.path()).is_empty());
        let m = render(
            Some(dir.path()),
            MailTemplate::PasswordReset,
            &MailTemplate::PasswordReset.sample(),
        )
        .expect("renders");
        assert_eq!(m.subject, "Reset at Example");
        assert_eq!(m.body, "Go to https://sso.example.com/x");

        std::fs::write(&file, "Subject: {{ org }\n\nbody").expect("write");
        let errors = check_dir(dir.path());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            matches!(&errors[0], TemplateError::Syntax { file, .. } if file.ends_with("password_reset.txt"))
        );

        std::fs::write(&file, "Hello {{ name }}").expect("write");
        assert!(matches!(
            check_dir(dir.path()).as_slice(),
            [TemplateError::NoSubject(_)]
        ));
    }
}
