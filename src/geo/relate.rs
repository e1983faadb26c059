//! Topological relations between polygons. Grids of a community are drawn
//! to share edges exactly, so "touching" must never count as overlapping,
//! while any shared area must.

use super::polygon::{Loc, on_segment, orient, ring_bbox, ring_edges};
use super::{EPS, Point, Polygon};

/// Below this many square degrees (~0.01 m²) a polygon is treated as having
/// no area at all.
pub(crate) const ZERO_AREA_DEG2: f64 = 1e-12;

/// Interior crossing point of segments a–b and c–d, if they cross
/// transversally with every endpoint clearly (> `EPS`) off the other line.
/// Touching at endpoints or running collinear is deliberately not a crossing.
pub(crate) fn proper_cross(a: Point, b: Point, c: Point, d: Point) -> Option<Point> {
    let lab = (b.lng - a.lng).hypot(b.lat - a.lat);
    let lcd = (d.lng - c.lng).hypot(d.lat - c.lat);
    let d1 = orient(c, d, a);
    let d2 = orient(c, d, b);
    let d3 = orient(a, b, c);
    let d4 = orient(a, b, d);
    if d1.abs() <= EPS * lcd || d2.abs() <= EPS * lcd || d3.abs() <= EPS * lab || d4.abs() <= EPS * lab {
        return None;
    }
    if (d1 > 0.0) != (d2 > 0.0) && (d3 > 0.0) != (d4 > 0.0) {
        let t = d1 / (d1 - d2);
        return Some(Point::new(a.lng + t * (b.lng - a.lng), a.lat + t * (b.lat - a.lat)));
    }
    None
}

/// A point where segments a–b and c–d cross or touch (within `EPS`).
pub(crate) fn segments_touch(a: Point, b: Point, c: Point, d: Point) -> Option<Point> {
    if a.lng.max(b.lng) < c.lng.min(d.lng) - EPS
        || c.lng.max(d.lng) < a.lng.min(b.lng) - EPS
        || a.lat.max(b.lat) < c.lat.min(d.lat) - EPS
        || c.lat.max(d.lat) < a.lat.min(b.lat) - EPS
    {
        return None;
    }
    if let Some(x) = proper_cross(a, b, c, d) {
        return Some(x);
    }
    [(a, c, d), (b, c, d), (c, a, b), (d, a, b)].into_iter().find(|&(p, s, t)| on_segment(p, s, t, EPS)).map(|(p, _, _)| p)
}

/// First transversal crossing between any edge of `a` and any edge of `b`.
pub(crate) fn rings_cross(a: &[Point], b: &[Point]) -> Option<Point> {
    let (bmin, bmax) = ring_bbox(b);
    for (p, q) in ring_edges(a) {
        if p.lng.max(q.lng) < bmin.lng
            || p.lng.min(q.lng) > bmax.lng
            || p.lat.max(q.lat) < bmin.lat
            || p.lat.min(q.lat) > bmax.lat
        {
            continue;
        }
        for (r, s) in ring_edges(b) {
            if let Some(x) = proper_cross(p, q, r, s) {
                return Some(x);
            }
        }
    }
    None
}

fn any_boundary_cross(a: &Polygon, b: &Polygon) -> bool {
    a.rings().any(|ra| b.rings().any(|rb| rings_cross(ra, rb).is_some()))
}

/// Points that are in `p` (vertices) or strictly inside it (edge points
/// nudged inward, an interior point). If boundaries never cross, a shared
/// area always shows up as one of these being strictly inside the other
/// polygon, for every arrangement grids realistically produce.
fn sample_points(p: &Polygon) -> Vec<Point> {
    let mut out = Vec::new();
    for ring in p.rings() {
        for (a, b) in ring_edges(ring) {
            out.push(a);
            let (dx, dy) = (b.lng - a.lng, b.lat - a.lat);
            let len = dx.hypot(dy);
            if len <= EPS {
                continue;
            }
            // Large enough to be clear of EPS, small enough for thin grids.
            let nudge = (len * 1e-3).clamp(1e-8, 1e-7);
            let (nx, ny) = (-dy / len * nudge, dx / len * nudge);
            for t in [0.5, 0.25, 0.75] {
                let m = Point::new(a.lng + t * dx, a.lat + t * dy);
                // Orientation of holes vs exterior varies; just try both sides.
                for s in [1.0, -1.0] {
                    let q = Point::new(m.lng + s * nx, m.lat + s * ny);
                    if p.classify(q) == Loc::Inside {
                        out.push(q);
                        break;
                    }
                }
            }
        }
    }
    if let Some(ip) = p.interior_point() {
        out.push(ip);
    }
    out
}

