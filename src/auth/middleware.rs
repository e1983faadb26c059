//! Resolves the caller once per request and enforces CSRF on state-changing requests.
//!
//! CSRF rule: any non-GET request that rides on the session cookie must carry the session's
//! token (form field `_csrf` or header `x-csrf-token`); a form posted without a session (the
//! login form) must carry the double-submit cookie `linli_pre` in its `_csrf` field. Bearer
//! callers send no cookies and need none.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Principal, Via};
use crate::app::AppState;
use crate::error::AppError;

/// Cookie holding the session token.
pub const SESSION_COOKIE: &str = "linli_session";
/// Cookie for the pre-login double-submit CSRF token.
pub const PRE_COOKIE: &str = "linli_pre";
/// Largest request body accepted (GeoJSON of a whole county fits, and a report with its six
/// photos of up to 5 MB each).
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The caller, if any, as resolved by [`authenticate`].
#[derive(Clone, Debug)]
pub struct Caller(pub Option<Principal>, pub String);

/// Reads one cookie from the request headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The visitor's address: the connection's, or behind a trusted proxy the one it names.
///
/// Behind a proxy every visitor shares its address: thirty wrong lookups by anyone locked
/// every resident out of tracking for an hour. A trusted proxy's `X-Forwarded-For` is read
/// from the right (each proxy appends the address it saw), skipping trusted proxies; what a
/// client wrote itself further left is not believed.
fn client_ip(req: &Request, trusted: &[std::net::IpAddr]) -> String {
    // Canonical: on a dual-stack listener an IPv4 peer arrives as ::ffff:a.b.c.d.
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical());
    let Some(peer) = peer else { return "127.0.0.1".into() };
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let hops: Vec<&str> =
        req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect();
    for hop in hops.into_iter().rev() {
        match hop.trim().parse::<std::net::IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip.to_string(),
            // Nothing left of a hop no proxy wrote is believed.
            Err(_) => break,
        }
    }
    peer.to_string()
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_pairs(body).into_iter().find(|(k, _)| k == name).map(|(_, v)| v).or_else(|| multipart_field(body, name))
}

/// Finds a small text part of a multipart/form-data body (the CSRF token comes first in our forms).
fn multipart_field(body: &[u8], name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let at = text.find(&needle)?;
    let rest = &text[at..];
    let start = rest.find("\r\n\r\n")? + 4;
    let end = rest[start..].find("\r\n")?;
    Some(rest[start..start + end].to_string())
}

/// Minimal application/x-www-form-urlencoded parsing (repeated keys kept in order).
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    let s = String::from_utf8_lossy(body);
    s.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (percent_decode(k), percent_decode(v))).collect()
}

