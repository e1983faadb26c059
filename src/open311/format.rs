//! Open311 GeoReport v2 response bodies (wiki.open311.org/GeoReport_v2).
//!
//! The spec's JSON is the "Spark convention" image of its XML: a wrapper element of repeated children
//! becomes an array and an empty element becomes `null`. Each response is therefore built once as a
//! small tree and rendered both ways, so the two formats cannot drift apart; element order follows the
//! spec's examples.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// China has had no daylight saving since 1991, so Asia/Shanghai is exactly UTC+8 and no tz database is needed.
const SHANGHAI: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

const PROLOG: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// Wire format, chosen by the `.xml` / `.json` suffix of the resource path as the spec prescribes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/xml`, the format every GeoReport v2 server must offer.
    Xml,
    /// `application/json`, optional in the spec but what most app clients ask for.
    Json,
}

impl Format {
    /// Splits `requests/12.json` into `(Json, "requests/12")`; `None` if the last segment has no known suffix.
    pub fn from_path_suffix(path: &str) -> Option<(Format, &str)> {
        let (stem, ext) = path.rsplit_once('.')?;
        let format = match ext {
            _ if ext.eq_ignore_ascii_case("xml") => Format::Xml,
            _ if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => return None,
        };
        (!stem.is_empty() && !stem.ends_with('/')).then_some((format, stem))
    }

    /// `Content-Type` header value the spec gives for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "text/xml; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
        }
    }
}

/// One entry of `GET services`.
#[derive(Clone, Debug)]
pub struct Service {
    /// Unique identifier of the request type.
    pub service_code: String,
    /// Human-readable name of the request type.
    pub service_name: String,
    /// Short explanation of the request type.
    pub description: String,
    /// Whether clients must fetch the service definition for extra fields.
    pub metadata: bool,
    /// Spec field `type`: `realtime`, `batch` or `blackbox`.
    pub kind: String,
    /// Comma-separated synonyms that help users find the type.
    pub keywords: String,
    /// Category the type is listed under.
    pub group: String,
}

/// One option of a `singlevaluelist` / `multivaluelist` attribute.
#[derive(Clone, Debug)]
pub struct AttributeValue {
    /// Value submitted back in `attribute[code]`.
    pub key: String,
    /// Label shown to the user.
    pub name: String,
}

/// One extra form field of a service definition.
#[derive(Clone, Debug)]
pub struct Attribute {
    /// `false` for purely informational attributes that take no input.
    pub variable: bool,
    /// Unique identifier, used as `attribute[code]` when posting.
    pub code: String,
    /// `string`, `number`, `datetime`, `text`, `singlevaluelist` or `multivaluelist`.
    pub datatype: String,
    /// Whether a request is rejected without this attribute.
    pub required: bool,
    /// Hint on how to fill the field in.
    pub datatype_description: String,
    /// Display position, 1 first.
    pub order: u32,
    /// Question or instructions shown to the user.
    pub description: String,
    /// Options of list datatypes; empty otherwise.
    pub values: Vec<AttributeValue>,
}

/// Body of `GET services/{service_code}`.
#[derive(Clone, Debug)]
pub struct ServiceDefinition {
    /// The service the attributes belong to.
    pub service_code: String,
    /// Extra form fields in display order.
    pub attributes: Vec<Attribute>,
}

/// One service request as returned by `GET requests`.
#[derive(Clone, Debug)]
pub struct Request {
    /// Unique id of the request.
    pub service_request_id: String,
    /// `open` or `closed`.
    pub status: String,
    /// Why the status is what it is.
    pub status_notes: String,
    /// Name of the request type.
    pub service_name: String,
    /// Code of the request type.
    pub service_code: String,
    /// What the reporter wrote.
    pub description: String,
    /// Office handling the request.
    pub agency_responsible: String,
    /// What will be done about it.
    pub service_notice: String,
    /// When it was reported, epoch milliseconds.
    pub requested_datetime: i64,
    /// Last change (closing time once closed), epoch milliseconds.
    pub updated_datetime: i64,
    /// Promised completion, epoch milliseconds.
    pub expected_datetime: Option<i64>,
    /// Human-readable location.
    pub address: String,
    /// Id in the jurisdiction's address register.
    pub address_id: String,
    /// Postal code.
    pub zipcode: String,
    /// WGS84 latitude.
    pub lat: Option<f64>,
    /// WGS84 longitude.
    pub long: Option<f64>,
    /// Public URL of a photo or other media.
    pub media_url: String,
}

