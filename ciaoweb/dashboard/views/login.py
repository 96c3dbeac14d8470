"""`/login/`: Django's login view under the API's sign-in throttling
(`ciaoweb.core.api.throttling`): past a limit, a 429 with Retry-After and the form again."""

from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError

from ciaoweb.core.api.throttling import check_sign_in


class LoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        self.failures, wait = check_sign_in(request, request.POST.get("username", ""))
        if wait is not None:
            # Unbound (validating it would check the password): the name typed, the error.
            form = self.get_form_class()(
                request, initial={"username": request.POST.get("username", "")}
            )
            form.cleaned_data = {}
            form.add_error(
                None,
                ValidationError(
                    f"Too many sign-in attempts; try again in {wait} seconds.", code="throttled"
                ),
            )
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        self.failures.failed()
        return super().form_invalid(form)
