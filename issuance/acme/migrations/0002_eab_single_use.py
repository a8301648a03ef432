"""EAB credentials become single-use unless created as reusable.

Credentials that exist already were handed out when any credential could bind many
accounts, and may sit in several clients' configurations: they stay reusable (an Admin
sees that in the list and can revoke them). bound_at records when a credential first
bound an account; it is filled in from the accounts already bound."""

from django.db import migrations, models
from django.db.models import Min, OuterRef, Subquery


def fill_bound_at(apps, schema_editor):
    key_model = apps.get_model("acme", "ExternalAccountKey")
    account_model = apps.get_model("acme", "Account")
    first = (
        account_model.objects.filter(eab_key=OuterRef("pk"))
        .order_by()
        .values("eab_key")
        .annotate(first=Min("created_at"))
        .values("first")
    )
    key_model.objects.update(bound_at=Subquery(first))


class Migration(migrations.Migration):
    dependencies = [
        ("acme", "0001_initial"),
    ]

    operations = [
        # default=True fills the existing rows; new credentials default to single-use.
        migrations.AddField(
            model_name="externalaccountkey",
            name="reusable",
            field=models.BooleanField(default=True),
        ),
        migrations.AlterField(
            model_name="externalaccountkey",
            name="reusable",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="externalaccountkey",
            name="bound_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(fill_bound_at, migrations.RunPython.noop),
    ]
