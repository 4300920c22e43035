//! JPEG through libjpeg-turbo's libjpeg API (`csrc/jpeg_shim.c`), as Pillow decodes it.

use std::ffi::{CStr, c_char, c_int, c_uint};

use super::{DecodeError, RgbImage, check_size, cmyk_to_rgb, gray_to_rgb};

// Linked for its static libjpeg-turbo (built from the crate's vendored source); the shim calls into it.
use turbojpeg_sys as _;

const MS_OK: c_int = 0;
const MS_TRUNCATED: c_int = 1;
const MS_BAD_PRECISION: c_int = 3;
const MS_BAD_COMPONENTS: c_int = 4;
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
    match status {
        MS_OK => {}
        MS_TRUNCATED => return Err(DecodeError::NotAnImage("JPEG header is truncated".into())),
        MS_BAD_PRECISION | MS_BAD_COMPONENTS => return Err(DecodeError::NotAnImage(message(&buffer))),
        _ => return Err(DecodeError::NotAnImage(message(&buffer))),
    }
    check_size(u64::from(width), u64::from(height), max_pixels)?;

    let (width, height, components) = (width as usize, height as usize, components as usize);
    let mut out = vec![0u8; width * height * components];
    // SAFETY: `out` is exactly the size the shim checks against before writing scanlines into it.
    let status = unsafe { ms_jpeg_decode(data.as_ptr(), data.len(), out.as_mut_ptr(), out.len(), buffer.as_mut_ptr()) };
    match status {
        MS_OK => {}
        MS_TRUNCATED => {
            return Err(DecodeError::Corrupt("image file is truncated".into()));
        }
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
