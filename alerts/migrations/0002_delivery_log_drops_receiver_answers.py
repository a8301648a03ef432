"""The delivery log keeps a status and a short reason: drop the receivers' answers that
earlier versions stored after "HTTP <status> from <host>: ", and cap every reason."""

import re

from django.db import migrations

OLD_HTTP_ERROR = re.compile(r"^(HTTP \d{3} from [^\s:]+(?::\d+)?): .*$", re.DOTALL)
MAX_ERROR_CHARS = 300


def forwards(apps, schema_editor):
    Delivery = apps.get_model("alerts", "Delivery")
    rows = Delivery.objects.exclude(last_error="").values_list("pk", "last_error")
    for pk, error in rows.iterator(chunk_size=1000):
        short = OLD_HTTP_ERROR.sub(r"\1.", error)[:MAX_ERROR_CHARS]
        if short != error:
            Delivery.objects.filter(pk=pk).update(last_error=short)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True)]
