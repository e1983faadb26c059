//! The demo county: 沿河土家族自治县's urban area, built deterministically (fixed seed) so
//! that every figure comes out of records: 4 streets, 27 communities, 156 grids tiling each
//! community around 108.50°E 28.56°N, 59 compounds, their buildings, 13 relocation sites,
//! a few thousand fictitious residents, and one account per role.

use crate::app::AppState;
use crate::audit::{self, Actor, Event};
use crate::auth::{Role, password, random_hex};
use crate::db::{Tx, get, now_ms};
use crate::error::{AppError, AppResult};
use crate::geo::{self, Point, Polygon};
use crate::ident::{IdNumber, Mobile};

/// The county's administrative division code.
pub const COUNTY: &str = "520627";

/// Cases in the demo year (about three quarters of them end closed).
pub const DEMO_CASES: usize = 1500;

/// Streets: (seq, name, named in the article, community count).
const STREETS: [(u32, &str, bool, usize); 4] =
    [(1, "和平街道", true, 8), (2, "团结街道", true, 7), (3, "祐溪街道", true, 6), (4, "沙子街道", false, 6)];

/// The seven communities the article names, then invented ones (marked demo).
const COMMUNITIES: [(&str, bool); 27] = [
    ("花花桥社区", true),
    ("燎原社区", true),
    ("思源社区", true),
    ("红旗社区", true),
    ("坝坨社区", true),
    ("香树林社区", true),
    ("黑獭社区", true),
    ("滨江社区", false),
    ("锦江社区", false),
    ("乌江社区", false),
    ("新城社区", false),
    ("和谐社区", false),
    ("民族社区", false),
    ("中寨社区", false),
    ("城东社区", false),
    ("城西社区", false),
    ("城南社区", false),
    ("城北社区", false),
    ("白果社区", false),
    ("龙门社区", false),
    ("桂花社区", false),
    ("金竹社区", false),
    ("银杏社区", false),
    ("回龙社区", false),
    ("青龙社区", false),
    ("梨子社区", false),
    ("沙坝社区", false),
];

const SURNAMES: &[&str] =
    &["田", "杨", "张", "王", "李", "冉", "刘", "陈", "吴", "黄", "崔", "何", "罗", "周", "侯", "肖", "谢", "任", "龙", "舒"];
const GIVEN: &[&str] = &[
    "明", "华", "芳", "军", "丽", "勇", "艳", "杰", "娟", "涛", "敏", "静", "强", "磊", "洋", "霞", "平", "刚", "桂英", "志强",
    "秀兰", "建国", "海燕", "文",
];
const TAGS: &[&str] = &["", "", "", "党员", "低保", "独居老人", "退役军人", "残疾人", "五老", "志愿者"];

/// splitmix64: a tiny deterministic generator so the demo is the same on every machine.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Picks an element.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// Demo accounts: (username, display name, role, scope code).
pub fn accounts() -> Vec<(&'static str, &'static str, Role, String)> {
    vec![
        ("admin", "县委组织部管理员", Role::CountyAdmin, COUNTY.into()),
        ("heping", "和平街道管理员", Role::StreetAdmin, "520627001".into()),
        ("huahuaqiao", "花花桥社区工作人员", Role::CommunityStaff, "520627001001".into()),
        ("wanggeyuan", "花花桥第三网格网格员", Role::GridWorker, "520627001001003".into()),
        ("danwei", "县委办公室联络员", Role::UnitContact, "DW001".into()),
        ("dangyuan", "在职党员", Role::PartyMember, "520627001001".into()),
        ("jumin", "居民", Role::Resident, "520627001001".into()),
    ]
}

/// True when the county already exists.
pub async fn is_loaded(st: &AppState) -> AppResult<bool> {
    Ok(crate::tree::store::find_by_code(&st.db, COUNTY).await?.is_some())
}

struct Ins<'a> {
    tx: &'a mut Tx,
    now: i64,
}

impl Ins<'_> {
    async fn node(
        &mut self,
        code: &str,
        kind: &str,
        name: &str,
        parent: Option<(i64, &str)>,
        geom: Option<&Polygon>,
        demo: bool,
    ) -> AppResult<(i64, String)> {
        let path = format!("{}{code}/", parent.map(|p| p.1).unwrap_or("/"));
        let g = geom.map(|p| geo::polygon_to_geojson(p).to_string());
        let r = sqlx::query(
            "INSERT INTO nodes (code, kind, name, parent_id, path, geometry, is_demo, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8) RETURNING id",
        )
        .bind(code)
        .bind(kind)
        .bind(name)
        .bind(parent.map(|p| p.0))
        .bind(&path)
        .bind(g)
        .bind(demo as i64)
        .bind(self.now)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok((get(&r, "id")?, path))
    }
}

