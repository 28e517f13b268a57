"""Signing in, in this process: the ``classtoken`` provider against a class list on disk (a right code, a
wrong, empty or revoked one, a revoke seen without a restart), ``identity`` for each kind of user, the
choice of providers and Entra ID's settings refused with messages that say what to set, the providers
handed to xlwings Server under the names it imports, and Microsoft Entra ID through xlwings Server's own
``entraid`` provider with tokens signed here: a key that is not the tenant's, an expired token, another
audience get 401 (not 500), Microsoft out of reach gets 503, and a valid token signs in with its roles."""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
import uuid
from dataclasses import replace
from types import SimpleNamespace

import httpx
import pytest
import server_app  # noqa: F401 - configures the environment before the app is imported
from fastapi import HTTPException
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from excel_addin.server import asgi
from excel_addin.server.auth import classtoken, entra, identities, providers, roster, routes, tokens
from excel_addin.server.auth.identities import LOCAL, SIGN_IN, Identity, NotSignedInError
from excel_addin.server.auth.roster import Person, Roster, RosterFile
from excel_addin.server.options import AUTH_PROVIDERS_ENV, Options, auth_providers, options


@pytest.fixture
def class_list(tmp_path, monkeypatch):
    """A class list of Alice (student) and Ms Smith (teacher) that the provider reads: (path, codes)."""
    path = tmp_path / "class.json"
    codes = {"alice": tokens.new_code(), "ms-smith": tokens.new_code()}
    people = [
        (Person("alice", "Alice"), codes["alice"]),
        (Person("ms-smith", "Ms Smith", "teacher"), codes["ms-smith"]),
    ]
    roster.save(Roster({}).enrolled(people), path)
    watched = RosterFile(path)
    monkeypatch.setattr(classtoken, "roster_file", lambda: watched)
    return path, codes


def validate(token):
    return asyncio.run(classtoken.validate_token(token))


def refused(token) -> HTTPException:
    with pytest.raises(HTTPException) as caught:
        validate(token)
    return caught.value


def test_a_right_code_signs_in_with_name_and_role(class_list):
    _, codes = class_list
    alice = validate(codes["alice"])
    assert (alice.id, alice.name, alice.roles) == ("alice", "Alice", ["student"])
    teacher = validate(f"Bearer {codes['ms-smith'].lower().replace('-', ' ')}")  # as typed, as a bearer
    assert (teacher.id, teacher.roles) == ("ms-smith", ["teacher"])


@pytest.mark.parametrize("token", ["", None, "   ", "AAAA-AAAA-AAAA-AAAA", "Bearer ", "alice", "x" * 5000])
def test_no_or_a_wrong_code_gets_401_with_the_sign_in_message(class_list, token):
    error = refused(token)
    assert (error.status_code, error.detail) == (401, SIGN_IN) and SIGN_IN == "sign in in the gradsheet pane"


def test_a_revoke_takes_effect_at_the_next_call_without_a_restart(class_list):
    path, codes = class_list
    assert validate(codes["alice"]).id == "alice"
    roster.save(roster.load(path).revoked("alice"), path)  # what `class revoke alice` does meanwhile
    assert refused(codes["alice"]).status_code == 401
    new = tokens.new_code()
    roster.save(roster.load(path).reissued("alice", new), path)
    assert validate(new).id == "alice" and refused(codes["alice"]).status_code == 401


def test_an_unreadable_class_list_gets_503_without_its_path(class_list):
    path, codes = class_list
    path.write_text("{ not json")
    error = refused(codes["alice"])
    assert (error.status_code, error.detail) == (503, classtoken.UNREADABLE)
    assert str(path) not in error.detail
    with pytest.raises(roster.RosterError, match=f"{path} is not a class list gradsheet can read"):
        roster.load(path)


