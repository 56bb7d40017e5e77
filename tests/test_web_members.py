"""The members page: admins list, add, change the role of and remove their tenant's members."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from compliance.audit.models import AuditAction, AuditEvent, AuditOutcome
from compliance.tenancy.models import Membership, Role
from compliance.web.views import members
from tests.conftest import MEMBER_PASSWORD

MEMBERS_URL = reverse("web:member-list")
LINK_PATTERN = re.compile(r'id="set-password-link"[^>]*value="([^"]+)"')
NEW_PASSWORD = "a long and uncommon passphrase 7"

pytestmark = pytest.mark.django_db


def role_url(membership):
    return reverse("web:member-role", kwargs={"membership_id": membership.pk})


def remove_url(membership):
    return reverse("web:member-remove", kwargs={"membership_id": membership.pk})


def link_url(membership):
    return reverse("web:member-link", kwargs={"membership_id": membership.pk})


def membership_of(user, tenant):
    return Membership.objects.get(user=user, tenant=tenant)


def invite(client, username="dana", email="dana@example.com", role=Role.AUDITOR):
    return client.post(MEMBERS_URL, {"username": username, "email": email, "role": role})


def link_in(response):
    match = LINK_PATTERN.search(response.content.decode())
    assert match, "the response shows a set-password link"
    return match.group(1)


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("occurred_at"))


def set_password_through(link, password=NEW_PASSWORD):
    """Open the link in a new browser session, set ``password`` and return the last response."""
    browser = Client()
    opened = browser.get(link)
    if opened.status_code != 302:
        return opened
    form_url = opened["Location"]
    return browser.post(
        form_url, {"new_password1": password, "new_password2": password}, follow=True
    )


@pytest.fixture
def admin(login_as):
    return login_as(Role.ADMIN, username="alice")


class TestAccess:
    @pytest.mark.parametrize("role", [Role.AUDITOR, Role.OFFICER])
    def test_page_needs_admin(self, client, login_as, make_member, tenant, role):
        login_as(role)
        other = make_member(Role.OFFICER, username="olga")
        target = membership_of(other, tenant)

        assert client.get(MEMBERS_URL).status_code == 403
        assert invite(client, role=Role.ADMIN).status_code == 403
        assert client.post(role_url(target), {"role": Role.ADMIN}).status_code == 403
        assert client.get(remove_url(target)).status_code == 403
        assert client.post(remove_url(target)).status_code == 403
        assert client.post(link_url(target)).status_code == 403

        target.refresh_from_db()
        assert target.role == Role.OFFICER
        assert not get_user_model().objects.filter(username="dana").exists()
        assert not AuditEvent.objects.filter(action__startswith="member_").exists()

    def test_anonymous_goes_to_login(self, client):
        response = client.get(MEMBERS_URL)

        assert response.status_code == 302
        assert response["Location"].startswith(reverse("web:login"))

    @pytest.mark.parametrize(
        ("role", "shown"), [(Role.ADMIN, True), (Role.OFFICER, False), (Role.AUDITOR, False)]
    )
    def test_nav_entry_for_admins_only(self, client, login_as, role, shown):
        login_as(role)

        html = client.get(reverse("web:overview")).content.decode()

        assert (f'href="{MEMBERS_URL}"' in html) is shown

    def test_role_route_accepts_only_post(self, client, admin, tenant):
        response = client.get(role_url(membership_of(admin, tenant)))

        assert response.status_code == 405


class TestList:
    def test_lists_members_of_tenant(self, client, admin, make_member, tenant, other_tenant):
        officer = make_member(Role.OFFICER, username="olga")
        officer.email = "olga@example.com"
        officer.save()
        make_member(Role.ADMIN, username="gustav", member_of=other_tenant)

        response = client.get(MEMBERS_URL)

        html = response.content.decode()
        assert response.status_code == 200
        names = [row["membership"].user.username for row in response.context["rows"]]
        assert names == ["alice", "olga"]
        assert "olga@example.com" in html
        assert "gustav" not in html
        joined = membership_of(officer, tenant).created_at.astimezone(tenant.zone)
        assert f'{joined:%Y-%m-%d}</span> <span class="nowrap">{joined:%H:%M}' in html
        assert '<option value="officer" selected>Compliance officer</option>' in html
        assert "(you)" in html

    def test_page_says_no_email_is_sent(self, client, admin):
        html = client.get(MEMBERS_URL).content.decode()

        assert "No email is sent" in html
        assert '<label for="id_username"' in html
        assert '<label for="id_email"' in html
        assert '<label for="id_role"' in html


class TestInvite:
    def test_new_account_gets_link_once(self, client, admin, tenant):
        response = invite(client, role=Role.OFFICER)

        assert response.status_code == 201
        html = response.content.decode()
        assert "No email was sent" in html
        assert "expires in 3 days" in html
        assert "no-store" in response["Cache-Control"]
        link = link_in(response)
        assert link.startswith("http://testserver/set-password/")
        assert mail.outbox == []

        user = get_user_model().objects.get(username="dana")
        assert user.email == "dana@example.com"
        assert not user.has_usable_password()
        assert membership_of(user, tenant).role == Role.OFFICER

        again = client.get(MEMBERS_URL).content.decode()
        assert link not in again
        assert all(link not in str(value) for value in client.session.values())

    def test_invite_is_audited(self, client, admin, tenant):
        response = invite(client, role=Role.OFFICER)
        link = link_in(response)

        [event] = events(AuditAction.MEMBER_ADDED)
        membership = Membership.objects.get(user__username="dana")
        assert event.tenant == tenant
        assert event.actor_user == admin
        assert event.target_type == "tenancy.membership"
        assert event.target_id == str(membership.pk)
        assert event.outcome == AuditOutcome.SUCCESS
        assert event.details == {"username": "dana", "role": "officer", "account_created": True}
        token = link.rstrip("/").rsplit("/", 1)[-1]
        assert token not in str(event.details)

    def test_link_sets_password_once(self, client, admin):
        link = link_in(invite(client))

        done = set_password_through(link)

        assert done.redirect_chain[-1][0] == reverse("web:login")
        assert "Your password is set" in done.content.decode()
        user = get_user_model().objects.get(username="dana")
        assert user.check_password(NEW_PASSWORD)
        reused = Client().get(link, follow=True)
        assert "This link is no longer valid" in reused.content.decode()

    def test_new_member_can_log_in(self, client, admin):
        link = link_in(invite(client))
        set_password_through(link)
        browser = Client()

        response = browser.post(
            reverse("web:login"), {"username": "dana", "password": NEW_PASSWORD}, follow=True
        )

        assert response.redirect_chain[-1][0] == reverse("web:overview")
        assert response.context["current_membership"].role == Role.AUDITOR

    def test_forged_link_is_invalid(self, client, admin):
        invite(client)
        user = get_user_model().objects.get(username="dana")
        path = reverse("web:set-password", kwargs={"uidb64": "MQ", "token": "forged-token"})

        response = Client().get(path, follow=True)

        assert "This link is no longer valid" in response.content.decode()
        user.refresh_from_db()
        assert not user.has_usable_password()

    def test_existing_account_keeps_password(self, client, admin, make_member, other_tenant):
        existing = make_member(Role.ADMIN, username="dana", member_of=other_tenant)
        existing.email = "dana@globex.example"
        existing.save()

        response = invite(client, email="someone@else.example", role=Role.AUDITOR)

        html = response.content.decode()
        assert response.status_code == 201
        assert 'id="set-password-link"' not in html
        assert "keeps its email and password" in html
        existing.refresh_from_db()
        assert existing.email == "dana@globex.example"
        assert existing.check_password(MEMBER_PASSWORD)
        assert Membership.objects.filter(user=existing).count() == 2
        [event] = events(AuditAction.MEMBER_ADDED)
        assert event.details["account_created"] is False

    def test_existing_member_is_rejected(self, client, admin, make_member):
        make_member(Role.OFFICER, username="dana")

        response = invite(client, role=Role.ADMIN)

        html = response.content.decode()
        assert response.status_code == 200
        assert "dana is already a member of Acme Health as Compliance officer." in html
        assert Membership.objects.get(user__username="dana").role == Role.OFFICER
        assert events(AuditAction.MEMBER_ADDED) == []

    def test_concurrent_add_is_reported(self, client, admin, tenant, monkeypatch):
        add_once = members.add_member

        def add_twice(tenant, username, email, role):
            add_once(tenant, username, email, role)
            return add_once(tenant, username, email, role)

        monkeypatch.setattr(members, "add_member", add_twice)

        response = invite(client)

        assert response.status_code == 200
        assert "dana was added at the same moment by another request." in (
            response.content.decode()
        )
        assert not get_user_model().objects.filter(username="dana").exists()
        assert events(AuditAction.MEMBER_ADDED) == []

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"username": "", "email": "a@example.com", "role": "auditor"}, "required"),
            ({"username": "bad name", "email": "a@example.com", "role": "auditor"}, "valid"),
            ({"username": "x" * 151, "email": "a@example.com", "role": "auditor"}, "at most"),
            ({"username": "erin", "email": "not-an-email", "role": "auditor"}, "valid email"),
            ({"username": "erin", "email": "", "role": "auditor"}, "required"),
            ({"username": "erin", "email": "a@example.com", "role": "owner"}, "valid choice"),
        ],
    )
    def test_rejects_invalid_input(self, client, admin, data, message):
        response = client.post(MEMBERS_URL, data)

        assert response.status_code == 200
        assert message in response.content.decode()
        assert get_user_model().objects.count() == 1
        assert events(AuditAction.MEMBER_ADDED) == []


class TestChangeRole:
    def test_changes_role_and_audits(self, client, admin, make_member, tenant):
        target = membership_of(make_member(Role.OFFICER, username="olga"), tenant)

        response = client.post(role_url(target), {"role": Role.AUDITOR}, follow=True)

        target.refresh_from_db()
        assert target.role == Role.AUDITOR
        assert response.redirect_chain == [(MEMBERS_URL, 302)]
        assert "olga is now Auditor." in response.content.decode()
        [event] = events(AuditAction.MEMBER_ROLE_CHANGED)
        assert event.outcome == AuditOutcome.SUCCESS
        assert event.actor_user == admin
        assert event.target_id == str(target.pk)
        assert event.details == {"username": "olga", "role": "auditor", "previous_role": "officer"}

    def test_promote_to_admin(self, client, admin, make_member, tenant):
        target = membership_of(make_member(Role.AUDITOR, username="olga"), tenant)

        client.post(role_url(target), {"role": Role.ADMIN})

        target.refresh_from_db()
        assert target.role == Role.ADMIN

    def test_same_role_changes_nothing(self, client, admin, make_member, tenant):
        target = membership_of(make_member(Role.OFFICER, username="olga"), tenant)

        response = client.post(role_url(target), {"role": Role.OFFICER}, follow=True)

        assert "olga already is Compliance officer." in response.content.decode()
        assert events(AuditAction.MEMBER_ROLE_CHANGED) == []

    def test_invalid_role_is_rejected(self, client, admin, make_member, tenant):
        target = membership_of(make_member(Role.OFFICER, username="olga"), tenant)

        response = client.post(role_url(target), {"role": "owner"}, follow=True)

        target.refresh_from_db()
        assert target.role == Role.OFFICER
        assert "Choose one of the listed roles." in response.content.decode()
        assert events(AuditAction.MEMBER_ROLE_CHANGED) == []

    def test_last_admin_cannot_be_demoted(self, client, admin, make_member, tenant, other_tenant):
        # An admin of another tenant does not count for this one.
        make_member(Role.ADMIN, username="gustav", member_of=other_tenant)
        own = membership_of(admin, tenant)

        response = client.post(role_url(own), {"role": Role.OFFICER}, follow=True)

        own.refresh_from_db()
        assert own.role == Role.ADMIN
        assert response.redirect_chain == [(MEMBERS_URL, 302)]
        html = response.content.decode()
        assert "alice is the only admin of Acme Health. Make another member an admin first." in (
            html
        )
        [event] = events(AuditAction.MEMBER_ROLE_CHANGED)
        assert event.outcome == AuditOutcome.FAILURE
        assert event.details["reason"] == "last_admin"
        assert event.details["requested_role"] == "officer"

    def test_admin_may_demote_self_with_other_admin(self, client, admin, make_member, tenant):
        make_member(Role.ADMIN, username="bert")
        own = membership_of(admin, tenant)

        response = client.post(role_url(own), {"role": Role.AUDITOR})

        own.refresh_from_db()
        assert own.role == Role.AUDITOR
        assert response["Location"] == reverse("web:overview")
        assert client.get(MEMBERS_URL).status_code == 403


class TestRemove:
    def test_asks_for_confirmation(self, client, admin, make_member, tenant):
        target = membership_of(make_member(Role.OFFICER, username="olga"), tenant)

        response = client.get(remove_url(target))

        html = response.content.decode()
        assert response.status_code == 200
        assert "Remove olga from Acme Health?" in html
        assert 'method="post"' in html
        assert Membership.objects.filter(pk=target.pk).exists()

    def test_removes_membership_and_audits(self, client, admin, make_member, tenant):
        user = make_member(Role.OFFICER, username="olga")
        target = membership_of(user, tenant)

        response = client.post(remove_url(target), follow=True)

        assert response.redirect_chain == [(MEMBERS_URL, 302)]
        assert "olga is no longer a member of Acme Health." in response.content.decode()
        assert not Membership.objects.filter(pk=target.pk).exists()
        assert get_user_model().objects.filter(pk=user.pk).exists()
        [event] = events(AuditAction.MEMBER_REMOVED)
        assert event.outcome == AuditOutcome.SUCCESS
        assert event.target_id == str(target.pk)
        assert event.details == {"username": "olga", "role": "officer"}

    def test_removed_member_loses_access(self, client, admin, make_member, tenant):
        user = make_member(Role.OFFICER, username="olga")
        removed = Client()
        removed.force_login(user)
        assert removed.get(reverse("web:overview")).status_code == 200

        client.post(remove_url(membership_of(user, tenant)))

        response = removed.get(reverse("web:overview"))
        assert response.status_code == 403
        assert response.templates[0].name == "web/no_tenant.html"

    def test_last_admin_cannot_be_removed(self, client, admin, make_member, tenant):
        make_member(Role.OFFICER, username="olga")
        own = membership_of(admin, tenant)

        response = client.post(remove_url(own), follow=True)

        assert Membership.objects.filter(pk=own.pk).exists()
        assert "alice is the only admin of Acme Health." in response.content.decode()
        [event] = events(AuditAction.MEMBER_REMOVED)
        assert event.outcome == AuditOutcome.FAILURE
        assert event.details["reason"] == "last_admin"

    def test_admin_may_remove_self_with_other_admin(self, client, admin, make_member, tenant):
        make_member(Role.ADMIN, username="bert")
        own = membership_of(admin, tenant)

        confirm = client.get(remove_url(own)).content.decode()
        response = client.post(remove_url(own))

        assert "You are removing yourself." in confirm
        assert response["Location"] == reverse("web:home")
        assert not Membership.objects.filter(pk=own.pk).exists()


class TestNewLink:
    def test_replaces_earlier_link(self, client, admin, tenant):
        first = link_in(invite(client))
        target = Membership.objects.get(user__username="dana")

        response = client.post(link_url(target))

        assert response.status_code == 201
        assert "no-store" in response["Cache-Control"]
        second = link_in(response)
        assert second != first
        stale = set_password_through(first)
        assert "This link is no longer valid" in stale.content.decode()
        set_password_through(second)
        assert get_user_model().objects.get(username="dana").check_password(NEW_PASSWORD)
        [event] = events(AuditAction.MEMBER_LINK_ISSUED)
        assert event.details == {"username": "dana", "role": "auditor"}

    def test_offered_only_without_password(self, client, admin, make_member, tenant):
        invite(client)
        make_member(Role.OFFICER, username="olga")

        rows = client.get(MEMBERS_URL).context["rows"]

        offered = {row["membership"].user.username: row["can_issue_link"] for row in rows}
        assert offered == {"alice": False, "dana": True, "olga": False}

    def test_refused_after_first_login(self, client, admin, tenant):
        invite(client)
        user = get_user_model().objects.get(username="dana")
        user.last_login = user.date_joined
        user.save()

        response = client.post(link_url(membership_of(user, tenant)))

        assert response.status_code == 302
        assert events(AuditAction.MEMBER_LINK_ISSUED) == []

    def test_refused_for_account_with_password(self, client, admin, make_member, tenant):
        user = make_member(Role.OFFICER, username="olga")

        response = client.post(link_url(membership_of(user, tenant)), follow=True)

        assert "only the account owner can set its password" in response.content.decode()
        user.refresh_from_db()
        assert user.check_password(MEMBER_PASSWORD)
        assert events(AuditAction.MEMBER_LINK_ISSUED) == []

    def test_refused_for_account_in_other_tenant(self, client, admin, tenant, other_tenant):
        invite(client)
        user = get_user_model().objects.get(username="dana")
        Membership.objects.create(user=user, tenant=other_tenant, role=Role.AUDITOR)
        password_before = user.password

        response = client.post(link_url(membership_of(user, tenant)))

        assert response.status_code == 302
        user.refresh_from_db()
        assert user.password == password_before
        assert events(AuditAction.MEMBER_LINK_ISSUED) == []


class TestOtherTenant:
    def test_other_tenants_membership_is_404(self, client, admin, make_member, other_tenant):
        foreign_user = make_member(Role.ADMIN, username="gustav", member_of=other_tenant)
        foreign = membership_of(foreign_user, other_tenant)

        assert client.post(role_url(foreign), {"role": Role.AUDITOR}).status_code == 404
        assert client.post(role_url(foreign), {"role": "owner"}).status_code == 404
        assert client.get(remove_url(foreign)).status_code == 404
        assert client.post(remove_url(foreign)).status_code == 404
        assert client.post(link_url(foreign)).status_code == 404

        foreign.refresh_from_db()
        assert foreign.role == Role.ADMIN
        assert not AuditEvent.objects.filter(action__startswith="member_").exists()

    def test_unknown_membership_is_404(self, client, admin):
        assert (
            client.get(reverse("web:member-remove", kwargs={"membership_id": 999999})).status_code
            == 404
        )


class TestCsrf:
    @pytest.fixture
    def strict_client(self, make_member):
        client = Client(enforce_csrf_checks=True)
        client.force_login(make_member(Role.ADMIN, username="alice"))
        return client

    def test_invite_needs_token(self, strict_client):
        response = invite(strict_client)

        assert response.status_code == 403
        assert not get_user_model().objects.filter(username="dana").exists()

    def test_role_change_needs_token(self, strict_client, make_member, tenant):
        target = membership_of(make_member(Role.OFFICER, username="olga"), tenant)

        response = strict_client.post(role_url(target), {"role": Role.ADMIN})

        target.refresh_from_db()
        assert response.status_code == 403
        assert target.role == Role.OFFICER

    def test_remove_needs_token(self, strict_client, make_member, tenant):
        target = membership_of(make_member(Role.OFFICER, username="olga"), tenant)

        response = strict_client.post(remove_url(target))

        assert response.status_code == 403
        assert Membership.objects.filter(pk=target.pk).exists()

    def test_new_link_needs_token(self, strict_client, make_member, tenant):
        user = get_user_model().objects.create_user("dana")
        target = Membership.objects.create(user=user, tenant=tenant, role=Role.AUDITOR)

        response = strict_client.post(link_url(target))

        assert response.status_code == 403
        assert events(AuditAction.MEMBER_LINK_ISSUED) == []
