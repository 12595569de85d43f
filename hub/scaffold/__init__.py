"""``tongdao connectors new NAME``: a separate connector package that already passes the kit."""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE = Path(__file__).parent / "template"
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")


class ScaffoldError(Exception):
    pass


def create_connector_package(name: str, parent: Path) -> Path:
    """Write ``tongdao-<name>/`` under ``parent`` and return its path."""
    if not _NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a usable connector name: lower-case letters, digits and _, "
            "starting with a letter, 2 to 31 characters"
        )
    target = parent / f"tongdao-{name.replace('_', '-')}"
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or directory")
    module = f"tongdao_{name}"
    values = {
        "name": name,
        "module": module,
        "class_prefix": "".join(part.capitalize() for part in name.split("_")),
        "distribution": f"tongdao-{name.replace('_', '-')}",
    }
    env = Environment(
        loader=FileSystemLoader(TEMPLATE),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    for source in sorted(TEMPLATE.rglob("*.j2")):
        relative = source.relative_to(TEMPLATE).with_suffix("")
        parts = [module if part == "package" else part for part in relative.parts]
        destination = target.joinpath(*parts)
        destination.parent.mkdir(parents=True, exist_ok=True)
        rendered = env.get_template(source.relative_to(TEMPLATE).as_posix()).render(**values)
        destination.write_text(rendered, encoding="utf-8")
    return target
