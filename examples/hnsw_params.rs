//! HNSW build time and recall for given parameters, on clustered synthetic unit vectors.
//!
//! ```sh
//! cargo run --release --example hnsw_params -- N EF_CONSTRUCTION M    # e.g. 100000 100 16
//! ```
//! Prints the build time (2 threads, `parallel_insert` as the vector index does) and recall@10
//! against brute force (by distance: ties count) on 200 queries at ef 64 and 128. It is how `HnswParams::default` was chosen.
//! A fourth argument, a workspace's `store.sqlite`, measures on its real embeddings instead.

use hnsw_rs::prelude::*;
use std::time::Instant;
use verbatim::index::vector::CosineNormalized;

fn main() {
    let arg = |i: usize, default: usize| -> usize {
        std::env::args()
            .nth(i)
            .map(|a| a.parse().expect("N EF_CONSTRUCTION M are numbers"))
            .unwrap_or(default)
    };
    let (n, efc, m) = (arg(1, 100_000), arg(2, 100), arg(3, 16));
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    let dim = 384;
    let mut seed = 12345u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ((seed >> 11) as f64 / (1u64 << 53) as f64) as f32 - 0.5
    };
    // A fourth argument names a workspace store: its real embeddings instead of synthetic ones.
    if let Some(store) = std::env::args().nth(4) {
        let store = verbatim::store::Store::open(std::path::Path::new(&store)).expect("store");
        let mut data = Vec::new();
        store
            .for_each(|_, _, v| {
                data.push(v);
                Ok(())
            })
            .expect("read vectors");
        data.truncate(n);
        return measure(data, efc, m);
    }
    let centers: Vec<Vec<f32>> = (0..300)
        .map(|_| (0..dim).map(|_| rnd()).collect())
        .collect();
    let mut data: Vec<Vec<f32>> = Vec::with_capacity(n);
    for i in 0..n {
        let c = &centers[(i * 7919) % 300];
        let mut v: Vec<f32> = c.iter().map(|x| x + 0.9 * rnd()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        data.push(v);
    }
    measure(data, efc, m);
}

fn measure(data: Vec<Vec<f32>>, efc: usize, m: usize) {
    let n = data.len();
    let t = Instant::now();
    let layers = 16.min((n as f32).ln().trunc() as usize).max(1);
    let g: Hnsw<f32, CosineNormalized> = Hnsw::new(m, n, layers, efc, CosineNormalized);
    let refs: Vec<(&Vec<f32>, usize)> = data.iter().enumerate().map(|(i, v)| (v, i)).collect();
    g.parallel_insert(&refs);
    let build = t.elapsed().as_secs_f64();
    // recall@10 on 200 queries vs brute force, ef=64/128
    for ef in [64, 128] {
        let mut hit = 0;
        for q in 0..200 {
            let qv = &data[q * 37 % n];
            let mut exact: Vec<(f32, usize)> = data
                .iter()
                .enumerate()
                .map(|(i, v)| (-verbatim::index::vector::dot(qv, v), i))
                .collect();
            exact.select_nth_unstable_by(9, |a, b| a.0.partial_cmp(&b.0).unwrap());
            // The 10th best similarity: a result at least this close is a true neighbour (real
            // data has exact duplicates, so counting ids would punish ties).
            let kth = -exact[9].0;
            let got = g.search(qv, 10, ef);
            hit += got
                .iter()
                .filter(|nb| verbatim::index::vector::dot(qv, &data[nb.d_id]) >= kth - 1e-6)
                .count();
        }
        println!(
            "n={n} efc={efc} m={m} build={build:.1}s ef={ef} recall@10={:.4}",
            hit as f64 / 2000.0
        );
    }
}