/// Builds the demo county in one transaction and creates the demo accounts with
/// `password`. Fails if the county already exists (use `reset` first).
pub async fn load(st: &AppState, password: &str) -> AppResult<()> {
    if is_loaded(st).await? {
        return Err(AppError::Conflict(if loaded_by_demo(st).await? {
            "演示县已存在".into()
        } else {
            format!("县 {COUNTY} 已存在且不是演示数据：演示数据不能载入到已有的县中")
        }));
    }
    let mut rng = Rng::new(520627);
    let mut tx = st.db.begin().await?;
    let mut ins = Ins { tx: &mut tx, now: now_ms() };
    let (county_id, county_path) = ins.node(COUNTY, "county", "沿河土家族自治县", None, None, false).await?;
    let (w, h) = (0.008, 0.007);
    let origin = Point { lng: 108.475, lat: 28.540 };
    let mut ci = 0usize;
    let mut compounds_left = 59usize;
    let mut grid_no = 0usize;
    let mut residents: Vec<(String, IdNumber, Mobile, i64, String)> = Vec::new();
    for (sseq, sname, real, ncomm) in STREETS {
        let scode = format!("{COUNTY}{sseq:03}");
        let (sid, spath) = ins.node(&scode, "street", sname, Some((county_id, &county_path)), None, !real).await?;
        for k in 0..ncomm {
            let (cname, creal) = COMMUNITIES[ci];
            let (col, row) = ((ci % 6) as f64, (ci / 6) as f64);
            let min = Point { lng: origin.lng + col * w, lat: origin.lat + row * h };
            let max = Point { lng: min.lng + w, lat: min.lat + h };
            let cpoly = Polygon::rect(min.lng, min.lat, max.lng, max.lat);
            let ccode = format!("{scode}{:03}", k + 1);
            let (cid, cpath) = ins.node(&ccode, "community", cname, Some((sid, &spath)), Some(&cpoly), !creal).await?;
            let ngrids = if ci < 21 { 6 } else { 5 };
            for (gi, gpoly) in geo::split_rect(min, max, ngrids).iter().enumerate() {
                let gcode = format!("{ccode}{:03}", gi + 1);
                let gname = format!("{}第{}网格", cname.trim_end_matches("社区"), gi + 1);
                let (gid, gpath) = ins.node(&gcode, "grid", &gname, Some((cid, &cpath)), Some(gpoly), !creal).await?;
                // 59 compounds spread evenly over the 156 grids.
                let due = (grid_no + 1) * 59 / 156 - grid_no * 59 / 156;
                grid_no += 1;
                for m in 0..due.min(compounds_left) {
                    compounds_left -= 1;
                    let pcode = format!("{gcode}-{:02}", m + 1);
                    let pname = format!(
                        "{}{}小区",
                        cname.trim_end_matches("社区"),
                        ["锦苑", "花园", "新村", "家园", "雅居"][(59 - compounds_left) % 5]
                    );
                    let (pid, ppath) = ins.node(&pcode, "compound", &pname, Some((gid, &gpath)), None, true).await?;
                    for b in 0..(3 + rng.below(5)) {
                        let bcode = format!("{pcode}-{:02}", b + 1);
                        let (bid, _) =
                            ins.node(&bcode, "building", &format!("{}栋", b + 1), Some((pid, &ppath)), None, true).await?;
                        for _ in 0..(8 + rng.below(8)) {
                            residents.push(fake_resident(&mut rng, bid));
                        }
                    }
                }
            }
            ci += 1;
        }
    }
    // 13 relocation sites served by communities.
    let sites = [
        "团结安置点",
        "沙子安置点",
        "祐溪安置点",
        "城南安置点",
        "乌江安置点",
        "和平安置点",
        "新城安置点",
        "中寨安置点",
        "官舟安置点",
        "龙门安置点",
        "白果安置点",
        "桂花安置点",
        "青龙安置点",
    ];
    for (i, name) in sites.iter().enumerate() {
        let ccode = community_code(i * 2);
        let r = sqlx::query("SELECT id, path FROM nodes WHERE code = $1").bind(&ccode).fetch_one(&mut *ins.tx).await?;
        let (cid, cpath): (i64, String) = (get(&r, "id")?, get(&r, "path")?);
        ins.node(&format!("{ccode}-{:02}", 1), "site", name, Some((cid, &cpath)), None, true).await?;
    }
    let mut seen = std::collections::HashSet::new();
    for (name, id, mobile, bid, room) in residents {
        if !seen.insert(id.as_str().to_string()) {
            continue;
        }
        let v =
            crate::people::ValidPerson::trusted(name, Some(id), Some(mobile), bid, room, TAGS[seen.len() % TAGS.len()].into());
        crate::people::insert(ins.tx, &st.keyring, &v, true).await?;
    }
    crate::cases::demo::setup(ins.tx, &county_path, ins.now).await?;
    let hash = password::hash(password).await?;
    for (user, display, role, scope) in accounts() {
        // A unit contact's scope is its unit; everyone else's a tree node.
        let (path, unit): (String, Option<i64>) = if role == Role::UnitContact {
            let u = sqlx::query("SELECT id, node_path FROM units WHERE code = $1").bind(&scope).fetch_one(&mut *ins.tx).await?;
            (get(&u, "node_path")?, Some(get(&u, "id")?))
        } else {
            let n = sqlx::query("SELECT path FROM nodes WHERE code = $1").bind(&scope).fetch_one(&mut *ins.tx).await?;
            (get(&n, "path")?, None)
        };
        sqlx::query(
            "INSERT INTO users (username, display_name, password_hash, role, scope, scope_path, must_change_password, unit_id, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,0,$7,$8,$8)",
        )
        .bind(user)
        .bind(display)
        .bind(&hash)
        .bind(role.as_str())
        .bind(&scope)
        .bind(path)
        .bind(unit)
        .bind(ins.now)
        .execute(&mut *ins.tx)
        .await?;
    }
    crate::cases::demo::people(ins.tx, &hash, ins.now).await?;
    crate::cases::demo::cases(ins.tx, &st.keyring, DEMO_CASES, ins.now).await?;
    let ev = Event {
        action: "demo.load", entity: "node", entity_id: COUNTY, node_path: &county_path, summary: "载入演示县数据"
    };
    audit::append(&mut tx, &st.chain, &Actor::system("demo"), ev);
    crate::tree::geometry::commit(st, tx, true).await?;
    st.cats.reload(&st.db).await?;
    crate::registers::demo::load(st).await?;
    Ok(())
}

