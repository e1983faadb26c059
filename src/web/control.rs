//! Control characters refused at the edge, before any handler sees the request.
//!
//! Why here, once: text reaches the database from dozens of forms, JSON bodies and query
//! strings, and PostgreSQL refuses a NUL in text outright — an answer of 500, and for a row
//! written at the end of a group-commit batch (a new case's address, a step's note) the failure
//! of every request in that batch. The other control characters (ESC sequences, bells) are no
//! one's data either: they show as garbage on pages and in Excel exports. A tab or a line break
//! is kept (descriptions, notes); short fields refuse those too, in their own checks
//! ([`crate::ident::has_control`]).
//!
//! Every query string, and every body but a multipart form's (read as JSON and as a form,
//! whatever type it says it is), is checked here and refused with a 422 naming each field.
//! Multipart forms (photos beside text) are read by their handlers, which check their text
//! fields with [`crate::ident::stray_control`]. Open311's refusals are in its
//! own format.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::auth::middleware::{BODY_LIMIT, form_pairs};
use crate::error::{AppError, FieldErrors};
use crate::ident::{STRAY_CONTROL, stray_control};

/// Middleware: refuses a request whose path, query string or body (a multipart form's aside)
/// holds a control character other than a tab or a line break.
pub async fn refuse_controls(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let open311 = path.starts_with("/open311/");
    let refuse = |e: AppError| match () {
        _ if open311 => crate::open311::refusal(&path, e),
        _ if super::is_page(&path) => super::as_page(&path, e.into_response()),
        _ => e.into_response(),
    };
    if escaped_control(path.as_bytes()) {
        return refuse(AppError::BadRequest(format!("链接中{STRAY_CONTROL}")));
    }
    if let Some(q) = req.uri().query()
        && let Err(e) = refused(pair_fields(q.as_bytes()))
    {
        return refuse(e);
    }
    // Any body but a multipart form's, whatever type it says it is: the JSON extractors and
    // the form readers (`form_pairs`, Open311's) read what comes, under any type or none (a
    // reviewer sent a NUL as text/plain and with no type at all).
    let multipart =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.starts_with("multipart/"));
    if multipart || matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    // Open311's own limit, answered in its format (its handler would read no further).
    let limit = if open311 { crate::open311::POST_LIMIT } else { BODY_LIMIT };
    let bytes = match super::read_body(body, limit).await {
        Ok(b) => b,
        Err(e) => return refuse(e),
    };
    // A workbook sent to an import (its handler reads it as a file, cell by cell, and refuses
    // such cells itself) is no text to read as a form.
    let file = path.ends_with("/import") && std::str::from_utf8(&bytes).is_err();
    if let Err(e) = refused(if file { Vec::new() } else { body_fields(&bytes) }) {
        return refuse(e);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The fields of a body holding a stray control character, read both ways its readers may
/// read it: as JSON (when it is) and as a form, decoded as loosely as `form_pairs` decodes.
/// (JSON whose text holds a `%00`-like escape beside an `=` is refused: no one's data.)
fn body_fields(b: &[u8]) -> Vec<String> {
    let mut out = json_fields(b);
    for f in pair_fields(b) {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

fn refused(fields: Vec<String>) -> Result<(), AppError> {
    let mut errs = FieldErrors::default();
    for f in fields {
        errs.add(&f, STRAY_CONTROL);
    }
    errs.finish()
}

/// Whether urlencoded text may hold a control character: an escape `%00`–`%1F`, `%7F`, a C1
/// character (`%C2%80`–`%C2%9F`) or such a byte as it is. Checked first, so that a normal
/// request is not decoded twice.
fn escaped_control(b: &[u8]) -> bool {
    let hex = |i: usize| b.get(i).map(u8::to_ascii_uppercase);
    (0..b.len()).any(|i| match b[i] {
        b'%' => match (hex(i + 1), hex(i + 2)) {
            (Some(b'0' | b'1'), Some(_)) => true,
            (Some(b'7'), Some(b'F')) => true,
            (Some(b'C'), Some(b'2')) => hex(i + 3) == Some(b'%') && matches!(hex(i + 4), Some(b'8' | b'9')),
            _ => false,
        },
        0xC2 => matches!(b.get(i + 1), Some(0x80..=0x9F)),
        c => c < 0x20 || c == 0x7F,
    })
}

/// The fields of urlencoded text (a form body or a query string) holding a stray control
/// character, by name.
fn pair_fields(b: &[u8]) -> Vec<String> {
    if !escaped_control(b) {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for (k, v) in form_pairs(b) {
        let bad_key = stray_control(&k);
        if !bad_key && !stray_control(&v) {
            continue;
        }
        // A name fit to show.
        let name = if bad_key { k.chars().filter(|c| !c.is_control()).collect() } else { k };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Whether a JSON text may hold a control character: an escape `\u0000`–`\u001F` or
/// `\u007F`–`\u009F` (the ones JSON needs for a tab or a line break are among them, and are
/// let through below), `\b`, `\f`, or a raw DEL or C1 character.
fn json_candidate(b: &[u8]) -> bool {
    (0..b.len()).any(|i| match b[i] {
        b'\\' => match b.get(i + 1) {
            Some(b'b' | b'f') => true,
            Some(b'u') => {
                let d = |k: usize| b.get(i + k).map(u8::to_ascii_uppercase);
                d(2) == Some(b'0')
                    && d(3) == Some(b'0')
                    && (matches!(d(4), Some(b'0' | b'1' | b'8' | b'9')) || (d(4) == Some(b'7') && d(5) == Some(b'F')))
            }
            _ => false,
        },
        0xC2 => matches!(b.get(i + 1), Some(0x80..=0x9F)),
        c => c == 0x7F,
    })
}

/// The fields of a JSON body holding a stray control character, by path (`note`,
/// `attrs.floor`, `items[2].name`). A body that is not JSON is left to its handler's own
/// message.
fn json_fields(b: &[u8]) -> Vec<String> {
    if !json_candidate(b) {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_slice::<Value>(b) else { return Vec::new() };
    let mut out = Vec::new();
    walk(&v, String::new(), &mut out);
    out
}

fn walk(v: &Value, at: String, out: &mut Vec<String>) {
    let here = |at: &str| if at.is_empty() { "body".to_string() } else { at.to_string() };
    match v {
        Value::String(s) if stray_control(s) => out.push(here(&at)),
        Value::Array(xs) => {
            for (i, x) in xs.iter().enumerate() {
                walk(x, format!("{at}[{i}]"), out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                let key: String = k.chars().filter(|c| !c.is_control()).collect();
                let next = if at.is_empty() { key } else { format!("{at}.{key}") };
                if stray_control(k) {
                    out.push(next.clone());
                }
                walk(x, next, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_found_by_path() {
        assert!(json_fields(br#"{"note":"ok\n\ttab","title":"\u4e2d\u6587"}"#).is_empty());
        assert_eq!(json_fields(br#"{"address":"3\u0000x","note":"a\u001b[2J"}"#), ["address", "note"]);
        assert_eq!(json_fields(br#"{"attrs":{"floor":"\u007f"},"xs":[{"n":"\u0085"}]}"#), ["attrs.floor", "xs[0].n"]);
        assert_eq!(json_fields(b"{\"a\":\"\\b\"}"), ["a"]);
        // A raw C1 character (U+0085 in UTF-8), not escaped.
        assert_eq!(json_fields("{\"a\":\"x\u{85}\"}".as_bytes()), ["a"]);
        // An escaped backslash before "u0000" is text, not a NUL.
        assert!(json_fields(br#"{"a":"\\u0000"}"#).is_empty());
        assert!(json_fields(b"not json \\u0000").is_empty());
    }

    #[test]
    fn urlencoded_fields_found_by_name() {
        assert!(pair_fields(b"q=%E4%B8%AD&note=a%0Ab%09c%0D").is_empty());
        assert_eq!(pair_fields(b"q=a%00b&node=52%1b&ok=1"), ["q", "node"]);
        assert_eq!(pair_fields(b"n=%C2%85&m=%7f"), ["n", "m"]);
        // A middle dot (U+00B7, %C2%B7) in a name is no control character.
        assert!(pair_fields("name=%E5%BC%A0%C2%B7%E4%B8%89&raw=·".as_bytes()).is_empty());
    }
}
