//! End-to-end crypto: the [`WorkspaceSecret`], the [`Keys`] derived from it,
//! envelope sealing/opening (XChaCha20-Poly1305) and challenge–response auth
//! (Ed25519).
//!
//! Construction (all labels are ASCII, `||` is concatenation, `ws` the 16
//! workspace id bytes):
//!
//! ```text
//! PRK          = HKDF-Extract(salt = "rapport/v1/workspace-keys", IKM = secret)
//! envelope_key = HKDF-Expand(PRK, "rapport/v1/envelope-key" || ws, 32)
//! auth_seed    = HKDF-Expand(PRK, "rapport/v1/auth-seed"    || ws, 32)
//! tag_key      = HKDF-Expand(PRK, "rapport/v1/doc-tag-key"  || ws, 32)
//!
//! doc_tag      = HMAC-SHA256(tag_key, record_id)
//! AAD          = "rapport/v1/envelope" || ws || doc_tag
//! ciphertext   = XChaCha20-Poly1305(envelope_key, nonce[24], AAD, plaintext)  (tag appended)
//!
//! verifier     = Ed25519 public key of the seed auth_seed
//! signature    = Ed25519-Sign(auth_seed, "rapport/v1/auth" || ws || server_nonce[32])
//! ```
//!
//! Nothing here draws randomness: the caller passes the secret's bytes and
//! every nonce, so tests are deterministic. Nonces for [`Keys::seal`] must be
//! fresh random bytes (24 bytes make random collisions negligible).

use core::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::hmac::Hmac;
use hkdf::{Hkdf, HmacImpl};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ids::{decode_b64_array, encode_b64, DocTag, IdError, WorkspaceId};

/// Length of an envelope nonce (XChaCha20).
pub const ENVELOPE_NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag appended to every ciphertext.
pub const ENVELOPE_TAG_LEN: usize = 16;

const HKDF_SALT: &[u8] = b"rapport/v1/workspace-keys";
const INFO_ENVELOPE_KEY: &[u8] = b"rapport/v1/envelope-key";
const INFO_AUTH_SEED: &[u8] = b"rapport/v1/auth-seed";
const INFO_DOC_TAG_KEY: &[u8] = b"rapport/v1/doc-tag-key";
const AAD_LABEL: &[u8] = b"rapport/v1/envelope";
const AUTH_LABEL: &[u8] = b"rapport/v1/auth";

/// Sealing or opening an envelope failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Wrong key, wrong workspace, wrong document tag, or altered bytes: the
    /// Poly1305 tag did not verify. Deliberately says no more.
    #[error("the envelope could not be opened: wrong key, or its bytes, nonce or document tag were altered")]
    Unauthentic,
    /// The ciphertext is shorter than the 16-byte authentication tag.
    #[error("the envelope ciphertext is {found} bytes, shorter than the 16-byte authentication tag")]
    Truncated {
        /// Ciphertext length received.
        found: usize,
    },
    /// The plaintext exceeds XChaCha20-Poly1305's limit (about 256 GiB).
    #[error("the plaintext is {len} bytes, more than XChaCha20-Poly1305 can seal")]
    PlaintextTooLong {
        /// Plaintext length given.
        len: usize,
    },
}

/// Authentication of a relay challenge failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The stored verifier is not a valid Ed25519 public key.
    #[error("the workspace verifier is not a valid Ed25519 public key")]
    InvalidVerifier,
    /// The signature does not verify for this verifier, workspace and
    /// challenge: the client does not hold the workspace secret.
    #[error("the challenge signature does not verify: the client does not hold this workspace's secret")]
    BadSignature,
}

/// A workspace secret in text form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not unpadded base64url of 32 bytes.
    #[error("invalid workspace secret: {0}")]
    Invalid(#[from] IdError),
}

/// The 32 random bytes that give access to a workspace. It travels only in
/// the invite link's URL fragment (which browsers never send to servers) and
/// is never sent to the relay. Zeroed on drop; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct WorkspaceSecret([u8; 32]);

impl WorkspaceSecret {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// Wraps 32 bytes that the caller drew from a cryptographically secure
    /// random source (`crypto.getRandomValues`, `getrandom`).
    pub const fn from_random_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw secret bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Unpadded base64url (43 characters), as put in invite links.
    pub fn to_base64url(&self) -> String {
        encode_b64(&self.0)
    }

    /// Reads the base64url form.
    ///
    /// # Errors
    /// [`SecretError::Invalid`] when the text is not unpadded base64url of
    /// exactly 32 bytes.
    pub fn from_base64url(text: &str) -> Result<Self, SecretError> {
        Ok(Self(decode_b64_array(text, "workspace secret")?))
    }
}

