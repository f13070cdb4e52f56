"""Typed errors of the runtime. The gRPC bridge maps each class to one status code; nothing here knows gRPC."""
from __future__ import annotations


class ShotStreamError(Exception):
    """Base of every error the runtime raises on purpose."""


class InvalidRequestError(ShotStreamError):
    """The caller asked for something malformed (bad length, bad seed, bad story file)."""


class InvalidPromptError(InvalidRequestError):
    """A prompt is empty, too long, or cannot be encoded."""


class UnknownWordsError(InvalidPromptError):
    """The prompt holds words outside the text encoder's vocabulary (strict mode): they are listed."""

    def __init__(self, words: list[str]):
        self.words = list(words)
        super().__init__(f"unknown words (not in the model's vocabulary): {', '.join(self.words)}. `shotstream vocab` "
                         "(or GetInfo) lists the words the model knows; the lenient prompt mode (`--prompt-mode "
                         "lenient`, PROMPT_MODE_LENIENT) leaves unknown words out and reports them instead")


class CapacityError(ShotStreamError):
    """A resource limit (sessions, cache memory) refused the request."""


class SessionClosedError(ShotStreamError):
    """The story was closed; its caches are gone."""


class BackendUnavailableError(ShotStreamError):
    """The requested backend cannot run here (missing package, no GPU)."""


class ComponentUnavailableError(ShotStreamError):
    """A model component the preset needs is not present (e.g. user-supplied umT5 or Wan VAE weights)."""


class WeightsError(ShotStreamError):
    """A checkpoint does not match the model: lists missing, unexpected and mis-shaped keys."""

    def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[str], source: str = ""):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        parts = [f"checkpoint {source!r} does not match the model" if source else "checkpoint does not match the model"]
        for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)):
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                parts.append(f"{label} keys: {shown}")
        super().__init__("; ".join(parts))
