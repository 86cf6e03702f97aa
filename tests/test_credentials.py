"""Registry credentials from a Docker configuration, as ``docker pull`` finds them: the file
looked for where the Docker CLI looks, read once, every form of entry (``auth``,
``identitytoken``, ``username``/``password``, a ``docker-credential-*`` helper, real scripts on
``PATH``), and every malformed file or failing helper told in one line naming the file, never a
secret. The configuration files are written in this test's own directories.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from pathlib import Path

import pytest
from cnbkit.errors import CnbkitError
from cnbkit.transport.registry.credentials import Credentials, DockerConfigCredentials, find_docker_config

REGISTRY = "registry.example:5000"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _config(directory: Path, content: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _ask(tmp_path: Path, content: object, registry: str = REGISTRY) -> Credentials | None:
    _config(tmp_path / "docker", content)
    return DockerConfigCredentials(str(tmp_path / "docker"))(registry)


def _helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, script: str) -> None:
    """A ``docker-credential-NAME`` on PATH that runs ``script`` (sh)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    helper = bin_dir / f"docker-credential-{name}"
    helper.write_text(f"#!/bin/sh\ncat >/dev/null\n{script}\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


# -- where the file is ----------------------------------------------------------------------


def test_the_directory_given_is_the_only_place_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = _config(tmp_path / "env", {})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "env"))
    given = _config(tmp_path / "given", {})
    assert find_docker_config(str(tmp_path / "given")) == given
    assert find_docker_config(str(tmp_path / "empty")) is None
    assert find_docker_config() == from_env


def test_docker_config_pointing_at_a_directory_without_the_file_means_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _config(tmp_path / "home" / ".docker", {})
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    assert find_docker_config() is None
    monkeypatch.setenv("DOCKER_CONFIG", "")  # set but empty: as if unset
    assert find_docker_config() == tmp_path / "home" / ".docker" / "config.json"


def test_home_config_json_then_the_legacy_dockercfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    assert find_docker_config() is None
    home.mkdir()
    (home / ".dockercfg").write_text("{}")
    assert find_docker_config() == home / ".dockercfg"
    (home / ".docker" / "config.json").mkdir(parents=True)  # a directory is no config file
    assert find_docker_config() == home / ".dockercfg"
    (home / ".docker" / "config.json").rmdir()
    _config(home / ".docker", {})
    assert find_docker_config() == home / ".docker" / "config.json"


def test_no_file_means_anonymous(tmp_path: Path) -> None:
    assert DockerConfigCredentials(str(tmp_path))(REGISTRY) is None


# -- entries --------------------------------------------------------------------------------


def test_an_auth_entry_gives_its_user_and_password(tmp_path: Path) -> None:
    content = {"auths": {REGISTRY: {"auth": _b64("user:pa:ss")}, "other.example": {"auth": _b64("o:p")}}}
    assert _ask(tmp_path, content) == Credentials("user", "pa:ss")
    assert _ask(tmp_path, content, "third.example") is None


def test_an_entry_keyed_by_url_is_found_by_host(tmp_path: Path) -> None:
    content = {"auths": {f"https://{REGISTRY}/v1/": {"auth": _b64("user:secret")}}}
    assert _ask(tmp_path, content) == Credentials("user", "secret")


def test_an_identity_token_comes_without_a_password(tmp_path: Path) -> None:
    found = _ask(tmp_path, {"auths": {REGISTRY: {"identitytoken": "refresh-me", "auth": _b64("u:p")}}})
    assert found == Credentials(username="", identity_token="refresh-me")
    assert found is not None and found.username == "" and found.password == ""


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"username": "user", "password": "secret"}, Credentials("user", "secret")),
        ({"username": "user", "password": ""}, Credentials("user", "")),
        ({"username": "", "password": "secret"}, Credentials("", "secret")),
        ({"username": "", "password": ""}, None),
        ({"username": "user"}, None),
        ({"password": "secret"}, None),
        ({"username": 5, "password": "secret"}, None),
        ({"username": "user", "password": ["secret"]}, None),
    ],
)
def test_a_plain_username_and_password_entry(
    tmp_path: Path, entry: dict[str, object], expected: Credentials | None
) -> None:
    assert _ask(tmp_path, {"auths": {REGISTRY: entry}}) == expected


