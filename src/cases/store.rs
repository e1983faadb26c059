//! Creating cases and reading them: routing to a grid, numbering, reporter privacy, history,
//! search and the lists behind every queue. Transitions live in [`super::flow`].

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::categories::{self, Category};
use super::history::Entry;
use super::machine::{Status, channel_label};
use super::notify::{self, Target};
use super::{CaseRow, ROW_COLS, photos, search, visible};
use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Principal, Role, throttle};
use crate::db::list::{Keyed, Page, Where, paging};
use crate::db::rows::{Appendable, Appended, Val};
use crate::db::{Tx, now_ms};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::geo::Crs;
use crate::ident::Mobile;
use crate::privacy::Keyring;
use crate::web::fmt_time;

pub use super::view::{CaseView, Step, read_visible, view, view_by_id};
use super::view::{VIEW_COLS, view_row};

/// Associated data binding reporter ciphertexts to their fields.
pub const AAD_NAME: &[u8] = b"case.reporter_name";
/// See [`AAD_NAME`].
pub const AAD_PHONE: &[u8] = b"case.reporter_phone";

/// What a reporter sends.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CreateInput {
    /// Category code.
    #[serde(default)]
    pub category: String,
    /// What happened.
    #[serde(default)]
    pub description: String,
    /// Short title (derived when empty).
    #[serde(default)]
    pub title: String,
    /// Longitude.
    pub lng: Option<f64>,
    /// Latitude.
    pub lat: Option<f64>,
    /// `wgs84` (default) or `gcj02`.
    pub crs: Option<String>,
    /// A grid chosen instead of a point (e.g. from a grid's QR code).
    pub grid: Option<String>,
    /// Address text.
    #[serde(default)]
    pub address: String,
    /// Channel code.
    pub channel: Option<String>,
    /// Reporter's name.
    pub reporter_name: Option<String>,
    /// Reporter's mobile.
    pub reporter_phone: Option<String>,
    /// Hide from the public timeline.
    #[serde(default)]
    pub private: bool,
    /// Answers to the category's extra attributes.
    #[serde(default)]
    pub attrs: Value,
    /// The submission's key (see [`super::submissions`]): from the form's one-time value or
    /// the API's `Idempotency-Key` header, never from the body.
    #[serde(skip)]
    pub once: Option<String>,
}

/// Who is reporting.
pub enum Reporter<'a> {
    /// A logged-in account (staff entry, resident account, integration token).
    User(&'a Principal),
    /// Anonymous: the resident H5 site or Open311 without a key.
    Public {
        /// Channel to record.
        channel: &'a str,
        /// Client address for the audit log.
        ip: &'a str,
    },
}

/// The answer to a creation.
#[derive(Clone, Debug, Serialize)]
pub struct Created {
    /// Case number.
    pub number: String,
    /// Status (`submitted`).
    pub status: Status,
    /// Grid it was routed to.
    pub grid_code: String,
    /// Its community.
    pub community_code: String,
}

struct Place {
    grid_code: String,
    community_code: String,
    path: String,
    lng: Option<f64>,
    lat: Option<f64>,
}

