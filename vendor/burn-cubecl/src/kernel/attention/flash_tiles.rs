//! judgeflow: attention without a score matrix in global memory, on tensor cores.
//!
//! `rows.rs` writes each image's scores (16 heads x 6,432 x 6,432 at the Llama-3.2-11B-Vision
//! encoder's shape, 1.3 GB in bf16) to global memory, reads and rewrites them as probabilities and
//! reads them again: ~2 ms an image and layer on an H100, bound by that traffic (judgeflow's
//! notes/gpu.md, session 17). This kernel keeps a block of scores on chip instead, as flash
//! attention does: a cube of [`PLANES`] planes takes [`BLOCK_Q`] query rows of one head (16 a
//! plane); for each block of [`BLOCK_K`] keys it stages the keys, the values and the mask's flags
//! in shared memory, computes the plane's 16 x 64 scores with 16 x 16 x 16 tensor-core products
//! (bf16 or f16 in, f32 sums), folds them into a running row maximum and sum (the online
//! softmax), writes the probabilities to shared memory in the input type and adds probabilities
//! x values into f32 accumulators, which are rescaled through shared memory when a row's maximum
//! grows. The result is divided by the row sums at the end.
//!
//! Measured (session 18, H100, two images of four tiles): right (0.0021 relative error against
//! the CPU's f32, `rows.rs` 0.009) and slow, 15.5 ms against `rows.rs`'s 5.0 ms with cuBLAS's
//! products. Hence opt-in; [`Parts`] and `scripts/device_flash_study.sh` are there to find out
//! why.
//!
//! Contract: the same function as `rows.rs` (scale, then `true` in the mask forbids a key; sums
//! in f32; a forbidden key gets exactly 0), except that probabilities enter the second product in
//! the input type (as `rows.rs`'s do) *before* the division by the row sum, which is applied to
//! the f32 result. Inputs: query `[b, h, s, d]`, key and value `[b, h, t, d]`, any strides with a
//! contiguous last dimension and the others multiples of 8; `d` a multiple of 16, 64 to 128;
//! bf16 or f16 ([`applies`]). A row whose keys are all forbidden gets zeros (`rows.rs`: the
//! uniform average), so callers keep the precondition they have for `rows.rs`: every row sees a
//! key.

use crate::{CubeRuntime, ops::numeric::empty_device_contiguous_dtype, tensor::CubeTensor};
use burn_backend::{DType, ops::AttentionModuleOptions};
use cubecl::{cmma, prelude::*};

/// Lanes of a CUDA plane.
const LANES: usize = 32;
/// Planes a cube; each takes 16 query rows (one tensor-core tile's height).
const PLANES: usize = 4;
/// Query rows a cube.
const BLOCK_Q: usize = 16 * PLANES;
/// Keys a block.
const BLOCK_K: usize = 64;
/// Elements a global load (16 bytes of bf16 / f16).
const VECTOR: usize = 8;

/// Which parts of the kernel run: all of them, except in a study of where its time goes
/// (`JUDGEFLOW_FLASH_TILES_SKIP`, a comma list of `staging`, `scores`, `softmax`, `pv`; the
/// result is then wrong, and the `speed` example's attention check says by how much).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Parts {
    /// Keys, values and mask flags copied to shared memory each block.
    pub staging: bool,
    /// The scores' tensor-core products.
    pub scores: bool,
    /// The online softmax and rescaling (else the scores are the probabilities).
    pub softmax: bool,
    /// The probabilities x values products.
    pub pv: bool,
}

impl Parts {
    /// The whole kernel.
    const ALL: Parts = Parts {
        staging: true,
        scores: true,
        softmax: true,
        pv: true,
    };

    /// All parts, less those `JUDGEFLOW_FLASH_TILES_SKIP` names (read once); an unknown name
    /// panics.
    pub fn from_env() -> Self {
        use std::sync::OnceLock;
        static PARTS: OnceLock<Parts> = OnceLock::new();
        *PARTS.get_or_init(|| {
            let mut parts = Parts::ALL;
            let skip = std::env::var("JUDGEFLOW_FLASH_TILES_SKIP").unwrap_or_default();
            for name in skip.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                match name {
                    "staging" => parts.staging = false,
                    "scores" => parts.scores = false,
                    "softmax" => parts.softmax = false,
                    "pv" => parts.pv = false,
                    other => panic!(
                        "judgeflow: JUDGEFLOW_FLASH_TILES_SKIP names `{other}`: use staging, \
                         scores, softmax or pv"
                    ),
                }
            }
            if parts != Parts::ALL {
                eprintln!(
                    "judgeflow: flash_tiles runs without some parts ({parts:?}): its results are \
                     wrong"
                );
            }
            parts
        })
    }
}

