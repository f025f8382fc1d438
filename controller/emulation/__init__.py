"""The Mininet emulation of a fabric file. It knows nothing of the controller: the two meet
only over OpenFlow, exactly as on a lab user's VM."""
