from django.urls import path

from syncs import views

app_name = "syncs"

_APP = "applications/<slug:slug>/syncs/"
_ITEM = _APP + "<int:pk>/items/<uuid:certificate>/"

urlpatterns = [
    path(_APP, views.sync_list, name="list"),
    path(_APP + "new/", views.sync_edit, name="new"),
    path(_APP + "<int:pk>/", views.sync_detail, name="detail"),
    path(_APP + "<int:pk>/edit/", views.sync_edit, name="edit"),
    path(_APP + "<int:pk>/run/", views.sync_run, name="run"),
    path(_APP + "<int:pk>/drift/", views.sync_drift, name="drift"),
    path(_APP + "<int:pk>/delete/", views.sync_delete, name="delete"),
    path(_ITEM + "repush/", views.item_repush, name="item-repush"),
    path(_ITEM + "remove/", views.item_remove, name="item-remove"),
    path(_APP + "connections/new/", views.connection_edit, name="connection-new"),
    path(_APP + "connections/<int:pk>/", views.connection_edit, name="connection"),
    path(_APP + "connections/<int:pk>/test/", views.connection_test, name="connection-test"),
    path(_APP + "connections/<int:pk>/delete/", views.connection_delete, name="connection-delete"),
]
