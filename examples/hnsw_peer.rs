//! The vector graph (hnsw_rs with verbatim's distance, as `index::vector` builds it) against
//! hnswlib on the same vectors and queries, printed as `peers.py hnsw` prints hnswlib's numbers,
//! so the two outputs sit side by side.
//!
//! ```sh
//! # X.npy: the points, Q.npy: held-out queries (float32, C order, L2-normalised rows)
//! cargo run --release --example hnsw_peer -- X.npy Q.npy EF_CONSTRUCTION M [THREADS]
//! ~/.cache/peers-venv/bin/python ../shared/tools/peers/peers.py hnsw --vectors X.npy \
//!     --queries Q.npy --efc EF_CONSTRUCTION --M M --threads THREADS
//! ```
//! Build: `parallel_insert` on THREADS threads (default 2). Queries: all of Q at once on THREADS
//! threads (`parallel_search`, as hnswlib's `knn_query` runs them), at ef 16–256; recall@10 by
//! id against exact search, as peers.py counts it.

use std::io::Read;
use std::time::Instant;

use hnsw_rs::prelude::*;
use rayon::prelude::*;
use verbatim::index::vector::{dot, CosineNormalized};

/// Reads a 2-D little-endian float32 `.npy` file (format 1.0 or 2.0, C order).
fn npy(path: &str) -> (Vec<f32>, usize, usize) {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut b = Vec::new();
    f.read_to_end(&mut b).unwrap();
    assert!(b.starts_with(b"\x93NUMPY"), "{path}: not a .npy file");
    let (hlen, start) = if b[6] == 1 {
        (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&b[start..start + hlen]).unwrap();
    assert!(
        header.contains("'<f4'") && header.contains("'fortran_order': False"),
        "{path}: want little-endian float32 in C order, header {header}"
    );
    let shape = header.split("'shape': (").nth(1).unwrap();
    let dims: Vec<usize> = shape
        .split(')')
        .next()
        .unwrap()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let data: Vec<f32> = b[start + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(data.len(), dims[0] * dims[1], "{path}: size");
    (data, dims[0], dims[1])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num =
        |i: usize, d: usize| -> usize { args.get(i).map_or(d, |a| a.parse().expect("a number")) };
    let (x, _, dim) = npy(&args[1]);
    let (q, _, qdim) = npy(&args[2]);
    assert_eq!(dim, qdim);
    let (efc, m, threads) = (num(3, 100), num(4, 16), num(5, 2));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let points: Vec<Vec<f32>> = x.chunks_exact(dim).map(<[f32]>::to_vec).collect();
    let queries: Vec<Vec<f32>> = q.chunks_exact(dim).map(<[f32]>::to_vec).collect();
    let truth: Vec<Vec<usize>> = queries
        .par_iter()
        .map(|qv| {
            let mut s: Vec<(f32, usize)> = points
                .iter()
                .enumerate()
                .map(|(i, p)| (-dot(qv, p), i))
                .collect();
            s.select_nth_unstable_by(9, |a, b| a.0.total_cmp(&b.0));
            s[..10].iter().map(|p| p.1).collect()
        })
        .collect();

    match std::env::var("KERNEL").as_deref() {
        Ok("narrow") => run(&points, &queries, &truth, efc, m, threads, Narrow, "narrow"),
        _ => run(
            &points,
            &queries,
            &truth,
            efc,
            m,
            threads,
            CosineNormalized,
            "ours",
        ),
    }
}

/// `1 - a·b` through [`dot`] (eight accumulators, one add chain): the graph's kernel before
/// `CosineNormalized` took 32 accumulators, kept to compare (`KERNEL=narrow`).
#[derive(Clone, Copy, Debug, Default)]
struct Narrow;

impl Distance<f32> for Narrow {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

#[allow(clippy::too_many_arguments)]
fn run<D: Distance<f32> + Send + Sync>(
    points: &[Vec<f32>],
    queries: &[Vec<f32>],
    truth: &[Vec<usize>],
    efc: usize,
    m: usize,
    threads: usize,
    kernel: D,
    name: &str,
) {
    let (n, dim, nq) = (points.len(), points[0].len(), queries.len());
    let t = Instant::now();
    let g: Hnsw<f32, D> = Hnsw::new(m, n, 16, efc, kernel);
    let refs: Vec<(&Vec<f32>, usize)> = points.iter().enumerate().map(|(i, v)| (v, i)).collect();
    g.parallel_insert(&refs);
    let build = t.elapsed().as_secs_f64();
    println!(
        "{{\"peer\": \"hnsw_rs\", \"kernel\": \"{name}\", \"n\": {n}, \"dim\": {dim}, \"M\": {m}, \"efc\": {efc}, \"threads\": {threads}, \"build_s\": {build:.2}, \"inserts_per_s\": {:.0}}}",
        n as f64 / build
    );
    // REPEAT=R: the query set R times, for a steadier rate (the recall is the first pass's)
    let repeat: usize = std::env::var("REPEAT").map_or(1, |r| r.parse().expect("REPEAT: a number"));
    for ef in [16, 32, 64, 128, 256] {
        let t = Instant::now();
        let got = g.parallel_search(queries, 10, ef);
        for _ in 1..repeat {
            std::hint::black_box(g.parallel_search(queries, 10, ef));
        }
        let dt = t.elapsed().as_secs_f64() / repeat as f64;
        let hits: usize = got
            .iter()
            .zip(truth)
            .map(|(g, t)| g.iter().filter(|nb| t.contains(&nb.d_id)).count())
            .sum();
        println!(
            "{{\"peer\": \"hnsw_rs\", \"ef\": {ef}, \"recall_at_10\": {:.4}, \"qps\": {:.0}}}",
            hits as f64 / (10 * nq) as f64,
            nq as f64 / dt
        );
    }
}
