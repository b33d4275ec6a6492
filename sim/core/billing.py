"""What an attempt costs: the tokens the provider bills, at the price in force
when the attempt started, and the carbon of those tokens.

An answer is billed in full. An attempt the router abandoned (timed out, or a
hedge that lost the race) after the provider began streaming is billed as
``router.abandoned_charge`` says: the tokens generated until then
(``generated``), the whole answer (``full``), or nothing (``none``). Errors,
429s, context overflows and attempts that never reached the provider cost
nothing. Prices by input size (tiers) and cached input are ``prices.charge_usd``.
"""

from __future__ import annotations

from .attempts import Attempt
from sim.world.models import ModelTable
from sim.compact import compact
from .outcomes import ATTEMPT_CANCELLED, ATTEMPT_OK, ATTEMPT_TIMEOUT
from sim.pricing.points import charge_usd
from sim.world.world import World


class Billing:
    def __init__(self, world: World, catalog: ModelTable, abandoned_charge: str, input_tokens, output_tokens):
        """``input_tokens``, ``output_tokens``: the trace's columns as the router holds them (shared, not copied)."""
        self._prices = world.prices  # the price in force when an attempt started
        self.abandoned_charge = abandoned_charge
        self._input = input_tokens
        self._output = output_tokens
        self._cached = compact(world.cached_input_tokens)
        self._carbon = [c or 0.0 for c in catalog.carbon_g_per_mtok]
        # (input, output) USD per million tokens of models with one flat price for the whole run
        # (no change, no tiers, no cached-input rate): charged without looking the price up.
        self._flat = []
        for m in range(len(catalog.names)):
            price = self._prices.fixed(m)
            simple = price is not None and not price.tiers and price.cached_input_per_mtok is None
            self._flat.append((price.input_per_mtok, price.output_per_mtok) if simple else None)

    def charge(self, a: Attempt, i: int, end: float) -> tuple[float, float]:
        """(USD, grams CO2e) for attempt ``a`` of request i, ended at ``end``."""
        if a.cached:
            return 0.0, 0.0  # the response cache answered: no provider was called
        # An answer, the common case, without the call to billed_output: this runs for every attempt.
        output = self._output[i] if a.outcome == ATTEMPT_OK else self.billed_output(a, i, end)
        if output is None:
            return 0.0, 0.0
        m = a.model
        n_in = self._input[i]
        flat = self._flat[m]
        if flat is None:
            cost = charge_usd(self._prices.price(m, a.start), n_in, self._cached[i], output)
        else:  # charge_usd's formula for a flat price
            cost = (n_in * flat[0] + output * flat[1]) / 1e6
        return cost, (n_in + output) * self._carbon[m] / 1e6

    def billed_output(self, a: Attempt, i: int, end: float) -> float | None:
        """The output tokens billed, or None when nothing is."""
        outcome = a.outcome
        if outcome == ATTEMPT_OK:
            return self._output[i]
        if (outcome in (ATTEMPT_TIMEOUT, ATTEMPT_CANCELLED) and a.ttft is not None and a.service_start < end
                and self.abandoned_charge != "none"):
            if self.abandoned_charge == "full":
                return float(self._output[i])
            # 'generated': the tokens streamed before the router gave up.
            return min(float(self._output[i]), max(0.0, (end - a.service_start - a.ttft) * a.speed))
        return None
