"""Renewal, in one place: settings (an Application's defaults, a certificate's own
overrides), the window that says when a certificate is due (shared by the sweep and
ACME's ARI), the sweep that renews held-key certificates, its tasks, and the Renewal tab.

Manual renewal is ``issuance.services.renew``; the sweep sends the same asks through
``submit_many``.
"""

from issuance.renewal.services import (
    configure_application,
    configure_certificate,
    replan,
    shortest_validity,
    validity_days,
)
from issuance.renewal.sweep import (
    RENEWAL_ACTOR,
    BatchResult,
    due,
    plan,
    renew_batch,
    renew_due,
    retry_delay,
)
from issuance.renewal.window import (
    AppRenewal,
    auto_renews,
    renew_at,
    renewal_window,
    renews_itself,
    settings_for,
    window_days,
)

__all__ = [
    "RENEWAL_ACTOR",
    "AppRenewal",
    "BatchResult",
    "auto_renews",
    "configure_application",
    "configure_certificate",
    "due",
    "plan",
    "renew_at",
    "renew_batch",
    "renew_due",
    "renewal_window",
    "renews_itself",
    "replan",
    "retry_delay",
    "settings_for",
    "shortest_validity",
    "validity_days",
    "window_days",
]
