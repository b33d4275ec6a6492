"""The scenario: its sections (``sim/scenario/schema/``) assembled into one pydantic v2
model, loaded from YAML and cross-checked: load and validate, nothing else.

Units are in the field names (``_s`` seconds, ``_per_mtok`` USD per million
tokens). Every model forbids unknown keys and non-finite numbers. Problems are
reported all at once, each with its file, line and field path; a section with
errors does not hide the cross-reference problems of the others.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from sim.errors import InputError, Problem, describe_error, error_location
from sim.limits import MAX_REPLICATIONS, MAX_SEED
from .schema.backtest import BacktestSpec
from .schema.common import Strict, one_folder_name
from .schema.deployments import ModelSpec
from .schema.faults import Event, ProviderSpec
from .schema.knowledge import KnowledgeSpec
from .schema.routing import Gates, Objectives, PolicySpec, RouterSpec
from .schema.traffic import TraceSpec, WorkloadSpec
from .yamlio import FieldPath, format_path, line_of, load_yaml


# --------------------------------------------------------------------------- scenario
class Scenario(Strict):
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    replications: Annotated[int, Field(ge=1, le=MAX_REPLICATIONS)] = 5
    trace: TraceSpec
    workloads: dict[str, WorkloadSpec] = Field(default_factory=dict)
    models: dict[str, ModelSpec]
    events: list[Event] = Field(default_factory=list)
    providers: dict[str, ProviderSpec] = Field(default_factory=dict)
    router: RouterSpec = RouterSpec()
    router_knowledge: KnowledgeSpec = KnowledgeSpec()
    slo: Objectives = Objectives()
    gates: Gates = Gates()
    policies: dict[str, PolicySpec]
    baseline: str | None = None
    backtest: BacktestSpec | None = None  # what a proxy's logs measured (routesim import litellm-logs)
    #: The instant simulated time 0 stands for: catalog prices by date and time of day follow it.
    start: Annotated[datetime, Field(strict=False)] | None = None
    routesim_version: str | None = None  # written into scenario.resolved.yaml; informational

    @field_validator("name")
    @classmethod
    def _one_folder_name(cls, value):
        return one_folder_name(value, "reports/<name>/")

    @model_validator(mode="before")
    @classmethod
    def _features_moved(cls, data):
        if isinstance(data, dict) and "features" in data:
            raise ValueError("'features' has moved: the difficulty signal's noise is now "
                             "router_knowledge.difficulty_noise_sd (default 1.0; null for no signal)")
        return data

    @field_validator("models", "policies")
    @classmethod
    def _not_empty(cls, value):
        if not value:
            raise ValueError("needs at least one entry")
        return value

    @property
    def baseline_policy(self) -> str:
        """The named baseline, else the first policy that is not an upper bound."""
        if self.baseline:
            return self.baseline
        return next((name for name in self.policies if not self.is_upper_bound(name)), next(iter(self.policies)))

    def is_upper_bound(self, policy: str) -> bool:
        """An upper bound sees ground truth (the oracle, or a policy the scenario hands exact
        beliefs): it is reported, never a candidate or the baseline."""
        from sim.policies.registry import PolicyConfigError, resolve  # lazily: it may import user code

        try:
            sees_outcomes = bool(getattr(resolve(self.policies[policy].kind), "upper_bound", False))
        except PolicyConfigError:
            return False  # reported by the scenario's own checks
        return sees_outcomes or bool(self.exact_truth(policy))

    def router_for(self, policy: str) -> RouterSpec:
        """The scenario's router with the policy's own overrides applied."""
        override = self.policies[policy].router
        if not override:
            return self.router
        return RouterSpec.model_validate(_deep_merge(self.router.model_dump(), override))

    def knowledge_for(self, policy: str) -> KnowledgeSpec:
        """What the policy's router believes: the scenario's router_knowledge with the policy's overrides."""
        override = self.policies[policy].knowledge
        if not override:
            return self.router_knowledge
        return KnowledgeSpec.model_validate(_deep_merge(self.router_knowledge.model_dump(), override))

    def exact_truth(self, policy: str) -> list[str]:
        """The ground truth this policy is handed and reads (a zero noise, a perfect
        feedback channel): any makes it an upper bound."""
        from sim.policies.base import ANSWER_FEEDBACK, DIFFICULTY_SIGNAL, QUALITY_BELIEF, knowledge_read_by
        from sim.policies.registry import PolicyConfigError, resolve  # lazily: it may import user code

        spec = self.policies[policy]
        try:
            cls = resolve(spec.kind)
            truths = list(cls.exact_truth_in(spec.all_params())) if hasattr(cls, "exact_truth_in") else []
        except (PolicyConfigError, ValueError):
            return []  # reported by the scenario's own checks
        reads = knowledge_read_by(cls)
        knowledge = self.knowledge_for(policy)
        if QUALITY_BELIEF in reads and knowledge.quality_noise_sd == 0:
            exact = [name for name, spec in self.models.items() if spec.quality_prior is None]
            if exact:
                truths.append(f"the true quality of {', '.join(exact)} (router_knowledge.quality_noise_sd: 0)")
        if DIFFICULTY_SIGNAL in reads and knowledge.difficulty_noise_sd == 0:
            truths.append("each request's true difficulty (router_knowledge.difficulty_noise_sd: 0)")
        if ANSWER_FEEDBACK in reads:
            for name, channel in knowledge.feedback.channels().items():
                if channel.share > 0 and channel.accuracy == 1:
                    truths.append(f"whether answers were acceptable (feedback.{name}.accuracy: 1)")
        return truths

    def max_attempts(self) -> int:
        return max(self.router_for(p).max_attempts for p in self.policies)


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# --------------------------------------------------------------------------- loading
class LoadedScenario:
    """A validated scenario and where it came from (for relative paths and messages)."""

    def __init__(self, scenario: Scenario, path: Path, lines: dict[FieldPath, int]):
        self.scenario = scenario
        self.path = path
        self.lines = lines

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def trace_path(self) -> Path | None:
        p = self.scenario.trace.path
        return None if p is None else (self.base_dir / p)

    def problem(self, path: FieldPath, message: str) -> Problem:
        return Problem(message, path=format_path(path), file=str(self.path), line=line_of(self.lines, path))


