"""The gRPC API: dcilab.v1 services, adapting requests to the controller service."""
