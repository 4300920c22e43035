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
    pillow_open(data)?;
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

/// What a marker does in Pillow's `JpegImagePlugin.MARKER` table: nothing (a standalone marker), or a handler
/// that reads a segment (`Skip`, `APP`, `COM`, `SOF`, `DQT`). `None`: not in the table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Handler {
    Standalone,
    Skip,
    App,
    Com,
    Sof,
    Dqt,
}

fn pillow_handler(marker: u16) -> Option<Handler> {
    Some(match marker {
        0xFFC4 | 0xFFCC | 0xFFDA | 0xFFDC | 0xFFDD | 0xFFDF => Handler::Skip,
        0xFFC0..=0xFFCF | 0xFFDE if marker != 0xFFC8 => Handler::Sof,
        0xFFC8 | 0xFFD0..=0xFFD9 | 0xFFF0..=0xFFFD => Handler::Standalone,
        0xFFDB => Handler::Dqt,
        0xFFE0..=0xFFEF => Handler::App,
        0xFFFE => Handler::Com,
        _ => return None,
    })
}

/// Pillow's `JpegImageFile._open`, step for step up to the first SOS: the marker walk and the checks its
/// handlers make, which refuse some files libjpeg would decode (an unknown marker such as TEM, a JFIF or Adobe
/// segment too short to hold a version, a frame header Pillow cannot read, a short quantization table, a
/// malformed Photoshop resource, a first ICC chunk without its count). Pillow's `SyntaxError`, `struct.error`
/// and `IndexError` there make the file unidentified; a segment longer than the file is an `OSError`.
fn pillow_open(data: &[u8]) -> Result<(), DecodeError> {
    let unidentified = |why: &str| DecodeError::NotAnImage(format!("JPEG header: {why}"));
    let mut at = 3; // after FF D8 FF; the third byte starts the walk as the pending 0xFF
    let mut pending = Some(0xFFu8);
    let mut icc: Vec<&[u8]> = Vec::new();
    let read_byte = |at: &mut usize| -> Option<u8> {
        let byte = data.get(*at).copied();
        *at += usize::from(byte.is_some());
        byte
    };
    while let Some(byte) = pending {
        if byte != 0xFF {
            pending = read_byte(&mut at); // junk between markers is skipped
            continue;
        }
        let Some(second) = read_byte(&mut at) else {
            break;
        };
        let marker = 0xFF00 | u16::from(second);
        let Some(handler) = pillow_handler(marker) else {
            match marker {
                0xFFFF => pending = Some(0xFF),
                0xFF00 => pending = read_byte(&mut at),
                _ => return Err(unidentified("no marker found")),
            }
            continue;
        };
        if handler != Handler::Standalone {
            // `n = i16(fp.read(2)) - 2`, then `ImageFile._safe_read(fp, n)`.
            let Some(length) = data.get(at..at + 2) else {
                return Err(unidentified("segment length missing"));
            };
            at += 2;
            let n = usize::from(u16::from_be_bytes([length[0], length[1]])).saturating_sub(2);
            let Some(segment) = data.get(at..at + n) else {
                return Err(DecodeError::Corrupt("Truncated File Read".into()));
            };
            at += n;
            match handler {
                Handler::App => pillow_app(marker, segment, &mut icc).map_err(unidentified)?,
                Handler::Sof => pillow_sof(segment, &mut icc).map_err(unidentified)?,
                Handler::Dqt => pillow_dqt(segment).map_err(unidentified)?,
                Handler::Standalone | Handler::Skip | Handler::Com => {}
            }
        }
        if marker == 0xFFDA {
            break; // start of scan: the rest is libjpeg's
        }
        pending = read_byte(&mut at);
    }
    Ok(())
}