def pydantic_problems(exc: ValidationError, data: Any, where: "LoadedScenario | None" = None,
                      prefix: FieldPath = (), file: str = "") -> list[Problem]:
    problems = []
    for err in exc.errors():
        path = prefix + error_location(data, tuple(err["loc"]))
        if where is not None:
            problems.append(where.problem(path, describe_error(err)))
        else:
            problems.append(Problem(describe_error(err), path=format_path(path), file=file))
    return problems


def load_scenario(path: str | Path) -> LoadedScenario:
    """Parse and validate the scenario file (structure and cross-references).

    Raises ``InputError`` listing every problem found.
    """
    path = Path(path)
    data, lines = load_yaml(path)
    return scenario_from_data(data, path, lines)


def load_with_candidates(path: str | Path, candidates: list[Path]) -> LoadedScenario:
    """The scenario with more policies from each file of ``candidates`` (a mapping of policy
    name -> policy, or a ``policies:`` section): a candidate compared on the scenario's world
    without editing it. A problem in a candidate names the candidate's file and line."""
    path = Path(path)
    data, lines = load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("policies"), dict):
        return scenario_from_data(data, path, lines)  # its own problems first
    added: dict[str, Path] = {}
    for file in candidates:
        more, more_lines = load_yaml(Path(file))
        prefix: FieldPath = ()
        if isinstance(more, dict) and isinstance(more.get("policies"), dict):
            more, prefix = more["policies"], ("policies",)
        if not isinstance(more, dict) or not more:
            raise InputError(Problem("a mapping of policy name -> policy (kind: ..., and its parameters)",
                                     file=str(file), line=1))
        for name, spec in more.items():
            if not isinstance(name, str):  # a number or a list as a key: the scenario would blame its own lines
                raise InputError(Problem(f"policy name {name!r}: a policy's name is text (quote it)", file=str(file),
                                         line=line_of(more_lines, prefix + (name,))))
            if name in data["policies"]:
                raise InputError(Problem(f"policy '{name}' is already in {path}: give the candidate another name",
                                         file=str(file), line=line_of(more_lines, prefix + (name,))))
            data["policies"][name] = spec
            added[str(name)] = Path(file)
            for where, line in more_lines.items():
                if where[:len(prefix) + 1] == prefix + (name,):
                    lines[("policies",) + where[len(prefix):]] = line
    try:
        return scenario_from_data(data, path, lines)
    except InputError as exc:
        def placed(problem: Problem) -> Problem:
            for name, file in added.items():
                if problem.path == f"policies.{name}" or problem.path.startswith(f"policies.{name}."):
                    return dataclasses.replace(problem, file=str(file))
            return problem

        raise InputError([placed(p) for p in exc.problems]) from None


