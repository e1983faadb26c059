//! Taking a step of the loop: authorization by actor, the state machine, deadlines in working
//! time, history, notifications, timers, webhooks and the audit entry, in one transaction.
//! Two people acting at once: the second finds the version moved and gets a 409.

use serde::Deserialize;
use serde_json::json;

use super::categories::Category;
use super::history::{self, Entry};
use super::machine::{Action, Actor, SATISFACTION, Status};
use super::notify::{self, Target};
use super::rates::Counts;
use super::store::{CaseView, Step, load_visible, read_visible, view_by_id};
use super::view::{returned_cols, view_row};
use super::{Assignee, CaseRow, jobs, photos, rollups, staff_level, units};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Principal, Role};
use crate::db::rows::Val;
use crate::db::{Row, Tx, get, now_ms};
use crate::error::{AppError, AppResult, FieldErrors};

/// An action request (`POST /api/v1/cases/{number}/actions`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ActionInput {
    /// Action code.
    #[serde(default)]
    pub action: String,
    /// The version the caller saw; a stale one is a 409.
    pub version: Option<i64>,
    /// Note or reason.
    #[serde(default)]
    pub note: String,
    /// Assignee id for dispatch/reassign.
    #[serde(default)]
    pub assignee: String,
    /// Follow-up: was the reporter reached.
    pub contacted: Option<bool>,
    /// Follow-up: solved.
    pub solved: Option<bool>,
    /// Follow-up / rating: satisfied | basically_satisfied | unsatisfied.
    pub satisfaction: Option<String>,
    /// Extension requested, in working hours; or, when a Party member finishes a need they
    /// claimed, the hours the work took (their 志愿服务记录).
    pub hours: Option<f64>,
    /// Yes/no fields of a form whose value was neither (refused, not taken as no).
    #[serde(skip)]
    pub unreadable: Vec<&'static str>,
}

/// A resolved assignee.
struct Target2 {
    kind: &'static str,
    id_ref: String,
    name: String,
    unit_id: Option<i64>,
    user_id: Option<i64>,
}

async fn resolve_assignee(st: &AppState, c: &CaseRow, id: &str) -> AppResult<Option<Target2>> {
    let id = id.trim();
    if let Some(uid) = id.strip_prefix('u').and_then(|s| s.parse::<i64>().ok()) {
        let r = sqlx::query("SELECT id, display_name, role, scope_path FROM users WHERE id = $1 AND disabled = 0")
            .bind(uid)
            .fetch_optional(st.db.read())
            .await?;
        let Some(r) = r else { return Ok(None) };
        let role: String = get(&r, "role")?;
        let scope: String = get(&r, "scope_path")?;
        let kind = match role.as_str() {
            "grid_worker" => "grid_worker",
            "party_member" => "party_member",
            _ => return Ok(None),
        };
        // A grid worker or member takes cases inside their own grid or community.
        if !c.node_path.starts_with(&scope) {
            return Ok(None);
        }
        return Ok(Some(Target2 { kind, id_ref: id.into(), name: get(&r, "display_name")?, unit_id: None, user_id: Some(uid) }));
    }
    Ok(units::find(&st.db, id).await?.filter(|u| !u.retired && u.serves(&c.community_code)).map(|u| Target2 {
        kind: "unit",
        id_ref: u.code.clone(),
        name: u.name,
        unit_id: Some(u.id),
        user_id: None,
    }))
}

