//! judgeflow: the plain-Rust half of `flash_triton.rs`: reading the compiled kernel's manifest
//! and deciding, from shapes, strides and offsets alone, whether and how a call launches it.
//! No CUDA here, so judgeflow's CI tests it (`model/tests/flash_triton_plan.rs` includes this
//! file by path).
//!
//! Contract of [`Plan::new`]: `Some` only where the compiled kernel computes the attention (see
//! `scripts/flash_triton.py`): the manifest's head dimension for queries, keys and values; the
//! last dimension of every operand contiguous; one mask for every head (a head dimension of 1 or
//! stride 0); every stride the kernel is passed a multiple of [`STRIDE_MULTIPLE`] elements and
//! every base address, batch rows' included, a multiple of [`ALIGN_BYTES`] (Triton's
//! specialisation of the compiled call); every stride and length, and every element's offset
//! within a batch row, within `i32`.

/// The runtime arguments the launcher passes, in order; the manifest must list the same.
pub const ARGS: [&str; 17] = [
    "q",
    "k",
    "v",
    "mask",
    "out",
    "q_head_stride",
    "q_row_stride",
    "k_head_stride",
    "k_row_stride",
    "v_head_stride",
    "v_row_stride",
    "mask_row_stride",
    "out_head_stride",
    "out_row_stride",
    "q_len",
    "kv_len",
    "scale_log2",
];

/// Strides passed to the kernel are multiples of this many elements (Triton's `divisibility`).
pub const STRIDE_MULTIPLE: usize = 16;
/// Base addresses are multiples of this many bytes.
pub const ALIGN_BYTES: usize = 16;

/// What `scripts/flash_triton.py` wrote beside the PTX.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The PTX entry point.
    pub kernel: String,
    /// The head dimension the kernel was compiled for.
    pub head_dim: usize,
    /// Query rows a program (the grid's first dimension is `ceil(q_len / block_rows)`).
    pub block_rows: usize,
    /// Warps a program (32 threads each).
    pub num_warps: usize,
    /// Dynamic shared memory a program, in bytes.
    pub shared_bytes: usize,
    /// The entry point's parameter types, in order (`.u64`, `.u32`, `.f32`, ...).
    pub ptx_params: Vec<String>,
}

impl Manifest {
    /// Reads the manifest and checks it against what the launcher passes: [`ARGS`] in order,
    /// pointers as `.u64`, integers as 32 bits, the scale as `.f32`; any parameters after those
    /// (Triton's scratch pointers) `.u64`, passed as null, so the manifest must say the kernel
    /// needs no scratch memory and no thread-block cluster.
    pub fn parse(json: &str) -> Result<Self, String> {
        /// The manifest's fields as written; absent ones are named in the error below.
        #[derive(serde::Deserialize)]
        struct Written {
            kernel: Option<String>,
            head_dim: Option<usize>,
            block_rows: Option<usize>,
            num_warps: Option<usize>,
            shared_bytes: Option<usize>,
            args: Option<Vec<String>>,
            ptx_params: Option<Vec<String>>,
            #[serde(default)]
            global_scratch_bytes: usize,
            #[serde(default)]
            profile_scratch_bytes: usize,
            cluster_dims: Option<Vec<usize>>,
        }
        fn need<T>(value: Option<T>, key: &str) -> Result<T, String> {
            value.ok_or_else(|| format!("the manifest has no `{key}`"))
        }
        let w: Written =
            serde_json::from_str(json).map_err(|err| format!("the manifest is not JSON: {err}"))?;
        let args = need(w.args, "args")?;
        if args != ARGS {
            return Err(format!(
                "the manifest's args {args:?} are not the launcher's {ARGS:?}"
            ));
        }
        for (key, bytes) in [
            ("global_scratch_bytes", w.global_scratch_bytes),
            ("profile_scratch_bytes", w.profile_scratch_bytes),
        ] {
            if bytes != 0 {
                return Err(format!(
                    "the kernel needs {key}, which the launcher does not give"
                ));
            }
        }
        if let Some(cluster) = w.cluster_dims
            && cluster.iter().any(|&n| n != 1)
        {
            return Err(format!(
                "the kernel needs a thread-block cluster {cluster:?}"
            ));
        }
        let manifest = Self {
            kernel: need(w.kernel, "kernel")?,
            head_dim: need(w.head_dim, "head_dim")?,
            block_rows: need(w.block_rows, "block_rows")?,
            num_warps: need(w.num_warps, "num_warps")?,
            shared_bytes: need(w.shared_bytes, "shared_bytes")?,
            ptx_params: need(w.ptx_params, "ptx_params")?,
        };
        let params = &manifest.ptx_params;
        if params.len() < ARGS.len() {
            return Err(format!(
                "the PTX entry has {} parameters, fewer than {}",
                params.len(),
                ARGS.len()
            ));
        }
        for (i, ty) in params.iter().enumerate() {
            let want: &[&str] = match i {
                0..=4 => &[".u64", ".b64"],
                5..=15 => &[".u32", ".b32", ".s32"],
                16 => &[".f32", ".b32"],
                _ => &[".u64", ".b64"],
            };
            if !want.contains(&ty.as_str()) {
                let name = ARGS.get(i).copied().unwrap_or("a trailing pointer");
                return Err(format!(
                    "PTX parameter {i} ({name}) is {ty}, not one of {want:?}"
                ));
            }
        }
        if manifest.block_rows == 0 || manifest.num_warps == 0 || manifest.head_dim == 0 {
            return Err(
                "the manifest's block_rows, num_warps and head_dim must be positive".into(),
            );
        }
        Ok(manifest)
    }
}

