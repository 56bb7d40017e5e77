"""The members page of tenant admins: list, add, change the role of and remove members.

A new account gets an unusable password and a one-time set-password link
that the admin passes on, because this installation sends no email. Every
change is written to the audit trail. A tenant always keeps at least one
admin: the last admin can be neither demoted nor removed.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.tokens import default_token_generator
from django.db import IntegrityError, transaction
from django.db.models import Count, Prefetch
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views import View
from django.views.decorators.cache import never_cache

from compliance.audit.models import AuditAction, AuditOutcome
from compliance.audit.services import record_request_event
from compliance.inventory.models import Entity
from compliance.tenancy.models import Membership, Role, Tenant
from compliance.tenancy.scope import AccessScope, clear_scope, describe_scope
from compliance.web.access import TenantRoleMixin, get_for_tenant
from compliance.web.forms import MemberInviteForm, MemberRoleForm, SetPasswordPageForm

logger = logging.getLogger(__name__)


class LastAdminError(Exception):
    """Raised when a change would leave the tenant without an admin."""

    def __init__(self, membership):
        self.membership = membership
        super().__init__(
            f"{membership.user.get_username()} is the only admin of {membership.tenant.name}. "
            "Make another member an admin first."
        )


def member_rows(tenant):
    """Return one row per membership of ``tenant``, ordered by username."""
    memberships = (
        Membership.objects.filter(tenant=tenant)
        .select_related("user")
        .prefetch_related(Prefetch("scope_entities", Entity.objects.order_by("name", "id")))
        .annotate(tenant_count=Count("user__memberships"))
        .order_by("user__username", "pk")
    )
    return [
        {
            "membership": membership,
            "can_issue_link": can_issue_link(membership),
            "scope_text": listed_scope_text(membership),
        }
        for membership in memberships
    ]


def listed_scope_text(membership):
    """Return an auditor's scope in words from the prefetched entities, or ``""``."""
    if membership.role != Role.AUDITOR:
        return ""
    entities = list(membership.scope_entities.all())
    scope = AccessScope(
        entity_ids=frozenset(entity.pk for entity in entities) or None,
        regulations=frozenset(membership.scope_regulations) or None,
        start=membership.scope_start,
        end=membership.scope_end,
    )
    if not scope.is_limited:
        return ""
    return describe_scope(scope, [entity.name for entity in entities])


def can_issue_link(membership):
    """Return whether an admin of the membership's tenant may issue a set-password link.

    Only for an account that has no usable password, has never logged in
    and belongs to this tenant alone. A link for any other account would let
    this tenant's admin take over an account that someone uses, or that
    another tenant's data is open to.
    """
    user = membership.user
    if user.has_usable_password() or user.last_login is not None:
        return False
    tenant_count = getattr(membership, "tenant_count", None)
    if tenant_count is None:
        tenant_count = Membership.objects.filter(user_id=membership.user_id).count()
    return tenant_count == 1


def lock_tenant(tenant):
    """Lock the tenant's row until the transaction ends.

    Role changes and removals in one tenant then run one after the other, so
    two admins who demote each other at the same time cannot both succeed and
    leave the tenant without an admin. SQLite ignores the lock, but it runs
    only one writing transaction at a time anyway.
    """
    Tenant.objects.select_for_update().get(pk=tenant.pk)


def ensure_other_admin(membership):
    """Raise ``LastAdminError`` if ``membership`` is the tenant's only admin."""
    if membership.role != Role.ADMIN:
        return

    admins = Membership.objects.filter(tenant_id=membership.tenant_id, role=Role.ADMIN)
    if not admins.exclude(pk=membership.pk).exists():
        raise LastAdminError(membership)


def member_audit_details(membership, **extra):
    """Return what the audit trail keeps about a membership: never a password or link."""
    return {"username": membership.user.get_username(), "role": membership.role, **extra}


def add_member(tenant, username, email, role):
    """Give ``username`` a role in ``tenant`` and return ``(membership, account_created)``.

    A missing account is created with an unusable password, so no one can log
    in to it until its owner sets a password through the link. An existing
    account is added unchanged.
    """
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    account_created = user is None
    if account_created:
        user = user_model.objects.create_user(username, email=email, password=None)

    membership = Membership.objects.create(user=user, tenant=tenant, role=role)
    return membership, account_created


