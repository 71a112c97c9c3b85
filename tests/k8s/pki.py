"""Certificates and keys for a throwaway control plane, as envtest generates them: one CA,
a serving cert for 127.0.0.1 (plus any addresses and names the caller adds: the real node's
bridge address and the in-cluster ``kubernetes.default.svc`` names), an admin client cert in
system:masters, the front-proxy client cert the aggregation layer presents to metrics-server,
and the service-account signing key pair (needed for TokenRequest)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path
    front_proxy_cert: Path
    front_proxy_key: Path


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def generate(
    directory: Path, ips: tuple[str, ...] = ("127.0.0.1",), names: tuple[str, ...] = ("localhost",)
) -> Pki:
    now = datetime.datetime.now(datetime.UTC)
    lifetime = datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("chatcluster-test-ca"))
        .issuer_name(_name("chatcluster-test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        subject: x509.Name, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + lifetime)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)

    serving = leaf(
        _name("kube-apiserver"),
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        + [x509.DNSName(name) for name in names],
    )
    admin = leaf(_name("admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH, [])
    front_proxy = leaf(_name("front-proxy-client"), ExtendedKeyUsageOID.CLIENT_AUTH, [])
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    files = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "apiserver.crt": serving[0],
        "apiserver.key": serving[1],
        "admin.crt": admin[0],
        "admin.key": admin[1],
        "front-proxy.crt": front_proxy[0],
        "front-proxy.key": front_proxy[1],
        "sa.key": _pem_key(sa),
        "sa.pub": sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
        (directory / name).chmod(0o600)
    d = directory
    return Pki(
        d / "ca.crt",
        d / "apiserver.crt",
        d / "apiserver.key",
        d / "admin.crt",
        d / "admin.key",
        d / "sa.key",
        d / "sa.pub",
        d / "front-proxy.crt",
        d / "front-proxy.key",
    )
