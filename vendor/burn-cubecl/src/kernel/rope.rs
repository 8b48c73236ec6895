//! judgeflow: rotary position embeddings ("rotate half" layout) as one kernel forward and one
//! backward.
//!
//! judgeflow's `apply_rope` (model `layers.rs`) is two slices, a negation, a concatenation, two
//! products and a sum forward, and about twice that backward: ~20 launches a call, twelve calls
//! a `tiny` training step, each launch costing the host more than the device (issue 10).
//!
//! Forward: `y = x cos + rotate_half(x) sin` with `rotate_half(x)[j] = -x[j + d/2]` for
//! `j < d/2` and `x[j - d/2]` above, in f32, rounded once. Backward: `dx[j] = dy[j] cos[j] +
//! (j < d/2 ? dy[j + d/2] sin[j + d/2] : -dy[j - d/2] sin[j - d/2])`. One thread an element;
//! `x` and `dy` may have any layout (`[b, h, s, d]`), `cos` and `sin` are `[b or 1, 1, s, d]`
//! (any layout); results are contiguous.

use crate::{CubeRuntime, ops::numeric::empty_device_contiguous_dtype, tensor::CubeTensor};
use cubecl::{calculate_cube_count_elemwise, prelude::*};

const THREADS: usize = 256;

/// Offset of `[b, h, s, j]` in `t` (dimensions of size 1 broadcast).
#[cube]
fn at<T: CubePrimitive>(t: &Tensor<T>, b: usize, h: usize, s: usize, j: usize) -> usize {
    let mut o = s * t.stride(2) + j * t.stride(3);
    if t.shape(0) > 1 {
        o += b * t.stride(0);
    }
    if t.shape(1) > 1 {
        o += h * t.stride(1);
    }
    o
}

#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn rope_kernel<F: Float, G: Float>(
    x: &Tensor<F>,
    cos: &Tensor<G>,
    sin: &Tensor<G>,
    out: &mut Tensor<F>,
    heads: u32,
    seq: u32,
    d: u32,
    n: u32,
    #[comptime] backward: bool,
    #[define(F, G)] _dtypes: [StorageType; 2],
) {
    let i = ABSOLUTE_POS;
    if i >= n as usize {
        terminate!();
    }
    let width = d as usize;
    let half = width / 2;
    let j = i % width;
    let s = (i / width) % seq as usize;
    let h = (i / (width * seq as usize)) % heads as usize;
    let b = i / (width * seq as usize * heads as usize);
    let c = f32::cast_from(cos[at::<G>(cos, b, 0, s, j)]);
    let v = f32::cast_from(x[at::<F>(x, b, h, s, j)]);
    let mut result = v * c;
    if backward {
        if j < half {
            let k = j + half;
            result += f32::cast_from(x[at::<F>(x, b, h, s, k)])
                * f32::cast_from(sin[at::<G>(sin, b, 0, s, k)]);
        } else {
            let k = j - half;
            result -= f32::cast_from(x[at::<F>(x, b, h, s, k)])
                * f32::cast_from(sin[at::<G>(sin, b, 0, s, k)]);
        }
    } else {
        let sn = f32::cast_from(sin[at::<G>(sin, b, 0, s, j)]);
        if j < half {
            result -= f32::cast_from(x[at::<F>(x, b, h, s, j + half)]) * sn;
        } else {
            result += f32::cast_from(x[at::<F>(x, b, h, s, j - half)]) * sn;
        }
    }
    out[i] = F::cast_from(result);
}

fn launch<R: CubeRuntime>(
    x: CubeTensor<R>,
    cos: &CubeTensor<R>,
    sin: &CubeTensor<R>,
    backward: bool,
) -> CubeTensor<R> {
    let shape = x.meta.shape().clone();
    assert_eq!(shape.num_dims(), 4, "rope over [b, h, s, d]");
    let (b, h, s, d) = (shape[0], shape[1], shape[2], shape[3]);
    assert!(d % 2 == 0, "rope needs an even head dimension, not {d}");
    for t in [cos, sin] {
        let ts = t.meta.shape();
        assert!(
            ts.num_dims() == 4
                && (ts[0] == 1 || ts[0] == b)
                && ts[1] == 1
                && ts[2] == s
                && ts[3] == d,
            "rope table {ts:?} does not broadcast to [{b}, {h}, {s}, {d}]"
        );
    }
    assert_eq!(cos.dtype, sin.dtype, "rope tables of one type");
    let n = shape.num_elements();
    assert!(
        n < u32::MAX as usize,
        "{n} elements: more than the kernel counts"
    );
    let client = x.client.clone();
    let dtype = x.dtype;
    let out = empty_device_contiguous_dtype(client.clone(), x.device.clone(), shape, dtype);
    if n == 0 {
        return out;
    }
    let cube_dim = CubeDim::new_1d(THREADS as u32);
    let cube_count = calculate_cube_count_elemwise(&client, n, cube_dim);
    unsafe {
        rope_kernel::launch_unchecked::<R>(
            &client,
            cube_count,
            cube_dim,
            x.into_tensor_arg(),
            cos.clone().into_tensor_arg(),
            sin.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            h as u32,
            s as u32,
            d as u32,
            n as u32,
            backward,
            [dtype.into(), cos.dtype.into()],
        );
    }
    out
}

/// `x cos + rotate_half(x) sin`: see the module's documentation.
pub fn rope_forward<R: CubeRuntime>(
    x: CubeTensor<R>,
    cos: &CubeTensor<R>,
    sin: &CubeTensor<R>,
) -> CubeTensor<R> {
    launch(x, cos, sin, false)
}

/// The input's gradient of [`rope_forward`] from the output's, `dy`.
pub fn rope_backward<R: CubeRuntime>(
    dy: CubeTensor<R>,
    cos: &CubeTensor<R>,
    sin: &CubeTensor<R>,
) -> CubeTensor<R> {
    launch(dy, cos, sin, true)
}
