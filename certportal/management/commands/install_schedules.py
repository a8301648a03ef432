from typing import Any

from django.core.management.base import BaseCommand

from certportal import schedules


class Command(BaseCommand):
    help = "Install or update the background schedules declared in certportal.schedules."

    def handle(self, *args: Any, **options: Any) -> None:
        names = schedules.install()
        self.stdout.write(f"schedules installed: {', '.join(names)}")
