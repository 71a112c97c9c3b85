"""The whole product on a real one-node Kubernetes: containerd, kubelet, ingress controller."""
