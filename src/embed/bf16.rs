//! A bf16 matrix multiply for the encoder's linear layers: AMX tiles where the CPU has them,
//! AVX512-BF16 (`vdpbf16ps`) otherwise.
//!
//! Why: on CPUs with bf16 matrix instructions (Intel Sapphire Rapids and later: AMX; AMD Zen 4/5
//! and Intel Cooper Lake: AVX512-BF16) PyTorch runs its bf16 path on them, and verbatim's fp32
//! encoder was 1.2–2× slower than PyTorch in bf16 there (issue 19). Measured on the Xeon this was
//! written on (1 thread, BENCHMARKS.md "bf16 path"): one `vdpbf16ps` retires every other cycle,
//! so AVX512-BF16 peaks *below* fp32 FMA on that core and the kernel alone loses to the fp32 gemm
//! crate; an AMX `tdpbf16ps` does a 16×16×32 product per instruction, and that is where the
//! speed comes from. The AVX512-BF16 kernel is kept for CPUs with bf16 but no AMX (and as the
//! reference the AMX kernel is tested against on the same packing).
//!
//! What is rounded: weights are converted to bf16 once, at load ([`PackedB::pack`]), and the
//! activations once per product (each row of `a` is rounded as it is packed); products and sums
//! are fp32 (both instructions accumulate in fp32), and so is the output. Layer norm, softmax,
//! GELU, attention and pooling stay fp32 in `bert.rs`. Both operands are rounded to nearest-even
//! (8 significant bits: relative error ≤ 2⁻⁸ each), so an output differs from the fp32 product
//! by at most about 2⁻⁷·Σ|aᵢₖ·bₖⱼ| — the bound the property tests check.
//!
//! This is the crate's one module of hand-written SIMD and inline assembly: every `unsafe` block
//! carries a `// SAFETY:` comment, the public functions are safe and check every bound before
//! entering a kernel, and [`available`] / `amx()` decide at run time what the CPU (and, for AMX,
//! the kernel: Linux hands out tile state only on request, `arch_prctl(ARCH_REQ_XCOMP_PERM)`)
//! allows.
//!
//! Layout. Both instructions treat each 32-bit lane as a pair of bf16 along k and add
//! `a₀b₀ + a₁b₁` to an fp32 lane. So the weight matrix (`k × n`, row-major, `in × out`) is packed
//! in panels of [`NR`] = 32 output columns; within a panel, for each pair of rows `(2p, 2p+1)` of
//! the weight matrix, 32 lanes hold `(b[2p][j], b[2p+1][j])` for the panel's columns `j` — AMX's
//! "VNNI" layout for B, two 16-column tiles side by side (row stride 128 bytes). An activation
//! row rounded to bf16 is already a sequence of such pairs (`a[r][2p], a[r][2p+1]` adjacent),
//! which is both what AMX loads as A and what the AVX-512 kernel broadcasts. k is padded with
//! zeros to a multiple of 32 (one tile's depth), rows of `a` to a block of [`MC`]; padding is
//! never stored. AMX: a 32 × 32 block of the output is four accumulator tiles, fed by two A and
//! two B tiles per 32 of k. AVX-512: [`MR`] × 32 results in 24 registers, k in blocks of [`KC`]
//! pairs so a panel's block (16 KiB) stays in L1 across a block of rows.
#![allow(unsafe_code)]

use gemm::Parallelism;
use rayon::prelude::*;

/// Output columns per panel: two AVX-512 registers of fp32.
const NR: usize = 32;
/// Rows of the micro-kernel (MR × 2 accumulator registers = 24 of the 32).
const MR: usize = 12;
/// Rows of `a` packed at once (a multiple of [`MR`]).
const MC: usize = 8 * MR;
/// k-pairs per block: `KC` pairs × 32 columns × 4 bytes = 16 KiB of a panel.
const KC: usize = 128;
/// k-pairs per AMX tile (16 rows of B, 64 bytes of A per row); `kp` is padded to a multiple.
const KT: usize = 16;
/// Rows and columns of the AMX micro-kernel's output block (2 × 2 tiles of 16 × 16 fp32).
const AMX_BLOCK: usize = 32;

