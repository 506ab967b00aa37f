"""Deployment helpers: the queue-depth exporter autoscalers read, and the GCP worker fleet's gcloud commands."""
