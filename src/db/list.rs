//! One mechanism for filtered, paged lists: collect conditions with their text arguments,
//! then run the count and the page with the same binds. Tree, people and audit lists use it;
//! the registers of the five systems will too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::AssertSqlSafe;

use super::{Db, Row, get, like_escape};
use crate::error::AppResult;

/// Most rows an Excel export carries.
pub const EXPORT_MAX: i64 = 100_000;

/// Lists count matches up to this many, then say "2000+": an exact count of a large scope
/// would cost a scan that grows with the data, and nobody pages that far (filters do).
pub const COUNT_CAP: i64 = 2_000;

/// How long a scope seen with more than [`COUNT_CAP`] matches is taken to still have them.
const BIG_FOR: Duration = Duration::from_secs(5);
/// Scopes remembered at most (a list has a few dozen per user; the map is emptied past this).
const BIG_MAX: usize = 10_000;

/// Filtered scopes seen to hold more than a count cap, remembered for [`BIG_FOR`]. Their lists
/// say "2000+", and the count or probe that decides it (over 2,000 index entries: a quarter of
/// a case list's work or more, a round trip on PostgreSQL) would only say so again while
/// someone pages through them. The one thing this can show late is a scope shrinking below
/// the cap: it reads "2000+" for up to five more seconds. Totals below the cap are always
/// counted.
/// A big scope's density in the key order is remembered the same way (see [`Where::walks`]).
#[derive(Debug, Default)]
pub(crate) struct BigScopes(Mutex<HashMap<String, (Instant, i64)>>);

impl BigScopes {
    fn fresh(&self, key: &str, now: Instant) -> bool {
        self.known(key, now).is_some()
    }

    /// The number remembered under `key` less than [`BIG_FOR`] ago.
    fn known(&self, key: &str, now: Instant) -> Option<i64> {
        self.0.lock().expect("big scopes").get(key).filter(|(t, _)| now.duration_since(*t) < BIG_FOR).map(|(_, n)| *n)
    }

    fn remember(&self, key: String, now: Instant) {
        self.remember_n(key, now, 0);
    }

    fn remember_n(&self, key: String, now: Instant, n: i64) {
        let mut m = self.0.lock().expect("big scopes");
        if m.len() >= BIG_MAX {
            m.retain(|_, (t, _)| now.duration_since(*t) < BIG_FOR);
            if m.len() >= BIG_MAX {
                m.clear();
            }
        }
        m.insert(key, (now, n));
    }
}

/// How many of the newest keys a big scope's density is measured on.
const DENSITY_WINDOW: i64 = 10_000;
/// Index entries a page may walk in the key order on SQLite even where the scope's range (read
/// whole and sorted) holds fewer rows: there the walk reads the table's own B-tree in key order,
/// each row beside its key. On PostgreSQL a walked entry costs a heap fetch, a third of what a
/// row of the range costs with its sort (a street of the 1 M megacity: page 1 walking 6,900
/// entries 2.2 ms, by its 2,900-row range 3.2 ms; page 5 walking 34,000 entries 10 ms), so a
/// walk there may read up to three times the range's rows and no more.
const WALK_MAX: i64 = 50_000;
/// See [`WALK_MAX`].
const PG_WALK_REACH: i64 = 3;

/// A page of results.
#[derive(Clone, Debug, Serialize)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Total matching rows (at most [`COUNT_CAP`]; see `total_capped`).
    pub total: i64,
    /// More than [`COUNT_CAP`] rows match: `total` is the cap.
    pub total_capped: bool,
    /// 1-based page.
    pub page: i64,
    /// Page size.
    pub per_page: i64,
}

impl<T> Page<T> {
    /// The total for people: "2000+" when capped.
    pub fn total_label(&self) -> String {
        if self.total_capped { format!("{}+", self.total) } else { self.total.to_string() }
    }

    /// Number of pages.
    pub fn pages(&self) -> i64 {
        ((self.total + self.per_page - 1) / self.per_page).max(1)
    }

