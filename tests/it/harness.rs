//! One harness for every integration test: a fresh database per test (a copied SQLite file,
//! or a PostgreSQL database cloned from a template), the real router driven in-process, and
//! helpers to spawn the real `linli` binary.
//!
//! PostgreSQL tests use `LINLI_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! and fail — loudly — if it cannot be reached.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use linli::app::{AppState, router};
use linli::config::Config;
use serde_json::Value;
use tower::ServiceExt;

/// Password of every demo account in tests.
pub const PW: &str = "Test-Passw0rd!";

/// Waits until at least `n` write transactions wait for the writer: tests that need requests
/// queued into one batch wait for that, not for a fixed time a slow machine may overrun.
pub async fn until_queued(db: &linli::db::Db, n: usize) {
    let t0 = std::time::Instant::now();
    while db.writer_waiting() < n {
        assert!(t0.elapsed() < std::time::Duration::from_secs(30), "{n} transactions never queued for the writer");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite` and `postgres` tests for an `async fn(TestApp)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::TestApp::new($crate::harness::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::harness::TestApp::new($crate::harness::Backend::Postgres).await).await
            }
        }
    )*};
}

pub fn pg_admin_url() -> String {
    std::env::var("LINLI_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn pg_url_for(db: &str) -> String {
    let admin = pg_admin_url();
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
    format!("{base}/{db}")
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}_{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(&format!("linli-test-{tag}")));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs an async block on a fresh runtime in its own thread (for once-only setup shared by
/// tests that each have their own runtime).
fn block_on_thread<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(f)
    })
    .join()
    .unwrap()
}

/// The tests' settings: their webhook receivers listen on this machine.
pub fn config(dir: &Path, url: Option<String>) -> Config {
    Config { database_url: url, data_dir: dir.to_path_buf(), webhook_allow_loopback: true, ..Config::default() }
}

async fn build_template(dir: PathBuf, url: Option<String>) {
    let st = AppState::open(config(&dir, url)).await.expect("open template database");
    linli::demo::load(&st, PW).await.expect("load demo county");
    if st.db.backend == linli::db::Backend::Sqlite {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&st.db.pool).await.unwrap();
    }
    st.db.close().await;
}

fn sqlite_template() -> &'static PathBuf {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tmp_dir("tpl");
        block_on_thread(build_template(dir.clone(), None));
        dir
    })
}

async fn pg_exec(sql: String) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is required for the postgres tests and is unreachable at {}: {e}", pg_admin_url())
    });
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
}

/// (template database name, directory holding its key file)
fn pg_template() -> &'static (String, PathBuf) {
    static T: OnceLock<(String, PathBuf)> = OnceLock::new();
    T.get_or_init(|| {
        let name = format!("linli_tpl_{}", std::process::id());
        let dir = tmp_dir("pgtpl");
        let n = name.clone();
        let d = dir.clone();
        block_on_thread(async move {
            drop_stale_pg().await;
            pg_exec(format!("DROP DATABASE IF EXISTS {n}")).await;
            pg_exec(format!("CREATE DATABASE {n} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'")).await;
            build_template(d, Some(pg_url_for(&n))).await;
        });
        (name, dir)
    })
}

/// Drops test databases left by earlier runs whose process is gone.
async fn drop_stale_pg() {
    use sqlx::Connection;
    let Ok(mut c) = sqlx::PgConnection::connect(&pg_admin_url()).await else { return };
    let names: Vec<String> = sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE 'linli_t%'")
        .fetch_all(&mut c)
        .await
        .unwrap_or_default();
    for n in names {
        let pid = n.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))).execute(&mut c).await;
        }
    }
}

/// On PostgreSQL, runs the case cache's listener as `serve` does, and waits until it listens:
/// every PostgreSQL test then reads case pages through the cache.
async fn cache_on(st: &AppState) {
    if st.db.backend != linli::db::Backend::Postgres {
        return;
    }
    tokio::spawn(linli::db::cache::listen(st.db.case_cache.clone(), st.cfg.database_url(), st.db.pool.clone()));
    let t0 = std::time::Instant::now();
    while !st.db.case_cache.is_on() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(10), "the case cache's listener never connected");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A fresh copy of the demo county on one backend, with the real router.
