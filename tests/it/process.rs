//! Tests against the real `linli` binary: crash durability (SIGKILL after acknowledged
//! writes), online backup and restore, and the CLI contracts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{PW, pg_admin_url, unique};

const BIN: &str = env!("CARGO_BIN_EXE_linli");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `linli serve` child process.
struct Server {
    child: Child,
    port: u16,
}

fn env_for(cmd: &mut Command, dir: &Path, url: Option<&str>) {
    cmd.env("LINLI_DATA_DIR", dir).env("LINLI_DEMO_PASSWORD", PW).env("RUST_LOG", "warn").env_remove("LINLI_DATABASE_URL");
    // The tests' webhook receivers listen on this machine.
    cmd.env("LINLI_WEBHOOK_ALLOW_LOOPBACK", "true");
    if let Some(u) = url {
        cmd.env("LINLI_DATABASE_URL", u);
    }
}

impl Server {
    async fn start(dir: &Path, url: Option<&str>) -> Server {
        let port = free_port();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").env("LINLI_BIND", format!("127.0.0.1:{port}")).stdout(Stdio::null()).stderr(Stdio::null());
        env_for(&mut cmd, dir, url);
        let child = cmd.spawn().unwrap();
        let s = Server { child, port };
        let t0 = Instant::now();
        while s.call("GET", "/readyz", None, None).await.map(|r| r.0) != Some(200) {
            assert!(t0.elapsed() < Duration::from_secs(60), "server did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s
    }

    /// One HTTP/1.1 request with `Connection: close`; None when the connection failed.
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Option<(u16, Value)> {
        http(self.port, method, path, token, body).await
    }

    async fn login(&self) -> String {
        let r = self.call("POST", "/api/v1/auth/login", None, Some(&json!({"username": "admin", "password": PW}))).await.unwrap();
        assert_eq!(r.0, 200, "{}", r.1);
        r.1["token"].as_str().unwrap().to_string()
    }

    fn kill9(&mut self) {
        // SIGKILL: no graceful shutdown, no WAL checkpoint, nothing flushed by us.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Option<(u16, Value)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf);
    let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
    let payload = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    Some((status, serde_json::from_str(payload).unwrap_or(Value::String(payload.to_string()))))
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(&format!("linli-proc-{tag}")));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn crash_durability(url: Option<String>) {
    let dir = tmp("crash");
    let mut srv = Server::start(&dir, url.as_deref()).await;
    let tok = srv.login().await;
    // Eight concurrent writers; record exactly which writes were acknowledged.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (port, tok) = (srv.port, tok.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..400 {
                let code = format!("520627001001004-{}", w * 400 + i + 1);
                let body =
                    json!({"kind": "compound", "code": code, "parent": "520627001001004", "name": format!("崩溃测试{w}-{i}")});
                match http(port, "POST", "/api/v1/nodes", Some(&tok), Some(&body)).await {
                    Some((201, _)) => acked.push(code),
                    Some((s, b)) => panic!("unexpected {s}: {b}"),
                    None => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    srv.kill9();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(acked.len() > 20, "some writes were acknowledged before the kill: {}", acked.len());
    let srv = Server::start(&dir, url.as_deref()).await;
    let tok = srv.login().await;
    let (_, page) =
        srv.call("GET", "/api/v1/nodes?parent=520627001001004&kind=compound&per_page=500", Some(&tok), None).await.unwrap();
    let total = page["total"].as_i64().unwrap() as usize;
    // Lists count up to 2,000: beyond that, every acknowledged write is looked up one by one.
    let capped = page["total_capped"] == true;
    assert!(capped || total >= acked.len(), "every acknowledged write survived: {total} < {}", acked.len());
    for code in acked.iter().step_by(if capped { 1 } else { 7 }) {
        let (s, _) = srv.call("GET", &format!("/api/v1/nodes/{code}"), Some(&tok), None).await.unwrap();
        assert_eq!(s, 200, "{code} lost");
    }
    let (_, v) = srv.call("GET", "/api/v1/audit/verify", Some(&tok), None).await.unwrap();
    assert_eq!(v["ok"], true, "audit chain intact after the crash: {v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_durability_sqlite() {
    crash_durability(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_durability_postgres() {
    let name = unique("linli_t");
    let admin = pg_admin_url();
    let base = admin.rsplit_once('/').unwrap().0.to_string();
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL must be reachable");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")))
        .execute(&mut c)
        .await
        .unwrap();
    crash_durability(Some(format!("{base}/{name}"))).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut c).await.unwrap();
}

fn cli(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    env_for(&mut cmd, dir, None);
    let mut child = cmd.spawn().unwrap();
    if let Some(s) = stdin {
        use std::io::Write;
        // A command that rejects its arguments exits without reading its input: that pipe
        // closes early, and what it answers is checked below.
        if let Err(e) = child.stdin.take().unwrap().write_all(s.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_then_restore() {
    let dir = tmp("backup");
    let srv = Server::start(&dir, None).await;
    let tok = srv.login().await;
    let (s, _) = srv
        .call(
            "POST",
            "/api/v1/nodes",
            Some(&tok),
            Some(&json!({"kind": "compound", "code": "520627001001005-50", "parent": "520627001001005", "name": "备份前"})),
        )
        .await
        .unwrap();
    assert_eq!(s, 201);
    // A photo on disk (as a step's upload leaves it) goes with the backup.
    std::fs::create_dir_all(dir.join("photos/202611")).unwrap();
    std::fs::write(dir.join("photos/202611/p.jpg"), b"\xff\xd8photo").unwrap();
    // Keep writing while the backup runs.
    let (port, t2) = (srv.port, tok.clone());
    let writer = tokio::spawn(async move {
        for i in 0..200 {
            let body = json!({"kind": "compound", "code": format!("520627001001005-{}", 100 + i), "parent": "520627001001005", "name": "并发"});
            http(port, "POST", "/api/v1/nodes", Some(&t2), Some(&body)).await;
        }
    });
    let file = dir.join("backup.db");
    let (code, out) = tokio::task::spawn_blocking({
        let (dir, file) = (dir.clone(), file.clone());
        move || cli(&dir, &["backup", file.to_str().unwrap()], None)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("已备份") && out.contains("照片 1 张"), "{out}");
    let copied = std::fs::read(dir.join("backup.db.photos/202611/p.jpg")).unwrap();
    assert_eq!(copied, b"\xff\xd8photo");
    // The database, its backup and the photos copied with it are the service account's alone,
    // like the key.
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [file.clone(), dir.join("linli.db"), dir.join("backup.db.photos/202611/p.jpg")] {
            assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
        }
        let d = dir.join("backup.db.photos/202611");
        assert_eq!(std::fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700);
    }
    // The backup is in the audit log (it copies every record); an export that could not be
    // written is not, and says why in words.
    let (_, log) = srv.call("GET", "/api/v1/audit?action=database.backup", Some(&tok), None).await.unwrap();
    assert!(log.to_string().contains("在线备份数据库"), "{log}");
    let (code, out) = cli(&dir, &["export", "units", "/nonexistent-dir/u.xlsx"], None);
    assert!(code != 0 && out.contains("目录不存在") && !out.contains("os error"), "{out}");
    let (_, log) = srv.call("GET", "/api/v1/audit?action=register.export", Some(&tok), None).await.unwrap();
    assert!(!log.to_string().contains("成员单位"), "{log}");
    writer.await.unwrap();
    drop(srv);
    // Restore: a new data dir with the backup as its database and the same key file.
    let restored = tmp("restored");
    std::fs::copy(&file, restored.join("linli.db")).unwrap();
    std::fs::copy(dir.join("linli.key"), restored.join("linli.key")).unwrap();
    let srv = Server::start(&restored, None).await;
    let tok = srv.login().await;
    let (s, n) = srv.call("GET", "/api/v1/nodes/520627001001005-50", Some(&tok), None).await.unwrap();
    assert_eq!((s, n["name"].as_str()), (200, Some("备份前")));
    let (_, ov) = srv.call("GET", "/api/v1/overview", Some(&tok), None).await.unwrap();
    assert_eq!(ov["grids"], 156);
    // Encrypted fields decrypt with the restored key.
    let (s, p) = srv.call("GET", "/api/v1/persons?per_page=1", Some(&tok), None).await.unwrap();
    assert_eq!(s, 200);
    assert!(p["items"][0]["id_number"].as_str().unwrap().contains("********"));
    drop(srv);
    let (code, out) = cli(&restored, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}");
    // Refuses to overwrite.
    let (code, out) = cli(&dir, &["backup", file.to_str().unwrap()], None);
    assert_ne!(code, 0);
    assert!(out.contains("已存在"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&restored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_contracts() {
    let dir = tmp("cli");
    let (code, out) = cli(&dir, &["--help"], None);
    assert_eq!(code, 0);
    assert!(out.contains("用法") && out.contains("启动网页服务"), "{out}");
    // A wrong command line is told in Chinese (clap's messages are English).
    let (code, out) = cli(&dir, &["--bogus"], None);
    assert!(code == 2 && out.contains("未知的参数 --bogus") && !out.contains("unexpected"), "{code} {out}");
    let (code, out) = cli(&dir, &["user", "token", "x", "--days", "abc"], None);
    assert!(code == 2 && out.contains("--days") && out.contains("无效"), "{code} {out}");
    // `migrate` on a new database says it migrated; the second time, that nothing was due.
    let (code, out) = cli(&dir, &["migrate"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("已执行") && out.contains("个迁移"), "{out}");
    let (code, out) = cli(&dir, &["migrate"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("数据库已是最新"), "{out}");
    let (code, out) = cli(&dir, &["demo"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(PW));
    let (code, out) = cli(
        &dir,
        &["user", "add", "ops1", "--role", "street_admin", "--scope", "520627002", "--password-stdin"],
        Some("Ops-Pass-2026\n"),
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) =
        cli(&dir, &["user", "add", "ops2", "--role", "king", "--scope", "520627", "--password-stdin"], Some("Ops-Pass-2026\n"));
    assert_ne!(code, 0);
    assert!(out.contains("角色无效"), "{out}");
    let (code, out) = cli(&dir, &["user", "token", "ops1"], None);
    assert_eq!(code, 0, "{out}");
    let token = out.trim().to_string();
    assert!(token.starts_with("lpat_"));
    let (code, out) = cli(&dir, &["user", "list"], None);
    assert_eq!(code, 0);
    assert!(out.contains("ops1") && out.contains("街道管理员"));
    let (code, _) = cli(&dir, &["user", "lock", "ops1"], None);
    assert_eq!(code, 0);
    // A locked account gets no token, and a password reset does not undo the lock.
    let (code, out) = cli(&dir, &["user", "token", "ops1"], None);
    assert!(code != 0 && out.contains("已停用或锁定"), "{code} {out}");
    let (code, out) = cli(&dir, &["user", "reset-password", "ops1", "--password-stdin"], Some("Ops-Pass-2027\n"));
    assert!(code == 0 && out.contains("管理员锁定仍保留"), "{out}");
    let (_, out) = cli(&dir, &["user", "list"], None);
    assert!(out.lines().any(|l| l.starts_with("ops1") && l.contains("已锁定")), "{out}");
    let (code, _) = cli(&dir, &["user", "unlock", "ops1"], None);
    assert_eq!(code, 0);
    let (code, out) = cli(&dir, &["user", "reset-password", "ops1", "--password-stdin"], Some("Ops-Pass-2026\n"));
    assert_eq!(code, 0, "{out}");
    // The reset revoked the account's tokens: a new one.
    let (code, out) = cli(&dir, &["user", "token", "ops1"], None);
    assert_eq!(code, 0, "{out}");
    let token = out.trim().to_string();

    let srv = Server::start(&dir, None).await;
    let (s, ov) = srv.call("GET", "/api/v1/overview", Some(&token), None).await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(ov["communities"], 7, "团结街道 has 7 communities");
    let (s, body) = srv
        .call("POST", "/api/v1/auth/login", None, Some(&json!({"username": "ops1", "password": "Ops-Pass-2026"})))
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    drop(srv);

    let (code, out) = cli(&dir, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}");
    // Tamper with the file directly, then verify names the entry.
    {
        let url = format!("sqlite://{}", dir.join("linli.db").display());
        let db = linli::db::Db::connect(&url).await.unwrap();
        sqlx::query("UPDATE audit_log SET actor = 'nobody' WHERE seq = 3").execute(&db.pool).await.unwrap();
        db.close().await;
    }
    let (code, out) = cli(&dir, &["audit", "verify"], None);
    assert_ne!(code, 0);
    assert!(out.contains("第 3 条"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A database a newer linli migrated is not served by an older one, and the settings are
/// checked: said in Chinese, before anything is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schema_and_bad_settings_are_refused() {
    let dir = tmp("newer");
    assert_eq!(cli(&dir, &["migrate"], None).0, 0);
    {
        let url = format!("sqlite://{}", dir.join("linli.db").display());
        let db = linli::db::Db::connect(&url).await.unwrap();
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)").execute(&db.pool).await.unwrap();
        db.close().await;
    }
    let (code, out) = cli(&dir, &["migrate"], None);
    assert!(code != 0 && out.contains("较新的程序升级到版本 999") && !out.contains("error with"), "{out}");
    let (code, out) = cli(&dir, &["--idle-timeout-secs", "0", "user", "list"], None);
    assert!(code == 2 && out.contains("--idle-timeout-secs"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The test server's PostgreSQL with another database name.
fn linli_test_pg_port_url(db: &str) -> String {
    let base = std::env::var("LINLI_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    format!("{}/{db}", base.rsplit_once('/').map(|(a, _)| a).unwrap_or(&base))
}

/// A key file from another install is refused before anything is written with it (a node
/// started so wrote personal data the others could not read and broke the audit chain), and a
/// check run on a database that is not there says so instead of creating one and passing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_and_a_missing_database_are_refused() {
    let (a, b) = (tmp("key_a"), tmp("key_b"));
    assert_eq!(cli(&a, &["migrate"], None).0, 0);
    assert_eq!(cli(&b, &["migrate"], None).0, 0);
    assert_eq!(cli(&a, &["user", "list"], None).0, 0, "its own key");
    std::fs::copy(b.join("linli.key"), a.join("linli.key")).unwrap();
    let (code, out) = cli(&a, &["user", "list"], None);
    assert!(code != 0 && out.contains("与数据库不匹配"), "{code}: {out}");
    // A database from before fingerprints adopts a key only if its audit log was signed with
    // it (found in review: a stray process with another install's key would have set it).
    let c = tmp("key_c");
    let (code, out) = cli(&c, &["node", "add", "--kind", "county", "--code", "520628", "--name", "松桃苗族自治县"], None);
    assert_eq!(code, 0, "{out}");
    {
        let db = linli::db::Db::connect(&format!("sqlite://{}", c.join("linli.db").display())).await.unwrap();
        sqlx::query("DELETE FROM settings WHERE key = 'key_fingerprint'").execute(&db.pool).await.unwrap();
        db.close().await;
    }
    let own = std::fs::read(c.join("linli.key")).unwrap();
    std::fs::copy(b.join("linli.key"), c.join("linli.key")).unwrap();
    let (code, out) = cli(&c, &["user", "list"], None);
    assert!(code != 0 && out.contains("审计记录不是用它签名的"), "{code}: {out}");
    std::fs::write(c.join("linli.key"), own).unwrap();
    assert_eq!(cli(&c, &["user", "list"], None).0, 0, "its own key is adopted");
    let _ = std::fs::remove_dir_all(&c);
    let missing = tmp("key_missing").join("typo");
    for args in [&["audit", "verify"][..], &["rollups", "verify"], &["user", "list"]] {
        let (code, out) = cli(&missing, args, None);
        assert!(code != 0 && out.contains("不存在"), "{args:?}: {out}");
    }
    assert!(!missing.join("linli.db").exists() && !missing.join("linli.key").exists(), "nothing created");
    // A database that cannot be opened or reached is said at once, in words (found by the ops
    // probe: 34 s, then "pool timed out while waiting for an open connection").
    let started = std::time::Instant::now();
    // What the operator is told (the log lines before it keep the detail).
    let said = |out: &str| out.lines().find(|l| l.starts_with("错误：")).unwrap_or_default().to_string();
    let (code, out) = cli(&missing, &["--data-dir", "/proc/linli-cannot-be-here", "migrate"], None);
    assert!(code != 0 && said(&out).contains("无法打开数据库文件"), "{out}");
    let pg = linli_test_pg_port_url("linli_no_such_database_here");
    let (code, out) = cli(&missing, &["--database-url", &pg, "migrate"], None);
    assert!(code != 0 && said(&out).contains("该数据库不存在"), "{out}");
    let (code, out) = cli(&missing, &["--database-url", "postgres://postgres@127.0.0.1:1/x", "migrate"], None);
    assert!(code != 0 && said(&out).contains("无法连接 PostgreSQL") && !said(&out).contains("pool timed out"), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "{:?}", started.elapsed());
    for d in [a, b] {
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// The demo county's code is 沿河's own: a county set up by hand under it is never reset (or
/// loaded over) as if it were the demo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_county_is_not_the_demo() {
    let dir = tmp("real");
    let (code, out) = cli(&dir, &["node", "add", "--kind", "county", "--code", "520627", "--name", "沿河土家族自治县"], None);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(
        &dir,
        &["user", "add", "admin", "--role", "county_admin", "--scope", "520627", "--password-stdin"],
        Some("Real-Pass-2026"),
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(&dir, &["demo", "--reset"], None);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("不是载入的演示数据"), "{out}");
    let (code, out) = cli(&dir, &["demo"], None);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("不是演示数据"), "{out}");
    let (_, out) = cli(&dir, &["user", "list"], None);
    assert!(out.contains("admin") && out.contains("县级管理员"), "the operator's account stays: {out}");
    // A county the demo loaded is reset and loaded again.
    let demo = tmp("demo-reset");
    assert_eq!(cli(&demo, &["demo"], None).0, 0);
    let (code, out) = cli(&demo, &["demo", "--reset"], None);
    assert_eq!(code, 0, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&demo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_bootstrap_without_demo() {
    let dir = tmp("boot");
    let (code, out) = cli(&dir, &["node", "add", "--kind", "county", "--code", "520628", "--name", "松桃苗族自治县"], None);
    assert_eq!(code, 0, "{out}");
    let (code, out) =
        cli(&dir, &["node", "add", "--kind", "street", "--code", "52062", "--name", "坏编码", "--parent", "520628"], None);
    assert_ne!(code, 0);
    assert!(out.contains("街道代码应为 9 位数字"), "{out}");
    let (code, out) = cli(
        &dir,
        &["user", "add", "root", "--role", "county_admin", "--scope", "520628", "--password-stdin"],
        Some("Root-Pass-2026"),
    );
    assert_eq!(code, 0, "{out}");
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--no-demo", "--bind", &format!("127.0.0.1:{port}")]).stdout(Stdio::null()).stderr(Stdio::null());
    env_for(&mut cmd, &dir, None);
    let child = cmd.spawn().unwrap();
    let srv = Server { child, port };
    let t0 = Instant::now();
    while srv.call("GET", "/readyz", None, None).await.map(|r| r.0) != Some(200) {
        assert!(t0.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, body) = srv
        .call("POST", "/api/v1/auth/login", None, Some(&json!({"username": "root", "password": "Root-Pass-2026"})))
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    let tok = body["token"].as_str().unwrap();
    let (_, ov) = srv.call("GET", "/api/v1/overview", Some(tok), None).await.unwrap();
    assert_eq!((ov["streets"].as_i64(), ov["grids"].as_i64()), (Some(0), Some(0)), "no demo data: {ov}");
    let (s, _) = srv.call("GET", "/api/v1/nodes/520627", Some(tok), None).await.unwrap();
    assert_eq!(s, 404, "the demo county was not loaded");
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The whole loop in a real headless Chromium (tests/e2e/flow.mjs, Debian's chromium and npm's
/// playwright-core). `.ci/run` installs both and sets LINLI_E2E_REQUIRED, so in CI a missing
/// browser fails the suite; on a developer machine without them the test says so and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_end_to_end() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let have = Path::new(&chromium).exists()
        && root.join("tests/e2e/node_modules/playwright-core").exists()
        && Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("LINLI_E2E_REQUIRED").is_err(),
            "browser test required but chromium, node or playwright-core is missing"
        );
        eprintln!("browser_end_to_end: chromium/node/playwright-core not installed here; run `bash .ci/run` to install them");
        return;
    }
    let dir = tmp("e2e");
    let srv = Server::start(&dir, None).await;
    let base = format!("http://127.0.0.1:{}", srv.port);
    let out = tokio::process::Command::new("node")
        .arg(root.join("tests/e2e/flow.mjs"))
        .arg(&base)
        .arg(PW)
        .env("CHROMIUM", &chromium)
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("E2E OK YH-"), "{text}");
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_register_import_export() {
    let dir = tmp("regcli");
    let (code, out) = cli(&dir, &["demo"], None);
    assert_eq!(code, 0, "{out}");
    let file = dir.join("funding.xlsx");
    let (code, out) = cli(&dir, &["export", "funding", file.to_str().unwrap()], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("社区工作经费"));
    // The export reads back as an import (computed columns are ignored): every cell passes, and
    // each row is refused only as the one already there (a community's year is one row).
    let (code, out) = cli(&dir, &["import", "funding", file.to_str().unwrap(), "--dry-run"], None);
    assert_eq!(code, 3, "{out}");
    let refused: Vec<&str> = out.lines().filter(|l| l.starts_with("第 ")).collect();
    assert_eq!(refused.len(), 27, "{out}");
    assert!(refused.iter().all(|l| l.ends_with("已有社区、年度相同的记录")), "{out}");
    // A bad file: every bad cell listed, nothing written, non-zero exit.
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["社区*", "社区名称*", "年度*", "拨付（元）*"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for (c, v) in ["999999999999", "无", "明年", "十万"].iter().enumerate() {
        ws.write_string(1, c as u16, *v).unwrap();
    }
    let bad = dir.join("bad.xlsx");
    std::fs::write(&bad, wb.save_to_buffer().unwrap()).unwrap();
    let (code, out) = cli(&dir, &["import", "funding", bad.to_str().unwrap()], None);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("第 2 行「社区」") && out.contains("第 2 行「年度」") && out.contains("第 2 行「拨付（元）」"), "{out}");
    assert!(out.contains("未写入任何数据"));
    let (code, out) = cli(&dir, &["import", "nope", bad.to_str().unwrap()], None);
    assert_ne!(code, 0);
    assert!(out.contains("没有名为 nope 的台账"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two `linli serve` processes on one PostgreSQL database: a session made on one works on the
/// other, a grid change on one is seen by the other's index, and a job runs exactly once
/// although both workers poll the same table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres() {
    use sqlx::Connection;
    let name = unique("linli_t");
    let admin_url = pg_admin_url();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let mut c = sqlx::PgConnection::connect(&admin_url).await.expect("PostgreSQL must be reachable");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")))
        .execute(&mut c)
        .await
        .unwrap();
    let (dir_a, dir_b) = (tmp("nodeA"), tmp("nodeB"));
    let a = Server::start(&dir_a, Some(&url)).await;
    // Node B shares the database and the key file, nothing else.
    std::fs::copy(dir_a.join("linli.key"), dir_b.join("linli.key")).unwrap();
    let b = Server::start(&dir_b, Some(&url)).await;
    let tok = a.login().await;
    let (s, me) = b.call("GET", "/api/v1/me", Some(&tok), None).await.unwrap();
    assert_eq!((s, me["username"].as_str()), (200, Some("admin")), "a session from node A works on node B");
    // A session ended on A stops working on B (which remembers it) within the polling interval.
    let ended = a.login().await;
    assert_eq!(b.call("GET", "/api/v1/me", Some(&ended), None).await.unwrap().0, 200);
    assert_eq!(a.call("POST", "/api/v1/auth/logout", Some(&ended), None).await.unwrap().0, 204);
    assert_eq!(a.call("GET", "/api/v1/me", Some(&ended), None).await.unwrap().0, 401, "at once on the node that ended it");
    let t0 = Instant::now();
    while b.call("GET", "/api/v1/me", Some(&ended), None).await.unwrap().0 != 401 {
        assert!(t0.elapsed() < Duration::from_secs(4), "node B kept accepting an ended session");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A grid moved on A is seen by B's point index within the polling interval.
    let (_, g) = a.call("GET", "/api/v1/grids/520627001002004", Some(&tok), None).await.unwrap();
    let ring = g["geometry"]["coordinates"][0].as_array().unwrap().clone();
    let xs: Vec<f64> = ring.iter().map(|p| p[0].as_f64().unwrap()).collect();
    let ys: Vec<f64> = ring.iter().map(|p| p[1].as_f64().unwrap()).collect();
    let (x0, x1) = (xs.iter().cloned().fold(f64::MAX, f64::min), xs.iter().cloned().fold(f64::MIN, f64::max));
    let (y0, y1) = (ys.iter().cloned().fold(f64::MAX, f64::min), ys.iter().cloned().fold(f64::MIN, f64::max));
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let locate = format!("/api/v1/grids/locate?lng={cx}&lat={cy}");
    assert_eq!(b.call("GET", &locate, Some(&tok), None).await.unwrap().1["grid_code"], "520627001002004");
    let shrunk =
        json!({"type": "Polygon", "coordinates": [[[x0, y0], [cx - 0.0001, y0], [cx - 0.0001, y1], [x0, y1], [x0, y0]]]});
    let (s, body) = a.call("PUT", "/api/v1/nodes/520627001002004/geometry", Some(&tok), Some(&shrunk)).await.unwrap();
    assert_eq!(s, 204, "{body}");
    let t0 = Instant::now();
    while b.call("GET", &locate, Some(&tok), None).await.unwrap().0 != 404 {
        assert!(t0.elapsed() < Duration::from_secs(10), "node B never saw the change");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A category added on A shows in B's (cached) Open311 service list and is accepted by B.
    let cat = json!({"code": "sjd", "name": "双节点类别", "sign_hours": 2, "resolve_hours": 24});
    let (s, body) = a.call("POST", "/api/v1/categories", Some(&tok), Some(&cat)).await.unwrap();
    assert_eq!(s, 200, "{body}");
    let t0 = Instant::now();
    loop {
        let (_, list) = b.call("GET", "/open311/v2/services.json", None, None).await.unwrap();
        if list.as_array().unwrap().iter().any(|c| c["service_code"] == "sjd") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "node B never saw the new category");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let case =
        json!({"category": "sjd", "description": "新类别的事项", "grid": "520627001001001", "reporter_phone": "13800001111"});
    let (s, body) = b.call("POST", "/api/v1/cases", Some(&tok), Some(&case)).await.unwrap();
    assert_eq!(s, 201, "{body}");
    // A case page B keeps in memory shows a step taken on A once A's notification arrives,
    // and so does B's list.
    let page = format!("/api/v1/cases/{}", body["number"].as_str().unwrap());
    for _ in 0..2 {
        assert_eq!(b.call("GET", &page, Some(&tok), None).await.unwrap().1["status"], "submitted");
        assert_eq!(
            b.call("GET", "/api/v1/cases?per_page=1", Some(&tok), None).await.unwrap().1["items"][0]["status"],
            "submitted"
        );
    }
    let (s, v) = a.call("POST", &format!("{page}/actions"), Some(&tok), Some(&json!({"action": "register"}))).await.unwrap();
    assert_eq!(s, 200, "{v}");
    let t0 = Instant::now();
    while b.call("GET", &page, Some(&tok), None).await.unwrap().1["status"] != "registered"
        || b.call("GET", "/api/v1/cases?per_page=1", Some(&tok), None).await.unwrap().1["items"][0]["status"] != "registered"
    {
        assert!(t0.elapsed() < Duration::from_secs(3), "node B kept showing the case as it was");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A webhook delivery (a job) is made once, though both nodes run workers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        }
    });
    let (s, _) = a
        .call("POST", "/api/v1/webhooks", Some(&tok), Some(&json!({"url": format!("http://127.0.0.1:{port}/hook")})))
        .await
        .unwrap();
    assert_eq!(s, 201);
    for i in 0..5 {
        let body = json!({"category": "ldd", "description": format!("双节点 {i}"), "grid": "520627001001001", "reporter_phone": "13800001111"});
        let node = if i % 2 == 0 { &a } else { &b };
        assert_eq!(node.call("POST", "/api/v1/cases", Some(&tok), Some(&body)).await.unwrap().0, 201);
    }
    let t0 = Instant::now();
    while hits.load(std::sync::atomic::Ordering::SeqCst) < 5 && t0.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 5, "each delivery exactly once");
    // Case numbers taken by both nodes' batches at once: unique and gapless.
    let (pa, pb) = (a.port, b.port);
    let creations: Vec<_> = (0..40)
        .map(|i| {
            let tok = tok.clone();
            tokio::spawn(async move {
                let body = json!({"category": "ldd", "description": format!("并发编号 {i}"), "grid": "520627001001001", "reporter_phone": "13800001111"});
                let (s, c) = http(if i % 2 == 0 { pa } else { pb }, "POST", "/api/v1/cases", Some(&tok), Some(&body)).await.unwrap();
                assert_eq!(s, 201, "{c}");
                c["number"].as_str().unwrap().rsplit('-').next().unwrap().parse::<i64>().unwrap()
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in creations {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (seqs[0]..seqs[0] + 40).collect::<Vec<_>>(), "case numbers of two nodes collide or skip");
    // Their audit entries, appended by both nodes' batches at once, make one unbroken chain
    // (a batch that waited for the other node's lock on the chain's head still links to the
    // entry that node wrote).
    let (s, v) = b.call("GET", "/api/v1/audit/verify", Some(&tok), None).await.unwrap();
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
    drop((a, b));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut c).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_needs_bytewise_collation() {
    // Scope ranges and code order compare bytes; a linguistic (here ICU) collation is refused
    // at connect with the statement that creates a suitable database.
    use sqlx::Connection;
    let name = unique("linli_icu");
    let admin_url = pg_admin_url();
    let mut c = sqlx::PgConnection::connect(&admin_url).await.expect("PostgreSQL must be reachable");
    let create = format!("CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C.UTF-8'");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&mut c).await.unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let err = linli::db::Db::connect(&url).await.unwrap_err().to_string();
    assert!(err.contains("C 排序规则") && err.contains("CREATE DATABASE"), "{err}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&mut c).await.unwrap();
}
