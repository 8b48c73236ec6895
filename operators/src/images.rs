//! Image checks for sources. Images travel inside frames as the encoded bytes they were found
//! as (PNG or JPEG, never re-encoded, so content hashes follow the files), but every one is
//! decoded once here: a truncated or mislabelled file must become a reported bad row at the
//! source, not a failure deep inside a training or evaluation run hours later.

use std::io::Cursor;
use std::path::Path;

use image::ImageFormat;

/// Checks that `bytes` are a PNG or JPEG that decodes completely and hands them back unchanged;
/// `Err` says why not, for the bad-row report.
pub(crate) fn validate(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    if bytes.is_empty() {
        return Err("the image is empty (0 bytes)".into());
    }
    let format =
        image::guess_format(&bytes).map_err(|_| "the image is neither PNG nor JPEG".to_string())?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        // The judge's preprocessing decodes PNG and JPEG only (the workspace's `image` features).
        return Err(format!(
            "the image is {format:?}; only PNG and JPEG are supported"
        ));
    }
    // Dimensions come from the header, before any pixel is decoded: a 20000×20000 PNG of a few
    // kilobytes would otherwise decode into 400 MB (and the judge shrinks every image to a few
    // hundred pixels anyway).
    let (width, height) = image::ImageReader::with_format(Cursor::new(&bytes), format)
        .into_dimensions()
        .map_err(|e| format!("the {format:?} image does not decode: {e}"))?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "the image is {width}×{height} pixels; the limit is {MAX_PIXELS} pixels"
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    let mut reader = image::ImageReader::with_format(Cursor::new(&bytes), format);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| format!("the {format:?} image does not decode: {e}"))?;
    Ok(bytes)
}

/// Largest image, in pixels, a source accepts (about 8000×6000: any camera photo).
pub(crate) const MAX_PIXELS: u64 = 48_000_000;

/// Most memory one image's decoding may take (RGBA at the pixel limit, rounded up).
const MAX_DECODED_BYTES: u64 = 256 << 20;

/// Largest image file a source reads.
pub(crate) const MAX_IMAGE_BYTES: u64 = 64 << 20;

/// Reads and validates an image file: a regular file (a FIFO, a device or a directory is a bad
/// row, never opened), read with the size limit, decoded within the pixel limit.
pub(crate) fn load(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = judgeflow_engine::files::read_regular(path, MAX_IMAGE_BYTES)
        .map_err(|e| format!("cannot read image `{}`: {e}", path.display()))?;
    validate(bytes).map_err(|why| format!("`{}`: {why}", path.display()))
}

/// Maps `f` over `items` on all cores, keeping order. Decoding is the slow part of a source
/// (thousands of photo-sized JPEGs for the real benchmarks), and rows are independent.
pub(crate) fn par_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        chunks.push(items.by_ref().take(chunk).collect());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| s.spawn(|| c.into_iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("image checks do not panic"))
            .collect()
    })
}
