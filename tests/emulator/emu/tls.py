"""The HTTPS proxy's test CA and per-host certificates."""

from __future__ import annotations

import hashlib
import os
import re

from .state import EMU


# ---- HTTPS: the hosts' real upload URL, https://BUCKET.s3.REGION.amazonaws.com/
#
# The agent stand-in gives each script https_proxy=<this server> and
# CURL_CA_BUNDLE=<test CA>, as an agent configured for a proxy passes its
# environment on (SSM User Guide, "Configuring SSM Agent to use a proxy on
# Linux nodes": http_proxy/https_proxy/no_proxy in the agent's environment). The
# script's curl then sends CONNECT BUCKET.s3.REGION.amazonaws.com:443 here; the
# emulator answers it itself, as that host, with a certificate from a CA made at
# start-up. Nothing leaves the machine: CONNECT to any other host is refused.

S3_HOST_RE = re.compile(r"^(?:(?P<bucket>[a-z0-9][a-z0-9.-]*)\.)?s3[.-](?:(?P<region>[a-z0-9-]+)\.)?"
                        r"amazonaws\.com(?:\.cn)?$")


def tls_setup(directory: str) -> None:
    """A fresh test CA for this emulator: <dir>/tls/ca.pem."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime

    EMU.tls.dir = os.path.join(directory, "tls")
    os.makedirs(EMU.tls.dir, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flamefire emulator test CA")])
    t = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(t - datetime.timedelta(hours=1))
            .not_valid_after(t + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    EMU.tls._ca = (key, cert)
    EMU.tls.ca_cert = os.path.join(EMU.tls.dir, "ca.pem")
    with open(EMU.tls.ca_cert + ".tmp", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(EMU.tls.ca_cert + ".tmp", EMU.tls.ca_cert)


def s3_cert_names(host: str) -> list[str]:
    """The names on S3's certificate for a host's endpoint: a wildcard for the
    bucket label and the bare endpoint, as S3's own certificates have. A
    wildcard covers one label only, so a virtual-hosted bucket name with dots
    fails verification, as on S3 ("the SSL wildcard certificate only matches
    buckets that don't contain periods", S3 User Guide, VirtualHosting.html)."""
    m = S3_HOST_RE.match(host)
    endpoint = host[len(m.group("bucket")) + 1:] if m and m.group("bucket") else host
    return [f"*.{endpoint}", endpoint]


def tls_context(host: str):
    """A server context with S3's certificate names for `host`'s endpoint,
    signed by the test CA."""
    import ssl
    names = s3_cert_names(host)
    host = names[1]
    with EMU.tls._lock:
        if host in EMU.tls._contexts:
            return EMU.tls._contexts[host]
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
        import datetime

        ca_key, ca_cert = EMU.tls._ca
        key = ec.generate_private_key(ec.SECP256R1())
        t = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(t - datetime.timedelta(hours=1))
                .not_valid_after(t + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        stem = os.path.join(EMU.tls.dir, hashlib.sha1(host.encode()).hexdigest())
        with open(stem + ".pem", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(stem + ".key", "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(stem + ".pem", stem + ".key")
        EMU.tls._contexts[host] = ctx
        return ctx


def tls_proxy_env() -> dict[str, str]:
    """What the agent stand-in adds to a script's environment (see above)."""
    if not EMU.tls.ca_cert:
        return {}
    return {"https_proxy": f"http://127.0.0.1:{EMU.config.port}", "no_proxy": "127.0.0.1,localhost",
            "CURL_CA_BUNDLE": EMU.tls.ca_cert}
