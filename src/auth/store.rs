//! Queries for accounts, sessions, tokens and the login flow (shared by web, API and CLI).

use serde::Serialize;

use super::{Principal, Role, Via, password, random_hex, token_hash};
use crate::app::AppState;
use crate::audit::{self, Actor, Event};
use crate::db::list::{Page, Where};
use crate::db::{Tx, get, now_ms};
use crate::error::{AppError, AppResult, FieldErrors};

/// An account as listed on the users page (never the hash).
#[derive(Clone, Debug, Serialize)]
pub struct User {
    /// users.id
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// Role label.
    pub role_label: String,
    /// Scope node code.
    pub scope: String,
    /// Whether the account is locked now.
    pub locked: bool,
    /// Whether the password must be changed.
    pub must_change_password: bool,
}

pub(super) const USER_COLS: &str =
    "id, username, display_name, password_hash, role, scope, scope_path, unit_id, must_change_password, locked_until, disabled";

pub(super) struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    password_hash: String,
    role: Role,
    scope: String,
    scope_path: String,
    unit_id: Option<i64>,
    must_change: bool,
    pub(super) locked_until: Option<i64>,
    pub(super) disabled: bool,
}

pub(super) fn user_row(r: &crate::db::Row) -> AppResult<UserRow> {
    let role: String = get(r, "role")?;
    Ok(UserRow {
        id: get(r, "id")?,
        username: get(r, "username")?,
        display_name: get(r, "display_name")?,
        password_hash: get(r, "password_hash")?,
        role: Role::parse(&role).map_err(AppError::Internal)?,
        scope: get(r, "scope")?,
        scope_path: get(r, "scope_path")?,
        unit_id: get(r, "unit_id")?,
        must_change: get::<i64>(r, "must_change_password")? != 0,
        locked_until: get(r, "locked_until")?,
        disabled: get::<i64>(r, "disabled")? != 0,
    })
}

impl UserRow {
    pub(super) fn principal(&self, via: Via, ip: &str) -> Principal {
        Principal {
            user_id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            scope: self.scope.clone(),
            scope_path: self.scope_path.clone(),
            unit_id: self.unit_id,
            unit_name: None,
            must_change_password: self.must_change,
            via,
            ip: ip.into(),
        }
    }
    fn public(&self) -> User {
        User {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: self.role.as_str().into(),
            role_label: self.role.label().into(),
            scope: self.scope.clone(),
            locked: self.locked_until.is_some_and(|t| t > now_ms()),
            must_change_password: self.must_change,
        }
    }
}

async fn find_user(st: &AppState, username: &str) -> AppResult<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLS} FROM users WHERE username = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(username).fetch_optional(st.db.read()).await?;
    row.as_ref().map(user_row).transpose()
}

/// A new account.
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Display name (defaults to the login name).
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Scope node code.
    pub scope: String,
    /// Initial password (must be changed at first login unless `must_change` is false).
    pub password: String,
    /// Force a password change at first login.
    pub must_change: bool,
}

/// Validates the username format.
pub fn check_username(u: &str) -> Result<(), String> {
    let ok = (3..=32).contains(&u.len()) && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok { Ok(()) } else { Err("用户名应为 3～32 位字母、数字、下划线、点或连字符".into()) }
}

/// The kinds of node above a role's level: its scope may not be one of them.
fn above(role: Role) -> &'static [crate::tree::Kind] {
    use crate::tree::Kind;
    match role {
        Role::StreetAdmin => &[Kind::County],
        // A Party member reports where they live, a resident lives somewhere: a community or
        // below (one scoped to the county could claim needs in every street).
        Role::CommunityStaff | Role::GridWorker | Role::PartyMember | Role::Resident => &[Kind::County, Kind::Street],
        Role::CountyAdmin | Role::UnitContact => &[],
    }
}

