//! WGS-84 ⇄ GCJ-02 conversion. Chinese map apps (AMap/Gaode, Tencent) show
//! and export GCJ-02 ("Mars") coordinates, offset by a few hundred metres;
//! we store WGS-84, so imports drawn on those maps must be converted.

use super::Point;

/// Krasovsky 1940 semi-major axis, as used by the GCJ-02 algorithm.
const A: f64 = 6_378_245.0;
/// Krasovsky 1940 first eccentricity squared.
const EE: f64 = 0.006_693_421_622_965_943;
const PI: f64 = std::f64::consts::PI;

/// The offset is only applied inside this rough bounding box of China, which
/// is what every GCJ-02 implementation in the wild does.
fn out_of_china(p: Point) -> bool {
    !(72.004..=137.8347).contains(&p.lng) || !(0.8293..=55.8271).contains(&p.lat)
}

fn transform_lat(x: f64, y: f64) -> f64 {
    let mut ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    ret
}

fn transform_lng(x: f64, y: f64) -> f64 {
    let mut ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    ret += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    ret += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    ret += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    ret
}

/// Converts a WGS-84 position to GCJ-02; positions outside China are
/// returned unchanged.
pub fn wgs84_to_gcj02(p: Point) -> Point {
    if out_of_china(p) {
        return p;
    }
    let (x, y) = (p.lng - 105.0, p.lat - 35.0);
    let rad_lat = p.lat / 180.0 * PI;
    let magic = 1.0 - EE * rad_lat.sin() * rad_lat.sin();
    let sqrt_magic = magic.sqrt();
    let d_lat = transform_lat(x, y) * 180.0 / ((A * (1.0 - EE)) / (magic * sqrt_magic) * PI);
    let d_lng = transform_lng(x, y) * 180.0 / (A / sqrt_magic * rad_lat.cos() * PI);
    Point { lng: p.lng + d_lng, lat: p.lat + d_lat }
}

/// Converts GCJ-02 back to WGS-84. There is no closed form, so this
/// iterates the forward transform until it reproduces the input to well
/// under 1e-7 degrees (~1 cm).
pub fn gcj02_to_wgs84(p: Point) -> Point {
    if out_of_china(p) {
        return p;
    }
    let mut w = p;
    for _ in 0..30 {
        let g = wgs84_to_gcj02(w);
        let (dx, dy) = (g.lng - p.lng, g.lat - p.lat);
        w = Point { lng: w.lng - dx, lat: w.lat - dy };
        if dx.abs() < 1e-10 && dy.abs() < 1e-10 {
            break;
        }
    }
    w
}

/// Coordinate reference systems accepted on import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crs {
    /// GPS / international maps (OpenStreetMap, geojson.io); stored as is.
    Wgs84,
    /// Coordinates copied from Gaode/Tencent maps.
    Gcj02,
}

impl Crs {
    /// Parses the names users and tools commonly write, case-insensitively.
    pub fn parse(s: &str) -> Option<Crs> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wgs84" | "wgs-84" | "wgs 84" | "epsg:4326" | "urn:ogc:def:crs:ogc:1.3:crs84" => Some(Crs::Wgs84),
            "gcj02" | "gcj-02" | "gcj 02" => Some(Crs::Gcj02),
            _ => None,
        }
    }

    /// Canonical lowercase name, the inverse of `parse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Crs::Wgs84 => "wgs84",
            Crs::Gcj02 => "gcj02",
        }
    }

    /// Converts a position in this CRS to WGS-84 for storage.
    pub fn to_wgs84(self, p: Point) -> Point {
        match self {
            Crs::Wgs84 => p,
            Crs::Gcj02 => gcj02_to_wgs84(p),
        }
    }

    /// Converts a stored WGS-84 position into this CRS for display/export.
    pub fn from_wgs84(self, p: Point) -> Point {
        match self {
            Crs::Wgs84 => p,
            Crs::Gcj02 => wgs84_to_gcj02(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metres(a: Point, b: Point) -> f64 {
        let k = 111_195.0;
        ((a.lng - b.lng) * k * a.lat.to_radians().cos()).hypot((a.lat - b.lat) * k)
    }

    #[test]
    fn offset_is_hundreds_of_metres_and_round_trips() {
        let w = Point::new(108.50, 28.56);
        let g = wgs84_to_gcj02(w);
        let d = metres(w, g);
        assert!((100.0..1000.0).contains(&d), "offset {d} m");
        let back = gcj02_to_wgs84(g);
        assert!((back.lng - w.lng).abs() < 1e-6 && (back.lat - w.lat).abs() < 1e-6);
        assert!((wgs84_to_gcj02(back).lng - g.lng).abs() < 1e-7);
        assert!((wgs84_to_gcj02(back).lat - g.lat).abs() < 1e-7);
    }

    #[test]
    fn matches_reference_implementation() {
        // Published example output of wandergis/coordtransform.
        let g = wgs84_to_gcj02(Point::new(116.404, 39.915));
        assert!((g.lng - 116.410_244_499_169_38).abs() < 1e-9, "{g:?}");
        assert!((g.lat - 39.916_404_281_501_64).abs() < 1e-9, "{g:?}");
    }

    #[test]
    fn outside_china_is_unchanged() {
        for p in [Point::new(2.35, 48.86), Point::new(-74.0, 40.7), Point::new(139.69, 35.69), Point::new(100.0, 0.5)] {
            assert_eq!(wgs84_to_gcj02(p), p);
            assert_eq!(gcj02_to_wgs84(p), p);
            assert_eq!(Crs::Gcj02.to_wgs84(p), p);
        }
    }

    #[test]
    fn crs_names() {
        for s in ["wgs84", "WGS84", "wgs-84", "epsg:4326", "EPSG:4326", " WGS-84 "] {
            assert_eq!(Crs::parse(s), Some(Crs::Wgs84), "{s}");
        }
        for s in ["gcj02", "GCJ02", "gcj-02", "GCJ-02"] {
            assert_eq!(Crs::parse(s), Some(Crs::Gcj02), "{s}");
        }
        assert_eq!(Crs::parse("bd09"), None);
        assert_eq!(Crs::parse(Crs::Gcj02.as_str()), Some(Crs::Gcj02));
        let p = Point::new(108.5, 28.56);
        assert_eq!(Crs::Wgs84.to_wgs84(p), p);
        let q = Crs::Gcj02.to_wgs84(Crs::Gcj02.from_wgs84(p));
        assert!((q.lng - p.lng).abs() < 1e-7 && (q.lat - p.lat).abs() < 1e-7);
    }
}