def set_password_link(request, user):
    """Return the absolute URL where ``user`` sets a password, built from a reset token.

    Django's token covers the password hash and the last login, so the link
    stops working once a password is set or the user logs in, and after
    ``PASSWORD_RESET_TIMEOUT`` seconds.
    """
    path = reverse(
        "web:set-password",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return request.build_absolute_uri(path)


def reissue_set_password_link(request, user):
    """Invalidate the user's earlier links and return a new one.

    A fresh unusable password changes the hash that the tokens cover, so
    links issued before stop working.
    """
    user.set_unusable_password()
    user.save(update_fields=["password"])
    return set_password_link(request, user)


def link_lifetime_text():
    """Return ``PASSWORD_RESET_TIMEOUT`` for people, in whole days or hours."""
    seconds = settings.PASSWORD_RESET_TIMEOUT
    if seconds >= 86400 and seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, seconds // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def render_members_page(request, form, invited=None, status=200):
    """Render the members list with the add form and, after a change, the ``invited`` notice."""
    context = {
        "form": form,
        "rows": member_rows(request.tenant),
        "role_choices": Role.choices,
        "invited": invited,
    }
    return render(request, "web/members/list.html", context, status=status)


# never_cache: the response to an invitation carries the only copy of the
# new account's set-password link, so no browser or proxy cache may keep it.
@method_decorator(never_cache, name="dispatch")
class MemberListView(TenantRoleMixin, View):
    """List the tenant's members and add new ones.

    The set-password link of a new account is rendered into the response of
    the POST that created it and nowhere else: not into a redirect URL, the
    session, a message or the audit trail.
    """

    required_role = Role.ADMIN

    def get(self, request):
        return render_members_page(request, MemberInviteForm(tenant=request.tenant))

    def post(self, request):
        form = MemberInviteForm(request.POST, tenant=request.tenant)
        if not form.is_valid():
            return render_members_page(request, form)

        data = form.cleaned_data
        try:
            with transaction.atomic():
                membership, account_created = add_member(
                    request.tenant, data["username"], data["email"], data["role"]
                )
                record_request_event(
                    request,
                    AuditAction.MEMBER_ADDED,
                    target=membership,
                    details=member_audit_details(membership, account_created=account_created),
                )
        except IntegrityError:
            # Another request created the same account or membership after the form checked it.
            logger.warning(
                "adding user %r to tenant %s failed: added concurrently",
                data["username"],
                request.tenant.pk,
            )
            form.add_error(
                "username",
                f"{data['username']} was added at the same moment by another request. "
                "Reload the page to see the current members.",
            )
            return render_members_page(request, form)

        logger.info(
            "user %s added user %s as %s to tenant %s (new account: %s)",
            request.user.pk,
            membership.user_id,
            membership.role,
            request.tenant.pk,
            account_created,
        )
        invited = {"membership": membership, "account_created": account_created}
        if account_created:
            invited["link"] = set_password_link(request, membership.user)
            invited["link_lifetime"] = link_lifetime_text()
        form = MemberInviteForm(tenant=request.tenant)
        return render_members_page(request, form, invited=invited, status=201)


@method_decorator(never_cache, name="dispatch")
class MemberLinkView(TenantRoleMixin, View):
    """Issue a new set-password link on POST, for a member who never set a password or logged in.

    The response shows the link once, like an invitation. Earlier links of
    the member stop working.
    """

    required_role = Role.ADMIN
    http_method_names = ["post"]

    def post(self, request, membership_id):
        membership = get_for_tenant(
            request, Membership.objects.select_related("user"), pk=membership_id
        )
        username = membership.user.get_username()
        if not can_issue_link(membership):
            messages.error(
                request,
                f"{username} has a password, has logged in or belongs to another tenant "
                "too, so only the account owner can set its password.",
            )
            return redirect("web:member-list")

        link = reissue_set_password_link(request, membership.user)
        record_request_event(
            request,
            AuditAction.MEMBER_LINK_ISSUED,
            target=membership,
            details=member_audit_details(membership),
        )
        logger.info(
            "user %s issued a set-password link for user %s in tenant %s",
            request.user.pk,
            membership.user_id,
            request.tenant.pk,
        )
        invited = {
            "membership": membership,
            "account_created": False,
            "link": link,
            "link_lifetime": link_lifetime_text(),
        }
        form = MemberInviteForm(tenant=request.tenant)
        return render_members_page(request, form, invited=invited, status=201)


class MemberRoleView(TenantRoleMixin, View):
    """Change a member's role on POST, keeping at least one admin in the tenant."""

    required_role = Role.ADMIN
    http_method_names = ["post"]

    def post(self, request, membership_id):
        form = MemberRoleForm(request.POST)
        if not form.is_valid():
            get_for_tenant(request, Membership.objects.all(), pk=membership_id)
            messages.error(request, "Choose one of the listed roles.")
            return redirect("web:member-list")

        new_role = form.cleaned_data["role"]
        try:
            membership, old_role = self.change_role(request, membership_id, new_role)
        except LastAdminError as exc:
            record_rejection(request, AuditAction.MEMBER_ROLE_CHANGED, exc.membership, new_role)
            messages.error(request, str(exc))
            return redirect("web:member-list")

        username = membership.user.get_username()
        if old_role == new_role:
            messages.info(request, f"{username} already is {membership.get_role_display()}.")
            return redirect("web:member-list")

        logger.info(
            "user %s changed the role of user %s from %s to %s in tenant %s",
            request.user.pk,
            membership.user_id,
            old_role,
            new_role,
            request.tenant.pk,
        )
        messages.success(request, f"{username} is now {membership.get_role_display()}.")
        return redirect_after_own_change(request, membership)

    def change_role(self, request, membership_id, new_role):
        """Store the new role with its audit event and return ``(membership, old role)``."""
        with transaction.atomic():
            lock_tenant(request.tenant)
            membership = get_for_tenant(
                request, Membership.objects.select_related("user", "tenant"), pk=membership_id
            )
            old_role = membership.role
            if old_role == new_role:
                return membership, old_role

            if new_role != Role.ADMIN:
                ensure_other_admin(membership)

            membership.role = new_role
            membership.save(update_fields=["role"])
            # A scope limits auditors only. Clearing it when the role changes means a
            # later change back to auditor starts unlimited, not with a forgotten limit.
            extra = {"scope_cleared": True} if clear_scope(membership) else {}
            record_request_event(
                request,
                AuditAction.MEMBER_ROLE_CHANGED,
                target=membership,
                details=member_audit_details(membership, previous_role=old_role, **extra),
            )
        return membership, old_role


class MemberRemoveView(TenantRoleMixin, View):
    """Ask for confirmation on GET and remove the membership on POST.

    Only the membership goes: the account stays, with its memberships in
    other tenants.
    """

    required_role = Role.ADMIN

    def get(self, request, membership_id):
        membership = get_for_tenant(
            request, Membership.objects.select_related("user"), pk=membership_id
        )
        context = {"membership": membership, "is_self": membership.user_id == request.user.pk}
        return render(request, "web/members/remove.html", context)

    def post(self, request, membership_id):
        try:
            membership = self.remove(request, membership_id)
        except LastAdminError as exc:
            record_rejection(request, AuditAction.MEMBER_REMOVED, exc.membership)
            messages.error(request, str(exc))
            return redirect("web:member-list")

        logger.info(
            "user %s removed user %s from tenant %s",
            request.user.pk,
            membership.user_id,
            request.tenant.pk,
        )
        username = membership.user.get_username()
        messages.success(request, f"{username} is no longer a member of {request.tenant.name}.")
        if membership.user_id == request.user.pk:
            return redirect("web:home")
        return redirect("web:member-list")

    def remove(self, request, membership_id):
        """Delete the membership with its audit event and return the deleted membership."""
        with transaction.atomic():
            lock_tenant(request.tenant)
            membership = get_for_tenant(
                request, Membership.objects.select_related("user", "tenant"), pk=membership_id
            )
            ensure_other_admin(membership)

            # Recorded before the delete, which clears the instance's primary key.
            record_request_event(
                request,
                AuditAction.MEMBER_REMOVED,
                target=membership,
                details=member_audit_details(membership),
            )
            membership.delete()
        return membership


def record_rejection(request, action, membership, requested_role=None):
    """Record a change rejected because the tenant would lose its last admin.

    Called after the rejected change's transaction has rolled back, so the
    event is not rolled back with it.
    """
    extra = {"reason": "last_admin"}
    if requested_role is not None:
        extra["requested_role"] = requested_role

    logger.info(
        "rejected %s by user %s on user %s in tenant %s: it would remove the last admin",
        action,
        request.user.pk,
        membership.user_id,
        request.tenant.pk,
    )
    record_request_event(
        request,
        action,
        target=membership,
        outcome=AuditOutcome.FAILURE,
        details=member_audit_details(membership, **extra),
    )


def redirect_after_own_change(request, membership):
    """Redirect to the members list, or to the overview after admins demote themselves."""
    if membership.user_id == request.user.pk and membership.role != Role.ADMIN:
        return redirect("web:overview")
    return redirect("web:member-list")


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """Let a new member set the first password through the link from the members page.

    Django's view checks the token, then moves it from the URL into the
    session and redirects, so the token does not leak through the Referer
    header of later requests. The user is not logged in afterwards and logs
    in with the new password.
    """

    template_name = "web/members/set_password.html"
    form_class = SetPasswordPageForm
    success_url = reverse_lazy("web:login")

    def form_valid(self, form):
        response = super().form_valid(form)
        logger.info("user %s set a password through a set-password link", form.user.pk)
        messages.success(self.request, "Your password is set. Log in with it now.")
        return response
