"""Create the cluster admin, or reset its password: CIAO_ADMIN_PASSWORD (never a fixed one)."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create or reset the local cluster's admin from $CIAO_ADMIN_PASSWORD."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, username: str, **options) -> None:
        password = os.environ.get("CIAO_ADMIN_PASSWORD", "")
        if len(password) < 12:
            raise CommandError("CIAO_ADMIN_PASSWORD must hold a generated password (12+ chars)")
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
