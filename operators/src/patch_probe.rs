//! The patch probe of `op = "train"` (`patch_probe > 0`): a vision-side pretraining target.
//!
//! Through the language loss alone the `tiny` base model learnt colour but never shape (every
//! lever of sessions 4–5 left shape, existence and count at their priors): the vision tower is
//! trained only through the cross-attention, and colour is already in the raw patch embedding
//! while shape is not. The probe is a linear classifier on every vision token that names the
//! shape covering its patch ([`judgeflow_world::patch_shape_labels`], from the `scenes` input's
//! scene graphs); its cross-entropy, weighted by `train`'s `patch_probe`, is added to the language loss.
//! The probe itself is dropped before the checkpoint is written, so the model's format and
//! every consumer are unchanged.
//!
//! Contract: rows are matched to scenes by their image bytes (the world's corpus copies each
//! scene's PNG); a row whose image is no scene's has no patch labels and trains on the
//! language loss alone. A scene whose canvas is not the vision tower's tile (so images would be
//! resized and labels would not line up) is a diagnostic naming the node, not a silent
//! mismatch.

use std::collections::HashMap;

use judgeflow_model::config::MllamaConfig;
use judgeflow_model::train::IGNORE_PATCH;
use judgeflow_world::{Shape, patch_shape_labels};
use miette::miette;
use polars::prelude::DataFrame;

use crate::frames::scenes_by_image;

/// Classes of the probe: background and each shape.
pub(crate) const CLASSES: usize = 1 + Shape::ALL.len();

/// Vision-token labels per image, keyed by the image bytes' hash, in the layout of the probe's
/// logits: per tile its class token ([`IGNORE_PATCH`]) then its patches row-major; the image's
/// one tile is the first, padding tiles are all [`IGNORE_PATCH`].
pub(crate) fn labels_by_image(
    node: &str,
    scenes: &DataFrame,
    config: &MllamaConfig,
) -> miette::Result<HashMap<blake3::Hash, Vec<i64>>> {
    let vision = &config.vision_config;
    let tile = vision.image_size as u32;
    let patch = vision.patch_size as u32;
    let tokens = vision.num_patches();
    let mut out = HashMap::with_capacity(scenes.height());
    for (i, (image, scene)) in scenes_by_image(node, scenes, "judgeflow::train::patch_probe")?
        .into_iter()
        .enumerate()
    {
        if scene.width != tile || scene.height != tile {
            return Err(miette!(
                code = "judgeflow::train::patch_probe",
                help = "draw the world at the model's image_size (or set train's image_size to the world's)",
                "node `{node}`: the patch probe needs scenes drawn at the vision tower's tile size, {tile} px; scene {i} is {}x{} px",
                scene.width,
                scene.height
            ));
        }
        let mut labels = vec![IGNORE_PATCH; vision.max_num_tiles * tokens];
        labels[1..tokens].copy_from_slice(&patch_shape_labels(&scene, patch));
        out.insert(image, labels);
    }
    Ok(out)
}

/// The labels of a batch's rows (`images[k]` is row k's image); unlabelled rows are all
/// [`IGNORE_PATCH`].
pub(crate) fn batch_labels(
    by_image: &HashMap<blake3::Hash, Vec<i64>>,
    images: &[&[u8]],
    config: &MllamaConfig,
) -> Vec<Vec<i64>> {
    let width = config.vision_config.max_num_tiles * config.vision_config.num_patches();
    images
        .iter()
        .map(|bytes| {
            by_image
                .get(&blake3::hash(bytes))
                .cloned()
                .unwrap_or_else(|| vec![IGNORE_PATCH; width])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use judgeflow_world::{Scene, WorldConfig, draw_scene, render_png};
    use polars::prelude::*;

    fn scenes_frame(size: u32) -> (DataFrame, Vec<Vec<u8>>) {
        let config = WorldConfig {
            image_size: size,
            ..WorldConfig::default()
        };
        let scenes: Vec<Scene> = (0..3).map(|s| draw_scene(&config, s)).collect();
        let pngs: Vec<Vec<u8>> = scenes.iter().map(render_png).collect();
        let df = DataFrame::new_infer_height(vec![
            Column::new(
                "image".into(),
                pngs.iter().map(|p| p.as_slice()).collect::<Vec<_>>(),
            ),
            Column::new(
                "scene_graph".into(),
                scenes.iter().map(Scene::to_json).collect::<Vec<_>>(),
            ),
        ])
        .unwrap();
        (df, pngs)
    }

    #[test]
    fn labels_follow_the_probe_layout_and_unknown_images_are_ignored() {
        let config = MllamaConfig::micro(300, 299);
        let (df, pngs) = scenes_frame(64);
        let by_image = labels_by_image("n", &df, &config).unwrap();
        let rows = batch_labels(&by_image, &[&pngs[1], b"not a scene"], &config);
        let tokens = config.vision_config.num_patches();
        assert_eq!(rows[0].len(), tokens);
        assert_eq!(rows[0][0], IGNORE_PATCH, "the class token has no label");
        assert!(
            rows[0][1..]
                .iter()
                .all(|&l| (0..CLASSES as i64).contains(&l))
        );
        assert!(
            rows[0][1..].iter().any(|&l| l > 0),
            "a scene shows some shape"
        );
        assert!(rows[1].iter().all(|&l| l == IGNORE_PATCH));
    }

    #[test]
    fn scenes_of_another_size_than_the_tile_are_a_diagnostic() {
        let config = MllamaConfig::micro(300, 299);
        let (df, _) = scenes_frame(96);
        let err = labels_by_image("pretrain", &df, &config).unwrap_err();
        assert!(
            format!("{err}").contains("node `pretrain`") && format!("{err}").contains("64 px"),
            "{err}"
        );
    }
}
