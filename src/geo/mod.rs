//! Grid geometry for community governance: polygons drawn by community staff,
//! checks that grids tile their community cleanly, GeoJSON import/export,
//! Chinese map-datum conversion, fast point-to-grid lookup and a small SVG
//! map renderer.
//!
//! All coordinates are longitude/latitude degrees. Grids are small (tens to
//! hundreds of metres), so planar maths on degrees is accurate enough for
//! topology; only `area_m2` projects to metres.
//!
//! This module depends on nothing else in the crate so it can be tested and
//! benchmarked in isolation.

mod gcj02;
mod geojson;
mod index;
mod polygon;
mod relate;
mod svg;
mod tiling;
mod validate;

pub use gcj02::{Crs, gcj02_to_wgs84, wgs84_to_gcj02};
pub use geojson::{
    ParsedFeature, feature, feature_collection, features_from_collection, polygon_from_geojson, polygon_from_input,
    polygon_to_geojson,
};
pub use index::GridIndex;
pub use polygon::Polygon;
pub use relate::{overlaps, within};
pub use svg::{MapItem, palette, render_svg, render_svg_with_tiles};
pub use tiling::split_rect;
pub use validate::validate;

/// Tolerance in degrees (~0.1 mm) for "is this point on that edge" decisions,
/// so coordinates that went through a JSON round trip still snap together.
pub const EPS: f64 = 1e-9;

/// A WGS-84 (or GCJ-02, depending on context) position in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Longitude in degrees, east positive.
    pub lng: f64,
    /// Latitude in degrees, north positive.
    pub lat: f64,
}

impl Point {
    /// Shorthand so tests and callers need not spell out field names.
    pub const fn new(lng: f64, lat: f64) -> Point {
        Point { lng, lat }
    }
}

/// Reasons a user-supplied grid boundary is rejected. Messages are shown to
/// Chinese-speaking staff verbatim, so they are written in zh-CN.
#[derive(Debug, thiserror::Error, PartialEq, Clone)]
pub enum GeoError {
    /// The JSON is not GeoJSON we understand; the detail says where.
    #[error("GeoJSON 格式错误：{0}")]
    BadGeoJson(String),
    /// A geometry of another type (LineString, Point, …) was supplied.
    #[error("几何类型必须是 Polygon")]
    NotPolygon,
    /// A ring has fewer than four positions.
    #[error("多边形至少需要 4 个坐标点（首尾相同）")]
    TooFewPoints,
    /// A ring's first and last positions differ.
    #[error("多边形未闭合：首尾坐标必须相同")]
    NotClosed,
    /// A coordinate is outside the valid lng/lat range or not finite.
    #[error("坐标超出范围：经度须在 -180～180、纬度须在 -90～90 之间")]
    OutOfRange,
    /// The polygon (or one of its rings) encloses no area.
    #[error("多边形面积为零")]
    ZeroArea,
    /// Two edges cross or touch, or a vertex repeats; the position helps the
    /// user find the mistake on the map.
    #[error("多边形自相交（约在 {lng:.6}, {lat:.6} 处）")]
    SelfIntersecting {
        /// Approximate longitude of the problem.
        lng: f64,
        /// Approximate latitude of the problem.
        lat: f64,
    },
    /// A hole lies (partly) outside the exterior ring or overlaps another hole.
    #[error("内环（洞）必须位于外环内部且互不重叠")]
    BadHole,
    /// More positions than a boundary may have (its checks grow with the square of them).
    #[error("多边形的坐标点过多：最多 {0} 个，请简化边界后再提交")]
    TooManyPoints(usize),
    /// The grid overlaps the named sibling grid.
    #[error("与相邻网格 {0} 重叠")]
    Overlaps(String),
    /// The grid is not inside the named parent community.
    #[error("超出所属社区 {0} 的范围")]
    OutsideParent(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_chinese_and_formatted() {
        let e = GeoError::SelfIntersecting { lng: 108.5, lat: 28.123_456_78 };
        assert_eq!(e.to_string(), "多边形自相交（约在 108.500000, 28.123457 处）");
        assert_eq!(GeoError::Overlaps("第一网格".into()).to_string(), "与相邻网格 第一网格 重叠");
        assert_eq!(GeoError::OutsideParent("幸福社区".into()).to_string(), "超出所属社区 幸福社区 的范围");
        assert_eq!(GeoError::BadGeoJson("缺少 type".into()).to_string(), "GeoJSON 格式错误：缺少 type");
    }
}
