"""When a user's access ends, its credentials go with it (docs/security.md,
"Authentication hardening"):

- a password change (`set_password` then `save`, as every Django tool does) or a
  deactivation (`is_active=False`) deletes the user's API tokens and closes its open
  websockets (4401); its sessions end by themselves (Django checks the password hash in
  every session, and refuses inactive users);
- a deleted token (revoked with `DELETE /api/v1/auth/token/`, expired, or one of the
  above) closes the websockets opened with it (4401);
- a removed membership (the tenant deleted, or the membership itself) closes the user's
  websockets (4403). Tokens are not tenant-scoped, so they stay: they now see nothing.

Connected in `TenancyConfig.ready`. Bulk `QuerySet.update` bypasses model signals: change
passwords and `is_active` through the model.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from ciaoweb.events.revocation import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, close_sockets
from ciaoweb.tenancy.models import Membership

WATCHED = {"password", "is_active"}


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="ciao-access-ends-pre")
def _note_access_change(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    instance._ciao_access_ended = None
    if raw or instance.pk is None:
        return
    if update_fields is not None and not WATCHED & set(update_fields):
        return  # e.g. last_login at every sign-in
    old = sender._default_manager.filter(pk=instance.pk).values(*WATCHED).first()
    if old is None:
        return
    # Django re-hashing a password at sign-in (a new hasher or iteration count) saves
    # only the password, with no new raw password: the same password, not a change.
    rehash = update_fields is not None and getattr(instance, "_password", None) is None
    if old["password"] != instance.password and not rehash:
        instance._ciao_access_ended = "password changed"
    elif old["is_active"] and not instance.is_active:
        instance._ciao_access_ended = "user deactivated"


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="ciao-access-ends-post")
def _revoke_on_access_change(sender, instance, raw=False, **kwargs) -> None:
    reason = instance.__dict__.pop("_ciao_access_ended", None)
    if raw or not reason:
        return
    Token.objects.filter(user=instance).delete()
    close_sockets(instance.pk, CLOSE_UNAUTHENTICATED, reason)


@receiver(post_delete, sender=Token, dispatch_uid="ciao-token-deleted")
def _close_token_sockets(sender, instance, **kwargs) -> None:
    close_sockets(instance.user_id, CLOSE_UNAUTHENTICATED, "token revoked", instance.key)


@receiver(post_delete, sender=Membership, dispatch_uid="ciao-membership-deleted")
def _close_member_sockets(sender, instance, **kwargs) -> None:
    close_sockets(instance.user_id, CLOSE_FORBIDDEN, "membership removed")
