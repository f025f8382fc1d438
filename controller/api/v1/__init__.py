"""Generated protobuf/gRPC code for dcilab.v1 (regenerate with `make proto`)."""