/// Dispatch suggestions: the category's default unit, units of its type serving the
/// community, the grid's workers, the community's reported Party members.
pub async fn suggestions(st: &AppState, p: &Principal, number: &str) -> AppResult<Vec<Assignee>> {
    let (c, cat) = load_visible(st, p, number).await?;
    // Who the Party members are is personal data, and choosing whom to send a case is the
    // staff's: a resident listed every 本社区报到党员 of their own case.
    if super::staff_level(p.role).is_none() {
        return Err(AppError::Forbidden);
    }
    let mut out: Vec<Assignee> = Vec::new();
    let mut push = |a: Assignee| {
        if !out.iter().any(|x| x.id == a.id) {
            out.push(a);
        }
    };
    if let Some(u) = match cat.default_unit_id {
        Some(id) => units::by_id(&st.db, id).await?,
        None => None,
    } && u.serves(&c.community_code)
    {
        push(Assignee { id: u.code, name: u.name, kind: "unit".into(), reason: "类别默认承办单位".into() });
    }
    let rows =
        sqlx::query("SELECT code, name, kind, communities FROM units WHERE retired_at IS NULL ORDER BY (kind = $1) DESC, code")
            .bind(&cat.unit_kind)
            .fetch_all(st.db.read())
            .await?;
    for r in &rows {
        let communities: String = get(r, "communities")?;
        let serves = communities.is_empty() || communities.split(',').any(|x| x == c.community_code);
        let kind: String = get(r, "kind")?;
        if serves {
            let reason =
                if kind == cat.unit_kind { format!("{}类单位，服务本社区", kind) } else { "服务本社区".into() };
            push(Assignee { id: get(r, "code")?, name: get(r, "name")?, kind: "unit".into(), reason });
        }
    }
    let grid_path = c.node_path.clone();
    let community_path = crate::tree::ancestor(&c.node_path, 3);
    let people = sqlx::query(
        "SELECT id, display_name, role, scope_path FROM users WHERE disabled = 0 AND role IN ('grid_worker', 'party_member') AND scope_path LIKE $1 ORDER BY role, id",
    )
    .bind(format!("{}%", crate::db::like_escape(&community_path)))
    .fetch_all(st.db.read())
    .await?;
    for r in &people {
        let scope: String = get(r, "scope_path")?;
        if !grid_path.starts_with(&scope) {
            continue;
        }
        let role: String = get(r, "role")?;
        let reason = if role == "grid_worker" { "所在网格网格员" } else { "本社区报到党员" };
        push(Assignee {
            id: format!("u{}", get::<i64>(r, "id")?),
            name: get(r, "display_name")?,
            kind: role,
            reason: reason.into(),
        });
    }
    Ok(out)
}

/// Whether `p` is the one who takes `a` on `c` (its category `claimable`): the case's staff,
/// its assignee, a Party member claiming a 微心愿 the community still holds, or its reporter.
pub(super) fn may(a: Action, c: &CaseRow, p: &Principal, claimable: bool) -> bool {
    match a.actor() {
        Actor::Staff => c.is_staff(p),
        Actor::Assignee => c.is_assignee(p),
        Actor::Claimer => p.role == Role::PartyMember && claimable && c.level == 0 && p.in_scope(&c.node_path),
        Actor::Reporter => c.reporter_user_id == Some(p.user_id),
    }
}

fn who_may(a: Action, c: &CaseRow, p: &Principal, claimable: bool) -> AppResult<()> {
    if may(a, c, p, claimable) {
        Ok(())
    } else if staff_level(p.role).is_some_and(|l| l < c.level) && a.actor() == Actor::Staff {
        Err(AppError::Conflict(format!("该案件已上报至{}，由上级处理", super::level_label(c.level))))
    } else {
        Err(AppError::Forbidden)
    }
}

/// Extensions a case may be granted: without a limit a case could be kept out of the yellow
/// and red cards for ever (one probe moved a deadline by 800 working hours in two steps).
pub const MAX_EXTENSIONS: i64 = 2;

