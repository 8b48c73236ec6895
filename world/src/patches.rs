//! Per-patch shape labels: what a vision tower that cuts the image into square patches should
//! see in each one. A supervised target for the vision side of pretraining, derived from the
//! scene graph with the renderer's own coverage test, so a label never disagrees with the pixels.
//!
//! Contract: [`patch_shape_labels`] returns one label per patch, row-major over the
//! `(width / patch) x (height / patch)` grid; [`PATCH_BACKGROUND`] where no object covers at
//! least a quarter of the patch, else `1 + index in Shape::ALL` of the object covering most of
//! it (the one drawn last wins a point, as in the picture). A pure function of the scene.

use crate::render::Region;
use crate::scene::{Scene, Shape};

/// The label of a patch that shows background.
pub const PATCH_BACKGROUND: i64 = 0;

/// Subsamples per patch axis when measuring how much of a patch an object covers.
const SAMPLES: u32 = 4;

/// One label per `patch x patch` cell of the scene's canvas, row-major; see the module doc.
///
/// # Panics
/// If `patch` is 0.
pub fn patch_shape_labels(scene: &Scene, patch: u32) -> Vec<i64> {
    assert!(patch > 0, "a patch is at least one pixel wide");
    let (gw, gh) = (scene.width / patch, scene.height / patch);
    let step = patch as f32 / SAMPLES as f32;
    let regions: Vec<Region> = scene.objects.iter().map(Region::of).collect();
    let mut labels = Vec::with_capacity((gw * gh) as usize);
    for gy in 0..gh {
        for gx in 0..gw {
            let mut hits = vec![0u32; scene.objects.len()];
            for sy in 0..SAMPLES {
                for sx in 0..SAMPLES {
                    let px = (gx * patch) as f32 + (sx as f32 + 0.5) * step;
                    let py = (gy * patch) as f32 + (sy as f32 + 0.5) * step;
                    // The object painted last is the one visible at this point.
                    if let Some(k) = (0..regions.len())
                        .rev()
                        .find(|&k| regions[k].contains(px, py))
                    {
                        hits[k] += 1;
                    }
                }
            }
            let best = hits
                .iter()
                .enumerate()
                .max_by_key(|&(k, &h)| (h, std::cmp::Reverse(k)))
                .filter(|&(_, &h)| h * 4 >= SAMPLES * SAMPLES);
            labels.push(match best {
                Some((k, _)) => 1 + shape_index(scene.objects[k].shape),
                None => PATCH_BACKGROUND,
            });
        }
    }
    labels
}

fn shape_index(shape: Shape) -> i64 {
    Shape::ALL
        .iter()
        .position(|&s| s == shape)
        .expect("Shape::ALL lists every shape") as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::{Background, Color, Object, Pattern, Size};

    fn scene(objects: Vec<Object>) -> Scene {
        Scene {
            seed: 1,
            width: 32,
            height: 32,
            objects,
            background: Background {
                color: [200, 200, 200],
                pattern: Pattern::Plain,
                noise: 0.0,
            },
        }
    }

    fn object(shape: Shape, x: u32, y: u32, radius: u32) -> Object {
        Object {
            shape,
            color: Color::ALL[0],
            size: Size::ALL[0],
            x,
            y,
            radius,
        }
    }

    #[test]
    fn an_empty_scene_is_all_background() {
        assert_eq!(
            patch_shape_labels(&scene(vec![]), 8),
            vec![PATCH_BACKGROUND; 16]
        );
    }

    #[test]
    fn a_square_filling_one_patch_labels_that_patch_only() {
        // A square of half side round(0.85 * 5) = 4 centred in patch (1, 2) covers it exactly.
        let labels = patch_shape_labels(&scene(vec![object(Shape::Square, 12, 20, 5)]), 8);
        let square = 1 + shape_index(Shape::Square);
        for (i, &l) in labels.iter().enumerate() {
            let want = if i == 2 * 4 + 1 {
                square
            } else {
                PATCH_BACKGROUND
            };
            assert_eq!(l, want, "patch {i}");
        }
    }

    #[test]
    fn the_object_drawn_last_wins_where_two_overlap() {
        // A large circle under the square of the test above: the square's patch is square,
        // the circle's other patches near its centre are circle.
        let labels = patch_shape_labels(
            &scene(vec![
                object(Shape::Circle, 16, 16, 14),
                object(Shape::Square, 12, 20, 5),
            ]),
            8,
        );
        assert_eq!(labels[2 * 4 + 1], 1 + shape_index(Shape::Square));
        for i in [4 + 1, 4 + 2, 2 * 4 + 2] {
            assert_eq!(labels[i], 1 + shape_index(Shape::Circle), "patch {i}");
        }
        // The corner patches reach past the circle's rim for most of their area.
        assert_eq!(labels[0], PATCH_BACKGROUND);
    }
}
