//! PNG through the `png` crate (contract §3): every chunk's CRC checked, and the zlib checksum when it comes
//! with the last rows (as in Pillow); the image data inflated, unfiltered and de-interlaced by the crate; the
//! file read to its IEND. The samples are then converted to RGB as Pillow's `convert("RGB")` converts the mode
//! Pillow reads the file as.

use std::io::Cursor;

use ::png::{BitDepth, ColorType, DecodeOptions, Decoder, DecodingError, Info};

use super::{DecodeError, RgbImage, check_size};

pub(super) fn decode(data: &[u8], max_pixels: Option<u64>) -> Result<RgbImage, DecodeError> {
    let mut options = DecodeOptions::default();
    // The crate's defaults are lenient: it skips the Adler-32 check and ancillary chunks with a bad CRC.
    options.set_ignore_adler32(false);
    options.set_skip_ancillary_crc_failures(false);
    // Text and ICC profiles are not used: their chunks are skipped (CRC still checked), not inflated.
    options.set_ignore_text_chunk(true);
    options.set_ignore_iccp_chunk(true);
    let mut decoder = Decoder::new_with_options(Cursor::new(data), options);

    let header = decoder.read_header_info().map_err(|error| refusal(error, DecodeError::NotAnImage))?;
    check_size(u64::from(header.width), u64::from(header.height), max_pixels)?;

    let mut reader = decoder.read_info().map_err(corrupt)?;
    if reader.info().color_type == ColorType::Indexed && reader.info().palette.is_none() {
        return Err(DecodeError::Corrupt("a palette image without a PLTE chunk before its image data".into()));
    }
    let size = reader.output_buffer_size().ok_or_else(|| DecodeError::Corrupt("image too large".into()))?;
    let mut samples = vec![0u8; size];
    // The first frame is the IDAT image: for an APNG, its default image.
    let frame = reader.next_frame(&mut samples).map_err(corrupt)?;
    reader.finish().map_err(corrupt)?;

    let info = reader.info();
    let (width, height) = (info.width as usize, info.height as usize);
    let pixels = to_rgb(samples, frame.line_size, info);
    Ok(RgbImage { width, height, pixels })
}

fn corrupt(error: DecodingError) -> DecodeError {
    refusal(error, DecodeError::Corrupt)
}

fn refusal(error: DecodingError, kind: fn(String) -> DecodeError) -> DecodeError {
    match error {
        DecodingError::IoError(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            kind("PNG file is truncated".into())
        }
        error => kind(format!("PNG: {error}")),
    }
}

/// Pillow's `convert("RGB")` of the samples (rows of `line_size` bytes, as the file holds them) in the mode
/// Pillow gives the file: gray of 1, 2 or 4 bits scaled to 0..255, 16-bit gray ("I;16") clipped to 255, 16-bit
/// colour and gray + alpha its high byte, alpha and tRNS dropped, palette indices past the palette's end black.
fn to_rgb(samples: Vec<u8>, line_size: usize, info: &Info) -> Vec<u8> {
    let (width, count) = (info.width as usize, info.width as usize * info.height as usize);
    let bits = info.bit_depth as usize;
    match (info.color_type, info.bit_depth) {
        (ColorType::Rgb, BitDepth::Eight) => samples,
        (ColorType::Grayscale, BitDepth::Sixteen) => rgb_from(
            samples.chunks_exact(2).map(|gray| [u16::from_be_bytes([gray[0], gray[1]]).min(255) as u8; 3]),
            count,
        ),
        (ColorType::Grayscale, _) => {
            let scale = 255 / ((1u16 << bits) - 1) as u8;
            rgb_from(unpack(&samples, line_size, width, bits).map(|gray| [gray * scale; 3]), count)
        }
        (ColorType::Indexed, _) => {
            let mut table = [[0u8; 3]; 256];
            let palette = info.palette.as_deref().unwrap_or_default();
            for (entry, rgb) in table.iter_mut().zip(palette.chunks_exact(3)) {
                entry.copy_from_slice(rgb);
            }
            rgb_from(unpack(&samples, line_size, width, bits).map(|index| table[usize::from(index)]), count)
        }
        (ColorType::GrayscaleAlpha | ColorType::Rgb | ColorType::Rgba, _) => {
            // 8 or 16 bits a sample: the first byte of a sample is its high byte.
            let step = bits / 8;
            let pixel_bytes = info.color_type.samples() * step;
            let gray = info.color_type == ColorType::GrayscaleAlpha;
            rgb_from(
                samples
                    .chunks_exact(pixel_bytes)
                    .map(|pixel| if gray { [pixel[0]; 3] } else { [pixel[0], pixel[step], pixel[2 * step]] }),
                count,
            )
        }
    }
}

/// The samples of rows of `bits` (1, 2, 4 or 8) each, packed most significant first, every row starting a byte.
fn unpack(samples: &[u8], line_size: usize, width: usize, bits: usize) -> impl Iterator<Item = u8> + '_ {
    let mask = ((1u16 << bits) - 1) as u8;
    samples.chunks_exact(line_size).flat_map(move |row| {
        (0..width).map(move |x| {
            let bit = x * bits;
            (row[bit / 8] >> (8 - bits - bit % 8)) & mask
        })
    })
}

fn rgb_from(pixels: impl Iterator<Item = [u8; 3]>, count: usize) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(count * 3);
    pixels.for_each(|pixel| rgb.extend_from_slice(&pixel));
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacking_reads_the_most_significant_bits_first_and_skips_row_padding() {
        // Two rows of 3 two-bit samples, one byte each: 0b00_01_10_xx, 0b11_10_01_xx.
        let samples = [0b0001_1011, 0b1110_0100];
        assert_eq!(unpack(&samples, 1, 3, 2).collect::<Vec<_>>(), vec![0, 1, 2, 3, 2, 1]);
        assert_eq!(unpack(&[0b1010_0000], 1, 3, 1).collect::<Vec<_>>(), vec![1, 0, 1]);
        assert_eq!(unpack(&[7, 200], 2, 2, 8).collect::<Vec<_>>(), vec![7, 200]);
    }
}
