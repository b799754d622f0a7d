"""Typed alias names. Aliases are written only by ``registry.promotion`` (through the ledger)."""

from __future__ import annotations

import logging
from typing import Literal, get_args

log = logging.getLogger(__name__)

Alias = Literal["champion", "challenger", "shadow", "canary", "previous-champion"]
ALIASES: tuple[str, ...] = get_args(Alias)


def get_alias_version(client, model: str, alias: Alias):
    """The ModelVersion holding ``alias``, or None when the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model, alias)
    except MlflowException:
        return None
