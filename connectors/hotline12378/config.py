"""``[connectors.hotline12378]``: the regulator's branches, size caps and the sheet mapping."""

from __future__ import annotations

import re
from typing import Any

from pydantic import AnyHttpUrl, Field, model_validator

from hub.sdk import MIB, ConnectorConfig, PlainText, WebhookSecret

MAX_BATCH = 500
"""The spec's cap on ``{"transfers": [...]}``."""


class BranchConfig(ConnectorConfig):
    """One regulator branch (e.g. 北京监管局). Its push secret says which branch is speaking, so
    feedback goes back to the branch that transferred the case."""

    name: PlainText = Field(
        min_length=1,
        max_length=200,
        description="display name, e.g. 国家金融监督管理总局北京监管局",
    )
    aliases: list[PlainText] = Field(
        default_factory=list,
        description="other spellings of the branch in sheets' 监管机构 column (e.g. 北京监管局)",
    )
    secret: WebhookSecret = Field(description="whsec_ secret the branch signs its pushes with")
    previous_secrets: list[WebhookSecret] = Field(
        default_factory=list, description="still accepted on pushes while the branch rotates"
    )
    feedback_url: AnyHttpUrl = Field(description="where result feedback for this branch goes")
    feedback_secret: WebhookSecret | None = Field(
        default=None, description="signs feedback to the branch; default: the push secret"
    )

    @property
    def push_secrets(self) -> list[str]:
        return [self.secret, *self.previous_secrets]

    @property
    def signing_secret(self) -> str:
        return self.feedback_secret or self.secret


class Hotline12378Config(ConnectorConfig):
    branches: dict[str, BranchConfig] = Field(
        min_length=1,
        description="one table per regulator branch: [connectors.hotline12378.branches.<key>]",
    )
    max_body_bytes: int = Field(
        default=8 * MIB, gt=0, le=64 * MIB, description="a push larger than this gets 413"
    )
    max_attachment_bytes: int = Field(
        default=5 * MIB, gt=0, le=32 * MIB, description="per attachment, decoded"
    )
    max_batch: int = Field(
        default=MAX_BATCH, ge=1, le=MAX_BATCH, description="transfers per batched push"
    )
    timestamp_tolerance_seconds: int = Field(default=300, gt=0, le=300)
    import_columns: dict[str, str] = Field(
        default_factory=dict,
        description="sheet heading -> field, for `tongdao import` (a --mapping file overrides)",
    )
    import_defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="field -> value for imported rows that leave it empty (e.g. transfer_type)",
    )

    @model_validator(mode="after")
    def _distinct_branches(self) -> Hotline12378Config:
        # The key goes into reply addresses and the secret says who is speaking: both must be
        # unambiguous, or one branch's transfers could be answered to another.
        for key in self.branches:
            if not re.fullmatch(r"[a-z0-9_-]{1,40}", key):
                raise ValueError(f"branch key {key!r}: use a-z, 0-9, _ and - only")
        secrets = [s for branch in self.branches.values() for s in branch.push_secrets]
        if len(secrets) != len(set(secrets)):
            raise ValueError("each branch needs push secrets of its own; two branches share one")
        seen: dict[str, str] = {}
        for key, branch in self.branches.items():
            for spelling in {branch.name, *branch.aliases}:
                other = seen.setdefault(spelling, key)
                if other != key:
                    raise ValueError(
                        f"branches {other!r} and {key!r} are both called {spelling!r}; "
                        "imported rows could not tell them apart"
                    )
        return self

    def branch_named(self, value: str) -> str | None:
        """The key of the branch a sheet's 监管机构 cell names (key, name or alias)."""
        wanted = value.strip()
        for key, branch in self.branches.items():
            if wanted == key or wanted == branch.name or wanted in branch.aliases:
                return key
        return None
