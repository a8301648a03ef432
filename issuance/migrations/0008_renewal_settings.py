"""Take over RenewalSettings from alerts with its rows: adopt the existing table in the
migration state, rename it to issuance's name, and move its content type (and with it
its permissions) so nothing points at an alerts model that no longer exists."""

import django.db.models.deletion
from django.db import migrations, models


def move_content_type(apps, schema_editor, source="alerts", target="issuance"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label=target, model="renewalsettings").exists():
        ContentType.objects.filter(app_label=source, model="renewalsettings").update(
            app_label=target
        )


def move_content_type_back(apps, schema_editor):
    move_content_type(apps, schema_editor, source="issuance", target="alerts")


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0003_renewal_settings_moved_to_issuance"),
        ("applications", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("issuance", "0007_blocked_key"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="RenewalSettings",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("auto_renew", models.BooleanField(default=True)),
                        ("renew_days_before", models.PositiveIntegerField(blank=True, null=True)),
                        (
                            "key_mode",
                            models.CharField(
                                choices=[
                                    ("new", "New key (generated and held by the portal)"),
                                    ("reuse", "Same key (held by the portal)"),
                                ],
                                default="new",
                                max_length=8,
                            ),
                        ),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "application",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="renewal_settings",
                                to="applications.application",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "renewal settings",
                        "db_table": "alerts_renewalsettings",
                    },
                ),
            ],
        ),
        migrations.AlterModelTable(name="renewalsettings", table=None),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