def scenario_from_data(data: Any, path: Path, lines: dict[FieldPath, int] | None = None) -> LoadedScenario:
    """Validate scenario data as if read from ``path`` (relative paths and messages are
    its); ``lines`` place each field in the file, when there is one."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise InputError(Problem("a scenario must be a YAML mapping (name:, trace:, models:, policies:, ...)",
                                 file=str(path), line=1))
    holder = LoadedScenario(None, path, lines)  # type: ignore[arg-type]
    try:
        holder.scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = pydantic_problems(exc, data, holder)
        # Report every problem in one pass: cross-check what did validate, with the
        # names the file declares (an entry with an error is still declared).
        pruned = _without_invalid(data, exc)
        try:
            holder.scenario = Scenario.model_validate(pruned) if pruned is not None else None
        except ValidationError:
            holder.scenario = None
        if holder.scenario is not None:
            problems += [p for p in reference_problems(holder, _declared_names(data)) if p not in problems]
        raise InputError(problems) from None
    problems = reference_problems(holder)
    if problems:
        raise InputError(problems)
    return holder


_NAMED_SECTIONS = ("models", "policies", "workloads", "providers")
#: Stand-ins for required sections with an error, so the rest can still be cross-checked.
_PLACEHOLDERS = {"name": "x", "trace": {"synthetic": {"duration_s": 1.0, "rate_per_s": 1.0}}}


def _without_invalid(data: dict, exc: ValidationError) -> dict | None:
    """``data`` without the entries pydantic refused (a model, a policy, an event, a
    top-level setting, which then takes its default); None when a whole required
    section is unusable."""
    pruned = copy.deepcopy(data)
    drop_events: set[int] = set()
    for err in exc.errors():
        loc = err["loc"]
        top = loc[0] if loc else None
        if top in _NAMED_SECTIONS and len(loc) >= 2 and isinstance(pruned.get(top), dict):
            pruned[top].pop(loc[1], None)
        elif top == "events" and len(loc) >= 2 and isinstance(loc[1], int):
            drop_events.add(loc[1])
        elif top in _PLACEHOLDERS:
            pruned[top] = _PLACEHOLDERS[top]
        elif top in ("models", "policies"):
            return None  # the section itself is wrong (empty, not a mapping)
        elif top is not None:
            pruned.pop(top, None)
    if drop_events and isinstance(pruned.get("events"), list):
        pruned["events"] = [e for i, e in enumerate(pruned["events"]) if i not in drop_events]
    return pruned


def _declared_names(data: dict) -> dict[str, set]:
    """Names the file declares, valid entries or not."""
    names = {key: set(data[key]) if isinstance(data.get(key), dict) else set() for key in _NAMED_SECTIONS}
    models = data.get("models") if isinstance(data.get("models"), dict) else {}
    names["model_providers"] = {m.get("provider") for m in models.values()
                                if isinstance(m, dict) and isinstance(m.get("provider"), str)}
    return names


def reference_problems(loaded: LoadedScenario, declared: dict[str, set] | None = None) -> list[Problem]:
    """Names that must refer to something declared elsewhere in the scenario
    (``declared``: the names to accept, when some entries were left out for errors)."""
    sc = loaded.scenario
    declared = declared or {"models": set(sc.models), "policies": set(sc.policies), "workloads": set(sc.workloads),
                            "model_providers": {m.provider for m in sc.models.values()}}
    models, providers = declared["models"], declared["model_providers"]
    workloads, policies = declared["workloads"], declared["policies"]
    problems: list[Problem] = []

    def need_model(name: str | None, path: FieldPath) -> None:
        if name is not None and name not in models:
            problems.append(loaded.problem(path, f"unknown model '{name}' (models: {', '.join(sorted(models))})"))

    for name, spec in sc.models.items():
        problems.extend(_catalog_problems(loaded, name, spec))
        for key in ("quality", "quality_prior"):
            table = getattr(spec, key) or {}
            for workload in table:
                if workload != "default" and workloads and workload not in workloads:
                    problems.append(loaded.problem(("models", name, key, workload),
                                                   f"unknown workload '{workload}' (workloads: {', '.join(sorted(workloads))})"))
    for i, event in enumerate(sc.events):
        if getattr(event, "model", None) is not None:
            need_model(event.model, ("events", i, "model"))
        if getattr(event, "provider", None) is not None and event.provider not in providers:
            problems.append(loaded.problem(("events", i, "provider"),
                                           f"unknown provider '{event.provider}' (providers: {', '.join(sorted(providers))})"))
    for name in sc.providers:
        if name not in providers:
            problems.append(loaded.problem(("providers", name),
                                           f"unknown provider '{name}' (providers: {', '.join(sorted(providers))})"))
    _router_references(sc.router, ("router",), need_model)
    if sc.baseline is not None and sc.baseline not in policies:
        problems.append(loaded.problem(("baseline",), f"unknown policy '{sc.baseline}' (policies: {', '.join(sorted(policies))})"))
    for key in ("candidate", "baseline"):
        name = getattr(sc.gates, key)
        if name is not None and name not in policies:
            problems.append(loaded.problem(("gates", key), f"unknown policy '{name}' (policies: {', '.join(sorted(policies))})"))
    if sc.backtest is not None:
        if sc.backtest.policy not in policies:
            problems.append(loaded.problem(("backtest", "policy"), f"unknown policy '{sc.backtest.policy}' "
                                                                   f"(policies: {', '.join(sorted(policies))})"))
        for deployment in sc.backtest.groups:
            need_model(deployment, ("backtest", "groups", deployment))
    if sc.baseline is not None and sc.baseline in sc.policies and sc.is_upper_bound(sc.baseline):
        problems.append(loaded.problem(("baseline",), f"'{sc.baseline}' is an upper bound that sees the ground truth; "
                                                      "the baseline must be a policy you could deploy"))
    for name, spec in sc.policies.items():
        problems.extend(_policy_problems(loaded, name, spec, need_model))
    if sc.trace.path is not None and not loaded.trace_path().exists():
        problems.append(loaded.problem(("trace", "path"), f"file not found: {loaded.trace_path()}"))
    return problems


def _catalog_problems(loaded: LoadedScenario, name: str, spec: ModelSpec) -> list[Problem]:
    """A catalog price must exist in the catalog, and needs the scenario's start instant."""
    if spec.price.catalog is None:
        return []
    from sim.pricing.catalog import find_model  # lazily: the catalog is an optional extra

    path = ("models", name, "price")
    problems = []
    if loaded.scenario.start is None:
        problems.append(loaded.problem(path + ("catalog",), "catalog prices need the scenario's 'start' "
                                       "(e.g. start: 2025-06-01T14:00:00Z), so dated and time-of-day prices "
                                       "are the same in every run"))
    try:
        find_model(spec.price.provider or spec.provider, spec.price.model or name)
    except InputError as exc:
        problems += [loaded.problem(path, p.message) for p in exc.problems]
    return problems


