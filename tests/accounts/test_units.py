"""The policy, the throttle and the store's expiries, below the HTTP layer (a fake clock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlens.accounts.policy import (
    ROLE_PERMISSIONS,
    Membership,
    Permission,
    Principal,
    Role,
    authorize,
)
from eventlens.accounts.store import AccountStore
from eventlens.accounts.throttle import LoginThrottle
from eventlens.errors import NotFound, PermissionDenied


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@given(
    role=st.sampled_from(list(Role)),
    scopes=st.frozensets(st.sampled_from(list(Permission))),
    permission=st.sampled_from(list(Permission)),
    restricted=st.booleans(),
    own=st.booleans(),
)
def test_policy_is_role_and_scope_and_visibility(
    role: Role, scopes: frozenset[Permission], permission: Permission, restricted: bool, own: bool
) -> None:
    """Allowed exactly when the project is visible and both the role and the key allow it;
    invisible is NotFound whatever the permission (nothing leaks), else PermissionDenied."""
    p = Principal(
        kind="personal_key",
        user_id=1,
        memberships={1: Membership(1, role, frozenset({7}) if restricted else None)},
        scopes=scopes,
    )
    project, org = (7 if own else 8), 1
    visible = own or not restricted
    allowed = permission in ROLE_PERMISSIONS[role] and permission in scopes
    if not visible:
        with pytest.raises(NotFound):
            authorize(p, project, org, permission)
    elif not allowed:
        with pytest.raises(PermissionDenied):
            authorize(p, project, org, permission)
    else:
        authorize(p, project, org, permission)
    with pytest.raises(NotFound):
        authorize(p, project, 2, permission)  # another organisation: always invisible


def test_throttle_window_and_retry_after() -> None:
    clock = Clock()
    t = LoginThrottle(max_failures=2, window=60, clock=clock)
    assert t.retry_after("a", "ip") == 0
    t.failed("a", "ip")
    clock.now += 10
    t.failed("a", "ip")
    assert t.retry_after("a", "ip") == pytest.approx(50)  # the first failure leaves at 60
    clock.now += 50
    assert t.retry_after("a", "ip") == 0
    t.failed("a", "ip")
    t.succeeded("a")
    assert t.retry_after("a", "ip") == 0


def test_sessions_tokens_keys_expire(tmp_path: Path) -> None:
    clock = Clock()
    store = AccountStore(tmp_path / "meta.db", clock=clock)
    try:
        store.ensure_default_org()
        user = store.create_user("a@example.com", "long enough pw")
        secret, _ = store.create_session(user.id)
        clock.now += 5
        assert store.session(secret, idle=10, max_age=100) is not None
        clock.now += 11
        assert store.session(secret, idle=10, max_age=100) is None
        token = store.create_token("invite", "b@example.com", ttl=60, org_id=1, role=Role.VIEWER)
        clock.now += 61
        with pytest.raises(NotFound):
            store.use_token("invite", token)
        key, _ = store.create_key(
            user.id, "k", frozenset({Permission.QUERY_READ}), None, clock.now + 5
        )
        assert store.key_by_secret(key) is not None
        clock.now += 5
        assert store.key_by_secret(key) is None
    finally:
        store.close()
