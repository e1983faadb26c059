//! Residents and staff as persons. ID numbers and phones are encrypted at rest (AEAD, the
//! key in the key file) with a keyed blind index for exact lookup; they leave this module
//! masked unless the caller holds the reveal permission, and every reveal is audited.

pub mod routes;

use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;

use crate::app::AppState;
use crate::audit::{self, Event};
use crate::auth::{Perm, Principal};
use crate::db::list::{Page, Where, paging};
use crate::db::{Row, Tx, get, now_ms};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::ident::{IdNumber, Mobile, mask_name};
use crate::privacy::Keyring;
use crate::tree::store::find_by_code;

const AAD_ID: &[u8] = b"person.id_number";
const AAD_PHONE: &[u8] = b"person.mobile";

/// A person as shown on screen: personal fields masked.
#[derive(Clone, Debug, Serialize)]
pub struct Person {
    /// persons.id
    pub id: i64,
    /// Name (full: staff need it to serve the person).
    pub name: String,
    /// Masked ID number (`520627********1234`).
    pub id_number: String,
    /// Masked mobile (`138****1234`).
    pub mobile: String,
    /// 男 / 女 / empty.
    pub gender: String,
    /// Birth year.
    pub birth_year: Option<i64>,
    /// Code of the node the person lives at (building, compound, grid or community).
    pub node_code: String,
    /// That node's name.
    pub node_name: String,
    /// Room / household.
    pub room: String,
    /// Tags, comma separated.
    pub tags: String,
    /// Version: an edit names the one it was made from.
    pub version: i64,
    #[serde(skip)]
    path: String,
}

/// The unmasked fields, returned only by [`reveal`].
#[derive(Clone, Debug, Serialize)]
pub struct Revealed {
    /// Full ID number.
    pub id_number: String,
    /// Full mobile.
    pub mobile: String,
}

/// Fields for registering a person.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PersonInput {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// 身份证号 (optional).
    #[serde(default)]
    pub id_number: String,
    /// Mobile (optional).
    #[serde(default)]
    pub mobile: String,
    /// Node code where the person lives.
    #[serde(default)]
    pub node: String,
    /// Room.
    #[serde(default)]
    pub room: String,
    /// Tags.
    #[serde(default)]
    pub tags: String,
    /// The version an edit was made from (edits only; the current one if absent).
    #[serde(default)]
    pub version: Option<i64>,
    /// Edits only: remove the stored ID number (`true`, `"1"`, a ticked box; an empty field
    /// keeps it). Takes the reveal permission: one may not remove what one may not see.
    #[serde(default, deserialize_with = "crate::db::list::asked_flag")]
    pub clear_id_number: Option<bool>,
    /// Edits only: remove the stored mobile (as `clear_id_number`).
    #[serde(default, deserialize_with = "crate::db::list::asked_flag")]
    pub clear_mobile: Option<bool>,
}

/// Parsed, valid input: nothing invalid passes this point.
pub struct ValidPerson {
    name: String,
    id: Option<IdNumber>,
    mobile: Option<Mobile>,
    node_id: i64,
    path: String,
    room: String,
    tags: String,
}

impl ValidPerson {
    /// For the demo loader, whose identifiers are already typed values.
    pub fn trusted(
        name: String,
        id: Option<IdNumber>,
        mobile: Option<Mobile>,
        node_id: i64,
        room: String,
        tags: String,
    ) -> ValidPerson {
        ValidPerson { name, id, mobile, node_id, path: String::new(), room, tags }
    }
}

