"""What a coherent receiver sees at a GSNR, and what that does to the packets it carries.

From the GSNR of a wavelength and the mode of its transceivers: OSNR, effective SNR (ESNR),
pre-FEC BER, Q-factor, the margin to the FEC threshold, and then the packet loss and loss of
sync the emulation applies.

Effective SNR. Datasheet required OSNRs are measured back to back on real hardware, so
they include the transceiver's own impairments; the ideal formulas of `ber` need 2.4 to
5.7 dB less (see `ber.implementation_penalty_db`). The receiver here runs at
ESNR = GSNR − penalty with the penalty taken from the catalog, so the modelled BER crosses
the FEC threshold exactly where the mode's OSNR margin reaches 0 dB: the optical plan, the
margin the controller sees and the packet loss in the emulation agree. Pass
`penalty_db=0` for an ideal receiver.

From margin to packets (an assumption, configurable). Past its threshold a FEC's output
error rate climbs a steep "waterfall": staircase and oFEC codes go from error-free to
useless within a few tenths of a dB. Here the share of frames with an uncorrectable error
rises linearly with the Q-factor shortfall, from 0 at the threshold to all frames
`FEC_CLIFF_DB` below it (1 dB, wider than real codes so a ramp shows seconds of partial
loss), and the receiver loses frame sync, the link going dark, `SYNC_LOSS_DB` below it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ber import fec_threshold, implementation_penalty_db, osnr_from_snr, prefec_ber, q_db
from .catalog import Mode, OpticsError

FEC_CLIFF_DB = 1.0
SYNC_LOSS_DB = 1.5
# nftables draws `numgen random mod 1000`: loss is applied in steps of 0.1 %.
LOSS_STEPS = 1000
# BER is capped just below 0.5 so that a Q-factor exists for a signal lost in noise.
_BER_CEILING = 0.4999


@dataclass(frozen=True)
class Reading:
    """One receiver's view of its wavelength, and the effect on the traffic it carries."""

    mode: str
    gsnr_db: float          # in the signal bandwidth
    osnr_db: float          # per 0.1 nm
    esnr_db: float          # GSNR less the transceiver's implementation penalty
    prefec_ber: float
    q_db: float
    threshold_ber: float
    q_margin_db: float      # Q-factor above the FEC threshold's; < 0 means errors get through
    loss_ratio: float       # share of packets lost, 0..1, in steps of 1/LOSS_STEPS
    in_sync: bool           # False: the receiver lost frame sync and the link is dark

    @property
    def loss_per_mille(self) -> int:
        return round(self.loss_ratio * LOSS_STEPS)


def loss_from_margin(q_margin_db: float, cliff_db: float = FEC_CLIFF_DB,
                     sync_loss_db: float = SYNC_LOSS_DB) -> tuple[float, bool]:
    """(share of packets lost, in sync) for a Q-factor `q_margin_db` above the threshold."""
    if cliff_db <= 0 or sync_loss_db <= 0:
        raise OpticsError("the FEC cliff and the sync-loss margin must be > 0 dB")
    if q_margin_db <= -sync_loss_db:
        return 1.0, False
    if q_margin_db >= 0:
        return 0.0, True
    steps = min(LOSS_STEPS, round(-q_margin_db / cliff_db * LOSS_STEPS))
    return steps / LOSS_STEPS, True


def read(mode: Mode, gsnr_db: float, penalty_db: float | None = None,
         cliff_db: float = FEC_CLIFF_DB, sync_loss_db: float = SYNC_LOSS_DB) -> Reading:
    """The reading of a receiver in `mode` at `gsnr_db`.

    Parameters
    ----------
    mode
        The catalog mode both ends run.
    gsnr_db
        GSNR of the wavelength in its signal bandwidth (ASE, NLI and transmitter noise).
    penalty_db
        Implementation penalty; None takes the catalog's (`implementation_penalty_db`).
    cliff_db, sync_loss_db
        The margin-to-loss mapping (see the module docstring).
    """
    penalty = implementation_penalty_db(mode) if penalty_db is None else penalty_db
    esnr = gsnr_db - penalty
    threshold = fec_threshold(mode)
    ber = min(_BER_CEILING, max(prefec_ber(mode.modulation, esnr), 1e-300))
    q = q_db(ber)
    margin = q - q_db(threshold)
    loss, in_sync = loss_from_margin(margin, cliff_db, sync_loss_db)
    return Reading(mode=mode.name, gsnr_db=gsnr_db,
                   osnr_db=osnr_from_snr(gsnr_db, mode.baud_gbd), esnr_db=esnr,
                   prefec_ber=ber, q_db=q, threshold_ber=threshold, q_margin_db=margin,
                   loss_ratio=loss, in_sync=in_sync)
