"""Trigram GIN index for the inventory's substring search (PostgreSQL only).

search_text holds the lowercased CN and SANs; inventory.search_filter() queries it with
LIKE '%term%', which a gin_trgm_ops index serves. SQLite (the embedded mode) has no
equivalent and scans, which is fine at its scale. Serial and fingerprint searches use
the btree indexes (cert_app_serial_idx, unique_fingerprint).
"""

from django.db import migrations


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS cert_search_trgm_idx ON issuance_certificate "
        "USING gin (search_text gin_trgm_ops)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS cert_search_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [("issuance", "0003_certificate_renewal")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