/// Validates input, collecting every field error.
pub async fn validate(st: &AppState, p: Option<&Principal>, input: &PersonInput) -> AppResult<ValidPerson> {
    let mut errs = FieldErrors::default();
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 32 {
        errs.add("name", "姓名不能为空，且不超过 32 个字");
    } else if crate::ident::has_control(name) {
        errs.add("name", "姓名含有不可见的控制字符");
    }
    if input.tags.chars().count() > 200 || crate::ident::has_control(&input.tags) {
        errs.add("tags", "标签不超过 200 个字，且不含控制字符");
    }
    let id = if input.id_number.trim().is_empty() { None } else { errs.check("id_number", IdNumber::parse(&input.id_number)) };
    let mobile = if input.mobile.trim().is_empty() { None } else { errs.check("mobile", Mobile::parse(&input.mobile)) };
    let node = find_by_code(&st.db, input.node.trim()).await?;
    let node = match node {
        Some(n) if p.is_none_or(|p| p.in_scope(&n.path)) && !n.retired => Some(n),
        _ => {
            errs.add("node", "居住地点（楼栋、小区、网格或社区编码）不存在或不在管辖范围内");
            None
        }
    };
    if input.room.chars().count() > 32 {
        errs.add("room", "房号不能超过 32 个字");
    }
    errs.finish()?;
    let node = node.expect("checked");
    if let Some(p) = p {
        p.check(Perm::PersonWrite, &node.path)?;
    }
    Ok(ValidPerson {
        name: name.into(),
        id,
        mobile,
        node_id: node.id,
        path: node.path,
        room: input.room.trim().into(),
        tags: input.tags.trim().into(),
    })
}

struct Encrypted {
    id_enc: Option<Vec<u8>>,
    id_bidx: Option<String>,
    gender: &'static str,
    birth: Option<i64>,
    ph_enc: Option<Vec<u8>>,
    ph_bidx: Option<String>,
}

fn encrypted_fields(keys: &Keyring, v: &ValidPerson) -> Encrypted {
    let (id_enc, id_bidx, gender, birth) = match &v.id {
        Some(id) => (
            Some(keys.encrypt(id.as_str(), AAD_ID)),
            Some(keys.blind_index("id_number", id.as_str())),
            if id.is_male() { "男" } else { "女" },
            Some(chrono::Datelike::year(&id.birth_date()) as i64),
        ),
        None => (None, None, "", None),
    };
    let (ph_enc, ph_bidx) = match &v.mobile {
        Some(m) => (Some(keys.encrypt(m.as_str(), AAD_PHONE)), Some(keys.blind_index("mobile", m.as_str()))),
        None => (None, None),
    };
    Encrypted { id_enc, id_bidx, gender, birth, ph_enc, ph_bidx }
}

/// Inserts a validated person inside `tx` (shared by the API and the demo loader).
pub async fn insert(tx: &mut Tx, keys: &Keyring, v: &ValidPerson, is_demo: bool) -> AppResult<i64> {
    let Encrypted { id_enc, id_bidx, gender, birth, ph_enc, ph_bidx } = encrypted_fields(keys, v);
    let now = now_ms();
    let row = sqlx::query(
        "INSERT INTO persons (name, id_enc, id_bidx, phone_enc, phone_bidx, gender, birth_year, node_id, room, tags, is_demo, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$12) RETURNING id",
    )
    .bind(&v.name)
    .bind(id_enc)
    .bind(id_bidx)
    .bind(ph_enc)
    .bind(ph_bidx)
    .bind(gender)
    .bind(birth)
    .bind(v.node_id)
    .bind(&v.room)
    .bind(&v.tags)
    .bind(is_demo as i64)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    Ok(get(&row, "id")?)
}

/// Refuses an ID number another active person (other than `except`) already has. Checked
/// after taking the one lock of all ID-number checks, so two nodes cannot both find it free.
///
/// A number registered outside the caller's scope is refused all the same (one person, one
/// record), which tells that it exists: the refusal says a move-in is a higher level's, and
/// is audited after the transaction is given up, so that probing numbers this way shows.
async fn unique_id(st: &AppState, p: &Principal, mut tx: Tx, idn: &IdNumber, except: Option<i64>) -> AppResult<Tx> {
    if !p.role.can(Perm::PersonReveal) {
        hits_left(st, p).await?;
    }
    tx.serialise("lock:person_id").await?;
    let dup = sqlx::query("SELECT n.path FROM persons pe JOIN nodes n ON n.id = pe.node_id WHERE pe.id_bidx = $1 AND pe.retired_at IS NULL AND pe.id <> $2")
        .bind(st.keyring.blind_index("id_number", idn.as_str()))
        .bind(except.unwrap_or(0))
        .fetch_optional(&mut tx)
        .await?;
    let Some(row) = dup else { return Ok(tx) };
    let path: String = get(&row, "path")?;
    drop(tx);
    // Audited in the caller's own area too: trying numbers one by one against the check tells
    // which one is registered (an ID number recovered from its masked form), and shows here.
    let here = p.in_scope(&path);
    let summary = format!("登记居民时身份证号 {} 已在{}登记", idn.masked(), if here { "本辖区" } else { "其他辖区" });
    let ev = Event { action: "person.duplicate", entity: "person", entity_id: "-", node_path: &p.scope_path, summary: &summary };
    audit::record(&st.db, &st.chain, &p.actor(), ev).await?;
    if here {
        return Err(AppError::field("id_number", "该身份证号已登记"));
    }
    Err(AppError::field("id_number", "该身份证号已在其他辖区登记：迁入请由能管理两地的上级管理员办理"))
}