/// Answer to `POST requests`; the spec wants an id or, for batch services, a token, never both.
#[derive(Clone, Debug)]
pub struct Created {
    /// Id of the new request; wins over `token` when both are set.
    pub service_request_id: Option<String>,
    /// Token to exchange for the id later via `GET tokens/{token}`.
    pub token: Option<String>,
    /// What will be done about it.
    pub service_notice: String,
    /// Reporter's account id, if known.
    pub account_id: String,
}

/// One answer of `GET tokens/{token}`.
#[derive(Clone, Debug)]
pub struct TokenAnswer {
    /// The token asked about.
    pub token: String,
    /// Id of the request, once one has been assigned.
    pub service_request_id: Option<String>,
}

/// Body of `discovery.{xml,json}`.
#[derive(Clone, Debug)]
pub struct Discovery {
    /// Last change of this document, epoch milliseconds.
    pub changeset: i64,
    /// How to reach the maintainers.
    pub contact: String,
    /// How to obtain an API key.
    pub key_service: String,
    /// The APIs offered.
    pub endpoints: Vec<Endpoint>,
}

/// One API listed by discovery.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Specification URL, e.g. `http://wiki.open311.org/GeoReport_v2`.
    pub specification: String,
    /// Base URL of the endpoint.
    pub url: String,
    /// Last change of the services or definitions, epoch milliseconds.
    pub changeset: i64,
    /// Spec field `type`: `production` or `test`.
    pub kind: String,
    /// Supported MIME types, e.g. `text/xml`.
    pub formats: Vec<String>,
}

/// One entry of an error response.
#[derive(Clone, Debug)]
pub struct Error {
    /// Error code, usually the HTTP status.
    pub code: u16,
    /// Message meant for the end user.
    pub description: String,
}

/// Response tree shared by both renderings; empty text stands for "absent" as in the spec's examples.
enum Node<'a> {
    Text(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Float(Option<f64>),
    Obj(Vec<(&'static str, Node<'a>)>),
    List(&'static str, Vec<Node<'a>>),
}

fn text(s: &str) -> Node<'_> {
    Node::Text(Cow::Borrowed(s))
}

fn opt_text(s: Option<&str>) -> Node<'_> {
    text(s.unwrap_or_default())
}

fn time(ms: i64) -> Node<'static> {
    Node::Text(Cow::Owned(iso8601(ms)))
}

fn render(f: Format, root: &str, node: &Node) -> String {
    let mut out = String::new();
    match f {
        Format::Xml => {
            out.push_str(PROLOG);
            xml_node(&mut out, root, node);
        }
        Format::Json => json_node(&mut out, node),
    }
    out
}

fn xml_node(out: &mut String, name: &str, node: &Node) {
    let _ = write!(out, "<{name}>");
    match node {
        Node::Text(s) => xml_escape(out, s),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Int(i) => _ = write!(out, "{i}"),
        Node::Float(f) => {
            // Display never uses exponents, and NaN/inf are meaningless as coordinates.
            if let Some(f) = f.filter(|f| f.is_finite()) {
                _ = write!(out, "{f}");
            }
        }
        Node::Obj(fields) => fields.iter().for_each(|(k, v)| xml_node(out, k, v)),
        Node::List(item, items) => items.iter().for_each(|v| xml_node(out, item, v)),
    }
    let _ = write!(out, "</{name}>");
}

fn xml_escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // One stray control character pasted into a report would make the whole document
            // ill-formed for every client, so characters XML 1.0 forbids are dropped.
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

fn json_node(out: &mut String, node: &Node) {
    match node {
        Node::Text(s) if s.is_empty() => out.push_str("null"),
        Node::Text(s) => out.push_str(&serde_json::Value::from(s.as_ref()).to_string()),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Int(i) => _ = write!(out, "{i}"),
        Node::Float(f) => match f.and_then(serde_json::Number::from_f64) {
            Some(n) => _ = write!(out, "{n}"),
            None => out.push_str("null"),
        },
        Node::Obj(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                let _ = write!(out, "{}\"{k}\":", if i == 0 { "" } else { "," });
                json_node(out, v);
            }
            out.push('}');
        }
        Node::List(_, items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_node(out, v);
            }
            out.push(']');
        }
    }
}