/// True when this CPU runs the bf16 kernel (AVX512F and AVX512-BF16).
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when this CPU has AMX-BF16 tiles, the OS saves their state and this process may use
/// them (asked once; the answer is kept).
pub(crate) fn amx() -> bool {
    static AMX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMX.get_or_init(|| available() && amx_enable())
}

/// Which kernel runs, for logs and benches: `amx`, `avx512-bf16`, or `none`.
pub(crate) fn kernel_name() -> &'static str {
    if amx() {
        "amx"
    } else if available() {
        "avx512-bf16"
    } else {
        "none"
    }
}

/// CPUID says AMX-TILE and AMX-BF16, XCR0 says the OS manages the tile state, and Linux grants
/// this process the tile data (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn amx_enable() -> bool {
    use std::arch::asm;
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    let (leaf1, leaf7) = (__cpuid(1), __cpuid_count(7, 0));
    let amx_bf16 = leaf7.edx & (1 << 22) != 0;
    let amx_tile = leaf7.edx & (1 << 24) != 0;
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    if !(amx_bf16 && amx_tile && osxsave) {
        return false;
    }
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV with ECX = 0 reads XCR0; it is valid when CPUID reports OSXSAVE (checked
    // above). It touches no memory.
    unsafe {
        asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi, options(nomem, nostack));
    }
    let xcr0 = (hi as u64) << 32 | lo as u64;
    // Bits 17 (XTILECFG) and 18 (XTILEDATA).
    if xcr0 & (0b11 << 17) != 0b11 << 17 {
        return false;
    }
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: the arch_prctl system call with ARCH_REQ_XCOMP_PERM takes two integers and
    // reads or writes no user memory; `syscall` clobbers rcx and r11, declared here. It fails
    // (negative return) on kernels without AMX support, which then means "no AMX".
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn amx_enable() -> bool {
    false
}

/// `x` rounded to the nearest bf16 (ties to even), as the bits of that bf16. NaN stays NaN.
#[inline(always)]
pub(crate) fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        // Keep the sign and set a mantissa bit, so a NaN whose payload is in the low half
        // does not become infinity.
        return ((bits >> 16) | 0x40) as u16;
    }
    let lsb = (bits >> 16) & 1;
    (bits.wrapping_add(0x7fff + lsb) >> 16) as u16
}

/// The f32 a bf16's bits stand for (exact).
#[cfg(test)]
#[inline(always)]
pub(crate) fn from_bf16(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// Two bf16 in one 32-bit lane: `lo` in the low half, as `vdpbf16ps` reads them.
#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    to_bf16(lo) as u32 | (to_bf16(hi) as u32) << 16
}

/// A `k × n` weight matrix rounded to bf16 and packed for the kernel (see the module docs).
pub(crate) struct PackedB {
    k: usize,
    n: usize,
    /// Pairs of k, padded with zeros to a multiple of [`KT`].
    kp: usize,
    /// `n.div_ceil(NR)` panels of `kp × NR` pairs.
    data: Vec<u32>,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedB")
            .field("k", &self.k)
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl PackedB {
    /// Packs `b`, a row-major `k × n` matrix (`in × out`, the layout `bert.rs` keeps).
    pub fn pack(b: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(b.len(), k * n, "PackedB::pack: b is not {k}×{n}");
        let kp = k.div_ceil(2 * KT) * KT;
        let panels = n.div_ceil(NR);
        let mut data = vec![0u32; panels * kp * NR];
        let at = |row: usize, col: usize| if row < k { b[row * n + col] } else { 0.0 };
        for (panel, out) in data.chunks_exact_mut(kp * NR).enumerate() {
            let j0 = panel * NR;
            let cols = NR.min(n - j0);
            for (p, lanes) in out.chunks_exact_mut(NR).enumerate() {
                for (c, lane) in lanes[..cols].iter_mut().enumerate() {
                    *lane = pair(at(2 * p, j0 + c), at(2 * p + 1, j0 + c));
                }
            }
        }
        Self { k, n, kp, data }
    }
}

/// The two kernels (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Amx,
    Avx512,
}

