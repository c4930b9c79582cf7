"""Downloading artwork from catalog URLs: allow-listed hosts, SSRF guard, size and time caps, retries.

Knows nothing of the pipeline around it: give it a FetchPolicy, call `ImageFetcher.fetch(url)`, and
get the bytes or a FetchError whose `cause` says what went wrong.
"""

from .addresses import blocked_reason, is_public
from .client import FetchedImage, ImageFetcher
from .conditional import HeadInfo, SourceValidators
from .errors import CAUSES, RETRYABLE_CAUSES, FetchError
from .network import GuardedBackend, GuardedTransport
from .policy import DEFAULT_USER_AGENT, FetchPolicy
from .urls import AllowList, check_url

__all__ = [
    "CAUSES",
    "DEFAULT_USER_AGENT",
    "RETRYABLE_CAUSES",
    "AllowList",
    "FetchError",
    "FetchPolicy",
    "FetchedImage",
    "GuardedBackend",
    "GuardedTransport",
    "HeadInfo",
    "ImageFetcher",
    "SourceValidators",
    "blocked_reason",
    "check_url",
    "is_public",
]
