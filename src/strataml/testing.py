"""A conformance kit for backends: the checks the project runs over its own backends,
public so that a third-party backend can run them too (like scikit-learn's ``check_estimator``).

Each ``check_*`` takes a factory that returns a fresh, empty, opened instance; it runs
every property the backend must keep against new instances and closes them. A broken
property raises :class:`AssertionError` naming it::

    from strataml.testing import check_online_store

    def test_my_store_conforms(tmp_path):
        check_online_store(lambda: MyStore(f"my://{tmp_path}/{uuid.uuid4().hex}"))

The kit imports nothing heavy and no test framework. A model format is checked on one
fitted model rather than a factory: :func:`check_model_format`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from strataml.models._conformance import check_model_format
from strataml.spine._conformance import run_checks
from strataml.spine.queue._conformance import check_queue

if TYPE_CHECKING:
    from strataml.features import OnlineStore
    from strataml.serving._cache import ResponseCache
    from strataml.serving._ratelimit import Buckets
    from strataml.spine import ArtifactStore, Catalog

__all__ = [
    "check_artifact_store",
    "check_catalog",
    "check_model_format",
    "check_online_store",
    "check_queue",
    "check_rate_limit_buckets",
    "check_response_cache",
]


def check_artifact_store(new_store: Callable[[], ArtifactStore]) -> None:
    """Assert what every artifact store keeps, on fresh empty stores from ``new_store``.

    Objects are keyed by the sha256 of their content and written once; reads verify the
    hash (tampered bytes are refused); concurrent writes never expose a partial object;
    keys that are not a lowercase sha256 are refused before they reach a path.
    """
    from strataml.spine._conformance import check_artifact_store as check

    check(new_store)


def check_catalog(new_catalog: Callable[[], Catalog]) -> None:
    """Assert what every catalog keeps, on fresh migrated catalogs from ``new_catalog``.

    Every migration is applied once and recorded; a write transaction commits whole or
    not at all; concurrent writers lose and damage nothing; events are listed in the
    order they were appended.
    """
    from strataml.spine._conformance import check_catalog as check

    check(new_catalog)


def check_online_store(new_store: Callable[[], OnlineStore]) -> None:
    """Check an online-store backend: ``new_store()`` returns a fresh, empty, opened store.

    Covers the protocol, missing views and keys, round trips of values and metadata,
    staged writes invisible until commit (and abort), full and incremental writes, order
    over thousands of keys, multi-column keys, projections, the value layout check and
    the JSON-object values of older stores.
    """
    from strataml.features.online._conformance import ONLINE_STORE_CHECKS

    run_checks("online store", new_store, ONLINE_STORE_CHECKS)


def check_rate_limit_buckets(new_buckets: Callable[[], Buckets]) -> None:
    """Check a rate-limit bucket backend: ``new_buckets()`` returns a fresh bucket store.

    Covers a burst then refusals with a retry-after, refilling, separate keys and costs.
    """
    from strataml.serving._conformance import RATE_LIMIT_CHECKS

    run_checks("rate-limit buckets", new_buckets, RATE_LIMIT_CHECKS)


def check_response_cache(new_cache: Callable[[], ResponseCache]) -> None:
    """Check a response-cache backend: ``new_cache()`` returns a fresh cache.

    Covers misses, round trips of prediction lists, expiry after the TTL and separate keys.
    """
    from strataml.serving._conformance import RESPONSE_CACHE_CHECKS

    run_checks("response cache", new_cache, RESPONSE_CACHE_CHECKS)