/// `dst[i][j] (+)= Σₖ a[i][k]·b[k][j]` for `i < m`, in bf16 with fp32 accumulation.
///
/// `a` is row-major with row stride `a_rs` (the `k` columns of `b`'s rows used), `dst`
/// row-major with row stride `dst_rs`; `accumulate` adds to `dst` instead of overwriting it.
/// With `Parallelism::Rayon(t)`, `t > 1`, blocks of rows run on the rayon pool. AMX runs where
/// [`amx`] says so, else the AVX512-BF16 kernel.
///
/// Panics if the CPU lacks AVX512-BF16 ([`available`]) or a view is out of bounds.
pub(crate) fn matmul(
    m: usize,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    a: (&[f32], usize),
    b: &PackedB,
    parallelism: Parallelism,
) {
    let kernel = if amx() { Kernel::Amx } else { Kernel::Avx512 };
    matmul_with(kernel, m, dst, dst_rs, accumulate, a, b, parallelism);
}

#[allow(clippy::too_many_arguments)]
fn matmul_with(
    kernel: Kernel,
    m: usize,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    (a, a_rs): (&[f32], usize),
    b: &PackedB,
    parallelism: Parallelism,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(available(), "bf16::matmul: this CPU has no AVX512-BF16");
    assert!(
        kernel != Kernel::Amx || amx(),
        "bf16::matmul: AMX is not available"
    );
    assert!(m == 1 || dst_rs >= n, "bf16::matmul: dst rows overlap");
    assert!(
        (m - 1) * dst_rs + n <= dst.len(),
        "bf16::matmul: dst out of bounds"
    );
    assert!(m == 1 || a_rs >= k, "bf16::matmul: a rows overlap");
    assert!(
        (m - 1) * a_rs + k <= a.len(),
        "bf16::matmul: a out of bounds"
    );
    // Exactly the rows used, so the blocks below are exactly the m.div_ceil(MC) row blocks.
    let dst = &mut dst[..(m - 1) * dst_rs + n];
    let threads = match parallelism {
        Parallelism::Rayon(t) => t.max(1),
        _ => 1,
    };
    let block = |(bi, rows): (usize, &mut [f32])| {
        let i0 = bi * MC;
        let mc = MC.min(m - i0);
        let packed = pack_rows(mc, &a[i0 * a_rs..], a_rs, b);
        // What both block kernels rely on: `rows` holds mc rows of n columns at stride dst_rs.
        assert!((mc - 1) * dst_rs + n <= rows.len());
        let block = Block {
            mc,
            dst_rs,
            accumulate,
            packed: &packed,
            b,
        };
        match kernel {
            Kernel::Amx => block.amx(rows),
            Kernel::Avx512 => block.avx512(rows),
        }
    };
    // Each block of MC rows of dst is a disjoint slice; the last may be short (it ends at the
    // last row's n-th column).
    if threads > 1 && m > MC {
        dst.par_chunks_mut(MC * dst_rs).enumerate().for_each(block);
    } else {
        dst.chunks_mut(MC * dst_rs).enumerate().for_each(block);
    }
}

/// `mc ≤ MC` rows of `a` (row stride `a_rs`, `b.k` columns) rounded to bf16 pairs: `MC` rows
/// of `b.kp` pairs, zeros beyond `mc` rows and `k` columns.
fn pack_rows(mc: usize, a: &[f32], a_rs: usize, b: &PackedB) -> Vec<u32> {
    let (k, kp) = (b.k, b.kp);
    let mut packed = vec![0u32; MC * kp];
    for (r, out) in packed.chunks_exact_mut(kp).take(mc).enumerate() {
        let row = &a[r * a_rs..r * a_rs + k];
        // SAFETY: `matmul_with` checked `available()` (AVX512F + AVX512-BF16) before any block.
        unsafe { pack_row(row, out) };
    }
    packed
}

