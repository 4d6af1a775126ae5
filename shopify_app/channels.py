"""Channel connectors built from the settings."""

from __future__ import annotations

import ssl

from connectors.email.smtp import SmtpConfig, SmtpSender
from shopify_app.settings import Settings


def email_channel(settings: Settings) -> SmtpSender | None:
    """The configured email sender; None when SMTP_URL is not set (then no email is sent)."""
    if not settings.smtp_url:
        return None
    tls = ssl.create_default_context(cafile=settings.smtp_ca_file) if settings.smtp_ca_file else None
    return SmtpSender(SmtpConfig.from_url(settings.smtp_url), tls=tls)
