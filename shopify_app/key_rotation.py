"""Re-encrypting every stored secret under the newest ENCRYPTION_KEY, so older keys can be retired: shops'
tokens and webhook secrets, channel accounts' secrets."""

from __future__ import annotations

from sqlmodel import Session, select

from shopify_app.crypto import SecretBox
from shopify_app.models import ChannelAccount, Shop

SECRET_COLUMNS = ("access_token_ciphertext", "refresh_token_ciphertext", "webhook_secret_ciphertext")


def rotate_secrets(session: Session, secret_box: SecretBox) -> int:
    """Returns how many values were re-encrypted. Rows are locked so a concurrent refresh waits."""
    rotated = 0
    for shop in session.exec(select(Shop).with_for_update()):
        for column in SECRET_COLUMNS:
            value = getattr(shop, column)
            if value is not None:
                setattr(shop, column, secret_box.rotate(value))
                rotated += 1
    for account in session.exec(select(ChannelAccount).with_for_update()):
        account.secrets_ciphertext = secret_box.rotate(account.secrets_ciphertext)
        rotated += 1
    return rotated
