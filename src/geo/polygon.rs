//! The polygon type plus the low-level primitives (orientation, on-segment,
//! point location) the rest of the module builds on.

use super::{EPS, Point};

/// Mean Earth radius in metres (IUGG), good enough for approximate areas.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A polygon with optional holes. Rings are expected to be closed (first
/// position repeated at the end), as in GeoJSON; an unclosed ring is treated
/// as if it were closed so geometry never silently drops an edge.
#[derive(Clone, Debug, PartialEq)]
pub struct Polygon {
    /// Outer boundary.
    pub exterior: Vec<Point>,
    /// Inner boundaries cut out of the exterior.
    pub holes: Vec<Vec<Point>>,
}

/// Where a point lies relative to a polygon, with boundary tolerance `EPS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loc {
    Inside,
    Boundary,
    Outside,
}

impl Polygon {
    /// Builds a polygon without holes, the common case for grids.
    pub fn new(exterior: Vec<Point>) -> Polygon {
        Polygon { exterior, holes: Vec::new() }
    }

    /// Axis-aligned rectangle as a closed counter-clockwise ring, which is
    /// the orientation RFC 7946 prescribes for exteriors.
    pub fn rect(min_lng: f64, min_lat: f64, max_lng: f64, max_lat: f64) -> Polygon {
        Polygon::new(vec![
            Point::new(min_lng, min_lat),
            Point::new(max_lng, min_lat),
            Point::new(max_lng, max_lat),
            Point::new(min_lng, max_lat),
            Point::new(min_lng, min_lat),
        ])
    }

    /// `(min, max)` corners of the exterior's bounding box. Holes cannot
    /// extend it. With an empty exterior min is +inf and max is -inf, so any
    /// overlap test against it fails naturally.
    pub fn bbox(&self) -> (Point, Point) {
        ring_bbox(&self.exterior)
    }

    /// Exterior followed by holes, for code that treats all rings alike.
    pub fn rings(&self) -> impl Iterator<Item = &[Point]> {
        std::iter::once(self.exterior.as_slice()).chain(self.holes.iter().map(Vec::as_slice))
    }

    /// Even-odd point-in-polygon; points in a hole are outside, points on any
    /// boundary (within `EPS`) are inside so a point on a shared grid edge is
    /// never orphaned.
    pub fn contains(&self, p: Point) -> bool {
        self.classify(p) != Loc::Outside
    }

    pub(crate) fn classify(&self, p: Point) -> Loc {
        locate_in_rings(self.rings(), p, EPS)
    }

    /// Approximate area in square metres using an equirectangular projection
    /// at the polygon's mid latitude; exact enough for grids of a few km.
    pub fn area_m2(&self) -> f64 {
        let (min, max) = self.bbox();
        if min.lat > max.lat {
            return 0.0;
        }
        let lat0 = ((min.lat + max.lat) / 2.0).to_radians();
        let m_per_deg = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        self.area_deg2() * m_per_deg * m_per_deg * lat0.cos()
    }

    /// Net planar area in square degrees, for degeneracy checks.
    pub(crate) fn area_deg2(&self) -> f64 {
        let ext = ring_signed_area(&self.exterior).abs();
        let holes: f64 = self.holes.iter().map(|h| ring_signed_area(h).abs()).sum();
        (ext - holes).max(0.0)
    }

    /// Area-weighted centroid (holes subtracted). Falls back to the vertex
    /// mean for degenerate polygons so labels still get a position.
    pub fn centroid(&self) -> Point {
        let Some(&origin) = self.exterior.first() else {
            return Point::new(0.0, 0.0);
        };
        let (mut area, mut mx, mut my) = (0.0, 0.0, 0.0);
        for (i, ring) in self.rings().enumerate() {
            let (a, x, y) = ring_moments(ring, origin);
            // Normalise orientation, then subtract holes.
            let s = a.signum() * if i == 0 { 1.0 } else { -1.0 };
            area += a.abs() * if i == 0 { 1.0 } else { -1.0 };
            mx += x * s;
            my += y * s;
        }
        if area.abs() > 1e-18 {
            return Point::new(origin.lng + mx / area, origin.lat + my / area);
        }
        let pts = distinct_vertices(&self.exterior);
        let n = pts.len() as f64;
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(x, y), p| (x + p.lng, y + p.lat));
        Point::new(sx / n, sy / n)
    }

    /// A point strictly inside the polygon, found by scanning horizontal
    /// lines; `None` only for degenerate shapes. Used where the centroid may
    /// fall outside (L-shapes, holes).
    pub fn interior_point(&self) -> Option<Point> {
        let (min, max) = self.bbox();
        if min.lat >= max.lat {
            return None;
        }
        let c = self.centroid();
        if self.classify(c) == Loc::Inside {
            return Some(c);
        }
        let mut xs = Vec::new();
        for k in 1..32u32 {
            // Visit fractions 1/2, 1/4, 3/4, 1/8, ... so early tries are central.
            let level = 32 - k.leading_zeros();
            let denom = f64::from(1u32 << level);
            let num = f64::from(2 * (k - (1 << (level - 1))) + 1);
            let y = min.lat + (max.lat - min.lat) * num / denom;
            xs.clear();
            for ring in self.rings() {
                for (a, b) in ring_edges(ring) {
                    if (a.lat > y) != (b.lat > y) {
                        xs.push(a.lng + (y - a.lat) * (b.lng - a.lng) / (b.lat - a.lat));
                    }
                }
            }
            xs.sort_by(f64::total_cmp);
            let best = xs.chunks_exact(2).max_by(|u, v| (u[1] - u[0]).total_cmp(&(v[1] - v[0])));
            if let Some(seg) = best {
                let p = Point::new((seg[0] + seg[1]) / 2.0, y);
                if self.classify(p) == Loc::Inside {
                    return Some(p);
                }
            }
        }
        None
    }

    /// Where to put a label: the centroid when it is inside, otherwise some
    /// interior point, so concave grids do not get labels on a neighbour.
    pub fn label_point(&self) -> Point {
        self.interior_point().unwrap_or_else(|| self.centroid())
    }

    /// Applies `f` to every position, e.g. to convert between datums.
    pub fn map(&self, mut f: impl FnMut(Point) -> Point) -> Polygon {
        Polygon {
            exterior: self.exterior.iter().map(|&p| f(p)).collect(),
            holes: self.holes.iter().map(|h| h.iter().map(|&p| f(p)).collect()).collect(),
        }
    }
}