/// Takes one step on a case for `p`.
pub async fn act(st: &AppState, p: &Principal, number: &str, i: &ActionInput, photos: Vec<photos::Photo>) -> AppResult<CaseView> {
    let action = Action::parse(&i.action).ok_or_else(|| AppError::field("action", "操作无效"))?;
    // Taken before the case is read: the case as this step leaves it is kept (see below) only
    // if nobody else changed it, or its history, since.
    let ticket = st.db.case_cache.ticket();
    let (c, cat, shown) = read_visible(st, p, number).await?;
    who_may(action, &c, p, cat.claimable)?;
    // A stale version is reported as such, whatever else changed since.
    if i.version.is_some_and(|v| v != c.version) {
        return Err(AppError::Conflict("该案件刚被他人处理过，请刷新后再操作".into()));
    }
    if action == Action::Rate {
        if i.note.chars().count() > 500 {
            return Err(AppError::field("note", "评价不能超过 500 字"));
        }
        let sat = i.satisfaction.as_deref().unwrap_or_default();
        let rater = super::rating::Rater { actor: p.actor(), username: &p.username, label: "居民" };
        super::rating::rate(st, &c, &rater, sat, &i.note).await?;
        return view_by_id(st, c.id).await;
    }
    // A step the case no longer allows (a page left open while someone else acted) is said so
    // first, not hidden behind the form's field errors.
    let illegal = || AppError::Conflict(format!("案件当前为「{}」，不能执行「{}」", c.status.label(), action.label()));
    let to = action.next(c.status).ok_or_else(illegal)?;
    let mut errs = FieldErrors::default();
    if action.needs_note() && i.note.trim().is_empty() {
        errs.add("note", format!("请填写{}的理由", action.label()));
    }
    if i.note.chars().count() > 1000 {
        errs.add("note", "说明不能超过 1000 字");
    } else if crate::ident::stray_control(&i.note) {
        // Also refused at the HTTP edge; the note is written at the end of the batch.
        errs.add("note", crate::ident::STRAY_CONTROL);
    }
    let target = if matches!(action, Action::Dispatch | Action::Reassign) {
        let t = resolve_assignee(st, &c, &i.assignee).await?;
        if t.is_none() {
            errs.add("assignee", "请选择有效的承办对象（见派单建议）");
        }
        t
    } else {
        None
    };
    let sat = i.satisfaction.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let sat_known = sat.is_some_and(|s| SATISFACTION.iter().any(|(k, _)| *k == s));
    if sat.is_some() && !sat_known {
        errs.add("satisfaction", "满意度应为满意、基本满意或不满意");
    }
    for f in &i.unreadable {
        errs.add(f, "请选择“是”或“否”");
    }
    if action == Action::FollowUp {
        if i.contacted.is_none() {
            errs.add("contacted", "请填写是否联系上");
        }
        if i.contacted == Some(true) && i.solved.is_none() {
            errs.add("solved", "请填写是否解决");
        }
        if i.contacted == Some(true) && sat.is_none() {
            errs.add("satisfaction", "请填写满意度（满意、基本满意或不满意）");
        }
    }
    if action == Action::RequestExtension && !i.hours.is_some_and(|h| h > 0.0 && h <= 400.0) {
        errs.add("hours", "延期时长应为 0～400 个工作小时");
    }
    if photos.len() > photos::MAX_PER_STEP {
        errs.add("photos", format!("每次最多上传 {} 张照片", photos::MAX_PER_STEP));
    }
    errs.finish()?;
    if matches!(action, Action::ApproveExtension | Action::RejectExtension) && c.extension_hours.is_none() {
        return Err(AppError::Conflict("没有待批准的延期申请".into()));
    }
    if action == Action::RequestExtension && c.extension_hours.is_some() {
        return Err(AppError::Conflict("已有待批准的延期申请，请等待批准或驳回".into()));
    }
    if action == Action::RequestExtension && shown.extension_count >= MAX_EXTENSIONS {
        return Err(AppError::Conflict(format!("已延期 {MAX_EXTENSIONS} 次，不能再申请延期：请按期办结，或由社区上报")));
    }
    if action == Action::Escalate && c.level >= 2 {
        return Err(AppError::Conflict("已上报至县级，不能再上报".into()));
    }
    let cal = st.cats.calendar(&st.db).await?;
    // Read before taking the writer: on PostgreSQL a read is a round trip.
    let actor_label = match (p.unit_id, &p.unit_name) {
        (Some(_), Some(name)) => name.clone(),
        (Some(u), None) => units::by_id(&st.db, u).await?.map(|u| u.name).unwrap_or_default(),
        (None, _) => p.role.label().to_string(),
    };
    let photos = photos::save(&st.cfg.data_dir, photos).await?;
    let with_photos = !photos.is_empty();
    let now = now_ms();
    // What the case counted as read: the update below changes it only at that version.
    let before = c.counted.clone();
    // Values are bound, not written into the statement: its text then depends on the kind of
    // step only, and both engines keep it prepared.
    let mut set = Sets::new(vec![Val::I(c.id), Val::I(c.version), Val::I(now)]);
    set.push(format!("status = '{}'", to.as_str()));
    let mut timers: Option<(i64, i64)> = None;
    let mut restart = |set: &mut Sets, start: i64| {
        let (due, yellow) = cal.clock(start, cat.resolve_hours);
        let part = format!(
            "clock_start = {}, resolve_due = {}, yellow_at = {}, warn_level = 0",
            set.arg(start),
            set.arg(due),
            set.arg(yellow)
        );
        set.push(part);
        timers = Some((yellow, due));
    };
    match action {
        Action::Register => {
            set.push("registered_at = $3".into());
            restart(&mut set, now);
        }
        Action::Escalate => {
            set.push("level = level + 1".into());
            if c.status == Status::Submitted {
                set.push("registered_at = $3".into());
                restart(&mut set, now);
            }
        }
        Action::Dispatch | Action::Reassign | Action::Claim => {
            let sign = cal.add_working_hours(now, cat.sign_hours);
            // A claim is dispatch and acceptance in one step (each column set once: PostgreSQL insists).
            let accepted = if action == Action::Claim { "$3" } else { "NULL" };
            let part = format!("dispatched_at = $3, sign_due = {}, accepted_at = {accepted}", set.arg(sign));
            set.push(part);
            if action == Action::Claim {
                let part = format!(
                    "assignee_kind = 'party_member', assignee_ref = {}, unit_id = NULL, assignee_user_id = {}, assignee_name = {}",
                    set.arg(format!("u{}", p.user_id)),
                    set.arg(p.user_id),
                    set.arg(p.display_name.clone())
                );
                set.push(part);
            }
        }
        Action::Accept => set.push("accepted_at = $3".into()),
        Action::Return => set.push("return_count = return_count + 1, assignee_kind = '', assignee_ref = '', assignee_name = '', unit_id = NULL, assignee_user_id = NULL, accepted_at = NULL, sign_due = NULL, extension_hours = NULL".into()),
        Action::RequestExtension => set.push(format!("extension_hours = {}", i.hours.unwrap_or(0.0))),
        Action::ApproveExtension => {
            let start = c.clock_start.unwrap_or(now);
            // Approved after the deadline had passed, the hours count from the approval: from
            // the old deadline they would end in the past, and the case be overdue at once.
            let due = cal.add_working_hours(c.resolve_due.unwrap_or(now).max(now), c.extension_hours.unwrap_or(0.0));
            let yellow = cal.yellow_at(start, due);
            let part = format!(
                "resolve_due = {}, yellow_at = {}, extension_hours = NULL, extension_count = extension_count + 1, warn_level = 0",
                set.arg(due),
                set.arg(yellow)
            );
            set.push(part);
            timers = Some((yellow, due));
        }
        // A pending extension request ends with the work it was for.
        Action::Finish => set.push("finished_at = $3, extension_hours = NULL".into()),
        Action::RejectExtension => set.push("extension_hours = NULL".into()),
        Action::FollowUp => {
            // Not reached: nothing was answered, whatever the form's defaults said.
            let contacted = i.contacted.unwrap_or(false);
            let solved = i.solved.filter(|_| contacted).map(|b| b as i64);
            let sat = sat.filter(|_| contacted).map(str::to_string);
            let part = format!("contacted = {}, solved = {}, satisfaction = {}", set.arg(contacted as i64), set.arg(solved), set.arg(sat));
            set.push(part);
        }
        Action::Rework => {
            // The rating (and its comment) was of the work now being redone.
            set.push("rework_count = rework_count + 1, finished_at = NULL, contacted = NULL, solved = NULL, satisfaction = NULL, rating_comment = '', extension_hours = NULL".into());
            restart(&mut set, now);
        }
        Action::Close | Action::Reject | Action::Void => set.push("closed_at = $3".into()),
        // Taken by cases::rating before this point.
        Action::Rate => {}
    }
    if let Some(t) = &target {
        let part = format!(
            "assignee_kind = {}, assignee_ref = {}, assignee_name = {}, unit_id = {}, assignee_user_id = {}, extension_hours = NULL",
            set.arg(t.kind.to_string()),
            set.arg(t.id_ref.clone()),
            set.arg(t.name.clone()),
            set.arg(t.unit_id),
            set.arg(t.user_id)
        );
        set.push(part);
    }
    let mut note = i.note.trim().to_string();
    if let Some(t) = &target {
        note = format!("派给 {}{}{}", t.name, if note.is_empty() { "" } else { "：" }, note);
    }
    if action == Action::RequestExtension {
        note = format!("申请延期 {} 个工作小时：{note}", i.hours.unwrap_or(0.0));
    }
    let unit_after = target.as_ref().map(|t| t.unit_id).unwrap_or(if action == Action::Return { None } else { c.unit_id });
    let body = json!({"event": format!("case.{}", action.as_str()), "number": c.number, "status": to.as_str(), "category": cat.code,
        "grid_code": c.grid_code, "community_code": c.community_code, "at": crate::web::fmt_time(now)});
    let summary = format!("{} {}：{} → {}", action.label(), c.number, c.status.label(), to.label());
    let record = super::service_hours::prepare(st, p, &c, &cat.name, action, i.hours).await?;
    // Everything above is computed before taking the writer, which each statement and each
    // computation under it holds up for the whole batch.
    let mut tx = st.db.begin().await?;
    let after = set.apply_shown(&mut tx, before, "该案件刚被他人处理过，请刷新后再操作", &cat).await?;
    let step = Entry {
        case_id: c.id,
        action: action.as_str(),
        from: c.status.as_str(),
        to: to.as_str(),
        actor: &p.username,
        label: &actor_label,
        note: &note,
        public: true,
        at: now,
    };
    let new_step = Step::of(&step);
    history::record(&mut tx, step, photos);
    if let Some((yellow, due)) = timers {
        jobs::schedule_sla(&mut tx, &cal, c.id, yellow, due);
    }
    tell(&mut tx, &c, action, &note, target.as_ref().map(|t| (t.unit_id, t.user_id)));
    super::service_hours::apply(&mut tx, st, p, &c.number, record).await?;
    jobs::enqueue_webhooks(&mut tx, c.id, unit_after, c.version + 1, &body);
    let ev = Event {
        action: &format!("case.{}", action.as_str()),
        entity: "case",
        entity_id: &c.number,
        node_path: &c.node_path,
        summary: &summary,
    };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    if with_photos {
        // The new photos' ids are known once the batch has written them.
        return view_by_id(st, c.id).await;
    }
    // The case as the update returned it, with the history read before it plus this step:
    // every step bumps the version the update insisted on, so no other step came between.
    // (Reading it all back after the commit cost a round trip on PostgreSQL per step.)
    let mut v = view_row(&st.keyring, &after)?;
    v.photos = shown.photos;
    v.history = shown.history;
    v.history.push(new_step);
    if let Some(t) = ticket {
        // Best effort: the step is committed, whatever keeping its page costs.
        if let Err(e) = super::view::keep_stepped(st, t, &after, &v) {
            tracing::warn!(error = %e, "案件页未能存入缓存");
        }
    }
    Ok(v)
}

