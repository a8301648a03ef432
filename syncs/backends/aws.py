"""AWS: Certificate Manager and Secrets Manager through boto3.

Clients are built per connection, region and endpoint and kept for a few minutes (one
push batch reuses them); an ``endpoint_url`` the user set is checked with the outbound
address rules first. The SDK's own retries are off: the sync item's backoff retries,
so every attempt is counted and visible. Ownership is marked with tags
(``certportal:application``, ``certportal:certificate``) and checked before any
re-import, new version or removal: an object without our tags is never touched.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

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

APP_TAG = "certportal:application"
CERT_TAG = "certportal:certificate"
CLIENT_TTL = 600.0
RETRYABLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServiceError",
    "RequestTimeout",
}

# Called with every new client (tests inject faults through botocore's event hooks).
CLIENT_HOOKS: list[Callable[[Any], None]] = []

_clients: dict[str, tuple[float, Any]] = {}
_lock = threading.Lock()


def regions(service: str) -> list[str]:
    """The regions botocore knows for the service (from its bundled data, no network)."""
    return boto3.session.Session().get_available_regions(service)


def _region(options: Mapping[str, Any], service: str) -> str:
    region = text_option(options, "region", required=True, max_length=32)
    if region not in regions(service):
        raise OptionsError({"region": f"Unknown region {region!r} for {service}."})
    return region


def _client(connection: ConnectionSpec, service: str, region: str) -> Any:
    url = connection.config.get("endpoint_url", "")
    if url:
        endpoint(url)  # checked on every use: DNS may have changed since the save
    key = hashlib.sha256(
        json.dumps(
            [service, region, dict(connection.credentials), dict(connection.config)],
            sort_keys=True,
        ).encode()
    ).hexdigest()
    with _lock:
        cached = _clients.get(key)
        if cached and time.monotonic() - cached[0] < CLIENT_TTL:
            return cached[1]
    client = _new_client(connection, service, region, url or None)
    with _lock:
        _clients[key] = (time.monotonic(), client)
    return client


def _new_client(connection: ConnectionSpec, service: str, region: str, url: str | None) -> Any:
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="certportal",
    )
    creds = {
        "aws_access_key_id": connection.credentials.get("access_key_id", ""),
        "aws_secret_access_key": connection.credentials.get("secret_access_key", ""),
    }
    role_arn = connection.config.get("role_arn", "")
    with _errors():
        if role_arn:
            sts = boto3.client(
                "sts", region_name=region, endpoint_url=url, config=config, verify=verify(), **creds
            )
            assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName="certportal-sync")
            c = assumed["Credentials"]
            creds = {
                "aws_access_key_id": c["AccessKeyId"],
                "aws_secret_access_key": c["SecretAccessKey"],
                "aws_session_token": c["SessionToken"],
            }
        client = boto3.client(
            service, region_name=region, endpoint_url=url, config=config, verify=verify(), **creds
        )
    for hook in CLIENT_HOOKS:
        hook(client)
    return client


def forget_clients() -> None:
    with _lock:
        _clients.clear()


@contextmanager
def _errors() -> Iterator[None]:
    """botocore's exceptions as SyncError with a short, showable reason."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = error.get("Code", "Error")
        message = error.get("Message", "") or str(exc)
        retryable = code in RETRYABLE_CODES or int(status or 0) >= 500
        raise SyncError(f"AWS {code}: {message}", retryable=retryable) from exc
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
        botocore.exceptions.ConnectionClosedError,
    ) as exc:
        raise SyncError(f"AWS unreachable: {exc}", retryable=True) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise SyncError(f"AWS client error: {exc}") from exc


def identity(connection: ConnectionSpec) -> str:
    """STS GetCallerIdentity: the account and principal these credentials are."""
    with _errors():
        answer = _client(connection, "sts", "us-east-1").get_caller_identity()
    return f"Authenticated as {answer.get('Arn', '?')} (account {answer.get('Account', '?')})."


def _tags(payload: Payload, options: Mapping[str, Any]) -> dict[str, str]:
    tags = dict(options.get("tags") or {})
    tags.update({APP_TAG: payload.application, CERT_TAG: payload.certificate_id})
    return tags


def _clean_tags(options: Mapping[str, Any]) -> dict[str, str]:
    tags = options.get("tags") or {}
    if not isinstance(tags, dict) or len(tags) > 40:
        raise OptionsError({"tags": "A mapping of at most 40 tags."})
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise OptionsError({"tags": "Tag keys and values are text."})
        if key.lower().startswith(("aws:", "certportal:")) or not 1 <= len(key) <= 128:
            raise OptionsError({"tags": f"Tag key {key!r} is reserved or too long."})
        if len(value) > 256 or not _TAG_CHARS.fullmatch(key + value):
            raise OptionsError({"tags": f"Tag {key!r} has characters AWS refuses."})
    return dict(tags)


_TAG_CHARS = re.compile(r"[\w\s.:/=+\-@]*")


# --- Certificate Manager ------------------------------------------------------------------


