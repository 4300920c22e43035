//! JPEG through libjpeg-turbo's libjpeg API (`csrc/jpeg_shim.c`), as Pillow decodes it. The size comes from
//! libjpeg's `jpeg_read_header` and is checked before any pixel is decoded; Pillow's own walk of the segments is
//! not copied (contract: where the services may differ).

use std::ffi::{CStr, c_char, c_int, c_uint};

use super::{DecodeError, RgbImage, check_size, cmyk_to_rgb, gray_to_rgb};

// Linked for its static libjpeg-turbo (built from the crate's vendored source); the shim calls into it.
use turbojpeg_sys as _;

const MS_OK: c_int = 0;
const MS_TRUNCATED: c_int = 1;
/// libjpeg's `JMSG_LENGTH_MAX`.
const MESSAGE_LENGTH: usize = 200;

unsafe extern "C" {
    fn ms_jpeg_info(
        data: *const u8,
        length: usize,
        width: *mut c_uint,
        height: *mut c_uint,
        components: *mut c_int,
        message: *mut c_char,
    ) -> c_int;
    fn ms_jpeg_decode(data: *const u8, length: usize, out: *mut u8, out_length: usize, message: *mut c_char) -> c_int;
}

fn message(buffer: &[c_char; MESSAGE_LENGTH]) -> String {
    // SAFETY: the shim always leaves a NUL-terminated string in the buffer (it starts by writing one).
    unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned()
}

pub(super) fn decode(data: &[u8], max_pixels: Option<u64>) -> Result<RgbImage, DecodeError> {
    let mut buffer = [0 as c_char; MESSAGE_LENGTH];
    let (mut width, mut height, mut components) = (0 as c_uint, 0 as c_uint, 0 as c_int);
    // SAFETY: `data` is valid for `data.len()` bytes; the out-pointers and the message buffer are valid.
    let status = unsafe {
        ms_jpeg_info(data.as_ptr(), data.len(), &mut width, &mut height, &mut components, buffer.as_mut_ptr())
    };
    // Anything but OK: truncated, or libjpeg's error, or a precision or number of components Pillow refuses.
    match status {
        MS_OK => {}
        MS_TRUNCATED => return Err(DecodeError::NotAnImage("JPEG header is truncated".into())),
        _ => return Err(DecodeError::NotAnImage(message(&buffer))),
    }
    check_size(u64::from(width), u64::from(height), max_pixels)?;

    let (width, height, components) = (width as usize, height as usize, components as usize);
    let mut out = vec![0u8; width * height * components];
    // SAFETY: `out` is exactly the size the shim checks against before writing scanlines into it.
    let status = unsafe { ms_jpeg_decode(data.as_ptr(), data.len(), out.as_mut_ptr(), out.len(), buffer.as_mut_ptr()) };
    // Corrupt scan data is only a warning in libjpeg (decoded, as in Pillow); running out of data is an error.
    match status {
        MS_OK => {}
        MS_TRUNCATED => return Err(DecodeError::Corrupt("image file is truncated".into())),
        _ => return Err(DecodeError::Corrupt(message(&buffer))),
    }
    let pixels = match components {
        1 => gray_to_rgb(&out),
        3 => out,
        _ => {
            // Pillow reads CMYK JPEGs with the "CMYK;I" raw mode (Adobe's inverted polarity), then cmyk2rgb.
            for value in &mut out {
                *value = 255 - *value;
            }
            cmyk_to_rgb(&out)
        }
    };
    Ok(RgbImage { width, height, pixels })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = include_bytes!("../../tests/fixtures/jpeg_444.jpg");

    /// The fixture with `extra` inserted after its first segment (SOI, then APP0 from byte 2).
    fn with(extra: &[u8]) -> Vec<u8> {
        let at = 4 + usize::from(u16::from_be_bytes([JPEG[4], JPEG[5]]));
        [&JPEG[..at], extra, &JPEG[at..]].concat()
    }

    #[test]
    fn segments_only_pillow_checks_are_left_to_libjpeg() {
        // Pillow does not identify these (contract: where the services may differ); libjpeg decodes them.
        for extra in [&b"\xFF\x01"[..], b"\xFF\xE0\x00\x08JFIF\x00\x01", b"\xFF\xE2\x00\x0FICC_PROFILE\x00\x01"] {
            let image = decode(&with(extra), None).unwrap_or_else(|error| panic!("{extra:?}: {error}"));
            assert_eq!((image.width, image.height), (23, 17));
        }
        // A segment running past the end of the file is a truncated header.
        let truncated = decode(&with(b"\xFF\xE0\x7F\xFF"), None);
        assert_eq!(truncated.unwrap_err(), DecodeError::NotAnImage("JPEG header is truncated".into()));
    }

    unsafe extern "C" {
        fn ms_jpeg_start_unchecked(
            data: *const u8,
            length: usize,
            quantize_colors: c_int,
            message: *mut c_char,
        ) -> c_int;
    }

    /// What libjpeg's `jpeg_start_decompress` makes of `data` without the shim's checks: Ok, or its message.
    fn start_unchecked(data: &[u8], quantize_colors: bool) -> Result<(), String> {
        let mut buffer = [0 as c_char; MESSAGE_LENGTH];
        // SAFETY: `data` is valid for `data.len()` bytes and the message buffer for MESSAGE_LENGTH.
        let status = unsafe {
            ms_jpeg_start_unchecked(data.as_ptr(), data.len(), c_int::from(quantize_colors), buffer.as_mut_ptr())
        };
        if status == MS_OK { Ok(()) } else { Err(message(&buffer)) }
    }

    #[test]
    fn the_parts_left_out_of_libjpeg_refuse_when_reached() {
        // The shim refuses these first (precision 8 only, no quantizing); reached anyway, they fail as libjpeg fails, not crash.
        assert_eq!(start_unchecked(JPEG, false), Ok(()));
        let twelve_bit = include_bytes!("../../tests/fixtures/bad_12bit.jpg");
        assert_eq!(start_unchecked(twelve_bit, false), Err("Unsupported JPEG data precision 12".into()));
        assert_eq!(start_unchecked(JPEG, true), Err("Requested feature was omitted at compile time".into()));
    }
}