/// Creates an account; `by` is the admin doing it (None for the CLI and demo).
pub async fn create_user(st: &AppState, by: Option<&Principal>, actor: &Actor, nu: NewUser) -> AppResult<User> {
    let mut errs = FieldErrors::default();
    errs.check("username", check_username(&nu.username));
    errs.check("password", password::check_policy(&nu.password));
    // A unit contact's scope is a unit (code or id); everyone else's is a tree node.
    let (scope_path, unit_id) = if nu.scope.trim().is_empty() {
        errs.add("scope", "请填写管辖范围（区域编码；单位联络员填单位编码）");
        (None, None)
    } else if nu.role == Role::UnitContact {
        match crate::cases::units::find(&st.db, &nu.scope).await? {
            Some(u) => (Some(u.node_path), Some(u.id)),
            None => {
                errs.add("scope", format!("单位 {} 不存在（单位联络员的范围应为单位编码）", nu.scope));
                (None, None)
            }
        }
    } else {
        match crate::tree::store::find_by_code(&st.db, &nu.scope).await? {
            Some(n) if above(nu.role).contains(&n.kind) => {
                // A community worker scoped to the county would hold a county's reach with a
                // community's role (least privilege); a narrower scope is a duty (a worker
                // for one grid).
                errs.add(
                    "scope",
                    format!("{}的管辖范围不能高于其层级：{} 是{}「{}」", nu.role.label(), nu.scope, n.kind.label(), n.name),
                );
                (None, None)
            }
            Some(n) => (Some(n.path), None),
            None => {
                errs.add("scope", format!("管辖范围 {} 不存在", nu.scope));
                (None, None)
            }
        }
    };
    if nu.display_name.trim().chars().count() > 32 || crate::ident::has_control(&nu.display_name) {
        errs.add("display_name", "名称不超过 32 个字，且不含控制字符");
    }
    if let (Some(by), Some(path)) = (by, &scope_path) {
        by.check(super::Perm::UserManage, path)?;
        if nu.role.rank() < by.role.rank() {
            errs.add("role", "不能创建比自己权限更高的账号");
        }
    }
    errs.finish()?;
    let scope_path = scope_path.unwrap_or_default();
    let hash = password::hash(&nu.password).await?;
    let now = now_ms();
    let mut tx = st.db.begin().await?;
    // Names that differ only in case (admin, Admin) read as one person in the audit log and
    // on screen: one of them only, checked under a lock so two nodes cannot both pass.
    tx.serialise("users:name").await?;
    let exists = sqlx::query("SELECT username FROM users WHERE LOWER(username) = LOWER($1)")
        .bind(&nu.username)
        .fetch_optional(&mut tx)
        .await?;
    if let Some(r) = exists {
        let taken: String = get(&r, "username")?;
        let msg = if taken == nu.username {
            "该用户名已被使用".to_string()
        } else {
            format!("与已有用户名 {taken} 仅大小写不同")
        };
        return Err(AppError::field("username", msg));
    }
    let display = if nu.display_name.trim().is_empty() { nu.username.clone() } else { nu.display_name.trim().to_string() };
    sqlx::query(
        "INSERT INTO users (username, display_name, password_hash, role, scope, scope_path, must_change_password, created_at, updated_at, unit_id) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8,$9)",
    )
    .bind(&nu.username)
    .bind(&display)
    .bind(&hash)
    .bind(nu.role.as_str())
    .bind(&nu.scope)
    .bind(&scope_path)
    .bind(nu.must_change as i64)
    .bind(now)
    .bind(unit_id)
    .execute(&mut tx)
    .await?;
    let summary = format!("创建账号 {}（{}，范围 {}）", nu.username, nu.role.label(), nu.scope);
    let ev = Event { action: "user.create", entity: "user", entity_id: &nu.username, node_path: &scope_path, summary: &summary };
    audit::append(&mut tx, &st.chain, actor, ev);
    tx.commit().await?;
    find_user(st, &nu.username).await?.map(|u| u.public()).ok_or(AppError::NotFound)
}

