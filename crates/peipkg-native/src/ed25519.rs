//! Ed25519 keys as `package-format.md` §4.1 defines them: a private key file is a 32-byte raw seed
//! or a PKCS#8 `PRIVATE KEY` PEM (v1 as `openssl genpkey -algorithm ed25519` writes it, or v2);
//! a public key is 32 raw bytes or an SPKI `PUBLIC KEY` PEM; the fingerprint is the lowercase hex
//! SHA-256 of the raw public key.

use std::path::Path;

use ring::signature::{self, Ed25519KeyPair, KeyPair};

use crate::error::{Code, Error, Result};
use crate::hash::{sha256, to_hex};

/// `id-Ed25519` (1.3.101.112) as DER.
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// SPKI DER prefix for an Ed25519 public key; the 32 key bytes follow.
const SPKI_PREFIX: &[u8] = &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// PKCS#8 v1 DER prefix for an Ed25519 private key; the 32 seed bytes follow.
const PKCS8_V1_PREFIX: &[u8] =
    &[0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
/// Key files are tiny; anything larger is not a key.
const MAX_KEY_FILE: u64 = 64 * 1024;

pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.fingerprint())
    }
}

/// The first PEM block in `text`: its label and decoded DER.
fn first_pem_block(text: &str) -> Option<(String, std::result::Result<Vec<u8>, base64::DecodeError>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest[body_start..].find(&end_marker)? + body_start;
    let b64: String = rest[body_start..body_end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    Some((label, base64::decode(b64)))
}

fn read_key_file(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("open key", path, e))?;
    if meta.is_dir() {
        return Err(Error::at(Code::Key, path, format!("key file {} is a directory, not a key", path.display())));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(Error::at(
            Code::Key,
            path,
            format!("key file {} is {} bytes: too large to be a key", path.display(), meta.len()),
        ));
    }
    std::fs::read(path).map_err(|e| Error::io("read key", path, e))
}

impl SigningKey {
    pub fn from_seed(seed: &[u8]) -> Result<SigningKey> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .map(|pair| SigningKey { pair })
            .map_err(|_| Error::new(Code::Key, "an Ed25519 seed must be exactly 32 bytes"))
    }

    /// Parses key file bytes; `origin` names the file in messages.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<SigningKey> {
        if bytes.len() == 32 {
            return SigningKey::from_seed(bytes);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| {
            Error::new(Code::Key, format!("{origin}: not a signing key (neither a 32-byte raw seed nor a PEM file)"))
        })?;
        let (label, der) = first_pem_block(text).ok_or_else(|| {
            Error::new(Code::Key, format!("{origin}: not a signing key (neither a 32-byte raw seed nor a PEM file)"))
        })?;
        if label != "PRIVATE KEY" {
            return Err(Error::new(
                Code::Key,
                format!("{origin}: PEM block is \"{label}\", expected \"PRIVATE KEY\" (PKCS#8, as `openssl genpkey -algorithm ed25519` writes)"),
            ));
        }
        let der = der.map_err(|e| Error::new(Code::Key, format!("{origin}: PEM body is not valid base64: {e}")))?;
        if !der.windows(ED25519_OID.len()).any(|w| w == ED25519_OID) {
            return Err(Error::new(
                Code::Key,
                format!(
                    "{origin}: the private key is not Ed25519; create one with `openssl genpkey -algorithm ed25519`"
                ),
            ));
        }
        if der.len() == PKCS8_V1_PREFIX.len() + 32 && der.starts_with(PKCS8_V1_PREFIX) {
            return SigningKey::from_seed(&der[PKCS8_V1_PREFIX.len()..]);
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map(|pair| SigningKey { pair })
            .map_err(|e| Error::new(Code::Key, format!("{origin}: malformed PKCS#8 Ed25519 key ({e})")))
    }

    pub fn from_file(path: &Path) -> Result<SigningKey> {
        let bytes = read_key_file(path)?;
        SigningKey::from_bytes(&bytes, &path.display().to_string()).map_err(|mut e| {
            e.path = Some(path.display().to_string());
            e
        })
    }

    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

pub fn fingerprint(public_key: &[u8; 32]) -> String {
    to_hex(&sha256(public_key))
}

/// SPKI PEM, as `openssl pkey -pubout` writes it.
pub fn public_key_pem(public_key: &[u8; 32]) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(public_key);
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", base64::encode(der))
}

