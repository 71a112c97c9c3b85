"""The migration Job. ``chatcluster migrate`` is idempotent, so retrying it is safe; the
reconciler only rolls Deployments to a new image after this Job succeeded for that image."""

from __future__ import annotations

from chat_operator.builders import pods
from chat_operator.builders.common import Cluster, Manifest, metadata, migration_job_name

# Keep a finished Job a day for its logs; status.migration remembers the outcome after that.
TTL_AFTER_FINISHED = 86400


def migration_job(cluster: Cluster, image: str, template_checksum: str) -> Manifest:
    spec = cluster.spec
    box = pods.container(cluster, "migrate", image, ["migrate"], spec.api)
    pod = pods.pod_spec(cluster, [box], None, "migration", restart_policy="Never")
    name = migration_job_name(cluster, image)
    meta = metadata(cluster, name, "migration")
    meta["annotations"] = {"chatcluster.dev/image": image}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": spec.migrations.backoff_limit,
            "activeDeadlineSeconds": spec.migrations.active_deadline_seconds,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": pods.template(cluster, "migration", pod, template_checksum),
        },
    }