pub(crate) fn ring_bbox(ring: &[Point]) -> (Point, Point) {
    let inf = f64::INFINITY;
    ring.iter().fold((Point::new(inf, inf), Point::new(-inf, -inf)), |(lo, hi), p| {
        (Point::new(lo.lng.min(p.lng), lo.lat.min(p.lat)), Point::new(hi.lng.max(p.lng), hi.lat.max(p.lat)))
    })
}

/// Ring positions without the closing duplicate.
pub(crate) fn distinct_vertices(ring: &[Point]) -> &[Point] {
    match ring {
        [first, .., last] if first == last => &ring[..ring.len() - 1],
        _ => ring,
    }
}

/// Edges of a ring, adding the closing edge if the ring is not closed.
pub(crate) fn ring_edges(ring: &[Point]) -> impl Iterator<Item = (Point, Point)> + '_ {
    let closing = match ring {
        [first, .., last] if first != last => Some((*last, *first)),
        _ => None,
    };
    ring.windows(2).map(|w| (w[0], w[1])).chain(closing)
}

/// (signed area, x moment, y moment) relative to `o`; working relative to a
/// vertex keeps precision with coordinates around 100°.
fn ring_moments(ring: &[Point], o: Point) -> (f64, f64, f64) {
    let (mut a2, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for (p, q) in ring_edges(ring) {
        let (px, py, qx, qy) = (p.lng - o.lng, p.lat - o.lat, q.lng - o.lng, q.lat - o.lat);
        let cross = px * qy - qx * py;
        a2 += cross;
        cx += (px + qx) * cross;
        cy += (py + qy) * cross;
    }
    (a2 / 2.0, cx / 6.0, cy / 6.0)
}

/// Signed planar area in square degrees; positive for counter-clockwise.
pub(crate) fn ring_signed_area(ring: &[Point]) -> f64 {
    match ring.first() {
        Some(&o) => ring_moments(ring, o).0,
        None => 0.0,
    }
}

/// Cross product of (b - a) and (c - a): > 0 when c is left of a→b.
pub(crate) fn orient(a: Point, b: Point, c: Point) -> f64 {
    (b.lng - a.lng) * (c.lat - a.lat) - (b.lat - a.lat) * (c.lng - a.lng)
}

/// Whether `p` lies on segment a–b within `eps` degrees.
#[inline]
pub(crate) fn on_segment(p: Point, a: Point, b: Point, eps: f64) -> bool {
    if p.lng < a.lng.min(b.lng) - eps
        || p.lng > a.lng.max(b.lng) + eps
        || p.lat < a.lat.min(b.lat) - eps
        || p.lat > a.lat.max(b.lat) + eps
    {
        return false;
    }
    let (dx, dy) = (b.lng - a.lng, b.lat - a.lat);
    let len2 = dx * dx + dy * dy;
    let cross = orient(a, b, p);
    cross * cross <= eps * eps * len2
}

/// Even-odd location over a set of rings, shared by `Polygon` and the flat
/// storage in `GridIndex` so both agree exactly on boundary cases.
#[inline]
pub(crate) fn locate_in_rings<'a>(rings: impl IntoIterator<Item = &'a [Point]>, p: Point, eps: f64) -> Loc {
    let mut inside = false;
    for ring in rings {
        for (a, b) in ring_edges(ring) {
            // Most edges are far above or below the ray; skip them cheaply.
            if (a.lat > p.lat + eps && b.lat > p.lat + eps) || (a.lat < p.lat - eps && b.lat < p.lat - eps) {
                continue;
            }
            if on_segment(p, a, b, eps) {
                return Loc::Boundary;
            }
            if (a.lat > p.lat) != (b.lat > p.lat) {
                let x = a.lng + (p.lat - a.lat) * (b.lng - a.lng) / (b.lat - a.lat);
                if p.lng < x {
                    inside = !inside;
                }
            }
        }
    }
    if inside { Loc::Inside } else { Loc::Outside }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square_with_hole() -> Polygon {
        let mut p = Polygon::rect(0.0, 0.0, 4.0, 4.0);
        p.holes.push(Polygon::rect(1.0, 1.0, 3.0, 3.0).exterior);
        p
    }

    #[test]
    fn rect_is_closed_and_counter_clockwise() {
        let r = Polygon::rect(1.0, 2.0, 3.0, 5.0);
        assert_eq!(r.exterior.len(), 5);
        assert_eq!(r.exterior.first(), r.exterior.last());
        assert!(ring_signed_area(&r.exterior) > 0.0);
        assert_eq!(r.bbox(), (Point::new(1.0, 2.0), Point::new(3.0, 5.0)));
    }

    #[test]
    fn contains_interior_edges_vertices_and_holes() {
        let p = square_with_hole();
        assert!(p.contains(Point::new(0.5, 0.5)));
        assert!(p.contains(Point::new(0.0, 2.0)), "left edge");
        assert!(p.contains(Point::new(4.0, 4.0)), "corner");
        assert!(p.contains(Point::new(2.0, 0.0)), "bottom edge");
        assert!(!p.contains(Point::new(2.0, 2.0)), "inside hole");
        assert!(p.contains(Point::new(1.0, 2.0)), "hole edge is boundary");
        assert!(p.contains(Point::new(3.0, 3.0)), "hole corner");
        assert!(!p.contains(Point::new(4.1, 2.0)));
        assert!(!p.contains(Point::new(-1e-6, 2.0)));
        assert!(p.contains(Point::new(-1e-10, 2.0)), "within EPS of edge");
    }

    #[test]
    fn contains_on_slanted_edge_and_unclosed_ring() {
        let tri = Polygon::new(vec![Point::new(0.0, 0.0), Point::new(1.0, 0.0), Point::new(0.0, 1.0)]);
        assert!(tri.contains(Point::new(0.5, 0.5)), "hypotenuse");
        assert!(tri.contains(Point::new(0.2, 0.2)));
        assert!(!tri.contains(Point::new(0.6, 0.6)));
    }

    #[test]
    fn area_of_one_hundredth_degree_square_near_beijing() {
        let p = Polygon::rect(116.40, 39.90, 116.41, 39.91);
        let expected = 1111.95 * 1111.95 * 39.905f64.to_radians().cos();
        let a = p.area_m2();
        assert!((a - expected).abs() / expected < 1e-3, "area {a}");
        let h = square_with_hole();
        let ratio = h.area_m2() / Polygon::rect(0.0, 0.0, 4.0, 4.0).area_m2();
        assert!((ratio - 0.75).abs() < 1e-12);
    }

    #[test]
    fn centroid_accounts_for_holes_and_orientation() {
        let c = Polygon::rect(0.0, 0.0, 2.0, 4.0).centroid();
        assert!((c.lng - 1.0).abs() < 1e-12 && (c.lat - 2.0).abs() < 1e-12);
        let mut cw = Polygon::rect(0.0, 0.0, 2.0, 4.0);
        cw.exterior.reverse();
        assert_eq!(cw.centroid(), c);
        let mut p = Polygon::rect(0.0, 0.0, 4.0, 4.0);
        p.holes.push(Polygon::rect(2.0, 0.0, 4.0, 4.0).exterior);
        let c = p.centroid();
        assert!((c.lng - 1.0).abs() < 1e-12 && (c.lat - 2.0).abs() < 1e-12);
    }

    #[test]
    fn label_point_stays_inside_concave_and_holed_shapes() {
        let h = square_with_hole();
        assert!(!h.contains(h.centroid()));
        assert_eq!(h.classify(h.label_point()), Loc::Inside);
        let u = Polygon::new(vec![
            Point::new(0.0, 0.0),
            Point::new(3.0, 0.0),
            Point::new(3.0, 3.0),
            Point::new(2.0, 3.0),
            Point::new(2.0, 1.0),
            Point::new(1.0, 1.0),
            Point::new(1.0, 3.0),
            Point::new(0.0, 3.0),
            Point::new(0.0, 0.0),
        ]);
        assert_eq!(u.classify(u.label_point()), Loc::Inside);
        assert_eq!(Polygon::new(vec![]).interior_point(), None);
    }

    #[test]
    fn map_transforms_every_ring() {
        let m = square_with_hole().map(|p| Point::new(p.lng + 1.0, p.lat));
        assert_eq!(m.bbox().0, Point::new(1.0, 0.0));
        assert_eq!(m.holes[0][0], Point::new(2.0, 1.0));
    }
}
