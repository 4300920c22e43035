"""Model sources: a state dict named by a local path, a ``file://`` URI or a ``gs://`` URI, as a local file.

``resolve_model_uri`` is the entry point; ``gs://`` objects are fetched with the credentials
:func:`resolve_gcs_auth` finds and cached by generation.
"""

from model_serving.sources.credentials import GcsAuth, resolve_gcs_auth
from model_serving.sources.errors import ModelSourceError
from model_serving.sources.gcs import FetchedObject, fetch_gcs_object
from model_serving.sources.resolve import ResolvedSource, resolve_model_uri
from model_serving.sources.uri import GcsUri, LocalUri, ModelUri, parse_model_uri

__all__ = [
    "FetchedObject",
    "GcsAuth",
    "GcsUri",
    "LocalUri",
    "ModelSourceError",
    "ModelUri",
    "ResolvedSource",
    "fetch_gcs_object",
    "parse_model_uri",
    "resolve_gcs_auth",
    "resolve_model_uri",
]