/// Rounds `row` to bf16 pairs into `out` (`out.len() ≥ row.len().div_ceil(2)`; the rest of
/// `out` is left as it is): 32 values per instruction, then the tail one pair at a time.
///
/// # Safety
///
/// The CPU has AVX512F and AVX512-BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pack_row(row: &[f32], out: &mut [u32]) {
    use std::arch::x86_64::*;
    assert!(out.len() >= row.len().div_ceil(2));
    let mut chunks = row.chunks_exact(32);
    let mut outs = out.chunks_exact_mut(16);
    for (c, o) in (&mut chunks).zip(&mut outs) {
        // SAFETY: `c` holds 32 f32 (two unaligned 64-byte loads), `o` 16 u32 (one unaligned
        // 64-byte store).
        unsafe {
            let lo = _mm512_loadu_ps(c.as_ptr());
            let hi = _mm512_loadu_ps(c.as_ptr().add(16));
            // Lanes 0..16 from the second operand: the pairs stay in row order.
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(o.as_mut_ptr() as *mut __m512i, v);
        }
    }
    let done = row.len() - chunks.remainder().len();
    let tail = chunks.remainder();
    for (i, o) in out[done / 2..]
        .iter_mut()
        .take(tail.len().div_ceil(2))
        .enumerate()
    {
        let hi = tail.get(2 * i + 1).copied().unwrap_or(0.0);
        *o = pair(tail[2 * i], hi);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn pack_row(_: &[f32], _: &mut [u32]) {
    unreachable!("bf16::available() is false off x86-64")
}

/// One block of `mc ≤ MC` rows of the product: its rows of `a` rounded by [`pack_rows`], the
/// packed weights, and how the block's rows of `dst` (row stride `dst_rs`) are written.
struct Block<'a> {
    mc: usize,
    dst_rs: usize,
    accumulate: bool,
    packed: &'a [u32],
    b: &'a PackedB,
}

