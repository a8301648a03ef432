"""/accounts/: every route of django.contrib.auth.urls, each on a throttled or gated view."""

from django.contrib.auth import views as auth_views
from django.urls import path

from certportal import auth

# Class-based views answer every method they have a handler for (a form view takes PUT as
# POST, every view answers OPTIONS); each route names the methods it really serves, as the
# function views do with require_http_methods.
FORM = {"http_method_names": ["get", "head", "post"]}
PAGE = {"http_method_names": ["get", "head"]}

urlpatterns = [
    path("login/", auth.LoginView.as_view(**FORM), name="login"),
    path("logout/", auth_views.LogoutView.as_view(http_method_names=["post"]), name="logout"),
    path("password_change/", auth.PasswordChangeView.as_view(**FORM), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(**PAGE),
        name="password_change_done",
    ),
    path("password_reset/", auth.PasswordResetView.as_view(**FORM), name="password_reset"),
    path(
        "password_reset/done/",
        auth.PasswordResetDoneView.as_view(**PAGE),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth.PasswordResetConfirmView.as_view(**FORM),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        auth.PasswordResetCompleteView.as_view(**PAGE),
        name="password_reset_complete",
    ),
]
