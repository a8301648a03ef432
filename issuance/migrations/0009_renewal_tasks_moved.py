"""The renewal sweep's task moved to issuance.renewal.tasks: point an installed schedule
at it, so a deployment that does not run install_schedules again keeps renewing."""

from django.db import migrations

OLD = "issuance.tasks.renew_due_certificates"
NEW = "issuance.renewal.tasks.renew_due_certificates"


def forwards(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(func=OLD).update(func=NEW)


def backwards(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(func=NEW).update(func=OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
        ("issuance", "0008_renewal_settings"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