/// The code of the i-th demo community (0-based, in street order).
pub fn community_code(i: usize) -> String {
    let mut left = i;
    for (sseq, _, _, n) in STREETS {
        if left < n {
            return format!("{COUNTY}{sseq:03}{:03}", left + 1);
        }
        left -= n;
    }
    format!("{COUNTY}001001")
}

fn fake_resident(rng: &mut Rng, building: i64) -> (String, IdNumber, Mobile, i64, String) {
    let name = format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN));
    let birth = format!("{}{:02}{:02}", 1940 + rng.below(66), 1 + rng.below(12), 1 + rng.below(28));
    let id = IdNumber::compose(COUNTY, &birth, rng.below(1000) as u16).expect("valid demo id");
    let mobile = Mobile::parse(&format!("1{}{:09}", [3, 5, 7, 8, 9][rng.below(5) as usize], rng.below(1_000_000_000)))
        .expect("valid demo mobile");
    let room = format!("{}-{}0{}", 1 + rng.below(3), 1 + rng.below(18), 1 + rng.below(4));
    (name, id, mobile, building, room)
}

/// Removes all demo records (nodes, residents, demo accounts) so `load` can run again.
/// Whether the county was put there by [`load`] (its last `demo.load` is on the record after
/// any `demo.reset`): a county of the same code set up for real is never the demo's.
async fn loaded_by_demo(st: &AppState) -> AppResult<bool> {
    let last = |action: &'static str| {
        sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(seq) FROM audit_log WHERE action = $1")
            .bind(action)
            .fetch_one(&st.db.pool)
    };
    Ok(last("demo.load").await?.unwrap_or(0) > last("demo.reset").await?.unwrap_or(0))
}