/// Filters of the account list.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct UserFilter {
    /// Part of the username or display name.
    pub q: Option<String>,
    /// Role name.
    pub role: Option<String>,
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size.
    #[serde(default, deserialize_with = "crate::db::list::asked_per_page")]
    pub per_page: Option<i64>,
}

/// Lists accounts inside the caller's scope, a page at a time (a city has tens of thousands:
/// grid workers, unit contacts, Party members).
pub async fn list_users(st: &AppState, p: &Principal, f: &UserFilter) -> AppResult<Page<User>> {
    p.require(super::Perm::UserManage)?;
    let mut w = Where::new();
    w.under("scope_path", &p.scope_path);
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        w.contains(&["username", "display_name"], q);
    }
    if let Some(r) = f.role.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        let role = Role::parse(r).map_err(|_| AppError::field("role", "角色不存在"))?;
        w.arg("role = ?", role.as_str());
    }
    let paging = crate::db::list::paging(f.page, f.per_page);
    w.page(&st.db, USER_COLS, "FROM users", "id", paging, |r| Ok(user_row(r)?.public())).await
}

/// Lists every account (CLI).
pub async fn list_all(st: &AppState) -> AppResult<Vec<User>> {
    let sql = format!("SELECT {USER_COLS} FROM users ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(st.db.read()).await?;
    rows.iter().map(|r| user_row(r).map(|u| u.public())).collect()
}

/// What an admin can do to an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserAction {
    /// Lock indefinitely.
    Lock,
    /// Clear lock and failures.
    Unlock,
}

/// The account `by` may lock, unlock or give a new password: inside its scope and of a lower
/// rank (the county admin, the top, also its peers). Otherwise a community worker could set a
/// password on a street admin in its community and log in with that account's powers.
async fn target(st: &AppState, by: Option<&Principal>, username: &str) -> AppResult<UserRow> {
    let u = find_user(st, username).await?.ok_or(AppError::NotFound)?;
    if let Some(by) = by {
        by.check(super::Perm::UserManage, &u.scope_path)?;
        if u.role.rank() <= by.role.rank() && by.role != Role::CountyAdmin && u.id != by.user_id {
            return Err(AppError::Forbidden);
        }
    }
    Ok(u)
}

/// `locked_until` of an account an admin locked (a lockout after failed logins ends sooner).
const ADMIN_LOCK: i64 = i64::MAX / 2;

/// Whether `locked_until` is an administrator's lock (`user lock`, the users page), which ends
/// the account's sessions and stops its tokens. A lockout after failed passwords only refuses
/// new logins: anyone may type a name five times, so it must not log its owner out.
pub(super) fn admin_locked(locked_until: Option<i64>) -> bool {
    locked_until.is_some_and(|t| t >= ADMIN_LOCK)
}

/// Locks or unlocks an account.
pub async fn set_lock(st: &AppState, by: Option<&Principal>, actor: &Actor, username: &str, action: UserAction) -> AppResult<()> {
    let u = target(st, by, username).await?;
    let until = match action {
        UserAction::Lock => Some(ADMIN_LOCK),
        UserAction::Unlock => None,
    };
    if action == UserAction::Lock && by.is_some_and(|b| b.user_id == u.id) {
        // Locked out at once, with nobody left to unlock them but the server's console.
        return Err(AppError::Conflict("不能锁定自己的账号".into()));
    }
    let mut tx = st.db.begin().await?;
    if action == UserAction::Lock && u.role == Role::CountyAdmin {
        tx.serialise("users:county_admins").await?;
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE role = 'county_admin' AND id <> $1 AND disabled = 0 AND (locked_until IS NULL OR locked_until < $2)",
        )
        .bind(u.id)
        .bind(now_ms())
        .fetch_one(&mut tx)
        .await?;
        if others == 0 {
            return Err(AppError::Conflict("这是最后一个可用的县级管理员账号，锁定后将无人能管理系统".into()));
        }
    }
    sqlx::query("UPDATE users SET locked_until = $1, failed_logins = 0, updated_at = $2 WHERE id = $3")
        .bind(until)
        .bind(now_ms())
        .bind(u.id)
        .execute(&mut tx)
        .await?;
    if action == UserAction::Lock {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(u.id).execute(&mut tx).await?;
    }
    let (act, summary) = match action {
        UserAction::Lock => ("user.lock", format!("锁定账号 {username}")),
        UserAction::Unlock => ("user.unlock", format!("解锁账号 {username}")),
    };
    let ev = Event { action: act, entity: "user", entity_id: username, node_path: &u.scope_path, summary: &summary };
    audit::append(&mut tx, &st.chain, actor, ev);
    commit_auth_change(st, tx).await?;
    Ok(())
}

