import numpy as np
import pytest

from excess.errors import ConfigError
from excess.stats.windows import sliding_windows


def test_relative_windows_scale_with_the_centre():
    ws = sliding_windows(data_range=(1100, 4120), width=0.2, step=0.04, sideband_width=0.3, anchor=2500, relative=True)
    centres = np.array([w.centre for w in ws])
    assert len(ws) >= 5 and all(1100 <= w.sb_lo and w.sb_hi <= 4120 for w in ws)
    assert np.allclose(centres[1:] / centres[:-1], 1.04, atol=0.01)  # geometric steps (edges rounded to 10 GeV)
    for w in ws:  # SR 0.2 x centre, sidebands 0.3 x centre each side, up to the rounding
        assert abs((w.sr_hi - w.sr_lo) - 0.2 * w.centre) <= 10
        assert abs((w.sr_lo - w.sb_lo) - 0.3 * w.centre) <= 10 and abs((w.sb_hi - w.sr_hi) - 0.3 * w.centre) <= 10
    assert any(abs(w.centre - 2500) <= 10 for w in ws)  # the anchor is a centre
    with pytest.raises(ConfigError, match="fractions"):
        sliding_windows(data_range=(1100, 4120), width=600, step=100, sideband_width=800, relative=True)
    with pytest.raises(ConfigError, match="no relative window"):
        sliding_windows(data_range=(2900, 3100), width=0.2, step=0.04, sideband_width=0.3, anchor=3000, relative=True)