/// `GET services`: `<services><service>…` or a JSON array.
pub fn services(f: Format, list: &[Service]) -> String {
    let items = list.iter().map(|s| {
        Node::Obj(vec![
            ("service_code", text(&s.service_code)),
            ("service_name", text(&s.service_name)),
            ("description", text(&s.description)),
            ("metadata", Node::Bool(s.metadata)),
            ("type", text(&s.kind)),
            ("keywords", text(&s.keywords)),
            ("group", text(&s.group)),
        ])
    });
    render(f, "services", &Node::List("service", items.collect()))
}

/// `GET services/{code}`: `<service_definition>` or a JSON object.
pub fn service_definition(f: Format, def: &ServiceDefinition) -> String {
    let attributes = def.attributes.iter().map(|a| {
        let values = a.values.iter().map(|v| Node::Obj(vec![("key", text(&v.key)), ("name", text(&v.name))]));
        Node::Obj(vec![
            ("variable", Node::Bool(a.variable)),
            ("code", text(&a.code)),
            ("datatype", text(&a.datatype)),
            ("required", Node::Bool(a.required)),
            ("datatype_description", text(&a.datatype_description)),
            ("order", Node::Int(i64::from(a.order))),
            ("description", text(&a.description)),
            ("values", Node::List("value", values.collect())),
        ])
    });
    let node =
        Node::Obj(vec![("service_code", text(&def.service_code)), ("attributes", Node::List("attribute", attributes.collect()))]);
    render(f, "service_definition", &node)
}

/// `GET requests` and `GET requests/{id}`: `<service_requests><request>…` or a JSON array.
pub fn requests(f: Format, list: &[Request]) -> String {
    let items = list.iter().map(|r| {
        Node::Obj(vec![
            ("service_request_id", text(&r.service_request_id)),
            ("status", text(&r.status)),
            ("status_notes", text(&r.status_notes)),
            ("service_name", text(&r.service_name)),
            ("service_code", text(&r.service_code)),
            ("description", text(&r.description)),
            ("agency_responsible", text(&r.agency_responsible)),
            ("service_notice", text(&r.service_notice)),
            ("requested_datetime", time(r.requested_datetime)),
            ("updated_datetime", time(r.updated_datetime)),
            ("expected_datetime", r.expected_datetime.map_or(text(""), time)),
            ("address", text(&r.address)),
            ("address_id", text(&r.address_id)),
            ("zipcode", text(&r.zipcode)),
            ("lat", Node::Float(r.lat)),
            ("long", Node::Float(r.long)),
            ("media_url", text(&r.media_url)),
        ])
    });
    render(f, "service_requests", &Node::List("request", items.collect()))
}

/// `POST requests` answer: `<service_requests><request><service_request_id>…` (or `<token>`), or a JSON array.
pub fn created(f: Format, list: &[Created]) -> String {
    let items = list.iter().map(|c| {
        let id = match (&c.service_request_id, &c.token) {
            (None, Some(token)) => ("token", text(token)),
            (id, _) => ("service_request_id", opt_text(id.as_deref())),
        };
        Node::Obj(vec![id, ("service_notice", text(&c.service_notice)), ("account_id", text(&c.account_id))])
    });
    render(f, "service_requests", &Node::List("request", items.collect()))
}

/// `GET tokens/{token}`: `<service_requests><request><service_request_id/><token/>…` or a JSON array.
pub fn tokens(f: Format, list: &[TokenAnswer]) -> String {
    let items = list
        .iter()
        .map(|t| Node::Obj(vec![("service_request_id", opt_text(t.service_request_id.as_deref())), ("token", text(&t.token))]));
    render(f, "service_requests", &Node::List("request", items.collect()))
}