    /// Where the page is, for the pager: 第 2 / 3 页, or past the end (a stale or edited
    /// link) that there is nothing there.
    pub fn position(&self) -> String {
        let pages = self.pages();
        if self.page > pages {
            format!("第 {} 页已超出末页（共 {pages} 页）", self.page)
        } else {
            format!("第 {} / {pages} 页", self.page)
        }
    }

    /// The page before this one; from past the end (a stale link), the last page.
    pub fn prev(&self) -> i64 {
        (self.page - 1).min(self.pages())
    }
}

/// The largest page a request may ask for (exports take [`EXPORT_MAX`] rows, set by the code).
pub const MAX_PER_PAGE: i64 = 500;

/// A request's `per_page`, at most [`MAX_PER_PAGE`]: asking for [`EXPORT_MAX`] in a query
/// string would otherwise get an export's 100,000 rows as one JSON page.
pub fn asked_per_page<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(<Option<i64> as serde::Deserialize>::deserialize(d)?.map(|n| n.min(MAX_PER_PAGE)))
}

/// A yes/no filter as links and forms write it: true/false, 1/0, on/off (empty: not asked).
pub fn asked_flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        B(bool),
        S(String),
        N(i64),
    }
    match <Option<Raw> as serde::Deserialize>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::B(b)) => Ok(Some(b)),
        Some(Raw::N(n)) => Ok(Some(n != 0)),
        Some(Raw::S(s)) => match s.trim() {
            "" => Ok(None),
            "1" | "true" | "on" | "yes" => Ok(Some(true)),
            "0" | "false" | "off" | "no" => Ok(Some(false)),
            other => Err(serde::de::Error::custom(format!("「{other}」不是是/否（可用 true、false、1、0）"))),
        },
    }
}

/// Normalises paging parameters (page size 1–500; exports ask for [`EXPORT_MAX`]).
pub fn paging(page: Option<i64>, per_page: Option<i64>) -> (i64, i64) {
    let per = match per_page {
        Some(EXPORT_MAX) => EXPORT_MAX,
        other => other.unwrap_or(20).clamp(1, MAX_PER_PAGE),
    };
    // Far past any data (an empty page), and small enough that its offset cannot overflow.
    (page.unwrap_or(1).clamp(1, 1_000_000_000), per)
}

/// Conditions of a WHERE clause with their bound (text) arguments.
#[derive(Default, Debug)]
pub struct Where {
    clauses: Vec<String>,
    args: Vec<String>,
    /// For scope ranges: (clause index, the same test on `(col || '')`, which no index serves).
    dense: Vec<(usize, String)>,
    /// Scope ranges: (column, prefix, index of the lower bound in `args`).
    ranges: Vec<(String, String, usize)>,
}

impl Where {
    /// An empty filter (matches everything).
    pub fn new() -> Where {
        Where::default()
    }

    /// Adds a condition without arguments.
    pub fn raw(&mut self, clause: &str) -> &mut Self {
        self.clauses.push(clause.to_string());
        self
    }

    /// Adds a condition whose every `?` stands for the one argument `value`.
    pub fn arg(&mut self, clause: &str, value: impl Into<String>) -> &mut Self {
        self.args.push(value.into());
        self.clauses.push(clause.replace('?', &format!("${}", self.args.len())));
        self
    }

    /// `col` equals one of `values` (bound, one argument each).
    pub fn any_of(&mut self, col: &str, values: &[String]) -> &mut Self {
        let mut marks = Vec::with_capacity(values.len());
        for v in values {
            self.args.push(v.clone());
            marks.push(format!("${}", self.args.len()));
        }
        self.clauses.push(format!("{col} IN ({})", marks.join(", ")));
        self
    }

