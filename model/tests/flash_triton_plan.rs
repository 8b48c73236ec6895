//! The Triton-compiled attention's manifest reading and launch planning
//! (`vendor/burn-cubecl/src/kernel/attention/flash_triton_plan.rs`) under judgeflow's CI: the
//! vendored burn-cubecl's `cuda-direct` feature is built only for CUDA, so its own tests would
//! never run here. The file is plain Rust, included by path.

#[allow(dead_code)]
#[path = "../../vendor/burn-cubecl/src/kernel/attention/flash_triton_plan.rs"]
mod flash_triton_plan;

use flash_triton_plan::{ARGS, Layout, Manifest, Plan};

/// A manifest as `scripts/flash_triton.py` writes it, with `ptx_params` and `extra` spliced in.
fn manifest_json(args: &[&str], ptx_params: &[&str], extra: &str) -> String {
    let quote = |items: &[&str]| {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{{\n  \"kernel\": \"flash_triton\",\n  \"head_dim\": 80,\n  \"block_rows\": 128,\n  \
         \"block_keys\": 64,\n  \"num_warps\": 8,\n  \"shared_bytes\": 65536,\n{extra}  \
         \"args\": [{}],\n  \"ptx_params\": [{}]\n}}",
        quote(args),
        quote(ptx_params)
    )
}

fn triton_params(trailing: usize) -> Vec<&'static str> {
    let mut params = vec![".u64"; 5];
    params.extend([".u32"; 11]);
    params.push(".f32");
    params.extend(std::iter::repeat_n(".u64", trailing));
    params
}

fn manifest() -> Manifest {
    Manifest::parse(&manifest_json(&ARGS, &triton_params(2), "")).unwrap()
}

#[test]
fn a_manifest_as_the_script_writes_it_is_read() {
    let m = manifest();
    assert_eq!(m.kernel, "flash_triton");
    assert_eq!(
        (m.head_dim, m.block_rows, m.num_warps, m.shared_bytes),
        (80, 128, 8, 65536)
    );
    assert_eq!(m.ptx_params.len(), 19);
}

#[test]
fn a_manifest_that_does_not_match_the_launcher_is_refused_with_its_reason() {
    let mut swapped = ARGS.to_vec();
    swapped.swap(5, 6);
    let err = Manifest::parse(&manifest_json(&swapped, &triton_params(2), "")).unwrap_err();
    assert!(err.contains("not the launcher's"), "{err}");

    let mut params = triton_params(0);
    params[16] = ".u64";
    let err = Manifest::parse(&manifest_json(&ARGS, &params, "")).unwrap_err();
    assert!(err.contains("parameter 16 (scale_log2) is .u64"), "{err}");

    let err = Manifest::parse(&manifest_json(&ARGS, &triton_params(0)[..16], "")).unwrap_err();
    assert!(err.contains("16 parameters, fewer than 17"), "{err}");

    let scratch = "  \"global_scratch_bytes\": 256,\n";
    let err = Manifest::parse(&manifest_json(&ARGS, &triton_params(2), scratch)).unwrap_err();
    assert!(err.contains("global_scratch_bytes"), "{err}");

    let cluster = "  \"cluster_dims\": [2, 1, 1],\n";
    let err = Manifest::parse(&manifest_json(&ARGS, &triton_params(2), cluster)).unwrap_err();
    assert!(err.contains("cluster"), "{err}");

    let err = Manifest::parse("{}").unwrap_err();
    assert!(err.contains("no `args`"), "{err}");
}

const S: usize = 4 * 1608;
const H: usize = 16;
const D: usize = 80;

/// The 11B vision encoder's operands for `batch` images: q, k, v `[b, h, s, d]` views of the
/// projections `[b, s, h * d]`; the mask `[b, 1, s, s]` expanded over the heads.
fn encoder(batch: usize) -> [Layout; 5] {
    let view = Layout {
        shape: [batch, H, S, D],
        strides: [S * H * D, D, H * D, 1],
        offset_bytes: 0,
        elem_bytes: 2,
    };
    let mask = Layout {
        shape: [batch, H, S, S],
        strides: [S * S, 0, S, 1],
        offset_bytes: 0,
        elem_bytes: 1,
    };
    let out = Layout {
        strides: [H * S * D, S * D, D, 1],
        ..view
    };
    [view, view, view, mask, out]
}

fn plan(x: [Layout; 5]) -> Option<Plan> {
    Plan::new(&manifest(), x[0], x[1], x[2], x[3], x[4])
}

#[test]
fn the_vision_encoders_attention_is_planned_one_launch_a_batch_row() {
    let p = plan(encoder(2)).expect("the encoder's layout");
    assert_eq!(p.grid, (S.div_ceil(128) as u32, H as u32, 1));
    assert_eq!(p.block, (256, 1, 1));
    let (s, d, hd) = (S as i32, D as i32, (H * D) as i32);
    assert_eq!(p.ints, [d, hd, d, hd, d, hd, s, s * d, d, s, s]);
    let row = |elems: usize, bytes: usize| (elems * bytes) as u64;
    assert_eq!(p.batch_offsets[0], [0; 5]);
    assert_eq!(
        p.batch_offsets[1],
        [
            row(S * H * D, 2),
            row(S * H * D, 2),
            row(S * H * D, 2),
            row(S * S, 1),
            row(H * S * D, 2)
        ]
    );
    // A mask shared by the batch rows: the same mask for each.
    let mut shared = encoder(2);
    shared[3].shape[0] = 1;
    assert_eq!(plan(shared).unwrap().batch_offsets[1][3], 0);
}

#[test]
fn layouts_the_compiled_kernel_does_not_take_are_refused() {
    // Another head dimension.
    let mut x = encoder(1);
    for i in [0, 1, 2, 4] {
        x[i].shape[3] = 64;
    }
    assert!(plan(x).is_none());
    // A mask of its own for each head.
    let mut x = encoder(1);
    x[3].strides[1] = S * S;
    assert!(plan(x).is_none());
    // A mask row stride that is not a multiple of 16 (1,000 keys).
    let mut x = encoder(1);
    x[3].shape[2..].copy_from_slice(&[1000, 1000]);
    x[3].strides = [1000 * 1000, 0, 1000, 1];
    for i in [0, 1, 2, 4] {
        x[i].shape[2] = 1000;
    }
    x[4].strides = [H * 1000 * D, 1000 * D, D, 1];
    assert!(plan(x).is_none());
    // A base not 16-byte aligned.
    let mut x = encoder(1);
    x[1].offset_bytes = 8;
    assert!(plan(x).is_none());
    // An aligned handle offset (a batch row sliced off) counts for the alignment only: the
    // launcher's addresses already include it (session 19's first device run added it twice
    // and read out of bounds).
    let mut x = encoder(2);
    x[0].offset_bytes = 2 * S * H * D;
    let p = plan(x).expect("aligned");
    assert_eq!(p.batch_offsets[0], [0; 5]);
    assert_eq!(p.batch_offsets[1][0], (S * H * D * 2) as u64);
    // A batch row whose start is not 16-byte aligned.
    let mut x = encoder(2);
    x[0].strides[0] += 4;
    assert!(plan(x).is_none());
    // A last dimension that is not contiguous.
    let mut x = encoder(1);
    x[2].strides[3] = 2;
    assert!(plan(x).is_none());
    // A mask of two bytes an element.
    let mut x = encoder(1);
    x[3].elem_bytes = 2;
    assert!(plan(x).is_none());
    // A mask whose elements lie more than 2^31 from its start (the kernel's offsets are 32-bit):
    // 48,000 tokens.
    let long = 48_000;
    let mut x = encoder(1);
    for i in [0, 1, 2, 4] {
        x[i].shape[2] = long;
    }
    x[0].strides[0] = long * H * D;
    x[4].strides = [H * long * D, long * D, D, 1];
    x[3].shape[2..].copy_from_slice(&[long, long]);
    x[3].strides = [long * long, 0, long, 1];
    assert!(plan(x).is_none());
    x[3].shape[2..].copy_from_slice(&[long, 16]);
    x[3].strides = [long * 16, 0, 16, 1];
    for i in [1, 2] {
        x[i].shape[2] = 16;
    }
    assert!(plan(x).is_some(), "16 keys: the mask spans 768,000 bytes");
    // Keys and queries of different lengths are fine: 1,600 keys.
    let mut x = encoder(1);
    for i in [1, 2] {
        x[i].shape[2] = 1600;
    }
    x[3].shape[3] = 1600;
    x[3].strides = [S * 1600, 0, 1600, 1];
    let p = plan(x).expect("1,600 keys");
    assert_eq!(p.ints[9..], [S as i32, 1600]);
}

const COMMITTED_MANIFEST: &str = include_str!(
    "../../vendor/burn-cubecl/src/kernel/attention/flash_triton/flash_triton_d80.json"
);
const COMMITTED_PTX: &str =
    include_str!("../../vendor/burn-cubecl/src/kernel/attention/flash_triton/flash_triton_d80.ptx");

/// The parameter types of the PTX entry `name`, in order.
fn entry_params(ptx: &str, name: &str) -> Vec<String> {
    let start = ptx
        .find(&format!(".entry {name}("))
        .unwrap_or_else(|| panic!("no .entry {name} in the PTX"));
    let body = &ptx[start..];
    let body = &body[..body.find(')').expect("the entry's parameter list closes")];
    body.split(".param")
        .skip(1)
        .map(|param| param.split_whitespace().next().expect("a type").to_string())
        .collect()
}

#[test]
fn the_committed_kernel_is_the_one_its_manifest_describes() {
    let m = Manifest::parse(COMMITTED_MANIFEST).expect("the committed manifest");
    assert_eq!(entry_params(COMMITTED_PTX, &m.kernel), m.ptx_params);
    assert_eq!(m.head_dim, 80, "the 11B vision encoder's head dimension");
    assert!(
        COMMITTED_PTX.contains(".target sm_90a"),
        "compiled for Hopper"
    );
    assert!(
        m.shared_bytes <= 227 * 1024,
        "within a Hopper SM's shared memory"
    );
    let p = Plan::new(
        &m,
        encoder(1)[0],
        encoder(1)[1],
        encoder(1)[2],
        encoder(1)[3],
        encoder(1)[4],
    )
    .expect("the encoder's layout, with the committed kernel");
    assert_eq!(p.grid.0 as usize, S.div_ceil(m.block_rows));
}
