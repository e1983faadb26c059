//! The on-disk key file: a small text file an operator can inspect and back up.
//!
//! ```text
//! linli-keyring v1
//! enc=<64 hex digits>
//! idx=<64 hex digits>
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::Path;

const HEADER: &str = "linli-keyring v1";

/// Renders the file contents for two keys.
pub(super) fn render(enc: &[u8; 32], idx: &[u8; 32]) -> String {
    format!("{HEADER}\nenc={}\nidx={}\n", to_hex(enc), to_hex(idx))
}

/// Parses the file contents. The error names the problem without echoing any
/// line, since a malformed line may still hold key material.
pub(super) fn parse(text: &str) -> Result<([u8; 32], [u8; 32]), String> {
    // Editors on Windows may add a BOM and CRLF line endings; tolerate both.
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut lines = text.lines().map(str::trim).enumerate();
    match lines.next() {
        None => return Err("文件为空".to_owned()),
        Some((_, HEADER)) => {}
        Some(_) => return Err(format!("第一行应为“{HEADER}”")),
    }
    let (mut enc, mut idx) = (None, None);
    for (n, line) in lines {
        if line.is_empty() {
            continue;
        }
        let (name, slot) = match line.split_once('=') {
            Some(("enc", _)) => ("enc", &mut enc),
            Some(("idx", _)) => ("idx", &mut idx),
            _ => return Err(format!("第 {} 行无法识别，应为 enc=… 或 idx=…", n + 1)),
        };
        if slot.is_some() {
            return Err(format!("{name} 重复出现"));
        }
        let value = line.split_once('=').map_or("", |(_, v)| v.trim());
        *slot = Some(from_hex(value).ok_or_else(|| format!("{name} 应为 64 位十六进制数字"))?);
    }
    let enc = enc.ok_or("缺少 enc 行")?;
    let idx = idx.ok_or("缺少 idx 行")?;
    if enc == idx {
        // Same key for both purposes would defeat keeping them separate.
        return Err("enc 与 idx 不能相同".to_owned());
    }
    Ok((enc, idx))
}

