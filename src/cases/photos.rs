//! Photos attached to a case or to one of its steps, stored as files under the data dir.

use std::path::{Path, PathBuf};

use crate::error::{AppError, AppResult};

/// Largest photo accepted.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// Most photos per step.
pub const MAX_PER_STEP: usize = 6;

/// An uploaded photo, checked.
#[derive(Debug)]
pub struct Photo {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// MIME type from the content (never from the client's claim).
    pub mime: &'static str,
}

/// Checks size and type by the file's magic bytes.
pub fn check(bytes: Vec<u8>) -> Result<Photo, String> {
    if bytes.is_empty() {
        return Err("照片文件为空".into());
    }
    if bytes.len() > MAX_BYTES {
        return Err(format!("照片不能超过 {} MB", MAX_BYTES / 1024 / 1024));
    }
    let mime = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        return Err("照片只支持 JPEG、PNG、WebP 格式".into());
    };
    Ok(Photo { bytes, mime })
}

fn ext(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/webp" => "webp",
        _ => "jpg",
    }
}

/// A photo written to disk, recorded with its step (see [`super::history::record`]).
#[derive(Debug)]
pub struct Saved {
    /// Path under the data directory.
    pub path: String,
    /// MIME type.
    pub mime: &'static str,
    /// Bytes.
    pub size: i64,
}

/// Writes the files durably, before the transaction takes the writer: an fsync under the
/// writer would hold up every write of the batch. A transaction that fails afterwards leaves
/// its files unreferenced (never a record without its file).
pub async fn save(data_dir: &Path, photos: Vec<Photo>) -> AppResult<Vec<Saved>> {
    let mut saved = Vec::with_capacity(photos.len());
    for p in photos {
        let rel = PathBuf::from("photos").join(chrono::Utc::now().format("%Y%m").to_string()).join(format!(
            "{}.{}",
            crate::auth::random_hex(12),
            ext(p.mime)
        ));
        let full = data_dir.join(&rel);
        let size = p.bytes.len() as i64;
        let bytes = p.bytes;
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            private_dirs(full.parent().expect("has a parent"))?;
            let mut f = private_create(&full)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(format!("photo write: {e}")))?;
        saved.push(Saved { path: rel.to_string_lossy().to_string(), mime: p.mime, size });
    }
    Ok(saved)
}

/// Removes the files [`save`] wrote for a request that made nothing with them (a repeated
/// submission); best effort.
pub async fn discard(data_dir: &Path, saved: &[Saved]) {
    for s in saved {
        if let Err(e) = tokio::fs::remove_file(data_dir.join(&s.path)).await {
            tracing::warn!(error = %e, path = %s.path, "重复提交的照片未能删除");
        }
    }
}

/// Creates a directory and its missing parents, readable by the service account only (photos
/// are personal data, like the database beside them).
pub fn private_dirs(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Creates a file readable and writable by the service account only.
pub fn private_create(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Reads a stored photo.
pub async fn read(data_dir: &Path, rel: &str) -> AppResult<Vec<u8>> {
    if rel.contains("..") {
        return Err(AppError::NotFound);
    }
    tokio::fs::read(data_dir.join(rel)).await.map_err(|_| AppError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_content() {
        assert_eq!(check(vec![0xFF, 0xD8, 0xFF, 0xE0, 1]).unwrap().mime, "image/jpeg");
        assert_eq!(check(b"\x89PNG\r\n\x1a\nrest".to_vec()).unwrap().mime, "image/png");
        assert!(check(b"GIF89a....".to_vec()).unwrap_err().contains("JPEG"));
        assert!(check(vec![]).is_err());
        assert!(check(vec![0xFF; MAX_BYTES + 1]).unwrap_err().contains("5 MB"));
    }
}