def test_a_plain_entry_for_another_registry_is_not_used(tmp_path: Path) -> None:
    content = {
        "auths": {
            "other.example": {"username": "other", "password": "theirs"},
            f"https://{REGISTRY}": {"username": "user", "password": "secret"},
        }
    }
    assert _ask(tmp_path, content) == Credentials("user", "secret")
    for other in ("other.example", "zeta.example"):  # sorting before and after the registry
        assert _ask(tmp_path, {"auths": {other: {"username": "o", "password": "p"}}}) is None
        both = {other: {"username": "o", "password": "p"}, REGISTRY: {"username": "u", "password": "s"}}
        assert _ask(tmp_path, {"auths": both}) == Credentials("u", "s")


def test_an_empty_plain_entry_lets_a_later_one_for_the_same_registry_answer(tmp_path: Path) -> None:
    content = {
        "auths": {
            REGISTRY: {"username": "", "password": ""},
            f"https://{REGISTRY}/v2/": {"username": "user", "password": "secret"},
        }
    }
    assert _ask(tmp_path, content) == Credentials("user", "secret")


@pytest.mark.parametrize("auths", [[], "", 0, None], ids=["list", "string", "zero", "null"])
def test_auths_that_are_not_an_object_give_none(tmp_path: Path, auths: object) -> None:
    assert _ask(tmp_path, {"auths": auths}) is None


def test_the_file_is_read_once(tmp_path: Path) -> None:
    path = _config(tmp_path / "docker", {"auths": {REGISTRY: {"auth": _b64("user:one")}}})
    provider = DockerConfigCredentials(str(tmp_path / "docker"))
    assert provider(REGISTRY) == Credentials("user", "one")
    path.write_text(json.dumps({"auths": {REGISTRY: {"auth": _b64("user:two")}}}))
    assert provider(REGISTRY) == Credentials("user", "one")
    path.write_text("not json")
    assert provider("other.example") is None


def test_credentials_keep_their_secrets_out_of_repr_and_are_frozen() -> None:
    found = Credentials("the-user", "the-password", "the-token")
    assert "the-user" in repr(found)
    assert "the-password" not in repr(found) and "the-token" not in repr(found)
    assert {found: 1}[Credentials("the-user", "the-password", "the-token")] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.username = "other"  # type: ignore[misc]


# -- helpers --------------------------------------------------------------------------------


def test_a_credential_helper_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _helper(tmp_path, monkeypatch, "fake", """printf '{"Username": "helped", "Secret": "s3cret"}'""")
    content = {"credHelpers": {REGISTRY: "fake"}, "auths": {REGISTRY: {"auth": _b64("file:pw")}}}
    assert _ask(tmp_path, content) == Credentials("helped", "s3cret")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"Username": "<token>", "Secret": "refresh"}', Credentials(identity_token="refresh")),
        ('{"Username": "", "Secret": "only-secret"}', Credentials("", "only-secret")),
        ('{"Username": "only-user", "Secret": ""}', Credentials("only-user", "")),
    ],
    ids=["token", "secret-only", "user-only"],
)
def test_what_a_credentials_store_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str, expected: Credentials
) -> None:
    _helper(tmp_path, monkeypatch, "store", f"printf '%s' '{answer}'")
    assert _ask(tmp_path, {"credsStore": "store"}) == expected


def test_a_helper_without_the_credentials_falls_back_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _helper(tmp_path, monkeypatch, "empty", "echo 'credentials not found in native keychain'; exit 1")
    content = {"credsStore": "empty", "auths": {REGISTRY: {"username": "user", "password": "secret"}}}
    assert _ask(tmp_path, content) == Credentials("user", "secret")
    assert _ask(tmp_path, {"credsStore": "empty"}) is None


