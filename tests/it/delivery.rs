//! Delivery end to end against a real SMTP server: `../shared/validators/smtp-sink` (aiosmtpd) on 127.0.0.1
//! receives what the real binary sends, byte for byte, with its fault injection for the failures a relay really
//! gives (421/451 replies, 550 at RCPT, connections dropped mid-DATA, a server that is down). Every received
//! message passes `check-eml` with its DKIM signature verified, and the crash test kills the sender at random
//! moments and counts what arrived. `smtp-sink` offers no PIPELINING, so those tests take the one-command-at-a-time
//! path; `tests/tools/pipelining_sink.py` (aiosmtpd too) shows which path a client took.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::digest::make_dkim_key;
use crate::support::{TestEnv, import_readers, project_root, run_checker, shared};

const SECRET: &str = "delivery-test-secret";

/// A tick and a moment after it (Mondays 08:00 Berlin).
const TICK_1: &str = "2026-11-30T09:00:00+01:00";
const TICK_2: &str = "2026-12-07T09:00:00+01:00";

/// A real SMTP server on a free loopback port, stopped when dropped.
pub(crate) struct SmtpSink {
    child: Child,
    dir: PathBuf,
    pub(crate) port: u16,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpSink {
    /// Starts `smtp-sink DIR` with `faults` (its fault-injection flags) and waits until it listens.
    pub(crate) fn start(dir: &Path, faults: &[&str]) -> SmtpSink {
        SmtpSink::start_on(dir, free_port(), faults)
    }

    fn start_on(dir: &Path, port: u16, faults: &[&str]) -> SmtpSink {
        let mut child = Command::new(shared().join("validators/smtp-sink"))
            .arg(dir)
            .args(["--port", &port.to_string(), "--timeout", "600"])
            .args(faults)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("smtp-sink runs (scripts/test installs python3-aiosmtpd)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("listening on") => break,
                Some(Ok(_)) => continue,
                _ => panic!(
                    "smtp-sink did not start (is python3-aiosmtpd installed? run scripts/test)"
                ),
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        SmtpSink {
            child,
            dir: dir.to_owned(),
            port,
        }
    }

    /// Recipient → the messages stored for them, in arrival order.
    pub(crate) fn received(&self) -> BTreeMap<String, Vec<PathBuf>> {
        let mut by_rcpt: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort();
        for eml in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        {
            let envelope = eml.with_extension("envelope.json");
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&envelope).unwrap()).unwrap();
            let rcpts = json["rcpt_tos"].as_array().unwrap();
            assert_eq!(rcpts.len(), 1, "one recipient per message: {json}");
            by_rcpt
                .entry(rcpts[0].as_str().unwrap().to_lowercase())
                .or_default()
                .push(eml.clone());
        }
        by_rcpt
    }

    fn total(&self) -> usize {
        self.received().values().map(Vec::len).sum()
    }