async fn route(st: &AppState, i: &CreateInput, errs: &mut FieldErrors) -> AppResult<Option<Place>> {
    let crs = match i.crs.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(Crs::Wgs84),
        Some(s) => errs.check("crs", Crs::parse(s).ok_or("坐标系应为 wgs84 或 gcj02")),
    };
    let point = match (i.lng, i.lat) {
        (Some(x), Some(y)) if (-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y) => Some((x, y)),
        (None, None) => None,
        _ => {
            errs.add("lng", "经纬度无效：经度 -180～180，纬度 -90～90，且须同时提供");
            return Ok(None);
        }
    };
    if let (Some((x, y)), Some(crs)) = (point, crs) {
        let Some(g) = st.grids.locate(x, y, crs) else {
            errs.add("lng", "该位置不在任何网格内，请在地图上重新选择");
            return Ok(None);
        };
        let w = crs.to_wgs84(crate::geo::Point { lng: x, lat: y });
        return Ok(Some(Place {
            grid_code: g.grid_code,
            community_code: g.community_code,
            path: g.path,
            lng: Some(w.lng),
            lat: Some(w.lat),
        }));
    }
    if let Some(code) = i.grid.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        return Ok(match crate::tree::store::find_by_code(&st.db, code).await? {
            Some(n) if n.kind == crate::tree::Kind::Grid && !n.retired => Some(Place {
                community_code: n.parent_code.clone().unwrap_or_default(),
                grid_code: n.code,
                path: n.path,
                lng: None,
                lat: None,
            }),
            // Below a grid (compound, building): the grid it lies in.
            Some(n) if matches!(n.kind, crate::tree::Kind::Compound | crate::tree::Kind::Building) && !n.retired => {
                let grid = n.path.split('/').find(|s| s.len() == 15).unwrap_or_default().to_string();
                Some(Place {
                    community_code: grid.get(..12).unwrap_or_default().to_string(),
                    grid_code: grid,
                    path: n.path,
                    lng: None,
                    lat: None,
                })
            }
            // A community-wide matter (a research finding): no grid.
            Some(n) if n.kind == crate::tree::Kind::Community && !n.retired => {
                Some(Place { community_code: n.code, grid_code: String::new(), path: n.path, lng: None, lat: None })
            }
            _ => {
                errs.add("grid", "网格不存在或已停用");
                None
            }
        });
    }
    errs.add("lng", "请提供位置：经纬度，或所在网格");
    Ok(None)
}

/// The answers a case may keep, as stored JSON (characters): a category's questions are few,
/// and each answer is bounded (a text 2,000 characters), but a list answer repeated or a number
/// of ten thousand digits is not.
pub const ATTRS_MAX_CHARS: usize = 8000;

/// The answers (`attrs`): an object (or nothing) holding only the category's own questions,
/// each answer valid, the whole bounded.
fn check_attrs(cat: Option<&Category>, v: &Value, errs: &mut FieldErrors) {
    let answers = match v {
        Value::Null => None,
        Value::Object(m) => Some(m),
        _ => {
            errs.add("attrs", "附加信息应为对象（问题编码 → 回答）");
            return;
        }
    };
    if let (Some(m), Some(cat)) = (answers, cat) {
        let unknown: Vec<String> =
            m.keys().filter(|k| !cat.attrs.iter().any(|a| a.code == **k)).take(3).map(|k| k.chars().take(32).collect()).collect();
        if !unknown.is_empty() {
            errs.add("attrs", format!("“{}”不是该类别的问题，请只回答该类别的问题", unknown.join("”“")));
        }
    }
    if answers.is_some() && v.to_string().chars().count() > ATTRS_MAX_CHARS {
        errs.add("attrs", format!("附加信息过长（合计不能超过 {ATTRS_MAX_CHARS} 字）"));
        return;
    }
    let Some(cat) = cat else { return };
    for a in &cat.attrs {
        let val = v.get(&a.code);
        let present = val.is_some_and(|x| !x.is_null() && x.as_str() != Some(""));
        if a.required && !present {
            errs.add(&format!("attrs.{}", a.code), format!("请填写“{}”", a.name));
            continue;
        }
        let Some(val) = val.filter(|_| present) else { continue };
        let ok = match a.datatype.as_str() {
            "number" => val.as_f64().is_some() || val.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok()),
            "singlevaluelist" => val.as_str().is_some_and(|s| a.values.iter().any(|(k, _)| k == s)),
            "multivaluelist" => val
                .as_array()
                .is_some_and(|xs| xs.iter().all(|x| x.as_str().is_some_and(|s| a.values.iter().any(|(k, _)| k == s)))),
            "text" => val.as_str().is_some_and(|s| s.chars().count() <= 2000 && !crate::ident::stray_control(s)),
            _ => val.as_str().is_some_and(|s| s.chars().count() <= 200 && !crate::ident::has_control(s)),
        };
        if !ok {
            errs.add(&format!("attrs.{}", a.code), format!("“{}”的值无效", a.name));
        }
    }
}

