//! Outgoing mail: the outbox directory (`data_dir/outbox/`, one .eml per message) by default,
//! or an SMTP relay (STARTTLS or TLS, with AUTH) when configured.

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, SmtpTls};
use crate::mail_templates::{MailTemplate, TemplateError};

/// Mail could not be built or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address is not valid.
    #[error("invalid address: {0}")]
    Address(String),
    /// The message could not be built.
    #[error("cannot build the message: {0}")]
    Build(String),
    /// The transport failed.
    #[error("cannot send: {0}")]
    Send(String),
    /// The template could not be rendered.
    #[error("mail template: {0}")]
    Template(#[from] TemplateError),
}

enum Transport {
    Outbox(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Sends frontdoor's mail.
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    templates_dir: Option<std::path::PathBuf>,
}

impl Mailer {
    /// The mailer of a configuration.
    pub fn new(config: &Config) -> Result<Mailer, MailError> {
        let from: Mailbox = config
            .mail
            .from
            .parse()
            .map_err(|e| MailError::Address(format!("mail.from: {e}")))?;
        let transport = match &config.mail.smtp {
            None => {
                let dir = config.data_dir.join("outbox");
                crate::private_fs::ensure_dir(&dir).map_err(|e| {
                    MailError::Send(format!("cannot create or restrict {}: {e}", dir.display()))
                })?;
                Transport::Outbox(AsyncFileTransport::new(dir))
            }
            Some(smtp) => {
                let send_err =
                    |e: lettre::transport::smtp::Error| MailError::Send(format!("mail.smtp: {e}"));
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                        .port(smtp.port);
                if smtp.tls != SmtpTls::None {
                    let mut params = TlsParameters::builder(smtp.host.clone());
                    if let Some(ca) = &smtp.ca_file {
                        let pem = std::fs::read(ca).map_err(|e| {
                            MailError::Send(format!("mail.smtp.ca_file: {}: {e}", ca.display()))
                        })?;
                        let cert = Certificate::from_pem(&pem).map_err(|e| {
                            MailError::Send(format!("mail.smtp.ca_file: {}: {e}", ca.display()))
                        })?;
                        params = params.add_root_certificate(cert);
                    }
                    let params = params.build_rustls().map_err(send_err)?;
                    builder = builder.tls(match smtp.tls {
                        SmtpTls::Tls => Tls::Wrapper(params),
                        _ => Tls::Required(params),
                    });
                }
                if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
                    builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
                }
                Transport::Smtp(builder.build())
            }
        };
        Ok(Mailer {
            from,
            transport,
            templates_dir: config.mail.templates_dir.clone(),
        })
    }

    /// Sends the message `template` renders with `values` (its subject line and body).
    pub async fn send_template(
        &self,
        to: &str,
        template: MailTemplate,
        values: &serde_json::Value,
    ) -> Result<(), MailError> {
        let message =
            crate::mail_templates::render(self.templates_dir.as_deref(), template, values)?;
        self.send(to, &message.subject, message.body).await
    }

    /// Sends a plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| MailError::Address(format!("{to}: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.transport {
            Transport::Outbox(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
            Transport::Smtp(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }
}

/// The built-in template of the "application created" message.
pub const APP_CREATED_TEMPLATE: &str = include_str!("../config/templates/app_created.txt");

/// Renders a minijinja text template with the given values.
pub fn render(template: &str, values: &serde_json::Value) -> Result<String, MailError> {
    let mut env = minijinja::Environment::new();
    env.add_template("message", template)
        .map_err(|e| MailError::Build(format!("template: {e}")))?;
    env.get_template("message")
        .and_then(|t| t.render(values))
        .map_err(|e| MailError::Build(format!("template: {e}")))
}
