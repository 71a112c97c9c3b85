"""The ChatCluster operator: a Kopf operator that turns a `ChatCluster` into the Deployments,
Services, Ingress, HPAs, PDBs, migration Job and ServiceMonitor that run chatcluster.

Layering (imports only go downward): ``cli`` > ``handlers`` > ``reconcile`` >
(``kube``, ``status``, ``builders``) > ``spec`` > ``names``. Builders and status are pure
functions so they can be unit-tested without a cluster.
"""

GROUP = "chatcluster.dev"
VERSION = "v1alpha1"
PLURAL = "chatclusters"
KIND = "ChatCluster"
FIELD_MANAGER = "chatcluster-operator"
