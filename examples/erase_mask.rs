//! What an erasure costs the vector index: masking slots in place against rebuilding the graph.
//!
//! ```sh
//! cargo run --release --example erase_mask -- N [ERASED] [DIM]    # e.g. 100000 16 384
//! ```
//! Builds a graph of `N` random unit vectors (`DIM`, default 384 like the bundled models) with
//! the index's own parameters and persists it — the build is what the old erasure paid on every
//! `forget` (a rebuild from the store) — then masks `ERASED` slots (default 16: a respondent),
//! five times over fresh slots, with [`VectorIndex::mask`] (what `forget` now does after the
//! store's list of live slots): slots file read, records zeroed, generation re-published. Then
//! reopens the index (what the next command pays, unchanged by masking) and checks no masked
//! slot is returned. Threads: rayon's default (all cores), as `verbatim` runs.

use std::time::Instant;

use verbatim::index::{HnswParams, VectorIndex};

fn main() {
    let arg = |i: usize, default: usize| -> usize {
        std::env::args()
            .nth(i)
            .map(|a| a.parse().expect("N ERASED DIM are numbers"))
            .unwrap_or(default)
    };
    let (n, erased, dim) = (arg(1, 100_000), arg(2, 16), arg(3, 384));
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let items: Vec<(Vec<f32>, usize)> = (0..n)
        .map(|i| {
            let mut v: Vec<f32> = (0..dim).map(|_| rnd()).collect();
            verbatim::vecmath::l2_normalize(&mut v);
            (v, i)
        })
        .collect();
    let probe: Vec<f32> = items[n / 2].0.clone();
    let dir = tempfile::tempdir_in(".").expect("a temporary folder here");
    let vdir = dir.path().join("vectors");

    let t = Instant::now();
    let mut ix = VectorIndex::from_vectors(&vdir, HnswParams::default(), items, 1).expect("build");
    let build = t.elapsed().as_secs_f64();
    let data = std::fs::read_dir(&vdir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| dir_bytes(&e.path()))
        .sum::<u64>();
    println!(
        "n {n}, dim {dim}, threads {}: build + dump {build:.2} s (the old per-erasure cost, store read aside); generation {:.1} MB",
        rayon::current_num_threads(),
        data as f64 / 1e6
    );

    let mut times = Vec::new();
    let mut next = n / 2;
    for round in 0..5 {
        let slots: Vec<usize> = (0..erased).map(|j| (next + j * 7919) % n).collect();
        next += 104_729 % n.max(1) + round;
        let t = Instant::now();
        let masked = ix.mask(slots, 2 + round as i64).expect("mask");
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(masked, erased, "fresh slots each round");
    }
    times.sort_by(f64::total_cmp);
    println!(
        "mask {erased} slots: median {:.3} s, max {:.3} s over 5 rounds ({} masked in all)",
        times[2],
        times[4],
        ix.masked()
    );

    let t = Instant::now();
    let ix = VectorIndex::open(&vdir, HnswParams::default()).expect("reopen");
    println!(
        "reopen (load the dump): {:.2} s; {} points searchable of {} slots",
        t.elapsed().as_secs_f64(),
        ix.points(),
        ix.slots()
    );
    let hits = ix.search(&probe, 10, 128, |_| true);
    assert!(
        hits.iter().all(|h| h.0 as usize != n / 2),
        "a masked slot came back"
    );
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
