"""Encryption of secrets at rest (access tokens, per-shop webhook secrets) with rotating Fernet keys."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DecryptionError(Exception):
    """A stored secret cannot be read with any configured key."""


class SecretBox:
    """Encrypts with the newest key, decrypts with any; `rotate` re-encrypts under the newest."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError("no configured ENCRYPTION_KEY can decrypt this value") from None

    def rotate(self, ciphertext: str) -> str:
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise DecryptionError("no configured ENCRYPTION_KEY can decrypt this value") from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
