//! Point-to-grid lookup for geotagged events and residents' addresses. The
//! whole city's grids are indexed once and queried often, so the layout is
//! optimised for lookups: a uniform bucket grid over the region plus all
//! rings in one flat array.

use super::polygon::{Loc, locate_in_rings};
use super::{EPS, Point, Polygon};

/// Upper bound per axis so a degenerate input cannot allocate huge tables.
const MAX_CELLS_PER_AXIS: usize = 4096;

/// Cells per polygon; two keeps candidate lists short without much memory.
const CELLS_PER_POLYGON: f64 = 2.0;

/// Immutable spatial index from polygons to values. It is `Send + Sync`
/// whenever `T` is, so one index can be shared by all request handlers.
#[derive(Clone, Debug)]
pub struct GridIndex<T> {
    items: Vec<T>,
    /// Per polygon: min lng, min lat, max lng, max lat, widened by `EPS`.
    bboxes: Vec<[f64; 4]>,
    /// Per polygon (plus one sentinel): first entry in `ring_starts`.
    poly_rings: Vec<u32>,
    /// Per ring (plus one sentinel): first position in `points`.
    ring_starts: Vec<u32>,
    /// Every ring of every polygon, each explicitly closed.
    points: Vec<Point>,
    /// Bucket grid extent, widened by `EPS`; inverted when empty.
    region: [f64; 4],
    nx: usize,
    ny: usize,
    inv_cell_w: f64,
    inv_cell_h: f64,
    /// Per cell (plus one sentinel): first entry in `cell_items`.
    cell_starts: Vec<u32>,
    cell_items: Vec<u32>,
}

impl<T> GridIndex<T> {
    /// Builds the index in roughly linear time. Polygons with no positions
    /// are kept (so indices stay aligned) but can never be located.
    pub fn build(items: Vec<(T, Polygon)>) -> GridIndex<T> {
        let n = items.len();
        let mut values = Vec::with_capacity(n);
        let mut bboxes = Vec::with_capacity(n);
        let mut poly_rings = Vec::with_capacity(n + 1);
        let mut ring_starts = vec![0u32];
        let mut points = Vec::new();
        let inf = f64::INFINITY;
        let mut region = [inf, inf, -inf, -inf];
        for (value, poly) in items {
            poly_rings.push(to_u32(ring_starts.len() - 1));
            for ring in poly.rings() {
                points.extend_from_slice(ring);
                if let (Some(&first), Some(&last)) = (ring.first(), ring.last())
                    && first != last
                {
                    points.push(first);
                }
                ring_starts.push(to_u32(points.len()));
            }
            let (min, max) = poly.bbox();
            let b = if min.lng <= max.lng && min.lat <= max.lat {
                [min.lng - EPS, min.lat - EPS, max.lng + EPS, max.lat + EPS]
            } else {
                [inf, inf, -inf, -inf]
            };
            region = [region[0].min(b[0]), region[1].min(b[1]), region[2].max(b[2]), region[3].max(b[3])];
            bboxes.push(b);
            values.push(value);
        }
        poly_rings.push(to_u32(ring_starts.len() - 1));

        let mut index = GridIndex {
            items: values,
            bboxes,
            poly_rings,
            ring_starts,
            points,
            region,
            nx: 0,
            ny: 0,
            inv_cell_w: 0.0,
            inv_cell_h: 0.0,
            cell_starts: vec![0],
            cell_items: Vec::new(),
        };
        index.fill_cells();
        index
    }

    fn fill_cells(&mut self) {
        let [x0, y0, x1, y1] = self.region;
        if !(x0 <= x1 && y0 <= y1) {
            return;
        }
        let (w, h) = (x1 - x0, y1 - y0);
        let target = (self.items.len() as f64 * CELLS_PER_POLYGON).max(1.0);
        let cell = (w * h / target).sqrt();
        let cells_along = |extent: f64| {
            let k = (extent / cell).ceil();
            if k.is_finite() { (k as usize).clamp(1, MAX_CELLS_PER_AXIS) } else { 1 }
        };
        self.nx = cells_along(w);
        self.ny = cells_along(h);
        self.inv_cell_w = if w > 0.0 { self.nx as f64 / w } else { 0.0 };
        self.inv_cell_h = if h > 0.0 { self.ny as f64 / h } else { 0.0 };

        // Counting sort into CSR layout: one pass to size, one to fill.
        let mut counts = vec![0u32; self.nx * self.ny + 1];
        for b in &self.bboxes {
            if let Some((cx0, cy0, cx1, cy1)) = self.cell_span(b) {
                for cy in cy0..=cy1 {
                    for c in &mut counts[cy * self.nx + cx0..=cy * self.nx + cx1] {
                        *c += 1;
                    }
                }
            }
        }
        let mut acc = 0u32;
        for c in &mut counts {
            let k = *c;
            *c = acc;
            acc += k;
        }
        let mut next = counts.clone();
        let mut cell_items = vec![0u32; acc as usize];
        for (i, b) in self.bboxes.iter().enumerate() {
            if let Some((cx0, cy0, cx1, cy1)) = self.cell_span(b) {
                for cy in cy0..=cy1 {
                    for cx in cx0..=cx1 {
                        let slot = &mut next[cy * self.nx + cx];
                        cell_items[*slot as usize] = to_u32(i);
                        *slot += 1;
                    }
                }
            }
        }
        self.cell_starts = counts;
        self.cell_items = cell_items;
    }