    /// `col` starts with `prefix` — the scope test on materialised paths — as a range an index
    /// serves on both engines (see [`super::prefix_end`]).
    /// Two nested ranges on one column keep only the narrower (a community filter inside the
    /// caller's county): the engine serves one range from the index, and must pick that one.
    pub fn under(&mut self, col: &str, prefix: &str) -> &mut Self {
        let nested =
            self.ranges.iter().position(|(c, p, _)| c == col && (prefix.starts_with(p.as_str()) || p.starts_with(prefix)));
        if let Some(i) = nested {
            let (_, have, at) = &mut self.ranges[i];
            if prefix.starts_with(have.as_str()) {
                *have = prefix.to_string();
                self.args[*at] = prefix.to_string();
                self.args[*at + 1] = super::prefix_end(prefix);
            }
            return self;
        }
        self.ranges.push((col.to_string(), prefix.to_string(), self.args.len()));
        for (op, value) in [(">=", prefix.to_string()), ("<", super::prefix_end(prefix))] {
            self.arg(&format!("{col} {op} ?"), value);
            let n = self.args.len();
            self.dense.push((self.clauses.len() - 1, format!("({col} || '') {op} ${n}")));
        }
        self
    }

    /// Any of `cols` contains `q` (a plain substring search).
    pub fn contains(&mut self, cols: &[&str], q: &str) -> &mut Self {
        let any = cols.iter().map(|c| format!("{c} LIKE ? ESCAPE '\\'")).collect::<Vec<_>>().join(" OR ");
        self.arg(&format!("({any})"), format!("%{}%", like_escape(q)))
    }

    /// The conditions with their binds, as one text: equal keys select the same rows.
    pub fn key(&self) -> String {
        let mut k = self.sql();
        for a in &self.args {
            k.push('\u{1}');
            k.push_str(a);
        }
        k
    }