/// Next number in a named sequence, inside the transaction.
pub async fn next_seq(tx: &mut Tx, name: &str) -> AppResult<i64> {
    Ok(tx.next_in(name).await?)
}

/// New cases, written at the end of the batch (see [`crate::db::Deferred`]) with the ids
/// they took in it: nothing reads a case inside the transaction that creates it, and a
/// creation then runs no statement under the writer (on PostgreSQL two round trips less).
pub struct NewCases;

impl Appendable for NewCases {
    // Before every kind that refers to a case.
    const ORDER: u8 = 20;
    const HEAD: &'static str = "INSERT INTO cases (id, number, category_id, title, description, channel, status, lng, lat, address, \
         grid_code, community_code, node_path, reporter_user_id, reporter_name_enc, reporter_phone_enc, reporter_phone_bidx, private, attrs, \
         created_at, updated_at)";
    const COLS: usize = 21;
}

/// Work done in the transaction that creates a case, given its number (the register row that
/// becomes the case records it): an error rolls the creation back with it.
pub type Also = Box<dyn for<'t> FnOnce(&'t mut Tx, &'t str) -> BoxFuture<'t, AppResult<()>> + Send>;

/// Validates and records a new case (status 待受理), notifies the community, queues webhooks.
pub async fn create(st: &AppState, who: Reporter<'_>, i: &CreateInput, photos: Vec<photos::Photo>) -> AppResult<Created> {
    create_also(st, who, i, photos, None).await
}

/// [`create`], with `also` done in the same transaction.
pub async fn create_also(
    st: &AppState,
    who: Reporter<'_>,
    i: &CreateInput,
    photos: Vec<photos::Photo>,
    also: Option<Also>,
) -> AppResult<Created> {
    if let Reporter::User(p) = &who
        && matches!(p.role, Role::UnitContact | Role::PartyMember)
    {
        // Intake is the staff's (the hotline's hand-overs, what a grid worker finds) and the
        // residents' own reports: a unit takes the cases sent to it, a Party member claims
        // wishes; neither registers one (and could not see it afterwards).
        return Err(AppError::Forbidden);
    }
    // Counted before the case is made, in one statement: a count read first and written after
    // let fifty reports sent at once all through. A refused form counts too (10 in 10 minutes
    // leave room for mistakes).
    // A repeat of a submission already made is no new report: it is answered with the first
    // one's case, even at the limit.
    let repeat = match &i.once {
        Some(key) => super::submissions::made(&st.db, key).await?,
        None => false,
    };
    if !repeat
        && let Some(l) = submission_limit(&who)
        && throttle::note(st, &l.key, l.window_ms).await? > l.max
    {
        return Err(AppError::TooMany(l.message.into()));
    }
    create_checked(st, who, i, photos, also).await
}

/// How many cases one source may submit in a window.
struct SubmissionLimit {
    key: String,
    max: i64,
    window_ms: i64,
    message: &'static str,
}

/// Anonymous reports (the H5 site without a login, Open311 without a key) per client address.
pub const ANONYMOUS_PER_ADDRESS: i64 = 10;
/// The window of [`ANONYMOUS_PER_ADDRESS`].
pub const ANONYMOUS_WINDOW_MS: i64 = 10 * 60 * 1000;
/// A signed-in resident's own reports per account.
pub const RESIDENT_PER_ACCOUNT: i64 = 30;
/// The window of [`RESIDENT_PER_ACCOUNT`].
pub const RESIDENT_WINDOW_MS: i64 = 60 * 60 * 1000;

/// The limit `who` reports under: none for staff and integrations (the hotline's hand-overs
/// come in bursts).
/// The network an address's reports are counted under: an IPv4 address itself, an IPv6 one's
/// /64 (a household or a phone holds a whole /64, and every address in it was a fresh budget).
fn network_of(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => ip.to_string(),
    }
}

