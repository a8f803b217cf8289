#!/usr/bin/env python3
# Independent computation of the known-answer vectors pinned in src/crypto.rs
# (HKDF/HMAC from the standard library, Ed25519 and ChaCha20-Poly1305 from
# the `cryptography` package, HChaCha20 written out). Run: python3 kat/rapport_v1_vectors.py
import hmac, hashlib, struct
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

def hkdf_extract(salt, ikm): return hmac.new(salt, ikm, hashlib.sha256).digest()
def hkdf_expand(prk, info, n):
    t=b""; out=b""; i=1
    while len(out)<n:
        t=hmac.new(prk, t+info+bytes([i]), hashlib.sha256).digest(); out+=t; i+=1
    return out[:n]
def rotl(v,c): return ((v<<c)&0xffffffff)|(v>>(32-c))
def qr(s,a,b,c,d):
    s[a]=(s[a]+s[b])&0xffffffff; s[d]^=s[a]; s[d]=rotl(s[d],16)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]^=s[c]; s[b]=rotl(s[b],12)
    s[a]=(s[a]+s[b])&0xffffffff; s[d]^=s[a]; s[d]=rotl(s[d],8)
    s[c]=(s[c]+s[d])&0xffffffff; s[b]^=s[c]; s[b]=rotl(s[b],7)
def hchacha20(key, nonce16):
    s=[0x61707865,0x3320646e,0x79622d32,0x6b206574]+list(struct.unpack('<8I',key))+list(struct.unpack('<4I',nonce16))
    for _ in range(10):
        qr(s,0,4,8,12);qr(s,1,5,9,13);qr(s,2,6,10,14);qr(s,3,7,11,15)
        qr(s,0,5,10,15);qr(s,1,6,11,12);qr(s,2,7,8,13);qr(s,3,4,9,14)
    return struct.pack('<8I',*(s[0:4]+s[12:16]))
def xchacha_seal(key, nonce, pt, aad):
    sub=hchacha20(key, nonce[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0\0\0\0"+nonce[16:], pt, aad)

# sanity: draft A.3.1
k=bytes(range(0x80,0xa0)); n=bytes(range(0x40,0x58)); aad=bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
pt=b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
print("draft", xchacha_seal(k,n,pt,aad).hex())

secret=bytes(range(32)); ws=bytes(0xa0+i for i in range(16))
prk=hkdf_extract(b"rapport/v1/workspace-keys", secret)
ek=hkdf_expand(prk,b"rapport/v1/envelope-key"+ws,32)
seed=hkdf_expand(prk,b"rapport/v1/auth-seed"+ws,32)
tk=hkdf_expand(prk,b"rapport/v1/doc-tag-key"+ws,32)
sk=Ed25519PrivateKey.from_private_bytes(seed)
pk=sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
tag=hmac.new(tk,b"contact-42",hashlib.sha256).digest()
print("KAT_ENVELOPE_KEY", ek.hex()); print("KAT_TAG_KEY", tk.hex()); print("KAT_VERIFIER", pk.hex()); print("KAT_DOC_TAG", tag.hex())
ct=xchacha_seal(ek, bytes([0x24]*24), b"hello rapport", b"rapport/v1/envelope"+ws+tag)
print("KAT_CIPHERTEXT", ct.hex())
sig=sk.sign(b"rapport/v1/auth"+ws+bytes([0x5c]*32))
print("KAT_SIGNATURE", sig.hex())