@pytest.mark.parametrize(
    ("script", "told"),
    [
        ("echo 'vault    sealed, see https://admin:hunter2@vault.example/x'; exit 3", "vault sealed, see"),
        ("printf 'not json'", "Expecting value"),
        ("printf '[1, 2]'", "list indices must be integers"),
    ],
    ids=["fails", "not-json", "not-an-object"],
)
def test_a_failing_helper_is_one_line_naming_the_file_never_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, told: str
) -> None:
    _helper(tmp_path, monkeypatch, "broken", script)
    with pytest.raises(CnbkitError) as raised:
        _ask(tmp_path, {"credHelpers": {REGISTRY: "broken"}})
    message = str(raised.value)
    path = tmp_path / "docker" / "config.json"
    assert message.startswith(f"credentials for {REGISTRY} from {path}: "), message
    assert message.endswith(
        "; check credsStore/credHelpers and that the docker-credential-* helper is on PATH"
    )
    assert "\n" not in message and "hunter2" not in message
    assert told in message, message


def test_a_missing_helper_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        CnbkitError, match="docker-credential-absent-helper not installed or not available in PATH"
    ):
        _ask(tmp_path, {"credsStore": "absent-helper"})


def test_a_helper_message_is_cut_at_200_characters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _helper(tmp_path, monkeypatch, "chatty", "printf 'x%.0s' $(seq 400); exit 1")
    with pytest.raises(CnbkitError) as raised:
        _ask(tmp_path, {"credsStore": "chatty"})
    told = str(raised.value).split(f"{tmp_path / 'docker' / 'config.json'}: ", 1)[1].split("; check")[0]
    assert len(told) == 200 and told.endswith("x" * 100)


# -- malformed files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "told"),
    [
        ("{not json", "not a readable Docker config file (JSONDecodeError)"),
        (b"{\xff}", "not a readable Docker config file (UnicodeDecodeError)"),
        ("[1]", "not a Docker config file (expected a JSON object)"),
        ('"auths"', "not a Docker config file (expected a JSON object)"),
        (
            {"auths": {REGISTRY: "user:secret"}},
            f"invalid Docker config (Invalid configuration for registry {REGISTRY})",
        ),
        ({"auths": {REGISTRY: {"auth": "!!!"}}}, "invalid Docker config ("),
        (
            {"auths": {REGISTRY: {"auth": _b64("no-colon")}}},
            "invalid Docker config (not enough values to unpack",
        ),
        ({"auths": {REGISTRY: {"auth": 5}}}, "invalid Docker config (argument should be"),
    ],
    ids=["not-json", "not-utf8", "list", "string", "entry-not-object", "not-base64", "no-colon", "number"],
)
def test_a_malformed_file_is_one_line_naming_it(tmp_path: Path, content: object, told: str) -> None:
    directory = tmp_path / "docker"
    directory.mkdir()
    path = directory / "config.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(CnbkitError) as raised:
        DockerConfigCredentials(str(directory))(REGISTRY)
    assert str(raised.value).startswith(f"{path}: {told}"), str(raised.value)
    assert "secret" not in str(raised.value)


def test_a_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "docker"
    directory.mkdir()
    (directory / "config.json").symlink_to("/proc/self/mem")  # a regular file no read succeeds on
    with pytest.raises(CnbkitError) as raised:
        DockerConfigCredentials(str(directory))(REGISTRY)
    assert str(raised.value) == f"{directory / 'config.json'}: not a readable Docker config file (OSError)"


def test_an_empty_file_in_the_directory_given_means_none_not_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK, handed an empty configuration, goes looking for a file of its own ($HOME's).
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _config(tmp_path / "home" / ".docker", {"auths": {REGISTRY: {"auth": _b64("home:secret")}}})
    assert _ask(tmp_path, {}) is None


def test_auths_that_are_a_list_of_entries_is_one_line_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(CnbkitError) as raised:
        _ask(tmp_path, {"auths": [{"username": "user", "password": "secret"}]})
    path = tmp_path / "docker" / "config.json"
    assert str(raised.value) == f"{path}: invalid Docker config ('list' object has no attribute 'items')"


def test_a_helper_answer_without_a_username_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _helper(tmp_path, monkeypatch, "partial", """printf '{"Secret": "s3cret"}'""")
    with pytest.raises(CnbkitError) as raised:
        _ask(tmp_path, {"credsStore": "partial"})
    path = tmp_path / "docker" / "config.json"
    assert str(raised.value).startswith(
        f"credentials for {REGISTRY} from {path}: 'Username'; check credsStore"
    )
    assert "s3cret" not in str(raised.value)