/// Service discovery document: `<discovery>` or a JSON object.
pub fn discovery(f: Format, d: &Discovery) -> String {
    let endpoints = d.endpoints.iter().map(|e| {
        Node::Obj(vec![
            ("specification", text(&e.specification)),
            ("url", text(&e.url)),
            ("changeset", time(e.changeset)),
            ("type", text(&e.kind)),
            ("formats", Node::List("format", e.formats.iter().map(|m| text(m)).collect())),
        ])
    });
    let node = Node::Obj(vec![
        ("changeset", time(d.changeset)),
        ("contact", text(&d.contact)),
        ("key_service", text(&d.key_service)),
        ("endpoints", Node::List("endpoint", endpoints.collect())),
    ]);
    render(f, "discovery", &node)
}

/// Error body: `<errors><error><code>…` or `[{"code":…,"description":…}]`.
pub fn errors(f: Format, list: &[Error]) -> String {
    let items =
        list.iter().map(|e| Node::Obj(vec![("code", Node::Int(i64::from(e.code))), ("description", text(&e.description))]));
    render(f, "errors", &Node::List("error", items.collect()))
}

/// Epoch milliseconds as W3C/ISO 8601 in Beijing time, e.g. `2026-11-28T10:05:00+08:00`; empty if out of range.
pub fn iso8601(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&SHANGHAI).format("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

/// Parses `start_date`-style values: RFC 3339 with `Z` or an offset, or zone-less `YYYY-MM-DD[THH:MM[:SS]]`
/// taken as Beijing time, so a bare date means local midnight.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    // A `+` left unencoded in a query string arrives as a space after form decoding.
    let repaired;
    let s = match s.len().checked_sub(6) {
        Some(i) if s.as_bytes()[i] == b' ' && s.as_bytes()[i + 3] == b':' => {
            repaired = format!("{}+{}", &s[..i], &s[i + 1..]);
            &repaired
        }
        _ => s,
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN)))
        .ok()?;
    SHANGHAI.from_local_datetime(&local).single().map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Format::{Json, Xml};

    /// Compares both renderings with hand-written expectations and checks the JSON's keys against the spec's.
    fn check(xml: String, json: String, want_xml: &str, want_json: &str, keys: &str) {
        assert_eq!(xml, format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{want_xml}"));
        assert_eq!(json, want_json);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let got: Vec<&String> = v.get(0).unwrap_or(&v).as_object().unwrap().keys().collect();
        let mut want: Vec<&str> = keys.split(' ').collect();
        want.sort_unstable();
        assert_eq!(got, want);
    }

    fn service(name: &str) -> Service {
        let s = |v: &str| v.to_string();
        Service {
            service_code: s("001"),
            service_name: s(name),
            description: s("Cans & bins"),
            metadata: true,
            kind: s("realtime"),
            keywords: s("垃圾,环卫"),
            group: s("环境卫生"),
        }
    }

    fn request() -> Request {
        let s = |v: &str| v.to_string();
        Request {
            service_request_id: s("638344"),
            status: s("closed"),
            status_notes: s("重复上报"),
            service_name: s("路灯不亮"),
            service_code: s("006"),
            description: s(""),
            agency_responsible: s(""),
            service_notice: s(""),
            requested_datetime: 1_795_831_500_000,
            updated_datetime: 1_796_031_015_000,
            expected_datetime: None,
            address: s("幸福路 12 号"),
            address_id: s("545483"),
            zipcode: s("200000"),
            lat: Some(31.2304),
            long: Some(121.4737),
            media_url: s(""),
        }
    }

    #[test]
    fn services_exact() {
        let s = [service("垃圾桶满溢")];
        check(
            services(Xml, &s),
            services(Json, &s),
            "<services><service><service_code>001</service_code><service_name>垃圾桶满溢</service_name>\
             <description>Cans &amp; bins</description><metadata>true</metadata><type>realtime</type>\
             <keywords>垃圾,环卫</keywords><group>环境卫生</group></service></services>",
            r#"[{"service_code":"001","service_name":"垃圾桶满溢","description":"Cans & bins","metadata":true,"type":"realtime","keywords":"垃圾,环卫","group":"环境卫生"}]"#,
            "service_code service_name description metadata type keywords group",
        );
        assert_eq!(services(Json, &[]), "[]");
    }

    #[test]
    fn service_definition_exact() {
        let values = vec![AttributeValue { key: "123".into(), name: "Ford".into() }];
        let attribute = Attribute {
            variable: true,
            code: "WHISHETN".into(),
            datatype: "singlevaluelist".into(),
            required: true,
            datatype_description: String::new(),
            order: 1,
            description: "品牌？".into(),
            values,
        };
        let def = ServiceDefinition { service_code: "DMV66".into(), attributes: vec![attribute] };
        check(
            service_definition(Xml, &def),
            service_definition(Json, &def),
            "<service_definition><service_code>DMV66</service_code><attributes><attribute><variable>true</variable>\
             <code>WHISHETN</code><datatype>singlevaluelist</datatype><required>true</required>\
             <datatype_description></datatype_description><order>1</order><description>品牌？</description>\
             <values><value><key>123</key><name>Ford</name></value></values></attribute></attributes></service_definition>",
            r#"{"service_code":"DMV66","attributes":[{"variable":true,"code":"WHISHETN","datatype":"singlevaluelist","required":true,"datatype_description":null,"order":1,"description":"品牌？","values":[{"key":"123","name":"Ford"}]}]}"#,
            "service_code attributes",
        );
    }

    #[test]
    fn requests_exact() {
        check(
            requests(Xml, &[request()]),
            requests(Json, &[request()]),
            "<service_requests><request><service_request_id>638344</service_request_id><status>closed</status>\
             <status_notes>重复上报</status_notes><service_name>路灯不亮</service_name><service_code>006</service_code>\
             <description></description><agency_responsible></agency_responsible><service_notice></service_notice>\
             <requested_datetime>2026-11-28T10:05:00+08:00</requested_datetime>\
             <updated_datetime>2026-11-30T17:30:15+08:00</updated_datetime><expected_datetime></expected_datetime>\
             <address>幸福路 12 号</address><address_id>545483</address_id><zipcode>200000</zipcode>\
             <lat>31.2304</lat><long>121.4737</long><media_url></media_url></request></service_requests>",
            r#"[{"service_request_id":"638344","status":"closed","status_notes":"重复上报","service_name":"路灯不亮","service_code":"006","description":null,"agency_responsible":null,"service_notice":null,"requested_datetime":"2026-11-28T10:05:00+08:00","updated_datetime":"2026-11-30T17:30:15+08:00","expected_datetime":null,"address":"幸福路 12 号","address_id":"545483","zipcode":"200000","lat":31.2304,"long":121.4737,"media_url":null}]"#,
            "service_request_id status status_notes service_name service_code description agency_responsible service_notice \
             requested_datetime updated_datetime expected_datetime address address_id zipcode lat long media_url",
        );
        let r = Request { expected_datetime: Some(1_795_795_200_000), lat: None, long: Some(f64::NAN), ..request() };
        let xml = requests(Xml, std::slice::from_ref(&r));
        assert!(xml.contains("<expected_datetime>2026-11-28T00:00:00+08:00</expected_datetime>"), "{xml}");
        assert!(xml.contains("<lat></lat><long></long>"), "{xml}");
        assert!(requests(Json, &[r]).contains(r#""expected_datetime":"2026-11-28T00:00:00+08:00","#));
    }

    #[test]
    fn created_and_tokens_exact() {
        let id = [Created {
            service_request_id: Some("29".into()),
            token: None,
            service_notice: "24 小时内处理".into(),
            account_id: "".into(),
        }];
        check(
            created(Xml, &id),
            created(Json, &id),
            "<service_requests><request><service_request_id>29</service_request_id><service_notice>24 小时内处理</service_notice>\
             <account_id></account_id></request></service_requests>",
            r#"[{"service_request_id":"29","service_notice":"24 小时内处理","account_id":null}]"#,
            "service_request_id service_notice account_id",
        );
        let batch =
            [Created { service_request_id: None, token: Some("T-1".into()), service_notice: "".into(), account_id: "u7".into() }];
        check(
            created(Xml, &batch),
            created(Json, &batch),
            "<service_requests><request><token>T-1</token><service_notice></service_notice><account_id>u7</account_id></request></service_requests>",
            r#"[{"token":"T-1","service_notice":null,"account_id":"u7"}]"#,
            "token service_notice account_id",
        );
        let t = [
            TokenAnswer { token: "T-1".into(), service_request_id: Some("29".into()) },
            TokenAnswer { token: "T-2".into(), service_request_id: None },
        ];
        check(
            tokens(Xml, &t),
            tokens(Json, &t),
            "<service_requests><request><service_request_id>29</service_request_id><token>T-1</token></request>\
             <request><service_request_id></service_request_id><token>T-2</token></request></service_requests>",
            r#"[{"service_request_id":"29","token":"T-1"},{"service_request_id":null,"token":"T-2"}]"#,
            "service_request_id token",
        );
    }

    #[test]
    fn discovery_and_errors_exact() {
        let endpoint = Endpoint {
            specification: "http://wiki.open311.org/GeoReport_v2".into(),
            url: "https://linli.example/open311/v2".into(),
            changeset: 1_795_795_200_000,
            kind: "production".into(),
            formats: vec!["text/xml".into(), "application/json".into()],
        };
        let d = Discovery {
            changeset: 1_795_831_500_000,
            contact: "联系 api@linli.example".into(),
            key_service: "无需密钥".into(),
            endpoints: vec![endpoint],
        };
        check(
            discovery(Xml, &d),
            discovery(Json, &d),
            "<discovery><changeset>2026-11-28T10:05:00+08:00</changeset><contact>联系 api@linli.example</contact>\
             <key_service>无需密钥</key_service><endpoints><endpoint><specification>http://wiki.open311.org/GeoReport_v2</specification>\
             <url>https://linli.example/open311/v2</url><changeset>2026-11-28T00:00:00+08:00</changeset><type>production</type>\
             <formats><format>text/xml</format><format>application/json</format></formats></endpoint></endpoints></discovery>",
            r#"{"changeset":"2026-11-28T10:05:00+08:00","contact":"联系 api@linli.example","key_service":"无需密钥","endpoints":[{"specification":"http://wiki.open311.org/GeoReport_v2","url":"https://linli.example/open311/v2","changeset":"2026-11-28T00:00:00+08:00","type":"production","formats":["text/xml","application/json"]}]}"#,
            "changeset contact key_service endpoints",
        );
        let e = [Error { code: 400, description: "缺少 service_code".into() }];
        check(
            errors(Xml, &e),
            errors(Json, &e),
            "<errors><error><code>400</code><description>缺少 service_code</description></error></errors>",
            r#"[{"code":400,"description":"缺少 service_code"}]"#,
            "code description",
        );
    }

    #[test]
    fn escaping_and_chinese() {
        let s = [service("<&>\"'\u{1}社区")];
        let xml = services(Xml, &s);
        assert!(xml.contains("<service_name>&lt;&amp;&gt;&quot;&apos;社区</service_name>"), "{xml}");
        let json: serde_json::Value = serde_json::from_str(&services(Json, &s)).unwrap();
        assert_eq!(json[0]["service_name"], "<&>\"'\u{1}社区");
    }

    #[test]
    fn iso8601_round_trip() {
        assert_eq!(iso8601(1_795_831_500_000), "2026-11-28T10:05:00+08:00");
        assert_eq!(iso8601(i64::MAX), "");
        for ms in [0, 1_795_831_500_000, -86_400_000, 1_796_031_015_000] {
            assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms));
        }
        for ok in [
            "2026-11-28T02:05:00Z",
            "2026-11-28T10:05:00+08:00",
            "2026-11-28T10:05:00 08:00",
            "2026-11-27T21:05:00-05:00",
            "2026-11-28T10:05",
        ] {
            assert_eq!(parse_iso8601(ok), Some(1_795_831_500_000), "{ok}");
        }
        assert_eq!(parse_iso8601("2026-11-28"), Some(1_795_795_200_000));
        for bad in ["", "2026-13-01", "yesterday", "2026-11-28T25:00:00Z"] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn path_suffix_and_content_type() {
        assert_eq!(Format::from_path_suffix("requests.json"), Some((Json, "requests")));
        assert_eq!(Format::from_path_suffix("requests/12.xml"), Some((Xml, "requests/12")));
        assert_eq!(Format::from_path_suffix("services"), None);
        assert_eq!(Format::from_path_suffix("discovery.xml"), Some((Xml, "discovery")));
        for none in ["v2.1/services", "requests/.json", "requests.csv"] {
            assert_eq!(Format::from_path_suffix(none), None, "{none}");
        }
        assert_eq!(Xml.content_type(), "text/xml; charset=utf-8");
        assert_eq!(Json.content_type(), "application/json; charset=utf-8");
    }
}
