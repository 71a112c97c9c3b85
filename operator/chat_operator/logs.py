"""Logging: every line about a ChatCluster carries its namespace/name.

Kopf's formatters read ``k8s_ref`` from a record and prefix ``[namespace/name]`` (text) or
add an ``object`` field (JSON). :func:`configure` installs them on the root logger instead of
``logging.basicConfig``, whose plain format would drop the reference; :func:`for_cluster`
gives the reconciler a logger that sets it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

import kopf

from chat_operator import GROUP, KIND, VERSION

log = logging.getLogger("chat_operator")


def configure(fmt: str, verbose: bool) -> None:
    """``fmt``: ``text`` (Kopf's full format with the ``[ns/name]`` prefix) or ``json`` (one
    object per line; the ChatCluster is in the ``object`` field, and also in the prefix)."""
    log_format = kopf.LogFormat.JSON if fmt == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=verbose, log_format=log_format, log_prefix=True, log_refkey="object")
    # Kopf logs "Handler ... succeeded" per watch event at INFO; our handlers only queue a key,
    # and every Deployment status change is an event: keep its per-object lines to warnings.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)


class ClusterLogger(logging.LoggerAdapter[logging.Logger]):
    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def for_cluster(namespace: str, name: str, uid: str | None = None) -> ClusterLogger:
    # k8s_skip: these records are not turned into Events by Kopf; the reconciler posts its
    # Events itself (see events.py), with de-duplication.
    ref = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "namespace": namespace,
        "name": name,
        "uid": uid,
    }
    return ClusterLogger(log, {"k8s_ref": ref, "k8s_skip": True})


def reference(meta: Mapping[str, Any]) -> ClusterLogger:
    return for_cluster(str(meta["namespace"]), str(meta["name"]), meta.get("uid"))
