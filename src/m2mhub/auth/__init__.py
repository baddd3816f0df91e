"""Client authentication: mosquitto password files (``password_file``)."""

from m2mhub.auth.password_file import (
    PasswordFile,
    PasswordFileAuthenticator,
    PasswordFileError,
    hash_password,
    verify_password,
)

__all__ = [
    "PasswordFile",
    "PasswordFileAuthenticator",
    "PasswordFileError",
    "hash_password",
    "verify_password",
]