/// Whether the interiors of `a` and `b` share positive area. Sharing edges,
/// parts of edges or vertices (adjacent grids, T-junctions) is not overlap;
/// identical polygons, containment and partial overlap are.
pub fn overlaps(a: &Polygon, b: &Polygon) -> bool {
    let (amin, amax) = a.bbox();
    let (bmin, bmax) = b.bbox();
    if amin.lng >= bmax.lng - EPS || bmin.lng >= amax.lng - EPS || amin.lat >= bmax.lat - EPS || bmin.lat >= amax.lat - EPS {
        return false;
    }
    if a.area_deg2() <= ZERO_AREA_DEG2 || b.area_deg2() <= ZERO_AREA_DEG2 {
        return false;
    }
    if any_boundary_cross(a, b) {
        return true;
    }
    sample_points(a).into_iter().any(|s| b.classify(s) == Loc::Inside)
        || sample_points(b).into_iter().any(|s| a.classify(s) == Loc::Inside)
}

/// Whether `inner` lies inside `outer`; shared boundary is allowed so a grid
/// on the edge of its community still counts as within it.
pub fn within(inner: &Polygon, outer: &Polygon) -> bool {
    let (imin, imax) = inner.bbox();
    let (omin, omax) = outer.bbox();
    if imin.lng > imax.lng
        || imin.lng < omin.lng - EPS
        || imin.lat < omin.lat - EPS
        || imax.lng > omax.lng + EPS
        || imax.lat > omax.lat + EPS
    {
        return false;
    }
    if any_boundary_cross(inner, outer) {
        return false;
    }
    if sample_points(inner).into_iter().any(|s| outer.classify(s) == Loc::Outside) {
        return false;
    }
    // A hole of `outer` may sit entirely inside `inner` without any vertex
    // of `inner` noticing it.
    !outer.holes.iter().any(|h| overlaps(inner, &Polygon::new(h.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: f64, b: f64, c: f64, d: f64) -> Polygon {
        Polygon::rect(a, b, c, d)
    }

    fn poly(pts: &[(f64, f64)]) -> Polygon {
        Polygon::new(pts.iter().map(|&(x, y)| Point::new(x, y)).collect())
    }

    #[test]
    fn adjacent_grids_do_not_overlap() {
        let a = r(116.0, 39.0, 116.01, 39.01);
        assert!(!overlaps(&a, &r(116.01, 39.0, 116.02, 39.01)), "shared edge");
        assert!(!overlaps(&a, &r(116.01, 39.01, 116.02, 39.02)), "corner");
        assert!(!overlaps(&a, &r(116.01, 39.002, 116.02, 39.005)), "partial edge");
        assert!(!overlaps(&a, &r(116.0, 39.01, 116.005, 39.02)), "T-junction");
        assert!(!overlaps(&a, &r(116.02, 39.0, 116.03, 39.01)), "apart");
        // Exterior ring walked the other way, with an extra vertex on the edge.
        let b = poly(&[(116.01, 39.0), (116.01, 39.004), (116.01, 39.01), (116.02, 39.01), (116.02, 39.0), (116.01, 39.0)]);
        assert!(!overlaps(&a, &b) && !overlaps(&b, &a));
        // Same bbox, split along the diagonal.
        let t1 = poly(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]);
        let t2 = poly(&[(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]);
        assert!(!overlaps(&t1, &t2) && !overlaps(&t2, &t1));
        // A fan around a shared centre vertex.
        let fan = poly(&[(0.0, 0.0), (0.5, 0.5), (0.0, 1.0), (0.0, 0.0)]);
        assert!(!overlaps(&t1, &fan) && !overlaps(&fan, &t1));
        assert!(overlaps(&t2, &fan));
    }

    #[test]
    fn shared_area_is_overlap() {
        let a = r(0.0, 0.0, 2.0, 2.0);
        assert!(overlaps(&a, &a.clone()), "identical");
        assert!(overlaps(&a, &r(0.5, 0.5, 1.5, 1.5)), "inner");
        assert!(overlaps(&r(0.5, 0.5, 1.5, 1.5), &a), "outer");
        assert!(overlaps(&a, &r(0.0, 0.0, 1.0, 2.0)), "inner sharing edges");
        assert!(overlaps(&a, &r(1.0, 1.0, 3.0, 3.0)), "partial, crossing");
        assert!(overlaps(&a, &r(1.0, 0.0, 3.0, 2.0)), "partial, collinear edges");
        let diamond = poly(&[(1.0, 0.0), (2.0, 1.0), (1.0, 2.0), (0.0, 1.0), (1.0, 0.0)]);
        assert!(overlaps(&a, &diamond), "inscribed, vertices on boundary");
        let wedge = poly(&[(0.0, 0.0), (4.0, 4.0), (4.0, 0.0), (0.0, 0.0)]);
        assert!(overlaps(&a, &wedge), "diagonal through a vertex");
    }

    #[test]
    fn polygon_in_a_hole_does_not_overlap() {
        let mut a = r(0.0, 0.0, 4.0, 4.0);
        a.holes.push(r(1.0, 1.0, 3.0, 3.0).exterior);
        assert!(!overlaps(&a, &r(1.0, 1.0, 3.0, 3.0)));
        assert!(!overlaps(&a, &r(1.5, 1.5, 2.5, 2.5)));
        assert!(overlaps(&a, &r(0.5, 0.5, 2.0, 2.0)));
    }

    #[test]
    fn within_allows_shared_boundary() {
        let c = r(0.0, 0.0, 4.0, 4.0);
        assert!(within(&r(1.0, 1.0, 2.0, 2.0), &c));
        assert!(within(&r(0.0, 0.0, 2.0, 4.0), &c), "on the edge");
        assert!(within(&c, &c.clone()), "identical");
        assert!(!within(&r(3.0, 3.0, 5.0, 5.0), &c), "sticks out");
        assert!(!within(&r(4.0, 0.0, 5.0, 1.0), &c), "adjacent outside");
        assert!(!within(&c, &r(1.0, 1.0, 2.0, 2.0)));
    }

    #[test]
    fn within_respects_concavity_and_holes() {
        let u =
            poly(&[(0.0, 0.0), (3.0, 0.0), (3.0, 3.0), (2.0, 3.0), (2.0, 1.0), (1.0, 1.0), (1.0, 3.0), (0.0, 3.0), (0.0, 0.0)]);
        assert!(within(&r(0.0, 0.0, 3.0, 1.0), &u));
        assert!(!within(&r(0.0, 0.0, 3.0, 2.0), &u), "covers the notch");
        assert!(!within(&r(0.0, 1.0, 3.0, 3.0), &u), "notch via vertices only");
        let mut holed = r(0.0, 0.0, 4.0, 4.0);
        holed.holes.push(r(1.0, 1.0, 2.0, 2.0).exterior);
        assert!(!within(&r(0.5, 0.5, 3.0, 3.0), &holed), "hole inside");
        assert!(!within(&r(1.0, 1.0, 2.0, 2.0), &holed), "equals the hole");
        assert!(within(&r(2.0, 2.0, 4.0, 4.0), &holed), "touches hole corner");
    }

    #[test]
    fn jittered_lattice_neighbours_touch_but_never_overlap() {
        // splitmix64, so the layout is deterministic without a rand crate.
        let mut state = 7u64;
        let mut unit = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let n = 6;
        let (d, x0, y0) = (0.0013, 108.5, 28.56);
        let mut v = vec![vec![Point::new(0.0, 0.0); n + 1]; n + 1];
        for (i, col) in v.iter_mut().enumerate() {
            for (j, p) in col.iter_mut().enumerate() {
                let inner = i > 0 && j > 0 && i < n && j < n;
                let k = if inner { 0.6 * d } else { 0.0 };
                *p = Point::new(x0 + i as f64 * d + (unit() - 0.5) * k, y0 + j as f64 * d + (unit() - 0.5) * k);
            }
        }
        let community = r(x0, y0, x0 + n as f64 * d, y0 + n as f64 * d);
        let mut cells = Vec::new();
        for i in 0..n {
            for j in 0..n {
                let (a, b, c, e) = (v[i][j], v[i + 1][j], v[i + 1][j + 1], v[i][j + 1]);
                cells.push(Polygon::new(vec![a, b, c, e, a]));
            }
        }
        for (i, a) in cells.iter().enumerate() {
            assert!(within(a, &community), "cell {i}");
            assert!(overlaps(a, &a.map(|p| Point::new(p.lng + d * 0.1, p.lat))));
            for (j, b) in cells.iter().enumerate().skip(i + 1) {
                assert!(!overlaps(a, b), "cells {i} and {j}");
            }
        }
        assert!(!within(&community, &cells[0]));
    }

    #[test]
    fn crossing_primitives() {
        let p = |x, y| Point::new(x, y);
        let x = proper_cross(p(0.0, 0.0), p(2.0, 2.0), p(0.0, 2.0), p(2.0, 0.0));
        assert_eq!(x, Some(p(1.0, 1.0)));
        assert_eq!(proper_cross(p(0.0, 0.0), p(2.0, 0.0), p(1.0, 0.0), p(1.0, 1.0)), None);
        assert_eq!(segments_touch(p(0.0, 0.0), p(2.0, 0.0), p(1.0, 0.0), p(1.0, 1.0)), Some(p(1.0, 0.0)));
        assert_eq!(segments_touch(p(0.0, 0.0), p(1.0, 0.0), p(0.0, 1.0), p(1.0, 1.0)), None);
    }
}
