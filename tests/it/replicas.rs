//! Several `tidings run` replicas sharing one PostgreSQL state (issue 11), end to end: three real daemons on one
//! schema of the test server, 20,000 subscribers, one digest tick that falls while all three are up, and a real
//! SMTP server counting what each recipient received; then the same with one replica SIGKILLed mid-run.
//!
//! The SMTP server is Postfix's C `smtp-sink` (`../shared/validators/fast-smtp-sink --dump`): it writes every
//! accepted message to a file of its own, with the envelope recipient as an `X-Rcpt-Args` line, and deletes the
//! file of a transaction cut short. The aiosmtpd `smtp-sink` the other mail tests use takes ~40 s for these
//! 20,000 messages on the 2-core test machine, the C one ~25 s; the C one also offers PIPELINING, so the replicas
//! take their pipelined path.
//!
//! Every replica gets a `--now` that puts its clock on the same instant (the first one's start time plus the
//! time since), so the tick falls at the same moment in all three; the digest's schedule has that one tick only
//! (a year field), so there is nothing to catch up at start. The replicas share the feed output folder: each
//! builds into a staging folder named after its pid and switches it in with one rename, and identical builds
//! leave the published files unchanged.
//!
//! The two tests take turns (a lock): each is a machine's worth of load, and the killed-replica test measures
//! how soon the run finishes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::DateTime;
use tidings::config::Config;
use tidings::delivery::DeliverySettings;

use crate::daemon::{Daemon, SECRET, wait_until};
use crate::delivery::free_port;
use crate::support::{TestEnv, fresh_postgres_schema, import_readers, shared};

