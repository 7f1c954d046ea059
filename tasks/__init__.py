"""Celery tasks: PDF processing and a demo job, thin wrappers around plain functions."""
