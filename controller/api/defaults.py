"""The API's default limits, apart from the server so that `dcilab controller --help` and a
refused option answer without loading gRPC and the controller (seconds on a busy machine)."""

# Calls wait on these threads for their commit; measured best on one core with 16 clients.
DEFAULT_WORKERS = 12
# A watch stream holds a thread for as long as it is open: bounded, and served by threads
# of their own so that open streams never leave the booking calls fewer.
DEFAULT_WATCH_STREAMS = 4
# Read calls a second, for every client together and for each one.
DEFAULT_READS_PER_S = 10.0
# Live reservations at most: a client with a bug (or any token holder) booked 52 578 of
# 0.001 Gb/s in minutes for an outside tester, and a restart then took 74 s before it
# answered. Thousands is more than a lab's training jobs ask for.
DEFAULT_MAX_LIVE = 10_000
# Reservations a listing page holds unless asked (0), and at most.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