/// Sets a new password. An admin reset forces a change at next login and ends the account's
/// sessions and personal access tokens (a reset is how a taken-over account is recovered); a
/// user's own change (with the old password checked by the caller, [`check_own_password`])
/// clears that flag and ends the account's personal access tokens and other sessions — the
/// usual reason to change one's password is that someone else may know it, and a token they
/// issued would outlive the change. The calling session goes on.
pub async fn set_password(
    st: &AppState,
    by: Option<&Principal>,
    actor: &Actor,
    username: &str,
    new_pw: &str,
    own: bool,
) -> AppResult<()> {
    password::check_policy(new_pw).map_err(|m| AppError::field("password", m))?;
    let u = if own { find_user(st, username).await?.ok_or(AppError::NotFound)? } else { target(st, by, username).await? };
    if !own && by.is_some_and(|b| b.user_id == u.id) {
        // An admin's reset asks no current password: on one's own account it would let a
        // stolen session take the account for good.
        return Err(AppError::Conflict("不能重置自己的密码：请在“修改密码”中修改（需输入原密码）".into()));
    }
    if own && password::verify(new_pw, &u.password_hash).await {
        return Err(AppError::field("password", "新密码不能与原密码相同"));
    }
    let hash = password::hash(new_pw).await?;
    let mut tx = st.db.begin().await?;
    // A new password ends a lockout after failed logins, not an admin's lock: unlocking is
    // an act of its own.
    sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = $2, failed_logins = 0, \
         locked_until = CASE WHEN locked_until >= $5 THEN locked_until ELSE NULL END, updated_at = $3 WHERE id = $4",
    )
    .bind(&hash)
    .bind((!own) as i64)
    .bind(now_ms())
    .bind(u.id)
    .bind(ADMIN_LOCK)
    .execute(&mut tx)
    .await?;
    // Every session but the caller's (an admin reset: every one).
    let current = match by.map(|p| &p.via) {
        Some(Via::Session { token_hash, .. }) if own => token_hash.as_str(),
        _ => "",
    };
    let sessions = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(u.id)
        .bind(current)
        .execute(&mut tx)
        .await?
        .rows_affected();
    let tokens = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(u.id)
        .execute(&mut tx)
        .await?
        .rows_affected();
    let (act, summary) = if own {
        ("user.password_change", format!("修改本人密码，吊销 {tokens} 个访问令牌，结束 {sessions} 个其他会话"))
    } else {
        ("user.password_reset", format!("重置 {username} 的密码，吊销 {tokens} 个访问令牌，结束 {sessions} 个会话"))
    };
    let ev = Event { action: act, entity: "user", entity_id: username, node_path: &u.scope_path, summary: &summary };
    audit::append(&mut tx, &st.chain, actor, ev);
    commit_auth_change(st, tx).await?;
    Ok(())
}

