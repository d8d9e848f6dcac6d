//! `tidings state`: a state moved from SQLite to PostgreSQL through `state export` and `state import` reads the
//! same (subscribers, runs, deliveries, suppressions, the link secret), and `state migrate` says what it does.
//! Needs the test PostgreSQL server that scripts/test starts (TEST_POSTGRES_URL); fails without it.

use crate::support::{TestEnv, fresh_postgres_schema};

fn stdout_with(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> String {
    let out = env.run_with_env(args, vars);
    assert!(
        out.status.success(),
        "tidings {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_sqlite_state_moved_to_postgres_reads_the_same() {
    let env = TestEnv::sample();
    // A state with every kind of row: confirmed subscribers, one unsubscribed, one forgotten (a suppression),
    // two runs with sent deliveries, first sightings and the link-token secret.
    env.run_ok(&["subscribers", "import", "data/subscribers.csv"]);
    env.run_ok(&["subscribers", "remove", "linus@example.com"]);
    env.run_ok(&["subscribers", "remove", "zoe@example.org", "--forget"]);
    env.run_ok(&[
        "digest",
        "send",
        "weekly",
        "--now",
        "2026-11-23T09:00:00+01:00",
    ]);
    env.run_ok(&[
        "digest",
        "send",
        "weekly",
        "--now",
        "2026-11-30T09:00:00+01:00",
    ]);
    let sqlite_subscribers = stdout_with(&env, &["subscribers", "list", "--format", "json"], &[]);
    let sqlite_runs = stdout_with(&env, &["digest", "runs", "--format", "json"], &[]);
    assert!(
        sqlite_runs.matches("\"tick\"").count() >= 2,
        "{sqlite_runs}"
    );
    let export = env.path().join("state.json");
    let exported = env.run_ok(&["state", "export", "-o", export.to_str().unwrap()]);
    assert!(exported.contains("exported"), "{exported}");

    let postgres = fresh_postgres_schema("moved");
    let on_postgres = [("TIDINGS_STATE_DATABASE", postgres.as_str())];
    let imported = env.run_with_env(&["state", "import", export.to_str().unwrap()], &on_postgres);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert_eq!(
        stdout_with(
            &env,
            &["subscribers", "list", "--format", "json"],
            &on_postgres
        ),
        sqlite_subscribers
    );
    assert_eq!(
        stdout_with(&env, &["digest", "runs", "--format", "json"], &on_postgres),
        sqlite_runs
    );
    // Everything else too: an export of the PostgreSQL state is the SQLite one, byte for byte (deliveries with
    // their ids and replies, suppressions, first sightings, the secret, so links already mailed still work).
    let again = env.path().join("again.json");
    env.run_with_env(
        &["state", "export", "-o", again.to_str().unwrap()],
        &on_postgres,
    );
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&export).unwrap()
    );
    // The suppression came along: the forgotten address is still never added back.
    let add = env.run_with_env(&["subscribers", "add", "zoe@example.org"], &on_postgres);
    assert!(add.status.success());
    let listed = stdout_with(
        &env,
        &["subscribers", "list", "--format", "json"],
        &on_postgres,
    );
    assert!(!listed.contains("zoe@example.org"), "{listed}");
    // A tick already sent on SQLite is not sent again from PostgreSQL.
    let resend = env.run_with_env(
        &[
            "digest",
            "send",
            "weekly",
            "--now",
            "2026-11-30T09:00:00+01:00",
        ],
        &on_postgres,
    );
    assert!(resend.status.success());
    assert!(
        String::from_utf8_lossy(&resend.stderr).contains("already sent"),
        "{}",
        String::from_utf8_lossy(&resend.stderr)
    );
}

#[test]
fn an_import_into_a_state_that_holds_anything_is_refused_and_changes_nothing() {
    let env = TestEnv::sample();
    env.run_ok(&["subscribers", "import", "data/subscribers.csv"]);
    let export = env.path().join("state.json");
    env.run_ok(&["state", "export", "-o", export.to_str().unwrap()]);
    // Into the very state it came from: not empty.
    let out = env.run(&["state", "import", export.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not empty"), "{said}");
    // A file that is not an export names itself and what is wrong.
    std::fs::write(env.path().join("bad.json"), "{\"format\": \"something\"}").unwrap();
    let out = env.run(&["state", "import", "bad.json"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("bad.json") && said.contains("not a tidings state export"),
        "{said}"
    );
}

#[test]
fn migrate_says_what_it_would_do_then_does_it_once() {
    let env = TestEnv::sample();
    let postgres = fresh_postgres_schema("migrate");
    let on_postgres = [("TIDINGS_STATE_DATABASE", postgres.as_str())];
    let database = env.path().join("data/tidings.db");
    for vars in [&on_postgres[..], &[]] {
        let dry = env.run_with_env(&["state", "migrate", "--dry-run"], vars);
        let said = String::from_utf8_lossy(&dry.stderr);
        assert!(
            dry.status.success() && said.contains("schema version 0; would migrate"),
            "{said}"
        );
        assert!(!database.exists(), "a dry run creates no SQLite file");
        let done = env.run_with_env(&["state", "migrate"], vars);
        let said = String::from_utf8_lossy(&done.stderr);
        assert!(
            done.status.success() && said.contains("migrated from schema version 0"),
            "{said}"
        );
        let again = env.run_with_env(&["state", "migrate", "--dry-run"], vars);
        let said = String::from_utf8_lossy(&again.stderr);
        assert!(said.contains("up to date"), "{said}");
    }
    assert!(database.exists());
}

/// A PostgreSQL server of its own speaking TLS with a certificate from a private CA (`scripts/postgres` with
/// `PG_SSL=on`), stopped when dropped.
struct TlsServer {
    dir: tempfile::TempDir,
    url: String,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        let out =
            std::process::Command::new(crate::support::project_root().join("scripts/postgres"))
                .arg("start")
                .arg(dir.path().join("pg"))
                .env("PG_SSL", "on")
                .output()
                .unwrap();
        assert!(
            out.status.success(),
            "scripts/postgres: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        TlsServer { dir, url }
    }

    fn ca(&self) -> String {
        self.dir.path().join("pg/ca.crt").display().to_string()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new(crate::support::project_root().join("scripts/postgres"))
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .output();
    }
}

#[test]
fn tls_to_postgres_is_verified_against_pgsslrootcert() {
    let server = TlsServer::start();
    let env = TestEnv::sample();
    let url = format!("{}?sslmode=require", server.url);
    let ca = server.ca();
    let trusted = env.run_with_env(
        &["state", "migrate"],
        &[
            ("TIDINGS_STATE_DATABASE", url.as_str()),
            ("PGSSLROOTCERT", ca.as_str()),
        ],
    );
    let said = String::from_utf8_lossy(&trusted.stderr);
    assert!(
        trusted.status.success() && said.contains("migrated"),
        "{said}"
    );
    // Without the private CA the certificate is refused, and the message says so.
    let untrusted = env.run_with_env(
        &["state", "migrate"],
        &[("TIDINGS_STATE_DATABASE", url.as_str())],
    );
    let said = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success(), "{said}");
    assert!(said.contains("UnknownIssuer"), "{said}");
}
