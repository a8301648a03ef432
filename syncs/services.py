"""Sync verbs: configure connections and syncs, and the manual actions (sync now,
re-push, remove, drift check, delete). Pushing itself happens in workers
(``syncs.lifecycle``); these verbs only write rows and queue that work."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from applications.models import Application
from certportal import outbound
from certportal.event_types import EventType
from certportal.events import Actor, record
from issuance.models import Certificate
from profiles.models import CertificateProfile
from syncs import selection
from syncs.backends import for_destination
from syncs.backends import test_connection as backend_test_connection
from syncs.backends.base import (
    ConnectionSpec,
    OptionsError,
    Pushed,
    SyncError,
    template_problem,
)
from syncs.choices import (
    DESTINATION_KIND,
    ConnectionKind,
    Destination,
    ItemStatus,
    RunTrigger,
    Selector,
    Want,
)
from syncs.models import Connection, Sync, SyncItem, SyncRun

logger = logging.getLogger(__name__)

# The credential fields of each kind (all required) and its optional plain settings.
CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    ConnectionKind.AWS: ("access_key_id", "secret_access_key"),
    ConnectionKind.AZURE: ("tenant_id", "client_id", "client_secret"),
    ConnectionKind.CLOUDFLARE: ("api_token",),
}
CONFIG_FIELDS: dict[str, tuple[str, ...]] = {
    ConnectionKind.AWS: ("endpoint_url", "role_arn"),
    ConnectionKind.AZURE: ("authority_host",),
    ConnectionKind.CLOUDFLARE: ("api_base_url",),
}
URL_FIELDS = ("endpoint_url", "authority_host", "api_base_url")
DEFAULT_TEMPLATES: dict[str, str] = {
    Destination.AWS_ACM: "{application}-{common_name}",
    Destination.AWS_SECRETS_MANAGER: "certportal/{application}/{common_name}",
    Destination.AZURE_KEY_VAULT: "{application}-{common_name}",
    Destination.CLOUDFLARE: "{application}-{common_name}",
}


def spec_of(connection: Connection) -> ConnectionSpec:
    return ConnectionSpec(connection.kind, connection.credential_values(), dict(connection.config))


# --- Connections ---------------------------------------------------------------------------


def clean_connection(
    kind: str, credentials: Mapping[str, Any] | None, config: Mapping[str, Any], *, new: bool
) -> tuple[dict[str, str] | None, dict[str, str]]:
    """Typed credentials (None: keep the stored ones) and settings, or ValidationError."""
    if kind not in CREDENTIAL_FIELDS:
        raise ValidationError({"kind": "Unknown connection kind."})
    errors: dict[str, str] = {}
    creds: dict[str, str] | None = None
    if credentials is not None or new:
        creds = {}
        given = dict(credentials or {})
        for name in CREDENTIAL_FIELDS[kind]:
            value = given.pop(name, "")
            if not isinstance(value, str) or not value.strip() or len(value) > 4096:
                errors[f"credentials.{name}"] = "Required."
            else:
                creds[name] = value.strip()
        if given:
            errors["credentials"] = f"Unknown credential field {sorted(given)[0]!r}."
    plain: dict[str, str] = {}
    for name, value in config.items():
        if name not in CONFIG_FIELDS[kind]:
            errors[name] = "Not a setting of this kind of connection."
        elif value not in (None, ""):
            plain[name] = str(value).strip()
    for name in URL_FIELDS:
        if plain.get(name):
            problem = outbound.url_problem(plain[name])
            if problem:
                errors[name] = problem
    if errors:
        raise ValidationError(errors)
    return creds, plain


def save_connection(
    application: Application,
    *,
    name: str,
    kind: str,
    credentials: Mapping[str, Any] | None,
    config: Mapping[str, Any],
    actor: Actor,
    connection: Connection | None = None,
) -> Connection:
    """Create or update a connection; credentials=None keeps the stored ones."""
    if connection is not None and connection.kind != kind:
        raise ValidationError({"kind": "A connection's kind cannot change."})
    creds, plain = clean_connection(kind, credentials, config, new=connection is None)
    same_name = Connection.objects.filter(application=application, name=name)
    if connection is not None:
        same_name = same_name.exclude(pk=connection.pk)
    if same_name.exists():
        raise ValidationError({"name": "A connection of that name exists."})
    connection = connection or Connection(application=application, kind=kind)
    connection.name, connection.config = name, plain
    with transaction.atomic():
        if connection.pk is None:
            connection.save()  # the sealed credentials bind the row's id: insert first
        if creds is not None:
            connection.set_credential_values(creds)
        connection.save()
        record(
            EventType.SYNC_CONNECTION_SAVED,
            actor=actor,
            obj=connection,
            application=application,
            # Never the credentials: only which fields changed.
            data={
                "name": name,
                "kind": kind,
                "config": plain,
                "credentials_set": creds is not None,
            },
            outbox=False,
        )
    return connection


def test_connection(connection: Connection, *, actor: Actor) -> tuple[bool, str]:
    """Ask the provider who these credentials are; the answer is stored and audited."""
    try:
        ok, message = True, backend_test_connection(connection.kind, spec_of(connection))
    except SyncError as exc:
        ok, message = False, str(exc)
    message = message[:300]
    with transaction.atomic():
        Connection.objects.filter(pk=connection.pk).update(
            last_tested_at=timezone.now(), last_test_ok=ok, last_test_message=message
        )
        record(
            EventType.SYNC_CONNECTION_TESTED,
            actor=actor,
            obj=connection,
            application=connection.application,
            data={"name": connection.name, "ok": ok, "message": message},
            outbox=False,
        )
    return ok, message


def delete_connection(connection: Connection, *, remove_remote: bool, actor: Actor) -> bool:
    """Delete a connection and its syncs. With remove_remote, what the syncs pushed is
    removed first (by workers) and the records go once it is gone. Returns whether the
    connection is gone now."""
    with transaction.atomic():
        for sync in connection.syncs.select_for_update():
            delete_sync(sync, remove_remote=remove_remote, actor=actor)
        if connection.syncs.exists():
            Connection.objects.filter(pk=connection.pk).update(deleting=True)
            return False
        record(
            EventType.SYNC_CONNECTION_DELETED,
            actor=actor,
            obj=connection,
            application=connection.application,
            data={"name": connection.name},
            outbox=False,
        )
        connection.delete()
    return True


# --- Syncs -----------------------------------------------------------------------------


@dataclass
class SyncSpec:
    """What a sync is, as forms and the API give it."""

    name: str
    destination: str
    connection: Connection
    selector: str = Selector.PROFILE
    profile: CertificateProfile | None = None
    certificate: Certificate | None = None
    name_pattern: str = ""
    name_template: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    is_active: bool = True


def clean_sync(application: Application, spec: SyncSpec) -> dict[str, Any]:
    """The destination's cleaned options, or a ValidationError naming the field."""
    errors: dict[str, str] = {}
    if spec.destination not in Destination.values:
        raise ValidationError({"destination": "Unknown destination."})
    if spec.connection.application_id != application.pk:
        errors["connection"] = "Unknown connection."
    elif spec.connection.kind != DESTINATION_KIND[spec.destination]:
        errors["connection"] = (
            f"{spec.destination} needs a {DESTINATION_KIND[spec.destination]} connection."
        )
    errors.update(_selector_errors(application, spec))
    backend = for_destination(spec.destination)
    template = spec.name_template or DEFAULT_TEMPLATES[spec.destination]
    problem = template_problem(template) or backend.name_problem(template)
    if problem:
        errors["name_template"] = problem
    options: dict[str, Any] = {}
    try:
        options = backend.clean_options(spec.options)
    except OptionsError as exc:
        errors.update({f"options.{k}": v for k, v in exc.errors.items()})
    if errors:
        raise ValidationError(errors)
    spec.name_template = template
    return options


