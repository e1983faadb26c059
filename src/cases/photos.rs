//! Photos attached to a case or to one of its steps, stored as files under the data dir.

use std::path::{Path, PathBuf};

use crate::db::{Tx, now_ms};
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

/// Writes the files (durably) and records them in `tx`.
pub async fn store(tx: &mut Tx, data_dir: &Path, case_id: i64, history_id: Option<i64>, photos: Vec<Photo>) -> AppResult<()> {
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
            std::fs::create_dir_all(full.parent().expect("has a parent"))?;
            let mut f = std::fs::File::create(&full)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(format!("photo write: {e}")))?;
        sqlx::query("INSERT INTO case_photos (case_id, history_id, path, mime, size, created_at) VALUES ($1,$2,$3,$4,$5,$6)")
            .bind(case_id)
            .bind(history_id)
            .bind(rel.to_string_lossy().to_string())
            .bind(p.mime)
            .bind(size)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
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
