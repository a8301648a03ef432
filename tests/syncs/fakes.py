"""Local HTTPS fakes (trustme CA) of the endpoints the Azure and Cloudflare SDKs call.

Each fake keeps what it was sent and counts every write, so tests can assert that a
change reached the provider exactly once. ``fail_next`` makes the next matching request
answer with an error in the provider's own format.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "certportal-client"
CLIENT_SECRET = "right-secret"
CF_TOKEN = "cf-token-right"
ZONE = "0123456789abcdef0123456789abcdef"


@dataclass
class Failure:
    method: str
    path_part: str
    status: int
    code: str
    message: str


class FakeServer:
    """A threaded HTTPS server on 127.0.0.1 whose handler calls ``self.handle``."""

    def __init__(self, ca: trustme.CA, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.writes: Counter[str] = Counter()
        self.failures: list[Failure] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = fake.dispatch(
                    self.command, self.path, self.headers, body
                )
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.base = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, method: str, path_part: str, status: int, code: str, message: str) -> None:
        self.failures.append(Failure(method, path_part, status, code, message))

    def _failure(self, method: str, path: str) -> Failure | None:
        with self.lock:
            for failure in self.failures:
                if failure.method == method and failure.path_part in path:
                    self.failures.remove(failure)
                    return failure
        return None

    def dispatch(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError


def _der_info(cert: x509.Certificate) -> dict[str, Any]:
    der = cert.public_bytes(Encoding.DER)
    return {
        "cer": base64.b64encode(der).decode(),
        "x5t": base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("="),
        "serial": format(cert.serial_number, "x"),
    }


class KeyVaultFake(FakeServer):
    """Key Vault (certificates) and the Microsoft identity platform's token endpoint."""

    token = "fake-access-token"

    def __init__(self, ca: trustme.CA, port: int = 0) -> None:
        super().__init__(ca, port)
        # name -> list of versions (each: version, info, tags, content type)
        self.certificates: dict[str, list[dict[str, Any]]] = {}
        self.deleted: dict[str, dict[str, Any]] = {}

    def dispatch(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict, Any]:
        parsed = urllib.parse.urlsplit(path)
        parts = [p for p in parsed.path.split("/") if p]
        if parts[:1] == [TENANT]:
            return self._identity(method, parts, body)
        if headers.get("Authorization") != f"Bearer {self.token}":
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                'resource="https://vault.azure.net"'
            )
            return 401, {"WWW-Authenticate": challenge}, None
        failure = self._failure(method, parsed.path)
        if failure:
            return failure.status, {}, {"error": {"code": failure.code, "message": failure.message}}
        return self._vault(method, parts, body)

    def _identity(self, method: str, parts: list[str], body: bytes) -> tuple[int, dict, Any]:
        base = f"{self.base}/{TENANT}"
        if parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return (
                200,
                {},
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "issuer": f"{base}/v2.0",
                },
            )
        form = urllib.parse.parse_qs(body.decode())
        if form.get("client_secret", [""])[0] != CLIENT_SECRET:
            return (
                401,
                {},
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                    "error_codes": [7000215],
                },
            )
        return 200, {}, {"token_type": "Bearer", "expires_in": 3600, "access_token": self.token}

    def _bundle(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        now = int(datetime.now(UTC).timestamp())
        version = entry["version"]
        return {
            "id": f"{self.base}/certificates/{name}/{version}",
            "kid": f"{self.base}/keys/{name}/{version}",
            "sid": f"{self.base}/secrets/{name}/{version}",
            "x5t": entry["info"]["x5t"],
            "cer": entry["info"]["cer"],
            "attributes": {
                "enabled": True,
                "created": now,
                "updated": now,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": entry["tags"],
            "policy": {
                "id": f"{self.base}/certificates/{name}/policy",
                "secret_props": {"contentType": entry["content_type"]},
            },
        }

    def _vault(self, method: str, parts: list[str], body: bytes) -> tuple[int, dict, Any]:
        if parts == ["certificates"] and method == "GET":
            return (
                200,
                {},
                {
                    "value": [
                        {**self._bundle(n, v[-1]), "id": f"{self.base}/certificates/{n}"}
                        for n, v in self.certificates.items()
                    ],
                    "nextLink": None,
                },
            )
        if len(parts) == 3 and parts[0] == "certificates" and parts[2] == "import":
            return self._import(parts[1], json.loads(body))
        if len(parts) == 2 and parts[0] == "certificates":
            name = parts[1]
            if name not in self.certificates:
                return (
                    404,
                    {},
                    {"error": {"code": "CertificateNotFound", "message": f"{name} not found"}},
                )
            if method == "DELETE":
                return self._delete(name)
            return 200, {}, self._bundle(name, self.certificates[name][-1])
        if len(parts) == 2 and parts[0] == "deletedcertificates" and parts[1] in self.deleted:
            return 200, {}, self.deleted[parts[1]]
        return 404, {}, {"error": {"code": "NotFound", "message": "/".join(parts)}}

    def _import(self, name: str, request: dict[str, Any]) -> tuple[int, dict, Any]:
        content_type = request.get("policy", {}).get("secret_props", {}).get("contentType", "")
        value = request["value"]
        if content_type == "application/x-pem-file":
            text = value if "-----BEGIN" in value else base64.b64decode(value).decode()
            start = text.index("-----BEGIN CERTIFICATE-----")
            cert = x509.load_pem_x509_certificates(text[start:].encode())[0]
        else:
            _, loaded, _ = pkcs12.load_key_and_certificates(base64.b64decode(value), None)
            assert loaded is not None
            cert = loaded
        entry = {
            "version": uuid.uuid4().hex,
            "info": _der_info(cert),
            "tags": request.get("tags") or {},
            "content_type": content_type or "application/x-pkcs12",
        }
        with self.lock:
            self.certificates.setdefault(name, []).append(entry)
            self.writes[name] += 1
        return 200, {}, self._bundle(name, entry)

    def _delete(self, name: str) -> tuple[int, dict, Any]:
        with self.lock:
            versions = self.certificates.pop(name)
            self.writes[f"delete:{name}"] += 1
        purge = datetime.now(UTC) + timedelta(days=90)
        self.deleted[name] = {
            **self._bundle(name, versions[-1]),
            "recoveryId": f"{self.base}/deletedcertificates/{name}",
            "deletedDate": int(datetime.now(UTC).timestamp()),
            "scheduledPurgeDate": int(purge.timestamp()),
        }
        return 200, {}, self.deleted[name]


class CloudflareFake(FakeServer):
    """Cloudflare's v4 API: token verification and a zone's custom certificates."""

    def __init__(self, ca: trustme.CA, port: int = 0) -> None:
        super().__init__(ca, port)
        self.certificates: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, str] = {}
        self.api = f"{self.base}/client/v4"

    @staticmethod
    def envelope(result: Any, **extra: Any) -> dict[str, Any]:
        return {"success": True, "errors": [], "messages": [], "result": result, **extra}

    @staticmethod
    def error(code: int, message: str) -> dict[str, Any]:
        return {
            "success": False,
            "errors": [{"code": code, "message": message}],
            "messages": [],
            "result": None,
        }

    def dispatch(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict, Any]:
        parsed = urllib.parse.urlsplit(path)
        parts = [p for p in parsed.path.split("/") if p][2:]  # after client/v4
        if headers.get("Authorization") != f"Bearer {CF_TOKEN}":
            return 401, {}, self.error(1000, "Invalid API Token")
        failure = self._failure(method, parsed.path)
        if failure:
            return failure.status, {}, self.error(int(failure.code), failure.message)
        if parts == ["user", "tokens", "verify"]:
            return 200, {}, self.envelope({"id": "token-id", "status": "active"})
        if parts[:1] != ["zones"] or parts[1] != ZONE or parts[2:3] != ["custom_certificates"]:
            return 404, {}, self.error(7003, "Could not route to " + parsed.path)
        query = urllib.parse.parse_qs(parsed.query)
        if len(parts) == 3 and method == "GET":
            return self._list(
                int(query.get("page", ["1"])[0]), int(query.get("per_page", ["20"])[0])
            )
        if len(parts) == 3 and method == "POST":
            return self._upload(uuid.uuid4().hex, json.loads(body), created=True)
        cert_id = parts[3]
        if cert_id not in self.certificates:
            return 404, {}, self.error(1404, "Custom certificate not found")
        if method == "PATCH":
            return self._upload(cert_id, json.loads(body), created=False)
        if method == "DELETE":
            with self.lock:
                del self.certificates[cert_id]
                self.writes[f"delete:{cert_id}"] += 1
            return 200, {}, self.envelope({"id": cert_id})
        return 200, {}, self.envelope(self.certificates[cert_id])

    def _list(self, page: int, per_page: int) -> tuple[int, dict, Any]:
        everything = list(self.certificates.values())
        chunk = everything[(page - 1) * per_page : page * per_page]
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(everything),
            "total_pages": max(1, -(-len(everything) // per_page)),
        }
        return 200, {}, self.envelope(chunk, result_info=info)

    def _upload(
        self, cert_id: str, request: dict[str, Any], *, created: bool
    ) -> tuple[int, dict, Any]:
        pems = x509.load_pem_x509_certificates(request["certificate"].encode())
        leaf = pems[0]
        try:
            sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            hosts = sans.value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            hosts = []
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        record = {
            "id": cert_id,
            "zone_id": ZONE,
            "hosts": hosts,
            "issuer": leaf.issuer.rfc4514_string(),
            "signature": "ECDSAWithSHA256",
            "status": "active",
            "bundle_method": request.get("bundle_method", "ubiquitous"),
            "expires_on": leaf.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
            "uploaded_on": now,
            "modified_on": now,
            "priority": 0,
            "serial": format(leaf.serial_number, "x"),
            "chain_length": len(pems),
        }
        with self.lock:
            self.certificates[cert_id] = record
            self.uploads[cert_id] = request["certificate"]
            self.writes[cert_id] += 1
        return 200, {}, self.envelope(record)