def _selector_errors(application: Application, spec: SyncSpec) -> dict[str, str]:
    if spec.selector == Selector.PROFILE:
        if spec.profile is None or not application.profiles.filter(pk=spec.profile.pk).exists():
            return {"profile": "Choose a profile attached to this Application."}
    elif spec.selector == Selector.LINEAGE:
        if spec.certificate is None or spec.certificate.application_id != application.pk:
            return {"certificate": "Choose a certificate of this Application."}
    elif spec.selector == Selector.PATTERN:
        if not spec.name_pattern.strip():
            return {"name_pattern": "Give a name pattern, e.g. *.example.com."}
    else:
        return {"selector": "Unknown selector."}
    return {}


def save_sync(
    application: Application, spec: SyncSpec, *, actor: Actor, sync: Sync | None = None
) -> Sync:
    """Validate and store a sync, then plan its items (pushed by workers)."""
    options = clean_sync(application, spec)
    same_name = Sync.objects.filter(application=application, name=spec.name)
    if sync is not None:
        same_name = same_name.exclude(pk=sync.pk)
    if same_name.exists():
        raise ValidationError({"name": "A sync of that name exists."})
    sync = sync or Sync(application=application)
    sync.name, sync.destination, sync.connection = spec.name, spec.destination, spec.connection
    sync.selector, sync.options, sync.name_template = spec.selector, options, spec.name_template
    sync.profile = spec.profile if spec.selector == Selector.PROFILE else None
    sync.certificate = spec.certificate if spec.selector == Selector.LINEAGE else None
    sync.name_pattern = spec.name_pattern if spec.selector == Selector.PATTERN else ""
    sync.is_active = spec.is_active
    from syncs import lifecycle

    with transaction.atomic():
        sync.save()
        queued = lifecycle.plan(sync) if sync.is_active else 0
        record(
            EventType.SYNC_SAVED,
            actor=actor,
            obj=sync,
            application=application,
            data={
                "name": sync.name,
                "destination": sync.destination,
                "connection": sync.connection.name,
                "selector": sync.selector,
                "options": options,
                "queued": queued,
            },
            outbox=False,
        )
    return sync