/// Stands for a forbidden score, as in `rows.rs`.
const MASKED: f32 = -1.0e30;

/// Copies rows `first..first + BLOCK_K` of the `[b, h, len, d]` tensor `x` (head `head`, batch
/// `batch`) into `tile` (`BLOCK_K` rows of `d` elements, row-major); rows past `len` repeat the
/// last row (finite values: as keys they are forbidden by [`stage_mask`], so their values get
/// probability exactly 0, and as queries their results are not written). All the cube's units
/// take part, `d / 16` loads each, issued together: no load waits behind a branch.
#[cube]
fn stage_rows<F: Float, N: Size>(
    x: &Tensor<Vector<F, N>>,
    tile: &mut SharedMemory<Vector<F, N>>,
    batch: usize,
    head: usize,
    first: usize,
    len: usize,
    #[comptime] d: usize,
) {
    // (`N` is `VECTOR`.) BLOCK_K * d / VECTOR vectors over LANES * PLANES units.
    let per_row = comptime!(d / VECTOR);
    let base = batch * x.stride(0) + head * x.stride(1);
    #[unroll]
    for k in 0..comptime!(BLOCK_K * d / VECTOR / (LANES * PLANES)) {
        let i = UNIT_POS as usize + k * LANES * PLANES;
        let r = i / per_row;
        let c = i % per_row;
        let row = first + r;
        let read = select(row < len, row, len - 1);
        tile[i] = x[(base + read * x.stride(2)) / N::value() + c];
    }
}

/// Copies the `BLOCK_Q x BLOCK_K` block of the mask at query rows `first_q..` and keys
/// `first_k..` into `tile`, as "forbidden" flags; rows past `s` and keys past `t` are forbidden.
/// Branch-free like [`stage_rows`].
#[cube]
fn stage_mask<M: Int>(
    mask: &Tensor<M>,
    tile: &mut SharedMemory<M>,
    mask_base: usize,
    first_q: usize,
    first_k: usize,
    s: usize,
    t: usize,
) {
    #[unroll]
    for k in 0..comptime!(BLOCK_Q * BLOCK_K / (LANES * PLANES)) {
        let i = UNIT_POS as usize + k * LANES * PLANES;
        let row = first_q + i / BLOCK_K;
        let key = first_k + i % BLOCK_K;
        let inside = row < s && key < t;
        let read_row = select(row < s, row, s - 1);
        let read_key = select(key < t, key, t - 1);
        let m = mask[mask_base + read_row * mask.stride(2) + read_key * mask.stride(3)];
        tile[i] = select(inside, m, M::from_int(1));
    }
}