/// How often a person's ID number may be set again in a day by someone who may not see it:
/// trying candidates on one record against the duplicate check recovered a masked number in
/// 14 tries (a typo corrected once or twice is the honest case).
const ID_CHANGES_PER_DAY: i64 = 3;

/// Duplicate hits a day for someone who may not see ID numbers: past them, the check that tells
/// a number is registered answers no more (on new records as on edits, across records).
const HITS_PER_DAY: i64 = 5;

/// Audit entries of `action` in the last day whose `by` column holds `value`.
async fn today(st: &AppState, action: &str, by: By, value: String) -> AppResult<i64> {
    let column = match by {
        By::Actor => "actor",
        By::Entity => "entity_id",
    };
    let sql = format!("SELECT COUNT(*) FROM audit_log WHERE action = $1 AND {column} = $2 AND at > $3");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(action)
        .bind(value)
        .bind(now_ms() - 86_400_000)
        .fetch_one(st.db.read())
        .await?)
}

/// Which column of the audit log [`today`] counts by.
enum By {
    Actor,
    Entity,
}

async fn hits_left(st: &AppState, p: &Principal) -> AppResult<()> {
    if today(st, "person.duplicate", By::Actor, p.username.clone()).await? >= HITS_PER_DAY {
        return Err(AppError::field(
            "id_number",
            format!("今天已有 {HITS_PER_DAY} 次登记的身份证号与已登记的重复：请由能查看个人信息的人员核实后再登记"),
        ));
    }
    Ok(())
}

/// Refuses a further ID-number change of person `id` past [`ID_CHANGES_PER_DAY`].
async fn id_changes_left(st: &AppState, id: i64) -> AppResult<()> {
    if today(st, "person.id_set", By::Entity, id.to_string()).await? >= ID_CHANGES_PER_DAY {
        return Err(AppError::field(
            "id_number",
            format!("该居民的身份证号一天内已修改 {ID_CHANGES_PER_DAY} 次：如需再改，请由能查看个人信息的人员核实后办理"),
        ));
    }
    Ok(())
}

