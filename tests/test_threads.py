"""Thread pages render flat (Node.walk), and the session guards against a CPython 3.11 crash."""

from __future__ import annotations

import gc
import random
import sys
from types import SimpleNamespace

import pytest
from sqlalchemy import event, select

from forum.extensions import db
from forum.services.threads import Node


def random_forest(seed: int, size: int) -> list[Node]:
    rng = random.Random(seed)
    roots: list[Node] = []
    everyone: list[Node] = []
    for i in range(size):
        node = Node(SimpleNamespace(id=i))
        if not everyone or rng.random() < 0.2:
            roots.append(node)
        else:
            rng.choice(everyone).children.append(node)
        everyone.append(node)
    return roots


def nested(nodes: list[Node]) -> str:
    return "".join(
        f"<li>{n.comment.id}"
        + (f'<ol class="children">{nested(n.children)}</ol>' if n.children else "")
        + "</li>"
        for n in nodes
    )


def flat(nodes: list[Node]) -> str:
    """What templates/_macros/comments.html writes, without the markup of a comment."""
    out = []
    for root in nodes:
        for node, closes in root.walk():
            out.append(f"<li>{node.comment.id}")
            if node.children:
                out.append('<ol class="children">')
            else:
                out.append("</li>" + "</ol></li>" * closes)
    return "".join(out)


@pytest.mark.parametrize("seed", range(20))
def test_walk_closes_every_reply_list_like_nested_rendering(seed):
    roots = random_forest(seed, size=random.Random(seed).randint(1, 60))
    assert flat(roots) == nested(roots)


def test_walk_of_a_deep_chain_closes_all_levels_after_the_last():
    chain = [Node(SimpleNamespace(id=i)) for i in range(5)]
    for parent, child in zip(chain, chain[1:], strict=False):
        parent.children.append(child)
    assert [closes for _node, closes in chain[0].walk()] == [0, 0, 0, 0, 4]


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the guard is only for CPython 3.11")
def test_session_close_runs_with_the_garbage_collector_paused(app):
    seen = []
    with app.app_context():
        db.session.execute(select(1))
        event.listen(db.session(), "after_transaction_end", lambda *_: seen.append(gc.isenabled()))
        db.session.close()
    assert seen == [False]
    assert gc.isenabled()
