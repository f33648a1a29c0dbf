"""Running the service: CloudWatch metrics, log filters that keep users' text out of logs, and the
smoke test of a running site. No Django models, no tensors.
"""