/// See the module's documentation. One cube per (batch, head, block of [`BLOCK_Q`] query rows),
/// heads fastest (a mask broadcast over the heads is read from L2 by consecutive cubes);
/// `CubeDim` (32, [`PLANES`]).
#[cube(launch_unchecked)]
fn flash_tiles_kernel<F: Float, M: Int, N: Size>(
    query: &Tensor<Vector<F, N>>,
    key: &Tensor<Vector<F, N>>,
    value: &Tensor<Vector<F, N>>,
    mask: &Tensor<M>,
    out: &mut Tensor<F>,
    scale: f32,
    ld: u32,
    ld_probs: u32,
    #[comptime] d: usize,
    #[comptime] parts: Parts,
    #[define(F, M)] _dtypes: [StorageType; 2],
) {
    // `ld` is `d`, `ld_probs` is `BLOCK_K`: the tensor-core loads' and stores' strides, given as
    // runtime values.
    let heads = query.shape(1);
    let s = query.shape(2);
    let t = key.shape(2);
    let blocks_q = s.div_ceil(BLOCK_Q);
    let cube = CUBE_POS_X as usize;
    let head = cube % heads;
    let block_q = (cube / heads) % blocks_q;
    let batch = cube / (heads * blocks_q);
    let lane = UNIT_POS_X as usize;
    let plane = UNIT_POS_Y as usize;
    let per_row = d / N::value();
    // Tensor-core tiles along the head dimension.
    let tiles_d = comptime!(d / 16);

    // The queries, then each block's keys; each block's values; each block's mask flags.
    // (`N` is `VECTOR`, see the launch.)
    let mut tile =
        SharedMemory::<Vector<F, N>>::new_aligned(comptime!(BLOCK_K * d / VECTOR), 128usize);
    let mut tile_v =
        SharedMemory::<Vector<F, N>>::new_aligned(comptime!(BLOCK_K * d / VECTOR), 128usize);
    let mut tile_mask = SharedMemory::<M>::new_aligned(comptime!(BLOCK_Q * BLOCK_K), 128usize);
    // Per plane: its 16 x BLOCK_K scores, then its 16 x d partial result (f32).
    let mut acc = SharedMemory::<f32>::new_aligned(comptime!(PLANES * 16 * d), 128usize);
    // Per plane: its 16 x BLOCK_K probabilities, in the input type.
    let mut probs = SharedMemory::<F>::new_aligned(comptime!(PLANES * 16 * BLOCK_K), 128usize);
    let acc_base = plane * 16 * d;
    let probs_base = plane * 16 * BLOCK_K;

    // The plane's 16 query rows as tensor-core A tiles (BLOCK_Q == BLOCK_K rows staged).
    let first_q = block_q * BLOCK_Q;
    stage_rows::<F, N>(query, &mut tile, batch, head, first_q, s, d);
    sync_cube();
    let mut q_tiles = Sequence::<cmma::Matrix<F>>::new();
    #[unroll]
    for c in 0..tiles_d {
        let m = unsafe {
            cmma::Matrix::<F>::uninitialized(
                cmma::MatrixIdent::A,
                16usize,
                16usize,
                16usize,
                cmma::MatrixLayout::RowMajor,
            )
        };
        let start = (plane * 16 * d + c * 16) / N::value();
        cmma::load(&m, &tile.slice(start, BLOCK_K * per_row), ld);
        q_tiles.push(m);
    }
    let mut o_tiles = Sequence::<cmma::Matrix<f32>>::new();
    #[unroll]
    for _c in 0..tiles_d {
        o_tiles.push(cmma::Matrix::<f32>::from_value(
            cmma::MatrixIdent::Accumulator,
            16usize,
            16usize,
            16usize,
            cmma::MatrixLayout::Undefined,
            0.0f32,
        ));
    }
    let score_tile = cmma::Matrix::<f32>::from_value(
        cmma::MatrixIdent::Accumulator,
        16usize,
        16usize,
        16usize,
        cmma::MatrixLayout::Undefined,
        0.0f32,
    );
    let k_tile = unsafe {
        cmma::Matrix::<F>::uninitialized(
            cmma::MatrixIdent::B,
            16usize,
            16usize,
            16usize,
            cmma::MatrixLayout::ColMajor,
        )
    };
    let v_tile = unsafe {
        cmma::Matrix::<F>::uninitialized(
            cmma::MatrixIdent::B,
            16usize,
            16usize,
            16usize,
            cmma::MatrixLayout::RowMajor,
        )
    };
    let p_tile = unsafe {
        cmma::Matrix::<F>::uninitialized(
            cmma::MatrixIdent::A,
            16usize,
            16usize,
            16usize,
            cmma::MatrixLayout::RowMajor,
        )
    };

    // Running maximum and sum of each of the plane's rows (the same in every lane).
    let mut row_max = Array::<f32>::new(16usize);
    let mut row_sum = Array::<f32>::new(16usize);
    let mut rescale = Array::<f32>::new(16usize);
    #[unroll]
    for r in 0..16usize {
        row_max[r] = f32::new(MASKED);
        row_sum[r] = 0.0f32;
        rescale[r] = 1.0f32;
    }
    let mut mask_base = batch * mask.stride(0);
    if mask.shape(0) == 1 {
        mask_base = 0;
    }
    if mask.shape(1) > 1 {
        mask_base += head * mask.stride(1);
    }
    let mask_rows = plane * 16 * BLOCK_K;

    let blocks_k = t.div_ceil(BLOCK_K);
    for block_k in 0..blocks_k {
        let first_k = block_k * BLOCK_K;
        // Every plane is done with the previous block's tiles (and, first, with the queries).
        sync_cube();
        if parts.staging {
            stage_rows::<F, N>(key, &mut tile, batch, head, first_k, t, d);
            stage_rows::<F, N>(value, &mut tile_v, batch, head, first_k, t, d);
            stage_mask::<M>(mask, &mut tile_mask, mask_base, first_q, first_k, s, t);
        }
        sync_cube();

        if parts.scores {
            // Scores: the plane's 16 rows against the block's keys, 16 keys a tile.
            #[unroll]
            for j in 0..BLOCK_K / 16 {
                cmma::fill(&score_tile, 0.0f32);
                #[unroll]
                for c in 0..tiles_d {
                    // K^T's tile: key j*16 + n, dimension c*16 + k, column-major with stride d.
                    let start = (j * 16 * d + c * 16) / N::value();
                    cmma::load(&k_tile, &tile.slice(start, BLOCK_K * per_row), ld);
                    cmma::execute::<F, F, f32, f32>(
                        q_tiles.index(c),
                        &k_tile,
                        &score_tile,
                        &score_tile,
                    );
                }
                let mut dst = acc.slice_mut(acc_base + j * 16, PLANES * 16 * d);
                cmma::store(&mut dst, &score_tile, ld, cmma::MatrixLayout::RowMajor);
            }
        }
        // The plane's lanes read scores the plane's tensor-core stores wrote.
        sync_plane();

        if parts.softmax {
            // Online softmax, a row at a time; lane l takes keys l and l + 32 of the block.
            let mut grew = false;
            #[unroll]
            for r in 0..16usize {
                let forbidden0 = tile_mask[mask_rows + r * BLOCK_K + lane] != M::from_int(0);
                let forbidden1 =
                    tile_mask[mask_rows + r * BLOCK_K + lane + LANES] != M::from_int(0);
                let s0 = select(
                    forbidden0,
                    f32::new(MASKED),
                    acc[acc_base + r * d + lane] * scale,
                );
                let s1 = select(
                    forbidden1,
                    f32::new(MASKED),
                    acc[acc_base + r * d + lane + LANES] * scale,
                );
                let old = row_max[r];
                let local = select(s0 > s1, s0, s1);
                let seen = plane_max(local);
                let new = select(seen > old, seen, old);
                // A forbidden key gets 0 (an allowed one is at most `new`, which is then finite).
                let p0 = select(s0 > f32::new(MASKED), (s0 - new).exp(), 0.0f32);
                let p1 = select(s1 > f32::new(MASKED), (s1 - new).exp(), 0.0f32);
                let factor = (old - new).exp();
                rescale[r] = factor;
                grew = grew || factor != 1.0f32;
                row_sum[r] = row_sum[r] * factor + plane_sum(p0 + p1);
                row_max[r] = new;
                probs[probs_base + r * BLOCK_K + lane] = F::cast_from(p0);
                probs[probs_base + r * BLOCK_K + lane + LANES] = F::cast_from(p1);
            }

            // A row whose maximum grew has its partial result rescaled (the same decision in every
            // lane: the maxima are plane-wide).
            if grew {
                sync_plane();
                #[unroll]
                for c in 0..tiles_d {
                    let mut dst = acc.slice_mut(acc_base + c * 16, PLANES * 16 * d);
                    cmma::store(&mut dst, o_tiles.index(c), ld, cmma::MatrixLayout::RowMajor);
                }
                sync_plane();
                #[unroll]
                for r in 0..16usize {
                    #[unroll]
                    for k in 0..comptime!(d.div_ceil(LANES)) {
                        let col = lane + k * LANES;
                        if col < d {
                            acc[acc_base + r * d + col] *= rescale[r];
                        }
                    }
                }
                sync_plane();
                #[unroll]
                for c in 0..tiles_d {
                    cmma::load_with_layout(
                        o_tiles.index(c),
                        &acc.slice(acc_base + c * 16, PLANES * 16 * d),
                        ld,
                        cmma::MatrixLayout::RowMajor,
                    );
                }
            }
        } else {
            // Study only: the scores as probabilities, no maxima, sums or rescaling.
            #[unroll]
            for r in 0..16usize {
                row_sum[r] = 1.0f32;
                probs[probs_base + r * BLOCK_K + lane] = F::cast_from(acc[acc_base + r * d + lane]);
                probs[probs_base + r * BLOCK_K + lane + LANES] =
                    F::cast_from(acc[acc_base + r * d + lane + LANES]);
            }
        }
        // The plane's probabilities are written.
        sync_plane();

        if parts.pv {
            // Partial result += probabilities x values.
            #[unroll]
            for kc in 0..BLOCK_K / 16 {
                cmma::load(
                    &p_tile,
                    &probs.slice(probs_base + kc * 16, PLANES * 16 * BLOCK_K),
                    ld_probs,
                );
                #[unroll]
                for c in 0..tiles_d {
                    let start = (kc * 16 * d + c * 16) / N::value();
                    cmma::load(&v_tile, &tile_v.slice(start, BLOCK_K * per_row), ld);
                    cmma::execute::<F, F, f32, f32>(
                        &p_tile,
                        &v_tile,
                        o_tiles.index(c),
                        o_tiles.index(c),
                    );
                }
            }
        }
    }

    // The result, divided by the row sums, through shared memory to the output.
    sync_plane();
    #[unroll]
    for c in 0..tiles_d {
        let mut dst = acc.slice_mut(acc_base + c * 16, PLANES * 16 * d);
        cmma::store(&mut dst, o_tiles.index(c), ld, cmma::MatrixLayout::RowMajor);
    }
    sync_plane();
    let out_base = (batch * heads + head) * s * d;
    #[unroll]
    for r in 0..16usize {
        let row = first_q + plane * 16 + r;
        if row < s {
            let sum = row_sum[r];
            let mut inv = 0.0f32;
            if sum > 0.0f32 {
                inv = 1.0f32 / sum;
            }
            let mut col = lane;
            while col < d {
                out[out_base + row * d + col] = F::cast_from(acc[acc_base + r * d + col] * inv);
                col += LANES;
            }
        }
    }
}