    /// The faults it injected, by kind.
    fn faults(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(self.dir.join("faults.jsonl")) {
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                *kinds
                    .entry(v["fault"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        kinds
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A world with `n` subscribers (`s0000@example.com` …, subscribed in August), a DKIM key, and mail going to
/// `port` on 127.0.0.1. Returns the env and the DKIM TXT record.
fn world(n: usize, port: u16, mail: &str) -> (TestEnv, String) {
    world_signed(n, port, mail, true)
}

fn world_signed(n: usize, port: u16, mail: &str, dkim: bool) -> (TestEnv, String) {
    let config = format!(
        r#"
[newsletter]
from = "Test Blog <news@example.com>"
public_url = "https://example.com/newsletter/"
postal_address = "1 Test Street, 12345 Testville"

[[digest]]
name = "weekly"
schedule = "0 8 * * MON"
max_articles = 10
related = 1

[mail]
transport = "smtp"
smtp_url = "smtp://127.0.0.1:{port}"
concurrency = 4
retry_backoff_ms = 20
timeout_seconds = 10
{mail}

[state]
database = "state.db"
"#
    );
    let config = if dkim {
        format!(
            "{config}\n[mail.dkim]\nselector = \"test\"\ndomain = \"example.com\"\nkey_file = \"dkim.pem\"\n"
        )
    } else {
        config
    };
    let env = TestEnv::new("digest-basic", &config);
    let txt = if dkim {
        make_dkim_key(env.path())
    } else {
        String::new()
    };
    import_readers(&env, n, |i| format!("s{i:04}@example.com"), &[], SECRET);
    (env, txt)
}

fn tidings(env: &TestEnv, args: &[&str]) -> Output {
    env.run_with_env(args, &[("TIDINGS_SECRET", SECRET)])
}

/// `digest send weekly --now NOW`; returns (exit code, stderr).
fn send(env: &TestEnv, now: &str) -> (Option<i32>, String) {
    let out = tidings(env, &["digest", "send", "weekly", "--now", now]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `digest runs --format json` for the weekly digest, newest first.
fn runs(env: &TestEnv) -> Vec<serde_json::Value> {
    let out = tidings(env, &["digest", "runs", "weekly", "--format", "json"]);
    assert!(out.status.success());
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
}

fn subscribers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("s{i:04}@example.com")).collect()
}

#[test]
fn n_subscribers_get_exactly_n_valid_signed_messages_and_a_tick_is_sent_once() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(sink_dir.path(), &[]);
    let (env, txt) = world(25, sink.port, "");
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("25 sent, 0 deferred, 0 failed"), "{stderr}");
    let received = sink.received();
    assert_eq!(
        received.keys().cloned().collect::<Vec<_>>(),
        subscribers(25)
    );
    assert!(received.values().all(|m| m.len() == 1), "one message each");
    for messages in received.values() {
        let report = run_checker(
            &shared().join("validators/check-eml").display().to_string(),
            &["--dkim-txt", &txt, messages[0].to_str().unwrap()],
        );
        assert!(report.contains("dkim          PASS"), "{report}");
    }

    // The same tick again: nothing.
    let (code, stderr) = send(&env, "2026-11-30T18:00:00+01:00");
    assert_eq!(code, Some(0));
    assert!(stderr.contains("already sent"), "{stderr}");
    assert_eq!(sink.total(), 25);

    // A later tick with one new article and one written after the first tick but dated before it.
    env.write_article(
        "later.md",
        "---\ntitle: Later Piece\ndate: 2026-12-02T09:00:00+01:00\ncategory: Career\n---\nNew.\n",
    );
    env.write_article(
        "backdated.md",
        "---\ntitle: Backdated Piece\ndate: 2026-11-10T09:00:00+01:00\ncategory: Career\n---\nLate.\n",
    );
    let (code, stderr) = send(&env, TICK_2);
    assert_eq!(code, Some(0), "{stderr}");
    let received = sink.received();
    assert_eq!(sink.total(), 50, "one more message each");
    let second = &received["s0000@example.com"][1];
    let text = String::from_utf8_lossy(&std::fs::read(second).unwrap()).into_owned();
    assert!(
        text.contains("Later Piece") && text.contains("Backdated Piece"),
        "{text}"
    );
    assert!(
        !text.contains("New Career Piece"),
        "what went out at the first tick is not sent again"
    );
}

#[test]
fn temporary_failures_are_retried_and_every_message_arrives_once() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(
        sink_dir.path(),
        &["--tempfail-first", "3", "--tempfail-every", "7"],
    );
    let (env, _) = world(40, sink.port, "max_attempts = 5");
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(0), "{stderr}");
    let faults = sink.faults();
    assert_eq!(faults.get("tempfail-first"), Some(&3), "{faults:?}");
    assert!(
        faults.get("tempfail-every").is_some_and(|n| *n >= 4),
        "{faults:?}"
    );
    let received = sink.received();
    assert_eq!(
        received.keys().cloned().collect::<Vec<_>>(),
        subscribers(40)
    );
    assert!(received.values().all(|m| m.len() == 1), "nobody twice");
    let run = &runs(&env)[0];
    assert_eq!(run["deliveries"]["sent"], 40, "{run}");
    assert!(run["finished"].is_string(), "{run}");
}

#[test]
fn a_rejected_address_is_recorded_failed_with_the_reply_and_the_rest_delivered() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(sink_dir.path(), &["--reject", "s0003@example.com"]);
    let (env, _) = world(10, sink.port, "");
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(
        code,
        Some(0),
        "a permanent failure is final, the run is closed: {stderr}"
    );
    assert!(
        stderr.contains("s0003@example.com: refused for good, not retried: permanent error (550)"),
        "{stderr}"
    );
    assert_eq!(sink.total(), 9);
    assert!(!sink.received().contains_key("s0003@example.com"));
    let run = &runs(&env)[0];
    assert_eq!(
        (
            run["deliveries"]["sent"].as_u64(),
            run["deliveries"]["failed"].as_u64()
        ),
        (Some(9), Some(1))
    );
    // Never retried: the next send of the tick has nothing to do.
    let (_, again) = send(&env, "2026-11-30T10:00:00+01:00");
    assert!(again.contains("already sent"), "{again}");
    assert_eq!(sink.faults().get("reject"), Some(&1));
}

