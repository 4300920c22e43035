//! Image file bytes → RGB uint8 `H×W×3` (DESIGN §3 step 1, docs/contract.md §3): for a valid file, pixel for
//! pixel what Pillow's `Image.open(...).convert("RGB")` gives, within size limits checked from the header
//! before any pixel is decoded.
//!
//! JPEG goes through libjpeg-turbo (the library Pillow bundles) driven as Pillow drives it (`csrc/jpeg_shim.c`);
//! PNG through the `png` crate, which checks the file against the PNG specification, followed by Pillow's mode
//! conversions to RGB (`png.rs`).

mod jpeg;
mod png;

use std::fmt;

/// Pillow's `Image.MAX_IMAGE_PIXELS`: larger images are refused as possible decompression bombs (the Python
/// services turn Pillow's `DecompressionBombWarning` into an error), whatever `MAX_PIXELS` says.
pub const PILLOW_MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// Longer side / shorter side at most this (serving_common.decoding.MAX_ASPECT_RATIO). The model resizes the
/// shorter side to 256 and the longer one in proportion, so a 1×2000 strip of a few hundred bytes would become a
/// 256×512,000 float tensor (1.5 GB); 100:1 caps that at 256×25,600.
pub const MAX_ASPECT_RATIO: u64 = 100;

const JPEG_MAGIC: &[u8] = b"\xFF\xD8\xFF";
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A decoded image: `height` rows of `width` RGB pixels, row-major.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RgbImage({}x{})", self.width, self.height)
    }
}

