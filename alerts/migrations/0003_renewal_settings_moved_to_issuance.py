"""RenewalSettings now belongs to issuance, where renewal lives. Only the migration state
changes here; issuance's 0008 takes the table over with its rows."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0002_delivery_log_drops_receiver_answers"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="RenewalSettings")],
        ),
    ]