/// Checks the current password typed on the change-password form by the signed-in `p`.
///
/// A wrong one counts toward the same lockout as a wrong login, and is audited like one: a
/// stolen session could otherwise guess the password without limit. While the account is
/// locked the form is refused (423) without checking. `Ok(Err(message))`: the password is
/// wrong (the message for the field `current`).
pub async fn check_own_password(st: &AppState, p: &Principal, pw: &str) -> AppResult<Result<(), String>> {
    let u = find_user(st, &p.username).await?.ok_or(AppError::Unauthorized)?;
    let actor = p.actor();
    if let Some(until) = u.locked_until.filter(|t| *t > now_ms()) {
        let ev = Event { node_path: &u.scope_path, ..login_failed(&u.username, "账号锁定期间尝试修改密码") };
        audit::record(&st.db, &st.chain, &actor, ev).await?;
        return Err(AppError::Locked(if admin_locked(Some(until)) {
            locked_msg(until)
        } else {
            format!("密码连续输入错误次数过多，账号已锁定，请 {} 分钟后再试", minutes_to(until))
        }));
    }
    if password::verify(pw, &u.password_hash).await {
        return Ok(Ok(()));
    }
    Ok(Err(match count_failure(st, &u, &actor, &u.username, "修改密码时当前密码错误").await? {
        Some(until) => {
            format!("当前密码不正确；错误次数过多，账号已锁定，{} 分钟内不能登录或修改密码", minutes_to(until))
        }
        None => "当前密码不正确".into(),
    }))
}

/// The audit entry of a failed login (or a wrong current password: the same lockout).
fn login_failed<'a>(username: &'a str, summary: &'a str) -> Event<'a> {
    Event { action: "login.failed", entity: "user", entity_id: username, node_path: "/", summary }
}

