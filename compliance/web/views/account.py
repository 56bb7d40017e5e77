"""Log in, log out, the home redirect and the tenant switcher."""

import logging

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.shortcuts import redirect
from django.views import View
from django.views.generic import RedirectView

from compliance.web.access import TenantRoleMixin, switch_tenant
from compliance.web.forms import LoginForm

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class HomeView(RedirectView):
    pattern_name = "web:report-list"


class TenantSwitchView(TenantRoleMixin, View):
    """Store the chosen tenant in the session and go to that tenant's reports.

    It redirects to the reports list rather than back to the previous page,
    because that page usually shows an object of the tenant just left.
    """

    def post(self, request):
        membership = switch_tenant(request, request.POST.get("tenant", ""))
        if membership is None:
            raise Http404("You are not a member of this tenant.")

        logger.info("user %s switched to tenant %s", request.user.pk, membership.tenant_id)
        messages.info(request, f"You are now working in {membership.tenant.name}.")
        return redirect("web:report-list")
