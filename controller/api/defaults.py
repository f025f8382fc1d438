"""The API's default limits, apart from the server so that `dcilab controller --help` and a
refused option answer without loading gRPC and the controller (seconds on a busy machine)."""

# Calls wait on these threads for their commit; measured best on one core with 16 clients.
DEFAULT_WORKERS = 12
# A watch stream holds a thread for as long as it is open: bounded, and served by threads
# of their own so that open streams never leave the booking calls fewer.
DEFAULT_WATCH_STREAMS = 4
# Read calls a second, for every client together and for each one.
DEFAULT_READS_PER_S = 10.0