#[test]
fn a_connection_dropped_mid_data_is_retried() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(sink_dir.path(), &["--drop-every", "5"]);
    let (env, _) = world(30, sink.port, "max_attempts = 4");
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        sink.faults().get("drop").is_some_and(|n| *n >= 5),
        "{:?}",
        sink.faults()
    );
    let received = sink.received();
    assert_eq!(received.len(), 30);
    assert!(received.values().all(|m| m.len() == 1));
}

#[test]
fn a_server_down_at_start_fails_cleanly_and_a_later_send_delivers_everything() {
    let port = free_port();
    let (env, _) = world(12, port, "");
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the mail transport is unavailable"),
        "{stderr}"
    );
    assert!(stderr.contains("12 still to send"), "{stderr}");
    let run = &runs(&env)[0];
    assert_eq!(
        run["deliveries"]["pending"], 12,
        "nothing counted as tried: {run}"
    );
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start_on(sink_dir.path(), port, &[]);
    let (code, stderr) = send(&env, "2026-11-30T09:30:00+01:00");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(sink.received().len(), 12);
    assert_eq!(sink.total(), 12);
}

#[test]
fn permanent_failures_in_a_row_mark_a_subscriber_bounced_and_they_get_nothing_more() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(sink_dir.path(), &["--reject", "s0001@example.com"]);
    let (env, _) = world(3, sink.port, "bounce_threshold = 2");
    send(&env, TICK_1);
    env.write_article(
        "later.md",
        "---\ntitle: Later\ndate: 2026-12-02T09:00:00+01:00\n---\nNew.\n",
    );
    let (_, stderr) = send(&env, TICK_2);
    assert!(stderr.contains("now marked bounced"), "{stderr}");
    let list = tidings(&env, &["subscribers", "list", "--format", "csv"]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("s0001@example.com,Reader 1,bounced,"),
        "{list}"
    );
    env.write_article(
        "third.md",
        "---\ntitle: Third\ndate: 2026-12-09T09:00:00+01:00\n---\nNew.\n",
    );
    send(&env, "2026-12-14T09:00:00+01:00");
    assert_eq!(
        sink.faults().get("reject"),
        Some(&2),
        "not tried a third time"
    );
    assert_eq!(sink.received()["s0000@example.com"].len(), 3);
}

