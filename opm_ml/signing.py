"""Signed models: a registered version is unpickled only if it carries this deployment's HMAC.

Loading a model unpickles it, which runs code, so whoever can write to the MLflow registry
(register a version, move an alias) could run theirs in every replica at its next poll. With
OPM_ML_MODEL_SIGNING_KEY set, training tags each version it registers with the sha256 of the
model file and an HMAC of that digest under the key; loaders hash the file they downloaded and
refuse it before unpickling unless the HMAC matches. The key is never written to the registry.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path

DIGEST_TAG = "opm_ml.artifact_sha256"
SIGNATURE_TAG = "opm_ml.signature"
_DOMAIN = "opm-ml registered model v1"  # a signature means nothing outside this use


class ModelRefused(Exception):
    """A registered version that is not signed with this deployment's key; the message says
    which and why, and is safe to show to anyone (no paths, hosts or key material)."""


def file_digest(path: str | Path) -> str:
    """sha256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def signature(key: str, name: str, digest: str) -> str:
    """HMAC-SHA256 under `key` of the registered name and the artifact digest: a signature
    copied to another model's version does not match its name or its file."""
    message = f"{_DOMAIN}\n{name}\n{digest}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signing_tags(key: str, name: str, digest: str) -> dict[str, str]:
    """The model-version tags that sign an artifact."""
    return {DIGEST_TAG: digest, SIGNATURE_TAG: signature(key, name, digest)}


def check(key: str, name: str, version: str, tags: Mapping[str, str], digest: str) -> None:
    """ModelRefused unless `tags` sign the downloaded artifact's `digest` under `key`."""
    given = tags.get(SIGNATURE_TAG)
    if not given:
        raise ModelRefused(f"{name} v{version} is refused: it is not signed, and this deployment "
                           "loads only models signed with its OPM_ML_MODEL_SIGNING_KEY")
    if not hmac.compare_digest(given, signature(key, name, digest)):
        raise ModelRefused(f"{name} v{version} is refused: its signature does not match its "
                           "artifact under this deployment's OPM_ML_MODEL_SIGNING_KEY "
                           "(forged, altered, or signed with another key)")
