"""The os-ken adapter: a thin app that ferries OpenFlow events to the core and back."""
