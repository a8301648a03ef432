"""django.contrib.admin's app config with the portal's own site (certportal.adminsite).

Its own module: an apps module holding two AppConfig classes would need a ``default``
flag, and the site's module imports forms, which app loading cannot do yet.
"""

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    default_site = "certportal.adminsite.PortalAdminSite"