pub struct TestApp {
    pub st: AppState,
    pub router: Router,
    pub dir: PathBuf,
    pub backend: Backend,
    pg_db: Option<String>,
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with(backend, |_| {}).await
    }

    /// Like `new`, with a tweak to the configuration (timeouts, lockout…).
    pub async fn with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tmp_dir("app");
        let (url, pg_db) = match backend {
            Backend::Sqlite => {
                let tpl = tokio::task::spawn_blocking(sqlite_template).await.unwrap();
                std::fs::copy(tpl.join("linli.db"), dir.join("linli.db")).unwrap();
                std::fs::copy(tpl.join("linli.key"), dir.join("linli.key")).unwrap();
                (None, None)
            }
            Backend::Postgres => {
                let (tpl, tdir) = tokio::task::spawn_blocking(pg_template).await.unwrap();
                std::fs::copy(tdir.join("linli.key"), dir.join("linli.key")).unwrap();
                let name = unique("linli_t");
                pg_exec(format!("CREATE DATABASE {name} TEMPLATE {tpl}")).await;
                (Some(pg_url_for(&name)), Some(name))
            }
        };
        let mut cfg = config(&dir, url);
        tweak(&mut cfg);
        let st = AppState::open(cfg).await.expect("open test database");
        st.db.for_requests().await.expect("serving settings");
        cache_on(&st).await;
        let router = router(st.clone());
        TestApp { st, router, dir, backend, pg_db }
    }

    /// Opens the app's database again, as a new process would (after something closed it).
    pub async fn reopen(&mut self) {
        let st = AppState::open((*self.st.cfg).clone()).await.expect("reopen test database");
        st.db.for_requests().await.expect("serving settings");
        cache_on(&st).await;
        self.router = router(st.clone());
        self.st = st;
    }

    pub fn req(&self, method: Method, path: &str) -> Req<'_> {
        Req { app: self, builder: Request::builder().method(method).uri(path), body: Body::empty() }
    }
    pub fn get(&self, path: &str) -> Req<'_> {
        self.req(Method::GET, path)
    }
    pub fn post(&self, path: &str) -> Req<'_> {
        self.req(Method::POST, path)
    }

    /// Logs in over the API and returns the session token.
    pub async fn login(&self, user: &str) -> String {
        let r = self.post("/api/v1/auth/login").json(serde_json::json!({"username": user, "password": PW})).send().await;
        assert_eq!(r.status, StatusCode::OK, "login {user}: {}", r.text());
        r.json()["token"].as_str().unwrap().to_string()
    }

    /// A new account made by the county admin, its initial password changed; its token.
    pub async fn account(&self, name: &str, role: &str, scope: &str) -> String {
        let admin = self.login("admin").await;
        let body = serde_json::json!({"username": name, "role": role, "scope": scope, "password": "Initial-Pass-2026"});
        let r = self.post("/api/v1/users").bearer(&admin).json(body).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let r = self
            .post("/api/v1/auth/login")
            .json(serde_json::json!({"username": name, "password": "Initial-Pass-2026"}))
            .send()
            .await;
        let token = r.json()["token"].as_str().unwrap().to_string();
        let change = serde_json::json!({"current": "Initial-Pass-2026", "password": PW, "confirm": PW});
        assert_eq!(self.post("/api/v1/auth/password").bearer(&token).json(change).send().await.status, StatusCode::NO_CONTENT);
        token
    }

    /// Runs raw SQL against the test database (tamper tests).
    pub async fn sql(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&self.st.db.pool).await.unwrap();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(db) = self.pg_db.take() {
            let pool = self.st.db.pool.clone();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
                    pool.close().await;
                    pg_exec(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
                })
            })
            .join()
            .ok();
        }
    }
}

pub struct Req<'a> {
    app: &'a TestApp,
    builder: axum::http::request::Builder,
    body: Body,
}

impl Req<'_> {
    pub fn bearer(mut self, token: &str) -> Self {
        self.builder = self.builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        self
    }
    pub fn cookie(mut self, c: &str) -> Self {
        self.builder = self.builder.header(header::COOKIE, c);
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.builder = self.builder.header(k, v);
        self
    }
    pub fn json(mut self, v: Value) -> Self {
        self.builder = self.builder.header(header::CONTENT_TYPE, "application/json");
        self.body = Body::from(v.to_string());
        self
    }
    pub fn raw(mut self, ct: &str, body: impl Into<Body>) -> Self {
        self.builder = self.builder.header(header::CONTENT_TYPE, ct);
        self.body = body.into();
        self
    }
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let enc: Vec<String> =
            pairs.iter().map(|(k, v)| format!("{}={}", linli::web::urlencode(k), linli::web::urlencode(v))).collect();
        self.builder = self.builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.body = Body::from(enc.join("&"));
        self
    }
    /// Status and headers only (for endless streams).
    pub async fn send_head(self) -> Resp {
        let req = self.builder.body(self.body).unwrap();
        let resp = self.app.router.clone().oneshot(req).await.unwrap();
        Resp { status: resp.status(), headers: resp.headers().clone(), body: Vec::new() }
    }

    pub async fn send(self) -> Resp {
        let req = self.builder.body(self.body).unwrap();
        let resp = self.app.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp { status, headers, body }
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, k: &str) -> String {
        self.headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
    /// The value of a Set-Cookie for `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix(&format!("{name}=")).map(|v| v.split(';').next().unwrap_or_default().to_string()))
    }
}
