//! Rectangle tiling for generating demo grids inside a demo community.

use super::{Point, Polygon};

/// Splits the rectangle `min`–`max` into `n` rectangles that tile it exactly:
/// a near-square layout of rows × cols, with the last row holding the
/// remainder in wider pieces. Neighbours share bit-identical coordinates, so
/// `overlaps` sees them as merely touching. `n == 0` yields nothing.
pub fn split_rect(min: Point, max: Point, n: usize) -> Vec<Polygon> {
    if n == 0 {
        return Vec::new();
    }
    let (x0, x1) = (min.lng.min(max.lng), min.lng.max(max.lng));
    let (y0, y1) = (min.lat.min(max.lat), min.lat.max(max.lat));
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    // Endpoints are taken verbatim so pieces cover the rectangle exactly.
    let cut = |lo: f64, hi: f64, i: usize, k: usize| {
        if i == k { hi } else { lo + (hi - lo) * i as f64 / k as f64 }
    };
    let mut out = Vec::with_capacity(n);
    for r in 0..rows {
        let in_row = if r + 1 == rows { n - cols * (rows - 1) } else { cols };
        let (ya, yb) = (cut(y0, y1, r, rows), cut(y0, y1, r + 1, rows));
        for c in 0..in_row {
            let (xa, xb) = (cut(x0, x1, c, in_row), cut(x0, x1, c + 1, in_row));
            out.push(Polygon::rect(xa, ya, xb, yb));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{overlaps, validate, within};
    use super::*;

    #[test]
    fn pieces_tile_the_rectangle() {
        let (min, max) = (Point::new(108.50, 28.55), Point::new(108.53, 28.57));
        let whole = Polygon::rect(min.lng, min.lat, max.lng, max.lat);
        for n in 1..=12 {
            let pieces = split_rect(min, max, n);
            assert_eq!(pieces.len(), n);
            let total: f64 = pieces.iter().map(Polygon::area_m2).sum();
            // area_m2 projects each piece at its own latitude, hence 1e-4.
            assert!((total / whole.area_m2() - 1.0).abs() < 1e-4, "n={n}");
            for (i, a) in pieces.iter().enumerate() {
                assert_eq!(validate(a), Ok(()), "n={n} piece {i}");
                assert!(within(a, &whole), "n={n} piece {i}");
                for b in &pieces[i + 1..] {
                    assert!(!overlaps(a, b), "n={n} piece {i}");
                }
            }
        }
        assert_eq!(split_rect(min, max, 1)[0], whole);
        assert!(split_rect(min, max, 0).is_empty());
    }

    #[test]
    fn swapped_corners_are_normalised() {
        let a = split_rect(Point::new(1.0, 1.0), Point::new(0.0, 0.0), 3);
        let b = split_rect(Point::new(0.0, 0.0), Point::new(1.0, 1.0), 3);
        assert_eq!(a, b);
    }
}
