"""Container image, base image and skaffold tests (marker `image`)."""
