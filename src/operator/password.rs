//! The dashboard password (§3.2): where it comes from, how a candidate is
//! checked, and the first-run setup code.
//!
//! - A password set on the Password page is kept as an argon2id hash (in
//!   the store) and wins; else `WEB_PASSWORD` (compared in constant time);
//!   else there is none — `WEB_PASSWORD` empty, or the well-known `123`.
//!   Then the server prints a setup code on stderr at startup (new at
//!   every start, kept only in memory), the login form asks for it, and
//!   the session it opens must set a password before anything else.
//! - The API `PASSWORD` never opens the dashboard.
//! - An argon2 check takes ~19 MiB and tens of milliseconds on purpose. At
//!   most [`max_concurrent_checks`] run at once, off the worker threads,
//!   each in memory mapped for it and unmapped after (a freed 19 MiB
//!   block would otherwise stay with the allocator); beyond that a check
//!   is refused at once ([`Busy`]), so a burst of logins costs bounded
//!   memory and no queue.

use std::sync::Arc;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::RwLock;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// The password every fresh install of the original started with: as a
/// `WEB_PASSWORD` it counts as none.
pub const WELL_KNOWN_DEFAULT: &str = "123";
/// Setup codes are this many characters of [`SETUP_CODE_ALPHABET`]
/// (about 158 bits).
pub const SETUP_CODE_LENGTH: usize = 32;
/// No 0/o, 1/l/i: the code is read off a log and typed or pasted.
const SETUP_CODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Longest candidate looked at (argon2 hashes whatever it is given).
const MAX_CANDIDATE_BYTES: usize = 1024;
/// Stored hashes asking for more memory than this are refused.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// How the dashboard password is checked now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A password set in the dashboard (argon2id PHC string).
    Stored(String),
    /// `WEB_PASSWORD` from the environment or the config file.
    Configured,
    /// None yet: the setup code opens a session that must set one.
    Setup,
}

/// No argon2 check can start now; try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The dashboard password's state, shared by all workers.
pub struct DashboardPassword {
    /// argon2id PHC string of the password set in the dashboard.
    pub hash: RwLock<Option<String>>,
    /// The setup code of this start, while no password is set.
    setup_code: RwLock<Option<Secret>>,
    checks: Arc<tokio::sync::Semaphore>,
}

impl Default for DashboardPassword {
    fn default() -> DashboardPassword {
        DashboardPassword {
            hash: RwLock::new(None),
            setup_code: RwLock::new(None),
            checks: Arc::new(tokio::sync::Semaphore::new(max_concurrent_checks())),
        }
    }
}

/// argon2 checks that may run at once: one per core, at most 4 (each
/// takes ~19 MiB while it runs).
pub fn max_concurrent_checks() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4)
}

/// One check, ready to run: the mode it checks against, and for a stored
/// hash the permit to run argon2.
pub struct Pass {
    mode: Mode,
    expected: Option<Secret>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl DashboardPassword {
    /// How a candidate is checked now, given the configured `WEB_PASSWORD`
    /// (empty when none).
    pub fn mode(&self, web_password: &Secret) -> Mode {
        if let Some(hash) = self.hash.read().clone() {
            return Mode::Stored(hash);
        }
        // (`Config` already reads `123` as none; a configuration made in
        // code is held to the same rule.)
        if web_password.expose().is_empty() || web_password.matches(WELL_KNOWN_DEFAULT) {
            Mode::Setup
        } else {
            Mode::Configured
        }
    }

    /// Makes a new setup code for this start when no password is set, and
    /// returns it (the caller prints it, and nothing else ever does).
    pub fn begin_setup(&self, web_password: &Secret, rng: &mut impl rand::Rng) -> Option<String> {
        if self.mode(web_password) != Mode::Setup {
            return None;
        }
        let code = random_setup_code(rng);
        *self.setup_code.write() = Some(Secret::new(code.clone()));
        Some(code)
    }

    /// The setup code of this start (tests read it here; the server
    /// prints it once).
    pub fn setup_code(&self) -> Option<String> {
        self.setup_code.read().as_ref().map(|code| code.expose().to_owned())
    }

    /// A password was set: the setup code is spent.
    pub fn set_hash(&self, hash: String) {
        *self.hash.write() = Some(hash);
        *self.setup_code.write() = None;
    }

    /// Gets ready to check one candidate: `Busy` when it needs argon2 and
    /// as many argon2 checks as allowed are running.
    pub fn begin(&self, web_password: &Secret) -> Result<Pass, Busy> {
        let mode = self.mode(web_password);
        let (expected, permit) = match &mode {
            Mode::Stored(_) => (None, Some(self.checks.clone().try_acquire_owned().map_err(|_| Busy)?)),
            Mode::Configured => (Some(web_password.clone()), None),
            Mode::Setup => (self.setup_code.read().clone(), None),
        };
        Ok(Pass { mode, expected, _permit: permit })
    }

    /// A permit to hash a new password (the same bound as checks).
    pub fn hashing_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Busy> {
        self.checks.clone().try_acquire_owned().map_err(|_| Busy)
    }
}

impl Pass {
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Whether `candidate` is right. argon2 runs off the worker thread
    /// (the permit is held until it is done).
    pub async fn check(self, candidate: &str) -> bool {
        if candidate.is_empty() || candidate.len() > MAX_CANDIDATE_BYTES {
            return false;
        }
        match &self.mode {
            Mode::Stored(phc) => {
                let (phc, candidate) = (phc.clone(), candidate.to_owned());
                let verdict = actix_web::web::block(move || verify(&phc, &candidate)).await.unwrap_or(false);
                drop(self);
                verdict
            }
            Mode::Configured | Mode::Setup => {
                self.expected.as_ref().is_some_and(|expected| expected.matches(candidate))
            }
        }
    }
}

/// A setup code: [`SETUP_CODE_LENGTH`] characters, easy to read off a log.
pub fn random_setup_code(rng: &mut impl rand::Rng) -> String {
    (0..SETUP_CODE_LENGTH)
        .map(|_| char::from(SETUP_CODE_ALPHABET[rng.random_range(0..SETUP_CODE_ALPHABET.len())]))
        .collect()
}

/// Whether `candidate` matches the argon2 PHC string `phc` (any argon2
/// variant and parameters argon2 itself accepts, up to [`MAX_MEMORY_KIB`]).
pub fn verify(phc: &str, candidate: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Ok(algorithm), Some(expected), Some(salt)) = (Algorithm::try_from(hash.algorithm), hash.hash, hash.salt)
    else {
        return false;
    };
    let version = hash.version.map_or(Ok(Version::default()), Version::try_from);
    let (Ok(version), Ok(params)) = (version, Params::try_from(&hash)) else { return false };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut out = vec![0u8; expected.len()];
    let context = Argon2::new(algorithm, version, params);
    let computed = with_blocks(context.params().block_count(), |blocks| {
        context.hash_password_into_with_memory(candidate.as_bytes(), salt, &mut out, blocks).is_ok()
    });
    computed.unwrap_or(false) && bool::from(expected.as_bytes().ct_eq(&out))
}

