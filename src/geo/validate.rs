//! Checks a user-drawn polygon before it is stored, so every later
//! computation (containment, overlap, area) can assume a simple polygon.

use super::polygon::{distinct_vertices, on_segment, orient, ring_edges, ring_signed_area};
use super::relate::{ZERO_AREA_DEG2, overlaps, rings_cross, segments_touch, within};
use super::{EPS, GeoError, Point, Polygon};

/// Rejects polygons that are malformed or not simple: rings with fewer than
/// four positions or not closed, coordinates out of range, zero area,
/// self-intersections (crossing or touching edges, repeated vertices), and
/// holes that are not inside the exterior or that overlap each other.
pub fn validate(p: &Polygon) -> Result<(), GeoError> {
    for ring in p.rings() {
        if ring.len() < 4 {
            return Err(GeoError::TooFewPoints);
        }
        if ring.first() != ring.last() {
            return Err(GeoError::NotClosed);
        }
    }
    let in_range = |q: &Point| {
        q.lng.is_finite() && q.lat.is_finite() && (-180.0..=180.0).contains(&q.lng) && (-90.0..=90.0).contains(&q.lat)
    };
    if !p.rings().flatten().all(in_range) {
        return Err(GeoError::OutOfRange);
    }
    // Degenerate rings first: a flattened ring also "self-intersects", but
    // zero area is the more helpful message for it.
    if p.rings().any(is_degenerate) {
        return Err(GeoError::ZeroArea);
    }
    for ring in p.rings() {
        check_simple_ring(ring)?;
        // A bow tie can have zero signed area; simple rings only when tiny.
        if ring_signed_area(ring).abs() <= ZERO_AREA_DEG2 {
            return Err(GeoError::ZeroArea);
        }
    }
    let ext = Polygon::new(p.exterior.clone());
    let holes: Vec<Polygon> = p.holes.iter().map(|h| Polygon::new(h.clone())).collect();
    for (i, hole) in holes.iter().enumerate() {
        if let Some(x) = rings_cross(&hole.exterior, &p.exterior) {
            return Err(self_intersecting(x));
        }
        if !within(hole, &ext) {
            return Err(GeoError::BadHole);
        }
        for other in &holes[i + 1..] {
            if let Some(x) = rings_cross(&hole.exterior, &other.exterior) {
                return Err(self_intersecting(x));
            }
            if overlaps(hole, other) {
                return Err(GeoError::BadHole);
            }
        }
    }
    if p.area_deg2() <= ZERO_AREA_DEG2 {
        return Err(GeoError::ZeroArea);
    }
    Ok(())
}

/// All vertices on (nearly) one line or one point: the strip they span has
/// no more area than `ZERO_AREA_DEG2`.
fn is_degenerate(ring: &[Point]) -> bool {
    let Some(&a) = ring.first() else {
        return true;
    };
    let dist2 = |q: &Point| (q.lng - a.lng).powi(2) + (q.lat - a.lat).powi(2);
    let b = *ring.iter().max_by(|p, q| dist2(p).total_cmp(&dist2(q))).unwrap_or(&a);
    let len = dist2(&b).sqrt();
    if len <= EPS {
        return true;
    }
    let width = ring.iter().map(|&q| orient(a, b, q).abs() / len).fold(0.0, f64::max);
    width * len <= ZERO_AREA_DEG2
}

fn self_intersecting(x: Point) -> GeoError {
    GeoError::SelfIntersecting { lng: x.lng, lat: x.lat }
}

