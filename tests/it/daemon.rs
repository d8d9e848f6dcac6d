//! `tidings run`, the daemon, end to end: the real binary with cron schedules of a few seconds, the real SMTP
//! server (`smtp-sink`), and SIGTERM. The daemon's clock starts at `--now` and runs on in real time, so the
//! digest windows are pinned while the ticks still come every few seconds.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::delivery::{SmtpSink, free_port};
use crate::support::{TestEnv, import_readers};

pub(crate) const SECRET: &str = "daemon-test-secret";
/// A Tuesday noon: the weekly tick (Monday 08:00) is 28 hours old.
const TUESDAY: &str = "2026-12-01T12:00:00+01:00";
/// An hour after the weekly tick.
const MONDAY: &str = "2026-11-30T09:00:00+01:00";
/// Two days after it.
const WEDNESDAY: &str = "2026-12-02T09:00:00+01:00";

/// The digest-basic store, `n` subscribers since August, mail to `smtp_port`, and `schedules` (TOML for
/// `[schedule]` and the digest's `schedule = …` line).
fn world(n: usize, smtp_port: u16, digest_schedule: &str, extra: &str) -> TestEnv {
    let config = format!(
        r#"
[newsletter]
from = "Test Blog <news@example.com>"
postal_address = "1 Test Street, 12345 Testville"

[[digest]]
name = "weekly"
schedule = "{digest_schedule}"

[mail]
transport = "smtp"
smtp_url = "smtp://127.0.0.1:{smtp_port}"
concurrency = 4
retry_backoff_ms = 20
timeout_seconds = 10

[state]
database = "state.db"

{extra}
"#
    );
    let env = TestEnv::new("digest-basic", &config);
    import_readers(&env, n, |i| format!("d{i:04}@example.com"), &[], SECRET);
    env
}

