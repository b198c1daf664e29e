"""The mall's device key, sent to a router encrypted to its certificate (pure crypto on bytes; the CLI does files).

Every router of a mall needs the same ``device_hmac`` (docs/DEPLOY.md). The operator seals it to one router's
certificate, issued by the fleet's CA, and the router opens it with its own private key; the key never travels or
rests in clear. The construction is ECIES on P-256, from the ``cryptography`` library's primitives:

    ephemeral key e (P-256), shared = ECDH(e, router's certificate key)
    k = HKDF-SHA256(shared, salt = none, info = "keliu keybox v1" | e's public point | router's public point)
    box = AES-256-GCM(k, 12-byte random nonce, key, associated data = header)

The box is one JSON object: ``format``, ``name`` (which secret), ``to`` (SHA-256 of the router's certificate),
``epk``, ``nonce``, ``ct`` (base64). The header (format, name, to, epk) is authenticated: a box for another router,
for another secret, or changed in any byte does not open.
"""
from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keliu.errors import ConfigError

FORMAT = "keliu-keybox-1"
_POINT = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(box: dict[str, Any], field: str) -> bytes:
    try:
        return base64.b64decode(str(box[field]), validate=True)
    except (KeyError, ValueError) as exc:
        raise ConfigError("fleet.key", f"the key file has no valid {field!r}") from exc


def _kdf(shared: bytes, epk: bytes, rpk: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"keliu keybox v1" + epk + rpk).derive(shared)


def _header(name: str, to: str, epk: bytes) -> bytes:
    return json.dumps({"format": FORMAT, "name": name, "to": to, "epk": _b64(epk)}, sort_keys=True).encode()


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def check_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    """Refuse a certificate the fleet's CA did not sign (the key would go to whoever made it)."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise ConfigError("fleet.key", "the router's certificate is not signed by the fleet's CA") from exc


def seal(secret: bytes, name: str, cert: x509.Certificate) -> bytes:
    """The box of ``secret`` for the holder of ``cert``'s private key."""
    recipient = cert.public_key()
    if not isinstance(recipient, ec.EllipticCurvePublicKey) or not isinstance(recipient.curve, ec.SECP256R1):
        raise ConfigError("fleet.key", "the router's certificate has no P-256 key (issue it with keliu fleet cert)")
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    epk = ephemeral.public_key().public_bytes(*_POINT)
    k = _kdf(ephemeral.exchange(ec.ECDH(), recipient), epk, recipient.public_bytes(*_POINT))
    to = fingerprint(cert)
    nonce = os.urandom(12)
    ct = AESGCM(k).encrypt(nonce, secret, _header(name, to, epk))
    box = {"format": FORMAT, "name": name, "to": to, "epk": _b64(epk), "nonce": _b64(nonce), "ct": _b64(ct)}
    return (json.dumps(box, indent=1) + "\n").encode("ascii")


def open_box(data: bytes, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate | None = None) -> tuple[str, bytes]:
    """``(name, secret)`` from a box sealed to ``key``'s certificate; refuses any other box."""
    try:
        box = json.loads(data)
    except ValueError as exc:
        raise ConfigError("fleet.key", "not a keliu key file") from exc
    if not isinstance(box, dict) or box.get("format") != FORMAT:
        raise ConfigError("fleet.key", f"not a {FORMAT} file")
    name, to = str(box.get("name", "")), str(box.get("to", ""))
    if cert is not None and to != fingerprint(cert):
        raise ConfigError("fleet.key", "this key file was sealed for another router's certificate")
    epk, nonce, ct = _unb64(box, "epk"), _unb64(box, "nonce"), _unb64(box, "ct")
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), epk)
        k = _kdf(key.exchange(ec.ECDH(), peer), epk, key.public_key().public_bytes(*_POINT))
        return name, AESGCM(k).decrypt(nonce, ct, _header(name, to, epk))
    except (InvalidTag, ValueError) as exc:
        raise ConfigError("fleet.key", "the key file does not open with this router's key (another router's, "
                                       "or altered)") from exc
