//! The decoder against Pillow and the contract: every fixture (tests/fixtures, written by make_fixtures.py with
//! the project's Pillow) decodes to exactly Pillow's `convert("RGB")` pixels, or is refused where Pillow or the
//! request contract (docs/contract.md §3) refuses it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rust_onnx_serving::decoding::{DecodeError, decode_rgb};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn expected() -> BTreeMap<String, Option<(usize, usize)>> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("tests/fixtures/expected.json");
    serde_json::from_str(&text).expect("expected.json maps names to [width, height] or null")
}

#[test]
fn fixtures_decode_to_pillows_pixels() {
    let expected = expected();
    assert!(expected.len() >= 20, "fixtures missing: run tests/fixtures/make_fixtures.py");
    for (name, size) in expected {
        let data = std::fs::read(fixtures().join(&name)).unwrap();
        let result = decode_rgb(&data, None);
        match size {
            None => assert!(result.is_err(), "{name}: to be refused, the decoder gave {result:?}"),
            Some((width, height)) => {
                let image = result.unwrap_or_else(|error| panic!("{name}: {error}"));
                assert_eq!((image.width, image.height), (width, height), "{name}");
                let pillow = std::fs::read(fixtures().join(format!("{name}.rgb"))).unwrap();
                let differing = image.pixels.chunks(3).zip(pillow.chunks(3)).filter(|(a, b)| a != b).count();
                assert_eq!(differing, 0, "{name}: {differing} pixels differ from Pillow's");
            }
        }
    }
}

#[test]
fn every_truncation_is_refused_or_pillows_pixels() {
    // Cutting a file short never panics, and whatever still decodes (a JPEG missing only its EOI, which Pillow
    // accepts too; a PNG needs its IEND) has all of the image's pixels.
    for name in ["jpeg_420.jpg", "jpeg_progressive.jpg", "png_rgb.png", "png_palette4_interlaced.png"] {
        let data = std::fs::read(fixtures().join(name)).unwrap();
        let pillow = std::fs::read(fixtures().join(format!("{name}.rgb"))).unwrap();
        for cut in 0..data.len() {
            if let Ok(image) = decode_rgb(&data[..cut], None) {
                assert!(name.ends_with(".jpg"), "{name} cut at {cut} decoded without its IEND");
                assert_eq!(image.pixels, pillow, "{name} cut at {cut}");
            }
        }
    }
}

#[test]
fn the_pixel_limit_is_checked_from_the_header() {
    let data = std::fs::read(fixtures().join("png_rgb.png")).unwrap();
    let limit = 23 * 17 - 1;
    assert_eq!(decode_rgb(&data, Some(limit)), Err(DecodeError::TooManyPixels { width: 23, height: 17, limit }));
    assert!(decode_rgb(&data, Some(limit + 1)).is_ok());
    let jpeg = std::fs::read(fixtures().join("jpeg_444.jpg")).unwrap();
    assert!(matches!(decode_rgb(&jpeg, Some(10)), Err(DecodeError::TooManyPixels { .. })));
}

#[test]
fn headers_claiming_huge_sizes_are_refused_before_decoding() {
    // A JPEG whose frame header says 65000×65000, and a PNG whose IHDR says 100000×100000 (CRC fixed up).
    let mut jpeg = std::fs::read(fixtures().join("jpeg_444.jpg")).unwrap();
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
    assert!(matches!(decode_rgb(&jpeg, Some(50_000_000)), Err(DecodeError::Bomb { .. })));

    let mut png = std::fs::read(fixtures().join("png_rgb.png")).unwrap();
    png[16..24].copy_from_slice(&[0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0]);
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(decode_rgb(&png, None), Err(DecodeError::Bomb { width: 100_000, height: 100_000 }));
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { 0xEDB8_8320 ^ (crc >> 1) } else { crc >> 1 };
        }
    }
    !crc
}
