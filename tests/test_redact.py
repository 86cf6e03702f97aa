"""What every message goes through before it is printed, exactly: secrets masked
(``redact``), control characters escaped (``printable``), hostile texts and
lists cut (``clip``, ``listing``). The CLI tests show each rule in a message; these pin each
edge (which characters, which parameter names, where a text is cut)."""

from __future__ import annotations

import pytest
from cnbkit.redact import clip, described, listing, printable, redact


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:pw@host/x", "https://user:***@host/x"),
        ("https://TOKEN@host/x", "https://***@host/x"),  # a lone name is often a token
        ("https://us@er:p@w@host/x", "https://***@host/x"),  # an "@" in the user: all of it
        ("see oci+https://u:p@h and http://v:q@i", "see oci+https://u:***@h and http://v:***@i"),
        ("https://host/u@x", "https://host/u@x"),  # an "@" in the path is no userinfo
        ("https://h/x?X-Amz-Signature=abc&a=1", "https://h/x?X-Amz-Signature=***&a=1"),
        ("https://h/x?a=1&Token=abc#f", "https://h/x?a=1&Token=***#f"),
        ("https://h/x?access_key=k&sig=s", "https://h/x?access_key=***&sig=***"),
        ("https://h/x?page=2", "https://h/x?page=2"),
        ("Authorization: Basic dXNlcjpwYXNz==", "Authorization: Basic ***"),
        ("map[Authorization:[Bearer abc.DEF-123]]", "map[Authorization:[Bearer ***]]"),
        ("bearer eyJ0eXAi.x", "bearer ***"),
        ("Basic authentication required", "Basic authentication required"),  # prose
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\nb\r", "a\\x0ab\\x0d"),
        ("\x00\x1f \x7f\x80\x9f\xa0é", "\\x00\\x1f \\x7f\\x80\\x9f\xa0é"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\u2027\u2028\u2029\u202a\u202e\u202f", "\u2027\\u2028\\u2029\\u202a\\u202e\u202f"),
        ("\u2065\u2066\u2069\u206a", "\u2065\\u2066\\u2069\u206a"),
        ("\udc7f\udc80\udcff\udd00\ud800\udfff", "\\udc7f\\x80\\xff\\udd00\\ud800\\udfff"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_clip_and_listing() -> None:
    assert clip("a" * 256) == "a" * 256
    assert clip("a" * 257) == "a" * 256 + "..."
    assert (clip("abc", 3), clip("abcd", 3)) == ("abc", "abc...")
    assert listing(["a", "b"], 2) == "a, b"
    assert listing(["a", "b", "c"], 2) == "a, b and 1 more"
    assert listing([str(i) for i in range(10_001)]) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 9,991 more"
    assert listing([str(i) for i in range(10)]) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    assert listing(["x" * 300]) == "x" * 256 + "..."
    assert described({"p": ["a", "b"], "q": ["c"]}) == "a (p), b (p), c (q)"
    assert described({}) == "nothing"


def test_the_faces_redact_stays_the_function_once_its_module_is_imported() -> None:
    # The module and the function share a name: the first import of ``cnbkit.redact`` (any
    # core module's) must not turn ``cnbkit.redact`` into the module under a plugin's feet.
    import subprocess
    import sys

    probe = (
        "import importlib, cnbkit\n"
        "importlib.import_module('cnbkit.redact')\n"
        "importlib.import_module('cnbkit.plugin.host')\n"
        "print(cnbkit.redact('https://u:secret@h/x'), cnbkit.printable('a\\x1bb'))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["https://u:***@h/x", printable("a\x1bb")]
