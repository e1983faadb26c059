//! Chinese full-text search over case text. Documents are segmented with jieba (search mode,
//! so sub-words are indexed too) plus every single Han character; a query is segmented and
//! every term must match. So 楼道灯 (楼道 + 灯) finds "楼道的灯坏了".

use std::collections::BTreeSet;
use std::sync::OnceLock;

use jieba_rs::Jieba;

use crate::db::list::Where;
use crate::db::rows::{Appendable, Appended, Val};
use crate::db::{Db, Tx, get};
use crate::error::AppResult;

/// jieba's dictionary trimmed to the ~80,000 words with frequency ≥ 20 plus community-work
/// terms (assets/jieba_dict.txt, MIT like jieba): the full 350,000-word dictionary costs ~70 MB
/// of memory for no gain on case text.
const DICT: &str = include_str!("../../assets/jieba_dict.txt");

fn jieba() -> &'static Jieba {
    static J: OnceLock<Jieba> = OnceLock::new();
    J.get_or_init(|| Jieba::with_dict(&mut std::io::BufReader::new(DICT.as_bytes())).expect("the embedded dictionary is valid"))
}

/// Loads the dictionary now rather than on the first search or new case. It takes ~150 ms
/// and ~50 MB, so `serve` leaves it lazy: an idle node stays small.
pub fn warm_up() {
    let _ = jieba();
}

const STOP: &[&str] = &[
    "的", "了", "和", "是", "在", "有", "我", "也", "就", "都", "而", "及", "与", "着", "或", "一个", "没有", "我们", "你", "他",
    "她", "它", "吗", "呢", "吧", "啊",
];

fn is_han(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)
}

fn keep(w: &str) -> bool {
    let w = w.trim();
    !w.is_empty() && !STOP.contains(&w) && w.chars().any(|c| c.is_alphanumeric())
}

/// Terms stored for a document.
pub fn doc_terms(text: &str) -> BTreeSet<String> {
    let text = text.to_lowercase();
    let mut out: BTreeSet<String> =
        jieba().cut_for_search(&text, true).into_iter().filter(|w| keep(w)).map(|w| w.trim().to_string()).collect();
    out.extend(text.chars().filter(|c| is_han(*c)).map(String::from).filter(|w| keep(w)));
    out.retain(|t| t.chars().count() <= 16);
    out
}

/// Terms a query must all match.
pub fn query_terms(q: &str) -> Vec<String> {
    let q = q.to_lowercase();
    let mut out: Vec<String> = jieba().cut(&q, true).into_iter().filter(|w| keep(w)).map(|w| w.trim().to_string()).collect();
    out.sort();
    out.dedup();
    out.truncate(12);
    out
}

/// Stores the terms of a new case (its text does not change afterwards, so there is nothing
/// to replace: `case_terms` is keyed by term first, and a delete by case would scan it).
/// `terms` come from [`doc_terms`], computed before the transaction so that segmentation does
/// not hold the writer.
pub fn index(tx: &mut Tx, case_id: i64, terms: BTreeSet<String>) {
    // Written with the batch's other postings at its end: one statement for all its cases.
    let postings = tx.defer::<Appended<Postings>>();
    for t in terms {
        postings.push(vec![Val::S(t), Val::I(case_id)]);
    }
}

/// Search postings, appended at the end of the write batch (see [`crate::db::Deferred`]).
pub struct Postings;

impl Appendable for Postings {
    const ORDER: u8 = 40;
    const HEAD: &'static str = "INSERT INTO case_terms (term, case_id)";
    const COLS: usize = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(doc: &str, q: &str) -> bool {
        let d = doc_terms(doc);
        let t = query_terms(q);
        !t.is_empty() && t.iter().all(|x| d.contains(x))
    }