class AcmBackend:
    """AWS Certificate Manager: import with chain; a renewal re-imports into the same ARN."""

    destination = Destination.AWS_ACM
    # The Name tag: tag-value characters, up to 256.
    refused = re.compile(r"[^\w.:/=+\-@]")

    def needs_key(self, options: Mapping[str, Any]) -> bool:
        return True

    def clean_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown_options(options, ("region", "tags", "reimport_on_renewal"))
        cleaned = common_options(options)
        if not cleaned["include_private_key"]:
            raise OptionsError({"include_private_key": "ACM imports need the private key."})
        reimport = options.get("reimport_on_renewal", True)
        if not isinstance(reimport, bool):
            raise OptionsError({"reimport_on_renewal": "Must be true or false."})
        cleaned.update(
            region=_region(options, "acm"),
            tags=_clean_tags(options),
            reimport_on_renewal=reimport,
        )
        return cleaned

    def name_problem(self, template: str) -> str | None:
        name = render(template, sample_values(), self.refused)
        if len(name) > 256 or self.refused.search(name):
            return "ACM's Name tag takes up to 256 letters, digits and _ . : / = + - @."
        return None

    def test(self, connection: ConnectionSpec, options: Mapping[str, Any]) -> str:
        with _errors():
            _client(connection, "acm", options["region"]).list_certificates(MaxItems=1)
        return f"ACM in {options['region']} answers."

    def upsert(
        self,
        connection: ConnectionSpec,
        options: Mapping[str, Any],
        payload: Payload,
        current: Pushed | None,
        *,
        look_up: bool,
    ) -> Pushed:
        acm = _client(connection, "acm", options["region"])
        arn = current.external_id if current else ""
        if not arn and look_up:  # a killed attempt may have imported it already
            arn = self._find(acm, payload.application, payload.certificate_id)
        chain = list(payload.chain_pems) + ([payload.root_pem] if options["include_root"] else [])
        request: dict[str, Any] = {
            "Certificate": payload.certificate_pem.encode(),
            "PrivateKey": (payload.key_pem or "").encode(),
        }
        if chain:
            request["CertificateChain"] = "".join(chain).encode()
        tags = {**_tags(payload, options), "Name": payload.name}
        with _errors():
            if arn:
                self._check_owned(acm, arn, payload.application)
                acm.import_certificate(CertificateArn=arn, **request)
                acm.add_tags_to_certificate(
                    CertificateArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
                )
            else:
                answer = acm.import_certificate(
                    **request, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
                )
                arn = answer["CertificateArn"]
        return Pushed(arn)

    def remove(
        self, connection: ConnectionSpec, options: Mapping[str, Any], current: Pushed, app: str
    ) -> str:
        acm = _client(connection, "acm", options["region"])
        with _errors():
            self._check_owned(acm, current.external_id, app)
            acm.delete_certificate(CertificateArn=current.external_id)
        return f"Deleted {current.external_id} from ACM."

    def owned(
        self, connection: ConnectionSpec, options: Mapping[str, Any], app: str
    ) -> list[Remote]:
        acm = _client(connection, "acm", options["region"])
        found = []
        with _errors():
            for page in acm.get_paginator("list_certificates").paginate():
                for summary in page["CertificateSummaryList"]:
                    arn = summary["CertificateArn"]
                    tags = self._tags(acm, arn)
                    if tags.get(APP_TAG) == app:
                        serial = acm.describe_certificate(CertificateArn=arn)["Certificate"]
                        found.append(
                            Remote(arn, _serial(serial.get("Serial", "")), tags.get(CERT_TAG, ""))
                        )
        return found

    def _tags(self, acm: Any, arn: str) -> dict[str, str]:
        answer = acm.list_tags_for_certificate(CertificateArn=arn)
        return {t["Key"]: t.get("Value", "") for t in answer.get("Tags", [])}

    def _check_owned(self, acm: Any, arn: str, app: str) -> None:
        if self._tags(acm, arn).get(APP_TAG) != app:
            raise SyncError(f"{arn} does not carry this Application's tags; not touching it.")

    def _find(self, acm: Any, app: str, certificate_id: str) -> str:
        with _errors():
            for page in acm.get_paginator("list_certificates").paginate():
                for summary in page["CertificateSummaryList"]:
                    tags = self._tags(acm, summary["CertificateArn"])
                    if tags.get(APP_TAG) == app and tags.get(CERT_TAG) == certificate_id:
                        return str(summary["CertificateArn"])
        return ""


def _serial(value: str) -> str:
    """ACM shows serials as colon-separated hex (some compatible endpoints as a decimal
    number); the portal stores plain hex."""
    if ":" not in value and value.isdigit():
        return format(int(value), "x")
    return value.replace(":", "").lower().lstrip("0")


# --- Secrets Manager ------------------------------------------------------------------------

DEFAULT_FIELDS = {
    "certificate": "certificate",
    "private_key": "private_key",
    "certificate_chain": "certificate_chain",
    "ca_certificate": "ca_certificate",
}


