//! GeoJSON (RFC 7946) import and export of polygons. Parsing is lenient
//! about wrappers (Feature, FeatureCollection) but strict about geometry, and
//! never validates: callers decide when to run `validate`.

use serde_json::{Map, Value};

use super::{GeoError, Point, Polygon};

fn bad(msg: &str) -> GeoError {
    GeoError::BadGeoJson(msg.to_owned())
}

fn object(v: &Value) -> Result<&Map<String, Value>, GeoError> {
    v.as_object().ok_or_else(|| bad("不是 JSON 对象"))
}

fn type_of(obj: &Map<String, Value>) -> Result<&str, GeoError> {
    match obj.get("type") {
        Some(Value::String(t)) => Ok(t),
        Some(_) => Err(bad("type 字段必须是字符串")),
        None => Err(bad("缺少 type 字段")),
    }
}

fn is_geometry_type(t: &str) -> bool {
    matches!(t, "Point" | "MultiPoint" | "LineString" | "MultiLineString" | "Polygon" | "MultiPolygon" | "GeometryCollection")
}

fn position(v: &Value) -> Result<Point, GeoError> {
    let arr = v.as_array().ok_or_else(|| bad("坐标点必须是 [经度, 纬度] 数组"))?;
    if arr.len() < 2 {
        return Err(bad("坐标点至少需要经度和纬度两个数值"));
    }
    match (arr[0].as_f64(), arr[1].as_f64()) {
        (Some(lng), Some(lat)) => Ok(Point { lng, lat }),
        _ => Err(bad("坐标必须是数字")),
    }
}

fn ring(v: &Value) -> Result<Vec<Point>, GeoError> {
    v.as_array().ok_or_else(|| bad("多边形的每个环必须是坐标点数组"))?.iter().map(position).collect()
}

fn polygon_geometry(obj: &Map<String, Value>) -> Result<Polygon, GeoError> {
    let t = type_of(obj)?;
    if t != "Polygon" {
        return Err(if is_geometry_type(t) {
            GeoError::NotPolygon
        } else {
            GeoError::BadGeoJson(format!("未知的几何类型 {t}"))
        });
    }
    let rings = obj
        .get("coordinates")
        .ok_or_else(|| bad("缺少 coordinates 字段"))?
        .as_array()
        .ok_or_else(|| bad("coordinates 必须是数组"))?;
    let Some((first, rest)) = rings.split_first() else {
        return Err(bad("coordinates 不能为空"));
    };
    Ok(Polygon { exterior: ring(first)?, holes: rest.iter().map(ring).collect::<Result<_, _>>()? })
}

/// Positions a submitted polygon may have, all rings together: far more than a drawn grid or
/// community boundary needs, and few enough that checking it (simple, inside its community,
/// apart from its neighbours; work that grows with the square of the positions) takes
/// milliseconds. Polygons already stored are read whatever their size.
pub const MAX_POINTS: usize = 2_000;

/// [`polygon_from_geojson`] for a submitted boundary: refused unread past [`MAX_POINTS`].
pub fn polygon_from_input(v: &Value) -> Result<Polygon, GeoError> {
    let geometry = if v.get("type").and_then(Value::as_str) == Some("Feature") { v.get("geometry") } else { Some(v) };
    let rings = geometry.and_then(|g| g.get("coordinates")).and_then(Value::as_array);
    let positions: usize = rings.map_or(0, |rs| rs.iter().map(|r| r.as_array().map_or(0, Vec::len)).sum());
    if positions > MAX_POINTS {
        return Err(GeoError::TooManyPoints(MAX_POINTS));
    }
    polygon_from_geojson(v)
}

/// Parses a Polygon geometry, or a Feature whose geometry is a Polygon.
/// Positions are `[lng, lat]`; altitude and other extras are ignored.
pub fn polygon_from_geojson(v: &Value) -> Result<Polygon, GeoError> {
    let obj = object(v)?;
    if type_of(obj)? == "Feature" {
        return match obj.get("geometry") {
            Some(Value::Object(g)) => polygon_geometry(g),
            Some(Value::Null) | None => Err(bad("要素缺少 geometry")),
            Some(_) => Err(bad("geometry 必须是对象")),
        };
    }
    polygon_geometry(obj)
}

fn round7(x: f64) -> Value {
    Value::from((x * 1e7).round() / 1e7)
}