const SUBSCRIBERS: usize = 20_000;
/// The digest's one tick, and its summary line's start in a replica's log.
const TICK: &str = "2026-11-30T08:00:00+01:00";
const SUMMARY: &str = "digest \"weekly\" 2026-11-30T08:00:00+01:00: ";
/// Where the replicas' clocks start: the tick falls `LEAD` after the first replica starts.
const START: &str = "2026-11-30T07:59:55+01:00";
const LEAD: Duration = Duration::from_secs(5);
/// The longest a whole run may take here (it takes ~25-40 s).
const RUN_LIMIT: Duration = Duration::from_secs(240);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Postfix's C `smtp-sink` on a free loopback port, dumping each accepted message to a file; stopped when
/// dropped.
struct FastSink {
    child: Child,
    /// The dumped messages (nothing else is written there).
    mail: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl FastSink {
    fn start() -> FastSink {
        let dir = tempfile::tempdir().unwrap();
        // Run as root, smtp-sink drops to `nobody`, who must reach the dump folder inside this one.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mail = dir.path().join("mail");
        let log = dir.path().join("sink.log");
        let port = free_port();
        let mut child = Command::new(shared().join("validators/fast-smtp-sink"))
            .arg(port.to_string())
            .arg("--dump")
            .arg(&mail)
            .args(["--timeout", "900"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("../shared/validators/fast-smtp-sink runs");
        // The first start downloads Postfix's package: give it time, and say why when it cannot.
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "fast-smtp-sink exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "fast-smtp-sink did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        FastSink {
            child,
            mail,
            port,
            _dir: dir,
        }
    }

    /// Messages accepted so far (and those being received this instant): cheap, for watching progress.
    fn count(&self) -> usize {
        std::fs::read_dir(&self.mail).map_or(0, Iterator::count)
    }

    /// Recipient → how many messages it was sent. Only once the senders are done: a file exists from the
    /// MAIL command on, and is deleted when its transaction is cut short.
    fn received(&self) -> BTreeMap<String, usize> {
        let mut by_rcpt = BTreeMap::new();
        for entry in std::fs::read_dir(&self.mail).unwrap() {
            let path = entry.unwrap().path();
            let file = BufReader::new(std::fs::File::open(&path).unwrap());
            let mut rcpts = 0;
            // smtp-sink's own header lines come first and end with its `Received:` line.
            for line in file.lines() {
                let line = line.unwrap();
                if line.starts_with("Received:") {
                    break;
                }
                if let Some(rcpt) = line.strip_prefix("X-Rcpt-Args: ") {
                    let rcpt = rcpt.trim_start_matches('<').trim_end_matches('>');
                    *by_rcpt.entry(rcpt.to_lowercase()).or_default() += 1;
                    rcpts += 1;
                }
            }
            assert_eq!(rcpts, 1, "one recipient per message: {}", path.display());
        }
        by_rcpt
    }
}

impl Drop for FastSink {
    fn drop(&mut self) {
        // SIGTERM: the script's `timeout` passes it on to smtp-sink (a SIGKILL would leave smtp-sink running).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The digest-basic store, its one-tick digest, mail to `smtp_port`, the state in a fresh PostgreSQL schema,
/// and [`SUBSCRIBERS`] subscribers since August (`r00000@example.com` …) imported from a CSV file.
fn world(smtp_port: u16) -> TestEnv {
    let database = fresh_postgres_schema("replicas");
    let config = format!(
        r#"
[newsletter]
from = "Test Blog <news@example.com>"
postal_address = "1 Test Street, 12345 Testville"

[[digest]]
name = "weekly"
# One tick only, {TICK}.
schedule = "0 0 8 30 11 * 2026"

[mail]
transport = "smtp"
smtp_url = "smtp://127.0.0.1:{smtp_port}"
concurrency = 4
retry_backoff_ms = 20
timeout_seconds = 10

[state]
database = "{database}"
"#
    );
    let env = TestEnv::new("digest-basic", &config);
    import_readers(
        &env,
        SUBSCRIBERS,
        |i| format!("r{i:05}@example.com"),
        &["--now", START],
        SECRET,
    );
    env
}

/// How the replicas send, from the config they read: the lease and the in-flight window.
fn settings(env: &TestEnv) -> DeliverySettings {
    let path = env.path().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = Config::parse(&path, &text, std::iter::empty(), env.path()).unwrap();
    DeliverySettings::from_config(&config.mail)
}

/// Three replicas, their clocks on one instant, all up before the tick.
fn start_replicas(env: &TestEnv) -> Vec<Daemon> {
    let start = DateTime::parse_from_rfc3339(START).unwrap();
    let first = Instant::now();
    let replicas: Vec<Daemon> = (0..3)
        .map(|_| {
            let now = start + chrono::Duration::from_std(first.elapsed()).unwrap();
            Daemon::start(env, &now.to_rfc3339())
        })
        .collect();
    assert!(
        first.elapsed() < LEAD,
        "the replicas took {:?} to start, past the tick {LEAD:?} after the first: the machine is too busy for \
         this test",
        first.elapsed()
    );
    replicas
}

/// How many messages a replica sent of the tick, from its log's summary line (once its send has returned).
fn sent_by(replica: &Daemon) -> usize {
    let log = replica.log();
    let line = log
        .lines()
        .find(|l| l.contains(SUMMARY))
        .unwrap_or_else(|| panic!("no summary of the tick in the log:\n{log}"));
    let after = &line[line.find(SUMMARY).unwrap() + SUMMARY.len()..];
    let sent = after.split(" sent,").next().unwrap();
    sent.parse()
        .unwrap_or_else(|_| panic!("no sent count in {line:?}"))
}

/// The tick's run, from `digest runs --format json`: asserts it is the only run, finished, with every
/// subscriber's delivery sent.
fn assert_one_finished_run(env: &TestEnv) {
    let out = env.run(&["digest", "runs", "weekly", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.len(), 1, "one run for the tick: {runs:?}");
    let run = &runs[0];
    assert!(run["finished"].is_string(), "finished: {run}");
    assert_eq!(
        run["deliveries"]["sent"].as_u64(),
        Some(SUBSCRIBERS as u64),
        "{run}"
    );
}

fn expected_recipients() -> BTreeSet<String> {
    (0..SUBSCRIBERS)
        .map(|i| format!("r{i:05}@example.com"))
        .collect()
}

/// Fails with every replica's log when one logged an error (a failed build or send).
fn assert_no_errors(replicas: &[Daemon]) {
    for replica in replicas {
        let log = replica.log();
        assert!(
            !log.contains(" ERROR "),
            "a replica logged an error:\n{log}"
        );
    }
}

#[test]
fn three_replicas_send_a_tick_to_20000_subscribers_each_exactly_once() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sink = FastSink::start();
    let env = world(sink.port);
    let began = Instant::now();
    let replicas = start_replicas(&env);
    for replica in &replicas {
        replica.wait_for(SUMMARY, RUN_LIMIT);
    }
    eprintln!(
        "three replicas: {SUBSCRIBERS} messages in {:?} from the first start (the tick {LEAD:?} after it)",
        began.elapsed()
    );

    let received = sink.received();
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "received more than once: {twice:?}");
    assert_eq!(
        received.keys().cloned().collect::<BTreeSet<_>>(),
        expected_recipients(),
        "every subscriber, and only they, received it"
    );
    // Each replica sent a share, and the shares add up to the run.
    let shares: Vec<usize> = replicas.iter().map(sent_by).collect();
    eprintln!("sent by each replica: {shares:?}");
    assert!(
        shares.iter().all(|n| *n > 0),
        "each replica sent some: {shares:?}"
    );
    assert_eq!(shares.iter().sum::<usize>(), SUBSCRIBERS, "{shares:?}");
    assert_one_finished_run(&env);
    assert_no_errors(&replicas);
    for replica in replicas {
        let status = replica.terminate();
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn with_a_replica_killed_mid_run_the_others_finish_it_at_once_repeating_at_most_its_in_flight_messages()
 {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sink = FastSink::start();
    let env = world(sink.port);
    let settings = settings(&env);
    let mut replicas = start_replicas(&env);
    wait_until(
        RUN_LIMIT,
        || sink.count() >= 3_000,
        || replicas.iter().map(Daemon::log).collect(),
    );
    // SIGKILL (and reaped, as its supervisor would): no release of its claims, no recording of its last answers.
    let killed = replicas.remove(1);
    let killed_log = killed.log();
    drop(killed);
    let at_kill = sink.count();
    let killed_at = Instant::now();
    assert!(
        !killed_log.contains(SUMMARY),
        "the killed replica had already finished sending:\n{killed_log}"
    );
    for replica in &replicas {
        replica.wait_for(SUMMARY, RUN_LIMIT);
    }
    let finished_in = killed_at.elapsed();

    let received = sink.received();
    let duplicates = received.values().filter(|n| **n > 1).count();
    eprintln!(
        "killed a replica with {at_kill} messages received; the survivors finished the run {finished_in:?} later \
         (lease {:?}); {duplicates} recipient(s) received it twice (in-flight window {})",
        settings.lease,
        settings.in_flight()
    );
    assert_eq!(
        received.keys().cloned().collect::<BTreeSet<_>>(),
        expected_recipients(),
        "every subscriber received it"
    );
    assert!(
        received.values().all(|n| *n <= 2),
        "nobody received it three times"
    );
    assert!(
        duplicates <= settings.in_flight(),
        "{duplicates} duplicates, more than the killed replica's in-flight window ({})",
        settings.in_flight()
    );
    // Its claims were taken over at once (same host, its process gone), not when their lease ran out.
    assert!(
        replicas.iter().any(|r| r
            .log()
            .contains("took over the claims of a sender that died")),
        "no survivor took over the killed replica's claims"
    );
    assert!(
        finished_in < settings.lease / 2,
        "the run took {finished_in:?} after the kill, against a lease of {:?}",
        settings.lease
    );
    // What the ledger says the survivors sent; the rest was recorded sent by the killed one before it died.
    let shares: Vec<usize> = replicas.iter().map(sent_by).collect();
    let by_killed = SUBSCRIBERS - shares.iter().sum::<usize>();
    eprintln!("recorded sent by the survivors: {shares:?}; by the killed replica: {by_killed}");
    assert!(
        shares.iter().all(|n| *n > 0),
        "each survivor sent some: {shares:?}"
    );
    assert!(
        by_killed > 0,
        "the killed replica had sent some before it died"
    );
    assert_one_finished_run(&env);
    assert_no_errors(&replicas);
    for replica in replicas {
        let status = replica.terminate();
        assert!(status.success(), "{status:?}");
    }
}
