//! One-time codes through a real SMTP server (aiosmtpd from PyPI) with STARTTLS and AUTH.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

/// A CA and a server certificate for 127.0.0.1, made with the openssl command.
pub fn make_certs(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=frontdoor test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
}

pub struct Smtp {
    child: std::process::Child,
    port: u16,
    outdir: std::path::PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_smtp(dir: &std::path::Path) -> Smtp {
    use std::io::BufRead;
    let port = free_port();
    let outdir = dir.join("received");
    std::fs::create_dir_all(&outdir).expect("outdir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            "--port",
            &port.to_string(),
            "--user",
            "mailer",
            "--password",
            "s3cret-pass",
        ])
        .arg("--cert")
        .arg(dir.join("server.pem"))
        .arg("--key")
        .arg(dir.join("server.key"))
        .arg("--outdir")
        .arg(&outdir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with aiosmtpd (scripts/test.sh installs it)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(
        line.trim(),
        "ready",
        "the SMTP server did not start (is aiosmtpd installed?)"
    );
    Smtp {
        child,
        port,
        outdir,
    }
}

impl Smtp {
    /// The first message the server received (its JSON record), waiting briefly for it.
    pub async fn first_message(&self, fd: &Frontdoor) -> serde_json::Value {
        for _ in 0..100 {
            if let Some(entry) = std::fs::read_dir(&self.outdir)
                .expect("outdir")
                .flatten()
                .next()
            {
                let text = std::fs::read_to_string(entry.path()).expect("read");
                return serde_json::from_str(&text).expect("json");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no mail arrived:\n{}", fd.log());
    }

    /// `mail.smtp` for this server: user `mailer` with `password`, the CA of `certs`.
    pub fn settings(&self, password: &str, certs: &std::path::Path) -> serde_json::Value {
        serde_json::json!({
            "host": "127.0.0.1", "port": self.port, "username": "mailer", "password": password,
            "ca_file": certs.join("ca.pem").display().to_string(),
        })
    }
}

#[tokio::test]
async fn one_time_codes_go_through_smtp_with_starttls_and_auth() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certs(certs.path());
    let smtp = start_smtp(certs.path());
    let upstream = Upstream::start().await;
    let fd = Frontdoor::launch(
        Config::single(&upstream)
            .set("mail.from", "frontdoor <noreply@example.com>")
            .set("mail.smtp", smtp.settings("s3cret-pass", certs.path()))
            .set("mail.smtp.tls", "starttls"),
    )
    .await;
    fd.add_user(
        "otp@example.com",
        "Otto",
        "wiki",
        "ROLE_USER",
        "a long password",
    );
    let client = plain_client();
    let resp = client
        .post(fd.url("/api/v1/request-login-otp"))
        .json(&serde_json::json!({"email": "otp@example.com"}))
        .send()
        .await
        .expect("request otp");
    assert_eq!(resp.status(), 202);
    let record = smtp.first_message(&fd).await;
    assert_eq!(record["auth_user"], "mailer", "frontdoor authenticated");
    assert_eq!(record["encrypted"], true, "after STARTTLS");
    assert_eq!(record["rcpt_tos"], serde_json::json!(["otp@example.com"]));
    let content = record["content"].as_str().expect("content");
    assert!(
        !fd.data_dir()
            .join("outbox")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "nothing in the outbox"
    );
    let code = content
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a 6-digit code")
        .to_string();
    let resp = client
        .post(fd.url("/api/v1/verify-login-otp"))
        .json(&serde_json::json!({"email": "otp@example.com", "code": code}))
        .send()
        .await
        .expect("verify");
    assert_eq!(resp.status(), 200);
    let pair: serde_json::Value = resp.json().await.expect("json");
    let token = pair["token"].as_str().expect("token");
    let resp = client
        .get(fd.url("/x"))
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        upstream.last().header("x-auth-request-user").as_deref(),
        Some("otp@example.com")
    );
}

#[tokio::test]
async fn a_wrong_smtp_password_delivers_nothing_and_the_answer_is_unchanged() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certs(certs.path());
    let smtp = start_smtp(certs.path());
    let fd =
        Frontdoor::launch(Config::single(1).set("mail.smtp", smtp.settings("wrong", certs.path())))
            .await;
    fd.add_user(
        "otp@example.com",
        "Otto",
        "wiki",
        "ROLE_USER",
        "a long password",
    );
    request_code(&fd).await;
    wait_for_send_failure(&fd).await;
    assert_eq!(std::fs::read_dir(&smtp.outdir).expect("outdir").count(), 0);
}

/// Waits until frontdoor logs that a one-time code could not be sent.
async fn wait_for_send_failure(fd: &Frontdoor) {
    for _ in 0..30 {
        if fd.log().contains("could not send a one-time code") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no send failure logged:\n{}", fd.log());
}

/// Waits until `n` messages reached the SMTP server.
async fn wait_for_mail(smtp: &Smtp, fd: &Frontdoor, n: usize) {
    for _ in 0..100 {
        if std::fs::read_dir(&smtp.outdir).expect("outdir").count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} mails never arrived:\n{}", fd.log());
}

async fn request_code(fd: &Frontdoor) {
    let resp = plain_client()
        .post(fd.url("/api/v1/request-login-otp"))
        .json(&serde_json::json!({"email": "otp@example.com"}))
        .send()
        .await
        .expect("request otp");
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn the_smtp_password_comes_from_its_file_at_start_and_again_on_reload() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certs(certs.path());
    let smtp = start_smtp(certs.path());
    // As Kubernetes and Docker mount a secret: a file with a trailing line break.
    let secret = certs.path().join("smtp-password");
    std::fs::write(&secret, "wrong\n").expect("write");
    let mut settings = smtp.settings("", certs.path());
    settings["password"] = serde_json::Value::Null;
    settings["password_file"] = secret.display().to_string().into();
    let fd = Frontdoor::launch(Config::single(1).set("mail.smtp", settings)).await;
    fd.add_user(
        "otp@example.com",
        "Otto",
        "wiki",
        "ROLE_USER",
        "a long password",
    );
    request_code(&fd).await;
    wait_for_send_failure(&fd).await;
    assert!(!fd.log().contains("wrong"), "the secret is not logged");

    // The secret is rotated in place; a reload reads it again.
    std::fs::write(&secret, "s3cret-pass\n").expect("write");
    let out = fd.cli_ok(&["reload"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("reloaded"));
    request_code(&fd).await;
    wait_for_mail(&smtp, &fd, 1).await;

    // A file that cannot be read is a refused reload naming the key; the running value stays.
    std::fs::remove_file(&secret).expect("remove");
    let out = fd.cli(&["reload"], None);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("mail.smtp.password_file") && text.contains("cannot read"),
        "{text}"
    );
    request_code(&fd).await;
    wait_for_mail(&smtp, &fd, 2).await;
}