def test_identity_of_each_kind_of_user(monkeypatch):
    local = SimpleNamespace(id="n/a", name="Anonymous", roles=[], claims={})
    assert identities.identity(local) == LOCAL == Identity("local", "Local user", teacher=False)
    signed = replace(options(), auth=("classtoken",))
    monkeypatch.setattr(identities, "options", lambda: signed)
    student = SimpleNamespace(id="alice", name="Alice", roles=["student"], claims={})
    assert identities.identity(student) == Identity("alice", "Alice", teacher=False)
    teacher = SimpleNamespace(id="ms-smith", name="Ms Smith", roles=["teacher"], claims={})
    assert identities.identity(teacher).teacher
    oid = str(uuid.uuid4()).upper()
    entra_user = SimpleNamespace(id=oid, name="Zoë", roles=["teacher"], claims={"oid": oid})
    assert identities.identity(entra_user) == Identity(oid.lower(), "Zoë", teacher=True)
    claims = {"preferred_username": "Ann.Lee@School.org"}
    by_name = SimpleNamespace(id=None, name=None, roles=[], claims=claims)
    assert identities.identity(by_name) == Identity("ann-lee-school-org", "Ann.Lee@School.org")
    for nobody in ("n/a", "../alice", "local", ""):  # with a provider, xlwings' anonymous user is nobody
        with pytest.raises(NotSignedInError, match=SIGN_IN):
            identities.identity(SimpleNamespace(id=nobody, name="x", roles=[], claims={}))


def test_which_providers_sign_in():
    assert auth_providers(None, shared=False) == ()
    assert auth_providers(None, shared=True) == ("classtoken",)
    assert auth_providers('["entraid"]', shared=True) == ("entraid",)
    assert auth_providers("classtoken, entraid", shared=False) == ("classtoken", "entraid")
    assert auth_providers("none", shared=False) == () == auth_providers("[]", shared=False)
    env = {"GRADSHEET_SERVER_SHARED": "true", "GRADSHEET_SERVER_RUNS": "/srv/g/runs"}
    shared = Options.from_env(env)
    assert shared.auth == ("classtoken",) and str(shared.class_file) == "/srv/g/class.json"
    assert Options.from_env(shared.to_env()) == shared
    # xlwings Server's example provider, which accepts a fixed test token
    with pytest.raises(ValueError, match="unknown sign-in provider 'custom': gradsheet's server knows"):
        auth_providers('["custom"]', shared=False)
    with pytest.raises(ValueError, match="a shared server needs sign-in: classtoken"):
        auth_providers("none", shared=True)
    with pytest.raises(ValueError, match=f"{AUTH_PROVIDERS_ENV} must be a JSON list such as"):
        auth_providers('["entraid"', shared=False)


TENANT, CLIENT = str(uuid.uuid4()), str(uuid.uuid4())
ENTRA_ENV = {entra.CLIENT_ID_ENV: CLIENT, entra.TENANT_ID_ENV: TENANT}


def test_entra_id_settings_are_checked_with_what_to_set():
    entra_only = replace(options(), auth=("entraid",))
    providers.check(entra_only, dict(ENTRA_ENV))  # complete: accepted
    with pytest.raises(ValueError) as missing:
        providers.check(entra_only, {})
    assert str(missing.value).startswith(
        "signing in with Microsoft Entra ID needs: set XLWINGS_AUTH_ENTRAID_CLIENT_ID to the Application "
        "(client) ID (Microsoft Entra admin center > App registrations"
    )
    assert "set XLWINGS_AUTH_ENTRAID_TENANT_ID to the Directory (tenant) ID" in str(missing.value)
    assert "docs/security.md, 'Signing in'" in str(missing.value)
    with pytest.raises(ValueError, match="CLIENT_ID must be the Application .client. ID, a GUID"):
        providers.check(entra_only, {**ENTRA_ENV, entra.CLIENT_ID_ENV: "gradsheet"})
    with pytest.raises(ValueError, match="unset XLWINGS_AUTH_ENTRAID_MULTITENANT"):
        providers.check(entra_only, {**ENTRA_ENV, entra.MULTITENANT_ENV: "true"})


def test_xlwings_server_imports_gradsheets_classtoken_and_its_own_entraid():
    assert sys.modules["auth.classtoken"] is classtoken
    assert sys.modules["auth"] is importlib.import_module("excel_addin.server.auth")
    with pytest.raises(ImportError):  # so xlwings Server falls back to xlwings_server.auth.entraid
        importlib.import_module("auth.entraid")
    assert asgi.settings.auth_providers == []  # this session's app: the one-person server