def preview(sync: Sync | SyncSpec, application: Application) -> list[dict[str, Any]]:
    """What a sync (saved or not) would push now, and which of those it cannot."""
    probe = sync if isinstance(sync, Sync) else _unsaved(application, sync)
    rows = []
    for certificate in selection.selected(probe)[:500]:
        rows.append(
            {
                "certificate": str(certificate.pk),
                "common_name": certificate.common_name,
                "serial_number": certificate.serial_number,
                "not_after": certificate.not_after,
                "syncable": selection.syncable(probe, certificate),
            }
        )
    return rows


def _unsaved(application: Application, spec: SyncSpec) -> Sync:
    options = clean_sync(application, spec)
    return Sync(
        application=application,
        destination=spec.destination,
        connection=spec.connection,
        selector=spec.selector,
        profile=spec.profile,
        certificate=spec.certificate,
        name_pattern=spec.name_pattern,
        name_template=spec.name_template,
        options=options,
    )


def delete_sync(sync: Sync, *, remove_remote: bool, actor: Actor) -> bool:
    """Forget a sync. With remove_remote, workers remove what it pushed first and the
    record goes after (deleting=True until then). Returns whether it is gone now."""
    from syncs import lifecycle

    with transaction.atomic():
        record(
            EventType.SYNC_DELETED,
            actor=actor,
            obj=sync,
            application=sync.application,
            data={"name": sync.name, "remove_remote": remove_remote},
            outbox=False,
        )
        if remove_remote and sync.items.exclude(external_id="").exists():
            Sync.objects.filter(pk=sync.pk).update(is_active=False, deleting=True)
            queued = lifecycle.mark_absent(sync.items.exclude(external_id=""))
            logger.info("sync %s: removing %s items before deletion", sync.pk, queued)
            return False
        sync.delete()
    return True


# --- Manual actions --------------------------------------------------------------------------


def _run(
    sync: Sync, trigger: str, actor: Actor, queued: int, report: dict | None = None
) -> SyncRun:
    return SyncRun.objects.create(
        sync=sync,
        trigger=trigger,
        actor_label=actor.describe(),
        queued=queued,
        report=report or {},
    )


def run_now(sync: Sync, *, actor: Actor) -> SyncRun:
    """Sync now: pick up newly matching certificates and re-queue anything not in sync."""
    from syncs import lifecycle

    with transaction.atomic():
        queued = lifecycle.plan(sync, retry_failed=True)
        run = _run(sync, RunTrigger.MANUAL, actor, queued)
        record(
            EventType.SYNC_RUN_REQUESTED,
            actor=actor,
            obj=sync,
            application=sync.application,
            data={"name": sync.name, "queued": queued},
            outbox=False,
        )
    return run


