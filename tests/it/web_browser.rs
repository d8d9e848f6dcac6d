//! The subscriber pages in a real browser: Debian's headless Chromium driven over WebDriver (chromedriver, from
//! the chromium-driver package) with fantoccini. A reader fills in and submits the form, opens the confirmation
//! link from the mail the SMTP sink received, changes their preferences, and leaves from a received digest's
//! unsubscribe link; every page is checked by what it shows and for a horizontal scroll bar at phone width, and
//! kept as a screenshot at desktop and phone width in `target/test-artifacts/web-*.png`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use mail_parser::MessageParser;

use crate::delivery::free_port;
use crate::support::{artifacts, assert_png_written};
use crate::web::{Web, href, link, send_weekly_at, text_and_header};

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run chromedriver ({e}); run scripts/test, which installs chromium-driver")
            });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const DESKTOP: (u32, u32) = (1200, 900);
const PHONE: (u32, u32) = (390, 844);

async fn session(driver: &Driver) -> Client {
    let profile = tempfile::tempdir().unwrap().keep();
    let capabilities = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in headless chromium")
}

/// Waits (up to 10 s) until the page's `<h1>` says `expected`: a click's navigation may still be loading.
async fn expect_heading(browser: &Client, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = match browser.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if found == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the page says {found:?}, not {expected:?}:\n{}",
            browser.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Screenshots of the page at desktop and phone width (`web-<name>-desktop.png`, `-phone.png`), asserting that
/// at phone width nothing is wider than the screen.
async fn shots(browser: &Client, name: &str) {
    for (label, (w, h)) in [("desktop", DESKTOP), ("phone", PHONE)] {
        browser.set_window_size(w, h).await.unwrap();
        if label == "phone" {
            let overflow = browser
                .execute(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                overflow.as_i64(),
                Some(0),
                "{name}: wider than a phone screen"
            );
        }
        let png = artifacts().join(format!("web-{name}-{label}.png"));
        std::fs::remove_file(&png).ok();
        std::fs::write(&png, browser.screenshot().await.unwrap()).unwrap();
        assert_png_written(&png);
    }
    browser.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

#[test]
fn a_reader_subscribes_confirms_changes_preferences_and_leaves_in_a_browser() {
    let web = Web::start("");
    let driver = Driver::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let browser = runtime.block_on(session(&driver));
    runtime.block_on(async {
        // The form: fill it in and submit it, as a reader does.
        browser.goto(&web.url("/subscribe")).await.unwrap();
        expect_heading(&browser, "Subscribe to Test Blog").await;
        let boxes = browser
            .find_all(Locator::Css("input[name=digest]:checked"))
            .await
            .unwrap();
        assert_eq!(boxes.len(), 2, "every newsletter is ticked to begin with");
        shots(&browser, "subscribe").await;
        let email = browser.find(Locator::Css("#email")).await.unwrap();
        email.send_keys("ada@example.com").await.unwrap();
        let name = browser.find(Locator::Css("#name")).await.unwrap();
        name.send_keys("Ada <b>Lovelace</b>").await.unwrap();
        click(&browser, "input[name=category][value=Career]").await;
        click(&browser, "button[type=submit]").await;
        expect_heading(&browser, "Check your inbox").await;
        shots(&browser, "check-inbox").await;
    });

    // The confirmation mail, from the SMTP server; its link opens the confirmed page.
    let (text, _) = text_and_header(&web.mail_for("ada@example.com", 1)[0], "List-Unsubscribe");
    let confirm = link(&text, "/confirm?token=");
    assert!(text.contains("Hello Ada <b>Lovelace</b>,"), "{text}");
    runtime.block_on(async {
        browser.goto(&confirm).await.unwrap();
        expect_heading(&browser, "You are subscribed").await;
        let body = browser
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("weekly, daily for Career"), "{body}");
        shots(&browser, "confirmed").await;

        // Preferences: add Tools, save.
        browser
            .find(Locator::LinkText("Change what you get"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        expect_heading(&browser, "Your subscription").await;
        shots(&browser, "preferences").await;
        click(&browser, "input[name=category][value=Tools]").await;
        click(&browser, "button[type=submit]").await;
        let saved = match browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(".notice"))
            .await
        {
            Ok(notice) => notice.text().await.unwrap(),
            Err(e) => panic!("{e}: {}", browser.source().await.unwrap()),
        };
        assert!(saved.starts_with("Saved."), "{saved}");
        let ticked = browser
            .find_all(Locator::Css("input[name=category]:checked"))
            .await
            .unwrap();
        assert_eq!(ticked.len(), 2);
    });
    let ada = web.subscriber("ada@example.com");
    assert_eq!(ada["status"], "confirmed");
    assert_eq!(ada["categories"], serde_json::json!(["Career", "Tools"]));

    // A digest arrives (the week after she joined: the Tools article of 2026-12-03); she leaves from its link.
    send_weekly_at(&web, "2026-12-07T09:00:00+01:00");
    let raw = web.mail_for("ada@example.com", 2).remove(1);
    let message = MessageParser::default().parse(&raw).unwrap();
    let html = message.body_html(0).unwrap();
    let leave = href(&html, "/unsubscribe?token=");
    let (_, header) = text_and_header(&raw, "List-Unsubscribe");
    assert_eq!(
        header,
        format!("<{leave}>"),
        "the footer link is the header's"
    );
    runtime.block_on(async {
        browser.goto(&leave).await.unwrap();
        expect_heading(&browser, "Unsubscribe").await;
        shots(&browser, "unsubscribe").await;
        click(&browser, "button[type=submit]").await;
        expect_heading(&browser, "You are unsubscribed").await;
        shots(&browser, "unsubscribed").await;
    });
    let ada = web.subscriber("ada@example.com");
    assert_eq!(
        ada["digests"],
        serde_json::json!(["daily"]),
        "left the weekly digest, kept the daily one"
    );
    runtime.block_on(browser.close()).unwrap();
}