/// Decodes `+` and `%XX` escapes.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.starts_with("application/x-www-form-urlencoded")
                || ct.starts_with("multipart/form-data")
                || ct.starts_with("text/plain")
        })
        .unwrap_or(false)
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: resolve the caller, then check CSRF for unsafe methods.
pub async fn authenticate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let ip = client_ip(&req, &st.cfg.trusted_proxies);
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").map(|t| t.trim().to_string()));
    let from_cookie = bearer.is_none();
    let token = bearer.or_else(|| cookie(req.headers(), SESSION_COOKIE));
    let principal = match token {
        Some(t) if !t.is_empty() => match super::cache::resolve(&st, &t, &ip).await {
            Ok(p) => p,
            Err(e) => return e.into_response(),
        },
        _ => None,
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut req = req;
    if unsafe_method {
        let path = req.uri().path().to_string();
        // Answered before the page routes' own error pages: made pages here for a person's
        // browser.
        let refuse = |e: AppError| {
            if crate::web::is_page(&path) { crate::web::as_page(&path, e.into_response()) } else { e.into_response() }
        };
        let session_csrf = match (&principal, from_cookie) {
            (Some(Principal { via: Via::Session { csrf, .. }, .. }), true) => Some(csrf.clone()),
            _ => None,
        };
        let pre = cookie(req.headers(), PRE_COOKIE);
        // Open311 clients post forms without cookies, and a bearer token is sent by a program,
        // never by a browser on its own: no ambient authority to forge.
        let needs = session_csrf.is_some() || (is_form(&req) && from_cookie && !req.uri().path().starts_with("/open311/"));
        if needs {
            let header_tok = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
            let (parts, body) = req.into_parts();
            let bytes = match crate::web::read_body(body, BODY_LIMIT).await {
                Ok(b) => b,
                Err(e) => return refuse(e),
            };
            let sent = header_tok.or_else(|| form_field(&bytes, "_csrf")).unwrap_or_default();
            let expected = session_csrf.or(pre).unwrap_or_default();
            if expected.is_empty() || !constant_eq(&sent, &expected) {
                // A form sent after its session ended (logged out elsewhere, timed out): to the
                // login page, which leads back to the form, rather than a bare refusal.
                let ended = principal.is_none() && cookie(&parts.headers, SESSION_COOKIE).is_some_and(|c| !c.is_empty());
                return refuse(if ended { AppError::Unauthorized } else { AppError::Csrf });
            }
            req = Request::from_parts(parts, Body::from(bytes));
        }
    }
    req.extensions_mut().insert(Caller(principal, ip));
    next.run(req).await
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Caller>() {
            Some(Caller(Some(p), _)) => Ok(p.clone()),
            _ => Err(AppError::Unauthorized),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned().unwrap_or(Caller(None, "127.0.0.1".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visitor_behind_a_trusted_proxy() {
        let proxy: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        let req = |peer: &str, xff: Option<&str>| {
            let mut r = Request::builder().uri("/");
            if let Some(x) = xff {
                r = r.header("x-forwarded-for", x);
            }
            let mut r = r.body(Body::empty()).unwrap();
            r.extensions_mut().insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 1234)));
            r
        };
        assert_eq!(client_ip(&req("10.0.0.5", Some("1.2.3.4")), &[]), "10.0.0.5", "no proxy trusted");
        assert_eq!(client_ip(&req("10.0.0.5", Some("1.2.3.4")), &[proxy]), "1.2.3.4");
        assert_eq!(
            client_ip(&req("10.0.0.5", Some("9.9.9.9, 1.2.3.4")), &[proxy]),
            "1.2.3.4",
            "a client's own entry is not believed"
        );
        assert_eq!(client_ip(&req("10.0.0.5", Some("1.2.3.4, 10.0.0.5")), &[proxy]), "1.2.3.4", "proxies in a chain skipped");
        assert_eq!(client_ip(&req("10.0.0.5", Some("1.2.3.4, junk")), &[proxy]), "10.0.0.5");
        assert_eq!(client_ip(&req("10.0.0.5", None), &[proxy]), "10.0.0.5");
        assert_eq!(client_ip(&req("8.8.8.8", Some("1.2.3.4")), &[proxy]), "8.8.8.8", "only from the proxy");
        assert_eq!(client_ip(&req("::ffff:10.0.0.5", Some("1.2.3.4")), &[proxy]), "1.2.3.4", "a dual-stack listener's IPv4 peer");
    }

    #[test]
    fn decodes_forms() {
        assert_eq!(percent_decode("a+b%E4%B8%AD"), "a b中");
        assert_eq!(percent_decode("100%"), "100%");
        let pairs = form_pairs(b"_csrf=abc&name=%E8%8A%B1");
        assert_eq!(pairs[0], ("_csrf".into(), "abc".into()));
        assert_eq!(pairs[1].1, "花");
        let mp = b"--X\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\ntok123\r\n--X--\r\n";
        assert_eq!(form_field(mp, "_csrf").as_deref(), Some("tok123"));
    }

    #[test]
    fn reads_cookies() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(header::COOKIE, "a=1; linli_session=tok; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&h, "zz"), None);
    }
}