impl fmt::Debug for WorkspaceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkspaceSecret(<redacted>)")
    }
}

/// What the relay stores to authenticate a workspace's members: the Ed25519
/// public key derived from the workspace secret. It cannot decrypt anything.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthVerifier(#[serde(with = "crate::serde_bytes::array")] [u8; 32]);

impl AuthVerifier {
    /// Wraps 32 bytes (as read back from the relay's store).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw public key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for AuthVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthVerifier({})", encode_b64(&self.0))
    }
}

/// The 32 random bytes a relay sends to each new connection to sign.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChallengeNonce(#[serde(with = "crate::serde_bytes::array")] [u8; 32]);

impl ChallengeNonce {
    /// Wraps 32 bytes the relay drew from its random source.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ChallengeNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChallengeNonce({})", encode_b64(&self.0))
    }
}

/// A client's Ed25519 signature over a relay challenge.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthSignature(#[serde(with = "crate::serde_bytes::array")] [u8; 64]);

impl AuthSignature {
    /// Wraps 64 signature bytes.
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for AuthSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthSignature({})", encode_b64(&self.0))
    }
}

/// One encrypted unit the relay stores and forwards: a document change
/// chunk or a compacted snapshot. The relay sees only the document tag, the
/// nonce and the ciphertext length.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Which document (keyed hash of the record id).
    pub doc_tag: DocTag,
    /// The random XChaCha20 nonce used to seal it.
    #[serde(with = "crate::serde_bytes::array")]
    pub nonce: [u8; ENVELOPE_NONCE_LEN],
    /// Ciphertext followed by the 16-byte Poly1305 tag.
    #[serde(with = "crate::serde_bytes::vec")]
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("doc_tag", &self.doc_tag)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// The keys of one workspace, derived from its secret. Holds the envelope
/// key, the document-tag key and the auth signing key; all are zeroed on
/// drop and none is printed by `Debug`.
#[derive(Clone)]
pub struct Keys {
    workspace: WorkspaceId,
    envelope_key: SecretBytes,
    tag_key: SecretBytes,
    signing: SigningKey,
}

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct SecretBytes([u8; 32]);

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("workspace", &self.workspace)
            .field("verifier", &self.verifier())
            .finish_non_exhaustive()
    }
}

fn hkdf_expand(hkdf: &Hkdf<Sha256>, label: &[u8], workspace: &WorkspaceId) -> [u8; 32] {
    let mut okm = [0u8; 32];
    let mut info = Vec::with_capacity(label.len() + WorkspaceId::LEN);
    info.extend_from_slice(label);
    info.extend_from_slice(workspace.as_bytes());
    // 32 bytes is far below HKDF-SHA256's 255 * 32 byte limit: this cannot fail.
    if hkdf.expand(&info, &mut okm).is_err() {
        unreachable!("HKDF-SHA256 can always expand to 32 bytes");
    }
    okm
}