    /// The clause text (`1=1` when empty).
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() { "1=1".into() } else { self.clauses.join(" AND ") }
    }

    /// For queries that also filter on a column with a more selective index (a unit, a grid,
    /// search terms), which the engine should use: on SQLite the scope's ranges are tested row
    /// by row from now on; PostgreSQL keeps them as they are and chooses by its statistics.
    /// Hidden from it, a county-wide range looked like 0.2 % of the table: it read every case
    /// and probed each one's search terms (1.2 s for a two-term search over 1 M cases) instead
    /// of walking the rarest term's postings.
    pub fn scope_as_filter(&mut self, db: &Db) -> &mut Self {
        for (i, alt) in std::mem::take(&mut self.dense) {
            if db.backend == super::Backend::Sqlite {
                self.clauses[i] = alt;
            }
        }
        self
    }

    /// The clause text for a scope known to hold many rows: its range is tested row by row, so
    /// the engine walks the ORDER BY index and stops at the page instead of collecting and
    /// sorting the whole scope.
    fn sql_dense(&self) -> String {
        let mut c = self.clauses.clone();
        for (i, alt) in &self.dense {
            c[*i] = alt.clone();
        }
        if c.is_empty() { "1=1".into() } else { c.join(" AND ") }
    }

    fn query(&self, sql: String) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        self.args.iter().fold(sqlx::query(AssertSqlSafe(sql)), |q, a| q.bind(a.clone()))
    }

    /// Runs any query whose WHERE clause is [`Where::sql`], with the binds.
    pub async fn fetch_all(&self, db: &Db, sql: String) -> AppResult<Vec<Row>> {
        Ok(self.query(sql).fetch_all(db.read()).await?)
    }

    /// Counts the matching rows of `from`, stopping at `cap`. A big scope is the common case
    /// and costs one skip over `cap` index entries (half the cost of counting them); only a
    /// scope with fewer rows is then counted.
    pub async fn count_to(&self, db: &Db, from: &str, cap: i64) -> AppResult<i64> {
        if self.reaches(db, from, cap).await? { Ok(cap) } else { self.count_below(db, from, cap).await }
    }

    /// At least `n` rows of `from` match (one skip over `n` index entries, unless the same
    /// scope was seen that big a moment ago: see [`BigScopes`]).
    async fn reaches(&self, db: &Db, from: &str, n: i64) -> AppResult<bool> {
        let key = self.big_key(from, n);
        if db.big.fresh(&key, Instant::now()) {
            return Ok(true);
        }
        let probe = format!("SELECT 1 AS one {from} WHERE {} LIMIT 1 OFFSET {}", self.sql(), n - 1);
        let big = self.query(probe).fetch_optional(db.read()).await?.is_some();
        if big {
            db.big.remember(key, Instant::now());
        }
        Ok(big)
    }

    /// The matching rows of `from` if there are at most `cap`, `None` if more: one count of up
    /// to `cap + 1` index entries, unless the same scope was seen that big a moment ago (see
    /// [`BigScopes`]). Where small scopes are common (a community's or a unit's lists) this is
    /// one statement where a probe and then a count were two.
    async fn count_within(&self, db: &Db, from: &str, cap: i64) -> AppResult<Option<i64>> {
        let key = self.big_key(from, cap + 1);
        if db.big.fresh(&key, Instant::now()) {
            return Ok(None);
        }
        let n = self.count_below(db, from, cap + 1).await?;
        if n <= cap {
            return Ok(Some(n));
        }
        db.big.remember(key, Instant::now());
        Ok(None)
    }

    /// Whether the first `rows` matches of a big scope are found by walking `k`'s key order
    /// more cheaply than by reading the scope's range whole and sorting it. Judged by the
    /// matches among the newest [`DENSITY_WINDOW`] keys (remembered like the count, see
    /// [`BigScopes`]): a walk reads `rows` × window ÷ matches entries, the range about
    /// matches × newest key ÷ window rows (see [`walk_most`] for how much longer a walk may be, per engine). A
    /// community of a megacity holds more than the count cap yet one case in 7,000: walking to
    /// its first page would read 140,000 entries where its range holds 3,500; deep pages of a
    /// street's list likewise (1 M cases, page 100: 71 ms walking, 1.2 ms by the range).
    async fn walks(&self, db: &Db, k: &Keyed<'_>, rows: i64) -> AppResult<bool> {
        let key = self.big_key(k.base, -1);
        let most = match db.big.known(&key, Instant::now()) {
            Some(most) => most,
            None => {
                let (base, id) = (k.base, k.key);
                // The newest key of the key's table alone (`FROM cases c`): a MAX over a join is
                // no index seek on PostgreSQL (a party member's lists join the categories).
                let table = base.split(" JOIN ").next().unwrap_or(base);
                let sql = format!(
                    "SELECT COALESCE((SELECT MAX({id}) {table}), 0) AS top, (SELECT COUNT(*) FROM (SELECT 1 AS one {base} WHERE {} \
                     AND {id} > (SELECT MAX({id}) {table}) - {DENSITY_WINDOW}) t) AS c",
                    self.sql_dense()
                );
                let r = self.query(sql).fetch_one(db.read()).await?;
                let (top, n): (i64, i64) = (get(&r, "top")?, get(&r, "c")?);
                let most = match db.backend {
                    super::Backend::Sqlite => walk_most(n, top, 1, WALK_MAX),
                    super::Backend::Postgres => walk_most(n, top, PG_WALK_REACH, 0),
                };
                db.big.remember_n(key, Instant::now(), most);
                most
            }
        };
        Ok(rows <= most)
    }

    /// The [`BigScopes`] key of "`from` under these conditions holds at least `n` rows" (the
    /// probe's and the capped count's answer alike).
    fn big_key(&self, from: &str, n: i64) -> String {
        format!("{from}\u{1}{}\u{1}{n}\u{1}{}", self.sql(), self.args.join("\u{1}"))
    }

    /// Counts the matching rows of `from`, at most `cap`.
    async fn count_below(&self, db: &Db, from: &str, cap: i64) -> AppResult<i64> {
        let sql = format!("SELECT COUNT(*) AS c FROM (SELECT 1 AS one {from} WHERE {} LIMIT {cap}) t", self.sql());
        Ok(get(&self.query(sql).fetch_one(db.read()).await?, "c")?)
    }

    /// Counts and fetches one page: `SELECT {cols} {from} WHERE … ORDER BY {order}`.
    pub async fn page<T>(
        &self,
        db: &Db,
        cols: &str,
        from: &str,
        order: &str,
        paging: (i64, i64),
        map: impl Fn(&Row) -> AppResult<T>,
    ) -> AppResult<Page<T>> {
        self.paged(db, cols, from, None, order, paging, map).await
    }

    /// Like [`Where::page`] for big tables: counts and picks the page's keys on `keyed.base`
    /// (the table alone, whose indexes answer without reading rows), then reads only those
    /// rows through `from` (with its joins). A scope of 1,500 cases then costs 1,500 index
    /// entries and 20 row reads instead of 1,500 row reads and a sort.
    #[allow(clippy::too_many_arguments)]
    pub async fn page_keyed<T>(
        &self,
        db: &Db,
        cols: &str,
        from: &str,
        keyed: Keyed<'_>,
        order: &str,
        paging: (i64, i64),
        map: impl Fn(&Row) -> AppResult<T>,
    ) -> AppResult<Page<T>> {
        self.paged(db, cols, from, Some(keyed), order, paging, map).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn paged<T>(
        &self,
        db: &Db,
        cols: &str,
        from: &str,
        keyed: Option<Keyed<'_>>,
        order: &str,
        (page, per): (i64, i64),
        map: impl Fn(&Row) -> AppResult<T>,
    ) -> AppResult<Page<T>> {
        let base = keyed.as_ref().map(|k| k.base).unwrap_or(from);
        let counted = self.count_within(db, base, COUNT_CAP).await?;
        let total_capped = counted.is_none();
        // Few rows: the range index finds them and they are sorted. Many, and dense enough in
        // the order: the engine is made to walk the order and stop at the page (SQLite would
        // take the range and sort it all). On PostgreSQL the hidden range also gives the
        // statement one plan whatever the scope, so it is planned once per connection: the
        // plain range was planned again for every list (0.20 ms of the statement's 0.29 warm;
        // 4,507–4,596 → 6,777–6,805 lists/s).
        let way = match (&keyed, total_capped) {
            (_, false) => Way::Sort,
            // Nothing to hide (a unit's, a grid's queue, a term's postings): the engine picks.
            (Some(_), true) if self.dense.is_empty() => Way::Engine,
            (Some(k), true) if self.walks(db, k, page * per).await? => Way::Walk,
            (Some(_), true) => Way::Sort,
            // No key to measure the scope's density by: SQLite walks (it would read the range
            // and sort it all); PostgreSQL's statistics choose between the two.
            (None, true) if db.backend == super::Backend::Sqlite => Way::Walk,
            (None, true) => Way::Engine,
        };
        let w = if way == Way::Walk { self.sql_dense() } else { self.sql() };
        let sql = page_sql(cols, from, keyed.as_ref(), order, &w, way, (page, per));
        let items = self.query(sql).fetch_all(db.read()).await?.iter().map(map).collect::<AppResult<Vec<_>>>()?;
        let total = counted.unwrap_or(COUNT_CAP);
        Ok(Page { items, total, total_capped, page, per_page: per })
    }
}

