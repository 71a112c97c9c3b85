"""The ChatCluster operator: a Kopf operator that turns a `ChatCluster` into the Deployments,
Services, Ingress, HPAs, PDBs, migration Job and ServiceMonitor that run chatcluster.

Layering (imports only go downward): ``cli`` > (``handlers``, ``leader``, ``workqueue``) >
``reconcile`` > ``children`` > (``drift``, ``events``, ``kube``, ``status``, ``builders``) >
(``problems``, ``logs``, ``spec``). Builders, status and drift are pure functions so they can
be unit-tested without a cluster; Kopf only feeds watch events into the work queue.
"""

GROUP = "chatcluster.dev"
VERSION = "v1alpha1"
PLURAL = "chatclusters"
KIND = "ChatCluster"
FIELD_MANAGER = "chatcluster-operator"
