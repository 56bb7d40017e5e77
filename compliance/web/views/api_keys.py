"""The API keys page of tenant admins: list, create and revoke keys."""

import logging

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache

from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.keys.models import ApiKey
from compliance.tenancy.models import Role
from compliance.web.access import TenantRoleMixin, get_for_tenant
from compliance.web.forms import ApiKeyCreateForm

logger = logging.getLogger(__name__)


def key_state(api_key, now):
    """Return ``revoked``, ``expired`` or ``active``, where revocation wins over expiry."""
    if api_key.revoked_at is not None:
        return "revoked"
    if api_key.expires_at is not None and api_key.expires_at <= now:
        return "expired"
    return "active"


def key_audit_details(api_key):
    """Return what the audit trail keeps about a key: never its secret or hash."""
    return {
        "name": api_key.name,
        "key_prefix": api_key.display_prefix,
        "role": api_key.role,
        "expires_at": api_key.expires_at,
    }


def key_rows(tenant):
    now = timezone.now()
    keys = ApiKey.objects.filter(tenant=tenant).select_related("created_by")
    return [{"key": api_key, "state": key_state(api_key, now)} for api_key in keys]


# never_cache: the response to a successful POST carries the only copy of a
# new key's plaintext, so no browser or proxy cache may keep it.
@method_decorator(never_cache, name="dispatch")
class ApiKeyListView(TenantRoleMixin, View):
    """List the tenant's keys and issue new ones.

    A new key's plaintext is rendered into the response of the POST that
    created it and nowhere else: not into a redirect URL, the session or a
    message, so reloading the list never shows it again.
    """

    required_role = Role.ADMIN

    def get(self, request):
        return self.render_page(request, ApiKeyCreateForm())

    def post(self, request):
        form = ApiKeyCreateForm(request.POST)
        if not form.is_valid():
            return self.render_page(request, form)

        api_key, plaintext = ApiKey.issue(
            tenant=request.tenant,
            name=form.cleaned_data["name"],
            role=form.cleaned_data["role"],
            created_by=request.user,
            expires_at=form.expires_at(),
        )
        logger.info(
            "user %s issued API key %s (%s) in tenant %s",
            request.user.pk,
            api_key.display_prefix,
            api_key.role,
            request.tenant.pk,
        )
        record_request_event(
            request, AuditAction.KEY_CREATED, target=api_key, details=key_audit_details(api_key)
        )
        new_key = {"key": api_key, "plaintext": plaintext}
        return self.render_page(request, ApiKeyCreateForm(), new_key=new_key, status=201)

    def render_page(self, request, form, new_key=None, status=200):
        context = {"form": form, "rows": key_rows(request.tenant), "new_key": new_key}
        return render(request, "web/api_keys/list.html", context, status=status)


class ApiKeyRevokeView(TenantRoleMixin, View):
    """Ask for confirmation on GET and revoke the key on POST."""

    required_role = Role.ADMIN

    def get(self, request, key_id):
        api_key = get_for_tenant(request, ApiKey.objects.all(), pk=key_id)
        return render(request, "web/api_keys/revoke.html", {"api_key": api_key})

    def post(self, request, key_id):
        api_key = get_for_tenant(request, ApiKey.objects.all(), pk=key_id)
        if api_key.revoked_at is not None:
            messages.info(request, f"The key “{api_key.name}” was already revoked.")
            return redirect("web:api-key-list")

        api_key.revoke()
        logger.info(
            "user %s revoked API key %s in tenant %s",
            request.user.pk,
            api_key.display_prefix,
            request.tenant.pk,
        )
        record_request_event(
            request, AuditAction.KEY_REVOKED, target=api_key, details=key_audit_details(api_key)
        )
        messages.success(request, f"The key “{api_key.name}” is revoked and no longer works.")
        return redirect("web:api-key-list")