impl Block<'_> {
    /// On AMX: 32 × 32 output blocks, each the whole of k in tiles.
    fn amx(&self, dst: &mut [f32]) {
        let (mc, dst_rs, accumulate, packed, b) =
            (self.mc, self.dst_rs, self.accumulate, self.packed, self.b);
        let (n, kp) = (b.n, b.kp);
        let mut out = [0.0f32; AMX_BLOCK * AMX_BLOCK];
        let _tiles = Tiles::configure();
        for i0 in (0..mc).step_by(AMX_BLOCK) {
            let rows = AMX_BLOCK.min(mc - i0);
            // 32 rows from i0: MC is a multiple of 32 and i0 < mc ≤ MC.
            let ablock = &packed[i0 * kp..(i0 + AMX_BLOCK) * kp];
            for (panel, bpanel) in b.data.chunks_exact(kp * NR).enumerate() {
                let j0 = panel * NR;
                let cols = NR.min(n - j0);
                // SAFETY: `_tiles` holds this thread's tile configuration (eight 16 × 64-byte
                // tiles) and `amx()` was checked by `matmul_with`. The kernel reads 32 rows of kp
                // pairs at stride kp from `ablock` (exactly its length), kp × NR pairs from
                // `bpanel` (exactly its length) and writes 32 × 32 f32 to `out` (its length).
                unsafe { amx_kernel(kp, ablock.as_ptr(), bpanel.as_ptr(), out.as_mut_ptr()) };
                for r in 0..rows {
                    let d = &mut dst[(i0 + r) * dst_rs + j0..][..cols];
                    let o = &out[r * AMX_BLOCK..][..cols];
                    if accumulate {
                        d.iter_mut().zip(o).for_each(|(d, o)| *d += o);
                    } else {
                        d.copy_from_slice(o);
                    }
                }
            }
        }
    }

    /// On AVX512-BF16: the MR × NR micro-kernel over every panel.
    fn avx512(&self, dst: &mut [f32]) {
        let (mc, dst_rs, accumulate, packed, b) =
            (self.mc, self.dst_rs, self.accumulate, self.packed, self.b);
        let (n, kp) = (b.n, b.kp);
        // The kernel's stores are unchecked: the bound they rely on, here where they happen.
        assert!((mc - 1) * dst_rs + n <= dst.len());
        for p0 in (0..kp).step_by(KC) {
            let kc = KC.min(kp - p0);
            let load = accumulate || p0 > 0;
            for (panel, bpanel) in b.data.chunks_exact(kp * NR).enumerate() {
                let j0 = panel * NR;
                let cols = NR.min(n - j0);
                let bblock = &bpanel[p0 * NR..(p0 + kc) * NR];
                for i0 in (0..mc).step_by(MR) {
                    let rows = MR.min(mc - i0);
                    let ablock = &packed[i0 * kp + p0..];
                    // The kernel reads MR rows of kc pairs from `ablock` at stride kp, kc × NR
                    // from `bblock`, and reads/writes `rows` rows × `cols` columns of dst from
                    // `i0·dst_rs + j0`. The bounds it relies on:
                    assert!((MR - 1) * kp + kc <= ablock.len());
                    debug_assert!(bblock.len() == kc * NR);
                    debug_assert!((i0 + rows - 1) * dst_rs + j0 + cols <= dst.len());
                    let c = &mut dst[i0 * dst_rs + j0..];
                    // SAFETY: `available()` was checked by `matmul_with`, so the target features
                    // the kernel is compiled for are present. The kernel reads `ablock[r·kp + q]`
                    // for r < MR, q < kc: asserted just above (`packed` has MC ≥ i0 + MR rows, MC
                    // being a multiple of MR, of kp ≥ p0 + kc pairs). It
                    // reads `bblock[q·NR + l]` for q < kc, l < NR: exactly `bblock`'s length. It
                    // touches `c[r·dst_rs + l]` only for r < rows, l < cols (masked loads and
                    // stores): with i0 + rows ≤ mc and j0 + cols ≤ n that is within
                    // (mc-1)·dst_rs + n ≤ dst.len(), asserted above. `c` is a unique borrow.
                    unsafe {
                        kernel(
                            kc,
                            ablock.as_ptr(),
                            kp,
                            bblock.as_ptr(),
                            c.as_mut_ptr(),
                            dst_rs,
                            rows,
                            cols,
                            load,
                        )
                    };
                }
            }
        }
    }
}

/// This thread's AMX tile configuration while it lives: eight tiles of 16 rows × 64 bytes.
/// Dropping it releases the tiles (so the OS need not save their 8 KiB on a context switch).
struct Tiles;

/// The 64-byte operand of `ldtilecfg` (palette 1).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

impl Tiles {
    fn configure() -> Tiles {
        let mut cfg = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        cfg.colsb[..8].fill(64);
        cfg.rows[..8].fill(16);
        // SAFETY: only called after `amx()` (the CPU has AMX and the process has the tile
        // permission). `ldtilecfg` reads the 64 bytes of `cfg`, a valid palette-1
        // configuration (reserved bytes zero, 8 tiles within palette 1's 8 × 16 × 64 bytes).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) &cfg, options(nostack, readonly));
        }
        Tiles
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: AMX is present (a `Tiles` exists only after `configure`); `tilerelease`
        // resets the tile state and touches no memory.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("tilerelease", options(nostack, nomem));
        }
    }
}

