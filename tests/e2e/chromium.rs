//! A real browser for the page tests: Debian's Chromium, headless, driven through
//! chromedriver (WebDriver) with fantoccini. Each test gets its own chromedriver, Chromium
//! and empty profile, so no cookie or cache leaks between tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::harness::free_port;

/// A headless Chromium and the chromedriver driving it.
pub struct Chromium {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts chromedriver and a fresh headless Chromium with a laptop-sized window.
    pub async fn start() -> Chromium {
        let port = free_port();
        let driver_bin =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_string());
        let mut cmd = Command::new(&driver_bin);
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group: Drop kills chromedriver and every Chromium process it started.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let driver = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start {driver_bin} (apt-get install chromium chromium-driver): {e}")
        });
        let profile = tempfile::tempdir().expect("profile dir");
        let chromium_bin =
            std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium_bin,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            // Plain HTTP to chromedriver on loopback: no TLS stack needed.
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let attempt = ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await;
            match attempt {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("cannot start a Chromium session: {e}"),
            }
        };
        Chromium {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_string()
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("url")
    }

    /// The element, waiting for it to appear.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Whether an element is on the page now (no waiting).
    pub async fn has(&self, css: &str) -> bool {
        self.client
            .find_all(Locator::Css(css))
            .await
            .is_ok_and(|v| !v.is_empty())
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.expect("clear");
        e.send_keys(value).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// Clicks something that navigates, and waits for the next page to load.
    pub async fn click_and_wait(&self, css: &str) {
        let before = self.client.find(Locator::Css("html")).await.expect("html");
        self.click(css).await;
        // The old document's root goes stale once the new page replaces it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while before.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "{css} did not navigate");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.find("body").await;
    }

    /// The page's visible text.
    pub async fn body_text(&self) -> String {
        self.text("body").await
    }

    /// Saves a PNG of the viewport as a test artifact: `target/screenshots/<name>.png`
    /// (or under `$FRONTDOOR_SCREENSHOTS`).
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = std::env::var_os("FRONTDOOR_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let target = std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
                target.join("screenshots")
            });
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Asserts the page fits a phone's width (390 px) without sideways scrolling, screenshots
    /// it as `<name>-phone`, and goes back to a desktop width. The page is reloaded: a page
    /// that answered a POST is not one to use.
    pub async fn fits_a_phone(&self, name: &str) {
        self.client.set_window_size(390, 844).await.expect("resize");
        self.client.refresh().await.expect("reload");
        let overflow = self
            .client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .expect("script");
        assert!(
            overflow.as_i64().is_some_and(|o| o <= 0),
            "{name} is wider than a phone: {overflow}"
        );
        self.screenshot(&format!("{name}-phone")).await;
        self.client
            .set_window_size(1280, 900)
            .await
            .expect("resize");
    }

    /// Signs in on the login page the browser is on.
    pub async fn sign_in(&self, email: &str, password: &str) {
        assert_eq!(self.path().await, "/_frontdoor/login", "on the login page");
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click_and_wait("#submit").await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}
