"""User-facing errors: bad input the command line reports with exit code 2."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (file, line, field path) and what."""

    message: str
    path: str = ""  # field path such as ``models.gpt-5.price.input_per_mtok``
    file: str = ""
    line: int | None = None  # 1-based line in ``file``, or a row for tables

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        parts = [p for p in (where, self.path) if p]
        return ": ".join(parts + [self.message])


class InputError(Exception):
    """Bad input; carries every problem found so the user can fix them in one go."""

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