/// Counts a wrong password against account `u`, locks it for new logins at the threshold, and
/// audits the failure as `what` under the name `typed`; returns until when it is locked now, if
/// this failure locked it.
async fn count_failure(st: &AppState, u: &UserRow, actor: &Actor, typed: &str, what: &str) -> AppResult<Option<i64>> {
    let mut tx = st.db.begin().await?;
    // Counted in the row, not on from the count read before the password check: guesses
    // sent together would each have written the same count and never locked the account.
    let r = sqlx::query("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
        .bind(u.id)
        .fetch_one(&mut tx)
        .await?;
    let failed: i64 = get(&r, "failed_logins")?;
    let lock = (failed >= st.cfg.lockout_threshold).then_some(now_ms() + st.cfg.lockout_secs * 1000);
    if let Some(until) = lock {
        // A lock set meanwhile by an administrator (indefinite) is not shortened. Sessions and
        // tokens are left alone (see [`admin_locked`]), so the token cache needs no word.
        sqlx::query(
            "UPDATE users SET failed_logins = 0, \
             locked_until = CASE WHEN locked_until > $1 THEN locked_until ELSE $1 END WHERE id = $2",
        )
        .bind(until)
        .bind(u.id)
        .execute(&mut tx)
        .await?;
    }
    let summary = if lock.is_some() {
        format!("{what}（第 {failed} 次），账号已锁定")
    } else {
        format!("{what}（第 {failed} 次）")
    };
    audit::append(&mut tx, &st.chain, actor, Event { node_path: &u.scope_path, ..login_failed(typed, &summary) });
    tx.commit().await?;
    Ok(lock)
}

/// Throttle window for login failures per client address.
const IP_WINDOW_MS: i64 = 15 * 60 * 1000;

/// Counts a failed login from `ip`; returns the window's count.
async fn note_ip_failure(st: &AppState, ip: &str) -> AppResult<i64> {
    super::throttle::note(st, ip, IP_WINDOW_MS).await
}

fn ip_limit(st: &AppState) -> i64 {
    st.cfg.lockout_threshold.max(st.cfg.ip_throttle)
}

async fn ip_blocked(st: &AppState, ip: &str) -> AppResult<bool> {
    super::throttle::blocked(st, ip, ip_limit(st), IP_WINDOW_MS).await
}

/// A login to a name no account has: answered as an account would be — 401, and after as many
/// failures as lock an account, 423 with the same message for as long — so that the answers
/// do not tell which names exist.
async fn unknown_user(
    st: &AppState,
    actor: &Actor,
    pw: &str,
    fail: for<'a> fn(&'a str, &'a str) -> Event<'a>,
) -> AppResult<AppError> {
    use super::throttle;
    let lock_ms = st.cfg.lockout_secs * 1000;
    let (count_key, lock_key) = (format!("login#{}", actor.name), format!("locked#{}", actor.name));
    password::verify(pw, password::dummy_hash()).await;
    if let Some(since) = throttle::since(st, &lock_key, lock_ms).await? {
        audit::record(&st.db, &st.chain, actor, fail(&actor.name, "用户名不存在（按锁定答复）")).await?;
        return Ok(AppError::Locked(locked_msg(since + lock_ms)));
    }
    note_ip_failure(st, &actor.ip).await?;
    if throttle::note(st, &count_key, lock_ms).await? >= st.cfg.lockout_threshold {
        throttle::note(st, &lock_key, lock_ms).await?;
    }
    audit::record(&st.db, &st.chain, actor, fail(&actor.name, "用户名不存在")).await?;
    Ok(AppError::BadCredentials)
}

/// A successful login.
pub struct LoginOk {
    /// The session token (cookie value or Bearer token).
    pub token: String,
    /// The logged-in account.
    pub principal: Principal,
}

/// Why an account may not log in at `now` (disabled, or locked), if it may not.
fn refusal(u: &UserRow, now: i64) -> Option<AppError> {
    if u.disabled {
        return Some(AppError::Locked("账号已停用，请联系管理员".into()));
    }
    u.locked_until.filter(|t| *t > now).map(|until| AppError::Locked(locked_msg(until)))
}

/// Whole minutes (at least one) until `until`.
fn minutes_to(until: i64) -> i64 {
    ((until - now_ms()) as f64 / 60000.0).ceil().max(1.0) as i64
}

fn locked_msg(until: i64) -> String {
    let mins = minutes_to(until);
    if mins > 60 * 24 * 365 {
        "账号已被管理员锁定，请联系管理员".into()
    } else {
        format!("连续登录失败次数过多，账号已锁定，请 {mins} 分钟后再试")
    }
}

/// The login flow: address throttle, lockout, argon2 verify, session creation, login log.
pub async fn login(st: &AppState, username: &str, pw: &str, ip: &str) -> AppResult<LoginOk> {
    // Whatever was typed goes into the audit log as at most 64 visible characters: a login
    // needs no account, so a megabyte name or a line break would land there as it is.
    let typed = audit::printable(username, 64);
    let actor = Actor { name: typed.clone(), ip: ip.into() };
    let fail = login_failed;
    if ip_blocked(st, ip).await? {
        // Logged once per window: past the limit every attempt would add an entry, unbounded.
        if note_ip_failure(st, ip).await? == ip_limit(st) + 1 {
            let why = "来源地址登录失败次数过多，已限流（本时段内此后的尝试不再逐条记录）";
            audit::record(&st.db, &st.chain, &actor, fail(&typed, why)).await?;
        }
        return Err(AppError::TooMany("该地址登录失败次数过多，请 15 分钟后再试".into()));
    }
    let Some(u) = find_user(st, username).await? else {
        return Err(unknown_user(st, &actor, pw, fail).await?);
    };
    let now = now_ms();
    if let Some(refused) = refusal(&u, now) {
        // As long as a password check: a quick refusal would tell that the account exists.
        password::verify(pw, password::dummy_hash()).await;
        if !u.disabled {
            audit::record(&st.db, &st.chain, &actor, fail(&typed, "账号锁定期间尝试登录")).await?;
        }
        return Err(refused);
    }
    if !password::verify(pw, &u.password_hash).await {
        note_ip_failure(st, ip).await?;
        count_failure(st, &u, &actor, &typed, "密码错误").await?;
        return Err(AppError::BadCredentials);
    }
    let token = random_hex(32);
    let csrf = random_hex(16);
    let th = token_hash(&token);
    let mut tx = st.db.begin().await?;
    // Only if the account is still as it was checked: a lock, a reset or a disabling committed
    // while the password was being verified wins over this login (which would otherwise lift
    // the lock).
    let still = sqlx::query(
        "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1 AND password_hash = $2 AND disabled = 0 \
         AND (locked_until IS NULL OR locked_until <= $3)",
    )
    .bind(u.id)
    .bind(&u.password_hash)
    .bind(now)
    .execute(&mut tx)
    .await?;
    if still.rows_affected() == 0 {
        drop(tx);
        let now_as = find_user(st, username).await?;
        return Err(now_as.and_then(|u| refusal(&u, now)).unwrap_or(AppError::BadCredentials));
    }
    sqlx::query("INSERT INTO sessions (token_hash, user_id, csrf, ip, created_at, last_seen) VALUES ($1,$2,$3,$4,$5,$5)")
        .bind(&th)
        .bind(u.id)
        .bind(&csrf)
        .bind(ip)
        .bind(now)
        .execute(&mut tx)
        .await?;
    let ev = Event { action: "login", entity: "user", entity_id: username, node_path: &u.scope_path, summary: "登录成功" };
    audit::append(&mut tx, &st.chain, &actor, ev);
    tx.commit().await?;
    Ok(LoginOk { principal: u.principal(Via::Session { csrf, token_hash: th }, ip), token })
}

/// Ends a session. A personal access token is not a session: logging out with one is refused
/// with where tokens are revoked (it used to answer as if done while the token went on).
pub async fn logout(st: &AppState, p: &Principal) -> AppResult<()> {
    let Via::Session { token_hash, .. } = &p.via else {
        return Err(AppError::BadRequest(
            "个人访问令牌不能通过退出登录停用：请在“访问令牌”页面（/tokens）吊销，或调用 DELETE /api/v1/tokens/{id}".into(),
        ));
    };
    let mut tx = st.db.begin().await?;
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(&mut tx).await?;
    let ev =
        Event { action: "logout", entity: "user", entity_id: &p.username, node_path: &p.scope_path, summary: "退出登录" };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    commit_auth_change(st, tx).await?;
    Ok(())
}

/// Commits a change to who a token belongs to (logout, revocation, lock, password) and makes
/// every node forget what it remembered about tokens: this one now, the others at their next
/// poll.
async fn commit_auth_change(st: &AppState, mut tx: Tx) -> AppResult<()> {
    super::cache::changed(&mut tx).await?;
    tx.commit().await?;
    st.tokens.clear();
    Ok(())
}

/// Days a personal access token lasts unless asked otherwise.
pub const TOKEN_DAYS: i64 = 180;

/// Longest validity of a personal access token, in days (documented: 1–3650).
pub const TOKEN_MAX_DAYS: i64 = 3650;

/// Why a personal access token may not issue tokens (answered 403).
pub const TOKEN_FROM_TOKEN: &str = "个人访问令牌不能签发新令牌：请登录后在“访问令牌”页面签发，或用登录所得的会话令牌调用本接口";

/// Issues a personal access token for `username`, valid for `days` (default [`TOKEN_DAYS`],
/// at most [`TOKEN_MAX_DAYS`]), and returns it (shown once); `by` (the caller, None for the
/// CLI) may not while its initial password is unchanged — a token would skip that change —
/// nor with a personal access token: only a signed-in person issues tokens (tokens minted
/// by a token outlived its revocation, and could renew themselves for ever).
pub async fn issue_token(
    st: &AppState,
    by: Option<&Principal>,
    actor: &Actor,
    username: &str,
    name: &str,
    days: Option<i64>,
) -> AppResult<String> {
    if by.is_some_and(|p| p.via == Via::Token) {
        // The routes answer with [`TOKEN_FROM_TOKEN`] before this.
        return Err(AppError::Forbidden);
    }
    if by.is_some_and(|p| p.must_change_password) {
        return Err(AppError::PasswordChangeRequired);
    }
    let mut errs = crate::error::FieldErrors::default();
    if name.chars().count() > 64 {
        errs.add("name", "令牌名称不能超过 64 个字");
    }
    let days = days.unwrap_or(TOKEN_DAYS);
    if !(1..=TOKEN_MAX_DAYS).contains(&days) {
        errs.add("expires_in_days", format!("有效期应为 1～{TOKEN_MAX_DAYS} 天"));
    }
    errs.finish()?;
    let u = find_user(st, username).await?.ok_or(AppError::NotFound)?;
    // As [`super::cache::resolve`] would refuse the token: a lockout after failed passwords
    // leaves the account's sessions — and the tokens they issue — working.
    if u.disabled || admin_locked(u.locked_until) {
        return Err(AppError::Conflict(format!("账号 {username} 已停用或锁定，不能签发访问令牌")));
    }
    let token = format!("lpat_{}", random_hex(24));
    let mut tx = st.db.begin().await?;
    let now = now_ms();
    sqlx::query("INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)")
        .bind(u.id)
        .bind(name)
        .bind(token_hash(&token))
        .bind(now)
        .bind(now + days * 86_400_000)
        .execute(&mut tx)
        .await?;
    let summary = format!("签发访问令牌「{name}」，有效期 {days} 天");
    let ev = Event { action: "token.create", entity: "user", entity_id: username, node_path: &u.scope_path, summary: &summary };
    audit::append(&mut tx, &st.chain, actor, ev);
    tx.commit().await?;
    Ok(token)
}

/// A token as listed (never the secret).
#[derive(Clone, Debug, Serialize)]
pub struct TokenInfo {
    /// api_tokens.id
    pub id: i64,
    /// Label.
    pub name: String,
    /// Issued at (ms).
    pub created_at: i64,
    /// Revoked?
    pub revoked: bool,
    /// When it stops working (ms); None for tokens issued before tokens expired.
    pub expires_at: Option<i64>,
    /// Past `expires_at`.
    pub expired: bool,
}

/// Lists the caller's own tokens.
pub async fn list_tokens(st: &AppState, p: &Principal) -> AppResult<Vec<TokenInfo>> {
    let rows =
        sqlx::query("SELECT id, name, created_at, revoked_at, expires_at FROM api_tokens WHERE user_id = $1 ORDER BY id DESC")
            .bind(p.user_id)
            .fetch_all(st.db.read())
            .await?;
    rows.iter()
        .map(|r| {
            let expires_at: Option<i64> = get(r, "expires_at")?;
            Ok(TokenInfo {
                id: get(r, "id")?,
                name: get(r, "name")?,
                created_at: get(r, "created_at")?,
                revoked: get::<Option<i64>>(r, "revoked_at")?.is_some(),
                expired: expires_at.is_some_and(|e| e <= now_ms()),
                expires_at,
            })
        })
        .collect()
}

/// Revokes one of the caller's tokens.
pub async fn revoke_token(st: &AppState, p: &Principal, id: i64) -> AppResult<()> {
    let mut tx = st.db.begin().await?;
    let n = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(id)
        .bind(p.user_id)
        .execute(&mut tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(AppError::NotFound);
    }
    let summary = format!("吊销访问令牌 #{id}");
    let ev =
        Event { action: "token.revoke", entity: "user", entity_id: &p.username, node_path: &p.scope_path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    commit_auth_change(st, tx).await?;
    Ok(())
}
