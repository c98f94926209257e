"""Authentication and authorization in the admin: login, roles, CSRF, password storage, cookies."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from experiments.db import Account, ApiKey
from experiments.services import accounts


def test_anonymous_is_redirected_to_login(client) -> None:
    for path in ("/", "/admin/users", "/admin/api-keys", "/admin/audit"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/auth/login?next="), path


def test_login_then_dashboard_then_logout(client, auth) -> None:
    response = auth.login("ana@example.com", "analyst")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "ana@example.com" in page.get_data(as_text=True)
    token = auth.csrf_token("/")
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused(client, auth) -> None:
    auth.create("vic@example.com", "viewer")
    response = client.post(
        "/auth/login",
        data={
            "email": "vic@example.com",
            "password": "not the password",
            "csrf_token": auth.csrf_token(),
        },
    )
    assert response.status_code == 401
    assert "Unknown e-mail or wrong password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_keeps_next_on_site_only(client, auth) -> None:
    password = auth.create("n@example.com", "admin")
    for next_url, expected in (("/admin/users", "/admin/users"), ("//evil.example/x", "/")):
        client.get("/")  # a fresh page load for a fresh token
        response = client.post(
            f"/auth/login?next={next_url}",
            data={"email": "n@example.com", "password": password, "csrf_token": auth.csrf_token()},
        )
        assert response.headers["Location"] == expected


def test_viewer_gets_403_on_admin_actions(client, auth) -> None:
    auth.login("viewer@example.com", "viewer")
    assert client.get("/").status_code == 200
    token = auth.csrf_token("/")
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/api-keys").status_code == 403
    assert client.get("/admin/audit").status_code == 403
    response = client.post(
        "/admin/users",
        data={"email": "x@example.com", "role": "admin", "password": "p" * 20, "csrf_token": token},
    )
    assert response.status_code == 403
    with auth.app.extensions["liftlab.sessions"]() as session:
        assert session.scalar(select(Account).where(Account.email == "x@example.com")) is None


def test_analyst_reads_audit_but_not_users(client, auth) -> None:
    auth.login("analyst@example.com", "analyst")
    assert client.get("/admin/audit").status_code == 200
    assert client.get("/admin/users").status_code == 403


def test_post_without_csrf_token_is_rejected(client, auth) -> None:
    password = auth.create("c@example.com", "admin")
    response = client.post("/auth/login", data={"email": "c@example.com", "password": password})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still anonymous

    auth.login("admin2@example.com", "admin")
    response = client.post(
        "/admin/users", data={"email": "y@example.com", "role": "viewer", "password": "p" * 20}
    )
    assert response.status_code == 400
    with auth.app.extensions["liftlab.sessions"]() as session:
        assert session.scalar(select(Account).where(Account.email == "y@example.com")) is None


def test_passwords_are_stored_only_as_argon2_hashes(auth) -> None:
    password = auth.create("h@example.com", "viewer", password="a long secret passphrase")
    with auth.app.extensions["liftlab.sessions"]() as session:
        account = session.scalar(select(Account).where(Account.email == "h@example.com"))
        assert account.password_hash.startswith("$argon2id$")
        assert password not in account.password_hash
        row = session.execute(select(Account.__table__)).mappings().all()
        assert all(password not in str(value) for r in row for value in r.values())


def test_session_cookie_is_httponly_and_samesite(client, auth) -> None:
    response = auth.login("cookie@example.com", "viewer")
    cookies = [v for k, v in response.headers.items() if k == "Set-Cookie"]
    session_cookie = next(c for c in cookies if c.startswith("session="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=Lax" in session_cookie


def test_admin_creates_user_and_bad_input_names_the_field(client, auth) -> None:
    auth.login()
    token = auth.csrf_token("/admin/users")
    response = client.post(
        "/admin/users",
        data={
            "email": "new@example.com",
            "role": "analyst",
            "password": "short",
            "csrf_token": token,
        },
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "new@example.com" in page  # the form keeps the user's input
    assert re.search(r"at least 12 characters", page)
    response = client.post(
        "/admin/users",
        data={
            "email": "new@example.com",
            "role": "analyst",
            "password": "long enough pass",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    with auth.app.extensions["liftlab.sessions"]() as session:
        account = session.scalar(select(Account).where(Account.email == "new@example.com"))
        assert account is not None and account.role == "analyst"


def test_api_key_shown_once_hashed_and_revocable(client, auth) -> None:
    auth.login()
    token = auth.csrf_token("/admin/api-keys")
    response = client.post(
        "/admin/api-keys",
        data={
            "name": "checkout app",
            "scope_assign": "y",
            "scope_ingest": "y",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    secret = re.search(r"(ll_[0-9a-f]{8}_[A-Za-z0-9_\-]+)", response.get_data(as_text=True)).group(
        1
    )
    assert secret not in client.get("/admin/api-keys").get_data(as_text=True)  # shown once
    sessions = auth.app.extensions["liftlab.sessions"]
    with sessions.begin() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.name == "checkout app"))
        assert key.scopes == ["assign", "ingest"]
        assert secret not in key.key_hash
        assert accounts.verify_api_key(session, secret, "assign").id == key.id
        with pytest.raises(accounts.PermissionDeniedError):
            accounts.verify_api_key(session, secret, "admin")
        key_id = key.id
    response = client.post(f"/admin/api-keys/{key_id}/revoke", data={"csrf_token": token})
    assert response.status_code == 302
    with sessions() as session, pytest.raises(accounts.PermissionDeniedError, match="revoked"):
        accounts.verify_api_key(session, secret, "assign")


def test_last_admin_cannot_be_demoted(auth) -> None:
    from experiments.errors import ConflictError

    auth.login("only@example.com", "admin")
    with auth.app.extensions["liftlab.sessions"]() as session:
        account = session.scalar(select(Account).where(Account.email == "only@example.com"))
        with pytest.raises(ConflictError):
            accounts.update_account(session, account.id, role="viewer")