/// Who hears about a step. What the staff must act on goes to the level holding the case (an
/// escalated case's community cannot act on it).
pub(super) fn tell(tx: &mut Tx, c: &CaseRow, a: Action, note: &str, new: Option<(Option<i64>, Option<i64>)>) {
    let holder = Target::holder(&c.node_path, c.level);
    let text = format!("{} {}{}", c.number, a.label(), if note.is_empty() { String::new() } else { format!("：{note}") });
    let kind = format!("case.{}", a.as_str());
    match a {
        Action::Dispatch | Action::Reassign => {
            if let Some((unit, user)) = new {
                if let Some(u) = unit {
                    notify::push(tx, Target::Unit(u), c.id, &kind, &text);
                }
                if let Some(u) = user {
                    notify::push(tx, Target::User(u), c.id, &kind, &text);
                }
            }
        }
        Action::Return | Action::RequestExtension | Action::Finish | Action::Claim | Action::Rate => {
            notify::push(tx, holder, c.id, &kind, &text);
        }
        Action::ApproveExtension | Action::RejectExtension | Action::Rework => {
            if let Some(u) = c.unit_id {
                notify::push(tx, Target::Unit(u), c.id, &kind, &text);
            }
            if let Some(u) = c.assignee_user_id {
                notify::push(tx, Target::User(u), c.id, &kind, &text);
            }
        }
        Action::Escalate => {
            let (role, path) = super::escalation_target(&c.node_path, c.level + 1);
            notify::push(tx, Target::Staff(role, path), c.id, &kind, &text);
        }
        _ => {}
    }
}