/// Audit entries stay: the log is append-only.
pub async fn reset(st: &AppState) -> AppResult<()> {
    // The demo county's code is the real county's (沿河, 520627): a deployment set up by hand
    // under it would lose its cases, tree and accounts.
    if !loaded_by_demo(st).await? {
        return Err(AppError::Conflict(format!("县 {COUNTY} 的数据不是载入的演示数据，不会清除")));
    }
    // After the batch's deferred rows: the notifications and postings of a case created a
    // moment ago must be there to be deleted.
    let mut tx = st.db.begin_after_deferred().await?;
    let pat = format!("/{COUNTY}/%");
    // The case loop first: everything that hangs off the demo county's cases.
    let case_ids = "SELECT id FROM cases WHERE node_path LIKE $1";
    for table in ["case_terms", "case_photos", "case_history", "notifications"] {
        let sql = format!("DELETE FROM {table} WHERE case_id IN ({case_ids})");
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&pat).execute(&mut tx).await?;
    }
    sqlx::query("DELETE FROM notifications WHERE node_path LIKE $1").bind(&pat).execute(&mut tx).await?;
    sqlx::query("DELETE FROM cases WHERE node_path LIKE $1").bind(&pat).execute(&mut tx).await?;
    tx.forget_all_cases();
    crate::cases::rollups::rebuild_in(&mut tx).await?;
    sqlx::query("DELETE FROM jobs WHERE done_at IS NULL").execute(&mut tx).await?;
    // Demo accounts: the named ones and the generated grid workers, unit contacts, members.
    let demo_users = "SELECT id FROM users WHERE scope_path LIKE $1 AND (username IN ('admin','heping','huahuaqiao','wanggeyuan','danwei','dangyuan','jumin') \
         OR (role = 'grid_worker' AND username LIKE 'wg%') OR (role = 'unit_contact' AND username LIKE 'dw%') OR (role = 'party_member' AND username LIKE 'dy%'))";
    for table in ["sessions", "api_tokens", "notifications"] {
        let sql = format!("DELETE FROM {table} WHERE user_id IN ({demo_users})");
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&pat).execute(&mut tx).await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM users WHERE id IN ({demo_users})"))).bind(&pat).execute(&mut tx).await?;
    let others = sqlx::query("SELECT COUNT(*) AS c FROM users WHERE scope_path LIKE $1").bind(&pat).fetch_one(&mut tx).await?;
    if get::<i64>(&others, "c")? > 0 {
        return Err(AppError::Conflict("演示县下还有非演示账号，请先删除或改派这些账号".into()));
    }
    sqlx::query("DELETE FROM webhooks WHERE unit_id IN (SELECT id FROM units WHERE is_demo = 1)").execute(&mut tx).await?;
    sqlx::query("DELETE FROM categories WHERE id NOT IN (SELECT DISTINCT category_id FROM cases)").execute(&mut tx).await?;
    sqlx::query("DELETE FROM units WHERE is_demo = 1").execute(&mut tx).await?;
    sqlx::query("DELETE FROM calendar_days").execute(&mut tx).await?;
    sqlx::query("DELETE FROM register_rows WHERE is_demo = 1").execute(&mut tx).await?;
    sqlx::query("DELETE FROM persons WHERE node_id IN (SELECT id FROM nodes WHERE path LIKE $1)")
        .bind(&pat)
        .execute(&mut tx)
        .await?;
    // Children before parents: deepest paths first.
    let ids =
        sqlx::query("SELECT id FROM nodes WHERE path LIKE $1 ORDER BY LENGTH(path) DESC").bind(&pat).fetch_all(&mut tx).await?;
    for r in &ids {
        sqlx::query("DELETE FROM nodes WHERE id = $1").bind(get::<i64>(r, "id")?).execute(&mut tx).await?;
    }
    let ev = Event { action: "demo.reset", entity: "node", entity_id: COUNTY, node_path: "/", summary: "清除演示县数据" };
    audit::append(&mut tx, &st.chain, &Actor::system("demo"), ev);
    crate::cases::categories::bump_version(&mut tx).await?;
    crate::auth::cache::changed(&mut tx).await?;
    crate::tree::geometry::commit(st, tx, true).await?;
    st.cats.reload(&st.db).await?;
    st.tokens.clear();
    Ok(())
}

/// A fresh random demo password that meets the policy.
pub fn random_password() -> String {
    format!("Linli-{}-{}", &random_hex(3), &random_hex(3).to_uppercase())
}