/// One operand's layout: shape, strides (elements) and the offset of its first element from its
/// buffer's base (bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `[batch, heads, rows, columns]`.
    pub shape: [usize; 4],
    /// Elements.
    pub strides: [usize; 4],
    /// Bytes from the buffer's base.
    pub offset_bytes: usize,
    /// Bytes an element.
    pub elem_bytes: usize,
}

/// How one attention call launches: per batch row, the byte offsets to add to each operand's
/// address (the address of its first element, the handle's offset included, as cubecl's storage
/// lookup gives it); the integer arguments; the grid and block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Per batch row: bytes to add to the addresses of q, k, v, mask and out's first elements.
    pub batch_offsets: Vec<[u64; 5]>,
    /// [`ARGS`] 5 to 15, in order.
    pub ints: [i32; 11],
    /// `(ceil(q_len / block_rows), heads, 1)`.
    pub grid: (u32, u32, u32),
    /// `(32 * num_warps, 1, 1)`.
    pub block: (u32, u32, u32),
}

impl Plan {
    /// The launch for `q` `[b, h, s, d]`, `k` and `v` `[b, h, t, d]`, `mask` `[1 or b, 1 or h,
    /// s, t]` (one byte an element) and the result `out` `[b, h, s, d]`, or `None` (see the
    /// module's contract).
    pub fn new(
        manifest: &Manifest,
        q: Layout,
        k: Layout,
        v: Layout,
        mask: Layout,
        out: Layout,
    ) -> Option<Self> {
        let [b, h, s, d] = q.shape;
        let t = k.shape[2];
        let [mb, mh, ms, mt] = mask.shape;
        let shapes_agree = d == manifest.head_dim
            && k.shape == [b, h, t, d]
            && v.shape == [b, h, t, d]
            && out.shape == [b, h, s, d]
            && (mb == 1 || mb == b)
            && (mh == 1 || mh == h)
            && (ms, mt) == (s, t)
            && mask.elem_bytes == 1;
        // One mask for every head: the kernel has no head stride for it.
        if !shapes_agree || (mh > 1 && mask.strides[1] != 0) || b == 0 || h == 0 || s == 0 {
            return None;
        }
        let operands = [q, k, v, mask, out];
        if operands.iter().any(|x| x.strides[3] != 1 && x.shape[3] > 1) {
            return None;
        }
        let passed = [
            q.strides[1],
            q.strides[2],
            k.strides[1],
            k.strides[2],
            v.strides[1],
            v.strides[2],
            mask.strides[2],
            out.strides[1],
            out.strides[2],
        ];
        let fits = |n: usize| n <= i32::MAX as usize;
        if passed.iter().any(|&x| x % STRIDE_MULTIPLE != 0 || !fits(x)) || !fits(s) || !fits(t) {
            return None;
        }
        // The kernel computes offsets within a batch row in 32 bits.
        let span = |x: &Layout| {
            (1..4).fold(x.shape[3], |sum, i| {
                sum + x.shape[i].saturating_sub(1) * x.strides[i]
            })
        };
        if [q, k, v, mask, out].iter().any(|x| !fits(span(x))) {
            return None;
        }
        let mask_batch = if mb == 1 { 0 } else { mask.strides[0] };
        let mut batch_offsets = Vec::with_capacity(b);
        for row in 0..b {
            let at = |x: &Layout, stride: usize| (row * stride * x.elem_bytes) as u64;
            let offsets = [
                at(&q, q.strides[0]),
                at(&k, k.strides[0]),
                at(&v, v.strides[0]),
                at(&mask, mask_batch),
                at(&out, out.strides[0]),
            ];
            // The handle's own offset is already in the address the launcher looks up; it
            // counts here only for the alignment.
            let starts = [q, k, v, mask, out].map(|x| x.offset_bytes as u64);
            if offsets
                .iter()
                .zip(starts)
                .any(|(&o, s)| (o + s) % ALIGN_BYTES as u64 != 0)
            {
                return None;
            }
            batch_offsets.push(offsets);
        }
        let blocks = s.div_ceil(manifest.block_rows);
        if blocks > i32::MAX as usize || h > 65_535 {
            return None;
        }
        let mut ints = [0i32; 11];
        for (slot, value) in ints.iter_mut().zip(passed.iter().chain([s, t].iter())) {
            *slot = *value as i32;
        }
        Some(Self {
            batch_offsets,
            ints,
            grid: (blocks as u32, h as u32, 1),
            block: (32 * manifest.num_warps as u32, 1, 1),
        })
    }
}