/// How a page's rows are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// Walking the key's order (the scope's range hidden from the engine) to the page.
    Walk,
    /// Reading the scope's range whole (few rows, or fewer than a walk would read) and sorting.
    Sort,
    /// As the engine's statistics choose.
    Engine,
}

/// The statement of one page: `w` the conditions (the scope's range hidden when walking).
fn page_sql(
    cols: &str,
    from: &str,
    keyed: Option<&Keyed<'_>>,
    order: &str,
    w: &str,
    way: Way,
    (page, per): (i64, i64),
) -> String {
    let walk = way == Way::Walk;
    // A walk's offset is out of the planner's sight: PostgreSQL, seeing one of 1,180 with a
    // hidden range it guesses at 0.5 % of the table, scanned and sorted the whole table
    // (30 ms at 114,000 cases) instead of walking 1,200 entries (0.2 ms).
    let offset = (page - 1).saturating_mul(per);
    let offset = if walk { format!("(SELECT {offset})") } else { offset.to_string() };
    let window = |order: &str| format!("ORDER BY {order} LIMIT {per} OFFSET {offset}");
    match keyed {
        None => format!("SELECT {cols} {from} WHERE {w} {}", window(order)),
        Some(Keyed { base, key, order: inner }) => {
            let inner = inner.unwrap_or(order);
            let inner = if way == Way::Sort { unindexed(inner) } else { inner.to_string() };
            format!("SELECT {cols} {from} WHERE {key} IN (SELECT {key} {base} WHERE {w} {}) ORDER BY {order}", window(&inner))
        }
    }
}

