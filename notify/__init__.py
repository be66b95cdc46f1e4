"""Incidents' escalation and the channels that carry messages. Knows nothing of detectors."""
