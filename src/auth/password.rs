//! argon2id hashing and the password policy.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{AppError, AppResult};

/// Checks the policy: at least 8 characters from at least 3 of upper, lower, digit, symbol.
pub fn check_policy(pw: &str) -> Result<(), String> {
    if pw.chars().count() < 8 {
        return Err("密码至少需要 8 个字符".into());
    }
    if pw.chars().count() > 128 {
        return Err("密码不能超过 128 个字符".into());
    }
    let classes = [
        pw.chars().any(|c| c.is_ascii_uppercase()),
        pw.chars().any(|c| c.is_ascii_lowercase()),
        pw.chars().any(|c| c.is_ascii_digit()),
        pw.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if classes.iter().filter(|b| **b).count() < 3 {
        return Err("密码需包含大写字母、小写字母、数字、符号中的至少三类".into());
    }
    Ok(())
}

/// Hashes with argon2id and a random salt. Runs on the blocking pool: it takes ~50 ms.
pub async fn hash(pw: &str) -> AppResult<String> {
    let pw = pw.to_string();
    tokio::task::spawn_blocking(move || hash_sync(&pw)).await.map_err(|e| AppError::Internal(format!("join: {e}")))?
}

/// Synchronous variant for the demo loader and the CLI.
pub fn hash_sync(pw: &str) -> AppResult<String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| AppError::Internal(format!("rng: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AppError::Internal(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("argon2: {e}")))
}

/// Verifies a password against a stored hash; a malformed hash verifies as false.
pub async fn verify(pw: &str, stored: &str) -> bool {
    let (pw, stored) = (pw.to_string(), stored.to_string());
    tokio::task::spawn_blocking(move || match PasswordHash::new(&stored) {
        Ok(h) => Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, verified against when the user does not exist, so that
/// response time does not reveal which usernames exist.
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_sync("Dummy-password-1").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check_policy("short1A").is_err());
        assert!(check_policy("alllowercase").is_err());
        assert!(check_policy("lower123456").is_err());
        assert!(check_policy("Lower123456").is_ok());
        assert!(check_policy("lower-12345").is_ok());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("Linli-2026").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Linli-2026", &h).await);
        assert!(!verify("linli-2026", &h).await);
        assert!(!verify("x", "not a hash").await);
    }
}
