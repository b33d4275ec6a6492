"""What the routers believe, as opposed to what is true: believed model quality,
the difficulty signal's noise, and the channel that brings feedback on answers.

Truth lives in ``models.<name>.quality`` and the world's faults; policies only
ever receive what this section describes. Each default is honest (noisy beliefs,
no feedback); a zero noise or a perfect, immediate channel hands a policy the
truth and makes it an upper bound.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .common import NonNegative, Probability, Strict

#: Default spread of believed ability around the truth (logit scale): a public
#: leaderboard's score for a model, carried over to a team's own traffic.
DEFAULT_QUALITY_NOISE_SD = 0.5
#: Default noise of the difficulty signal (a classifier's estimate), in units of
#: difficulty: with workloads of difficulty sd ~1 it correlates ~0.7 with the truth.
DEFAULT_DIFFICULTY_NOISE_SD = 1.0


class JudgeFeedback(Strict):
    """An automatic judge (an eval model) scoring a share of answers, soon after."""

    share: Probability = 0.1  # of answered requests it scores
    accuracy: Probability = 0.85  # chance its verdict (acceptable or not) is right
    delay_s: NonNegative = 60.0  # after the answer, when the verdict reaches the router


class RatingsFeedback(Strict):
    """Users rating answers: fewer, noisier and much later than a judge."""

    share: Probability = 0.02
    accuracy: Probability = 0.7
    delay_s: NonNegative = 3600.0


class FeedbackSpec(Strict):
    """Channels that deliver feedback on answers to ``observe()``; none by default."""

    judge: JudgeFeedback | None = None
    ratings: RatingsFeedback | None = None

    def channels(self) -> dict[str, JudgeFeedback | RatingsFeedback]:
        return {name: spec for name, spec in (("judge", self.judge), ("ratings", self.ratings)) if spec is not None}


class KnowledgeSpec(Strict):
    """What a router believes. ``quality_noise_sd``: believed ability = true ability
    + N(0, sd) per model and workload, for models without a ``quality_prior`` (an
    explicit belief, e.g. leaderboard figures, used as given). ``difficulty_noise_sd``:
    each request's ``difficulty_estimate`` = true difficulty + N(0, sd); null: no
    difficulty signal at all."""

    quality_noise_sd: NonNegative = DEFAULT_QUALITY_NOISE_SD
    difficulty_noise_sd: Annotated[float, Field(ge=0)] | None = DEFAULT_DIFFICULTY_NOISE_SD
    feedback: FeedbackSpec = FeedbackSpec()