/// A key order (integer terms, `c.id DESC`) in a form no index gives: the engine then reads
/// the scope's range and sorts it, as decided, whatever its statistics guess. PostgreSQL,
/// guessing a community's range in a 1 M-case megacity at 5,008 rows instead of 128, walked
/// the key's index backwards past 145,000 rows for a page (32–64 ms; 57 lists/s under load).
fn unindexed(order: &str) -> String {
    let term = |t: &str| match t.rsplit_once(' ') {
        Some((e, dir)) if dir.eq_ignore_ascii_case("desc") || dir.eq_ignore_ascii_case("asc") => format!("{e} + 0 {dir}"),
        _ => format!("{t} + 0"),
    };
    order.split(", ").map(term).collect::<Vec<_>>().join(", ")
}

/// The most rows a page of a big scope is walked to in the key order, given `n` matches among
/// the newest [`DENSITY_WINDOW`] keys and the newest key `top`: the walk's length (rows ×
/// window ÷ n) at most `reach` times the scope range's size (n × top ÷ window), or `floor`
/// entries if that is more (on SQLite 1 and [`WALK_MAX`], on PostgreSQL [`PG_WALK_REACH`] and 0).
fn walk_most(n: i64, top: i64, reach: i64, floor: i64) -> i64 {
    (reach * n * top / DENSITY_WINDOW).max(floor) * n / DENSITY_WINDOW
}