    #[test]
    fn segmented_search_finds_what_people_type() {
        assert!(matches("楼道的灯坏了，晚上很黑", "楼道灯"));
        assert!(matches("小区下水道堵塞，污水外溢", "下水道堵了"));
        assert!(matches("楼上装修噪音扰民", "噪音"));
        assert!(!matches("楼道的灯坏了", "下水道"));
        assert!(!matches("路灯不亮", "楼道灯"));
        assert!(query_terms("的了").is_empty());
    }
}

/// Postings (or scope rows) counted at most: enough to tell rare from common.
pub const COUNT_CAP: i64 = 10_000;

/// The terms rarest first, each with its postings counted up to [`COUNT_CAP`], in one query
/// (terms past the cap count as equal; the longer one goes first, single characters last).
pub async fn rarest_first(db: &Db, terms: Vec<String>) -> AppResult<Vec<(String, i64)>> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let cols: Vec<String> = (1..=terms.len())
        .map(|i| {
            format!("(SELECT COUNT(*) FROM (SELECT 1 AS one FROM case_terms WHERE term = ${i} LIMIT {COUNT_CAP}) t{i}) AS n{i}")
        })
        .collect();
    let sql = format!("SELECT {}", cols.join(", "));
    let r = terms.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, t| q.bind(t.clone())).fetch_one(db.read()).await?;
    let mut counted = Vec::with_capacity(terms.len());
    for (i, t) in terms.into_iter().enumerate() {
        counted.push((get::<i64>(&r, &format!("n{}", i + 1))?, std::cmp::Reverse(t.chars().count()), t));
    }
    counted.sort();
    Ok(counted.into_iter().map(|(n, _, t)| (t, n)).collect())
}

/// Adds a search to a case query (`c` = cases) and tells how to run it. Either the rarest
/// term's postings are walked newest first (`t0`, the other terms tested per case): when that
/// term is rare, or when the scope is as common as it; or, for a small scope and only common
/// terms, the scope's cases are walked and every term is tested per case.
pub async fn add_terms(db: &Db, w: &mut Where, scope_from: &str, q: &str) -> AppResult<Plan> {
    add_terms_capped(db, w, scope_from, q, COUNT_CAP).await
}

/// [`add_terms`] with another line between rare and common (for tests on small data).
pub async fn add_terms_capped(db: &Db, w: &mut Where, scope_from: &str, q: &str, cap: i64) -> AppResult<Plan> {
    let mut terms = rarest_first(db, query_terms(q)).await?;
    // A word the query's segmentation made that no document was cut into (场舞 of 广场舞,
    // 常停 of 经常停电) has no postings: its characters, each indexed, stand in for it.
    if terms.iter().any(|(t, n)| *n == 0 && t.chars().count() > 1 && t.chars().all(is_han)) {
        let mut split: Vec<String> = Vec::new();
        for (t, n) in terms {
            if n == 0 && t.chars().count() > 1 && t.chars().all(is_han) {
                split.extend(t.chars().map(String::from).filter(|c| keep(c)));
            } else {
                split.push(t);
            }
        }
        split.sort();
        split.dedup();
        split.truncate(12);
        terms = rarest_first(db, split).await?;
    }
    let Some((_, rarest)) = terms.first() else {
        w.raw("1=0");
        return Ok(Plan::Scope);
    };
    let plan =
        if *rarest < cap.min(COUNT_CAP) || w.count_to(db, scope_from, cap).await? >= cap { Plan::Postings } else { Plan::Scope };
    for (i, (t, _)) in terms.into_iter().enumerate() {
        if i == 0 && plan == Plan::Postings {
            w.arg("t0.term = ?", t);
        } else {
            w.arg("EXISTS (SELECT 1 FROM case_terms t WHERE t.term = ? AND t.case_id = c.id)", t);
        }
    }
    Ok(plan)
}

/// How a search runs (see [`add_terms`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Walk `case_terms t0` for the rarest term, newest first.
    Postings,
    /// Walk the scope's cases.
    Scope,
}
