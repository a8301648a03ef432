from django.db import models


class Trigger(models.TextChoices):
    ANY = "any", "Every request"
    CONDITIONS = "conditions", "Requests matching any of the conditions"


class Verdict(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
