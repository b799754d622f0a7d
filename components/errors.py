"""Typed errors. Each carries the exit code the CLI maps it to (see ARCHITECTURE.md)."""

from __future__ import annotations


class SeqopsError(Exception):
    """Base class. ``exit_code`` follows the contract: 2 bad input, 3 run failed, 4 conflict."""

    exit_code = 3
    kind = "run_failed"


class BadInputError(SeqopsError):
    """The user's config or data is wrong; nothing was changed."""

    exit_code = 2
    kind = "bad_input"


class ConfigError(BadInputError):
    kind = "bad_config"


class DataError(BadInputError):
    kind = "bad_data"


class DataContractError(DataError):
    """The data contract (validation/) failed. ``failures`` are plain-words lines."""

    kind = "data_contract"

    def __init__(self, message: str, failures: list[str], report_paths: dict[str, str]):
        super().__init__(message)
        self.failures = failures
        self.report_paths = report_paths


class RunFailedError(SeqopsError):
    exit_code = 3
    kind = "run_failed"


class TrainingDivergedError(RunFailedError):
    kind = "training_diverged"


class ConflictError(SeqopsError):
    exit_code = 4
    kind = "conflict"