/// Why an image file cannot be used; every variant is the client's problem (HTTP 422).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Neither a JPEG nor a PNG, or a header that cannot be read.
    NotAnImage(String),
    /// Larger than Pillow's decompression-bomb limit.
    Bomb { width: u64, height: u64 },
    /// Larger than the configured `MAX_PIXELS`.
    TooManyPixels { width: u64, height: u64, limit: u64 },
    /// Longer than `MAX_ASPECT_RATIO` times its width, or wider than that times its height.
    AspectRatio { width: u64, height: u64 },
    /// The header is fine but the data is not.
    Corrupt(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotAnImage(_) => write!(f, "image is not a decodable JPEG or PNG file"),
            DecodeError::Bomb { width, height } => write!(
                f,
                "image is too large to decode safely: Image size ({} pixels) exceeds limit of \
                 {PILLOW_MAX_IMAGE_PIXELS} pixels, could be decompression bomb DOS attack.",
                width * height
            ),
            DecodeError::TooManyPixels { width, height, limit } => {
                write!(f, "image is {width}x{height} pixels; the limit is {limit} pixels")
            }
            DecodeError::AspectRatio { width, height } => {
                let (longer, shorter) = ((*width).max(*height), (*width).min(*height));
                write!(
                    f,
                    "image is {width}x{height} pixels, an aspect ratio over {MAX_ASPECT_RATIO}:1; the model would \
                     resize it to 256x{} pixels",
                    u128::from(longer) * 256 / u128::from(shorter)
                )
            }
            DecodeError::Corrupt(reason) => write!(f, "image data is corrupt or truncated: {reason}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decode a JPEG or PNG file to RGB, refusing images over `max_pixels` (and Pillow's bomb limit) from the header.
pub fn decode_rgb(data: &[u8], max_pixels: Option<u64>) -> Result<RgbImage, DecodeError> {
    if data.starts_with(JPEG_MAGIC) {
        jpeg::decode(data, max_pixels)
    } else if data.starts_with(PNG_MAGIC) {
        png::decode(data, max_pixels)
    } else {
        Err(DecodeError::NotAnImage("unknown file signature".into()))
    }
}

/// The checks on the size from the header, in the Python services' order: Pillow's bomb limit at open, then
/// `MAX_PIXELS`, then the aspect ratio.
fn check_size(width: u64, height: u64, max_pixels: Option<u64>) -> Result<(), DecodeError> {
    let pixels = width.saturating_mul(height);
    if pixels > PILLOW_MAX_IMAGE_PIXELS {
        return Err(DecodeError::Bomb { width, height });
    }
    if let Some(limit) = max_pixels
        && pixels > limit
    {
        return Err(DecodeError::TooManyPixels { width, height, limit });
    }
    let (longer, shorter) = (width.max(height), width.min(height));
    if shorter > 0 && u128::from(longer) > u128::from(MAX_ASPECT_RATIO) * u128::from(shorter) {
        return Err(DecodeError::AspectRatio { width, height });
    }
    Ok(())
}

/// `L` → `RGB`: the gray value in all three channels.
fn gray_to_rgb(gray: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(gray.len() * 3);
    for &value in gray {
        rgb.extend_from_slice(&[value, value, value]);
    }
    rgb
}

/// Pillow's `MULDIV255`: `(a * b + 127) / 255`, computed its way.
#[inline]
fn muldiv255(a: i32, b: i32) -> i32 {
    let tmp = a * b + 128;
    ((tmp >> 8) + tmp) >> 8
}

/// Pillow's `cmyk2rgb` (Convert.c), for CMYK as Pillow holds it after its "CMYK;I" (Adobe) unpacking.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for pixel in cmyk.chunks_exact(4) {
        let nk = 255 - i32::from(pixel[3]);
        for &ink in &pixel[..3] {
            rgb.push((nk - muldiv255(i32::from(ink), nk)).clamp(0, 255) as u8);
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_signatures_are_not_images() {
        for data in [&b""[..], b"GIF89a", b"\xFF\xD8", b"\x89PNG\r\n", b"RIFF\0\0\0\0WEBP"] {
            assert!(matches!(decode_rgb(data, None), Err(DecodeError::NotAnImage(_))), "{data:?}");
        }
    }

    #[test]
    fn size_checks_follow_pillow_order() {
        assert_eq!(check_size(10, 10, Some(100)), Ok(()));
        assert_eq!(
            check_size(11, 10, Some(100)),
            Err(DecodeError::TooManyPixels { width: 11, height: 10, limit: 100 })
        );
        // The bomb check comes first, and applies even with a larger MAX_PIXELS.
        assert_eq!(
            check_size(10_000, 10_000, Some(50_000_000)),
            Err(DecodeError::Bomb { width: 10_000, height: 10_000 })
        );
        assert_eq!(
            check_size(10_000, 10_000, Some(u64::MAX)),
            Err(DecodeError::Bomb { width: 10_000, height: 10_000 })
        );
        assert_eq!(check_size(u64::MAX, u64::MAX, None), Err(DecodeError::Bomb { width: u64::MAX, height: u64::MAX }));
    }

    #[test]
    fn aspect_ratios_over_100_to_1_are_refused_last() {
        assert_eq!(check_size(1, 100, Some(100)), Ok(()));
        assert_eq!(check_size(300, 3, None), Ok(()));
        assert_eq!(check_size(1, 1, Some(1)), Ok(()));
        assert_eq!(check_size(1, 101, None), Err(DecodeError::AspectRatio { width: 1, height: 101 }));
        assert_eq!(check_size(301, 3, Some(1000)), Err(DecodeError::AspectRatio { width: 301, height: 3 }));
        // MAX_PIXELS first; a zero side is left to the decoder.
        assert!(matches!(check_size(1, 101, Some(100)), Err(DecodeError::TooManyPixels { .. })));
        assert_eq!(check_size(0, 5000, None), Ok(()));
        assert_eq!(
            DecodeError::AspectRatio { width: 1, height: 2000 }.to_string(),
            "image is 1x2000 pixels, an aspect ratio over 100:1; the model would resize it to 256x512000 pixels"
        );
        assert_eq!(
            DecodeError::AspectRatio { width: 20_000, height: 3 }.to_string(),
            "image is 20000x3 pixels, an aspect ratio over 100:1; the model would resize it to 256x1706666 pixels"
        );
    }

    #[test]
    fn cmyk_conversion_is_pillows() {
        // Values worked out with Pillow: Image.frombytes("CMYK", (1, 1), bytes(p)).convert("RGB").
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0]), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 0]), vec![0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 255]), vec![0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[10, 100, 200, 30]), vec![216, 137, 49]);
    }

    #[test]
    fn gray_expands_to_three_channels() {
        assert_eq!(gray_to_rgb(&[0, 7, 255]), vec![0, 0, 0, 7, 7, 7, 255, 255, 255]);
    }
}
