"""The service fixtures work, with real clients: requests, skopeo, the Docker SDK and CLI."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import docker
import psutil
import pytest
import requests

from tests.services import skopeo
from tests.services.credentials import NOT_FOUND, CredentialHelper, DockerConfig
from tests.services.dockerd import Dockerd
from tests.services.proc import require_tool, wait_until
from tests.services.registry import Registry
from tests.services.token_server import TokenServer, decode_jwt

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = {"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory shared by this module's tests."""
    return tmp_path_factory.mktemp("services-work")


@pytest.fixture(scope="module")
def layout(work: Path) -> str:
    """A tiny OCI layout (umoci): ``oci:DIR:v1``."""
    return skopeo.tiny_layout(work / "layout", "v1", files={"/hello.txt": b"hello\n"})


@pytest.fixture(scope="module")
def docker_archive(work: Path, layout: str) -> Path:
    """The tiny image as a ``docker save`` tar (skopeo's docker-archive), tagged ``cnbkit/tiny:v1``."""
    path = work / "tiny-docker-save.tar"
    skopeo.skopeo("copy", layout, f"docker-archive:{path}:cnbkit/tiny:v1", workdir=work)
    return path


def _push(registry: Registry, layout: str, work: Path, repo_prefix: str = "svc") -> tuple[str, str]:
    """Push ``layout`` to a new repo; return (repo, manifest digest)."""
    repo = registry.unique_repo(repo_prefix)
    ref = skopeo.copy(layout, registry, repo, "v1", workdir=work)
    info = skopeo.inspect(registry, ref, workdir=work)
    return repo, str(info["Digest"])


# -- registries --------------------------------------------------------------------------------


def test_plain_registry_push_pull_and_access_log(registry: Registry, layout: str, work: Path) -> None:
    assert requests.get(f"{registry.url}/v2/", timeout=5).json() == {}
    repo, digest = _push(registry, layout, work)

    mark = registry.mark()
    head = requests.head(f"{registry.url}/v2/{repo}/manifests/v1", headers=ACCEPT, timeout=5)
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == digest
    manifest = requests.get(f"{registry.url}/v2/{repo}/manifests/{digest}", headers=ACCEPT, timeout=5).json()
    layer = manifest["layers"][0]["digest"]

    assert registry.count("HEAD", rf"/v2/{repo}/manifests/v1", since=mark) == 1
    assert registry.count("GET", rf"/v2/{repo}/manifests/sha256:[0-9a-f]{{64}}", since=mark) == 1
    assert registry.count("GET", rf"/v2/{repo}/blobs/{layer}", since=mark) == 0
    assert registry.count(since=mark) == 2  # the log's own marker requests are not counted
    entry = registry.log_requests("HEAD", since=mark)[0]
    assert (entry.status, entry.path, entry.user_agent.startswith("python-requests")) == (
        200,
        f"/v2/{repo}/manifests/v1",
        True,
    )
    # The push itself is in the log too: one manifest PUT for the tag.
    assert registry.count("PUT", rf"/v2/{repo}/manifests/v1") == 1


def test_basic_auth_registry(registry_basic: Registry, layout: str, work: Path) -> None:
    challenge = requests.get(f"{registry_basic.url}/v2/", timeout=5)
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"].startswith("Basic ")
    repo, digest = _push(registry_basic, layout, work)  # skopeo with --creds
    assert (
        registry_basic.session()
        .head(f"{registry_basic.url}/v2/{repo}/manifests/v1", headers=ACCEPT, timeout=5)
        .headers["Docker-Content-Digest"]
        == digest
    )

    bad = skopeo.skopeo(
        "inspect",
        *skopeo.registry_flags(registry_basic, "", creds=f"{registry_basic.username}:wrong"),
        f"docker://{registry_basic.ref(repo, 'v1')}",
        workdir=work,
        check=False,
    )
    assert bad.returncode != 0
    assert "unauthorized" in bad.stderr.lower() or "401" in bad.stderr
    anonymous = requests.get(f"{registry_basic.url}/v2/{repo}/tags/list", timeout=5)
    assert anonymous.status_code == 401


