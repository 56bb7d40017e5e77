"""Audit events for Django's login, login failure and logout signals."""

from django.contrib.auth import get_user_model, user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from compliance.audit.models import AuditAction
from compliance.audit.services import record_event, record_login_failure, tenants_of


@receiver(user_logged_in, dispatch_uid="audit_login")
def record_login(sender, request, user, **kwargs):
    """Record one login event in each tenant the user belongs to, so each tenant's admins see it."""
    for tenant in tenants_of(user) or [None]:
        record_event(AuditAction.LOGIN, tenant=tenant, user=user, target=user)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def record_logout(sender, request, user, **kwargs):
    if user is None:
        return
    for tenant in tenants_of(user) or [None]:
        record_event(AuditAction.LOGOUT, tenant=tenant, user=user, target=user)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def record_failed_login(sender, credentials, request=None, **kwargs):
    # Django passes the credentials with the password already masked.
    username = credentials.get(get_user_model().USERNAME_FIELD)
    record_login_failure(username, reason="invalid_credentials")