/// The SET list of a step and its bound values (`$1` the case id, `$2` the expected version,
/// `$3` now; the rest numbered as they are added).
pub(super) struct Sets {
    parts: Vec<String>,
    args: Vec<Val>,
}

impl Sets {
    pub(super) fn new(args: Vec<Val>) -> Sets {
        Sets { parts: Vec::new(), args }
    }

    pub(super) fn push(&mut self, part: String) {
        self.parts.push(part);
    }

    /// Binds a value; returns its placeholder.
    pub(super) fn arg(&mut self, v: impl Into<Val>) -> String {
        self.args.push(v.into());
        format!("${}", self.args.len())
    }

    /// Changes the case in one statement that also returns what the rollups count, and
    /// records the rollup change from `before`; `conflict` when the version moved on.
    pub(super) async fn apply(self, tx: &mut Tx, before: Option<(rollups::Key, Counts)>, conflict: &str) -> AppResult<()> {
        self.run(tx, before, conflict, "").await.map(drop)
    }

    /// [`Sets::apply`], returning the case's columns of [`view_row`] after the change (its
    /// category `cat`'s code and name beside them).
    async fn apply_shown(
        mut self,
        tx: &mut Tx,
        before: Option<(rollups::Key, Counts)>,
        conflict: &str,
        cat: &Category,
    ) -> AppResult<Row> {
        let (code, name) = (self.arg(cat.code.clone()), self.arg(cat.name.clone()));
        let also = format!(", {}, CAST({code} AS TEXT) AS cat_code, CAST({name} AS TEXT) AS cat_name", returned_cols());
        self.run(tx, before, conflict, &also).await
    }

    async fn run(self, tx: &mut Tx, before: Option<(rollups::Key, Counts)>, conflict: &str, also: &str) -> AppResult<Row> {
        let set = format!("{}, version = version + 1, updated_at = $3", self.parts.join(", "));
        let (after, row) =
            rollups::update_returning(tx, &set, self.args, also).await?.ok_or_else(|| AppError::Conflict(conflict.into()))?;
        tx.defer::<rollups::Deltas>().moved(before.as_ref(), after.as_ref());
        Ok(row)
    }
}