fn submission_limit(who: &Reporter<'_>) -> Option<SubmissionLimit> {
    match who {
        Reporter::Public { ip, .. } => Some(SubmissionLimit {
            key: format!("report:{}", network_of(ip)),
            max: ANONYMOUS_PER_ADDRESS,
            window_ms: ANONYMOUS_WINDOW_MS,
            message: "提交过于频繁：同一网络 10 分钟内最多报事 10 件，请稍后再试，或拨打热线反映",
        }),
        Reporter::User(p) if p.role == Role::Resident => Some(SubmissionLimit {
            key: format!("report#user:{}", p.user_id),
            max: RESIDENT_PER_ACCOUNT,
            window_ms: RESIDENT_WINDOW_MS,
            message: "提交过于频繁：每个账号 1 小时内最多报事 30 件，请稍后再试，或拨打热线反映",
        }),
        Reporter::User(_) => None,
    }
}

async fn create_checked(
    st: &AppState,
    who: Reporter<'_>,
    i: &CreateInput,
    photos: Vec<photos::Photo>,
    also: Option<Also>,
) -> AppResult<Created> {
    let mut errs = FieldErrors::default();
    let cat = categories::by_code(st, &i.category).await?.filter(|c| c.active);
    if cat.is_none() {
        errs.add("category", "请选择有效的事项类别");
    }
    let desc = i.description.trim();
    if desc.chars().count() < 2 || desc.chars().count() > 2000 {
        errs.add("description", "请描述情况（2～2000 字）");
    }
    if i.title.chars().count() > 60 {
        errs.add("title", "标题不能超过 60 个字");
    } else if crate::ident::has_control(&i.title) {
        errs.add("title", "标题含有不可见的控制字符");
    }
    if crate::ident::has_control(&desc.replace(['\n', '\r', '\t'], " ")) {
        errs.add("description", "描述含有不可见的控制字符");
    }
    if i.address.trim().chars().count() > 200 {
        errs.add("address", "地址不能超过 200 个字");
    } else if crate::ident::has_control(&i.address) {
        // Checked here too, not only at the HTTP edge: the address is written at the end of
        // the batch, where a NUL fails every request in it on PostgreSQL.
        errs.add("address", "地址含有不可见的控制字符");
    }
    let place = route(st, i, &mut errs).await?;
    let (default_channel, user) = match &who {
        Reporter::User(p) => (if p.role == Role::Resident { "resident_h5" } else { "staff" }, Some(*p)),
        Reporter::Public { channel, .. } => (*channel, None),
    };
    let channel = i.channel.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or(default_channel);
    if !super::machine::CHANNELS.iter().any(|(c, _)| *c == channel) {
        errs.add("channel", "来源渠道无效");
    } else if user.is_some_and(|p| p.role == Role::Resident) && channel != "resident_h5" {
        // A resident's own report is one: the channel figures count the hotline's hand-overs.
        errs.add("channel", "居民报事的来源渠道只能是“居民H5”");
    }
    let name = i.reporter_name.as_deref().map(str::trim).unwrap_or_default();
    if name.chars().count() > 32 {
        errs.add("reporter_name", "姓名不能超过 32 个字");
    } else if crate::ident::has_control(name) {
        errs.add("reporter_name", "姓名含有不可见的控制字符");
    }
    let phone = match i.reporter_phone.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => errs.check("reporter_phone", Mobile::parse(s)),
        None if user.is_none() => {
            errs.add("reporter_phone", "请留下手机号，用于查询进度和回访");
            None
        }
        None => None,
    };
    check_attrs(cat.as_ref(), &i.attrs, &mut errs);
    if photos.len() > photos::MAX_PER_STEP {
        errs.add("photos", format!("每次最多上传 {} 张照片", photos::MAX_PER_STEP));
    }
    errs.finish()?;
    let (cat, place) = (cat.expect("checked"), place.expect("checked"));
    if let Some(p) = user
        && !(p.in_scope(&place.path) || p.role == Role::Resident)
    {
        return Err(AppError::field("lng", "该位置不在您的管辖范围内"));
    }
    let now = now_ms();
    let title = if i.title.trim().is_empty() {
        format!("{}：{}", cat.name, desc.chars().take(20).collect::<String>())
    } else {
        i.title.trim().to_string()
    };
    let (actor, ip) = match &who {
        Reporter::User(p) => (p.username.clone(), p.ip.clone()),
        Reporter::Public { ip, .. } => ("public".to_string(), ip.to_string()),
    };
    // Work that needs no database is done before taking the writer (group commit holds it
    // for the whole transaction): encryption, blind index, segmentation.
    let keys: &Keyring = &st.keyring;
    let name_enc = (!name.is_empty()).then(|| keys.encrypt(name, AAD_NAME));
    let phone_enc = phone.as_ref().map(|m| keys.encrypt(m.as_str(), AAD_PHONE));
    let phone_bidx = phone.as_ref().map(|m| keys.blind_index("case_phone", m.as_str()));
    let photos = photos::save(&st.cfg.data_dir, photos).await?;
    let terms = search::doc_terms(&format!("{title} {desc} {} {}", i.address, cat.name));
    let mut tx = st.db.begin().await?;
    let year = chrono::Datelike::year(&super::calendar::local_date(now));
    let seq = next_seq(&mut tx, &format!("case:{year}")).await?;
    let number = format!("YH-{year}-{seq:06}");
    if let Some(key) = &i.once {
        use super::submissions::Claim;
        match super::submissions::claim(&mut tx, key, i, &number, now).await? {
            Claim::New => {}
            Claim::Repeat(first) => {
                // Its own work rolled back (the number it took too), its photos removed; answered
                // once a commit after the first one's is done.
                drop(tx);
                photos::discard(&st.cfg.data_dir, &photos).await;
                st.db.begin().await?.commit().await?;
                let (grid_code, community_code) = (place.grid_code, place.community_code);
                return Ok(Created { number: first, status: Status::Submitted, grid_code, community_code });
            }
            // A form's page sent again with other content (restored by the back button and
            // edited): a case of its own.
            Claim::Other if key.starts_with("form:") => {}
            Claim::Other => return Err(AppError::Conflict("该 Idempotency-Key 已用于内容不同的另一次提交".into())),
        }
    }
    let id = tx.next_id("cases").await?;
    tx.defer::<Appended<NewCases>>().push(vec![
        Val::I(id),
        Val::S(number.clone()),
        Val::I(cat.id),
        Val::S(title.clone()),
        Val::S(desc.to_string()),
        Val::S(channel.to_string()),
        Val::T("submitted"),
        Val::F(place.lng),
        Val::F(place.lat),
        Val::S(i.address.trim().to_string()),
        Val::S(place.grid_code.clone()),
        Val::S(place.community_code.clone()),
        Val::S(place.path.clone()),
        Val::O(user.filter(|p| p.role == Role::Resident).map(|p| p.user_id)),
        Val::B(name_enc),
        Val::B(phone_enc),
        phone_bidx.map_or(Val::N, Val::S),
        Val::I(i.private as i64),
        Val::S(if i.attrs.is_object() { i.attrs.to_string() } else { "{}".into() }),
        Val::I(now),
        Val::I(now),
    ]);
    super::rollups::track_new(&mut tx, super::rollups::submitted(now, &place.community_code, cat.id));
    let step = Entry {
        case_id: id,
        action: "submit",
        from: "",
        to: "submitted",
        actor: &actor,
        label: channel_label(channel),
        note: "",
        public: true,
        at: now,
    };
    super::history::record(&mut tx, step, photos);
    search::index(&mut tx, id, terms);
    let community_path = crate::tree::ancestor(&place.path, 3);
    // A title made from the description already starts with the category's name.
    let what = if title.starts_with(&format!("{}：", cat.name)) { title.clone() } else { format!("{}：{title}", cat.name) };
    let text = format!("新事项 {number}：{what}");
    notify::push(&mut tx, Target::Staff(Role::CommunityStaff, community_path), id, "case.new", &text);
    let body = serde_json::json!({"event": "case.created", "number": number, "status": "submitted", "category": cat.code,
        "grid_code": place.grid_code, "community_code": place.community_code, "at": fmt_time(now)});
    super::jobs::enqueue_webhooks(&mut tx, id, None, 1, &body);
    let summary = format!("受理 {number}（{}，{}）", cat.name, channel_label(channel));
    let ev = Event { action: "case.create", entity: "case", entity_id: &number, node_path: &place.path, summary: &summary };
    audit::append(&mut tx, &st.chain, &crate::audit::Actor { name: actor, ip }, ev);
    if let Some(also) = also {
        also(&mut tx, &number).await?;
    }
    tx.commit().await?;
    Ok(Created { number, status: Status::Submitted, grid_code: place.grid_code, community_code: place.community_code })
}