/// Parses a public key: 32 raw bytes or an SPKI `PUBLIC KEY` PEM holding an Ed25519 key.
pub fn parse_public_key(bytes: &[u8], origin: &str) -> Result<[u8; 32]> {
    if bytes.len() == 32 {
        let mut k = [0u8; 32];
        k.copy_from_slice(bytes);
        return Ok(k);
    }
    let bad =
        || Error::new(Code::Key, format!("{origin}: not an Ed25519 public key (32 raw bytes or a PEM \"PUBLIC KEY\")"));
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    let (label, der) = first_pem_block(text).ok_or_else(bad)?;
    if label != "PUBLIC KEY" {
        return Err(bad());
    }
    let der = der.map_err(|_| bad())?;
    if der.len() != SPKI_PREFIX.len() + 32 || !der.starts_with(SPKI_PREFIX) {
        return Err(bad());
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(&der[SPKI_PREFIX.len()..]);
    Ok(k)
}

pub fn verify(public_key: &[u8; 32], message: &[u8], sig: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key).verify(message, sig).is_ok()
}

/// Unpadded standard base64 (the signature envelope's form).
pub fn base64_unpadded(bytes: &[u8]) -> String {
    base64::encode_config(bytes, base64::STANDARD_NO_PAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "fad3f339158af435fde9af36823c89b9f50599d3aff3a0ff93be02e5ff310e92";
    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPrT8zkVivQ1/emvNoI8ibn1BZnTr/Og/5O+AuX/MQ6S\n-----END PRIVATE KEY-----\n";

    fn seed() -> Vec<u8> {
        (0..32).map(|i| u8::from_str_radix(&SEED[2 * i..2 * i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn test_key_facts_match_the_spec() {
        let k = SigningKey::from_bytes(PEM.as_bytes(), "test").unwrap();
        assert_eq!(to_hex(&k.public_key()), "5fb53bcb248936467a1db5163d18d8403cec776e4f9ed4ff7584ff84be6256f5");
        assert_eq!(k.fingerprint(), "5a491c24f72d717f1f6c09620af2bbccc79513118c3919be7f86f64e825d0b68");
        let raw = SigningKey::from_bytes(&seed(), "raw").unwrap();
        assert_eq!(raw.public_key(), k.public_key());
        assert_eq!(
            public_key_pem(&k.public_key()),
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAX7U7yySJNkZ6HbUWPRjYQDzsd25PntT/dYT/hL5iVvU=\n-----END PUBLIC KEY-----\n"
        );
    }

    #[test]
    fn signs_the_hello_digest_like_the_reference() {
        let k = SigningKey::from_bytes(PEM.as_bytes(), "test").unwrap();
        let digest: Vec<u8> = (0..32)
            .map(|i| {
                u8::from_str_radix(
                    &"f72cbf8c9ec9586cdd7c3877f0c00ee444d73c0d89b4b3bb7543effae118e44c"[2 * i..2 * i + 2],
                    16,
                )
                .unwrap()
            })
            .collect();
        let sig = k.sign(&digest);
        assert_eq!(
            base64_unpadded(&sig),
            "wS3ZuRDK5qJDLN10eZKjqF+5+82tOpkVFmbPp1slHGlaViqt//Tiqu78BNgSyPcekI52c+hBqeNWFKHOtx6ICw"
        );
        assert!(verify(&k.public_key(), &digest, &sig));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!verify(&k.public_key(), &digest, &bad));
    }

    #[test]
    fn refuses_other_keys_with_a_reason() {
        let e =
            SigningKey::from_bytes(b"-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n", "k").unwrap_err();
        assert!(e.message.contains("expected \"PRIVATE KEY\""), "{}", e.message);
        assert!(SigningKey::from_bytes(b"hello", "k").unwrap_err().message.contains("neither a 32-byte raw seed"));
        // An EC P-256 PKCS#8 key (openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256).
        let ec = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJUwNovoH0D5Xa9vc\nOnUzI+udlIA592AHSg8renjKvtKhRANCAATW65BfHsd6WPOnxeJv3URm+1mvUqMQ\nlBPQAzfqgpZbah4Lj5FpyO158NhfOdKXn4sAbVhnhVpaGYCBuj50gLUC\n-----END PRIVATE KEY-----\n";
        assert!(SigningKey::from_bytes(ec.as_bytes(), "k").unwrap_err().message.contains("not Ed25519"));
    }
}