/// A running `tidings run`, killed if a test fails before stopping it (dropping it is SIGKILL).
pub(crate) struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    pub(crate) fn start(env: &TestEnv, now: &str) -> Daemon {
        let log = env.path().join(format!("daemon-{}.log", free_port()));
        let child = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .arg("--config")
            .arg(env.path().join("config.toml"))
            .args(["--now", now, "run"])
            .current_dir(env.path())
            .env_remove("TIDINGS_CONFIG")
            .env(
                "TIDINGS_SERVER_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .env("TIDINGS_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the tidings binary runs");
        let daemon = Daemon { child, log };
        daemon.wait_for("listening on", Duration::from_secs(30));
        daemon
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log says `what`.
    pub(crate) fn wait_for(&self, what: &str, limit: Duration) {
        wait_until(limit, || self.log().contains(what), || self.log());
    }

    /// SIGTERM, then the exit status (within a minute).
    pub(crate) fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn wait_until(limit: Duration, done: impl Fn() -> bool, explain: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "waited {limit:?} in vain:\n{}",
            explain()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn runs(env: &TestEnv) -> Vec<serde_json::Value> {
    let out = env.run(&["digest", "runs", "weekly", "--format", "json"]);
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn total(sink: &SmtpSink) -> usize {
    sink.received().values().map(Vec::len).sum()
}

fn sink(dir: &Path, faults: &[&str]) -> SmtpSink {
    SmtpSink::start(dir, faults)
}

#[test]
fn a_new_article_file_is_in_the_feeds_after_the_next_build_tick() {
    let mail = tempfile::tempdir().unwrap();
    let sink = sink(mail.path(), &[]);
    let env = world(
        0,
        sink.port,
        "0 8 * * MON",
        "[schedule]\nbuild = \"* * * * * *\"\n",
    );
    let daemon = Daemon::start(&env, TUESDAY);
    daemon.wait_for("built:", Duration::from_secs(30));
    assert!(!env.read_public("feed.json").contains("Straight From Disk"));
    env.write_article(
        "straight-from-disk.md",
        "---\ntitle: Straight From Disk\ndate: 2026-11-30T10:00:00+01:00\ncategory: Tools\n---\nNew.\n",
    );
    wait_until(
        Duration::from_secs(20),
        || env.read_public("feed.json").contains("Straight From Disk"),
        || daemon.log(),
    );
    assert!(daemon.terminate().success());
}

#[test]
fn with_watch_a_saved_article_is_published_without_waiting_for_the_schedule() {
    let mail = tempfile::tempdir().unwrap();
    let sink = sink(mail.path(), &[]);
    // The build schedule would not fire for a year: only the watch can publish it.
    let env = world(
        0,
        sink.port,
        "0 8 * * MON",
        "[schedule]\nbuild = \"0 0 1 1 *\"\nwatch = true\n",
    );
    let daemon = Daemon::start(&env, TUESDAY);
    daemon.wait_for("rebuilding when the store changes", Duration::from_secs(30));
    daemon.wait_for("built:", Duration::from_secs(30));
    env.write_article(
        "saved-just-now.md",
        "---\ntitle: Saved Just Now\ndate: 2026-11-30T10:00:00+01:00\ncategory: Tools\n---\nNew.\n",
    );
    wait_until(
        Duration::from_secs(20),
        || env.read_public("feed.json").contains("Saved Just Now"),
        || daemon.log(),
    );
    assert!(daemon.terminate().success());
}

#[test]
fn each_digest_tick_delivers_what_is_new_once_to_every_subscriber() {
    let mail = tempfile::tempdir().unwrap();
    let sink = sink(mail.path(), &[]);
    let env = world(12, sink.port, "*/2 * * * * *", "");
    let daemon = Daemon::start(&env, TUESDAY);
    // The tick just before the start is caught up: everything since August, to each reader.
    wait_until(
        Duration::from_secs(30),
        || total(&sink) == 12,
        || daemon.log(),
    );
    // Later ticks find nothing new: no mail, never an empty digest.
    daemon.wait_for("0 sent", Duration::from_secs(20));
    assert_eq!(total(&sink), 12);
    // An article published after that is in the next tick's digest, and only it.
    env.write_article(
        "just-published.md",
        "---\ntitle: Just Published\ndate: 2026-12-01T12:00:03+01:00\ncategory: Tools\n---\nNews.\n",
    );
    wait_until(
        Duration::from_secs(30),
        || total(&sink) == 24,
        || daemon.log(),
    );
    std::thread::sleep(Duration::from_secs(3));
    let received = sink.received();
    assert_eq!(received.len(), 12);
    for (reader, messages) in &received {
        assert_eq!(messages.len(), 2, "{reader}: {messages:?}");
        let second = std::fs::read_to_string(&messages[1]).unwrap();
        assert!(second.contains("Just Published"), "{reader}");
        assert!(
            !second.contains("New Tools Piece"),
            "{reader}: only what is new"
        );
    }
    assert!(daemon.terminate().success());
    let runs = runs(&env);
    assert!(runs.len() >= 3, "a run per tick: {runs:?}");
    let sent: u64 = runs
        .iter()
        .map(|r| r["deliveries"]["sent"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, 24);
}

#[test]
fn sigterm_during_a_send_exits_zero_with_every_delivered_message_recorded() {
    let mail = tempfile::tempdir().unwrap();
    // Each message takes the server 150 ms: eight in flight, 400 messages, several seconds of sending.
    let sink = sink(mail.path(), &["--delay-ms", "150"]);
    let env = world(400, sink.port, "0 8 * * MON", "");
    let daemon = Daemon::start(&env, MONDAY);
    wait_until(
        Duration::from_secs(60),
        || total(&sink) >= 16,
        || daemon.log(),
    );
    let status = daemon.terminate();
    assert!(status.success(), "{status:?}");
    let delivered = total(&sink);
    let run = &runs(&env)[0];
    let sent = run["deliveries"]["sent"].as_u64().unwrap() as usize;
    assert_eq!(
        sent, delivered,
        "every message the server has is recorded sent, and every one recorded sent is there: {run}"
    );
    assert!(delivered < 400, "stopped before the end ({delivered})");
    assert_eq!(sink.received().values().filter(|m| m.len() > 1).count(), 0);

    // The next start resumes the open run and sends the rest, once.
    let again = Daemon::start(&env, MONDAY);
    wait_until(
        Duration::from_secs(120),
        || total(&sink) == 400,
        || again.log(),
    );
    assert!(again.terminate().success());
    let received = sink.received();
    assert_eq!(received.len(), 400);
    assert!(received.values().all(|m| m.len() == 1), "nothing twice");
    assert!(runs(&env)[0]["finished"].is_string());
}

#[test]
fn a_tick_missed_while_down_is_caught_up_once_and_one_too_old_is_recorded_skipped() {
    let mail = tempfile::tempdir().unwrap();
    let sink = sink(mail.path(), &[]);
    let env = world(5, sink.port, "0 8 * * MON", "");
    let daemon = Daemon::start(&env, MONDAY);
    wait_until(
        Duration::from_secs(30),
        || total(&sink) == 5,
        || daemon.log(),
    );
    assert!(daemon.terminate().success());
    // Started again a moment later: that tick has its run; nothing goes twice.
    let again = Daemon::start(&env, MONDAY);
    again.wait_for("built:", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    assert!(again.terminate().success());
    assert_eq!(total(&sink), 5);
    assert_eq!(runs(&env).len(), 1);

    // Another blog whose daemon was down for two days past its tick: skipped, said why, nothing sent.
    let other_mail = tempfile::tempdir().unwrap();
    let other_sink = self::sink(other_mail.path(), &[]);
    let late = world(5, other_sink.port, "0 8 * * MON", "");
    let daemon = Daemon::start(&late, WEDNESDAY);
    daemon.wait_for("skipped:", Duration::from_secs(30));
    assert!(daemon.terminate().success());
    assert_eq!(total(&other_sink), 0);
    let runs = runs(&late);
    assert_eq!(runs.len(), 1);
    let reason = runs[0]["skipped"].as_str().unwrap();
    assert!(
        reason.contains("missed by 2days 1h") && reason.contains("catch_up (1day)"),
        "{reason}"
    );
    let listed = String::from_utf8_lossy(&late.run(&["digest", "runs"]).stdout).into_owned();
    assert!(listed.contains("skipped: missed by"), "{listed}");
}

/// Two daemons on one state build the feeds one at a time: the holder of the build lease builds, the other
/// leaves it; when the builder stops, the other takes the lease over and builds.
#[test]
fn replicas_on_one_state_build_one_at_a_time_and_a_standby_takes_over() {
    let env = world(
        0,
        free_port(),
        "0 8 * * MON",
        "[schedule]\nbuild = \"*/2 * * * * *\"",
    );
    let builder = Daemon::start(&env, TUESDAY);
    builder.wait_for("built:", Duration::from_secs(30));
    let standby = Daemon::start(&env, TUESDAY);
    standby.wait_for(
        "left to the replica that holds the build lease",
        Duration::from_secs(30),
    );
    assert!(!standby.log().contains("built:"), "{}", standby.log());
    assert!(builder.terminate().success());
    // The stopped builder gave the lease up: the standby takes it at its next renewal (every 20 s) and builds.
    standby.wait_for(
        "this replica holds the build lease now",
        Duration::from_secs(40),
    );
    standby.wait_for("built:", Duration::from_secs(30));
    assert!(standby.terminate().success());
}