/// A small deterministic generator (no crate needed for ten numbers), so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn a_send_killed_at_random_moments_resumes_and_everyone_gets_the_digest_with_duplicates_bounded() {
    const SUBSCRIBERS: usize = 2000;
    const KILLS: usize = 10;
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(sink_dir.path(), &["--delay-ms", "2"]);
    // Unsigned: this test is about the ledger, and RSA signing in a debug build would dominate its time.
    let (env, _) = world_signed(SUBSCRIBERS, sink.port, "", false);
    // The same database through a symlinked folder: a second config that names it by another path.
    std::os::unix::fs::symlink(env.path(), env.path().join("alias")).unwrap();
    let alias_config = std::fs::read_to_string(env.path().join("config.toml"))
        .unwrap()
        .replace("database = \"state.db\"", "database = \"alias/state.db\"");
    std::fs::write(env.path().join("alias-config.toml"), alias_config).unwrap();

    let start = |config: &str| {
        Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args([
                "--config", config, "-q", "digest", "send", "weekly", "--now", TICK_1,
            ])
            .current_dir(env.path())
            .env("TIDINGS_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut rng = Lcg(20261126);
    let mut killed_at = Vec::new();
    for kill in 0..KILLS {
        // Every other resume goes through the symlinked path.
        let config = if kill % 2 == 0 {
            "config.toml"
        } else {
            "alias-config.toml"
        };
        let mut child = start(config);
        // A random moment mid-send: after 1 to 150 more messages reached the server (the first kill lands
        // while the run is still being planned).
        let before = sink.total();
        let target = before
            + if kill == 0 {
                0
            } else {
                1 + rng.next(150) as usize
            };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while sink.total() < target && std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL: no chance to release claims or record anything
        child.wait().unwrap();
        killed_at.push(sink.total());
    }
    assert!(
        killed_at.last().is_some_and(|n| *n < SUBSCRIBERS),
        "the kills landed mid-run (messages received at each kill: {killed_at:?})"
    );
    // Two resumes at once, through the two paths, then nothing may be left.
    let (mut a, mut b) = (start("config.toml"), start("alias-config.toml"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let (code, stderr) = send(&env, "2026-11-30T12:00:00+01:00");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("already sent"), "{stderr}");

    let received = sink.received();
    assert_eq!(
        received.keys().cloned().collect::<Vec<_>>(),
        subscribers(SUBSCRIBERS),
        "everyone got it"
    );
    let duplicates: usize = received.values().map(|m| m.len() - 1).sum();
    // In flight at a kill: at most twice `concurrency` (4) messages handed to the server and not yet recorded
    // (each connection may send its next message while the last one's outcome is committed).
    let window = KILLS * 8;
    assert!(
        duplicates <= window,
        "{duplicates} duplicates, more than the in-flight window of {window} (kills at {killed_at:?})"
    );
    eprintln!(
        "crash test: {KILLS} kills at {killed_at:?} messages; {duplicates} duplicate(s), bound {window}"
    );
    let run = &runs(&env)[0];
    assert_eq!(run["deliveries"]["sent"], SUBSCRIBERS as u64, "{run}");
}

/// `tests/tools/pipelining_sink.py`: a real SMTP server that records, for each MAIL command, which commands had
/// already arrived when it answered it.
struct PipeliningSink {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl PipeliningSink {
    fn start(dir: &Path, args: &[&str]) -> PipeliningSink {
        let port = free_port();
        let mut child = Command::new("/usr/bin/python3")
            .arg(project_root().join("tests/tools/pipelining_sink.py"))
            .arg(dir)
            .arg(port.to_string())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => {}
            other => panic!(
                "pipelining_sink did not start ({other:?}; is python3-aiosmtpd installed? run scripts/test)"
            ),
        }
        PipeliningSink {
            child,
            dir: dir.to_owned(),
            port,
        }
    }

    fn records(&self, file: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// For each MAIL command, the commands already received when it was answered.
    fn early_commands(&self) -> Vec<Vec<String>> {
        self.records("mail.jsonl")
            .iter()
            .map(|r| {
                r["early"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    }

    /// The recipients of each accepted message, sorted.
    fn recipients(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .records("messages.jsonl")
            .iter()
            .flat_map(|r| r["rcpt_tos"].as_array().unwrap().clone())
            .map(|a| a.as_str().unwrap().to_lowercase())
            .collect();
        all.sort();
        all
    }
}

impl Drop for PipeliningSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_server_that_offers_pipelining_gets_mail_rcpt_and_data_before_it_answers_mail() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = PipeliningSink::start(sink_dir.path(), &["--pipelining"]);
    let (env, _) = world_signed(20, sink.port, "", false);
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("20 sent, 0 deferred, 0 failed"), "{stderr}");
    assert_eq!(sink.recipients(), subscribers(20));
    let early = sink.early_commands();
    assert_eq!(early.len(), 20, "one MAIL per message: {early:?}");
    for commands in &early {
        assert_eq!(
            commands.len(),
            2,
            "RCPT and DATA came with MAIL: {commands:?}"
        );
        assert!(
            commands[0].starts_with("RCPT TO:<s0") && commands[1] == "DATA",
            "{commands:?}"
        );
    }
}

#[test]
fn with_pipelining_temporary_failures_and_dropped_connections_are_retried_and_every_message_arrives_once()
 {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = PipeliningSink::start(
        sink_dir.path(),
        &["--pipelining", "--tempfail-every", "5", "--drop-every", "7"],
    );
    let (env, _) = world_signed(40, sink.port, "max_attempts = 6", false);
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(0), "{stderr}");
    let faults = sink.records("faults.jsonl");
    let count = |kind: &str| faults.iter().filter(|f| f["fault"] == kind).count();
    assert!(count("tempfail") >= 8 && count("drop") >= 4, "{faults:?}");
    assert_eq!(sink.recipients(), subscribers(40), "everyone once");
    assert!(
        sink.early_commands().iter().all(|c| c.len() == 2),
        "every envelope pipelined"
    );
    assert_eq!(runs(&env)[0]["deliveries"]["sent"], 40);
}

#[test]
fn a_server_without_pipelining_gets_every_message_one_command_at_a_time() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = PipeliningSink::start(sink_dir.path(), &[]);
    let (env, _) = world_signed(20, sink.port, "", false);
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(sink.recipients(), subscribers(20));
    let early = sink.early_commands();
    assert_eq!(early.len(), 20, "{early:?}");
    assert!(
        early.iter().all(Vec::is_empty),
        "nothing sent before MAIL was answered: {early:?}"
    );
}

#[test]
fn a_recipient_refused_in_a_pipelined_envelope_is_failed_and_the_rest_still_delivered() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = PipeliningSink::start(
        sink_dir.path(),
        &["--pipelining", "--reject", "s0003@example.com"],
    );
    let (env, _) = world_signed(10, sink.port, "", false);
    let config = env.path().join("config.toml");
    let one_connection = std::fs::read_to_string(&config)
        .unwrap()
        .replace("concurrency = 4", "concurrency = 1");
    std::fs::write(&config, one_connection).unwrap();
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("s0003@example.com: refused for good, not retried: permanent error (550)"),
        "{stderr}"
    );
    let mut expected = subscribers(10);
    expected.retain(|s| s != "s0003@example.com");
    assert_eq!(sink.recipients(), expected);
    // One connection carried all ten: the refused envelope was reset (RSET), not the connection dropped.
    let peers: std::collections::BTreeSet<String> = sink
        .records("mail.jsonl")
        .iter()
        .map(|r| r["peer"].to_string())
        .collect();
    assert_eq!(sink.records("mail.jsonl").len(), 10);
    assert_eq!(peers.len(), 1, "{peers:?}");
}

