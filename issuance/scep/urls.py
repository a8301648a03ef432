from django.urls import path

from issuance.scep import ui, views

app_name = "scep"

urlpatterns = [
    path("scep/<slug:app>/<slug:profile>/pkiclient.exe", views.pkiclient, name="pkiclient"),
    path("scep/<slug:app>/<slug:profile>", views.pkiclient, name="endpoint"),
    path("scep/<slug:app>/<slug:profile>/", views.pkiclient, name="endpoint-slash"),
    # Portal pages of the Application's Enrollment tab.
    path("applications/<slug:slug>/scep/new", ui.enable_view, name="enable"),
    path("applications/<slug:slug>/scep/<int:pk>/edit", ui.edit_view, name="edit"),
    path("applications/<slug:slug>/scep/<int:pk>/challenge", ui.challenge_view, name="challenge"),
    path("applications/<slug:slug>/scep/<int:pk>/mint", ui.mint_view, name="mint"),
]