/// Registers a person (audited).
pub async fn create(st: &AppState, p: &Principal, input: &PersonInput) -> AppResult<Person> {
    let v = validate(st, Some(p), input).await?;
    let mut tx = st.db.begin().await?;
    if let Some(idn) = &v.id {
        tx = unique_id(st, p, tx, idn, None).await?;
    }
    let id = insert(&mut tx, &st.keyring, &v, false).await?;
    let summary = format!("登记居民 {}（身份证 {}）", mask_name(&v.name), v.id.as_ref().map(|i| i.masked()).unwrap_or_default());
    let ev =
        Event { action: "person.create", entity: "person", entity_id: &id.to_string(), node_path: &v.path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    get_person(st, p, id).await
}

/// Edits a person (all fields; an ID number or mobile left empty or sent back masked keeps its
/// stored value, and is removed only when asked by `clear_id_number` / `clear_mobile`: a wrong
/// or withdrawn number could not be deleted). Audited.
pub async fn update(st: &AppState, p: &Principal, id: i64, input: &PersonInput) -> AppResult<Person> {
    let old = get_person(st, p, id).await?;
    p.check(Perm::PersonWrite, &old.path)?;
    // Left empty, or sent back as shown (masked): the stored number stays. An edit by someone
    // who may not reveal it (a grid worker) must not wipe it.
    let (drop_id, drop_phone) = (input.clear_id_number == Some(true), input.clear_mobile == Some(true));
    if (drop_id || drop_phone) && !p.role.can(Perm::PersonReveal) {
        return Err(AppError::field(
            if drop_id { "clear_id_number" } else { "clear_mobile" },
            "删除身份证号或手机号需要查看个人信息的权限",
        ));
    }
    let kept = |s: &str, clear: bool| (s.trim().is_empty() || s.contains('*')) && !clear;
    let (keep_id, keep_phone) = (kept(&input.id_number, drop_id), kept(&input.mobile, drop_phone));
    let mut input = input.clone();
    // Removing wins over whatever the field held.
    if keep_id || drop_id {
        input.id_number.clear();
    }
    if keep_phone || drop_phone {
        input.mobile.clear();
    }
    let input = &input;
    let v = validate(st, Some(p), input).await?;
    if v.id.is_some() && !p.role.can(Perm::PersonReveal) {
        id_changes_left(st, id).await?;
    }
    let mut tx = st.db.begin().await?;
    if let Some(idn) = &v.id {
        tx = unique_id(st, p, tx, idn, Some(id)).await?;
    }
    // A change of the number, not the number sent back as it was (a form that shows it whole
    // to those who may see it sends it with every edit).
    let stored: Option<String> =
        sqlx::query_scalar("SELECT id_bidx FROM persons WHERE id = $1").bind(id).fetch_optional(&mut tx).await?.flatten();
    if let Some(idn) =
        v.id.as_ref().filter(|n| stored.as_deref() != Some(st.keyring.blind_index("id_number", n.as_str()).as_str()))
    {
        let summary = format!("居民 {} 的身份证号改为 {}", mask_name(&v.name), idn.masked());
        let ev = Event {
            action: "person.id_set",
            entity: "person",
            entity_id: &id.to_string(),
            node_path: &v.path,
            summary: &summary,
        };
        audit::append(&mut tx, &st.chain, &p.actor(), ev);
    }
    let f = encrypted_fields(&st.keyring, &v);
    let changed = sqlx::query(
        "UPDATE persons SET name = $1, \
         id_enc = CASE WHEN $14 = 1 THEN id_enc ELSE $2 END, id_bidx = CASE WHEN $14 = 1 THEN id_bidx ELSE $3 END, \
         phone_enc = CASE WHEN $15 = 1 THEN phone_enc ELSE $4 END, phone_bidx = CASE WHEN $15 = 1 THEN phone_bidx ELSE $5 END, \
         gender = CASE WHEN $14 = 1 THEN gender ELSE $6 END, birth_year = CASE WHEN $14 = 1 THEN birth_year ELSE $7 END, \
         node_id = $8, room = $9, tags = $10, updated_at = $11, version = version + 1 WHERE id = $12 AND version = $13",
    )
    .bind(&v.name)
    .bind(f.id_enc)
    .bind(f.id_bidx)
    .bind(f.ph_enc)
    .bind(f.ph_bidx)
    .bind(f.gender)
    .bind(f.birth)
    .bind(v.node_id)
    .bind(&v.room)
    .bind(&v.tags)
    .bind(now_ms())
    .bind(id)
    .bind(input.version.unwrap_or(old.version))
    .bind(keep_id as i64)
    .bind(keep_phone as i64)
    .execute(&mut tx)
    .await?;
    if changed.rows_affected() == 0 {
        return Err(AppError::Conflict("该记录已被他人修改，请刷新后重试".into()));
    }
    let removed: Vec<&str> =
        [(drop_id, "身份证号"), (drop_phone, "手机号")].into_iter().filter(|(d, _)| *d).map(|(_, w)| w).collect();
    let removed = if removed.is_empty() { String::new() } else { format!("；删除{}", removed.join("、")) };
    let summary = format!("修改居民 {} 的信息（住址 {} → {}{removed}）", mask_name(&v.name), old.node_code, input.node.trim());
    let ev =
        Event { action: "person.update", entity: "person", entity_id: &id.to_string(), node_path: &v.path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    get_person(st, p, id).await
}

/// Marks a person as moved away (迁出); the record stays for history. Audited.
pub async fn retire(st: &AppState, p: &Principal, id: i64, reason: &str) -> AppResult<()> {
    let old = get_person(st, p, id).await?;
    p.check(Perm::PersonWrite, &old.path)?;
    let reason = crate::audit::reason(reason, false)?;
    let mut tx = st.db.begin().await?;
    sqlx::query(
        "UPDATE persons SET retired_at = $1, updated_at = $1, version = version + 1 WHERE id = $2 AND retired_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(&mut tx)
    .await?;
    let summary =
        format!("居民 {} 迁出；原因：{}", mask_name(&old.name), if reason.trim().is_empty() { "未填写" } else { reason.trim() });
    let ev =
        Event { action: "person.retire", entity: "person", entity_id: &id.to_string(), node_path: &old.path, summary: &summary };
    audit::append(&mut tx, &st.chain, &p.actor(), ev);
    tx.commit().await?;
    Ok(())
}

/// Exports the filtered register (masked) as xlsx; the export itself is audited.
pub async fn export(st: &AppState, p: &Principal, f: &PersonFilter) -> AppResult<Vec<u8>> {
    use crate::web::xlsx::{Cell, workbook};
    let mut f = f.clone();
    f.page = Some(1);
    f.per_page = Some(crate::tree::store::EXPORT_MAX);
    let page = list(st, p, &f).await?;
    let summary = format!("导出居民名单 {} 人（脱敏）", page.items.len());
    audit::exported(st, p, "person", &summary).await?;
    let rows = page.items.iter().map(|x| {
        vec![
            Cell::from(x.name.as_str()),
            x.gender.as_str().into(),
            x.birth_year.map(Cell::from).unwrap_or_else(|| "".into()),
            x.id_number.as_str().into(),
            x.mobile.as_str().into(),
            x.node_code.as_str().into(),
            x.node_name.as_str().into(),
            x.room.as_str().into(),
            x.tags.as_str().into(),
        ]
    });
    workbook("居民", &["姓名", "性别", "出生年", "身份证号（脱敏）", "手机号（脱敏）", "住址编码", "住址", "房号", "标签"], rows)
}

const COLS: &str = "pe.id, pe.name, pe.id_enc, pe.phone_enc, pe.gender, pe.birth_year, pe.room, pe.tags, pe.version, n.code AS node_code, n.name AS node_name, n.path";

fn masked(keys: &Keyring, r: &Row) -> AppResult<Person> {
    let id_enc: Option<Vec<u8>> = get(r, "id_enc")?;
    let ph_enc: Option<Vec<u8>> = get(r, "phone_enc")?;
    // Masked forms remembered per ciphertext, as on case lists (`Keyring::shown`).
    let id_number = match id_enc {
        Some(b) => keys.shown(&b, AAD_ID, |x| IdNumber::parse(x).map(|i| i.masked()).unwrap_or_default())?,
        None => String::new(),
    };
    let mobile = match ph_enc {
        Some(b) => keys.shown(&b, AAD_PHONE, |x| Mobile::parse(x).map(|m| m.masked()).unwrap_or_default())?,
        None => String::new(),
    };
    Ok(Person {
        id: get(r, "id")?,
        name: get(r, "name")?,
        id_number,
        mobile,
        gender: get(r, "gender")?,
        birth_year: get(r, "birth_year")?,
        node_code: get(r, "node_code")?,
        node_name: get(r, "node_name")?,
        room: get(r, "room")?,
        tags: get(r, "tags")?,
        version: get(r, "version")?,
        path: get(r, "path")?,
    })
}

/// One person, masked.
pub async fn get_person(st: &AppState, p: &Principal, id: i64) -> AppResult<Person> {
    let sql =
        format!("SELECT {COLS} FROM persons pe JOIN nodes n ON n.id = pe.node_id WHERE pe.id = $1 AND pe.retired_at IS NULL");
    let r = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(st.db.read()).await?.ok_or(AppError::NotFound)?;
    let path: String = get(&r, "path")?;
    p.check(Perm::PersonRead, &path)?;
    masked(&st.keyring, &r)
}

/// Search and filters for the register.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PersonFilter {
    /// A name fragment, or an exact ID number or mobile (found through the blind index).
    pub q: Option<String>,
    /// Only under this node.
    pub node: Option<String>,
    /// 1-based page.
    pub page: Option<i64>,
    /// Page size.
    #[serde(default, deserialize_with = "crate::db::list::asked_per_page")]
    pub per_page: Option<i64>,
}

/// Lists persons inside the caller's scope, masked.
pub async fn list(st: &AppState, p: &Principal, f: &PersonFilter) -> AppResult<Page<Person>> {
    p.require(Perm::PersonRead)?;
    let mut w = Where::new();
    match f.node.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(code) => w.under("n.path", &crate::tree::store::get_node(st, p, code).await?.path),
        None => w.under("n.path", &p.scope_path),
    };
    w.raw("pe.retired_at IS NULL");
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        // A whole ID number or mobile is found through its blind index; anything else by name.
        // Such a lookup confirms a guess: with the masked number, the birth year and the check
        // digit, about thirty guesses recovered a resident's full ID number. So it takes the
        // reveal permission and goes to the audit log.
        let exact = match (IdNumber::parse(q), Mobile::parse(q)) {
            (Ok(id), _) => Some(("pe.id_bidx = ?", st.keyring.blind_index("id_number", id.as_str()), "身份证号")),
            (_, Ok(m)) => Some(("pe.phone_bidx = ?", st.keyring.blind_index("mobile", m.as_str()), "手机号")),
            _ => None,
        };
        match exact {
            Some(_) if !p.role.can(Perm::PersonReveal) => {
                return Err(AppError::field("q", "按完整身份证号或手机号查找需要查看个人信息的权限，请按姓名查找"));
            }
            Some((cond, bidx, what)) => {
                w.arg(cond, bidx);
                let summary = format!("按完整{what}查找居民");
                let ev = Event {
                    action: "person.lookup",
                    entity: "person",
                    entity_id: "-",
                    node_path: &p.scope_path,
                    summary: &summary,
                };
                audit::record(&st.db, &st.chain, &p.actor(), ev).await?;
            }
            None => {
                w.contains(&["pe.name"], q);
            }
        }
    }
    let from = "FROM persons pe JOIN nodes n ON n.id = pe.node_id";
    w.page(&st.db, COLS, from, "pe.id", paging(f.page, f.per_page), |r| masked(&st.keyring, r)).await
}

