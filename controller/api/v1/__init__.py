"""Generated protobuf/gRPC code for dcilab.v1 from proto/dcilab/v1/ (do not edit).

Regenerate with `.venv/bin/python -m dcilab.api.gen`; a unit test fails when it is stale.
"""
