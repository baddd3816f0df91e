"""``m2mhub passwd`` writes files mosquitto reads, and behaves like mosquitto_passwd."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from m2mhub.auth import PasswordFile
from tests.support import M2MHUB, mosquitto_broker, require


def passwd(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*M2MHUB, "passwd", *args], input=stdin, capture_output=True, text=True, timeout=20
    )


def test_create_add_update_delete(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    assert passwd("-c", "-b", str(path), "alice", "secret").returncode == 0
    assert passwd("-H", "sha512", "-b", str(path), "bob", "x y").returncode == 0
    assert passwd(str(path), "carol", stdin="pw\npw\n").returncode == 0
    assert passwd("-b", str(path), "alice", "changed").returncode == 0
    text = path.read_text()
    assert text.startswith("alice:$7$101$")
    assert "\nbob:$6$" in text
    path.chmod(0o640)
    assert passwd("-b", str(path), "carol", "pw").returncode == 0
    assert path.stat().st_mode & 0o777 == 0o640  # updates keep the file's mode
    users = PasswordFile.load(str(path))
    assert users.verify("alice", b"changed")
    assert users.verify("bob", b"x y")
    assert users.verify("carol", b"pw")

    assert passwd("-D", str(path), "bob").returncode == 0
    assert "bob" not in PasswordFile.load(str(path)).users
    missing = passwd("-D", str(path), "bob")
    assert missing.returncode == 1
    assert "Warning: User bob not found in password file." in missing.stderr


def test_update_plain_text_file(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("u1:pw1\nu2:pw2\n")
    assert passwd("-U", str(path)).returncode == 0
    users = PasswordFile.load(str(path))
    assert users.problems == []
    assert users.verify("u1", b"pw1")
    assert users.verify("u2", b"pw2")


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["-b", "NOFILE", "a", "b"], "", 1, "Error: Unable to open password file NOFILE."),
        (["-c", "-b", "FILE", "a:b", "c"], "", 1, "Username must not contain the ':' character."),
        (["-H", "md5", "-b", "FILE", "a", "b"], "", 1, "Error: Unknown hash type 'md5'"),
        (["-c", "FILE", "a"], "x\ny\n", 2, "Error: Passwords do not match."),
        (["-c", "-b", "FILE", "a"], "", 1, "password file, username, or password missing."),
    ],
)
def test_errors_like_mosquitto_passwd(
    tmp_path: Path, args: list[str], stdin: str, code: int, message: str
) -> None:
    args = [str(tmp_path / a) if a in ("NOFILE", "FILE") else a for a in args]
    message = message.replace("NOFILE", str(tmp_path / "NOFILE"))
    result = passwd(*args, stdin=stdin)
    assert result.returncode == code
    assert message in result.stderr


@pytest.mark.interop
def test_real_mosquitto_accepts_our_password_file(tmp_path: Path) -> None:
    pub = require("mosquitto_pub")
    path = tmp_path / "passwd"
    assert passwd("-c", "-b", str(path), "alice", "secret").returncode == 0
    assert passwd("-H", "sha512", "-b", str(path), "bob", "hunter2").returncode == 0
    # pytest's tmp_path is private to us: keep mosquitto from switching user before it reads.
    run_as = ["user root"] if os.geteuid() == 0 else []
    with mosquitto_broker(tmp_path, [*run_as, f"password_file {path}"]) as (_, port):
        for user, password, code in [
            ("alice", "secret", 0),
            ("bob", "hunter2", 0),
            ("alice", "wrong", 5),
        ]:
            result = subprocess.run(
                [pub, "-p", str(port), "-t", "t", "-m", "m", "-u", user, "-P", password],
                capture_output=True,
                text=True,
                timeout=10,
            )
            assert result.returncode == code, (user, result.stderr)
