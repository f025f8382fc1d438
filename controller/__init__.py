"""dcilab: an SDN controller and Mininet emulation for multi-DC training fabrics on optical DCI."""

__version__ = "0.1.0"
