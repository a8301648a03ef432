from django.urls import path

from syncs import views

app_name = "syncs"

_APP = "applications/<slug:slug>/syncs/"

urlpatterns = [
    path(_APP, views.sync_list, name="list"),
    path(_APP + "<int:pk>/", views.sync_detail, name="detail"),
]