    #[inline]
    fn cell_x(&self, lng: f64) -> usize {
        (((lng - self.region[0]) * self.inv_cell_w) as usize).min(self.nx - 1)
    }

    #[inline]
    fn cell_y(&self, lat: f64) -> usize {
        (((lat - self.region[1]) * self.inv_cell_h) as usize).min(self.ny - 1)
    }

    fn cell_span(&self, b: &[f64; 4]) -> Option<(usize, usize, usize, usize)> {
        (b[0] <= b[2]).then(|| (self.cell_x(b[0]), self.cell_y(b[1]), self.cell_x(b[2]), self.cell_y(b[3])))
    }

    /// Position of the polygon containing `p` (boundary included) in the
    /// input order. With overlapping inputs any one of the matches.
    #[inline]
    pub fn locate_index(&self, p: Point) -> Option<usize> {
        let r = &self.region;
        // Written negated so NaN coordinates are rejected too.
        if !(p.lng >= r[0] && p.lng <= r[2] && p.lat >= r[1] && p.lat <= r[3]) {
            return None;
        }
        let cell = self.cell_y(p.lat) * self.nx + self.cell_x(p.lng);
        let (start, end) = (self.cell_starts[cell], self.cell_starts[cell + 1]);
        for &i in &self.cell_items[start as usize..end as usize] {
            let i = i as usize;
            let b = &self.bboxes[i];
            if p.lng < b[0] || p.lng > b[2] || p.lat < b[1] || p.lat > b[3] {
                continue;
            }
            if self.polygon_contains(i, p) {
                return Some(i);
            }
        }
        None
    }

    #[inline]
    fn polygon_contains(&self, i: usize, p: Point) -> bool {
        let rings = self.poly_rings[i] as usize..self.poly_rings[i + 1] as usize;
        let ring_slices = rings.map(|r| &self.points[self.ring_starts[r] as usize..self.ring_starts[r + 1] as usize]);
        locate_in_rings(ring_slices, p, EPS) != Loc::Outside
    }

    /// The value whose polygon contains `p` (boundary included).
    #[inline]
    pub fn locate(&self, p: Point) -> Option<&T> {
        self.locate_index(p).map(|i| &self.items[i])
    }

    /// Input positions of the polygons whose bounding box meets the box `min`–`max` (the
    /// candidates for an overlap test).
    pub fn near(&self, min: Point, max: Point) -> Vec<usize> {
        (0..self.bboxes.len())
            .filter(|&i| {
                let b = &self.bboxes[i];
                b[0] <= max.lng && min.lng <= b[2] && b[1] <= max.lat && min.lat <= b[3]
            })
            .collect()
    }

    /// The value at input position `i`, e.g. from `locate_index`.
    pub fn get(&self, i: usize) -> Option<&T> {
        self.items.get(i)
    }

    /// All values in input order.
    pub fn values(&self) -> &[T] {
        &self.items
    }