/// An argon2id PHC string for `password` (argon2's default parameters: 19
/// MiB, 2 passes, one lane; a random 128-bit salt).
pub fn hash(password: &str, rng: &mut impl rand::RngCore) -> Option<String> {
    let mut salt_bytes = [0u8; 16];
    rng.fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).ok()?;
    let params = Params::default();
    let context = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let hashed = with_blocks(params.block_count(), |blocks| {
        context.hash_password_into_with_memory(password.as_bytes(), &salt_bytes, &mut out, blocks).is_ok()
    })?;
    if !hashed {
        return None;
    }
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().ok()?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).ok()?),
    };
    Some(phc.to_string())
}

/// Runs `work` over `count` zeroed argon2 blocks in an anonymous memory
/// mapping made for it and unmapped when it returns, so the memory goes
/// back to the system at once. `None` when the mapping fails.
fn with_blocks<R>(count: usize, work: impl FnOnce(&mut [Block]) -> R) -> Option<R> {
    let mut mapping = memmap2::MmapMut::map_anon(count.checked_mul(std::mem::size_of::<Block>())?.max(1)).ok()?;
    // SAFETY: the mapping is page-aligned (a `Block` needs 64 bytes),
    // `count` blocks long, and zero-filled; an all-zero `Block` is valid
    // (it is 128 plain `u64`s). The slice does not outlive the mapping.
    let blocks = unsafe { std::slice::from_raw_parts_mut(mapping.as_mut_ptr().cast::<Block>(), count) };
    Some(work(blocks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;

    #[test]
    fn hashes_are_argon2id_and_verify_both_ways() {
        let phc = hash("correct horse", &mut rand::rng()).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(&phc, "correct horse"));
        assert!(!verify(&phc, "correct horsE"));
        // argon2's own verifier agrees (hashes stored by earlier versions
        // were made by it, and still verify here).
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        let theirs = {
            use argon2::password_hash::PasswordHasher;
            let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
            Argon2::default().hash_password(b"older", &salt).unwrap().to_string()
        };
        assert!(verify(&theirs, "older"));
        assert!(!verify(&theirs, "newer"));
        for broken in ["", "$argon2id$", "plain text", &phc.replace("m=19456", "m=9999999")] {
            assert!(!verify(broken, "correct horse"), "{broken}");
        }
    }

    #[test]
    fn the_mode_follows_what_is_set_and_123_counts_as_none() {
        let password = DashboardPassword::default();
        assert_eq!(password.mode(&Secret::new("")), Mode::Setup);
        assert_eq!(password.mode(&Secret::new("operator-set")), Mode::Configured);
        let code = password.begin_setup(&Secret::new(""), &mut rand::rng()).unwrap();
        assert_eq!(code.len(), SETUP_CODE_LENGTH);
        assert!(code.bytes().all(|b| SETUP_CODE_ALPHABET.contains(&b)));
        assert_ne!(code, random_setup_code(&mut rand::rng()));
        assert_eq!(password.setup_code().as_deref(), Some(code.as_str()));
        password.set_hash("$argon2id$stored".into());
        assert!(matches!(password.mode(&Secret::new("")), Mode::Stored(_)));
        assert_eq!(password.setup_code(), None, "a set password spends the code");
        assert_eq!(password.begin_setup(&Secret::new(""), &mut rand::rng()), None);
    }

    #[actix_web::test]
    async fn the_setup_code_opens_only_itself() {
        let password = DashboardPassword::default();
        let none = Secret::new("");
        let code = password.begin_setup(&none, &mut rand::rng()).unwrap();
        for wrong in ["", "123", &code[1..], &format!("{code}x")] {
            assert!(!password.begin(&none).unwrap().check(wrong).await, "{wrong}");
        }
        assert!(password.begin(&none).unwrap().check(&code).await);
    }

    #[test]
    fn argon2_checks_are_bounded() {
        let password = DashboardPassword::default();
        password.set_hash("$argon2id$stored".into());
        let none = Secret::new("");
        let held: Vec<Pass> = (0..max_concurrent_checks()).map(|_| password.begin(&none).unwrap()).collect();
        assert!(matches!(password.begin(&none), Err(Busy)));
        assert!(password.hashing_permit().is_err());
        drop(held);
        assert!(password.begin(&none).is_ok());
    }
}