def test_token_registry_accepts_issued_tokens(
    registry_token: Registry, token_server: TokenServer, layout: str, work: Path
) -> None:
    challenge = requests.get(f"{registry_token.url}/v2/", timeout=5)
    assert challenge.status_code == 401
    header = challenge.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    assert f'realm="{token_server.realm}"' in header
    assert f'service="{token_server.service}"' in header

    mark = token_server.mark()
    repo, digest = _push(registry_token, layout, work)  # skopeo: token dance with --creds
    assert token_server.count(status=200, user="cnbkit", since=mark) >= 1
    assert token_server.count(scope=f"repository:{repo}:pull,push", since=mark) >= 1

    # A token fetched by hand is a real ES256 JWT that the registry verifies and honours.
    answer = requests.get(
        token_server.realm,
        params={"service": token_server.service, "scope": f"repository:{repo}:pull"},
        auth=("cnbkit", "token-pw"),
        timeout=5,
    )
    assert answer.status_code == 200
    token = answer.json()["token"]
    assert answer.json()["access_token"] == token
    jwt_header, claims = decode_jwt(token)
    assert jwt_header["alg"] == "ES256" and jwt_header["x5c"]
    assert (claims["iss"], claims["aud"], claims["sub"]) == (
        token_server.issuer,
        token_server.service,
        "cnbkit",
    )
    assert claims["access"] == [{"type": "repository", "name": repo, "actions": ["pull"]}]
    bearer = {"Authorization": f"Bearer {token}", **ACCEPT}
    got = requests.head(f"{registry_token.url}/v2/{repo}/manifests/v1", headers=bearer, timeout=5)
    assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == digest
    # ... only for its scope: another repository, or a push, needs another token.
    other = requests.get(f"{registry_token.url}/v2/other/tags/list", headers=bearer, timeout=5)
    assert other.status_code == 401
    upload = requests.post(f"{registry_token.url}/v2/{repo}/blobs/uploads/", headers=bearer, timeout=5)
    assert upload.status_code == 401

    # The Docker-style session helper does the dance itself.
    assert registry_token.session().get(f"{registry_token.url}/v2/{repo}/tags/list", timeout=5).json() == {
        "name": repo,
        "tags": ["v1"],
    }