impl Keys {
    /// Derives a workspace's keys from its secret (HKDF-SHA256, see the
    /// module doc). Deterministic: every member derives the same keys.
    pub fn derive(secret: &WorkspaceSecret, workspace: WorkspaceId) -> Keys {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret.as_bytes());
        let envelope_key = SecretBytes(hkdf_expand(&hkdf, INFO_ENVELOPE_KEY, &workspace));
        let mut auth_seed = hkdf_expand(&hkdf, INFO_AUTH_SEED, &workspace);
        let tag_key = SecretBytes(hkdf_expand(&hkdf, INFO_DOC_TAG_KEY, &workspace));
        let signing = SigningKey::from_bytes(&auth_seed);
        auth_seed.zeroize();
        Keys { workspace, envelope_key, tag_key, signing }
    }

    /// The workspace these keys belong to.
    pub fn workspace(&self) -> WorkspaceId {
        self.workspace
    }

    /// The public verifier to register with a relay when creating the
    /// workspace there.
    pub fn verifier(&self) -> AuthVerifier {
        AuthVerifier(self.signing.verifying_key().to_bytes())
    }

    /// The relay-visible tag of a record: `HMAC-SHA256(tag_key, record_id)`.
    pub fn doc_tag(&self, record_id: &str) -> DocTag {
        let mut mac = <Hmac<Sha256> as HmacImpl>::new_from_slice(&self.tag_key.0);
        mac.update(record_id.as_bytes());
        let out = mac.finalize();
        let mut tag = [0u8; 32];
        tag.copy_from_slice(&out);
        DocTag::from_bytes(tag)
    }

    fn aad(&self, doc_tag: &DocTag) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_LABEL.len() + WorkspaceId::LEN + DocTag::LEN);
        aad.extend_from_slice(AAD_LABEL);
        aad.extend_from_slice(self.workspace.as_bytes());
        aad.extend_from_slice(doc_tag.as_bytes());
        aad
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.envelope_key.0))
    }

    /// Encrypts `plaintext` for document `doc_tag` with the caller's fresh
    /// random `nonce`. The workspace id and the document tag are bound as
    /// AAD, so the relay cannot move an envelope to another document or
    /// workspace without [`Keys::open`] noticing.
    ///
    /// # Errors
    /// [`CryptoError::PlaintextTooLong`] past XChaCha20-Poly1305's limit of
    /// about 256 GiB (unreachable in practice).
    pub fn seal(
        &self,
        doc_tag: DocTag,
        plaintext: &[u8],
        nonce: [u8; ENVELOPE_NONCE_LEN],
    ) -> Result<Envelope, CryptoError> {
        let aad = self.aad(&doc_tag);
        let ciphertext = self
            .cipher()
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| CryptoError::PlaintextTooLong { len: plaintext.len() })?;
        Ok(Envelope { doc_tag, nonce, ciphertext })
    }

    /// Decrypts and authenticates an envelope of this workspace.
    ///
    /// # Errors
    /// [`CryptoError::Truncated`] when the ciphertext cannot even hold a tag;
    /// [`CryptoError::Unauthentic`] for a wrong key or workspace, or any
    /// altered byte of ciphertext, nonce or document tag.
    pub fn open(&self, envelope: &Envelope) -> Result<Vec<u8>, CryptoError> {
        if envelope.ciphertext.len() < ENVELOPE_TAG_LEN {
            return Err(CryptoError::Truncated { found: envelope.ciphertext.len() });
        }
        let aad = self.aad(&envelope.doc_tag);
        self.cipher()
            .decrypt(&XNonce::from(envelope.nonce), Payload { msg: &envelope.ciphertext, aad: &aad })
            .map_err(|_| CryptoError::Unauthentic)
    }

    /// Answers a relay's challenge: signs `"rapport/v1/auth" || ws || nonce`.
    pub fn sign_challenge(&self, challenge: &ChallengeNonce) -> AuthSignature {
        let msg = auth_message(&self.workspace, challenge);
        AuthSignature(self.signing.sign(&msg).to_bytes())
    }
}

fn auth_message(workspace: &WorkspaceId, challenge: &ChallengeNonce) -> Vec<u8> {
    let mut msg = Vec::with_capacity(AUTH_LABEL.len() + WorkspaceId::LEN + 32);
    msg.extend_from_slice(AUTH_LABEL);
    msg.extend_from_slice(workspace.as_bytes());
    msg.extend_from_slice(challenge.as_bytes());
    msg
}

/// Relay side of the handshake: checks that `signature` answers `challenge`
/// for `workspace` under the stored `verifier` (strict Ed25519 verification,
/// rejecting weak keys and malleable signatures).
///
/// # Errors
/// [`AuthError::InvalidVerifier`] when the verifier is not a point on the
/// curve; [`AuthError::BadSignature`] when the signer does not hold the
/// workspace secret, or signed another challenge or workspace.
pub fn verify(
    verifier: &AuthVerifier,
    workspace: &WorkspaceId,
    challenge: &ChallengeNonce,
    signature: &AuthSignature,
) -> Result<(), AuthError> {
    let key = VerifyingKey::from_bytes(verifier.as_bytes()).map_err(|_| AuthError::InvalidVerifier)?;
    if key.is_weak() {
        return Err(AuthError::InvalidVerifier);
    }
    let sig = Signature::from_bytes(signature.as_bytes());
    key.verify_strict(&auth_message(workspace, challenge), &sig).map_err(|_| AuthError::BadSignature)
}

