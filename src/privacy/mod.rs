//! Encryption at rest for personal data (身份证号、手机号、住址…) and blind
//! indexes for looking it up.
//!
//! Personal fields are stored only as ciphertext so that a leaked database or
//! backup does not leak residents' identities. Exact-match lookups ("is this
//! ID number already registered?") go through a keyed hash instead. The two
//! uses get independent keys so that neither construction can weaken the
//! other, and re-encrypting under a new key leaves the indexes valid.

mod keyfile;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Leading byte of every ciphertext, so the format can change later without
/// guessing which scheme an old row used.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Hex digits kept from the HMAC: 128 bits is ample against collisions for a
/// lookup column while keeping the index compact.
const INDEX_HEX_LEN: usize = 32;

/// What went wrong with keys or ciphertexts; messages are shown verbatim.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The key file could not be read or written.
    #[error("读取或写入密钥文件失败：{0}")]
    Io(#[from] std::io::Error),
    /// The key file exists but is not in the expected format; it is never
    /// overwritten, since that would make all existing data unreadable.
    #[error("密钥文件格式错误：{0}")]
    BadKeyFile(String),
    /// Deliberately says nothing about which check failed, so the error gives
    /// an attacker no oracle.
    #[error("个人信息解密失败")]
    Decrypt,
}

/// The two secret keys of an installation.
///
/// `Debug` is redacted so keys cannot end up in logs or panic messages.
#[derive(Clone)]
pub struct Keyring {
    enc: [u8; 32],
    idx: [u8; 32],
    shown: Arc<Shown>,
}

/// Masked forms by field and ciphertext (see [`Keyring::shown`]).
#[derive(Default)]
struct Shown(Mutex<HashMap<Vec<u8>, String>>);

/// Masked forms remembered at most (a few MB); the map is emptied past this.
const SHOWN_MAX: usize = 50_000;

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(..redacted..)")
    }
}

impl Keyring {
    /// Builds a keyring from raw keys (the key file's, or a test's).
    pub fn from_bytes(enc: [u8; 32], idx: [u8; 32]) -> Keyring {
        Keyring { enc, idx, shown: Arc::default() }
    }

    /// Reads the key file, or creates it with fresh random keys on first run.
    ///
    /// The flag is `true` when the file was created, so the caller can tell the
    /// operator to back it up: losing it makes all personal data unreadable.
    pub fn load_or_create(path: &std::path::Path) -> Result<(Keyring, bool), PrivacyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let (enc, idx) = keyfile::parse(&text).map_err(PrivacyError::BadKeyFile)?;
                Ok((Keyring::from_bytes(enc, idx), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keyring = Keyring::from_bytes(random_bytes()?, random_bytes()?);
                keyfile::write_new(path, &keyfile::render(&keyring.enc, &keyring.idx))?;
                Ok((keyring, true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(PrivacyError::BadKeyFile("文件不是有效的 UTF-8 文本".to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Encrypts one field value. `aad` names the field (e.g.
    /// `b"person.id_number"`) so a ciphertext copied into another column fails
    /// to decrypt instead of silently showing up in the wrong place.
    ///
    /// Output: version byte, 24-byte random nonce, ciphertext with tag.
    pub fn encrypt(&self, plaintext: &str, aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // Without an OS RNG no safe nonce exists; there is nothing to fall back to.
        getrandom::getrandom(&mut nonce).expect("操作系统随机数生成器不可用");
        let sealed = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad })
            .expect("XChaCha20-Poly1305 only fails for messages far beyond field size");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Reverses [`Keyring::encrypt`]; `aad` must be the same field name.
    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<String, PrivacyError> {
        if blob.len() < 1 + NONCE_LEN + TAG_LEN || blob[0] != VERSION {
            return Err(PrivacyError::Decrypt);
        }
        let (nonce, sealed) = blob[1..].split_at(NONCE_LEN);
        let plain =
            self.cipher().decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad }).map_err(|_| PrivacyError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| PrivacyError::Decrypt)
    }

    /// [`Keyring::decrypt`] of a column that may be empty (NULL: nothing was given), as empty
    /// text.
    pub fn decrypt_opt(&self, blob: Option<&[u8]>, aad: &[u8]) -> Result<String, PrivacyError> {
        blob.map_or(Ok(String::new()), |b| self.decrypt(b, aad))
    }

    /// Decrypts `blob` and returns `show(plaintext)`, the masked form people see, remembered
    /// per ciphertext: a case list decrypted two fields of each of its twenty rows on every
    /// request (a tenth of its work), and the same rows come back page after page. Only the
    /// masked form is kept, never the plaintext. `show` must be the one mask of `aad`'s field.
    pub fn shown(&self, blob: &[u8], aad: &[u8], show: impl FnOnce(&str) -> String) -> Result<String, PrivacyError> {
        let key = [aad, &[0], blob].concat();
        if let Some(s) = self.shown.0.lock().expect("shown").get(&key) {
            return Ok(s.clone());
        }
        let s = show(&self.decrypt(blob, aad)?);
        let mut m = self.shown.0.lock().expect("shown");
        if m.len() >= SHOWN_MAX {
            m.clear();
        }
        m.insert(key, s.clone());
        Ok(s)
    }

    /// Deterministic keyed hash of `value` for exact-match lookup of an
    /// encrypted column. `field` is mixed in so equal values in different
    /// fields (say a phone number reused as an ID) do not correlate.
    ///
    /// Callers must pass the canonical form (e.g. `IdNumber::as_str`), since
    /// `x` and `X` would otherwise index differently.
    pub fn blind_index(&self, field: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.idx).expect("HMAC accepts keys of any length");
        mac.update(field.as_bytes());
        // The separator keeps ("ab", "c") and ("a", "bc") apart; field names
        // never contain NUL.
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex = keyfile::to_hex(&digest);
        hex.truncate(INDEX_HEX_LEN);
        hex
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.enc.into())
    }
}

fn random_bytes() -> Result<[u8; 32], PrivacyError> {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| std::io::Error::other(format!("无法生成随机密钥：{e}")))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(seed: u8) -> Keyring {
        Keyring::from_bytes([seed; 32], [seed.wrapping_add(100); 32])
    }

    const AAD: &[u8] = b"person.id_number";

    #[test]
    fn shown_masks_per_field_and_ciphertext() {
        let k = keyring(7);
        let a = k.encrypt("13800001111", AAD);
        let b = k.encrypt("13900002222", AAD);
        let mask = |p: &str| format!("{}****{}", &p[..3], &p[7..]);
        assert_eq!(k.shown(&a, AAD, mask).unwrap(), "138****1111");
        // Remembered: the second call does not run its mask.
        assert_eq!(k.shown(&a, AAD, |_| unreachable!()).unwrap(), "138****1111");
        assert_eq!(k.shown(&b, AAD, mask).unwrap(), "139****2222");
        // Another field's AAD is another entry, and a ciphertext of the wrong field still fails.
        assert!(k.shown(&a, b"case.reporter_phone", mask).is_err());
        // Clones share what they remember.
        assert_eq!(k.clone().shown(&b, AAD, |_| unreachable!()).unwrap(), "139****2222");
        let mut tampered = a.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.shown(&tampered, AAD, mask).is_err());
    }

