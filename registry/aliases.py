"""Typed alias names and the one function that writes them.

Issue 3's promotion ledger will sit behind ``set_alias``; nothing else moves aliases.
"""

from __future__ import annotations

import logging
from typing import Literal, get_args

log = logging.getLogger(__name__)

Alias = Literal["champion", "challenger", "shadow", "canary", "previous-champion"]
ALIASES: tuple[str, ...] = get_args(Alias)


def set_alias(client, model: str, alias: Alias, version: str | int) -> None:
    if alias not in ALIASES:
        raise ValueError(f"unknown alias {alias!r}; expected one of {ALIASES}")
    client.set_registered_model_alias(model, alias, str(version))
    log.info("alias %s@%s -> version %s", model, alias, version)


def get_alias_version(client, model: str, alias: Alias):
    """The ModelVersion holding ``alias``, or None when the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model, alias)
    except MlflowException:
        return None
