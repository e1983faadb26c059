//! Chinese full-text search over case text. Documents are segmented with jieba (search mode,
//! so sub-words are indexed too) plus every single Han character; a query is segmented and
//! every term must match. So 楼道灯 (楼道 + 灯) finds "楼道的灯坏了".

use std::collections::BTreeSet;
use std::sync::OnceLock;

use jieba_rs::Jieba;

use crate::db::Tx;
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
pub async fn index(tx: &mut Tx, case_id: i64, terms: BTreeSet<String>) -> AppResult<()> {
    let terms: Vec<String> = terms.into_iter().collect();
    if terms.is_empty() {
        return Ok(());
    }
    // One statement for all terms: a round trip per term would dominate case creation.
    let values: Vec<String> = (0..terms.len()).map(|i| format!("(${}, ${})", i + 2, 1)).collect();
    let sql = format!("INSERT INTO case_terms (term, case_id) VALUES {}", values.join(", "));
    let q = terms.into_iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(case_id), |q, t| q.bind(t));
    q.execute(&mut **tx).await?;
    Ok(())
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