/// The AMX micro-kernel: `c = a·b` for a 32 × 32 block, over all `kp` pairs of k.
///
/// Tiles 0–3 accumulate the four 16 × 16 quarters of the block; per 16 pairs of k, tiles 4/5
/// hold rows 0–15 / 16–31 of `a` (16 pairs each) and tiles 6/7 columns 0–15 / 16–31 of `b`.
///
/// # Safety
///
/// AMX-BF16 is usable and this thread's tile configuration has tiles 0–7 at 16 rows × 64 bytes
/// ([`Tiles`]); `kp` is a non-zero multiple of [`KT`]; `a` is readable at `r·kp + q` for
/// r < 32, q < kp; `b` at `q·NR + l` for q < kp, l < NR; `c` writable for 32 × 32 f32.
#[cfg(target_arch = "x86_64")]
unsafe fn amx_kernel(kp: usize, a: *const u32, b: *const u32, c: *mut f32) {
    debug_assert!(kp > 0 && kp % KT == 0);
    // SAFETY: per the contract. The loop runs kp / 16 times; each pass loads A rows 0–15 and
    // 16–31 at column pairs [q, q + 16) (stride kp·4 bytes), B pair rows [q, q + 16) × 32
    // columns (stride NR·4 = 128 bytes; the second tile 64 bytes in), all within the bounds
    // above. The stores write 32 rows × 128 bytes from `c` (row stride 128 bytes). The
    // pointers are advanced in registers only.
    unsafe {
        std::arch::asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "2:",
            "tileloadd tmm4, [{a} + {sa}]",
            "tileloadd tmm5, [{a2} + {sa}]",
            "tileloadd tmm6, [{b} + {sb}]",
            "tileloadd tmm7, [{b} + {sb} + 64]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a}, 64",
            "add {a2}, 64",
            "add {b}, {bstep}",
            "dec {n}",
            "jnz 2b",
            "tilestored [{c} + {sc}], tmm0",
            "tilestored [{c} + {sc} + 64], tmm1",
            "tilestored [{c2} + {sc}], tmm2",
            "tilestored [{c2} + {sc} + 64], tmm3",
            a = inout(reg) a => _,
            a2 = inout(reg) a.add(16 * kp) => _,
            b = inout(reg) b => _,
            n = inout(reg) kp / KT => _,
            sa = in(reg) kp * 4,
            sb = in(reg) NR * 4,
            bstep = in(reg) KT * NR * 4,
            c = in(reg) c,
            c2 = in(reg) c.add(16 * AMX_BLOCK),
            sc = in(reg) AMX_BLOCK * 4,
            options(nostack),
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn amx_kernel(_: usize, _: *const u32, _: *const u32, _: *mut f32) {
    unreachable!("bf16::amx() is false off x86-64")
}

/// The MR × NR micro-kernel: `c (+)= a·b` over `kc` pairs of k.
///
/// # Safety
///
/// The CPU has AVX512F and AVX512-BF16; `a` is readable at `r·a_rs + q` for r < MR, q < kc;
/// `b` at `q·NR + l` for q < kc, l < NR; `c` readable (when `load`) and writable at
/// `r·c_rs + l` for r < rows, l < cols; `rows ≤ MR`, `cols ≤ NR`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    kc: usize,
    a: *const u32,
    a_rs: usize,
    b: *const u32,
    c: *mut f32,
    c_rs: usize,
    rows: usize,
    cols: usize,
    load: bool,
) {
    use std::arch::x86_64::*;
    let m0: __mmask16 = if cols >= 16 {
        0xffff
    } else {
        (1u16 << cols) - 1
    };
    let m1: __mmask16 = if cols >= NR {
        0xffff
    } else if cols > 16 {
        (1u16 << (cols - 16)) - 1
    } else {
        0
    };
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    if load {
        for (r, acc) in acc.iter_mut().enumerate().take(rows) {
            // SAFETY: r < rows; the masks cover only columns < cols (caller's contract).
            unsafe {
                let row = c.add(r * c_rs);
                acc[0] = _mm512_maskz_loadu_ps(m0, row);
                acc[1] = _mm512_maskz_loadu_ps(m1, row.add(16));
            }
        }
    }
    for q in 0..kc {
        // SAFETY: q < kc, so `b + q·NR .. + NR` is in the caller's bound; unaligned loads.
        let (b0, b1) = unsafe {
            let bq = b.add(q * NR) as *const __m512i;
            (
                bf16x32(_mm512_loadu_si512(bq)),
                bf16x32(_mm512_loadu_si512(bq.add(1))),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: r < MR and q < kc: within the caller's bound on `a`.
            let ar = unsafe { *a.add(r * a_rs + q) };
            let av = bf16x32(_mm512_set1_epi32(ar as i32));
            acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
            acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
        }
    }
    for (r, acc) in acc.iter().enumerate().take(rows) {
        // SAFETY: r < rows; the masks cover only columns < cols (caller's contract).
        unsafe {
            let row = c.add(r * c_rs);
            _mm512_mask_storeu_ps(row, m0, acc[0]);
            _mm512_mask_storeu_ps(row.add(16), m1, acc[1]);
        }
    }
}

/// Reinterprets 512 bits as 32 bf16 (the instructions take a distinct type for them).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn bf16x32(v: std::arch::x86_64::__m512i) -> std::arch::x86_64::__m512bh {
    // SAFETY: both are plain 64-byte SIMD values with no invalid bit patterns.
    unsafe { std::mem::transmute(v) }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    _: usize,
    _: *const u32,
    _: usize,
    _: *const u32,
    _: *mut f32,
    _: usize,
    _: usize,
    _: usize,
    _: bool,
) {
    unreachable!("bf16::available() is false off x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vecmath::matmul as matmul_f32;
    use proptest::prelude::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties to the even (1.0).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        // 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶: up to the even.
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 1.0 / 64.0);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::NEG_INFINITY)), f32::NEG_INFINITY);
    }

    /// Deterministic values in [-1, 1) with a few large ones, from a seed.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..len)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
                if i % 97 == 0 {
                    v * 30.0
                } else {
                    v
                }
            })
            .collect()
    }

    /// The kernels this CPU runs.
    fn kernels() -> Vec<Kernel> {
        let mut k = Vec::new();
        if available() {
            k.push(Kernel::Avx512);
        }
        if amx() {
            k.push(Kernel::Amx);
        }
        k
    }

    /// Checks the bf16 product against the fp32 one within the bf16 rounding bound, on every
    /// kernel this CPU runs.
    fn check(
        m: usize,
        n: usize,
        k: usize,
        pad: usize,
        accumulate: bool,
        threads: usize,
        seed: u64,
    ) {
        for kernel in kernels() {
            check_with(kernel, m, n, k, pad, accumulate, threads, seed);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_with(
        kernel: Kernel,
        m: usize,
        n: usize,
        k: usize,
        pad: usize,
        accumulate: bool,
        threads: usize,
        seed: u64,
    ) {
        let (a_rs, dst_rs) = (k + pad, n + pad);
        let a = values(m.max(1) * a_rs, seed);
        let b = values(k * n, seed ^ 0xb);
        let init = values(m.max(1) * dst_rs, seed ^ 0xc);
        let mut want = init.clone();
        matmul_f32(
            (m, n, k),
            &mut want,
            dst_rs,
            accumulate,
            (&a, a_rs, 1),
            (&b, n, 1),
            1.0,
            Parallelism::None,
        );
        let packed = PackedB::pack(&b, k, n);
        let mut got = init.clone();
        let par = if threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        matmul_with(
            kernel,
            m,
            &mut got,
            dst_rs,
            accumulate,
            (&a, a_rs),
            &packed,
            par,
        );
        for i in 0..m {
            for j in 0..dst_rs {
                let (g, w) = (got[i * dst_rs + j], want[i * dst_rs + j]);
                if j >= n {
                    // Outside the product: untouched.
                    assert_eq!(
                        g.to_bits(),
                        init[i * dst_rs + j].to_bits(),
                        "({i},{j}) written"
                    );
                    continue;
                }
                // Each operand is off by ≤ 2⁻⁸ relative, so each product by ≤ 2⁻⁷ (+2⁻¹⁶);
                // fp32 sums add k·2⁻²⁴ relative on either side.
                let mag: f32 = (0..k).map(|p| (a[i * a_rs + p] * b[p * n + j]).abs()).sum();
                let tol = mag * (1.0 / 128.0 + 2e-5 + 2.0 * k as f32 * 6e-8) + 1e-6;
                assert!(
                    (g - w).abs() <= tol,
                    "{kernel:?} m={m} n={n} k={k} ({i},{j}): bf16 {g} fp32 {w} tol {tol}"
                );
            }
        }
    }

    #[test]
    fn matches_fp32_on_encoder_shapes() {
        if !available() {
            eprintln!("no AVX512-BF16 on this CPU: bf16 kernel not tested");
            return;
        }
        check(37, 384 * 3, 384, 0, false, 1, 1);
        check(29, 384, 1536, 0, true, 1, 2);
        check(300, 384, 384, 0, true, 2, 3);
    }

    #[test]
    fn bf16_rounding_is_visible() {
        // A test that could not tell bf16 from fp32 would prove nothing: 1 + 2⁻¹⁰ rounds to 1.
        for kernel in kernels() {
            let b = PackedB::pack(&[1.0], 1, 1);
            let mut dst = [0.0f32];
            let a = [1.0 + 1.0 / 1024.0];
            matmul_with(
                kernel,
                1,
                &mut dst,
                1,
                false,
                (&a, 1),
                &b,
                Parallelism::None,
            );
            assert_eq!(dst[0], 1.0, "{kernel:?}");
        }
    }

    #[test]
    fn amx_is_used_where_the_cpu_has_it() {
        // On a CPU with AMX the dispatcher must pick it (else the speed-up is silently lost).
        eprintln!("bf16 kernel on this CPU: {}", kernel_name());
        if amx() {
            assert_eq!(kernel_name(), "amx");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn matches_fp32_on_random_shapes(
            m in 1usize..=2 * MC + 7,
            n in 1usize..=3 * NR + 5,
            k in 1usize..=2 * KC + 70,
            pad in 0usize..3,
            accumulate: bool,
            threads in 1usize..=2,
            seed: u64,
        ) {
            if available() {
                check(m, n, k, pad, accumulate, threads, seed);
            }
        }
    }

    /// The microbench of issue 19: a 256×384 · 384×1536 product, 1 thread: the fp32 gemm crate,
    /// the AVX512-BF16 kernel and the AMX kernel, taking turns.
    /// `cargo test --release --lib bf16::tests::microbench -- --ignored --nocapture`.
    #[test]
    #[ignore = "a timing, not a test"]
    fn microbench() {
        let (m, k, n) = (256, 384, 1536);
        let a = values(m * k, 1);
        let b = values(k * n, 2);
        let packed = PackedB::pack(&b, k, n);
        let mut dst = vec![0.0f32; m * n];
        let reps = 100;
        let flop = 2.0 * (m * k * n) as f64 * reps as f64;
        let sides: Vec<Option<Kernel>> = std::iter::once(None)
            .chain(kernels().into_iter().map(Some))
            .collect();
        let mut best = vec![f64::MAX; sides.len()];
        for _round in 0..5 {
            for (side, best) in sides.iter().zip(best.iter_mut()) {
                let t = std::time::Instant::now();
                for _ in 0..reps {
                    match side {
                        None => matmul_f32(
                            (m, n, k),
                            &mut dst,
                            n,
                            false,
                            (&a, k, 1),
                            (&b, n, 1),
                            1.0,
                            Parallelism::None,
                        ),
                        Some(kernel) => matmul_with(
                            *kernel,
                            m,
                            &mut dst,
                            n,
                            false,
                            (&a, k),
                            &packed,
                            Parallelism::None,
                        ),
                    }
                }
                *best = best.min(t.elapsed().as_secs_f64());
            }
        }
        for (side, secs) in sides.iter().zip(&best) {
            eprintln!(
                "{:<14} {:>7.1} GFLOP/s  {:.2}× fp32 gemm",
                side.map_or("fp32 gemm".to_string(), |k| format!("{k:?}")),
                flop / secs / 1e9,
                best[0] / secs
            );
        }
    }
}
