//! Rasteriser: scene graph to pixels. A pure function of the [`Scene`], so the same scene
//! always renders to the same bytes.

use image::codecs::png::PngEncoder;
use image::{ImageEncoder, RgbImage};

use crate::scene::{Object, Pattern, Scene, Shape};

/// Subsamples per pixel axis for anti-aliased edges (4 x 4 = 16 samples per pixel).
const SUPERSAMPLE: u32 = 4;

/// Renders the scene to an RGB image of `scene.width x scene.height`.
pub fn render(scene: &Scene) -> RgbImage {
    let bg = &scene.background;
    let noise = bg.noise.clamp(0.0, 1.0);
    let texture_contrast = noise * 40.0;
    let mut img = RgbImage::from_fn(scene.width, scene.height, |x, y| {
        let band = match bg.pattern {
            Pattern::Plain => 0.0,
            Pattern::Stripes { period, vertical } => {
                let coord = if vertical { x } else { y };
                if (coord * 2 / period.max(2)) % 2 == 0 {
                    1.0
                } else {
                    -1.0
                }
            }
            Pattern::Checker { cell } => {
                if (x / cell.max(1) + y / cell.max(1)) % 2 == 0 {
                    1.0
                } else {
                    -1.0
                }
            }
        };
        let offset = band * texture_contrast * 0.5;
        image::Rgb(
            bg.color
                .map(|c| (c as f32 + offset).round().clamp(0.0, 255.0) as u8),
        )
    });
    for object in &scene.objects {
        paint(&mut img, object);
    }
    if noise > 0.0 {
        // Noise is a hash of (seed, pixel), not an RNG stream, so it needs no state in the
        // scene graph and never depends on drawing order.
        let amplitude = noise * 48.0;
        for (x, y, px) in img.enumerate_pixels_mut() {
            for (ch, value) in px.0.iter_mut().enumerate() {
                let h = splitmix64(
                    scene.seed ^ (u64::from(x) << 40) ^ (u64::from(y) << 20) ^ ch as u64,
                );
                let unit = (h >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                *value = (*value as f32 + unit * amplitude).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    img
}

/// Renders and encodes as PNG. Encoder settings are fixed, so equal scenes give equal bytes.
pub fn render_png(scene: &Scene) -> Vec<u8> {
    encode_png(&render(scene))
}

/// Encodes an RGB image as PNG with the crate's fixed encoder settings.
pub fn encode_png(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding an in-memory RGB image cannot fail");
    out
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Outline of a shape as polygon vertices relative to the centre, or `None` for the circle.
fn outline(shape: Shape, r: f32) -> Option<Vec<(f32, f32)>> {
    match shape {
        Shape::Circle => None,
        // Slightly inset so squares and circles of one size class have similar area; a whole
        // number of pixels so the edges are crisp instead of a faint half-covered halo.
        Shape::Square => {
            let h = (r * 0.85).round();
            Some(vec![(-h, -h), (h, -h), (h, h), (-h, h)])
        }
        Shape::Triangle => Some(vec![(0.0, -r), (r, r * 0.8), (-r, r * 0.8)]),
        // Narrower than tall, so a diamond never reads as a rotated square of the same width.
        Shape::Diamond => Some(vec![(0.0, -r), (r * 0.75, 0.0), (0.0, r), (-r * 0.75, 0.0)]),
        Shape::Star => {
            // Shifted down by 10% of r: a star's lower points only reach 0.81 r, so this
            // centres it visually in its box.
            let shift = r * 0.1;
            Some(
                (0..10)
                    .map(|k| {
                        let radius = if k % 2 == 0 { r } else { r * 0.45 };
                        let angle =
                            -std::f32::consts::FRAC_PI_2 + k as f32 * std::f32::consts::PI / 5.0;
                        (radius * angle.cos(), radius * angle.sin() + shift)
                    })
                    .collect(),
            )
        }
    }
}

/// Even-odd point-in-polygon test (the star is not convex).
fn inside_polygon(poly: &[(f32, f32)], px: f32, py: f32) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let (xi, yi) = poly[i];
        let (xj, yj) = poly[j];
        if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// An object's painted region, its outline built once: [`render`] tests every subsample against
/// it, and so do the patch labels ([`crate::patch_shape_labels`]), so a label never disagrees
/// with the pixels.
pub(crate) struct Region {
    cx: f32,
    cy: f32,
    r: f32,
    /// Polygon vertices relative to the centre; `None` for the circle.
    poly: Option<Vec<(f32, f32)>>,
}

impl Region {
    pub(crate) fn of(object: &Object) -> Self {
        let r = object.radius as f32;
        Self {
            cx: object.x as f32,
            cy: object.y as f32,
            r,
            poly: outline(object.shape, r),
        }
    }

    /// Whether the point `(px, py)` (pixels, continuous) lies inside the painted outline.
    pub(crate) fn contains(&self, px: f32, py: f32) -> bool {
        let (dx, dy) = (px - self.cx, py - self.cy);
        match &self.poly {
            None => dx * dx + dy * dy <= self.r * self.r,
            Some(poly) => inside_polygon(poly, dx, dy),
        }
    }
}

/// Paints one object with coverage-weighted blending over its bounding box.
fn paint(img: &mut RgbImage, object: &Object) {
    let region = Region::of(object);
    let bbox = object.bbox();
    let fill = object.color.rgb();
    let step = 1.0 / SUPERSAMPLE as f32;
    for py in bbox.y0..bbox.y1.min(img.height()) {
        for px in bbox.x0..bbox.x1.min(img.width()) {
            let mut hits = 0u32;
            for sy in 0..SUPERSAMPLE {
                for sx in 0..SUPERSAMPLE {
                    let hit = region.contains(
                        px as f32 + (sx as f32 + 0.5) * step,
                        py as f32 + (sy as f32 + 0.5) * step,
                    );
                    hits += u32::from(hit);
                }
            }
            if hits > 0 {
                let alpha = hits as f32 / (SUPERSAMPLE * SUPERSAMPLE) as f32;
                let pixel = img.get_pixel_mut(px, py);
                for (dst, src) in pixel.0.iter_mut().zip(fill) {
                    *dst = (*dst as f32 * (1.0 - alpha) + src as f32 * alpha).round() as u8;
                }
            }
        }
    }
}
