"""Dispatch to Kubernetes (``dispatch.mode: kubernetes``): agent Job manifests, creator, watcher."""
