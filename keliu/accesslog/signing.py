"""Ed25519 signatures of the chain's anchors and purge records (an edge: the key lives in ``var/keys``).

The private key is the 32-byte seed ``var/keys/accesslog_ed25519``, generated at first use like every other keliu
secret (:mod:`keliu.keys`). Its public key (``keliu accesslog public-key``) is what an auditor needs to check
anchors away from the router; the router never needs to show the private key to anybody.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from keliu.errors import AccesslogError
from keliu.keys import secret_bytes

KEY_NAME = "accesslog_ed25519"


@dataclass(frozen=True)
class Signer:
    private: Ed25519PrivateKey

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode("ascii")

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def public_pem(self) -> str:
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def signer(var_dir: str | Path) -> Signer:
    return Signer(Ed25519PrivateKey.from_private_bytes(secret_bytes(var_dir, KEY_NAME)[:32]))


def load_public(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise AccesslogError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AccesslogError("not an Ed25519 public key")
    return key


def valid(public: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        public.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True