/// A world whose `smtp_url` asks for STARTTLS (`?tls=required`) to `port`.
fn world_with_tls_required(n: usize, port: u16) -> TestEnv {
    let (env, _) = world_signed(n, port, "", false);
    let config = env.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("smtp://127.0.0.1:{port}\""),
        &format!("smtp://127.0.0.1:{port}?tls=required\""),
    );
    assert!(text.contains("?tls=required"));
    std::fs::write(&config, text).unwrap();
    env
}

#[test]
fn tls_required_is_refused_by_a_server_without_starttls_and_nothing_is_sent() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = PipeliningSink::start(sink_dir.path(), &["--pipelining"]);
    let env = world_with_tls_required(3, sink.port);
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("does not offer STARTTLS"), "{stderr}");
    assert!(stderr.contains("3 still to send"), "{stderr}");
    assert!(sink.early_commands().is_empty(), "no MAIL in the clear");
}

/// A self-signed certificate for 127.0.0.1 and its key, (cert.pem, key.pem) in `dir`.
fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs (scripts/test installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

#[test]
fn implicit_tls_checks_the_certificate_before_any_smtp() {
    let sink_dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_certificate(keys.path());
    let sink = PipeliningSink::start(
        sink_dir.path(),
        &[
            "--implicit-tls",
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
        ],
    );
    let (env, _) = world_signed(3, sink.port, "", false);
    let config = env.path().join("config.toml");
    let port = sink.port;
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("smtp://127.0.0.1:{port}"),
        &format!("smtps://127.0.0.1:{port}"),
    );
    std::fs::write(&config, text).unwrap();
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("TLS failed with") && stderr.contains("invalid peer certificate"),
        "{stderr}"
    );
    assert!(sink.early_commands().is_empty() && sink.recipients().is_empty());
}

