"""Re-seal every secret so its associated data binds the row (format v2), with the same
code rotate_kek runs. Needs the KEK that sealed the values (CERTPORTAL_KEK, or
CERTPORTAL_KEK_PREVIOUS); going back re-seals them in the v1 format older code reads."""

from typing import Any

from django.db import migrations

from certportal.secrets import LEGACY_VERSION, VERSION, reseal_column, sealed_columns


def _reseal(version: str) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        for model, field in sealed_columns(apps):
            reseal_column(model, field, version=version)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("certportal", "0001_initial"),
        ("profiles", "0002_ocsp_signer"),
        ("issuance", "0004_inventory_search_trgm"),
        ("acme", "0001_initial"),
        ("alerts", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(_reseal(VERSION), _reseal(LEGACY_VERSION), elidable=False),
    ]
