from django.urls import path

from issuance.acme import ui, views

app_name = "acme"

_DIR = "acme/<slug:app>/<slug:profile>/"
_OBJ = "acme/<slug:app>/"

urlpatterns = [
    path("acme/terms", views.terms, name="terms"),
    path(_DIR + "directory", views.directory, name="directory"),
    path(_DIR + "new-nonce", views.new_nonce, name="new-nonce"),
    path(_DIR + "new-account", views.new_account, name="new-account"),
    path(_DIR + "new-order", views.new_order, name="new-order"),
    path(_DIR + "revoke-cert", views.revoke_cert, name="revoke-cert"),
    path(_DIR + "key-change", views.key_change, name="key-change"),
    path(_DIR + "renewal-info/<str:cert_id>", views.renewal_info, name="renewal-info"),
    path(_OBJ + "acct/<str:account_id>", views.account, name="account"),
    path(_OBJ + "acct/<str:account_id>/orders", views.account_orders, name="account-orders"),
    path(_OBJ + "order/<str:order_id>", views.order, name="order"),
    path(_OBJ + "order/<str:order_id>/finalize", views.finalize, name="finalize"),
    path(_OBJ + "authz/<str:authz_id>", views.authorization, name="authz"),
    path(_OBJ + "chall/<str:challenge_id>", views.challenge, name="challenge"),
    path(_OBJ + "cert/<str:cert_id>", views.certificate, name="certificate"),
    # Portal pages of the Application's Enrollment tab (Admins): EAB credentials, accounts.
    path("applications/<slug:slug>/acme/eab/new", ui.eab_create, name="eab-create"),
    path("applications/<slug:slug>/acme/eab/<int:pk>/revoke", ui.eab_revoke, name="eab-revoke"),
    path(
        "applications/<slug:slug>/acme/accounts/<slug:account_id>/deactivate",
        ui.account_deactivate,
        name="account-deactivate",
    ),
]
