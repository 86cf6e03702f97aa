"""The overlay algorithm: whiteouts, opaque directories, replacement, early stop, scope.

Besides worked examples, hypothesis compares :class:`Overlay` (top layer first) with a naive
bottom-up application of random layer stacks, the way an unpacker writes them to disk.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from cnbkit.oci.whiteout import DIRECTORY, OPAQUE, Node, Overlay
from hypothesis import given, settings
from hypothesis import strategies as st

Layer = list[tuple[str, str]]


def _parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _drop(state: dict[str, Node], name: str, *, keep_self: bool = False) -> None:
    under = name + "/" if name else ""
    for key in list(state):
        if (key == name and not keep_self) or (key.startswith(under) and key != name):
            del state[key]


def naive(layers: list[Layer]) -> dict[str, Node]:
    """Apply ``layers`` bottom first, as an unpacker does on disk."""
    state: dict[str, Node] = {}
    for index, entries in enumerate(layers):
        kinds: dict[str, str] = {}
        implied: set[str] = set()
        whiteouts: set[str] = set()
        opaque: set[str] = set()
        for name, kind in entries:
            parent, _, base = name.rpartition("/")
            implied.update([*_parents(name)])
            if base == OPAQUE:
                opaque.add(parent)
            elif base.startswith(".wh..wh."):
                continue
            elif base.startswith(".wh."):
                whiteouts.add(f"{parent}/{base[4:]}" if parent else base[4:])
            else:
                kinds[name] = kind
        for directory in opaque:
            _drop(state, directory, keep_self=True)
        for target in whiteouts:
            _drop(state, target)
        own = {name: (DIRECTORY, False) for name in implied if name not in kinds}
        own.update({name: (kind, True) for name, kind in kinds.items()})
        for name in sorted(own, key=lambda n: n.count("/")):
            kind, explicit = own[name]
            current = state.get(name)
            if current is not None and current.is_dir and kind == DIRECTORY:
                if explicit:
                    state[name] = Node(DIRECTORY, index)
                continue
            _drop(state, name)
            state[name] = Node(kind, index if explicit else None)
    return state


def top_down(layers: list[Layer], scope: str = "", *, stop: bool = False) -> Overlay:
    overlay = Overlay(scope)
    for index in reversed(range(len(layers))):
        overlay.add_layer(layers[index], index)
        if stop and overlay.settled():
            break
    return overlay


def _related(name: str, scope: str) -> bool:
    return not scope or name == scope or name.startswith(scope + "/") or scope.startswith(name + "/")


# -- worked examples ---------------------------------------------------------------------------

F, D, L = "file", DIRECTORY, "symlink"


def test_upper_file_wins_and_owner_is_recorded() -> None:
    layers = [
        [("cnb/lifecycle/analyzer", F), ("cnb/lifecycle/lifecycle.toml", F)],
        [("cnb/lifecycle/analyzer", F)],
    ]
    overlay = top_down(layers)
    assert overlay.owner("cnb/lifecycle/analyzer") == 1
    assert overlay.owner("cnb/lifecycle/lifecycle.toml") == 0
    assert overlay.node("cnb") == Node(D, None)


def test_whiteout_removes_lower_subtree_only() -> None:
    layers = [[("cnb/lifecycle/analyzer", F)], [("cnb/.wh.lifecycle", F), ("cnb/lifecycle/new", F)]]
    overlay = top_down(layers)
    assert overlay.visible("cnb/lifecycle/new")
    assert not overlay.visible("cnb/lifecycle/analyzer")
    assert overlay.settled("cnb/lifecycle")


def test_opaque_directory_hides_lower_children() -> None:
    layers = [
        [("cnb/lifecycle/", D), ("cnb/lifecycle/old", F)],
        [("cnb/lifecycle/", D), ("cnb/lifecycle/.wh..wh..opq", F), ("cnb/lifecycle/launcher", F)],
    ]
    overlay = Overlay("cnb/lifecycle")
    overlay.add_layer(layers[1], 1)
    assert overlay.settled()  # layer 0 need not be read
    assert set(overlay.tree()) == {"cnb/lifecycle", "cnb/lifecycle/launcher"}


def test_non_directory_replaces_lower_directory() -> None:
    layers = [[("cnb/lifecycle/analyzer", F)], [("cnb/lifecycle", L)]]
    overlay = top_down(layers, "cnb/lifecycle", stop=True)
    assert overlay.tree() == {"cnb/lifecycle": Node(L, 1)}
    assert overlay.settled()


def test_not_settled_while_lower_layers_may_add() -> None:
    overlay = Overlay("cnb/lifecycle")
    overlay.add_layer([("cnb/lifecycle/launcher", F)], 3)
    assert not overlay.settled()
    overlay.add_layer([("etc/passwd", F), ("cnb/.wh.lifecycle", F)], 2)
    assert overlay.settled()
    assert overlay.node("etc/passwd") is None  # outside the scope: not tracked


def test_streaming_add_tells_what_this_layer_supplies() -> None:
    overlay = Overlay()
    overlay.add_layer([("a/x", F), (".wh.b", F)], 2)
    layer = overlay.begin_layer(1)
    assert not layer.add("a/x", F)  # the upper layer's a/x wins
    assert layer.add("a/y", F)
    assert not layer.add("b/z", F)  # removed by the upper whiteout
    assert not layer.add("a/.wh.x", F)
    layer.finish()


def test_layers_must_be_fed_top_first() -> None:
    overlay = Overlay()
    overlay.add_layer([], 1)
    with pytest.raises(ValueError, match="top first"):
        overlay.add_layer([], 1)


def test_root_opaque_and_aufs_metadata() -> None:
    layers = [[("a", F)], [(OPAQUE, F), (".wh..wh.plnk", D), ("b", F)]]
    overlay = top_down(layers)
    assert set(overlay.tree()) == {"b"}  # aufs bookkeeping is neither an entry nor a whiteout
    assert overlay.settled("a")


# -- random stacks against the naive model -----------------------------------------------------

_NAMES = ["a", "b", "c"]
_paths = st.lists(st.sampled_from(_NAMES), min_size=1, max_size=3).map("/".join)
_entry = st.one_of(
    st.tuples(_paths, st.sampled_from([D, D, F, L])),
    _paths.map(lambda p: (_whiteout(p), F)),
    st.one_of(st.just(""), _paths).map(lambda p: (f"{p}/{OPAQUE}" if p else OPAQUE, F)),
)


def _whiteout(path: str) -> str:
    parent, _, base = path.rpartition("/")
    return f"{parent}/.wh.{base}" if parent else f".wh.{base}"


def _well_formed(entries: Iterable[tuple[str, str]]) -> Layer:
    """Drop entries below a non-directory of the same layer (no tar unpacks to that)."""
    entries = list(entries)
    final = {name: kind for name, kind in entries if ".wh." not in name.rsplit("/", 1)[-1]}
    return [
        (name, kind)
        for name, kind in entries
        if not any(final.get(parent, D) != D for parent in _parents(name))
    ]


_layers = st.lists(st.lists(_entry, max_size=8).map(_well_formed), min_size=1, max_size=5)


@settings(max_examples=250, deadline=None)
@given(_layers)
def test_overlay_matches_naive_apply(layers: list[Layer]) -> None:
    assert top_down(layers).tree("") == dict(sorted(naive(layers).items()))


@settings(max_examples=250, deadline=None)
@given(_layers, _paths)
def test_scope_and_early_stop_give_the_same_subtree(layers: list[Layer], scope: str) -> None:
    expected = {name: node for name, node in naive(layers).items() if _related(name, scope)}
    full = top_down(layers, scope)
    assert {name: node for name, node in full.tree("").items()} == dict(sorted(expected.items()))
    stopped = top_down(layers, scope, stop=True)
    under = {k: v for k, v in expected.items() if k == scope or k.startswith(scope + "/")}
    assert stopped.tree() == dict(sorted(under.items()))


@settings(max_examples=200, deadline=None)
@given(_layers)
def test_streamed_answers_match_final_owners(layers: list[Layer]) -> None:
    final = naive(layers)
    overlay = Overlay()
    for index in reversed(range(len(layers))):
        layer = overlay.begin_layer(index)
        answers = {name.strip("/"): layer.add(name, kind) for name, kind in layers[index]}
        layer.finish()
        for name, supplied in answers.items():
            node = final.get(name)
            assert supplied == (node is not None and node.layer == index), name


def test_last_entry_of_a_layer_wins_under_an_implied_directory() -> None:
    layers = [[("a", D), ("a", F)], [("a/x", F)]]
    assert top_down(layers).tree("") == dict(sorted(naive(layers).items()))
    assert top_down(layers).node("a") == Node(D, None)
