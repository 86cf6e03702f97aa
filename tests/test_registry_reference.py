"""Image references against Docker's ``reference`` package, and pack's registry mirrors.

``parse_reference`` says it follows Docker's ``ParseNormalizedNamed``: :func:`docker_parse` is
that function written again from the Go source (its regular expressions, ``splitDockerDomain``,
the 64-hex and 255-character rules), with cnbkit's documented narrowings on top (a ``sha256``
digest only, a port of at most 5 digits, an IPv6 host may hold an IPv4 tail, Docker Hub's API
host ``registry-1.docker.io`` is Docker Hub, a 64-hex name is refused even with a tag).
Hypothesis generates references from the grammar's parts, valid and broken, and random text;
both must accept the same ones, normalised the same way.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from cnbkit.errors import CnbkitError, UsageError
from cnbkit.transport.registry.reference import (
    DOCKER_HUB,
    Reference,
    is_reference,
    mirrored,
    parse_mirrors,
    parse_reference,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

HEX = "0123456789abcdef"
DIGEST = "sha256:" + "ab" * 32

# -- Docker's grammar (distribution/reference regexp.go), anchored as Go anchors: \Z ---------
_ALNUM = r"[a-z0-9]+"
_PATH = rf"{_ALNUM}(?:(?:[._]|__|[-]+){_ALNUM})*"
_DC = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DC}(?:\.{_DC})*|\[[a-fA-F0-9:.]+\])(?::[0-9]{{1,5}})?"  # cnbkit: port <= 5 digits, v4 tail
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})"  # cnbkit: not Docker's sha384
_REMAINDER = re.compile(rf"({_PATH}(?:/{_PATH})*)(?::({_TAG}))?(?:@({_DIGEST}))?\Z", re.ASCII)


def docker_parse(raw: str) -> tuple[str, str, str | None, str | None] | None:
    """``ParseNormalizedNamed(raw)`` as ``(domain, path, tag, digest)``, or ``None`` (refused)."""
    name = raw.partition("@")[0]
    head, colon, maybe_tag = name.rpartition(":")
    if re.fullmatch(r"[a-f0-9]{64}", head if colon and "/" not in maybe_tag else name):
        return None  # Docker checks the whole string; cnbkit the name, with a tag or digest too
    # splitDockerDomain
    i = raw.find("/")
    first = raw[:i]
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = "docker.io", raw
    else:
        domain, remainder = first, raw[i + 1 :]
        if not re.fullmatch(_DOMAIN, domain, re.ASCII):
            return None  # cnbkit: Docker would read "a_b.c/app" as a path with no registry
    if domain in ("index.docker.io", "registry-1.docker.io"):  # cnbkit: registry-1 too
        domain = "docker.io"
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    if remainder.partition(":")[0].lower() != remainder.partition(":")[0]:
        return None  # "repository name must be lowercase"
    match = _REMAINDER.match(remainder)
    if match is None or len(domain) + 1 + len(match[1]) > 255:
        return None
    return domain, match[1], match[2], match[3]


def ours(raw: str) -> tuple[str, str, str | None, str | None] | None:
    try:
        ref = parse_reference(raw)
    except UsageError as refused:
        assert str(refused).startswith(f"invalid image reference {raw[:200]!r}: ")
        return None
    return ref.registry, ref.repository, ref.tag, ref.digest


# -- generated references --------------------------------------------------------------------

_alnum = st.text("abz09", min_size=1, max_size=4)
_separator = st.sampled_from([".", "_", "__", "-", "--", "---", "..", "_.", "-_", "___", "A", ""])
component = st.builds(
    lambda head, rest: head + "".join(s + a for s, a in rest),
    st.one_of(_alnum, st.sampled_from(["", "A", "-a", "_"])),
    st.lists(st.tuples(_separator, _alnum), max_size=3),
)
_label = st.sampled_from(["a", "Z9", "a-b", "a--9", "-a", "a-", "x_y", "", "localhost", "LocalHost"])
host = st.one_of(
    st.builds(".".join, st.lists(_label, min_size=1, max_size=3)),
    st.sampled_from(["[::1]", "[fe80::1]", "[::ffff:10.0.0.1]", "[]", "[g::1]", "::1"]),
    st.sampled_from(["docker.io", "index.docker.io", "registry-1.docker.io", "ghcr.io", "localhost"]),
)
port = st.sampled_from(["", ":5000", ":1", ":65535", ":12345", ":123456", ":", ":x", ":-1"])
registry = st.one_of(st.just(""), st.builds(lambda h, p: f"{h}{p}/", host, port))
tag = st.one_of(
    st.just(""),
    st.builds(lambda t: f":{t}", st.text("aZ9_.-", min_size=0, max_size=6)),
    st.sampled_from([":" + "t" * 128, ":" + "t" * 129, ":_x", ":é", ":a/b"]),
)
digest = st.one_of(
    st.just(""),
    st.just("@" + DIGEST),
    st.sampled_from(
        [
            "@sha256:" + "A" * 64,
            "@sha256:" + "a" * 63,
            "@sha512:" + "a" * 128,
            "@sha384:" + "a" * 96,
            "@",
            "@x",
        ]
    ),
)
reference = st.builds(
    lambda r, path, t, d: r + "/".join(path) + t + d,
    registry,
    st.lists(component, min_size=1, max_size=3),
    tag,
    digest,
)


@settings(max_examples=600, deadline=None)
@given(reference)
@example("a" * 64)
@example("a" * 64 + ":v1")
@example("A" * 64)
@example("localhost:5000")
@example("Foo/bar")
@example("foo/Bar")
@example("x" * 200 + "/" + "y" * 54)
@example("x" * 200 + "/" + "y" * 55)
def test_references_are_read_as_docker_reads_them(raw: str) -> None:
    assert ours(raw) == docker_parse(raw)


@settings(max_examples=400, deadline=None)
@given(st.text("ab:/@.-_A9 \n", max_size=16))
def test_random_text_is_read_as_docker_reads_it(raw: str) -> None:
    expected = docker_parse(raw) if raw and not any(c.isspace() for c in raw) else None
    assert ours(raw) == expected
    assert is_reference(raw) is (expected is not None)


@settings(max_examples=300, deadline=None)
@given(reference)
def test_a_reference_prints_as_it_reads(raw: str) -> None:
    parsed = docker_parse(raw)
    if parsed is None:
        return
    ref = parse_reference(raw)
    assert parse_reference(str(ref)) == ref
    assert str(ref) == f"{ref.registry}/{ref.repository}" + (f":{ref.tag}" if ref.tag else "") + (
        f"@{ref.digest}" if ref.digest else ""
    )
    assert ref.name == f"{ref.registry}/{ref.repository}"
    assert ref.target == (ref.digest or ref.tag or "latest")


# -- each rule at its edge, and what the refusal says ---------------------------------------


def refusal(raw: str) -> str:
    with pytest.raises(UsageError) as raised:
        parse_reference(raw)
    return str(raised.value)


@pytest.mark.parametrize("raw", ["", " alpine", "alpine ", "al pine", "alpine\n", "al\tpine"])
def test_empty_or_whitespace_is_refused(raw: str) -> None:
    assert refusal(raw) == f"invalid image reference {raw!r}: it is empty or holds whitespace"


@pytest.mark.parametrize("raw", ["https://ghcr.io/app", "http://x/y", "oci://x"])
def test_a_scheme_is_refused(raw: str) -> None:
    assert refusal(raw).endswith("an image reference has no scheme (drop http:// or https://)")


def test_the_refusal_names_the_first_200_characters() -> None:
    raw = "A" * 300
    assert refusal(raw).startswith(f"invalid image reference {'A' * 200!r}: ")


def test_a_bad_digest_is_named() -> None:
    for bad in ("sha256:abc", "sha256:" + "A" * 64, "md5:" + "a" * 32, ""):
        assert refusal(f"app@{bad}").endswith("the digest must be sha256:<64 lower-case hex digits>")
    assert parse_reference(f"app@{DIGEST}").digest == DIGEST


def test_a_tag_up_to_128_characters() -> None:
    assert parse_reference("app:" + "t" * 128).tag == "t" * 128
    message = refusal("app:" + "t" * 129)
    assert f"tag {'t' * 129!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}" in message
    long = "t" * 150
    assert f"tag {long[:130]!r} must" in refusal(f"app:{long}")
    for bad in ("", "-x", ".x", "a!"):
        assert f"tag {bad!r} must match" in refusal(f"app:{bad}")
    assert parse_reference("app:_A.b-9").tag == "_A.b-9"


def test_a_colon_before_the_last_slash_is_a_port() -> None:
    assert parse_reference("host:5000/app") == Reference("host:5000", "app")
    assert parse_reference("host:5000/app:v1") == Reference("host:5000", "app", "v1")
    assert parse_reference("host:5000/app:v1@" + DIGEST) == Reference("host:5000", "app", "v1", DIGEST)


@pytest.mark.parametrize(
    ("raw", "registry", "repository"),
    [
        ("a.b/app", "a.b", "app"),
        ("a:1/app", "a:1", "app"),
        ("localhost/app", "localhost", "app"),
        ("Upper/app", "Upper", "app"),
        ("lower/app", DOCKER_HUB, "lower/app"),
        ("docker.io/app", DOCKER_HUB, "library/app"),
        ("index.docker.io/app", DOCKER_HUB, "library/app"),
        ("registry-1.docker.io/org/app", DOCKER_HUB, "org/app"),
        ("app", DOCKER_HUB, "library/app"),
        ("localhost:5000/app", "localhost:5000", "app"),
        ("[::1]/app", "[::1]", "app"),
    ],
)
def test_what_is_a_registry(raw: str, registry: str, repository: str) -> None:
    ref = parse_reference(raw)
    assert (ref.registry, ref.repository) == (registry, repository)


def test_an_upper_case_first_component_is_a_registry_even_beyond_ascii() -> None:
    # Docker: a first component that lower-casing changes is a registry; the Kelvin sign's
    # lower case ('k') sorts before it, so only "changed" (not "sorts first") says so
    assert refusal("\u212a/app").endswith("registry '\u212a' is not a valid host[:port]")
    assert refusal("Up_per/app").endswith("registry 'Up_per' is not a valid host[:port]")


def test_a_reference_cannot_change() -> None:
    ref = parse_reference("alpine")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "edge"  # type: ignore[misc]
    assert {ref: 1}[parse_reference("docker.io/library/alpine")] == 1


@pytest.mark.parametrize("registry", ["a..b", "-a.b", "a.b:123456", "a.b:", "[]:1", "a_b.c", "a.b:x"])
def test_a_bad_registry_is_named(registry: str) -> None:
    assert refusal(f"{registry}/app").endswith(f"registry {registry!r} is not a valid host[:port]")


def test_a_bad_component_is_named_cut_at_80() -> None:
    assert refusal("org/Up").endswith(
        "repository component 'Up' must be lower-case letters and digits, joined by '.', '_', '__' or '-'"
    )
    bad = "B" * 100
    assert f"component {bad[:80]!r} must" in refusal(f"org/{bad}")
    for path in ("a//b", "a/", "a_-b", "a..b", "a___b", "-a", "a-"):
        assert "repository component" in refusal(f"org/{path}")
    assert parse_reference("org/a__b-c--d.e_f").repository == "org/a__b-c--d.e_f"


def test_a_64_hex_name_is_an_image_id() -> None:
    hex64 = "0123456789abcdef" * 4
    for raw in (hex64, hex64 + ":v1", hex64 + "@" + DIGEST):
        assert refusal(raw).endswith("a 64-hex-digit name is an image ID, not a repository")
    assert parse_reference(hex64[:63]).repository == f"library/{hex64[:63]}"
    assert parse_reference(f"org/{hex64}").repository == f"org/{hex64}"


def test_the_name_is_at_most_255_characters_library_included() -> None:
    # docker.io/library/ is 18 characters of the 255
    assert parse_reference("a" * 237).repository == "library/" + "a" * 237
    assert refusal("a" * 238).endswith("the name is longer than 255 characters")
    assert parse_reference("r.io/" + "a" * 250).repository == "a" * 250
    assert "longer than 255" in refusal("r.io/" + "a" * 251)


def test_hosts_and_targets() -> None:
    hub = parse_reference("alpine")
    assert (hub.api_host, hub.hostname, hub.target, hub.name) == (
        "registry-1.docker.io",
        "registry-1.docker.io",
        "latest",
        "docker.io/library/alpine",
    )
    assert str(hub) == "docker.io/library/alpine"
    v6 = parse_reference("[fe80::1]:5000/app:v1")
    assert (v6.api_host, v6.hostname, v6.target) == ("[fe80::1]:5000", "fe80::1", "v1")
    assert parse_reference("[::1]/app").hostname == "::1"
    assert parse_reference("reg.example:443/app").hostname == "reg.example"
    assert parse_reference("reg.example/app").hostname == "reg.example"
    pinned = parse_reference("reg.example/app:v1").with_digest(DIGEST)
    assert (pinned.tag, pinned.digest, pinned.target) == ("v1", DIGEST, DIGEST)
    assert str(pinned) == f"reg.example/app:v1@{DIGEST}"
    with pytest.raises(CnbkitError):
        pinned.with_digest("sha256:../../etc")


# -- pack's registry mirrors -----------------------------------------------------------------


def test_mirror_pairs() -> None:
    assert parse_mirrors([]) == {}
    assert parse_mirrors(
        [
            "index.docker.io=mirror.example:5000",
            " ghcr.io = mirror.example/ghcr/x/ ",
            "*=[::1]:5000",
            "registry-1.docker.io=b.example",
        ]
    ) == {"docker.io": "b.example", "ghcr.io": "mirror.example/ghcr/x", "*": "[::1]:5000"}


@pytest.mark.parametrize(
    "pair",
    [
        "docker.io",
        "docker.io=",
        "=mirror.example",
        "bad_host=mirror.example",
        "docker.io=bad_host",
        "docker.io=mirror.example/Upper",
        "docker.io=mirror.example//x",
        "docker.io=mirror.example\n/x",
        "docker.io=mirror.example/a\n/b",
        "docker.io=mirror.example:123456",
        "**=mirror.example",
    ],
)
def test_a_bad_mirror_pair_is_refused(pair: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_mirrors(["docker.io=good.example", pair])
    assert str(raised.value) == (
        f"registry mirror {pair!r}: give REGISTRY=MIRROR (as in --registry-mirror "
        "index.docker.io=mirror.example:5000, or "
        "CNBKIT_REGISTRY_MIRRORS=index.docker.io=mirror.example,ghcr.io=mirror.example/ghcr)"
    )


def test_a_long_mirror_pair_is_named_cut_at_200() -> None:
    pair = "x" * 300
    with pytest.raises(UsageError, match=re.escape(f"registry mirror {pair[:200]!r}: give")):
        parse_mirrors([pair])


def test_mirrored_references() -> None:
    app = parse_reference("ghcr.io/org/app:v1@" + DIGEST)
    hub = parse_reference("alpine:3")
    assert mirrored(app, {}) is app
    assert mirrored(app, {"docker.io": "m.example"}) is app
    assert mirrored(app, {"ghcr.io": "m.example:5000"}) == Reference(
        "m.example:5000", "org/app", "v1", DIGEST
    )
    assert mirrored(app, {"ghcr.io": "m.example/pre/fix"}) == Reference(
        "m.example", "pre/fix/org/app", "v1", DIGEST
    )
    both = {"ghcr.io": "one.example", "*": "all.example"}
    assert mirrored(app, both).registry == "all.example"  # '*' first, as pack
    assert mirrored(hub, both) == Reference("all.example", "library/alpine", "3")
    assert mirrored(app, {"ghcr.io": "index.docker.io/mirror"}) == Reference(
        DOCKER_HUB, "mirror/org/app", "v1", DIGEST
    )
    assert mirrored(hub, parse_mirrors(["docker.io=m.example"])) == Reference(
        "m.example", "library/alpine", "3"
    )


def test_a_mirror_never_puts_a_newline_in_a_request() -> None:
    # Found by this file: the grammar's `$` let "host\n" through, into the request's Host line.
    for pair in ("docker.io=m.example\n/x", "docker.io=m.example/x\n/y"):
        with pytest.raises(UsageError):
            parse_mirrors([pair])
