//! In-process hot paths of a write: validating identifiers at the edge, segmenting a case's
//! text for search, and computing the rollup changes of a transition. Numbers, not tests: CI
//! builds this bench but does not judge its speed (see docs/performance.md).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use linli::cases::cube;
use linli::cases::rates::Counts;
use linli::cases::rollups::{Deltas, Key};
use linli::ident::{CreditCode, IdNumber, Mobile};

fn validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    g.bench_function("id_number", |b| b.iter(|| IdNumber::parse(black_box("11010519491231002X")).is_ok()));
    g.bench_function("mobile", |b| b.iter(|| Mobile::parse(black_box("138 0013 8000")).is_ok()));
    g.bench_function("credit_code", |b| b.iter(|| CreditCode::parse(black_box("91350100M000100Y43")).is_ok()));
    g.finish();
}

fn search_terms(c: &mut Criterion) {
    linli::cases::search::warm_up();
    let text = "楼道灯：和平社区3栋2单元楼道的灯坏了一个星期，晚上老人上下楼很不方便，请尽快维修 和平街道花花桥社区 楼道灯";
    c.bench_function("search/doc_terms (60 chars)", |b| b.iter(|| linli::cases::search::doc_terms(black_box(text)).len()));
}

fn rollup_delta(c: &mut Criterion) {
    // A follow-up: the case moves from "finished" to "followed up, satisfied".
    let key = Key { day: 20_500, community: "110000001001".into(), unit: 17, category: 3 };
    let before = Counts { cases: 1, finished: 1, dispatched: 1, accepted: 1, signed_in_time: 1, ..Counts::default() };
    let after = Counts { valid: 1, contacted: 1, solved: 1, satisfied: 1, ..before };
    let (b0, a0) = ((key.clone(), before), (key, after));
    c.bench_function("rollup/deltas + cube cells (transition)", |b| {
        b.iter(|| {
            let mut d = Deltas::default();
            d.moved(Some(black_box(&b0)), Some(black_box(&a0)));
            cube::cells_of(d.changes()).len()
        })
    });
}

criterion_group!(benches, validation, search_terms, rollup_delta);
criterion_main!(benches);
