"""``WWW-Authenticate`` as registries send it, parsed exactly (RFC 7235 with their quirks):
the registry tests drive the parser through real challenges; these pin each edge of it."""

from __future__ import annotations

import pytest
from cnbkit.transport.registry.auth import Challenge, parse_challenges


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (
            'Bearer realm="https://a/token",service="reg"',
            [("bearer", {"realm": "https://a/token", "service": "reg"})],
        ),
        ('Bearer realm = "r" , service\t=\t"s"', [("bearer", {"realm": "r", "service": "s"})]),
        ('Basic realm="a, b", Bearer realm="c"', [("basic", {"realm": "a, b"}), ("bearer", {"realm": "c"})]),
        ('Bearer realm="say \\"hi\\"",scope="x"', [("bearer", {"realm": 'say "hi"', "scope": "x"})]),
        ('Bearer realm="a\\\\b"', [("bearer", {"realm": "a\\b"})]),
        ('Bearer realm="ends in a backslash\\', [("bearer", {"realm": "ends in a backslash\\"})]),
        ('Bearer realm="unterminated', [("bearer", {"realm": "unterminated"})]),
        ('Bearer realm="x\\"', [("bearer", {"realm": 'x"'})]),  # an escaped quote ends the header
        ("Bearer realm=token68ish,service=reg", [("bearer", {"realm": "token68ish", "service": "reg"})]),
        (
            'Bearer realm=!x,service="s"',
            [("bearer", {"realm": "!x", "service": "s"})],
        ),  # "!" sorts before '"'
        ('Bearer REALM="r"', [("bearer", {"realm": "r"})]),
        ("Bearer realm=", [("bearer", {"realm": ""})]),
        ("Bearer realm =  ", [("bearer", {"realm": ""})]),
        ("Bearer   ", [("bearer", {})]),
        ('Bearer realm="r" @garbage', [("bearer", {"realm": "r"})]),
        ('Bearer realm="r",,, scope="s"', [("bearer", {"realm": "r", "scope": "s"})]),
        ("", []),
        # past 256 characters (where Python stops sharing int objects), ending in a bare name
        ('Bearer realm="' + "x" * 300 + '", Basic', [("bearer", {"realm": "x" * 300}), ("basic", {})]),
        ('Bearer realm="' + "y" * 300, [("bearer", {"realm": "y" * 300})]),  # unterminated, long
        ('Bearer realm="' + "z" * 300 + '", ', [("bearer", {"realm": "z" * 300})]),  # long, separator last
        # long, and ending in an empty value, in a name and spaces, in a name, spaces and "="
        ('Bearer realm="' + "w" * 300 + '", scope=', [("bearer", {"realm": "w" * 300, "scope": ""})]),
        ('Bearer realm="' + "v" * 300 + '", scope  ', [("bearer", {"realm": "v" * 300}), ("scope", {})]),
        ('Bearer realm="' + "u" * 300 + '", scope =  ', [("bearer", {"realm": "u" * 300, "scope": ""})]),
        ('Bearer realm="r"service="s"', [("bearer", {"realm": "r", "service": "s"})]),  # comma missed
    ],
)
def test_parse_challenges(header: str, parsed: list[tuple[str, dict[str, str]]]) -> None:
    assert parse_challenges(header) == [Challenge(scheme, params) for scheme, params in parsed]
