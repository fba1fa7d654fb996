"""A throwaway PKI for the TLS tests: a CA, server and client certificates signed by it,
and the bad ones (another CA's, expired, for another name), written as PEM files."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Pair:
    """A certificate and its key, as files."""

    cert: Path
    key: Path


class Authority:
    """A CA that signs certificates into `root`."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.timezone.utc)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY)
            .not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert = root / f"{name}.crt"
        self.cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        stem: str,
        names: tuple[str, ...] = ("localhost", "127.0.0.1"),
        *,
        client: bool = False,
        expired: bool = False,
    ) -> Pair:
        """A leaf certificate for `names` (DNS names or IP addresses), as `stem`.crt/.key."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        start, end = (now - 10 * _DAY, now - _DAY) if expired else (now - _DAY, now + 30 * _DAY)
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        pair = Pair(self.root / f"{stem}.crt", self.root / f"{stem}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pair.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return pair


@dataclass(frozen=True)
class Pki:
    """Everything a TLS test needs, made once per session."""

    ca: Path  # the CA that signs every good certificate below
    other_ca: Path  # a CA that signed none of them
    server: Pair  # for localhost and 127.0.0.1
    client: Pair  # a client certificate of `ca`
    stranger: Pair  # a client certificate of the other CA
    expired: Pair  # a server certificate of `ca` that expired yesterday
    elsewhere: Pair  # a server certificate of `ca` for example.org only
    renewed: Pair  # another server certificate for localhost (a rotation's new one)
    authority: Authority


def make_pki(root: Path) -> Pki:
    ca = Authority(root, "test-ca")
    other = Authority(root, "other-ca")
    return Pki(
        ca=ca.cert,
        other_ca=other.cert,
        server=ca.issue("server"),
        client=ca.issue("client", ("alice",), client=True),
        stranger=other.issue("stranger", ("mallory",), client=True),
        expired=ca.issue("expired", expired=True),
        elsewhere=ca.issue("elsewhere", ("example.org",)),
        renewed=ca.issue("renewed"),
        authority=ca,
    )