/// Whether [`attention_flash_tiles`] computes this attention (see the module's contract): where
/// `rows.rs` does (a four-dimensional mask and query, no causal mask or soft cap), and bf16 or
/// f16, a head dimension that is a multiple of 16 from [`BLOCK_K`] (a plane's scores share its
/// result's shared rows) up to 128 and the same for keys and values, at least 16 query rows (a
/// plane's tile; fewer go to `rows.rs`), and layouts the kernel's 8-element loads can read.
pub fn applies<R: CubeRuntime>(
    query: &CubeTensor<R>,
    key: &CubeTensor<R>,
    value: &CubeTensor<R>,
    mask: Option<&CubeTensor<R>>,
    options: &AttentionModuleOptions,
) -> bool {
    if !super::rows::applies(query, mask, options)
        || key.meta.num_dims() != 4
        || value.meta.num_dims() != 4
    {
        return false;
    }
    let shape = query.meta.shape();
    let d = shape[3];
    let readable = |x: &CubeTensor<R>| {
        let strides = x.meta.strides();
        strides[3] == 1 && (0..3).all(|i| strides[i] % VECTOR == 0)
    };
    matches!(query.dtype, DType::BF16 | DType::F16)
        && key.dtype == query.dtype
        && value.dtype == query.dtype
        && d % 16 == 0
        && (BLOCK_K..=128).contains(&d)
        && key.meta.shape()[3] == d
        && value.meta.shape()[3] == d
        && shape[2] >= 16
        && readable(query)
        && readable(key)
        && readable(value)
        && shape[0] * shape[1] * shape[2].div_ceil(BLOCK_Q) < (1 << 31)
}

