"""The roles a member holds in an Application.

They live here, below every app, because the permission map (certportal.permissions)
and API credentials are built on them; ``applications.choices`` re-exports them.
"""

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    OPERATOR = "operator", "Operator"
    AUDITOR = "auditor", "Auditor"
