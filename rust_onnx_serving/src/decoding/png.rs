//! PNG the way Pillow 13 reads it, so that the same files are accepted, refused and decoded to the same pixels:
//!
//! - `PngImageFile._open`: the chunks up to the first IDAT (or fdAT) go through Pillow's chunk handlers and
//!   their checks, and every one of them must have a correct CRC;
//! - `ImageFile.load` + `load_read`: the image data is read in pieces of at most 64 KiB, never across a chunk
//!   boundary, from consecutive IDAT chunks (whose CRCs are not checked);
//! - `ZipDecode.c`: zlib's `inflate` one row at a time, PNG filters, Adam7; decoding ends with the last row or
//!   with the end of the zlib stream (rows never written stay zero), and an `inflate` error — such as a wrong
//!   Adler-32 checksum seen in the same piece as the last row — is an error;
//! - `load_end`: the chunks after the image data are read (not checked) until IEND, and a truncated one is an
//!   error;
//! - the mode from bit depth and colour type (`_MODES`), then `convert("RGB")`.

use flate2::{Decompress, FlushDecompress, Status};

use super::{DecodeError, RgbImage, check_size};

/// `ImageFile.MAXBLOCK`: how much `ImageFile.load` asks for at a time.
const READ_BLOCK: usize = 65_536;
/// `PngImagePlugin.MAX_TEXT_CHUNK`: the largest decompressed iCCP, zTXt or iTXt payload.
const MAX_TEXT_CHUNK: usize = 1024 * 1024;
/// `PngImagePlugin.MAX_TEXT_MEMORY`.
const MAX_TEXT_MEMORY: usize = 64 * MAX_TEXT_CHUNK;

/// Pillow's mode for a bit depth and colour type (PngImagePlugin's `_MODES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// "1" from 1-bit grayscale.
    Bilevel,
    /// "L" from 2, 4 or 8-bit grayscale (scaled to 0..255).
    Gray,
    /// "I;16": 16-bit grayscale; `convert("RGB")` clips to 255.
    Gray16,
    /// "RGB"; 16-bit samples keep their high byte.
    Rgb,
    /// "P": palette indices.
    Palette,
    /// "LA" from 8-bit gray+alpha, and "RGBA" from 16-bit gray+alpha (high bytes).
    GrayAlpha,
    /// "RGBA"; 16-bit samples keep their high byte.
    Rgba,
}