def repush(item: SyncItem, *, actor: Actor) -> None:
    """Push one certificate again, whatever the destination is believed to hold."""
    from syncs import lifecycle

    if not selection.syncable(item.sync, item.certificate):
        raise ValidationError(selection.NOT_SYNCABLE_NO_KEY)
    with transaction.atomic():
        lifecycle.requeue(SyncItem.objects.filter(pk=item.pk), want=Want.PRESENT, force=True)
        _run(item.sync, RunTrigger.REPUSH, actor, 1)
        record(
            EventType.SYNC_ITEM_REPUSH_REQUESTED,
            actor=actor,
            obj=item.sync,
            application=item.sync.application,
            data={"certificate": str(item.certificate_id)},
            outbox=False,
        )


def remove(item: SyncItem, *, actor: Actor) -> None:
    """Remove one certificate from the destination (a worker does it)."""
    from syncs import lifecycle

    with transaction.atomic():
        lifecycle.mark_absent(SyncItem.objects.filter(pk=item.pk))
        _run(item.sync, RunTrigger.REMOVE, actor, 1)
        record(
            EventType.SYNC_ITEM_REMOVE_REQUESTED,
            actor=actor,
            obj=item.sync,
            application=item.sync.application,
            data={"certificate": str(item.certificate_id)},
            outbox=False,
        )


def check_drift(sync: Sync, *, repair: bool, actor: Actor) -> SyncRun:
    """Read what the destination holds under our marks and compare with what was pushed:
    missing (pushed, now gone), changed (holds another certificate), unknown (ours by tag,
    no item). With repair, missing and changed items are queued to be pushed again."""
    from syncs import lifecycle

    backend = for_destination(sync.destination)
    try:
        remote = backend.owned(spec_of(sync.connection), sync.options, sync.application.name)
    except SyncError as exc:
        report: dict[str, Any] = {"error": str(exc)}
        remote = None
    if remote is not None:
        report = _compare(sync, remote)
    with transaction.atomic():
        queued = 0
        if repair and remote is not None:
            ids = report["missing"] + report["changed"]
            queued = lifecycle.requeue(
                sync.items.filter(certificate_id__in=[i["certificate"] for i in ids]),
                want=Want.PRESENT,
                force=True,
                forget_external=[i["certificate"] for i in report["missing"]],
            )
        report["repaired"] = queued
        run = _run(sync, RunTrigger.DRIFT, actor, queued, report)
        record(
            EventType.SYNC_DRIFT_CHECKED,
            actor=actor,
            obj=sync,
            application=sync.application,
            data={k: len(v) if isinstance(v, list) else v for k, v in report.items()},
            outbox=False,
        )
    return run


def _compare(sync: Sync, remote: list[Any]) -> dict[str, Any]:
    by_id = {r.external_id: r for r in remote}
    missing, changed = [], []
    known = set()
    synced = sync.items.filter(status=ItemStatus.SYNCED, want=Want.PRESENT).select_related(
        "certificate"
    )
    for item in synced:
        known.add(item.external_id)
        found = by_id.get(item.external_id)
        row = {"certificate": str(item.certificate_id), "external_id": item.external_id}
        if found is None:
            missing.append(row)
        elif _differs(found, item):
            changed.append(row)
    others = set(sync.items.exclude(status=ItemStatus.SYNCED).values_list("external_id", flat=True))
    unknown = [
        {"external_id": r.external_id} for r in remote if r.external_id not in known | others
    ]
    return {"missing": missing, "changed": changed, "unknown": unknown, "checked": len(remote)}


def _differs(found: Any, item: SyncItem) -> bool:
    if found.certificate_id and found.certificate_id != str(item.certificate_id):
        return True
    ours = item.certificate.serial_number.lower().lstrip("0")
    return bool(found.serial_number) and found.serial_number.lower().lstrip("0") != ours


def pushed_of(item: SyncItem) -> Pushed | None:
    return Pushed(item.external_id, item.external_version) if item.external_id else None
