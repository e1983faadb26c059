//! Point-to-grid lookup throughput on a city-sized set of grids.
//! Target: >= 1,000,000 lookups/s on one core with 50,000 grids.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use linli::geo::{GridIndex, Point, Polygon};

const COLS: usize = 250;
const ROWS: usize = 200;
const QUERIES: usize = 10_000;

/// Deterministic PRNG so every run measures the same layout and queries.
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

/// 250 × 200 irregular quadrilaterals around 116.4E 39.9N. Interior lattice
/// vertices are jittered but shared, so the grids tile without overlap.
fn grids(rng: &mut SplitMix64) -> Vec<(u32, Polygon)> {
    let (dx, dy) = (0.001, 0.0008);
    let mut v = vec![vec![Point::new(0.0, 0.0); ROWS + 1]; COLS + 1];
    for (i, col) in v.iter_mut().enumerate() {
        for (j, pt) in col.iter_mut().enumerate() {
            let inner = i > 0 && j > 0 && i < COLS && j < ROWS;
            let (jx, jy) = if inner { ((rng.unit() - 0.5) * 0.5 * dx, (rng.unit() - 0.5) * 0.5 * dy) } else { (0.0, 0.0) };
            *pt = Point::new(116.4 + i as f64 * dx + jx, 39.9 + j as f64 * dy + jy);
        }
    }
    let mut out = Vec::with_capacity(COLS * ROWS);
    for i in 0..COLS {
        for j in 0..ROWS {
            let ring = vec![v[i][j], v[i + 1][j], v[i + 1][j + 1], v[i][j + 1], v[i][j]];
            out.push((out.len() as u32, Polygon::new(ring)));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut rng = SplitMix64(2024);
    let items = grids(&mut rng);
    // Slightly beyond the lattice so some lookups miss, as real data does.
    let points: Vec<Point> = (0..QUERIES)
        .map(|_| {
            Point::new(116.395 + rng.unit() * (COLS as f64 * 0.001 + 0.01), 39.895 + rng.unit() * (ROWS as f64 * 0.0008 + 0.01))
        })
        .collect();

    let mut group = c.benchmark_group("grid_index");
    group.sample_size(10);
    group.bench_function("build_50k", |b| b.iter_batched(|| items.clone(), GridIndex::build, BatchSize::LargeInput));

    let index = GridIndex::build(items);
    let hits = points.iter().filter(|&&p| index.locate(p).is_some()).count();
    println!("{} grids, {hits}/{QUERIES} query points inside a grid", index.len());

    group.sample_size(50);
    group.throughput(Throughput::Elements(QUERIES as u64));
    group.bench_function("locate_10k_points", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &p in &points {
                if let Some(&id) = index.locate(black_box(p)) {
                    sum += u64::from(id);
                }
            }
            black_box(sum)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