/// Mode and bits per pixel.
fn pillow_mode(bit_depth: u8, color_type: u8) -> Option<(Mode, usize)> {
    let depth = usize::from(bit_depth);
    Some(match (bit_depth, color_type) {
        (1, 0) => (Mode::Bilevel, 1),
        (2 | 4 | 8, 0) => (Mode::Gray, depth),
        (16, 0) => (Mode::Gray16, 16),
        (8 | 16, 2) => (Mode::Rgb, 3 * depth),
        (1 | 2 | 4 | 8, 3) => (Mode::Palette, depth),
        (8 | 16, 4) => (Mode::GrayAlpha, 2 * depth),
        (8 | 16, 6) => (Mode::Rgba, 4 * depth),
        _ => return None,
    })
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn is_chunk_type(kind: &[u8]) -> bool {
    kind.len() == 4 && kind.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

fn not_png(why: impl Into<String>) -> DecodeError {
    DecodeError::NotAnImage(why.into())
}

fn corrupt(why: impl Into<String>) -> DecodeError {
    DecodeError::Corrupt(why.into())
}

fn truncated() -> DecodeError {
    corrupt("image file is truncated")
}

/// What Pillow's `PngStream` has learnt from the chunks so far.
#[derive(Debug, Default)]
struct Stream {
    size: (u32, u32),
    mode: Option<(Mode, usize)>,
    interlaced: bool,
    palette: Option<Vec<u8>>,
    /// The last tRNS of a palette image had one fully transparent entry and the rest opaque: Pillow keeps the
    /// index (`info["transparency"] = i`), not the bytes.
    transparent_index: bool,
    text_memory: usize,
    sequence: Option<u32>,
    frames: Option<u32>,
    bbox: Option<(u32, u32, u32, u32)>,
}

impl Stream {
    fn add_text(&mut self, length: usize) -> Result<(), DecodeError> {
        self.text_memory += length;
        if self.text_memory > MAX_TEXT_MEMORY {
            return Err(corrupt(format!("Too much memory used in text chunks: {}>MAX_TEXT_MEMORY", self.text_memory)));
        }
        Ok(())
    }

    /// The checks of Pillow's `chunk_*` handlers for a chunk whose body has been read.
    fn handle(&mut self, kind: &[u8], s: &[u8]) -> Result<(), DecodeError> {
        let short = |what: &str| Err(corrupt(format!("Truncated {what} chunk")));
        match kind {
            b"IHDR" => {
                if s.len() < 13 {
                    return short("IHDR");
                }
                self.size = (be32(&s[0..4]), be32(&s[4..8]));
                if let Some(mode) = pillow_mode(s[8], s[9]) {
                    self.mode = Some(mode);
                }
                self.interlaced |= s[12] != 0;
                if s[11] != 0 {
                    return Err(not_png("unknown filter category"));
                }
            }
            b"PLTE" => {
                if matches!(self.mode, Some((Mode::Palette, _))) {
                    self.palette = Some(s.to_vec());
                }
            }
            b"tRNS" => {
                let needed = match self.mode {
                    Some((Mode::Rgb, _)) => 6,
                    Some((Mode::Bilevel | Mode::Gray | Mode::Gray16, _)) => 2,
                    _ => 0,
                };
                if s.len() < needed {
                    return short("tRNS");
                }
                if matches!(self.mode, Some((Mode::Palette, _))) {
                    // `_simple_palette = re.compile(b"^\xff*\x00\xff*$")`
                    self.transparent_index =
                        s.iter().filter(|&&b| b == 0).count() == 1 && s.iter().all(|&b| b == 0 || b == 0xFF);
                }
            }
            b"gAMA" if s.len() < 4 => return short("gAMA"),
            b"cHRM" if s.len() < 32 => return short("cHRM"),
            b"sRGB" if s.is_empty() => return short("sRGB"),
            b"pHYs" if s.len() < 9 => return short("pHYs"),
            b"iCCP" => {
                // Python: i = s.find(b"\0"); comp_method = s[i + 1] (s[0] when there is no NUL).
                let i = s.iter().position(|&b| b == 0).map_or(0, |i| i + 1);
                let Some(&method) = s.get(i) else {
                    return Err(not_png("iCCP chunk without a compression method"));
                };
                if method != 0 {
                    return Err(not_png(format!("Unknown compression method {method} in iCCP chunk")));
                }
                safe_zlib_decompress(&s[i + 1..])?;
            }
            b"tEXt" => {
                let (key, value) = split_nul(s);
                if !key.is_empty() {
                    self.add_text(value.len())?;
                }
            }
            b"zTXt" => {
                let (key, value) = split_nul(s);
                let method = value.first().copied().unwrap_or(0);
                if method != 0 {
                    return Err(not_png(format!("Unknown compression method {method} in zTXt chunk")));
                }
                let text = safe_zlib_decompress(value.get(1..).unwrap_or_default())?.unwrap_or_default();
                if !key.is_empty() {
                    self.add_text(text.len())?;
                }
            }
            b"iTXt" => self.handle_itxt(s)?,
            b"acTL" => {
                if s.len() < 8 {
                    return Err(corrupt("APNG contains truncated acTL chunk"));
                }
                if self.frames.is_some() {
                    self.frames = None;
                } else {
                    let frames = be32(s);
                    if frames != 0 && frames <= 0x8000_0000 {
                        self.frames = Some(frames);
                    }
                }
            }
            b"fcTL" => {
                if s.len() < 26 {
                    return Err(corrupt("APNG contains truncated fcTL chunk"));
                }
                self.check_sequence(be32(s), self.sequence.is_none())?;
                let (width, height, x, y) = (be32(&s[4..8]), be32(&s[8..12]), be32(&s[12..16]), be32(&s[16..20]));
                let (image_width, image_height) = self.size;
                if u64::from(x) + u64::from(width) > u64::from(image_width)
                    || u64::from(y) + u64::from(height) > u64::from(image_height)
                {
                    return Err(not_png("APNG contains invalid frames"));
                }
                self.bbox = Some((x, y, width, height));
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_itxt(&mut self, s: &[u8]) -> Result<(), DecodeError> {
        let Some(nul) = s.iter().position(|&b| b == 0) else {
            return Ok(());
        };
        let rest = &s[nul + 1..];
        if rest.len() < 2 {
            return Ok(());
        }
        let (compressed, method, rest) = (rest[0], rest[1], &rest[2..]);
        let mut parts = rest.splitn(3, |&b| b == 0);
        let (Some(language), Some(translated), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(());
        };
        let value = if compressed != 0 {
            if method != 0 {
                return Ok(());
            }
            match safe_zlib_decompress(value)? {
                Some(text) => text,
                None => return Ok(()),
            }
        } else {
            value.to_vec()
        };
        let (Ok(_), Ok(_), Ok(text)) =
            (std::str::from_utf8(language), std::str::from_utf8(translated), std::str::from_utf8(&value))
        else {
            return Ok(());
        };
        self.add_text(text.chars().count())
    }

    /// Pillow: the first fcTL must be number 0, and every fcTL/fdAT the one after the last.
    fn check_sequence(&mut self, number: u32, first: bool) -> Result<(), DecodeError> {
        let expected = match self.sequence {
            None if first => number == 0,
            None => false,
            Some(last) => u64::from(last) + 1 == u64::from(number),
        };
        if !expected {
            return Err(not_png("APNG contains frame sequence errors"));
        }
        self.sequence = Some(number);
        Ok(())
    }

    /// `chunk_fdAT`'s checks before it acts as an IDAT: the data after the sequence number.
    fn handle_fdat(&mut self, length: usize, data: &[u8], position: usize) -> Result<(), DecodeError> {
        if length < 4 {
            return Err(corrupt("APNG contains truncated fDAT chunk"));
        }
        let number = data.get(position..position + 4).ok_or_else(|| corrupt("Truncated File Read"))?;
        self.check_sequence(be32(number), false)
    }
}

/// Python's `s.split(b"\0", 1)`, with the whole of `s` as the key when there is no NUL.
fn split_nul(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == 0) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

/// `_safe_zlib_decompress`: `Ok(None)` for a zlib error (which Pillow tolerates), an error when the output would
/// exceed `MAX_TEXT_CHUNK`.
fn safe_zlib_decompress(data: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
    let mut inflater = Decompress::new(true);
    let mut out = Vec::with_capacity(MAX_TEXT_CHUNK.min(data.len().saturating_mul(4).max(1024)));
    loop {
        let before = inflater.total_in();
        match inflater.decompress_vec(&data[inflater.total_in() as usize..], &mut out, FlushDecompress::Sync) {
            Err(_) => return Ok(None),
            Ok(Status::StreamEnd) => return Ok(Some(out)),
            Ok(_) => {}
        }
        let consumed_all = inflater.total_in() as usize == data.len();
        if out.len() >= MAX_TEXT_CHUNK {
            if consumed_all {
                return Ok(Some(out));
            }
            return Err(corrupt("Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK"));
        }
        if consumed_all || (inflater.total_in() == before && out.len() < out.capacity()) {
            return Ok(Some(out));
        }
        let room = (out.capacity() * 2).min(MAX_TEXT_CHUNK);
        out.reserve_exact(room - out.len());
    }
}

/// Where the image data starts, and what the chunks before it said.
struct Opened {
    stream: Stream,
    /// File position of the first image data byte and the bytes of it in that chunk.
    data_position: usize,
    data_length: usize,
    animated: bool,
}

/// `PngImageFile._open`.
fn open(data: &[u8]) -> Result<Opened, DecodeError> {
    let mut stream = Stream::default();
    let mut position = 8;
    let mut default_image = false;
    let (data_position, data_length) = loop {
        let head = data.get(position..position + 8).ok_or_else(|| not_png("PNG file ends before its image data"))?;
        let (length, kind) = (be32(head) as usize, &head[4..8]);
        if !is_chunk_type(kind) {
            return Err(not_png(format!("broken PNG file (chunk {})", String::from_utf8_lossy(kind))));
        }
        position += 8;
        match kind {
            b"IDAT" => {
                default_image = stream.bbox.is_none() && stream.frames.is_some();
                break (position, length);
            }
            b"fdAT" => {
                stream.handle_fdat(length, data, position)?;
                break (position + 4, length - 4);
            }
            b"IEND" => return Err(corrupt("cannot load this image")),
            _ => {}
        }
        let body = data.get(position..position.saturating_add(length)).ok_or_else(|| corrupt("Truncated File Read"))?;
        stream.handle(kind, body)?;
        let crc = data.get(position + length..position + length + 4).ok_or_else(|| {
            not_png(format!("broken PNG file (incomplete checksum in {})", String::from_utf8_lossy(kind)))
        })?;
        if crc32(&[kind, body]) != be32(crc) {
            return Err(not_png(format!("broken PNG file (bad header checksum in {})", String::from_utf8_lossy(kind))));
        }
        position += length + 4;
    };
    if stream.mode.is_none() || stream.size.0 == 0 || stream.size.1 == 0 {
        return Err(not_png("not identified by the PNG driver"));
    }
    let frames = stream.frames.map_or(1, |n| u64::from(n) + u64::from(default_image));
    Ok(Opened { stream, data_position, data_length, animated: frames > 1 })
}

/// `load_read`: image data in pieces, from consecutive IDAT (or fdAT) chunks.
struct ImageData<'a> {
    data: &'a [u8],
    position: usize,
    remaining: usize,
}

impl<'a> ImageData<'a> {
    fn read(&mut self, stream: &mut Stream) -> Result<&'a [u8], DecodeError> {
        while self.remaining == 0 {
            self.position = (self.position + 4).min(self.data.len()); // CRC, not checked
            let head = self.data.get(self.position..self.position + 8).ok_or_else(truncated)?;
            let (length, kind) = (be32(head) as usize, &head[4..8]);
            if !is_chunk_type(kind) {
                return Err(corrupt(format!("broken PNG file (chunk {})", String::from_utf8_lossy(kind))));
            }
            self.position += 8;
            match kind {
                b"IDAT" | b"DDAT" => self.remaining = length,
                b"fdAT" => {
                    stream.handle_fdat(length, self.data, self.position)?;
                    self.position += 4;
                    self.remaining = length - 4;
                }
                // Another chunk: the image data ended before the image did.
                _ => return Err(truncated()),
            }
        }
        let wanted = self.remaining.min(READ_BLOCK);
        self.remaining -= wanted;
        let end = self.position.saturating_add(wanted).min(self.data.len());
        let piece = &self.data[self.position.min(end)..end];
        self.position = end;
        if piece.is_empty() {
            return Err(truncated());
        }
        Ok(piece)
    }
}

/// The pixels as Pillow holds them before `convert("RGB")`: palette indices for "P", RGB otherwise.
struct Canvas {
    width: usize,
    channels: usize,
    cells: Vec<u8>,
}

impl Canvas {
    /// Store pixel `index` of a row of raw samples (`bits` per pixel) at `(x, y)`.
    #[inline]
    fn put(&mut self, x: usize, y: usize, row: &[u8], index: usize, mode: Mode, bits: usize) {
        let at = (y * self.width + x) * self.channels;
        let cells = &mut self.cells[at..at + self.channels];
        if bits < 8 {
            let bit = index * bits;
            let sample = (row[bit / 8] << (bit % 8)) >> (8 - bits);
            cells.fill(match (mode, bits) {
                (Mode::Palette, _) => sample,
                (_, 1) => sample * 255,
                (_, 2) => sample * 85,
                _ => sample * 17,
            });
            return;
        }
        let bytes = bits / 8;
        let pixel = &row[index * bytes..(index + 1) * bytes];
        match mode {
            Mode::Palette => cells[0] = pixel[0],
            Mode::Bilevel | Mode::Gray | Mode::GrayAlpha => cells.fill(pixel[0]),
            Mode::Gray16 => cells.fill(u16::from_be_bytes([pixel[0], pixel[1]]).min(255) as u8),
            Mode::Rgb | Mode::Rgba => {
                let sample = bytes / if mode == Mode::Rgb { 3 } else { 4 };
                cells.copy_from_slice(&[pixel[0], pixel[sample], pixel[2 * sample]]);
            }
        }
    }
}

/// Adam7, as ZipDecode.c spells it: a pass row holds `(x_size + OFFSET) / COLUMN_INCREMENT` pixels.
const OFFSET: [usize; 7] = [7, 3, 3, 1, 1, 0, 0];
const STARTING_COLUMN: [usize; 7] = [0, 4, 0, 2, 0, 1, 0];
const STARTING_ROW: [usize; 7] = [0, 0, 4, 0, 2, 0, 1];
const COLUMN_INCREMENT: [usize; 7] = [8, 8, 4, 4, 2, 2, 1];
const ROW_INCREMENT: [usize; 7] = [8, 8, 8, 4, 4, 2, 2];

/// `ImagingZipDecode`, fed by `ImageFile.load`.
fn inflate_image(
    image_data: &mut ImageData<'_>,
    stream: &mut Stream,
    canvas: &mut Canvas,
    (x_offset, y_offset, x_size, y_size): (usize, usize, usize, usize),
) -> Result<(), DecodeError> {
    let (mode, bits) = stream.mode.expect("opened streams have a mode");
    let interlaced = stream.interlaced;
    let row_bytes = (x_size * bits).div_ceil(8);
    let pass_pixels = |pass: usize| (x_size + OFFSET[pass]) / COLUMN_INCREMENT[pass];
    let pass_row_bytes = |pass: usize| (pass_pixels(pass) * bits).div_ceil(8);
    let bpp = bits.div_ceil(8);
    let mut buffer = vec![0u8; row_bytes + 1];
    let mut previous = vec![0u8; row_bytes + 1];
    let mut inflater = Decompress::new(true);
    let (mut pass, mut y, mut last_output) = (0usize, 0usize, 0usize);
    let mut row_len = if interlaced { pass_row_bytes(0) } else { row_bytes };
    loop {
        let mut input = image_data.read(stream)?;
        while !input.is_empty() {
            let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(input, &mut buffer[last_output..=row_len], FlushDecompress::None)
                .map_err(|_| corrupt("broken data stream when reading image file"))?;
            if status == Status::BufError {
                return Err(corrupt("decoder error when reading image file"));
            }
            input = &input[(inflater.total_in() - in_before) as usize..];
            let n = last_output + (inflater.total_out() - out_before) as usize;
            if n < row_len + 1 {
                last_output = n;
                break; // need more input
            }
            unfilter(&mut buffer[..=row_len], &previous, bpp)?;
            let row = &buffer[1..=row_len];
            if interlaced {
                let mut column = STARTING_COLUMN[pass];
                for index in 0..pass_pixels(pass) {
                    canvas.put(column, y, row, index, mode, bits);
                    column += COLUMN_INCREMENT[pass];
                }
                y += ROW_INCREMENT[pass];
                while y >= y_size || row_len == 0 {
                    pass += 1;
                    if pass == 7 {
                        y = y_size;
                        break;
                    }
                    y = STARTING_ROW[pass];
                    row_len = pass_row_bytes(pass);
                    buffer.fill(0);
                }
            } else {
                for x in 0..x_size {
                    canvas.put(x_offset + x, y_offset + y, row, x, mode, bits);
                }
                y += 1;
            }
            last_output = 0;
            if y >= y_size || status == Status::StreamEnd {
                return Ok(());
            }
            std::mem::swap(&mut buffer, &mut previous);
        }
    }
}

/// PNG's five filters, as ZipDecode.c applies them (`row[0]` is the filter type).
fn unfilter(row: &mut [u8], previous: &[u8], bpp: usize) -> Result<(), DecodeError> {
    let len = row.len() - 1;
    match row[0] {
        0 => {}
        1 => {
            for i in bpp + 1..=len {
                row[i] = row[i].wrapping_add(row[i - bpp]);
            }
        }
        2 => {
            for i in 1..=len {
                row[i] = row[i].wrapping_add(previous[i]);
            }
        }
        3 => {
            for i in 1..=len {
                let left = if i > bpp { u16::from(row[i - bpp]) } else { 0 };
                row[i] = row[i].wrapping_add(((left + u16::from(previous[i])) / 2) as u8);
            }
        }
        4 => {
            for i in 1..=len {
                if i <= bpp {
                    row[i] = row[i].wrapping_add(previous[i]);
                    continue;
                }
                let (a, b, c) = (i16::from(row[i - bpp]), i16::from(previous[i]), i16::from(previous[i - bpp]));
                let (pa, pb, pc) = ((b - c).abs(), (a - c).abs(), (a + b - 2 * c).abs());
                let predictor = if pa <= pb && pa <= pc {
                    a
                } else if pb <= pc {
                    b
                } else {
                    c
                };
                row[i] = row[i].wrapping_add(predictor as u8);
            }
        }
        _ => return Err(corrupt("unrecognized data stream contents when reading image file")),
    }
    Ok(())
}

/// `load_end`: the rest of the image data, then the chunks up to IEND.
fn read_to_end(image_data: &ImageData<'_>, stream: &mut Stream, animated: bool) -> Result<(), DecodeError> {
    let data = image_data.data;
    let mut position = image_data.position.saturating_add(image_data.remaining).min(data.len());
    loop {
        position = (position + 4).min(data.len()); // CRC, not checked
        let Some(head) = data.get(position..position + 8) else {
            return Ok(());
        };
        let (length, kind) = (be32(head) as usize, &head[4..8]);
        if !is_chunk_type(kind) || kind == b"IEND" || (kind == b"fcTL" && animated) {
            return Ok(());
        }
        position += 8;
        let mut length = length;
        if kind == b"fdAT" {
            stream.handle_fdat(length, data, position)?;
            position += 4;
            length -= 4;
        }
        let body = data.get(position..position.saturating_add(length)).ok_or_else(|| corrupt("Truncated File Read"))?;
        if kind != b"IDAT" && kind != b"fdAT" {
            stream.handle(kind, body)?;
        }
        position += length;
    }
}

pub(super) fn decode(data: &[u8], max_pixels: Option<u64>) -> Result<RgbImage, DecodeError> {
    let Opened { mut stream, data_position, data_length, animated } = open(data)?;
    let (width, height) = (stream.size.0 as usize, stream.size.1 as usize);
    check_size(u64::from(stream.size.0), u64::from(stream.size.1), max_pixels)?;
    let (mode, _) = stream.mode.expect("opened streams have a mode");

    // Pillow checks the palette when it applies it: more than 256 entries is an error.
    let had_palette = stream.palette.is_some();
    let palette = stream.palette.clone().unwrap_or_default();
    if mode == Mode::Palette && palette.len() / 3 > 256 {
        return Err(corrupt("invalid palette size"));
    }
    let tile = match stream.bbox {
        Some((x, y, w, h)) => (x as usize, y as usize, w as usize, h as usize),
        None => (0, 0, width, height),
    };
    if tile.2 == 0 || tile.3 == 0 {
        return Err(corrupt("tile cannot extend outside image"));
    }
    let channels = if mode == Mode::Palette { 1 } else { 3 };
    let mut canvas = Canvas { width, channels, cells: vec![0u8; width * height * channels] };
    let mut image_data = ImageData { data, position: data_position, remaining: data_length };
    inflate_image(&mut image_data, &mut stream, &mut canvas, tile)?;
    read_to_end(&image_data, &mut stream, animated)?;
    if mode == Mode::Palette && !had_palette && stream.transparent_index {
        // `convert("RGB")` maps the transparent index through the palette: `assert self.palette is not None`.
        return Err(corrupt("a transparent palette index but no palette before the image data"));
    }

    let pixels = if mode == Mode::Palette {
        // 256 entries; those the PLTE chunk does not give are black.
        let mut table = [[0u8; 3]; 256];
        for (entry, rgb) in table.iter_mut().zip(palette.chunks_exact(3)) {
            entry.copy_from_slice(rgb);
        }
        let mut rgb = Vec::with_capacity(width * height * 3);
        for &index in &canvas.cells {
            rgb.extend_from_slice(&table[usize::from(index)]);
        }
        rgb
    } else {
        canvas.cells
    };
    Ok(RgbImage { width, height, pixels })
}

/// CRC-32 (ISO 3309) over several slices, as PNG computes it over chunk type and data.
fn crc32(parts: &[&[u8]]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut n = 0;
        while n < 256 {
            let mut c = n as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[n] = c;
            n += 1;
        }
        table
    };
    let mut crc = 0xFFFF_FFFFu32;
    for part in parts {
        for &byte in *part {
            crc = TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
        }
    }
    crc ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_png_check_value() {
        assert_eq!(crc32(&[b"IEND", b""]), 0xAE42_6082);
        assert_eq!(crc32(&[b"IE", b"ND"]), 0xAE42_6082);
    }

    /// A 4×2 palette PNG (indices 0..3 per row) made of `chunks` between IHDR and IEND; `IDAT` stands for its data.
    fn palette_png(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let chunk = |kind: &[u8], body: &[u8]| {
            let crc = crc32(&[kind, body]).to_be_bytes();
            [&(body.len() as u32).to_be_bytes()[..], kind, body, &crc].concat()
        };
        // zlib of two rows "\0\0\x01\x02\x03", stored (no compression), with its Adler-32.
        let raw = b"\0\0\x01\x02\x03\0\0\x01\x02\x03";
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in raw {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        let idat = [&[0x78, 0x01, 0x01, 10, 0, 0xF5, 0xFF][..], raw, &((b << 16) | a).to_be_bytes()].concat();
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &[0, 0, 0, 4, 0, 0, 0, 2, 8, 3, 0, 0, 0]));
        for (kind, body) in chunks {
            png.extend(if *kind == b"IDAT" { chunk(b"IDAT", &idat) } else { chunk(*kind, body) });
        }
        png.extend(chunk(b"IEND", b""));
        png
    }

    #[test]
    fn a_transparent_index_needs_a_palette_before_the_image_data() {
        let plte: &[u8] = &[10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120];
        let idat: (&[u8; 4], &[u8]) = (b"IDAT", b"");
        let refused =
            |chunks: &[(&[u8; 4], &[u8])]| matches!(decode(&palette_png(chunks), None), Err(DecodeError::Corrupt(_)));
        // As Pillow: `convert("RGB")` asserts a palette once tRNS gave a single transparent index.
        assert!(refused(&[(b"tRNS", b"\xff\x00\xff"), idat]));
        assert!(refused(&[idat, (b"tRNS", b"\x00")]));
        assert!(refused(&[(b"tRNS", b"\x00"), idat, (b"PLTE", plte)]));
        // Bytes (not one index), no tRNS, or a palette in time: decoded (indices without a palette are black).
        for chunks in [
            &[(b"tRNS", &b"\x80\x00"[..]), idat][..],
            &[(b"tRNS", &b"\x00\x00"[..]), idat],
            &[(b"tRNS", &b""[..]), idat],
            &[(b"tRNS", &b"\x00"[..]), (b"tRNS", &b"\x80"[..]), idat],
            &[idat],
            &[(b"PLTE", plte), (b"tRNS", &b"\x00"[..]), idat],
        ] {
            let image = decode(&palette_png(chunks), None).unwrap();
            assert_eq!((image.width, image.height), (4, 2));
        }
        let image = decode(&palette_png(&[(b"PLTE", plte), idat]), None).unwrap();
        assert_eq!(&image.pixels[..12], plte);
    }

    #[test]
    fn modes_are_pillows() {
        assert_eq!(pillow_mode(16, 4), Some((Mode::GrayAlpha, 32)));
        assert_eq!(pillow_mode(16, 2), Some((Mode::Rgb, 48)));
        assert_eq!(pillow_mode(2, 3), Some((Mode::Palette, 2)));
        assert_eq!(pillow_mode(16, 3), None);
        assert_eq!(pillow_mode(4, 2), None);
    }

    #[test]
    fn paeth_and_average_filters() {
        // bpp 1: row [filter, 10, 20], previous [_, 5, 7].
        let mut row = [3u8, 10, 20];
        unfilter(&mut row, &[0, 5, 7], 1).unwrap();
        assert_eq!(row, [3, 12, 20 + (12 + 7) / 2]);
        let mut row = [4u8, 1, 1];
        unfilter(&mut row, &[0, 5, 7], 1).unwrap();
        // i=1: + b (5) = 6; i=2: a=6, b=7, c=5 → pa=2, pb=1, pc=3 → b → 1+7 = 8
        assert_eq!(row, [4, 6, 8]);
        assert!(unfilter(&mut [5u8, 0], &[0, 0], 1).is_err());
    }

    #[test]
    fn split_nul_is_pythons_split() {
        assert_eq!(split_nul(b"k\0v\0w"), (&b"k"[..], &b"v\0w"[..]));
        assert_eq!(split_nul(b"kv"), (&b"kv"[..], &b""[..]));
    }
}
