//! The board in a real headless browser (Debian's Chromium, driven through
//! ChromeDriver with fantoccini): after its scripts ran, the DOM holds the
//! incident, a team's status and an open need, and a change made over gRPC
//! appears without a reload. It also saves a 1920x1080 screenshot of the
//! board (`board-1920x1080.png` in the test target's temporary folder) for a
//! person to look at. Without Chromium or ChromeDriver the test fails: CI
//! installs them (`.ci/run`).

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use muster_client::proto as pb;
use muster_tests::{Options, TestServer};

/// ChromeDriver on a free port, stopped when dropped.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn chromedriver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver (Debian package chromium-driver; .ci/run installs it) must be on the PATH");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Driver { child, url };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on port {port}");
}

async fn attribute(client: &fantoccini::Client, css: &str, name: &str) -> Option<String> {
    client.find(Locator::Css(css)).await.ok()?.attr(name).await.ok()?
}

#[tokio::test]
async fn the_board_renders_in_a_browser_and_follows_a_change_without_a_reload() {
    let server = TestServer::start_with(Options { http: true, ..Options::default() }).await;
    let http = server.http_url.clone().unwrap();
    let dispatched = crate::board::city(&server).await;
    let assigned =
        dispatched.assignments.iter().map(crate::support::team_of).find(|team| !team.is_empty()).unwrap().to_owned();

    let driver = chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1920,1080", format!("--user-data-dir={}", profile.path().display())],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver");
    {
        client.goto(&http).await.unwrap();
        // The scripts fetched the picture and drew it.
        let waiting = client.wait().at_most(Duration::from_secs(20));
        waiting
            .for_element(Locator::Css("#incidents li[data-incident='FLOOD-1']"))
            .await
            .expect("the incident is listed");
        let incident =
            client.find(Locator::Css("#incidents li[data-incident='FLOOD-1']")).await.unwrap().text().await.unwrap();
        assert!(incident.contains("Xiang river over the embankment"), "{incident}");
        assert!(client.find(Locator::Css("#map g#incident-FLOOD-1")).await.is_ok(), "the incident is on the map");
        assert_eq!(attribute(&client, &format!("#team-{assigned}"), "data-status").await.as_deref(), Some("ASSIGNED"));
        let needs = client.find(Locator::Css("#needs")).await.unwrap().text().await.unwrap();
        assert!(needs.contains("firefighting tier <= 1"), "an open need: {needs}");
        let lines = client.find_all(Locator::Css("#map line.assignment")).await.unwrap();
        assert_eq!(lines.len(), dispatched.assignments.len(), "a line for every assignment");

        // A change over gRPC, seen without a reload (the marker survives).
        client.execute("window.notReloaded = 42; return true;", vec![]).await.unwrap();
        let live = client.wait().at_most(Duration::from_secs(10));
        live.for_element(Locator::Css("#live.live:not(.off)")).await.expect("the live stream is open");
        server
            .client()
            .await
            .roster()
            .report_status(pb::ReportStatusRequest {
                request_id: String::new(),
                team_id: "VOL-01".into(),
                status: pb::TeamStatus::OutOfService.into(),
                position: None,
            })
            .await
            .unwrap();
        let mut seen = None;
        for _ in 0..100 {
            seen = attribute(&client, "#team-VOL-01", "data-status").await;
            if seen.as_deref() == Some("OUT_OF_SERVICE") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(seen.as_deref(), Some("OUT_OF_SERVICE"), "the change reached the page");
        let marker = client.execute("return window.notReloaded;", vec![]).await.unwrap();
        assert_eq!(marker, serde_json::json!(42), "the page was not reloaded");

        // For a person to look at.
        // A 1920x1080 viewport: the window's size less what is not page.
        let frame = client
            .execute("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];", vec![])
            .await
            .unwrap();
        let extra = |index: usize| frame[index].as_u64().unwrap_or(0) as u32;
        client.set_window_size(1920 + extra(0), 1080 + extra(1)).await.unwrap();
        let png = client.screenshot().await.unwrap();
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("board-1920x1080.png");
        std::fs::write(&path, png).unwrap();
        eprintln!("board screenshot: {}", path.display());
    }
    // (A failed check above ends the test; dropping the driver ends the
    // browser with it.)
    client.close().await.unwrap();
}
