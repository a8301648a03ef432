"""Re-seal every secret at rest under the current KEK, in the current format.

Rotation: set CERTPORTAL_KEK to the new key and CERTPORTAL_KEK_PREVIOUS to the old one,
run this command, then drop the old key from CERTPORTAL_KEK_PREVIOUS. Values sealed in
the older format (bound to their column but not their row) are re-sealed bound to their
row as well. Rows are re-sealed in batches, each row locked while it is rewritten;
running it twice does no harm.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand

from certportal import generation
from certportal.secrets import keyring, reseal_column, sealed_columns


class Command(BaseCommand):
    help = "Re-encrypt all secrets at rest under the current CERTPORTAL_KEK."

    def handle(self, *args: Any, **options: Any) -> None:
        ring = keyring()
        total = 0
        for model, field in sealed_columns(apps):
            count = reseal_column(model, field, ring)
            generation.changed()  # processes holding a CA read before this re-read it
            total += count
            self.stdout.write(f"{model._meta.label}.{field.name}: {count} re-sealed")
        self.stdout.write(
            self.style.SUCCESS(f"{total} secrets now sealed under key {ring.current_id}")
        )
