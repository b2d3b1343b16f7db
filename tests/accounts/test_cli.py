"""`eventlens user|org|key` and `project create --org`, `project rotate-key`, as a user runs
them (subprocesses); the password is read from stdin, never taken as an argument."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from eventlens.accounts.store import AccountStore
from tests.support.server import run_cli


def _create(data_dir: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventlens", "user", "create", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_user_create_owner_from_stdin(tmp_path: Path) -> None:
    ok = _create(tmp_path, "boss@example.com", "--owner", stdin="twelve chars ok\n")
    assert ok.returncode == 0, ok.stderr
    assert "owner of organisation 1" in ok.stdout
    # A password argument does not exist.
    arg = _create(tmp_path, "x@example.com", "--password", "secretsecret1", stdin="")
    assert arg.returncode == 2
    short = _create(tmp_path, "y@example.com", stdin="short\n")
    assert short.returncode == 2 and "at least 12" in short.stderr
    dup = _create(tmp_path, "BOSS@example.com", stdin="twelve chars ok\n")
    assert dup.returncode == 2 and "exists already" in dup.stderr
    store = AccountStore(tmp_path / "meta.db")
    try:
        user = store.user_by_email("boss@example.com")
        assert user is not None and user.password_hash.startswith("$argon2id$")
        assert "twelve chars ok" not in user.password_hash
    finally:
        store.close()


def test_org_project_invite_key_rotate(tmp_path: Path) -> None:
    _create(tmp_path, "boss@example.com", "--owner", stdin="twelve chars ok\n")
    org = run_cli("org", "create", "Acme", "--owner", "boss@example.com", data_dir=tmp_path)
    assert org.stdout.startswith("organisation 2 Acme")
    made = run_cli("project", "create", "web", "--org", "2", "--json", data_dir=tmp_path)
    assert '"id": 1' in made.stdout
    missing = run_cli("project", "create", "x", "--org", "9", data_dir=tmp_path, check=False)
    assert missing.returncode == 3  # NotFound, and no project was made
    store = AccountStore(tmp_path / "meta.db")
    try:
        assert store.org_of_project(1) == 2
    finally:
        store.close()
    link = run_cli(
        "user",
        "invite",
        "new@example.com",
        "--org",
        "2",
        "--role",
        "viewer",
        "--url",
        "https://a.example/",
        data_dir=tmp_path,
    )
    assert link.stdout.strip().startswith("https://a.example/#/invite/")
    key = run_cli("key", "create", "boss@example.com", "--scope", "query:read", data_dir=tmp_path)
    assert key.stdout.strip().startswith("phx_")
    bad = run_cli(
        "key", "create", "boss@example.com", "--scope", "all", data_dir=tmp_path, check=False
    )
    assert bad.returncode == 2 and "unknown scope" in bad.stderr
    rotated = run_cli("project", "rotate-key", "1", data_dir=tmp_path)
    assert rotated.stdout.strip().startswith("phx_")
    reset = run_cli("user", "reset-link", "nobody@example.com", data_dir=tmp_path, check=False)
    assert reset.returncode == 3