/// Loads a case row by number (no visibility check).
pub async fn load(st: &AppState, number: &str) -> AppResult<(CaseRow, Category)> {
    let sql = format!("SELECT {ROW_COLS} FROM cases c WHERE c.number = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(number.trim())
        .fetch_optional(st.db.read())
        .await?
        .ok_or(AppError::NotFound)?;
    let c = CaseRow::from_row(&r)?;
    let cat = categories::by_id(st, c.category_id).await?;
    Ok((c, cat))
}

/// Loads a case the caller may see (404 otherwise).
pub async fn load_visible(st: &AppState, p: &Principal, number: &str) -> AppResult<(CaseRow, Category)> {
    let (c, cat) = load(st, number).await?;
    check_visible(p, &c, &cat)?;
    Ok((c, cat))
}

/// 404 unless `p` may see the case.
pub fn check_visible(p: &Principal, c: &CaseRow, cat: &Category) -> AppResult<()> {
    if p.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    if !c.visible_to(p, cat.claimable) {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// Filters of every case list and queue.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CaseFilter {
    /// Full-text query (Chinese, segmented).
    pub q: Option<String>,
    /// Status code, or a comma-separated list.
    pub status: Option<String>,
    /// Category code.
    pub category: Option<String>,
    /// Channel code.
    pub channel: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Community code.
    pub community: Option<String>,
    /// Unit code.
    pub unit: Option<String>,
    /// Only overdue.
    #[serde(default, deserialize_with = "crate::db::list::asked_flag")]
    pub overdue: Option<bool>,
    /// Only escalated to at least this level.
    pub level: Option<i64>,
    /// Only assigned to me (or my unit).
    #[serde(default, deserialize_with = "crate::db::list::asked_flag")]
    pub mine: Option<bool>,
    /// Created from (YYYY-MM-DD).
    pub from: Option<String>,
    /// Created to, inclusive.
    pub to: Option<String>,
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size.
    #[serde(default, deserialize_with = "crate::db::list::asked_per_page")]
    pub per_page: Option<i64>,
}

/// Local midnight (UTC+8) of a `YYYY-MM-DD`.
pub fn day_start(s: &str, field: &str) -> AppResult<i64> {
    let d =
        chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| AppError::field(field, "日期格式应为 YYYY-MM-DD"))?;
    Ok(super::calendar::local_ms(d, 0))
}

/// Lists the cases the caller may see, filtered, newest first.
pub async fn list(st: &AppState, p: &Principal, f: &CaseFilter) -> AppResult<Page<CaseView>> {
    if p.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    let mut w = Where::new();
    visible(&mut w, p);
    if let Some(s) = f.status.as_deref().filter(|s| !s.trim().is_empty()) {
        let codes: Vec<&str> = s.split(',').map(str::trim).collect();
        if codes.iter().any(|c| Status::parse(c).is_none()) {
            return Err(AppError::field("status", "状态无效"));
        }
        w.raw(&format!("c.status IN ({})", codes.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(",")));
    }
    if let Some(code) = f.community.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        // As a path range, which the path index serves (community_code has no index).
        match crate::tree::store::find_by_code(&st.db, code).await? {
            Some(n) => w.under("c.node_path", &n.path),
            None => w.raw("1=0"),
        };
    }
    if let Some(code) = f.category.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        match categories::by_code(st, code).await? {
            Some(cat) => w.raw(&format!("c.category_id = {}", cat.id)),
            None => w.raw("1=0"),
        };
    }
    for (val, col) in [(&f.channel, "c.channel"), (&f.grid, "c.grid_code")] {
        if let Some(v) = val.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            w.arg(&format!("{col} = ?"), v);
        }
    }
    if let Some(u) = f.unit.as_deref().filter(|s| !s.trim().is_empty()) {
        let unit = super::units::find(&st.db, u).await?.ok_or_else(|| AppError::field("unit", "单位不存在"))?;
        w.raw(&format!("c.unit_id = {}", unit.id));
    }
    if f.overdue == Some(true) {
        w.raw(&format!("c.status IN ('registered','dispatched','accepted') AND c.resolve_due < {}", now_ms()));
    }
    if let Some(l) = f.level {
        w.raw(&format!("c.level >= {}", l.clamp(0, 2)));
    }
    if f.mine == Some(true) {
        w.raw(&match p.unit_id {
            Some(u) => format!("c.unit_id = {u}"),
            None => format!("c.assignee_user_id = {}", p.user_id),
        });
    }
    if let Some(d) = f.from.as_deref().filter(|s| !s.trim().is_empty()) {
        w.raw(&format!("c.created_at >= {}", day_start(d, "from")?));
    }
    if let Some(d) = f.to.as_deref().filter(|s| !s.trim().is_empty()) {
        w.raw(&format!("c.created_at < {}", day_start(d, "to")? + 86_400_000));
    }
    // Counts and page keys need the category only for a party member's claimable cases.
    let cat = if w.sql().contains("cat.") { " JOIN categories cat ON cat.id = c.category_id" } else { "" };
    let cases = format!("FROM cases c{cat}");
    let plan = match f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(q) => Some(search::add_terms(&st.db, &mut w, &cases, q).await?),
        None => None,
    };
    let postings = plan == Some(search::Plan::Postings);
    if f.unit.is_some() || f.grid.is_some() || f.mine == Some(true) || postings {
        // A unit's, grid's or community's queue, or a term's postings: their own indexes select.
        w.scope_as_filter(&st.db);
    }
    let terms = format!("FROM case_terms t0 JOIN cases c ON c.id = t0.case_id{cat}");
    let keyed = match postings {
        true => Keyed { base: &terms, key: "c.id", order: Some("t0.case_id DESC") },
        false => Keyed { base: &cases, key: "c.id", order: None },
    };
    let from = "FROM cases c JOIN categories cat ON cat.id = c.category_id";
    let paging = paging(f.page, f.per_page);
    // The statement's conditions and binds say all a page holds, whoever asks: its key. Kept
    // until any case anywhere is added, changed or deleted (see crate::db::cache).
    let cache = &st.db.case_cache;
    // Not kept: a list whose conditions hold the time (overdue, a new key each time) or an
    // export's (kept, each would hold a hundred thousand rows).
    // (No key at all while the cache is off, as on SQLite: nothing to build on its hot path.)
    let keep = f.overdue != Some(true) && paging.1 <= crate::db::list::MAX_PER_PAGE && cache.is_on();
    let key = keep.then(|| format!("{postings}|{paging:?}|{}", w.key()));
    if let Some(page) = key.as_deref().and_then(|k| cache.list(k)).and_then(|v| v.downcast::<Page<CaseView>>().ok()) {
        let mut page = Page::clone(&page);
        page.items.iter_mut().for_each(CaseView::refresh);
        return Ok(page);
    }
    let ticket = key.as_ref().and_then(|_| cache.list_ticket());
    let page = w.page_keyed(&st.db, VIEW_COLS, from, keyed, "c.id DESC", paging, |r| view_row(&st.keyring, r)).await?;
    if let (Some(t), Some(key)) = (ticket, &key) {
        cache.put_list(t, key, page.items.len(), std::sync::Arc::new(page.clone()));
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_are_counted_by_network() {
        assert_eq!(super::network_of("2001:db8:1:2:aaaa::1"), super::network_of("2001:db8:1:2:bbbb::9"));
        assert_ne!(super::network_of("2001:db8:1:2::1"), super::network_of("2001:db8:1:3::1"));
        assert_eq!(super::network_of("::ffff:10.0.0.7"), "10.0.0.7");
        assert_eq!(super::network_of("10.0.0.7"), "10.0.0.7");
    }
}
