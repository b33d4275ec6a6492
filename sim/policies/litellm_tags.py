"""LiteLLM's tag-based routing: which of a model group's deployments may serve a
request, given the tags on the deployments and the tags the request carries.

The rules of litellm 1.110.2 (``router_strategy/tag_based_routing.py``, checked
against the real library by the conformance suite), applied to the group's
deployments that are out of cooldown:
- a request without tags goes to the deployments tagged ``default``, or to any
  deployment when none is;
- ``!tag`` excludes the deployments carrying ``tag``; ``&tag`` requires it;
- the other tags select the deployments carrying any of them (all of them with
  ``match_any: false``); when none does, the ``default``-tagged ones serve,
  unless the tag is one some deployment of the group carries (then nothing
  does);
- a request only constrained by ``!``/``&`` tags goes to the deployments that
  meet the constraints (among the ``default``-tagged ones when only ``!`` tags).

An empty result means LiteLLM refuses the group ("Not allowed to access model
due to tags configuration") and moves to the group's fallbacks.

Not emulated: regular expressions on request headers (``tag_regex``; a trace has
no headers), ``tag_routing_prefix``, tags inherited from keys and teams, and
``allow_fail_open``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

DEFAULT_TAG = "default"


def _split(tags: Sequence[str]) -> tuple[frozenset[str], list[str], frozenset[str]]:
    """(required, positive, excluded) as LiteLLM splits a request's tags."""
    required = frozenset(t[1:] for t in tags if t.startswith("&") and len(t) > 1)
    excluded = frozenset(t[1:] for t in tags if t.startswith("!") and len(t) > 1)
    positive = [t for t in tags if not t.startswith(("&", "!"))]
    return required, positive, excluded


def allowed_deployments(request_tags: Sequence[str], pool: Sequence[str], group: Sequence[str],
                        deployment_tags: Mapping[str, Sequence[str]], match_any: bool = True) -> list[str]:
    """The deployments of ``pool`` (the group's deployments out of cooldown) that may serve a
    request with ``request_tags``; ``group`` is all of the group's deployments."""
    def tags_of(d: str) -> frozenset[str]:
        return frozenset(deployment_tags.get(d, ()))

    defaults = [d for d in pool if DEFAULT_TAG in tags_of(d)]
    if not request_tags:
        return defaults or list(pool)
    required, positive, excluded = _split(request_tags)
    candidates = [d for d in pool if not (excluded & tags_of(d)) and required <= tags_of(d)]
    if not positive:
        if required:
            return candidates
        return [d for d in (defaults or pool) if not (excluded & tags_of(d))]
    wanted = set(positive)
    if match_any:
        matches = [d for d in candidates if wanted & tags_of(d)]
    else:
        matches = [d for d in candidates if wanted <= tags_of(d)]
    if matches:
        return matches
    if any(wanted & tags_of(d) for d in group):  # a tag the group knows: no stand-in
        return []
    return [d for d in candidates if DEFAULT_TAG in tags_of(d)]
