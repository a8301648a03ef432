"""Re-seal every secret at rest under the current KEK.

Rotation: set CERTPORTAL_KEK to the new key and CERTPORTAL_KEK_PREVIOUS to the old one,
run this command, then drop the old key from CERTPORTAL_KEK_PREVIOUS. Rows are re-sealed
in batches, each row locked while it is rewritten; running it twice does no harm.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from certportal import generation
from certportal.secrets import SealedField, keyring, seal, sealed_key_id, unseal

BATCH = 500


class Command(BaseCommand):
    help = "Re-encrypt all secrets at rest under the current CERTPORTAL_KEK."

    def handle(self, *args: Any, **options: Any) -> None:
        ring = keyring()
        total = 0
        for model in apps.get_models():
            for field in model._meta.get_fields():
                if isinstance(field, SealedField):
                    count = self._rotate(model, field, ring)
                    total += count
                    self.stdout.write(f"{model._meta.label}.{field.name}: {count} re-sealed")
        self.stdout.write(
            self.style.SUCCESS(f"{total} secrets now sealed under key {ring.current_id}")
        )

    def _rotate(self, model: Any, field: SealedField, ring: Any) -> int:
        label = field.label_for(model)
        stale = model._default_manager.exclude(**{field.name: ""}).exclude(
            **{f"{field.name}__startswith": f"v1:{ring.current_id}:"}
        )
        count = 0
        while True:
            with transaction.atomic():
                rows = list(stale.select_for_update().values_list("pk", field.name)[:BATCH])
                for pk, sealed in rows:
                    if sealed_key_id(sealed) == ring.current_id:
                        continue
                    fresh = seal(unseal(sealed, label=label, ring=ring), label=label, ring=ring)
                    model._default_manager.filter(pk=pk).update(**{field.name: fresh})
                    count += 1
                generation.changed()  # processes holding a CA read before this re-read it
            if len(rows) < BATCH:
                return count