/// Where [`Where::page_keyed`] counts and picks a page.
pub struct Keyed<'a> {
    /// `FROM …` of the count and the page's keys (the conditions' tables, nothing more).
    pub base: &'a str,
    /// The key column, the same in `base` and in the full query.
    pub key: &'a str,
    /// The order on `base`, when it is spelled differently there (an index's own column).
    pub order: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut w = Where::new();
        w.under("n.path", "/5_2/").arg("n.kind = ?", "grid").raw("n.retired_at IS NULL").contains(&["a", "b"], "x%");
        assert_eq!(
            w.sql(),
            "n.path >= $1 AND n.path < $2 AND n.kind = $3 AND n.retired_at IS NULL AND (a LIKE $4 ESCAPE '\\' OR b LIKE $4 ESCAPE '\\')"
        );
        assert_eq!(w.args, vec!["/5_2/".to_string(), format!("/5_2/{}", char::MAX), "grid".into(), "%x\\%%".into()]);
        assert_eq!(Where::new().sql(), "1=1");
    }

    #[test]
    fn nested_ranges_keep_the_narrower() {
        let mut w = Where::new();
        w.under("c.p", "/1/").under("c.p", "/1/2/").under("c.p", "/1/");
        assert_eq!(w.sql(), "c.p >= $1 AND c.p < $2");
        assert_eq!(w.args, vec!["/1/2/".to_string(), format!("/1/2/{}", char::MAX)]);
        // Disjoint ranges both stay (nothing matches), as does a range on another column.
        w.under("c.p", "/3/").under("c.q", "/1/2/");
        assert_eq!(w.clauses.len(), 6);
    }

    #[test]
    fn unindexed_orders_keep_their_direction() {
        assert_eq!(unindexed("c.id DESC"), "c.id + 0 DESC");
        assert_eq!(unindexed("t0.case_id DESC, c.id"), "t0.case_id + 0 DESC, c.id + 0");
    }

    #[test]
    fn pages_walk_or_sort_as_decided() {
        let k = Keyed { base: "FROM cases c", key: "c.id", order: None };
        let r = "c.node_path >= $1 AND c.node_path < $2";
        // Decided to take the range: the key's index cannot serve the order, whatever the
        // engine guesses of the range.
        let sorted = page_sql("c.*", "FROM cases c", Some(&k), "c.id DESC", r, Way::Sort, (3, 20));
        assert!(sorted.contains(&format!("WHERE {r} ORDER BY c.id + 0 DESC LIMIT 20 OFFSET 40) ORDER BY c.id DESC")), "{sorted}");
        // Decided to walk: the key's order as it is, the offset out of the planner's sight.
        let walked = page_sql("c.*", "FROM cases c", Some(&k), "c.id DESC", "(c.node_path || '') >= $1", Way::Walk, (3, 20));
        assert!(walked.contains("ORDER BY c.id DESC LIMIT 20 OFFSET (SELECT 40)) ORDER BY c.id DESC"), "{walked}");
        // Left to the engine (a term's postings, a unit's queue): their index may give the order.
        let k = Keyed { base: "FROM case_terms t0", key: "c.id", order: Some("t0.case_id DESC") };
        let engine = page_sql("c.*", "FROM cases c", Some(&k), "c.id DESC", "t0.term = $1", Way::Engine, (1, 20));
        assert!(engine.contains("ORDER BY t0.case_id DESC LIMIT 20 OFFSET 0)"), "{engine}");
    }

    #[test]
    fn big_scopes_walk_only_where_the_walk_is_short() {
        let (m25, m1) = (25_000_000, 1_000_000);
        // A whole county is every case: its pages are walked however deep.
        assert!(walk_most(DENSITY_WINDOW, m25, 1, WALK_MAX) >= 2_000 * 500);
        assert!(walk_most(DENSITY_WINDOW, m1, PG_WALK_REACH, 0) >= m1);
        // A street of a megacity (one case in 343): its first pages are walked, not page 100.
        let street = walk_most(DENSITY_WINDOW / 343, m25, 1, WALK_MAX);
        assert!((200..2_000).contains(&street), "{street}");
        let pg = walk_most(DENSITY_WINDOW / 343, m25, PG_WALK_REACH, 0);
        assert!((street..3 * street + 3).contains(&pg), "{pg}");
        assert!(walk_most(DENSITY_WINDOW / 343, m1, 1, WALK_MAX) < 1_000);
        // At 1 M a street's first page is walked on PostgreSQL, its later ones read by the range.
        let pg = walk_most(DENSITY_WINDOW / 343, m1, PG_WALK_REACH, 0);
        assert!((20..40).contains(&pg), "{pg}");
        // A community (one in 7,000, about one match in the window) is read by its range.
        assert!(walk_most(1, m25, 1, WALK_MAX) < 20 && walk_most(0, m25, 1, WALK_MAX) == 0);
    }

    #[test]
    fn big_scopes_expire_and_stay_bounded() {
        let b = BigScopes::default();
        let t0 = Instant::now();
        assert!(!b.fresh("a", t0));
        b.remember("a".into(), t0);
        assert!(b.fresh("a", t0 + Duration::from_secs(4)));
        assert!(!b.fresh("a", t0 + BIG_FOR), "forgotten after BIG_FOR");
        assert!(!b.fresh("b", t0));
        // Full of fresh keys: emptied rather than grown.
        for i in 0..BIG_MAX {
            b.remember(format!("k{i}"), t0);
        }
        b.remember("z".into(), t0);
        let m = b.0.lock().unwrap();
        assert!(m.len() <= 2 && m.contains_key("z"), "{}", m.len());
    }

    #[test]
    fn paging_bounds() {
        assert_eq!(paging(None, None), (1, 20));
        assert_eq!(paging(Some(0), Some(10_000)), (1, 500));
        assert_eq!(paging(Some(3), Some(EXPORT_MAX)), (3, EXPORT_MAX));
        // The last i64 page used to overflow its offset (a panic in a debug build, page 1 in a
        // release build); it is an empty page far past the data.
        let (page, per) = paging(Some(i64::MAX), Some(500));
        assert!((page - 1).checked_mul(per).is_some() && page > 1_000_000);
    }
}