/// Pillow's `APP` handler: the parts of it that can fail.
fn pillow_app<'a>(marker: u16, s: &'a [u8], icc: &mut Vec<&'a [u8]>) -> Result<(), &'static str> {
    match marker {
        // `i16(s, 5)`: the version.
        0xFFE0 if s.starts_with(b"JFIF") && s.len() < 7 => Err("JFIF segment too short"),
        0xFFEE if s.starts_with(b"Adobe") && s.len() < 7 => Err("Adobe segment too short"),
        0xFFE2 if s.starts_with(b"ICC_PROFILE\0") => {
            icc.push(s);
            Ok(())
        }
        0xFFED if s.starts_with(b"Photoshop 3.0\0") => {
            // Resource blocks; a short read of a number ends the walk (struct.error is caught), a missing name
            // length is an IndexError (not caught).
            let mut offset = 14usize;
            while s.get(offset..offset.saturating_add(4)) == Some(b"8BIM") {
                offset += 4;
                if offset + 2 > s.len() {
                    break;
                }
                offset += 2;
                let Some(&name_length) = s.get(offset) else {
                    return Err("Photoshop resource without a name length");
                };
                offset += 1 + usize::from(name_length);
                offset += offset & 1;
                let Some(size) = s.get(offset..offset.saturating_add(4)).filter(|size| size.len() == 4) else {
                    break;
                };
                let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
                offset = offset.saturating_add(4).saturating_add(size);
                offset = offset.saturating_add(offset & 1);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Pillow's `SOF` handler: size, 8 bits, 1/3/4 components, whole component specs, and the ICC fix-up (the
/// chunks sorted as bytes, the count read from the first).
fn pillow_sof(s: &[u8], icc: &mut Vec<&[u8]>) -> Result<(), &'static str> {
    if s.len() < 5 {
        return Err("frame header too short");
    }
    if s[0] != 8 {
        return Err("cannot handle layers that are not 8-bit");
    }
    let Some(&layers) = s.get(5) else {
        return Err("frame header too short");
    };
    if !matches!(layers, 1 | 3 | 4) {
        return Err("cannot handle this number of layers");
    }
    if let Some(first) = icc.iter().min() {
        if first.len() < 14 {
            return Err("ICC profile chunk too short");
        }
        icc.clear();
    }
    if !(s.len() - 6).is_multiple_of(3) {
        return Err("frame header component list cut short");
    }
    Ok(())
}

/// Pillow's `DQT` handler: every table whole (65 bytes, or 129 for 16-bit values).
fn pillow_dqt(mut s: &[u8]) -> Result<(), &'static str> {
    while let Some(&v) = s.first() {
        let length = if v < 16 { 65 } else { 129 };
        if s.len() < length {
            return Err("bad quantization table marker");
        }
        s = &s[length..];
    }
    Ok(())
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

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let length = u16::try_from(payload.len() + 2).unwrap().to_be_bytes();
        [&[0xFF, marker], &length[..], payload].concat()
    }

    fn refused(data: &[u8]) -> bool {
        matches!(pillow_open(data), Err(DecodeError::NotAnImage(_)))
    }

    #[test]
    fn what_pillow_walks_past_is_accepted() {
        assert_eq!(pillow_open(JPEG), Ok(()));
        for extra in [
            &b"\x00\x12junk"[..],        // junk between markers
            b"\xFF\xFF\xFF",             // fill bytes
            b"\xFF\x00",                 // an escaped 0xFF
            b"\xFF\xD0\xFF\xD9\xFF\xF3", // RSTn, EOI, JPGn: standalone for Pillow
        ] {
            assert_eq!(pillow_open(&with(extra)), Ok(()), "{extra:?}");
        }
        for ok in [
            segment(0xE0, b"JFIF\0\x01\x02"),
            segment(0xEE, b"Adobe\0\x64"),
            segment(0xE2, b"ICC_PROFILE\0\x01\x01"),
            segment(0xED, b"Photoshop 3.0\08BIM\x04"), // a short number ends the resources quietly
            segment(0xED, b"Photoshop 3.0\08BIM\x04\x04\x00\x00\x00\x00\x00\x02ab"),
            segment(0xFE, b""),
            segment(0xE1, b"Exif\0\0MM\0*"),
        ] {
            assert_eq!(pillow_open(&with(&ok)), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn what_pillow_cannot_identify_is_refused() {
        for marker in [0x01u8, 0x02, 0x4F, 0xBF] {
            assert!(refused(&with(&[0xFF, marker])), "marker FF{marker:02X}");
        }
        assert!(refused(&with(&segment(0xE0, b"JFIF\0\x01"))));
        assert!(refused(&with(&segment(0xEE, b"Adobe\0"))));
        // Photoshop resources: a missing name length is an IndexError in Pillow (a short number is caught).
        assert!(refused(&with(&segment(0xED, b"Photoshop 3.0\08BIM\x04\x04"))));
        // The first ICC chunk (sorted as bytes) must hold its count, byte 13.
        assert!(refused(&with(&segment(0xE2, b"ICC_PROFILE\0\x01"))));
        let short_but_not_first =
            [segment(0xE2, b"ICC_PROFILE\0\x05"), segment(0xE2, b"ICC_PROFILE\0\x01\x02")].concat();
        assert_eq!(pillow_open(&with(&short_but_not_first)), Ok(()));
        // Frame headers: too short, not 8-bit, 2 components, a component cut short.
        for sof in [
            &b"\x08\x00\x01\x00"[..],
            b"\x0C\x00\x01\x00\x01\x01\x01\x11\x00",
            b"\x08\x00\x01\x00\x01\x02\x01\x11\x00\x02\x11\x00",
            b"\x08\x00\x01\x00\x01\x01\x01\x11",
        ] {
            assert!(refused(&with(&segment(0xC0, sof))), "{sof:?}");
        }
        // A quantization table cut short.
        assert!(refused(&with(&segment(0xDB, &[0u8; 64]))));
        assert!(refused(&with(&segment(0xDB, &[0x10u8; 65]))));
        // A segment length cut short by the end of the file.
        assert!(refused(b"\xFF\xD8\xFF\xE0\x00"));
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
        // The shim and the header walk refuse these first; reached anyway, they fail as libjpeg fails, not crash.
        assert_eq!(start_unchecked(JPEG, false), Ok(()));
        let twelve_bit = include_bytes!("../../tests/fixtures/bad_12bit.jpg");
        assert_eq!(start_unchecked(twelve_bit, false), Err("Unsupported JPEG data precision 12".into()));
        assert_eq!(start_unchecked(JPEG, true), Err("Requested feature was omitted at compile time".into()));
    }

    #[test]
    fn a_segment_longer_than_the_file_is_a_truncated_read() {
        assert_eq!(
            pillow_open(b"\xFF\xD8\xFF\xE0\x00\x10JFIF"),
            Err(DecodeError::Corrupt("Truncated File Read".into()))
        );
        // The walk ends at the end of the file without a scan: libjpeg refuses that later, as in Pillow.
        assert_eq!(pillow_open(b"\xFF\xD8\xFF"), Ok(()));
    }
}