/// Polygon geometry object; coordinates rounded to 7 decimals (~1 cm),
/// which is far below drawing accuracy and keeps exports compact.
pub fn polygon_to_geojson(p: &Polygon) -> Value {
    let ring = |r: &Vec<Point>| Value::Array(r.iter().map(|q| Value::Array(vec![round7(q.lng), round7(q.lat)])).collect());
    let coords = std::iter::once(&p.exterior).chain(&p.holes).map(ring);
    let mut obj = Map::new();
    obj.insert("type".into(), Value::from("Polygon"));
    obj.insert("coordinates".into(), Value::Array(coords.collect()));
    Value::Object(obj)
}

/// A Feature wrapping `p` with the given properties.
pub fn feature(props: Value, p: &Polygon) -> Value {
    let mut obj = Map::new();
    obj.insert("type".into(), Value::from("Feature"));
    obj.insert("properties".into(), props);
    obj.insert("geometry".into(), polygon_to_geojson(p));
    Value::Object(obj)
}

/// A FeatureCollection of already-built features.
pub fn feature_collection(features: Vec<Value>) -> Value {
    let mut obj = Map::new();
    obj.insert("type".into(), Value::from("FeatureCollection"));
    obj.insert("features".into(), Value::Array(features));
    Value::Object(obj)
}

/// One entry of a bulk import: the feature's properties (Null if absent)
/// and its geometry, or why that geometry was rejected.
pub type ParsedFeature = (Value, Result<Polygon, GeoError>);