/// Attention of `query` `[b, h, s, d]` over `key`, `value` `[b, h, t, d]` with a boolean `mask`
/// broadcastable to `[b, h, s, t]` (`true` = forbidden), every row seeing a key. Scale:
/// `options.scale`, else `1 / sqrt(d)`. Only where [`applies`].
pub fn attention_flash_tiles<R: CubeRuntime>(
    query: CubeTensor<R>,
    key: CubeTensor<R>,
    value: CubeTensor<R>,
    mask: CubeTensor<R>,
    options: AttentionModuleOptions,
) -> CubeTensor<R> {
    let dtype = query.dtype;
    let [b, h, s, d] = query.meta.shape().dims::<4>();
    let scale = options.scale.unwrap_or(1.0 / (d as f64).sqrt()) as f32;
    let out = empty_device_contiguous_dtype(
        query.client.clone(),
        query.device.clone(),
        [b, h, s, d].into(),
        dtype,
    );
    let client = query.client.clone();
    let mask_dtype = mask.dtype;
    let cubes = b * h * s.div_ceil(BLOCK_Q);
    unsafe {
        flash_tiles_kernel::launch_unchecked::<R>(
            &client,
            CubeCount::Static(cubes as u32, 1, 1),
            CubeDim::new_2d(LANES as u32, PLANES as u32),
            VECTOR,
            query.into_tensor_arg(),
            key.into_tensor_arg(),
            value.into_tensor_arg(),
            mask.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            scale,
            d as u32,
            BLOCK_K as u32,
            d,
            Parts::from_env(),
            [dtype.into(), mask_dtype.into()],
        );
    }
    out
}