/// Reveals a person's full ID number and mobile: a separate permission, always audited.
pub async fn reveal(st: &AppState, p: &Principal, id: i64, reason: &str) -> AppResult<Revealed> {
    if reason.trim().chars().count() > 200 {
        return Err(AppError::field("reason", "事由不超过 200 个字，且不含控制字符"));
    }
    let r = sqlx::query(
        // A moved-out resident is not found here either, as on their page.
        "SELECT pe.name, pe.id_enc, pe.phone_enc, n.path FROM persons pe JOIN nodes n ON n.id = pe.node_id WHERE pe.id = $1 AND pe.retired_at IS NULL",
    )
    .bind(id)
    .fetch_optional(st.db.read())
    .await?
    .ok_or(AppError::NotFound)?;
    let path: String = get(&r, "path")?;
    p.check(Perm::PersonRead, &path)?;
    p.require(Perm::PersonReveal)?;
    // Checked after the scope, so that a number outside it stays a 404 either way.
    let reason = crate::audit::reason(reason, true)?;
    let dec = |col: &str, aad: &[u8]| -> AppResult<String> {
        Ok(st.keyring.decrypt_opt(get::<Option<Vec<u8>>>(&r, col)?.as_deref(), aad)?)
    };
    let out = Revealed { id_number: dec("id_enc", AAD_ID)?, mobile: dec("phone_enc", AAD_PHONE)? };
    let name: String = get(&r, "name")?;
    let summary = format!("查看 {} 的完整身份证号和手机号{}{reason}", mask_name(&name), crate::audit::REASON);
    let ev = Event { action: "person.reveal", entity: "person", entity_id: &id.to_string(), node_path: &path, summary: &summary };
    audit::record(&st.db, &st.chain, &p.actor(), ev).await?;
    Ok(out)
}

impl Person {
    /// The person's tree path (for scope checks by callers).
    pub fn path(&self) -> &str {
        &self.path
    }
}
