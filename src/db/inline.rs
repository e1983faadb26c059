//! Arguments written as SQL literals, for PostgreSQL's simple query protocol, which carries
//! several statements in one message (one round trip) but no bound arguments.
//!
//! Why: the writer's transaction owes PostgreSQL the release of the previous request's
//! savepoint and a new one for the next request (see [`super::carry`]); sent with the next
//! request's first statement, as `EXECUTE name(literals)` of a statement prepared by name,
//! they cost no round trip of their own. Each argument is a literal cast to the type sqlx would
//! have bound it as, so the statement means what it means with bound arguments; text is an
//! escape string (`E'…'`, every backslash and quote doubled), whatever the server's
//! `standard_conforming_strings`. Text holding a NUL cannot be sent this way: refused, and
//! the caller binds the arguments as usual instead.

use std::fmt::Write;

use sqlx_core::any::{AnyTypeInfoKind, AnyValueKind};

/// The arguments as the list of literals of an `EXECUTE` (`""` for none); `None` when one
/// cannot be written safely.
pub(crate) fn arguments(args: &[AnyValueKind]) -> Option<String> {
    if args.is_empty() {
        return Some(String::new());
    }
    let mut out = String::from("(");
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        literal(&mut out, v)?;
    }
    out.push(')');
    Some(out)
}

/// The argument types as the list of a `PREPARE` (`""` for none).
pub(crate) fn types(args: &[AnyValueKind]) -> String {
    if args.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = args.iter().map(|v| type_name(kind(v))).collect();
    format!("({})", names.join(", "))
}

fn kind(v: &AnyValueKind) -> AnyTypeInfoKind {
    match v {
        AnyValueKind::Null(k) => *k,
        AnyValueKind::Bool(_) => AnyTypeInfoKind::Bool,
        AnyValueKind::SmallInt(_) => AnyTypeInfoKind::SmallInt,
        AnyValueKind::Integer(_) => AnyTypeInfoKind::Integer,
        AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
        AnyValueKind::Real(_) => AnyTypeInfoKind::Real,
        AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
        AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
        _ => AnyTypeInfoKind::Text,
    }
}

/// Writes one argument as a literal of the type sqlx binds it as.
fn literal(out: &mut String, v: &AnyValueKind) -> Option<()> {
    let _ = match v {
        AnyValueKind::Null(k) => write!(out, "CAST(NULL AS {})", type_name(*k)),
        AnyValueKind::Bool(b) => write!(out, "{}", if *b { "TRUE" } else { "FALSE" }),
        AnyValueKind::SmallInt(n) => write!(out, "CAST({n} AS SMALLINT)"),
        AnyValueKind::Integer(n) => write!(out, "CAST({n} AS INTEGER)"),
        AnyValueKind::BigInt(n) => write!(out, "CAST({n} AS BIGINT)"),
        AnyValueKind::Real(f) => write!(out, "CAST('{}' AS REAL)", float(f64::from(*f))),
        AnyValueKind::Double(f) => write!(out, "CAST('{}' AS DOUBLE PRECISION)", float(*f)),
        AnyValueKind::Text(s) => text(out, s)?,
        AnyValueKind::TextSlice(s) => text(out, s)?,
        AnyValueKind::Blob(b) => write!(out, "CAST(E'\\\\x{}' AS BYTEA)", crate::audit::hex(b)),
        _ => return None,
    };
    Some(())
}

fn text(out: &mut String, s: &str) -> Option<std::fmt::Result> {
    if s.contains('\0') {
        return None;
    }
    out.push_str("CAST(E'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out.push_str("' AS TEXT)");
    Some(Ok(()))
}

/// A float as PostgreSQL reads it (Rust writes infinity as `inf`).
fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        format!("{f:?}")
    }
}

fn type_name(k: AnyTypeInfoKind) -> &'static str {
    match k {
        AnyTypeInfoKind::Bool => "BOOLEAN",
        AnyTypeInfoKind::SmallInt => "SMALLINT",
        AnyTypeInfoKind::Integer => "INTEGER",
        AnyTypeInfoKind::BigInt => "BIGINT",
        AnyTypeInfoKind::Real => "REAL",
        AnyTypeInfoKind::Double => "DOUBLE PRECISION",
        AnyTypeInfoKind::Blob => "BYTEA",
        _ => "TEXT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn t(s: &str) -> AnyValueKind {
        AnyValueKind::Text(Arc::new(s.into()))
    }

    #[test]
    fn arguments_become_literals() {
        let args = [AnyValueKind::BigInt(-7), t("it's \\ '$1' 中文"), AnyValueKind::Null(AnyTypeInfoKind::BigInt)];
        assert_eq!(
            arguments(&args).unwrap(),
            "(CAST(-7 AS BIGINT), CAST(E'it''s \\\\ ''$1'' 中文' AS TEXT), CAST(NULL AS BIGINT))"
        );
        assert_eq!(types(&args), "(BIGINT, TEXT, BIGINT)");
        let blob = arguments(&[AnyValueKind::Blob(Arc::new(vec![0, 255, 16]))]).unwrap();
        assert_eq!(blob, "(CAST(E'\\\\x00ff10' AS BYTEA))");
        let f = [
            AnyValueKind::Double(0.1),
            AnyValueKind::Double(f64::NEG_INFINITY),
            AnyValueKind::Real(2.5),
            AnyValueKind::Bool(false),
        ];
        assert_eq!(
            arguments(&f).unwrap(),
            "(CAST('0.1' AS DOUBLE PRECISION), CAST('-Infinity' AS DOUBLE PRECISION), CAST('2.5' AS REAL), FALSE)"
        );
        assert_eq!(types(&f), "(DOUBLE PRECISION, DOUBLE PRECISION, REAL, BOOLEAN)");
        assert_eq!((arguments(&[]).unwrap(), types(&[])), (String::new(), String::new()));
    }

    #[test]
    fn refuses_a_nul() {
        assert_eq!(arguments(&[t("a\0b")]), None, "a NUL ends the message");
    }
}
