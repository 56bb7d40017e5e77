"""Log in, log out, the home redirect and the tenant switcher."""

import logging
import math

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.forms.forms import NON_FIELD_ERRORS
from django.http import Http404
from django.shortcuts import redirect, render
from django.views import View
from django.views.generic import RedirectView

from compliance.audit.middleware import client_address
from compliance.audit.services import record_login_failure
from compliance.web import login_throttle
from compliance.web.access import TenantRoleMixin, switch_tenant
from compliance.web.forms import LoginForm

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    """Django's login view with a limit on failed attempts per username and client address.

    Past the limit the page returns 429 with ``Retry-After`` and does not
    check the password, so guessing stops being useful until the window ends.
    """

    template_name = "web/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        wait = login_throttle.seconds_locked(username, self.client_address())
        if wait:
            return self.locked_out(username, wait)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        login_throttle.clear_username(form.get_user().get_username())
        return super().form_valid(form)

    def form_invalid(self, form):
        # Only a wrong username or password counts, not an empty field.
        if form.has_error(NON_FIELD_ERRORS, "invalid_login"):
            login_throttle.record_failure(form.data.get("username", ""), self.client_address())
        return super().form_invalid(form)

    def client_address(self):
        address = getattr(self.request, "client_address", None)
        return address if address is not None else client_address(self.request)

    def locked_out(self, username, wait):
        minutes = math.ceil(wait / 60)
        logger.warning(
            "login rejected after too many failed attempts from %s, locked for %s more seconds",
            self.client_address(),
            wait,
        )
        record_login_failure(username, reason="too_many_failures")

        form = self.get_form_class()(self.request, initial={"username": username})
        message = (
            f"Too many failed login attempts. Try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}."
        )
        context = self.get_context_data(form=form, lockout_message=message)
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(wait)
        return response


class LogoutView(auth_views.LogoutView):
    """Django's logout view, which ends the session only on POST, with a page for GET.

    A GET, from a typed or bookmarked address, shows a button that posts the
    logout form, so a link or an image still cannot end the session. A
    visitor who is not logged in goes to the login page.
    """

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect("web:login")
        return render(request, "web/logout.html")


class HomeView(RedirectView):
    pattern_name = "web:overview"


class TenantSwitchView(TenantRoleMixin, View):
    """Store the chosen tenant in the session and go to that tenant's overview.

    It redirects to the overview rather than back to the previous page,
    because that page usually shows an object of the tenant just left.
    """

    def post(self, request):
        membership = switch_tenant(request, request.POST.get("tenant", ""))
        if membership is None:
            raise Http404("You are not a member of this tenant.")

        logger.info("user %s switched to tenant %s", request.user.pk, membership.tenant_id)
        messages.info(request, f"You are now working in {membership.tenant.name}.")
        return redirect("web:overview")