/// Writes a new key file so that it either appears complete or not at all:
/// a crash halfway must not leave a truncated file that the next start would
/// reject (or worse, that a careless operator would delete).
pub(super) fn write_new(path: &Path, contents: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_dirs(dir)?;
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "密钥文件路径缺少文件名"))?;
    // A random suffix rather than the pid: in containers every run is pid 1,
    // so a temp file left by a crash would otherwise block all later starts.
    let mut suffix = [0u8; 8];
    getrandom::getrandom(&mut suffix).map_err(|e| io::Error::other(e.to_string()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", to_hex(&suffix)));
    let tmp = dir.join(tmp_name);

    let result = write_private(&tmp, contents).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Persist the rename itself; some filesystems refuse to fsync a
    // directory, and the file is already safely written by then.
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates the file readable by the owner only from the first byte on, rather
/// than tightening permissions after the keys are already on disk.
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Lower-case hex of `bytes`.
pub(super) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Exactly 64 hex digits, either case.
fn from_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(hi << 4 | lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::{Keyring, PrivacyError};
    use super::*;
    use std::path::PathBuf;

    /// A fresh directory per test, so tests can run in parallel.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("linli-keyring-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn sample() -> String {
        render(&[0x11; 32], &[0xab; 32])
    }

    #[test]
    fn render_parse_round_trip() {
        let text = sample();
        assert!(text.starts_with("linli-keyring v1\nenc=1111"));
        assert_eq!(parse(&text), Ok(([0x11; 32], [0xab; 32])));
        let windows = format!("\u{FEFF}{HEADER}\r\nenc={}\r\n\r\nidx= {} \r\n\r\n", "11".repeat(32), "AB".repeat(32));
        assert_eq!(parse(&windows), Ok(([0x11; 32], [0xab; 32])));
    }

    #[test]
    fn parse_errors() {
        let enc = format!("enc={}", "1".repeat(64));
        let idx = format!("idx={}", "2".repeat(64));
        let cases = [
            (String::new(), "文件为空"),
            (format!("linli-keyring v2\n{enc}\n{idx}\n"), "第一行应为“linli-keyring v1”"),
            (format!("{HEADER}\n{enc}\n"), "缺少 idx 行"),
            (format!("{HEADER}\n{idx}\n"), "缺少 enc 行"),
            (format!("{HEADER}\n{enc}\n{enc}\n{idx}\n"), "enc 重复出现"),
            (format!("{HEADER}\n{enc}\nkey=1\n{idx}\n"), "第 3 行无法识别，应为 enc=… 或 idx=…"),
            (format!("{HEADER}\n{enc}0\n{idx}\n"), "enc 应为 64 位十六进制数字"),
            (format!("{HEADER}\n{enc}\nidx={}\n", "g".repeat(64)), "idx 应为 64 位十六进制数字"),
            (format!("{HEADER}\nenc=\n{idx}\n"), "enc 应为 64 位十六进制数字"),
            (format!("{HEADER}\n{enc}\nidx={}\n", "1".repeat(64)), "enc 与 idx 不能相同"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(&text), Err(expected.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn creates_once_then_reads() {
        let tmp = TempDir::new("create");
        let path = tmp.0.join("nested/dir/keyring");
        let (first, created) = Keyring::load_or_create(&path).unwrap();
        assert!(created);
        assert_ne!(first.enc, first.idx);
        let (second, created) = Keyring::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!((first.enc, first.idx), (second.enc, second.idx));
        let blob = first.encrypt("13800138000", b"person.mobile");
        assert_eq!(second.decrypt(&blob, b"person.mobile").unwrap(), "13800138000");
        // No temp file is left behind next to the key file.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // Two installations never share keys.
        let (other, _) = Keyring::load_or_create(&tmp.0.join("other")).unwrap();
        assert_ne!(first.enc, other.enc);
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new("mode");
        let path = tmp.0.join("keyring");
        Keyring::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(&tmp.0).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o077, 0);
    }

    #[test]
    fn malformed_file_is_rejected_and_kept() {
        let tmp = TempDir::new("malformed");
        fs::create_dir_all(&tmp.0).unwrap();
        let path = tmp.0.join("keyring");
        let garbage = "linli-keyring v1\nenc=zz\n";
        fs::write(&path, garbage).unwrap();
        let err = Keyring::load_or_create(&path).unwrap_err();
        assert!(matches!(err, PrivacyError::BadKeyFile(_)));
        assert_eq!(err.to_string(), "密钥文件格式错误：enc 应为 64 位十六进制数字");
        assert_eq!(fs::read_to_string(&path).unwrap(), garbage);

        fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        let err = Keyring::load_or_create(&path).unwrap_err();
        assert_eq!(err.to_string(), "密钥文件格式错误：文件不是有效的 UTF-8 文本");
        assert_eq!(fs::read(&path).unwrap(), [0xff, 0xfe, 0x00]);
    }

    #[test]
    fn unreadable_path_is_io_error() {
        let tmp = TempDir::new("io");
        fs::create_dir_all(tmp.0.join("keyring")).unwrap();
        let err = Keyring::load_or_create(&tmp.0.join("keyring")).unwrap_err();
        assert!(matches!(err, PrivacyError::Io(_)));
        assert!(err.to_string().starts_with("读取或写入密钥文件失败："));
    }

    #[test]
    fn hex() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let mut key = [0u8; 32];
        key[0] = 0xde;
        key[31] = 0x01;
        assert_eq!(from_hex(&to_hex(&key)), Some(key));
        assert_eq!(from_hex(&"+1".repeat(32)), None);
        assert_eq!(from_hex(&"é".repeat(32)), None);
    }
}