/// Ring must be closed and have >= 4 positions (checked by the caller).
/// Uses a sweep over edges sorted by min longitude so rings with thousands
/// of vertices (traced boundaries) stay fast.
fn check_simple_ring(ring: &[Point]) -> Result<(), GeoError> {
    let verts = distinct_vertices(ring);
    let n = verts.len();
    let edges: Vec<(Point, Point)> = ring_edges(ring).collect();
    debug_assert_eq!(edges.len(), n);
    for (i, &(a, b)) in edges.iter().enumerate() {
        if (b.lng - a.lng).hypot(b.lat - a.lat) <= EPS {
            return Err(self_intersecting(a));
        }
        // Adjacent edges only share their common vertex unless the ring
        // doubles back on itself (a spike).
        let c = edges[(i + 1) % n].1;
        if on_segment(c, a, b, EPS) || on_segment(a, b, c, EPS) {
            return Err(self_intersecting(b));
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    let min_x = |i: usize| edges[i].0.lng.min(edges[i].1.lng);
    order.sort_by(|&i, &j| min_x(i).total_cmp(&min_x(j)));
    for (k, &i) in order.iter().enumerate() {
        let (a, b) = edges[i];
        let max_x = a.lng.max(b.lng) + EPS;
        for &j in &order[k + 1..] {
            if min_x(j) > max_x {
                break;
            }
            let adjacent = i.abs_diff(j) == 1 || i.abs_diff(j) == n - 1;
            if adjacent {
                continue;
            }
            let (c, d) = edges[j];
            if let Some(x) = segments_touch(a, b, c, d) {
                return Err(self_intersecting(x));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poly(pts: &[(f64, f64)]) -> Polygon {
        Polygon::new(pts.iter().map(|&(x, y)| Point::new(x, y)).collect())
    }

    #[test]
    fn accepts_simple_polygons() {
        assert_eq!(validate(&Polygon::rect(108.5, 28.5, 108.51, 28.51)), Ok(()));
        let mut holed = Polygon::rect(0.0, 0.0, 4.0, 4.0);
        holed.holes.push(Polygon::rect(1.0, 1.0, 2.0, 2.0).exterior);
        holed.holes.push(Polygon::rect(2.0, 2.0, 3.0, 3.0).exterior);
        assert_eq!(validate(&holed), Ok(()));
        let concave = poly(&[(0.0, 0.0), (2.0, 0.0), (1.0, 1.0), (2.0, 2.0), (0.0, 2.0), (0.0, 0.0)]);
        assert_eq!(validate(&concave), Ok(()));
    }

    #[test]
    fn rejects_malformed_rings() {
        let unclosed = poly(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]);
        assert_eq!(validate(&unclosed), Err(GeoError::NotClosed));
        let few = poly(&[(0.0, 0.0), (1.0, 0.0), (0.0, 0.0)]);
        assert_eq!(validate(&few), Err(GeoError::TooFewPoints));
        assert_eq!(validate(&poly(&[])), Err(GeoError::TooFewPoints));
        let far = Polygon::rect(179.0, 0.0, 181.0, 1.0);
        assert_eq!(validate(&far), Err(GeoError::OutOfRange));
        let polar = Polygon::rect(0.0, 89.0, 1.0, 90.5);
        assert_eq!(validate(&polar), Err(GeoError::OutOfRange));
        let mut nan = Polygon::rect(0.0, 0.0, 1.0, 1.0);
        nan.exterior[2].lat = f64::NAN;
        assert_eq!(validate(&nan), Err(GeoError::OutOfRange));
        let line = poly(&[(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (0.0, 0.0)]);
        assert_eq!(validate(&line), Err(GeoError::ZeroArea));
        let point = poly(&[(1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.0, 1.0)]);
        assert_eq!(validate(&point), Err(GeoError::ZeroArea));
    }

    #[test]
    fn rejects_bow_tie_with_location() {
        let bow = poly(&[(0.0, 0.0), (2.0, 2.0), (2.0, 0.0), (0.0, 2.0), (0.0, 0.0)]);
        match validate(&bow) {
            Err(GeoError::SelfIntersecting { lng, lat }) => {
                assert!((lng - 1.0).abs() < 1e-9 && (lat - 1.0).abs() < 1e-9);
            }
            other => panic!("expected self-intersection, got {other:?}"),
        }
    }

    #[test]
    fn rejects_touching_repeated_and_spikes() {
        // Vertex (1,0) is visited twice: a figure-eight pinched at one point.
        let pinched = poly(&[(0.0, 0.0), (1.0, 0.0), (2.0, 1.0), (2.0, -1.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]);
        assert!(matches!(validate(&pinched), Err(GeoError::SelfIntersecting { .. })));
        let dup = poly(&[(0.0, 0.0), (1.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]);
        assert_eq!(validate(&dup), Err(GeoError::SelfIntersecting { lng: 1.0, lat: 0.0 }));
        let spike = poly(&[(0.0, 0.0), (2.0, 0.0), (3.0, 0.0), (2.0, 0.0), (2.0, 1.0), (0.0, 1.0), (0.0, 0.0)]);
        assert!(matches!(validate(&spike), Err(GeoError::SelfIntersecting { .. })));
        // A vertex lying on a non-adjacent edge.
        let touch = poly(&[(0.0, 0.0), (2.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.5, 1.5), (0.0, 1.0), (0.0, 0.0)]);
        assert!(matches!(validate(&touch), Err(GeoError::SelfIntersecting { .. })));
    }

    #[test]
    fn rejects_bad_holes() {
        let mut outside = Polygon::rect(0.0, 0.0, 1.0, 1.0);
        outside.holes.push(Polygon::rect(2.0, 2.0, 3.0, 3.0).exterior);
        assert_eq!(validate(&outside), Err(GeoError::BadHole));
        let mut crossing = Polygon::rect(0.0, 0.0, 1.0, 1.0);
        crossing.holes.push(Polygon::rect(0.5, 0.5, 1.5, 0.8).exterior);
        assert!(matches!(validate(&crossing), Err(GeoError::SelfIntersecting { .. })));
        let mut overlapping = Polygon::rect(0.0, 0.0, 4.0, 4.0);
        overlapping.holes.push(Polygon::rect(1.0, 1.0, 2.0, 2.0).exterior);
        overlapping.holes.push(Polygon::rect(1.0, 1.0, 2.0, 2.0).exterior);
        assert_eq!(validate(&overlapping), Err(GeoError::BadHole));
        let mut whole = Polygon::rect(0.0, 0.0, 1.0, 1.0);
        whole.holes.push(Polygon::rect(0.0, 0.0, 1.0, 1.0).exterior);
        assert_eq!(validate(&whole), Err(GeoError::ZeroArea));
        let mut unclosed_hole = Polygon::rect(0.0, 0.0, 4.0, 4.0);
        unclosed_hole.holes.push(Polygon::rect(1.0, 1.0, 2.0, 2.0).exterior[..4].to_vec());
        assert_eq!(validate(&unclosed_hole), Err(GeoError::NotClosed));
    }
}