/// Parses a bulk import: a FeatureCollection, a single Feature or a bare
/// Polygon. Each entry carries its properties (Null if absent) and its own
/// parse result, so one bad feature does not reject the whole file.
/// The outer error is only for input that is not usable at all.
pub fn features_from_collection(v: &Value) -> Result<Vec<ParsedFeature>, GeoError> {
    let obj = object(v)?;
    let t = type_of(obj)?;
    let entry = |f: &Value| {
        let props = f
            .get("properties")
            .filter(|_| f.get("type").and_then(Value::as_str) == Some("Feature"))
            .cloned()
            .unwrap_or(Value::Null);
        (props, polygon_from_input(f))
    };
    match t {
        "FeatureCollection" => Ok(obj
            .get("features")
            .ok_or_else(|| bad("FeatureCollection 缺少 features 字段"))?
            .as_array()
            .ok_or_else(|| bad("features 必须是数组"))?
            .iter()
            .map(entry)
            .collect()),
        "Feature" => Ok(vec![entry(v)]),
        t if is_geometry_type(t) => Ok(vec![entry(v)]),
        t => Err(GeoError::BadGeoJson(format!("不支持的类型 {t}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_geometry_and_feature() {
        let g = json!({"type": "Polygon", "coordinates": [
            [[108.5, 28.5, 300.0], [108.6, 28.5], [108.6, 28.6], [108.5, 28.5]],
            [[108.52, 28.52], [108.53, 28.52], [108.53, 28.53], [108.52, 28.52]]
        ]});
        let p = polygon_from_geojson(&g).unwrap();
        assert_eq!(p.exterior[0], Point::new(108.5, 28.5));
        assert_eq!(p.exterior.len(), 4);
        assert_eq!(p.holes.len(), 1);
        let f = json!({"type": "Feature", "properties": {"name": "一网格"}, "geometry": g});
        assert_eq!(polygon_from_geojson(&f).unwrap(), p);
        let unclosed = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]});
        assert_eq!(polygon_from_geojson(&unclosed).unwrap().exterior.len(), 3, "parse only");
    }

    #[test]
    fn round_trips_with_rounding() {
        let mut p = Polygon::rect(108.123_456_789, 28.5, 108.6, 28.987_654_321);
        p.holes.push(Polygon::rect(108.2, 28.6, 108.3, 28.7).exterior);
        let v = polygon_to_geojson(&p);
        assert_eq!(v["type"], "Polygon");
        assert_eq!(v["coordinates"][0][0][0], json!(108.1234568));
        let back = polygon_from_geojson(&v).unwrap();
        assert_eq!(back.holes, p.holes);
        for (a, b) in back.exterior.iter().zip(&p.exterior) {
            assert!((a.lng - b.lng).abs() < 1e-7 && (a.lat - b.lat).abs() < 1e-7);
        }
        let text = serde_json::to_string(&feature_collection(vec![feature(json!({"id": 1}), &p)])).unwrap();
        let parsed = features_from_collection(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].0, json!({"id": 1}));
        assert_eq!(parsed[0].1.as_ref().unwrap(), &back);
    }

    #[test]
    fn rejects_malformed_input() {
        let err = |v: Value| polygon_from_input(&v).unwrap_err();
        assert_eq!(err(json!([1, 2])), bad("不是 JSON 对象"));
        assert_eq!(err(json!("Polygon")), bad("不是 JSON 对象"));
        assert_eq!(err(json!({"type": "Polygon"})), bad("缺少 coordinates 字段"));
        assert_eq!(err(json!({"coordinates": []})), bad("缺少 type 字段"));
        assert_eq!(err(json!({"type": "LineString", "coordinates": [[0, 0], [1, 1]]})), GeoError::NotPolygon);
        assert_eq!(err(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}})), GeoError::NotPolygon);
        assert_eq!(err(json!({"type": "Polygon", "coordinates": [[["a", 0], [1, 0], [1, 1], [0, 0]]]})), bad("坐标必须是数字"));
        assert_eq!(
            err(json!({"type": "Polygon", "coordinates": [[[0], [1, 0], [1, 1], [0]]]})),
            bad("坐标点至少需要经度和纬度两个数值")
        );
        assert_eq!(err(json!({"type": "Polygon", "coordinates": []})), bad("coordinates 不能为空"));
        assert_eq!(err(json!({"type": "Polygon", "coordinates": [5]})), bad("多边形的每个环必须是坐标点数组"));
        assert_eq!(err(json!({"type": "Feature", "geometry": null})), bad("要素缺少 geometry"));
        assert_eq!(err(json!({"type": "Circle"})), bad("未知的几何类型 Circle"));
        assert_eq!(err(json!({"type": "Polygon", "coordinates": []})).to_string(), "GeoJSON 格式错误：coordinates 不能为空");
        // A boundary of 40,000 positions (its checks took 11 s of a worker) is refused unread.
        let circle: Vec<Value> = (0..=40_000)
            .map(|i| {
                let a = std::f64::consts::TAU * (i % 40_000) as f64 / 40_000.0;
                json!([108.47 + 0.01 * a.cos(), 28.54 + 0.01 * a.sin()])
            })
            .collect();
        assert_eq!(err(json!({"type": "Polygon", "coordinates": [circle]})), GeoError::TooManyPoints(MAX_POINTS));
        assert!(GeoError::TooManyPoints(MAX_POINTS).to_string().contains("最多 2000 个"));
    }

    #[test]
    fn collection_keeps_going_past_a_bad_feature() {
        let good = |name: &str, x: f64| feature(json!({"name": name}), &Polygon::rect(x, 0.0, x + 1.0, 1.0));
        let fc = json!({"type": "FeatureCollection", "features": [
            good("一", 0.0),
            {"type": "Feature", "properties": {"name": "坏"}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
            "not an object",
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, "x"]]]}},
            good("二", 1.0),
        ]});
        let items = features_from_collection(&fc).unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(items[0].0["name"], "一");
        assert!(items[0].1.is_ok());
        assert_eq!(items[1].0["name"], "坏");
        assert_eq!(items[1].1, Err(GeoError::NotPolygon));
        assert_eq!(items[2].0, Value::Null);
        assert!(matches!(items[2].1, Err(GeoError::BadGeoJson(_))));
        assert_eq!(items[3].0, Value::Null, "missing properties");
        assert!(items[3].1.is_err());
        assert_eq!(items[4].1.as_ref().unwrap().bbox().0, Point::new(1.0, 0.0));
    }

    #[test]
    fn collection_accepts_single_feature_or_geometry() {
        let p = Polygon::rect(0.0, 0.0, 1.0, 1.0);
        let one = features_from_collection(&feature(json!({"a": 1}), &p)).unwrap();
        assert_eq!(one, vec![(json!({"a": 1}), Ok(p.clone()))]);
        let bare = features_from_collection(&polygon_to_geojson(&p)).unwrap();
        assert_eq!(bare, vec![(Value::Null, Ok(p))]);
        assert!(features_from_collection(&json!({"type": "FeatureCollection"})).is_err());
        assert!(features_from_collection(&json!({"type": "Topology"})).is_err());
        assert!(features_from_collection(&json!(null)).is_err());
    }
}
