"""Azure Key Vault through azure-identity and azure-keyvault-certificates.

A certificate is imported as PKCS#12 (or PEM) under a name from the sync's template;
a renewal imports into the same name, which makes a new version. Ownership is marked
with the certificate's tags and checked before a new version or a deletion. Deletion
is Key Vault's delete: with soft delete on (the default) the certificate stays
recoverable until the vault purges it, and the item's message says so.

The vault URL and an authority host the user set are checked with the outbound address
rules before a client is built. Key Vault answers the first request with a 401
challenge naming the resource to ask a token for; the SDK verifies that resource
against the vault's domain, which holds only for Azure's own vault domains, so for any
other (compatible, lab) host that check is off and the outbound rules are the guard.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import (
    CertificateClient,
    CertificateContentType,
    CertificatePolicy,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

from certportal import outbound
from pki import keys
from syncs.backends.base import (
    ConnectionSpec,
    OptionsError,
    Payload,
    Pushed,
    Remote,
    SyncError,
    common_options,
    endpoint,
    render,
    sample_values,
    text_option,
    unknown_options,
    verify,
)
from syncs.choices import Destination

APP_TAG = "certportal-application"
CERT_TAG = "certportal-certificate"
VAULT_SCOPE = "https://vault.azure.net/.default"
AZURE_VAULT_DOMAINS = (
    ".vault.azure.net",
    ".vault.azure.cn",
    ".vault.usgovcloudapi.net",
    ".vault.microsoftazure.de",
    ".managedhsm.azure.net",
)
FORMATS = ("pkcs12", "pem")


def _credential(connection: ConnectionSpec) -> ClientSecretCredential:
    creds = connection.credentials
    kwargs: dict[str, Any] = {"connection_verify": verify(), "retry_total": 0}
    authority = connection.config.get("authority_host", "")
    if authority:
        kwargs.update(authority=endpoint(authority), disable_instance_discovery=True)
    return ClientSecretCredential(
        creds.get("tenant_id", ""),
        creds.get("client_id", ""),
        creds.get("client_secret", ""),
        **kwargs,
    )


def _client(connection: ConnectionSpec, options: Mapping[str, Any]) -> CertificateClient:
    vault = endpoint(options["vault_url"])
    host = (urllib.parse.urlsplit(vault).hostname or "").lower()
    return CertificateClient(
        vault,
        _credential(connection),
        verify_challenge_resource=host.endswith(AZURE_VAULT_DOMAINS),
        connection_verify=verify(),
        retry_total=0,
    )


@contextmanager
def _errors() -> Iterator[None]:
    """Azure's exceptions as SyncError with the service's own message."""
    try:
        yield
    except ClientAuthenticationError as exc:
        raise SyncError(f"Azure authentication failed: {_message(exc)}") from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise SyncError(f"Azure unreachable: {exc}", retryable=True) from exc
    except HttpResponseError as exc:
        status = exc.status_code or 0
        raise SyncError(
            f"Key Vault {status}: {_message(exc)}", retryable=status >= 500 or status == 429
        ) from exc


def _message(exc: HttpResponseError) -> str:
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "message", None):
        return f"{error.code}: {error.message}" if error.code else str(error.message)
    return str(exc.message or exc).splitlines()[0]


def identity(connection: ConnectionSpec) -> str:
    """A token for Key Vault from the tenant: the credentials work."""
    with _errors():
        _credential(connection).get_token(VAULT_SCOPE)
    return (
        f"Token issued for client {connection.credentials.get('client_id', '?')} "
        f"in tenant {connection.credentials.get('tenant_id', '?')}."
    )


class KeyVaultBackend:
    """Azure Key Vault certificates; a renewal is a new version of the same name."""

    destination = Destination.AZURE_KEY_VAULT
    refused = re.compile(r"[^0-9A-Za-z\-]")

    def needs_key(self, options: Mapping[str, Any]) -> bool:
        return True

    def clean_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown_options(options, ("vault_url", "format"))
        cleaned = common_options(options)
        if not cleaned["include_private_key"]:
            raise OptionsError({"include_private_key": "Key Vault imports need the private key."})
        vault = text_option(options, "vault_url", required=True, max_length=500)
        if not vault.startswith("https://"):
            raise OptionsError({"vault_url": "An https:// vault URL."})
        problem = outbound.url_problem(vault)
        if problem:
            raise OptionsError({"vault_url": problem})
        fmt = options.get("format", "pkcs12")
        if fmt not in FORMATS:
            raise OptionsError({"format": "pkcs12 or pem."})
        cleaned.update(vault_url=vault.rstrip("/"), format=fmt)
        return cleaned

    def name_problem(self, template: str) -> str | None:
        name = render(template, sample_values(), self.refused)
        if len(name) > 127 or self.refused.search(name):
            return "Key Vault names take up to 127 letters, digits and hyphens."
        return None

    def test(self, connection: ConnectionSpec, options: Mapping[str, Any]) -> str:
        with _errors():
            next(iter(_client(connection, options).list_properties_of_certificates()), None)
        return f"{options['vault_url']} answers."

    def _body(self, options: Mapping[str, Any], payload: Payload) -> tuple[bytes, str]:
        chain = list(payload.chain_pems) + ([payload.root_pem] if options["include_root"] else [])
        if options["format"] == "pem":
            key = (payload.key_pem or "").strip() + "\n"
            pem = key + payload.certificate_pem + "".join(chain)
            return pem.encode(), CertificateContentType.pem
        private_key = keys.load_private_key((payload.key_pem or "").encode())
        cert = x509.load_pem_x509_certificate(payload.certificate_pem.encode())
        cas = [x509.load_pem_x509_certificate(c.encode()) for c in chain]
        pfx = pkcs12.serialize_key_and_certificates(
            None, private_key, cert, cas or None, NoEncryption()
        )
        return pfx, CertificateContentType.pkcs12

    def upsert(
        self,
        connection: ConnectionSpec,
        options: Mapping[str, Any],
        payload: Payload,
        current: Pushed | None,
        *,
        look_up: bool,
    ) -> Pushed:
        client = _client(connection, options)
        name = current.external_id if current else payload.name
        body, content_type = self._body(options, payload)
        with _errors():
            self._check_owned(client, name, payload.application, must_exist=current is not None)
            imported = client.import_certificate(
                name,
                body,
                policy=CertificatePolicy(content_type=content_type),
                tags={APP_TAG: payload.application, CERT_TAG: payload.certificate_id},
                enabled=True,
            )
        version = imported.properties.version if imported.properties else ""
        return Pushed(name, version or "")

    def _check_owned(
        self, client: CertificateClient, name: str, app: str, *, must_exist: bool
    ) -> None:
        """Refuse a name that holds someone else's certificate (a first push may meet one
        we made on a lost attempt: ours by tag, so a new version is fine)."""
        try:
            existing = client.get_certificate(name)
        except ResourceNotFoundError:
            if must_exist:
                return  # gone (deleted by hand): importing recreates it
            return
        if _tags_of(existing).get(APP_TAG) != app:
            raise SyncError(f"Key Vault certificate {name} exists and is not this Application's.")

    def remove(
        self, connection: ConnectionSpec, options: Mapping[str, Any], current: Pushed, app: str
    ) -> str:
        client = _client(connection, options)
        name = current.external_id
        with _errors():
            try:
                existing = client.get_certificate(name)
            except ResourceNotFoundError:
                return f"Key Vault certificate {name} was already gone."
            if _tags_of(existing).get(APP_TAG) != app:
                raise SyncError(f"Key Vault certificate {name} is not this Application's.")
            deleted = client.begin_delete_certificate(name).result()
        if getattr(deleted, "recovery_id", None):
            return (
                f"Deleted {name} from Key Vault (soft delete: recoverable until "
                f"{deleted.scheduled_purge_date or 'the vault purges it'})."
            )
        return f"Deleted {name} from Key Vault."

    def owned(
        self, connection: ConnectionSpec, options: Mapping[str, Any], app: str
    ) -> list[Remote]:
        client = _client(connection, options)
        found = []
        with _errors():
            for props in client.list_properties_of_certificates():
                tags = props.tags or {}
                if tags.get(APP_TAG) == app and props.name:
                    found.append(Remote(props.name, "", tags.get(CERT_TAG, "")))
        return found


def _tags_of(certificate: Any) -> dict[str, str]:
    properties = certificate.properties
    return dict(properties.tags or {}) if properties is not None else {}


KEY_VAULT = KeyVaultBackend()