# Microsoft Entra ID, through xlwings Server's own provider, with a "tenant" key made here


@pytest.fixture
def entra_app(monkeypatch):
    """The app with Entra ID as its provider and this test's key as the tenant's: (client, tenant key)."""
    from xlwings_server.auth import entraid

    tenant_key = RSAKey.generate_key(2048, parameters={"kid": "tenant"})

    async def tenant_keys():
        return KeySet([tenant_key]).as_dict(private=False)

    monkeypatch.setattr(entraid.jwks, "get_jwks_json", tenant_keys)
    monkeypatch.setattr(asgi.settings, "auth_providers", ["entraid"])
    monkeypatch.setattr(asgi.settings, "auth_entraid_client_id", CLIENT)
    monkeypatch.setattr(asgi.settings, "auth_entraid_tenant_id", TENANT)
    monkeypatch.setattr(identities, "options", lambda: replace(options(), auth=("entraid",)))
    with server_app.client() as client:
        yield client, tenant_key


def token(key, **claims) -> str:
    now = int(time.time())
    payload = {
        "ver": "2.0", "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0", "aud": CLIENT,
        "oid": str(uuid.uuid4()), "name": "Ms Smith", "preferred_username": "smith@school.example",
        "iat": now, "nbf": now, "exp": now + 3600, "nonce": str(uuid.uuid4()), **claims,
    }  # fmt: skip
    return "Bearer " + jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key)


def me(client, authorization: str):
    return client.get("/gradsheet/me", headers={"Authorization": authorization, "Auth-Provider": "entraid"})


def test_entra_id_refuses_a_token_not_signed_by_the_tenant_expired_or_for_another_app(entra_app):
    client, tenant_key = entra_app
    impostor = RSAKey.generate_key(2048, parameters={"kid": "tenant"})  # same key id, not the tenant's key
    stranger = RSAKey.generate_key(2048, parameters={"kid": "elsewhere"})
    for bad in (
        token(impostor),
        token(stranger),
        token(tenant_key, exp=int(time.time()) - 60),
        token(tenant_key, aud=str(uuid.uuid4())),
        token(tenant_key, iss=f"https://login.microsoftonline.com/{uuid.uuid4()}/v2.0"),
        "Bearer not.a.jwt",
        token(tenant_key).removeprefix("Bearer "),
        "",
    ):
        response = me(client, bad)
        assert response.status_code == 401, (bad, response.text)
        assert response.json()["detail"].startswith("Auth error")  # xlwings Server's entraid provider
    body = server_app.call_body("BACKPROP_LOSS", [[[0.5]], [[0]]])
    headers = {"Authorization": token(impostor)}
    cell = client.post("/xlwings/custom-functions-call", json=body, headers=headers)
    assert cell.status_code == 401


def test_entra_id_signs_in_with_the_tokens_identity_and_teacher_role(entra_app):
    client, tenant_key = entra_app
    oid = str(uuid.uuid4())
    response = me(client, token(tenant_key, oid=oid, roles=["teacher"]))
    assert response.status_code == 200, response.text
    assert response.json() == {"id": oid, "name": "Ms Smith", "teacher": True}
    student = me(client, token(tenant_key, name="Alice")).json()
    assert student["name"] == "Alice" and student["teacher"] is False


def test_microsoft_out_of_reach_gets_503_saying_so(entra_app, monkeypatch):
    from xlwings_server.auth import entraid

    async def no_keys():
        return None

    async def unreachable():
        raise httpx.ConnectError("Name or service not known")

    monkeypatch.setattr(entraid.jwks, "get_jwks_json", no_keys)
    monkeypatch.setattr(entraid, "get_jwks_json_default", unreachable)
    client, tenant_key = entra_app
    response = me(client, token(tenant_key))
    assert response.status_code == 503 and response.json() == {"detail": routes.MICROSOFT_UNREACHABLE}
