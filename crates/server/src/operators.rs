//! Operators' passwords and tokens (contract section 11): Argon2id password hashes stored as
//! PHC strings, one-time passwords, and the random values of a session (its cookie and CSRF
//! token), of which the store keeps only the cookie's SHA-256. Hashing costs about 20 ms of
//! CPU: async callers run it on a blocking thread. No function here logs or echoes a secret.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::Rng;

/// The shortest password an operator may choose.
pub const MIN_PASSWORD_LEN: usize = 12;

/// The length of a one-time password.
const ONE_TIME_LEN: usize = 24;

/// The characters of a one-time password: no look-alikes (0/O, 1/l/I), nothing a shell or a
/// form would change.
const ONE_TIME_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Hashes a password with Argon2id (m = 19456 KiB, t = 2, p = 1) and a fresh random salt.
///
/// # Errors
/// If the hasher fails (it does not for a password of any sane length).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| anyhow::anyhow!("hashing a password failed"))
}

/// Whether `password` is the one `phc` was made from; a PHC string that does not parse is
/// no match.
#[must_use]
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Verifies `password` against a fixed hash and ignores the answer: the sign-in of an unknown
/// username takes as long as a known one's, so timing does not tell which usernames exist.
pub fn dummy_verify(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| {
        hash_password("not the password of anyone").unwrap_or_else(|_| String::new())
    });
    let _ = verify_password(password, phc);
}

/// A random one-time password from the OS RNG: 24 characters of a 57-letter alphabet
/// (about 140 bits).
#[must_use]
pub fn one_time_password() -> String {
    let mut rng = OsRng;
    (0..ONE_TIME_LEN)
        .map(|_| char::from(ONE_TIME_ALPHABET[rng.gen_range(0..ONE_TIME_ALPHABET.len())]))
        .collect()
}

/// A random token from the OS RNG (32 bytes, base64url without padding): a session cookie's
/// value or a CSRF token.
#[must_use]
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keys a session by: the SHA-256 of its cookie's value.
#[must_use]
pub fn session_hash(cookie_value: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cookie_value.as_bytes())
        .as_ref()
        .to_vec()
}

/// Checks a username: 1 to 64 characters of `A-Z a-z 0-9 . _ @ -`.
///
/// # Errors
/// A one-line reason otherwise.
pub fn check_username(username: &str) -> Result<(), &'static str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-');
    if username.is_empty() || username.len() > 64 || !username.chars().all(allowed) {
        return Err("a username is 1 to 64 characters of A-Z a-z 0-9 . _ @ -");
    }
    Ok(())
}

/// Checks a password an operator chose.
///
/// # Errors
/// A one-line reason (never the password) when it is shorter than [`MIN_PASSWORD_LEN`].
pub fn check_password(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err("a password is 12 characters at least");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_is_argon2id() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse battery!", &phc));
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        assert_ne!(
            phc,
            hash_password("correct horse battery").unwrap(),
            "salted"
        );
        dummy_verify("anything");
    }

    #[test]
    fn one_time_passwords_are_long_random_and_from_the_alphabet() {
        let a = one_time_password();
        assert_eq!(a.len(), ONE_TIME_LEN);
        assert!(a.bytes().all(|b| ONE_TIME_ALPHABET.contains(&b)));
        assert_ne!(a, one_time_password());
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
        assert_eq!(session_hash("x").len(), 32);
    }

    #[test]
    fn usernames_and_passwords_are_checked() {
        for good in ["ann", "a.b_c@d-e", &"x".repeat(64)] {
            assert!(check_username(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "ann!", "é", &"x".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
        assert!(check_password("elevenchars").is_err());
        assert!(check_password("twelve chars").is_ok());
    }
}