    /// Number of indexed polygons.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing was indexed; every lookup then returns `None`.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The flat arrays use u32 offsets to halve their size; four billion
/// positions is far beyond any city.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("GridIndex supports at most u32::MAX positions")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Irregular quadrilateral lattice: shared jittered vertices, so the
    /// cells tile the region with no gaps or overlaps.
    fn lattice(cols: usize, rows: usize, rng: &mut SplitMix64) -> Vec<(usize, Polygon)> {
        let (dx, dy) = (0.001, 0.0008);
        let mut v = vec![vec![Point::new(0.0, 0.0); rows + 1]; cols + 1];
        for (i, col) in v.iter_mut().enumerate() {
            for (j, pt) in col.iter_mut().enumerate() {
                let inner = i > 0 && j > 0 && i < cols && j < rows;
                let (jx, jy) = if inner { ((rng.unit() - 0.5) * 0.5 * dx, (rng.unit() - 0.5) * 0.5 * dy) } else { (0.0, 0.0) };
                *pt = Point::new(116.4 + i as f64 * dx + jx, 39.9 + j as f64 * dy + jy);
            }
        }
        let mut out = Vec::new();
        for i in 0..cols {
            for j in 0..rows {
                let ring = vec![v[i][j], v[i + 1][j], v[i + 1][j + 1], v[i][j + 1], v[i][j]];
                out.push((out.len(), Polygon::new(ring)));
            }
        }
        out
    }

    #[test]
    fn matches_brute_force_on_random_points() {
        let mut rng = SplitMix64(42);
        let mut polys = lattice(40, 30, &mut rng);
        // A holed polygon off to the side, and an empty one.
        let mut holed = Polygon::rect(116.5, 39.9, 116.51, 39.91);
        holed.holes.push(Polygon::rect(116.502, 39.902, 116.508, 39.908).exterior);
        polys.push((polys.len(), holed));
        polys.push((polys.len(), Polygon::new(Vec::new())));
        let index = GridIndex::build(polys.clone());
        assert_eq!(index.len(), polys.len());
        let mut found = 0;
        for k in 0..8_000 {
            let p = if k % 10 == 0 {
                // Exactly on a vertex or edge midpoint: boundaries must match.
                let (_, poly) = &polys[(rng.next() % 1200) as usize];
                let (a, b) = (poly.exterior[k % 4], poly.exterior[k % 4 + 1]);
                let t = if k % 20 == 0 { 0.0 } else { 0.5 };
                Point::new(a.lng + t * (b.lng - a.lng), a.lat + t * (b.lat - a.lat))
            } else {
                Point::new(116.39 + rng.unit() * 0.13, 39.89 + rng.unit() * 0.04)
            };
            let brute = polys.iter().find(|(_, poly)| poly.contains(p));
            match index.locate(p) {
                Some(&i) => {
                    assert!(polys[i].1.contains(p), "{p:?} not in {i}");
                    found += 1;
                }
                None => assert!(brute.is_none(), "{p:?} missed, brute {:?}", brute.map(|b| b.0)),
            }
        }
        assert!(found > 2_000, "test should mostly hit grids, found {found}");
        assert_eq!(index.locate(Point::new(116.505, 39.905)), None, "in the hole");
        assert_eq!(index.locate(Point::new(116.501, 39.905)), Some(&1200));
        assert_eq!(index.locate(Point::new(f64::NAN, 39.9)), None);
        assert_eq!(index.locate_index(Point::new(116.4, 39.9)), Some(0), "corner");
    }

    #[test]
    fn empty_and_degenerate_inputs() {
        let empty: GridIndex<u8> = GridIndex::build(Vec::new());
        assert!(empty.is_empty());
        assert_eq!(empty.locate(Point::new(0.0, 0.0)), None);
        let only_empty = GridIndex::build(vec![("x", Polygon::new(Vec::new()))]);
        assert_eq!(only_empty.len(), 1);
        assert_eq!(only_empty.locate(Point::new(0.0, 0.0)), None);
        let single = GridIndex::build(vec![("a", Polygon::rect(1.0, 1.0, 2.0, 2.0))]);
        assert_eq!(single.locate(Point::new(1.5, 1.5)), Some(&"a"));
        assert_eq!(single.locate(Point::new(2.0, 2.0)), Some(&"a"));
        assert_eq!(single.locate(Point::new(2.1, 1.5)), None);
        assert_eq!(single.get(0), Some(&"a"));
        assert_eq!(single.values(), &["a"]);
    }

    #[test]
    fn unclosed_rings_are_closed_in_storage() {
        let tri = Polygon::new(vec![Point::new(0.0, 0.0), Point::new(1.0, 0.0), Point::new(0.0, 1.0)]);
        let index = GridIndex::build(vec![(7, tri)]);
        assert_eq!(index.locate(Point::new(0.2, 0.2)), Some(&7));
        assert_eq!(index.locate(Point::new(0.0, 0.5)), Some(&7), "closing edge");
        assert_eq!(index.locate(Point::new(0.6, 0.6)), None);
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<X: Send + Sync>() {}
        assert_send_sync::<GridIndex<String>>();
    }
}