def test_token_server_refuses_wrong_credentials(
    registry_token: Registry, token_server: TokenServer, work: Path, tmp_path: Path
) -> None:
    mark = token_server.mark()
    params = {"service": token_server.service, "scope": "repository:x:pull"}
    assert (
        requests.get(token_server.realm, params=params, auth=("cnbkit", "nope"), timeout=5).status_code == 401
    )
    assert requests.get(token_server.realm, params=params, timeout=5).status_code == 401  # no anonymous
    wrong_service = {**params, "service": "elsewhere"}
    assert (
        requests.get(
            token_server.realm, params=wrong_service, auth=("cnbkit", "token-pw"), timeout=5
        ).status_code
        == 400
    )
    failed = skopeo.skopeo(
        "inspect",
        *skopeo.registry_flags(registry_token, "", creds="cnbkit:nope"),
        f"docker://{registry_token.ref('x', 'v1')}",
        workdir=work,
        check=False,
    )
    assert failed.returncode != 0
    assert token_server.count(status=401, since=mark) == 3
    assert token_server.count(status=400, since=mark) == 1
    assert token_server.count(status=200, since=mark) == 0

    # The registry really checks the signature and the expiry (Distribution 2.8 allows 60 s leeway).
    forger = TokenServer(tmp_path / "forger", service=token_server.service, issuer=token_server.issuer)
    catalog = [{"type": "registry", "name": "catalog", "actions": ["*"]}]
    for token, status in (
        (token_server.issue("cnbkit", catalog), 200),
        (forger.issue("cnbkit", catalog), 401),
        (token_server.issue("cnbkit", catalog, ttl=-120), 401),
    ):
        answer = requests.get(
            f"{registry_token.url}/v2/_catalog", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert answer.status_code == status


def test_tls_registry(registry_tls: Registry, layout: str, work: Path) -> None:
    assert registry_tls.url.startswith("https://127.0.0.1:")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{registry_tls.url}/v2/", timeout=5)
    assert requests.get(f"{registry_tls.url}/v2/", verify=registry_tls.verify, timeout=5).status_code == 200
    repo, digest = _push(registry_tls, layout, work)  # skopeo with --dest-cert-dir, TLS verified
    assert digest.startswith("sha256:")
    assert registry_tls.count("PUT", rf"/v2/{repo}/manifests/v1") == 1


def test_pull_through_cache(registry_proxy: Registry, registry: Registry, layout: str, work: Path) -> None:
    assert registry_proxy.upstream is registry
    repo, digest = _push(registry, layout, work, "upstream")

    up = registry.mark()
    info = skopeo.inspect(registry_proxy, registry_proxy.ref(repo, "v1"), workdir=work)
    assert info["Digest"] == digest
    manifest = requests.get(f"{registry_proxy.url}/v2/{repo}/manifests/{digest}", headers=ACCEPT, timeout=5)
    assert manifest.status_code == 200
    layer = manifest.json()["layers"][0]["digest"]
    blob = requests.get(f"{registry_proxy.url}/v2/{repo}/blobs/{layer}", timeout=5)
    assert blob.status_code == 200
    assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == layer
    # Distribution 2.8 streams a missing blob from upstream to the client and, in parallel, fetches
    # it once more to store it: two upstream GETs. Once stored, the cache serves it alone.
    wait_until(
        lambda: registry.count("GET", rf"/v2/{repo}/blobs/{layer}", since=up) == 2,
        timeout=10,
        interval=0.05,
        what="the pull-through cache to store the blob",
    )
    stored = registry_proxy.root / "docker/registry/v2/blobs/sha256" / layer[7:9] / layer[7:] / "data"
    wait_until(stored.exists, timeout=10, what="the blob in the cache's storage")
    after = registry.mark()
    again = requests.get(f"{registry_proxy.url}/v2/{repo}/blobs/{layer}", timeout=5)
    assert again.content == blob.content
    assert registry.count(since=after) == 0
    assert registry.count("GET", rf"/v2/{repo}/manifests/.+", since=up) >= 1
    assert registry_proxy.count("GET", rf"/v2/{repo}/blobs/{layer}") == 2
    # A pull-through cache is read-only.
    assert requests.post(f"{registry_proxy.url}/v2/{repo}/blobs/uploads/", timeout=5).status_code >= 400


def test_factory_token_tls_registry_behind_a_cache(
    registry_factory: Callable[..., Registry], layout: str, work: Path
) -> None:
    secure = registry_factory(auth="token", tls=True)
    assert secure.token_server is not None and secure.token_server.realm.startswith("https://127.0.0.1:")
    repo, digest = _push(secure, layout, work, "secure")  # TLS registry and TLS token realm, one CA
    cache = registry_factory(upstream=secure)
    assert skopeo.inspect(cache, cache.ref(repo, "v1"), workdir=work)["Digest"] == digest
    assert secure.token_server.count(status=200, scope=f"repository:{repo}:pull") >= 1  # the cache's login
    with pytest.raises(ValueError, match="basic-auth upstream"):
        Registry(work / "never", upstream=registry_factory(auth="htpasswd"))


def test_registry_stop_leaves_no_process(tmp_path: Path) -> None:
    one = Registry(tmp_path / "short-lived", name="short-lived").start()
    pid = one._process.pid if one._process else 0
    assert psutil.pid_exists(pid)
    one.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{one.url}/v2/", timeout=2)


# -- dockerd -----------------------------------------------------------------------------------


def test_dockerd_load_inspect_pull_push(
    docker_host: Dockerd, registry: Registry, docker_archive: Path, layout: str, work: Path
) -> None:
    client = docker.DockerClient(base_url=docker_host.host, timeout=60)
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"]
        assert "127.0.0.0/8" in client.info()["RegistryConfig"]["InsecureRegistryCIDRs"]

        # docker load of a `docker save`-format tar
        loaded = client.images.load(docker_archive.read_bytes())
        assert [t for image in loaded for t in image.tags] == ["cnbkit/tiny:v1"]
        image = client.images.get("cnbkit/tiny:v1")
        assert image.attrs["Os"] == "linux"
        assert "cnbkit/tiny:v1" in [t for i in client.images.list() for t in i.tags]

        # docker pull from the loopback registry (plain HTTP: 127.0.0.0/8 is insecure by default)
        repo, digest = _push(registry, layout, work, "dockerd")
        pulled = client.images.pull(registry.ref(repo, "v1"))
        assert f"{registry.host}/{repo}@{digest}" in pulled.attrs["RepoDigests"]

        # docker push (the CLI, through the same daemon) to a new repository
        target = registry.unique_repo("pushed")
        assert image.tag(f"{registry.host}/{target}", "v2")
        mark = registry.mark()
        docker_host.cli("push", f"{registry.host}/{target}:v2")
        assert registry.count("PUT", rf"/v2/{target}/manifests/v2", since=mark) == 1
        pushed = skopeo.inspect(registry, registry.ref(target, "v2"), workdir=work, raw=True)
        assert pushed["mediaType"] == DOCKER_MANIFEST

        # docker save round-trips through the SDK
        saved = b"".join(client.images.get(f"{registry.host}/{target}:v2").save(named=True))
        with tarfile.open(fileobj=io.BytesIO(saved)) as tar:
            assert "manifest.json" in tar.getnames()
    finally:
        client.close()


def test_dockerd_pull_with_credential_helper(
    docker_host: Dockerd,
    registry_basic: Registry,
    layout: str,
    work: Path,
    docker_config: DockerConfig,
    credential_helper: CredentialHelper,
) -> None:
    repo, digest = _push(registry_basic, layout, work, "helper")
    assert registry_basic.username is not None and registry_basic.password is not None
    credential_helper.add(registry_basic.host, registry_basic.username, registry_basic.password)
    docker_config.write_cred_helpers({registry_basic.host: credential_helper})
    # The docker CLI asks the helper, then the daemon pulls with those credentials.
    result = docker_host.cli(
        "pull", registry_basic.ref(repo, "v1"), env={"DOCKER_CONFIG": str(docker_config.directory)}
    )
    assert digest in result.stdout
    assert [c["input"].strip() for c in credential_helper.calls("get")] == [registry_basic.host]


def test_dockerd_push_to_token_registry(
    docker_host: Dockerd,
    registry_token: Registry,
    token_server: TokenServer,
    docker_archive: Path,
    docker_config: DockerConfig,
) -> None:
    assert registry_token.username is not None and registry_token.password is not None
    docker_config.write_auths({registry_token.host: (registry_token.username, registry_token.password)})
    docker_host.cli("load", "-i", str(docker_archive))
    target = f"{registry_token.host}/{registry_token.unique_repo('daemon')}:v1"
    docker_host.cli("tag", "cnbkit/tiny:v1", target)
    mark = token_server.mark()
    docker_host.cli("push", target, env={"DOCKER_CONFIG": str(docker_config.directory)})
    # The daemon did the token dance itself (basic auth to the realm, then Bearer).
    pushes = [r for r in token_server.log(since=mark) if r.status == 200 and r.user == "cnbkit"]
    assert any("push" in a["actions"] for r in pushes for a in r.granted)


def test_dockerd_stop_leaves_no_process() -> None:
    require_tool("dockerd", "docker.io")
    daemon = Dockerd().start()
    try:
        assert daemon.startup_seconds < 60
        tree = [daemon._process.pid] if daemon._process else []
        tree += [p.pid for p in psutil.Process(tree[0]).children(recursive=True)]
        assert any("containerd" in psutil.Process(p).name() for p in tree)
    finally:
        daemon.stop()
    assert not [
        p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not daemon.directory.exists()


# -- credential helpers and DOCKER_CONFIG ----------------------------------------------------------


def _helper(helper: CredentialHelper, action: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [f"docker-credential-{helper.name}", action],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_credential_helper_protocol(credential_helper: CredentialHelper) -> None:
    server = "127.0.0.1:5999"
    missing = _helper(credential_helper, "get", server + "\n")
    assert (missing.returncode, missing.stdout.strip()) == (1, NOT_FOUND)
    stored = _helper(
        credential_helper, "store", json.dumps({"ServerURL": server, "Username": "u", "Secret": "s"})
    )
    assert stored.returncode == 0
    got = _helper(credential_helper, "get", server)
    assert json.loads(got.stdout) == {"ServerURL": server, "Username": "u", "Secret": "s"}
    assert json.loads(_helper(credential_helper, "list", "").stdout) == {server: "u"}
    assert _helper(credential_helper, "erase", server).returncode == 0
    assert credential_helper.stored() == {}
    assert [c["action"] for c in credential_helper.calls()] == ["get", "store", "get", "list", "erase"]


def test_docker_config_forms_read_by_the_docker_sdk(
    docker_config: DockerConfig, make_credential_helper: Callable[[str], CredentialHelper]
) -> None:
    store = make_credential_helper("cnbkit-store")
    per_host = make_credential_helper("cnbkit-host")
    store.add("127.0.0.1:6001", "from-store", "pw1")
    per_host.add("127.0.0.1:6002", "from-helper", "pw2")

    docker_config.write_auths({"127.0.0.1:6000": ("from-auths", "pw0")})
    assert (
        docker_config.read()["auths"]["127.0.0.1:6000"]["auth"]
        == base64.b64encode(b"from-auths:pw0").decode()
    )
    docker_config.write_creds_store(store)
    docker_config.write_cred_helpers({"127.0.0.1:6002": per_host})

    # The Docker SDK (a real client of these files and helpers) resolves each form.
    # With credsStore set, `auths` entries are only hints: the store answers for every host.
    config = docker.auth.load_config()
    assert config.creds_store == "cnbkit-store"
    assert config.resolve_authconfig("127.0.0.1:6001")["Username"] == "from-store"
    assert config.resolve_authconfig("127.0.0.1:6002")["Username"] == "from-helper"
    assert config.resolve_authconfig("127.0.0.1:6002")["Password"] == "pw2"
    assert [c["input"].strip() for c in per_host.calls("get")] == ["127.0.0.1:6002", "127.0.0.1:6002"]

    docker_config.write({})
    docker_config.write_auths({"127.0.0.1:6000": ("from-auths", "pw0")})
    plain = docker.auth.load_config().resolve_authconfig("127.0.0.1:6000")
    assert (plain["username"], plain["password"]) == ("from-auths", "pw0")


def test_missing_tool_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no-such-tool-xyz.*install the Debian package 'pkg'"):
        require_tool("no-such-tool-xyz", "pkg")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_tool("no-such-tool-xyz", "pkg")
