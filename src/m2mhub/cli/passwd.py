"""``m2mhub passwd``: manage password files, with ``mosquitto_passwd``'s flags and messages.

    m2mhub passwd [-H HASH] [-c | -D] passwordfile username
    m2mhub passwd [-H HASH] [-c] -b passwordfile username password
    m2mhub passwd -U passwordfile

The files it writes are read by both ``m2mhub serve`` and mosquitto (``password_file``).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from m2mhub.auth import hash_password

USAGE = """\
m2mhub passwd manages password files for m2mhub serve (and mosquitto).

Usage: m2mhub passwd [-H HASH] [-c | -D] passwordfile username
       m2mhub passwd [-H HASH] [-c] -b passwordfile username password
       m2mhub passwd -U passwordfile
 -b : run in batch mode to allow passing passwords on the command line.
 -c : create a new password file. This will overwrite existing files.
 -D : delete the username rather than adding/updating its password.
 -H : specify the hashing algorithm: sha512, sha512-pbkdf2 or scram-sha-256.
      Defaults to sha512-pbkdf2, which is recommended.
      Mosquitto 1.6 and earlier defaulted to sha512. scram-sha-256 writes a SCRAM
      verifier: the user can also log in with MQTT 5 enhanced authentication
      (SCRAM-SHA-256); mosquitto does not read such entries.
 -U : update a plain text password file to use hashed passwords.

See docs/serve.md for more information."""

HASH_TYPES = ("sha512", "sha512-pbkdf2", "scram-sha-256")


class _Usage(Exception):
    """Bad arguments: print the message (if any) and the usage, exit 1."""


@dataclass(slots=True)
class _Args:
    hash_type: str = "sha512-pbkdf2"
    create: bool = False
    delete: bool = False
    batch: bool = False
    update: bool = False
    positional: tuple[str, ...] = ()


def _error(text: str) -> int:
    print(f"Error: {text}", file=sys.stderr)
    return 1


def _parse(argv: list[str]) -> _Args:
    args = _Args()
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "-H":
            if index >= len(argv):
                raise _Usage("-H argument given but no hash type specified.")
            args.hash_type = argv[index]
            index += 1
            if args.hash_type not in HASH_TYPES:
                raise _Usage(f"Unknown hash type '{args.hash_type}'")
        elif arg == "-c":
            args.create = True
        elif arg == "-D":
            args.delete = True
        elif arg == "-b":
            args.batch = True
        elif arg == "-U":
            args.update = True
        elif arg in ("-h", "--help"):
            raise _Usage("")
        else:
            rest.append(arg)
    args.positional = tuple(rest)
    if args.create and args.delete:
        raise _Usage("-c and -D cannot be used together.")
    return args


def _read_lines(path: str) -> list[str] | None:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None


def _write_lines(path: str, lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    # Keep an existing file's mode; a new one gets the umask's, as with mosquitto_passwd
    # (mosquitto, started as root, reads it after dropping to its own user).
    with contextlib.suppress(OSError):
        shutil.copymode(path, tmp)
    os.replace(tmp, path)


def _prompt(text: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(text)
    # Piped input (scripts, tests): read a line without getpass's echo warning.
    print(text, flush=True)
    return sys.stdin.readline().rstrip("\r\n")


def _ask_password() -> str | None:
    first = _prompt("Password: ")
    second = _prompt("Reenter password: ")
    if first != second:
        return None
    return first


def _set_user(lines: list[str], username: str, hash_field: str) -> list[str]:
    entry = f"{username}:{hash_field}"
    out: list[str] = []
    replaced = False
    for line in lines:
        if line.partition(":")[0] == username and not replaced:
            out.append(entry)
            replaced = True
        elif line.partition(":")[0] != username:
            out.append(line)
    if not replaced:
        out.append(entry)
    return out


def _update_plain(path: str, hash_type: str) -> int:
    lines = _read_lines(path)
    if lines is None:
        return _error(f"Unable to open password file {path}. No such file or directory.")
    out: list[str] = []
    for line in lines:
        username, sep, password = line.partition(":")
        if not sep or line.startswith("#") or password.startswith(("$6$", "$7$")):
            out.append(line)
        else:
            out.append(f"{username}:{hash_password(password, hash_type)}")
    _write_lines(path, out)
    return 0


def run(argv: list[str]) -> int:
    """Entry point of ``m2mhub passwd``; returns the process exit code."""
    try:
        args = _parse(argv)
    except _Usage as exc:
        if str(exc):
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        print(USAGE)
        return 0 if argv and argv[0] in ("-h", "--help") else 1
    if args.update:
        if len(args.positional) != 1:
            print(USAGE)
            return 1
        return _update_plain(args.positional[0], args.hash_type)
    wanted = 3 if args.batch else 2
    if len(args.positional) != wanted:
        if args.create:
            return _error("-c argument given but password file, username, or password missing.")
        print(USAGE)
        return 1
    path, username = args.positional[0], args.positional[1]
    if ":" in username:
        return _error("Username must not contain the ':' character.")
    lines: list[str] | None = [] if args.create else _read_lines(path)
    if lines is None:
        return _error(f"Unable to open password file {path}. No such file or directory.")
    if args.delete:
        if not any(line.partition(":")[0] == username for line in lines):
            print(f"Warning: User {username} not found in password file.", file=sys.stderr)
            return 1
        _write_lines(path, [line for line in lines if line.partition(":")[0] != username])
        return 0
    password = args.positional[2] if args.batch else _ask_password()
    if password is None:
        _error("Passwords do not match.")
        return 2  # mosquitto_passwd's code for this
    _write_lines(path, _set_user(lines, username, hash_password(password, args.hash_type)))
    return 0