class SecretsManagerBackend:
    """AWS Secrets Manager: one JSON secret per certificate lineage; a renewal writes a new
    version (AWSCURRENT) of the same secret."""

    destination = Destination.AWS_SECRETS_MANAGER
    refused = re.compile(r"[^A-Za-z0-9/_+=.@\-]")

    def needs_key(self, options: Mapping[str, Any]) -> bool:
        return bool(options.get("include_private_key", True))

    def clean_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown_options(options, ("region", "tags", "kms_key_id", "fields", "recovery_days"))
        cleaned = common_options(options)
        fields = {**DEFAULT_FIELDS, **(options.get("fields") or {})}
        if set(fields) != set(DEFAULT_FIELDS) or not all(
            isinstance(v, str) and 0 < len(v) <= 64 for v in fields.values()
        ):
            raise OptionsError({"fields": f"Names for {', '.join(DEFAULT_FIELDS)} (text)."})
        if len(set(fields.values())) != len(fields):
            raise OptionsError({"fields": "Each field needs its own name."})
        days = options.get("recovery_days", 7)
        if not isinstance(days, int) or not 7 <= days <= 30:
            raise OptionsError({"recovery_days": "Between 7 and 30 days."})
        cleaned.update(
            region=_region(options, "secretsmanager"),
            tags=_clean_tags(options),
            kms_key_id=text_option(options, "kms_key_id", max_length=2048),
            fields=fields,
            recovery_days=days,
        )
        return cleaned

    def name_problem(self, template: str) -> str | None:
        name = render(template, sample_values(), self.refused)
        if len(name) > 512 or self.refused.search(name):
            return "Secret names take up to 512 letters, digits and / _ + = . @ -."
        return None

    def test(self, connection: ConnectionSpec, options: Mapping[str, Any]) -> str:
        with _errors():
            _client(connection, "secretsmanager", options["region"]).list_secrets(MaxResults=1)
        return f"Secrets Manager in {options['region']} answers."

    def _value(self, options: Mapping[str, Any], payload: Payload) -> str:
        fields = options["fields"]
        value = {
            fields["certificate"]: payload.certificate_pem,
            fields["certificate_chain"]: "".join(payload.chain_pems),
        }
        if options["include_private_key"] and payload.key_pem:
            value[fields["private_key"]] = payload.key_pem
        if options["include_root"]:
            value[fields["ca_certificate"]] = payload.root_pem
        return json.dumps(value)

    def upsert(
        self,
        connection: ConnectionSpec,
        options: Mapping[str, Any],
        payload: Payload,
        current: Pushed | None,
        *,
        look_up: bool,
    ) -> Pushed:
        sm = _client(connection, "secretsmanager", options["region"])
        secret_id = current.external_id if current else payload.name
        value = self._value(options, payload)
        tags = [{"Key": k, "Value": v} for k, v in _tags(payload, options).items()]
        with _errors():
            existing = self._describe(sm, secret_id)
            if existing is None:
                extra = {"KmsKeyId": options["kms_key_id"]} if options["kms_key_id"] else {}
                answer = sm.create_secret(Name=payload.name, SecretString=value, Tags=tags, **extra)
                return Pushed(answer["ARN"], answer.get("VersionId", ""))
            if _tag_map(existing).get(APP_TAG) != payload.application:
                raise SyncError(f"Secret {secret_id} exists and is not this Application's.")
            answer = sm.put_secret_value(SecretId=existing["ARN"], SecretString=value)
            sm.tag_resource(SecretId=existing["ARN"], Tags=tags)
        return Pushed(answer["ARN"], answer.get("VersionId", ""))

    def _describe(self, sm: Any, secret_id: str) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = sm.describe_secret(SecretId=secret_id)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        if answer.get("DeletedDate"):
            raise SyncError(f"Secret {secret_id} is scheduled for deletion; restore it first.")
        return answer

    def remove(
        self, connection: ConnectionSpec, options: Mapping[str, Any], current: Pushed, app: str
    ) -> str:
        sm = _client(connection, "secretsmanager", options["region"])
        with _errors():
            existing = self._describe(sm, current.external_id)
            if existing is None:
                return f"Secret {current.external_id} was already gone."
            if _tag_map(existing).get(APP_TAG) != app:
                raise SyncError(f"Secret {current.external_id} is not this Application's.")
            sm.delete_secret(
                SecretId=current.external_id, RecoveryWindowInDays=options["recovery_days"]
            )
        return (
            f"Secret {current.external_id} scheduled for deletion "
            f"(recoverable for {options['recovery_days']} days)."
        )

    def owned(
        self, connection: ConnectionSpec, options: Mapping[str, Any], app: str
    ) -> list[Remote]:
        sm = _client(connection, "secretsmanager", options["region"])
        found = []
        with _errors():
            pages = sm.get_paginator("list_secrets").paginate(
                Filters=[{"Key": "tag-key", "Values": [APP_TAG]}]
            )
            for page in pages:
                for secret in page["SecretList"]:
                    tags = _tag_map(secret)
                    if tags.get(APP_TAG) != app:
                        continue
                    found.append(Remote(secret["ARN"], "", tags.get(CERT_TAG, "")))
        return found


def _tag_map(described: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in described.get("Tags", [])}


ACM = AcmBackend()
SECRETS_MANAGER = SecretsManagerBackend()