def start_instant(scenario: "Scenario") -> datetime:
    """The scenario's start as an aware UTC datetime (a naive one is taken as UTC)."""
    start = scenario.start
    return start.replace(tzinfo=timezone.utc) if start.tzinfo is None else start.astimezone(timezone.utc)


def _router_references(router: RouterSpec, path: FieldPath, need_model, only: dict | None = None) -> None:
    """Model names in a router block; ``only``: check just the keys a policy overrides."""
    if only is None or "default_model" in only:
        need_model(router.default_model, path + ("default_model",))
    if only is None or "context_window_fallbacks" in only:
        for model, fallbacks in router.context_window_fallbacks.items():
            need_model(model, path + ("context_window_fallbacks", model))
            for i, fallback in enumerate(fallbacks):
                need_model(fallback, path + ("context_window_fallbacks", model, i))


def _policy_problems(loaded: LoadedScenario, name: str, spec: PolicySpec, need_model) -> list[Problem]:
    # Imported lazily: the registry may import user code named in the scenario.
    from sim.policies.registry import PolicyConfigError, validate_params

    base: FieldPath = ("policies", name)
    problems: list[Problem] = []
    try:
        params = spec.all_params()
    except ValueError as exc:
        return [loaded.problem(base, str(exc))]
    if spec.router:
        try:
            router = loaded.scenario.router_for(name)
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, spec.router, loaded, base + ("router",)))
        else:
            _router_references(router, base + ("router",), need_model, only=spec.router)
    if spec.knowledge:
        try:
            loaded.scenario.knowledge_for(name)
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, spec.knowledge, loaded, base + ("knowledge",)))
    try:
        referenced = validate_params(spec.kind, params)
    except PolicyConfigError as exc:
        for sub_path, message in exc.problems:
            in_params = base + (("params",) if spec.params else ()) + sub_path
            problems.append(loaded.problem(in_params if sub_path else base + ("kind",), message))
        return problems
    for model_name, sub_path in referenced:
        need_model(model_name, base + (("params",) if spec.params else ()) + sub_path)
    return problems
