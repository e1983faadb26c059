//! QR codes as SVG (for pages and print) and PNG (for downloads and chat apps that do not show SVG).
//!
//! The PNG encoder is hand-written and stores pixels uncompressed in deflate "stored" blocks: QR images
//! are small, and this keeps an image/compression stack out of the build.

use std::fmt::Write as _;
use std::sync::OnceLock;

use qrcode::types::QrError;
use qrcode::{Color, EcLevel, QrCode};

/// Light border the QR standard requires so scanners can find the code.
const QUIET: usize = 4;
/// PNGs are stored uncompressed, so this bounds the worst case (version 40) at about 9 MB.
const MAX_PNG_MODULE_PX: u32 = 16;
const TOO_LONG: &str = "内容过长，无法生成二维码";

/// Encodes with level M: it survives a smudged or creased print yet leaves room for long links.
fn encode(data: &str) -> Result<(usize, Vec<Color>), String> {
    match QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M) {
        Ok(code) => Ok((code.width(), code.into_colors())),
        Err(QrError::DataTooLong) => Err(TOO_LONG.into()),
        Err(e) => Err(format!("无法生成二维码：{e}")),
    }
}

/// Standalone `<svg>` of `data`, `module_px` pixels per module, with a 4-module quiet zone.
pub fn svg(data: &str, module_px: u32) -> Result<String, String> {
    if module_px == 0 {
        return Err("二维码模块尺寸须大于 0".into());
    }
    let (width, colors) = encode(data)?;
    let n = width + 2 * QUIET;
    let px = n as u64 * u64::from(module_px);
    // The viewBox counts modules, so the code stays sharp at any size the page scales it to.
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" width="{px}" height="{px}" shape-rendering="crispEdges"><rect width="{n}" height="{n}" fill="#fff"/><path fill="#000" d=""##
    );
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = QUIET;
        // One rectangle per horizontal run of dark modules keeps the path a few KB even for long links.
        for run in row.chunk_by(|a, b| a == b) {
            if run[0] == Color::Dark {
                let _ = write!(out, "M{x} {}h{}v1h-{}z", y + QUIET, run.len(), run.len());
            }
            x += run.len();
        }
    }
    out.push_str(r#""/></svg>"#);
    Ok(out)
}

