"""chatcluster: self-hosted real-time chat that runs itself on Kubernetes."""

__version__ = "0.1.0"
