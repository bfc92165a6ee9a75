"""A history of commits by different authors, each with a known effect on prod's temperature."""

from __future__ import annotations

from tests.conftest import GitRepo
from tests.diff._support import seed, write

PROD_TEMPERATURE = "modules:\n  engine:\n    model:\n      max_tokens: 4000\n      temperature: 0.2\n"


def build_history(repo: GitRepo) -> dict[str, str]:
    """Commit the scenario; returns each author's commit id by first name."""
    shas = {"Ada": seed(repo)}

    def commit(name: str, day: int, message: str, files: dict[str, str | None]) -> None:
        write(repo, files)
        author = f"{name} Example <{name.lower()}@example.com>"
        shas[name] = repo.commit(message, author=author, date=f"2026-01-{day:02d}T10:00:00Z")

    # staging's temperature: inherited by prod (a staging commit changes prod's value)
    commit("Bob", 2, "Cooler staging", {"environments/staging.yaml": "vars:\n  temperature: 0.35\n"})
    # touches prod's layer, not the value
    commit(
        "Carol",
        3,
        "Document prod",
        {"environments/prod.yaml": "# prod: conservative\nmodules:\n  engine:\n    model:\n      max_tokens: 4000\n"},
    )
    # not in prod's stack at all
    commit("Dan", 4, "Smaller dev model", {"environments/dev.yaml": "vars:\n  model: nano\n"})
    commit("Eve", 5, "Pin prod temperature", {"environments/prod.yaml": PROD_TEMPERATURE})
    commit("Frank", 6, "acme wants more tokens", {"environments/tenants/acme.yaml": "vars:\n  model: acme-xl\n"})
    # base's temperature is shadowed for prod: touches the stack, not the value
    commit("Grace", 7, "Warmer default", {"environments/base.yaml": _base("temperature: 0.5", "temperature: 0.6")})
    return shas


def _base(old: str, new: str) -> str:
    from tests.diff._support import FILES

    return FILES["environments/base.yaml"].replace(old, new)