    #[test]
    fn round_trip() {
        let k = keyring(1);
        for text in ["", "11010519491231002X", "贵州省铜仁市德江县青龙街道 1 号"] {
            let blob = k.encrypt(text, AAD);
            assert_eq!(blob[0], VERSION);
            assert_eq!(blob.len(), 1 + NONCE_LEN + text.len() + TAG_LEN);
            assert_eq!(k.decrypt(&blob, AAD).unwrap(), text);
        }
    }

    #[test]
    fn ciphertexts_differ() {
        let k = keyring(1);
        assert_ne!(k.encrypt("13800138000", AAD), k.encrypt("13800138000", AAD));
    }

    #[test]
    fn decrypt_failures() {
        let k = keyring(1);
        let blob = k.encrypt("13800138000", AAD);
        let fails = |b: &[u8], aad: &[u8], key: &Keyring| matches!(key.decrypt(b, aad), Err(PrivacyError::Decrypt));
        assert!(fails(&blob, b"person.mobile", &k));
        assert!(fails(&blob, AAD, &keyring(2)));
        // The index key plays no part in decryption.
        assert!(!fails(&blob, AAD, &Keyring::from_bytes([1; 32], [0; 32])));
        for i in 0..blob.len() {
            let mut tampered = blob.clone();
            tampered[i] ^= 0x01;
            assert!(fails(&tampered, AAD, &k), "byte {i}");
        }
        for len in 0..blob.len() {
            assert!(fails(&blob[..len], AAD, &k), "len {len}");
        }
        let mut v2 = blob.clone();
        v2[0] = 2;
        assert!(fails(&v2, AAD, &k));
        assert_eq!(k.decrypt(&[], AAD).unwrap_err().to_string(), "个人信息解密失败");
    }

    #[test]
    fn blind_index_properties() {
        let k = keyring(1);
        let a = k.blind_index("person.id_number", "11010519491231002X");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(a, k.blind_index("person.id_number", "11010519491231002X"));
        assert_ne!(a, k.blind_index("person.mobile", "11010519491231002X"));
        assert_ne!(a, k.blind_index("person.id_number", "110105194912310021"));
        assert_ne!(k.blind_index("ab", "c"), k.blind_index("a", "bc"));
        // Only the index key matters, so rotating the encryption key keeps lookups.
        assert_eq!(a, Keyring::from_bytes([9; 32], [101; 32]).blind_index("person.id_number", "11010519491231002X"));
        assert_ne!(a, keyring(2).blind_index("person.id_number", "11010519491231002X"));
    }

    #[test]
    fn blind_index_known_answer() {
        // Pins the exact construction, HMAC-SHA256(idx, field ‖ 0x00 ‖ value),
        // so an accidental change cannot orphan every stored index.
        let k = Keyring::from_bytes([0; 32], [0x0b; 32]);
        assert_eq!(k.blind_index("f", "v"), BLIND_F_V);
    }

    const BLIND_F_V: &str = "43e5674e463136db2e5a853dbf70cd2e";

    #[test]
    fn debug_is_redacted() {
        let k = Keyring::from_bytes([0xab; 32], [0xcd; 32]);
        let shown = format!("{k:?} {k:#?}");
        assert_eq!(format!("{k:?}"), "Keyring(..redacted..)");
        assert!(!shown.contains("ab") && !shown.contains("171") && !shown.contains("205"));
    }
}