#[test]
fn starttls_is_negotiated_and_a_certificate_from_no_trusted_authority_stops_the_send() {
    let sink_dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_certificate(keys.path());
    let sink = PipeliningSink::start(
        sink_dir.path(),
        &["--starttls", cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    let env = world_with_tls_required(3, sink.port);
    let (code, stderr) = send(&env, TICK_1);
    assert_eq!(code, Some(2), "{stderr}");
    // The server agreed to STARTTLS; the handshake then failed on its self-signed certificate (rustls checks it
    // against the webpki roots, and tidings has no switch to skip that).
    assert!(
        stderr.contains("TLS failed with") && stderr.contains("invalid peer certificate"),
        "{stderr}"
    );
    assert!(sink.early_commands().is_empty(), "no MAIL sent");
    assert!(sink.recipients().is_empty());
}

/// A world that logs in as `news` (the URL's user name) with `password` from `TIDINGS_MAIL_PASSWORD`.
fn send_with_login(n: usize, port: u16, password: &str) -> (TestEnv, Option<i32>, String) {
    let (env, _) = world_signed(n, port, "", false);
    let config = env.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("smtp://127.0.0.1:{port}"),
        &format!("smtp://news@127.0.0.1:{port}"),
    );
    std::fs::write(&config, text).unwrap();
    let out = env.run_with_env(
        &["digest", "send", "weekly", "--now", TICK_1],
        &[
            ("TIDINGS_SECRET", SECRET),
            ("TIDINGS_MAIL_PASSWORD", password),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (env, out.status.code(), stderr)
}

#[test]
fn a_login_with_the_password_from_the_environment_is_accepted_with_plain_or_login() {
    for (args, mechanism) in [
        (&["--auth", "news:s3cret pass"][..], "PLAIN"),
        (&["--auth", "news:s3cret pass", "--no-plain"][..], "LOGIN"),
    ] {
        let sink_dir = tempfile::tempdir().unwrap();
        let sink = PipeliningSink::start(sink_dir.path(), args);
        let (_env, code, stderr) = send_with_login(4, sink.port, "s3cret pass");
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(sink.recipients(), subscribers(4));
        let logins = sink.records("auth.jsonl");
        assert!(!logins.is_empty());
        for login in &logins {
            assert_eq!(login["mechanism"], mechanism, "{login}");
            assert_eq!(login["login"], "news");
            assert_eq!(login["ok"], true);
        }
    }
}

#[test]
fn a_refused_login_stops_the_send_without_counting_any_message_as_tried() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = PipeliningSink::start(sink_dir.path(), &["--auth", "news:right"]);
    let (env, code, stderr) = send_with_login(4, sink.port, "wrong");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("login refused by") && stderr.contains("(535)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong"),
        "the password is never printed: {stderr}"
    );
    assert!(stderr.contains("4 still to send"), "{stderr}");
    assert!(sink.recipients().is_empty());
    assert_eq!(runs(&env)[0]["deliveries"]["pending"], 4);
}