impl AuthVerifier {
    /// Constant-time equality, for comparing a presented verifier with the
    /// stored one.
    pub fn ct_eq(&self, other: &AuthVerifier) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("test vector is hex"))
            .collect()
    }

    fn fixture() -> Keys {
        let secret = WorkspaceSecret::from_random_bytes(core::array::from_fn(|i| i as u8));
        let workspace = WorkspaceId::from_bytes(core::array::from_fn(|i| 0xa0 + i as u8));
        Keys::derive(&secret, workspace)
    }

    // --- Known answers for the primitives (published test vectors) --------

    #[test]
    fn hkdf_sha256_matches_rfc5869_test_case_1() {
        let ikm = [0x0b; 22];
        let salt = unhex("000102030405060708090a0b0c");
        let info = unhex("f0f1f2f3f4f5f6f7f8f9");
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm).expand(&info, &mut okm).expect("42 bytes is a valid length");
        assert_eq!(hex(&okm), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    }

    #[test]
    fn ed25519_matches_rfc8032_test_1() {
        let seed: [u8; 32] =
            unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").try_into().expect("32 bytes");
        let key = SigningKey::from_bytes(&seed);
        assert_eq!(
            hex(key.verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex(&key.sign(b"").to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn xchacha20poly1305_matches_draft_irtf_cfrg_xchacha_a_3_1() {
        let key: [u8; 32] =
            unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f").try_into().expect("32 bytes");
        let nonce: [u8; 24] = unhex("404142434445464748494a4b4c4d4e4f5051525354555657").try_into().expect("24 bytes");
        let aad = unhex("50515253c0c1c2c3c4c5c6c7");
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let out = XChaCha20Poly1305::new(&Key::from(key))
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: &aad })
            .expect("small plaintext");
        assert_eq!(
            hex(&out),
            concat!(
                "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb",
                "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452",
                "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9",
                "21f9664c97637da9768812f615c68b13b52e",
                "c0875924c1c7987947deafd8780acf49"
            )
        );
    }

    // --- Known answers for Rapport's construction -------------------------
    // Computed independently (Python `hmac`/`hashlib`, `cryptography`'s
    // Ed25519, and an HChaCha20 + ChaCha20-Poly1305 composition) and pinned:
    // a change here breaks every existing workspace.

    #[test]
    fn key_derivation_matches_known_answers() {
        let keys = fixture();
        assert_eq!(hex(&keys.envelope_key.0), "2717bb0a9ed48cc3fc797fd9d461c482e937cf1c2b974ab70c663c19907b340b");
        assert_eq!(hex(&keys.tag_key.0), "a83f0b0ff04fedebe1b49117c4b3e7088817d9ca5acce6f1336550c9f9d92a2e");
        assert_eq!(hex(keys.verifier().as_bytes()), "8fdd558e62a0aeeac9b923251b09468a88dbe6d16be541d8397158547a377fb8");
        assert_eq!(
            hex(keys.doc_tag("contact-42").as_bytes()),
            "1b8c369c37b96c37784b08df471f84fef453d6f8eb0bf3da38570eb3419770b0"
        );
    }

    #[test]
    fn sealing_matches_known_answer() {
        let keys = fixture();
        let env = keys.seal(keys.doc_tag("contact-42"), b"hello rapport", [0x24; 24]).expect("small plaintext");
        assert_eq!(hex(&env.ciphertext), "ba78490b8b743ec96be308e075944edd727e3ba32999f1bbba8b87ed5f");
    }

    #[test]
    fn challenge_signature_matches_known_answer() {
        let keys = fixture();
        let sig = keys.sign_challenge(&ChallengeNonce::from_bytes([0x5c; 32]));
        assert_eq!(hex(sig.as_bytes()), "435c4262be8fa16739589a72b1d47b7dc189e8dc25d4c4165f05c144df33a6d555893c65294ac83f29ca766902c6c9b3127fd62235efac2b1467755be11ea903");
    }

    // --- Properties ---------------------------------------------------------

    #[test]
    fn sealed_envelope_opens_with_the_same_keys() {
        let keys = fixture();
        let env = keys.seal(keys.doc_tag("r1"), b"payload", [1; 24]).expect("seal");
        assert_eq!(env.ciphertext.len(), b"payload".len() + ENVELOPE_TAG_LEN);
        assert_eq!(keys.open(&env).as_deref(), Ok(&b"payload"[..]));
    }

    #[test]
    fn opening_with_another_secret_fails() {
        let keys = fixture();
        let other = Keys::derive(&WorkspaceSecret::from_random_bytes([9; 32]), keys.workspace());
        let env = keys.seal(keys.doc_tag("r1"), b"payload", [1; 24]).expect("seal");
        assert_eq!(other.open(&env), Err(CryptoError::Unauthentic));
    }

    #[test]
    fn opening_in_another_workspace_fails_even_with_the_same_secret() {
        let secret = WorkspaceSecret::from_random_bytes([4; 32]);
        let a = Keys::derive(&secret, WorkspaceId::from_bytes([1; 16]));
        let b = Keys::derive(&secret, WorkspaceId::from_bytes([2; 16]));
        let env = a.seal(a.doc_tag("r1"), b"payload", [1; 24]).expect("seal");
        assert_eq!(b.open(&env), Err(CryptoError::Unauthentic));
        assert_ne!(a.doc_tag("r1"), b.doc_tag("r1"));
        assert_ne!(a.verifier(), b.verifier());
    }

    #[test]
    fn every_tampered_byte_is_detected() {
        let keys = fixture();
        let env = keys.seal(keys.doc_tag("r1"), b"payload", [1; 24]).expect("seal");
        for i in 0..env.ciphertext.len() {
            let mut bad = env.clone();
            bad.ciphertext[i] ^= 0x01;
            assert_eq!(keys.open(&bad), Err(CryptoError::Unauthentic), "byte {i}");
        }
        for i in 0..ENVELOPE_NONCE_LEN {
            let mut bad = env.clone();
            bad.nonce[i] ^= 0x80;
            assert_eq!(keys.open(&bad), Err(CryptoError::Unauthentic), "nonce {i}");
        }
    }

    #[test]
    fn moving_an_envelope_to_another_document_is_detected() {
        let keys = fixture();
        let mut env = keys.seal(keys.doc_tag("r1"), b"payload", [1; 24]).expect("seal");
        env.doc_tag = keys.doc_tag("r2");
        assert_eq!(keys.open(&env), Err(CryptoError::Unauthentic));
    }

    #[test]
    fn truncated_ciphertext_is_reported_not_panicking() {
        let keys = fixture();
        let mut env = keys.seal(keys.doc_tag("r1"), b"", [1; 24]).expect("seal");
        env.ciphertext.truncate(5);
        assert_eq!(keys.open(&env), Err(CryptoError::Truncated { found: 5 }));
    }

    #[test]
    fn doc_tags_are_deterministic_and_distinct() {
        let keys = fixture();
        assert_eq!(keys.doc_tag("a"), keys.doc_tag("a"));
        assert_ne!(keys.doc_tag("a"), keys.doc_tag("b"));
    }

    #[test]
    fn challenge_signature_verifies_only_for_its_challenge_and_workspace() {
        let keys = fixture();
        let challenge = ChallengeNonce::from_bytes([3; 32]);
        let sig = keys.sign_challenge(&challenge);
        let ws = keys.workspace();
        assert_eq!(verify(&keys.verifier(), &ws, &challenge, &sig), Ok(()));
        assert_eq!(
            verify(&keys.verifier(), &ws, &ChallengeNonce::from_bytes([4; 32]), &sig),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&keys.verifier(), &WorkspaceId::from_bytes([0; 16]), &challenge, &sig),
            Err(AuthError::BadSignature)
        );
        let intruder = Keys::derive(&WorkspaceSecret::from_random_bytes([8; 32]), ws);
        assert_eq!(
            verify(&keys.verifier(), &ws, &challenge, &intruder.sign_challenge(&challenge)),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn garbage_verifier_and_signature_are_errors_not_panics() {
        let ws = WorkspaceId::from_bytes([0; 16]);
        let c = ChallengeNonce::from_bytes([0; 32]);
        // The identity point is a weak key; 0xff.. is not a valid encoding.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            verify(&AuthVerifier::from_bytes(identity), &ws, &c, &AuthSignature::from_bytes([0; 64])),
            Err(AuthError::InvalidVerifier)
        );
        let keys = fixture();
        assert_eq!(
            verify(&keys.verifier(), &ws, &c, &AuthSignature::from_bytes([0xff; 64])),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn secret_base64url_round_trips_and_rejects_bad_text() {
        let secret = WorkspaceSecret::from_random_bytes([0xfe; 32]);
        let text = secret.to_base64url();
        assert_eq!(text.len(), 43);
        assert_eq!(WorkspaceSecret::from_base64url(&text), Ok(secret));
        assert!(WorkspaceSecret::from_base64url("short").is_err());
        assert!(WorkspaceSecret::from_base64url(&format!("{text}=")).is_err());
    }

    #[test]
    fn debug_output_never_shows_secret_material() {
        let secret = WorkspaceSecret::from_random_bytes([0x41; 32]);
        let keys = Keys::derive(&secret, WorkspaceId::from_bytes([0; 16]));
        assert!(!format!("{secret:?}").contains(&secret.to_base64url()));
        let dbg = format!("{keys:?}");
        assert!(!dbg.contains(&hex(&keys.envelope_key.0)));
        assert!(!dbg.contains("envelope_key"));
    }
}