/// PNG (8-bit grayscale, 0 black, 255 white) of `data`, `module_px` (1–16) pixels per module, 4-module quiet zone.
pub fn png(data: &str, module_px: u32) -> Result<Vec<u8>, String> {
    if !(1..=MAX_PNG_MODULE_PX).contains(&module_px) {
        return Err(format!("二维码模块尺寸须在 1 到 {MAX_PNG_MODULE_PX} 像素之间"));
    }
    let (width, colors) = encode(data)?;
    let (n, scale) = (width + 2 * QUIET, module_px as usize);
    let side = n * scale;
    // Coordinates inside the quiet zone wrap to huge values and so fall outside the code.
    let dark = |x: usize, y: usize| {
        let (x, y) = (x.wrapping_sub(QUIET), y.wrapping_sub(QUIET));
        x < width && y < width && colors[y * width + x] == Color::Dark
    };
    let mut raw = Vec::with_capacity(side * (side + 1));
    for my in 0..n {
        let start = raw.len();
        raw.push(0); // filter type None: rows go in as they are
        for mx in 0..n {
            raw.extend(std::iter::repeat_n(if dark(mx, my) { 0 } else { 255 }, scale));
        }
        for _ in 1..scale {
            raw.extend_from_within(start..start + side + 1);
        }
    }
    let mut ihdr = [0; 13];
    ihdr[..4].copy_from_slice(&(side as u32).to_be_bytes());
    ihdr[4..8].copy_from_slice(&(side as u32).to_be_bytes());
    ihdr[8] = 8; // bit depth; colour type 0 (grayscale), deflate, no filter set, no interlace stay 0
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

/// A zlib stream of stored deflate blocks (at most 65535 bytes each, the format's limit).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    const MAX: usize = 65535;
    let blocks = data.len().div_ceil(MAX).max(1);
    let mut out = Vec::with_capacity(data.len() + blocks * 5 + 6);
    // CMF 0x78: deflate, 32 KiB window; FLG 0x01 makes CMF·256+FLG a multiple of 31 as the header check requires.
    out.extend_from_slice(&[0x78, 0x01]);
    for i in 0..blocks {
        let block = &data[i * MAX..data.len().min((i + 1) * MAX)];
        out.push(u8::from(i + 1 == blocks)); // BFINAL on the last block, BTYPE 00 = stored
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the longest run whose sums cannot overflow u32 before reducing (zlib's NMAX).
    for run in data.chunks(5552) {
        for &byte in run {
            a += u32::from(byte);
            b += a;
        }
        (a, b) = (a % MOD, b % MOD);
    }
    (b << 16) | a
}

fn crc32(parts: &[&[u8]]) -> u32 {
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (n, entry) in (0u32..).zip(table.iter_mut()) {
            *entry = (0..8).fold(n, |c, _| if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 });
        }
        table
    });
    let crc = parts.iter().flat_map(|p| p.iter()).fold(!0u32, |c, &b| table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8));
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be32(b: &[u8]) -> u32 {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Bitwise CRC-32, independent of the table-driven one under test.
    fn crc_slow(data: &[u8]) -> u32 {
        !data
            .iter()
            .fold(!0u32, |c, &b| (0..8).fold(c ^ u32::from(b), |c, _| if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 }))
    }

    /// Checks signature, chunk order and every CRC; returns IHDR width, height and the IDAT bytes.
    fn parse_png(png: &[u8]) -> (usize, usize, Vec<u8>) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let (mut pos, mut kinds, mut size, mut idat) = (8, vec![], (0, 0), vec![]);
        while pos < png.len() {
            let len = be32(&png[pos..]) as usize;
            let (kind, body) = (&png[pos + 4..pos + 8], &png[pos + 8..pos + 8 + len]);
            assert_eq!(be32(&png[pos + 8 + len..]), crc_slow(&png[pos + 4..pos + 8 + len]), "CRC of {kind:?}");
            match kind {
                b"IHDR" => {
                    size = (be32(body) as usize, be32(&body[4..]) as usize);
                    assert_eq!(&body[8..], [8, 0, 0, 0, 0]);
                }
                b"IDAT" => idat.extend_from_slice(body),
                _ => {}
            }
            kinds.push(kind.to_vec());
            pos += 12 + len;
        }
        assert_eq!(kinds, [b"IHDR", b"IDAT", b"IEND"]);
        (size.0, size.1, idat)
    }

    /// Inflates a zlib stream of stored blocks, checking header, LEN/NLEN and Adler-32 on the way.
    fn inflate_stored(z: &[u8]) -> (Vec<u8>, usize) {
        assert_eq!((z[0] & 0x0F, (u16::from(z[0]) << 8 | u16::from(z[1])) % 31), (8, 0));
        let (mut pos, mut out, mut blocks) = (2, vec![], 0);
        loop {
            let header = z[pos];
            assert_eq!(header >> 1, 0, "BTYPE must be stored");
            let len = u16::from_le_bytes([z[pos + 1], z[pos + 2]]);
            assert_eq!(!len, u16::from_le_bytes([z[pos + 3], z[pos + 4]]));
            out.extend_from_slice(&z[pos + 5..pos + 5 + usize::from(len)]);
            (pos, blocks) = (pos + 5 + usize::from(len), blocks + 1);
            if header & 1 == 1 {
                break;
            }
        }
        let (a, b) =
            out.iter().fold((1u32, 0u32), |(a, b), &x| ((a + u32::from(x)) % 65521, (b + (a + u32::from(x)) % 65521) % 65521));
        assert_eq!((be32(&z[pos..]), z.len()), ((b << 16) | a, pos + 4));
        (out, blocks)
    }

    #[test]
    fn png_structure_and_pixels() {
        let (data, px) = ("https://linli.example/cases/新建?c=0101", 8);
        let modules = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).unwrap().width();
        let (w, h, idat) = parse_png(&png(data, px as u32).unwrap());
        assert_eq!((w, h), ((modules + 8) * px, (modules + 8) * px));
        let (raw, blocks) = inflate_stored(&idat);
        assert_eq!(raw.len(), h * (1 + w));
        assert!(blocks > 1, "large enough to span several stored blocks");
        assert!((0..h).all(|y| raw[y * (w + 1)] == 0), "filter byte 0 on every row");
        let pixel = |x: usize, y: usize| raw[y * (w + 1) + 1 + x];
        let q = 4 * px;
        // Finder pattern: its top edge is 7 dark modules starting right after the quiet zone.
        assert!((q..q + 7 * px).all(|x| (q..q + px).all(|y| pixel(x, y) == 0)));
        assert!((0..w).all(|i| (0..q).all(|j| [pixel(i, j), pixel(j, i), pixel(i, h - 1 - j), pixel(w - 1 - j, i)] == [255; 4])));
    }

    #[test]
    fn svg_shape() {
        let modules = QrCode::with_error_correction_level(b"https://linli.example", EcLevel::M).unwrap().width();
        let s = svg("https://linli.example", 5).unwrap();
        let n = modules + 8;
        assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && s.ends_with("</svg>"), "{s}");
        assert!(s.contains(&format!("viewBox=\"0 0 {n} {n}\" width=\"{}\"", n * 5)), "{s}");
        assert!(s.contains("fill=\"#fff\"") && s.contains("d=\"M4 4h7v1h-7z"), "{s}");
        assert_eq!(s.matches('<').count(), s.matches('>').count());
    }

    #[test]
    fn errors_and_checksums() {
        let long = "中".repeat(1000);
        assert_eq!(svg(&long, 4).unwrap_err(), "内容过长，无法生成二维码");
        assert_eq!(png(&long, 4).unwrap_err(), "内容过长，无法生成二维码");
        assert!(svg("x", 0).is_err() && png("x", 0).is_err() && png("x", MAX_PNG_MODULE_PX + 1).is_err());
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(inflate_stored(&zlib_stored(&[])), (vec![], 1));
    }
}
