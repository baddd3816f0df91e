"""Client authentication (mosquitto password files, ``password_file``); access control lists
(``acl_file``) are in :mod:`m2mhub.auth.acl`."""

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
